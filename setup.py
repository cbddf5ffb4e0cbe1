"""Maps the top-level folders into the one ``neuroplast`` namespace.

pyproject.toml holds the metadata; this file only computes the package list, because
setuptools' declarative ``packages.find`` cannot rename folders (``sdk`` -> ``neuroplast``).
"""

from setuptools import find_packages, setup

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

setup(packages=packages, package_dir=PACKAGE_DIR)
