"""``neuroplast export`` and ``neuroplast compare``: thin wrappers over
:func:`neuroplast.quantize.export.export` and :func:`neuroplast.quantize.compare.compare`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(app: Any) -> None:
    """Add the toolchain commands to the ``neuroplast`` Typer app."""
    import typer

    @app.command("export")
    def export_cmd(
        model: Path = typer.Argument(
            ..., help="QAT checkpoint MODEL.pt (a recipe's or your own model's)."
        ),
        to: str = typer.Option(..., "--to", help="onnx | tflite | bundle | nir | sfq"),
        bits: int = typer.Option(None, "--bits", help="Weight bits (must match the checkpoint)."),
        output: Path = typer.Option(..., "--out", "-o", help="Output file or folder."),
        io: str = typer.Option("float", "--io", help="TFLite input/output type: float | int8"),
        nir_time_step: float = typer.Option(
            None, "--nir-time-step", help="NIR: the file's time step in s (default: the model's dt)"
        ),
        nir_r_mode: str = typer.Option(
            "spec", "--nir-r-mode", help="NIR: spec | fold (input gains in the weights, for Norse)"
        ),
    ) -> None:
        """Export a QAT checkpoint to ONNX (QCDQ), TFLite int8, a bundle, NIR or SFQ.

        A recipe checkpoint is rebuilt from its recipe; a user model (saved without a
        recipe) is exported from the graph stored in the file (ONNX: QDQ from the graph).

        \b
        Examples:
            neuroplast export model.pt --to tflite -o model.tflite
            neuroplast export model.pt --to bundle -o model.zip
        """
        import warnings

        from rich.console import Console

        from neuroplast.quantize import quiet_third_party
        from neuroplast.quantize.export import EXPORTERS, export
        from neuroplast.quantize.recipes import open_checkpoint

        ck = open_checkpoint(model, weight_bits=bits)
        opts: dict[str, Any] = {"io": io} if to == "tflite" else {}
        if to == "nir":
            # a user model's graph is per step (beta): write the step the peers assume
            step = EXPORTERS["nir"].dt if nir_time_step is None and ck.model is None else None
            opts.update(time_step=nir_time_step or step, r_mode=nir_r_mode)
        source = ck.graph if ck.model is None else ck.model
        with (
            Console().status(f"exporting {model.name} -> {to} ({EXPORTERS.get(to)})"),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always", UserWarning)
            quiet_third_party()
            out = export(source, output, to=to, example_input=ck.example_input(), **opts)
        for w in caught:  # e.g. NIRPeerWarning: a peer would misread the file
            Console(stderr=True).print(f"[yellow]warning:[/yellow] {w.message}")
        size = (
            sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            if out.is_dir()
            else out.stat().st_size
        )
        what = f"recipe {ck.recipe}" if ck.recipe else "user model"
        Console().print(f"wrote [bold]{out}[/bold] ({size:,} bytes, {what}, {to})")

    @app.command("compare")
    def compare_cmd(
        a: Path = typer.Argument(
            ..., help="First artifact: .pt checkpoint, bundle, .nir, .onnx or .tflite."
        ),
        b: Path = typer.Argument(..., help="Second artifact."),
        input: Path = typer.Option(
            ..., "--input", "-i", help=".npy batch (B, *shape), channels first."
        ),
        minimum: float = typer.Option(
            None, "--min", help="Exit 1 if the argmax agreement is below this (0..1)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """Run two artifacts on one input batch, each in its own engine, and compare them.

        Prints the max / mean abs difference, the max difference in output LSBs and the
        argmax agreement.

        \b
        Examples:
            neuroplast compare model.pt model.tflite -i batch.npy
            neuroplast compare model.tflite model.zip -i batch.npy --min 0.99 --json
        """
        from rich.console import Console
        from rich.table import Table

        from neuroplast.arrayfile import load_array
        from neuroplast.cli import check_failed
        from neuroplast.quantize.compare import compare

        x = load_array(input)
        r = compare(a, b, x)
        if as_json:
            print(json.dumps(dataclasses.asdict(r)))
        else:
            t = Table(title=f"{a.name} vs {b.name} ({r.n} inputs)")
            for col in ("max abs diff", "mean abs diff", "max LSB diff", "argmax agreement"):
                t.add_column(col, justify="right")
            t.add_row(
                f"{r.max_abs:.6g}",
                f"{r.mean_abs:.6g}",
                "-" if r.max_lsb is None else f"{r.max_lsb:.2f}",
                f"{100 * r.argmax_agree:.1f}%",
            )
            Console().print(t)
        if minimum is not None and r.argmax_agree < minimum:
            check_failed(f"argmax agreement {r.argmax_agree:.4f} is below --min {minimum:g}")
