"""neuroplast.firmware_bridge: the board link.

A COBS/CRC-32 framed serial protocol (``PROTOCOL.md``), a host client (:class:`Board`),
a C99 reference firmware with the integer runtime of every layer kind and on-device STDP,
and two boards that run that firmware on a pseudo-terminal: the host build (virtual board)
and the Cortex-M build under QEMU. Public API: the names in
``__all__``; everything else is private. pyserial is imported only when connecting.
"""

from neuroplast.firmware_bridge.client import Board, Caps, LinkCounters
from neuroplast.firmware_bridge.errors import (
    BridgeError,
    BridgeTimeout,
    CRCError,
    DeviceError,
    FirmwareBuildError,
    FramingError,
    ModelImageError,
    ProtocolError,
    ProtocolVersionError,
)
from neuroplast.firmware_bridge.framing import (
    Deframer,
    Frame,
    cobs_decode,
    cobs_encode,
    crc32,
    decode_frame,
    encode_frame,
)
from neuroplast.firmware_bridge.image import ModelImage, build_image, image_from_bundle
from neuroplast.firmware_bridge.proxy import FaultProxy
from neuroplast.firmware_bridge.qemu import QemuBoard
from neuroplast.firmware_bridge.virtual import VirtualBoard, build_firmware

__all__ = [
    "Board",
    "Caps",
    "LinkCounters",
    "BridgeError",
    "BridgeTimeout",
    "CRCError",
    "DeviceError",
    "FirmwareBuildError",
    "FramingError",
    "ModelImageError",
    "ProtocolError",
    "ProtocolVersionError",
    "Deframer",
    "Frame",
    "cobs_decode",
    "cobs_encode",
    "crc32",
    "decode_frame",
    "encode_frame",
    "ModelImage",
    "build_image",
    "image_from_bundle",
    "FaultProxy",
    "VirtualBoard",
    "QemuBoard",
    "build_firmware",
]
