"""Event file readers and writers: Prophesee EVT 2.0 / EVT 3.0 raw, AEDAT4, ``.npy``/``.npz``.

Every reader returns an :data:`~neuroplast.apps.motion.events.EVENT_DTYPE` array
sorted as stored in the file (cameras emit in time order). A corrupt or truncated
file raises :class:`~neuroplast.errors.DataError` naming the byte offset at fault.

Formats (little-endian, as written by IMX636/GenX320 sensors by default):

* **EVT 2.0** (docs.prophesee.ai ``encoding_formats/evt2``): 32-bit words, type in
  bits 31..28. ``CD_OFF=0x0``/``CD_ON=0x1``: bits 27..22 timestamp LSBs (6 bits),
  21..11 ``x``, 10..0 ``y``. ``EVT_TIME_HIGH=0x8``: bits 27..0 are ``t >> 6``.
  ``EXT_TRIGGER=0xA``, ``OTHERS=0xE``, ``CONTINUED=0xF`` are skipped.
* **EVT 3.0** (``encoding_formats/evt3``): 16-bit words, type in bits 15..12.
  ``EVT_ADDR_Y=0x0`` (10..0 ``y``), ``EVT_ADDR_X=0x2`` (11 pol, 10..0 ``x``: one
  event), ``VECT_BASE_X=0x3`` (11 pol, 10..0 base ``x``), ``VECT_12=0x4`` /
  ``VECT_8=0x5`` (bit i set = event at ``base+i``; base then advances by 12/8),
  ``EVT_TIME_LOW=0x6`` / ``EVT_TIME_HIGH=0x8`` (lower/upper 12 bits of a 24-bit
  microsecond time base; a decreasing TIME_HIGH means the 24-bit counter wrapped),
  ``CONTINUED_4=0x7``, ``EXT_TRIGGER=0xA``, ``OTHERS=0xE``, ``CONTINUED_12=0xF``.
* Raw files start with ASCII header lines beginning with ``%``; our writers end the
  header with ``% end`` like Metavision does.
* **AEDAT4** (iniVation): ``#!AER-DAT4.0\\r\\n``, a uint32-size-prefixed IOHeader
  flatbuffer, then packets ``(int32 stream_id, uint32 size, payload)`` up to the
  data table. The packet walk (and truncation check) is ours; payload decoding
  (LZ4/ZSTD flatbuffers) is delegated to the ``aedat`` package.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from neuroplast.apps.motion.events import EVENT_DTYPE, make_events, validate_events
from neuroplast.errors import DataError

__all__ = [
    "read_events",
    "write_npz",
    "read_npz",
    "read_npy",
    "encode_evt2",
    "decode_evt2",
    "encode_evt3",
    "decode_evt3",
    "write_raw",
    "read_raw",
    "read_aedat4",
    "aedat4_packets",
]

_EVT2_KNOWN = {0x0, 0x1, 0x8, 0xA, 0xE, 0xF}
_EVT3_KNOWN = {0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xE, 0xF}
_MAX_XY = 2047  # both formats carry 11-bit addresses (sensors up to 2048x2048)


# ---------------------------------------------------------------- raw header
def _split_header(data: bytes) -> tuple[dict[str, str], int]:
    """Parse ``%``-prefixed header lines; return (fields, payload byte offset)."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos : pos + 1] == b"%":
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise DataError(f"raw header line starting at byte offset {pos} is not terminated")
        line = data[pos + 1 : nl].decode("ascii", "replace").strip()
        pos = nl + 1
        if line == "end":
            break
        key, _, val = line.partition(" ")
        fields[key.lower()] = val.strip()
    return fields, pos


def _raw_format(fields: dict[str, str]) -> str | None:
    fmt = fields.get("format", "").upper()
    evt = fields.get("evt", "")
    if fmt.startswith("EVT3") or evt.startswith("3"):
        return "evt3"
    if fmt.startswith("EVT2") or evt.startswith("2"):
        return "evt2"
    return None


def _raw_size(fields: dict[str, str]) -> tuple[int, int] | None:
    fmt = fields.get("format", "")
    kv = dict(p.split("=", 1) for p in fmt.split(";")[1:] if "=" in p)
    if "width" in kv and "height" in kv:
        return int(kv["width"]), int(kv["height"])
    if "geometry" in fields and "x" in fields["geometry"]:
        w, h = fields["geometry"].split("x")
        return int(w), int(h)
    return None


def _raw_header(kind: str, sensor_size: tuple[int, int] | None) -> bytes:
    ver = "2.0" if kind == "evt2" else "3.0"
    lines = [f"% evt {ver}"]
    if sensor_size is not None:
        lines.append(f"% format {kind.upper()};height={sensor_size[1]};width={sensor_size[0]}")
        lines.append(f"% geometry {sensor_size[0]}x{sensor_size[1]}")
    lines.append("% integrator_name neuroplast")
    lines.append("% end")
    return ("\n".join(lines) + "\n").encode("ascii")


def _check_encodable(ev: np.ndarray) -> np.ndarray:
    ev = validate_events(ev)
    if ev.size and (int(ev["x"].max()) > _MAX_XY or int(ev["y"].max()) > _MAX_XY):
        raise DataError("EVT formats hold 11-bit addresses: x and y must be <= 2047")
    if ev.size and int(ev["t"][0]) < 0:
        raise DataError("EVT formats hold unsigned timestamps: t must be >= 0")
    return ev


# ---------------------------------------------------------------- EVT 2.0
def encode_evt2(ev: np.ndarray) -> bytes:
    """Encode time-sorted events as EVT 2.0 words (no header). ``t < 2**34`` us."""
    ev = _check_encodable(ev)
    if ev.size and int(ev["t"][-1]) >= 1 << 34:
        raise DataError("EVT 2.0 holds 34-bit timestamps (t < 2**34 us, about 4.8 h)")
    t = ev["t"].astype(np.uint64)
    high = t >> np.uint64(6)
    new_high = np.ones(ev.size, dtype=bool)
    new_high[1:] = high[1:] != high[:-1]
    cd = (
        (ev["p"].astype(np.uint32) << 28)
        | ((t & np.uint64(63)).astype(np.uint32) << 22)
        | (ev["x"].astype(np.uint32) << 11)
        | ev["y"].astype(np.uint32)
    )
    th = (np.uint32(0x8) << 28) | (high & np.uint64(0x0FFFFFFF)).astype(np.uint32)
    # interleave: a TIME_HIGH word precedes the first event of each new 64 us slot
    n_out = ev.size + int(new_high.sum())
    words = np.empty(n_out, dtype="<u4")
    pos_cd = np.arange(ev.size) + np.cumsum(new_high)
    words[pos_cd] = cd
    words[pos_cd[new_high] - 1] = th[new_high]
    return words.tobytes()


def decode_evt2(payload: bytes, *, base_offset: int = 0) -> np.ndarray:
    """Decode EVT 2.0 words. ``base_offset`` (header length) is added to error offsets."""
    if len(payload) % 4:
        off = base_offset + len(payload) - len(payload) % 4
        raise DataError(f"EVT 2.0 stream truncated: incomplete 32-bit word at byte offset {off}")
    w = np.frombuffer(payload, dtype="<u4")
    typ = w >> 28
    bad = ~np.isin(typ, list(_EVT2_KNOWN))
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"EVT 2.0 stream corrupt: reserved word type 0x{int(typ[i]):X} at byte offset "
            f"{base_offset + 4 * i}"
        )
    is_th = typ == 0x8
    th_val = (w & 0x0FFFFFFF).astype(np.int64)
    # a TIME_HIGH smaller than its predecessor means the 28-bit counter wrapped
    th_seq = th_val[is_th]
    wraps = np.zeros(th_seq.size, dtype=np.int64)
    if th_seq.size > 1:
        wraps[1:] = np.cumsum(th_seq[1:] < th_seq[:-1])
    th_full = th_seq + (wraps << 28)
    last = np.maximum.accumulate(np.where(is_th, np.arange(w.size), -1))
    th_index = np.cumsum(is_th) - 1
    is_cd = typ <= 0x1
    li = last[is_cd]
    high = np.where(li >= 0, th_full[np.maximum(th_index[is_cd], 0)], 0)
    wc = w[is_cd]
    t = (high << 6) | ((wc >> 22) & 63).astype(np.int64)
    return make_events(t, (wc >> 11) & 0x7FF, wc & 0x7FF, (wc >> 28) & 1)


# ---------------------------------------------------------------- EVT 3.0
def encode_evt3(ev: np.ndarray) -> bytes:
    """Encode time-sorted events as EVT 3.0 words (no header).

    Events sharing ``(t, y, p)`` whose ``x`` fall within 12 pixels of a base are
    packed as ``VECT_BASE_X`` + ``VECT_12``; lone events use ``EVT_ADDR_X``. Within
    one microsecond the output order is ``(y, p, x)``, so compare decoded arrays
    after sorting by ``(t, y, p, x)``. TIME_HIGH words are repeated at least every
    ``2**23`` us so that 24-bit wraps stay decodable.
    """
    ev = _check_encodable(ev)
    order = np.lexsort((ev["x"], ev["p"], ev["y"], ev["t"]))
    ev = ev[order]
    t = ev["t"].astype(np.int64).tolist()
    x = ev["x"].astype(np.int64).tolist()
    y = ev["y"].astype(np.int64).tolist()
    p = ev["p"].astype(np.int64).tolist()
    out: list[int] = []
    cur_high_full = -1  # t >> 12, untruncated
    cur_low = -1
    cur_y = -1
    i, n = 0, len(t)
    while i < n:
        ti = t[i]
        hf = ti >> 12
        if hf != cur_high_full:
            if cur_high_full >= 0:
                step = cur_high_full + 2048
                while step < hf:  # keep wraps unambiguous across long gaps
                    out.append(0x8000 | (step & 0xFFF))
                    step += 2048
            out.append(0x8000 | (hf & 0xFFF))
            cur_high_full, cur_low = hf, -1
        if (ti & 0xFFF) != cur_low:
            cur_low = ti & 0xFFF
            out.append(0x6000 | cur_low)
        if y[i] != cur_y:
            cur_y = y[i]
            out.append(0x0000 | cur_y)
        # gather the run with equal (t, y, p) and x within [base, base + 12)
        j = i + 1
        while j < n and t[j] == ti and y[j] == y[i] and p[j] == p[i] and x[j] < x[i] + 12:
            j += 1
        if j - i >= 2:
            mask = 0
            for k in range(i, j):
                mask |= 1 << (x[k] - x[i])
            out.append(0x3000 | (p[i] << 11) | x[i])
            out.append(0x4000 | mask)
        else:
            out.append(0x2000 | (p[i] << 11) | x[i])
        i = j
    return np.asarray(out, dtype="<u2").tobytes()


def _evt3_loop(w, out_t, out_x, out_y, out_p):  # pragma: no cover - jitted when numba exists
    """Decode EVT 3.0 words; return (n_events, error_code, word_index).

    error codes: 0 ok, 1 reserved word type, 2 vector before VECT_BASE_X,
    3 event before EVT_ADDR_Y.
    """
    n = 0
    time_high = -1
    wraps = 0
    time_low = 0
    y = -1
    base_x = -1
    pol = 0
    for i in range(w.shape[0]):
        word = int(w[i])
        typ = word >> 12
        pay = word & 0xFFF
        if typ == 0x8:
            if time_high >= 0 and pay < time_high:
                wraps += 1
            time_high = pay
        elif typ == 0x6:
            time_low = pay
        elif typ == 0x0:
            y = pay & 0x7FF
        elif typ == 0x2:
            if y < 0:
                return n, 3, i
            out_t[n] = (wraps << 24) | (max(time_high, 0) << 12) | time_low
            out_x[n] = pay & 0x7FF
            out_y[n] = y
            out_p[n] = (pay >> 11) & 1
            n += 1
        elif typ == 0x3:
            base_x = pay & 0x7FF
            pol = (pay >> 11) & 1
        elif typ == 0x4 or typ == 0x5:
            if base_x < 0:
                return n, 2, i
            if y < 0:
                return n, 3, i
            width = 12 if typ == 0x4 else 8
            tt = (wraps << 24) | (max(time_high, 0) << 12) | time_low
            for b in range(width):
                if (pay >> b) & 1:
                    out_t[n] = tt
                    out_x[n] = base_x + b
                    out_y[n] = y
                    out_p[n] = pol
                    n += 1
            base_x += width
        elif typ == 0x7 or typ == 0xA or typ == 0xE or typ == 0xF:
            pass
        else:
            return n, 1, i
    return n, 0, -1


_evt3_impl = None


def _evt3_decoder():
    global _evt3_impl
    if _evt3_impl is None:
        try:
            import numba

            _evt3_impl = numba.njit(cache=False, nogil=True)(_evt3_loop)
        except Exception:  # numba missing or broken: the plain loop is the same code
            _evt3_impl = _evt3_loop
    return _evt3_impl


def decode_evt3(payload: bytes, *, base_offset: int = 0) -> np.ndarray:
    """Decode EVT 3.0 words. ``base_offset`` (header length) is added to error offsets."""
    if len(payload) % 2:
        raise DataError(
            f"EVT 3.0 stream truncated: incomplete 16-bit word at byte offset "
            f"{base_offset + len(payload) - 1}"
        )
    w = np.frombuffer(payload, dtype="<u2")
    typ = w >> 12
    cap = int(np.count_nonzero(typ == 0x2) + 12 * np.count_nonzero((typ == 0x4) | (typ == 0x5)))
    out_t = np.empty(cap, np.int64)
    out_x = np.empty(cap, np.int16)
    out_y = np.empty(cap, np.int16)
    out_p = np.empty(cap, np.uint8)
    loop = _evt3_decoder() if w.size > 20000 else _evt3_loop
    n, err, idx = loop(w, out_t, out_x, out_y, out_p)
    if err:
        what = {
            1: f"reserved word type 0x{int(typ[idx]):X}",
            2: "vector event before any VECT_BASE_X",
            3: "CD event before any EVT_ADDR_Y",
        }[err]
        raise DataError(f"EVT 3.0 stream corrupt: {what} at byte offset {base_offset + 2 * idx}")
    return make_events(out_t[:n], out_x[:n], out_y[:n], out_p[:n])


# ---------------------------------------------------------------- raw files
def write_raw(
    path: str | os.PathLike,
    ev: np.ndarray,
    fmt: str = "evt3",
    sensor_size: tuple[int, int] | None = None,
) -> Path:
    """Write a Prophesee ``.raw`` file (``fmt`` = ``"evt2"`` or ``"evt3"``) with a header."""
    fmt = fmt.lower()
    if fmt not in ("evt2", "evt3"):
        raise DataError(f"unknown raw format {fmt!r}; use 'evt2' or 'evt3'")
    body = encode_evt2(ev) if fmt == "evt2" else encode_evt3(ev)
    path = Path(path)
    path.write_bytes(_raw_header(fmt, sensor_size) + body)
    return path


def read_raw(path: str | os.PathLike, fmt: str | None = None) -> tuple[np.ndarray, dict]:
    """Read a Prophesee ``.raw`` file; return ``(events, header_fields)``.

    The format comes from the header (``% evt 3.0`` or ``% format EVT3;...``) unless
    ``fmt`` is given. ``header_fields['sensor_size']`` is ``(width, height)`` when known.
    """
    data = _read_bytes(path)
    fields, off = _split_header(data)
    kind = (fmt or _raw_format(fields) or "").lower()
    if kind not in ("evt2", "evt3"):
        raise DataError(
            f"{path}: raw header names no EVT 2.0/3.0 format; pass fmt='evt2' or 'evt3'"
        )
    dec = decode_evt2 if kind == "evt2" else decode_evt3
    ev = dec(data[off:], base_offset=off)
    info = dict(fields, format_kind=kind, sensor_size=_raw_size(fields))
    return ev, info


# ---------------------------------------------------------------- numpy files
def write_npz(
    path: str | os.PathLike,
    ev: np.ndarray,
    sensor_size: tuple[int, int] | None = None,
    labels: np.ndarray | None = None,
) -> Path:
    """Write events as a compressed ``.npz`` with columns ``t, x, y, p``.

    Optional ``sensor_size`` (width, height) and per-ms ``labels`` are stored alongside.
    """
    ev = validate_events(ev, sensor_size, sorted_time=False)
    extra = {} if sensor_size is None else {"sensor_size": np.asarray(sensor_size, np.int64)}
    if labels is not None:
        extra["labels"] = np.asarray(labels, np.int64)
    path = Path(path)
    with open(path, "wb") as f:
        np.savez_compressed(f, t=ev["t"], x=ev["x"], y=ev["y"], p=ev["p"], **extra)
    return path


def read_npz(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read an ``.npz`` written by :func:`write_npz` (or holding a structured ``events``)."""
    size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                info = zf.getinfo(bad)
                raise DataError(
                    f"{path}: member {bad!r} fails its CRC (data at byte offset "
                    f"{info.header_offset})"
                )
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            ss = tuple(int(v) for v in z["sensor_size"]) if "sensor_size" in keys else None
            if "events" in keys:
                ev = validate_events(z["events"], sorted_time=False)
            elif {"t", "x", "y", "p"} <= keys:
                ev = make_events(z["t"], z["x"], z["y"], z["p"])
            else:
                raise DataError(f"{path}: npz holds {sorted(keys)}, expected t, x, y, p")
    except zipfile.BadZipFile as e:
        raise DataError(
            f"{path}: not a readable npz ({e}); end-of-archive record missing or corrupt "
            f"before byte offset {size}"
        ) from None
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: corrupt npz member ({e})") from None
    return ev, ss


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """Read a structured ``.npy`` event array; check its length against the header."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_hdr = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_hdr(f)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{path}: bad .npy header at byte offset 0 ({e})") from None
        data_off = f.tell()
    need = data_off + int(np.prod(shape)) * dtype.itemsize
    if size < need:
        raise DataError(
            f"{path}: .npy truncated: data ends at byte offset {size}, header promises {need}"
        )
    if dtype.names is None:
        raise DataError(f"{path}: .npy holds a plain {dtype} array, expected structured events")
    arr = np.load(path, allow_pickle=False)
    return validate_events(arr, sorted_time=False)


# ---------------------------------------------------------------- AEDAT4
_AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"


def _fb_field(buf: bytes, table: int, field: int) -> int | None:
    """Absolute offset of flatbuffer field ``field`` of the table at ``table`` (or None)."""
    vt = table - struct.unpack_from("<i", buf, table)[0]
    vt_size = struct.unpack_from("<H", buf, vt)[0]
    slot = 4 + 2 * field
    if slot + 2 > vt_size:
        return None
    rel = struct.unpack_from("<H", buf, vt + slot)[0]
    return table + rel if rel else None


def aedat4_packets(data: bytes) -> tuple[dict, list[tuple[int, int, int]]]:
    """Walk an AEDAT4 file: return (header info, [(byte offset, stream_id, size), ...]).

    Raises :class:`DataError` at the byte offset of a bad magic, header or a packet
    that runs past the end of the file.
    """
    if not data.startswith(_AEDAT4_MAGIC):
        raise DataError("not an AEDAT4 file: magic '#!AER-DAT4.0' missing at byte offset 0")
    p = len(_AEDAT4_MAGIC)
    if len(data) < p + 4:
        raise DataError(f"AEDAT4 truncated: IOHeader size missing at byte offset {p}")
    hsize = struct.unpack_from("<I", data, p)[0]
    hdr_off = p + 4
    if hdr_off + hsize > len(data):
        raise DataError(
            f"AEDAT4 truncated: IOHeader of {hsize} bytes at byte offset {hdr_off} runs past "
            f"the end of the file ({len(data)} bytes)"
        )
    hdr = data[hdr_off : hdr_off + hsize]
    try:
        root = struct.unpack_from("<I", hdr, 0)[0]
        f_comp = _fb_field(hdr, root, 0)
        f_dtp = _fb_field(hdr, root, 1)
        compression = struct.unpack_from("<i", hdr, f_comp)[0] if f_comp else 0
        table_pos = struct.unpack_from("<q", hdr, f_dtp)[0] if f_dtp else -1
    except struct.error:
        raise DataError(f"AEDAT4 IOHeader flatbuffer corrupt at byte offset {hdr_off}") from None
    end = len(data) if table_pos < 0 else table_pos
    if end > len(data):
        end = len(data)  # table promised beyond EOF: packets are checked against EOF
        truncated_table = table_pos
    else:
        truncated_table = None
    packets = []
    off = hdr_off + hsize
    while off < end:
        if off + 8 > end:
            raise DataError(f"AEDAT4 truncated: packet header at byte offset {off} is incomplete")
        sid, size = struct.unpack_from("<iI", data, off)
        if off + 8 + size > end:
            raise DataError(
                f"AEDAT4 truncated or corrupt: packet at byte offset {off} (stream {sid}) "
                f"declares {size} bytes but only {end - off - 8} remain"
            )
        packets.append((off, sid, size))
        off += 8 + size
    if truncated_table is not None:
        raise DataError(
            f"AEDAT4 truncated: file ends at byte offset {len(data)} before its data table "
            f"at byte offset {truncated_table}"
        )
    return {"compression": compression, "data_table_position": table_pos}, packets


def read_aedat4(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read the first event stream of an AEDAT4 file; return ``(events, (width, height))``."""
    data = _read_bytes(path)
    _, packets = aedat4_packets(data)
    try:
        import aedat
    except ImportError:
        raise DataError("reading AEDAT4 needs the 'aedat' package: pip install aedat") from None
    try:
        dec = aedat.Decoder(str(path))
        streams = dec.id_to_stream()
    except Exception as e:
        raise DataError(f"{path}: AEDAT4 IOHeader unreadable near byte offset 14 ({e})") from None
    ev_ids = [sid for sid, s in streams.items() if s.get("type") == "events"]
    if not ev_ids:
        raise DataError(f"{path}: AEDAT4 file holds no event stream")
    sid0 = min(ev_ids)
    size = (int(streams[sid0]["width"]), int(streams[sid0]["height"]))
    chunks = []
    k = 0
    it = iter(dec)
    while True:
        off = packets[k][0] if k < len(packets) else len(data)
        try:
            pkt = next(it)
        except StopIteration:
            break
        except Exception as e:
            raise DataError(
                f"{path}: AEDAT4 packet at byte offset {off} is corrupt ({e})"
            ) from None
        k += 1
        if pkt["stream_id"] == sid0 and "events" in pkt:
            e = pkt["events"]
            chunks.append(make_events(e["t"].astype(np.int64), e["x"], e["y"], e["on"]))
    ev = np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    return ev, size


# ---------------------------------------------------------------- dispatch
def _read_bytes(path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"event file {path} does not exist") from None
    except OSError as e:
        raise DataError(f"cannot read event file {path}: {e}") from None


def read_events(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Read any supported event file by extension; return ``(events, sensor_size or None)``.

    ``.npy``, ``.npz``, ``.raw`` (EVT 2.0/3.0 from the header), ``.aedat4``.
    """
    suffix = Path(path).suffix.lower()
    if not Path(path).exists():
        raise DataError(f"event file {path} does not exist")
    if suffix == ".npy":
        return read_npy(path), None
    if suffix == ".npz":
        return read_npz(path)
    if suffix in (".raw", ".evt2", ".evt3"):
        fmt = suffix[1:] if suffix != ".raw" else None
        ev, info = read_raw(path, fmt)
        return ev, info["sensor_size"]
    if suffix == ".aedat4":
        return read_aedat4(path)
    raise DataError(f"unknown event file type {suffix!r}; use .npy, .npz, .raw or .aedat4")
