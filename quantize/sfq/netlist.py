"""The neuroplast SFQ netlist: a versioned JSON description of a pulse-level SFQ circuit.

Schema (``format = "neuroplast-sfq-netlist"``, ``version = 1``; full prose in
docs/sfq-netlist.md)::

    {
      "format": "neuroplast-sfq-netlist", "version": 1, "name": str,
      "clock": {"frequency_ghz": float, "source": cell, "leaf_delay_ps": float},
      "temperature_k": float,
      "pcurve": {"model": "probit", "i50_ua", "sigma_ua", "ic_ua", "temperature_k", ...},
      "cells": [{"name", "type", "jj", "delay_ps", "bias_ua", "params": {...}}, ...],
      "connections": [{"from": "cell.port", "to": "cell.port", "delay_ps": float}, ...],
      "inputs": [IN cell names], "outputs": [OUT cell names],
      "meta": {...free-form: layer map, source graph...},
      "totals": {"jj": int, "bias_ua": float, "cells": {type: count}}
    }

Rules checked by :meth:`Netlist.validate`: unique cell names, known cell types,
existing ports, every output port drives at most one input (fan-out needs SPLIT
cells) and every input port is driven at most once (fan-in needs MERGE cells),
every clocked cell has its ``clk`` driven, inputs/outputs name IN/OUT cells.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroplast.errors import DataError, ExportError
from neuroplast.quantize.sfq.cells import CELL_LIBRARY, cell_type
from neuroplast.quantize.sfq.pcurve import DEFAULT_PCURVE, PCurve

__all__ = ["FORMAT", "VERSION", "Cell", "Connection", "Netlist", "load_netlist", "save_netlist"]

FORMAT = "neuroplast-sfq-netlist"
VERSION = 1


@dataclass(frozen=True)
class Cell:
    """One placed cell. ``params`` holds kind-specific values (SYN: ``p``; NEURON:
    ``theta``, ``floor``; CLK: ``phase_ps``)."""

    name: str
    type: str
    jj: int
    delay_ps: float
    bias_ua: float
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, name: str, type_: str, bias_ua: float | None = None, **params: Any) -> Cell:
        ct = cell_type(type_)
        return cls(
            name=name,
            type=type_,
            jj=ct.jj,
            delay_ps=ct.delay_ps,
            bias_ua=ct.bias_ua if bias_ua is None else float(bias_ua),
            params=dict(params),
        )


@dataclass(frozen=True)
class Connection:
    """A directed wire from ``src.src_port`` to ``dst.dst_port`` with extra delay (ps)."""

    src: str
    src_port: str
    dst: str
    dst_port: str
    delay_ps: float = 0.0


@dataclass
class Netlist:
    """A complete SFQ circuit. Build it with the exporter or by hand, then ``validate()``."""

    name: str
    cells: dict[str, Cell]
    connections: list[Connection]
    inputs: list[str]
    outputs: list[str]
    clock_ghz: float
    clock_source: str | None = None
    leaf_delay_ps: float = 0.0
    temperature_k: float = 4.2
    pcurve: PCurve = DEFAULT_PCURVE
    meta: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`ExportError` naming the first structural problem found."""
        if not (self.clock_ghz > 0 and math.isfinite(self.clock_ghz)):
            raise ExportError(f"clock frequency must be a positive number, got {self.clock_ghz}")
        for name, c in self.cells.items():
            if name != c.name:
                raise ExportError(f"cell key {name!r} does not match its name {c.name!r}")
            if c.type not in CELL_LIBRARY:
                raise ExportError(f"cell {name!r} has unknown type {c.type!r}")
            if c.jj < 0 or c.delay_ps < 0 or not math.isfinite(c.bias_ua):
                raise ExportError(f"cell {name!r}: jj, delay_ps must be >= 0 and bias finite")
            if c.type == "NEURON":
                theta = c.params.get("theta", 1)
                if not isinstance(theta, int) or theta < 1:
                    raise ExportError(f"neuron {name!r}: theta must be an integer >= 1")
        driven: set[tuple[str, str]] = set()
        used_out: set[tuple[str, str]] = set()
        for k in self.connections:
            for cell, port, kind in ((k.src, k.src_port, "outputs"), (k.dst, k.dst_port, "inputs")):
                if cell not in self.cells:
                    raise ExportError(f"connection {_fmt(k)} names unknown cell {cell!r}")
                ports = getattr(CELL_LIBRARY[self.cells[cell].type], kind)
                if port not in ports:
                    raise ExportError(
                        f"connection {_fmt(k)}: {self.cells[cell].type} cell {cell!r} has no "
                        f"{kind[:-1]} port {port!r} (has {list(ports)})"
                    )
            if (k.src, k.src_port) in used_out:
                raise ExportError(
                    f"output {k.src}.{k.src_port} drives more than one wire; fan-out needs SPLIT"
                )
            if (k.dst, k.dst_port) in driven:
                raise ExportError(
                    f"input {k.dst}.{k.dst_port} is driven more than once; fan-in needs MERGE"
                )
            if k.delay_ps < 0:
                raise ExportError(f"connection {_fmt(k)} has negative delay")
            used_out.add((k.src, k.src_port))
            driven.add((k.dst, k.dst_port))
        for name, c in self.cells.items():
            if CELL_LIBRARY[c.type].clocked and (name, "clk") not in driven:
                raise ExportError(f"clocked cell {name!r} ({c.type}) has no clock connection")
        for n in self.inputs:
            if n not in self.cells or self.cells[n].type != "IN":
                raise ExportError(f"input {n!r} is not an IN cell")
        for n in self.outputs:
            if n not in self.cells or self.cells[n].type != "OUT":
                raise ExportError(f"output {n!r} is not an OUT cell")

    # ------------------------------------------------------------------ totals
    def totals(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for c in self.cells.values():
            counts[c.type] = counts.get(c.type, 0) + 1
        return {
            "jj": int(sum(c.jj for c in self.cells.values())),
            "bias_ua": float(sum(c.bias_ua for c in self.cells.values())),
            "cells": dict(sorted(counts.items())),
        }

    # ------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "clock": {
                "frequency_ghz": self.clock_ghz,
                "source": self.clock_source,
                "leaf_delay_ps": self.leaf_delay_ps,
            },
            "temperature_k": self.temperature_k,
            "pcurve": self.pcurve.to_dict(),
            "cells": [
                {
                    "name": c.name,
                    "type": c.type,
                    "jj": c.jj,
                    "delay_ps": c.delay_ps,
                    "bias_ua": c.bias_ua,
                    "params": dict(c.params),
                }
                for c in self.cells.values()
            ],
            "connections": [
                {
                    "from": f"{k.src}.{k.src_port}",
                    "to": f"{k.dst}.{k.dst_port}",
                    "delay_ps": k.delay_ps,
                }
                for k in self.connections
            ],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "meta": self.meta,
            "totals": self.totals(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Netlist:
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise DataError(f"not a neuroplast SFQ netlist (format field must be {FORMAT!r})")
        if d.get("version") != VERSION:
            raise DataError(
                f"SFQ netlist version {d.get('version')!r} unsupported (need {VERSION})"
            )
        try:
            cells = {}
            for c in d["cells"]:
                cell = Cell(
                    name=str(c["name"]),
                    type=str(c["type"]),
                    jj=int(c["jj"]),
                    delay_ps=float(c["delay_ps"]),
                    bias_ua=float(c["bias_ua"]),
                    params=dict(c.get("params", {})),
                )
                if cell.name in cells:
                    raise DataError(f"duplicate cell name {cell.name!r}")
                cells[cell.name] = cell
            conns = []
            for k in d["connections"]:
                src, sp = _split_port(k["from"])
                dst, dp = _split_port(k["to"])
                conns.append(Connection(src, sp, dst, dp, float(k.get("delay_ps", 0.0))))
            clock = d["clock"]
            nl = cls(
                name=str(d.get("name", "")),
                cells=cells,
                connections=conns,
                inputs=[str(x) for x in d["inputs"]],
                outputs=[str(x) for x in d["outputs"]],
                clock_ghz=float(clock["frequency_ghz"]),
                clock_source=clock.get("source"),
                leaf_delay_ps=float(clock.get("leaf_delay_ps", 0.0)),
                temperature_k=float(d.get("temperature_k", 4.2)),
                pcurve=PCurve.from_dict(d["pcurve"]),
                meta=dict(d.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(f"SFQ netlist field missing or invalid: {e!r}") from None
        try:
            nl.validate()
        except ExportError as e:
            raise DataError(f"invalid SFQ netlist: {e}") from None
        return nl


def _split_port(s: Any) -> tuple[str, str]:
    if not isinstance(s, str) or s.count(".") != 1:
        raise DataError(f"port reference {s!r} must look like 'cell.port'")
    a, b = s.split(".")
    return a, b


def _fmt(k: Connection) -> str:
    return f"{k.src}.{k.src_port} -> {k.dst}.{k.dst_port}"


def save_netlist(netlist: Netlist, path: str | os.PathLike) -> Path:
    """Validate and write ``netlist`` as JSON (atomically: temp file + rename)."""
    netlist.validate()
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(netlist.to_dict(), indent=1))
    os.replace(tmp, p)
    return p


def load_netlist(path: str | os.PathLike) -> Netlist:
    """Read and validate a netlist JSON file; raises :class:`DataError` if malformed."""
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read SFQ netlist {path}: {e}") from None
    return Netlist.from_dict(d)
