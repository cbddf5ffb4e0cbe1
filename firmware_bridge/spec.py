"""The one table of the board-link protocol: constants, message types and error codes.

Everything else is generated or derived from this module: the firmware's C header
``firmware/protocol_gen.h`` (by :func:`neuroplast.firmware_bridge.gen_header.render`),
the Python client's struct formats and the exception mapping. Change a number here,
run ``python -m neuroplast.firmware_bridge.gen_header``, and a test fails until the
committed header matches.

Byte layout (see ``PROTOCOL.md``)::

    frame   = COBS(header || payload || crc32_le) || 0x00
    header  = version:u8  type:u8  flags:u8  seq:u16le  length:u16le      (7 bytes)
    crc32   = CRC-32/ISO-HDLC (zlib.crc32) over header || payload, little endian
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "PROTOCOL_VERSION",
    "HEADER_FORMAT",
    "HEADER_SIZE",
    "CRC_SIZE",
    "MAX_PAYLOAD",
    "MAX_FRAME",
    "MAX_ENCODED_FRAME",
    "FW_VERSION",
    "MsgType",
    "ErrorCode",
    "Flag",
    "LayerKind",
    "MESSAGES",
    "ERRORS",
    "FLAGS",
    "LAYER_KINDS",
    "CONSTANTS",
    "STATS_FIELDS",
    "IMAGE_MAGIC",
    "IMAGE_VERSION",
    "MAX_LAYERS",
    "MAX_DELAY_DEPTH",
    "MAX_LAYER_SIZE",
    "LEARN_STATE_LAYER",
    "LEARN_MODES",
    "LearnMode",
    "message_name",
    "error_name",
]

PROTOCOL_VERSION = 1
FW_VERSION = (0, 3, 0)  # 0.3: LEARN_ENABLE modes, learning state via GET/SET_STATE
HEADER_FORMAT = "<BBBHH"  # version, type, flags, seq, length
HEADER_SIZE = 7
CRC_SIZE = 4
MAX_PAYLOAD = 2048
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE
# COBS adds one byte per 254 bytes plus one; the delimiter is not counted.
MAX_ENCODED_FRAME = MAX_FRAME + MAX_FRAME // 254 + 2
IMAGE_MAGIC = b"NPMI"
IMAGE_VERSION = 2
MAX_LAYERS = 32  # layers per model image (the reference firmware's static layer table)
MAX_DELAY_DEPTH = 4096  # delay line depth (steps) of DELAY / DELAY_LINEAR
MAX_LAYER_SIZE = 1 << 20  # elements of one layer's output
LEARN_STATE_LAYER = 0xFF  # GET_STATE/SET_STATE "layer" that selects the learning state


@dataclass(frozen=True)
class Entry:
    """One named code of the protocol: its number, name and one-line meaning."""

    code: int
    name: str
    doc: str


# fmt: off
MESSAGES: tuple[Entry, ...] = (
    Entry(0x01, "HELLO", "open a session: reset duplicate detection; reply CAPS"),
    Entry(0x02, "CAPS", "query capabilities without resetting the session"),
    Entry(0x03, "LOAD_BUNDLE", "one chunk of a model image (offset, total, crcs, data)"),
    Entry(0x04, "INFER", "run n steps from reset state, reply all outputs"),
    Entry(0x05, "STREAM", "run n steps continuing the state (dense or event input)"),
    Entry(0x06, "LEARN_ENABLE", "configure on-device integer STDP for a layer; start, stop or resume it"),
    Entry(0x07, "GET_STATE", "read one chunk of a layer's (learned) weights, or of the learning state"),
    Entry(0x08, "SET_STATE", "write one chunk of a layer's weights, or of the learning state"),
    Entry(0x09, "STATS", "read the link and runtime counters"),
    Entry(0x0A, "RESET", "reset neuron state, unload the model, or clear counters"),
    Entry(0x0B, "LOG", "unsolicited text from the board (level, utf-8)"),
    Entry(0x0C, "PING", "echo the payload back (link test, throughput)"),
    Entry(0x7E, "ACK", "success reply: request type, then the result"),
    Entry(0x7F, "NACK", "error reply: request type, error code, utf-8 detail"),
)

ERRORS: tuple[Entry, ...] = (
    Entry(0, "OK", "no error"),
    Entry(1, "CRC", "frame CRC mismatch"),
    Entry(2, "FRAMING", "COBS decoding failed or frame too short/long"),
    Entry(3, "VERSION", "unsupported protocol version"),
    Entry(4, "UNKNOWN_TYPE", "unknown message type"),
    Entry(5, "BAD_LENGTH", "payload length does not match the message"),
    Entry(6, "NO_MODEL", "no model is loaded"),
    Entry(7, "MODEL_INVALID", "model image failed validation"),
    Entry(8, "TOO_LARGE", "object or reply exceeds the board's limits"),
    Entry(9, "CHUNK_ORDER", "chunk offset/total does not continue the transfer"),
    Entry(10, "OBJECT_CRC", "whole-object CRC mismatch after the last chunk"),
    Entry(11, "BAD_ARG", "an argument is out of range"),
    Entry(12, "UNSUPPORTED", "operation or layer kind not supported by this firmware"),
    Entry(13, "INTERNAL", "internal firmware error"),
)

FLAGS: tuple[Entry, ...] = (
    Entry(0x01, "RETRANSMIT", "host: this frame repeats an earlier one with the same seq"),
    Entry(0x02, "UNSOLICITED", "board: not a reply (LOG)"),
    Entry(0x04, "EVENTS", "STREAM/INFER: input is an event list, not dense steps"),
    Entry(0x08, "RESET_STATE", "STREAM: reset neuron state before the first step"),
)

LAYER_KINDS: tuple[Entry, ...] = (
    Entry(1, "LINEAR", "int8 fully connected + requantize"),
    Entry(2, "CONV", "int8 2-D convolution over [C, H, W] (groups, stride, pad, dilation); Conv1d is H = 1"),
    Entry(3, "LIF", "leaky integrate-and-fire (IF: no leak), int64 membrane, spikes out"),
    Entry(4, "LI", "leaky integrator readout, int64 membrane, int32 out"),
    Entry(5, "DELAY", "per-element integer delay (ring buffer)"),
    Entry(6, "DELAY_LINEAR", "fully connected with per-synapse integer delays"),
    Entry(7, "CUBALIF", "current-based LIF: synaptic current then membrane, spikes out"),
    Entry(8, "MAXPOOL", "2-D max pooling over [C, H, W]"),
    Entry(9, "AVGPOOL", "2-D average pooling, padding excluded, rounded half away from zero"),
    Entry(10, "SUMPOOL", "2-D sum pooling, int32 out"),
    Entry(11, "ADD", "element-wise sum of two sources, LiteRT's ADD requantization (the runtime's)"),
    Entry(12, "RELU", "max(x, zero point)"),
    Entry(13, "SCALE", "y = requantize(sign * (x - zp_in)), broadcast per tensor/channel/element"),
    Entry(14, "THRESHOLD", "spike where x > threshold (per tensor/channel/element)"),
)
# fmt: on

# LEARN_ENABLE payload byte 0.
LEARN_MODES: tuple[Entry, ...] = (
    Entry(0, "OFF", "stop learning; weights, traces and generator are kept"),
    Entry(1, "START", "configure (zero traces, seed the generator) and learn"),
    Entry(2, "CONFIGURE", "configure (zero traces, seed the generator), learning stays off"),
    Entry(3, "RESUME", "learn with the current configuration, traces and generator"),
)

# STATS reply: one little-endian u32 per entry, in this order.
STATS_FIELDS: tuple[Entry, ...] = (
    Entry(0, "RX_BYTES", "bytes read from the link"),
    Entry(1, "RX_FRAMES", "frames that decoded with a good CRC"),
    Entry(2, "RX_CRC_ERRORS", "frames dropped for a CRC mismatch"),
    Entry(3, "RX_FRAMING_ERRORS", "frames dropped for bad COBS or length"),
    Entry(4, "RX_OVERFLOWS", "frames dropped for exceeding MAX_ENCODED_FRAME"),
    Entry(5, "RX_DUPLICATES", "requests answered from the reply cache (not re-executed)"),
    Entry(6, "TX_FRAMES", "frames written, including resent replies and logs"),
    Entry(7, "EXECUTED", "requests executed (each at most once)"),
    Entry(8, "NACKS", "error replies sent"),
    Entry(9, "INFER_STEPS", "time steps run by INFER and STREAM"),
    Entry(10, "LEARN_UPDATES", "synapse weight changes made by on-device learning"),
    Entry(11, "MODEL_LOADS", "model images accepted"),
    Entry(12, "PINGS", "PING requests executed"),
    Entry(13, "UPTIME_MS", "milliseconds since the board started"),
    Entry(14, "ARENA_USED", "bytes of the model arena in use (model, state, learning traces)"),
    Entry(15, "STEP_CYCLES", "cycles spent in model steps (the port's counter; 0 = none)"),
)

CONSTANTS: tuple[Entry, ...] = (
    Entry(PROTOCOL_VERSION, "PROTOCOL_VERSION", "protocol version in every header"),
    Entry(HEADER_SIZE, "HEADER_SIZE", "bytes in the fixed header"),
    Entry(CRC_SIZE, "CRC_SIZE", "bytes of CRC-32 after the payload"),
    Entry(MAX_PAYLOAD, "MAX_PAYLOAD", "largest payload in one frame"),
    Entry(MAX_FRAME, "MAX_FRAME", "largest decoded frame (header+payload+crc)"),
    Entry(MAX_ENCODED_FRAME, "MAX_ENCODED_FRAME", "largest COBS-encoded frame, no delimiter"),
    Entry(IMAGE_VERSION, "IMAGE_VERSION", "model image format version"),
    Entry(MAX_LAYERS, "MAX_LAYERS", "layers per model image"),
    Entry(MAX_DELAY_DEPTH, "MAX_DELAY_DEPTH", "deepest delay line (steps)"),
    Entry(MAX_LAYER_SIZE, "MAX_LAYER_SIZE", "elements of one layer's output"),
    Entry(LEARN_STATE_LAYER, "LEARN_STATE_LAYER", "GET/SET_STATE layer id of the learning state"),
    Entry(max(e.code for e in LAYER_KINDS), "LAYER_KIND_MAX", "highest layer kind code"),
    Entry(FW_VERSION[0], "FW_VERSION_MAJOR", "reference firmware version"),
    Entry(FW_VERSION[1], "FW_VERSION_MINOR", "reference firmware version"),
    Entry(FW_VERSION[2], "FW_VERSION_PATCH", "reference firmware version"),
    Entry(len(STATS_FIELDS), "STATS_COUNT", "u32 counters in a STATS reply"),
)


def _enum(name: str, entries: tuple[Entry, ...]):
    import enum

    return enum.IntEnum(name, {e.name: e.code for e in entries}, module=__name__)


MsgType = _enum("MsgType", MESSAGES)
ErrorCode = _enum("ErrorCode", ERRORS)
Flag = _enum("Flag", FLAGS)
LayerKind = _enum("LayerKind", LAYER_KINDS)
LearnMode = _enum("LearnMode", LEARN_MODES)


def message_name(code: int) -> str:
    """Name of a message type code, or ``"0x.."`` if unknown."""
    try:
        return MsgType(code).name
    except ValueError:
        return f"0x{code:02x}"


def error_name(code: int) -> str:
    """Name of an error code, or ``"E<n>"`` if unknown."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"E{code}"
