"""Running a workload (build, warm up, check, time interleaved, judge the goals) and the command line of
`python -m fastloss bench`."""
import argparse
import os
import sys
import time

import numpy as np

import fastloss as fl

from . import report, timing
from .peers import DEFAULT_THREADS, PEER_NAMES, Peers, Skip, _short, configure_threads
from .workloads import KINDS, WORKLOADS, Inputs, goal_text, input_bytes, is_yardstick, output_bytes


def to_numpy(obj):
    if isinstance(obj, (tuple, list)):
        return tuple(to_numpy(o) for o in obj)
    if hasattr(obj, "detach"):  # torch
        obj = obj.detach().cpu()
        if str(obj.dtype) == "torch.bfloat16":
            obj = obj.float()  # NumPy has no bfloat16 of its own
        obj = obj.numpy()
    return np.asarray(obj)


def rel_error(got, want, chunk=1 << 22):
    """max |got - want| / max |want| (finite entries; equal or both-nan entries count 0; a (loss, grad) pair
    gives the worse of the two); inf when the shapes differ. Chunked: no full-size float64 temporaries."""
    if isinstance(want, tuple):
        if not isinstance(got, tuple) or len(got) != len(want):
            return float("inf")
        return max(rel_error(g, w) for g, w in zip(got, want))
    g, w = np.asarray(got), np.asarray(want)
    if g.shape != w.shape:
        return float("inf")
    g, w = g.reshape(-1), w.reshape(-1)
    scale, worst = 0.0, 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(0, w.size, chunk):
            wc = w[i:i + chunk].astype(np.float64)
            gc = g[i:i + chunk].astype(np.float64)
            fin = np.abs(wc[np.isfinite(wc)])
            if fin.size:
                scale = max(scale, float(fin.max()))
            same = (gc == wc) | (np.isnan(gc) & np.isnan(wc))
            d = np.where(same, 0.0, np.abs(gc - wc))
            d = np.where(np.isnan(d), np.inf, d)
            if d.size:
                worst = max(worst, float(d.max()))
    return worst / scale if scale > 0 else worst


def _checked_form(run, out):
    conv = getattr(run, "to_check", None)
    return to_numpy(conv(out) if conv is not None else out)


def build_rows(impls, arrays, P, per_call=False, tolerance=1e-4, probe=False):
    """Builds, warms up and checks each implementation (against the first that ran, fastloss when it does).
    probe: also record row["probe_s"], the time of one call (the warm-up's; for JAX a second call, the first
    compiles). Returns (rows, samplers, anchor name)."""
    rows, anchor, anchor_name, samplers = [], None, None, {}
    for impl, builder in impls.items():
        row = {"impl": impl, "median_s": None, "samples": [], "ratio": None, "x_floor": None, "agrees": None,
               "max_rel_err": None, "note": ""}
        rows.append(row)
        try:
            run = builder(arrays, P)
            t0 = time.perf_counter()
            out = run()  # warm-up: first-call costs, JAX compilation
            row["probe_s"] = time.perf_counter() - t0
            if probe and impl.startswith("jax"):
                t0 = time.perf_counter()
                out = run()
                row["probe_s"] = time.perf_counter() - t0
            samplers[impl] = timing.per_call_loop(run) if per_call else timing.one_call(run)
        except Skip as e:
            row["note"] = str(e)
            row["skipped"] = True
            continue
        except Exception as e:  # noqa: BLE001 - a failing implementation is reported, not fatal
            row["note"] = "ERROR " + _short(e)
            row["error"] = True
            continue
        if is_yardstick(impl):
            continue  # another computation: nothing to compare
        try:
            out = _checked_form(run, out)
        except Exception as e:  # noqa: BLE001
            row["note"] = "result not comparable: " + _short(e)
            continue
        if anchor is None:
            anchor, anchor_name = out, impl
            row["agrees"] = True
        else:
            err = rel_error(out, anchor)
            row["max_rel_err"] = err
            row["agrees"] = bool(err <= tolerance)
        del out
    return rows, samplers, anchor_name


def time_rows(rows, samplers, repeat, floor_s, floor_sampler=None, per_call=False):
    """Times the implementations interleaved (and the floor's sampler among them, if given); fills each row's
    samples, median, ratio to fastloss and multiple of the floor. Returns (floor used, floor samples): the
    floor measured in the rounds when there is one, else floor_s. Single calls under 1 ms get
    timing.SHORT_CALL_ROUNDS x repeat rounds; per_call samples (loops of ~20 ms) `repeat`."""
    if floor_sampler is not None and samplers:
        samplers[timing.FLOOR] = floor_sampler
    try:
        timed, errors = timing.measure_interleaved(samplers, repeat,
                                                   short_rounds=1 if per_call else timing.SHORT_CALL_ROUNDS)
    finally:
        samplers.clear()
    floor_samples = timed.pop(timing.FLOOR, [])
    if floor_samples and timing.FLOOR not in errors:
        floor_s = float(np.median(floor_samples))
    for row in rows:
        if row["impl"] in errors:
            row["note"] = "ERROR " + _short(errors[row["impl"]])
            row["error"] = True
        elif timed.get(row["impl"]):
            row["samples"] = timed[row["impl"]]
            row["median_s"] = float(np.median(row["samples"]))
    fast = next((r for r in rows if r["impl"] == "fastloss" and r["median_s"]), None)
    for r in rows:
        if fast and r["median_s"]:
            r["ratio"] = r["median_s"] / fast["median_s"]
        if floor_s and r["median_s"]:
            r["x_floor"] = r["median_s"] / floor_s
    return floor_s, floor_samples


def run_workload(wl, P, inputs, repeat, quick, bandwidth=None):
    shape = wl.quick_shape if quick else wl.shape
    try:
        arrays = inputs.get(wl.kind, shape, wl.dtype)
    except Skip as e:  # an input dtype this environment cannot make (bfloat16 without ml_dtypes)
        arrays, why = None, str(e)
    kind = KINDS[wl.kind]
    if arrays is None:
        rows = [{"impl": k, "median_s": None, "samples": [], "ratio": None, "x_floor": None, "agrees": None,
                 "max_rel_err": None, "note": why, "skipped": True} for k in kind.impls]
        anchor_name, nin, nout, floor_bw, floor_s, floor_samples = None, 0, 0, None, None, []
    else:
        rows, samplers, anchor_name = build_rows(kind.impls, arrays, P, wl.per_call, wl.tolerance())
        nin, nout = input_bytes(wl.kind, arrays), output_bytes(wl.kind, arrays)
        floor_bw = None if wl.per_call else timing.floor_seconds(nin, nout, bandwidth)
        sampler = None if wl.per_call else timing.floor_sampler([arrays[k] for k in kind.reads], nin, nout,
                                                                P.threads)
        floor_s, floor_samples = time_rows(rows, samplers, repeat, floor_bw, sampler, wl.per_call)
    goals = [judge_goal(g, rows, floor_s) for g in wl.goals]
    mets = [g["met"] for g in goals]
    first = goals[0]
    peers = [r for r in rows if r["impl"] != "fastloss" and not is_yardstick(r["impl"]) and r["median_s"]]
    best = min(peers, key=lambda r: r["median_s"]) if peers else None
    return {"workload": wl.label(quick), "key": wl.key(quick), "kind": wl.kind, "dtype": wl.dtype,
            "shape": list(shape), "per_call": wl.per_call, "input_bytes": nin, "output_bytes": nout,
            "floor_s": floor_s, "floor_samples_s": floor_samples, "floor_from_start_bandwidth_s": floor_bw,
            "tolerance": wl.tolerance(), "goal": wl.goal_text(), "goal_kind": first["kind"],
            "goal_value": first["value"], "goal_ratio": first["ratio"], "issue_note": wl.issue,
            "checked_against": anchor_name, "best_peer": best["impl"] if best else None,
            "best_peer_s": best["median_s"] if best else None,
            "goal_met": False if False in mets else (None if None in mets else True),
            "goals": goals, "results": rows}


def judge_goal(goal, rows, floor_s):
    """One goal (see workloads.goal_text) on the timed rows: {text, kind, value, ratio, measured, met, why}."""
    by = {r["impl"]: r for r in rows}
    kind = goal[0]
    value = goal[-1] if kind in ("ratio_vs", "at_most") else goal[1]
    out = {"text": goal_text(goal), "kind": kind, "value": value, "against": None, "ratio": None,
           "measured": None, "met": None, "why": ""}
    fast = by.get("fastloss")
    if fast is None or not fast["median_s"]:
        out["why"] = (fast["note"] if fast and fast["note"] else "fastloss did not run")
        return out
    t = fast["median_s"]
    if kind == "abs":
        out["met"], out["measured"] = t <= value, f"fastloss {report.fmt_time(t)} per call"
        return out
    if kind == "floor":
        if not floor_s:
            out["why"] = "no floor (bandwidth not measured)"
            return out
        out["ratio"] = t / floor_s
        out["met"], out["measured"] = out["ratio"] <= value, f"{out['ratio']:.2f}x the floor"
        return out
    if kind == "ratio":
        names = goal[2] if len(goal) > 2 else None
        peers = [r for r in rows if r["impl"] != "fastloss" and not is_yardstick(r["impl"]) and r["median_s"]
                 and (names is None or r["impl"] in names)]
        if not peers:
            out["why"] = "no peer ran"
            return out
        other = min(peers, key=lambda r: r["median_s"])
    else:
        other = by.get(goal[1])
        if other is None or not other["median_s"]:
            out["why"] = f"{goal[1]}: " + ((other or {}).get("note") or "did not run")
            return out
    out["against"] = other["impl"]
    if kind == "at_most":
        out["ratio"] = t / other["median_s"]
        out["met"] = out["ratio"] <= value
        out["measured"] = f"{out['ratio']:.2f}x ({report.fmt_time(t)} vs {report.fmt_time(other['median_s'])})"
    else:
        out["ratio"] = other["median_s"] / t
        out["met"] = out["ratio"] >= value
        out["measured"] = f"{out['ratio']:.2f}x vs {other['impl']} {report.fmt_time(other['median_s'])}"
    return out


# ---- command line -------------------------------------------------------------------------------------------

def make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m fastloss bench",
        description="Benchmark report: fastloss against NumPy and the installed peers (torch, JAX, scikit-learn, "
                    "SciPy) on the goals of issues 5, 12, 13 and 14, with each workload's memory floor measured "
                    "in the same run; --sweep: every public function at three shapes.")
    parser.add_argument("--quick", action="store_true", help="small sizes (about 1 minute; sweep: a few minutes)")
    parser.add_argument("--only", metavar="SUBSTR", help="run only the workloads (sweep: functions) whose label "
                                                         "contains SUBSTR")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="timed runs per implementation, median reported (default 7, quick 5, sweep 5; calls "
                             "over 1 s get at most 3, over 3 s 1, under 1 ms 3 times as many)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, metavar="N",
                        help=f"threads for fastloss, every peer and the bandwidth measurement (default "
                             f"{DEFAULT_THREADS}, as the goals)")
    parser.add_argument("--json", metavar="FILE", help="write every result, sample and setting to FILE")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also sweep input sizes and plot throughput (GB/s of input read); needs matplotlib")
    parser.add_argument("--sweep", action="store_true",
                        help="time every public function at three shapes, float32 and float64, against the "
                             "fastest installed peer form and the floor; list the functions short of the goal")
    parser.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                        help="sweep: the dtypes (default both)")
    parser.add_argument("--peers", default=",".join(PEER_NAMES), metavar="LIST",
                        help=f"the peers to load, comma-separated from {','.join(PEER_NAMES)}, or 'none' (default: "
                             "all installed); NumPy (fastloss.reference) always runs")
    parser.add_argument("--bandwidth-mb", type=int, default=timing.BANDWIDTH_BYTES >> 20, metavar="MB",
                        help="buffer of the bandwidth measurement (default %(default)s MiB: keep it well above "
                             "the last-level cache, e.g. 2048 on a CPU with 768 MiB of L3)")
    return parser


def parse_args(argv):
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.peers = () if args.peers.strip() == "none" else tuple(p.strip() for p in args.peers.split(",") if p.strip())
    unknown = [p for p in args.peers if p not in PEER_NAMES]
    if unknown:
        parser.error(f"--peers: unknown {', '.join(unknown)} (choose from {', '.join(PEER_NAMES)}, or none)")
    if args.bandwidth_mb < 1:
        parser.error("--bandwidth-mb must be at least 1")
    if args.plot and args.sweep:
        parser.error("--plot and --sweep are separate runs")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.sweep:
        from . import sweep
        return sweep.main(args, argv)
    repeat = args.repeat if args.repeat is not None else (5 if args.quick else 7)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("--plot needs matplotlib, which is not installed here (pip install matplotlib); "
                  "nothing was run.", file=sys.stderr)
            return 2
    selected = [w for w in WORKLOADS if not args.only or w.matches(args.only, args.quick)]
    if not selected:
        print(f"no workload matches --only {args.only!r}; workloads:\n  "
              + "\n  ".join(w.key(args.quick) for w in WORKLOADS), file=sys.stderr)
        return 2

    env_notes = configure_threads(args.threads)
    old_threads = fl._checks._override or None  # set_num_threads(None): back to the default order
    fl.set_num_threads(args.threads)
    results = []
    try:
        t_start = time.perf_counter()
        P = Peers(args.threads, args.peers).load()
        bw_start = timing.measure_bandwidth(args.threads, args.bandwidth_mb << 20)
        m = report.machine_info(P, args.threads, bw_start)
        print(f"fastloss bench{' --quick' if args.quick else ''}: {len(selected)} workloads, median of up to "
              f"{repeat} interleaved runs, {args.threads} threads")
        print("   " + report.machine_line(m))
        print("   " + report.bandwidth_line(bw_start, args.threads))
        for k in ("fastloss", "numpy", "torch", "jax", "sklearn", "scipy"):
            if k in P.thread_notes:
                print(f"   threads {k:<9} {P.thread_notes[k]}")
        for k, why in P.missing.items():
            print(f"   peer {k} skipped: {why}")
        for note in env_notes:
            print(f"   note: {note}")
        print("   ratio = impl time / fastloss time (> 1: fastloss is faster); x floor = impl time / the workload's "
              "floor (bytes read / read\n   bandwidth + bytes written / write bandwidth: the inputs streamed in C in "
              "the same rounds);\n   each result is checked against fastloss's (tolerance "
              "1e-4 of the largest value, 2e-2 for half-precision inputs); rows 'fastloss ...' are yardsticks")
        inputs = Inputs()
        for wl in selected:
            res = run_workload(wl, P, inputs, repeat, args.quick, bw_start)
            results.append(res)
            report.print_workload(res, args.quick)
            sys.stdout.flush()
        inputs.clear()
        bw_end = timing.measure_bandwidth(args.threads, args.bandwidth_mb << 20)
        report.print_goals(results, args.quick)
        print(report.machine_line(m))
        print(report.bandwidth_line(bw_start, args.threads) + " (start)")
        print(report.bandwidth_line(bw_end, args.threads) + " (end)")
        print(f"total {time.perf_counter() - t_start:.0f} s")

        data = None
        if args.plot:
            from . import plot
            print(f"\nthroughput sweep for {args.plot} ...", flush=True)
            data = plot.throughput_sweep(P, min(repeat, 3), args.quick)
            plot.save_plot(data, args.plot, m)
            print(f"wrote {args.plot}")
        if args.json:
            doc = json_doc(args, argv, repeat, m, env_notes, {"start": bw_start, "end": bw_end})
            doc["workloads"] = results
            if data is not None:
                doc["throughput_GBps"] = {k: {i: [[b, g] for b, g in v] for i, v in d.items()}
                                          for k, d in data.items()}
            report.write_json(args.json, doc)
            print(f"wrote {args.json}")
    finally:
        fl.set_num_threads(old_threads)
    failed = any(r.get("error") for res in results for r in res["results"] if r["impl"] == "fastloss")
    return 1 if failed else 0


def json_doc(args, argv, repeat, machine, env_notes, bandwidth):
    return {"command": "python -m fastloss bench " + " ".join(argv if argv is not None else sys.argv[2:]),
            "quick": args.quick, "sweep": args.sweep, "repeat": repeat,
            "timing": f"interleaved rounds, {timing.PAUSE_S * 1e3:g} ms idle before each call",
            "floor": "bytes read / read bandwidth + bytes written / write bandwidth: measured in each workload's "
                     "rounds (its inputs streamed, its outputs' bytes filled); from the start's bandwidth where not",
            "machine": machine, "bandwidth": bandwidth,
            "env": {k: os.environ.get(k) for k in ("PJRT_NPROC", "JAX_PLATFORMS", "JAX_ENABLE_X64", "XLA_FLAGS",
                                                   "OMP_NUM_THREADS", "FASTLOSS_NUM_THREADS", "FASTLOSS_SIMD")},
            "notes": env_notes}
