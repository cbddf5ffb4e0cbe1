"""User models for the bring-your-own-model tests: a residual CNN, a spiking net with
delays and a branch, and seeded random module trees (plain ``nn.Module`` classes, as a
user writes them: no ``Sequential`` at the top, functional ReLU, residual ``+``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neuroplast.quantize.qat import LIF, Delay, DelayLinear


class Residual(nn.Module):
    """``relu(x + body(x))``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class Branch(nn.Module):
    """``a(x) + b(x)``: two paths from one value, merged by a sum."""

    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(x)


class ConvReLU(nn.Module):
    def __init__(self, cin: int, cout: int, k: int = 3, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu(self.conv(x))


class ResidualCNN(nn.Module):
    """stem conv -> residual block (conv, relu, depthwise conv) -> maxpool -> linear."""

    def __init__(self, c: int = 8, n_out: int = 10) -> None:
        super().__init__()
        self.stem = ConvReLU(1, c)
        self.block = Residual(
            nn.Sequential(ConvReLU(c, c), nn.Conv2d(c, c, 3, padding=1, groups=c))
        )
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(c * 4 * 4, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.block(self.stem(x))), 1))


class DelaySNN(nn.Module):
    """Spikes ``[T, B, n_in]`` -> Linear -> LIF -> per-neuron Delay -> (Linear + Linear
    branch) -> LIF: axonal delays on one path, a direct path beside it."""

    def __init__(self, n_in: int = 12, hidden: int = 16, n_out: int = 6, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1 = nn.Linear(n_in, hidden)
        self.lif1 = LIF(beta=0.8, threshold=1.0, reset="zero")
        self.delay = Delay(rng.integers(0, 4, hidden))
        self.fc2 = nn.Linear(hidden, n_out)
        self.skip = nn.Linear(hidden, n_out, bias=False)
        self.lif2 = LIF(beta=0.7, threshold=1.0, reset="zero")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.lif1(self.fc1(x))
        return self.lif2(self.fc2(self.delay(s)) + self.skip(s))


class SynapticDelaySNN(nn.Module):
    """Spikes -> Linear -> LIF -> DelayLinear (one learned-style delay per synapse) -> LIF,
    the KWS deployment's shape."""

    def __init__(self, n_in: int = 12, hidden: int = 16, n_out: int = 5, seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc = nn.Linear(n_in, hidden)
        self.lif1 = LIF(beta=0.85, threshold=1.0, reset="zero")
        self.syn = DelayLinear(hidden, n_out, rng.integers(0, 6, (n_out, hidden)))
        self.lif2 = LIF(beta=0.75, threshold=0.5, reset="zero")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif2(self.syn(self.lif1(self.fc(x))))


def scaled(model: nn.Module, gain: float) -> nn.Module:
    """Multiply every weight by ``gain`` (so random spiking nets fire)."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return model


def random_tree(seed: int) -> tuple[nn.Module, torch.Tensor]:
    """A seeded random module tree and an input for it: ``cnn`` (convs, depthwise,
    residual and branch blocks, pools, nested user modules, a linear head), ``dense``
    (linear residual/branch trees) or ``snn`` (Linear/LIF/Delay/DelayLinear/branches over time)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    family = ("cnn", "dense", "snn")[seed % 3]
    if family == "cnn":
        c, hw = int(rng.integers(2, 6)), 8
        layers: list[nn.Module] = [ConvReLU(int(rng.integers(1, 3)), c)]
        cin = layers[0].conv.in_channels
        for _ in range(int(rng.integers(1, 4))):
            pick = rng.integers(0, 5)
            if pick == 0:
                layers.append(Residual(nn.Sequential(ConvReLU(c, c), nn.Conv2d(c, c, 1))))
            elif pick == 1:
                layers.append(Branch(ConvReLU(c, c, 3), nn.Conv2d(c, c, 1, groups=c)))
            elif pick == 2:
                layers.append(ConvReLU(c, c, 3, groups=c))
            elif pick == 3 and hw % 2 == 0 and hw > 2:
                layers.append(nn.MaxPool2d(2) if rng.random() < 0.5 else nn.AvgPool2d(2))
                hw //= 2
            else:
                layers.append(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Dropout()))
        layers += [nn.Flatten(), nn.Linear(c * hw * hw, int(rng.integers(2, 8)))]
        return nn.Sequential(*layers).eval(), torch.randn(4, cin, 8, 8)
    if family == "dense":
        n = int(rng.integers(3, 12))
        layers = [nn.Linear(n, n), nn.ReLU()]
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5:
                layers.append(Residual(nn.Sequential(nn.Linear(n, n), nn.ReLU(), nn.Linear(n, n))))
            else:
                layers.append(Branch(nn.Linear(n, n), nn.Sequential(nn.ReLU(), nn.Linear(n, n))))
        layers.append(nn.Linear(n, int(rng.integers(2, 6))))
        return nn.Sequential(*layers).eval(), torch.randn(5, n)
    n_in, hidden, n_out = (int(v) for v in rng.integers(3, 10, 3))
    beta = float(rng.uniform(0.5, 0.95))
    reset = str(rng.choice(["zero", "subtract"]))
    layers = [nn.Linear(n_in, hidden), LIF(beta, 1.0, reset)]
    if rng.random() < 0.4:
        layers.append(DelayLinear(hidden, n_out, rng.integers(0, 5, (n_out, hidden))))
    else:
        if rng.random() < 0.7:
            layers.append(Delay(rng.integers(0, 4, hidden if rng.random() < 0.7 else 1)))
        layers.append(Branch(nn.Linear(hidden, n_out), nn.Linear(hidden, n_out, bias=False)))
    layers.append(LIF(float(rng.uniform(0.5, 1.0)), 0.5, reset))
    x = (torch.rand(10, 3, n_in) < 0.4).float()
    return scaled(nn.Sequential(*layers), 2.0).eval(), x
