"""The margin losses: binary (zero-one, logistic, exponential, hinge) on scores and labels y in {-1, +1}, with
margin m = y * score, and multiclass (multiclass hinge, top-1 zero-one) on (..., C) scores with integer targets.
Each loss but zero_one_loss has NAME_and_grad, the loss and its gradient from the same pass."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike

from . import _checks as ck
from . import _kernels as K
from ._typing import Array, Loss, LossAndGrad, LossGradHess

__all__ = ["zero_one_loss", "logistic_loss", "logistic_loss_and_grad", "exponential_loss",
           "exponential_loss_and_grad", "hinge_loss", "hinge_loss_and_grad", "multiclass_hinge_loss",
           "multiclass_hinge_loss_and_grad"]
__all__ += ["logistic_loss_grad_hess", "exponential_loss_grad_hess", "sigmoid_focal_loss",
            "sigmoid_focal_loss_and_grad", "sigmoid_focal_loss_grad_hess"]

HINGE_KINDS = ("crammer_singer", "weston_watkins")
_LABEL_OPS = ("zero_one", "logistic", "exponential", "hinge")  # pair kernels whose y must be -1 or +1


#: checks of the converted inputs before the kernel runs (x_flat, y_flat, shape, y as given), returning the third
#: input of the kernel (gaussian_nll's var, flat, x_flat's dtype) or None; raises ValueError on bad values
PairCheck = Callable[[Array, Array, "tuple[int, ...]", Array], "Array | None"]
#: the ValueError of an element the kernel's own check (C: FL_CHECK_*) rejects: (y as given, shape, flat position,
#: the value checked); binary labels' (ck.label_error) by default
BadValue = Callable[[Array, "tuple[int, ...]", int, float], Exception]


def _pair_loss(op: str, x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None, param: float, flag: int,
               reduction: str, n_threads: int | None, want_grad: bool, grad_out: Array | None,
               names: tuple[str, str], want_hess: bool = False, hess_out: Array | None = None,
               param2: float = 0.0, check: PairCheck | None = None, bad_value: BadValue | None = None) -> Any:
    """An element-wise loss of two same-shape arrays (the binary margin losses and the regression losses):
    one pass of the pair kernel `op`. Returns the loss, (loss, grad) when want_grad, (loss, grad, hess) when
    want_hess (which implies want_grad)."""
    reduction = ck.reduction_code(reduction)
    x_flat, y_flat, shape, dtype, y_given = ck.pair_arrays(x, y, *names, labels=op in _LABEL_OPS)
    v = check(x_flat, y_flat, shape, y_given) if check is not None else None
    dtype = ck.result_dtype(dtype)  # of the outputs; also the compute dtype
    param = float(dtype.type(param))  # margin, delta...: in the compute dtype, as torch computes them
    param2 = float(dtype.type(param2))
    sw = ck.sample_weights(sample_weight, shape)
    nt = ck.n_threads(n_threads)
    want_grad = want_grad or want_hess
    grad = ck.output_buffer(grad_out, shape, dtype, "grad_out") if want_grad else None
    hess = ck.output_buffer(hess_out, shape, dtype, "hess_out") if want_hess else None
    if hess is not None and np.may_share_memory(grad, hess):
        raise ValueError("grad_out and hess_out must be two arrays that do not overlap")
    rows = np.empty(shape, dtype) if reduction == "none" else None
    # check_first: an output goes to the caller's buffer, so labels are checked before anything is written
    status, total, pos, value = K.pair_loss(
        K.PAIR_OPS[op], x_flat, y_flat, sw, param, flag, grad_out is not None or hess_out is not None,
        K.REDUCTIONS[reduction], None if rows is None else rows.reshape(-1),
        None if grad is None else grad.reshape(-1), nt, None if hess is None else hess.reshape(-1), v, param2)
    if status == K.STATUS_LABEL:  # an element outside the domain the kernel checks (binary labels by default)
        raise bad_value(y_given, shape, pos, value) if bad_value else ck.label_error(y_given, shape, pos, names[1])
    if status != K.STATUS_OK:
        raise ck.kernel_error(status, K.STATUS_NOMEM)
    loss = rows if rows is not None else ck.scalar_result(total, dtype)
    if want_hess:
        return loss, grad, hess
    return (loss, grad) if want_grad else loss


def _multiclass_loss(op: str, scores: ArrayLike, target: ArrayLike, kind: str, margin: float, p: int,
                     weight: ArrayLike | None, sample_weight: ArrayLike | None, reduction: str, n_threads: int | None,
                     want_grad: bool, grad_out: Array | None) -> Any:
    """A loss over rows of (..., C) scores with integer targets (...): one pass of the multiclass kernel."""
    reduction = ck.reduction_code(reduction)
    a, n_classes, lead = ck.class_scores(scores)
    kind = ck.choice_option(kind, "kind", HINGE_KINDS)
    p = ck.choice_option(p, "p", (1, 2))
    rdt = ck.result_dtype(a.dtype)  # of the outputs; also the compute dtype
    margin = float(rdt.type(ck.finite_option(margin, "margin")))  # in the compute dtype, as torch
    t = ck.as_array(target, "target")
    idx = ck.class_indices(t, lead)
    w = ck.class_weight(weight, n_classes)
    sw = ck.sample_weights(sample_weight, lead)
    nt = ck.n_threads(n_threads)
    zeroed = False
    grad: Array | None
    if want_grad and grad_out is None and kind == "crammer_singer":  # two nonzeros a row: the rest the OS's zeros
        grad, zeroed = ck.new_zeroed_output(a.shape, rdt, 2)
    else:
        grad = ck.output_buffer(grad_out, a.shape, rdt, "grad_out") if want_grad else None
    mat = ck.rows_view(a)
    rows = np.empty(mat.shape[0], rdt) if reduction == "none" else None
    status, total, pos, _ = K.multiclass_loss(
        K.MULTICLASS_OPS[op], mat, idx, w, sw, margin, K.HINGE_KINDS[kind], p, K.REDUCTIONS[reduction], rows,
        None if grad is None else grad.reshape(-1), nt, zeroed)
    if status == K.STATUS_INDEX:
        raise ck.target_index_error(t, lead, pos, n_classes)
    if status != K.STATUS_OK:
        raise ck.kernel_error(status, K.STATUS_NOMEM)
    loss = rows.reshape(lead) if rows is not None else ck.scalar_result(total, rdt)
    return (loss, grad) if want_grad else loss


def zero_one_loss(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None, reduction: str = "mean",
                  n_threads: int | None = None) -> Loss:
    """The zero-one loss: 1 where the prediction is wrong, else 0.

    Binary: scores and labels y in {-1, +1} of the same shape; the prediction is +1 where score > 0, else -1
    (a nan score predicts -1). Multiclass: scores of shape (..., C) and integer targets of shape (...); the
    prediction is the argmax of the row, the first maximum on ties (NumPy's argmax: the first nan if any).
    sample_weight: the per-sample loss shape. "mean" divides by the sum of sample weights (the count without).
    Returns the per-sample losses (reduction="none") or a NumPy scalar, in the scores' compute dtype
    (float32 for float16/bfloat16/float32, float64 otherwise). A label outside {-1, +1} raises ValueError, a target
    outside [0, C) IndexError, each naming the first offending position and value. No gradient (it is 0).

    Equivalent: ``sklearn.metrics.zero_one_loss(y, np.where(scores > 0, 1, -1), sample_weight=sw)`` (binary),
    ``sklearn.metrics.zero_one_loss(target, scores.argmax(-1))`` (multiclass); "sum" is ``normalize=False``.

    >>> fl.zero_one_loss(np.array([0.5, -2.0, 0.1]), np.array([1, 1, -1]))
    np.float64(0.6666666666666666)
    >>> fl.zero_one_loss(np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]]), np.array([1, 1]))
    np.float64(0.5)
    """
    s = ck.as_array(scores, "scores")
    t = ck.as_array(y, "y")
    if s.shape == t.shape:
        return _pair_loss("zero_one", s, t, sample_weight, 0.0, 0, reduction, n_threads, False, None,
                          ("scores", "y"))
    if s.ndim >= 1 and t.shape == s.shape[:-1] and t.dtype.kind in "iu":
        return _multiclass_loss("zero_one", s, t, "crammer_singer", 0.0, 1, None, sample_weight, reduction,
                                n_threads, False, None)
    raise ValueError(f"scores has shape {s.shape} and y has shape {t.shape}: y must have the scores' shape "
                     f"(binary labels) or, with an integer dtype, their shape without the last axis (class indices)")


def logistic_loss(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None, reduction: str = "mean",
                  n_threads: int | None = None) -> Loss:
    """The logistic loss log(1 + exp(-m)), m = y * score, y in {-1, +1}, computed as
    max(-m, 0) + log1p(exp(-|m|)): finite and accurate for every m (m = 0: log 2; m = -1e4: 1e4; m = 1e4:
    exp(-1e4) = 0 without overflow; m = 40: 4.25e-18 to full relative accuracy).

    scores, y: the same shape (any). sample_weight: that shape (or broadcastable). "mean" divides by the sum of
    sample weights (the count without). Returns per-element losses (reduction="none") or a NumPy scalar, in the
    scores' compute dtype; y is converted to it. A y outside {-1, +1} raises ValueError naming its position.

    Equivalent: ``torch.nn.functional.soft_margin_loss(scores, y, reduction=...)``;
    ``sklearn.metrics.log_loss(y, scipy.special.expit(scores))`` for the mean.

    >>> fl.logistic_loss(np.array([0.0, 2.0, -1e4]), np.array([1, 1, 1]), reduction="none")
    array([6.93147181e-01, 1.26928011e-01, 1.00000000e+04])
    """
    return _pair_loss("logistic", scores, y, sample_weight, 0.0, 0, reduction, n_threads, False, None,
                      ("scores", "y"))


def logistic_loss_and_grad(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                           reduction: str = "mean", n_threads: int | None = None,
                           grad_out: Array | None = None) -> LossAndGrad:
    """(logistic_loss(...), d loss / d scores) from the same pass: grad = -y * sigmoid(-m) * sw (divided by the
    sum of sample weights for "mean"). grad has the scores' shape and compute dtype; it is written into
    grad_out when given (writable, C-contiguous, that shape and dtype; untouched on error, partly written if a
    Ctrl-C interrupts the call).

    Equivalent: ``torch.autograd.grad(F.soft_margin_loss(s, y), s)``.

    >>> fl.logistic_loss_and_grad(np.array([0.0, 2.0]), np.array([1, -1]), reduction="sum")
    (np.float64(2.820075191602918), array([-0.5       ,  0.88079708]))
    """
    return _pair_loss("logistic", scores, y, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out,
                      ("scores", "y"))


def logistic_loss_grad_hess(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                            reduction: str = "mean", n_threads: int | None = None, grad_out: Array | None = None,
                            hess_out: Array | None = None) -> LossGradHess:
    """(logistic_loss(...), d loss / d scores, d^2 loss / d scores^2) from one pass: grad as
    logistic_loss_and_grad, hess = sigmoid(m) * sigmoid(-m) * sw = e / (1 + e)^2 * sw with e = exp(-|m|)
    (accurate for every m; divided by the sum of sample weights for "mean"): the diagonal of the Hessian, for
    Newton steps and boosting. grad and hess have the scores' shape and compute dtype, written into grad_out /
    hess_out when given (two separate writable C-contiguous arrays of that shape and dtype; untouched on error).

    Equivalent: ``torch.func.hessian`` of ``F.soft_margin_loss`` (its diagonal); XGBoost's ``binary:logistic``
    with labels (y + 1) / 2 has the same grad and hess.

    >>> fl.logistic_loss_grad_hess(np.array([0.0, 2.0]), np.array([1, -1]), reduction="sum")[2]
    array([0.25      , 0.10499359])
    """
    return _pair_loss("logistic", scores, y, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out,
                      ("scores", "y"), True, hess_out)


def exponential_loss(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                     reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """The exponential loss exp(-m), m = y * score, y in {-1, +1} (AdaBoost's loss; overflows to inf for
    m < -709 in float64, m < -88 in float32 results).

    Shapes, dtypes, weights, reductions and errors as logistic_loss.
    Equivalent: ``np.exp(-y * scores)`` with the reduction; scikit-learn's ``ExponentialLoss`` (boosting).

    >>> fl.exponential_loss(np.array([0.0, 1.0]), np.array([1, -1]), reduction="none")
    array([1.        , 2.71828183])
    """
    return _pair_loss("exponential", scores, y, sample_weight, 0.0, 0, reduction, n_threads, False, None,
                      ("scores", "y"))


def exponential_loss_and_grad(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                              reduction: str = "mean", n_threads: int | None = None,
                              grad_out: Array | None = None) -> LossAndGrad:
    """(exponential_loss(...), d loss / d scores) from the same pass: grad = -y * exp(-m) * sw (divided by the
    sum of sample weights for "mean"); grad_out as logistic_loss_and_grad.

    >>> fl.exponential_loss_and_grad(np.array([0.0, 1.0]), np.array([1, -1]), reduction="sum")
    (np.float64(3.718281828459045), array([-1.        ,  2.71828183]))
    """
    return _pair_loss("exponential", scores, y, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out,
                      ("scores", "y"))


def exponential_loss_grad_hess(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                               reduction: str = "mean", n_threads: int | None = None, grad_out: Array | None = None,
                               hess_out: Array | None = None) -> LossGradHess:
    """(exponential_loss(...), d loss / d scores, d^2 loss / d scores^2) from one pass: hess = exp(-m) * sw
    (y^2 = 1; divided by the sum of sample weights for "mean"); grad_out / hess_out as logistic_loss_grad_hess.

    Equivalent: the diagonal of ``torch.func.hessian(lambda s: torch.exp(-y * s).sum())(s)``.

    >>> fl.exponential_loss_grad_hess(np.array([0.0, 1.0]), np.array([1, -1]), reduction="sum")[2]
    array([1.        , 2.71828183])
    """
    return _pair_loss("exponential", scores, y, sample_weight, 0.0, 0, reduction, n_threads, True, grad_out,
                      ("scores", "y"), True, hess_out)


def hinge_loss(scores: ArrayLike, y: ArrayLike, *, margin: float = 1.0, squared: bool = False,
               sample_weight: ArrayLike | None = None, reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """The hinge loss max(0, margin - m), m = y * score, y in {-1, +1}; squared=True gives its square.

    margin: a finite number. A nan score gives a nan loss (as torch's relu). Shapes, dtypes, weights,
    reductions and errors as logistic_loss.

    Equivalent: ``torch.relu(margin - y * scores)`` (``** 2`` if squared) with the reduction;
    ``sklearn.metrics.hinge_loss(y, scores)`` for the mean with margin=1.

    >>> fl.hinge_loss(np.array([0.3, 2.0, -0.5]), np.array([1, 1, 1]), reduction="none")
    array([0.7, 0. , 1.5])
    """
    margin = ck.finite_option(margin, "margin")
    return _pair_loss("hinge", scores, y, sample_weight, margin, bool(squared), reduction, n_threads, False, None,
                      ("scores", "y"))


def hinge_loss_and_grad(scores: ArrayLike, y: ArrayLike, *, margin: float = 1.0, squared: bool = False,
                        sample_weight: ArrayLike | None = None, reduction: str = "mean", n_threads: int | None = None,
                        grad_out: Array | None = None) -> LossAndGrad:
    """(hinge_loss(...), d loss / d scores) from the same pass: with z = margin - m, grad = -y * sw (squared:
    -2 y z sw) where z > 0, and 0 where z <= 0, the kink z = 0 included (torch's subgradient of relu);
    divided by the sum of sample weights for "mean". grad_out as logistic_loss_and_grad.

    Equivalent: ``torch.autograd.grad(torch.relu(margin - y * s).sum(), s)``.

    >>> fl.hinge_loss_and_grad(np.array([0.3, 1.0]), np.array([1, 1]), reduction="sum")
    (np.float64(0.7), array([-1.,  0.]))
    """
    margin = ck.finite_option(margin, "margin")
    return _pair_loss("hinge", scores, y, sample_weight, margin, bool(squared), reduction, n_threads, True,
                      grad_out, ("scores", "y"))


def multiclass_hinge_loss(scores: ArrayLike, target: ArrayLike, *, kind: str = "crammer_singer", margin: float = 1.0,
                          p: int = 1, weight: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                          reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """The multiclass hinge loss of (..., C) scores s and integer targets t (...):

        crammer_singer:  w_t * max(0, margin - s_t + max_{j != t} s_j)
        weston_watkins:  w_t * sum_{j != t} max(0, margin - s_t + s_j) ** p / C          (p in {1, 2})

    w = weight (C,) per class (1 if None); sample_weight (...) multiplies each sample's loss.
    "mean": crammer_singer divides by sum_i sw_i * w_{t_i} (the API's rule: the effective weights);
    weston_watkins divides by sum_i sw_i, i.e. by the number of samples without sample weights, whatever the
    class weights, exactly as torch's multi_margin_loss. One class: crammer_singer gives 0 (no rival).
    A nan score: crammer_singer gives nan; weston_watkins, as torch, counts only terms with z > 0 (nan ones not).
    A target outside [0, C) raises IndexError naming its position and value; an unknown kind, p not 1 or 2, or a
    non-finite margin raise ValueError. Returns (...) losses or a NumPy scalar in the scores' compute dtype.

    Equivalent: crammer_singer with margin=1 is ``sklearn.metrics.hinge_loss(t, s, labels=range(C),
    sample_weight=sw)`` (C >= 3); weston_watkins is ``torch.nn.functional.multi_margin_loss(s, t, p=p,
    margin=margin, weight=weight, reduction=...)``.

    >>> s = np.array([[0.2, 0.9, 0.4], [1.5, 0.1, -0.3]])
    >>> fl.multiclass_hinge_loss(s, np.array([0, 0]), reduction="none")
    array([1.7, 0. ])
    >>> fl.multiclass_hinge_loss(s, np.array([0, 0]), kind="weston_watkins", reduction="none")
    array([0.96666667, 0.        ])
    """
    return _multiclass_loss("multiclass_hinge", scores, target, kind, margin, p, weight, sample_weight, reduction,
                            n_threads, False, None)


def multiclass_hinge_loss_and_grad(scores: ArrayLike, target: ArrayLike, *, kind: str = "crammer_singer",
                                   margin: float = 1.0, p: int = 1, weight: ArrayLike | None = None,
                                   sample_weight: ArrayLike | None = None, reduction: str = "mean",
                                   n_threads: int | None = None, grad_out: Array | None = None) -> LossAndGrad:
    """(multiclass_hinge_loss(...), d loss / d scores) from the same pass. Where a hinge term z > 0 is active
    its rival's score gets +w_t (weston_watkins: +w_t p z^(p-1) / C) and the target's score minus the same;
    inactive terms and the kink z = 0 give 0, as torch's multi_margin_loss backward. crammer_singer's rival is
    the first largest non-target score. Times sw_i, divided by the mean's divisor for "mean". grad has the
    scores' shape and compute dtype; written into grad_out when given (untouched on error, partly written if a
    Ctrl-C interrupts the call).

    Equivalent: ``torch.autograd.grad(F.multi_margin_loss(s, t, ...), s)`` for weston_watkins.

    >>> s = np.array([[0.2, 0.9, 0.4]])
    >>> fl.multiclass_hinge_loss_and_grad(s, np.array([0]), reduction="sum")[1]
    array([[-1.,  1.,  0.]])
    """
    return _multiclass_loss("multiclass_hinge", scores, target, kind, margin, p, weight, sample_weight, reduction,
                            n_threads, True, grad_out)


# ---- sigmoid focal loss (torchvision) -----------------------------------------------------------------------

def _focal(logits: ArrayLike, target: ArrayLike, alpha: float, gamma: float, sample_weight: ArrayLike | None,
           reduction: str, n_threads: int | None, want_grad: bool, grad_out: Array | None, want_hess: bool,
           hess_out: Array | None) -> Any:
    alpha = ck.finite_option(alpha, "alpha")
    gamma = ck.finite_option(gamma, "gamma", 0.0)
    flag = K.FOCAL_FLAGS.get(gamma, 0)  # gamma 0, 1, 2: exact powers (FL_FOCAL_GENERAL otherwise)
    return _pair_loss("sigmoid_focal", logits, target, sample_weight, alpha, flag, reduction, n_threads, want_grad,
                      grad_out, ("logits", "target"), want_hess, hess_out, gamma)


def sigmoid_focal_loss(logits: ArrayLike, target: ArrayLike, *, alpha: float = 0.25, gamma: float = 2.0,
                       sample_weight: ArrayLike | None = None, reduction: str = "mean",
                       n_threads: int | None = None) -> Loss:
    """The focal loss of RetinaNet on raw logits x and targets y in [0, 1], torchvision's semantics:

        loss = a_t * (1 - p_t) ** gamma * bce_with_logits(x, y),   p = sigmoid(x),
        p_t = p * y + (1 - p) * (1 - y),   a_t = alpha * y + (1 - alpha) * (1 - y)   (a_t = 1 if alpha < 0)

    computed stably for any finite logit (no log(0), no 0 * inf: x = 1e4 with y = 1 gives 0, with y = 0 gives
    (1 - alpha) * 1e4). logits, target: the same shape (any; targets are not checked, as torchvision).
    alpha: finite (< 0 disables the weighting); gamma: finite and >= 0 (ValueError otherwise). sample_weight:
    broadcastable to that shape; "mean" divides by its sum (the number of elements without; torchvision's
    default reduction is "none", fastloss's "mean" as everywhere). Returns losses or a NumPy scalar of the
    logits' compute dtype (float32 for float16/bfloat16/float32).

    Equivalent: ``torchvision.ops.sigmoid_focal_loss(x, y, alpha, gamma, reduction=reduction)``.

    >>> fl.sigmoid_focal_loss(np.array([2.0, -1.0, 0.0]), np.array([1.0, 0.0, 1.0]), reduction="none")
    array([0.00045398, 0.0195564 , 0.04332169])
    """
    return _focal(logits, target, alpha, gamma, sample_weight, reduction, n_threads, False, None, False, None)


def sigmoid_focal_loss_and_grad(logits: ArrayLike, target: ArrayLike, *, alpha: float = 0.25, gamma: float = 2.0,
                                sample_weight: ArrayLike | None = None, reduction: str = "mean",
                                n_threads: int | None = None, grad_out: Array | None = None) -> LossAndGrad:
    """(sigmoid_focal_loss(...), d loss / d logits) from one pass. With s = sigmoid(x), q = 1 - p_t,
    c = 1 - 2y and r = s (1 - s) / q (in [0, 1]):

        grad = a_t * q ** gamma * ((s - y) + gamma * c * r * bce_with_logits(x, y)) * sw

    (divided by the sum of sample weights for "mean"). grad has the logits' shape and compute dtype, written
    into grad_out when given (writable, C-contiguous, that shape and dtype).

    Equivalent: ``torch.autograd.grad(torchvision.ops.sigmoid_focal_loss(x, y, alpha, gamma, "sum"), x)``.

    >>> fl.sigmoid_focal_loss_and_grad(np.array([0.0]), np.array([1.0]), reduction="sum")[1]
    array([-0.09246513])
    """
    return _focal(logits, target, alpha, gamma, sample_weight, reduction, n_threads, True, grad_out, False, None)


def sigmoid_focal_loss_grad_hess(logits: ArrayLike, target: ArrayLike, *, alpha: float = 0.25, gamma: float = 2.0,
                                 sample_weight: ArrayLike | None = None, reduction: str = "mean",
                                 n_threads: int | None = None, grad_out: Array | None = None,
                                 hess_out: Array | None = None) -> LossGradHess:
    """(sigmoid_focal_loss(...), its gradient, the diagonal of its Hessian) with respect to the logits, from
    one pass; with ce = bce_with_logits(x, y) and s, q, c, r as in sigmoid_focal_loss_and_grad:

        hess = a_t * q ** gamma * (s (1 - s) + gamma c r (2 (s - y) + ce ((1 - 2 s) + (gamma - 1) c r))) * sw

    finite for any finite logit; not floored (it is negative in places for gamma > 0: the focal loss is not
    convex; the boosting adapters floor it). grad_out / hess_out: two separate writable C-contiguous arrays of
    the logits' shape and compute dtype.

    Equivalent: the diagonal of ``torch.func.hessian`` of torchvision's focal loss summed.

    >>> fl.sigmoid_focal_loss_grad_hess(np.array([0.0]), np.array([1.0]), reduction="sum")[2]
    array([0.09471638])
    """
    return _focal(logits, target, alpha, gamma, sample_weight, reduction, n_threads, True, grad_out, True,
                  hess_out)
