"""CLI commands of neuroplast.plasticity (wired into the ``neuroplast`` console script).

* ``neuroplast plasticity-rules``: the registered rule kinds and their parameters.
* ``neuroplast learn BUNDLE INPUTS.npy``: run a bundle with its plasticity rules on a
  ``(T, *input_shape)`` array, print the learning statistics, optionally save the
  learned state atomically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import typer

__all__ = ["register", "rules_table", "learn_from_file", "agreement_check", "accuracy_check"]


def rules_table() -> list[tuple[str, str, str]]:
    """``(kind, class name, "field=default, ...")`` for every registered rule."""
    from neuroplast.plasticity.registry import RULE_KINDS

    rows = []
    for kind, cls in sorted(RULE_KINDS.items()):
        fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))
        rows.append((kind, cls.__name__, fields))
    return rows


def agreement_check(held: np.ndarray) -> Callable[[Any], float]:
    """Label-free guard check: cosine similarity between the network's responses to the
    held-out inputs ``held`` (T, *input) now and before learning (1: unchanged; a dead
    or saturated network scores near 0). Fixed reference: the responses at creation."""
    base: list[np.ndarray] = []

    def check(rt: Any) -> float:
        rt.reset()
        out = np.asarray(rt.run(held), np.float64).ravel()
        if not base:
            base.append(out)
        ref = base[0]
        den = float(np.linalg.norm(out) * np.linalg.norm(ref))
        if den == 0.0:
            return 1.0 if not out.any() and not ref.any() else 0.0
        return float(out @ ref) / den

    return check


def accuracy_check(x: np.ndarray, y: np.ndarray) -> Callable[[Any], float]:
    """Labelled guard check: accuracy of ``argmax`` of the output summed over time, per
    sample of ``x`` ((N, T, *input) windows, or (N, *input) single steps)."""

    def check(rt: Any) -> float:
        hits = 0
        for xi, yi in zip(x, y, strict=True):
            rt.reset()
            seq = xi if xi.ndim == len(rt.shapes[rt.inputs[0]]) + 1 else xi[None]
            out = np.asarray(rt.run(seq), np.float64)
            hits += int(np.argmax(out.reshape(out.shape[0], -1).sum(axis=0)) == int(yi))
        return hits / max(1, len(y))

    return check


def learn_from_file(
    bundle: Path,
    inputs: Path,
    state_out: Path | None = None,
    mode: str | None = None,
    reward: float | None = None,
    progress: bool = False,
    guard: bool = True,
    check: Path | None = None,
    every: int = 100,
    max_drop: float = 0.05,
    floor: float | None = None,
    report: Callable[[str], Any] | None = None,
) -> dict:
    """Load ``bundle``, enable learning, step through ``inputs`` (read by
    :func:`neuroplast.arrayfile.load_array`), save the state to ``state_out``
    atomically; returns ``rt.plasticity.stats`` (plus ``"guard"`` with its counts).

    With ``guard`` (the default) a :class:`~neuroplast.plasticity.LearningGuard`
    checks every ``every`` steps and rolls back learning that drops the check more than
    ``max_drop`` below the baseline (or under ``floor``): the check is the accuracy on
    ``check`` (an ``.npz`` with ``x`` and integer labels ``y``), or without it
    :func:`agreement_check` on the first ``min(200, T // 10)`` inputs, which are then
    held out of learning. Each decision goes to ``report`` and into the state."""

    import neuroplast
    from neuroplast.arrayfile import load_array
    from neuroplast.errors import DataError, PlasticityError
    from neuroplast.plasticity.guard import LearningGuard

    rt = neuroplast.load(bundle, mode=mode)
    if not rt.plasticity.has_rules():
        raise PlasticityError(f"bundle {str(bundle)!r} has no plasticity rules (plasticity.json)")
    seq = load_array(inputs, shape=rt.shapes[rt.inputs[0]])
    if seq.ndim < 2:
        raise DataError(f"inputs must be (T, *input_shape), got shape {seq.shape}")
    g = None
    if guard:
        if check is not None:
            from neuroplast.arrayfile import ReadLimits, read_npz

            try:
                d = read_npz(Path(check), str(check), ReadLimits())
                fn = accuracy_check(np.asarray(d["x"]), np.asarray(d["y"]).astype(np.int64))
            except KeyError as e:
                raise DataError(f"check file {str(check)!r} needs arrays x and y ({e})") from None
        else:
            n = min(200, seq.shape[0] // 10)
            if n < 1:
                raise DataError(
                    f"{seq.shape[0]} inputs leave none to hold out for the guard; pass "
                    "--check FILE.npz or --no-guard"
                )
            fn, seq = agreement_check(seq[:n]), seq[n:]
        g = LearningGuard(rt, fn, every=every, max_drop=max_drop, floor=floor, report=report)
    rt.learn(True)
    from neuroplast.progress import Progress

    step = rt.step if g is None else g.step
    with Progress("learning (steps)", total=seq.shape[0], live=None if progress else False) as bar:
        for t in range(seq.shape[0]):
            step(seq[t], reward=reward)
            if progress and (t % 100 == 99 or t == seq.shape[0] - 1):
                bar.update(t + 1)
    if g is not None and g.steps % g.every:
        g.check_now()  # the tail after the last check is judged too
    if state_out is not None:
        rt.save_state(state_out)
    stats = rt.plasticity.stats(rt)
    if g is not None:
        stats["guard"] = {
            "checks": len(g.history),
            "rolled_back": g.rollbacks,
            "baseline": g.baseline,
            "final": g.good_metric,
        }
    return stats


def register(app: typer.Typer) -> None:
    """Add the plasticity commands to ``app``."""
    import typer
    from rich.console import Console
    from rich.table import Table

    @app.command("plasticity-rules")
    def plasticity_rules() -> None:
        """List the on-device learning rules and their parameters (defaults).

        \b
        Examples:
            neuroplast plasticity-rules
        """
        t = Table(title="neuroplast plasticity rules")
        for c in ("kind", "params class", "parameters (defaults)"):
            t.add_column(c)
        for row in rules_table():
            t.add_row(*row)
        Console().print(t)

    @app.command("learn")
    def learn(
        bundle: Path = typer.Argument(..., help="Bundle folder or .zip with plasticity.json."),
        inputs: Path = typer.Argument(..., help="Input file (T, *input_shape): .npy, .npz, raw."),
        state_out: Optional[Path] = typer.Option(None, help="Save the learned state (atomic)."),
        mode: Optional[str] = typer.Option(None, help="float or int (default: the bundle's)."),
        reward: Optional[float] = typer.Option(None, help="Constant reward for 3-factor rules."),
        no_guard: bool = typer.Option(
            False, "--no-guard", help="No guard (default: roll back learning that hurts a check)."
        ),
        check_set: Optional[Path] = typer.Option(
            None, help="Guard check set: .npz with x and labels y (default: hold out inputs)."
        ),
        every: int = typer.Option(100, help="Guard: check every N steps."),
        max_drop: float = typer.Option(0.05, help="Guard: allowed drop below the baseline."),
        floor: Optional[float] = typer.Option(None, help="Guard: absolute minimum check score."),
    ) -> None:
        """Run a bundle with learning on over INPUTS and print the learning statistics.

        A guard is on by default: it checks every --every steps, rolls back learning
        that drops the check more than --max-drop below the baseline, and prints each
        decision (also saved in the state).

        \b
        Examples:
            neuroplast learn model.zip stream.npy --state-out learned.npz
            neuroplast learn model.zip stream.npy --check-set heldout.npz --every 50
        """
        from neuroplast.errors import PlasticityError

        if every < 1 or not 0 <= max_drop < float("inf"):
            raise PlasticityError("--every must be >= 1 and --max-drop >= 0")
        con = Console(stderr=True)
        stats = learn_from_file(
            bundle, inputs, state_out, mode, reward, progress=True, guard=not no_guard,
            check=check_set,
            every=every, max_drop=max_drop, floor=floor, report=lambda line: con.print(line),
        )  # fmt: skip
        t = Table(title="plasticity statistics")
        for c in ("rule", "statistic", "value"):
            t.add_column(c, justify="right" if c == "value" else "left")
        for name, d in stats.items():
            for k, v in sorted(d.items()):
                t.add_row(name, k, _fmt(v))
        Console().print(t)
        if state_out is not None:
            Console().print(f"state saved to {state_out}")


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
