# neuroplast: two commands on a fresh machine.
#   make demo   installs into .venv and runs the keyword-spotting pipeline end to end
#   make test   installs and runs the test suite
# Every pip install uses constraints.txt (torch pinned to the 2.13.0 CPU build).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(VENV)/bin/pip
APT_PACKAGES := espeak-ng sox libsox-fmt-all openssh-server openssh-client socat gcc make mosquitto openssl
PYTEST_WORKERS ?= 2

.PHONY: help install apt venv firmware demo test lint layering conformance bench clean

help:
	@echo "make demo   - install and run the end-to-end keyword-spotting demo"
	@echo "make test   - install and run the test suite"
	@echo "make bench  - run the benchmarks (tables + bench/results/*.json)"
	@echo "make conformance - 5,000 random graphs through every target's engine"

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
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

firmware:
	$(MAKE) -C firmware_bridge/firmware

install: apt venv firmware

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

clean:
	rm -rf build dist *.egg-info .pytest_cache
	-$(MAKE) -C firmware_bridge/firmware clean
