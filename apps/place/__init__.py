"""Visual place recognition with ensembles of compact region-specific SNNs.

After Hussaini, Milford & Fischer (ICRA 2023, VPRSNN): each module is a small Diehl &
Cook-style spiking network trained with local rules (STDP, adaptive threshold, weight
normalisation) on one region of places; hyperactive neurons (firing for many reference places)
are masked at query time. Everything on the query path is numpy and runs on the device; the
trained ensemble exports to a neuroplast bundle (:mod:`neuroplast.apps.place.export`).

Public API: the names in ``__all__``.
"""

from neuroplast.apps.place.baselines import sad_scores
from neuroplast.apps.place.data import (
    Traverse,
    load_image,
    load_nordland,
    load_reference_query,
    load_traverse,
    save_traverse,
)
from neuroplast.apps.place.ensemble import (
    DEFAULT_THRESHOLDS,
    Ensemble,
    EnsembleParams,
    calibrate_threshold,
    split_regions,
    train_ensemble,
    train_single,
)
from neuroplast.apps.place.export import (
    ensemble_graph,
    runtime_query,
    runtime_scores,
    save_ensemble_bundle,
)
from neuroplast.apps.place.metrics import pr_auc, precision_recall, recall_at_n
from neuroplast.apps.place.module import (
    ModuleParams,
    PlaceModule,
    train_module,
    train_modules,
)
from neuroplast.apps.place.preprocess import (
    PreprocessParams,
    latency_encode,
    patch_normalize,
    poisson_encode,
    preprocess,
    preprocess_batch,
)
from neuroplast.apps.place.synth import (
    CONDITIONS,
    Condition,
    RouteParams,
    SyntheticRoute,
    make_route,
)

__all__ = [
    "CONDITIONS",
    "Condition",
    "DEFAULT_THRESHOLDS",
    "Ensemble",
    "EnsembleParams",
    "ModuleParams",
    "PlaceModule",
    "PreprocessParams",
    "RouteParams",
    "SyntheticRoute",
    "Traverse",
    "calibrate_threshold",
    "ensemble_graph",
    "latency_encode",
    "load_image",
    "load_nordland",
    "load_reference_query",
    "load_traverse",
    "make_route",
    "patch_normalize",
    "poisson_encode",
    "pr_auc",
    "precision_recall",
    "preprocess",
    "preprocess_batch",
    "recall_at_n",
    "runtime_query",
    "runtime_scores",
    "sad_scores",
    "save_ensemble_bundle",
    "save_traverse",
    "split_regions",
    "train_ensemble",
    "train_module",
    "train_modules",
    "train_single",
]
