"""Run many generated graphs through every target and count what the matrix promised.

For each graph and each target with a runner (:data:`~.engines.ENGINES`) that is
registered and available here: if the capability matrix claims the graph
(``Target.refusals`` is empty) the graph runs in the target's engine and must agree with
the reference; otherwise the user's export path must refuse it cleanly in one line.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from neuroplast.quantize.conformance.engines import (
    ENGINES,
    PEER_ENGINES,
    Outcome,
    Session,
    check_refusal,
)
from neuroplast.quantize.conformance.generate import random_graph

__all__ = ["Report", "run_suite", "targets_here"]


@dataclass
class Report:
    """Counts per target, kinds exercised per target, and the failures (to reproduce:
    ``random_graph(seed)``)."""

    n_graphs: int = 0
    seconds: float = 0.0
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    kinds: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    max_diff: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, seed: int, family: str, kinds: Iterable[str], o: Outcome, claimed: bool) -> None:
        c = self.counts[o.target]
        c["tried"] += 1
        c["claimed"] += claimed
        c[o.status] += 1
        if o.status == "agree":
            self.kinds[o.target].update(kinds)
            self.max_diff[o.target] = max(self.max_diff[o.target], o.diff)
        if o.status in ("disagree", "error"):
            self.failures.append({"seed": seed, "family": family, "target": o.target,
                                  "status": o.status, "detail": o.detail[:500]})  # fmt: skip

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        rows = {}
        for t, c in sorted(self.counts.items()):
            claimed = c["claimed"] - c["skipped"]
            rows[t] = {
                "tried": c["tried"],
                "claimed": claimed,
                "agree": c["agree"],
                "refused_cleanly": c["refused"],
                "errors": c["error"],
                "skipped": c["skipped"],
                "agreement": c["agree"] / claimed if claimed else None,
                "max_diff": self.max_diff.get(t, 0.0),
                "kinds_verified": dict(sorted(self.kinds[t].items())),
            }
        return {"graphs": self.n_graphs, "seconds": round(self.seconds, 1), "targets": rows,
                "failures": self.failures}  # fmt: skip


def targets_here(wanted: Iterable[str] | None = None) -> list[str]:
    """Targets with a runner that are registered and whose engine imports here."""
    from neuroplast.targets import TARGETS, load_plugins

    load_plugins()
    names = [t for t in ENGINES if t in TARGETS and TARGETS[t].available()[0]]
    return [t for t in names if wanted is None or t in set(wanted)]


def _importable(peer: str) -> bool:
    from importlib.util import find_spec

    return find_spec(peer.split(":")[1]) is not None


def _attempt(target: str, fn: Callable[..., Outcome], *args: Any) -> Outcome:
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - a claimed target that crashed is the finding
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        return Outcome(target, "error", f"claimed but failed: {tb}")


def run_suite(
    n: int,
    seed: int = 0,
    targets: Iterable[str] | None = None,
    families: Iterable[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Generate ``n`` graphs from ``seed`` on and check every target on each."""
    from neuroplast.targets import TARGETS

    names = targets_here(targets)
    peers = [p for p in PEER_ENGINES if PEER_ENGINES[p][0] in names and _importable(p)]
    fams = list(families) if families else None
    rep = Report()
    t0 = time.perf_counter()
    with Session() as s:
        for i in range(n):
            sd = seed + i
            case = random_graph(sd, family=fams[sd % len(fams)] if fams else None)
            rep.n_graphs += 1
            agreed: set[str] = set()
            for t in names:
                which, runner, _ = ENGINES[t]
                g = case.int_graph if which == "int" else case.float_graph
                refused = TARGETS[t].refusals(g)
                o = (
                    _attempt(t, check_refusal, t, g, refused[0])
                    if refused
                    else _attempt(t, runner, case, s)
                )
                rep.add(sd, case.family, case.kinds, o, claimed=not refused)
                if o.status == "agree":
                    agreed.add(t)
            for p in peers:
                base, runner = PEER_ENGINES[p]
                if base in agreed:  # the peer reads what that target wrote
                    o = _attempt(p, runner, case, s)
                    rep.add(sd, case.family, case.kinds, o, claimed=True)
            if progress is not None:
                progress(i + 1, n)
    rep.seconds = time.perf_counter() - t0
    return rep
