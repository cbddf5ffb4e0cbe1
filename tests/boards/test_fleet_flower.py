"""Federated consolidation: a real Flower gRPC server and real client processes on
loopback, with a dropped client, a garbage and a poisoned update; wire format checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")

from neuroplast.boards.fleet.merge import RuntimeMerger, clip_norm, trimmed_mean  # noqa: E402
from neuroplast.boards.fleet.wire import decode, encode, exact, quantize  # noqa: E402
from neuroplast.errors import FleetError  # noqa: E402

from .conftest import free_port  # noqa: E402

pytestmark = pytest.mark.timeout(180)
HERE = Path(__file__).parent


def test_wire_round_trip_and_rejects():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 33)) * rng.random((7, 1)) * 10
    for bits in (8, 16):
        q = quantize(x, bits)
        a, m = decode(encode({"x": q, "n": exact([3, -4])}, {"k": 1}))
        err = np.abs(a["x"].value() - x).max(axis=1)
        assert np.all(err <= q.scale / 2 * 1.0001 + 1e-7)  # analytic bound: half a step
        assert a["n"].value().tolist() == [3, -4] and m == {"k": 1}
    blob = encode({"x": quantize(x)}, {})
    for bad, why in [(blob[:-3], "past the end"), (blob + b"\0", "after the last"),
                     (b"XXXX" + blob[4:], "magic"), (blob[:4] + b"\x09" + blob[5:], "version")]:  # fmt: skip
        with pytest.raises(FleetError, match=why):
            decode(bad)
    q8 = quantize(x)
    codes = q8.codes.copy()
    codes[0, 0] = -128  # outside the narrow range
    with pytest.raises(FleetError, match="outside"):
        decode(encode({"x": type(q8)(codes, q8.scale, 8)}, {}))
    with pytest.raises(FleetError, match="NaN"):
        quantize([np.nan])
    import json
    import struct

    for shape in ([2**40, 2**40], [2**62, 2**62, 4], [-1]):  # crafted headers: no huge allocation
        h = json.dumps(
            {"meta": {}, "arrays": [{"name": "x", "bits": 8, "shape": shape, "scaled": True}]}
        )
        with pytest.raises(FleetError, match="malformed"):
            decode(b"NPFU" + struct.pack("<BI", 1, len(h)) + h.encode() + b"\0" * 64)
    for _ in range(200):  # random bytes never crash the decoder
        with pytest.raises(FleetError):
            decode(rng.integers(0, 256, int(rng.integers(0, 400)), np.uint8).tobytes())


def test_robust_helpers_against_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5))
    ref = np.sort(x, 0)[1:5].mean(0)
    np.testing.assert_allclose(trimmed_mean(x, 1), ref)
    np.testing.assert_allclose(trimmed_mean(x[:2], 1), np.median(x[:2], 0))
    d = rng.standard_normal(50)
    assert np.isclose(np.linalg.norm(clip_norm(d, 0.5)), 0.5)


def test_flower_grpc_fleet_with_drop_garbage_and_poison():
    from neuroplast.boards.fleet.flower import FleetStrategy, serve

    sys.path.insert(0, str(HERE))
    from fleet_device import learner

    addr = f"127.0.0.1:{free_port()}"
    w0, th0 = learner("runtime", 0).snapshot()
    merger = RuntimeMerger(w0, th0, clip=0.5, trim=1)
    faults = ["none", "none", "none", "drop", "garbage", "poison"]
    procs = [subprocess.Popen([sys.executable, str(HERE / "fleet_device.py"), "runtime", str(i), f, addr],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i, f in enumerate(faults)]  # fmt: skip
    try:
        st = serve(
            FleetStrategy(merger, min_clients=6, wait_s=60), addr, rounds=2, round_timeout=60
        )
    finally:
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    r1, r2 = st.log
    assert r1.counts() == {"accepted": 3, "dropped": 1, "malformed": 1, "out_of_range": 1}
    assert r2.counts() == {"accepted": 3, "dropped": 0, "malformed": 1, "out_of_range": 1}
    assert "out of range" in r1.rejected["dev5"]
    assert sorted(r1.accepted) == ["dev0", "dev1", "dev2"]
    assert r1.up_bytes["dev0"] < r1.down_bytes["dev0"]  # int8 up, int16 down
    # independent reference: FedAvg of the clipped honest deltas, recomputed here from the
    # same learners in-process (what each device learned from the same global state)
    ref_w = {k: v.copy() for k, v in w0.items()}
    ref_th = {k: v.copy() for k, v in th0.items()}
    for _ in range(2):
        g = {k: quantize(v, 16) for k, v in {**ref_w, **ref_th}.items()}
        outs = [learner("runtime", i).fit(0, g, {})[0] for i in range(3)]
        for k in ref_w:
            ref_w[k] = g[k].value().astype(np.float64) + np.mean(
                [clip_norm(o[k].value().astype(np.float64), 0.5) for o in outs], axis=0
            )
        for k in ref_th:
            ref_th[k] = trimmed_mean(np.stack([o[k].value() for o in outs]), 1)
    for k in ref_w:
        np.testing.assert_allclose(merger.weights[k], ref_w[k], atol=1e-4 * np.abs(ref_w[k]).max())
    for k in ref_th:
        np.testing.assert_allclose(merger.thetas[k], ref_th[k], atol=1e-4)
