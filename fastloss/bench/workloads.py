"""The workloads of the benchmark report: what is timed, on which inputs, with which implementations (fastloss,
its NumPy baseline in fastloss.reference, the peers' forms), how much memory each reads and writes (for the
floor), and the goal each must meet.

An implementation is a builder(inputs, peers) -> run, run a zero-argument callable doing the timed work; a
builder raises Skip when it cannot run here (peer not installed, function not in this build). Inputs are made
and converted (JAX arrays, torch tensors sharing NumPy's memory) before timing. A run may carry `to_check`,
a function mapping its result to the form that is compared with fastloss's (outside the timing).

Implementation names: "fastloss" is the function of the workload; "fastloss <something>" (with a space) is
another fastloss call timed in the same rounds as a yardstick (a goal "at most 1.25x plain cross_entropy"
compares with it); its result is not checked. Every other name is a peer; the first word names the library
("jax (plain p*log(p/q), p > 0 only)" is a JAX form).

Peers use the fastest form a user would write for the inputs given: for KL on strictly positive p also the plain
formula p*log(p/q) (wrong where p = 0, labelled so).
"""
from collections import namedtuple

import numpy as np

import fastloss as fl
from fastloss import reference as ref

from .peers import Skip

TOLERANCE = 1e-4       # max |impl - fastloss| / max |fastloss| above which a result is flagged
HALF_TOLERANCE = 2e-2  # for bfloat16/float16 inputs: peers compute (and round results) in the half type


def bfloat16_dtype():
    """numpy dtype of ml_dtypes.bfloat16, or Skip."""
    try:
        import ml_dtypes
    except ImportError as e:
        raise Skip("bfloat16 needs ml_dtypes (pip install ml_dtypes)") from e
    return np.dtype(ml_dtypes.bfloat16)


def as_dtype(name):
    return bfloat16_dtype() if name == "bfloat16" else np.dtype(name)


def is_half(dtype):
    return np.dtype(dtype).itemsize == 2


def with_check(run, to_check):
    run.to_check = to_check
    return run


# ---- inputs -------------------------------------------------------------------------------------------------

def make_logits(rng, shape, dtype="float32"):
    """x: N(0, 9) logits of the dtype; t: int64 targets; for a half dtype also x32, the same values in float32
    (the yardstick 'fastloss on float32')."""
    n, c = shape
    x32 = rng.standard_normal((n, c), dtype=np.float32) * np.float32(3)
    out = {"t": rng.integers(0, c, size=n, dtype=np.int64)}
    dt = as_dtype(dtype)
    if dt == np.float32:
        out["x"] = x32
    else:
        out["x"] = x32.astype(dt)
        if is_half(dt):
            out["x32"] = out["x"].astype(np.float32)
        del x32
    return out


def make_probs(rng, shape, dtype="float32"):
    """p, q: strictly positive rows summing to 1 (entries >= ~1e-3 / C)."""
    n, c = shape
    dt = as_dtype(dtype)
    out = {}
    for k in ("p", "q"):
        a = rng.random((n, c), dtype=np.float32) + np.float32(1e-3)
        a /= a.sum(axis=-1, keepdims=True)
        out[k] = a if dt == np.float32 else a.astype(dt)
    return out


def make_margin(rng, shape, dtype="float32"):
    (n,) = shape
    dt = as_dtype(dtype)
    return {"s": (rng.standard_normal(n, dtype=np.float32) * np.float32(2)).astype(dt, copy=False),
            "y": np.where(rng.random(n) < 0.5, -1, 1).astype(dt)}


def make_regression(rng, shape, dtype="float32"):
    (n,) = shape
    dt = as_dtype(dtype)
    return {"a": rng.standard_normal(n, dtype=np.float32).astype(dt, copy=False),
            "b": rng.standard_normal(n, dtype=np.float32).astype(dt, copy=False)}


MAKERS = {"logits": make_logits, "probs": make_probs, "margin": make_margin, "regression": make_regression}


class Inputs:
    """Makes the inputs of a workload, keeping only the last ones (the big arrays are shared by neighbours)."""

    def __init__(self, seed=2026):
        self.seed, self.key, self.arrays = seed, None, None

    def get(self, kind, shape, dtype="float32"):
        key = (KINDS[kind].maker, tuple(shape), str(dtype))
        if key != self.key:
            self.key, self.arrays = None, None  # free the previous arrays first
            rng = np.random.default_rng(self.seed)
            self.arrays, self.key = MAKERS[key[0]](rng, tuple(shape), dtype), key
        return self.arrays

    def clear(self):
        self.key, self.arrays = None, None


# ---- implementations ----------------------------------------------------------------------------------------

def fl_fn(name):
    fn = getattr(fl, name, None)
    if fn is None:
        raise Skip(f"fl.{name}: not in this build")
    return fn


def ref_fn(name):
    fn = getattr(ref, name, None)
    if fn is None:
        raise Skip(f"reference.{name}: not in this build")
    return fn


def jit(P, fn):
    f = P.jax.jit(fn)
    block = P.jax.block_until_ready
    return lambda *a: block(f(*a))


def fl_on_dtype(fn, x, *args, **kw):
    """fastloss on a half-precision array: a build without half-precision kernels raises TypeError (bfloat16)
    or converts to a float32 copy (float16: it runs, slowly: the time says so); the former is 'not in this
    build', not an error of the benchmark."""
    if is_half(x.dtype):
        try:
            fn(x[:2], *(a[:2] for a in args), **kw)
        except TypeError as e:
            raise Skip(f"fastloss on {x.dtype.name}: not in this build ({str(e).splitlines()[0][:80]})") from e
    return lambda: fn(x, *args, **kw)


def _jax_ce(P, smoothing=0.0):
    """JAX's softmax cross-entropy as a user writes it (logsumexp minus the picked logit; label smoothing as
    optax's smoothed labels: eps/C on every class, fused: lse - (1 - eps) x_t - eps mean(x))."""
    jnp, jsp = P.jnp, P.jsp

    def ce(x, t):
        lse = jsp.logsumexp(x, axis=-1)
        picked = jnp.take_along_axis(x, t[:, None], axis=-1)[:, 0]
        if smoothing:
            return jnp.mean(lse - (1 - smoothing) * picked - smoothing * jnp.mean(x, axis=-1))
        return jnp.mean(lse - picked)
    return ce


SK_PRIVATE = "sklearn (private sklearn._loss API)"


def ce_impls(grad, smoothing=0.0, numpy_baseline=True):
    """cross_entropy (grad: cross_entropy_and_grad) with integer targets, mean; any dtype of x."""
    name = "cross_entropy_and_grad" if grad else "cross_entropy"
    kw = {"label_smoothing": smoothing} if smoothing else {}

    def fast(inp, P):
        return fl_on_dtype(fl_fn(name), inp["x"], inp["t"], **kw)

    def numpy_(inp, P):
        f, x, t = ref_fn(name), inp["x"], inp["t"]
        return lambda: f(x, t, **kw)

    def torch_(inp, P):
        P.need("torch")
        torch, F = P.torch, P.F
        x, t = P.tensor(inp["x"]), torch.from_numpy(inp["t"])  # no copies
        if not grad:
            return lambda: F.cross_entropy(x, t, **kw)
        x.requires_grad_(True)  # a leaf made before timing; from_numpy shares the NumPy memory

        def run():
            loss = F.cross_entropy(x, t, **kw)
            (g,) = torch.autograd.grad(loss, x)
            return loss.detach(), g
        return run

    def jax_(inp, P):
        ce = _jax_ce(P, smoothing)
        f = P.jax.jit(P.jax.value_and_grad(ce) if grad else ce)
        x, t = P.jarray(inp["x"]), P.jnp.asarray(inp["t"].astype(np.int32))  # int32: JAX's default int
        block = P.jax.block_until_ready
        return lambda: block(f(x, t))

    def sklearn_(inp, P):
        # sklearn._loss.loss.HalfMultinomialLoss is PRIVATE API (what sklearn's own estimators use); it takes
        # raw predictions (logits) and float class labels of the logits' dtype (converted before timing).
        # Its multinomial loss is the full softmax cross-entropy (no factor 1/2, checked against fastloss).
        P.need("sklearn._loss")
        x = inp["x"]
        if x.dtype not in (np.float32, np.float64):
            raise Skip(f"sklearn._loss: no {x.dtype.name}")
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

    impls = {"fastloss": fast}
    if numpy_baseline:
        impls["numpy"] = numpy_
    impls.update({"torch": torch_, "jax": jax_})
    if not smoothing:
        impls[SK_PRIVATE] = sklearn_
    return impls


def fl_yardstick(name, key="x", **kw):
    """Another fastloss call on the workload's arrays (a yardstick row: its result is not checked)."""
    def build(inp, P):
        f, x, t = fl_fn(name), inp[key], inp["t"]
        return lambda: f(x, t, **kw)
    return build


def half_ce_impls():
    """cross_entropy on a bfloat16/float16 array: fastloss, torch and JAX on the same dtype, and fastloss on the
    same values in float32 (the goal: no slower than that)."""
    impls = ce_impls(False, numpy_baseline=False)
    impls.pop(SK_PRIVATE)
    impls["fastloss float32 (same values)"] = fl_yardstick("cross_entropy", key="x32")
    return impls


def evaluate_impls():
    """evaluate(x, t, topk=(1, 5)): cross-entropy and top-1/top-5 accuracy; the yardstick is a plain
    cross_entropy on the same array (goal: at most 1.25x its time)."""
    def fast(inp, P):
        f, x, t = fl_fn("evaluate"), inp["x"], inp["t"]
        return with_check(lambda: f(x, t, topk=(1, 5)),
                          lambda r: (np.float64(r.cross_entropy), np.float64(r.accuracy[1]),
                                     np.float64(r.accuracy[5])))

    def torch_(inp, P):
        P.need("torch")
        torch, F = P.torch, P.F
        x, t = P.tensor(inp["x"]), torch.from_numpy(inp["t"])

        def run():
            loss = F.cross_entropy(x, t)
            hit = x.topk(5, dim=-1).indices == t[:, None]
            return loss, hit[:, 0].double().mean(), hit.any(dim=-1).double().mean()
        return run

    def jax_(inp, P):
        jnp = P.jnp
        ce = _jax_ce(P)

        def ev(x, t):
            hit = P.jax.lax.top_k(x, 5)[1] == t[:, None]
            return ce(x, t), jnp.mean(hit[:, 0]), jnp.mean(jnp.any(hit, axis=-1))
        f = jit(P, ev)
        x, t = P.jarray(inp["x"]), P.jnp.asarray(inp["t"].astype(np.int32))
        return lambda: f(x, t)

    return {"fastloss": fast, "fastloss cross_entropy (plain, same array)": fl_yardstick("cross_entropy"),
            "torch (cross_entropy + topk)": torch_, "jax (cross_entropy + lax.top_k)": jax_}


def smoothing_impls(eps=0.1):
    impls = ce_impls(False, smoothing=eps)
    impls["fastloss cross_entropy (no smoothing, same array)"] = fl_yardstick("cross_entropy")
    return impls


def torch_fwd_bwd_impls():
    """cross_entropy forward + backward on a torch tensor (issue 14): fastloss.torch.cross_entropy against
    torch.nn.functional.cross_entropy, tensor in, .backward(), the gradient read from .grad."""
    def make(get_fn):
        def build(inp, P):
            fn = get_fn(P)
            torch = P.torch
            x = P.tensor(inp["x"]).requires_grad_(True)  # a leaf sharing the NumPy memory
            t = torch.from_numpy(inp["t"])

            def run():
                x.grad = None
                loss = fn(x, t)
                loss.backward()
                return loss.detach(), x.grad
            return run
        return build

    def fast_fn(P):
        P.need("fastloss.torch")
        f = getattr(P.fl_torch, "cross_entropy", None)
        if f is None:
            raise Skip("fastloss.torch.cross_entropy: not in this build")
        return f

    def torch_fn(P):
        P.need("torch")
        return P.F.cross_entropy

    return {"fastloss": make(fast_fn), "torch": make(torch_fn)}


XGB_NUMPY = "numpy (XGBoost docs' softprob objective, vectorised)"


def grad_hess_impls():
    """cross_entropy_grad_hess(x, t, reduction="none") -> (loss, grad, hess) (issue 13), against the NumPy
    objective of XGBoost's documentation (softmax; grad = p - onehot; hess = max(2 p (1 - p), eps)) and torch
    (loss and gradient by autograd, the Hessian diagonal by formula p (1 - p)). fastloss's Hessian is the exact
    p (1 - p); the XGBoost form's factor 2 is divided out for the check only."""
    def fast(inp, P):
        f, x, t = fl_fn("cross_entropy_grad_hess"), inp["x"], inp["t"]
        return lambda: f(x, t, reduction="none")

    def numpy_(inp, P):
        x, t = inp["x"], inp["t"]
        rows = np.arange(x.shape[0])

        def softprob_obj():
            e = np.exp(x - x.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            loss = -np.log(p[rows, t])
            grad = p.copy()
            grad[rows, t] -= 1.0
            hess = np.maximum(2.0 * p * (1.0 - p), 1e-6)
            return loss, grad, hess
        return with_check(softprob_obj, lambda r: (r[0], r[1], r[2] / 2))

    def torch_(inp, P):
        P.need("torch")
        torch, F = P.torch, P.F
        x, t = P.tensor(inp["x"]).requires_grad_(True), torch.from_numpy(inp["t"])

        def run():
            x.grad = None
            loss = F.cross_entropy(x, t, reduction="none")
            loss.sum().backward()
            p = torch.softmax(x.detach(), dim=1)
            return loss.detach(), x.grad, p * (1 - p)
        return run

    def jax_(inp, P):
        jnp, jsp = P.jnp, P.jsp

        def obj(x, t):
            def total(x):
                per = jsp.logsumexp(x, axis=-1) - jnp.take_along_axis(x, t[:, None], axis=-1)[:, 0]
                return per.sum(), per
            (_, per), g = P.jax.value_and_grad(total, has_aux=True)(x)
            p = P.jax.nn.softmax(x, axis=-1)
            return per, g, p * (1 - p)
        f = jit(P, obj)
        x, t = P.jarray(inp["x"]), P.jnp.asarray(inp["t"].astype(np.int32))
        return lambda: f(x, t)

    def held(inp, P):
        f, x, t = fl_fn("cross_entropy_grad_hess"), inp["x"], inp["t"]
        g, h = np.empty_like(x), np.empty_like(x)
        return lambda: f(x, t, reduction="none", grad_out=g, hess_out=h)

    # the yardstick: the same call into outputs held across calls (as JAX's allocator holds its buffers). Fresh
    # outputs are memory the process must be given; on a virtual machine that returns freed memory to its host
    # (virtio-balloon free page reporting, as the one of stops 22-26) each is touched for the first time again:
    # 525 MB of outputs at 65,536 x 1,000 cost 0.8-1.6 s there, against 72 ms held
    return {"fastloss": fast, XGB_NUMPY: numpy_, "torch": torch_, "jax": jax_,
            "fastloss (grad_out=, hess_out= held)": held}


def lse_impls():
    def fast(inp, P):
        f, x = fl_fn("logsumexp"), inp["x"]
        return lambda: f(x)

    def numpy_(inp, P):
        f, x = ref_fn("logsumexp"), inp["x"]
        return lambda: f(x)

    def torch_(inp, P):
        P.need("torch")
        x = P.tensor(inp["x"])
        return lambda: P.torch.logsumexp(x, dim=-1)

    def jax_(inp, P):
        f = jit(P, lambda x: P.jsp.logsumexp(x, axis=-1))
        x = P.jarray(inp["x"])
        return lambda: f(x)

    def scipy_(inp, P):
        P.need("scipy")
        f, x = P.sp.logsumexp, inp["x"]
        return lambda: f(x, axis=-1)

    return {"fastloss": fast, "numpy": numpy_, "torch": torch_, "jax": jax_, "scipy": scipy_}


JAX_PLAIN_KL = "jax (plain p*log(p/q), p > 0 only)"
TORCH_PLAIN_KL = "torch (plain p*log(p/q), p > 0 only)"


def kl_impls():
    """kl_divergence per row. The general forms (rel_entr / xlogy: 0 where p = 0, +inf where q = 0 < p) and, as
    the inputs here are strictly positive, the plain formula, the fastest a user writes for them."""
    def fast(inp, P):
        f, p, q = fl_fn("kl_divergence"), inp["p"], inp["q"]
        return lambda: f(p, q)

    def numpy_(inp, P):
        f, p, q = ref_fn("kl_divergence"), inp["p"], inp["q"]
        return lambda: f(p, q)

    def torch_(inp, P):
        P.need("torch")
        torch = P.torch
        p, q = P.tensor(inp["p"]), P.tensor(inp["q"])
        return lambda: torch.special.xlogy(p, p / q).sum(-1)

    def torch_plain(inp, P):
        P.need("torch")
        torch = P.torch
        p, q = P.tensor(inp["p"]), P.tensor(inp["q"])
        return lambda: (p * torch.log(p / q)).sum(-1)

    def jax_(inp, P):
        f = jit(P, lambda p, q: P.jnp.sum(P.jsp.rel_entr(p, q), axis=-1))
        p, q = P.jarray(inp["p"]), P.jarray(inp["q"])
        return lambda: f(p, q)

    def jax_plain(inp, P):
        f = jit(P, lambda p, q: P.jnp.sum(p * P.jnp.log(p / q), axis=-1))
        p, q = P.jarray(inp["p"]), P.jarray(inp["q"])
        return lambda: f(p, q)

    def scipy_(inp, P):
        P.need("scipy")
        rel_entr, p, q = P.sp.rel_entr, inp["p"], inp["q"]
        return lambda: rel_entr(p, q).sum(axis=-1)

    return {"fastloss": fast, "numpy": numpy_, "torch": torch_, "jax": jax_, "scipy": scipy_,
            TORCH_PLAIN_KL: torch_plain, JAX_PLAIN_KL: jax_plain}


def pair_impls(name, a_key, b_key, torch_expr, jax_expr, sklearn_b=None, scipy_b=None, sklearn_name="sklearn"):
    """An element-wise loss of two same-shape arrays: fastloss, NumPy, torch and JAX (expressions of the
    two arrays), optional scikit-learn and SciPy builders."""
    def fast(inp, P):
        f, a, b = fl_fn(name), inp[a_key], inp[b_key]
        return lambda: f(a, b)

    def numpy_(inp, P):
        f, a, b = ref_fn(name), inp[a_key], inp[b_key]
        return lambda: f(a, b)

    def torch_(inp, P):
        a, b = P.tensor(inp[a_key]), P.tensor(inp[b_key])
        return lambda: torch_expr(P, a, b)

    def jax_(inp, P):
        f = jit(P, lambda a, b: jax_expr(P, a, b))
        a, b = P.jarray(inp[a_key]), P.jarray(inp[b_key])
        return lambda: f(a, b)

    impls = {"fastloss": fast, "numpy": numpy_, "torch": torch_, "jax": jax_}
    if sklearn_b is not None:
        impls[sklearn_name] = sklearn_b
    if scipy_b is not None:
        impls["scipy"] = scipy_b
    return impls


def sk_hinge(inp, P):
    P.need("sklearn")
    f, s, y = P.sk_metrics.hinge_loss, inp["s"], inp["y"]
    return lambda: f(y, s)  # binary case: mean of max(0, 1 - y * s)


def sk_logistic(inp, P):
    # private sklearn._loss.loss.HalfBinomialLoss: log(1 + exp(s)) - y01 * s, with y01 = (y + 1) / 2 in {0, 1}
    # (the same loss log(1 + exp(-y s)); the labels are re-encoded before timing)
    P.need("sklearn._loss")
    s = inp["s"]
    y01 = ((inp["y"] + 1) / 2).astype(s.dtype)
    loss, nt = P.sk_loss.HalfBinomialLoss(), P.threads
    return lambda: loss(y01, s, n_threads=nt)


def sp_logistic(inp, P):
    P.need("scipy")
    log_expit, s, y = P.sp.log_expit, inp["s"], inp["y"]
    return lambda: -np.mean(log_expit(y * s))  # log(1 + exp(-m)) = -log_expit(m), stable


def sk_mse(inp, P):
    P.need("sklearn")
    f, a, b = P.sk_metrics.mean_squared_error, inp["a"], inp["b"]
    return lambda: f(b, a)


# ---- kinds --------------------------------------------------------------------------------------------------

def _no_writes(arrays):
    return 0


def _writes_like_x(arrays):
    """A gradient of the logits' shape and dtype."""
    return int(arrays["x"].nbytes)


def _writes_grad_hess(arrays):
    """Per-row losses, a gradient and a Hessian diagonal of the logits' shape (all in the logits' dtype)."""
    x = arrays["x"]
    return int(2 * x.nbytes + x.shape[0] * x.itemsize)


# maker: the input maker; reads: the input keys read (their bytes are the floor's reads); impls: name -> builder;
# writes(arrays): bytes written (the floor's writes); tail: the label's description of the call.
Kind = namedtuple("Kind", "maker reads impls writes tail")

KINDS = {
    "cross_entropy": Kind("logits", ("x", "t"), ce_impls(False), _no_writes, ", int64 targets, mean"),
    "cross_entropy_and_grad": Kind("logits", ("x", "t"), ce_impls(True), _writes_like_x, ", int64 targets, mean"),
    "cross_entropy (half)": Kind("logits", ("x", "t"), half_ce_impls(), _no_writes, ", int64 targets, mean"),
    "evaluate": Kind("logits", ("x", "t"), evaluate_impls(), _no_writes, ", topk=(1, 5)"),
    "cross_entropy label_smoothing=0.1": Kind("logits", ("x", "t"), smoothing_impls(0.1), _no_writes,
                                              ", int64 targets, mean"),
    "torch cross_entropy fwd+bwd": Kind("logits", ("x", "t"), torch_fwd_bwd_impls(), _writes_like_x,
                                        " tensor, .backward(), .grad"),
    "cross_entropy_grad_hess": Kind("logits", ("x", "t"), grad_hess_impls(), _writes_grad_hess,
                                    ", reduction='none'"),
    "logsumexp": Kind("logits", ("x",), lse_impls(), _no_writes, ", last axis"),
    "kl_divergence": Kind("probs", ("p", "q"), kl_impls(), _no_writes, ", per row"),
    "hinge_loss": Kind("margin", ("s", "y"), pair_impls(
        "hinge_loss", "s", "y",
        lambda P, s, y: P.torch.relu(1 - y * s).mean(),
        lambda P, s, y: P.jnp.mean(P.jnp.maximum(0.0, 1.0 - y * s)), sklearn_b=sk_hinge),
        _no_writes, ", y in {-1, +1}, mean"),
    "logistic_loss": Kind("margin", ("s", "y"), pair_impls(
        "logistic_loss", "s", "y",
        lambda P, s, y: P.F.softplus(-(y * s)).mean(),  # stable: softplus returns x above x = 20
        lambda P, s, y: P.jnp.mean(P.jax.nn.softplus(-(y * s))),
        sklearn_b=sk_logistic, scipy_b=sp_logistic, sklearn_name=SK_PRIVATE), _no_writes, ", y in {-1, +1}, mean"),
    "exponential_loss": Kind("margin", ("s", "y"), pair_impls(
        "exponential_loss", "s", "y",
        lambda P, s, y: P.torch.exp(-(y * s)).mean(),
        lambda P, s, y: P.jnp.mean(P.jnp.exp(-(y * s)))), _no_writes, ", y in {-1, +1}, mean"),
    "mse_loss": Kind("regression", ("a", "b"), pair_impls(
        "mse_loss", "a", "b",
        lambda P, a, b: P.F.mse_loss(a, b),
        lambda P, a, b: P.jnp.mean(P.jnp.square(a - b)), sklearn_b=sk_mse), _no_writes, ", mean"),
}


def input_bytes(kind, arrays):
    return int(sum(arrays[k].nbytes for k in KINDS[kind].reads))


def output_bytes(kind, arrays):
    return KINDS[kind].writes(arrays)


def is_yardstick(impl):
    """'fastloss <call>': another fastloss call timed alongside (not a peer, not checked)."""
    return impl.startswith("fastloss ")


def library(impl):
    return impl.split(" ", 1)[0]


# ---- goals --------------------------------------------------------------------------------------------------
# ("ratio", x[, names]): the fastest peer (of names, if given) takes >= x times fastloss's time
# ("ratio_vs", name, x):  implementation `name` takes >= x times fastloss's time
# ("at_most", name, x):   fastloss takes <= x times the time of `name` (another fastloss row: a yardstick)
# ("abs", s):             fastloss takes <= s seconds per call
# ("floor", x):           fastloss takes <= x times the workload's floor

def goal_text(goal):
    kind = goal[0]
    if kind == "abs":
        return f"at most {goal[1] * 1e6:g} us per call"
    if kind == "ratio":
        among = f" of {', '.join(goal[2])}" if len(goal) > 2 else ""
        return f">= {goal[1]:g}x the best peer{among}"
    if kind == "ratio_vs":
        return f">= {goal[2]:g}x {goal[1]}"
    if kind == "at_most":
        return f"<= {goal[2]:g}x the time of {goal[1]}"
    if kind == "floor":
        return f"within {goal[1]:g}x of the floor"
    raise ValueError(f"unknown goal kind {kind!r}")


class Workload:
    def __init__(self, kind, shape, quick_shape, goals, issue, per_call=False, dtype="float32"):
        self.kind, self.shape, self.quick_shape = kind, tuple(shape), tuple(quick_shape)
        self.goals = [goals] if isinstance(goals, tuple) else list(goals)
        self.issue, self.per_call, self.dtype = issue, per_call, dtype

    @property
    def goal(self):
        """The first goal (the one of the original table)."""
        return self.goals[0]

    def label(self, quick):
        shape = self.quick_shape if quick else self.shape
        dims = " x ".join(f"{d:,}" for d in shape)
        name = self.kind.replace(" (half)", "")
        return f"{name} {dims} {self.dtype}{KINDS[self.kind].tail}" + (" (per call)" if self.per_call else "")

    def key(self, quick):
        """A compact name for --only: 'cross_entropy 4096x32000 float32'."""
        shape = self.quick_shape if quick else self.shape
        name = self.kind.replace(" (half)", "")
        return f"{name} {'x'.join(str(d) for d in shape)} {self.dtype}" + (" per call" if self.per_call else "")

    def matches(self, substr, quick):
        s = substr.lower()
        return s in self.label(quick).lower() or s in self.key(quick).lower()

    def goal_text(self):
        return "; ".join(goal_text(g) for g in self.goals)

    def tolerance(self):
        return HALF_TOLERANCE if self.dtype in ("bfloat16", "float16") else TOLERANCE


ISSUE5_KL_PEERS = ("numpy", "torch", "jax", "scipy")
W = Workload
# The goal tables of issues 5, 12, 13 and 14 (2 threads, medians, same process, same inputs). Workloads with the
# same inputs are adjacent so that each input is made once.
WORKLOADS = [
    W("cross_entropy", (4096, 32000), (256, 32000), ("ratio", 2.5), "5: JAX (jit) 66 ms; torch 171 ms; NumPy 435 ms"),
    W("evaluate", (4096, 32000), (256, 32000), [("at_most", "fastloss cross_entropy (plain, same array)", 1.25)],
      "12: 47-51 ms, 3x a plain cross_entropy; torch CE + topk ~250 ms"),
    W("cross_entropy label_smoothing=0.1", (4096, 32000), (256, 32000),
      [("at_most", "fastloss cross_entropy (no smoothing, same array)", 1.25), ("ratio_vs", "torch", 2.5)],
      "12: 53 ms, 3.5x a plain cross_entropy; torch 175 ms"),
    W("cross_entropy_and_grad", (4096, 32000), (256, 32000), ("ratio", 2.5), "5: JAX 206 ms; torch 555 ms"),
    W("torch cross_entropy fwd+bwd", (4096, 32000), (256, 32000), [("ratio_vs", "torch", 5.0)],
      "14: torch 490 ms"),
    W("logsumexp", (4096, 32000), (256, 32000), ("ratio", 2.5), "5: JAX 65 ms; torch 195 ms; SciPy 1.7 s"),
    W("cross_entropy (half)", (4096, 32000), (256, 32000),
      [("ratio_vs", "torch", 6.0), ("ratio_vs", "jax", 6.0), ("at_most", "fastloss float32 (same values)", 1.0)],
      "12: TypeError (bf16); torch 99 ms, JAX 179 ms", dtype="bfloat16"),
    W("torch cross_entropy fwd+bwd", (4096, 32000), (256, 32000), [("ratio_vs", "torch", 5.0)],
      "14: torch 99 ms forward alone", dtype="bfloat16"),
    W("cross_entropy (half)", (4096, 32000), (256, 32000),
      [("ratio_vs", "torch", 6.0), ("ratio_vs", "jax", 6.0), ("at_most", "fastloss float32 (same values)", 1.0)],
      "12: 225 ms (a float32 copy first); torch 95 ms", dtype="float16"),
    W("cross_entropy", (65536, 1000), (4096, 1000), ("ratio", 3.0), "5: torch 84 ms / JAX 98 ms"),
    W("cross_entropy_and_grad", (65536, 1000), (4096, 1000), ("ratio", 2.0), "5: ~230 ms"),
    W("torch cross_entropy fwd+bwd", (65536, 1000), (4096, 1000), [("ratio_vs", "torch", 3.0)], "14"),
    W("cross_entropy_grad_hess", (65536, 1000), (4096, 1000),
      [("ratio_vs", XGB_NUMPY, 5.0), ("ratio_vs", "torch", 3.0)], "13"),
    W("cross_entropy", (1_000_000, 10), (65536, 10), ("ratio", 1.5), "5: JAX 8 ms; scikit-learn 37 ms"),
    W("cross_entropy_and_grad", (1_000_000, 10), (65536, 10), ("ratio", 1.5), "5: (with the loss row)"),
    W("cross_entropy_grad_hess", (200_000, 10), (20_000, 10),
      [("ratio_vs", XGB_NUMPY, 5.0), ("ratio_vs", "torch", 3.0)],
      "13: NumPy objective 19 ms; cross_entropy_and_grad + softmax 7 ms"),
    W("kl_divergence", (100_000, 1000), (8192, 1000),
      [("ratio", 3.0, ISSUE5_KL_PEERS), ("ratio_vs", JAX_PLAIN_KL, 1.2)],
      "5: NumPy 343 ms; torch 572 ms; 12: 29 ms vs plain-formula JAX 28 ms, read floor ~19 ms"),
    W("hinge_loss", (10_000_000,), (1_000_000,), ("ratio", 1.0), "5: JAX at the memory limit"),
    W("logistic_loss", (10_000_000,), (1_000_000,), ("ratio", 1.5), ""),
    W("exponential_loss", (10_000_000,), (1_000_000,), ("ratio", 1.2), ""),
    W("mse_loss", (10_000_000,), (1_000_000,), ("ratio", 1.0), "5: JAX at the memory limit"),
    W("cross_entropy", (4, 10), (4, 10), ("abs", 2e-6), "5: torch 5-13 us", per_call=True),
]
del W
