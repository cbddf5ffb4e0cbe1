"""The neuroplast Graph IR: frozen typed node specs with quantization metadata.

Public API: the names in ``__all__``; everything else is private.
"""

from neuroplast.graph.cost import LayerCost, cost, total_cost
from neuroplast.graph.graph import GRAPH_FORMAT, GRAPH_VERSION, Graph
from neuroplast.graph.nodes import (
    IF,
    LI,
    LIF,
    NODE_KINDS,
    Add,
    AvgPool2d,
    Conv1d,
    Conv2d,
    CubaLIF,
    Delay,
    DelayLinear,
    Flatten,
    Input,
    Linear,
    MaxPool2d,
    Node,
    ReLU,
    Scale,
    SumPool2d,
    Threshold,
    array_field,
    quant_field,
    register_node,
    tuple_field,
)
from neuroplast.quant import QuantSpec

__all__ = [
    "Graph",
    "GRAPH_FORMAT",
    "GRAPH_VERSION",
    "Node",
    "NODE_KINDS",
    "register_node",
    "array_field",
    "quant_field",
    "tuple_field",
    "QuantSpec",
    "Input",
    "Linear",
    "Conv1d",
    "Conv2d",
    "AvgPool2d",
    "MaxPool2d",
    "SumPool2d",
    "Flatten",
    "Add",
    "ReLU",
    "Scale",
    "LIF",
    "CubaLIF",
    "IF",
    "LI",
    "Threshold",
    "Delay",
    "DelayLinear",
    "LayerCost",
    "cost",
    "total_cost",
]
