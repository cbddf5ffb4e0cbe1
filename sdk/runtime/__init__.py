"""The numpy runtime: executes the Graph IR in float32 or integer arithmetic.

Public API: the names in ``__all__``; everything else is private.
"""

from neuroplast.runtime.kernels import (
    OPS,
    SPIKE_Q,
    BuildContext,
    Kernel,
    SparseInput,
    make_kernel,
    register_op,
)
from neuroplast.runtime.runtime import Runtime, atomic_write_bytes

__all__ = [
    "Runtime",
    "SparseInput",
    "Kernel",
    "BuildContext",
    "OPS",
    "SPIKE_Q",
    "register_op",
    "make_kernel",
    "atomic_write_bytes",
]
