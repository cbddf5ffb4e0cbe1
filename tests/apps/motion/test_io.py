"""Event file I/O: round trips, third-party readers/writers, documented golden words, corruption."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion import (
    EVENT_DTYPE,
    decode_evt2,
    decode_evt3,
    encode_evt3,
    make_events,
    read_events,
    write_npz,
    write_raw,
)
from neuroplast.errors import DataError


def _events(n=3000, t_max=300_000, size=(64, 48), seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    return make_events(
        t, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n)
    )


def test_dtype_is_tonic_dtype():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("tonic")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tonic not installed")
    # load tonic/io.py alone: the package __init__ pulls librosa/numba (slow)
    io_path = Path(next(iter(spec.submodule_search_locations))) / "io.py"
    mspec = importlib.util.spec_from_file_location("_tonic_io", io_path)
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    assert EVENT_DTYPE == mod.events_struct


def test_npz_roundtrip_and_npy(tmp_path):
    ev = _events()
    write_npz(tmp_path / "a.npz", ev, (64, 48))
    back, size = read_events(tmp_path / "a.npz")
    assert size == (64, 48) and np.array_equal(back, ev)
    np.save(tmp_path / "a.npy", ev)
    back, _ = read_events(tmp_path / "a.npy")
    assert np.array_equal(back, ev)


def test_evt2_matches_expelliarmus(tmp_path):
    ex = pytest.importorskip("expelliarmus")
    ev = _events(t_max=40_000_000)  # many EVT_TIME_HIGH words
    write_raw(tmp_path / "a.raw", ev, "evt2", (64, 48))
    ref = ex.Wizard(encoding="evt2", fpath=str(tmp_path / "a.raw")).read()
    for k in "txy":
        assert np.array_equal(ref[k].astype(np.int64), ev[k].astype(np.int64))
    assert np.array_equal(ref["p"].astype(bool), ev["p"])
    back, size = read_events(tmp_path / "a.raw")
    assert size == (64, 48) and np.array_equal(back, ev)


def test_evt2_reads_expelliarmus_file(tmp_path):
    ex = pytest.importorskip("expelliarmus")
    ev = _events(seed=3)
    arr = np.zeros(ev.size, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    for k in "txy":
        arr[k] = ev[k]
    arr["p"] = ev["p"]
    ex.Wizard(encoding="evt2").save(str(tmp_path / "b.raw"), arr)
    back, _ = read_events(tmp_path / "b.raw")
    assert np.array_equal(back, ev)


def test_evt3_golden_words():
    # Hand-assembled from the Prophesee EVT 3.0 spec (types in bits 15..12).
    words = [
        0x8001,  # TIME_HIGH = 1 -> t = 1 << 12
        0x6010,  # TIME_LOW = 16
        0x0005,  # ADDR_Y y=5
        0x2803,  # ADDR_X pol=1 x=3
        0x3010,  # VECT_BASE_X pol=0 x=16
        0x4005,  # VECT_12 bits 0, 2 -> x=16, 18; base -> 28
        0x5081,  # VECT_8 bits 0, 7 -> x=28, 35; base -> 36
        0xA000,  # EXT_TRIGGER ignored
        0x8000,  # TIME_HIGH wraps 1 -> 0: +2**24
        0x6002,
        0x2001,  # pol=0 x=1
    ]
    ev = decode_evt3(np.asarray(words, "<u2").tobytes())
    t1 = (1 << 12) | 16
    t2 = (1 << 24) | 2
    assert ev["t"].tolist() == [t1] * 5 + [t2]
    assert ev["x"].tolist() == [3, 16, 18, 28, 35, 1]
    assert ev["y"].tolist() == [5] * 6
    assert ev["p"].tolist() == [True, False, False, False, False, False]


def test_evt3_roundtrip_with_vectors_and_wraps(tmp_path):
    ev = _events(n=4000, t_max=3000)  # dense: many same-(t, y, p) runs -> vectors
    ev2 = _events(n=500, t_max=60_000_000, seed=1)  # 24-bit wraps, long gaps
    for e in (ev, ev2):
        raw = encode_evt3(e)
        order = np.lexsort((e["x"], e["p"], e["y"], e["t"]))
        assert np.array_equal(decode_evt3(raw), e[order])
    words = np.frombuffer(encode_evt3(ev), "<u2")
    assert np.any(words >> 12 == 0x4)  # the vector path was exercised
    write_raw(tmp_path / "c.raw", ev, "evt3", (64, 48))
    back, size = read_events(tmp_path / "c.raw")
    assert size == (64, 48) and back.size == ev.size


def test_aedat4_from_dv_processing(tmp_path):
    dv = pytest.importorskip("dv_processing")
    pytest.importorskip("aedat")
    ev = _events(n=2000)
    store = dv.EventStore()
    for e in ev:
        store.push_back(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"]))
    cfg = dv.io.MonoCameraWriter.EventOnlyConfig("neuroplast", (64, 48))
    w = dv.io.MonoCameraWriter(str(tmp_path / "a.aedat4"), cfg)
    w.writeEvents(store)
    del w
    back, size = read_events(tmp_path / "a.aedat4")
    assert size == (64, 48) and np.array_equal(back, ev)
    data = (tmp_path / "a.aedat4").read_bytes()
    (tmp_path / "t.aedat4").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"byte offset \d+"):
        read_events(tmp_path / "t.aedat4")
    bad = bytearray(data)
    bad[0:4] = b"XXXX"
    (tmp_path / "m.aedat4").write_bytes(bytes(bad))
    with pytest.raises(DataError, match="byte offset 0"):
        read_events(tmp_path / "m.aedat4")


def test_truncated_and_corrupt_raw(tmp_path):
    ev = _events(n=100)
    write_raw(tmp_path / "a.raw", ev, "evt2")
    data = (tmp_path / "a.raw").read_bytes()
    (tmp_path / "t.raw").write_bytes(data[:-1])
    with pytest.raises(DataError, match=rf"byte offset {len(data) - 4}"):
        read_events(tmp_path / "t.raw")
    # a reserved EVT 2.0 type (0x3) in the first payload word
    hdr_len = data.index(b"% end\n") + len(b"% end\n")
    bad = bytearray(data)
    bad[hdr_len + 3] = 0x30
    (tmp_path / "b.raw").write_bytes(bytes(bad))
    with pytest.raises(DataError, match=rf"0x3 at byte offset {hdr_len}"):
        read_events(tmp_path / "b.raw")
    with pytest.raises(DataError, match="byte offset 6"):
        decode_evt3(np.asarray([0x8000, 0x6000, 0x0001, 0x4001], "<u2").tobytes())
    with pytest.raises(DataError, match="byte offset 4"):
        decode_evt2(b"\x00\x00\x00\x80\x01\x02")


def test_truncated_npz_npy_and_bad_input(tmp_path):
    ev = _events(n=500)
    write_npz(tmp_path / "a.npz", ev)
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) - 30])
    with pytest.raises(DataError, match="byte offset"):
        read_events(tmp_path / "t.npz")
    np.save(tmp_path / "a.npy", ev)
    d = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(d[:-5])
    with pytest.raises(DataError, match=rf"byte offset {len(d) - 5}"):
        read_events(tmp_path / "t.npy")
    with pytest.raises(DataError, match="does not exist"):
        read_events(tmp_path / "missing.raw")
    with pytest.raises(DataError, match="unknown event file type"):
        (tmp_path / "x.txt").write_text("1")
        read_events(tmp_path / "x.txt")
    with pytest.raises(DataError, match="timestamps decrease"):
        write_raw(tmp_path / "u.raw", ev[::-1], "evt2")
