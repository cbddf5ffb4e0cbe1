"""neuroplast.boards: board profiles, fit/cost estimates, serial auto-detection, SSH deploy, serve.

Profiles are TOML data files (``boards/profiles/<name>.toml``), validated on load and returned as
frozen dataclasses by :func:`load_profile`. :func:`fit` estimates memory, ops, latency and energy of
a bundle on a board. :func:`deploy` installs a bundle on a Linux board over SSH; :func:`serve` runs a
bundle on a stream with on-device learning. Everything not in ``__all__`` is private.
"""

from __future__ import annotations

from neuroplast.boards.profile import (
    BoardProfile,
    CostModel,
    CpuSpec,
    MemorySpec,
    NeuromorphicLimits,
    SerialSpec,
    list_profiles,
    load_profile,
    parse_profile,
)

__all__ = [
    "BoardProfile",
    "CostModel",
    "CpuSpec",
    "MemorySpec",
    "NeuromorphicLimits",
    "SerialSpec",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "fit",
    "FitReport",
    "detect_boards",
    "DetectedBoard",
    "deploy",
    "DeployTarget",
    "DeployResult",
    "serve",
]


def __getattr__(name: str):
    # Lazy: fit/deploy/serve pull in the runtime; keep `import neuroplast.boards` cheap.
    if name in ("fit", "FitReport"):
        from neuroplast.boards import estimate as _fit

        return getattr(_fit, name)
    if name in ("detect_boards", "DetectedBoard"):
        from neuroplast.boards import detect as _detect

        return getattr(_detect, name)
    if name in ("deploy", "DeployTarget", "DeployResult"):
        from neuroplast.boards import ssh_deploy as _deploy

        return getattr(_deploy, name)
    if name == "serve":
        from neuroplast.boards import stream as _serve

        return _serve.serve
    raise AttributeError(f"module 'neuroplast.boards' has no attribute {name!r}")
