"""What a plasticity rule *is*, as data: :class:`RuleSpec`.

A rule is a frozen params dataclass plus

* ``update(p, io, state) -> (dw, new_state)``: the pure float update. ``io`` is a
  :class:`StepIO` (weights, pre/post activity in real units, reward, target);
  ``dw`` is the weight change in real units (``None``: weights unchanged), ``state``
  the rule's own arrays (never mutated: a new dict is returned);
* ``update_int(q, dw, scale, rng, w_min, w_max, q_min, q_max) -> q_new``: how the
  float update lands on integer weights (default: unbiased stochastic rounding,
  :func:`~neuroplast.plasticity.quantized_apply`);
* ``state(p, n_post, n_pre) -> {name: (shape, dtype)}``: the arrays it keeps
  (a dimension may be a name such as ``"k"``: any size, equal wherever it appears);
  saved state is validated against this declaration before anything is applied;
* ``update_q(p, qio, state) -> (q_new, new_state)`` (optional): an *integer-native*
  rule (``int_stdp``, the board's rule) computes the new integer weights itself from a
  :class:`QStepIO` (int weights, activity as integer codes minus zero points), bit for
  bit as a microcontroller does; the engine runs it in integer mode instead of
  ``update`` + ``update_int`` (its float ``update`` may refuse), and its ``w_min`` /
  ``w_max`` are weight codes; ``check_state(p, state)`` (optional) validates loaded
  state values beyond the declared shapes and dtypes (raises ``RuntimeStateError``);
* ``target`` (``"synapses"``: a weight matrix; ``"neurons"``: the firing threshold
  ``v_th = v_th0 + theta`` of a neuron node, ``theta`` being state; ``"inputs"``: state
  learned from a layer's input, such as HLOP's subspace) and ``layers`` (the node
  kinds it applies to); ``batch1``: the rule's traces are per synapse, so it needs
  batch size 1; ``post``/``pre``: it reads postsynaptic/presynaptic activity.

The engine (:class:`~neuroplast.plasticity.PlasticityEngine`) only gathers activity,
calls ``update`` and commits ``dw``; :func:`~neuroplast.plasticity.register_rule`
adds user rules to the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from neuroplast.plasticity.quantized import quantized_apply

__all__ = ["StepIO", "QStepIO", "RuleSpec", "StateDecl", "no_state"]

#: ``{name: (shape, dtype)}``; a shape entry may be a symbol (``"k"``).
StateDecl = dict[str, tuple[tuple[int | str, ...], str]]


class StepIO(NamedTuple):
    """What a rule sees at one step (float64, real units).

    ``w`` (n_post, n_pre) current weights (``None`` for neuron rules); ``pre``
    (B, n_pre) the layer's input; ``pre_u`` the input used for the update (``pre``
    projected off frozen HLOP rows, else ``pre``); ``post`` (B, n_post) postsynaptic
    activity (spikes or values; for neuron rules the node's own output);
    ``reward`` scalar or (n_post,) or ``None``; ``target`` (B, n_post) or ``None``.
    """

    w: np.ndarray | None
    pre: np.ndarray | None
    post: np.ndarray | None
    reward: Any = None
    target: np.ndarray | None = None
    pre_u: np.ndarray | None = None


class QStepIO(NamedTuple):
    """What an integer-native rule sees at one step (integer mode, exact integers).

    ``q`` (n_post, n_pre) the weight codes; ``pre`` (B, n_pre) the layer's input codes
    minus its input zero point; ``post`` (B, n_post) the post node's output codes minus
    their zero point (spikes: 0/1).
    """

    q: np.ndarray
    pre: np.ndarray
    post: np.ndarray


def no_state(p: Any, n_post: int, n_pre: int) -> StateDecl:
    """State declaration of a stateless rule."""
    return {}


@dataclass(frozen=True)
class RuleSpec:
    """A registered rule (see the module docstring)."""

    kind: str
    params: type
    update: Callable[[Any, StepIO, dict[str, np.ndarray]], tuple[Any, dict[str, np.ndarray]]]
    state: Callable[[Any, int, int], StateDecl] = no_state
    target: str = "synapses"
    layers: tuple[str, ...] = ("Linear",)
    batch1: bool = False
    post: bool = True
    pre: bool = True
    update_int: Callable[..., np.ndarray] = quantized_apply
    #: bounds used when the layer's weights are all zero (no range or sign to copy)
    fallback_bounds: tuple[float, float] = (-1.0, 1.0)
    #: optional in-place float fast path ``fast(p, w_param, pre, post, state) -> state``,
    #: equal to ``update`` + clip to rounding (tested); used when weights are float32
    fast: Callable[..., dict[str, np.ndarray]] | None = None
    #: optional streaming form of ``fast``: ``fast_plan(p, w_param, pre, post, state,
    #: post_sum) -> run | None``, ``run()`` doing one ``fast`` step in place on exactly these
    #: arrays (the state's arrays included, and ``post_sum += post``) each time it is called,
    #: raising ``FloatingPointError`` with nothing changed on NaN/Inf activity; ``None``
    #: when the arrays do not qualify. The engine uses it while the runtime hands it the
    #: same activity buffers every step (the native plan's)
    fast_plan: Callable[..., Callable[[], None] | None] | None = None
    #: optional ``resolve(p, w) -> p``: rule-specific defaults taken from the layer's
    #: weights (2-D view) when the rule is bound (e.g. synaptic scaling's target)
    resolve: Callable[[Any, np.ndarray], Any] | None = None
    #: optional ``init(p, n_post, n_pre) -> state`` (default: zeros as declared, k = 0)
    init: Callable[[Any, int, int], dict[str, np.ndarray]] | None = None
    #: optional integer-native update (see the module docstring)
    update_q: Callable[[Any, QStepIO, dict[str, np.ndarray]], tuple[Any, dict]] | None = None
    #: optional ``check_state(p, state)``: value checks of loaded state (raise RuntimeStateError)
    check_state: Callable[[Any, dict[str, np.ndarray]], None] | None = None
