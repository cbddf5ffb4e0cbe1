"""Conformance suite: random valid graphs through every target the capability matrix
claims, each in its real engine, against the neuroplast reference runtime."""

from neuroplast.quantize.conformance.engines import ENGINES, Outcome, Session
from neuroplast.quantize.conformance.generate import (
    FAMILIES,
    GraphCase,
    quantize_graph,
    random_graph,
)
from neuroplast.quantize.conformance.suite import Report, run_suite, targets_here

__all__ = [
    "ENGINES",
    "FAMILIES",
    "GraphCase",
    "Outcome",
    "Report",
    "Session",
    "quantize_graph",
    "random_graph",
    "run_suite",
    "targets_here",
]
