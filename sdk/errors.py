"""Error hierarchy of neuroplast.

Every error a user can cause (bad input, bad file, bad model, unreachable board)
is raised as a subclass of :class:`NeuroplastError`, with a message that names
what is wrong and, where possible, what to do next. Internal bugs stay ordinary
Python exceptions.
"""

from __future__ import annotations

__all__ = [
    "NeuroplastError",
    "GraphError",
    "BundleError",
    "ExportError",
    "UnsupportedError",
    "BridgeError",
    "BoardError",
    "DataError",
    "PlasticityError",
    "RuntimeStateError",
    "FleetError",
]


class NeuroplastError(Exception):
    """Base class of every error neuroplast raises on purpose."""


class GraphError(NeuroplastError):
    """A graph is malformed: bad shapes, dtypes, dangling edges, unknown node kinds."""


class BundleError(NeuroplastError):
    """A bundle is malformed, truncated, oversized or tampered with.

    The message names the file inside the bundle and the field at fault.
    """


class ExportError(NeuroplastError):
    """A model cannot be exported to the requested format; names the node and why."""


class UnsupportedError(ExportError):
    """A target cannot run a node kind or one of its parameters.

    Raised before any work is done (see :mod:`neuroplast.targets`); the message names the
    node, its kind, the target and what to do instead. ``refusals`` holds every finding.
    """

    def __init__(self, message: str, refusals: tuple = ()) -> None:
        super().__init__(message)
        self.refusals = tuple(refusals)


class BridgeError(NeuroplastError):
    """The serial link to a board failed (timeout, CRC, protocol, device error)."""


class BoardError(NeuroplastError):
    """A board profile is invalid, a board is unknown/unreachable, or a model does not fit."""


class DataError(NeuroplastError):
    """Input data is unusable: wrong shape or dtype, NaN/Inf, corrupt or truncated file."""


class PlasticityError(NeuroplastError):
    """A plasticity rule is misconfigured or attached to a layer it cannot act on."""


class RuntimeStateError(NeuroplastError):
    """Saved runtime state does not match the graph it is loaded into."""


class FleetError(NeuroplastError):
    """A fleet file, fleet host or federated update is unusable (malformed, out of range,
    inconsistent with the global model)."""
