"""Spec table, generated C header, framing (COBS/CRC/header) and the Python parser."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroplast.errors import BridgeError
from neuroplast.firmware_bridge import gen_header, spec
from neuroplast.firmware_bridge.errors import CRCError, FramingError, ProtocolVersionError
from neuroplast.firmware_bridge.framing import (
    Deframer,
    Frame,
    cobs_decode,
    cobs_encode,
    crc32,
    decode_frame,
    encode_frame,
)

# Wikipedia's COBS examples (canonical encoding)
COBS_VECTORS = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


def test_generated_header_is_current():
    committed = gen_header.header_path().read_text()
    assert committed == gen_header.render(), "run python -m neuroplast.firmware_bridge.gen_header"
    for e in spec.MESSAGES:
        assert f"#define NP_MSG_{e.name}" in committed


def test_protocol_md_tables_are_current():
    text = gen_header.protocol_md_path().read_text()
    assert gen_header.update_protocol_md(text) == text, "run python -m ...gen_header"
    # the worked example in PROTOCOL.md is what the encoder produces
    wire = encode_frame(Frame(type=0x0C, seq=0x1234, payload=b"\x00\xff", flags=1))
    assert wire.hex(" ") in text


def test_spec_codes_are_unique():
    for table in (spec.MESSAGES, spec.ERRORS, spec.FLAGS, spec.LAYER_KINDS, spec.STATS_FIELDS):
        codes = [e.code for e in table]
        assert len(codes) == len(set(codes))


@pytest.mark.parametrize(("raw", "enc"), COBS_VECTORS)
def test_cobs_reference_vectors(raw, enc):
    assert cobs_encode(raw) == enc
    assert cobs_decode(enc) == raw


def test_crc32_check_value():
    # CRC-32/ISO-HDLC check value from the CRC catalogue
    assert crc32(b"123456789") == 0xCBF43926


def test_frame_layout_is_documented_bytes():
    wire = encode_frame(Frame(type=spec.MsgType.PING, seq=0x1234, payload=b"\x00\xff", flags=1))
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    raw = cobs_decode(wire[:-1])
    assert raw[:7] == bytes([1, 0x0C, 1, 0x34, 0x12, 2, 0])
    assert raw[7:9] == b"\x00\xff"
    assert struct.unpack("<I", raw[9:])[0] == zlib.crc32(raw[:9])


def test_decode_rejects_crc_version_and_length():
    good = encode_frame(Frame(type=2, seq=7, payload=b"abc"))[:-1]
    raw = bytearray(cobs_decode(good))
    raw[8] ^= 0x40
    with pytest.raises(CRCError):
        decode_frame(cobs_encode(bytes(raw)))
    v2 = bytearray(cobs_decode(good))
    v2[0] = 2
    v2[-4:] = struct.pack("<I", zlib.crc32(bytes(v2[:-4])))
    with pytest.raises(ProtocolVersionError):
        decode_frame(cobs_encode(bytes(v2)))
    short = bytearray(cobs_decode(good))
    short[5] = 9  # header length disagrees with the bytes present
    with pytest.raises(FramingError):
        decode_frame(cobs_encode(bytes(short)))
    with pytest.raises(FramingError):
        encode_frame(Frame(type=2, seq=1, payload=bytes(spec.MAX_PAYLOAD + 1)))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_cobs_roundtrip(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(enc) == data


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(0, 255),
    st.binary(max_size=spec.MAX_PAYLOAD),
)
def test_frame_roundtrip(mtype, seq, flags, payload):
    f = decode_frame(encode_frame(Frame(mtype, seq, payload, flags))[:-1])
    assert (f.type, f.seq, f.flags, f.payload) == (mtype, seq, flags, payload)


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=600))
def test_python_parser_survives_random_bytes(data):
    """Arbitrary input either decodes to a frame or raises a BridgeError: nothing else."""
    try:
        f = decode_frame(data)
    except BridgeError:
        return
    assert len(f.payload) <= spec.MAX_PAYLOAD


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    st.lists(st.binary(max_size=200), min_size=1, max_size=7),
    st.integers(1, 64),
)
def test_deframer_resyncs_after_garbage(payloads, garbage, chunk):
    """Valid frames separated by garbage (each garbage run ends at a delimiter) all come
    through intact, whatever the read chunking."""
    stream = b""
    for i, p in enumerate(payloads):
        stream += garbage[i % len(garbage)] + b"\x00" + encode_frame(Frame(0x0C, i, p))
    d = Deframer()
    got = []
    for k in range(0, len(stream), chunk):
        for body in d.feed(stream[k : k + chunk]):
            try:
                got.append(decode_frame(body))
            except BridgeError:
                pass
    assert [f.payload for f in got if f.type == 0x0C and f.seq < len(payloads)][
        -len(payloads) :
    ] == payloads


def test_deframer_bounds_memory():
    d = Deframer(max_len=100)
    assert d.feed(b"\x01" * 1000) == []
    assert d.overflows == 1
    frame = encode_frame(Frame(1, 1, b"x"))
    out = d.feed(b"\x00" + frame)
    assert [decode_frame(b).payload for b in out] == [b"x"]


class _NullPort:
    timeout = 1.0

    def close(self) -> None:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x7E, 0x7F, 0x0B, 0x01, 0x33]), st.integers(0, 3), st.binary(max_size=80))
def test_client_survives_hostile_replies(mtype, seq, payload):
    """Whatever a (broken or hostile) board sends, the client returns a reply, ignores
    the frame, or raises a BridgeError -- never anything else."""
    from neuroplast.firmware_bridge.client import Board, Caps

    b = Board(_NullPort(), seq_start=0)
    try:
        b._consider(encode_frame(Frame(mtype, seq, payload))[:-1], 0x0C, 1)
    except BridgeError:
        pass
    try:
        Caps.parse(payload)
    except BridgeError:
        pass
