"""python -m fastloss bench [--quick] [--only SUBSTR] [--repeat N] [--threads N] [--json FILE] [--plot FILE.png]

The benchmark report of issue 5: every workload of the goal table, timed for fastloss, its NumPy baseline
(fastloss.reference) and every installed peer (torch, JAX, scikit-learn, SciPy) with the same semantics, on the
same arrays, in the same process. Per workload: median time, ratio (impl time / fastloss time: > 1 means fastloss
is faster, < 1 means it is slower), whether each result agrees with fastloss's, and whether the goal is met.

None of the peers is a dependency: each is imported lazily, and a missing peer is skipped. A fastloss function
(or NumPy baseline) missing from this build is reported as "not in this build" and its peers still run.

Timing: per workload, one untimed warm-up call of each implementation (it also compiles the JAX functions),
then `repeat` rounds in which each implementation is timed once (time.perf_counter, wall clock), interleaved:
the order rotates every round and each call follows 30 ms of idle time (so that the previous implementation's
spinning worker threads are asleep). On a shared machine the load of other processes comes and goes over
seconds; timed in blocks, one implementation could be measured in a busy spell and another in a quiet one
(ratios of one binary moved by up to 1.5x between runs); interleaved, all see the same conditions (as Google
Benchmark's --benchmark_enable_random_interleaving). The median of each is reported; calls slower than 1 s get
3 runs, slower than 3 s one run (these are the slow baselines), so that the full run takes about 4 minutes on
2 idle cores. The per-call workload (4 x 10 logits) times loops of calls (~20 ms) and reports the time per
call. Caches: an implementation's inputs may have been evicted by the others' calls in between (the 10M
element-wise workloads then read from memory, not from the last level cache).

Threads (--threads N, default 2 as in the goal table):
- fastloss: fl.set_num_threads(N) for the run (restored afterwards).
- torch:    torch.set_num_threads(N) (intra-op pool).
- JAX:      PJRT_NPROC=N is set before jax is imported: it sizes the thread pool of XLA's CPU client
            (its default is the number of usable CPUs). XLA_FLAGS is left alone: --xla_cpu_multi_thread_eigen
            is true by default, and `intra_op_parallelism_threads` is not an XLA flag (XLA aborts on it).
            JAX_PLATFORMS=cpu is set unless already set.
- scikit-learn: its private `sklearn._loss` losses get n_threads=N (OpenMP); sklearn.metrics functions run on
            one thread.
- NumPy / SciPy: the ufuncs and reductions used here run on one thread (no BLAS call is involved).
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import reference as ref

DEFAULT_THREADS = 2
TOLERANCE = 1e-4  # max |impl - fastloss| / max |fastloss| (over the array) above which a result is flagged
IMPL_ORDER = ("fastloss", "numpy", "torch", "jax", "sklearn", "scipy")


class Skip(Exception):
    """An implementation that cannot run here (function not in this build, peer not installed)."""


# ---- peers --------------------------------------------------------------------------------------------------

class Peers:
    """The installed peers, imported once, lazily. Attributes are None for a missing peer."""

    def __init__(self, threads):
        self.threads = threads
        self.versions = {}
        self.missing = {}
        self.thread_notes = {}
        self.torch = self.F = None
        self.jax = self.jnp = self.jsp = None
        self.sk_loss = self.sk_metrics = None
        self.sp = None

    def load(self):
        n = self.threads
        try:
            import torch
            import torch.nn.functional as F
            torch.set_num_threads(n)
            self.torch, self.F = torch, F
            self.versions["torch"] = torch.__version__
            self.thread_notes["torch"] = f"torch.set_num_threads({n}) -> {torch.get_num_threads()}"
        except Exception as e:  # noqa: BLE001 - a broken install is a missing peer
            self.missing["torch"] = _short(e)
        try:
            import jax
            import jax.numpy as jnp
            import jax.scipy.special as jsp
            self.jax, self.jnp, self.jsp = jax, jnp, jsp
            self.versions["jax"] = jax.__version__
            try:
                import jaxlib
                self.versions["jaxlib"] = jaxlib.__version__
            except Exception:  # noqa: BLE001
                pass
            self.thread_notes["jax"] = (f"PJRT_NPROC={os.environ.get('PJRT_NPROC')} (XLA CPU client pool), "
                                        f"backend {jax.default_backend()}")
        except Exception as e:  # noqa: BLE001
            self.missing["jax"] = _short(e)
        try:
            import sklearn
            import sklearn.metrics
            self.sk_metrics = sklearn.metrics
            self.versions["sklearn"] = sklearn.__version__
            try:
                from sklearn._loss import loss as sk_loss  # private API: HalfMultinomialLoss, HalfBinomialLoss
                self.sk_loss = sk_loss
            except Exception:  # noqa: BLE001
                pass
            self.thread_notes["sklearn"] = f"n_threads={n} for sklearn._loss; sklearn.metrics: 1 thread"
        except Exception as e:  # noqa: BLE001
            self.missing["sklearn"] = _short(e)
        try:
            import scipy
            import scipy.special
            self.sp = scipy.special
            self.versions["scipy"] = scipy.__version__
            self.thread_notes["scipy"] = "1 thread (ufuncs)"
        except Exception as e:  # noqa: BLE001
            self.missing["scipy"] = _short(e)
        self.thread_notes["numpy"] = "1 thread (ufuncs and reductions; fastloss.reference)"
        self.thread_notes["fastloss"] = f"fl.set_num_threads({n}) -> {fl.get_num_threads()}"
        return self

    def need(self, name):
        if name == "torch" and self.torch is None:
            raise Skip("torch not installed")
        if name == "jax" and self.jax is None:
            raise Skip("jax not installed")
        if name == "sklearn" and self.sk_metrics is None:
            raise Skip("scikit-learn not installed")
        if name == "sklearn._loss" and self.sk_loss is None:
            raise Skip("sklearn._loss (private API) not importable")
        if name == "scipy" and self.sp is None:
            raise Skip("scipy not installed")


def _short(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:100]


def configure_threads(n):
    """Environment for the peers' thread pools; must run before jax is imported. Returns notes."""
    notes = []
    if "jax" in sys.modules:
        notes.append("jax was imported before the bench: PJRT_NPROC may not apply")
    os.environ["PJRT_NPROC"] = str(n)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    return notes


# ---- inputs -------------------------------------------------------------------------------------------------

def _make_logits(rng, n, c):
    return {"x": rng.standard_normal((n, c), dtype=np.float32) * np.float32(3),
            "t": rng.integers(0, c, size=n, dtype=np.int64)}


def _make_probs(rng, n, c):
    out = {}
    for k in ("p", "q"):
        a = rng.random((n, c), dtype=np.float32) + np.float32(1e-3)
        a /= a.sum(axis=-1, keepdims=True)
        out[k] = a
    return out


def _make_margin(rng, n):
    return {"s": rng.standard_normal(n, dtype=np.float32) * np.float32(2),
            "y": np.where(rng.random(n) < 0.5, np.float32(-1), np.float32(1)).astype(np.float32)}


def _make_regression(rng, n):
    return {"a": rng.standard_normal(n, dtype=np.float32), "b": rng.standard_normal(n, dtype=np.float32)}


# ---- implementations: builder(inputs, peers) -> zero-argument callable ---------------------------------------

def _fl_fn(name):
    fn = getattr(fl, name, None)
    if fn is None:
        raise Skip(f"fl.{name}: not in this build")
    return fn


def _ref_fn(name):
    fn = getattr(ref, name, None)
    if fn is None:
        raise Skip(f"reference.{name}: not in this build")
    return fn


def _jit(P, fn):
    f = P.jax.jit(fn)
    block = P.jax.block_until_ready
    return lambda *a: block(f(*a))


def _ce_impls(grad):
    name = "cross_entropy_and_grad" if grad else "cross_entropy"

    def fast(inp, P):
        f, x, t = _fl_fn(name), inp["x"], inp["t"]
        return lambda: f(x, t)

    def numpy_(inp, P):
        f, x, t = _ref_fn(name), inp["x"], inp["t"]
        return lambda: f(x, t)

    def torch_(inp, P):
        P.need("torch")
        torch, F = P.torch, P.F
        x, t = torch.from_numpy(inp["x"]), torch.from_numpy(inp["t"])  # no copies
        if not grad:
            return lambda: F.cross_entropy(x, t)
        x.requires_grad_(True)  # a leaf made before timing; from_numpy shares the NumPy memory

        def run():
            loss = F.cross_entropy(x, t)
            (g,) = torch.autograd.grad(loss, x)
            return loss.detach(), g
        return run

    def jax_(inp, P):
        P.need("jax")
        jnp, jsp = P.jnp, P.jsp

        def ce(x, t):
            picked = jnp.take_along_axis(x, t[:, None], axis=-1)[:, 0]
            return jnp.mean(jsp.logsumexp(x, axis=-1) - picked)
        f = P.jax.jit(P.jax.value_and_grad(ce) if grad else ce)
        x, t = jnp.asarray(inp["x"]), jnp.asarray(inp["t"].astype(np.int32))  # int32: JAX's default int
        block = P.jax.block_until_ready
        return lambda: block(f(x, t))

    def sklearn_(inp, P):
        # sklearn._loss.loss.HalfMultinomialLoss is PRIVATE API (what sklearn's own estimators use); it takes
        # raw predictions (logits) and float class labels of the logits' dtype (converted before timing).
        # Its multinomial loss is the full softmax cross-entropy (no factor 1/2, checked against fastloss).
        P.need("sklearn._loss")
        x = inp["x"]
        n, c = x.shape
        y = inp["t"].astype(x.dtype)
        loss = P.sk_loss.HalfMultinomialLoss(n_classes=c)
        nt = P.threads
        if not grad:
            return lambda: loss(y, x, n_threads=nt)  # __call__: the (weighted) mean of the per-sample losses
        sw = np.full(n, 1.0 / n, dtype=x.dtype)  # the mean's 1/n folded into sample weights: no extra pass

        def run():
            per, g = loss.loss_gradient(y, x, sample_weight=sw, n_threads=nt)
            return per.sum(), g
        return run

    return {"fastloss": fast, "numpy": numpy_, "torch": torch_, "jax": jax_, "sklearn": sklearn_}


def _lse_impls():
    def fast(inp, P):
        f, x = _fl_fn("logsumexp"), inp["x"]
        return lambda: f(x)

    def numpy_(inp, P):
        f, x = _ref_fn("logsumexp"), inp["x"]
        return lambda: f(x)

    def torch_(inp, P):
        P.need("torch")
        x = P.torch.from_numpy(inp["x"])
        return lambda: P.torch.logsumexp(x, dim=-1)

    def jax_(inp, P):
        P.need("jax")
        f = _jit(P, lambda x: P.jsp.logsumexp(x, axis=-1))
        x = P.jnp.asarray(inp["x"])
        return lambda: f(x)

    def scipy_(inp, P):
        P.need("scipy")
        f, x = P.sp.logsumexp, inp["x"]
        return lambda: f(x, axis=-1)

    return {"fastloss": fast, "numpy": numpy_, "torch": torch_, "jax": jax_, "scipy": scipy_}


def _kl_impls():
    def fast(inp, P):
        f, p, q = _fl_fn("kl_divergence"), inp["p"], inp["q"]
        return lambda: f(p, q)

    def numpy_(inp, P):
        f, p, q = _ref_fn("kl_divergence"), inp["p"], inp["q"]
        return lambda: f(p, q)

    def torch_(inp, P):
        # sum of rel_entr per row: xlogy(p, p / q) is 0 where p = 0 and +inf where q = 0 < p
        P.need("torch")
        torch = P.torch
        p, q = torch.from_numpy(inp["p"]), torch.from_numpy(inp["q"])
        return lambda: torch.special.xlogy(p, p / q).sum(-1)

    def jax_(inp, P):
        P.need("jax")
        f = _jit(P, lambda p, q: P.jnp.sum(P.jsp.rel_entr(p, q), axis=-1))
        p, q = P.jnp.asarray(inp["p"]), P.jnp.asarray(inp["q"])
        return lambda: f(p, q)

    def scipy_(inp, P):
        P.need("scipy")
        rel_entr, p, q = P.sp.rel_entr, inp["p"], inp["q"]
        return lambda: rel_entr(p, q).sum(axis=-1)

    return {"fastloss": fast, "numpy": numpy_, "torch": torch_, "jax": jax_, "scipy": scipy_}


def _pair_impls(name, a_key, b_key, torch_expr, jax_expr, sklearn_b=None, scipy_b=None):
    """An element-wise loss of two same-shape arrays: fastloss, NumPy, torch and JAX (expressions of the
    two arrays), optional scikit-learn and SciPy builders."""
    def fast(inp, P):
        f, a, b = _fl_fn(name), inp[a_key], inp[b_key]
        return lambda: f(a, b)

    def numpy_(inp, P):
        f, a, b = _ref_fn(name), inp[a_key], inp[b_key]
        return lambda: f(a, b)

    def torch_(inp, P):
        P.need("torch")
        a, b = P.torch.from_numpy(inp[a_key]), P.torch.from_numpy(inp[b_key])
        return lambda: torch_expr(P, a, b)

    def jax_(inp, P):
        P.need("jax")
        f = _jit(P, lambda a, b: jax_expr(P, a, b))
        a, b = P.jnp.asarray(inp[a_key]), P.jnp.asarray(inp[b_key])
        return lambda: f(a, b)

    impls = {"fastloss": fast, "numpy": numpy_, "torch": torch_, "jax": jax_}
    if sklearn_b is not None:
        impls["sklearn"] = sklearn_b
    if scipy_b is not None:
        impls["scipy"] = scipy_b
    return impls


def _sk_hinge(inp, P):
    P.need("sklearn")
    f, s, y = P.sk_metrics.hinge_loss, inp["s"], inp["y"]
    return lambda: f(y, s)  # binary case: mean of max(0, 1 - y * s)


def _sk_logistic(inp, P):
    # private sklearn._loss.loss.HalfBinomialLoss: log(1 + exp(s)) - y01 * s, with y01 = (y + 1) / 2 in {0, 1}
    # (the same loss log(1 + exp(-y s)); the labels are re-encoded before timing)
    P.need("sklearn._loss")
    s = inp["s"]
    y01 = ((inp["y"] + 1) / 2).astype(s.dtype)
    loss, nt = P.sk_loss.HalfBinomialLoss(), P.threads
    return lambda: loss(y01, s, n_threads=nt)


def _sp_logistic(inp, P):
    P.need("scipy")
    log_expit, s, y = P.sp.log_expit, inp["s"], inp["y"]
    return lambda: -np.mean(log_expit(y * s))  # log(1 + exp(-m)) = -log_expit(m), stable


def _sk_mse(inp, P):
    P.need("sklearn")
    f, a, b = P.sk_metrics.mean_squared_error, inp["a"], inp["b"]
    return lambda: f(b, a)


KINDS = {
    # name: (input maker key, input keys read, impls)
    "cross_entropy": ("logits", ("x", "t"), _ce_impls(False)),
    "cross_entropy_and_grad": ("logits", ("x", "t"), _ce_impls(True)),
    "logsumexp": ("logits", ("x",), _lse_impls()),
    "kl_divergence": ("probs", ("p", "q"), _kl_impls()),
    "hinge_loss": ("margin", ("s", "y"), _pair_impls(
        "hinge_loss", "s", "y",
        lambda P, s, y: P.torch.relu(1 - y * s).mean(),
        lambda P, s, y: P.jnp.mean(P.jnp.maximum(0.0, 1.0 - y * s)), sklearn_b=_sk_hinge)),
    "logistic_loss": ("margin", ("s", "y"), _pair_impls(
        "logistic_loss", "s", "y",
        lambda P, s, y: P.F.softplus(-(y * s)).mean(),  # stable: softplus returns x above x = 20
        lambda P, s, y: P.jnp.mean(P.jax.nn.softplus(-(y * s))),
        sklearn_b=_sk_logistic, scipy_b=_sp_logistic)),
    "exponential_loss": ("margin", ("s", "y"), _pair_impls(
        "exponential_loss", "s", "y",
        lambda P, s, y: P.torch.exp(-(y * s)).mean(),
        lambda P, s, y: P.jnp.mean(P.jnp.exp(-(y * s))))),
    "mse_loss": ("regression", ("a", "b"), _pair_impls(
        "mse_loss", "a", "b",
        lambda P, a, b: P.F.mse_loss(a, b),
        lambda P, a, b: P.jnp.mean(P.jnp.square(a - b)), sklearn_b=_sk_mse)),
}

MAKERS = {"logits": _make_logits, "probs": _make_probs, "margin": _make_margin, "regression": _make_regression}


class Workload:
    def __init__(self, kind, shape, quick_shape, goal, issue, per_call=False):
        self.kind, self.shape, self.quick_shape = kind, shape, quick_shape
        self.goal = goal  # ("ratio", x): x times faster than the best peer; ("abs", s): at most s per call
        self.issue, self.per_call = issue, per_call

    def label(self, quick):
        shape = self.quick_shape if quick else self.shape
        dims = " x ".join(f"{d:,}" for d in shape)
        tail = {"logits": ", int64 targets, mean" if self.kind != "logsumexp" else ", last axis",
                "probs": ", per row", "margin": ", y in {-1, +1}, mean", "regression": ", mean"}[KINDS[self.kind][0]]
        return f"{self.kind} {dims} float32{tail}" + (" (per call)" if self.per_call else "")

    def key(self, quick):
        """A compact name for --only: 'cross_entropy 4096x32000'."""
        shape = self.quick_shape if quick else self.shape
        return f"{self.kind} {'x'.join(str(d) for d in shape)}" + (" per call" if self.per_call else "")

    def matches(self, substr, quick):
        s = substr.lower()
        return s in self.label(quick).lower() or s in self.key(quick).lower()

    def goal_text(self):
        kind, v = self.goal
        return f"at most {v * 1e6:g} us per call" if kind == "abs" else f"{v:g}x faster than the best peer"


# The goal table of issue 5 (2 threads, medians, same process, same inputs). Workloads with the same inputs are
# adjacent so that each input is made once.
WORKLOADS = [
    Workload("cross_entropy", (4096, 32000), (256, 32000), ("ratio", 2.5), "JAX (jit) 66 ms; torch 171 ms; NumPy 435 ms"),
    Workload("cross_entropy_and_grad", (4096, 32000), (256, 32000), ("ratio", 2.5), "JAX 206 ms; torch 555 ms"),
    Workload("logsumexp", (4096, 32000), (256, 32000), ("ratio", 2.5), "JAX 65 ms; torch 195 ms; SciPy 1.7 s"),
    Workload("cross_entropy", (65536, 1000), (4096, 1000), ("ratio", 3.0), "torch 84 ms / JAX 98 ms"),
    Workload("cross_entropy_and_grad", (65536, 1000), (4096, 1000), ("ratio", 2.0), "~230 ms"),
    Workload("cross_entropy", (1_000_000, 10), (65536, 10), ("ratio", 1.5), "JAX 8 ms; scikit-learn 37 ms"),
    Workload("cross_entropy_and_grad", (1_000_000, 10), (65536, 10), ("ratio", 1.5), "(with the loss row)"),
    Workload("kl_divergence", (100_000, 1000), (8192, 1000), ("ratio", 3.0), "NumPy 343 ms; torch 572 ms"),
    Workload("hinge_loss", (10_000_000,), (1_000_000,), ("ratio", 1.0), "JAX at the memory limit"),
    Workload("logistic_loss", (10_000_000,), (1_000_000,), ("ratio", 1.5), ""),
    Workload("exponential_loss", (10_000_000,), (1_000_000,), ("ratio", 1.2), ""),
    Workload("mse_loss", (10_000_000,), (1_000_000,), ("ratio", 1.0), "JAX at the memory limit"),
    Workload("cross_entropy", (4, 10), (4, 10), ("abs", 2e-6), "torch 5-13 us", per_call=True),
]


class Inputs:
    """Makes the inputs of a workload, keeping only the last ones (the big arrays are shared by neighbours)."""

    def __init__(self, seed=2026):
        self.seed, self.key, self.arrays = seed, None, None

    def get(self, kind, shape):
        key = (KINDS[kind][0], tuple(shape))
        if key != self.key:
            self.key, self.arrays = None, None  # free the previous arrays first
            rng = np.random.default_rng(self.seed)
            self.arrays, self.key = MAKERS[key[0]](rng, *shape), key
        return self.arrays

    def clear(self):
        self.key, self.arrays = None, None


def input_bytes(kind, arrays):
    return int(sum(arrays[k].nbytes for k in KINDS[kind][1]))


# ---- timing and checking ------------------------------------------------------------------------------------

PAUSE_S = 0.03  # idle time before each interleaved call (see run_workload)


def _per_call_loop(run):
    """For a per-call workload: a function timing one sample, a loop of calls sized to ~20 ms (per call)."""
    clock = time.perf_counter
    for _ in range(20):
        run()
    t0 = clock()
    for _ in range(200):
        run()
    k = int(min(max(0.02 / max((clock() - t0) / 200, 1e-9), 20), 1_000_000))

    def sample():
        t0 = clock()
        for _ in range(k):
            run()
        return (clock() - t0) / k
    return sample


def _one_call(run):
    def sample():
        t0 = time.perf_counter()
        run()
        return time.perf_counter() - t0
    return sample


def measure(run, repeat, per_call=False):
    """(samples in seconds, first result) of one implementation alone: one warm-up call, then `repeat` timed
    calls; for calls slower than 1 s only 3 (3 s: 1). per_call: each sample times a loop of calls sized to
    ~20 ms and is the time per call. (The throughput sweep; the workloads interleave, see measure_interleaved.)"""
    out = run()  # warm-up: first-call costs, JAX compilation
    sample = _per_call_loop(run) if per_call else _one_call(run)
    samples = [sample()]
    for _ in range(_runs_for(samples[0], repeat) - 1):
        samples.append(sample())
    return samples, out


def _runs_for(first, repeat):
    return repeat if first < 1.0 else (min(repeat, 3) if first < 3.0 else 1)


def measure_interleaved(samplers, repeat):
    """{name: samples} for the implementations of one workload timed in rounds: each round times one sample
    of each implementation (the order rotated every round, so that each follows each other equally often),
    after PAUSE_S of idle time. On a shared machine, load from other processes comes and goes over seconds;
    timed one after another, one implementation's samples could all fall in a busy spell and another's in a
    quiet one (ratios of one binary moved by up to 1.5x between runs); interleaved, every implementation
    sees the same spells. The pause lets the previous implementation's worker threads stop spinning (an
    OpenMP team spins for milliseconds after a parallel region) so that they do not slow the next one.
    Implementations slower than 1 s get at most 3 samples (3 s: 1), as in measure."""
    names = list(samplers)
    samples = {k: [] for k in names}
    want, errors = {}, {}
    for r in range(repeat):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for k in order:
            if k in errors or len(samples[k]) >= want.get(k, repeat):
                continue
            time.sleep(PAUSE_S)
            try:
                samples[k].append(samplers[k]())
            except Exception as e:  # noqa: BLE001 - reported on the implementation's row
                errors[k] = e
                continue
            want.setdefault(k, _runs_for(samples[k][0], repeat))
    return samples, errors


def to_numpy(obj):
    if isinstance(obj, (tuple, list)):
        return tuple(to_numpy(o) for o in obj)
    if hasattr(obj, "detach"):  # torch
        obj = obj.detach().cpu().numpy()
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


# ---- running ------------------------------------------------------------------------------------------------

def run_workload(wl, P, inputs, repeat, quick):
    shape = wl.quick_shape if quick else wl.shape
    arrays = inputs.get(wl.kind, shape)
    rows, anchor, anchor_name, samplers = [], None, None, {}
    for impl in IMPL_ORDER:  # build and warm up each implementation, check its result
        builder = KINDS[wl.kind][2].get(impl)
        if builder is None:
            continue
        row = {"impl": impl, "median_s": None, "samples": [], "ratio": None, "agrees": None, "max_rel_err": None,
               "note": ""}
        rows.append(row)
        if impl == "sklearn" and wl.kind in ("cross_entropy", "cross_entropy_and_grad", "logistic_loss"):
            row["note"] = "private sklearn._loss API"
        try:
            run = builder(arrays, P)
            out = run()  # warm-up: first-call costs, JAX compilation
            samplers[impl] = _per_call_loop(run) if wl.per_call else _one_call(run)
        except Skip as e:
            row["note"] = str(e)
            row["skipped"] = True
            continue
        except Exception as e:  # noqa: BLE001 - a failing implementation is reported, not fatal
            row["note"] = "ERROR " + _short(e)
            row["error"] = True
            continue
        out = to_numpy(out)
        if anchor is None:
            anchor, anchor_name = out, impl
            row["agrees"] = True
        else:
            err = rel_error(out, anchor)
            row["max_rel_err"] = err
            row["agrees"] = bool(err <= TOLERANCE)
        del out
    del anchor
    try:
        timed, errors = measure_interleaved(samplers, repeat)
    finally:
        samplers.clear()
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
    res = {"workload": wl.label(quick), "kind": wl.kind, "shape": list(shape), "per_call": wl.per_call,
           "input_bytes": input_bytes(wl.kind, arrays), "goal": wl.goal_text(), "goal_kind": wl.goal[0],
           "goal_value": wl.goal[1], "issue5_best_peer_today": wl.issue, "checked_against": anchor_name,
           "results": rows}
    res.update(judge(wl, rows))
    return res


def judge(wl, rows):
    """Goal status: fastloss against the best installed peer (every other implementation that ran, agreeing or
    not: the conservative choice), or against the absolute bound."""
    fast = next((r for r in rows if r["impl"] == "fastloss" and r["median_s"]), None)
    peers = [r for r in rows if r["impl"] != "fastloss" and r["median_s"]]
    best = min(peers, key=lambda r: r["median_s"]) if peers else None
    out = {"best_peer": best["impl"] if best else None, "best_peer_s": best["median_s"] if best else None,
           "goal_ratio": None, "goal_met": None}
    if fast is None:
        return out
    if wl.goal[0] == "abs":
        out["goal_met"] = fast["median_s"] <= wl.goal[1]
    elif best is not None:
        out["goal_ratio"] = best["median_s"] / fast["median_s"]
        out["goal_met"] = out["goal_ratio"] >= wl.goal[1]
    return out


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    return f"{s * 1e3:.1f} ms"


def print_workload(res, quick, file=sys.stdout):
    mb = res["input_bytes"] / 1e6
    print(f"\n== {res['workload']}   (input {mb:,.3g} MB)", file=file)
    if res["issue5_best_peer_today"]:
        print(f"   issue 5, best peer then: {res['issue5_best_peer_today']}", file=file)
    anchor = res["checked_against"] or "-"
    print(f"   {'impl':<10}{'median':>12}{'ratio':>10}{'runs':>6}   agrees with {anchor} (max rel err)", file=file)
    for r in res["results"]:
        if r["median_s"] is None:
            print(f"   {r['impl']:<10}{'-':>12}{'-':>10}{'-':>6}   {r['note']}", file=file)
            continue
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        if r["impl"] == res["checked_against"]:
            check = "(reference for the check)"
        elif r["agrees"]:
            check = f"ok ({r['max_rel_err']:.1e})"
        else:
            check = f"!! DIFFERS ({r['max_rel_err']:.1e} > {TOLERANCE:g})"
        note = f"   [{r['note']}]" if r["note"] else ""
        print(f"   {r['impl']:<10}{fmt_time(r['median_s']):>12}{ratio:>10}{len(r['samples']):>6}   {check}{note}",
              file=file)
    print(f"   goal: {goal_line(res, quick)}", file=file)


def goal_line(res, quick):
    q = " (quick sizes; the goal is for the full size)" if quick else ""
    if res["goal_met"] is None:
        fast = next((r for r in res["results"] if r["impl"] == "fastloss"), None)
        why = fast["note"] if fast and fast["note"] else "no peer ran"
        return f"{res['goal']}: n/a ({why})"
    mark = "MET" if res["goal_met"] else "NOT MET"
    if res["goal_kind"] == "abs":
        fast = next(r for r in res["results"] if r["impl"] == "fastloss")
        return f"{res['goal']}: fastloss {fmt_time(fast['median_s'])} per call -> {mark}{q}"
    return (f"{res['goal']} (best peer: {res['best_peer']} {fmt_time(res['best_peer_s'])}): "
            f"{res['goal_ratio']:.2f}x -> {mark}{q}")


def goal_summary(res):
    """One column of the goals summary: goal, measured value, status."""
    if res["goal_kind"] == "abs":
        fast = next((r for r in res["results"] if r["impl"] == "fastloss"), None)
        got = fmt_time(fast["median_s"]) if fast and fast["median_s"] else "n/a"
        goal = f"<= {res['goal_value'] * 1e6:g} us"
    else:
        got = f"{res['goal_ratio']:.2f}x vs {res['best_peer']}" if res["goal_ratio"] is not None else "n/a"
        goal = f">= {res['goal_value']:g}x"
    status = {True: "MET", False: "NOT MET", None: "n/a"}[res["goal_met"]]
    return f"goal {goal:<10} measured {got:<18} {status}"


def machine_info(P, threads):
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    simd = fl.simd_level() if hasattr(fl, "simd_level") else "?"
    versions = {"python": platform.python_version(), "fastloss": getattr(fl, "__version__", "?"),
                "numpy": np.__version__}
    versions.update(P.versions)
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {"cpu": cpu, "cpus": os.cpu_count(), "usable_cpus": usable, "simd": simd, "load_average": load,
            "platform": platform.platform(), "threads": threads, "thread_settings": P.thread_notes,
            "missing_peers": P.missing, "versions": versions}


def machine_line(m):
    v = ", ".join(f"{k} {x}" for k, x in m["versions"].items())
    load = f", load average {m['load_average'][0]:.2f} at the start" if m.get("load_average") else ""
    return (f"machine: {m['cpu']}, {m['cpus']} CPUs ({m['usable_cpus']} usable{load}), fastloss simd "
            f"{m['simd']}, {m['threads']} threads; {v}")


# ---- throughput plot ----------------------------------------------------------------------------------------

PLOT_KINDS = ("cross_entropy", "cross_entropy_and_grad", "logsumexp", "kl_divergence",
              "hinge_loss", "logistic_loss", "exponential_loss", "mse_loss")


def _plot_shape(kind, nbytes):
    maker = KINDS[kind][0]
    if maker == "logits":
        per_row = 1000 * 4 + (8 if kind != "logsumexp" else 0)
        return (max(1, nbytes // per_row), 1000)
    if maker == "probs":
        return (max(1, nbytes // 8000), 1000)
    return (max(1, nbytes // 8),)


def throughput_sweep(P, repeat, quick, log=sys.stdout):
    """{kind: {impl: [(input bytes, GB/s), ...]}} over input sizes from 32 KB up (fastloss and the peers)."""
    sizes = [2 ** k for k in range(15, 24 if quick else 28, 2)]
    data = {}
    for kind in PLOT_KINDS:
        data[kind] = {}
        inputs = Inputs(seed=7)
        for nbytes in sizes:
            shape = _plot_shape(kind, nbytes)
            arrays = inputs.get(kind, shape)
            nb = input_bytes(kind, arrays)
            for impl, builder in KINDS[kind][2].items():
                try:
                    samples, _ = measure(builder(arrays, P), repeat)
                except Exception:  # noqa: BLE001 - missing function or peer: no point
                    continue
                data[kind].setdefault(impl, []).append((nb, nb / float(np.median(samples)) / 1e9))
        inputs.clear()
        print(f"   swept {kind}", file=log, flush=True)
    return data


def save_plot(data, path, m):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"fastloss": "C3", "numpy": "C7", "torch": "C1", "jax": "C0", "sklearn": "C2", "scipy": "C4"}
    fig, axes = plt.subplots(2, 4, figsize=(20, 9), squeeze=False)
    for ax, kind in zip(axes.flat, PLOT_KINDS):
        for impl in IMPL_ORDER:
            pts = data.get(kind, {}).get(impl)
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.plot([x / 1e6 for x in xs], ys, "o-", color=colors[impl], label=impl,
                    linewidth=2.5 if impl == "fastloss" else 1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(kind + (" (C = 1000)" if KINDS[kind][0] in ("logits", "probs") else ""))
        ax.set_xlabel("input size (MB)")
        ax.set_ylabel("input read (GB/s)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"fastloss and peers, float32, {m['threads']} threads: {m['cpu']}, simd {m['simd']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main ---------------------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastloss bench",
                                     description="Benchmark report: fastloss against NumPy and the installed "
                                                 "peers (torch, JAX, scikit-learn, SciPy) on the issue 5 goals.")
    parser.add_argument("--quick", action="store_true", help="small sizes (about 20 s)")
    parser.add_argument("--only", metavar="SUBSTR", help="run only the workloads whose label contains SUBSTR")
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="timed runs per implementation, median reported (default 7, quick 5; calls over "
                             "1 s get at most 3, over 3 s 1)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, metavar="N",
                        help=f"threads for fastloss and every peer (default {DEFAULT_THREADS}, as the goals)")
    parser.add_argument("--json", metavar="FILE", help="write every result, sample and setting to FILE")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also sweep input sizes and plot throughput (GB/s of input read); needs matplotlib")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    repeat = args.repeat if args.repeat is not None else (5 if args.quick else 7)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
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
    old_threads = fl.get_num_threads()
    fl.set_num_threads(args.threads)
    try:
        t_start = time.perf_counter()
        P = Peers(args.threads).load()
        m = machine_info(P, args.threads)
        print(f"fastloss bench{' --quick' if args.quick else ''}: {len(selected)} workloads, float32, "
              f"median of up to {repeat} interleaved runs, {args.threads} threads")
        for k in IMPL_ORDER:
            if k in P.thread_notes:
                print(f"   threads {k:<9} {P.thread_notes[k]}")
        for k, why in P.missing.items():
            print(f"   peer {k} skipped: {why}")
        for note in env_notes:
            print(f"   note: {note}")
        print("   ratio = impl time / fastloss time (> 1: fastloss is faster); each result is checked against "
              f"fastloss's (tolerance {TOLERANCE:g} of the largest value);\n"
              "   best peer = the fastest other row (NumPy baseline included; a peer that disagrees still counts)")
        inputs = Inputs()
        results = []
        for wl in selected:
            res = run_workload(wl, P, inputs, repeat, args.quick)
            results.append(res)
            print_workload(res, args.quick)
            sys.stdout.flush()
        inputs.clear()

        print("\n== goals (issue 5)" + (" -- quick sizes, indicative only" if args.quick else ""))
        met = [r["goal_met"] for r in results]
        width = max(len(r["workload"]) for r in results)
        for r in results:
            print(f"   {r['workload']:<{width}}  {goal_summary(r)}")
        print(f"   met {sum(1 for x in met if x)} of {len(met)}"
              + (f" ({sum(1 for x in met if x is None)} not measurable)" if None in met else ""))
        print(machine_line(m))
        print(f"total {time.perf_counter() - t_start:.0f} s")

        if args.plot:
            print(f"\nthroughput sweep for {args.plot} ...", flush=True)
            data = throughput_sweep(P, min(repeat, 3), args.quick)
            save_plot(data, args.plot, m)
            print(f"wrote {args.plot}")
        else:
            data = None
        if args.json:
            doc = {"command": "python -m fastloss bench " + " ".join(argv if argv is not None else sys.argv[2:]),
                   "quick": args.quick, "repeat": repeat, "timing": f"interleaved rounds, {PAUSE_S * 1e3:g} ms "
                   "idle before each call", "tolerance": TOLERANCE, "machine": m,
                   "env": {k: os.environ.get(k) for k in ("PJRT_NPROC", "JAX_PLATFORMS", "XLA_FLAGS",
                                                          "OMP_NUM_THREADS", "FASTLOSS_NUM_THREADS",
                                                          "FASTLOSS_SIMD")},
                   "notes": env_notes, "workloads": results}
            if data is not None:
                doc["throughput_GBps"] = {k: {i: [[b, g] for b, g in v] for i, v in d.items()}
                                          for k, d in data.items()}
            with open(args.json, "w") as f:
                json.dump(doc, f, indent=1)
            print(f"wrote {args.json}")
    finally:
        fl.set_num_threads(old_threads)
    failed = any(r.get("error") for res in results for r in res["results"] if r["impl"] == "fastloss")
    return 1 if failed else 0
