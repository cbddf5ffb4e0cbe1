"""Streaming detection scoring: stream construction, detections, hits and false alarms
per hour against hand-counted cases."""

from __future__ import annotations

import numpy as np
import pytest

from neuroplast.apps.kws import detect as K
from neuroplast.errors import DataError

SR = 16000


def test_build_stream_places_non_overlapping_events():
    rng = np.random.default_rng(0)
    kw = (rng.standard_normal((5, SR)) * 0.1).astype(np.float32)
    other = (rng.standard_normal((3, SR)) * 0.1).astype(np.float32)
    bed = [(rng.standard_normal(3 * SR) * 1000).astype(np.int16)]
    spec = K.StreamSpec(minutes=2.0, keywords_per_minute=6, other_speech_per_minute=4, seed=3)
    st = K.build_stream(kw, np.arange(5), other, bed, spec, [f"v{i}" for i in range(5)])
    assert len(st.audio) == 2 * 60 * SR and st.hours == pytest.approx(2 / 60)
    labels = [lab for _, _, lab in st.events]
    assert sum(lab >= 0 for lab in labels) == 12 and labels.count(-1) == 8
    ev = sorted(st.events)
    assert all(b <= c for (_, b, _), (c, _, _) in zip(ev, ev[1:]))  # never overlap
    assert all(0 < a and b < 120 for a, b, _ in ev)
    # the bed is there between events, well below the clips
    assert 0 < np.sqrt(np.mean(st.audio[: SR // 2] ** 2)) < 0.06
    with pytest.raises(DataError, match="do not fit"):
        K.build_stream(
            kw, np.arange(5), other, bed, K.StreamSpec(minutes=0.5, keywords_per_minute=40)
        )


def _stream(events, seconds=60):
    return K.Stream(np.zeros(seconds * SR, np.float32), events, [""] * len(events))


def test_detections_hits_and_false_alarms_hand_counted():
    # classes: 0, 1 keywords, 2 unknown; 6000 steps = 60 s
    T = 6000
    s = np.zeros((T, 3))
    s[:, 2] = 0.9
    s[1050:1090, 0] = 0.8  # keyword 0 while event A (10-11 s) plays: a hit
    s[1060, 0] = 0.95  # its peak
    s[1095:1100, 0] = 0.7  # same run after a 5-step dip (< merge): not a second detection
    s[3020:3040, 1] = 0.6  # keyword 1 during event B, whose label is 0: a false alarm
    s[5000:5010, 1] = 0.7  # nothing there: a false alarm
    st = _stream([(10.0, 11.0, 0), (30.0, 31.0, 0), (45.0, 46.0, 1), (50.0, 51.0, -1)])
    kw = np.array([0, 1])
    dets = K.detections(s, kw, theta=0.5)
    assert [(d[0], d[1]) for d in dets] == [(1060, 0), (3020, 1), (5000, 1)]
    r = K.score(st, dets)
    assert r["hits"] == 1 and r["false_alarms"] == 2 and r["keywords"] == 3
    assert r["recall"] == pytest.approx(1 / 3)
    assert r["fa_per_hour"] == pytest.approx(2 / (60 / 3600))
    assert r["hit_events"] == [True, False, False]
    # above every score: nothing detected; the curve's recall never rises with theta
    assert K.detections(s, kw, 0.99) == []
    c = K.det_curve(st, s, kw, np.array([0.3, 0.5, 0.65, 0.75, 0.9, 0.99]))
    assert all(a >= b for a, b in zip(c["recall"], c["recall"][1:]))
    assert c["false_alarms"] == [2, 2, 1, 0, 0, 0]
    assert K.operating_point(c, 0.0) == 0.75  # the lowest threshold with no false alarm


def test_a_long_low_run_of_one_keyword_does_not_swallow_another():
    # keyword 1 hovers just above theta for 20 s (a confused background); keyword 0
    # peaks during event A. One run over all keywords (labelled by its global peak)
    # would give a single detection; per keyword, A is found, and keyword 1 fires once
    # per second of its run (max_run = 100 steps), except where A's higher peak is
    # within `suppress` steps (step 1000)
    s = np.zeros((3000, 3))
    s[:, 2] = 0.5
    s[200:2200, 1] = 0.55
    s[1500, 1] = 0.6
    s[1040:1070, 0] = 0.9  # event A (10-11 s)
    st = _stream([(10.0, 11.0, 0)], seconds=30)
    dets = K.detections(s, np.array([0, 1]), theta=0.52)
    assert (1040, 0) in [(d[0], d[1]) for d in dets]
    ones = [d[0] for d in dets if d[1] == 1]
    assert ones == [t for t in range(200, 2200, 100) if t != 1000]
    r = K.score(st, dets)
    assert r["hits"] == 1 and r["false_alarms"] == 19
    # the whole 20 s as one run (no refractory cut): one false alarm at its peak
    assert [d[0] for d in K.detections(s, np.array([1]), 0.52, max_run=10**6)] == [1500]
    # two keywords peaking within `suppress` steps of each other: the higher one only
    s2 = np.zeros((3000, 3))
    s2[1040:1050, 0] = 0.9
    s2[1060:1070, 1] = 0.8
    assert [(d[0], d[1]) for d in K.detections(s2, np.array([0, 1]), 0.5)] == [(1040, 0)]
    assert len(K.detections(s2, np.array([0, 1]), 0.5, suppress=10)) == 2


def test_a_detection_late_within_tolerance_is_a_hit():
    s = np.zeros((3000, 2))
    s[1140, 0] = 0.9  # 11.41 s: 0.41 s after the clip ends, within the 0.5 s tolerance
    st = _stream([(10.0, 11.0, 0)], seconds=30)
    assert K.score(st, K.detections(s, np.array([0]), 0.5))["hits"] == 1
    s[1140, 0], s[1170, 0] = 0.0, 0.9  # 11.71 s: too late
    assert K.score(st, K.detections(s, np.array([0]), 0.5))["false_alarms"] == 1
