"""The report: the machine (CPU vendor, model, family/model, SIMD level, threads, versions), per-workload tables
(median, ratio, multiple of the floor, agreement), the goals summary, and the JSON record."""
import json
import os
import platform
import sys

import numpy as np

import fastloss as fl

from .workloads import is_yardstick


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    return f"{s * 1e3:.1f} ms"


def fmt_bw(bps):
    return f"{bps / 1e9:.1f} GB/s"


# ---- the machine --------------------------------------------------------------------------------------------

def cpu_info(path="/proc/cpuinfo"):
    """{vendor, model_name, family, model, flags} of the first CPU in /proc/cpuinfo (platform.processor() where
    there is none): the CPU is part of every result (ratios differ between an Intel and an AMD)."""
    info = {"vendor": None, "model_name": platform.processor() or "?", "family": None, "model": None,
            "flags": []}
    keys = {"vendor_id": "vendor", "model name": "model_name", "cpu family": "family", "model": "model",
            "flags": "flags"}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    break  # the end of the first CPU's block
                k, _, v = line.partition(":")
                k, v = k.strip(), v.strip()
                if k in keys:
                    info[keys[k]] = v.split() if k == "flags" else v
    except OSError:
        pass
    return info


def cpu_line(info):
    """'AMD EPYC (AuthenticAMD, family 25 model 1; avx2 fma f16c, no avx512f)'."""
    parts = []
    if info.get("vendor"):
        parts.append(info["vendor"])
    if info.get("family") is not None:
        parts.append(f"family {info['family']} model {info['model']}")
    flags = set(info.get("flags") or ())
    if flags:
        have = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_bf16") if f in flags]
        lacks = [f for f in ("avx2", "avx512f") if f not in flags]
        parts.append(" ".join(have) + (", no " + " ".join(lacks) if lacks else ""))
    return f"{info['model_name']} ({', '.join(parts)})" if parts else info["model_name"]


def machine_info(P, threads, bandwidth=None):
    cpu = cpu_info()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    simd = fl.simd_level() if hasattr(fl, "simd_level") else "?"
    levels = list(fl.available_simd_levels()) if hasattr(fl, "available_simd_levels") else []
    versions = {"python": platform.python_version(), "fastloss": getattr(fl, "__version__", "?"),
                "numpy": np.__version__}
    versions.update(P.versions)
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {"cpu": cpu_line(cpu), "cpu_vendor": cpu["vendor"], "cpu_model_name": cpu["model_name"],
            "cpu_family": cpu["family"], "cpu_model": cpu["model"], "cpus": os.cpu_count(),
            "usable_cpus": usable, "simd": simd, "simd_available": levels, "load_average": load,
            "platform": platform.platform(), "threads": threads, "thread_settings": P.thread_notes,
            "missing_peers": P.missing, "versions": versions, "bandwidth": bandwidth}


def machine_line(m):
    v = ", ".join(f"{k} {x}" for k, x in m["versions"].items())
    load = f", load average {m['load_average'][0]:.2f} at the start" if m.get("load_average") else ""
    return (f"machine: {m['cpu']}, {m['cpus']} CPUs ({m['usable_cpus']} usable{load}); fastloss SIMD level "
            f"{m['simd']} (available: {', '.join(m.get('simd_available') or ['?'])}), {m['threads']} threads; {v}")


def bandwidth_line(bw, threads):
    if not bw:
        return "memory: not measured"
    if "error" in bw:
        return f"memory: not measured ({bw['error']}): no floors"
    return (f"memory: streaming read {fmt_bw(bw['read_Bps'])}, write {fmt_bw(bw['write_Bps'])} on {threads} "
            f"threads ({bw['bytes'] / 2**20:g} MiB buffer, fl_stream_read_f32 / fl_stream_write_f32, medians)")


# ---- workloads ----------------------------------------------------------------------------------------------

def print_workload(res, quick, file=sys.stdout):
    mb = res["input_bytes"] / 1e6
    wb = f", writes {res['output_bytes'] / 1e6:,.3g} MB" if res.get("output_bytes") else ""
    floor = f", floor {fmt_time(res['floor_s'])}" if res.get("floor_s") else ""
    print(f"\n== {res['workload']}   (reads {mb:,.3g} MB{wb}{floor})", file=file)
    if res["issue_note"]:
        print(f"   issue {res['issue_note']}", file=file)
    anchor = res["checked_against"] or "-"
    width = max([10] + [len(r["impl"]) for r in res["results"]])
    print(f"   {'impl':<{width}}{'median':>11}{'ratio':>10}{'x floor':>9}{'runs':>5}   agrees with {anchor} "
          "(max rel err)", file=file)
    for r in res["results"]:
        if r["median_s"] is None:
            print(f"   {r['impl']:<{width}}{'-':>11}{'-':>10}{'-':>9}{'-':>5}   {r['note']}", file=file)
            continue
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        xfloor = f"{r['x_floor']:.2f}" if r.get("x_floor") is not None else "-"
        if r["impl"] == res["checked_against"]:
            check = "(reference for the check)"
        elif r["agrees"] is None:
            check = "(yardstick: not checked)" if is_yardstick(r["impl"]) else "-"
        elif r["agrees"]:
            check = f"ok ({r['max_rel_err']:.1e})"
        else:
            check = f"!! DIFFERS ({r['max_rel_err']:.1e} > {res['tolerance']:g})"
        note = f"   [{r['note']}]" if r["note"] else ""
        print(f"   {r['impl']:<{width}}{fmt_time(r['median_s']):>11}{ratio:>10}{xfloor:>9}{len(r['samples']):>5}"
              f"   {check}{note}", file=file)
    for g in res["goals"]:
        print(f"   goal: {goal_line(g, quick)}", file=file)


def goal_line(g, quick):
    q = " (quick sizes; the goal is for the full size)" if quick else ""
    if g["met"] is None:
        return f"{g['text']}: n/a ({g['why']})"
    mark = "MET" if g["met"] else "NOT MET"
    return f"{g['text']}: {g['measured']} -> {mark}{q}"


def goal_summary(g):
    status = {True: "MET", False: "NOT MET", None: "n/a"}[g["met"]]
    return f"{g['text']:<58} {g['measured'] or g['why']:<34} {status}"


def print_goals(results, quick, file=sys.stdout):
    print("\n== goals (issues 5, 12, 13, 14)" + (" -- quick sizes, indicative only" if quick else ""), file=file)
    width = max(len(r["workload"]) for r in results)
    met = []
    for r in results:
        for g in r["goals"]:
            met.append(g["met"])
            print(f"   {r['workload']:<{width}}  {goal_summary(g)}", file=file)
    n_na = sum(1 for x in met if x is None)
    print(f"   met {sum(1 for x in met if x)} of {len(met)}" + (f" ({n_na} not measurable here)" if n_na else ""),
          file=file)


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=_jsonable)


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")

