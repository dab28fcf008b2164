"""python -m fastloss bench --sweep: every public function of fastloss at three shapes (1,000,000 x 10;
65,536 x 1,000; 4,096 x 32,000; 10,000,000 elements for the element-wise ones), float32 and float64, against the
fastest installed peer form (JAX jit, torch, scikit-learn, SciPy, NumPy: the forms a user writes for those inputs;
JAX only in float32 unless x64 is on) and the floor (bytes read and written at the memory bandwidth measured in
the same run), listing the functions that fall short of issue 16's goal.

The goal (shortfall): fastloss is fine where it is >= 1.2x the fastest peer, or within 1.3x of the floor where
a peer is already there (within 1.3x of it too) or slower: at the memory's pace there is no 1.2x left to take.
Short otherwise. Without a peer, within 1.3x of the floor. See `judge`.

Run time: each peer form is built, warmed up and probed once (its warm-up call; JAX's second call, the first
compiles); a peer more than PRUNE times slower than the fastest peer's probe is not timed further (it cannot be
the fastest), then fastloss and the remaining peers are timed in interleaved rounds (fastloss.bench.timing).
About 25-40 minutes for both dtypes on 2 cores; --dtype float32 about half; --quick (shapes 100,000 x 10;
8,192 x 1,000; 256 x 32,000; 1,000,000 elements; 3 rounds) a few minutes.

Not swept: stream_loss (files: the same kernels as evaluate and cross_entropy, plus the disk).
"""
import sys
import time

import numpy as np

import fastloss as fl

from . import report, timing
from .peers import Peers, configure_threads
from .run import build_rows, json_doc, time_rows
from .workloads import (
    JAX_PLAIN_KL,
    TORCH_PLAIN_KL,
    ce_impls,
    evaluate_impls,
    fl_fn,
    grad_hess_impls,
    is_yardstick,
    jit,
    kl_impls,
    ref_fn,
    with_check,
)

GOAL_RATIO = 1.2   # >= 1.2x the fastest peer ...
GOAL_FLOOR = 1.3   # ... or within 1.3x of the floor where a peer is already there
PRUNE = 3.0        # peers probed slower than PRUNE x the fastest peer's probe are not timed further

ROW_SHAPES = ((1_000_000, 10), (65_536, 1_000), (4_096, 32_000))
QUICK_ROW_SHAPES = ((100_000, 10), (8_192, 1_000), (256, 32_000))
ELEM_SHAPE, QUICK_ELEM_SHAPE = (10_000_000,), (1_000_000,)


# ---- inputs: one family per kind of argument, made once per (shape, dtype), derived arrays on demand -----------

class SweepInputs(dict):
    """The arrays of one (family, shape, dtype); derived ones (log-probabilities) made on first use."""

    DERIVED = {"lp": lambda a: fl.log_softmax(a["x"]), "lq": lambda a: np.log(a["q"]),
               # log q for a q close to p (a model against its fine-tuned self, a student near its teacher):
               # log p + N(0, 1e-3), so that most log p - log q are below kl_div's 2^-9 (its double path)
               "lq_near": lambda a: (np.log(a["p"]) + np.random.default_rng(7).normal(scale=1e-3, size=a["p"].shape)
                                     ).astype(a["p"].dtype),
               # the same for kl_divergence: q = p e^N(0, 1e-3), renormalised (its terms cancel to a KL of ~5e-7)
               "q_near": lambda a: _rows_normalised(
                   a["p"] * np.exp(np.random.default_rng(8).normal(scale=1e-3, size=a["p"].shape)), a["p"].dtype),
               "t32": lambda a: a["t"].astype(np.int32)}

    def __missing__(self, key):
        if key not in self.DERIVED:
            raise KeyError(key)
        self[key] = self.DERIVED[key](self)
        return self[key]


def _rows_normalised(v, dtype):
    return (v / v.sum(axis=-1, keepdims=True)).astype(dtype)


def make_inputs(family, shape, dtype, seed=2026):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    a = SweepInputs()
    if family == "logits":
        n, c = shape
        a["x"] = (rng.standard_normal((n, c)) * 3).astype(dt)
        a["t"] = rng.integers(0, c, size=n, dtype=np.int64)
    elif family == "probs":
        n, c = shape
        for k in ("p", "q"):
            v = rng.random((n, c), dtype=np.float32) + np.float32(1e-3)  # strictly positive
            a[k] = (v / v.sum(axis=-1, keepdims=True)).astype(dt)
    else:  # "elem": scores and labels in {-1, +1}, regression pairs, bce / count targets in [0, 1], variances
        (n,) = shape
        a["s"] = (rng.standard_normal(n) * 2).astype(dt)
        a["y"] = np.where(rng.random(n) < 0.5, -1, 1).astype(dt)
        a["a"] = rng.standard_normal(n).astype(dt)
        a["b"] = rng.standard_normal(n).astype(dt)
        a["z"] = rng.random(n).astype(dt)
        a["v"] = (rng.random(n) + 0.5).astype(dt)  # gaussian_nll_loss's variances
    return a


# ---- implementation builders from expressions ------------------------------------------------------------------

def _jax_arg(inp, P, k):
    return P.jnp.asarray(inp["t32"]) if k == "t" else P.jarray(inp[k])


def fl_call(name, keys, to_check=None, **kw):
    def build(inp, P):
        f, args = fl_fn(name), [inp[k] for k in keys]
        run = lambda: f(*args, **kw)  # noqa: E731
        return with_check(run, to_check) if to_check else run
    return build


def fl_call_out(name, keys, **kw):
    """A NAME_grad_hess call into grad_out= / hess_out= arrays made (and their pages touched) once, as a boosting
    or training loop holds them: the floor's writes go to touched pages too; a new output array would add the
    OS's zeroing of its pages to the time (on the 10M float32 rows, ~5 ms of a 6.3 ms floor here)."""
    def build(inp, P):
        f, args = fl_fn(name), [inp[k] for k in keys]
        g, h = np.ones_like(args[0]), np.ones_like(args[0])
        return lambda: f(*args, grad_out=g, hess_out=h, **kw)
    return build


def ref_call(name, keys, **kw):
    def build(inp, P):
        f, args = ref_fn(name), [inp[k] for k in keys]
        return lambda: f(*args, **kw)
    return build


def np_expr(lib, expr, keys):
    """A NumPy/SciPy/scikit-learn form: expr(P, *arrays); lib ('scipy', 'sklearn', 'sklearn._loss') must load."""
    def build(inp, P):
        if lib != "numpy":
            P.need(lib)
        args = [inp[k] for k in keys]
        return lambda: expr(P, *args)
    return build


def torch_expr(expr, keys):
    def build(inp, P):
        args = [P.tensor(inp[k]) for k in keys]
        return lambda: expr(P, *args)
    return build


def jax_expr(expr, keys):
    def build(inp, P):
        args = [_jax_arg(inp, P, k) for k in keys]
        f = jit(P, lambda *a: expr(P, *a))
        return lambda: f(*args)
    return build


def torch_grad(expr, keys):
    """loss and d loss / d (first array) by autograd: tensor in, .backward(), .grad."""
    def build(inp, P):
        args = [P.tensor(inp[k]) for k in keys]
        x = args[0].requires_grad_(True)

        def run():
            x.grad = None
            loss = expr(P, *args)
            loss.backward()
            return loss.detach(), x.grad
        return run
    return build


def jax_grad(expr, keys):
    def build(inp, P):
        args = [_jax_arg(inp, P, k) for k in keys]
        f = jit(P, P.jax.value_and_grad(lambda *a: expr(P, *a)))
        return lambda: f(*args)
    return build


def torch_grad_hess(expr, keys):
    """loss, gradient and the Hessian's diagonal of an element-wise loss by autograd, the gradient's graph kept
    (create_graph) and differentiated again: the gradient of sum(grad) is the diagonal (d2 loss / dx_i dx_j = 0
    for i != j). What a torch user writes for a boosting objective without the formulas."""
    def build(inp, P):
        args = [P.tensor(inp[k]) for k in keys]
        x = args[0].requires_grad_(True)

        def run():
            loss = expr(P, *args)
            (g,) = P.torch.autograd.grad(loss, x, create_graph=True)
            # kl_div is linear in its input: its gradient does not depend on x (no graph; the diagonal is 0)
            h = (P.torch.autograd.grad(g.sum(), x, allow_unused=True)[0] if g.requires_grad else None)
            return loss.detach(), g.detach(), P.torch.zeros_like(x) if h is None else h
        return run
    return build


def jax_grad_hess(expr, keys):
    """The same with JAX, jitted: value_and_grad, and the grad of the gradient's sum."""
    def build(inp, P):
        args = [_jax_arg(inp, P, k) for k in keys]
        jax = P.jax
        loss_grad = jax.value_and_grad(lambda *a: expr(P, *a))
        diag = jax.grad(lambda *a: loss_grad(*a)[1].sum())
        f = jit(P, lambda *a: (*loss_grad(*a), diag(*a)))
        return lambda: f(*args)
    return build


# ---- the peer forms (mean reductions as fastloss's default) -------------------------------------------------------

def _jax_pick(P, x, t):
    return P.jnp.take_along_axis(x, t[:, None], axis=-1)[:, 0]


def _jax_others_max(P, x, t):
    jnp = P.jnp
    return jnp.max(jnp.where(jnp.arange(x.shape[-1]) == t[:, None], -jnp.inf, x), axis=-1)


def _jax_cs(P, x, t):
    return P.jnp.mean(P.jnp.maximum(0.0, 1.0 - _jax_pick(P, x, t) + _jax_others_max(P, x, t)))


def _torch_cs(P, x, t):
    s_y = x.gather(1, t[:, None])[:, 0]
    others = x.scatter(1, t[:, None], float("-inf")).max(dim=1).values
    return P.torch.relu(1.0 - s_y + others).mean()


def _jax_ww(P, x, t):
    # sum over j != y of max(0, 1 - s_y + s_j) / C: the j = y term is max(0, 1) = 1, taken off
    jnp = P.jnp
    return jnp.mean((jnp.sum(jnp.maximum(0.0, 1.0 - _jax_pick(P, x, t)[:, None] + x), axis=-1) - 1.0) / x.shape[-1])


def _sk_hinge_multi(P, x, t):
    return P.sk_metrics.hinge_loss(t, x, labels=np.arange(x.shape[-1]))


def _jax_huber(P, a, b):
    d = P.jnp.abs(a - b)
    return P.jnp.mean(P.jnp.where(d <= 1.0, 0.5 * d * d, d - 0.5))


def _focal(P, lib, s, z):
    """torchvision.ops.sigmoid_focal_loss (alpha 0.25, gamma 2), mean, in torch or JAX ops."""
    if lib == "torch":
        p, ce = P.torch.sigmoid(s), P.F.binary_cross_entropy_with_logits(s, z, reduction="none")
    else:
        jnp = P.jnp
        p, ce = P.jax.nn.sigmoid(s), jnp.maximum(s, 0) - s * z + jnp.log1p(jnp.exp(-jnp.abs(s)))
    p_t = p * z + (1 - p) * (1 - z)
    return (ce * (1 - p_t) ** 2 * (0.25 * z + 0.75 * (1 - z))).mean()


def _tweedie(exp, raw, y):
    """Half Tweedie deviance at power 1.5 (scikit-learn's HalfTweedieLoss): exp(raw / 2) / (1 / 2) + y exp(-raw / 2) /
    (1 / 2)."""
    return (2 * exp(0.5 * raw) + 2 * y * exp(-0.5 * raw)).mean()


def _jax_bce(P, s, z):
    jnp = P.jnp
    return jnp.mean(jnp.maximum(s, 0) - s * z + jnp.log1p(jnp.exp(-jnp.abs(s))))


def _torch_binary01(P, s, y):
    return (P.torch.where(s > 0, 1.0, -1.0).to(s.dtype) != y).to(s.dtype).mean()


def _jax_eval_binary(P, s, y):
    jnp, m = P.jnp, y * s
    return (jnp.mean(P.jax.nn.softplus(-m)), jnp.mean(jnp.maximum(0.0, 1.0 - m)), jnp.mean(jnp.exp(-m)),
            jnp.mean(jnp.where(s > 0, 1.0, -1.0) == y))


def _torch_eval_binary(P, s, y):
    torch, m = P.torch, y * s
    return (P.F.softplus(-m).mean(), torch.relu(1 - m).mean(), torch.exp(-m).mean(),
            (torch.where(s > 0, 1.0, -1.0).to(s.dtype) == y).to(s.dtype).mean())


def _BINARY_CHECK(r):
    return (r.logistic_loss, r.hinge_loss, r.exponential_loss, r.accuracy)


def _EVAL_CHECK(r):
    return (np.float64(r.cross_entropy), np.float64(r.accuracy[1]), np.float64(r.accuracy[5]))
PLAIN = " (plain, p > 0 only)"


def _pair_loss_peers(name, torch_f, jax_f, keys, grad):
    """torch and JAX forms of a mean element-wise loss (grad: with its gradient by autograd)."""
    if grad:
        return {"torch": torch_grad(torch_f, keys), "jax": jax_grad(jax_f, keys)}
    return {"numpy": ref_call(name, keys), "torch": torch_expr(torch_f, keys), "jax": jax_expr(jax_f, keys)}


PAIR_FORMS = {  # name: (keys, torch form, jax form), all means
    "hinge_loss": (("s", "y"), lambda P, s, y: P.torch.relu(1 - y * s).mean(),
                   lambda P, s, y: P.jnp.mean(P.jnp.maximum(0.0, 1.0 - y * s))),
    "logistic_loss": (("s", "y"), lambda P, s, y: P.F.softplus(-(y * s)).mean(),
                      lambda P, s, y: P.jnp.mean(P.jax.nn.softplus(-(y * s)))),
    "exponential_loss": (("s", "y"), lambda P, s, y: P.torch.exp(-(y * s)).mean(),
                         lambda P, s, y: P.jnp.mean(P.jnp.exp(-(y * s)))),
    "mse_loss": (("a", "b"), lambda P, a, b: P.F.mse_loss(a, b), lambda P, a, b: P.jnp.mean(P.jnp.square(a - b))),
    "l1_loss": (("a", "b"), lambda P, a, b: P.F.l1_loss(a, b), lambda P, a, b: P.jnp.mean(P.jnp.abs(a - b))),
    "huber_loss": (("a", "b"), lambda P, a, b: P.F.huber_loss(a, b), _jax_huber),
    "binary_cross_entropy_with_logits": (("s", "z"), lambda P, s, z: P.F.binary_cross_entropy_with_logits(s, z),
                                         _jax_bce),
    "poisson_nll_loss": (("a", "z"), lambda P, a, z: P.F.poisson_nll_loss(a, z),
                         lambda P, a, z: P.jnp.mean(P.jnp.exp(a) - z * a)),
    "gaussian_nll_loss": (("a", "b", "v"), lambda P, a, b, v: P.F.gaussian_nll_loss(a, b, v),
                          lambda P, a, b, v: P.jnp.mean(0.5 * (P.jnp.log(v) + (a - b) ** 2 / v))),
    "tweedie_loss": (("a", "z"), lambda P, a, z: _tweedie(P.torch.exp, a, z),
                     lambda P, a, z: _tweedie(P.jnp.exp, a, z)),
    "pinball_loss": (("a", "b"), lambda P, a, b: P.torch.maximum(0.5 * (b - a), -0.5 * (b - a)).mean(),
                     lambda P, a, b: P.jnp.mean(P.jnp.maximum(0.5 * (b - a), -0.5 * (b - a)))),
    "smooth_l1_loss": (("a", "b"), lambda P, a, b: P.F.smooth_l1_loss(a, b), _jax_huber),  # beta 1 = huber 1
    "log_cosh_loss": (("a", "b"), lambda P, a, b: (P.torch.logaddexp(a - b, b - a) - np.log(2.0)).mean(),
                      lambda P, a, b: P.jnp.mean(P.jnp.logaddexp(a - b, b - a) - np.log(2.0))),
    "sigmoid_focal_loss": (("s", "z"), lambda P, s, z: _focal(P, "torch", s, z),
                           lambda P, s, z: _focal(P, "jax", s, z)),
}


def sweep_functions():
    """[(label, fastloss name, family, fastloss builder, {peer: builder}, reads, writes)]: every public function.
    reads / writes: functions of the inputs giving the bytes the floor counts."""
    def nbytes(*keys):
        return lambda a: int(sum(a[k].nbytes for k in keys))

    def nll_reads(a):
        # targets, and the one picked log-probability per row: a cache line of each row at most
        n, c = a["x"].shape
        return int(a["t"].nbytes + n * min(64, c * a["x"].itemsize))

    def none(a):
        return 0

    xt, pq = nbytes("x", "t"), nbytes("p", "q")
    fns = []

    def add(label, name, family, fast, peers, reads, writes=none):
        fns.append((label, name, family, fast, peers, reads, writes))

    # softmax family: x only
    add("logsumexp", "logsumexp", "logits", fl_call("logsumexp", ("x",)), {
        "numpy": ref_call("logsumexp", ("x",)), "torch": torch_expr(lambda P, x: P.torch.logsumexp(x, -1), "x"),
        "jax": jax_expr(lambda P, x: P.jsp.logsumexp(x, axis=-1), "x"),
        "scipy": np_expr("scipy", lambda P, x: P.sp.logsumexp(x, axis=-1), "x")}, nbytes("x"))
    for name in ("softmax", "log_softmax"):
        add(name, name, "logits", fl_call(name, ("x",)), {
            "numpy": ref_call(name, ("x",)),
            "torch": torch_expr(lambda P, x, name=name: getattr(P.torch, name)(x, -1), "x"),
            "jax": jax_expr(lambda P, x, name=name: getattr(P.jax.nn, name)(x, axis=-1), "x"),
            "scipy": np_expr("scipy", lambda P, x, name=name: getattr(P.sp, name)(x, axis=-1), "x")},
            nbytes("x"), nbytes("x"))
    # class losses: x, t
    for grad in (False, True):
        name = "cross_entropy_and_grad" if grad else "cross_entropy"
        peers = {k: v for k, v in ce_impls(grad).items() if k != "fastloss"}
        add(name, name, "logits", fl_call(name, ("x", "t")), peers, xt, nbytes("x") if grad else none)
    gh = {k: v for k, v in grad_hess_impls().items() if not is_yardstick(k) and k != "fastloss"}
    # held outputs, as the element-wise NAME_grad_hess rows (fl_call_out): JAX's allocator reuses its freed
    # buffers from call to call, while fresh NumPy outputs (2 x 524 MB at 4,096 x 32,000) have their pages faulted
    # in and zeroed by the OS in every call: 175 ms there alone against 108 ms held, and 692 ms in a sweep, after
    # the peers' allocations
    add("cross_entropy_grad_hess reduction='none' (grad_out=, hess_out=)", "cross_entropy_grad_hess", "logits",
        fl_call_out("cross_entropy_grad_hess", ("x", "t"), reduction="none"), gh, xt,
        lambda a: 2 * a["x"].nbytes + a["x"].shape[0] * a["x"].itemsize)
    add("nll_loss", "nll_loss", "logits", fl_call("nll_loss", ("lp", "t")), {
        "numpy": ref_call("nll_loss", ("lp", "t")), "torch": torch_expr(lambda P, lp, t: P.F.nll_loss(lp, t),
                                                                       ("lp", "t")),
        "jax": jax_expr(lambda P, lp, t: -P.jnp.mean(_jax_pick(P, lp, t)), ("lp", "t"))}, nll_reads)
    add("nll_loss_and_grad", "nll_loss_and_grad", "logits", fl_call("nll_loss_and_grad", ("lp", "t")), {
        "torch": torch_grad(lambda P, lp, t: P.F.nll_loss(lp, t), ("lp", "t")),
        "jax": jax_grad(lambda P, lp, t: -P.jnp.mean(_jax_pick(P, lp, t)), ("lp", "t"))},
        nll_reads, nbytes("x"))
    add("multiclass_hinge_loss crammer_singer", "multiclass_hinge_loss", "logits",
        fl_call("multiclass_hinge_loss", ("x", "t")), {
            "numpy": ref_call("multiclass_hinge_loss", ("x", "t")), "torch": torch_expr(_torch_cs, ("x", "t")),
            "jax": jax_expr(_jax_cs, ("x", "t")), "sklearn": np_expr("sklearn", _sk_hinge_multi, ("x", "t"))}, xt)
    add("multiclass_hinge_loss weston_watkins", "multiclass_hinge_loss", "logits",
        fl_call("multiclass_hinge_loss", ("x", "t"), kind="weston_watkins"), {
            "numpy": ref_call("multiclass_hinge_loss", ("x", "t"), kind="weston_watkins"),
            "torch": torch_expr(lambda P, x, t: P.F.multi_margin_loss(x, t), ("x", "t")),
            "jax": jax_expr(_jax_ww, ("x", "t"))}, xt)
    add("multiclass_hinge_loss_and_grad crammer_singer", "multiclass_hinge_loss_and_grad", "logits",
        fl_call("multiclass_hinge_loss_and_grad", ("x", "t")), {
            "torch": torch_grad(_torch_cs, ("x", "t")), "jax": jax_grad(_jax_cs, ("x", "t"))}, xt, nbytes("x"))
    add("multiclass_hinge_loss_and_grad weston_watkins", "multiclass_hinge_loss_and_grad", "logits",
        fl_call("multiclass_hinge_loss_and_grad", ("x", "t"), kind="weston_watkins"), {
            "torch": torch_grad(lambda P, x, t: P.F.multi_margin_loss(x, t), ("x", "t")),
            "jax": jax_grad(_jax_ww, ("x", "t"))}, xt, nbytes("x"))
    add("zero_one_loss top-1", "zero_one_loss", "logits", fl_call("zero_one_loss", ("x", "t")), {
        "numpy": ref_call("zero_one_loss", ("x", "t")),
        "torch": torch_expr(lambda P, x, t: (x.argmax(dim=1) != t).to(x.dtype).mean(), ("x", "t")),
        "jax": jax_expr(lambda P, x, t: P.jnp.mean(P.jnp.argmax(x, axis=-1) != t), ("x", "t"))}, xt)
    ev = {k: v for k, v in evaluate_impls().items() if not is_yardstick(k) and k != "fastloss"}
    add("evaluate topk=(1, 5)", "evaluate", "logits", fl_call("evaluate", ("x", "t"), _EVAL_CHECK, topk=(1, 5)),
        ev, xt)
    # distribution measures: p, q strictly positive
    add("entropy", "entropy", "probs", fl_call("entropy", ("p",)), {
        "numpy": ref_call("entropy", ("p",)),
        "torch": torch_expr(lambda P, p: P.torch.special.entr(p).sum(-1), "p"),
        "torch" + PLAIN: torch_expr(lambda P, p: -(p * P.torch.log(p)).sum(-1), "p"),
        "jax": jax_expr(lambda P, p: P.jnp.sum(P.jsp.entr(p), axis=-1), "p"),
        "jax" + PLAIN: jax_expr(lambda P, p: -P.jnp.sum(p * P.jnp.log(p), axis=-1), "p"),
        "scipy": np_expr("scipy", lambda P, p: P.sp.entr(p).sum(axis=-1), "p")}, nbytes("p"))
    add("categorical_cross_entropy", "categorical_cross_entropy", "probs",
        fl_call("categorical_cross_entropy", ("p", "q")), {
            "numpy": ref_call("categorical_cross_entropy", ("p", "q")),
            "torch": torch_expr(lambda P, p, q: -P.torch.special.xlogy(p, q).sum(-1), ("p", "q")),
            "torch (plain, q > 0 only)": torch_expr(lambda P, p, q: -(p * P.torch.log(q)).sum(-1), ("p", "q")),
            "jax": jax_expr(lambda P, p, q: -P.jnp.sum(P.jsp.xlogy(p, q), axis=-1), ("p", "q")),
            "jax (plain, q > 0 only)": jax_expr(lambda P, p, q: -P.jnp.sum(p * P.jnp.log(q), axis=-1), ("p", "q"))},
        pq)
    kl = {k: v for k, v in kl_impls().items() if k != "fastloss"}
    assert JAX_PLAIN_KL in kl and TORCH_PLAIN_KL in kl
    add("kl_divergence", "kl_divergence", "probs", fl_call("kl_divergence", ("p", "q")), kl, pq)

    def on_q_near(build):  # a kl_impls builder on (p, q_near)
        return lambda inp, P: build({"p": inp["p"], "q": inp["q_near"]}, P)
    add("kl_divergence, q = p e^N(0, 1e-3)", "kl_divergence", "probs", fl_call("kl_divergence", ("p", "q_near")),
        {k: on_q_near(v) for k, v in kl.items()}, nbytes("p", "q_near"))
    lq_p = nbytes("lq", "p")

    def jax_kl_div(P, lq, p):
        return P.jnp.sum(p * (P.jnp.log(p) - lq)) / lq.shape[0]
    add("kl_div batchmean", "kl_div", "probs", fl_call("kl_div", ("lq", "p"), reduction="batchmean"), {
        "numpy": ref_call("kl_div", ("lq", "p"), reduction="batchmean"),
        "torch": torch_expr(lambda P, lq, p: P.F.kl_div(lq, p, reduction="batchmean"), ("lq", "p")),
        "jax" + PLAIN: jax_expr(jax_kl_div, ("lq", "p"))}, lq_p)
    add("kl_div batchmean, log q = log p + N(0, 1e-3)", "kl_div", "probs",
        fl_call("kl_div", ("lq_near", "p"), reduction="batchmean"), {
            "numpy": ref_call("kl_div", ("lq_near", "p"), reduction="batchmean"),
            "torch": torch_expr(lambda P, lq, p: P.F.kl_div(lq, p, reduction="batchmean"), ("lq_near", "p")),
            "jax" + PLAIN: jax_expr(jax_kl_div, ("lq_near", "p"))}, nbytes("lq_near", "p"))
    add("kl_div_and_grad batchmean", "kl_div_and_grad", "probs",
        fl_call("kl_div_and_grad", ("lq", "p"), reduction="batchmean"), {
            "torch": torch_grad(lambda P, lq, p: P.F.kl_div(lq, p, reduction="batchmean"), ("lq", "p")),
            "jax" + PLAIN: jax_grad(jax_kl_div, ("lq", "p"))}, lq_p, nbytes("lq"))
    add("kl_div_grad_hess batchmean (grad_out=, hess_out=)", "kl_div_grad_hess", "probs",
        fl_call_out("kl_div_grad_hess", ("lq", "p"), reduction="batchmean"), {
            "torch": torch_grad_hess(lambda P, lq, p: P.F.kl_div(lq, p, reduction="batchmean"), ("lq", "p")),
            "jax" + PLAIN: jax_grad_hess(jax_kl_div, ("lq", "p"))}, lq_p, lambda a: 2 * a["lq"].nbytes)
    # element-wise, 10M
    for name, (keys, tf, jf) in PAIR_FORMS.items():
        for grad in (False, True):
            full = name + ("_and_grad" if grad else "")
            add(full, full, "elem", fl_call(full, keys), _pair_loss_peers(name, tf, jf, keys, grad), nbytes(*keys),
                nbytes(keys[0]) if grad else none)
    # second derivatives of the element-wise losses (issue 13): no peer has them in one call; the peers' forms are
    # their autograd differentiating the loss twice (what a user without the formulas writes); fastloss writes
    # into outputs held by the caller, as the floor does (reading the inputs, writing the gradient and Hessian)
    for name in ("logistic_loss", "exponential_loss", "mse_loss", "huber_loss", "binary_cross_entropy_with_logits",
                 "poisson_nll_loss", "gaussian_nll_loss", "tweedie_loss", "smooth_l1_loss", "log_cosh_loss",
                 "sigmoid_focal_loss"):
        keys, tf, jf = PAIR_FORMS[name]
        add(name + "_grad_hess (grad_out=, hess_out=)", name + "_grad_hess", "elem",
            fl_call_out(name + "_grad_hess", keys),
            {"torch": torch_grad_hess(tf, keys), "jax": jax_grad_hess(jf, keys)},
            nbytes(*keys), lambda a, k=keys[0]: 2 * a[k].nbytes)
    add("zero_one_loss binary", "zero_one_loss", "elem", fl_call("zero_one_loss", ("s", "y")), {
        "numpy": ref_call("zero_one_loss", ("s", "y")), "torch": torch_expr(_torch_binary01, ("s", "y")),
        "jax": jax_expr(lambda P, s, y: P.jnp.mean(P.jnp.where(s > 0, 1.0, -1.0) != y), ("s", "y"))},
        nbytes("s", "y"))
    add("evaluate_binary", "evaluate_binary", "elem", fl_call("evaluate_binary", ("s", "y"), _BINARY_CHECK), {
        "torch": torch_expr(_torch_eval_binary, ("s", "y")), "jax": jax_expr(_jax_eval_binary, ("s", "y"))},
        nbytes("s", "y"))
    return fns


def public_functions_not_swept(fns):
    """Public callables of fastloss that the sweep does not time (utilities excluded): should be only stream_loss,
    and a new function appears here until it gets a sweep entry."""
    utilities = {"available_simd_levels", "clear_output_cache", "set_output_cache_mb", "get_num_threads",
                 "set_num_threads",
                 "set_simd_level", "show_config", "simd_level", "EvalResult", "BinaryEvalResult"}
    swept = {f[1] for f in fns}
    names = getattr(fl, "__all__", None) or [n for n in dir(fl) if not n.startswith("_")]
    return sorted(n for n in names if callable(getattr(fl, n, None)) and n not in utilities and n not in swept
                  and not isinstance(getattr(fl, n), type(sys)))


# ---- judging -----------------------------------------------------------------------------------------------------

def judge(fast_s, peer_s, floor_s, ratio_goal=GOAL_RATIO, floor_goal=GOAL_FLOOR):
    """(status, why) of one cell: 'ok' where fastloss takes at most 1/ratio_goal of the fastest peer's time; also
    'ok' where it is within floor_goal x the floor and the fastest peer is there too (within floor_goal x) or
    slower; 'SHORT' otherwise; 'n/a' when fastloss did not run. Without a peer: within floor_goal x the floor."""
    if fast_s is None:
        return "n/a", "fastloss did not run"
    at_floor = floor_s is not None and fast_s <= floor_goal * floor_s
    if peer_s is None:
        if floor_s is None:
            return "n/a", "no peer ran and no floor"
        return ("ok", "no peer; at the floor") if at_floor else ("SHORT", "no peer; above the floor")
    ratio = peer_s / fast_s
    if ratio >= ratio_goal:
        return "ok", f">= {ratio_goal:g}x the fastest peer"
    if at_floor and (peer_s <= floor_goal * floor_s or ratio >= 1.0):
        return "ok", f"within {floor_goal:g}x of the floor"
    if at_floor:
        return "SHORT", f"at the floor but {ratio:.2f}x a peer that is not"
    return "SHORT", f"{ratio:.2f}x the fastest peer, {fast_s / floor_s:.1f}x the floor" if floor_s else \
        f"{ratio:.2f}x the fastest peer"


def pick_floor_sampler(inputs, bytes_read, bytes_written, threads):
    """The floor of nll_loss (and _and_grad), which reads one element a row. Rows of up to a cache line are read
    whole, a stream: the stream floor. Longer rows make each pick a random read, a cache line (and from 4 KiB
    rows a page) of its own, which no stream pace bounds: 65,536 x 1,000 float32 is 4.7 MB of picked lines and
    targets, 0.16 ms at the stream pace, but a plain gather of those picks takes twice that. There the floor is
    the larger of the stream floor and a plain gather of the same elements (NumPy's take of their flat positions
    into a small buffer, one thread) divided by the threads, plus the fill of the bytes written. A reference, not
    a strict lower bound: a kernel that prefetches the picks (fastloss's does) can beat a plain gather."""
    stream = timing.floor_sampler([inputs["lp"]], bytes_read, bytes_written, threads)
    lp, t = inputs["lp"], inputs["t"]
    n, c = lp.shape
    if stream is None or c * lp.itemsize <= 64 or not lp.flags.c_contiguous:
        return stream
    flat, pos, picked = lp.reshape(-1), np.arange(n, dtype=np.int64) * c + t, np.empty(n, lp.dtype)
    fill = timing.floor_sampler([lp], 0, bytes_written, threads) if bytes_written else None
    clock = time.perf_counter

    def sample():
        t0 = clock()
        np.take(flat, pos, out=picked)
        gather = (clock() - t0) / max(1, threads) + (fill() if fill else 0.0)
        return max(stream(), gather)
    return sample


# the functions whose floor is not the stream of their bytes (label -> sampler builder, as timing.floor_sampler)
FLOOR_SAMPLERS = {"nll_loss": pick_floor_sampler, "nll_loss_and_grad": pick_floor_sampler}


def run_cell(fn, shape, dtype, inputs, P, repeat, bandwidth):
    label, name, family, fast_b, peer_bs, reads, writes = fn
    impls = {"fastloss": fast_b}
    impls.update(peer_bs)
    rows, samplers, anchor = build_rows(impls, inputs, P, tolerance=1e-4, probe=True)
    probes = {r["impl"]: r["probe_s"] for r in rows if r.get("probe_s") and r["impl"] != "fastloss"}
    if probes:
        best = min(probes.values())
        for impl, p in probes.items():
            if p > PRUNE * best:
                samplers.pop(impl, None)
                row = next(r for r in rows if r["impl"] == impl)
                row["note"] = f"probe {report.fmt_time(p)}: more than {PRUNE:g}x the fastest peer, not timed"
                row["pruned"] = True
    nin, nout = reads(inputs), writes(inputs)
    floor_bw = timing.floor_seconds(nin, nout, bandwidth)
    # the floor in the cell's own rounds: the family's first array (x, p or s) streamed, scaled to the bytes read
    first = next(iter(inputs.values()))
    sampler = FLOOR_SAMPLERS[label](inputs, nin, nout, P.threads) if label in FLOOR_SAMPLERS else \
        timing.floor_sampler([first], nin, nout, P.threads)
    floor_s, _ = time_rows(rows, samplers, repeat, floor_bw, sampler)
    fast = next((r for r in rows if r["impl"] == "fastloss"), None)
    fast_s = fast["median_s"] if fast else None
    peers = [r for r in rows if r["impl"] != "fastloss" and r["median_s"]]
    bestp = min(peers, key=lambda r: r["median_s"]) if peers else None
    status, why = judge(fast_s, bestp["median_s"] if bestp else None, floor_s)
    if fast_s is None and fast and fast["note"]:
        why = fast["note"]
    differs = [r["impl"] for r in rows if r["agrees"] is False]
    return {"function": label, "name": name, "shape": list(shape), "dtype": dtype, "input_bytes": nin,
            "output_bytes": nout, "floor_s": floor_s, "floor_from_start_bandwidth_s": floor_bw, "fastloss_s": fast_s,
            "best_peer": bestp["impl"] if bestp else None, "best_peer_s": bestp["median_s"] if bestp else None,
            "ratio": (bestp["median_s"] / fast_s) if (bestp and fast_s) else None,
            "x_floor": (fast_s / floor_s) if (fast_s and floor_s) else None, "status": status, "why": why,
            "differs": differs, "results": rows}


def cell_line(c):
    dims = " x ".join(f"{d:,}" for d in c["shape"])
    ratio = f"{c['ratio']:.2f}x" if c["ratio"] is not None else "-"
    xf = f"{c['x_floor']:.2f}" if c["x_floor"] is not None else "-"
    peer = f"{c['best_peer']} {report.fmt_time(c['best_peer_s'])}" if c["best_peer"] else "-"
    flag = f"  [differs: {', '.join(c['differs'])}]" if c["differs"] else ""
    return (f"{c['function']:<46} {dims:>17} {c['dtype']:<8} {report.fmt_time(c['fastloss_s']):>10} "
            f"{peer:<44} {ratio:>8} {xf:>8}  {c['status']:<5} {c['why']}{flag}")


def header():
    return (f"{'function':<46} {'shape':>17} {'dtype':<8} {'fastloss':>10} {'fastest peer':<44} {'ratio':>8} "
            f"{'x floor':>8}  status")


def print_summary(cells, file=sys.stdout):
    short = [c for c in cells if c["status"] == "SHORT"]
    print(f"\n== short of the goal (>= {GOAL_RATIO:g}x the fastest peer, or within {GOAL_FLOOR:g}x of the floor "
          f"where a peer is there too): {len(short)} of {len(cells)} cells", file=file)
    if short:
        print("   " + header(), file=file)
        for c in short:
            print("   " + cell_line(c), file=file)
    na = [c for c in cells if c["status"] == "n/a"]
    if na:
        print(f"   not measured: {len(na)} cells ({', '.join(sorted({c['function'] for c in na}))})", file=file)
    by_fn = {}
    for c in short:
        by_fn.setdefault(c["function"], []).append(f"{'x'.join(map(str, c['shape']))} {c['dtype']}")
    if by_fn:
        print("   functions short: " + "; ".join(f"{k} ({', '.join(v)})" for k, v in by_fn.items()), file=file)


def main(args, argv):
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    dtypes = ("float32", "float64") if args.dtype == "both" else (args.dtype,)
    fns = sweep_functions()
    if args.only:
        fns = [f for f in fns if args.only.lower() in f[0].lower()]
        if not fns:
            print(f"no function matches --only {args.only!r}; functions:\n  "
                  + "\n  ".join(f[0] for f in sweep_functions()), file=sys.stderr)
            return 2
    absent = sorted({f[1] for f in fns if not hasattr(fl, f[1])})
    fns = [f for f in fns if hasattr(fl, f[1])]
    row_shapes = QUICK_ROW_SHAPES if args.quick else ROW_SHAPES
    elem_shape = QUICK_ELEM_SHAPE if args.quick else ELEM_SHAPE
    env_notes = configure_threads(args.threads)
    old_threads = fl._checks._override or None  # set_num_threads(None): back to the default order
    fl.set_num_threads(args.threads)
    cells = []
    try:
        t0 = time.perf_counter()
        P = Peers(args.threads, args.peers).load()
        bw = timing.measure_bandwidth(args.threads, args.bandwidth_mb << 20)
        m = report.machine_info(P, args.threads, bw)
        print(f"fastloss bench --sweep{' --quick' if args.quick else ''}: {len(fns)} functions, "
              f"{', '.join(dtypes)}, median of {repeat} interleaved runs, {args.threads} threads")
        print("   " + report.machine_line(m))
        print("   " + report.bandwidth_line(bw, args.threads))
        if not P.jax_x64 and "float64" in dtypes and P.jax is not None:
            print("   float64: JAX not compared (x64 off: it would compute in float32; JAX_ENABLE_X64=1 to include)")
        missing = public_functions_not_swept(sweep_functions())
        if missing:
            print(f"   not swept: {', '.join(missing)}")
        if absent:
            print(f"   not in this build (their entries wait for them): {', '.join(absent)}")
        for note in env_notes:
            print(f"   note: {note}")
        print("   " + header())
        for dtype in dtypes:
            for family in ("logits", "probs", "elem"):
                for shape in (row_shapes if family != "elem" else (elem_shape,)):
                    fam_fns = [f for f in fns if f[2] == family]
                    if not fam_fns:
                        continue
                    inputs = make_inputs(family, shape, dtype)
                    for fn in fam_fns:
                        c = run_cell(fn, shape, dtype, inputs, P, repeat, bw)
                        cells.append(c)
                        print("   " + cell_line(c), flush=True)
                    del inputs
        bw_end = timing.measure_bandwidth(args.threads, args.bandwidth_mb << 20)
        print_summary(cells)
        print(report.machine_line(m))
        print(report.bandwidth_line(bw, args.threads) + " (start)")
        print(report.bandwidth_line(bw_end, args.threads) + " (end)")
        print(f"total {time.perf_counter() - t0:.0f} s")
        if args.json:
            doc = json_doc(args, argv, repeat, m, env_notes, {"start": bw, "end": bw_end})
            doc["goal"] = {"ratio": GOAL_RATIO, "floor": GOAL_FLOOR, "prune": PRUNE}
            doc["not_in_this_build"] = absent
            doc["not_swept"] = missing
            doc["cells"] = cells
            doc["short"] = [{"function": c["function"], "shape": c["shape"], "dtype": c["dtype"], "why": c["why"]}
                            for c in cells if c["status"] == "SHORT"]
            report.write_json(args.json, doc)
            print(f"wrote {args.json}")
    finally:
        fl.set_num_threads(old_threads)
    return 0
