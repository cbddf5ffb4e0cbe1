# neuroplast: two commands on a fresh machine.
#   make demo   installs into .venv and runs the keyword-spotting pipeline end to end
#   make test   installs and runs the test suite
# Every pip install uses constraints.txt (torch pinned to the 2.13.0 CPU build).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(VENV)/bin/pip
# mbrola (contrib) and its voices and SVOX Pico (non-free) are KWS training voices: `apt`
# enables Debian's contrib and non-free components when a package is missing.
APT_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
  mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 libttspico-utils rhvoice rhvoice-english \
  sox libsox-fmt-all opus-tools openssh-server openssh-client socat gcc make mosquitto openssl \
  gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm \
  qemu-user-static gcc-xtensa-lx106 binutils-xtensa-lx106 picolibc-xtensa-lx106-elf
PYTEST_WORKERS ?= 2

.PHONY: help install apt venv native firmware aarch64 demo test lint layering conformance bench bench-firmware clean

help:
	@echo "make demo   - install and run the end-to-end keyword-spotting demo"
	@echo "make test   - install and run the test suite"
	@echo "make bench  - run the benchmarks (tables + bench/results/*.json)"
	@echo "make conformance - 5,000 random graphs through every target's engine"

# arm64 package lists: the aarch64 userland of the Raspberry Pi stand-in is unpacked from
# Debian's arm64 python3.11 (apt-get download + dpkg -x; nothing arm64 is installed).
apt:
	@if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	arm64=""; dpkg --print-foreign-architectures | grep -qx arm64 || arm64=1; \
	if [ -n "$$arm64" ]; then $$SUDO dpkg --add-architecture arm64; fi; \
	if [ -n "$$missing" ] && [ -f /etc/debian_version ] && \
	  ! grep -rqsE '^(Components:|deb ).* non-free( |$$)' /etc/apt/sources.list /etc/apt/sources.list.d/; then \
	  . /etc/os-release; echo "enabling Debian contrib and non-free ($$VERSION_CODENAME) for mbrola and pico voices"; \
	  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
	    "$$VERSION_CODENAME" | $$SUDO tee /etc/apt/sources.list.d/neuroplast-contrib-non-free.sources >/dev/null; \
	fi; \
	if [ -n "$$missing$$arm64" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && \
	  if [ -n "$$missing" ]; then DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; fi; \
	fi

$(VENV)/.installed: pyproject.toml setup.py constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip 'setuptools<81' wheel
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[all,dev]'
	# Norse declares torchvision, which would replace the CPU torch; its core never imports it.
	$(PIP) install -q --no-deps norse
	# BindsNET is only a benchmark peer; its declared deps (torchvision, gym, ...) are not needed.
	$(PIP) install -q --no-deps bindsnet==0.3.4
	touch $@

# tflite-runtime 2.14 only loads under numpy<2: a side venv lets the tests check our
# .tflite files in it too (LiteRT, in the main venv, is the primary TFLite runtime).
TFLITE_VENV := .venv-tflite
$(TFLITE_VENV)/.installed:
	test -x $(TFLITE_VENV)/bin/python || python3 -m venv $(TFLITE_VENV)
	$(TFLITE_VENV)/bin/pip install -q 'numpy<2' tflite-runtime==2.14.0 || echo "tflite-runtime unavailable on this platform; its test will be skipped"
	touch $@

venv: $(VENV)/.installed $(TFLITE_VENV)/.installed

# the optional compiled kernels (neuroplast._native: firmware np_kernels.c + sdk/_native.c),
# rebuilt in place when a C source changes (pip install -e builds them once; without gcc the
# runtime falls back to numpy; `neuroplast info --backend` says which is in use)
NATIVE_SO := $(shell $(if $(wildcard $(PY)),$(PY),python3) -c "import sysconfig; print('sdk/_native' + sysconfig.get_config_var('EXT_SUFFIX'))" 2>/dev/null)
$(NATIVE_SO): sdk/_native.c firmware_bridge/firmware/np_kernels.c firmware_bridge/firmware/np_kernels.h setup.py | $(VENV)/.installed
	-$(PY) setup.py -q build_ext --inplace 2>&1 | grep -v -i deprecat || true
native: $(NATIVE_SO)

firmware:
	$(MAKE) -C firmware_bridge/firmware

# the aarch64 Debian userland (python3.11 + numpy) under qemu-user, cached in ~/.cache/neuroplast
aarch64: apt venv
	$(PY) tests/aarch64_root.py

install: apt venv native firmware aarch64

lint: venv
	$(VENV)/bin/ruff check .

# import-linter reads the folder -> package mapping from a shadow tree of symlinks
# (the editable install maps sdk/ to neuroplast, which grimp cannot follow).
layering: venv
	@tmp=$$(mktemp -d) && cp -rs $(CURDIR)/sdk $$tmp/neuroplast && \
	for p in apps quantize boards firmware_bridge; do cp -rs $(CURDIR)/$$p $$tmp/neuroplast/$$p; done && \
	cd $$tmp && PYTHONPATH=$$tmp $(CURDIR)/$(VENV)/bin/lint-imports --no-cache \
	  --config $(CURDIR)/pyproject.toml; rc=$$?; rm -rf $$tmp; exit $$rc

test: install
	$(VENV)/bin/ruff check .
	$(MAKE) --no-print-directory layering
	MPLBACKEND=Agg NEUROPLAST_TFLITE_RUNTIME_PYTHON=$(CURDIR)/$(TFLITE_VENV)/bin/python \
	  $(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --timeout 600 tests

demo: install
	MPLBACKEND=Agg $(PY) -m neuroplast.demo
	MPLBACKEND=Agg $(PY) -m neuroplast.apps.kws.demo

# 5,000 random graphs through every target's real engine (bench/results/conformance.json)
conformance: install
	OMP_NUM_THREADS=1 $(PY) bench/conformance.py --n 5000 --out bench/results/conformance.json

bench: install
	MPLBACKEND=Agg $(PY) bench/bench_runtime.py
	$(PY) bench/reliability.py
	$(PY) bench/report.py

# firmware footprint/cost under QEMU, TFLM beside it, kernel coverage (docs/boards.md tables)
bench-firmware: install
	nice -n 10 $(PY) bench/bench_firmware.py

clean:
	rm -rf build dist *.egg-info .pytest_cache
	-$(MAKE) -C firmware_bridge/firmware clean
