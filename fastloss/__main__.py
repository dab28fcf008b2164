"""python -m fastloss [demo]: the main job. Runs every function on built-in synthetic data (a small classifier
batch and an LLM-sized batch of 2048 x 32000 float32 logits) and prints, per function, the max error against
the NumPy oracle (fastloss.reference), the fastloss and NumPy times (best of a few runs) and the speedup.

python -m fastloss bench [...]: the benchmark report against the peers (see fastloss.bench).
python -m fastloss eval [...]: score a model's outputs stored in .npy files (see fastloss.evaluate_cli).
python -m fastloss --help lists these subcommands; --version prints the version.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

import fastloss as fl
from fastloss import reference as ref

#: a row of the demo: (batch label, function name, fastloss call, NumPy call)
Case = tuple[str, str, Callable[..., Any], Callable[..., Any]]  # (the lambdas bind their data as defaults)


def _best_time(fn: Callable[[], Any], repeat: int, budget: float = 3.0) -> tuple[float, Any]:
    """Best wall time of up to `repeat` calls (fewer when a call is slow); also the last result."""
    best, out, spent = float("inf"), None, 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget:
            break
    return best, out


def _max_error(got: Any, want: Any) -> float:
    """max |got - want| / max(1, |want|) over all outputs (a pair is (loss, grad)); nan-aware."""
    if isinstance(want, tuple):
        return max(_max_error(g, w) for g, w in zip(got, want))
    g = np.asarray(got, np.float64)
    w = np.asarray(want, np.float64)
    same_nan = np.isnan(g) & np.isnan(w)
    with np.errstate(invalid="ignore"):
        err = np.where(same_nan | (g == w), 0.0, np.abs(g - w) / np.maximum(1.0, np.abs(w)))
    return float(np.max(err)) if err.size else 0.0


def _cases(rng: np.random.Generator) -> list[Case]:
    """(batch label, function name, fastloss call, NumPy call) for every function of the demo."""
    cases: list[Case] = []
    small = rng.normal(size=(4096, 10)).astype(np.float32) * 2
    small_t = rng.integers(0, 10, size=4096)
    llm = rng.normal(size=(2048, 32000)).astype(np.float32) * 3
    llm_t = rng.integers(0, 32000, size=2048)
    llm_t[::16] = -100  # padding positions, ignored
    for label, x, t in (("4096 x 10", small, small_t), ("2048 x 32000", llm, llm_t)):
        cases += [
            (label, "logsumexp", lambda x=x: fl.logsumexp(x), lambda x=x: ref.logsumexp(x)),
            (label, "softmax", lambda x=x: fl.softmax(x), lambda x=x: ref.softmax(x)),
            (label, "log_softmax", lambda x=x: fl.log_softmax(x), lambda x=x: ref.log_softmax(x)),
            (label, "cross_entropy", lambda x=x, t=t: fl.cross_entropy(x, t),
             lambda x=x, t=t: ref.cross_entropy(x, t)),
            (label, "cross_entropy(smooth=0.1)", lambda x=x, t=t: fl.cross_entropy(x, t, label_smoothing=0.1),
             lambda x=x, t=t: ref.cross_entropy(x, t, label_smoothing=0.1)),
            (label, "cross_entropy_and_grad", lambda x=x, t=t: fl.cross_entropy_and_grad(x, t),
             lambda x=x, t=t: ref.cross_entropy_and_grad(x, t)),
        ]
        lp = fl.log_softmax(x)
        cases += [
            (label, "nll_loss", lambda lp=lp, t=t: fl.nll_loss(lp, t), lambda lp=lp, t=t: ref.nll_loss(lp, t)),
            (label, "nll_loss_and_grad", lambda lp=lp, t=t: fl.nll_loss_and_grad(lp, t),
             lambda lp=lp, t=t: ref.nll_loss_and_grad(lp, t)),
        ]
    # the classifier batch through the other class losses, and the distribution measures on its softmax
    x, t = small, small_t
    p = fl.softmax(x)
    q = fl.softmax(np.roll(x, 1, axis=0))
    cases += _same_call("4096 x 10", [
        ("multiclass_hinge_loss", (x, t), {}),
        ("multiclass_hinge_loss(ww, p=2)", (x, t), dict(kind="weston_watkins", p=2)),
        ("zero_one_loss (top-1)", (x, t), {}),
        ("entropy", (p,), {}),
        ("categorical_cross_entropy", (p, q), {}),
        ("kl_divergence", (p, q), {}),
        ("kl_div", (np.log(q), p), dict(reduction="batchmean")),
        ("kl_div_and_grad", (np.log(q), p), dict(reduction="batchmean")),
    ])
    # binary scores with labels in {-1, +1}, probabilities in [0, 1], regression targets: 1M elements
    n = 1_000_000
    scores = rng.normal(size=n).astype(np.float32) * 2
    y = np.where(rng.random(n) < 0.5, -1, 1).astype(np.float32)
    prob = (y > 0).astype(np.float32)
    target = scores + rng.normal(size=n).astype(np.float32)
    cases += _same_call("1M elements", [
        ("zero_one_loss", (scores, y), {}),
        ("logistic_loss", (scores, y), {}),
        ("logistic_loss_and_grad", (scores, y), {}),
        ("exponential_loss", (scores, y), {}),
        ("hinge_loss", (scores, y), {}),
        ("hinge_loss_and_grad(squared)", (scores, y), dict(squared=True)),
        ("binary_cross_entropy_with_logits", (scores, prob), {}),
        ("binary_cross_entropy_with_logits_and_grad", (scores, prob), {}),
        ("mse_loss", (scores, target), {}),
        ("mse_loss_and_grad", (scores, target), {}),
        ("l1_loss", (scores, target), {}),
        ("huber_loss", (scores, target), dict(delta=0.5)),
        ("huber_loss_and_grad", (scores, target), dict(delta=0.5)),
    ])
    return cases


def _same_call(label: str, calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> list[Case]:
    """Cases calling fl.NAME and reference.NAME with the same arguments (NAME: the label up to a space or '(')."""
    cases: list[Case] = []
    for shown, args, kwargs in calls:
        name = shown.split(" ")[0].split("(")[0]
        cases.append((label, shown, lambda name=name, args=args, kw=kwargs: getattr(fl, name)(*args, **kw),
                      lambda name=name, args=args, kw=kwargs: getattr(ref, name)(*args, **kw)))
    return cases


SUBCOMMANDS = """subcommands (each has its own --help):
  demo     the main job (the default): every function against the NumPy oracle, errors and times
  bench    the benchmark report: fastloss against NumPy and the installed peers (torch, JAX, sklearn, SciPy)
  eval     score a model's outputs in .npy files: mean loss, perplexity, top-k accuracies"""


def demo(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastloss", usage="%(prog)s [demo | bench | eval] [options]",
                                     description=__doc__.split("\n\n")[0], epilog=SUBCOMMANDS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fastloss {fl.__version__}")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each fastloss call (best is kept)")
    args = parser.parse_args(argv)
    fl.show_config()
    print()
    rng = np.random.default_rng(2026)
    header = f"{'batch':<14} {'function':<42} {'max error':>10} {'fastloss':>11} {'numpy':>11} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    for label, name, fast, slow in _cases(rng):
        t_fast, got = _best_time(fast, args.repeat)
        t_slow, want = _best_time(slow, 2)
        err = _max_error(got, want)
        print(f"{label:<14} {name:<42} {err:>10.2e} {t_fast * 1e3:>9.2f}ms {t_slow * 1e3:>9.1f}ms "
              f"{t_slow / t_fast:>7.1f}x", flush=True)
    print("\nmax error: max |fastloss - numpy| / max(1, |numpy|) against the float64 oracle in "
          "fastloss/reference.py;\ntimes: best of the runs, wall clock, "
          f"{fl.get_num_threads()} threads for fastloss, NumPy single-threaded as it is.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from fastloss import bench
        return bench.main(argv[1:])  # type: ignore[no-untyped-call]  # (fastloss.bench: not annotated yet)
    if argv and argv[0] == "eval":  # ---- evaluation ----
        from fastloss import evaluate_cli
        return evaluate_cli.main(argv[1:])
    if argv and argv[0] == "demo":
        argv = argv[1:]
    return demo(argv)


if __name__ == "__main__":
    sys.exit(main())
