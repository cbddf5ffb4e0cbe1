"""Targets: one handler table per consumer of the Graph IR, and the capability matrix.

A *target* is anything that executes, writes or costs a graph: the numpy runtime (float32
and integer), the ONNX and TFLite writers, NIR export, the board firmware image, the SFQ
netlist, the cost model. Each keeps ONE table keyed by node class::

    TFLITE = register_target(Target("tflite", "TFLite int8 flatbuffer", engine="LiteRT"))

    @TFLITE.register(Linear, Conv2d, check=_int8_only, note="8-bit activations")
    def _weighted(writer, name, node, ctx): ...

Lookups follow the node class's MRO, so an app's subclass inherits its parent's handler
unless it registers its own, and an app's new node kind registers into the same tables
(no special cases). ``check(name, node, ctx)`` returns ``None`` or a one-line reason why
these *parameter values* cannot be expressed (a 16-bit activation in int8 TFLite, a
grouped convolution); a kind with no handler is refused with the reason given to
:meth:`Target.refuse` or the target's ``hint`` (what to do instead).

The union of the tables is the capability matrix (:func:`capability_matrix`,
``neuroplast targets``, ``docs/capabilities.md``). ``fit``, ``check``, ``export`` and
``board load`` call :meth:`Target.require`, which raises one
:class:`~neuroplast.errors.UnsupportedError` line before any work is done. A target that
learns on the device also keeps a table of the plasticity rules it runs
(:meth:`Target.register_rule`; ``board load``/``board learn`` call
:meth:`Target.require_rules`).

Consumers outside ``neuroplast`` proper (the toolchain, the board link, the apps) register
when their module is imported; :func:`load_plugins` imports every module listed in the
``neuroplast.plugins`` entry-point group, so this module never names them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from neuroplast.errors import GraphError, NeuroplastError, UnsupportedError

__all__ = [
    "Handler",
    "Refusal",
    "CheckContext",
    "Target",
    "TARGETS",
    "register_target",
    "get_target",
    "load_plugins",
    "capability_matrix",
    "matrix_markdown",
    "write_capabilities_doc",
    "PLUGIN_GROUP",
]

PLUGIN_GROUP = "neuroplast.plugins"
_log = logging.getLogger(__name__)

CheckFn = Callable[[str, Any, "CheckContext"], "str | None"]
#: ``check(layer, rule, ctx)`` for a learning rule: ``rule`` is one entry of
#: ``plasticity.json``'s ``rules`` (``kind``, ``params``, ``layer``, ``post``, ``every``).
RuleCheckFn = Callable[[str, dict, "CheckContext"], "str | None"]


@dataclass(frozen=True)
class Handler:
    """A consumer's code for one node kind: ``fn`` (any signature the consumer defines),
    an optional parameter ``check`` and a ``note`` shown in the capability matrix."""

    fn: Callable[..., Any] | None
    check: CheckFn | None = None
    note: str = ""


@dataclass(frozen=True)
class Refusal:
    """Why ``target`` cannot run node ``node`` (``"*"``: the graph as a whole)."""

    node: str
    kind: str
    target: str
    reason: str
    hint: str = ""

    def __str__(self) -> str:
        if self.kind.startswith("rule "):  # a learning rule (Target.rule_refusals)
            where = f"{self.kind} on {self.node!r}"
        else:
            where = "the graph" if self.node == "*" else f"node {self.node!r} ({self.kind})"
        msg = f"{where} cannot run on {self.target}: {self.reason}"
        return f"{msg}; {self.hint}" if self.hint else msg


@dataclass
class CheckContext:
    """What a check may look at: the graph, its shapes and the consumer's options.

    ``quant(name)`` is the activation QuantSpec node ``name`` produces in integer mode,
    read from the integer runtime's own kernels (the one definition), or ``None`` when
    the graph has no integer form.
    """

    graph: Any
    target: Target
    options: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.graph.shapes()

    def preds(self, name: str) -> list[str]:
        return self.graph.predecessors(name)

    def succs(self, name: str) -> list[str]:
        return self.graph.successors(name)

    def in_shapes(self, name: str) -> list[tuple[int, ...]]:
        return [self.shapes[p] for p in self.preds(name)]

    @cached_property
    def int_runtime(self) -> Any:
        """The graph's integer-mode Runtime, or the GraphError that prevents one."""
        from neuroplast.runtime import Runtime

        try:
            return Runtime(self.graph, mode="int")
        except GraphError as e:
            return e

    def quant(self, name: str) -> Any:
        rt = self.int_runtime
        return None if isinstance(rt, Exception) else rt.kernels[name].out_quant


class Target:
    """One consumer's handler table (see the module docstring).

    Args:
        name: short id used on the command line (``tflite``, ``firmware``, ...).
        title: what it produces or runs, for tables and messages.
        engine: the real engine that runs its output (verified in the conformance suite).
        hint: what to do with a node kind the target does not have.
        requires: Python modules the target needs at export/run time.
        extra: the pip extra that installs them.
        builds_on: targets whose refusals are this target's too (the firmware runs the
            integer runtime's arithmetic, so whatever ``runtime-int`` refuses it refuses).
    """

    def __init__(
        self,
        name: str,
        title: str,
        *,
        engine: str = "",
        hint: str = "",
        requires: tuple[str, ...] = (),
        extra: str = "",
        builds_on: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.title = title
        self.engine = engine
        self.hint = hint
        self.requires = tuple(requires)
        self.extra = extra
        self.builds_on = tuple(builds_on)
        self.handlers: dict[type, Handler] = {}
        self.refused: dict[type, tuple[str, str]] = {}
        #: ``footprint(graph) -> {"image_bytes": ..., "arena_bytes": ..., ...}``: what a
        #: model takes on this target, read from the artifact the target would build (set
        #: by targets that build one, e.g. the firmware image); ``fit`` uses it.
        self.footprint: Callable[[Any], dict[str, int]] | None = None
        self.graph_checks: list[Callable[[CheckContext], Iterable[Refusal]]] = []
        #: Learning rules this target runs on the device (``kind -> (check, note)``);
        #: ``None`` means the target does not learn on its own (the host runtimes run
        #: every rule). ``rule_hint``: what to do with a rule it does not run.
        self.rules: dict[str, tuple[RuleCheckFn | None, str]] | None = None
        self.rule_hint = ""

    def __repr__(self) -> str:
        return f"Target({self.name!r}, kinds={sorted(c.kind for c in self.handlers)})"

    # ----------------------------------------------------------- registration
    def register(
        self, *node_classes: type, check: CheckFn | None = None, note: str = ""
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``fn`` handles ``node_classes`` on this target."""
        if not node_classes:
            raise TypeError("register() needs at least one node class")

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            for cls in node_classes:
                self.handlers[cls] = Handler(fn, check, note)
                self.refused.pop(cls, None)
            return fn

        return deco

    def refuse(self, node_class: type, reason: str, hint: str | None = None) -> None:
        """Record that ``node_class`` has no handler here, why, and what to do instead."""
        self.handlers.pop(node_class, None)
        self.refused[node_class] = (reason, self.hint if hint is None else hint)

    def register_rule(self, kind: str, check: RuleCheckFn | None = None, note: str = "") -> None:
        """This target runs plasticity rule ``kind`` (a registered rule kind) on-device."""
        if self.rules is None:
            self.rules = {}
        self.rules[kind] = (check, note)

    def graph_check(
        self, fn: Callable[[CheckContext], Iterable[Refusal]]
    ) -> Callable[[CheckContext], Iterable[Refusal]]:
        """Decorator: a whole-graph condition (one input, a chain, ...)."""
        self.graph_checks.append(fn)
        return fn

    # ---------------------------------------------------------------- lookups
    def lookup(self, node_class: type) -> Handler | None:
        for cls in node_class.__mro__:
            if cls in self.refused:
                return None
            if cls in self.handlers:
                return self.handlers[cls]
        return None

    def _why_not(self, node_class: type) -> tuple[str, str]:
        for cls in node_class.__mro__:
            if cls in self.refused:
                return self.refused[cls]
        return (f"{self.title} has no {node_class.kind}", self.hint)

    def support(self, node_class: type) -> tuple[bool, str]:
        """Kind-level answer for the capability matrix: ``(yes?, note or reason)``."""
        h = self.lookup(node_class)
        if h is None:
            reason, hint = self._why_not(node_class)
            return False, f"{reason}; {hint}" if hint else reason
        return True, h.note

    def handler(self, name: str, node: Any) -> Callable[..., Any]:
        """The handler function for ``node`` (raises :class:`UnsupportedError`)."""
        h = self.lookup(type(node))
        if h is None or h.fn is None:
            reason, hint = self._why_not(type(node))
            r = Refusal(name, node.kind, self.name, reason, hint)
            raise UnsupportedError(str(r), (r,))
        return h.fn

    def available(self) -> tuple[bool, str]:
        """Whether the modules this target needs are importable here."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if not missing:
            return True, ""
        extra = f" (pip install 'neuroplast[{self.extra}]')" if self.extra else ""
        return False, f"needs {', '.join(missing)}{extra}"

    # ----------------------------------------------------------------- checks
    def refusals(self, graph: Any, **options: Any) -> list[Refusal]:
        """Every reason this target cannot run ``graph``: node kinds, parameter values,
        whole-graph conditions. Empty when it can."""
        for base in self.builds_on:
            found = get_target(base).refusals(graph)
            if found:
                return [Refusal(r.node, r.kind, self.name, r.reason, r.hint) for r in found]
        ctx = CheckContext(graph, self, dict(options))
        out: list[Refusal] = []
        for name in graph.topo_order():
            node = graph.nodes[name]
            h = self.lookup(type(node))
            if h is None:
                reason, hint = self._why_not(type(node))
                out.append(Refusal(name, node.kind, self.name, reason, hint))
                continue
            if h.check is not None:
                why = h.check(name, node, ctx)
                if why:
                    out.append(Refusal(name, node.kind, self.name, why, ""))
        if not out:  # whole-graph conditions only matter once every node is expressible
            for check in self.graph_checks:
                out.extend(check(ctx))
        return out

    def rule_refusals(self, graph: Any, plasticity: Any, **options: Any) -> list[Refusal]:
        """Why this target cannot run the learning rules ``plasticity`` (a
        ``plasticity.json`` dict or an engine with ``to_dict``) on ``graph``; empty when
        it can, or when it runs no rules of its own (``rules is None``)."""
        if self.rules is None or not plasticity:
            return []
        d = plasticity.to_dict() if hasattr(plasticity, "to_dict") else plasticity
        rules = d.get("rules", []) if isinstance(d, dict) else []
        rules = [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
        ctx = CheckContext(graph, self, {"rules": rules, **options})
        out: list[Refusal] = []
        for r in rules:
            kind, layer = str(r.get("kind")), str(r.get("layer"))
            entry = self.rules.get(kind)
            if entry is None:
                runs = ", ".join(sorted(self.rules)) or "none"
                why = f"{self.name} runs only the learning rules: {runs}"
                out.append(Refusal(layer, f"rule {kind}", self.name, why, self.rule_hint))
            elif entry[0] is not None:
                why = entry[0](layer, r, ctx)
                if why:
                    out.append(Refusal(layer, f"rule {kind}", self.name, why, ""))
        return out

    def require_rules(self, graph: Any, plasticity: Any, **options: Any) -> None:
        """Raise one :class:`UnsupportedError` line if the rules cannot run here."""
        found = self.rule_refusals(graph, plasticity, **options)
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise UnsupportedError(f"{found[0]}{more}", tuple(found))

    def require(self, graph: Any, **options: Any) -> None:
        """Raise one :class:`UnsupportedError` line if this target cannot run ``graph``."""
        found = self.refusals(graph, **options)
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise UnsupportedError(f"{found[0]}{more}", tuple(found))


TARGETS: dict[str, Target] = {}


def register_target(target: Target) -> Target:
    """Make ``target`` known by name (idempotent for the same object)."""
    old = TARGETS.get(target.name)
    if old is not None and old is not target:
        raise NeuroplastError(f"target {target.name!r} is already registered")
    TARGETS[target.name] = target
    return target


_PLUGINS_LOADED = False
PLUGIN_ERRORS: dict[str, str] = {}


def load_plugins() -> dict[str, Target]:
    """Import the modules of the ``neuroplast.plugins`` entry-point group once (they
    register targets, node kinds and handlers); return :data:`TARGETS`.

    A plugin that fails to import (a missing optional dependency) is skipped and its
    error kept in ``PLUGIN_ERRORS`` for ``neuroplast targets`` to report.
    """
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return TARGETS
    _PLUGINS_LOADED = True
    from importlib.metadata import entry_points

    import neuroplast.runtime  # noqa: F401  the runtime targets live beside the kernels

    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            importlib.import_module(ep.value)
        except ImportError as e:
            PLUGIN_ERRORS[ep.name] = f"{type(e).__name__}: {e}"
            _log.debug("plugin %s (%s) not loaded: %s", ep.name, ep.value, e)
    return TARGETS


def get_target(name: str) -> Target:
    """The registered target ``name`` (plugins are loaded on first use)."""
    if name not in TARGETS:
        load_plugins()
    if name not in TARGETS:
        raise UnsupportedError(f"unknown target {name!r}; known targets: {sorted(TARGETS)}")
    return TARGETS[name]


def capability_matrix(
    targets: Iterable[str] | None = None, kinds: Iterable[str] | None = None
) -> dict[str, dict[str, tuple[bool, str]]]:
    """``{kind: {target: (supported, note or reason)}}`` over the registered node kinds."""
    from neuroplast.graph.nodes import NODE_KINDS

    load_plugins()
    names = list(targets) if targets is not None else list(TARGETS)
    ks = list(kinds) if kinds is not None else list(NODE_KINDS)
    return {k: {t: get_target(t).support(NODE_KINDS[k]) for t in names} for k in ks}


def matrix_markdown(targets: Iterable[str] | None = None, shipped_only: bool = False) -> str:
    """The capability matrix as Markdown: a legend of targets (with what each does for a
    kind it lacks), the kind x target table, and the numbered conditions and reasons.

    ``shipped_only``: only kinds defined inside neuroplast (not a user's or a test's own).
    """
    from neuroplast.graph.nodes import NODE_KINDS

    load_plugins()
    names = list(targets) if targets is not None else sorted(TARGETS)
    legend = ["| target | produces / runs | verified against | for a kind it lacks |"]
    legend.append("|---|---|---|---|")
    for t in names:
        tg = TARGETS[t]
        legend.append(f"| {t} | {tg.title} | {tg.engine or '-'} | {tg.hint or '-'} |")
    rows = ["| kind | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    notes: list[str] = []
    # core kinds in definition order, then app/plugin kinds by module: the table must not
    # depend on which plugin happened to be imported first
    core = [kc for kc in NODE_KINDS.items() if kc[1].__module__ == "neuroplast.graph.nodes"]
    more = [kc for kc in NODE_KINDS.items() if kc[1].__module__ != "neuroplast.graph.nodes"]
    for kind, cls in core + sorted(more, key=lambda kc: (kc[1].__module__, kc[0])):
        if shipped_only and not cls.__module__.startswith("neuroplast."):
            continue
        cells = []
        for t in names:
            tg = TARGETS[t]
            h = tg.lookup(cls)
            if h is not None:
                text = h.note
            else:
                reason, hint = tg._why_not(cls)
                default = reason == f"{tg.title} has no {kind}" and hint == tg.hint
                text = "" if default else (f"{reason}; {hint}" if hint else reason)
            word = "yes" if h is not None else "no"
            if text:
                notes.append(f"{kind} on {t}: {text}")
                word += f" [{len(notes)}]"
            cells.append(word)
        rows.append(f"| {kind} | " + " | ".join(cells) + " |")
    learn = [f"| {t} | {k} | {note or '-'} |" for t in names
             for k, (_, note) in sorted((TARGETS[t].rules or {}).items())]  # fmt: skip
    if learn:  # targets that learn on the device, and the rules they run
        learn = ["| target | learns on-device with | note |", "|---|---|---|", *learn, ""]
        hints = [f"Other rules on {t}: {TARGETS[t].rule_hint}." for t in names
                 if TARGETS[t].rules is not None and TARGETS[t].rule_hint]  # fmt: skip
        learn += hints + ([""] if hints else [])
    return "\n".join(
        legend + [""] + rows + [""] + [f"{i}. {n}" for i, n in enumerate(notes, 1)] + [""] + learn
    )


_DOC_START, _DOC_END = "<!-- capabilities:start -->", "<!-- capabilities:end -->"


def write_capabilities_doc(path: Any, check: bool = False) -> bool:
    """Write :func:`matrix_markdown` between the markers of ``path`` (docs/capabilities.md).

    With ``check=True`` nothing is written; returns whether the file is up to date.
    """
    from pathlib import Path

    p = Path(path)
    text = p.read_text()
    if _DOC_START not in text or _DOC_END not in text:
        raise NeuroplastError(f"{p}: no {_DOC_START} ... {_DOC_END} markers")
    head, rest = text.split(_DOC_START, 1)
    _, tail = rest.split(_DOC_END, 1)
    new = f"{head}{_DOC_START}\n{matrix_markdown(shipped_only=True)}{_DOC_END}{tail}"
    if check:
        return new == text
    if new != text:
        p.write_text(new)
    return True
