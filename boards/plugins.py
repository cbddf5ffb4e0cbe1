"""Import the modules that register an app's own node kinds before a bundle is loaded.

Apps may add node kinds (``@register_node``) and kernels (``@register_op``); a bundle that
uses them loads only after that module is imported, e.g.
``neuroplast.apps.motion.runtime_node``. fit, serve, deploy and the remote smoke run take
such modules as ``plugins`` (CLI ``--plugin MODULE``, repeatable).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable

from neuroplast.errors import BoardError

__all__ = ["import_plugins"]

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def import_plugins(modules: Iterable[str] | None) -> list[str]:
    """Import each dotted module name; BoardError naming the module if one fails."""
    done = []
    for name in modules or ():
        if not isinstance(name, str) or not _MODULE.match(name):
            raise BoardError(f"bad plugin module name {name!r}: expected a dotted module path")
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise BoardError(f"cannot import plugin module {name!r}: {e}") from e
        done.append(name)
    return done
