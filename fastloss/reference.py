"""Plain NumPy versions of every fastloss function: the oracle of the tests and the NumPy baseline of the
benchmarks. Clear, slow, obviously right; computed in float64 (or longdouble where that makes the truth
truer); never imports the compiled module. Same signatures and semantics as the public API (shared/API.md)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal, Sequence, overload

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # the annotations only: nothing of fastloss is imported here at run time
    from numpy.typing import ArrayLike

    from ._typing import FloatArray, FloatResult, Loss, LossAndGrad, LossGradHess

_F64 = np.float64
Array = npt.NDArray[Any]
#: an element-wise loss: (x, y) -> (loss, d loss / d x) or (loss, d loss / d x, d^2 loss / d x^2), in float64
Elem = Callable[[Array, Array], "tuple[Array, ...]"]


def _result_dtype(x: ArrayLike) -> np.dtype[Any]:
    """float32 for float16, bfloat16 (by its dtype's name) and float32 data; float64 otherwise."""
    x = np.asarray(x)
    if x.dtype in (np.float16, np.float32) or (x.dtype.kind == "V" and x.dtype.name == "bfloat16"):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _finish(per_sample: ArrayLike, weight_sum: float, reduction: str, dtype: np.dtype[Any]) -> Loss:
    """Reduce float64 per-sample losses like the API: none / sum / mean (sum over the sum of weights)."""
    if reduction == "none":
        return np.asarray(per_sample, dtype=np.float64).astype(dtype)
    total = np.sum(per_sample, dtype=np.float64)
    if reduction == "sum":
        return dtype.type(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return dtype.type(np.float64(total) / np.float64(weight_sum))


# ---- probabilistic ----------------------------------------------------------------------------------------

def logsumexp(x: ArrayLike, axis: int | None = -1, keepdims: bool = False) -> FloatResult:
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


def log_softmax(x: ArrayLike, axis: int | None = -1) -> FloatArray:
    """x - logsumexp(x); nan for rows with +inf or only -inf (as torch and scipy)."""
    x = np.asarray(x)
    dt = _result_dtype(x)
    a = x.astype(_F64)
    m = np.max(a, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        shifted = a - m
        r = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return r.astype(dt)


def softmax(x: ArrayLike, axis: int | None = -1) -> FloatArray:
    """exp(x - logsumexp(x))."""
    x = np.asarray(x)
    dt = _result_dtype(x)
    a = x.astype(_F64)
    m = np.max(a, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.exp(a - m)
        r = e / np.sum(e, axis=axis, keepdims=True)
    return r.astype(dt)


def _class_setup(logits: ArrayLike, target: ArrayLike, weight: ArrayLike | None,
                 sample_weight: ArrayLike | None) -> tuple[Array, np.dtype[Any], Array, int, int, Array, Array]:
    x = np.asarray(logits)
    dt = _result_dtype(x)
    lp = log_softmax(x.astype(_F64), axis=-1).reshape(-1, x.shape[-1])
    n, c = lp.shape
    w = np.ones(c) if weight is None else np.asarray(weight, _F64)
    sw = np.ones(n) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, _F64), x.shape[:-1]).reshape(-1)
    return x, dt, lp, n, c, w, sw


def cross_entropy(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                  sample_weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean") -> Loss:
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


def nll_loss(log_probs: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
             sample_weight: ArrayLike | None = None, ignore_index: int = -100, reduction: str = "mean") -> Loss:
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


def cross_entropy_grad(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                       sample_weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                       reduction: str = "mean") -> FloatArray:
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
    if reduction == "mean" and den != 0:  # all rows ignored: zero gradient, as torch
        g = g / den
    return g.reshape(x.shape).astype(dt)


def cross_entropy_and_grad(logits: ArrayLike, target: ArrayLike, **kw: Any) -> LossAndGrad:
    return cross_entropy(logits, target, **kw), cross_entropy_grad(logits, target, **kw)


def cross_entropy_hess(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                       sample_weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                       reduction: str = "mean") -> FloatArray:
    """The diagonal of d^2 cross_entropy / d logits^2 (float64 math): each row's gradient is A_i * p_i less terms
    constant in the logits, A_i = sum_c w_c q_ic over its (smoothed, one-hot or probability) target q_i, so
    its diagonal is A_i * p_ic * (1 - p_ic), scaled like the gradient."""
    x, dt, lp, n, c, w, sw = _class_setup(logits, target, weight, sample_weight)
    p = np.exp(lp)
    t = np.asarray(target)
    e = float(label_smoothing)
    if t.shape == x.shape and t.dtype.kind == "f":
        a = np.sum((t.reshape(-1, c).astype(_F64) * (1 - e) + e / c) * w, axis=1) * sw
        den = np.sum(sw)
    else:
        t = t.reshape(-1).astype(np.int64)
        keep = t != ignore_index
        wt = np.where(keep, w[np.where(keep, t, 0)], 0.0)
        a = np.where(keep, ((1 - e) * wt + e * np.sum(w) / c) * sw, 0.0)
        den = np.sum(wt * sw)
    h = a[:, None] * p * (1 - p)
    if reduction == "mean" and den != 0:  # all rows ignored: zero, as the gradient
        h = h / den
    return h.reshape(x.shape).astype(dt)


def cross_entropy_grad_hess(logits: ArrayLike, target: ArrayLike, **kw: Any) -> LossGradHess:
    return cross_entropy(logits, target, **kw), cross_entropy_grad(logits, target, **kw), \
        cross_entropy_hess(logits, target, **kw)


def nll_loss_and_grad(log_probs: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                      sample_weight: ArrayLike | None = None, ignore_index: int = -100,
                      reduction: str = "mean") -> LossAndGrad:
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
    if reduction == "mean" and np.sum(wt * sw) != 0:  # all rows ignored: zero gradient, as torch
        g = g / np.sum(wt * sw)
    return loss, g.reshape(x.shape).astype(_result_dtype(x))


# ---- margin (binary and multiclass) -----------------------------------------------------------------------

@overload
def _pair(x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None, reduction: str, elem: Callable[..., Any],
          want_grad: Literal[False]) -> Loss: ...
@overload
def _pair(x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None, reduction: str, elem: Callable[..., Any],
          want_grad: Literal[True]) -> LossAndGrad: ...
@overload
def _pair(x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None, reduction: str, elem: Callable[..., Any],
          want_grad: Literal[True], want_hess: Literal[True]) -> LossGradHess: ...
def _pair(x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None, reduction: str, elem: Callable[..., Any],
          want_grad: bool, want_hess: bool = False) -> Loss | LossAndGrad | LossGradHess:
    """An element-wise loss: elem(x, y) -> (loss, d loss / d x[, d^2 loss / d x^2]) in float64, weighted and
    reduced like the API (the Hessian diagonal as the gradient). y is first converted to x's compute dtype, as
    the API does. elem may be a function of the result dtype (for parameters such as margin and delta, which
    are rounded to it as torch does)."""
    x = np.asarray(x)
    dt = _result_dtype(x)
    if getattr(elem, "of_dtype", False):
        elem = elem(dt)
    a = x.astype(_F64)
    b = np.asarray(y).astype(dt).astype(_F64)
    sw = np.ones(a.shape) if sample_weight is None else np.broadcast_to(np.asarray(sample_weight, _F64), a.shape)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        per, dper, *d2per = elem(a, b)
        loss = _finish(per * sw, np.sum(sw), reduction, dt)
        if not want_grad:
            return loss
        g, h = dper * sw, (d2per[0] * sw if want_hess else None)
        if reduction == "mean":
            g = g / np.sum(sw)
            h = None if h is None else h / np.sum(sw)
    if h is not None:
        return loss, np.asarray(g).astype(dt), np.asarray(h).astype(dt)
    return loss, np.asarray(g).astype(dt)


def _check_labels(y: ArrayLike) -> Array:
    y = np.asarray(y, _F64)
    if not np.all((y == 1) | (y == -1)):
        raise ValueError("labels must be -1 or +1")
    return y


def _zero_one_elem(x: Array, y: Array) -> tuple[Array, Array]:
    return (np.where(x > 0, 1.0, -1.0) != _check_labels(y)).astype(_F64), np.zeros_like(x)


def _logistic_elem(x: Array, y: Array) -> tuple[Array, ...]:
    m = _check_labels(y) * x
    # log(1 + exp(-m)), its derivative -y sigmoid(-m) = -y exp(-log(1 + exp(m))), and sigmoid(m) sigmoid(-m)
    return (np.logaddexp(0.0, -m), -y * np.exp(-np.logaddexp(0.0, m)),
            np.exp(-np.logaddexp(0.0, m) - np.logaddexp(0.0, -m)))


def _exponential_elem(x: Array, y: Array) -> tuple[Array, ...]:
    e = np.exp(-_check_labels(y) * x)
    return e, -y * e, e


def _param(value: float, dt: np.dtype[Any]) -> float:
    return float(dt.type(value))


def _of_dtype(make: Callable[..., Any]) -> Callable[..., Any]:
    make.of_dtype = True  # type: ignore[attr-defined]  # a marker _pair reads
    return make


def _hinge_elem(margin: float, squared: bool) -> Callable[[np.dtype[Any]], Elem]:
    @_of_dtype
    def of(dt: np.dtype[Any]) -> Elem:
        return _hinge_elem_of(_param(margin, dt), squared)
    return of


def _hinge_elem_of(margin: float, squared: bool) -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, Array]:
        z = margin - _check_labels(y) * x
        h = np.where(z <= 0, 0.0, z)  # nan stays nan
        d = np.where(z <= 0, 0.0, -y * (2 * z if squared else 1.0))
        return (h * h if squared else h), d
    return elem


def _top1_error(scores: ArrayLike, target: ArrayLike, sample_weight: ArrayLike | None, reduction: str) -> Loss:
    x = np.asarray(scores)
    dt = _result_dtype(x)
    c = x.shape[-1]
    a = x.astype(_F64).reshape(-1, c)
    t = np.asarray(target).reshape(-1).astype(np.int64)
    if np.any((t < 0) | (t >= c)):
        raise IndexError("target out of bounds")
    sw = np.ones(a.shape[0]) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, _F64), x.shape[:-1]).reshape(-1)
    per = (np.argmax(a, axis=1) != t).astype(_F64) * sw
    return _finish(per.reshape(x.shape[:-1]), np.sum(sw), reduction, dt)


def zero_one_loss(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                  reduction: str = "mean") -> Loss:
    """Binary (same shapes, y in {-1, +1}, prediction sign with 0 -> -1) or top-1 (integer targets) error."""
    if np.shape(scores) == np.shape(y):
        return _pair(scores, y, sample_weight, reduction, _zero_one_elem, False)
    return _top1_error(scores, y, sample_weight, reduction)


def logistic_loss(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                  reduction: str = "mean") -> Loss:
    return _pair(scores, y, sample_weight, reduction, _logistic_elem, False)


def logistic_loss_and_grad(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                           reduction: str = "mean") -> LossAndGrad:
    return _pair(scores, y, sample_weight, reduction, _logistic_elem, True)


def exponential_loss(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                     reduction: str = "mean") -> Loss:
    return _pair(scores, y, sample_weight, reduction, _exponential_elem, False)


def exponential_loss_and_grad(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                              reduction: str = "mean") -> LossAndGrad:
    return _pair(scores, y, sample_weight, reduction, _exponential_elem, True)


def hinge_loss(scores: ArrayLike, y: ArrayLike, *, margin: float = 1.0, squared: bool = False,
               sample_weight: ArrayLike | None = None, reduction: str = "mean") -> Loss:
    return _pair(scores, y, sample_weight, reduction, _hinge_elem(margin, squared), False)


def hinge_loss_and_grad(scores: ArrayLike, y: ArrayLike, *, margin: float = 1.0, squared: bool = False,
                        sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossAndGrad:
    return _pair(scores, y, sample_weight, reduction, _hinge_elem(margin, squared), True)


def multiclass_hinge_loss_and_grad(scores: ArrayLike, target: ArrayLike, *, kind: str = "crammer_singer",
                                   margin: float = 1.0, p: int = 1, weight: ArrayLike | None = None,
                                   sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossAndGrad:
    """crammer_singer (sklearn's multiclass hinge_loss, with class and sample weights) or weston_watkins
    (torch's multi_margin_loss: mean over samples, not over weights), and the gradient."""
    x = np.asarray(scores)
    dt = _result_dtype(x)
    c = x.shape[-1]
    a = x.astype(_F64).reshape(-1, c)
    n = a.shape[0]
    rows = np.arange(n)
    t = np.asarray(target).reshape(-1).astype(np.int64)
    if np.any((t < 0) | (t >= c)):
        raise IndexError("target out of bounds")
    w = np.ones(c) if weight is None else np.asarray(weight, _F64)
    wt = w[t]
    sw = np.ones(n) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, _F64), x.shape[:-1]).reshape(-1)
    st = a[rows, t]
    margin = _param(margin, dt)
    g = np.zeros((n, c))
    with np.errstate(invalid="ignore"):
        if kind == "crammer_singer":
            others = a.copy()
            others[rows, t] = -np.inf
            k = np.argmax(others, axis=1)  # the first maximum (the first nan if any)
            z = margin - st + others[rows, k]
            per = wt * np.where(z <= 0, 0.0, z)
            on = z > 0
            g[rows[on], t[on]] -= wt[on]
            g[rows[on], k[on]] += wt[on]
            den = np.sum(sw * wt)
        elif kind == "weston_watkins":
            z = margin - st[:, None] + a
            z[rows, t] = -np.inf
            on = z > 0  # torch counts only the active terms
            per = wt * np.sum(np.where(on, z ** p, 0.0), axis=1) / c
            g = np.where(on, 1.0 if p == 1 else 2.0 * z, 0.0) * (wt / c)[:, None]
            g[rows, t] = -np.sum(g, axis=1)
            den = np.sum(sw)
        else:
            raise ValueError(f"unknown kind {kind!r}")
    loss = _finish((per * sw).reshape(x.shape[:-1]), den, reduction, dt)
    g = g * sw[:, None]
    if reduction == "mean":
        g = g / den
    return loss, g.reshape(x.shape).astype(dt)


def multiclass_hinge_loss(scores: ArrayLike, target: ArrayLike, **kw: Any) -> Loss:
    return multiclass_hinge_loss_and_grad(scores, target, **kw)[0]



# ---- regression -------------------------------------------------------------------------------------------

def _mse_elem(x: Array, y: Array) -> tuple[Array, ...]:
    d = x - y
    return d * d, 2 * d, np.full(d.shape, 2.0)


def _l1_elem(x: Array, y: Array) -> tuple[Array, Array]:
    d = x - y
    return np.abs(d), np.sign(d)  # sign(0) = 0, sign(nan) = nan


def _huber_elem(delta: float) -> Callable[[np.dtype[Any]], Elem]:
    @_of_dtype
    def of(dt: np.dtype[Any]) -> Elem:
        return _huber_elem_of(_param(delta, dt))
    return of


def _huber_elem_of(delta: float) -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, ...]:
        d = x - y
        ad = np.abs(d)
        return (np.where(ad < delta, 0.5 * d * d, delta * (ad - 0.5 * delta)), np.clip(d, -delta, delta),
                np.where(np.isnan(d), np.nan, (ad < delta).astype(_F64)))
    return elem


def mse_loss(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
             reduction: str = "mean") -> Loss:
    """torch.nn.functional.mse_loss, plus sample_weight."""
    return _pair(input, target, sample_weight, reduction, _mse_elem, False)


def mse_loss_and_grad(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                      reduction: str = "mean") -> LossAndGrad:
    return _pair(input, target, sample_weight, reduction, _mse_elem, True)


def l1_loss(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
            reduction: str = "mean") -> Loss:
    """torch.nn.functional.l1_loss, plus sample_weight."""
    return _pair(input, target, sample_weight, reduction, _l1_elem, False)


def l1_loss_and_grad(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                     reduction: str = "mean") -> LossAndGrad:
    return _pair(input, target, sample_weight, reduction, _l1_elem, True)


def huber_loss(input: ArrayLike, target: ArrayLike, *, delta: float = 1.0, sample_weight: ArrayLike | None = None,
               reduction: str = "mean") -> Loss:
    """torch.nn.functional.huber_loss, plus sample_weight."""
    return _pair(input, target, sample_weight, reduction, _huber_elem(delta), False)


def huber_loss_and_grad(input: ArrayLike, target: ArrayLike, *, delta: float = 1.0,
                        sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossAndGrad:
    return _pair(input, target, sample_weight, reduction, _huber_elem(delta), True)


# ---- second derivatives (issue 13) --------------------------------------------------------------------------

def mse_loss_grad_hess(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                       reduction: str = "mean") -> LossGradHess:
    return _pair(input, target, sample_weight, reduction, _mse_elem, True, True)


def huber_loss_grad_hess(input: ArrayLike, target: ArrayLike, *, delta: float = 1.0,
                         sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossGradHess:
    return _pair(input, target, sample_weight, reduction, _huber_elem(delta), True, True)


def logistic_loss_grad_hess(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                            reduction: str = "mean") -> LossGradHess:
    return _pair(scores, y, sample_weight, reduction, _logistic_elem, True, True)


def exponential_loss_grad_hess(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                               reduction: str = "mean") -> LossGradHess:
    return _pair(scores, y, sample_weight, reduction, _exponential_elem, True, True)


# ---- the losses of issue 13 ---------------------------------------------------------------------------------
# Each NAME_elem(options) is a function of the result dtype (options rounded to it, as the kernels and torch do)
# giving elem(x, y) -> (loss, grad, hess) in float64; NAME, NAME_and_grad, NAME_grad_hess are _pair of it.

def _elem_of(make: Callable[..., Elem]) -> Callable[..., Callable[[np.dtype[Any]], Elem]]:
    """make(*options in the result dtype) -> elem, turned into options -> a function of the result dtype."""
    def options(*opts: Any) -> Callable[[np.dtype[Any]], Elem]:
        @_of_dtype
        def of(dt: np.dtype[Any]) -> Elem:
            return make(*(_param(o, dt) if isinstance(o, float) else o for o in opts))
        return of
    return options


@_elem_of
def _smooth_l1_elem(beta: float) -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, ...]:
        d = x - y
        ad, inside = np.abs(d), np.abs(d) < beta
        return (np.where(inside, 0.5 * d * d / beta, ad - 0.5 * beta), np.where(inside, d / beta, np.sign(d)),
                np.where(np.isnan(d), np.nan, np.where(inside, 1.0 / max(beta, 1e-300), 0.0)))
    return elem


@_elem_of
def _log_cosh_elem() -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, ...]:
        d = x - y
        a = np.abs(d)
        u = np.expm1(np.minimum(a, 1.0))
        # cosh a - 1 = expm1(a)^2 / (2 e^a) near 0; a + log((1 + e^-2a) / 2) beyond
        loss = np.where(a < 1, np.log1p(u * u / (2 * (1 + u))), a - np.log(2.0) + np.log1p(np.exp(-2 * a)))
        return loss, np.tanh(d), 1.0 / np.cosh(d) ** 2
    return elem


@_elem_of
def _pinball_elem(q: float) -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, ...]:
        d = y - x
        return (q * np.maximum(d, 0.0) + (1 - q) * np.maximum(-d, 0.0),
                np.where(np.isnan(d), np.nan, np.where(d >= 0, -q, 1 - q)))
    return elem


@_elem_of
def _poisson_nll_elem(log_input: bool, full: bool, eps: float) -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, ...]:
        if log_input:
            loss, g, h = np.exp(x) - y * x, np.exp(x) - y, np.exp(x)
        else:
            loss, g, h = x - y * np.log(x + eps), 1 - y / (x + eps), y / (x + eps) ** 2
        if full:
            loss = loss + np.where(y > 1, y * np.log(y) - y + 0.5 * np.log(2 * np.pi * y), 0.0)
        return loss, g, h
    return elem


@_elem_of
def _gaussian_nll_elem(var: Array, full: bool, eps: float) -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, ...]:
        v = np.where(var < eps, eps, var)  # torch's clamp(min=eps), nan kept
        d = x - y
        return 0.5 * (np.log(v) + d * d / v) + (0.5 * np.log(2 * np.pi) if full else 0.0), d / v, 1.0 / v
    return elem


@_elem_of
def _tweedie_elem(p: float) -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, ...]:
        if np.any(~(y > 0) if p == 2 else ~(y >= 0)):
            raise ValueError("y out of range")
        if p == 1:
            return np.exp(x) - y * x, np.exp(x) - y, np.exp(x)
        if p == 2:
            return x + y * np.exp(-x), 1 - y * np.exp(-x), y * np.exp(-x)
        e2, e1 = np.exp((2 - p) * x), np.exp((1 - p) * x)
        return e2 / (2 - p) - y * e1 / (1 - p), e2 - y * e1, (2 - p) * e2 - (1 - p) * y * e1
    return elem


@_elem_of
def _sigmoid_focal_elem(alpha: float, gamma: float) -> Elem:
    def elem(x: Array, y: Array) -> tuple[Array, ...]:
        # torchvision's formula, with its bce from log-sigmoids; the derivatives of a_t ce q^gamma by the
        # product rule, q = 1 - p_t: q' = s (1 - s)(1 - 2y), q'' = s (1 - s)(1 - 2s)(1 - 2y)
        s, sc = np.exp(-np.logaddexp(0.0, -x)), np.exp(-np.logaddexp(0.0, x))
        sd = np.exp(-np.logaddexp(0.0, -x) - np.logaddexp(0.0, x))
        ce = y * np.logaddexp(0.0, -x) + (1 - y) * np.logaddexp(0.0, x)  # -y log s - (1 - y) log(1 - s)
        q = s * (1 - y) + sc * y
        at = 1.0 if alpha < 0 else alpha * y + (1 - alpha) * (1 - y)
        dq, d2q = sd * (1 - 2 * y), sd * (sc - s) * (1 - 2 * y)
        sy = s * (1 - y) - sc * y  # s - y, without rounding 1 - s
        qg = q ** gamma
        qg1 = gamma * q ** (gamma - 1) if gamma != 0 else 0.0 * q
        qg2 = gamma * (gamma - 1) * q ** (gamma - 2) if gamma not in (0, 1) else 0.0 * q
        return (at * ce * qg, at * (sy * qg + ce * qg1 * dq),
                at * (sd * qg + 2 * sy * qg1 * dq + ce * (qg2 * dq * dq + qg1 * d2q)))
    return elem


def smooth_l1_loss(input: ArrayLike, target: ArrayLike, *, beta: float = 1.0, sample_weight: ArrayLike | None = None,
                   reduction: str = "mean") -> Loss:
    """torch.nn.functional.smooth_l1_loss, plus sample_weight (beta = 0: l1)."""
    return _pair(input, target, sample_weight, reduction, _smooth_l1_elem(beta), False)


def smooth_l1_loss_and_grad(input: ArrayLike, target: ArrayLike, *, beta: float = 1.0,
                            sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossAndGrad:
    return _pair(input, target, sample_weight, reduction, _smooth_l1_elem(beta), True)


def smooth_l1_loss_grad_hess(input: ArrayLike, target: ArrayLike, *, beta: float = 1.0,
                             sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossGradHess:
    return _pair(input, target, sample_weight, reduction, _smooth_l1_elem(beta), True, True)


def log_cosh_loss(pred: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                  reduction: str = "mean") -> Loss:
    """log(cosh(pred - y)) (optax.log_cosh), evaluated without overflow or cancellation."""
    return _pair(pred, y, sample_weight, reduction, _log_cosh_elem(), False)


def log_cosh_loss_and_grad(pred: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                           reduction: str = "mean") -> LossAndGrad:
    return _pair(pred, y, sample_weight, reduction, _log_cosh_elem(), True)


def log_cosh_loss_grad_hess(pred: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                            reduction: str = "mean") -> LossGradHess:
    return _pair(pred, y, sample_weight, reduction, _log_cosh_elem(), True, True)


def pinball_loss(pred: ArrayLike, y: ArrayLike, *, quantile: float = 0.5, sample_weight: ArrayLike | None = None,
                 reduction: str = "mean") -> Loss:
    """sklearn.metrics.mean_pinball_loss(y, pred, alpha=quantile) for "mean"."""
    return _pair(pred, y, sample_weight, reduction, _pinball_elem(float(quantile)), False)


def pinball_loss_and_grad(pred: ArrayLike, y: ArrayLike, *, quantile: float = 0.5,
                          sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossAndGrad:
    return _pair(pred, y, sample_weight, reduction, _pinball_elem(float(quantile)), True)


def poisson_nll_loss(input: ArrayLike, target: ArrayLike, *, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, sample_weight: ArrayLike | None = None, reduction: str = "mean") -> Loss:
    """torch.nn.functional.poisson_nll_loss, plus sample_weight."""
    return _pair(input, target, sample_weight, reduction, _poisson_nll_elem(log_input, full, float(eps)), False)


def poisson_nll_loss_and_grad(input: ArrayLike, target: ArrayLike, *, log_input: bool = True, full: bool = False,
                              eps: float = 1e-8, sample_weight: ArrayLike | None = None,
                              reduction: str = "mean") -> LossAndGrad:
    return _pair(input, target, sample_weight, reduction, _poisson_nll_elem(log_input, full, float(eps)), True)


def poisson_nll_loss_grad_hess(input: ArrayLike, target: ArrayLike, *, log_input: bool = True, full: bool = False,
                               eps: float = 1e-8, sample_weight: ArrayLike | None = None,
                               reduction: str = "mean") -> LossGradHess:
    return _pair(input, target, sample_weight, reduction, _poisson_nll_elem(log_input, full, float(eps)), True,
                 True)


def _var_of(var: ArrayLike, input: ArrayLike) -> Array:
    """var broadcast to input's shape as torch does (a missing last axis appended), in input's result dtype."""
    x, v = np.asarray(input), np.asarray(var)
    if v.shape != x.shape and v.shape == x.shape[:-1]:
        v = v[..., None]
    return np.broadcast_to(v.astype(_result_dtype(x)).astype(_F64), x.shape)


def gaussian_nll_loss(input: ArrayLike, target: ArrayLike, var: ArrayLike, *, full: bool = False,
                      eps: float = 1e-6, sample_weight: ArrayLike | None = None, reduction: str = "mean") -> Loss:
    """torch.nn.functional.gaussian_nll_loss, plus sample_weight."""
    return _pair(input, target, sample_weight, reduction, _gaussian_nll_elem(_var_of(var, input), full, float(eps)),
                 False)


def gaussian_nll_loss_and_grad(input: ArrayLike, target: ArrayLike, var: ArrayLike, *, full: bool = False,
                               eps: float = 1e-6, sample_weight: ArrayLike | None = None,
                               reduction: str = "mean") -> LossAndGrad:
    return _pair(input, target, sample_weight, reduction, _gaussian_nll_elem(_var_of(var, input), full, float(eps)),
                 True)


def gaussian_nll_loss_grad_hess(input: ArrayLike, target: ArrayLike, var: ArrayLike, *, full: bool = False,
                                eps: float = 1e-6, sample_weight: ArrayLike | None = None,
                                reduction: str = "mean") -> LossGradHess:
    return _pair(input, target, sample_weight, reduction, _gaussian_nll_elem(_var_of(var, input), full, float(eps)),
                 True, True)


def tweedie_loss(raw: ArrayLike, y: ArrayLike, *, power: float = 1.5, sample_weight: ArrayLike | None = None,
                 reduction: str = "mean") -> Loss:
    """sklearn._loss.HalfTweedieLoss(power).loss(y, raw), plus the reductions."""
    return _pair(raw, y, sample_weight, reduction, _tweedie_elem(float(power)), False)


def tweedie_loss_and_grad(raw: ArrayLike, y: ArrayLike, *, power: float = 1.5, sample_weight: ArrayLike | None = None,
                          reduction: str = "mean") -> LossAndGrad:
    return _pair(raw, y, sample_weight, reduction, _tweedie_elem(float(power)), True)


def tweedie_loss_grad_hess(raw: ArrayLike, y: ArrayLike, *, power: float = 1.5,
                           sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossGradHess:
    return _pair(raw, y, sample_weight, reduction, _tweedie_elem(float(power)), True, True)


def sigmoid_focal_loss(logits: ArrayLike, target: ArrayLike, *, alpha: float = 0.25, gamma: float = 2.0,
                       sample_weight: ArrayLike | None = None, reduction: str = "mean") -> Loss:
    """torchvision.ops.sigmoid_focal_loss, plus sample_weight and fastloss's reductions."""
    return _pair(logits, target, sample_weight, reduction, _sigmoid_focal_elem(float(alpha), float(gamma)), False)


def sigmoid_focal_loss_and_grad(logits: ArrayLike, target: ArrayLike, *, alpha: float = 0.25, gamma: float = 2.0,
                                sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossAndGrad:
    return _pair(logits, target, sample_weight, reduction, _sigmoid_focal_elem(float(alpha), float(gamma)), True)


def sigmoid_focal_loss_grad_hess(logits: ArrayLike, target: ArrayLike, *, alpha: float = 0.25, gamma: float = 2.0,
                                 sample_weight: ArrayLike | None = None, reduction: str = "mean") -> LossGradHess:
    return _pair(logits, target, sample_weight, reduction, _sigmoid_focal_elem(float(alpha), float(gamma)), True,
                 True)



# ---- distributions, binary cross-entropy, kl_div ----------------------------------------------------------

def _probabilities(p: ArrayLike, q: ArrayLike | None) -> tuple[list[Array], np.dtype[Any]]:
    """p (and q) as float64, the result dtype (float32 only if all inputs are float16/bfloat16/float32); a negative
    entry raises ValueError."""
    arrays = [np.asarray(p)] + ([] if q is None else [np.asarray(q)])
    if q is not None and arrays[0].shape != arrays[1].shape:
        raise ValueError(f"p and q must have the same shape, got {arrays[0].shape} and {arrays[1].shape}")
    dt = np.result_type(*[_result_dtype(a) for a in arrays])
    out = [a.astype(_F64) for a in arrays]
    for name, a in zip("pq", out):
        if np.any(a < 0):
            raise ValueError(f"{name} has a negative entry")
    return out, dt


def _log_base(base: float | None) -> float:
    if base is None:
        return 1.0
    if not np.isfinite(base) or base <= 0 or base == 1:
        raise ValueError("bad base")
    return np.log(base)


def _measure(terms: Array, shape: tuple[int, ...], axis: int | None, base: float | None,
             dt: np.dtype[Any]) -> FloatResult:
    if len(shape) == 0 and axis is None:
        terms = terms.reshape(1)
    r = np.asarray(np.sum(terms, axis=axis) / _log_base(base)).astype(dt)
    return r[()] if r.ndim == 0 else r


def entropy(p: ArrayLike, axis: int | None = -1, *, base: float | None = None) -> FloatResult:
    """sum of scipy.special.entr(p) = -p log p (0 for p = 0) along axis, over log(base)."""
    (a,), dt = _probabilities(p, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a == 0, 0.0, -a * np.log(a))
    return _measure(terms, a.shape, axis, base, dt)


def categorical_cross_entropy(p: ArrayLike, q: ArrayLike, axis: int | None = -1, *,
                              base: float | None = None) -> FloatResult:
    """-sum of scipy.special.xlogy(p, q) (0 where p = 0 and q is not nan) along axis, over log(base)."""
    (a, b), dt = _probabilities(p, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where((a == 0) & ~np.isnan(b), 0.0, -a * np.log(b))
    return _measure(terms, a.shape, axis, base, dt)


def kl_divergence(p: ArrayLike, q: ArrayLike, axis: int | None = -1, *, base: float | None = None) -> FloatResult:
    """sum of scipy.special.rel_entr(p, q) along axis, over log(base). Where p and q are float32 values (float32
    and narrower inputs, or float64 ones that hold such values) each p log(p / q) without the rounding of p / q
    (2^-53 of p a term: where q is close to p the terms cancel to a sum a million times smaller, and that
    rounding would be much of it): r = p / q rounded to float32, whose residual e = p - r q is exact in float64,
    and p log(p / q) = p log r + e + e^2 / (2 p) (to 2^-72 p)."""
    (a, b), dt = _probabilities(p, q)
    f32 = np.finfo(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        terms = np.where((a > 0) & (b > 0), a * np.log(a / b), np.nan)
        r = np.minimum(a / b, f32.max).astype(np.float32).astype(_F64)
        ok = ((a > 0) & (b > 0) & (r >= f32.tiny) & (r < f32.max)
              & (a.astype(np.float32) == a) & (b.astype(np.float32) == b))
        if np.any(ok):
            e = np.where(ok, a - r * b, 0.0)
            terms = np.where(ok, a * np.log(np.where(ok, r, 1.0)) + (e + 0.5 * e * (e / a)), terms)
        terms = np.where((a == 0) & (b >= 0), 0.0, terms)
        terms = np.where((a > 0) & (b == 0), np.inf, terms)
    return _measure(terms, a.shape, axis, base, dt)


def _bce_parts(logits: ArrayLike, target: ArrayLike, weight: ArrayLike | None, pos_weight: ArrayLike | None,
               sample_weight: ArrayLike | None) -> tuple[Array, Array, Array, Array, Any, np.dtype[Any]]:
    x = np.asarray(logits)
    dt = _result_dtype(x)
    x = x.astype(_F64)
    y = np.asarray(target).astype(_F64)
    ones = np.ones(x.shape)
    w = ones if weight is None else np.broadcast_to(np.asarray(weight, _F64), x.shape)
    pw = ones if pos_weight is None else np.broadcast_to(np.asarray(pos_weight, _F64), x.shape)
    sw = ones if sample_weight is None else np.broadcast_to(np.asarray(sample_weight, _F64), x.shape)
    return x, y, w * sw, pw, np.sum(sw), dt


def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                     pos_weight: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                                     reduction: str = "mean") -> Loss:
    """torch's formula: w sw [(1 - y) x + lw (log1p(exp(-|x|)) + max(-x, 0))], lw = 1 + (pw - 1) y;
    mean = sum / sum(sw broadcast) (the number of elements without sample_weight). Evaluated without its
    cancellation ((1 - y) x - x for x < 0): (1 - y) x for x >= 0, -pw y x for x < 0, plus lw log1p(exp(-|x|));
    torch's own form where x is infinite (its nan and inf)."""
    x, y, w, pw, den, dt = _bce_parts(logits, target, weight, pos_weight, sample_weight)
    with np.errstate(invalid="ignore", over="ignore"):
        lw = 1 + (pw - 1) * y
        l1p = np.log1p(np.exp(-np.abs(x)))
        torch_form = (1 - y) * x + lw * (l1p + np.maximum(-x, 0))
        stable = np.where(x >= 0, (1 - y) * x, -pw * y * x) + lw * l1p
        loss = np.where(np.isinf(x), torch_form, stable)
    return _finish(w * loss, den, reduction, dt)


def binary_cross_entropy_with_logits_and_grad(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                              pos_weight: ArrayLike | None = None,
                                              sample_weight: ArrayLike | None = None,
                                              reduction: str = "mean") -> LossAndGrad:
    """grad = w sw ((1 + (pw - 1) y) sigmoid(x) - pw y), over the mean's divisor; evaluated without cancellation
    as ((1 - y) - pw y e) / (1 + e) for x >= 0 and (e (1 - y) - pw y) / (1 + e) for x < 0, e = exp(-|x|)."""
    loss = binary_cross_entropy_with_logits(logits, target, weight=weight, pos_weight=pos_weight,
                                            sample_weight=sample_weight, reduction=reduction)
    x, y, w, pw, den, dt = _bce_parts(logits, target, weight, pos_weight, sample_weight)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(-np.abs(x))
        g = w * np.where(x >= 0, (1 - y) - pw * y * e, e * (1 - y) - pw * y) / (1 + e)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            g = g / den
    return loss, g.astype(dt)


def _kl_div_parts(input: ArrayLike, target: ArrayLike, log_target: bool,
                  reduction: str) -> tuple[Array, Array, int, np.dtype[Any]]:
    x = np.asarray(input)
    dt = _result_dtype(x)
    x, y = x.astype(_F64), np.asarray(target).astype(_F64)
    den = {"mean": x.size, "batchmean": x.shape[0] if x.ndim else 1}.get(reduction, 1)
    return x, y, den, dt


def kl_div(input: ArrayLike, target: ArrayLike, *, log_target: bool = False, reduction: str = "mean") -> Loss:
    """torch.nn.functional.kl_div: xlogy(y, y) - y x, or exp(y) (y - x) with log_target."""
    x, y, den, dt = _kl_div_parts(input, target, log_target, reduction)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if log_target:
            loss = np.exp(y) * (y - x)
        else:
            loss = np.where(y == 0, 0.0, y * np.log(np.where(y == 0, 1.0, y))) - y * x
    return _finish(loss, den, "none" if reduction == "none" else "mean", dt)


def kl_div_and_grad(input: ArrayLike, target: ArrayLike, *, log_target: bool = False,
                    reduction: str = "mean") -> LossAndGrad:
    """grad = -y (-exp(y) with log_target), over the divisor of mean / batchmean."""
    x, y, den, dt = _kl_div_parts(input, target, log_target, reduction)
    g = -np.exp(y) if log_target else -y
    if reduction in ("mean", "batchmean"):
        g = g / den
    return kl_div(input, target, log_target=log_target, reduction=reduction), (g * np.ones(x.shape)).astype(dt)


def binary_cross_entropy_with_logits_grad_hess(logits: ArrayLike, target: ArrayLike, *,
                                               weight: ArrayLike | None = None, pos_weight: ArrayLike | None = None,
                                               sample_weight: ArrayLike | None = None,
                                               reduction: str = "mean") -> LossGradHess:
    """hess = w sw (1 + (pw - 1) y) sigmoid(x) sigmoid(-x), over the mean's divisor."""
    loss, g = binary_cross_entropy_with_logits_and_grad(logits, target, weight=weight, pos_weight=pos_weight,
                                                        sample_weight=sample_weight, reduction=reduction)
    x, y, w, pw, den, dt = _bce_parts(logits, target, weight, pos_weight, sample_weight)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        h = w * (1 + (pw - 1) * y) * np.exp(-np.logaddexp(0.0, x) - np.logaddexp(0.0, -x))
        if reduction == "mean":
            h = h / den
    return loss, g, h.astype(dt)


def kl_div_grad_hess(input: ArrayLike, target: ArrayLike, *, log_target: bool = False,
                     reduction: str = "mean") -> LossGradHess:
    """kl_div is linear in input: hess = 0."""
    loss, g = kl_div_and_grad(input, target, log_target=log_target, reduction=reduction)
    return loss, g, np.zeros(np.shape(input), _result_dtype(input))


# ---- evaluation ----------------------------------------------------------------------------------------------

def evaluate(logits: ArrayLike, target: ArrayLike, *, ignore_index: int = -100, weight: ArrayLike | None = None,
             topk: int | Sequence[int] = (1, 5)) -> dict[str, Any]:
    """fastloss.evaluate(...).to_dict(), in float64 NumPy: the weighted mean cross-entropy, its exp, and for each
    k the fraction of counted rows with fewer than min(k, C) logits not <= the target's (nan counts as greater)."""
    x = np.asarray(logits).astype(_F64)
    c = x.shape[-1]
    x = x.reshape(-1, c)
    t = np.asarray(target).reshape(-1)
    keep = t != ignore_index
    x, t = x[keep], t[keep].astype(np.int64)
    w = np.ones(c) if weight is None else np.asarray(weight, _F64)
    xt = x[np.arange(len(t)), t]
    lp_t = log_softmax(x, axis=-1)[np.arange(len(t)), t] if len(t) else np.zeros(0)
    wt = w[t]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ce = float(np.sum(-wt * lp_t) / np.sum(wt))
        rank = np.sum(~(x <= xt[:, None]), axis=1)
        out = {"cross_entropy": ce, "perplexity": float(np.exp(ce))}
        ks = (topk,) if np.ndim(topk) == 0 else tuple(topk)  # type: ignore[arg-type]  # an int when np.ndim is 0
        out.update({f"top{k}_accuracy": float(np.mean(rank < min(k, c))) if len(t) else float("nan") for k in ks})
    out["n_rows"] = int(len(t))
    if weight is not None:
        out["weight_sum"] = float(np.sum(wt))
    return out


def evaluate_binary(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None) -> dict[str, Any]:
    """fastloss.evaluate_binary(...).to_dict() in float64 NumPy (y in {-1, +1}, m = y * score)."""
    s = np.asarray(scores).astype(_F64).reshape(-1)
    yv = np.asarray(y).astype(_F64).reshape(-1)
    sw = np.ones(s.size) if sample_weight is None else np.broadcast_to(
        np.asarray(sample_weight, _F64), np.shape(scores)).reshape(-1)
    m = yv * s
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        losses = {"logistic_loss": np.logaddexp(0.0, -m), "hinge_loss": np.maximum(0.0, 1.0 - m),
                  "exponential_loss": np.exp(-m), "accuracy": (np.where(s > 0, 1.0, -1.0) == yv).astype(_F64)}
        out = {k: float(np.sum(sw * v) / np.sum(sw)) for k, v in losses.items()}
    out["n"] = int(s.size)
    if sample_weight is not None:
        out["weight_sum"] = float(np.sum(sw))
    return out
