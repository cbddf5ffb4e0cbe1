"""Write the README's results section from bench/results/*.json (never typed by hand).

    python bench/report.py            # rewrites the block between the markers in README.md

Each row names the script that produced it; a missing result file leaves its row out
and says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kws_report import adapt_settings  # bench/ is this script's folder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(name: str) -> Any:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _enroll_text(e: dict) -> str:
    """The enrollment measurement (``enrollment_protocols``): cross-voice headline, then
    the personal protocol."""
    c, q = e["cross_voice"], e.get("personal", {})
    txt = (
        f"new word {_pct(c['recall_mean'])} +- {100 * c['recall_std']:.1f} (cross-voice, "
        f"mean of {c['draws']} draws), old words -{c['old_drop_points_mean']:.1f} points "
        f"(max {c['old_drop_points_max']:.1f})"
    )
    if "recall_mean" in q:
        txt += (
            f"; personal ({'/'.join(map(str, q['examples_per_draw']))} examples of one voice) "
            f"{_pct(q['recall_mean'])}, -{q['old_drop_points_mean']:.1f} points"
        )
    return txt


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def rows() -> tuple[list[tuple[str, str, str]], list[str]]:
    out: list[tuple[str, str, str]] = []
    missing: list[str] = []

    def add(name: str, fn: Any) -> None:
        d = _load(name)
        if d is None:
            missing.append(name)
            return
        try:
            out.extend(fn(d))
        except (KeyError, IndexError, TypeError) as e:
            missing.append(f"{name} ({type(e).__name__}: {e})")

    add(
        "runtime",
        lambda d: [
            (
                f"streaming {d['network']}, T={d['steps']}, batch 1",
                (
                    f"{d['steps_per_s']['neuroplast step()']:,.0f} steps/s step-by-step "
                    f"({d['ratio_vs']['snnTorch']['step']:.1f}x snnTorch, {d['ratio_vs']['Norse']['step']:.1f}x Norse); "
                    f"{d['steps_per_s']['neuroplast run()']:,.0f} steps/s windowed; import {d['import_s'] * 1000:.0f} ms; "
                    f"peak RSS {d['peak_rss_mb']:.0f} MB"
                ),
                "bench_runtime.py",
            )
        ],
    )

    def speed(d: dict) -> list:
        s, c, p, f, rf = d["streaming"], d["cnn"], d["stdp"], d["footprint"], d["roofline"]
        ev = d["events"]
        lu = c["latency_us"]
        return [
            (
                "host fast path (native plan), streaming 700-256-256-20 `step()`",
                (
                    f"{s['steps_per_s']['neuroplast step() native']:,.0f} steps/s = {s['vs_snntorch']:.1f}x snnTorch, "
                    f"{s['vs_norse']:.1f}x Norse, {100 * s['of_gemv_roofline']:.0f}% of this machine's BLAS GEMV "
                    f"limit ({rf['gemv_limit_steps_per_s']:,.0f} steps/s); spikes identical to numpy: "
                    f"{s['spikes_identical_native_vs_numpy']}; same run, 1 thread, load {d['load_avg_1m_at_start']:.1f}"
                ),
                "bench_speed.py",
            ),
            (
                "host fast path, int8 CNN 3x32x32 batch 1",
                (
                    f"{lu['neuroplast int native']:,.0f} us native ({c['native_gmac_s']:.2f} GMAC/s) vs LiteRT "
                    f"{lu['LiteRT (XNNPACK)']:,.0f} us: {c['vs_litert']:.2f}x its time (goal <= 2x, "
                    f"{'met' if d['met']['cnn_vs_litert'] else 'not met'}); "
                    f"numpy {lu['neuroplast int numpy']:,.0f} us; bit-identical to numpy: "
                    f"{c['bit_identical_native_vs_numpy']}; same run, 1 thread, load "
                    f"{c.get('load_avg_1m', [d['load_avg_1m_at_start']])[0]:.1f}"
                ),
                "bench_speed.py",
            ),
            (
                "host fast path, STDP 700x256 through `rt.step` + engine",
                (
                    f"{p['vs_bindsnet']:.1f}x BindsNET ({p['kernels']} kernels; goal 20x "
                    f"{'met' if d['met']['stdp_vs_bindsnet'] else 'not met'}, issue 16's 10x "
                    f"{'met' if d['met']['stdp_vs_bindsnet_issue16'] else 'not met'}); "
                    f"stdp_run {p['stdp_run_vs_bindsnet']:.0f}x; weights equal the peer's to "
                    f"{p['max_abs_weight_diff_vs_bindsnet']:.0e}; import {1000 * f['import_s']:.0f} ms, "
                    f"peak RSS {f['peak_rss_mb']:.0f} MB"
                    + (
                        f"; STDP re-measured alone (`--only stdp`), load {p['rerun']['load_avg_1m_at_start']:.1f}"
                        if "rerun" in p
                        else ""
                    )
                ),
                "bench_speed.py",
            ),
            (
                "host fast path, event HD motion layer 20x pruned (pooled)",
                (
                    f"{ev['events_per_s']['native'] / 1e6:.3f} M events/s native, the pull path "
                    f"({ev['row_chunk_ops_per_event']:,.0f} 8-lane row chunks/event into "
                    f"{ev.get('pull_group', 1)} class planes per pass"
                    + (
                        f", {ev['native_vs_previous_kernel']:.2f}x one plane per pass"
                        if "native_vs_previous_kernel" in ev
                        else ""
                    )
                    + (
                        f"; W_d pruned in whole 8-dx blocks, the per-weight 20x kernel "
                        f"{ev['kernels']['per-weight']['events_per_s'] / 1e6:.3f} M/s with "
                        f"{ev['kernels']['per-weight']['row_chunk_ops_per_event']:,.0f} chunks/event, "
                        f"{100 * ev['kernels']['per-weight']['of_limit']:.0f}% of its limit"
                        if ev.get("prune_block") == 8
                        else (
                            f"; block-8 pruned W_d (same non-zeros, half the chunks; not the "
                            f"headline: less accurate after retraining) "
                            f"{ev['kernels']['block-8']['events_per_s'] / 1e6:.3f} M/s with "
                            f"{ev['kernels']['block-8']['row_chunk_ops_per_event']:,.0f} chunks/event, "
                            f"{100 * ev['kernels']['block-8']['of_limit']:.0f}% of its limit"
                            if "kernels" in ev
                            else ""
                        )
                    )
                    + f"): {ev['vs_dense']:.0f}x the dense Conv3d, "
                    f"{ev['speedup_native_vs_native_taps']:.1f}x the ring of scalar taps "
                    f"({ev['events_per_s']['native-taps'] / 1e6:.3f} M/s, {ev['taps_per_event']:,} "
                    f"taps/event, limit {min(ev['limit_events_per_s_adds'], ev['limit_events_per_s_bandwidth']) / 1e6:.3f} M/s), "
                    f"{100 * ev['of_limit']:.0f}% of the pull path's limit on this machine "
                    f"({ev['limit_rows_events_per_s'] / 1e6:.3f} M/s, adds-bound"
                    + (
                        f": C-measured RMW {max(v for k_, v in ev['peak_rmw_lanes_per_s_c'].items() if 'unal' not in k_) / 1e9:.1f} "
                        f"G lanes/s; {100 * ev['of_limit_numpy']:.0f}% of the numpy-measured "
                        f"{ev['limit_rows_events_per_s_adds_numpy'] / 1e6:.3f} M/s"
                        if "peak_rmw_lanes_per_s_c" in ev
                        else ""
                    )
                    + (
                        f"; {100 * ev['of_limit_unaligned']:.0f}% of the unaligned-RMW "
                        f"{ev['limit_rows_events_per_s_adds_unaligned'] / 1e6:.3f} M/s"
                        if "of_limit_unaligned" in ev
                        else ""
                    )
                    + f"); goals 0.6 M/s "
                    f"{'met' if d['met']['events_m_per_s'] else 'not met'}, 100x dense "
                    f"{'met' if d['met']['events_vs_dense'] else 'not met'}, 50% of limit "
                    f"{'met' if d['met']['events_of_limit'] else 'not met'}"
                    + (
                        f"; integer mode (int8 codes, {ev['int']['acc_dtype']} accumulators, "
                        f"per-position scatter + requantization + pooling): "
                        f"{ev['int']['events_per_s'] / 1e6:.4f} M events/s native "
                        f"({ev['int'].get('form', 'direct')} form, "
                        f"{ev['int']['taps_per_event']:,.0f} taps/event, 4 events per pass"
                        + (
                            f"; {ev['int']['vs_direct_form']:.2f}x the direct form's "
                            f"{ev['int']['taps_per_event_direct']:,.0f} taps"
                            if "vs_direct_form" in ev["int"]
                            else ""
                        )
                        + "), "
                        f"{ev['int']['vs_float_per_position']:.1f}x the float per-position "
                        f"scatter ({ev['events_per_s']['float per-position native'] / 1e6:.4f} "
                        f"M/s), {ev['int']['vs_g1']:.2f}x one event per pass, "
                        f"{100 * ev['int']['of_limit']:.0f}% of its limit "
                        f"{ev['int']['limit_events_per_s'] / 1e6:.4f} M/s (C-measured L1 "
                        f"scatter {ev['int']['scatter_peak_taps_per_s_c']['g=4'] / 1e9:.2f} "
                        f"G taps/s), {ev['int']['vs_native_pull_float']:.2f}x the float pull path"
                        if "int" in ev
                        else ""
                    )
                    + (
                        f"; integer pull path (pooled evidence output-stationary, "
                        f"{ev['int']['pull'].get('layout', 'two planes')} of both halves, "
                        f"{ev['int']['pull']['acc_dtype']} x {ev['int']['pull']['lanes']}, "
                        f"requantizing read-out, bit-identical: "
                        f"{ev['int']['pull']['pull_equals_per_position']}): "
                        f"{ev['int']['pull']['events_per_s'] / 1e6:.3f} M events/s, "
                        f"{100 * ev['int']['pull']['of_limit']:.0f}% of its limit "
                        f"{ev['int']['pull']['limit_events_per_s'] / 1e6:.3f} M/s (C "
                        f"{ev['int']['pull']['acc_dtype']} RMW over {ev['int']['pull']['chunk_ops_per_event']:,.0f} chunks/event), "
                        + (
                            f"{ev['int']['pull']['vs_two_planes']:.2f}x two planes, "
                            if "vs_two_planes" in ev["int"]["pull"]
                            else ""
                        )
                        + f"{ev['int']['pull']['vs_int_per_position']:.1f}x the per-position "
                        f"integer path, {ev['int']['pull']['vs_float_pull_same_kernel']:.2f}x "
                        f"the float pull path on the same kernel"
                        if "pull" in ev.get("int", {})
                        else ""
                    )
                    + f"; load {ev.get('load_avg_1m', d['load_avg_1m_at_start']):.1f}"
                ),
                "bench_speed.py",
            ),
        ]

    add("speed", speed)

    def plast(d: dict) -> list:
        best = max(d["rows"], key=lambda r: r.get("speedup_vs_peer", 0))
        rt = next(r for r in d["rows"] if r["impl"].startswith("neuroplast runtime"))
        return [
            (
                f"STDP on a 700x256 plastic layer vs {d['peer']}",
                (
                    f"{best['speedup_vs_peer']:.0f}x ({best['impl']}); {rt['speedup_vs_peer']:.1f}x through rt.step + engine; "
                    f"weights equal the peer's to {best['max_abs_weight_diff_vs_peer']:.0e}"
                ),
                "bench_plasticity.py",
            )
        ]

    add("plasticity", plast)

    def qat(d: dict) -> list:
        res = []
        for m, r in d["results"].items():
            res.append(
                (
                    f"QAT {m}, {d['task'].split(',')[0]}",
                    (
                        f"fp32 {_pct(r['fp32']['accuracy'])}, int8 {_pct(r['w8a8']['accuracy'])}, "
                        f"4-bit w {_pct(r['w4a8']['accuracy'])}, 2-bit w {_pct(r['w2a8']['accuracy'])}"
                    ),
                    "qat_accuracy.py",
                )
            )
        s = d["size_large_mlp"]
        res.append(
            ("int8 TFLite / fp32 ONNX size (85k-param MLP)", f"{s['ratio']:.2f}", "qat_accuracy.py")
        )
        return res

    add("qat", qat)

    def backends(d: dict) -> list:
        res = []
        for m, r in d["models"].items():
            lat = r["latency_us"]
            res.append(
                (
                    f"int8 {m} latency",
                    (
                        f"LiteRT {lat['LiteRT direct']:.0f} us, onnxruntime {lat['onnxruntime direct']:.0f} us, "
                        f"neuroplast int {lat['neuroplast int runtime']:.0f} us; backend overhead "
                        f"LiteRT {100 * r['backend_overhead']['litert']:+.0f}%, ORT {100 * r['backend_overhead']['onnxruntime']:+.0f}%"
                    ),
                    "bench_backends.py",
                )
            )
        return res

    add("backends", backends)
    add(
        "nir",
        lambda d: [
            (
                f"NIR export {d['net']} run in snnTorch / Norse",
                (
                    f"{_pct(d['runs']['snntorch']['agreement'])} / {_pct(d['runs']['norse']['agreement'])} identical spikes; "
                    f"snnTorch-exported net in neuroplast {_pct(d['import_snntorch_export']['agreement'])}"
                    + (
                        f"; a dt=1e-3 s net in snnTorch {_pct(t['default_time_step']['snntorch_agreement'])} "
                        f"(export warns), {_pct(t['time_step_1e-4']['snntorch_agreement'])} with time_step=1e-4"
                        if (t := d.get("dt_1e-3_in_snntorch"))
                        else ""
                    )
                ),
                "bench_nir.py",
            )
        ],
    )
    add(
        "sfq",
        lambda d: [
            (
                f"SFQ XOR {k}",
                (
                    f"all 4 correct: {v['all_correct']}, margin {v['margin']:.3f}, {v['jj_count']} JJs, "
                    f"{v['energy_per_inference_j']:.1e} J/inference, pipeline {v['pipeline_latency_ps']:.0f} ps at {v['clock_ghz']:.0f} GHz"
                ),
                "bench_sfq.py",
            )
            for k, v in d["xor"].items()
        ],
    )
    add(
        "bench_bridge",
        lambda d: [
            (
                f"serial streaming at {link['baud']} baud (C virtual board)",
                f"{link['stream']['inferences_per_s']:,.0f} steps/s, {_pct(link['stream']['efficiency_payload'])} of line rate",
                "bench_bridge.py",
            )
            for link in d["links"]
            if "baud" in link and link.get("baud")
        ],
    )

    def firmware(d: dict) -> list:
        m4 = d["cores"]["m4"]["models"]
        m0 = d["cores"]["m0plus"]["models"]
        size = d["size"]
        cov = d["coverage"]
        vals = sum(r["values"] for b in cov.values() for r in b.values())
        bad = sum(r["mismatches"] for b in cov.values() for r in b.values())
        return [
            (
                "C firmware on Cortex-M (QEMU, -icount), KWS / CNN recipe per step",
                (
                    f"M4F: {m4['kws']['instructions_per_step']:,.0f} / {m4['cnn']['instructions_per_step']:,.0f} "
                    f"instructions ({m4['kws']['instructions_per_mac']:.1f} / {m4['cnn']['instructions_per_mac']:.1f} per MAC); "
                    f"M0+: {m0['kws']['instructions_per_step']:,.0f} / {m0['cnn']['instructions_per_step']:,.0f}; "
                    f"code {size['m4']['-Os']['flash'] / 1024:.1f}-{size['m4']['-O2']['flash'] / 1024:.1f} KiB (TFLM core: 16 KB published); "
                    f"CNN arena {m4['cnn']['arena_bytes'] / 1024:.1f} KiB vs TFLM {d['tflm']['arena_bytes'] / 1024:.1f} KiB"
                ),
                "bench_firmware.py",
            ),
            (
                "firmware kernels vs the integer runtime (every kind, x86 + Cortex-M4)",
                f"{bad} of {vals:,} outputs differ",
                "bench_firmware.py",
            ),
        ]

    add("firmware", firmware)

    def kws(d: dict) -> list:
        accs = [f"{m['name']} {_pct(m['test_acc'])}" for m in d["models"] if "test_acc" in m]
        b = d["bundle"]
        # clean clips: the condition of the espeak-only measurements before channel effects
        cond = d.get("test_breakdown", {}).get("per_condition", {})
        clean = (
            f"; clean clips {_pct(cond['clean']['acc'])} (n={cond['clean']['n']}), "
            f"noise below 15 dB SNR {_pct(cond['snr<15dB']['acc'])}"
            if "clean" in cond and "snr<15dB" in cond
            else ""
        )
        out = [
            (
                "KWS 12 classes, voice-disjoint espeak-ng test (in-domain)",
                f"int8 bundle {_pct(b['runtime_int_test_acc'])} (QAT {_pct(b['qat_test_acc'])}); "
                + ", ".join(accs)
                + f" ({d['config']['epochs']} epochs){clean}",
                "bench/kws_bench.py",
            )
        ]
        if h := d.get("heldout"):
            voices = ", ".join(
                f"{k} {_pct(v['acc'])}" for k, v in h["per_voice"].items() if k != "background"
            )
            out.append(
                (
                    "KWS held-out TTS engine (festival, all voices, never trained on)",
                    f"int8 bundle {_pct(h['acc'])} (QAT {_pct(h['qat_acc'])}); {voices}",
                    "bench/kws_bench.py",
                )
            )
        if det := d.get("detection", {}).get("test"):
            out.append(
                (
                    f"KWS streaming detection, {det['minutes']:g} min stream",
                    (
                        f"recall {_pct(det['recall'])} at {det['fa_per_hour']:.1f} false alarms/h "
                        f"({det['keywords']} keywords; threshold chosen on a validation stream "
                        f"for <= {d['detection']['max_fa_per_hour']:g} FA/h)"
                    ),
                    "bench/kws_bench.py",
                )
            )
        e = d.get("enrollment", {})
        if "cross_voice" in e:
            v = e.get("validation", {}).get("candidates", {}).get(e.get("chosen"))
            out.append(
                (
                    "KWS on-device enrollment (5 examples)",
                    _enroll_text(e)
                    + (
                        f" (settings chosen on validation voices: {_pct(v['recall'])}, "
                        f"-{v['old_drop_points']:.1f} points)"
                        if v
                        else ""
                    ),
                    "bench/kws_enroll.py" if v else "bench/kws_bench.py",
                )
            )
        return out + kws_nir(d.get("exports", {}).get("nir", {}))

    def kws_demo(d: dict) -> list:
        e = d["enrollment"]
        return [
            (
                "KWS `make demo` model: enrollment from 5 examples",
                _enroll_text(e)
                + f"; demo in-domain {_pct(d['bundle']['runtime_int_test_acc'])}"
                + (f", held-out engine {_pct(d['heldout']['acc'])}" if "heldout" in d else "")
                + (
                    f", streaming detection recall {_pct(dt['recall'])} at "
                    f"{dt['fa_per_hour']:.0f} FA/h ({dt['minutes']:g} min)"
                    if (dt := d.get("detection", {}).get("test"))
                    else ""
                )
                + (
                    f"; voice adaptation ({a['examples_per_word']} examples per word) "
                    f"held-out engine {_pct(a['heldout_before'])} -> {_pct(a['heldout_after'])}, "
                    f"in-domain {_pct(a['test_before'])} -> {_pct(a['test_after'])}"
                    if "voices" in (a := d.get("adaptation", {}))
                    else ""
                ),
                "python -m neuroplast.apps.kws.demo --json bench/results/kws_demo.json",
            )
        ]

    def kws_nir(n: dict) -> list:
        s, o = (
            n.get("snntorch_vs_interpreter_nodelay", {}),
            n.get("norse_vs_interpreter_nodelay", {}),
        )
        if "spike_agree" not in s or "spike_agree" not in o:
            return []
        return [
            (
                f"KWS NIR export ({n['n_delay_nodes']} Delay nodes) via plain NIR interpreter",
                (
                    f"vs runtime max diff {n['plain_nir_vs_runtime_max_abs']:.1e}; delays stripped, "
                    f"interpreter vs snnTorch / Norse {_pct(s['spike_agree'])} / "
                    f"{_pct(o['spike_agree'])} identical spikes"
                ),
                "apps/kws pipeline",
            )
        ]

    def kws_adapt(d: dict) -> list:
        per = "; ".join(
            f"{v.removeprefix('festival-')} {_pct(r['before'])} -> {_pct(r['after'])}"
            for v, r in d["voices"].items()
        )  # fmt: skip
        return [
            (
                (
                    f"KWS voice adaptation on the device ({d['examples_per_word']} examples per word "
                    "of a held-out-engine voice, readout refitted by the engine)"
                ),
                (
                    (
                        f"no examples, the readout refitted on the guard alone: held-out engine "
                        f"{_pct(z['heldout_bundle'])} -> {_pct(z['heldout_refit'])}, in-domain "
                        f"{_pct(z['test_bundle'])} -> {_pct(z['test_refit'])}; "
                        if (z := d.get("zero_shot"))
                        else ""
                    )
                    + f"held-out engine {_pct(d['heldout_before'])} -> {_pct(d['heldout_after'])} "
                    f"(mean of {d['draws']} draws per voice; {per}); in-domain test "
                    f"{_pct(d['test_before'])} -> {_pct(d['test_after'])}; {adapt_settings(d, _pct)}; "
                    f"{d['accepted']}/{d['n_adaptations']} accepted by the guard"
                    + (
                        f"; {' / '.join(c)} examples per word: "
                        + " / ".join(_pct(v["after"]) for v in d["examples_curve"].values())
                        if (c := list(d.get("examples_curve", {})))
                        else ""
                    )
                ),
                "bench/kws_adapt.py",
            )
        ]

    add("kws_full", kws)
    add("kws_adapt", kws_adapt)
    add("kws_demo", kws_demo)

    def fleet(d: dict) -> list:
        out = []
        for app, what, metric in (("place", "8 robots, each 1/8 of a route: Recall@1", "recall1"),
                                  ("kws", "4 speakers, each enrolled one word: accuracy", "accuracy")):  # fmt: skip
            r = d[app]
            alone = r.get("alone_recall1") or r.get("alone_accuracy")
            fr = r["faults"]["per_round"][0]
            out.append(
                (
                    f"fleet consolidation on Flower, {what}",
                    (
                        f"each alone {_pct(max(alone.values()))} at best, consolidated "
                        f"{_pct(r['clean'][metric])} in {r['clean']['rounds']} round(s); with 1 dropped, "
                        f"1 garbage, 1 poisoned client per round {_pct(r['faults'][metric])} "
                        f"({fr['dropped']}/{fr['malformed']}/{fr['out_of_range']} rejected)"
                    ),
                    "bench/bench_fleet.py",
                )
            )
        rt = d["runtime"]
        out.append(
            (
                f"fleet FedAvg of Hebbian deltas + robust thresholds, {rt['devices']} devices",
                (
                    f"converged in {rt['clean']['converged_round']} rounds, "
                    f"{rt['clean']['per_round'][0]['up_bytes_per_device']:,.0f} B up per device per round; "
                    f"faulty clients change the result by {rt['faults_vs_clean_max_abs_diff']:.1g}"
                ),
                "bench/bench_fleet.py",
            )
        )
        return out

    add("fleet", fleet)
    add(
        "fleet_rollout",
        lambda d: [
            (
                f"fleet rollout on {d['hosts']} loopback sshd hosts",
                (
                    f"deploy to all {d['deploy_all_s']:.0f} s; broken version stopped at the canary and "
                    f"rolled back in {d['bad_rollout_s']:.0f} s; good version rolled out in "
                    f"{d['good_rollout_s']:.0f} s"
                ),
                "tests/boards/test_fleet_ssh.py (NEUROPLAST_FLEET_BENCH_OUT)",
            )
        ],
    )

    def motion(d: dict) -> list:
        a = d["accuracy"]
        h = d["homeostasis"]
        pr = d["pruning"]
        rows = [
            (
                f"motion 36-class per-step accuracy, switching motion ({a['n_test_movies']} movies)",
                f"{_pct(a['per_step_top1'])} (chance {_pct(a['chance'])}; direction {_pct(a['direction_only'])}, speed {_pct(a['speed_only'])})",
                "motion_experiments.py",
            )
        ]
        if c := d.get("accuracy_constant_motion"):
            rows.append(
                (
                    f"motion 36-class accuracy, constant motion = paper's test ({c['n_test_movies']} movies)",
                    (
                        f"per step {_pct(c['per_step_top1'])} (after the {d['model']['params']['n_delays']}-ms "
                        f"window fills {_pct(c['per_step_top1_after_warmup'])}); per movie "
                        f"{_pct(c['per_movie_top1'])}"
                    ),
                    "motion_experiments.py",
                )
            )

        def within(suffix: str) -> str:
            key = "max_factor_within_5_points" + suffix
            return f"{pr[key]}x magnitude" + "".join(
                f", {ft[key]}x pruned + retrained ({ft['movies_per_level']} movies/level)"
                for name in ("finetuned", "finetuned_256")
                if (ft := pr.get(name)) and key in ft
            )

        protocols = [("switching", "")]
        if "peak_constant" in pr:
            protocols.append(("constant", "_constant"))
        rows.append(
            (
                "motion pruning: largest factor within 5 points of peak",
                "; ".join(f"{name}: {within(sfx)}" for name, sfx in protocols)
                + f" (target {pr['target_factor']}x; {pr['n_movies']} movies)",
                "motion_experiments.py",
            )
        )
        rows.append(
            (
                f"motion homeostasis, event rate x{h['event_rate_ratio']:.1f}",
                f"output rate {h['rate_after_adaptation']:.4f} vs target {h['r_target']} ({_pct(h['rel_error_after'])} off)"
                + (
                    f"; {len(h['streams'])} streams, at most {_pct(h['max_rel_error_after'])} off"
                    if "streams" in h
                    else ""
                ),
                "motion_experiments.py",
            )
        )
        return rows

    add("motion", motion)

    def motion_switch(d: dict) -> list:
        ro = next(k for k in d["switching"] if k.startswith("read-out"))
        lw = "long window (21 ms), argmax"
        sw, co = d["switching"], d["constant"]
        title = (
            f"motion with an evidence read-out over a 21-ms and a "
            f"{d['short_kernel']['delays']}-ms HD window: per-step accuracy "
            f"({d['movies']['test']['n']} switching / {d['movies']['constant']['n']} "
            "constant-motion movies)"
        )
        result = (
            f"switching {_pct(sw[ro]['per_step_top1'])} (21-ms layer alone "
            f"{_pct(sw[lw]['per_step_top1'])}); constant {_pct(co[ro]['per_step_top1'])} "
            f"(alone {_pct(co[lw]['per_step_top1'])})"
        )
        rows = [(title, result, "motion_switch.py")]
        blocks = [d.get("int", {}), *d.get("int", {}).get("at_size", {}).values()]
        for blk in blocks:
            if not blk.get("models"):
                continue
            parts, same, total = [], 0, 0
            for name, m in blk["models"].items():
                s_, c_ = m["switching"], m["constant"]
                ref = "pruned" if "float pruned read-out (same movies)" in s_ else "unpruned"
                parts.append(
                    f"{name}: 21-ms layer {_pct(s_['int long window, argmax'])}, read-out "
                    f"{_pct(s_['int read-out'])} / {_pct(c_['int read-out'])} (float "
                    f"{_pct(s_[f'float {ref} read-out (same movies)'])} / "
                    f"{_pct(c_[f'float {ref} read-out (same movies)'])})"
                )
                same += m["runtime_vs_qat"]["identical_values"]
                total += m["runtime_vs_qat"]["values"]
            for tag, o in blk.get("other_readouts", {}).items():
                for name, m in o.get("models", {}).items():
                    if "float pruned read-out (same movies)" in m["switching"]:
                        s_, c_ = m["switching"], m["constant"]
                        parts.append(
                            f"{name}, read-out {tag}: {_pct(s_['int read-out'])} / "
                            f"{_pct(c_['int read-out'])} (float "
                            f"{_pct(s_['float pruned read-out (same movies)'])} / "
                            f"{_pct(c_['float pruned read-out (same movies)'])})"
                        )
            mv = next(iter(blk["models"].values()))
            rows.append(
                (
                    (
                        "motion integer HDDelayConv (int8, Brevitas quantizers): per-step "
                        f"accuracy switching / constant ({mv['switching']['movies']} + "
                        f"{mv['constant']['movies']} movies of {blk['sensor']}x"
                        f"{blk['sensor']}; float = the same kernel unquantized)"
                    ),
                    "; ".join(parts)
                    + f"; runtime = QAT integer layer on {same:,}/{total:,} values",
                    "motion_switch.py --int",
                )
            )
        return rows

    add("motion_switch", motion_switch)

    def motion_block(d: dict) -> list:
        ft = d["pruning"]["finetuned"]
        lv = next(r for r in ft["sweep"] if r["factor"] == 20)
        ex = ft["extra_retrain"]
        a = ex["accuracy_per_step"]
        return [
            (
                (
                    "motion 20x pruned with W_d in whole 8-dx blocks (the event bench's kernel): "
                    "per-step accuracy switching / constant"
                ),
                (
                    f"{_pct(lv['accuracy'])} / {_pct(lv['accuracy_constant'])} after the gradual "
                    f"schedule ({ft['movies_per_level']} movies/level); + {ex['epochs']} epochs on "
                    f"{ex['movies']} fresh movies: {_pct(a['switching_sweep'])} / "
                    f"{_pct(a['constant_sweep'])} (24 + 24 movies), {_pct(a['switching_recheck'])} "
                    f"/ {_pct(a['constant_recheck'])} (48 + 48 further movies); "
                    f"{ex['chunks_per_event']:,} 8-lane chunks per interior event"
                ),
                "motion_experiments.py --prune-block 8, --retrain-kernel",
            )
        ]

    add("motion_block_pruning", motion_block)
    add(
        "motion_switch_pruned20",
        lambda d: [
            (t.replace("motion with", "motion, both windows 20x pruned (gradual), with"), r, c)
            for t, r, c in motion_switch(d)
        ],
    )
    add(
        "bench_events",
        lambda d: [
            (
                f"event-driven HD layer, prune x{r['prune_factor']}",
                f"{r['events_per_s']:,.0f} events/s, {r['speedup_vs_dense']:.1f}x dense torch Conv3d",
                "bench_events.py",
            )
            for r in d["rows"]
            if r["prune_factor"] in (1, 20, 100)
        ],
    )

    def place(d: dict) -> list:
        rows = []
        for a in d["accuracy"]:
            t = a["table"]
            ens, sad = t["spiking ensemble"], t["SAD (patch-normalised)"]
            single = t["single network (FEAST, unsupervised)"]
            seq = next(t[k] for k in a["sequence_add_on"] if k.startswith("spiking"))
            rows.append(
                (
                    (
                        f"place recognition, {a['places']:,} places ({a['test_queries']} test "
                        "queries), Recall@1"
                    ),
                    (
                        f"spiking ensemble {ens['r1']:.3f} (PR-AUC {ens['pr_auc']:.3f}), SAD "
                        f"{sad['r1']:.3f}, single network {single['r1']:.3f}; with sequence "
                        f"matching (add-on) {seq['r1']:.3f}"
                    ),
                    "bench_place.py",
                )
            )
        rt, a0 = d["runtime"], d["accuracy"][0]
        rows.append(
            (
                f"place: {a0['places']:,} places, training on one core / queries at batch 1",
                (
                    f"trained in {a0['train_s_one_core']:.0f} s ({a0['train_cpu_s']:.0f} s CPU); "
                    f"runtime int8 {rt['runtime_int_batch1_qps']:,.0f} queries/s, float "
                    f"{rt['runtime_float_batch1_qps']:,.0f} queries/s"
                ),
                "bench_place.py",
            )
        )
        nr = d["new_region"]
        rows.append(
            (
                "place: new region learned on device (engine)",
                (
                    f"old R@1 {nr['old_test_before']['r1']:.3f} -> {nr['old_test_after']['r1']:.3f}"
                    f" ({nr['delta_r1_points']:+.2f} points), learned in {nr['learn_s']:.1f} s"
                ),
                "bench_place.py",
            )
        )
        if "scaling" in d:
            sc = d["scaling"]
            runs = ", ".join(f"{r['workers']} worker(s) {r['train_s']:.0f} s" for r in sc["runs"])
            rows.append(
                (
                    f"place: {sc['places']:,} places trained on Ray",
                    f"{runs}; model {sc['runs'][0]['model_mib_int8']:.0f} MiB int8",
                    "bench_place.py",
                )
            )
        return rows

    add("place", place)

    def reliability(d: dict) -> list:
        def crashes(t: dict) -> str:
            return (
                f"{t['crashed']} crashed, {t.get('tracebacks', 0)} tracebacks, {t['hangs']} hangs"
            )

        rows = []
        for key, what in (("bundles", "bundles"), ("inputs", "--input files")):
            t = d[key]
            rows.append((
                f"hostile {what}: tried / refused cleanly / crashed",
                f"{t['tried']:,} / {t['refused']:,} (+{t['ok']:,} valid, ran) / {crashes(t)}",
                "reliability.py",
            ))  # fmt: skip
        for key, what in (("datagrams", "UDP datagrams"), ("mqtt_messages", "MQTT messages")):
            t = d[key]
            rows.append((
                f"hostile {what} to serve: tried / refused or dropped, counted / crashed",
                (f"{t['tried']:,} / {t['refused'] + t['dropped_counted']:,} (+{t['processed']:,} "
                f"valid, ran) / {crashes(t)}; {t['uncounted']} lost without a counter"),
                "reliability.py",
            ))  # fmt: skip
        pm, ib = d["peak_memory"], d["peak_memory"]["issue_bomb_default_limits"]
        rows.append((
            "peak memory of the worst bundle (load, fresh process)",
            (f"{pm['worst_extra_bytes'] / 2**20:.0f} MiB for a {pm['budget_bytes'] / 2**20:.0f} MiB "
            f"budget ({pm['worst_ratio']:.2f}x, {pm['worst']}); a nested zip bomb as in issue 17, "
            f"{ib['bundle_bytes'] / 1024:,.0f} KB declaring {ib['declared_bytes'] / 1e9:.1f} GB, "
            f"default limits: refused, +{ib['extra_bytes'] / 2**20:.1f} MiB"),
            "reliability.py",
        ))  # fmt: skip
        sl = d["serve_load"]
        top = max(sl["rows"], key=lambda r: r["target_per_s"])
        rows.append((
            "serve over MQTT (real mosquitto), valid messages",
            (f"{sl['held_per_s']:,} msg/s held with 0 lost; at {top['target_per_s']:,}/s "
            f"{top['processed']:,} of {top['tried']:,} processed, {top['dropped_counted']:,} "
            f"dropped and counted; {sl['uncounted_total']} lost without a counter"),
            "reliability.py",
        ))  # fmt: skip
        rows.append((
            "weights changed by unauthenticated traffic (max abs)",
            (f"{d['datagrams']['weights_max_abs_change']:g} after {d['datagrams']['tried']:,} "
            f"datagrams, {d['mqtt_messages']['weights_max_abs_change']:g} after "
            f"{d['mqtt_messages']['tried']:,} MQTT messages; authenticated control "
            f"{d['authenticated_control_weight_change']:.2g}"),
            "reliability.py",
        ))  # fmt: skip
        for r in d.get("udp_blast", []):
            rows.append((
                f"unpaced UDP burst to serve, socket buffer {r['rcvbuf'] >> 10} KiB",
                (f"{r['tried']:,} sent at {r['sent_per_s']:,.0f}/s: {r['processed']:,} processed, "
                f"{r['dropped_queue']:,} dropped from the queue, {r['dropped_kernel']:,} by the "
                f"kernel, all counted; {r['uncounted']} lost without a counter"),
                "reliability.py",
            ))  # fmt: skip
        ll = d["long_line"]
        rows.append((
            f"serve reading a {ll['line_mb']} MB stdin line",
            f"skipped and counted; peak RSS {ll['peak_rss_mb']:.0f} MB (+{ll['extra_mb']:.1f} MB)",
            "reliability.py",
        ))  # fmt: skip
        return rows

    add("reliability", reliability)

    def conformance(d: dict) -> list:
        # "agree/claimed (refused cleanly)" per target; the peers run what NIR claims
        parts = [
            f"{t} {r['agree']:,}/{r['claimed']:,}"
            + (f" ({r['refused_cleanly']:,} refused)" if r["refused_cleanly"] else "")
            for t, r in d["targets"].items()
        ]
        bad = len(d["failures"])
        return [
            (
                f"conformance: {d['graphs']:,} random graphs, agree/claimed per target",
                ", ".join(parts) + f"; {bad} failures, every refusal one clean line",
                "conformance.py",
            )
        ]

    add("conformance", conformance)
    return out, missing


def render() -> str:
    table, missing = rows()
    lines = [START, "", "| benchmark | result | produced by |", "|---|---|---|"]
    lines += [f"| {a} | {b} | `{c}` |" for a, b, c in table]
    if missing:
        lines += ["", f"Not yet measured: {', '.join(missing)}."]
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md lacks the {START} / {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + render() + tail)
    print(render())


if __name__ == "__main__":
    main()
