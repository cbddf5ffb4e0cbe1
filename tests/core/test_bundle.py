import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuroplast
from neuroplast.bundle import load_bundle, save_bundle
from neuroplast.bundle.format import _sha256
from neuroplast.errors import BundleError

from .factories import snn_graph, spikes


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_bundle_roundtrip_runs_identically(tmp_path, suffix):
    g = snn_graph(quantized=True, delays=True)
    p = save_bundle(
        tmp_path / f"b{suffix}", g, mode="int", preprocessing={"mel": 40}, meta={"app": "t"}
    )
    rt = neuroplast.load(p)
    assert rt.mode == "int"
    from neuroplast.runtime import Runtime

    x = spikes()
    np.testing.assert_array_equal(rt.run(x), Runtime(g, mode="int").run(x))
    b = load_bundle(p)
    assert b.preprocessing == {"mel": 40} and b.meta == {"app": "t"}


def test_bundle_with_state(tmp_path):
    from neuroplast.runtime import Runtime

    g = snn_graph()
    rt = Runtime(g)
    rt.run(spikes(t=5))
    rt.params["fc2"]["weight"] *= 2
    p = save_bundle(tmp_path / "b.zip", g, state=rt.state_dict())
    rt2 = neuroplast.load(p)
    np.testing.assert_array_equal(rt2.params["fc2"]["weight"], rt.params["fc2"]["weight"])


def _zip_members(path):
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write_zip(path, members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    path.write_bytes(buf.getvalue())


def test_tampered_weights_named(tmp_path):
    p = save_bundle(tmp_path / "b.zip", snn_graph())
    m = _zip_members(p)
    w = bytearray(m["weights.npz"])
    w[200] ^= 0xFF
    m["weights.npz"] = bytes(w)
    _write_zip(p, m)
    with pytest.raises(BundleError, match="weights.npz: sha256"):
        load_bundle(p)


def test_truncated_and_missing(tmp_path):
    p = save_bundle(tmp_path / "b.zip", snn_graph())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError):
        load_bundle(p)
    d = save_bundle(tmp_path / "dir", snn_graph())
    (d / "weights.npz").unlink()
    with pytest.raises(BundleError, match="weights.npz: missing"):
        load_bundle(d)


def test_pickle_array_rejected(tmp_path):
    p = save_bundle(tmp_path / "b.zip", snn_graph())
    m = _zip_members(p)
    buf = io.BytesIO()
    np.savez(buf, **{"fc1/weight": np.array([{"x": 1}], dtype=object)})
    m["weights.npz"] = buf.getvalue()
    man = json.loads(m["manifest.json"])
    man["files"]["weights.npz"] = {
        "sha256": _sha256(m["weights.npz"]),
        "size": len(m["weights.npz"]),
    }
    m["manifest.json"] = json.dumps(man).encode()
    _write_zip(p, m)
    with pytest.raises(BundleError, match="not allowed"):
        load_bundle(p)


def test_extra_member_and_symlink(tmp_path):
    p = save_bundle(tmp_path / "b.zip", snn_graph())
    m = _zip_members(p)
    m["../evil.py"] = b"import os"
    _write_zip(p, m)
    with pytest.raises(BundleError, match="unexpected member"):
        load_bundle(p)
    d = save_bundle(tmp_path / "d", snn_graph())
    (d / "plasticity.json").unlink()
    (d / "plasticity.json").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match="symbolic links"):
        load_bundle(d)


def test_oversized_header_claims_rejected(tmp_path):
    """An .npy header claiming a huge shape must not allocate; it is a BundleError."""
    p = save_bundle(tmp_path / "b.zip", snn_graph())
    m = _zip_members(p)
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        npy, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)}
    )
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("fc1/weight.npy", npy.getvalue() + b"\0" * 16)
    m["weights.npz"] = npz.getvalue()
    man = json.loads(m["manifest.json"])
    man["files"]["weights.npz"] = {
        "sha256": _sha256(m["weights.npz"]),
        "size": len(m["weights.npz"]),
    }
    m["manifest.json"] = json.dumps(man).encode()
    _write_zip(p, m)
    with pytest.raises(BundleError, match="truncated"):
        load_bundle(p)


# ----------------------------------------------------------------------- fuzz

_BASE = {}


def _base(tmp_path_factory):
    if not _BASE:
        d = tmp_path_factory.mktemp("fuzzbase")
        p = save_bundle(d / "b.zip", snn_graph(quantized=True, delays=True), mode="int")
        _BASE["members"] = _zip_members(p)
        _BASE["zip"] = p.read_bytes()
    return _BASE


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=12,
)


def _mutate_json(obj, rnd, value):
    """Replace or delete one random entry somewhere in a JSON tree."""
    path = []
    cur = obj
    for _ in range(rnd.randint(1, 6)):
        if isinstance(cur, dict) and cur:
            k = rnd.choice(sorted(cur))
            path.append(k)
            cur = cur[k]
        elif isinstance(cur, list) and cur:
            k = rnd.randrange(len(cur))
            path.append(k)
            cur = cur[k]
        else:
            break
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if rnd.random() < 0.3 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_structured_manifest_mutations(tmp_path_factory, data):
    """Mutate manifest/plasticity/weights content and re-sign the hashes, so the
    mutation reaches the deep validation (not just the checksum)."""
    base = _base(tmp_path_factory)
    rnd = data.draw(st.randoms(use_true_random=False))
    m = dict(base["members"])
    target = data.draw(
        st.sampled_from(["manifest.json", "manifest.json", "plasticity.json", "weights.npz"])
    )
    if target == "weights.npz":
        w = bytearray(m["weights.npz"])
        for _ in range(data.draw(st.integers(1, 8))):
            w[rnd.randrange(len(w))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            w = w[: rnd.randrange(len(w))]
        m["weights.npz"] = bytes(w)
        man = json.loads(m["manifest.json"])
    else:
        man = json.loads(m["manifest.json"])
        if target == "plasticity.json":
            m["plasticity.json"] = json.dumps(data.draw(json_values)).encode()
        else:
            man = _mutate_json(man, rnd, data.draw(json_values))
    if isinstance(man, dict) and isinstance(man.get("files"), dict):
        for n in ("weights.npz", "plasticity.json"):
            if isinstance(man["files"].get(n), dict):
                man["files"][n] = {"sha256": _sha256(m[n]), "size": len(m[n])}
    m["manifest.json"] = json.dumps(man).encode()
    p = tmp_path_factory.mktemp("f") / "b.zip"
    _write_zip(p, m)
    try:
        rt = neuroplast.load(p)
    except BundleError:
        return
    rt.run(spikes(t=3))  # a bundle that loads must also run


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_raw_byte_mutations(tmp_path_factory, data):
    base = _base(tmp_path_factory)
    raw = bytearray(base["zip"])
    rnd = data.draw(st.randoms(use_true_random=False))
    for _ in range(data.draw(st.integers(1, 16))):
        op = rnd.random()
        i = rnd.randrange(len(raw))
        if op < 0.6:
            raw[i] = rnd.randrange(256)
        elif op < 0.8:
            del raw[i : i + rnd.randint(1, 64)]
        else:
            raw[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
    p = tmp_path_factory.mktemp("r") / "b.zip"
    p.write_bytes(bytes(raw))
    try:
        neuroplast.load(p)
    except BundleError:
        pass
