"""Event files: faery reads and writes the camera formats, checked against other
libraries' writers and readers (expelliarmus for EVT 2.0, dv-processing for AEDAT4) and
against words hand-assembled from the Prophesee EVT 3.0 spec; numpy containers round trip."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion import EVENT_DTYPE, make_events, read_events, write_events
from neuroplast.errors import DataError

pytest.importorskip("faery")
SIZE = (64, 48)


def _events(n=3000, t_max=300_000, size=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    if t_max > 1 << 24:  # an event on each side of the 24-bit time-base wrap
        i = np.searchsorted(t, 1 << 24)
        t[i - 1], t[i] = (1 << 24) - 1, 1 << 24
    return make_events(
        t, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n)
    )


def _canon(ev):
    """Order within one microsecond is the encoder's choice: compare sorted."""
    return ev[np.lexsort((ev["x"], ev["p"], ev["y"], ev["t"]))]


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


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".raw", ".aedat4", ".dat", ".es"])
def test_every_format_round_trips(tmp_path, suffix):
    ev = _events(n=20_000, t_max=20_000_000)  # EVT 3.0: crosses a 24-bit time-base wrap
    labels = np.arange(7)
    write_events(tmp_path / f"a{suffix}", ev, SIZE, labels=labels)
    back, size = read_events(tmp_path / f"a{suffix}")
    assert np.array_equal(_canon(back), _canon(ev))
    assert size == (None if suffix == ".npy" else SIZE)


def test_evt2_against_expelliarmus(tmp_path):
    ex = pytest.importorskip("expelliarmus")
    ev = _events(t_max=40_000_000, seed=1)
    write_events(tmp_path / "a.raw", ev, SIZE, version="evt2")
    ref = ex.Wizard(encoding="evt2", fpath=str(tmp_path / "a.raw")).read()
    got = make_events(ref["t"], ref["x"], ref["y"], ref["p"])
    assert np.array_equal(_canon(got), _canon(ev))
    arr = np.zeros(ev.size, dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1")])
    for k in "txyp":
        arr[k] = ev[k]
    ex.Wizard(encoding="evt2").save(str(tmp_path / "b.raw"), arr)
    back, _ = read_events(tmp_path / "b.raw", SIZE)  # expelliarmus writes no geometry
    assert np.array_equal(back, ev)


def test_aedat4_against_dv_processing(tmp_path):
    dv = pytest.importorskip("dv_processing")
    ev = _events(n=2000, seed=2)
    store = dv.EventStore()
    for e in ev:
        store.push_back(int(e["t"]), int(e["x"]), int(e["y"]), bool(e["p"]))
    w = dv.io.MonoCameraWriter(
        str(tmp_path / "a.aedat4"), dv.io.MonoCameraWriter.EventOnlyConfig("np", SIZE)
    )
    w.writeEvents(store)
    del w
    back, size = read_events(tmp_path / "a.aedat4")
    assert size == SIZE and np.array_equal(back, ev)
    write_events(tmp_path / "b.aedat4", ev, SIZE)
    rec = dv.io.MonoCameraRecording(str(tmp_path / "b.aedat4"))
    assert tuple(rec.getEventResolution()) == SIZE
    got = []
    while (batch := rec.getNextEventBatch()) is not None:
        got.append(batch.numpy())
    got = np.concatenate(got)
    assert np.array_equal(got["timestamp"], ev["t"])
    assert np.array_equal(got["x"], ev["x"]) and np.array_equal(got["y"], ev["y"])
    assert np.array_equal(got["polarity"].astype(bool), ev["p"])
    data = (tmp_path / "a.aedat4").read_bytes()
    (tmp_path / "t.aedat4").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t.aedat4"):
        read_events(tmp_path / "t.aedat4")


def _raw(path, words, header=b"% evt 3.0\n% format EVT3;width=64;height=48\n% end\n"):
    path.write_bytes(header + np.asarray(words, "<u2").tobytes())
    return path


def test_evt3_spec_words(tmp_path):
    # hand-assembled from the Prophesee EVT 3.0 spec (types in bits 15..12)
    words = [
        0x8FF0,  # TIME_HIGH 0xFF0: t = 0xFF0 << 12
        0x6010,  # TIME_LOW 16
        0x0005,  # ADDR_Y y=5
        0x2803,  # ADDR_X pol=1 x=3
        0x3010,  # VECT_BASE_X pol=0 x=16
        0x4005,  # VECT_12 bits 0, 2 -> x=16, 18; base -> 28
        0x5081,  # VECT_8 bits 0, 7 -> x=28, 35; base -> 36
        0xA000,  # EXT_TRIGGER: not a CD event
        0x8FFF,  # TIME_HIGH 0xFFF
        0x8000,  # ... wraps to 0: + 2^24
        0x6002,
        0x2001,  # pol=0 x=1
    ]
    ev, size = read_events(_raw(tmp_path / "g.raw", words))
    t1, t2 = (0xFF0 << 12) | 16, (1 << 24) | 2
    assert size == SIZE
    assert ev["t"].tolist() == [t1] * 5 + [t2]
    assert ev["x"].tolist() == [3, 16, 18, 28, 35, 1]
    assert ev["y"].tolist() == [5] * 6
    assert ev["p"].tolist() == [True, False, False, False, False, False]


def test_evt3_keep_alive_time_words_do_not_count_as_overflows(tmp_path):
    # Real Gen4 recordings repeat TIME_HIGH about every ms followed by a TIME_LOW up to
    # ~12 us ahead of the events that follow (seen in a camera file: ..., 799, TIME_HIGH,
    # 811, 800, 801, ...). A decoder that counts every decreasing TIME_LOW as a 4096-us
    # overflow drifts by 4096 us each time; the spec time of these events is 800, 801.
    words = [0x8B2D, 0x6317, 0x0007, 0x2005, 0x8B2D, 0x632B, 0x6320, 0x2006, 0x6321, 0x2007]
    ev, _ = read_events(_raw(tmp_path / "k.raw", words))
    spec = (0xB2D << 12) + np.array([0x317, 0x320, 0x321])
    assert np.all(np.diff(ev["t"]) >= 0)
    assert np.all((ev["t"] >= spec) & (ev["t"] <= spec[0] + 0x14))  # kept monotonic, no jump


def test_bad_files_and_arguments(tmp_path):
    ev = _events(n=100)
    write_events(tmp_path / "a.raw", ev, SIZE, version="evt2")
    data = (tmp_path / "a.raw").read_bytes()
    (tmp_path / "t.raw").write_bytes(data[:-1])
    with pytest.raises(DataError, match=rf"incomplete 32-bit word at byte offset {len(data) - 4}"):
        read_events(tmp_path / "t.raw")
    nosize = _raw(tmp_path / "n.raw", [0x8001, 0x6001, 0x0001, 0x2001], b"% evt 3.0\n% end\n")
    with pytest.raises(DataError, match="pass the sensor size"):
        read_events(nosize)
    assert read_events(nosize, (4, 4))[1] == (4, 4)
    _raw(tmp_path / "u.raw", [0x8001], b"% camera x\n% end\n")
    with pytest.raises(DataError, match="names no EVT"):
        read_events(tmp_path / "u.raw")
    write_events(tmp_path / "a.npz", ev, SIZE)
    d = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(d[: len(d) - 30])
    with pytest.raises(DataError, match="truncated npz"):
        read_events(tmp_path / "t.npz")
    np.save(tmp_path / "a.npy", ev)
    d = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(d[:-5])
    with pytest.raises(DataError, match="truncated .npy"):
        read_events(tmp_path / "t.npy")
    with pytest.raises(DataError, match="does not exist"):
        read_events(tmp_path / "missing.raw")
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(DataError, match="unknown event file type"):
        read_events(tmp_path / "x.txt")
    with pytest.raises(DataError, match="timestamps decrease"):
        write_events(tmp_path / "d.raw", ev[::-1], SIZE)
    with pytest.raises(DataError, match="outside"):
        write_events(tmp_path / "o.raw", ev, (8, 8))
    with pytest.raises(DataError, match="evt2.1"):
        write_events(tmp_path / "v.raw", ev, SIZE, version="evt2.1")
    sparse = make_events([0, (1 << 24) - 9000, (1 << 24) + 50], [1, 2, 3], [1, 1, 1], [1, 0, 1])
    with pytest.raises(DataError, match="write EVT 2.0"):  # faery's EVT 3.0 would lose time
        write_events(tmp_path / "s.raw", sparse, SIZE)
    write_events(tmp_path / "s.raw", sparse, SIZE, version="evt2")
    assert np.array_equal(read_events(tmp_path / "s.raw")[0], sparse)
    # Event Stream pads the time from 0 (one byte per 127 us): epoch timestamps would take
    # terabytes, so the writer refuses them up front; the size model is the file's own
    late = make_events([0, 10**6], [1, 2], [1, 1], [1, 0])
    write_events(tmp_path / "l.es", late, SIZE)
    assert abs((tmp_path / "l.es").stat().st_size - 10**6 / 127) < 100
    epoch = make_events([1_733_300_000_000_000], [1], [1], [1])
    with pytest.raises(DataError, match="subtract the first timestamp"):
        write_events(tmp_path / "e.es", epoch, SIZE)
    assert not (tmp_path / "e.es").exists()
