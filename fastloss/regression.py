"""The regression losses (torch semantics): mse_loss, l1_loss, huber_loss on input and target arrays of the same
shape, one loss per element, each with NAME_and_grad (the loss and d loss / d input from the same pass)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import _checks as ck
from .margin import _pair_loss

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._typing import Array, Loss, LossAndGrad

__all__ = ["mse_loss", "mse_loss_and_grad", "l1_loss", "l1_loss_and_grad", "huber_loss", "huber_loss_and_grad"]

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
