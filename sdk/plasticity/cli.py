"""CLI commands of neuroplast.plasticity (wired into the ``neuroplast`` console script).

* ``neuroplast plasticity-rules``: the registered rule kinds and their parameters.
* ``neuroplast learn BUNDLE INPUTS.npy``: run a bundle with its plasticity rules on a
  ``(T, *input_shape)`` array, print the learning statistics, optionally save the
  learned state atomically.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    import typer

__all__ = ["register", "rules_table", "learn_from_file"]


def rules_table() -> list[tuple[str, str, str]]:
    """``(kind, class name, "field=default, ...")`` for every registered rule."""
    from neuroplast.plasticity.registry import RULE_KINDS

    rows = []
    for kind, cls in sorted(RULE_KINDS.items()):
        fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(cls))
        rows.append((kind, cls.__name__, fields))
    return rows


def learn_from_file(
    bundle: Path,
    inputs: Path,
    state_out: Path | None = None,
    mode: str | None = None,
    reward: float | None = None,
    progress: bool = False,
) -> dict:
    """Load ``bundle``, enable learning, step through ``inputs`` (read by
    :func:`neuroplast.arrayfile.load_array`), save the state to ``state_out`` atomically; returns ``rt.plasticity.stats``."""

    import neuroplast
    from neuroplast.arrayfile import load_array
    from neuroplast.errors import DataError, PlasticityError

    rt = neuroplast.load(bundle, mode=mode)
    if not rt.plasticity.has_rules():
        raise PlasticityError(f"bundle {str(bundle)!r} has no plasticity rules (plasticity.json)")
    seq = load_array(inputs, shape=rt.shapes[rt.inputs[0]])
    if seq.ndim < 2:
        raise DataError(f"inputs must be (T, *input_shape), got shape {seq.shape}")
    rt.learn(True)
    from neuroplast.progress import Progress

    with Progress("learning (steps)", total=seq.shape[0], live=None if progress else False) as bar:
        for t in range(seq.shape[0]):
            rt.step(seq[t], reward=reward)
            if progress and (t % 100 == 99 or t == seq.shape[0] - 1):
                bar.update(t + 1)
    if state_out is not None:
        rt.save_state(state_out)
    return rt.plasticity.stats(rt)


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
    ) -> None:
        """Run a bundle with learning on over INPUTS and print the learning statistics.

        \b
        Examples:
            neuroplast learn model.zip stream.npy --state-out learned.npz
        """
        stats = learn_from_file(bundle, inputs, state_out, mode, reward, progress=True)
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
