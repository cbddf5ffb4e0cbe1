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

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuroplast.errors import ExportError, NeuroplastError

__all__ = [
    "Recipe",
    "RECIPES",
    "register_recipe",
    "get_recipe",
    "build",
    "save_model",
    "load_model",
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


def save_model(
    path: str | os.PathLike,
    model: Any,
    recipe: str,
    weight_bits: int,
    act_bits: int,
    per_channel: bool = True,
) -> Path:
    """Save a QAT checkpoint: state dict (weights + learned quantizer scales) + recipe."""
    import torch

    get_recipe(recipe)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "recipe": recipe,
            "weight_bits": int(weight_bits),
            "act_bits": int(act_bits),
            "per_channel": bool(per_channel),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        },
        str(path),
    )
    return path


def load_model(path: str | os.PathLike, weight_bits: int | None = None) -> tuple[Any, Recipe]:
    """Rebuild a QAT model from a checkpoint (``torch.load(weights_only=True)``).

    Raises:
        ExportError: missing/corrupt file, wrong format, unknown recipe, or
            ``weight_bits`` different from the checkpoint's.
    """
    import pickle

    import torch

    try:
        ck = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ExportError(f"model file {str(path)!r} does not exist") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise ExportError(f"{str(path)!r} is not a loadable weights-only checkpoint: {e}") from e
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ExportError(
            f"{str(path)!r}: not a {CHECKPOINT_FORMAT} checkpoint (expected a dict with "
            "'recipe' and 'state_dict'; save with neuroplast.quantize.recipes.save_model)"
        )
    for k in ("recipe", "weight_bits", "act_bits", "state_dict"):
        if k not in ck:
            raise ExportError(f"{str(path)!r}: checkpoint field {k!r} is missing")
    if weight_bits is not None and int(weight_bits) != ck["weight_bits"]:
        raise ExportError(
            f"{str(path)!r} was trained with {ck['weight_bits']}-bit weights, not {weight_bits}; "
            "re-run QAT to change the bit width"
        )
    try:
        model, r = build(
            ck["recipe"], ck["weight_bits"], ck["act_bits"], bool(ck.get("per_channel", True))
        )
        model.load_state_dict(ck["state_dict"])
    except NeuroplastError as e:
        raise ExportError(f"{str(path)!r}: {e}") from e
    except RuntimeError as e:
        raise ExportError(
            f"{str(path)!r}: state dict does not fit recipe {ck['recipe']!r}: {e}"
        ) from e
    model.eval()
    return model, r
