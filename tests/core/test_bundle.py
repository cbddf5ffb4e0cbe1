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


def _write_zip(path, members, compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        for n, b in members.items():
            z.writestr(n, b)
    path.write_bytes(buf.getvalue())


def _resign(m, graph=None):
    """Members with the manifest's hashes (and optionally graph) matching the edited files,
    so an edit reaches the deep validation instead of the checksum."""
    man = json.loads(m["manifest.json"])
    if graph is not None:
        man["graph"] = graph
    for n in ("weights.npz", "plasticity.json", "state.npz"):
        if n in m:
            man["files"][n] = {"sha256": _sha256(m[n]), "size": len(m[n])}
    return {**m, "manifest.json": json.dumps(man).encode()}


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
    _write_zip(p, _resign(m))
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
    _write_zip(p, _resign(m))
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


# ------------------------------------------------------------ hostile bundles (issue 17)


def _conv_graph():
    from neuroplast.graph import Conv2d, Flatten, Graph, Input, Linear, MaxPool2d

    rng = np.random.default_rng(0)
    return Graph.sequential(
        [
            ("in", Input(shape=(2, 8, 8))),
            (
                "conv",
                Conv2d(weight=rng.normal(size=(4, 2, 3, 3)).astype(np.float32), padding=(1, 1)),
            ),  # fmt: skip
            ("pool", MaxPool2d(kernel=(2, 2), stride=(2, 2))),
            ("flat", Flatten()),
            ("fc", Linear(weight=rng.normal(size=(3, 64)).astype(np.float32))),
        ]
    )


def _deflated_npz(arrays: dict, big: dict | None = None) -> bytes:
    """An npz with deflated members; ``big`` maps a name to (shape) of an all-zero float32
    array written in pieces (a compact zip bomb: ~1000:1)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for k, v in arrays.items():
            z.writestr(f"{k}.npy", _npy(np.asarray(v)))
        for k, shape in (big or {}).items():
            with z.open(f"{k}.npy", "w", force_zip64=True) as f:
                hdr = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    hdr, {"descr": "<f4", "fortran_order": False, "shape": shape}
                )
                f.write(hdr.getvalue())
                left = int(np.prod(shape)) * 4
                chunk = bytes(1 << 22)
                while left:
                    f.write(chunk[: min(left, len(chunk))])
                    left -= min(left, len(chunk))
    return buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def _weights(p) -> dict:
    with np.load(io.BytesIO(_zip_members(p)["weights.npz"])) as z:
        return {k: z[k] for k in z.files}


def test_nested_zip_bomb_is_refused_before_decompressing(tmp_path):
    """The issue's case: weights.npz inside the bundle holding deflated arrays of zeros
    (here 4 MB in 4 kB; the bench builds the 3 GB one). Every member at every level is ratio-checked."""
    p = save_bundle(tmp_path / "b.zip", snn_graph())
    m = _zip_members(p)
    w = _weights(p)
    m["weights.npz"] = _deflated_npz({k: v for k, v in w.items() if k != "fc1/weight"},
                                     big={"fc1/weight": (16, 1 << 16)})  # fmt: skip
    assert len(m["weights.npz"]) < 1 << 20
    _write_zip(p, _resign(m))
    with pytest.raises(BundleError, match=r"weights.npz: array 'fc1/weight'.*compression ratio"):
        load_bundle(p)
    # an array the graph never uses is refused by name, without being decompressed
    m["weights.npz"] = _deflated_npz(w, big={"unused/bomb": (1 << 22,)})
    _write_zip(p, _resign(m))
    with pytest.raises(BundleError, match="array 'unused/bomb' is not used"):
        load_bundle(p)
    m["weights.npz"] = _deflated_npz({**w, "extra": np.zeros(3, np.float32)})
    _write_zip(p, _resign(m))
    with pytest.raises(BundleError, match="array 'extra' is not used"):
        load_bundle(p)


def test_total_decompressed_budget_covers_every_level(tmp_path):
    g = snn_graph()
    p = save_bundle(tmp_path / "b", g)
    need = sum(f.stat().st_size for f in p.iterdir()) + sum(a.nbytes for a in _dir_weights(p))
    load_bundle(p, limits={"total_bytes": need + 4096})  # fits, with the npy headers
    with pytest.raises(BundleError, match=r"past its decompressed budget of \d+ bytes"):
        load_bundle(p, limits={"total_bytes": need // 2})
    with pytest.raises(BundleError, match="unknown bundle limit"):
        load_bundle(p, limits={"total": 1})
    assert str(p) in str(pytest.raises(BundleError, load_bundle, p, {"total_bytes": 10}).value)


def _dir_weights(p):
    with np.load(p / "weights.npz") as z:
        return [z[k] for k in z.files]


def _graph_edit(tmp_path, node: str, **fields):
    p = save_bundle(tmp_path / "g.zip", _conv_graph())
    m = _zip_members(p)
    gd = json.loads(m["manifest.json"])["graph"]
    gd["nodes"][node].update(fields)
    _write_zip(p, _resign(m, graph=gd))
    return p


@pytest.mark.parametrize(
    ("node", "fields", "msg"),
    [
        ("conv", {"stride": [0, 1]}, r"stride \(0, 1\) must be >= 1"),
        ("conv", {"dilation": [0, 1]}, r"dilation \(0, 1\) must be >= 1"),
        ("conv", {"dilation": [-2, 1]}, "dilation .* must be >= 1"),
        ("conv", {"padding": [-1, 0]}, "padding .* must be >= 0"),
        ("conv", {"padding": [100000, 100000]}, "padding 100000 is larger than the input size"),
        ("conv", {"padding": [9, 9]}, "padding 9 is larger than the input size 8 and the kernel"),
        ("conv", {"dilation": [6000, 6000], "padding": [6000, 6000]}, "holds 288384128 values"),
        ("conv", {"dilation": [1000, 1000], "padding": [8, 8]}, "spans 2001"),  # kernel vs input
        ("conv", {"stride": [1, 1, 1]}, "stride must have 2 entries"),
        ("conv", {"groups": 3}, "groups 3 must be >= 1 and divide"),
        ("conv", {"groups": 0}, "groups 0"),
        ("pool", {"padding": [2, 2]}, r"larger than \(1, 1\)"),
        ("pool", {"stride": [0, 2]}, "stride .* must be >= 1"),
        ("pool", {"kernel": [20, 2]}, "kernel 20 .* spans 20, more than the padded input 8"),
    ],
)
def test_every_geometry_field_is_validated_at_load(tmp_path, node, fields, msg):
    with pytest.raises(BundleError, match=msg) as ei:
        load_bundle(_graph_edit(tmp_path, node, **fields))
    assert f"node {node!r}" in str(ei.value) and "g.zip" in str(ei.value)


def test_runtime_memory_of_the_geometry_is_bounded(tmp_path):
    from neuroplast.graph import LIF, Delay, Graph, Input

    huge = Graph.sequential(
        [("in", Input(shape=(1 << 29,))), ("lif", LIF(tau_mem=np.float32(0.01), v_th=1.0))]
    )
    p = save_bundle(tmp_path / "huge.zip", huge)  # a few hundred bytes on disk
    assert p.stat().st_size < 4096
    with pytest.raises(BundleError, match="over the runtime limit"):
        load_bundle(p)
    deep = Graph.sequential([("in", Input(shape=(8192,))), ("d", Delay(delay=np.int32(65535)))])
    with pytest.raises(BundleError, match="activations and state"):
        load_bundle(save_bundle(tmp_path / "deep.zip", deep))


def test_state_is_read_under_the_same_limits(tmp_path):
    from neuroplast.errors import RuntimeStateError
    from neuroplast.runtime import Runtime

    g = snn_graph()
    rt = Runtime(g)
    rt.run(spikes(t=3))
    p = save_bundle(tmp_path / "b.zip", g, state=rt.state_dict())
    m = _zip_members(p)
    with np.load(io.BytesIO(m["state.npz"])) as z:
        st = {k: z[k] for k in z.files}
    m["state.npz"] = _deflated_npz(st, big={"param/fc2/bomb": (1 << 21,)})
    _write_zip(p, _resign(m))
    with pytest.raises(BundleError, match=r"state.npz: array 'param/fc2/bomb'.*compression ratio"):
        load_bundle(p)
    (tmp_path / "s.npz").write_bytes(m["state.npz"])  # the same bomb as a serve state file
    with pytest.raises(RuntimeStateError, match="compression ratio"):
        rt.load_state(tmp_path / "s.npz")


def test_a_large_all_zero_state_written_here_loads(tmp_path):
    """save_bundle stores members that would deflate past the loader's ratio limit."""
    from neuroplast.graph import LIF, Graph, Input

    n = 1 << 20
    g = Graph.sequential([("in", Input(shape=(n,))), ("lif", LIF(tau_mem=0.01, v_th=1.0))])
    from neuroplast.runtime import Runtime

    rt = Runtime(g)
    rt.step(np.zeros(n, np.float32))
    p = save_bundle(tmp_path / "z.zip", g, state=rt.state_dict())
    with zipfile.ZipFile(p) as z:
        assert z.getinfo("state.npz").compress_type == zipfile.ZIP_STORED
        assert z.getinfo("manifest.json").compress_type == zipfile.ZIP_DEFLATED
    assert neuroplast.load(p).batch == 1
