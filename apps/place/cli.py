"""``neuroplast place synth|train|eval|query``: thin wrappers over the place-recognition API.

Data folders hold one sub-folder per traverse (``ref_a/``, ``ref_b/``, ``query/`` from
``synth``; Nordland's ``spring/ fall/ summer/`` with ``--nordland``); frame i of every traverse
shows place i. Frames are loaded as grey images of ``LOAD_SIZE`` (twice the network's input,
so the jittered training views have pixels to shift by).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.paths import output_dir

__all__ = ["register", "load_dataset", "LOAD_SIZE"]

LOAD_SIZE = (56, 56)


def load_dataset(
    data: Path,
    refs: list[str],
    query: str,
    nordland: bool = False,
    skip: int = 1,
    max_places: int | None = None,
) -> tuple[list[Any], Any]:
    """Reference traverses and query traverse from a data folder (images resized on load)."""
    from neuroplast.apps.place.data import load_nordland, load_reference_query

    if nordland:
        return load_nordland(
            data,
            reference=tuple(refs),
            query=query,
            skip=skip,
            max_places=max_places,
            size=LOAD_SIZE,
        )
    return load_reference_query(
        [data / r for r in refs], data / query, skip=skip, max_places=max_places, size=LOAD_SIZE
    )


def _console() -> Any:
    from rich.console import Console

    return Console()


def _check_cal_fraction(fraction: float) -> None:
    """``--cal-fraction``, checked before any work: a fraction in [0, 1]."""
    from neuroplast.checks import require_real
    from neuroplast.errors import DataError

    require_real(DataError, "place", 0.0, 1.0, cal_fraction=fraction)


def register(app: Any) -> None:
    """Add the ``place`` command group to the main ``neuroplast`` Typer app."""
    import typer

    place = typer.Typer(help="Visual place recognition with region-specific spiking place cells.")
    app.add_typer(place, name="place")

    @place.command("synth")
    def synth_cmd(
        out: Path = typer.Argument(..., help="Output folder (ref_a/, ref_b/, query/ of PNGs)."),
        places: int = typer.Option(200, help="Number of places along the route."),
        seed: int = typer.Option(0, help="Route seed."),
        stride: int = typer.Option(24, help="Pixels between consecutive places."),
    ) -> None:
        """Generate a synthetic route: two reference traverses and a query traverse.

        \b
        Examples:
            neuroplast place synth route/ --places 200
        """
        from neuroplast.apps.place.data import save_traverse
        from neuroplast.apps.place.synth import make_route

        _, refs, query = make_route(places, seed=seed, stride=stride)
        for t in (*refs, query):
            save_traverse(t, out / t.name)
        _console().print(f"wrote {places} places x 3 traverses to {out}")

    @place.command("train")
    def train_cmd(
        data: Path = typer.Argument(..., help="Data folder with one sub-folder per traverse."),
        out: Path = typer.Option(
            output_dir("place", "place_ensemble.npz"), "--out", "-o", help="Ensemble file to write."
        ),
        refs: str = typer.Option("ref_a,ref_b", help="Reference traverse folders (comma list)."),
        query: str = typer.Option("query", help="Query traverse folder (calibration split)."),
        nordland: bool = typer.Option(False, help="Nordland layout (spring,fall / summer)."),
        skip: int = typer.Option(1, help="Use every skip-th frame (Nordland: 8)."),
        max_places: int = typer.Option(None, help="Limit the number of places."),
        region_size: int = typer.Option(25, help="Places per module."),
        neurons: int = typer.Option(4, help="View neurons per place."),
        epochs: int = typer.Option(4, help="Training passes over each region's views."),
        workers: int = typer.Option(1, help="Parallel training processes (or Ray CPUs)."),
        ray: str = typer.Option(
            None, help="Train on Ray: 'local', 'auto' (running cluster) or host:port."
        ),
        cal_fraction: float = typer.Option(0.18, help="Leading query fraction used to pick T."),
        bundle: Path = typer.Option(None, help="Also write a runtime bundle here."),
        seed: int = typer.Option(0),
    ) -> None:
        """Learn one module per region, calibrate the hyperactivity threshold T.

        \b
        Examples:
            neuroplast place train route/ -o ensemble.npz --bundle place.zip
            neuroplast place train nordland/ --nordland --skip 8 --workers 2
        """
        from dataclasses import replace

        from neuroplast.apps.place.ensemble import (
            EnsembleParams,
            calibrate_threshold,
            train_ensemble,
        )
        from neuroplast.apps.place.export import save_ensemble_bundle
        from neuroplast.apps.place.module import PlaceParams
        from neuroplast.apps.place.preprocess import preprocess_batch
        from neuroplast.progress import Progress

        _check_cal_fraction(cal_fraction)
        if nordland and refs == "ref_a,ref_b":
            refs, query = "spring,fall", "summer" if query == "query" else query
        ref_t, q_t = load_dataset(data, refs.split(","), query, nordland, skip, max_places)
        params = EnsembleParams(
            region_size=region_size,
            place=PlaceParams(neurons_per_place=neurons, epochs=epochs),
        )
        ids = ref_t[0].place_ids
        with Progress("learning regions", total=-(-len(ids) // region_size), every_s=5) as prog:
            ens = train_ensemble(
                np.stack([t.images for t in ref_t]),
                ids,
                params,
                workers=workers,
                ray_address=ray,
                seed=seed,
                progress=lambda done, total: prog.update(done, total=total),
            )
        pp = params.place.preprocess
        ens = ens.with_reference_stats(
            np.concatenate([preprocess_batch(t.images, pp) for t in ref_t])
        )
        n_cal = max(1, int(round(cal_fraction * len(q_t))))
        xq = preprocess_batch(q_t.images[:n_cal], pp)
        t, table = calibrate_threshold(ens, ens.potentials(xq), q_t.place_ids[:n_cal])
        ens = replace(ens, threshold=t)
        ens.save(out)
        if bundle is not None:
            save_ensemble_bundle(ens, bundle)
        _console().print(
            f"{len(ens.modules)} modules, {ens.n_neurons} neurons; T={t} "
            f"(calibration R@1 {table[t]:.3f}, {table[0]:.3f} without) -> {out}"
        )

    @place.command("eval")
    def eval_cmd(
        ensemble: Path = typer.Argument(..., help="Ensemble .npz from `place train`."),
        data: Path = typer.Argument(..., help="Data folder."),
        refs: str = typer.Option("ref_a,ref_b"),
        query: str = typer.Option("query"),
        nordland: bool = typer.Option(False),
        skip: int = typer.Option(1),
        max_places: int = typer.Option(None),
        cal_fraction: float = typer.Option(0.18, help="Leading queries excluded (calibration)."),
        seq: int = typer.Option(0, help="Also report sequence matching over this many queries."),
        plots: Path = typer.Option(None, help="Folder for PR and Recall@N plots (PNG)."),
        as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
        minimum: float = typer.Option(
            None, "--min", help="Exit 1 if the ensemble's Recall@1 is below this (0..1)."
        ),
    ) -> None:
        """Recall@1/5/10 and PR-AUC of the ensemble and of SAD on the test queries.

        With --seq, both also with sequence matching (a separate add-on).

        \b
        Examples:
            neuroplast place eval ensemble.npz route/ --plots plots/
            neuroplast place eval ensemble.npz route/ --json --min 0.5
        """
        from rich.table import Table

        from neuroplast.apps.place.baselines import sad_scores
        from neuroplast.apps.place.ensemble import Ensemble
        from neuroplast.apps.place.metrics import pr_auc, recall_at_n
        from neuroplast.apps.place.preprocess import preprocess_batch
        from neuroplast.apps.place.sequence import sequence_scores
        from neuroplast.errors import DataError

        ens = Ensemble.load(ensemble)
        _check_cal_fraction(cal_fraction)
        if nordland and refs == "ref_a,ref_b":
            refs, query = "spring,fall", "summer" if query == "query" else query
        ref_t, q_t = load_dataset(data, refs.split(","), query, nordland, skip, max_places)
        pp = ens.params.place.preprocess
        n_cal = int(round(cal_fraction * len(q_t)))
        xq = preprocess_batch(q_t.images, pp)
        col = {int(p): k for k, p in enumerate(ens.places)}
        row = {int(p): i for i, p in enumerate(ref_t[0].place_ids)}
        try:
            gt = np.array([col[int(p)] for p in q_t.place_ids[n_cal:]])
            xr = [preprocess_batch(t.images, pp)[[row[int(p)] for p in ens.places]] for t in ref_t]
        except KeyError as exc:
            raise DataError(
                f"{data}: place {exc} is not in both the ensemble and the data"
            ) from None
        full = {
            f"spiking ensemble (T={ens.threshold})": ens.scores(xq),
            "SAD (patch-normalised)": sad_scores(xq, xr),
        }
        if seq:
            full.update(
                {
                    f"{k} + sequence (L={seq})": sequence_scores(v, seq)
                    for k, v in list(full.items())
                }
            )
        rows = {k: v[n_cal:] for k, v in full.items()}
        res = {}
        table = Table(title=f"place recognition, {len(gt)} test queries")
        for c in ("method", "R@1", "R@5", "R@10", "PR-AUC"):
            table.add_column(c)
        for name, s in rows.items():
            r = recall_at_n(s, gt)
            res[name] = {"recall": r, "pr_auc": pr_auc(s, gt)}
            table.add_row(name, *(f"{r[n]:.3f}" for n in (1, 5, 10)), f"{res[name]['pr_auc']:.3f}")
        if as_json:
            print(json.dumps({"queries": len(gt), "methods": res}, indent=1))
        else:
            _console().print(table)
        if plots is not None:
            from neuroplast.apps.place.plots import plot_pr, plot_recall

            plot_pr(rows, gt, plots / "pr.png", len(ens.places))
            plot_recall(rows, gt, plots / "recall_at_n.png", len(ens.places))
        r1 = next(iter(res.values()))["recall"][1]  # the spiking ensemble comes first
        if minimum is not None and r1 < minimum:
            from neuroplast.cli import check_failed

            check_failed(f"ensemble Recall@1 {r1:.3f} is below --min {minimum:g}")

    @place.command("query")
    def query_cmd(
        model: Path = typer.Argument(..., help="Ensemble .npz or a runtime bundle folder/zip."),
        images: list[Path] = typer.Argument(..., help="Query image files."),
        top: int = typer.Option(5, help="Places to list per image."),
    ) -> None:
        """Best-matching places for query images (numpy model or neuroplast runtime).

        \b
        Examples:
            neuroplast place query ensemble.npz route/query/0007.png --top 3
        """
        from rich.table import Table

        import neuroplast
        from neuroplast.apps.place.data import load_image
        from neuroplast.apps.place.ensemble import Ensemble
        from neuroplast.apps.place.export import runtime_query
        from neuroplast.apps.place.preprocess import preprocess_batch

        imgs = [load_image(f) for f in images]
        if model.suffix == ".npz":
            ens = Ensemble.load(model)
            ids, sc = ens.query(preprocess_batch(imgs, ens.params.place.preprocess), top)
        else:
            ids, sc = runtime_query(neuroplast.load(model), imgs, top)
        table = Table(title="place matches")
        table.add_column("image")
        table.add_column("places (score)")
        for f, i, s in zip(images, ids, sc):
            table.add_row(f.name, ", ".join(f"{a} ({b:.2f})" for a, b in zip(i, s)))
        _console().print(table)
