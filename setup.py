"""Maps the top-level folders into the one ``neuroplast`` namespace and builds the optional
compiled kernels.

pyproject.toml holds the metadata; this file computes the package list, because
setuptools' declarative ``packages.find`` cannot rename folders (``sdk`` -> ``neuroplast``),
and declares ``neuroplast._native``: the firmware's C99 kernels
(``firmware_bridge/firmware/np_kernels.c``, the same source the boards build) plus the
host glue ``sdk/_native.c``. The extension is optional: when no C compiler is present or
the build fails, the install goes on and the runtime uses numpy (``neuroplast info
--backend`` says which). ``NEUROPLAST_NO_NATIVE=1`` skips the build.
"""

import os

from setuptools import Extension, find_packages, setup

PACKAGE_DIR = {
    "neuroplast": "sdk",
    "neuroplast.quantize": "quantize",
    "neuroplast.firmware_bridge": "firmware_bridge",
    "neuroplast.apps": "apps",
    "neuroplast.boards": "boards",
}

packages = []
for name, folder in PACKAGE_DIR.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

ext_modules = []
if os.environ.get("NEUROPLAST_NO_NATIVE", "") in ("", "0"):
    ext_modules.append(
        Extension(
            "neuroplast._native",
            sources=["sdk/_native.c", "firmware_bridge/firmware/np_kernels.c"],
            include_dirs=["firmware_bridge/firmware"],
            # NP_HOST_CLONES: the firmware's loop kernels get x86-64 level clones (np_kernels.h)
            define_macros=[("NP_HOST_CLONES", "1")],
            depends=["firmware_bridge/firmware/np_kernels.h"],
            # -ffp-contract=off: no fused multiply-adds, so float kernels round as numpy does
            # -flto: the firmware's requantization inlines into the host's kernel loops
            extra_compile_args=["-O3", "-std=c99", "-ffp-contract=off", "-flto"],
            extra_link_args=["-O3", "-flto"],
            optional=True,
        )
    )

setup(packages=packages, package_dir=PACKAGE_DIR, ext_modules=ext_modules)
