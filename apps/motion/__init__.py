"""Event-camera motion detection with heterogeneous synaptic delays (HD-SNN).

Grimaldi & Perrinet (Biol. Cybern. 2023): a causal 3-D kernel over polarity x delay
x space turns event streams into per-class motion evidence. This package holds the
event I/O (:mod:`.io`), an ESIM-style simulator over natural-statistics scenes
(:mod:`.simulate`), the torch trainer (:mod:`.model`, torch imported lazily), the
event-driven runtime layer (:mod:`.event_layer`, cost = events x non-zero taps) and
its Graph IR node ``HDDelayConv`` (:mod:`.runtime_node`, registered when this package
is imported), the labelled movie sets (:mod:`.datasets`), accuracy metrics
(:mod:`.metrics`), figures (:mod:`.plots`), a homeostatic output threshold
(:mod:`.homeostasis`) and streaming detection (:mod:`.detect`).
"""

from __future__ import annotations

from neuroplast.apps.motion.detect import Detection, detect_stream
from neuroplast.apps.motion.event_layer import (
    EventLayerState,
    TapTable,
    compile_taps,
    hd_event_chunk,
    hd_event_run,
    init_event_state,
)
from neuroplast.apps.motion.events import (
    EVENT_DTYPE,
    events_to_voxels,
    make_events,
    validate_events,
)
from neuroplast.apps.motion.homeostasis import (
    HomeostasisParams,
    homeostasis_runtime,
    run_homeostasis,
)
from neuroplast.apps.motion.io import (
    read_events,
    read_labels,
    read_npz,
    write_events,
    write_npz,
)
from neuroplast.apps.motion.metrics import accuracy_per_step, score
from neuroplast.apps.motion.model import (
    HDKernel,
    HDParams,
    TrainParams,
    delay_mask,
    init_kernel,
    predict_dense,
    prune_kernel,
    prune_mask_of,
    split_weight,
    train_hd,
)
from neuroplast.apps.motion.runtime_node import HDDelayConv, hd_graph
from neuroplast.apps.motion.simulate import (
    N_CLASSES,
    DVSParams,
    Movie,
    SceneParams,
    class_velocities,
    dvs_events,
    simulate_movie,
)

__all__ = [
    "EVENT_DTYPE",
    "make_events",
    "validate_events",
    "events_to_voxels",
    "read_events",
    "read_labels",
    "read_npz",
    "write_events",
    "write_npz",
    "N_CLASSES",
    "SceneParams",
    "DVSParams",
    "Movie",
    "class_velocities",
    "dvs_events",
    "simulate_movie",
    "HDParams",
    "TrainParams",
    "HDKernel",
    "delay_mask",
    "init_kernel",
    "train_hd",
    "predict_dense",
    "accuracy_per_step",
    "score",
    "HDDelayConv",
    "hd_graph",
    "prune_kernel",
    "prune_mask_of",
    "split_weight",
    "TapTable",
    "EventLayerState",
    "compile_taps",
    "init_event_state",
    "hd_event_chunk",
    "hd_event_run",
    "HomeostasisParams",
    "homeostasis_runtime",
    "run_homeostasis",
    "Detection",
    "detect_stream",
]
