"""Write the KWS results table (Markdown) from a results JSON -- never typed by hand.

``python bench/kws_report.py [bench/results/kws_full.json] [docs/kws-results.md]``
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from neuroplast.errors import DataError

__all__ = ["markdown_table", "main"]


def adapt_settings(a: dict, pct: Callable[[float], str] | None = None) -> str:
    """How an adaptation result chose its learning settings, in words (``pct``: the
    caller's percentage format)."""
    f, pct = a["fixed"], pct or _pct
    return (
        f"share and ridge chosen per user by cross-validation on the examples (the best "
        f"fixed setting on validation voices, {f['share']}/{f['ridge']}: "
        f"{pct(f['after'])}, in-domain {pct(f['test_after'])})"
    )


def _pct(x: object) -> str:
    return "-" if x is None else f"{100 * float(x):.1f} %"


def _voices(vs: list[str]) -> str:
    """``["espeak-ng:m1", "flite:awb", ...]`` -> ``espeak-ng (27 voices), flite awb/rms``."""
    by: dict[str, list[str]] = {}
    for v in vs:
        e, _, n = v.partition(":")
        by.setdefault(e, []).append(n)
    return ", ".join(
        f"{e} ({len(n)} voices)" if len(n) > 4 else f"{e} {'/'.join(n)}" for e, n in by.items()
    )


def markdown_table(r: dict, source: str = "") -> str:
    """The README results table of a pipeline result dict."""
    if "models" not in r or "bundle" not in r:
        raise DataError("results JSON lacks 'models'/'bundle': run the KWS demo or benchmark first")
    d = r["data"]
    lines = [
        "| Measurement | Value | Notes |",
        "|---|---|---|",
        (
            f"| Data: train / val / test clips | {d['sizes']['train']} / {d['sizes']['val']} / "
            f"{d['sizes']['test']} | 12 classes; training: {_voices(d['voices']['train'])}; "
            f"test: {_voices(d['voices']['test'])} (never seen in training) |"
        ),
    ]
    if d.get("heldout_size"):
        lines.append(
            f"| Data: held-out engine clips | {d['heldout_size']} | "
            f"{_voices(d['heldout_voices'])}: no voice or speaker of it in training |"
        )
    for m in r["models"]:
        lines.append(
            f"| {m['name']}: test accuracy | {_pct(m['test_acc'])} | val {_pct(m['val_acc'])}, "
            f"epoch {m['best_epoch'] + 1} chosen on validation; {m['train_seconds']:.0f} s training |"
        )
    b = r["bundle"]
    lines.append(
        f"| Bundle in neuroplast runtime (int / float) | {_pct(b['runtime_int_test_acc'])} / "
        f"{_pct(b['runtime_float_test_acc'])} | int minus QAT = {b['int_minus_qat_points']:+.2f} points |"
    )
    h = r.get("heldout")
    if h:
        per = ", ".join(
            f"{k} {_pct(v['acc'])}" for k, v in h["per_voice"].items() if k != "background"
        )
        others = "; ".join(f"{k} {_pct(v)}" for k, v in h.get("models", {}).items())
        lines.append(
            f"| Held-out TTS engine, bundle in int runtime | {_pct(h['acc'])} | "
            f"QAT {_pct(h['qat_acc'])}; per voice: {per}; models: {others} |"
        )
    tb = r.get("test_breakdown")
    if tb:
        conds = ", ".join(
            f"{k} {_pct(v['acc'])} ({v['n']})" for k, v in tb["per_condition"].items()
        )
        lines.append(f"| In-domain test per condition (int runtime) | - | {conds} |")
    if h:
        conds = ", ".join(f"{k} {_pct(v['acc'])} ({v['n']})" for k, v in h["per_condition"].items())
        lines.append(f"| Held-out engine per condition (int runtime) | - | {conds} |")
    det = r.get("detection", {}).get("test")
    if det:
        eng = ", ".join(f"{k} {_pct(v)}" for k, v in det.get("recall_by_engine", {}).items())
        lines.append(
            f"| Streaming detection, {det['minutes']:g} min stream | {_pct(det['recall'])} "
            f"recall at {det['fa_per_hour']:.1f} false alarms/h | {det['keywords']} keywords in "
            f"background sound and other speech; threshold {det['theta']:.2f} chosen on a "
            f"validation stream for <= {r['detection']['max_fa_per_hour']:g} FA/h; recall by "
            f"engine: {eng}; DET curve `{Path(r['detection']['plot']).name}` |"
        )
    ref = r.get("exports", {}).get("reference", {})
    if "test_acc" in ref:
        lines.append(
            f"| ONNX + TFLite (non-spiking int8 MLP reference) | {_pct(ref['test_acc'])} | "
            f"onnxruntime vs Brevitas max diff {ref.get('onnx_vs_brevitas_max_abs', '-')}; "
            f"LiteRT vs neuroplast int {ref.get('tflite_vs_runtime_max_lsb', '-')} LSB |"
        )
    nir = r.get("exports", {}).get("nir", {})
    if "path" in nir:
        note = f"{nir.get('n_delay_nodes', '?')} Delay nodes; plain NIR interpreter vs runtime "
        note += f"max diff {nir.get('plain_nir_vs_runtime_max_abs', '-')}, argmax agree "
        note += f"{_pct(nir.get('plain_nir_argmax_agree'))}; read-back int run identical: "
        note += f"{nir.get('roundtrip_int_identical', '-')}"
        lines.append(f"| NIR export (delay network) | written | {note} |")
        peers = [
            (name, nir[key])
            for name, key in (
                ("snnTorch", "snntorch_vs_interpreter_nodelay"),
                ("Norse", "norse_vs_interpreter_nodelay"),
            )
            if key in nir
        ]
        if peers:
            chk = nir.get("nodelay_check", {})
            vals, notes = [], []
            for name, p in peers:
                if "spike_agree" in p:
                    vals.append(f"{name} {_pct(p['spike_agree'])}")
                    notes.append(
                        f"{name} readout max diff {p.get('readout_max_abs', float('nan')):.1e}, "
                        f"argmax agree {_pct(p.get('argmax_agree'))}"
                    )
                else:
                    vals.append(f"{name} {'skipped' if 'skipped' in p else 'error'}")
                    notes.append(f"{name}: {p.get('skipped', p.get('error', ''))}")
            lines.append(
                f"| NIR interpreter vs snnTorch / Norse (delays stripped) | "
                f"{' / '.join(vals)} identical LIF spikes | {'; '.join(notes)}; "
                f"{chk.get('n_inputs', '?')} rasters x {chk.get('steps', '?')} steps, "
                f"{chk.get('n_delay_nodes_after_strip', '?')} Delay nodes left |"
            )
    else:
        lines.append(f"| NIR export | not run | {nir.get('skipped', nir.get('error', ''))} |")
    e = r.get("enrollment", {})
    word = e.get("word") or e.get("saved", {}).get("report", {}).get("word")
    word = f"'{word}'" if word else "a new word"
    for name, what in (("cross_voice", "cross-voice (headline)"), ("personal", "personal")):
        c = e.get(name, {})
        if "recall_mean" in c:
            lines.append(
                f"| Enrollment of {word}, {what}: "
                f"{'/'.join(map(str, c['examples_per_draw']))} examples | "
                f"{_pct(c['recall_mean'])} recall (sd {100 * c['recall_std']:.1f}, min "
                f"{_pct(c['recall_min'])}) | old-word drop {c['old_drop_points_mean']:.2f} points "
                f"(max {c['old_drop_points_max']:.2f}) over {c['draws']} draws; "
                f"{e.get('protocol', {}).get(name, '')} |"
            )
    if "validation" in e:
        v = e["validation"]["candidates"][e["chosen"]]
        lines.append(
            f"| Enrollment settings chosen on validation voices only ({e['chosen']}) | "
            f"{_pct(v['recall'])} val recall | val old-word drop {v['old_drop_points']:.2f} "
            f"points (max {v['old_drop_points_max']:.2f}) over {v['enrollments']} "
            "leave-one-voice-out enrollments |"
        )
    a = r.get("adaptation", {})
    if "voices" in a:
        per = "; ".join(
            f"{v}: {_pct(x['before'])} -> {_pct(x['after'])}" for v, x in a["voices"].items()
        )
        lines.append(
            f"| Voice adaptation, {a['examples_per_word']} examples per word of a held-out voice "
            f"({a['draws']} draws per voice) | {_pct(a['heldout_before'])} -> "
            f"{_pct(a['heldout_after'])} | {per}; in-domain test {_pct(a['test_before'])} -> "
            f"{_pct(a['test_after'])}; {adapt_settings(a)}; {a['accepted']}/"
            f"{a['n_adaptations']} accepted by the guard"
            + (
                f"; no examples, the readout refitted on the guard alone: held-out "
                f"{_pct(z['heldout_bundle'])} -> {_pct(z['heldout_refit'])}, in-domain "
                f"{_pct(z['test_bundle'])} -> {_pct(z['test_refit'])}"
                if (z := a.get("zero_shot"))
                else ""
            )
            + " |"
        )
    elif "skipped" in a:
        lines.append(f"| Voice adaptation | not run | {a['skipped']} |")
    for mode, s in r.get("streaming", {}).items():
        lines.append(
            f"| Streaming latency per 10 ms hop ({mode}, host) | {s['latency_ms_mean']:.3f} ms "
            f"| p99 {s['latency_ms_p99']:.3f} ms; real-time factor {s['real_time_factor']:.3f}; "
            f"heap peak {s['heap_peak_kib']:.0f} KiB |"
        )
    mem = r.get("memory", {})
    if mem:
        lines.append(
            f"| Model memory | {(mem['param_bytes'] + mem['state_bytes']) / 1024:.1f} KiB | "
            f"weights {mem['param_bytes'] / 1024:.1f} KiB + state (membranes, delay rings) "
            f"{mem['state_bytes'] / 1024:.1f} KiB |"
        )
    for board, f in r.get("boards", {}).items():
        if isinstance(f, dict) and "verdict" in f:
            lines.append(
                f"| `neuroplast fit` {board} | {f['verdict']} | {f['latency_ms_per_step']:.3f} ms "
                f"per step (estimate), RAM {f['ram_needed_kib']:.0f} KiB, flash "
                f"{f['flash_needed_kib']:.0f} KiB |"
            )
    head = "<!-- generated by python bench/kws_report.py; do not edit -->\n"
    if source:
        head += f"Source: `{source}`.\n\n"
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    src = Path(args[0] if args else "bench/results/kws_full.json")
    dst = Path(args[1] if len(args) > 1 else "docs/kws-results.md")
    try:
        r = json.loads(src.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read results JSON {src}: {e}") from e
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("# KWS results\n\n" + markdown_table(r, str(src)))
    print(f"wrote {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
