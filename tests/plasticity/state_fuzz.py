"""Re-signing fuzzer for learned state (shared by test_state_fuzz.py and
bench/plasticity_state_fuzz.py).

A bundle with learned state (pair STDP + HLOP on a Linear layer, a rate threshold on a
LIF with one shared threshold; float and int) is mutated at the array level --
``state.npz`` entries deleted, reshaped, re-typed, filled with NaN/Inf or extreme
counters, JSON entries (generator, layout, guard log) corrupted, unknown entries
added -- or its ``plasticity.json`` rule tree is mutated; the manifest's hashes are
then recomputed, so every mutation reaches the deep validation. Loading must give a
:class:`BundleError` or a working runtime; :meth:`Runtime.load_state` on the raw
state file must give a :class:`RuntimeStateError` or succeed.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

import neuroplast
from neuroplast.bundle import save_bundle
from neuroplast.bundle.format import _sha256
from neuroplast.errors import BundleError, NeuroplastError, RuntimeStateError
from neuroplast.graph import LIF, Graph, Input, Linear, QuantSpec
from neuroplast.plasticity import HLOPParams, PairSTDPParams, PlasticityEngine, RateThresholdParams
from neuroplast.runtime import Runtime

_BASES: dict[str, tuple[dict[str, bytes], dict[str, np.ndarray], Any]] = {}


def _graph(q: bool) -> Graph:
    w = np.random.default_rng(0).uniform(0.0, 0.5, (5, 12)).astype(np.float32)
    return Graph.sequential(
        [
            ("in", Input(shape=(12,), quant=QuantSpec(scale=1.0) if q else None)),
            (
                "fc",
                Linear(
                    weight=w,
                    weight_q=QuantSpec(scale=0.5 / 127, narrow=True) if q else None,
                    out_q=QuantSpec(bits=16, scale=1 / 512) if q else None,
                ),
            ),
            ("lif", LIF(tau_mem=[5e-3], v_th=[0.6])),
        ]
    )


def base(mode: str, tmp: Path) -> tuple[dict[str, bytes], dict[str, np.ndarray], Any]:
    """(zip members, state dict, plasticity dict) of the learned base bundle."""
    if mode not in _BASES:
        g = _graph(mode == "int")
        eng = PlasticityEngine(seed=3)
        eng.attach("fc", PairSTDPParams(eta_plus=0.02, eta_minus=0.02))
        eng.attach("fc", HLOPParams(lr=0.01))
        eng.attach("lif", RateThresholdParams(eta_ip=0.05))
        rt = Runtime(g, mode=mode)
        rt.plasticity = PlasticityEngine.from_dict(eng.to_dict())
        rt.plasticity.validate(rt)
        rt.plasticity.hlop_add_rows("fc", 2, 12)
        rt.learn(True)
        for x in (np.random.default_rng(1).random((30, 12)) < 0.3).astype(np.float32):
            rt.step(x)
        rt.plasticity.log.append({"step": 30, "metric": 0.9, "kept": True})
        sd = rt.state_dict()
        p = save_bundle(tmp / f"base-{mode}.zip", g, mode=mode, plasticity=eng.to_dict(), state=sd)
        with zipfile.ZipFile(p) as z:
            members = {n: z.read(n) for n in z.namelist()}
        _BASES[mode] = (members, sd, eng.to_dict())
    return _BASES[mode]


_DTYPES = ("float16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex64")
_EXTREMES: tuple[Any, ...] = (-1, 2**63 - 1, -(2**63), 1e308, -1e308, 0, 3.5, "x", True, 2**40)
_JSON_VALUES: tuple[Any, ...] = (None, True, -1, 2**70, 1.5, "x", [], {}, [[1]], {"a": None})


def _mutate_json(obj: Any, rnd: random.Random) -> Any:
    """Replace or delete one random entry somewhere in a JSON tree (or the whole tree)."""
    if rnd.random() < 0.15 or not isinstance(obj, (dict, list)) or not obj:
        return rnd.choice(_JSON_VALUES)
    path, cur = [], obj
    while isinstance(cur, (dict, list)) and cur and rnd.random() < 0.8:
        k = rnd.choice(sorted(cur, key=str)) if isinstance(cur, dict) else rnd.randrange(len(cur))
        path.append(k)
        cur = cur[k]
    if not path:
        return rnd.choice(_JSON_VALUES)
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and rnd.random() < 0.3:
        del parent[path[-1]]
    else:
        parent[path[-1]] = rnd.choice(_JSON_VALUES + (rnd.uniform(-1e9, 1e9),))
    return obj


def _mutate_array(a: np.ndarray, rnd: random.Random) -> np.ndarray:
    op = rnd.randrange(7)
    if op == 0:  # another shape
        n = rnd.choice([0, 1, 2, 3, 5, 7, 12, 60])
        shape = rnd.choice([(n,), (n, 2), (), (1, n), (n, 12), (2, n, 1)])
        return np.zeros(shape, a.dtype if a.dtype.kind != "U" else np.float64)
    if op == 1:  # another dtype
        try:
            return a.astype(rnd.choice(_DTYPES))
        except (TypeError, ValueError):
            return np.zeros(3, rnd.choice(_DTYPES))
    if op == 2 and a.dtype.kind == "f" and a.size:  # NaN / Inf
        b = a.copy()
        b.flat[rnd.randrange(b.size)] = rnd.choice([np.nan, np.inf, -np.inf])
        return b
    if op == 3:  # a scalar extreme or a string
        return np.array(rnd.choice(_EXTREMES))
    if op == 4 and a.dtype.kind == "U":  # corrupt JSON text
        try:
            return np.array(json.dumps(_mutate_json(json.loads(str(a)), rnd)))
        except ValueError:
            return np.array("{")
    if op == 5 and a.size:  # huge but finite values
        return np.full(a.shape, rnd.choice([1e300, -1e300, 1e30]), np.float64)
    return np.array(rnd.choice(["", "{", "[]", "null", '{"bit_generator": "PCG64"}']))


def mutate_state(sd: dict[str, np.ndarray], rnd: random.Random) -> dict[str, np.ndarray]:
    d = {k: np.array(v, copy=True) for k, v in sd.items()}
    for _ in range(rnd.randint(1, 3)):
        k = rnd.choice(sorted(d))
        r = rnd.random()
        if r < 0.15:
            del d[k]
        elif r < 0.25:
            d[k + rnd.choice(["x", "/extra", "_"])] = np.zeros(2)
        elif r < 0.3:  # a key of another rule index / kind
            d[k.replace("/0/", "/5/").replace("pair_stdp", "oja")] = np.array(d[k])
        else:
            d[k] = _mutate_array(d[k], rnd)
    return d


def _npz(d: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **d)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    man = json.loads(members["manifest.json"])
    for n in ("weights.npz", "plasticity.json", "state.npz"):
        if n in members:
            man["files"][n] = {"sha256": _sha256(members[n]), "size": len(members[n])}
    members = {**members, "manifest.json": json.dumps(man).encode()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return buf.getvalue()


def one_case(i: int, tmp: Path) -> str:
    """Run fuzz case ``i``; returns the outcome ("refused", "loaded") or raises the
    unexpected exception."""
    rnd = random.Random(i)
    mode = "int" if i % 2 else "float"
    members, sd, plast = base(mode, tmp)
    m = dict(members)
    if rnd.random() < 0.2:
        m["plasticity.json"] = json.dumps(_mutate_json(json.loads(json.dumps(plast)), rnd)).encode()
    else:
        m["state.npz"] = _npz(mutate_state(sd, rnd))
    p = tmp / f"case-{i % 8}.zip"
    p.write_bytes(_zip(m))
    try:
        rt = neuroplast.load(p)
    except BundleError:
        outcome = "refused"
    else:
        outcome = "loaded"
        rt.learn(True)
        try:
            for x in (np.random.default_rng(i).random((3, 12)) < 0.3).astype(np.float32):
                rt.step(x)
        except NeuroplastError:
            outcome = "loaded, learning refused"
    if m["state.npz"] is not members["state.npz"]:
        # the same state through Runtime.load_state: RuntimeStateError or a clean load
        sp = tmp / f"state-{i % 8}.npz"
        sp.write_bytes(m["state.npz"])
        rt2 = Runtime(_graph(mode == "int"), mode=mode)
        rt2.plasticity = PlasticityEngine.from_dict(plast)  # the state is what is hostile
        w = rt2.params["fc"]["weight"].copy()
        try:
            rt2.load_state(sp)
        except RuntimeStateError:
            if not np.array_equal(rt2.params["fc"]["weight"], w):
                raise AssertionError(f"case {i}: a refused state changed the weights") from None
    return outcome
