"""The regression losses on input and target arrays of the same shape, one loss per element: mse_loss, l1_loss,
huber_loss, smooth_l1_loss, poisson_nll_loss, gaussian_nll_loss (torch semantics), log_cosh_loss, pinball_loss and
tweedie_loss (scikit-learn's). Each has NAME_and_grad (the loss and d loss / d input from the same pass) and, but
l1_loss and pinball_loss, NAME_grad_hess (and the diagonal of the Hessian, from that pass too)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _checks as ck
from . import _kernels as K
from .margin import BadValue, PairCheck, _pair_loss

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._typing import Array, Loss, LossAndGrad, LossGradHess

__all__ = ["mse_loss", "mse_loss_and_grad", "l1_loss", "l1_loss_and_grad", "huber_loss", "huber_loss_and_grad"]
__all__ += ["mse_loss_grad_hess", "huber_loss_grad_hess", "smooth_l1_loss", "smooth_l1_loss_and_grad",
            "smooth_l1_loss_grad_hess", "log_cosh_loss", "log_cosh_loss_and_grad", "log_cosh_loss_grad_hess",
            "pinball_loss", "pinball_loss_and_grad", "poisson_nll_loss", "poisson_nll_loss_and_grad",
            "poisson_nll_loss_grad_hess", "gaussian_nll_loss", "gaussian_nll_loss_and_grad",
            "gaussian_nll_loss_grad_hess", "tweedie_loss", "tweedie_loss_and_grad", "tweedie_loss_grad_hess"]

_NAMES = ("input", "target")


def mse_loss(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None, reduction: str = "mean",
             n_threads: int | None = None) -> Loss:
    """The squared error (input - target) ** 2 per element.

    input, target: the same shape (any; ValueError naming both shapes otherwise). sample_weight: that shape (or
    broadcastable) multiplies each element's loss. "mean" divides by the sum of sample weights (the number of
    elements without). Returns per-element losses (reduction="none") or a NumPy scalar in the input's compute
    dtype (float32 for float16/bfloat16/float32, float64 otherwise); target is converted to it.

    Equivalent: ``torch.nn.functional.mse_loss(input, target, reduction=reduction)``.

    >>> fl.mse_loss(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 2.0]))
    np.float64(1.4166666666666667)
    """
    return _pair_loss("mse", input, target, sample_weight, 0.0, 0, reduction, n_threads, False, None, _NAMES)


def mse_loss_and_grad(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                      reduction: str = "mean", n_threads: int | None = None,
                      grad_out: Array | None = None) -> LossAndGrad:
    """(mse_loss(...), d loss / d input) from the same pass: grad = 2 (input - target) sw (divided by the sum of
    sample weights for "mean"). grad has the input's shape and compute dtype; it is written into grad_out when
    given (writable, C-contiguous, that shape and dtype; partly written if a Ctrl-C interrupts the call).

    Equivalent: ``torch.autograd.grad(F.mse_loss(x, t), x)``.

    >>> fl.mse_loss_and_grad(np.array([1.0, 4.0]), np.array([1.5, 2.0]), reduction="sum")
    (np.float64(4.25), array([-1.,  4.]))
    """
    return _pair_loss("mse", input, target, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out, _NAMES)


def mse_loss_grad_hess(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                       reduction: str = "mean", n_threads: int | None = None, grad_out: Array | None = None,
                       hess_out: Array | None = None) -> LossGradHess:
    """(mse_loss(...), d loss / d input, d^2 loss / d input^2) from one pass: hess = 2 sw (divided by the sum of
    sample weights for "mean"), the diagonal of the Hessian. grad and hess have the input's shape and compute
    dtype; written into grad_out / hess_out when given (two separate writable C-contiguous arrays of that shape
    and dtype; untouched on error).

    Equivalent: XGBoost's ``reg:squarederror`` has half of this grad and hess (loss (x - t)^2 / 2).

    >>> fl.mse_loss_grad_hess(np.array([1.0, 4.0]), np.array([1.5, 2.0]), reduction="sum")
    (np.float64(4.25), array([-1.,  4.]), array([2., 2.]))
    """
    return _pair_loss("mse", input, target, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out, _NAMES,
                      True, hess_out)


def l1_loss(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None, reduction: str = "mean",
            n_threads: int | None = None) -> Loss:
    """The absolute error |input - target| per element. Shapes, dtypes, weights and reductions as mse_loss.

    Equivalent: ``torch.nn.functional.l1_loss(input, target, reduction=reduction)``.

    >>> fl.l1_loss(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 2.0]))
    np.float64(0.8333333333333334)
    """
    return _pair_loss("l1", input, target, sample_weight, 0.0, 0, reduction, n_threads, False, None, _NAMES)


def l1_loss_and_grad(input: ArrayLike, target: ArrayLike, *, sample_weight: ArrayLike | None = None,
                     reduction: str = "mean", n_threads: int | None = None,
                     grad_out: Array | None = None) -> LossAndGrad:
    """(l1_loss(...), d loss / d input) from the same pass: grad = sign(input - target) sw, with sign(0) = 0 as
    torch (divided by the sum of sample weights for "mean"); grad_out as mse_loss_and_grad.

    Equivalent: ``torch.autograd.grad(F.l1_loss(x, t), x)``.

    >>> fl.l1_loss_and_grad(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 2.0]), reduction="sum")
    (np.float64(2.5), array([-1.,  0.,  1.]))
    """
    return _pair_loss("l1", input, target, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out, _NAMES)


def huber_loss(input: ArrayLike, target: ArrayLike, *, delta: float = 1.0, sample_weight: ArrayLike | None = None,
               reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """The Huber loss of d = input - target per element: 0.5 d^2 where |d| < delta, else
    delta * (|d| - 0.5 delta). delta: finite and > 0 (ValueError otherwise). Shapes, dtypes, weights and
    reductions as mse_loss.

    Equivalent: ``torch.nn.functional.huber_loss(input, target, delta=delta, reduction=reduction)``
    (``smooth_l1_loss`` with beta is huber_loss / beta).

    >>> fl.huber_loss(np.array([0.5, 3.0]), np.array([0.0, 0.0]), reduction="none")
    array([0.125, 2.5  ])
    """
    delta = ck.finite_option(delta, "delta", 0.0, lo_open=True)
    return _pair_loss("huber", input, target, sample_weight, delta, 0, reduction, n_threads, False, None, _NAMES)


def huber_loss_and_grad(input: ArrayLike, target: ArrayLike, *, delta: float = 1.0,
                        sample_weight: ArrayLike | None = None, reduction: str = "mean", n_threads: int | None = None,
                        grad_out: Array | None = None) -> LossAndGrad:
    """(huber_loss(...), d loss / d input) from the same pass: grad = clip(d, -delta, delta) sw (continuous at
    |d| = delta; divided by the sum of sample weights for "mean"); grad_out as mse_loss_and_grad.

    Equivalent: ``torch.autograd.grad(F.huber_loss(x, t, delta=delta), x)``.

    >>> fl.huber_loss_and_grad(np.array([0.5, 3.0]), np.array([0.0, 0.0]), reduction="sum")
    (np.float64(2.625), array([0.5, 1. ]))
    """
    delta = ck.finite_option(delta, "delta", 0.0, lo_open=True)
    return _pair_loss("huber", input, target, sample_weight, delta, 0, reduction, n_threads, True, grad_out,
                      _NAMES)


def huber_loss_grad_hess(input: ArrayLike, target: ArrayLike, *, delta: float = 1.0,
                         sample_weight: ArrayLike | None = None, reduction: str = "mean",
                         n_threads: int | None = None, grad_out: Array | None = None,
                         hess_out: Array | None = None) -> LossGradHess:
    """(huber_loss(...), d loss / d input, d^2 loss / d input^2) from one pass: hess = sw where |d| < delta and 0
    where |d| >= delta (the true second derivative: not floored; fastloss.xgboost / fastloss.lightgbm floor it
    with min_hess); divided by the sum of sample weights for "mean". grad_out / hess_out as mse_loss_grad_hess.

    Equivalent: XGBoost's ``reg:pseudohubererror`` is another loss (smooth everywhere); this is torch's Huber.

    >>> fl.huber_loss_grad_hess(np.array([0.5, 3.0]), np.array([0.0, 0.0]), reduction="sum")[2]
    array([1., 0.])
    """
    delta = ck.finite_option(delta, "delta", 0.0, lo_open=True)
    return _pair_loss("huber", input, target, sample_weight, delta, 0, reduction, n_threads, True, grad_out,
                      _NAMES, True, hess_out)


# ---- the losses of issue 13: one private function each, the public three call it --------------------------

def _smooth_l1(input: ArrayLike, target: ArrayLike, beta: float, sample_weight: ArrayLike | None, reduction: str,
               n_threads: int | None, grad: bool, grad_out: Array | None, hess: bool, hess_out: Array | None) -> Any:
    beta = ck.finite_option(beta, "beta", 0.0)
    return _pair_loss("smooth_l1", input, target, sample_weight, beta, 0, reduction, n_threads, grad, grad_out,
                      _NAMES, hess, hess_out)


def smooth_l1_loss(input: ArrayLike, target: ArrayLike, *, beta: float = 1.0, sample_weight: ArrayLike | None = None,
                   reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """torch's smooth L1 loss of d = input - target per element: 0.5 d^2 / beta where |d| < beta, else
    |d| - 0.5 beta (huber_loss(delta=beta) / beta; beta = 0 is the L1 loss). beta: finite and >= 0 (ValueError
    otherwise). Shapes, dtypes, weights and reductions as mse_loss.

    Equivalent: ``torch.nn.functional.smooth_l1_loss(input, target, beta=beta, reduction=reduction)``.

    >>> fl.smooth_l1_loss(np.array([0.5, 3.0]), np.array([0.0, 0.0]), reduction="none")
    array([0.125, 2.5  ])
    """
    return _smooth_l1(input, target, beta, sample_weight, reduction, n_threads, False, None, False, None)


def smooth_l1_loss_and_grad(input: ArrayLike, target: ArrayLike, *, beta: float = 1.0,
                            sample_weight: ArrayLike | None = None, reduction: str = "mean",
                            n_threads: int | None = None, grad_out: Array | None = None) -> LossAndGrad:
    """(smooth_l1_loss(...), d loss / d input) from one pass: grad = d / beta where |d| < beta, else sign(d)
    (sign(0) = 0), times sw (divided by the sum of sample weights for "mean"); grad_out as mse_loss_and_grad.

    Equivalent: ``torch.autograd.grad(F.smooth_l1_loss(x, t, beta=beta), x)``.

    >>> fl.smooth_l1_loss_and_grad(np.array([0.5, 3.0]), np.array([0.0, 0.0]), reduction="sum")[1]
    array([0.5, 1. ])
    """
    return _smooth_l1(input, target, beta, sample_weight, reduction, n_threads, True, grad_out, False, None)


def smooth_l1_loss_grad_hess(input: ArrayLike, target: ArrayLike, *, beta: float = 1.0,
                             sample_weight: ArrayLike | None = None, reduction: str = "mean",
                             n_threads: int | None = None, grad_out: Array | None = None,
                             hess_out: Array | None = None) -> LossGradHess:
    """(smooth_l1_loss(...), d loss / d input, d^2 loss / d input^2) from one pass: hess = sw / beta where
    |d| < beta, else 0 (and 0 everywhere for beta = 0; not floored); grad_out / hess_out as mse_loss_grad_hess.

    >>> fl.smooth_l1_loss_grad_hess(np.array([0.5, 3.0]), np.array([0.0, 0.0]), beta=2.0, reduction="sum")[2]
    array([0.5, 0. ])
    """
    return _smooth_l1(input, target, beta, sample_weight, reduction, n_threads, True, grad_out, True, hess_out)


def log_cosh_loss(pred: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None, reduction: str = "mean",
                  n_threads: int | None = None) -> Loss:
    """log(cosh(pred - y)) per element, computed stably for any difference d: log1p(u^2 / (2 (1 + u))),
    u = expm1(|d|), for |d| < 1 (full relative accuracy as d -> 0, where the loss is d^2 / 2), and
    |d| - log 2 + log1p(exp(-2|d|)) beyond (no overflow: d = 1e4 gives 1e4 - log 2). Shapes, dtypes, weights
    and reductions as mse_loss.

    Equivalent: ``optax.log_cosh(pred, y)`` with the reduction; ``np.log(np.cosh(pred - y))`` where it does
    not overflow.

    >>> fl.log_cosh_loss(np.array([0.0, 1.0, 1e4]), np.array([0.0, 0.0, 0.0]), reduction="none")
    array([0.00000000e+00, 4.33780830e-01, 9.99930685e+03])
    """
    return _pair_loss("log_cosh", pred, y, sample_weight, 0.0, 0, reduction, n_threads, False, None,
                      ("pred", "y"))


def log_cosh_loss_and_grad(pred: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                           reduction: str = "mean", n_threads: int | None = None,
                           grad_out: Array | None = None) -> LossAndGrad:
    """(log_cosh_loss(...), d loss / d pred) from one pass: grad = tanh(pred - y) sw (divided by the sum of
    sample weights for "mean"); grad_out as mse_loss_and_grad.

    Equivalent: ``jax.grad(lambda p: optax.log_cosh(p, y).sum())(pred)``.

    >>> fl.log_cosh_loss_and_grad(np.array([0.0, 1.0]), np.array([0.0, 0.0]), reduction="sum")[1]
    array([0.        , 0.76159416])
    """
    return _pair_loss("log_cosh", pred, y, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out,
                      ("pred", "y"))


def log_cosh_loss_grad_hess(pred: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                            reduction: str = "mean", n_threads: int | None = None, grad_out: Array | None = None,
                            hess_out: Array | None = None) -> LossGradHess:
    """(log_cosh_loss(...), d loss / d pred, d^2 loss / d pred^2) from one pass: hess = (1 - tanh^2(d)) sw =
    sw / cosh^2(d), computed as 4t / (1 + t)^2, t = exp(-2|d|), for |d| >= 1 (no cancellation); grad_out /
    hess_out as mse_loss_grad_hess.

    >>> fl.log_cosh_loss_grad_hess(np.array([0.0, 1.0]), np.array([0.0, 0.0]), reduction="sum")[2]
    array([1.        , 0.41997434])
    """
    return _pair_loss("log_cosh", pred, y, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out,
                      ("pred", "y"), True, hess_out)


def _pinball(pred: ArrayLike, y: ArrayLike, quantile: float, sample_weight: ArrayLike | None, reduction: str,
             n_threads: int | None, grad: bool, grad_out: Array | None) -> Any:
    q = ck.finite_option(quantile, "quantile", 0.0, 1.0, lo_open=True)
    if q == 1.0:
        raise ValueError(f"quantile must be < 1.0, got {quantile!r}")
    return _pair_loss("pinball", pred, y, sample_weight, q, 0, reduction, n_threads, grad, grad_out, ("pred", "y"))


def pinball_loss(pred: ArrayLike, y: ArrayLike, *, quantile: float = 0.5, sample_weight: ArrayLike | None = None,
                 reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """The pinball (quantile) loss per element: q * max(y - pred, 0) + (1 - q) * max(pred - y, 0), whose mean is
    minimised by the q-quantile of y. quantile q: in (0, 1) (ValueError otherwise; 0.5 is half the L1 loss).
    Shapes, dtypes, weights and reductions as mse_loss. No pinball_loss_grad_hess: its second derivative is 0
    almost everywhere.

    Equivalent: ``sklearn.metrics.mean_pinball_loss(y, pred, alpha=q, sample_weight=sw)`` for "mean".

    >>> fl.pinball_loss(np.array([1.0, 3.0]), np.array([2.0, 2.0]), quantile=0.9, reduction="none")
    array([0.9, 0.1])
    """
    return _pinball(pred, y, quantile, sample_weight, reduction, n_threads, False, None)


def pinball_loss_and_grad(pred: ArrayLike, y: ArrayLike, *, quantile: float = 0.5,
                          sample_weight: ArrayLike | None = None, reduction: str = "mean",
                          n_threads: int | None = None, grad_out: Array | None = None) -> LossAndGrad:
    """(pinball_loss(...), d loss / d pred) from one pass: grad = (1 - q) sw where pred > y, -q sw where
    pred <= y (scikit-learn's PinballLoss gradient; divided by the sum of sample weights for "mean");
    grad_out as mse_loss_and_grad.

    Equivalent: ``sklearn._loss.PinballLoss(quantile=q).gradient(y, pred)``.

    >>> fl.pinball_loss_and_grad(np.array([1.0, 3.0]), np.array([2.0, 2.0]), quantile=0.9, reduction="sum")[1]
    array([-0.9,  0.1])
    """
    return _pinball(pred, y, quantile, sample_weight, reduction, n_threads, True, grad_out)


def _poisson(input: ArrayLike, target: ArrayLike, log_input: bool, full: bool, eps: float,
             sample_weight: ArrayLike | None, reduction: str, n_threads: int | None, grad: bool,
             grad_out: Array | None, hess: bool, hess_out: Array | None) -> Any:
    eps = ck.finite_option(eps, "eps", 0.0)
    flag = (K.POISSON_LOG_INPUT if log_input else 0) | (K.POISSON_FULL if full else 0)
    return _pair_loss("poisson_nll", input, target, sample_weight, eps, flag, reduction, n_threads, grad, grad_out,
                      _NAMES, hess, hess_out)


def poisson_nll_loss(input: ArrayLike, target: ArrayLike, *, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, sample_weight: ArrayLike | None = None, reduction: str = "mean",
                     n_threads: int | None = None) -> Loss:
    """torch's Poisson negative log-likelihood per element, for counts y = target:

        log_input=True:   exp(x) - y x                 (x = input is the log of the rate)
        log_input=False:  x - y log(x + eps)           (x is the rate)
        full=True adds Stirling's term y log y - y + 0.5 log(2 pi y) where y > 1

    eps: finite and >= 0. Targets are not checked (as torch). Shapes, dtypes, weights and reductions as mse_loss.

    Equivalent: ``torch.nn.functional.poisson_nll_loss(input, target, log_input, full, eps=eps,
    reduction=reduction)``; with log_input, scikit-learn's ``HalfPoissonLoss`` (= tweedie_loss(power=1)).

    >>> fl.poisson_nll_loss(np.array([0.0, 1.0]), np.array([1.0, 2.0]), reduction="none")
    array([1.        , 0.71828183])
    """
    return _poisson(input, target, log_input, full, eps, sample_weight, reduction, n_threads, False, None, False,
                    None)


def poisson_nll_loss_and_grad(input: ArrayLike, target: ArrayLike, *, log_input: bool = True, full: bool = False,
                              eps: float = 1e-8, sample_weight: ArrayLike | None = None, reduction: str = "mean",
                              n_threads: int | None = None, grad_out: Array | None = None) -> LossAndGrad:
    """(poisson_nll_loss(...), d loss / d input) from one pass: grad = exp(x) - y (log_input) or
    1 - y / (x + eps), times sw (divided by the sum of sample weights for "mean"); grad_out as mse_loss_and_grad.

    Equivalent: ``torch.autograd.grad(F.poisson_nll_loss(x, y, ...), x)``.

    >>> fl.poisson_nll_loss_and_grad(np.array([0.0, 1.0]), np.array([1.0, 2.0]), reduction="sum")[1]
    array([0.        , 0.71828183])
    """
    return _poisson(input, target, log_input, full, eps, sample_weight, reduction, n_threads, True, grad_out, False,
                    None)


def poisson_nll_loss_grad_hess(input: ArrayLike, target: ArrayLike, *, log_input: bool = True, full: bool = False,
                               eps: float = 1e-8, sample_weight: ArrayLike | None = None, reduction: str = "mean",
                               n_threads: int | None = None, grad_out: Array | None = None,
                               hess_out: Array | None = None) -> LossGradHess:
    """(poisson_nll_loss(...), d loss / d input, d^2 loss / d input^2) from one pass: hess = exp(x) sw
    (log_input) or y / (x + eps)^2 sw; grad_out / hess_out as mse_loss_grad_hess.

    Equivalent: XGBoost's ``count:poisson`` has this grad and hess (before its max_delta_step).

    >>> fl.poisson_nll_loss_grad_hess(np.array([0.0, 1.0]), np.array([1.0, 2.0]), reduction="sum")[2]
    array([1.        , 2.71828183])
    """
    return _poisson(input, target, log_input, full, eps, sample_weight, reduction, n_threads, True, grad_out, True,
                    hess_out)


def _gaussian_var(var: ArrayLike) -> PairCheck:
    """The check of gaussian_nll_loss: var as the flat third input, broadcast as torch allows."""
    def check(x_flat: Array, y_flat: Array, shape: tuple[int, ...], y_given: Array) -> Array:
        v = ck.as_array(var, "var")
        if v.shape != shape:
            if v.shape == shape[:-1]:  # one per row of the last axis (homoscedastic along it)
                v = v[..., None]
            elif v.ndim != 0 and (v.ndim != len(shape)
                                  or sum(b for a, b in zip(shape, v.shape) if a != b) != 1):
                raise ValueError(f"var has shape {v.shape}, which does not fit input shape {shape}: var must "
                                 f"have that shape, or it with one axis of length 1, or it without its last axis")
        v = ck.as_float(v, "var", x_flat.dtype)
        # a negative entry is found by the kernel in its pass (_var_error); nan is not negative: it gives a nan
        # loss (as torch)
        return np.ascontiguousarray(np.broadcast_to(v, shape)).reshape(-1)
    return check


def _var_error(var_shape: tuple[int, ...]) -> BadValue:
    """The ValueError of gaussian_nll_loss's first negative variance (position in the input's shape)."""
    def error(y_given: Array, shape: tuple[int, ...], pos: int, value: float) -> Exception:
        where = ck._position("var", pos, shape) + ("" if var_shape == shape else " (var broadcast to input's shape)")
        return ValueError(f"var has a negative entry: {where} = {value!r}; variances must be >= 0")
    return error


def _gaussian(input: ArrayLike, target: ArrayLike, var: ArrayLike, full: bool, eps: float,
              sample_weight: ArrayLike | None, reduction: str, n_threads: int | None, grad: bool,
              grad_out: Array | None, hess: bool, hess_out: Array | None) -> Any:
    eps = ck.finite_option(eps, "eps", 0.0)
    x, v = ck.as_array(input, "input"), ck.as_array(var, "var")
    if ck.is_half(x.dtype) and v.dtype != x.dtype:
        # the kernel reads var in x's dtype: a float32 or float64 var (a Python float) is not rounded to a half
        # type, x is read as float32 instead (one copy), as a target of another dtype does (_checks.pair_arrays)
        x = x.astype(np.float32)
    return _pair_loss("gaussian_nll", x, target, sample_weight, eps, int(bool(full)), reduction, n_threads,
                      grad, grad_out, _NAMES, hess, hess_out, check=_gaussian_var(v), bad_value=_var_error(v.shape))


def gaussian_nll_loss(input: ArrayLike, target: ArrayLike, var: ArrayLike, *, full: bool = False, eps: float = 1e-6,
                      sample_weight: ArrayLike | None = None, reduction: str = "mean",
                      n_threads: int | None = None) -> Loss:
    """torch's Gaussian negative log-likelihood per element, with v = max(var, eps):

        0.5 * (log(v) + (input - target)^2 / v)      (+ 0.5 log(2 pi) with full=True)

    input, target: the same shape. var: that shape, or (as torch) that shape with one axis of length 1, or that
    shape without its last axis (one variance per row), or a scalar; a negative entry is a ValueError (nan gives
    nan). eps: finite and >= 0. Shapes, dtypes, weights and reductions as mse_loss.

    Equivalent: ``torch.nn.functional.gaussian_nll_loss(input, target, var, full=full, eps=eps,
    reduction=reduction)``.

    >>> fl.gaussian_nll_loss(np.array([0.0, 1.0]), np.array([0.0, 0.0]), np.array([1.0, 4.0]), reduction="none")
    array([0.        , 0.81814718])
    """
    return _gaussian(input, target, var, full, eps, sample_weight, reduction, n_threads, False, None, False, None)


def gaussian_nll_loss_and_grad(input: ArrayLike, target: ArrayLike, var: ArrayLike, *, full: bool = False,
                               eps: float = 1e-6, sample_weight: ArrayLike | None = None, reduction: str = "mean",
                               n_threads: int | None = None, grad_out: Array | None = None) -> LossAndGrad:
    """(gaussian_nll_loss(...), d loss / d input) from one pass: grad = (input - target) / v * sw (divided by the
    sum of sample weights for "mean"); grad_out as mse_loss_and_grad. (No gradient for var.)

    Equivalent: ``torch.autograd.grad(F.gaussian_nll_loss(x, t, var), x)``.

    >>> fl.gaussian_nll_loss_and_grad(np.array([1.0]), np.array([0.0]), np.array([4.0]), reduction="sum")[1]
    array([0.25])
    """
    return _gaussian(input, target, var, full, eps, sample_weight, reduction, n_threads, True, grad_out, False, None)


def gaussian_nll_loss_grad_hess(input: ArrayLike, target: ArrayLike, var: ArrayLike, *, full: bool = False,
                                eps: float = 1e-6, sample_weight: ArrayLike | None = None, reduction: str = "mean",
                                n_threads: int | None = None, grad_out: Array | None = None,
                                hess_out: Array | None = None) -> LossGradHess:
    """(gaussian_nll_loss(...), d loss / d input, d^2 loss / d input^2) from one pass: hess = sw / v;
    grad_out / hess_out as mse_loss_grad_hess.

    >>> fl.gaussian_nll_loss_grad_hess(np.array([1.0]), np.array([0.0]), np.array([4.0]), reduction="sum")[2]
    array([0.25])
    """
    return _gaussian(input, target, var, full, eps, sample_weight, reduction, n_threads, True, grad_out, True,
                     hess_out)


def _tweedie_error(power: float) -> BadValue:
    """The ValueError of tweedie_loss's first y out of range, which the kernel finds in its pass: y >= 0, and
    y > 0 for power 2 (the Gamma deviance has log y); nan is out of range too."""
    def error(y_given: Array, shape: tuple[int, ...], pos: int, value: float) -> Exception:
        need = "> 0 for power 2 (Gamma)" if power == 2.0 else ">= 0"
        return ValueError(f"{ck._position('y', pos, shape)} = {value!r} is out of range: y must be {need}")
    return error


def _tweedie(raw: ArrayLike, y: ArrayLike, power: float, sample_weight: ArrayLike | None, reduction: str,
             n_threads: int | None, grad: bool, grad_out: Array | None, hess: bool, hess_out: Array | None) -> Any:
    power = ck.finite_option(power, "power", 1.0, 2.0)
    flag = K.TWEEDIE_FLAGS.get(power, 0)  # power 1 and 2: their own forms (FL_TWEEDIE_GENERAL otherwise)
    return _pair_loss("tweedie", raw, y, sample_weight, power, flag, reduction, n_threads, grad, grad_out,
                      ("raw", "y"), hess, hess_out, bad_value=_tweedie_error(power))


def tweedie_loss(raw: ArrayLike, y: ArrayLike, *, power: float = 1.5, sample_weight: ArrayLike | None = None,
                 reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """Half the Tweedie deviance with a log link, of raw predictions (log of the mean) and targets y, constant
    terms dropped, as scikit-learn's HalfTweedieLoss:

        power = 1 (Poisson):   exp(raw) - y raw
        1 < power < 2:         exp((2 - p) raw) / (2 - p) - y exp((1 - p) raw) / (1 - p)
        power = 2 (Gamma):     raw + y exp(-raw)

    power: in [1, 2] (ValueError otherwise); y >= 0, and y > 0 for power 2 (ValueError naming the first bad
    position and value). Shapes, dtypes, weights and reductions as mse_loss.

    Equivalent: ``sklearn._loss.HalfTweedieLoss(power=p).loss(y, raw)`` (``HalfPoissonLoss`` for 1,
    ``HalfGammaLoss`` for 2) with the reduction; XGBoost's ``reg:tweedie`` (tweedie_variance_power=p).

    >>> fl.tweedie_loss(np.array([0.0, 1.0]), np.array([1.0, 2.0]), power=1.5, reduction="none")
    array([6.        , 4.88539349])
    """
    return _tweedie(raw, y, power, sample_weight, reduction, n_threads, False, None, False, None)


def tweedie_loss_and_grad(raw: ArrayLike, y: ArrayLike, *, power: float = 1.5, sample_weight: ArrayLike | None = None,
                          reduction: str = "mean", n_threads: int | None = None,
                          grad_out: Array | None = None) -> LossAndGrad:
    """(tweedie_loss(...), d loss / d raw) from one pass: grad = exp((2 - p) raw) - y exp((1 - p) raw), times sw
    (divided by the sum of sample weights for "mean"); grad_out as mse_loss_and_grad.

    Equivalent: ``sklearn._loss.HalfTweedieLoss(power=p).gradient(y, raw)``.

    >>> fl.tweedie_loss_and_grad(np.array([0.0, 1.0]), np.array([1.0, 2.0]), reduction="sum")[1]
    array([0.        , 0.43656366])
    """
    return _tweedie(raw, y, power, sample_weight, reduction, n_threads, True, grad_out, False, None)


def tweedie_loss_grad_hess(raw: ArrayLike, y: ArrayLike, *, power: float = 1.5,
                           sample_weight: ArrayLike | None = None, reduction: str = "mean",
                           n_threads: int | None = None, grad_out: Array | None = None,
                           hess_out: Array | None = None) -> LossGradHess:
    """(tweedie_loss(...), d loss / d raw, d^2 loss / d raw^2) from one pass: hess = ((2 - p) exp((2 - p) raw)
    - (1 - p) y exp((1 - p) raw)) sw (> 0 for y >= 0); grad_out / hess_out as mse_loss_grad_hess.

    Equivalent: ``sklearn._loss.HalfTweedieLoss(power=p).gradient_hessian(y, raw)``; XGBoost's ``reg:tweedie``.

    >>> fl.tweedie_loss_grad_hess(np.array([0.0, 1.0]), np.array([1.0, 2.0]), reduction="sum")[2]
    array([1.        , 1.26424112])
    """
    return _tweedie(raw, y, power, sample_weight, reduction, n_threads, True, grad_out, True, hess_out)
