"""Registry of rules: ``kind -> RuleSpec`` (params class + update functions + declared
state + layer kinds); ``(kind, params)`` pairs serialise to JSON, never code.

``rule_to_dict(params) -> {"kind": ..., "params": {...}}`` and ``rule_from_dict``
look a kind up here; unknown kinds or fields raise :class:`PlasticityError`.
:func:`register_rule` adds a user rule (its params class and update function) to the
same table the built-in rules use; the engine dispatches through it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from neuroplast.errors import PlasticityError
from neuroplast.plasticity import feast, hebbian, hlop, homeostasis, int_stdp, stdp
from neuroplast.plasticity.need_lr import NeedLRParams
from neuroplast.plasticity.spec import RuleSpec, StateDecl, no_state

__all__ = [
    "RULE_KINDS",
    "RULE_SPECS",
    "rule_kind",
    "rule_spec",
    "rule_to_dict",
    "rule_from_dict",
    "register_rule",
]

#: kind -> RuleSpec of every rule the engine can run
RULE_SPECS: dict[str, RuleSpec] = {
    s.kind: s for m in (stdp, int_stdp, hebbian, hlop, homeostasis, feast) for s in m.SPECS
}
#: kind -> params class (every serialisable rule, including ``need_lr``, a meta-rule
#: over an optimiser's learning rate that is not attached to a layer)
RULE_KINDS: dict[str, type] = {k: s.params for k, s in RULE_SPECS.items()}
RULE_KINDS["need_lr"] = NeedLRParams


def register_rule(
    kind: str,
    params_cls: type,
    update: Callable[..., tuple[Any, dict]] | None = None,
    *,
    state: Callable[[Any, int, int], StateDecl] = no_state,
    target: str = "synapses",
    layers: tuple[str, ...] = ("Linear",),
    batch1: bool = False,
    post: bool = True,
    fallback_bounds: tuple[float, float] = (-1.0, 1.0),
    pre: bool = True,
    update_int: Callable[..., Any] | None = None,
    init: Callable[[Any, int, int], dict] | None = None,
    resolve: Callable[[Any, Any], Any] | None = None,
    update_q: Callable[..., tuple[Any, dict]] | None = None,
    check_state: Callable[[Any, dict], None] | None = None,
) -> RuleSpec:
    """Register a rule: a frozen params dataclass under ``kind`` and its pure float
    ``update(p, io, state) -> (dw, new_state)`` (see :class:`RuleSpec` for the other
    fields); integer mode rounds ``dw`` stochastically onto the int8 weights unless
    ``update_int`` says otherwise. ``update_q(p, qio, state) -> (q_new, new_state)``
    makes an *integer-native* rule (weight codes in, codes out, as on a board; runs only
    in integer mode, and the engine refuses a result of the wrong shape, not integral or
    outside the layer's code range); ``check_state(p, state)`` validates loaded state
    values. Without ``update`` and ``update_q`` the kind only serialises (the engine
    refuses to attach it). Returns the spec."""
    if not isinstance(kind, str) or not kind.isidentifier():
        raise PlasticityError(f"register_rule: kind must be an identifier, got {kind!r}")
    if not dataclasses.is_dataclass(params_cls) or not isinstance(params_cls, type):
        raise PlasticityError(f"register_rule: {params_cls!r} is not a dataclass")
    if not params_cls.__dataclass_params__.frozen:
        raise PlasticityError(f"register_rule: {params_cls.__name__} must be frozen")
    if kind in RULE_KINDS and RULE_KINDS[kind] is not params_cls:
        raise PlasticityError(f"register_rule: kind {kind!r} is already registered")
    if any(c is params_cls for k, c in RULE_KINDS.items() if k != kind):
        raise PlasticityError(f"register_rule: {params_cls.__name__} is already registered")
    if target not in ("synapses", "neurons", "inputs"):
        raise PlasticityError(
            f"register_rule: target must be synapses|neurons|inputs, got {target!r}"
        )
    for name, fn in (("update", update), ("update_q", update_q), ("check_state", check_state)):
        if fn is not None and not callable(fn):
            raise PlasticityError(f"register_rule: {name} must be callable")
    if update_q is not None and target != "synapses":
        raise PlasticityError("register_rule: update_q needs target='synapses' (weight codes)")
    RULE_KINDS[kind] = params_cls
    extra: dict[str, Any] = {"update_int": update_int} if update_int is not None else {}
    if update is None and update_q is not None:
        update = _integer_only(kind)
    spec = RuleSpec(kind, params_cls, update, state, target, tuple(layers), batch1, post, pre,
                    fallback_bounds=fallback_bounds, init=init, resolve=resolve,
                    update_q=update_q, check_state=check_state, **extra)  # fmt: skip
    if update is not None:
        RULE_SPECS[kind] = spec
    return spec


def _integer_only(kind: str) -> Callable[..., tuple[Any, dict]]:
    def refuse(p: Any, io: Any, state: dict) -> tuple[Any, dict]:
        raise PlasticityError(
            f"rule {kind!r} is integer-only: load the runtime in integer mode (mode='int')"
        )

    return refuse


def rule_kind(params: object) -> str:
    """The registered kind of a params instance."""
    for k, cls in RULE_KINDS.items():
        if type(params) is cls:
            return k
    raise PlasticityError(f"{type(params).__name__} is not a registered plasticity rule")


def rule_spec(params: object) -> RuleSpec:
    """The :class:`RuleSpec` of a params instance (raises for serialise-only kinds)."""
    kind = rule_kind(params)
    spec = RULE_SPECS.get(kind)
    if spec is None:
        if kind == "need_lr":
            raise PlasticityError(
                "need_lr is a meta-rule over an optimiser's learning rate, not a layer rule; "
                "use neuroplast.plasticity.need_lr_step with your model's look-ahead"
            )
        raise PlasticityError(f"rule {kind!r} has no update function (register_rule(update=...))")
    return spec


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


def _field_ok(v: Any, default: Any, f: dataclasses.Field) -> tuple[bool, Any]:
    optional = default is None or "None" in str(f.type)
    if v is None:
        return optional, v
    if v in ("inf", "-inf") and (isinstance(default, float) or optional):
        return True, float(v)
    if isinstance(default, bool) or isinstance(v, bool):
        return isinstance(v, bool) and isinstance(default, bool), v
    if isinstance(default, float) or (optional and "float" in str(f.type)):
        ok = isinstance(v, (int, float))
        return ok, float(v) if ok else v
    if isinstance(default, int):
        return isinstance(v, int), v
    if isinstance(default, str):
        return isinstance(v, str), v
    return isinstance(v, (int, float, str)), v


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
        ok, v = _field_ok(v, default, fields[name])
        if not ok:
            raise PlasticityError(
                f"rule {kind!r}: parameter {name!r} has bad type {type(v).__name__}"
            )
        kwargs[name] = v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PlasticityError(f"rule {kind!r}: {exc}") from None


def _has_defaults(cls: type) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)
    )
