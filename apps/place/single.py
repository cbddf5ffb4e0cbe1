"""The non-modular baseline: one spiking network for all places, learned without regions.

As VPRSNN's single network, it learns unsupervised and its neurons are then assigned to
places: one FEAST layer (competitive Hebbian with adaptive selection thresholds, Afshar et
al. 2020; the plasticity engine's ``feast`` rule) over the latency-coded reference images of
the whole route, with the same neuron budget as the ensemble. Each neuron is assigned to the
place whose reference images depolarise it most (VPRSNN's "standard" assignment), and a
place scores its best neuron, as in the ensemble. Inputs are the graded spikes minus their
mean (feed-forward inhibition), so FEAST's cosine similarity is a correlation.
"""

from __future__ import annotations

import numpy as np

from neuroplast.apps.place.module import PlaceModule, group_max
from neuroplast.apps.place.preprocess import graded_spikes
from neuroplast.errors import DataError

__all__ = ["SingleNetwork", "train_single"]


class SingleNetwork:
    """Weights (N, D) over centred graded spikes and the place column of each neuron."""

    def __init__(self, module: PlaceModule, steps: int) -> None:
        self.module, self.steps = module, steps

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(Q, P) place scores, columns ordered as ``module.places``."""
        g = _centred(x, self.steps)
        col = {int(p): k for k, p in enumerate(self.module.places)}
        column = np.array([col.get(int(o), -1) for o in self.module.owner], np.int64)
        v = g @ self.module.weights.T
        return group_max(v, column, len(self.module.places), float(v.min()) - 1.0)


def _centred(x: np.ndarray, steps: int) -> np.ndarray:
    g = graded_spikes(np.atleast_2d(np.asarray(x, np.float32)), steps).astype(np.float32)
    return g - g.mean(axis=1, keepdims=True)


def train_single(
    ref_x: np.ndarray,
    labels: np.ndarray,
    n_neurons: int,
    steps: int = 8,
    epochs: int = 2,
    seed: int = 0,
    batch: int = 64,
) -> SingleNetwork:
    """Train the single network through the engine's FEAST rule on preprocessed reference
    images ref_x (n, D) with place ids ``labels`` (n,) (used only for the assignment)."""
    from neuroplast.graph import Graph, Input, Linear
    from neuroplast.plasticity import FeastParams
    from neuroplast.runtime import Runtime

    x = np.asarray(ref_x, np.float32)
    labels = np.asarray(labels, np.int64)
    if x.ndim != 2 or labels.shape != (len(x),) or n_neurons < 1:
        raise DataError(f"need ref_x (n, D), labels (n,) and n_neurons >= 1; got {x.shape}")
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((n_neurons, x.shape[1])).astype(np.float32)
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    g = _centred(x, steps)
    graph = Graph(
        {"image": Input(shape=(x.shape[1],)), "synapses": Linear(weight=w0)},
        [("image", "synapses")],
    )
    rt = Runtime(graph, mode="float")
    rt.plasticity.attach("synapses", FeastParams(eta=0.05, delta_close=0.01, delta_open=0.05))
    rt.learn(True)
    for _ in range(epochs):
        order = rng.permutation(len(g))
        for a in range(0, len(order), batch):
            rows = order[a : a + batch]
            if rt.batch is not None and len(rows) != rt.batch:
                rt.reset(len(rows))  # the last, shorter batch (a Linear has no state)
            rt.step(g[rows])
    w = np.array(rt.params["synapses"]["weight"], np.float32)
    places = np.unique(labels)
    v = g @ w.T
    means = np.stack([v[labels == pl].mean(axis=0) for pl in places])  # (P, N)
    owner = places[np.argmax(means, axis=0)]
    return SingleNetwork(PlaceModule(w, owner, places, np.zeros(n_neurons, np.float32)), steps)
