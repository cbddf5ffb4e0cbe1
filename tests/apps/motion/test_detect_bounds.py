"""Bounds of the motion app on a user's recordings and files: detect_stream keeps the
direction maps of a few windows (equal to the full run's), refuses a recording spanning
more than MAX_SPAN_MS and a sensor whose maps pass the memory budget before any work
(naming the binning that fits), and a kernel save interrupted keeps the previous file."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.motion.detect import MAX_SPAN_MS, detect_stream
from neuroplast.apps.motion.events import make_events
from neuroplast.apps.motion.model import HDParams, init_kernel
from neuroplast.apps.motion.simulate import class_velocities
from neuroplast.errors import DataError

SIZE = (20, 20)


def _events(n: int, t_max: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    return make_events(t, rng.integers(0, 20, n), rng.integers(0, 20, n), rng.integers(0, 2, n))


@pytest.fixture(scope="module")
def kernel():
    return init_kernel(HDParams(n_delays=5, kernel=5), 0, class_velocities())


def test_maps_are_kept_for_a_few_windows_and_equal_the_full_run(kernel):
    ev = _events(3000, 200_000)
    full = detect_stream(kernel, ev, SIZE, window_ms=10, maps=10**6)
    few = detect_stream(kernel, ev, SIZE, window_ms=10, maps=4)
    n_win = len(full.window_class)
    assert n_win == 20 and len(full.map_windows) == n_win
    assert few.map_windows.tolist() == [0, 6, 12, 19]
    assert np.array_equal(few.direction_map, full.direction_map[few.map_windows])
    assert np.array_equal(few.evidence, full.evidence)
    assert few.evidence.dtype == np.float32 and few.evidence.shape == (200, 36)


def test_a_span_over_the_limit_is_refused_up_front(kernel):
    ev = _events(100, 100_000)
    late = make_events([10**12], [1], [1], [1])
    with pytest.raises(DataError, match="motion run --start / --duration"):
        detect_stream(kernel, np.concatenate([ev, late]), SIZE)
    two = make_events([0, (MAX_SPAN_MS - 1) * 1000], [1, 2], [1, 1], [1, 0])
    with pytest.raises(DataError, match="window_ms and maps"):
        detect_stream(kernel, two, SIZE, maps=0)


def test_memory_model_and_the_downsample_it_suggests(kernel):
    from neuroplast.apps.motion.detect import detect_memory
    from neuroplast.apps.motion.event_layer import compile_taps, init_event_state

    size = (40, 30)
    taps = compile_taps(kernel.weight, kernel.bias, size)
    carry = init_event_state(taps).carry.nbytes
    c, _, kt, ky, kx = kernel.weight.shape
    z = 4 * c * 10 * (size[1] - ky + 1) * (size[0] - kx + 1)  # one 10 ms window's output
    assert detect_memory(kernel, size, 10) == carry + z
    ev = _events(500, 50_000)
    budget = detect_memory(kernel, (14, 10), 10)  # fits a 3x3 binning of 40 x 30, not 2x2
    assert detect_memory(kernel, (20, 15), 10) > budget
    with pytest.raises(
        DataError, match=r"40x30 sensor needs 2.9 MiB .*\(motion run --downsample 3\)"
    ):
        detect_stream(kernel, ev, size, max_bytes=budget)
    detect_stream(kernel, ev, size, max_bytes=detect_memory(kernel, size, 10))


def test_a_kernel_save_interrupted_leaves_the_previous_file(kernel, tmp_path, monkeypatch):
    """Saving is atomic (arrayfile.save_npz): Ctrl-C at the rename keeps the old kernel
    whole and leaves no temp file; a path without .npz gets it, as with np.savez."""
    import os

    from neuroplast.apps.motion.model import HDKernel

    path = tmp_path / "k.npz"
    kernel.save(path)
    other = HDKernel(kernel.weight * 2, kernel.bias)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        other.save(path)
    monkeypatch.undo()
    assert np.array_equal(HDKernel.load(path).weight, kernel.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.npz"]
    other.save(tmp_path / "plain")
    assert np.array_equal(HDKernel.load(tmp_path / "plain.npz").weight, other.weight)


def test_a_budget_no_binning_meets_is_said_not_looped_on(kernel):
    ev = _events(50, 10_000)
    with pytest.raises(DataError, match="no binning fits it"):
        detect_stream(kernel, ev, SIZE, max_bytes=1)
