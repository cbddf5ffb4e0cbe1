"""SFQ (single flux quantum) target: netlist format, exporter, pulse-level simulator.

* :func:`export_sfq` / :func:`to_netlist` map a rate-coded ``Input -> (Linear -> ReLU|IF|Threshold)+`` graph
  onto SFQ cells (docs/sfq-netlist.md), :func:`build_netlist` does it for raw layers.
* :func:`simulate` runs a netlist on input pulse trains at a configurable clock.
* :data:`DEFAULT_PCURVE` is the fitted transmit-probability curve p(I_bias).
* :func:`to_spice` writes a JoSIM-style deck; :mod:`.analytic` has the reference rates.

Importing this package never imports torch (only :func:`train_xor` does, lazily).
"""

from neuroplast.quantize.sfq.analytic import layer_rates, network_rates, neuron_rate, or_rate
from neuroplast.quantize.sfq.cells import CELL_LIBRARY, CellType
from neuroplast.quantize.sfq.export import (
    SFQConfig,
    SFQLayer,
    build_netlist,
    check_timing,
    export_sfq,
    layers_from_graph,
    to_netlist,
)
from neuroplast.quantize.sfq.netlist import (
    FORMAT,
    VERSION,
    Cell,
    Connection,
    Netlist,
    load_netlist,
    save_netlist,
)
from neuroplast.quantize.sfq.pcurve import DEFAULT_PCURVE, PCurve, fit_probit
from neuroplast.quantize.sfq.simulate import SimResult, simulate
from neuroplast.quantize.sfq.spice import to_spice, write_spice
from neuroplast.quantize.sfq.xor import run_xor_case_study, train_xor, xor_graph

__all__ = [
    "CELL_LIBRARY",
    "CellType",
    "Cell",
    "Connection",
    "Netlist",
    "FORMAT",
    "VERSION",
    "load_netlist",
    "save_netlist",
    "PCurve",
    "DEFAULT_PCURVE",
    "fit_probit",
    "SFQConfig",
    "SFQLayer",
    "export_sfq",
    "to_netlist",
    "build_netlist",
    "layers_from_graph",
    "check_timing",
    "SimResult",
    "simulate",
    "or_rate",
    "neuron_rate",
    "layer_rates",
    "network_rates",
    "to_spice",
    "write_spice",
    "train_xor",
    "xor_graph",
    "run_xor_case_study",
]
