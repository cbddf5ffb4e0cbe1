"""Streaming keyword detection scored the way KWS users measure it: recall and false
alarms per hour on a long continuous stream, and the DET curve over the threshold.

A stream (:func:`build_stream`) is minutes of background sound (the noise beds of a
GSC-layout ``_background_noise_`` folder at levels that change every few seconds) with
1 s clips (each with its own recording conditions, re-levelled to a random peak) laid
in at random, non-overlapping times: keywords (the events to find) and
non-keyword speech (``unknown`` words, other words; nothing to find). The spotter runs
on it without resets (:func:`stream_scores`): per 10 ms step the score of each class is
its mean frame posterior over the last ``W`` steps (posterior smoothing),

    m(t) = sum_{t' = t-W+1..t} softmax(v_out(t')),     s_c(t) = m_c(t) / W,

where ``m`` is what :class:`~neuroplast.apps.kws.infer.KeywordStreamer` keeps hop by
hop (its argmax over ``W = 100`` steps is the clip decision). ``s`` is in [0, 1] and
says for what fraction of the window the class won; ``softmax(m)`` (the training
loss's posterior of a whole clip) saturates at 1 as soon as a class leads by ~10
frames, which leaves no threshold between keywords and background (on the demo
model: 1.3 % recall at 2 false alarms/h against 30 % with ``W = 30``). The default
``W`` is :data:`DETECT_WINDOW` (0.3 s, about a word's voiced part).

Detections (:func:`detections`) at threshold ``theta``: per keyword, every maximal run
of steps where its score exceeds ``theta`` (runs closer than ``merge`` steps are one
run, cut every ``max_run`` = 1 s) is a candidate at its peak; candidates closer than
``suppress`` steps keep only the higher peak (one detection per utterance; a keyword
that hovers above ``theta`` never hides another one, and fires once a second rather
than once, so a threshold below the background's score shows as false alarms). Scoring (:func:`score`): a detection is a *hit* when an unmatched keyword event
of the same label spans its time (from the clip's start to ``tolerance`` seconds after
its end: the window lags); every other detection is a *false alarm* (wrong word, or
nothing there). Recall = hits / keyword events; false alarms per hour = false alarms /
stream hours (all keywords together).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroplast.errors import DataError

__all__ = [
    "DETECT_WINDOW",
    "StreamSpec",
    "Stream",
    "build_stream",
    "stream_scores",
    "detections",
    "score",
    "det_curve",
    "operating_point",
]

SR = 16000
DETECT_WINDOW = 30  # steps of posterior smoothing for detection (0.3 s at 10 ms)


@dataclass(frozen=True)
class StreamSpec:
    """Length and density of a test stream."""

    minutes: float = 10.0
    keywords_per_minute: float = 8.0
    other_speech_per_minute: float = 8.0  # non-keyword words
    bed_db: tuple[float, float] = (-60.0, -35.0)  # background level, dBFS RMS
    bed_change_s: float = 5.0  # the background level changes this often
    clip_peak_db: tuple[float, float] = (-20.0, -3.0)  # peak level of a laid-in clip, dBFS
    seed: int = 0


@dataclass
class Stream:
    """Audio (float32, 16 kHz) and its events ``(start_s, end_s, label)``; ``label`` is
    a keyword class index, or -1 for non-keyword speech."""

    audio: np.ndarray
    events: list[tuple[float, float, int]]
    sources: list[str]  # where each event's clip came from (speaker id)

    @property
    def hours(self) -> float:
        return len(self.audio) / SR / 3600.0


def build_stream(
    keyword_clips: np.ndarray,
    keyword_labels: np.ndarray,
    other_clips: np.ndarray,
    beds: list[np.ndarray],
    spec: StreamSpec = StreamSpec(),
    keyword_sources: list[str] | None = None,
) -> Stream:
    """A continuous stream: ``beds`` (background recordings, looped and re-levelled)
    with ``keyword_clips`` (``(N, 16000)``, labels ``keyword_labels``) and
    ``other_clips`` (non-keyword speech) at random non-overlapping 1 s slots."""
    rng = np.random.default_rng(spec.seed)
    n = int(spec.minutes * 60 * SR)
    if n < 10 * SR:
        raise DataError("a test stream needs at least 10 s")
    if not beds:
        raise DataError("build_stream needs at least one background recording")
    beds = [np.asarray(b, np.float32) / (32768.0 if b.dtype == np.int16 else 1.0) for b in beds]
    # the bed: a random background recording per segment at a random level
    audio = np.zeros(n, np.float32)
    seg = int(spec.bed_change_s * SR)
    for s in range(0, n, seg):
        b = beds[int(rng.integers(len(beds)))]
        m = min(seg, n - s)
        start = int(rng.integers(0, max(1, len(b) - m)))
        piece = np.resize(b[start:], m)
        rms = np.sqrt(np.mean(piece**2)) + 1e-9
        audio[s : s + m] = piece / rms * 10 ** (rng.uniform(*spec.bed_db) / 20)
    n_kw = int(round(spec.keywords_per_minute * spec.minutes))
    n_other = int(round(spec.other_speech_per_minute * spec.minutes))
    slots = n // SR - 2  # 1 s slots, leaving the first and last second free
    if n_kw + n_other > slots // 2:
        raise DataError(f"{n_kw + n_other} clips do not fit a {spec.minutes} min stream")
    # slots at least one free second apart, so events never touch
    chosen = np.sort(rng.choice(np.arange(1, slots, 2), n_kw + n_other, replace=False))
    kinds = rng.permutation(np.r_[np.ones(n_kw, bool), np.zeros(n_other, bool)])
    events, sources = [], []
    for slot, is_kw in zip(chosen, kinds):
        if is_kw:
            i = int(rng.integers(len(keyword_clips)))
            clip, label = keyword_clips[i], int(keyword_labels[i])
            src = keyword_sources[i] if keyword_sources else ""
        else:
            clip, label, src = other_clips[int(rng.integers(len(other_clips)))], -1, ""
        clip = np.asarray(clip, np.float32) / (32768.0 if clip.dtype == np.int16 else 1.0)
        clip = clip / (np.abs(clip).max() + 1e-9)  # a talker at a level of its own
        start = int(slot * SR + rng.integers(0, SR // 2))
        audio[start : start + len(clip)] += clip * 10 ** (rng.uniform(*spec.clip_peak_db) / 20)
        events.append((start / SR, (start + len(clip)) / SR, label))
        sources.append(src)
    return Stream(np.clip(audio, -1.0, 1.0), events, sources)


def stream_scores(
    rt,  # noqa: ANN001
    spikes: np.ndarray,
    window: int = DETECT_WINDOW,
    chunk: int = 6000,
) -> np.ndarray:
    """Run ``(T, C)`` input spikes through a runtime without resets -> mean frame
    posteriors ``(T, classes)`` over the last ``window`` steps (see the module docstring;
    the first ``window - 1`` steps average over what there is, divided by ``window``).

    The runtime is stepped in chunks of ``chunk`` steps (its state carries over)."""
    from neuroplast.apps.kws.infer import readout_scale, softmax

    spikes = np.asarray(spikes)
    if spikes.ndim != 2:
        raise DataError(f"stream spikes must be (T, C), got shape {spikes.shape}")
    scale = readout_scale(rt)
    rt.reset()
    probs = []
    for s in range(0, len(spikes), chunk):
        x = spikes[s : s + chunk, None, :]
        y = rt.run(x.astype(np.int8) if rt.mode == "int" else x.astype(np.float32))
        out = y["out"] if isinstance(y, dict) else y
        probs.append(softmax(np.asarray(out, np.float64)[:, 0] * scale))
    p = np.concatenate(probs)
    c = np.cumsum(np.vstack([np.zeros((1, p.shape[1])), p]), axis=0)
    lo = np.maximum(np.arange(1, len(p) + 1) - window, 0)
    return (c[1:] - c[lo]) / window


def detections(
    scores: np.ndarray,
    keywords: np.ndarray,
    theta: float,
    merge: int = 30,
    suppress: int = 50,
    max_run: int = 100,
) -> list[tuple[int, int, float]]:
    """Detections ``(step, label, peak score)`` at threshold ``theta`` over the keyword
    classes ``keywords`` (indices into the score columns); see the module docstring.

    Per keyword ``c``: every maximal run of steps with ``s_c > theta`` (runs closer
    than ``merge`` steps are one run), cut into pieces of at most ``max_run`` steps (a
    score that stays above ``theta`` fires again every ``max_run`` steps, as a detector
    with that refractory time would), is a candidate at its peak. Candidates closer
    than ``suppress`` steps compete: the higher peak is kept (greedy non-maximum
    suppression), so one utterance gives one detection.
    """
    kw = np.asarray(keywords)
    cand: list[tuple[int, int, float]] = []
    for c in kw:
        s = scores[:, c]
        above = np.flatnonzero(s > theta)
        if above.size == 0:
            continue
        cuts = np.flatnonzero(np.diff(above) > merge) + 1
        for run in np.split(above, cuts):
            span = np.arange(run[0], run[-1] + 1)
            for piece in np.split(span, np.arange(max_run, len(span), max_run)):
                k = piece[int(np.argmax(s[piece]))]
                if s[k] > theta:
                    cand.append((int(k), int(c), float(s[k])))
    cand.sort(key=lambda d: -d[2])
    kept: list[tuple[int, int, float]] = []
    for d in cand:
        if all(abs(d[0] - e[0]) > suppress for e in kept):
            kept.append(d)
    return sorted(kept)


def score(
    stream: Stream,
    dets: list[tuple[int, int, float]],
    dt: float = 0.01,
    tolerance: float = 0.5,
) -> dict:
    """Hits, misses and false alarms of ``dets`` on ``stream``'s keyword events."""
    events = [(a, b, lab) for a, b, lab in stream.events if lab >= 0]
    used = np.zeros(len(events), bool)
    starts = np.array([a for a, _, _ in events])
    hits = fa = 0
    for step, label, _ in dets:
        t = (step + 1) * dt
        j = np.flatnonzero((starts <= t) & (t <= starts + 1.0 + tolerance) & ~used)
        j = [k for k in j if events[k][2] == label]
        if j:
            used[j[0]] = True
            hits += 1
        else:
            fa += 1
    n = len(events)
    return {
        "keywords": n,
        "hits": hits,
        "recall": hits / n if n else float("nan"),
        "false_alarms": fa,
        "fa_per_hour": fa / stream.hours,
        "hit_events": used.tolist(),
    }


def det_curve(
    stream: Stream, scores: np.ndarray, keywords: np.ndarray, thetas: np.ndarray | None = None
) -> dict:
    """Recall and false alarms per hour over thresholds ``thetas`` (default 0.01..0.99
    in steps of 0.01, then ``1 - 10^-k`` for k = 2..6 in steps of 0.1)."""
    if thetas is None:
        thetas = np.unique(np.r_[np.arange(1, 100) / 100, 1 - np.logspace(-2, -6, 41)])
    thetas = np.asarray(thetas)
    rows = [score(stream, detections(scores, keywords, float(th))) for th in thetas]
    return {
        "theta": thetas.tolist(),
        "recall": [r["recall"] for r in rows],
        "fa_per_hour": [r["fa_per_hour"] for r in rows],
        "false_alarms": [r["false_alarms"] for r in rows],
    }


def operating_point(curve: dict, max_fa_per_hour: float) -> float:
    """The highest-recall threshold whose false alarms per hour are at most
    ``max_fa_per_hour`` (ties: the lowest such threshold); the largest threshold when
    none is. Recall is not monotone in the threshold at the low end (runs merge), so
    the lowest admissible threshold is not always the best one."""
    th, fa = np.asarray(curve["theta"]), np.asarray(curve["fa_per_hour"])
    rc = np.nan_to_num(np.asarray(curve["recall"], np.float64), nan=0.0)
    ok = np.flatnonzero(fa <= max_fa_per_hour)
    if not ok.size:
        return float(th.max())
    best = ok[rc[ok] == rc[ok].max()]
    return float(th[best].min())
