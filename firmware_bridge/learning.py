"""On-board learning from a bundle: the host side of ``neuroplast board load`` / ``board learn``.

The board runs one learning rule, ``int_stdp`` (:mod:`neuroplast.plasticity.int_stdp`,
the host engine's integer rule bit for bit), on one Linear -> LIF layer. A bundle's
``plasticity.json`` is checked against the firmware target's rule table
(:meth:`~neuroplast.targets.Target.require_rules`: a float rule is refused in one line
naming it and what to do), then sent with LEARN_ENABLE.

:func:`learn_on_board` loads the bundle's model and learned state (weights, traces,
generator) onto the board, streams inputs with learning on, and returns the bundle's
state dictionary with the board's learned state in it -- the same keys and values the
host engine would have written after the same steps (``tests/firmware_bridge/
test_bridge_learn.py``). Neuron membranes are not pulled back: like any bundle load,
the next run starts them at rest. :func:`write_learned_bundle` writes that state into a
new bundle (default ``neuroplast-out/board/NAME.learned.zip``), never over its source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import BundleError, PlasticityError
from neuroplast.firmware_bridge.image import FIRMWARE, build_image
from neuroplast.plasticity.int_stdp import IntSTDPParams, IntSTDPState
from neuroplast.plasticity.registry import rule_from_dict

__all__ = [
    "BoardRule",
    "LearnResult",
    "board_rule",
    "check_image",
    "configure_board_learning",
    "learn_on_board",
    "learned_bundle_path",
    "write_learned_bundle",
]


@dataclass(frozen=True)
class BoardRule:
    """The rule a bundle runs on the board: its layer, parameters and position in the
    engine's rule list (``index``, the prefix of its keys in the state)."""

    layer: str
    params: IntSTDPParams
    index: int

    def key(self, name: str) -> str:
        """State-dictionary key of this rule's ``name`` (``x``, ``y``, ``rng``, ...)."""
        return f"plasticity/{self.index}/{self.layer}/int_stdp/{name}"


@dataclass(frozen=True)
class LearnResult:
    """What :func:`learn_on_board` did: steps run, weights changed (the board's
    LEARN_UPDATES), synapses that differ from before, output spike rate, the new state."""

    steps: int
    changes: int
    synapses_moved: int
    output_rate: float
    state: dict[str, np.ndarray]


def board_rule(rt: Any) -> BoardRule | None:
    """The bundle's on-board rule, ``None`` when it has no rules; raises one
    :class:`~neuroplast.errors.UnsupportedError` line when the board cannot run them."""
    eng = rt.plasticity
    if not eng.has_rules():
        return None
    plast = eng.to_dict()
    FIRMWARE.require_rules(rt.graph, plast)
    for i, r in enumerate(plast["rules"]):
        if r["kind"] == "int_stdp":
            p = rule_from_dict({"kind": "int_stdp", "params": r["params"]})
            assert isinstance(p, IntSTDPParams)
            return BoardRule(r["layer"], p, i)
    return None  # unreachable: require_rules refuses every other kind


def check_image(image: Any, rule: BoardRule) -> None:
    """Refuse, in one line, a rule whose layer the board could not learn on in this image
    (the LIF must be the next layer and read only the plastic layer; PROTOCOL.md §4.5)."""
    from neuroplast.errors import UnsupportedError
    from neuroplast.firmware_bridge import spec

    i = image.layer_index(rule.layer)
    ok = (
        i + 1 < len(image.layers)
        and image.layers[i].kind == spec.LayerKind.LINEAR
        and image.layers[i + 1].kind == spec.LayerKind.LIF
        and image.layers[i + 1].sources == (i + 1,)
        and image.layers[i].sources == (i,)
    )
    if not ok:
        raise UnsupportedError(
            f"rule int_stdp on {rule.layer!r} cannot run on firmware: in the model image the "
            "plastic layer must read the previous layer and feed the next one, a LIF; "
            "learn on the host (`neuroplast learn`) or load with --no-learning"
        )


def configure_board_learning(board: Any, rt: Any, start: bool = False) -> BoardRule | None:
    """Send ``rt``'s rule to a board that has ``rt``'s model loaded (LEARN_ENABLE
    CONFIGURE, or START with ``start``), then its saved learning state if the bundle
    has one; returns the rule (``None``: no rules, nothing sent)."""
    rule = board_rule(rt)
    if rule is None:
        return None
    check_image(board.image, rule)
    board.learn(True, layer=rule.layer, params=rule.params, start=False)
    d = rt.state_dict()
    if rule.key("x") in d:
        board.push_learn_state(IntSTDPState(d[rule.key("x")], d[rule.key("y")], d[rule.key("rng")]))
    if start:
        board.learn(True, resume=True)
    return rule


def learn_on_board(board: Any, rt: Any, inputs: Iterable[Any], steps: int) -> LearnResult:
    """Load ``rt`` (an int-mode runtime from a bundle, with its rules and any learned
    state) onto ``board``, learn over ``inputs`` (``steps`` per-step inputs), pull the
    learned weights, traces and generator back; the result's ``state`` is ``rt``'s
    state dictionary after those steps (``rt`` itself is not changed)."""
    if getattr(rt, "mode", None) != "int":
        raise PlasticityError("on-board learning needs the bundle in integer mode")
    rule = board_rule(rt)
    if rule is None:
        raise PlasticityError("the bundle has no plasticity rules (plasticity.json) to learn with")
    image = build_image(rt)
    check_image(image, rule)  # before any board traffic
    board.load(image)
    w0 = board.pull_state(rule.layer)
    configure_board_learning(board, rt)
    before = board.stats()["learn_updates"]
    board.learn(True, resume=True)
    spikes = 0.0
    n = 0
    try:
        for y in board.stream(inputs):
            spikes += float(np.mean(np.asarray(y) != 0))
            n += 1
    finally:
        board.learn(False)
    if n != steps:
        raise PlasticityError(f"the stream gave {n} steps, expected {steps}")
    w = board.pull_state(rule.layer)
    st = board.pull_learn_state()
    changes = (board.stats()["learn_updates"] - before) % (1 << 32)
    d = dict(rt.state_dict())
    d[f"param/{rule.layer}/weight"] = w.astype(d[f"param/{rule.layer}/weight"].dtype)
    d[rule.key("x")] = np.asarray(st.x, np.int64)
    d[rule.key("y")] = np.asarray(st.y, np.int64)
    d[rule.key("rng")] = np.array(st.rng, np.uint32)
    d[rule.key("changed")] = np.array(int(d.get(rule.key("changed"), 0)) + changes, np.int64)
    d[rule.key("_updates")] = np.array(int(d.get(rule.key("_updates"), 0)) + n, np.int64)
    d["meta/steps"] = np.array(int(d["meta/steps"]) + n, np.int64)
    moved = int(np.count_nonzero(w != w0))
    return LearnResult(n, changes, moved, spikes / max(n, 1), d)


def learned_bundle_path(src: str | Path) -> Path:
    """Default output: ``model.zip`` -> ``<output dir>/board/model.learned.zip`` (the
    output folder: ``$NEUROPLAST_OUT`` or ``./neuroplast-out``)."""
    from neuroplast.paths import output_dir

    p = Path(src)
    stem = p.stem if p.suffix == ".zip" else p.name
    return output_dir("board", f"{stem}.learned.zip")


def write_learned_bundle(
    src: str | Path, out: str | Path, state: dict[str, np.ndarray], force: bool = False
) -> Path:
    """Write a copy of bundle ``src`` (graph, rules, preprocessing, meta) in integer mode
    with ``state`` as its ``state.npz``. Refuses to write over ``src`` (always) or over
    an existing ``out`` (unless ``force``), before reading anything."""
    from neuroplast.bundle import load_bundle, save_bundle

    src_p, out_p = Path(src), Path(out)
    check_output(src_p, out_p, force)
    b = load_bundle(src_p)
    out_p.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(b.meta)
    meta["learned_on_board"] = {
        "from": src_p.name,
        "steps": int(state["meta/steps"]),
    }
    return save_bundle(
        out_p,
        b.graph,
        mode="int",
        plasticity=b.plasticity,
        state=state,
        preprocessing=b.preprocessing,
        target_board=b.target_board,
        meta=json.loads(json.dumps(meta)),
    )


def check_output(src: Path, out: Path, force: bool) -> None:
    """Raise :class:`BundleError` if writing ``out`` would replace ``src`` or (without
    ``force``) an existing file or folder."""
    if out.resolve() == src.resolve():
        raise BundleError(f"output {str(out)!r} is the source bundle; choose another --out")
    if out.exists() and not force:
        raise BundleError(f"output {str(out)!r} exists; pass --force to replace it")
