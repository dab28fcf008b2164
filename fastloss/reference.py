"""Plain NumPy versions of every fastloss function: the oracle of the tests and the NumPy baseline of the
benchmarks. Clear, slow, obviously right; computed in float64 (or longdouble where that makes the truth
truer); never imports the compiled module. Same signatures and semantics as the public API (shared/API.md)."""
import numpy as np

_F64 = np.float64


def _result_dtype(x):
    x = np.asarray(x)
    if x.dtype in (np.float16, np.float32):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _finish(per_sample, weight_sum, reduction, dtype):
    """Reduce float64 per-sample losses like the API: none / sum / mean (sum over the sum of weights)."""
    if reduction == "none":
        return np.asarray(per_sample, dtype=np.float64).astype(dtype)
    total = np.sum(per_sample, dtype=np.float64)
    if reduction == "sum":
        return dtype.type(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return dtype.type(np.float64(total) / np.float64(weight_sum))


# ---- probabilistic ----------------------------------------------------------------------------------------

def logsumexp(x, axis=-1, keepdims=False):
    """scipy.special.logsumexp semantics, computed in float64."""
    x = np.asarray(x)
    dt = _result_dtype(x)
    a = x.astype(_F64)
    m = np.max(a, axis=axis, keepdims=True) if a.size else np.full([1] * a.ndim, -np.inf)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        s = np.sum(np.exp(a - m_safe), axis=axis, keepdims=True)
        r = np.log(s) + m_safe
    if not keepdims:
        r = np.squeeze(r, axis=axis) if axis is not None else r.reshape(())
    r = r.astype(dt)
    return r[()] if r.ndim == 0 else r


def log_softmax(x, axis=-1):
    """x - logsumexp(x); nan for rows with +inf or only -inf (as torch and scipy)."""
    x = np.asarray(x)
    dt = _result_dtype(x)
    a = x.astype(_F64)
    m = np.max(a, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        shifted = a - m
        r = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return r.astype(dt)


def softmax(x, axis=-1):
    """exp(x - logsumexp(x))."""
    x = np.asarray(x)
    dt = _result_dtype(x)
    a = x.astype(_F64)
    m = np.max(a, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.exp(a - m)
        r = e / np.sum(e, axis=axis, keepdims=True)
    return r.astype(dt)


def _class_setup(logits, target, weight, sample_weight):
    x = np.asarray(logits)
    dt = _result_dtype(x)
    lp = log_softmax(x.astype(_F64), axis=-1).reshape(-1, x.shape[-1])
    n, c = lp.shape
    w = np.ones(c) if weight is None else np.asarray(weight, _F64)
    sw = np.ones(n) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, _F64), x.shape[:-1]).reshape(-1)
    return x, dt, lp, n, c, w, sw


def cross_entropy(logits, target, *, weight=None, sample_weight=None, ignore_index=-100, label_smoothing=0.0,
                  reduction="mean"):
    """torch.nn.functional.cross_entropy (classes last), plus sample_weight."""
    x, dt, lp, n, c, w, sw = _class_setup(logits, target, weight, sample_weight)
    t = np.asarray(target)
    e = float(label_smoothing)
    with np.errstate(invalid="ignore"):
        if t.shape == x.shape and t.dtype.kind == "f":
            q = t.reshape(-1, c).astype(_F64) * (1 - e) + e / c
            per = -np.sum(w * q * lp, axis=1) * sw
            den = np.sum(sw)
        else:
            t = t.reshape(-1).astype(np.int64)
            keep = t != ignore_index
            if np.any(keep & ((t < 0) | (t >= c))):
                raise IndexError("target out of bounds")
            ts = np.where(keep, t, 0)
            wt = np.where(keep, w[ts], 0.0)
            nll = -wt * lp[np.arange(n), ts]
            per = (1 - e) * nll
            if e > 0:  # as torch: the smoothing term only exists when e > 0 (0 * inf would be nan)
                per = per + (e / c) * -np.sum(w * lp, axis=1)
            per = np.where(keep, per * sw, 0.0)
            den = np.sum(wt * sw)
    return _finish(per.reshape(x.shape[:-1]), den, reduction, dt)


def nll_loss(log_probs, target, *, weight=None, sample_weight=None, ignore_index=-100, reduction="mean"):
    """torch.nn.functional.nll_loss (classes last), plus sample_weight."""
    x = np.asarray(log_probs)
    dt = _result_dtype(x)
    c = x.shape[-1]
    a = x.astype(_F64).reshape(-1, c)
    n = a.shape[0]
    w = np.ones(c) if weight is None else np.asarray(weight, _F64)
    sw = np.ones(n) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, _F64), x.shape[:-1]).reshape(-1)
    t = np.asarray(target).reshape(-1).astype(np.int64)
    keep = t != ignore_index
    if np.any(keep & ((t < 0) | (t >= c))):
        raise IndexError("target out of bounds")
    ts = np.where(keep, t, 0)
    wt = np.where(keep, w[ts], 0.0)
    per = np.where(keep, -wt * a[np.arange(n), ts] * sw, 0.0)
    return _finish(per.reshape(x.shape[:-1]), np.sum(wt * sw), reduction, dt)


def cross_entropy_grad(logits, target, *, weight=None, sample_weight=None, ignore_index=-100,
                       label_smoothing=0.0, reduction="mean"):
    """d cross_entropy / d logits in closed form (float64)."""
    x, dt, lp, n, c, w, sw = _class_setup(logits, target, weight, sample_weight)
    p = np.exp(lp)
    t = np.asarray(target)
    e = float(label_smoothing)
    if t.shape == x.shape and t.dtype.kind == "f":
        q = (t.reshape(-1, c).astype(_F64) * (1 - e) + e / c) * w
        g = (np.sum(q, axis=1, keepdims=True) * p - q) * sw[:, None]
        den = np.sum(sw)
    else:
        t = t.reshape(-1).astype(np.int64)
        keep = t != ignore_index
        ts = np.where(keep, t, 0)
        wt = np.where(keep, w[ts], 0.0)
        onehot = np.zeros((n, c))
        onehot[np.arange(n), ts] = 1.0
        g = (1 - e) * wt[:, None] * (p - onehot)
        if e > 0:
            g = g + (e / c) * (np.sum(w) * p - w)
        g = np.where(keep[:, None], g * sw[:, None], 0.0)
        den = np.sum(wt * sw)
    if reduction == "mean":
        g = g / den
    return g.reshape(x.shape).astype(dt)


def cross_entropy_and_grad(logits, target, **kw):
    return cross_entropy(logits, target, **kw), cross_entropy_grad(logits, target, **kw)


def nll_loss_and_grad(log_probs, target, *, weight=None, sample_weight=None, ignore_index=-100,
                      reduction="mean"):
    loss = nll_loss(log_probs, target, weight=weight, sample_weight=sample_weight, ignore_index=ignore_index,
                    reduction=reduction)
    x = np.asarray(log_probs)
    c = x.shape[-1]
    n = x.size // c
    w = np.ones(c) if weight is None else np.asarray(weight, _F64)
    sw = np.ones(n) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, _F64), x.shape[:-1]).reshape(-1)
    t = np.asarray(target).reshape(-1).astype(np.int64)
    keep = t != ignore_index
    ts = np.where(keep, t, 0)
    wt = np.where(keep, w[ts], 0.0)
    g = np.zeros((n, c))
    g[np.arange(n), ts] = np.where(keep, -wt * sw, 0.0)
    if reduction == "mean":
        g = g / np.sum(wt * sw)
    return loss, g.reshape(x.shape).astype(_result_dtype(x))


# ---- margin (binary and multiclass) -----------------------------------------------------------------------


# ---- regression -------------------------------------------------------------------------------------------


# ---- distributions, binary cross-entropy, kl_div ----------------------------------------------------------
