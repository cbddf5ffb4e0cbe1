"""Named QAT recipes: a float architecture + its input shape, buildable by name.

A recipe name is what a ``MODEL.pt`` checkpoint records next to its state dict, so
``neuroplast export MODEL.pt`` can rebuild the exact QAT model and load the learned
weights and quantizer scales (``torch.load(weights_only=True)``: no pickled code).

Built-in recipes (sized for scikit-learn's 8x8 digits, the small real task used by
``bench/qat_accuracy.py``):

* ``mlp``: 64 -> 64 -> ReLU -> 10;
* ``cnn``: conv 3x3 -> depthwise 3x3 -> pointwise 1x1 -> maxpool -> linear;
* ``audio1d``: 1-D conv net over ``(bands, frames)`` (digits rows as 8 bands);
* ``snn``: rate-coded spikes ``[T, B, 64]`` -> Linear+LIF -> Linear+LIF (spike counts).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroplast.errors import ExportError, NeuroplastError
from neuroplast.formats import register_reader

__all__ = [
    "Recipe",
    "RECIPES",
    "register_recipe",
    "get_recipe",
    "build",
    "save_model",
    "load_model",
    "open_checkpoint",
    "Checkpoint",
    "digits_data",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "neuroplast-qat-v1"
SNN_STEPS = 8


@dataclass(frozen=True)
class Recipe:
    """``build()`` returns the float ``torch.nn.Sequential``; ``input_shape`` excludes
    batch (and time for spiking nets); ``spiking``: input is ``[T, B, *input_shape]``."""

    name: str
    build: Callable[[], Any]
    input_shape: tuple[int, ...]
    spiking: bool = False

    def example_input(self, batch: int = 1) -> Any:
        import torch

        if self.spiking:
            return torch.zeros((SNN_STEPS, batch) + self.input_shape)
        return torch.zeros((batch,) + self.input_shape)


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Add a recipe to :data:`RECIPES` (names are unique)."""
    if recipe.name in RECIPES:
        raise NeuroplastError(f"recipe {recipe.name!r} is already registered")
    RECIPES[recipe.name] = recipe
    return recipe


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise NeuroplastError(f"unknown recipe {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]


def _mlp() -> Any:
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def _cnn() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),  # depthwise
        nn.ReLU(),
        nn.Conv2d(16, 32, 1),  # pointwise
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def _audio1d() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv1d(8, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv1d(32, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4, 10),
    )


def _snn() -> Any:
    from torch import nn

    from neuroplast.quantize.qat import lif_module_classes

    LIF, _ = lif_module_classes()
    # zero reset: the one NIR defines, so the recipe exports to every spiking target
    return nn.Sequential(
        nn.Linear(64, 128), LIF(beta=0.9, threshold=1.0, reset="zero"),
        nn.Linear(128, 10), LIF(0.9, 1.0, reset="zero"),
    )  # fmt: skip


register_recipe(Recipe("mlp", _mlp, (64,)))
register_recipe(Recipe("cnn", _cnn, (1, 8, 8)))
register_recipe(Recipe("audio1d", _audio1d, (8, 8)))
register_recipe(Recipe("snn", _snn, (64,), spiking=True))


def build(
    name: str, weight_bits: int = 8, act_bits: int = 8, per_channel: bool = True
) -> tuple[Any, Recipe]:
    """``(qat_model, recipe)``: the recipe's float net prepared for QAT."""
    from neuroplast.quantize.qat import prepare

    r = get_recipe(name)
    return prepare(r.build(), weight_bits, act_bits, per_channel), r


def digits_data(recipe: str = "mlp", seed: int = 0, test_fraction: float = 0.25) -> Any:
    """scikit-learn's digits (1797 8x8 images, 10 classes) shaped for ``recipe``:
    ``((x_train, y_train), (x_test, y_test))`` as tensors, pixels scaled to [0, 1]
    (spiking: Bernoulli rate code over ``SNN_STEPS`` steps, ``[T, N, 64]``)."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    r = get_recipe(recipe)
    d = load_digits()
    x = d.data.astype(np.float32) / 16.0
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))
    n_test = int(len(x) * test_fraction)
    te, tr = idx[:n_test], idx[n_test:]
    if r.spiking:
        spikes = (rng.random((SNN_STEPS,) + x.shape) < x[None]).astype(np.float32)
        xt = torch.from_numpy(spikes)
        return (xt[:, tr], torch.from_numpy(y[tr])), (xt[:, te], torch.from_numpy(y[te]))
    x = x.reshape((len(x),) + r.input_shape)
    xt = torch.from_numpy(x)
    return (xt[tr], torch.from_numpy(y[tr])), (xt[te], torch.from_numpy(y[te]))


def _fits(model: Any, recipe: Recipe, weight_bits: int, act_bits: int, per_channel: bool) -> str:
    """Why ``model``'s state does not load into ``recipe``'s QAT model (``""``: it does)."""
    ref, _ = build(recipe.name, weight_bits, act_bits, per_channel)
    try:
        ref.load_state_dict(model.state_dict())
    except RuntimeError as e:
        return _state_problem(e)
    return ""


def _state_problem(e: RuntimeError) -> str:
    """The first problem ``load_state_dict`` reports, in at most 160 characters."""
    lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
    first = lines[0] if lines else str(e).strip()
    return first if len(first) <= 160 else first[:157] + "..."


def save_model(
    path: str | os.PathLike,
    model: Any,
    recipe: str | None = None,
    weight_bits: int | None = None,
    act_bits: int | None = None,
    per_channel: bool | None = None,
    *,
    example_input: Any = None,
    dt: float = 1e-3,
) -> Path:
    """Save a QAT checkpoint (``torch.load(weights_only=True)``-safe, no pickled code).

    With ``recipe``: the state dict (weights + learned quantizer scales) and the recipe's
    name; the model must be that recipe's QAT model. Without: a *user model*, any module
    :func:`~neuroplast.quantize.lower.lower` takes: the graph lowered from it (at time step
    ``dt`` s) is stored next to the state dict, so ``neuroplast export / compare / info /
    run`` work on the file without the model's Python class.

    Args:
        path: the ``.pt`` file to write.
        model: the QAT model (from :func:`~neuroplast.quantize.prepare`).
        recipe: a name in :data:`RECIPES`, or None for a user model.
        weight_bits, act_bits, per_channel: the model's QAT settings (default: the
            ``qat_config`` that ``prepare`` attached).
        example_input: a user model's input tensor (``[B, ...]``, spiking ``[T, B, ...]``).
        dt: a user model's graph time step in seconds.

    Raises:
        NeuroplastError: one line: an unknown recipe, a model that does not fit the
            recipe, a user model without ``example_input``, or a layer that cannot lower.
    """
    import torch

    cfg = getattr(model, "qat_config", None)
    wb = int(weight_bits if weight_bits is not None else cfg.weight_bits if cfg else 8)
    ab = int(act_bits if act_bits is not None else cfg.act_bits if cfg else 8)
    pc = bool(per_channel if per_channel is not None else cfg.per_channel if cfg else True)
    ck: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "recipe": recipe, "weight_bits": wb,
                          "act_bits": ab, "per_channel": pc}  # fmt: skip
    if recipe is not None:
        if recipe not in RECIPES:
            raise NeuroplastError(
                f"unknown recipe {recipe!r} (known: {', '.join(sorted(RECIPES))}); to save your "
                "own model, leave recipe out and pass example_input="
            )
        why = _fits(model, RECIPES[recipe], wb, ab, pc)
        if why:
            raise NeuroplastError(
                f"save_model: the model is not the QAT model of recipe {recipe!r} ({why}); "
                "leave recipe out to save it as your own model"
            )
    else:
        if example_input is None:
            raise NeuroplastError("save_model: a model without a recipe needs example_input= "
                                  "(a tensor shaped like its input) to be lowered and stored")  # fmt: skip
        from neuroplast.quantize.lower import lower

        x = torch.as_tensor(example_input)
        graph = lower(model, x, dt=dt)
        arrays: dict[str, Any] = {}
        gd = graph.to_dict(arrays)
        time = x.dim() == len(graph.shapes()[graph.inputs[0]]) + 2
        ck.update(graph=json.dumps(gd), arrays={k: torch.from_numpy(np.array(v, copy=True))
                  for k, v in arrays.items()}, time=time)  # fmt: skip
    ck["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, str(path))
    return path


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as the command line uses it: the lowered ``graph`` (stored for a user
    model, lowered from the recipe's model otherwise), the QAT ``model`` (``None`` for a
    user model: its Python class is not in the file), ``recipe`` (``None``: user model),
    ``input_shape`` (one sample) and ``time`` (the model takes ``[T, B, ...]``)."""

    path: str
    graph: Any
    model: Any
    recipe: str | None
    input_shape: tuple[int, ...]
    time: bool
    weight_bits: int

    def example_input(self, batch: int = 1) -> Any:
        import torch

        return torch.zeros(((SNN_STEPS,) if self.time else ()) + (batch,) + self.input_shape)


def _read(path: str | os.PathLike) -> dict[str, Any]:
    import pickle

    import torch

    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ExportError(f"model file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ExportError(f"model file {str(path)!r} is a directory") from None
    # torch's unpickler meets arbitrary bytes with any of these (IndexError, KeyError, ...)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, IndexError, KeyError,
            TypeError, AttributeError, UnicodeDecodeError, OverflowError) as e:  # fmt: skip
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(
            f"{str(path)!r} is not a loadable weights-only checkpoint: {first}"
        ) from e
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ExportError(
            f"{str(path)!r}: not a {CHECKPOINT_FORMAT} checkpoint (save it with "
            "neuroplast.quantize.save_model)"
        )
    for k in ("recipe", "weight_bits", "act_bits", "state_dict"):
        if k not in ck:
            raise ExportError(f"{str(path)!r}: checkpoint field {k!r} is missing")
    return ck


def open_checkpoint(path: str | os.PathLike, weight_bits: int | None = None) -> Checkpoint:
    """Open a recipe or user-model checkpoint (see :class:`Checkpoint`).

    Raises:
        ExportError: missing/corrupt file, wrong format, an unknown recipe, a state that
            does not fit its recipe, or ``weight_bits`` different from the checkpoint's.
    """
    ck = _read(path)
    if weight_bits is not None and int(weight_bits) != ck["weight_bits"]:
        raise ExportError(
            f"{str(path)!r} was trained with {ck['weight_bits']}-bit weights, not {weight_bits}; "
            "re-run QAT to change the bit width"
        )
    if ck["recipe"] is None:
        from neuroplast.errors import GraphError
        from neuroplast.graph import Graph

        try:
            arrays = {k: v.numpy() for k, v in dict(ck.get("arrays") or {}).items()}
            g = Graph.from_dict(json.loads(ck["graph"]), arrays)
        except (KeyError, TypeError, ValueError, AttributeError, GraphError) as e:
            raise ExportError(f"{str(path)!r}: the stored graph is unreadable: {e}") from None
        shape = tuple(g.shapes()[g.inputs[0]])
        return Checkpoint(str(path), g, None, None, shape, bool(ck.get("time")), ck["weight_bits"])
    from neuroplast.quantize.lower import lower

    model, r = load_model(path)
    return Checkpoint(str(path), lower(model, r.example_input()), model, r.name, r.input_shape,
                      r.spiking, ck["weight_bits"])  # fmt: skip


def load_model(
    path: str | os.PathLike, weight_bits: int | None = None, into: Any = None
) -> tuple[Any, Recipe | None]:
    """Rebuild a QAT model from a checkpoint (``torch.load(weights_only=True)``).

    A recipe checkpoint is rebuilt from its recipe; a user model's state is loaded
    ``into`` the caller's prepared model (its class is not in the file), and the recipe
    returned is ``None``.

    Raises:
        ExportError: missing/corrupt file, wrong format, unknown recipe, a state that does
            not fit, a user model without ``into``, or ``weight_bits`` different from the
            checkpoint's.
    """
    ck = _read(path)
    if weight_bits is not None and int(weight_bits) != ck["weight_bits"]:
        raise ExportError(
            f"{str(path)!r} was trained with {ck['weight_bits']}-bit weights, not {weight_bits}; "
            "re-run QAT to change the bit width"
        )
    try:
        if ck["recipe"] is None:
            if into is None:
                raise ExportError(
                    f"{str(path)!r} holds a user model: pass into=<your prepared model> to load "
                    "its state, or open_checkpoint(path).graph for the lowered graph"
                )
            model, r = into, None
        else:
            model, r = build(
                ck["recipe"], ck["weight_bits"], ck["act_bits"], bool(ck.get("per_channel", True))
            )
        model.load_state_dict(ck["state_dict"])
    except ExportError:
        raise
    except NeuroplastError as e:
        raise ExportError(f"{str(path)!r}: {e}") from e
    except RuntimeError as e:
        raise ExportError(
            f"{str(path)!r}: the state dict does not fit "
            f"{'the model given' if r is None else f'recipe {r.name!r}'} ({_state_problem(e)})"
        ) from None
    model.eval()
    return model, r


register_reader(".pt", lambda p: open_checkpoint(p).graph)
