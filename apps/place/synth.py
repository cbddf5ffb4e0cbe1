"""Synthetic route generator with exact ground truth (offline substitute for Nordland).

A long panorama strip is drawn procedurally (sky gradient, fractal value-noise terrain,
"buildings" as rectangles with windows, trees, poles). Place ``k`` is the crop starting at
column ``k * stride``. Each traverse renders every place under one appearance
condition; the query condition also applies small shifts and random occlusions. Place ``k``
of every traverse is the same place, so ground truth is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.apps.place.data import Traverse
from neuroplast.checks import require_int, require_seed
from neuroplast.errors import DataError

__all__ = [
    "Condition",
    "CONDITIONS",
    "RouteParams",
    "SyntheticRoute",
    "make_route",
    "apply_condition",
]


@dataclass(frozen=True)
class Condition:
    """Appearance change: y = clip(((x * cast - 0.5) * contrast + 0.5 + brightness) ** gamma),
    then Gaussian blur (sigma, px), additive noise (std), shifts up to ``max_shift`` px and,
    with probability ``occlusion_p``, a rectangle covering up to ``occlusion_frac`` of the
    crop. ``texture`` scales a content change (seasonal foliage, snow, wet surfaces): the
    crop is multiplied by ``1 + texture * (2 f - 1)`` with ``f`` a fresh fractal field."""

    name: str
    gamma: float = 1.0
    contrast: float = 1.0
    brightness: float = 0.0
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur: float = 0.0
    noise: float = 0.0
    max_shift: int = 0
    occlusion_p: float = 0.0
    occlusion_frac: float = 0.0
    texture: float = 0.0


#: Two reference conditions (like spring + fall) and a harder query condition (summer).
CONDITIONS: dict[str, Condition] = {
    "ref_a": Condition("ref_a", gamma=1.0, contrast=1.0, noise=0.02),
    "ref_b": Condition(
        "ref_b",
        gamma=1.35,
        contrast=0.8,
        brightness=-0.05,
        cast=(1.1, 0.95, 0.8),
        blur=0.6,
        noise=0.03,
        max_shift=1,
        texture=0.2,
    ),
    "query": Condition(
        "query",
        gamma=0.7,
        contrast=0.75,
        brightness=0.05,
        cast=(0.85, 1.0, 1.2),
        blur=1.0,
        noise=0.05,
        max_shift=3,
        occlusion_p=0.3,
        occlusion_frac=0.15,
        texture=0.7,
    ),
}


@dataclass(frozen=True)
class RouteParams:
    """n_places crops of size (height, width) pixels taken every ``stride`` columns."""

    n_places: int = 1000
    height: int = 48
    width: int = 64
    stride: int = 24
    seed: int = 0

    def __post_init__(self) -> None:
        n = "RouteParams"
        require_int(DataError, n, 1, 10**6, n_places=self.n_places)
        require_int(DataError, n, 8, 4096, height=self.height, width=self.width)
        require_int(DataError, n, 1, 4096, stride=self.stride)
        require_seed(DataError, n, self.seed)


def _value_noise(h: int, w: int, cell: int, rng: np.random.Generator) -> np.ndarray:
    """Bilinearly interpolated random lattice with spacing ``cell`` px, values in [0, 1]."""
    gh, gw = h // cell + 2, w // cell + 2
    g = rng.random((gh, gw))
    yy = np.arange(h) / cell
    xx = np.arange(w) / cell
    y0, x0 = yy.astype(int), xx.astype(int)
    fy, fx = (yy - y0)[:, None], (xx - x0)[None, :]
    a = g[y0][:, x0]
    b = g[y0][:, x0 + 1]
    c = g[y0 + 1][:, x0]
    d = g[y0 + 1][:, x0 + 1]
    return a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c * fy * (1 - fx) + d * fy * fx


def _fractal(h: int, w: int, rng: np.random.Generator, base: int = 16, octaves: int = 4):
    out = np.zeros((h, w))
    amp, tot = 1.0, 0.0
    for o in range(octaves):
        out += amp * _value_noise(h, w, max(base >> o, 1), rng)
        tot += amp
        amp *= 0.5
    return out / tot


def _panorama(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Procedural route strip, float RGB (h, w, 3) in [0, 1]."""
    img = np.zeros((h, w, 3))
    yy = np.linspace(0, 1, h)[:, None]
    horizon = (0.45 + 0.15 * (_fractal(1, w, rng, base=64, octaves=3)[0] - 0.5)) * h
    sky = np.stack([0.55 + 0.3 * yy, 0.65 + 0.25 * yy, 0.9 + 0.0 * yy], axis=-1)
    img[:] = np.broadcast_to(sky, (h, 1, 3))
    ground = _fractal(h, w, rng, base=12)
    rows = np.arange(h)[:, None]
    is_ground = rows >= horizon[None, :]
    gcol = np.stack([0.25 + 0.35 * ground, 0.35 + 0.4 * ground, 0.15 + 0.2 * ground], -1)
    img = np.where(is_ground[..., None], gcol, img)
    x = 0
    while x < w:  # buildings, trees and poles along the route
        kind = rng.integers(0, 4)
        if kind == 0:
            bw, bh = int(rng.integers(8, 30)), int(rng.integers(h // 5, int(h * 0.7)))
            base_y = int(horizon[min(x, w - 1)])
            top = max(base_y - bh, 0)
            col = rng.random(3) * 0.7 + 0.15
            img[top:base_y, x : x + bw] = col
            for wy in range(top + 2, base_y - 3, 5):  # windows
                for wx in range(x + 2, min(x + bw - 2, w), 5):
                    img[wy : wy + 2, wx : wx + 2] = col * rng.uniform(0.2, 0.6)
            x += bw + int(rng.integers(0, 6))
        elif kind == 1:
            r = int(rng.integers(3, 9))
            cy = int(horizon[min(x + r, w - 1)]) - r
            yy2, xx2 = np.ogrid[:h, : min(2 * r + 1, w - x)]
            disk = (yy2 - cy) ** 2 + (xx2 - r) ** 2 <= r * r
            shade = rng.uniform(0.1, 0.35)
            sub = img[:, x : x + disk.shape[1]]
            sub[disk] = (shade * 0.6, shade + 0.15, shade * 0.5)
            if x + r < w:  # trunk
                img[min(cy + r, h - 1) : int(horizon[x + r]) + 1, x + r] = 0.2
            x += 2 * r + int(rng.integers(0, 4))
        elif kind == 2:
            base_y = int(horizon[min(x, w - 1)])
            img[max(base_y - int(rng.integers(h // 3, h // 2 + 2)), 0) : base_y, x] = 0.1
            x += int(rng.integers(2, 8))
        else:
            x += int(rng.integers(4, 16))
    return np.clip(img, 0, 1)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    r = max(int(3 * sigma), 1)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(img, ((r, r), (r, r), (0, 0)), mode="edge")
    tmp = sum(k[i] * pad[:, i : i + img.shape[1]] for i in range(2 * r + 1))
    return sum(k[i] * tmp[i : i + img.shape[0]] for i in range(2 * r + 1))


def apply_condition(crop: np.ndarray, c: Condition, rng: np.random.Generator) -> np.ndarray:
    """Photometric change of a float RGB crop in [0, 1] (see :class:`Condition`)."""
    y = crop * np.asarray(c.cast)[None, None, :]
    if c.texture > 0:
        f = _fractal(crop.shape[0], crop.shape[1], rng, base=8, octaves=3)
        y = y * (1.0 + c.texture * (2.0 * f[..., None] - 1.0))
    y = np.clip((y - 0.5) * c.contrast + 0.5 + c.brightness, 0.0, 1.0) ** c.gamma
    y = _blur(y, c.blur)
    if c.noise > 0:
        y = y + rng.normal(0.0, c.noise, y.shape)
    if c.occlusion_p > 0 and rng.random() < c.occlusion_p:
        h, w = y.shape[:2]
        area = rng.uniform(0.3, 1.0) * c.occlusion_frac * h * w
        oh = int(np.clip(np.sqrt(area * rng.uniform(0.5, 2.0)), 2, h))
        ow = int(np.clip(area / oh, 2, w))
        oy, ox = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
        y[oy : oy + oh, ox : ox + ow] = rng.random(3) * 0.6
    return np.clip(y, 0.0, 1.0)


class SyntheticRoute:
    """A procedural route; :meth:`traverse` renders all (or some) places under a condition."""

    def __init__(self, params: RouteParams) -> None:
        self.params = params
        rng = np.random.default_rng(params.seed)
        self.margin = 8  # room for shifts (Condition.max_shift <= 8)
        w = params.stride * (params.n_places - 1) + params.width + 2 * self.margin
        self.strip = _panorama(params.height + 2 * self.margin, w, rng)

    def render(self, place: int, condition: Condition, traverse_seed: int) -> np.ndarray:
        """Place ``place`` as uint8 RGB (height, width, 3); deterministic per (seed, place)."""
        p = self.params
        if not 0 <= place < p.n_places:
            raise DataError(f"place {place} outside route of {p.n_places} places")
        if condition.max_shift > self.margin:
            raise DataError(
                f"max_shift {condition.max_shift} exceeds the route margin {self.margin}"
            )
        rng = np.random.default_rng([p.seed, traverse_seed, place])
        dy, dx = (
            rng.integers(-condition.max_shift, condition.max_shift + 1, 2)
            if condition.max_shift
            else (0, 0)
        )
        y0 = self.margin + int(dy)
        x0 = self.margin + place * p.stride + int(dx)
        crop = self.strip[y0 : y0 + p.height, x0 : x0 + p.width]
        return (apply_condition(crop, condition, rng) * 255.0 + 0.5).astype(np.uint8)

    def traverse(
        self, condition: str | Condition, places: np.ndarray | None = None, seed: int | None = None
    ) -> Traverse:
        """All places (or ``places``) under ``condition`` (a name in :data:`CONDITIONS`)."""
        if isinstance(condition, str) and condition not in CONDITIONS:
            raise DataError(f"unknown condition {condition!r}; known: {sorted(CONDITIONS)}")
        c = CONDITIONS[condition] if isinstance(condition, str) else condition
        idx = np.arange(self.params.n_places) if places is None else np.asarray(places)
        tseed = seed if seed is not None else sum(map(ord, c.name))
        imgs = np.stack([self.render(int(k), c, tseed) for k in idx])
        return Traverse(c.name, imgs, idx.astype(np.int64))


def make_route(
    n_places: int, seed: int = 0, **kw: int
) -> tuple[SyntheticRoute, list[Traverse], Traverse]:
    """Route plus reference traverses (ref_a, ref_b) and the query traverse."""
    route = SyntheticRoute(RouteParams(n_places=n_places, seed=seed, **kw))
    refs = [route.traverse("ref_a"), route.traverse("ref_b")]
    return route, refs, route.traverse("query")
