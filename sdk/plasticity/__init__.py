"""neuroplast.plasticity: local learning rules that run on the device.

Rules are frozen parameter dataclasses plus pure update functions with explicit state
(weights ``(n_post, n_pre)``; traces, thresholds, subspaces as NamedTuples), registered
as :class:`RuleSpec` data (``RULE_SPECS``; :func:`register_rule` adds user rules). They work
on float weights and, through :func:`quantized_apply` (unbiased stochastic rounding
with a seeded generator), on int8 weights; :class:`IntSTDPParams` (rule ``int_stdp``)
is the all-integer STDP the board firmware runs bit for bit. :class:`PlasticityEngine` attaches rules to
named layers of a :class:`~neuroplast.runtime.Runtime`; :class:`LearningGuard` rolls
back updates that hurt a held-out check; :func:`atomic_save_npz` writes state safely.
"""

from __future__ import annotations

from neuroplast.plasticity.engine import CLIP_SHARE, PLASTICITY_FORMAT, PlasticityEngine
from neuroplast.plasticity.feast import (
    FeastParams,
    FeastState,
    feast_init,
    feast_step,
    time_surface,
)
from neuroplast.plasticity.guard import LearningGuard
from neuroplast.plasticity.hebbian import (
    DeltaRuleParams,
    HebbianParams,
    LeastSquaresParams,
    OjaParams,
    delta_rule_delta,
    delta_rule_update,
    hebbian_delta,
    hebbian_update,
    oja_delta,
    oja_update,
)
from neuroplast.plasticity.hlop import (
    HLOPParams,
    HLOPState,
    hlop_add_rows,
    hlop_freeze,
    hlop_init,
    hlop_orthonormality_error,
    hlop_project,
    hlop_update,
)
from neuroplast.plasticity.homeostasis import (
    RateThresholdParams,
    SpikeThresholdParams,
    SynapticScalingParams,
    hyperactive_mask,
    rate_threshold_update,
    reference_spike_counts,
    spike_threshold_update,
    synaptic_scaling,
)
from neuroplast.plasticity.int_stdp import (
    IntSTDPParams,
    IntSTDPState,
    int_stdp_from_pair,
    int_stdp_init,
    int_stdp_step,
    seed_mix,
    xorshift32,
)
from neuroplast.plasticity.need_lr import (
    NeedLRParams,
    NeedLRState,
    label_valence,
    need_lr_init,
    need_lr_step,
)
from neuroplast.plasticity.quantized import int_bounds, quantized_apply, stochastic_round
from neuroplast.plasticity.registry import (
    RULE_KINDS,
    RULE_SPECS,
    register_rule,
    rule_from_dict,
    rule_kind,
    rule_spec,
    rule_to_dict,
)
from neuroplast.plasticity.spec import RuleSpec, StepIO
from neuroplast.plasticity.stdp import (
    DiehlCookSTDPParams,
    PairSTDPParams,
    RewardSTDPParams,
    RewardSTDPState,
    STDPState,
    SymmetricSTDPParams,
    diehl_cook_delta,
    diehl_cook_update,
    pair_stdp_delta,
    pair_stdp_update,
    reward_stdp_delta,
    reward_stdp_init,
    reward_stdp_update,
    stdp_init,
    stdp_run,
    stdp_window,
    symmetric_stdp_delta,
    symmetric_stdp_update,
)

__all__ = [
    "IntSTDPParams",
    "IntSTDPState",
    "int_stdp_from_pair",
    "int_stdp_init",
    "int_stdp_step",
    "seed_mix",
    "xorshift32",
    "PlasticityEngine",
    "PLASTICITY_FORMAT",
    "CLIP_SHARE",
    "LearningGuard",
    # STDP
    "STDPState",
    "PairSTDPParams",
    "SymmetricSTDPParams",
    "DiehlCookSTDPParams",
    "RewardSTDPParams",
    "RewardSTDPState",
    "stdp_init",
    "reward_stdp_init",
    "pair_stdp_delta",
    "pair_stdp_update",
    "symmetric_stdp_delta",
    "symmetric_stdp_update",
    "diehl_cook_delta",
    "diehl_cook_update",
    "reward_stdp_delta",
    "reward_stdp_update",
    "stdp_window",
    "stdp_run",
    # rate-based
    "HebbianParams",
    "OjaParams",
    "DeltaRuleParams",
    "LeastSquaresParams",
    "hebbian_delta",
    "hebbian_update",
    "oja_delta",
    "oja_update",
    "delta_rule_delta",
    "delta_rule_update",
    # HLOP
    "HLOPParams",
    "HLOPState",
    "hlop_init",
    "hlop_add_rows",
    "hlop_freeze",
    "hlop_update",
    "hlop_project",
    "hlop_orthonormality_error",
    # homeostasis
    "SpikeThresholdParams",
    "RateThresholdParams",
    "SynapticScalingParams",
    "spike_threshold_update",
    "rate_threshold_update",
    "synaptic_scaling",
    "reference_spike_counts",
    "hyperactive_mask",
    "NeedLRParams",
    "NeedLRState",
    "need_lr_init",
    "need_lr_step",
    "label_valence",
    # FEAST
    "FeastParams",
    "FeastState",
    "feast_init",
    "feast_step",
    "time_surface",
    # integer mode
    "stochastic_round",
    "quantized_apply",
    "int_bounds",
    # registry
    "RULE_KINDS",
    "RULE_SPECS",
    "RuleSpec",
    "StepIO",
    "register_rule",
    "rule_spec",
    "rule_kind",
    "rule_to_dict",
    "rule_from_dict",
]
