"""Visual place recognition with ensembles of compact region-specific spiking networks.

After Hussaini, Milford & Fischer (ICRA 2023, VPRSNN: one small network per region of 25
places, hyperactive-neuron regulariser) and Hines et al. (VPRTempo: single-spike temporal
code, one output group per place, supervised local learning). Each region's place cells
learn on the device through the plasticity engine (Hebbian with a teacher spike plus
synaptic scaling); queries run on the neuroplast runtime in float or integer mode
(:mod:`neuroplast.apps.place.export`). Sequence matching (:mod:`.sequence`) is a separate
add-on over any score matrix.

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
    region_jobs,
    train_ensemble,
    train_regions,
)
from neuroplast.apps.place.export import (
    ensemble_graph,
    runtime_query,
    runtime_scores,
    save_ensemble_bundle,
)
from neuroplast.apps.place.metrics import pr_auc, precision_recall, recall_at_n
from neuroplast.apps.place.module import PlaceModule, PlaceParams, train_module
from neuroplast.apps.place.preprocess import (
    PreprocessParams,
    ViewParams,
    graded_spikes,
    jitter_views,
    latency_encode,
    patch_normalize,
    preprocess,
    preprocess_batch,
)
from neuroplast.apps.place.sequence import sequence_scores
from neuroplast.apps.place.single import SingleNetwork, train_single
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
    "PlaceModule",
    "PlaceParams",
    "PreprocessParams",
    "RouteParams",
    "SingleNetwork",
    "SyntheticRoute",
    "Traverse",
    "ViewParams",
    "calibrate_threshold",
    "ensemble_graph",
    "graded_spikes",
    "jitter_views",
    "latency_encode",
    "load_image",
    "load_nordland",
    "load_reference_query",
    "load_traverse",
    "make_route",
    "patch_normalize",
    "pr_auc",
    "precision_recall",
    "preprocess",
    "preprocess_batch",
    "recall_at_n",
    "region_jobs",
    "runtime_query",
    "runtime_scores",
    "sad_scores",
    "save_ensemble_bundle",
    "save_traverse",
    "sequence_scores",
    "train_ensemble",
    "train_module",
    "train_regions",
    "train_single",
]
