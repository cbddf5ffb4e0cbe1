"""Reliability under hostile conditions (issue 17): what an attacker or a careless user can
throw at neuroplast, and what happens.

1. **Hostile bundles**: named cases (path traversal, symlinks, pickles, lying headers, the
   issue's nested zip bomb of 3 x 1 GB arrays in under 1 MB, unused arrays, every geometry
   field out of range, huge shapes and delays, state bombs) plus fuzz (manifest mutations
   re-signed so they reach deep validation, raw byte flips, random geometry values), each
   run through ``neuroplast run BUNDLE --input x.npy``.
2. **Hostile inputs**: lying/empty/truncated ``.npy``, npz bombs and ambiguous npz, object
   and complex dtypes, 1e39 (float32 inf), NaN, out-of-range integer codes in int mode, a
   2 GB sparse file, random byte mutations, random valid arrays of wrong shapes.
3. **Hostile datagrams and MQTT messages** to a running ``serve`` (subprocess, UDP on
   loopback; a real mosquitto broker started here): random bytes of every size, wrong
   sizes, NaN/inf/3e38, text in f32 mode, forged and replayed HMAC frames, oversize
   messages; then probes must still be answered, and the counters must add up.

Each try is classified: **ok** (valid input, ran), **refused** (one-line error, exit 2, no
traceback; a serve message counted as rejected/dropped), **crashed** (traceback, internal
error, out of memory, exit code outside 0/1/2, serve died), **hang** (no answer in 30 s).
CLI tries run in a worker process with a 4 GiB address-space limit, so a memory bomb shows
as a crash here instead of taking the machine down.

Also measured: **peak memory of the worst bundle** (bundles that fill a 64 MiB decompressed
budget in every way the format allows, loaded in a fresh process; goal <= 2x the budget;
plus the issue's 3 GB nested bomb under the default limits); **a 20 MB stdin line** (peak
RSS of serve); **serve load held** over MQTT (mosquitto): messages/s with none lost and,
above it, every loss counted; **weights unchanged by unauthenticated traffic** (UDP with an
HMAC key configured, and anonymous MQTT), with authenticated frames as the control.

    python bench/reliability.py            # full counts (a few minutes)
    python bench/reliability.py --quick    # small counts (what the test runs)

Writes bench/results/reliability.json and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
KEY = bytes(range(32))
TIMEOUT_S = 30.0
WORKER_AS_LIMIT = 4 << 30
FULL = dict(manifest=400, raw=300, geometry=200, input_fuzz=300, input_shapes=100,
            datagrams=20000, mqtt=5000, load_rates=(500, 1000, 2000, 4000, 8000),
            load_s=3.0, bomb_gb=1.0, npz_entries=200_000, blast=20000)  # fmt: skip
QUICK = dict(manifest=15, raw=15, geometry=15, input_fuzz=15, input_shapes=5, datagrams=300,
             mqtt=150, load_rates=(300,), load_s=1.0, bomb_gb=0.01, npz_entries=0, blast=2000)  # fmt: skip


# ------------------------------------------------------------------ models
def _graphs() -> dict[str, Any]:
    from neuroplast.graph import (
        LIF,
        Conv2d,
        Flatten,
        Graph,
        Input,
        Linear,
        MaxPool2d,
        QuantSpec,
    )  # fmt: skip

    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.5, (32, 16)).astype(np.float32)
    lif = LIF(tau_mem=np.full(32, 0.02, np.float32), v_th=np.ones(32, np.float32))
    snn = Graph.sequential([("in", Input(shape=(16,))), ("fc", Linear(weight=w1)), ("lif", lif)])
    q = QuantSpec(scale=tuple(np.abs(w1).max(1) / 127), axis=0, narrow=True)
    snn_int = Graph.sequential([
        ("in", Input(shape=(16,), quant=QuantSpec(scale=1 / 64))),
        ("fc", Linear(weight=w1, weight_q=q, out_q=QuantSpec(bits=16, scale=1 / 512))),
        ("lif", lif),
    ])  # fmt: skip
    conv = Graph.sequential([
        ("in", Input(shape=(2, 8, 8))),
        ("conv", Conv2d(weight=rng.normal(size=(4, 2, 3, 3)).astype(np.float32), padding=(1, 1))),
        ("pool", MaxPool2d(kernel=(2, 2), stride=(2, 2))),
        ("flat", Flatten()),
        ("fc", Linear(weight=rng.normal(size=(3, 64)).astype(np.float32))),
    ])  # fmt: skip
    return {"snn": snn, "snn_int": snn_int, "conv": conv}


def _plastic(path: Path) -> Path:
    from neuroplast.bundle import save_bundle
    from neuroplast.plasticity import OjaParams, PlasticityEngine

    eng = PlasticityEngine(seed=0)
    eng.attach("fc", OjaParams(lr=0.01))
    return save_bundle(path, _graphs()["snn"], plasticity=eng.to_dict())


# ------------------------------------------------------------------ zip helpers
def _members(p: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(p) as z:
        return {n: z.read(n) for n in z.namelist()}


def _resign(m: dict[str, bytes], graph: Any = None) -> dict[str, bytes]:
    import hashlib

    man = json.loads(m["manifest.json"])
    if graph is not None:
        man["graph"] = graph
    if isinstance(man, dict) and isinstance(man.get("files"), dict):
        for n in ("weights.npz", "plasticity.json", "state.npz"):
            if n in m:
                man["files"][n] = {"sha256": hashlib.sha256(m[n]).hexdigest(), "size": len(m[n])}
    return {**m, "manifest.json": json.dumps(man).encode()}


def _zip(path: Path, m: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        for n, b in m.items():
            z.writestr(n, b)
    return path


def _npy(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def _npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        b, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return b.getvalue()


def _bomb_npz(arrays: dict[str, np.ndarray], zeros: dict[str, int]) -> bytes:
    """An npz with deflated members; ``zeros`` maps names to byte counts of all-zero float32
    arrays streamed through the compressor (about 1000:1, little memory to build)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for k, v in arrays.items():
            z.writestr(f"{k}.npy", _npy(v))
        chunk = bytes(1 << 24)
        for k, nbytes in zeros.items():
            with z.open(f"{k}.npy", "w", force_zip64=True) as f:
                f.write(_npy_header((nbytes // 4,)))
                left = nbytes // 4 * 4
                while left:
                    f.write(chunk[: min(left, len(chunk))])
                    left -= min(left, len(chunk))
    return buf.getvalue()


def _weights(m: dict[str, bytes]) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(m["weights.npz"])) as z:
        return {k: z[k] for k in z.files}


# ------------------------------------------------------------------ hostile bundles
def hostile_bundles(d: Path, n: dict, rng: random.Random) -> list[tuple[str, Path]]:
    """(family, bundle path) for every hostile bundle case."""
    from neuroplast.bundle import save_bundle
    from neuroplast.runtime import Runtime

    g = _graphs()
    base = save_bundle(d / "base.zip", g["snn"])
    conv = save_bundle(d / "conv.zip", g["conv"])
    m0, mc = _members(base), _members(conv)
    out: list[tuple[str, Path]] = []

    def add(family: str, m: dict[str, bytes], resign: bool = True, **kw: Any) -> None:
        out.append((family, _zip(d / f"{len(out)}.zip", _resign(m) if resign else m, **kw)))

    # named cases
    add("named", {**m0, "../evil.py": b"import os"}, resign=False)
    add("named", {**m0, "/etc/cron.d/x": b"* * * * * root sh"}, resign=False)
    w = _weights(m0)
    buf = io.BytesIO()
    np.savez(buf, **{**{k: v for k, v in w.items()}, "fc/weight": np.array([{"x": 1}], object)})
    add("named", {**m0, "weights.npz": buf.getvalue()})
    lie = io.BytesIO()
    with zipfile.ZipFile(lie, "w") as z:
        z.writestr("fc/weight.npy", _npy_header((1 << 40,)) + bytes(64))
    add("named", {**m0, "weights.npz": lie.getvalue()})
    gb = int(n["bomb_gb"] * (1 << 30))
    add("named", {**m0, "weights.npz": _bomb_npz(w, {f"bomb{i}": gb for i in range(3)})})
    add("named", {**m0, "weights.npz": _bomb_npz({k: v for k, v in w.items() if k != "fc/weight"},
                                                {"fc/weight": gb})})  # fmt: skip
    add("named", {**m0, "weights.npz": _bomb_npz(w, {})}, compress=zipfile.ZIP_DEFLATED)
    outer = dict(m0)
    outer["plasticity.json"] = b"{" + b" " * (8 << 20) + b"}"  # 8 MB of spaces: ratio ~1000
    add("named", outer, compress=zipfile.ZIP_DEFLATED)
    deep = dict(m0, **{"manifest.json": b'{"a":' * 100000 + b"1" + b"}" * 100000})
    add("named", deep, resign=False)
    big_in = save_bundle(d / "big_in.zip", _one_lif((1 << 29,)))
    out.append(("named", big_in))
    out.append(("named", save_bundle(d / "delay.zip", _deep_delay())))
    rt = Runtime(g["snn"])
    rt.step(np.zeros(16, np.float32))
    st = save_bundle(d / "state.zip", g["snn"], state=rt.state_dict())
    ms = _members(st)
    with np.load(io.BytesIO(ms["state.npz"])) as z:
        sd = {k: z[k] for k in z.files}
    add("named", {**ms, "state.npz": _bomb_npz(sd, {"param/fc/bomb": gb})})
    sd_bad = dict(sd)
    sd_bad["meta/graph"] = np.array("0" * 64)
    add("named", {**ms, "state.npz": _npy_npz(sd_bad)})
    if n["npz_entries"]:  # more arrays than the limit (slow to build: full runs only)
        many = io.BytesIO()
        with zipfile.ZipFile(many, "w") as z:
            for i in range(n["npz_entries"]):
                z.writestr(f"a{i}.npy", b"")
        add("named", {**m0, "weights.npz": many.getvalue()})
    (d / "dirb").mkdir()
    for k, v in m0.items():
        (d / "dirb" / k).write_bytes(v)
    (d / "dirb" / "plasticity.json").unlink()
    (d / "dirb" / "plasticity.json").symlink_to("/etc/passwd")
    out.append(("named", d / "dirb"))
    (d / "empty.zip").write_bytes(b"")
    out.append(("named", d / "empty.zip"))
    # fuzz: manifest / plasticity / weights mutations, re-signed
    vals = [None, True, -1, 0, 1, 2**31, -(2**63), 1e308, "", "x" * 1000, [], {}, [1, 2], {"$array": "fc/weight"}]  # fmt: skip
    for _ in range(n["manifest"]):
        m = dict(m0)
        man = json.loads(m["manifest.json"])
        _mutate_json(man, rng, rng.choice(vals))
        m["manifest.json"] = json.dumps(man).encode()
        add("manifest", m)
    for _ in range(n["raw"]):
        raw = bytearray(base.read_bytes())
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(raw))
            op = rng.random()
            if op < 0.6:
                raw[i] = rng.randrange(256)
            elif op < 0.8:
                del raw[i : i + rng.randint(1, 64)]
            else:
                raw[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        p = d / f"{len(out)}.zip"
        p.write_bytes(bytes(raw))
        out.append(("raw", p))
    hostile_ints = [-(2**31), -(2**62), -7, -1, 0, 1, 2, 3, 5, 8, 9, 17, 1000, 10**6, 2**31 - 1, 2**62]  # fmt: skip
    fields = {"conv": ["stride", "padding", "dilation", "groups"], "pool": ["kernel", "stride", "padding"]}  # fmt: skip
    for _ in range(n["geometry"]):
        gd = json.loads(mc["manifest.json"])["graph"]
        for _ in range(rng.randint(1, 3)):
            node = rng.choice(sorted(fields))
            f = rng.choice(fields[node])
            v = rng.choice(hostile_ints)
            gd["nodes"][node][f] = v if f == "groups" else [v, rng.choice([v, 1, 2, 0])]
        out.append(("geometry", _zip(d / f"{len(out)}.zip", _resign(mc, graph=gd))))
    return out


def _npy_npz(arrays: dict[str, np.ndarray]) -> bytes:
    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


def _one_lif(shape: tuple) -> Any:
    from neuroplast.graph import LIF, Graph, Input

    return Graph.sequential([("in", Input(shape=shape)), ("lif", LIF(tau_mem=0.01, v_th=1.0))])


def _deep_delay() -> Any:
    from neuroplast.graph import Delay, Graph, Input

    return Graph.sequential([("in", Input(shape=(16384,))), ("d", Delay(delay=np.int32(65535)))])


def _mutate_json(obj: Any, rnd: random.Random, value: Any) -> None:
    """Replace or delete one random entry somewhere in a JSON tree."""
    path, cur = [], obj
    for _ in range(rnd.randint(1, 6)):
        if isinstance(cur, dict) and cur:
            k = rnd.choice(sorted(cur))
        elif isinstance(cur, list) and cur:
            k = rnd.randrange(len(cur))
        else:
            break
        path.append(k)
        cur = cur[k]
    if not path:
        return
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if rnd.random() < 0.3 and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


# ------------------------------------------------------------------ hostile inputs
def hostile_inputs(d: Path, n: dict, rng: random.Random) -> list[tuple[str, str, Path]]:
    """(family, mode, input path) for every hostile input case; mode: float or int."""
    out: list[tuple[str, str, Path]] = []

    def add(family: str, name: str, write: Any, mode: str = "float") -> None:
        p = d / name
        write(p)
        out.append((family, mode, p))

    lie = _npy_header((1 << 40,)) + bytes(64)
    add("named", "lie.npy", lambda p: p.write_bytes(lie))
    add("named", "empty.npy", lambda p: p.write_bytes(b""))
    add("named", "trunc.npy", lambda p: p.write_bytes(_npy(np.zeros(16, np.float32))[:-5]))
    add("named", "two.npz", lambda p: np.savez(p, a=np.zeros(16), b=np.zeros(16)))
    add("named", "npz-as-npy.npy", lambda p: p.write_bytes(_npy_npz({"a": np.zeros(16)})))
    add("named", "bomb.npz", lambda p: p.write_bytes(_bomb_npz({}, {"x": 64 << 20})))
    add("named", "object.npy", lambda p: np.save(p, np.array([{}] * 16, object), allow_pickle=True))
    add("named", "complex.npy", lambda p: np.save(p, np.zeros(16, np.complex64)))
    add("named", "str.npy", lambda p: np.save(p, np.array(["1"] * 16)))
    add("named", "fortran.npy", lambda p: np.save(p, np.asfortranarray(np.ones((3, 16)))))
    add("named", "big.npy", lambda p: np.save(p, np.full(16, 1e39)))
    add("named", "nan.npy", lambda p: np.save(p, np.full(16, np.nan)))
    add("named", "inf.npy", lambda p: np.save(p, np.full((4, 16), -np.inf, np.float32)))
    add("named", "huge-int.npy", lambda p: np.save(p, np.full(16, 2**62, np.int64)), "int")
    add("named", "sat.npy", lambda p: np.save(p, np.full(16, 1e30)), "int")
    add("named", "bool.npy", lambda p: np.save(p, np.ones(16, bool)), "int")
    add("named", "zero-t.npy", lambda p: np.save(p, np.zeros((0, 16), np.float32)))
    add("named", "odd.raw", lambda p: p.write_bytes(b"\x01" * 63))
    add("named", "nan.raw", lambda p: np.full(16, np.nan, "<f4").tofile(p))
    add("named", "sparse-2g.raw", lambda p: os.truncate(p.write_bytes(b"") or p, 2 << 30))
    add("named", "passwd.npy", lambda p: p.symlink_to("/etc/passwd"))
    add("named", "a-dir.npy", lambda p: p.mkdir())
    add("named", "missing.npy", lambda p: None)
    good = _npy(np.random.default_rng(1).random((3, 16), dtype=np.float32))
    goodz = _npy_npz({"x": np.random.default_rng(2).random(16)})
    for i in range(n["input_fuzz"]):
        raw = bytearray(good if i % 2 else goodz)
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        if rng.random() < 0.2:
            raw = raw[: rng.randrange(len(raw))]
        add("fuzz", f"f{i}.{'npy' if i % 2 else 'npz'}", lambda p, b=bytes(raw): p.write_bytes(b),
            rng.choice(["float", "int"]))  # fmt: skip
    dtypes = ["<f4", ">f8", "<i8", "u1", "i1", "<f2", "<u4"]
    for i in range(n["input_shapes"]):
        shape = tuple(rng.choice([0, 1, 2, 3, 15, 16, 17]) for _ in range(rng.randint(1, 3)))
        with np.errstate(all="ignore"):
            arr = np.random.default_rng(i).standard_normal(shape) * 10 ** rng.randint(-3, 40)
            arr = arr.astype(rng.choice(dtypes))
        add("shapes", f"s{i}.npy", lambda p, a=arr: np.save(p, a), rng.choice(["float", "int"]))
    return out


# ------------------------------------------------------------------ CLI tries in a worker
def _worker() -> None:
    """Run ``neuroplast.cli.main(argv)`` for each JSON line on stdin; one JSON result line each."""
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_AS_LIMIT, WORKER_AS_LIMIT))
    from neuroplast.cli import main

    for line in sys.stdin:
        argv = json.loads(line)
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                rc = main(argv)
            except BaseException as e:  # noqa: BLE001 - main() must never let one out
                rc, err = -1, io.StringIO(f"escaped main(): {type(e).__name__}: {e}")
        sys.__stdout__.write(json.dumps({"rc": rc, "err": err.getvalue()[-2000:]}) + "\n")
        sys.__stdout__.flush()


class Worker:
    """A worker process; ``run(argv)`` -> (outcome, detail); restarted after a hang or death."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
        return self.proc

    def run(self, argv: list[str]) -> tuple[str, str]:
        p = self._start()
        p.stdin.write(json.dumps(argv) + "\n")
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], TIMEOUT_S)
        if not ready:
            self.close()
            return "hang", f"no answer in {TIMEOUT_S:.0f} s"
        line = p.stdout.readline()
        if not line:
            code = p.wait()
            self.proc = None
            return "crashed", f"worker died (exit {code}, signal {-code if code < 0 else 0})"
        res = json.loads(line)
        return classify(res["rc"], res["err"])

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def classify(rc: int, err: str) -> tuple[str, str]:
    """ok / refused / crashed from an exit code and stderr (see the module docstring)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if "Traceback" in err:
        return "crashed", "Traceback: " + (lines or ["?"])[-1][:300]
    if "internal error" in err or "too large to process" in err:
        return "crashed", (lines or ["?"])[-1][:300]
    if rc == 0:
        return "ok", ""
    if rc == 2 and len(lines) == 1 and lines[0].startswith("error: "):
        return "refused", lines[0][:300]
    return "crashed", f"exit {rc}: {(lines or ['no message'])[-1][:300]}"


def tally(results: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Totals of (family, outcome, detail) rows, with up to 5 crash details."""
    c = Counter(o for _, o, _ in results)
    fam: dict[str, Counter] = {}
    for f, o, _ in results:
        fam.setdefault(f, Counter())[o] += 1
    return {
        "tried": len(results),
        "ok": c["ok"],
        "refused": c["refused"],
        "crashed": c["crashed"],
        "hangs": c["hang"],
        "tracebacks": sum(dt.startswith("Traceback") for _, _, dt in results),
        "families": {f: dict(v) for f, v in sorted(fam.items())},
        "crash_examples": [f"{f}: {dt}" for f, o, dt in results if o in ("crashed", "hang")][:5],
    }


# ------------------------------------------------------------------ serve in a subprocess
class ServeProc:
    """``python -m neuroplast.boards.stream`` with outputs (argmax lines) and logs collected."""

    def __init__(self, bundle: Path, source: str, *extra: str, stdin: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "neuroplast.boards.stream", str(bundle), "--source", source,
             "--emit", "argmax", "--status-every-s", "3600", *extra],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        self.n_out, self.err = 0, []
        self._ready = threading.Event()
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        if not self._ready.wait(TIMEOUT_S):
            self.proc.kill()
            raise RuntimeError(f"serve did not start: {self.err}")

    def _read_out(self) -> None:
        for _ in self.proc.stdout:
            self.n_out += 1

    def _read_err(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.err.append(line)
            if line.startswith("serving "):
                self._ready.set()

    def wait_outputs(self, n: int, timeout: float = TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        while self.n_out < n and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.02)
        return self.n_out >= n

    def quiet(self, settle: float = 0.5, timeout: float = TIMEOUT_S) -> None:
        """Wait until no output appeared for ``settle`` s (the queue drained)."""
        last, t_last, deadline = -1, time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.n_out != last:
                last, t_last = self.n_out, time.monotonic()
            elif time.monotonic() - t_last > settle:
                return
            time.sleep(0.05)

    def peak_rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:"))

    def stop(self) -> tuple[int, dict[str, Any], str]:
        """SIGTERM; (exit code, final counters, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        time.sleep(0.1)  # the reader threads take the last lines
        err = "\n".join(self.err)
        final = [json.loads(ln)["final"] for ln in self.err if ln.startswith('{"final"')]
        return rc, (final[-1] if final else {}), err


def hostile_messages(
    rng: random.Random, size: int, count: int, max_len: int
) -> Iterator[tuple[str, bytes]]:
    """(family, payload) for ``count`` hostile messages to a model input of ``size`` values
    (generated one at a time: thousands of oversize payloads never sit in memory together)."""
    from neuroplast.boards.frames import seal

    good_frame = seal(KEY, 1, np.zeros(size, "<f4").tobytes())
    fams = ["random", "f32-size", "values", "text", "frames", "oversize", "empty"]
    for i in range(count):
        f = fams[i % len(fams)]
        if f == "random":
            b = rng.randbytes(
                rng.choice([1, 3, 4, 63, 65, 100, 1000, 8000, rng.randrange(max_len)])
            )
        elif f == "f32-size":
            b = rng.randbytes(4 * size)
        elif f == "values":
            v = rng.choice([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-45, 1e30])
            b = np.full(size, v, "<f4").tobytes()
        elif f == "text":
            b = rng.choice([" ".join(["1.5"] * 16).ljust(4 * size)[: 4 * size], "1e39 " * size,
                            "nan " * size, "1,2,3", "\u00e9" * 30, "9" * 5000]).encode()  # fmt: skip
        elif f == "frames":
            b = rng.choice([b"NPA1" + rng.randbytes(rng.randrange(0, 200)), good_frame,
                            good_frame[:-1], good_frame[:20] + bytes(24) + good_frame[44:]])  # fmt: skip
        elif f == "oversize":
            b = rng.randbytes(max_len)
        else:
            b = b""
        yield f, b


def _message_outcome(sent: int, c: dict, extra_refused: int = 0) -> dict[str, Any]:
    counted = (c.get("processed", 0) + c.get("rejected", 0) + c.get("dropped", 0)
               + c.get("dropped_kernel", 0) + c.get("pending", 0) + c.get("errors", 0) + extra_refused)  # fmt: skip
    return {
        "tried": sent,
        "processed": c.get("processed", 0),
        "refused": c.get("rejected", 0) + extra_refused,
        "dropped_counted": c.get("dropped", 0) + c.get("dropped_kernel", 0),
        "uncounted": sent - counted,
        "reasons": c.get("reasons", {}),
    }


def udp_hostile(d: Path, bundle: Path, n: int, rng: random.Random) -> dict[str, Any]:
    """A flood of hostile datagrams at serve (HMAC key set, so nothing may teach), then probes."""
    key = d / "key"
    key.write_text(KEY.hex())
    key.chmod(0o600)
    port = _free_port()
    w0 = _weights_of(bundle)
    sp = ServeProc(bundle, f"udp://127.0.0.1:{port}", "--hmac-key-file", str(key),
                   "--state-dir", str(d / "st-udp"))  # fmt: skip
    families: Counter = Counter()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, (f, b) in enumerate(hostile_messages(rng, 16, n, 65507)):
            families[f] += 1
            s.sendto(b, ("127.0.0.1", port))
            if i % 100 == 99:
                time.sleep(0.01)  # paced: drops are counted, but the point here is validation
        sp.quiet()
        before = sp.n_out
        probes = [np.random.default_rng(i).random(16, dtype=np.float32) * 3 for i in range(10)]
        for x in probes:
            s.sendto(x.astype("<f4").tobytes(), ("127.0.0.1", port))
        answered = sp.wait_outputs(before + len(probes))
    alive = sp.proc.poll() is None
    rc, final, err = sp.stop()
    res = _message_outcome(n + len(probes), final)
    res.update(serve_alive=alive, exit_code=rc, probes_answered=answered,
               crashed=int(not alive or rc != 0 or "Traceback" in err),
               hangs=int(not answered), tracebacks=err.count("Traceback"),
               families=dict(families))  # fmt: skip
    res["weights_max_abs_change"] = _max_change(w0, d / "st-udp" / "state.npz")
    return res


def mqtt_hostile(d: Path, bundle: Path, port: int, n: int, rng: random.Random) -> dict[str, Any]:
    """Hostile messages published to serve's input topic on a real broker (anonymous)."""
    w0 = _weights_of(bundle)
    sp = ServeProc(bundle, f"mqtt://127.0.0.1:{port}/rel", "--state-dir", str(d / "st-mqtt"))
    over = 0  # beyond serve's MQTT maximum packet size: the broker never delivers them
    c = _mqtt_client(port)
    for i, (_, b) in enumerate(hostile_messages(rng, 16, n, (1 << 20) + (256 << 10))):
        over += len(b) + 64 > 1 << 20
        c.publish("rel/in", b, qos=1)
        if i % 100 == 99:
            _flush(c)  # bounded: never thousands of MB-sized publishes queued in paho
    _flush(c)
    sp.quiet(settle=1.0)
    before = sp.n_out
    for i in range(10):
        c.publish(
            "rel/in", (np.random.default_rng(i).random(16) * 3).astype("<f4").tobytes(), qos=1
        )
    _flush(c)
    answered = sp.wait_outputs(before + 10)
    c.disconnect()
    c.loop_stop()
    alive = sp.proc.poll() is None
    rc, final, err = sp.stop()
    res = _message_outcome(n + 10, final, extra_refused=over)
    res.update(serve_alive=alive, exit_code=rc, probes_answered=answered,
               refused_by_broker_max_packet=over, crashed=int(not alive or rc != 0 or "Traceback" in err),
               hangs=int(not answered), tracebacks=err.count("Traceback"))  # fmt: skip
    res["weights_max_abs_change"] = _max_change(w0, d / "st-mqtt" / "state.npz")
    return res


def _mqtt_client(port: int) -> Any:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def _flush(c: Any, timeout: float = 60.0) -> None:
    """Wait until paho has no outgoing message left (all QoS 1 publishes acknowledged)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (c._out_messages or c._out_packet):
        time.sleep(0.02)


def _weights_of(bundle: Path) -> np.ndarray:
    import neuroplast

    return neuroplast.load(bundle).params["fc"]["weight"].copy()


def _max_change(w0: np.ndarray, state: Path) -> float | None:
    if not state.is_file():
        return None
    with np.load(state) as z:
        return float(np.abs(z["param/fc/weight"] - w0).max())


def authenticated_control(d: Path, bundle: Path, n: int = 50) -> float | None:
    """The same service taught by HMAC frames: the weights must move (the check is live)."""
    from neuroplast.boards.frames import seal

    key = d / "key"
    port = _free_port()
    sp = ServeProc(bundle, f"udp://127.0.0.1:{port}", "--hmac-key-file", str(key),
                   "--state-dir", str(d / "st-auth"))  # fmt: skip
    rng = np.random.default_rng(0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(n):
            s.sendto(seal(KEY, i + 1, rng.random(16).astype("<f4").tobytes()), ("127.0.0.1", port))
            time.sleep(0.001)
    sp.wait_outputs(n)
    sp.stop()
    return _max_change(_weights_of(bundle), d / "st-auth" / "state.npz")


def udp_blast(bundle: Path, n: int, rcvbufs: tuple[int, ...]) -> list[dict[str, Any]]:
    """``n`` valid datagrams as fast as one socket sends them (no pacing), per socket buffer
    size: how many serve processed, dropped from its queue, and the kernel dropped (all
    counted); ``uncounted`` must be 0."""
    rows = []
    payload = np.full(16, 0.5, "<f4").tobytes()
    for rcvbuf in rcvbufs:
        port = _free_port()
        sp = ServeProc(bundle, f"udp://127.0.0.1:{port}", "--no-learn", "--rcvbuf", str(rcvbuf))
        t0 = time.perf_counter()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(n):
                s.sendto(payload, ("127.0.0.1", port))
        send_s = time.perf_counter() - t0
        sp.quiet(settle=1.0)
        rc, final, _ = sp.stop()
        row = _message_outcome(n, final)
        row.update(rcvbuf=rcvbuf, sent_per_s=n / send_s, dropped_kernel=final.get("dropped_kernel", 0),
                   dropped_queue=final.get("dropped", 0), exit_code=rc)  # fmt: skip
        rows.append(row)
    return rows


def long_line(d: Path, bundle: Path, mb: int = 20) -> dict[str, Any]:
    """Peak RSS of serve reading a ``mb`` MB stdin line (then one good line), vs one good line."""
    good = (" ".join(["0.5"] * 16) + "\n").encode()
    peaks = {}
    for name, payload in (("baseline", good), ("long_line", b"1 " * (mb << 19) + b"\n" + good)):
        sp = ServeProc(bundle, "-", "--no-learn", stdin=True)
        sp.proc.stdin.write(payload)
        sp.proc.stdin.flush()
        sp.wait_outputs(1)
        peaks[name] = sp.peak_rss()
        sp.proc.stdin.close()
        rc, final, _ = sp.stop()
        peaks[f"{name}_counters"] = final
    return {"line_mb": mb, "peak_rss_mb": peaks["long_line"] / 2**20,
            "baseline_peak_rss_mb": peaks["baseline"] / 2**20,
            "extra_mb": (peaks["long_line"] - peaks["baseline"]) / 2**20,
            "rejected": peaks["long_line_counters"].get("reasons", {})}  # fmt: skip


def serve_load(d: Path, bundle: Path, port: int, rates: tuple, seconds: float) -> dict[str, Any]:
    """Valid messages at fixed rates through mosquitto (QoS 0) into serve: what arrives, what
    is processed, what is dropped (counted), and what is lost without a counter."""
    rows = []
    payload = (np.random.default_rng(0).random(16) * 2).astype("<f4").tobytes()
    for rate in rates:
        sp = ServeProc(bundle, f"mqtt://127.0.0.1:{port}/load{rate}", "--no-learn")
        c = _mqtt_client(port)
        sent, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            due = int(rate * elapsed) + 1
            while sent < due:
                c.publish(f"load{rate}/in", payload, qos=0)
                sent += 1
            time.sleep(0.002)
        send_s = time.perf_counter() - t0
        _flush(c)
        sp.quiet(settle=1.0)
        c.disconnect()
        c.loop_stop()
        rc, final, err = sp.stop()
        row = _message_outcome(sent, final)
        row.update(target_per_s=rate, sent_per_s=sent / send_s, exit_code=rc)
        rows.append(row)
    held = [r["target_per_s"] for r in rows if r["processed"] == r["tried"]]
    return {"seconds_per_rate": seconds, "rows": rows, "held_per_s": max(held) if held else 0,
            "uncounted_total": sum(r["uncounted"] for r in rows)}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mosquitto(d: Path):
    """A throwaway anonymous mosquitto on a free loopback port (yields the port)."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    port = _free_port()
    conf = d / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    conf.write_text("\n".join(lines + (["user root"] if os.geteuid() == 0 else [])) + "\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------ peak memory
_PEAK = """
import json, sys
import numpy as np
from neuroplast.bundle import load_bundle, load_runtime
from neuroplast.errors import NeuroplastError
def hwm():  # VmHWM, not ru_maxrss: that one is inherited from the parent across fork/exec
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
path, limits, runtime = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"
base = hwm()
try:
    load_runtime(path, limits=limits) if runtime else load_bundle(path, limits)
    res = "loaded"
except NeuroplastError as e:
    res = "refused: " + str(e)[:200]
print(json.dumps({"result": res, "extra_bytes": hwm() - base}))
"""


def _peak(path: Path, limits: dict | None, runtime: bool = False) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path), json.dumps(limits or {}),
                          "1" if runtime else "0"], capture_output=True, text=True, timeout=600)  # fmt: skip
    if out.returncode != 0:
        return {"result": f"crashed: {out.stderr.strip().splitlines()[-1:]}", "extra_bytes": None}
    return json.loads(out.stdout)


def peak_memory(d: Path, budget: int, bomb_gb: float) -> dict[str, Any]:
    """Bundles that fill a ``budget``-byte decompressed budget every way the format allows,
    loaded in a fresh process each: the largest extra peak RSS over the budget."""
    from neuroplast.bundle import save_bundle
    from neuroplast.graph import LIF, Graph, Input, Linear
    from neuroplast.runtime import Runtime

    rng = np.random.default_rng(0)
    lim = {"total_bytes": budget}
    cases = {}

    def lin(n_out: int, n_in: int, k: int = 1) -> Any:
        layers = [("in", Input(shape=(n_in,)))]
        for i in range(k):
            w = rng.integers(-3, 4, (n_out if i == k - 1 else n_in, n_in)).astype(np.float32)
            layers.append((f"fc{i}", Linear(weight=w)))
        return Graph.sequential(layers)

    # one array of almost half the budget (the blob and the arrays both count)
    half = budget // 2 - (64 << 10)
    cases["one_big_array"] = save_bundle(d / "p1", lin(half // 4 // 1024, 1024))
    cases["one_big_array_zip"] = save_bundle(d / "p1.zip", lin(half // 4 // 1024, 1024))
    cases["many_arrays"] = save_bundle(d / "p2", lin(64, 64, k=max(1, half // (64 * 64 * 4 + 256))))
    g = Graph.sequential([("in", Input(shape=(half // 8,))), ("lif", LIF(tau_mem=0.01, v_th=1.0))])
    rt = Runtime(g)
    rt.step(rng.random(half // 8, dtype=np.float32))
    cases["state"] = save_bundle(d / "p3.zip", g, state=rt.state_dict())
    gb = int(bomb_gb * (1 << 30))
    m = _members(save_bundle(d / "p4.zip", lin(16, 16)))
    w = _weights(m)
    bombs = {"b0": gb, "b1": gb, "b2": gb}
    cases["nested_bomb"] = _zip(d / "p4b.zip", _resign({**m, "weights.npz": _bomb_npz(w, bombs)}))
    w.pop("fc0/weight")
    used = _bomb_npz(w, {"fc0/weight": gb})
    cases["nested_bomb_used"] = _zip(d / "p5.zip", _resign({**m, "weights.npz": used}))
    rows = {}
    for name, p in cases.items():
        r = _peak(p, lim)
        r["runtime"] = _peak(p, lim, runtime=True)
        rows[name] = r
    issue = _peak(cases["nested_bomb"], None)
    issue["bundle_bytes"] = cases["nested_bomb"].stat().st_size
    issue["declared_bytes"] = 3 * gb
    worst = max(rows, key=lambda k: rows[k]["extra_bytes"] or 0)
    return {"budget_bytes": budget, "cases": rows, "worst": worst,
            "worst_extra_bytes": rows[worst]["extra_bytes"],
            "worst_ratio": (rows[worst]["extra_bytes"] or 0) / budget,
            "issue_bomb_default_limits": issue}  # fmt: skip


# ------------------------------------------------------------------ main
def run_all(quick: bool, out_path: Path | None = RESULTS / "reliability.json") -> dict[str, Any]:
    n = QUICK if quick else FULL
    rng = random.Random(17)
    res: dict[str, Any] = {
        "quick": quick,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    with tempfile.TemporaryDirectory(prefix="neuroplast-reliability-") as tmp:
        d = Path(tmp)
        from neuroplast.bundle import save_bundle

        g = _graphs()
        b_float = save_bundle(d / "ref", g["snn"])
        b_int = save_bundle(d / "ref_int", g["snn_int"], mode="int")
        x = d / "x.npy"
        np.save(x, np.random.default_rng(0).random((3, 16), dtype=np.float32))
        worker = Worker()
        try:
            (d / "bundles").mkdir()
            rows = []
            for fam, p in hostile_bundles(d / "bundles", n, rng):
                rows.append((fam, *worker.run(["run", str(p), "--input", str(x), "--json"])))
            res["bundles"] = tally(rows)
            (d / "inputs").mkdir()
            rows = []
            for fam, mode, p in hostile_inputs(d / "inputs", n, rng):
                b = b_int if mode == "int" else b_float
                rows.append((fam, *worker.run(["run", str(b), "--input", str(p), "--json"])))
            res["inputs"] = tally(rows)
        finally:
            worker.close()
        plastic = _plastic(d / "plastic")
        res["datagrams"] = udp_hostile(d, plastic, n["datagrams"], rng)
        res["udp_blast"] = udp_blast(b_float, n["blast"], (64 << 10, 4 << 20))
        with mosquitto(d) as port:
            res["mqtt_messages"] = mqtt_hostile(d, plastic, port, n["mqtt"], rng)
            res["serve_load"] = serve_load(d, b_float, port, n["load_rates"], n["load_s"])
        res["authenticated_control_weight_change"] = authenticated_control(d, plastic)
        res["long_line"] = long_line(d, b_float, mb=2 if quick else 20)
        res["peak_memory"] = peak_memory(d, 16 << 20 if quick else 64 << 20, n["bomb_gb"])
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(res, indent=1) + "\n")
    return res


def table(res: dict[str, Any]) -> str:
    lines = [f"{'hostile':<22}{'tried':>8}{'ok':>8}{'refused':>9}{'crashed':>9}{'hangs':>7}"]
    for k in ("bundles", "inputs"):
        t = res[k]
        lines.append(
            f"{k:<22}{t['tried']:>8}{t['ok']:>8}{t['refused']:>9}{t['crashed']:>9}{t['hangs']:>7}"
        )
    for k in ("datagrams", "mqtt_messages"):
        t = res[k]
        lines.append(f"{k:<22}{t['tried']:>8}{t['processed']:>8}{t['refused'] + t['dropped_counted']:>9}"
                     f"{t['crashed']:>9}{t['hangs']:>7}   uncounted {t['uncounted']}")  # fmt: skip
    pm = res["peak_memory"]
    lines.append(f"worst bundle: {pm['worst']}: +{pm['worst_extra_bytes'] / 2**20:.1f} MiB for a "
                 f"{pm['budget_bytes'] / 2**20:.0f} MiB budget ({pm['worst_ratio']:.2f}x)")  # fmt: skip
    ib = pm["issue_bomb_default_limits"]
    lines.append(f"issue's nested bomb ({ib['bundle_bytes'] / 1024:.0f} KB -> {ib['declared_bytes'] / 1e9:.1f} GB): "
                 f"{ib['result'][:60]}, +{(ib['extra_bytes'] or 0) / 2**20:.1f} MiB")  # fmt: skip
    ll = res["long_line"]
    lines.append(
        f"{ll['line_mb']} MB stdin line: serve peak RSS {ll['peak_rss_mb']:.0f} MB (+{ll['extra_mb']:.1f} MB)"
    )
    sl = res["serve_load"]
    for r in sl["rows"]:
        lines.append(f"MQTT load {r['target_per_s']:>6}/s: sent {r['tried']}, processed {r['processed']}, "
                     f"dropped (counted) {r['dropped_counted']}, uncounted {r['uncounted']}")  # fmt: skip
    lines.append(f"held: {sl['held_per_s']} msg/s with 0 lost")
    for r in res["udp_blast"]:
        lines.append(f"UDP blast, rcvbuf {r['rcvbuf'] >> 10} KiB: sent {r['tried']} at {r['sent_per_s']:.0f}/s, "
                     f"processed {r['processed']}, queue drops {r['dropped_queue']}, kernel drops "
                     f"{r['dropped_kernel']}, uncounted {r['uncounted']}")  # fmt: skip
    lines.append(f"weights changed by unauthenticated traffic: UDP {res['datagrams']['weights_max_abs_change']}, "
                 f"MQTT {res['mqtt_messages']['weights_max_abs_change']}; authenticated control "
                 f"{res['authenticated_control_weight_change']:.3g}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    if "--worker" in sys.argv:
        _worker()
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts (seconds, not minutes)")
    args = ap.parse_args()
    res = run_all(args.quick)
    print(table(res))


if __name__ == "__main__":
    main()
