"""Traverses and image-folder loaders (Nordland layout and generic reference/query folders).

A traverse is a sequence of images of places along a route; image ``i`` of every traverse of
a dataset shows place ``place_ids[i]`` (Nordland frames are aligned across seasons, so ground
truth is the frame index after subsampling).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "Traverse",
    "IMAGE_EXTENSIONS",
    "load_image",
    "list_images",
    "load_traverse",
    "load_reference_query",
    "load_nordland",
    "read_filtered_indices",
    "save_traverse",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")


@dataclass(frozen=True)
class Traverse:
    """One pass along the route: images (n, H, W[, C]) and the place id of each image."""

    name: str
    images: np.ndarray
    place_ids: np.ndarray

    def __post_init__(self) -> None:
        if len(self.images) != len(self.place_ids):
            raise DataError(
                f"traverse {self.name!r}: {len(self.images)} images but "
                f"{len(self.place_ids)} place ids"
            )

    def __len__(self) -> int:
        return len(self.place_ids)

    def subset(self, idx: np.ndarray) -> Traverse:
        return Traverse(self.name, self.images[idx], self.place_ids[idx])


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: str | Path) -> list[Path]:
    """Image files in ``folder`` (not recursive), in natural order (img2 before img10)."""
    d = Path(folder)
    if not d.is_dir():
        raise DataError(f"image folder {str(d)!r} does not exist or is not a directory")
    files = [f for f in d.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise DataError(f"image folder {str(d)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return sorted(files, key=lambda f: _natural_key(f.name))


def _deep_to_uint8(a: np.ndarray, mode: str, p: Path) -> np.ndarray:
    """A high-bit-depth grey image (Pillow modes ``I;16*``, ``I``, ``F``) scaled to uint8:
    integers by 65535 / 255 (16-bit full scale; ``I`` values above it by their maximum),
    floats in [0, 1] by 255, other floats by their min-max range. Pillow's own
    conversion to ``L``/``RGB`` clips at 255 instead: a 16-bit frame came out saturated."""
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"image {str(p)!r} ({mode}) holds NaN or infinite pixels")
    lo, hi = float(a.min()), float(a.max())
    if mode == "F":
        a = a * 255.0 if lo >= 0.0 and hi <= 1.0 else (a - lo) * (255.0 / max(hi - lo, 1e-12))
    else:
        a = np.clip(a, 0.0, None) * (255.0 / max(65535.0, hi))
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 (H, W) or (H, W, 3). Uses Pillow if present, else
    matplotlib (PNG). 16-bit and float grey images are scaled, not clipped
    (:func:`_deep_to_uint8`). Corrupt or unreadable files raise :class:`DataError` naming
    the file."""
    p = Path(path)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is normally there
        Image = None
    try:
        if Image is not None:
            with Image.open(p) as im:
                if im.mode.startswith("I") or im.mode == "F":
                    arr = _deep_to_uint8(np.asarray(im), im.mode, p)
                else:
                    arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
        else:
            import matplotlib.image as mpimg

            arr = mpimg.imread(p)
            if arr.dtype != np.uint8:
                arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
            if arr.ndim == 3:
                arr = arr[:, :, :3]
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {str(p)!r}: {exc}") from None
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"image {str(p)!r} has unusable shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _stack(paths: list[Path], name: str, size: tuple[int, int] | None) -> np.ndarray:
    """Read images; with ``size`` they are preprocessed-resized grey (H, W) float32 in [0,1]
    so that big datasets do not have to sit in memory at full resolution."""
    from neuroplast.apps.place.preprocess import resize, to_gray

    imgs = []
    for f in paths:
        im = load_image(f)
        imgs.append(resize(to_gray(im), size) if size is not None else im)
    shapes = {im.shape for im in imgs}
    if len(shapes) != 1:
        raise DataError(
            f"traverse {name!r}: images differ in shape {sorted(shapes)[:3]}; pass size= to "
            "resize them on load"
        )
    return np.stack(imgs)


def load_traverse(
    folder: str | Path,
    *,
    skip: int = 1,
    offset: int = 0,
    max_places: int | None = None,
    keep_indices: set[int] | None = None,
    size: tuple[int, int] | None = None,
    name: str | None = None,
) -> Traverse:
    """Load a folder of frames as a traverse.

    Frames are sorted naturally; if ``keep_indices`` is given only frames whose position in the
    sorted list is in it are kept (Nordland speed filter); then every ``skip``-th kept frame
    starting at ``offset`` becomes a place (place id = its rank, 0, 1, ...), up to
    ``max_places``.
    """
    if skip < 1 or offset < 0:
        raise DataError(f"skip must be >= 1 and offset >= 0, got skip={skip}, offset={offset}")
    files = list_images(folder)
    if keep_indices is not None:
        files = [f for i, f in enumerate(files) if i in keep_indices]
    files = files[offset::skip]
    if max_places is not None:
        files = files[:max_places]
    if not files:
        raise DataError(f"no frames left in {str(folder)!r} after filtering/subsampling")
    nm = name or Path(folder).name
    return Traverse(nm, _stack(files, nm, size), np.arange(len(files), dtype=np.int64))


def _check_aligned(travs: list[Traverse]) -> None:
    n = {len(t) for t in travs}
    if len(n) != 1:
        detail = ", ".join(f"{t.name}={len(t)}" for t in travs)
        raise DataError(
            f"traverses must have the same number of places to align ground truth: {detail}"
        )


def load_reference_query(
    reference_dirs: list[str | Path],
    query_dir: str | Path,
    *,
    skip: int = 1,
    offset: int = 0,
    max_places: int | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[list[Traverse], Traverse]:
    """Generic layout: one folder per reference traverse and one query folder, frame ``i``
    of each folder (after subsampling) showing place ``i``."""
    if not reference_dirs:
        raise DataError("at least one reference traverse folder is needed")
    kw = dict(skip=skip, offset=offset, max_places=max_places, size=size)
    refs = [load_traverse(d, **kw) for d in reference_dirs]
    query = load_traverse(query_dir, **kw)
    _check_aligned([*refs, query])
    return refs, query


def read_filtered_indices(path: str | Path) -> set[int]:
    """VPRSNN's ``nordland_imageNames.txt``: one frame name per line; the digits of each name
    are the frame index kept by the speed filter (train faster than 15 km/h)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"filtered-names file {str(p)!r} not found")
    out = set()
    for ln, line in enumerate(p.read_text().splitlines(), 1):
        digits = "".join(ch for ch in line if ch.isdigit())
        if line.strip() and not digits:
            raise DataError(f"{str(p)!r} line {ln}: no frame number in {line!r}")
        if digits:
            out.add(int(digits))
    return out


def load_nordland(
    root: str | Path,
    *,
    reference: tuple[str, ...] = ("spring", "fall"),
    query: str = "summer",
    skip: int = 8,
    offset: int = 0,
    max_places: int | None = None,
    filtered_names: str | Path | None = None,
    size: tuple[int, int] | None = (28, 28),
) -> tuple[list[Traverse], Traverse]:
    """Nordland layout ``root/{spring,summer,fall,winter}/<frames>``.

    As in VPRSNN: optional speed filter (``filtered_names``, default
    ``root/nordland_imageNames.txt`` if it exists), then every ``skip``-th (8, ~100 m) frame,
    reference = spring + fall, query = summer. Images are resized on load (``size``).
    """
    r = Path(root)
    if not r.is_dir():
        raise DataError(f"Nordland root {str(r)!r} is not a directory")
    missing = [s for s in (*reference, query) if not (r / s).is_dir()]
    if missing:
        raise DataError(f"Nordland root {str(r)!r} lacks season folder(s): {', '.join(missing)}")
    fn = Path(filtered_names) if filtered_names else r / "nordland_imageNames.txt"
    keep = read_filtered_indices(fn) if (filtered_names or fn.is_file()) else None
    kw = dict(skip=skip, offset=offset, max_places=max_places, keep_indices=keep, size=size)
    refs = [load_traverse(r / s, **kw) for s in reference]
    q = load_traverse(r / query, **kw)
    _check_aligned([*refs, q])
    return refs, q


def save_traverse(trav: Traverse, folder: str | Path) -> list[Path]:
    """Write a traverse as PNG files ``00000.png`` ... (Pillow, else matplotlib)."""
    d = Path(folder)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(f"cannot write the traverse to {d}: a file stands in its path") from None
    paths = []
    width = max(5, len(str(len(trav))))
    for i, im in enumerate(trav.images):
        f = d / f"{i:0{width}d}.png"
        a = np.asarray(im)
        if a.dtype != np.uint8:
            a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
        try:
            from PIL import Image

            Image.fromarray(a).save(f)
        except ImportError:  # pragma: no cover
            import matplotlib.image as mpimg

            mpimg.imsave(f, a, cmap="gray" if a.ndim == 2 else None)
        paths.append(f)
    return paths
