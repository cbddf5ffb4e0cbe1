"""Place modules consolidated across robots: union, federated statistics, poison rejected."""

from __future__ import annotations

import numpy as np

from neuroplast.apps.place import EnsembleParams, PlaceParams, make_route, preprocess_batch
from neuroplast.apps.place.ensemble import Ensemble, calibrate_threshold, region_jobs, train_regions
from neuroplast.apps.place.fleet import PlaceLearner, PlaceMerger
from neuroplast.boards.fleet.merge import Learner, consolidate_local
from neuroplast.boards.fleet.wire import QArray


class Poisoned(Learner):
    def __init__(self, inner: Learner) -> None:
        self.inner = inner

    def fit(self, phase, arrays, meta):  # noqa: ANN001
        out, m, n = self.inner.fit(phase, arrays, meta)
        return {k: QArray(q.codes, None if q.scale is None else q.scale * 50, q.bits)
                if q.scale is not None else QArray(q.codes * 0 + 10**6, None, 32)
                for k, q in out.items()}, m, n  # fmt: skip


def test_robots_consolidate_like_central_training():
    robots, per = 4, 6
    n = robots * per
    route, refs, q = make_route(n, seed=2)
    cal = route.traverse("query", seed=999)
    imgs = np.stack([r.images for r in refs])
    xr = [preprocess_batch(r.images) for r in refs]
    xq, xc = preprocess_batch(q.images), preprocess_batch(cal.images)
    params = EnsembleParams(region_size=per, place=PlaceParams(epochs=2))
    jobs = region_jobs(imgs, np.arange(n), per)
    learners, alone = {}, []
    for i in range(robots):  # robot i drove region i only
        ens = Ensemble(tuple(train_regions([jobs[i]], params.place, [i])), params)
        sl = slice(i * per, (i + 1) * per)
        learners[f"robot{i}"] = PlaceLearner(
            ens, np.concatenate([x[sl] for x in xr]), xc[sl], np.arange(n)[sl]
        )
        alone.append(float(np.mean(ens.places[ens.scores(xq).argmax(1)] == np.arange(n))))
    learners["robot9-poison"] = Poisoned(learners["robot0"])
    m = PlaceMerger(n, params)
    log = consolidate_local(m, learners)
    assert all(list(r["rejected"]) == ["robot9-poison"] for r in log)
    assert all("out of range" in r["rejected"]["robot9-poison"] for r in log)
    fed = m.ensemble()
    # independent reference: the same regions trained centrally, statistics and threshold
    # computed on the pooled reference images and calibration queries
    central = Ensemble(tuple(train_regions(jobs, params.place, list(range(robots)))), params)
    assert np.array_equal(fed.places, central.places)
    np.testing.assert_allclose(fed.weights, central.weights, atol=0.02)  # int8 on the wire
    pooled = Ensemble(fed.modules, params).with_reference_stats(np.concatenate(xr))
    assert np.array_equal(fed.n_spk, pooled.n_spk)
    t_ref, _ = calibrate_threshold(pooled, pooled.potentials(xc), np.arange(n))
    assert fed.threshold == t_ref
    r_fed = np.mean(fed.places[fed.scores(xq).argmax(1)] == np.arange(n))
    r_central = np.mean(central.places[central.scores(xq).argmax(1)] == np.arange(n))
    assert max(alone) <= 1 / robots + 1e-9 and r_fed >= r_central - 0.05 and r_fed > 0.6
