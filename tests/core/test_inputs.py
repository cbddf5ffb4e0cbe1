"""Input files and input values under hostile conditions (issue 17): the one loader
(neuroplast.arrayfile.load_array), the runtime's checks after the cast to its dtype, and the
CLI's one-line errors and exit codes."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

import neuroplast
from neuroplast.arrayfile import ReadLimits, load_array, read_npz
from neuroplast.bundle import save_bundle
from neuroplast.cli import main
from neuroplast.errors import DataError
from neuroplast.runtime import Runtime

from .factories import snn_graph


def _lying_npy(path, shape=(1 << 40,)):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    path.write_bytes(buf.getvalue() + b"\0" * 64)
    return path


def test_load_array_formats(tmp_path):
    x = np.random.default_rng(0).random((3, 20), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "one.npz", x=x)
    np.savez_compressed(tmp_path / "two.npz", a=x, b=x[0])
    x.astype("<f4").tofile(tmp_path / "x.raw")
    np.testing.assert_array_equal(load_array(tmp_path / "x.npy"), x)
    np.testing.assert_array_equal(load_array(tmp_path / "one.npz"), x)
    np.testing.assert_array_equal(load_array(tmp_path / "two.npz", name="a"), x)
    np.testing.assert_array_equal(load_array(f"{tmp_path}/two.npz:b"), x[0])
    np.testing.assert_array_equal(load_array(tmp_path / "x.raw", shape=(20,)), x)
    np.testing.assert_array_equal(load_array(tmp_path / "x.raw", shape=(60,)), x.ravel())


@pytest.mark.parametrize(
    ("make", "msg"),
    [
        (
            lambda p: _lying_npy(p / "lie.npy"),
            r"lie.npy: header says 4398046511104 bytes, file has 64",
        ),
        (lambda p: (p / "empty.npy").write_bytes(b"") or p / "empty.npy", "empty.npy: empty file"),
        (lambda p: p / "missing.npy", "missing.npy: cannot read input file"),
        (lambda p: p, "not a regular file"),
        (
            lambda p: (p / "t.npy").write_bytes(b"\x93NUMPY\x01\x00junk") and p / "t.npy",
            "bad header",
        ),
        (lambda p: np.save(p / "o.npy", np.array(["a"], dtype="U1")) or p / "o.npy", "not numeric"),
        (lambda p: np.savez(p / "m.npz", a=1, b=2) or p / "m.npz", r"holds arrays \['a', 'b'\]"),
        (lambda p: np.savez(p / "n.npz", a=1) or f"{p}/n.npz:zz", "no array named 'zz'"),
        (lambda p: (p / "r.raw").write_bytes(b"\0" * 7) and p / "r.raw", "not a whole number"),
        (lambda p: (p / "z.npz").write_bytes(b"PK junk") and p / "z.npz", "not a valid npz"),
    ],
)
def test_load_array_refuses_with_the_file_named(tmp_path, make, msg):
    with pytest.raises(DataError, match=msg):
        load_array(make(tmp_path), shape=(20,))


def test_npz_members_are_checked_before_decompressing(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("bomb.npy", "w", force_zip64=True) as f:
            hdr = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                hdr, {"descr": "<f4", "fortran_order": False, "shape": (1 << 22,)}
            )
            f.write(hdr.getvalue() + bytes(1 << 24))
        z.writestr("ok.npy", b"")
    (tmp_path / "b.npz").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="compression ratio .* over the limit"):
        load_array(tmp_path / "b.npz", name="bomb")
    with pytest.raises(DataError, match="bad header"):  # the bomb is skipped, never read
        load_array(tmp_path / "b.npz", name="ok")
    with pytest.raises(DataError, match="decompressed budget"):
        read_npz(buf.getvalue(), "b.npz", ReadLimits(ratio=1e9, total_bytes=1 << 20))
    with pytest.raises(DataError, match="over the input limit"):
        load_array(tmp_path / "b.npz", limits=ReadLimits(file_bytes=100))


def test_values_are_checked_after_the_cast():
    rt = Runtime(snn_graph())
    with pytest.raises(DataError, match="NaN or Inf after the cast to float32"):
        rt.step(np.full(20, 1e39))  # finite in float64, inf in float32
    rt.step(np.full(20, 1e30))  # large but finite in float32: passes
    rti = Runtime(snn_graph(quantized=True), mode="int")
    with pytest.raises(DataError, match="NaN or Inf after the cast"):
        rti.step(np.full(20, 1e39))
    # int mode: integers are codes, range-checked against the input's int8 quantization
    with pytest.raises(DataError, match=r"integer codes must lie in \[-128, 127\]"):
        rti.step(np.full(20, 2**62, dtype=np.int64))
    rti.reset()
    a = rti.step(np.full(20, 127, dtype=np.int64))
    rti.reset()
    b = rti.step(np.full(20, 1e30))  # saturates to +127 (was wrapped to -128)
    np.testing.assert_array_equal(a, b)
    rti.reset()
    c = rti.step(np.full(20, -1e30))
    rti.reset()
    np.testing.assert_array_equal(c, rti.step(np.full(20, -128, dtype=np.int8)))


def test_quantize_saturates_instead_of_wrapping():
    from neuroplast.quant import QuantSpec, quantize

    q = QuantSpec(scale=0.1)
    got = quantize(np.array([1e30, -1e30, 3e38, 12.7, -12.8, 0.04, 0.05], np.float32), q)
    np.testing.assert_array_equal(got, [127, -128, 127, 127, -128, 0, 0])


@pytest.fixture
def bundle(tmp_path):
    return save_bundle(tmp_path / "b", snn_graph())


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("lie.npy", lambda p: _lying_npy(p)),
        ("empty.npy", lambda p: p.write_bytes(b"")),
        ("two.npz", lambda p: np.savez(p, a=np.zeros(20), b=np.zeros(20))),
        ("big.npy", lambda p: np.save(p, np.full(20, 1e39))),
        ("shape.npy", lambda p: np.save(p, np.zeros(7, np.float32))),
        ("nan.raw", lambda p: np.full(20, np.nan, "<f4").tofile(p)),
    ],
)
def test_cli_input_errors_are_one_line_naming_the_file(bundle, tmp_path, capsys, name, make):
    make(tmp_path / name)
    assert main(["run", str(bundle), "--input", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: DataError: ") and name in err
    assert "Traceback" not in err


def test_cli_ok_and_debug_and_internal_errors(bundle, tmp_path, capsys, monkeypatch):
    np.savez(tmp_path / "x.npz", x=np.zeros((3, 20), np.float32))
    assert main(["run", str(bundle), "--input", f"{tmp_path}/x.npz:x", "--json"]) == 0
    capsys.readouterr()
    np.save(tmp_path / "bad.npy", np.zeros(7, np.float32))
    assert main(["--debug", "run", str(bundle), "--input", str(tmp_path / "bad.npy")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: DataError")
    assert main(["info", str(tmp_path / "nothing.zip")]) == 2  # a bundle error names the bundle
    assert "nothing.zip" in capsys.readouterr().err

    import neuroplast.cli as cli

    def boom():
        raise ZeroDivisionError("a bug\nover two lines")

    monkeypatch.setattr(cli, "build_app", boom)
    assert main(["info", "x"]) == 70
    err = capsys.readouterr().err
    assert err == (
        "error: internal error: ZeroDivisionError: a bug | over two lines (rerun with --debug "
        "for the traceback and report it)\n"
    )
    monkeypatch.setenv("NEUROPLAST_DEBUG", "1")
    assert main(["info", "x"]) == 70
    assert "Traceback" in capsys.readouterr().err


def test_run_cli_matches_runtime_on_raw_input(bundle, tmp_path, capsys):
    import json

    x = np.random.default_rng(3).random((5, 20), dtype=np.float32)
    x.tofile(tmp_path / "x.f32")
    assert main(["run", str(bundle), "--input", str(tmp_path / "x.f32"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["output"]
    np.testing.assert_array_equal(np.array(got, np.float32), neuroplast.load(bundle).run(x))
