"""Errors of the board link, all subclasses of :class:`neuroplast.errors.BridgeError`."""

from __future__ import annotations

from neuroplast.errors import BridgeError

__all__ = [
    "BridgeError",
    "BridgeTimeout",
    "FramingError",
    "CRCError",
    "ProtocolVersionError",
    "ProtocolError",
    "DeviceError",
    "ModelImageError",
    "FirmwareBuildError",
]


class BridgeTimeout(BridgeError):
    """No valid reply within the timeout after all retries."""


class FramingError(BridgeError):
    """A frame could not be decoded (COBS error, bad length, oversized)."""


class CRCError(FramingError):
    """A frame's CRC-32 did not match its contents."""


class ProtocolVersionError(BridgeError):
    """Host and board speak different protocol versions."""


class ProtocolError(BridgeError):
    """A reply was well-formed but not what the protocol allows here."""


class DeviceError(BridgeError):
    """The board answered NACK with an error code.

    Attributes: ``code`` (int), ``code_name`` (str), ``request`` (message type name),
    ``detail`` (the board's text).
    """

    def __init__(self, code: int, request: str, detail: str = "") -> None:
        from neuroplast.firmware_bridge.spec import error_name

        self.code = code
        self.code_name = error_name(code)
        self.request = request
        self.detail = detail
        msg = f"board rejected {request}: {self.code_name} ({code})"
        super().__init__(msg + (f": {detail}" if detail else ""))


class ModelImageError(BridgeError):
    """A model cannot be turned into a board image (unsupported layer, bad shape)."""


class FirmwareBuildError(BridgeError):
    """The C reference firmware failed to compile or start."""
