"""Registry of rule kinds: ``(kind, params)`` pairs serialise to JSON, never code.

``rule_to_dict(params) -> {"kind": ..., "params": {...}}`` and ``rule_from_dict``
look a kind up here; unknown kinds or fields raise :class:`PlasticityError`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from neuroplast.errors import PlasticityError
from neuroplast.plasticity.feast import FeastParams
from neuroplast.plasticity.hebbian import DeltaRuleParams, HebbianParams, OjaParams
from neuroplast.plasticity.hlop import HLOPParams
from neuroplast.plasticity.homeostasis import (
    RateThresholdParams,
    SpikeThresholdParams,
    SynapticScalingParams,
)
from neuroplast.plasticity.int_stdp import IntSTDPParams
from neuroplast.plasticity.need_lr import NeedLRParams
from neuroplast.plasticity.stdp import (
    DiehlCookSTDPParams,
    PairSTDPParams,
    RewardSTDPParams,
    SymmetricSTDPParams,
)

__all__ = ["RULE_KINDS", "rule_kind", "rule_to_dict", "rule_from_dict", "register_rule"]

RULE_KINDS: dict[str, type] = {
    "pair_stdp": PairSTDPParams,
    "symmetric_stdp": SymmetricSTDPParams,
    "diehl_cook_stdp": DiehlCookSTDPParams,
    "reward_stdp": RewardSTDPParams,
    "int_stdp": IntSTDPParams,
    "hebbian": HebbianParams,
    "oja": OjaParams,
    "delta_rule": DeltaRuleParams,
    "hlop": HLOPParams,
    "spike_threshold": SpikeThresholdParams,
    "rate_threshold": RateThresholdParams,
    "synaptic_scaling": SynapticScalingParams,
    "feast": FeastParams,
    "need_lr": NeedLRParams,
}


def register_rule(kind: str, params_cls: type) -> None:
    """Register a frozen params dataclass under ``kind`` (apps may add their own)."""
    if not dataclasses.is_dataclass(params_cls):
        raise PlasticityError(f"register_rule: {params_cls!r} is not a dataclass")
    if kind in RULE_KINDS and RULE_KINDS[kind] is not params_cls:
        raise PlasticityError(f"register_rule: kind {kind!r} is already registered")
    RULE_KINDS[kind] = params_cls


def rule_kind(params: object) -> str:
    """The registered kind of a params instance."""
    for k, cls in RULE_KINDS.items():
        if type(params) is cls:
            return k
    raise PlasticityError(f"{type(params).__name__} is not a registered plasticity rule")


def rule_to_dict(params: object) -> dict[str, Any]:
    """``{"kind": kind, "params": {field: value}}`` (JSON-safe; inf as string)."""
    kind = rule_kind(params)
    out = {}
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if isinstance(v, float) and math.isinf(v):
            v = "inf" if v > 0 else "-inf"
        out[f.name] = v
    return {"kind": kind, "params": out}


def rule_from_dict(d: object) -> object:
    """Inverse of :func:`rule_to_dict`; validates kind, field names and value types."""
    if not isinstance(d, dict) or not isinstance(d.get("kind"), str):
        raise PlasticityError(f"rule entry must be {{'kind': str, 'params': dict}}, got {d!r}")
    kind = d["kind"]
    cls = RULE_KINDS.get(kind)
    if cls is None:
        raise PlasticityError(f"unknown plasticity rule kind {kind!r}; known: {sorted(RULE_KINDS)}")
    raw = d.get("params", {})
    if not isinstance(raw, dict):
        raise PlasticityError(f"rule {kind!r}: 'params' must be an object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, v in raw.items():
        if name not in fields:
            raise PlasticityError(f"rule {kind!r}: unknown parameter {name!r}")
        default = getattr(cls(), name) if _has_defaults(cls) else None
        if v in ("inf", "-inf") and isinstance(default, float):
            v = float(v)
        if isinstance(default, bool) or isinstance(v, bool):
            ok = isinstance(v, bool) and isinstance(default, bool)
        elif isinstance(default, float):
            ok = isinstance(v, (int, float))
            v = float(v) if ok else v
        elif isinstance(default, int):
            ok = isinstance(v, int)
        elif isinstance(default, str):
            ok = isinstance(v, str)
        else:
            ok = isinstance(v, (int, float, str))
        if not ok:
            raise PlasticityError(
                f"rule {kind!r}: parameter {name!r} has bad type {type(v).__name__}"
            )
        kwargs[name] = v
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise PlasticityError(f"rule {kind!r}: {exc}") from None


def _has_defaults(cls: type) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )
