"""The numerical primitives (logsumexp, softmax, log_softmax) and the class losses on logits
(cross_entropy, nll_loss), each loss with its gradient from the same pass."""
from __future__ import annotations

from typing import Any, NoReturn

import numpy as np
from numpy.typing import ArrayLike

from . import _checks as ck
from . import _kernels as K
from ._typing import Array, FloatArray, FloatResult, Loss, LossAndGrad, LossGradHess

__all__ = ["logsumexp", "softmax", "log_softmax", "cross_entropy", "cross_entropy_and_grad",
           "cross_entropy_grad_hess", "nll_loss", "nll_loss_and_grad"]

_REDUCTION = K.REDUCTIONS


# ---- primitives -------------------------------------------------------------------------------------------

def _rows_of(x: ArrayLike, axis: int | tuple[int, ...] | None,
             name: str = "x") -> tuple[Array, Array, tuple[int, ...], tuple[int, ...]]:
    """x as the kernels' (N, K) matrix with `axis` (int, tuple or None) folded into the last axis; also the
    float array, the normalised axes and the leading shape."""
    a = ck.as_float(x, name)
    if a.ndim == 0 and axis is None:
        a = a.reshape(1)
    axes = ck.normalize_axes(axis, a.ndim)
    moved, lead = ck.move_axes_last(a, axes)
    return ck.rows_view(moved), a, axes, lead


def logsumexp(x: ArrayLike, axis: int | tuple[int, ...] | None = -1, keepdims: bool = False, *,
              n_threads: int | None = None) -> FloatResult:
    """log(sum(exp(x))) along `axis`, computed stably: m + log(sum(exp(x - m))) with m the maximum.

    x: array (float16, bfloat16, float32, float64, ints). axis: int, tuple of ints, or None (all axes).
    Returns an array of x's shape without `axis` (kept as size 1 with keepdims), or a NumPy scalar, in the
    compute dtype (float32 for float16/bfloat16/float32 input: the half types are read as they are and
    computed in float32). The row is read from memory once; the sum of exps accumulates in float64.
    Edge values as scipy: any nan gives nan, else any +inf gives +inf, all -inf (or no element) gives -inf.

    Equivalent: ``scipy.special.logsumexp(x, axis=axis)``, ``torch.logsumexp(x, dim=axis)``.

    >>> fl.logsumexp(np.array([1.0, 2.0, 3.0]))
    np.float64(3.4076059644443806)
    """
    mat, a, axes, lead = _rows_of(x, axis)
    out = np.empty(mat.shape[0], ck.result_dtype(mat.dtype))
    K.rows(K.OPS["logsumexp"], mat, out, ck.n_threads(n_threads))
    res = out.reshape(lead)
    if keepdims:
        res = res.reshape(tuple(1 if ax in axes else n for ax, n in enumerate(a.shape)))
    return res[()] if res.ndim == 0 else res


def _softmax_like(op: str, x: ArrayLike, axis: int | tuple[int, ...] | None, out: Array | None,
                  n_threads: int | None) -> FloatArray:
    mat, a, axes, lead = _rows_of(x, axis)
    nt = ck.n_threads(n_threads)
    rdt = ck.result_dtype(mat.dtype)
    out = ck.output_buffer(out, a.shape, rdt, "out") if out is not None else None
    in_place_order = axes == (a.ndim - 1,) or a.ndim == len(axes)
    if in_place_order and out is not None:
        K.rows(K.OPS[op], mat, out.reshape(-1), nt)
        return out
    buf = ck.new_output(mat.shape, rdt)
    K.rows(K.OPS[op], mat, buf.reshape(-1), nt)
    res = buf.reshape(a.shape) if in_place_order else _unmove(buf, a.shape, axes)
    if out is not None:
        np.copyto(out, res)
        return out
    return res


def _unmove(buf: Array, shape: tuple[int, ...], axes: tuple[int, ...]) -> Array:
    """Inverse of move_axes_last for a result of the input's shape."""
    rest = [ax for ax in range(len(shape)) if ax not in axes]
    order = rest + list(axes)
    moved = buf.reshape(tuple(shape[ax] for ax in order))
    return np.ascontiguousarray(np.transpose(moved, np.argsort(order)))


def softmax(x: ArrayLike, axis: int | tuple[int, ...] | None = -1, *, out: Array | None = None,
            n_threads: int | None = None) -> FloatArray:
    """softmax(x)_j = exp(x_j - logsumexp(x)) along `axis` (int, tuple, or None for all axes).

    Returns an array of x's shape in the compute dtype (float32 for float16/bfloat16/float32), or writes it into
    `out` (C-contiguous, that shape and dtype; after a Ctrl-C during the call, a KeyboardInterrupt, it may be
    partly written). A row holding +inf or only -inf gives nan, as torch and scipy.

    Equivalent: ``scipy.special.softmax(x, axis=axis)``, ``torch.softmax(x, dim=axis)``.

    >>> fl.softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
    """
    return _softmax_like("softmax", x, axis, out, n_threads)


def log_softmax(x: ArrayLike, axis: int | tuple[int, ...] | None = -1, *, out: Array | None = None,
                n_threads: int | None = None) -> FloatArray:
    """log_softmax(x)_j = x_j - logsumexp(x) along `axis`, the subtraction done in float64 and rounded once.

    Shapes, dtypes, `out` and edge values as softmax.

    Equivalent: ``scipy.special.log_softmax(x, axis=axis)``, ``torch.log_softmax(x, dim=axis)``.

    >>> fl.log_softmax(np.array([1.0, 2.0, 3.0]))
    array([-2.40760596, -1.40760596, -0.40760596])
    """
    return _softmax_like("log_softmax", x, axis, out, n_threads)


# ---- class losses -----------------------------------------------------------------------------------------

# The common call (C-contiguous float32/float64 logits, int64 targets, no weights, no smoothing, default
# threads) is checked and run by K.class_loss_fast in a fraction of a microsecond; it returns None for any
# other call, which then takes _class_loss.
_CE, _NLL = K.OPS["cross_entropy"], K.OPS["nll"]


def _class_loss(kernel: str, logits: ArrayLike, target: ArrayLike, weight: ArrayLike | None,
                sample_weight: ArrayLike | None, ignore_index: int, label_smoothing: float, reduction: str,
                n_threads: int | None, want_grad: bool, grad_out: Array | None, allow_prob: bool,
                name: str = "logits", want_hess: bool = False, hess_out: Array | None = None) -> Any:
    a = ck.as_array(logits, name)
    if allow_prob and ck.is_half(a.dtype) and getattr(target, "shape", None) == a.shape:
        # probability targets are read in the logits' dtype: a half type only if they have it too
        a = ck.as_float(a, name, ck.half_partner_dtype(a.dtype, ck.as_array(target, "target").dtype))
    a = ck.as_float(a, name)
    shape = a.shape
    if not shape:
        raise ValueError(f"{name} must have at least one dimension (the class axis), got a 0-d array")
    n_classes = shape[-1]
    if n_classes == 0:
        raise ValueError(f"{name} has no classes: its last axis has length 0")
    lead = shape[:-1]
    reduction = ck.reduction_code(reduction)
    ignore_index = ck.integer_option(ignore_index, "ignore_index")
    label_smoothing = ck.finite_option(label_smoothing, "label_smoothing", 0.0, 1.0)
    idx, prob = ck.class_target(target, shape, ignore_index, allow_prob)
    if prob is not None:
        prob = ck.rows_view(ck.as_float(prob, "target", a.dtype))
        kernel = "cross_entropy_prob"
    w = ck.class_weight(weight, n_classes)
    sw = ck.sample_weights(sample_weight, lead)
    nt = ck.n_threads(n_threads)
    rdt = ck.result_dtype(a.dtype)
    # a half grad_out of the logits' own dtype is written in it (not with a Hessian: both are float32 there)
    gdt = ck.grad_dtype(grad_out, a.dtype, allow_half=not want_hess)
    zeroed = False
    grad: Array | None
    if kernel == "nll" and want_grad and grad_out is None:  # one nonzero a row: the rest from the OS's zeroing
        grad, zeroed = ck.new_zeroed_output(shape, gdt)
    else:
        grad = ck.output_buffer(grad_out, shape, gdt, "grad_out") if want_grad else None
    hess = ck.output_buffer(hess_out, shape, rdt, "hess_out") if want_hess else None
    if hess is not None and np.may_share_memory(grad, hess):
        # the kernel keeps each row's exps in the Hessian's row while it writes the gradient's
        raise ValueError("grad_out and hess_out must not overlap")
    mat = ck.rows_view(a)
    rows = np.empty(lead, rdt) if reduction == "none" else None
    status, total, pos, value = K.class_loss(K.OPS[kernel], mat, idx, prob, w, sw, ignore_index, label_smoothing,
                                             _REDUCTION[reduction], rows, grad, nt, hess, zeroed)
    if status:
        _raise(status, target, lead, n_classes, pos, value)
    loss = rows if rows is not None else ck.scalar_result(total, rdt)
    if want_hess:
        return loss, grad, hess
    return (loss, grad) if want_grad else loss


def _raise(status: int, target: Any, lead: tuple[int, ...], n_classes: int, pos: int, value: int) -> NoReturn:
    target = np.asarray(target)
    if status == K.STATUS_INDEX:
        where = np.unravel_index(pos, lead) if lead else ()
        original = target.reshape(-1)[pos] if target.ndim else target[()]
        where_s = f"target[{', '.join(str(int(i)) for i in where)}]" if where else "target"
        raise IndexError(f"{where_s} = {original} is out of bounds for {n_classes} classes "
                         f"(valid: 0 to {n_classes - 1}, or ignore_index)")
    if status == K.STATUS_NOMEM:
        raise MemoryError("fastloss: a scratch buffer could not be allocated")
    raise RuntimeError(f"fastloss kernel failed with status {status}")


def cross_entropy(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                  sample_weight: ArrayLike | None = None, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """Softmax cross-entropy from raw logits, fused: each logit is read from memory once.

    With L_i = logsumexp(logits[i]) and class weights w (1 if None), for an integer target t_i:
        loss_i = sw_i * [(1 - e) * w[t_i] * (L_i - logits[i, t_i]) + (e / C) * sum_c w[c] * (L_i - logits[i, c])]
    and for probability targets q_i (same shape as logits, floating dtype), q' = (1 - e) q + e / C:
        loss_i = sw_i * sum_c w[c] * q'_ic * (L_i - logits[i, c])
    where e = label_smoothing and sw = sample_weight (1 if None). "mean" divides the sum by
    sum_i sw_i * w[t_i] over the rows not ignored (probability targets: by sum_i sw_i, the number of rows).

    logits: (..., C). target: (...) integer class indices, or (..., C) probabilities. weight: (C,).
    sample_weight: (...). Rows whose target equals ignore_index count for nothing. Returns (...) losses for
    reduction="none", else a NumPy scalar of the compute dtype. A target outside [0, C) raises IndexError.
    Edge results as torch: all rows ignored with "mean" gives nan; a -inf logit at the target gives inf;
    a row of only -inf gives nan.

    Equivalent: ``torch.nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
    label_smoothing=e, reduction=reduction)`` (classes on the last axis here, on axis 1 in torch).

    >>> fl.cross_entropy(np.array([[2.0, 0.5, -1.0]]), np.array([0]))
    np.float64(0.24131129665715703)
    """
    loss = K.class_loss_fast(_CE, logits, target, weight, sample_weight, ignore_index, label_smoothing, reduction,
                             n_threads, False)
    if loss is not None:
        return loss
    return _class_loss("cross_entropy", logits, target, weight, sample_weight, ignore_index, label_smoothing,
                       reduction, n_threads, False, None, True)


def cross_entropy_and_grad(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                           sample_weight: ArrayLike | None = None, ignore_index: int = -100,
                           label_smoothing: float = 0.0, reduction: str = "mean", n_threads: int | None = None,
                           grad_out: Array | None = None) -> LossAndGrad:
    """(cross_entropy(...), d loss / d logits) from the same pass: the gradient row is written while the
    logits row is still in cache. grad has logits' shape and compute dtype (written into grad_out when given:
    C-contiguous, that shape and dtype; partly written if a Ctrl-C interrupts the call). For an integer target
    and no smoothing or weights, per row:
    grad_i = scale_i * (softmax(logits[i]) - onehot(t_i)), scale_i = sw_i (/ the mean's divisor).
    Ignored rows get a zero gradient. float16 / bfloat16 logits: the gradient is float32, or, written into a
    grad_out of the logits' own dtype, that dtype: each value the float32 one rounded to nearest even (what
    ``grad.astype(logits.dtype)`` gives, without the float32 array), in the same pass.

    Equivalent: ``torch.autograd.grad(F.cross_entropy(x, t, ...), x)``.

    >>> x = np.array([[2.0, 0.5, -1.0]], np.float16)
    >>> fl.cross_entropy_and_grad(x, np.array([0]), grad_out=np.empty((1, 3), np.float16))[1]
    array([[-0.2142,  0.1636,  0.0505]], dtype=float16)
    """
    if grad_out is None:
        res = K.class_loss_fast(_CE, logits, target, weight, sample_weight, ignore_index, label_smoothing,
                                reduction, n_threads, True)
        if res is not None:
            return res
    return _class_loss("cross_entropy", logits, target, weight, sample_weight, ignore_index, label_smoothing,
                       reduction, n_threads, True, grad_out, True)


def cross_entropy_grad_hess(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                            sample_weight: ArrayLike | None = None, ignore_index: int = -100,
                            label_smoothing: float = 0.0, reduction: str = "mean", n_threads: int | None = None,
                            grad_out: Array | None = None, hess_out: Array | None = None) -> LossGradHess:
    """(cross_entropy(...), d loss / d logits, d^2 loss / d logits^2 on the diagonal) from the same pass: the
    loss, and the gradient bit for bit, are those of cross_entropy_and_grad; the Hessian's diagonal is

        hess[i, c] = scale_i * A_i * p_ic * (1 - p_ic),   p_i = softmax(logits[i]),

    with A_i the row's total target weight: w[t_i] for an integer target without smoothing,
    (1 - e) * w[t_i] + e * sum(w) / C with label_smoothing e, sum_c w[c] * q'_ic for probability targets
    (q' = (1 - e) q + e / C; 1 for plain probability vectors), and scale_i = sw_i (/ the mean's divisor):
    the factors of the gradient, whose other terms do not depend on the logits. Off-diagonal entries
    (-scale_i A_i p_ic p_id) are not returned. Ignored rows get zero gradient and Hessian rows; a row of nan
    (or +inf, or only -inf) logits gives nan in both. 1 - p is formed as the others' sum over s, so a
    confident row's Hessian at its target keeps its digits (p = 1 - 1e-12 gives 1e-12, not 0).

    logits: (..., C), target: (...) class indices or (..., C) probabilities, options as cross_entropy.
    grad and hess have logits' shape and compute dtype (float32 for float16/bfloat16/float32), written into
    grad_out / hess_out when given (C-contiguous, that shape and dtype, not overlapping; partly written if a
    Ctrl-C interrupts the call).

    Boosting: XGBoost's multi:softprob uses 2 * p * (1 - p) and LightGBM's multiclass K / (K - 1) * p * (1 - p)
    (see fastloss.xgboost / fastloss.lightgbm, hess_scale); this function returns the exact diagonal.

    Equivalent: ``torch.autograd.grad(F.cross_entropy(x, t, ...), x)`` for the gradient, and the diagonal of
    ``torch.autograd.functional.hessian(lambda x: F.cross_entropy(x, t, ...), x)`` for hess.

    >>> loss, grad, hess = fl.cross_entropy_grad_hess(np.array([[2.0, 0.5, -1.0]]), np.array([0]))
    >>> hess
    array([[0.16843433, 0.14456367, 0.03758278]])
    """
    return _class_loss("cross_entropy", logits, target, weight, sample_weight, ignore_index, label_smoothing,
                       reduction, n_threads, True, grad_out, True, want_hess=True, hess_out=hess_out)


def nll_loss(log_probs: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
             sample_weight: ArrayLike | None = None, ignore_index: int = -100, reduction: str = "mean",
             n_threads: int | None = None) -> Loss:
    """Negative log-likelihood of log-probabilities: loss_i = -sw_i * w[t_i] * log_probs[i, t_i].

    log_probs: (..., C) (e.g. from log_softmax). target: (...) integer class indices. weight: (C,).
    sample_weight: (...). "mean" divides by sum_i sw_i * w[t_i] over the rows not ignored (nan if none).
    Returns (...) losses for reduction="none", else a NumPy scalar. Out-of-range targets raise IndexError.

    Equivalent: ``torch.nn.functional.nll_loss(log_probs, target, weight=weight, ignore_index=ignore_index,
    reduction=reduction)``.

    >>> fl.nll_loss(np.log(np.array([[0.7, 0.2, 0.1]])), np.array([1]))
    np.float64(1.6094379124341003)
    """
    loss = K.class_loss_fast(_NLL, log_probs, target, weight, sample_weight, ignore_index, 0.0, reduction,
                             n_threads, False)
    if loss is not None:
        return loss
    return _class_loss("nll", log_probs, target, weight, sample_weight, ignore_index, 0.0, reduction,
                       n_threads, False, None, False, "log_probs")


def nll_loss_and_grad(log_probs: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                      sample_weight: ArrayLike | None = None, ignore_index: int = -100, reduction: str = "mean",
                      n_threads: int | None = None, grad_out: Array | None = None) -> LossAndGrad:
    """(nll_loss(...), d loss / d log_probs): -sw_i * w[t_i] (/ the mean's divisor) at the target of each row,
    0 elsewhere. grad has log_probs' shape and compute dtype (written into grad_out when given; partly
    written if a Ctrl-C interrupts the call); for float16 / bfloat16 log_probs a grad_out of their own dtype
    gets it in that dtype (rounded to nearest even from float32, as cross_entropy_and_grad).

    Equivalent: ``torch.autograd.grad(F.nll_loss(x, t, ...), x)``.
    """
    if grad_out is None:
        res = K.class_loss_fast(_NLL, log_probs, target, weight, sample_weight, ignore_index, 0.0, reduction,
                                n_threads, True)
        if res is not None:
            return res
    return _class_loss("nll", log_probs, target, weight, sample_weight, ignore_index, 0.0, reduction,
                       n_threads, True, grad_out, False, "log_probs")


# ---- binary cross-entropy and kl_div ----

__all__ += ["binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_and_grad", "kl_div",
            "kl_div_and_grad"]
__all__ += ["binary_cross_entropy_with_logits_grad_hess", "kl_div_grad_hess"]


def _elementwise(op: str, x: Array, y: Array, weight: Array | None, pos_weight: Array | None, reduction: str,
                 divisor: float, log_target: bool, n_threads: int | None, want_grad: bool,
                 grad_out: Array | None, want_hess: bool = False, hess_out: Array | None = None) -> Any:
    """Runs an element-wise kernel on x and y (already of one float dtype and shape) after the last checks;
    returns the loss, (loss, grad) or, with want_hess, (loss, grad, hess)."""
    nt = ck.n_threads(n_threads)
    rdt = ck.result_dtype(x.dtype)
    grad = ck.output_buffer(grad_out, x.shape, rdt, "grad_out") if want_grad or want_hess else None
    hess = ck.output_buffer(hess_out, x.shape, rdt, "hess_out") if want_hess else None
    if hess is not None and np.may_share_memory(grad, hess):
        raise ValueError("grad_out and hess_out must be two arrays that do not overlap")
    rows = np.empty(x.shape, rdt) if reduction == "none" else None
    status, total = K.elementwise(
        K.ELEM_OPS[op], np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(y).reshape(-1), weight,
        pos_weight, log_target, _REDUCTION["mean" if reduction == "batchmean" else reduction], divisor,
        None if rows is None else rows.reshape(-1), None if grad is None else grad.reshape(-1), nt,
        None if hess is None else hess.reshape(-1))
    if status != K.STATUS_OK:
        raise MemoryError("fastloss: a scratch buffer could not be allocated")
    loss = rows if rows is not None else ck.scalar_result(total, rdt)
    if want_hess:
        return loss, grad, hess
    return (loss, grad) if want_grad else loss


def _bce(logits: ArrayLike, target: ArrayLike, weight: ArrayLike | None, pos_weight: ArrayLike | None,
         sample_weight: ArrayLike | None, reduction: str, n_threads: int | None, want_grad: bool,
         grad_out: Array | None, want_hess: bool = False, hess_out: Array | None = None) -> Any:
    x, y = ck.scores_and_targets(logits, target, "logits", "target")
    reduction = ck.reduction_code(reduction)
    w, divisor = ck.elementwise_weights(weight, sample_weight, x.shape)
    pw, _ = ck.periodic_weights(pos_weight, x.shape, "pos_weight")
    return _elementwise("bce_with_logits", x, y, w, pw, reduction, divisor, False,
                        n_threads, want_grad, grad_out, want_hess, hess_out)


def binary_cross_entropy_with_logits(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                     pos_weight: ArrayLike | None = None, sample_weight: ArrayLike | None = None,
                                     reduction: str = "mean", n_threads: int | None = None) -> Loss:
    """Binary cross-entropy of raw logits x against targets y in [0, 1], computed stably for any |x|:

        loss = -w * sw * [pw * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x))]
             =  w * sw * [(1 - y) * x + (1 + (pw - 1) * y) * (log1p(exp(-|x|)) + max(-x, 0))]

    logits, target: the same shape (any). weight (w, torch's rescaling weight), pos_weight (pw, the weight of
    positives, e.g. (C,) over the last axis) and sample_weight (sw) broadcast to logits' shape; 1 if None.
    "none" returns the per-element losses (logits' shape, compute dtype); "sum" their sum; "mean" divides the
    sum by the sum of sample_weight broadcast to logits' shape, which without sample_weight is the number of
    elements: torch's mean, where `weight` rescales the losses but does not enter the divisor. Targets are not
    checked (as torch). float16 and bfloat16 are read as they are and computed in float32, integers as
    float64; sums accumulate in float64.
    Edge values as torch: x = 1e4, y = 0 gives 1e4 exactly; x = +inf with y = 1, and x = -inf, give nan.

    Equivalent: ``torch.nn.functional.binary_cross_entropy_with_logits(x, y, weight=w * sw, pos_weight=pw,
    reduction=reduction)`` without sample_weight (or with reduction "none" / "sum").

    >>> fl.binary_cross_entropy_with_logits(np.array([2.0, -1.0, 0.0]), np.array([1.0, 0.0, 1.0]))
    np.float64(0.3777789597070469)
    """
    return _bce(logits, target, weight, pos_weight, sample_weight, reduction, n_threads, False, None)


def binary_cross_entropy_with_logits_and_grad(logits: ArrayLike, target: ArrayLike, *, weight: ArrayLike | None = None,
                                              pos_weight: ArrayLike | None = None,
                                              sample_weight: ArrayLike | None = None, reduction: str = "mean",
                                              n_threads: int | None = None,
                                              grad_out: Array | None = None) -> LossAndGrad:
    """(binary_cross_entropy_with_logits(...), d loss / d logits) from one pass over the data:

        grad = w * sw * ((1 + (pw - 1) * y) * sigmoid(x) - pw * y)   (/ the mean's divisor for "mean")

    grad has logits' shape and compute dtype, written into grad_out when given (C-contiguous, that shape and
    dtype; partly written if a Ctrl-C interrupts the call).
    Equivalent: ``torch.autograd.grad(F.binary_cross_entropy_with_logits(x, y, ...), x)``.

    >>> loss, grad = fl.binary_cross_entropy_with_logits_and_grad(np.array([0.0, 2.0]), np.array([1.0, 1.0]),
    ...                                                           reduction="sum")
    >>> grad
    array([-0.5       , -0.11920292])
    """
    return _bce(logits, target, weight, pos_weight, sample_weight, reduction, n_threads, True, grad_out)


def binary_cross_entropy_with_logits_grad_hess(logits: ArrayLike, target: ArrayLike, *,
                                               weight: ArrayLike | None = None, pos_weight: ArrayLike | None = None,
                                               sample_weight: ArrayLike | None = None, reduction: str = "mean",
                                               n_threads: int | None = None, grad_out: Array | None = None,
                                               hess_out: Array | None = None) -> LossGradHess:
    """(binary_cross_entropy_with_logits(...), d loss / d logits, d^2 loss / d logits^2) from one pass:

        hess = w * sw * (1 + (pw - 1) * y) * sigmoid(x) * sigmoid(-x)   (/ the mean's divisor for "mean")

    computed as e / (1 + e)^2 with e = exp(-|x|) (no cancellation, no overflow). grad and hess have logits'
    shape and compute dtype, written into grad_out / hess_out when given (two separate writable C-contiguous
    arrays of that shape and dtype).
    Equivalent: XGBoost's ``binary:logistic`` has this grad and hess (y in {0, 1}, no weights, "sum").

    >>> fl.binary_cross_entropy_with_logits_grad_hess(np.array([0.0, 2.0]), np.array([1.0, 1.0]),
    ...                                               reduction="sum")[2]
    array([0.25      , 0.10499359])
    """
    return _bce(logits, target, weight, pos_weight, sample_weight, reduction, n_threads, True, grad_out, True,
                hess_out)


def _kl_div(input: ArrayLike, target: ArrayLike, log_target: bool, reduction: str, n_threads: int | None,
            want_grad: bool, grad_out: Array | None, want_hess: bool = False, hess_out: Array | None = None) -> Any:
    x, y = ck.scores_and_targets(input, target, "input", "target")
    reduction = ck.kl_div_reduction(reduction)
    # batchmean divides by the batch size input.shape[0], and is the sum for 0-d input (as torch)
    divisor = {"mean": float(x.size), "batchmean": float(x.shape[0]) if x.ndim else 1.0}.get(reduction, 1.0)
    return _elementwise("kl_div", x, y, None, None, reduction, divisor, bool(log_target),
                        n_threads, want_grad, grad_out, want_hess, hess_out)


def kl_div(input: ArrayLike, target: ArrayLike, *, log_target: bool = False, reduction: str = "mean",
           n_threads: int | None = None) -> Loss:
    """torch's kl_div: the pointwise KL divergence of the distribution p = target from q = exp(input),

        loss = target * (log(target) - input)      (0 where target = 0, as xlogy)
        loss = exp(target) * (target - input)      with log_target=True (target holds log p)

    input (log q) and target: the same shape (any). Reductions: "none" (input's shape), "sum", "mean" (the sum
    over the number of elements, as torch), "batchmean" (the sum over input.shape[0], the true KL divergence
    per sample for (N, C) input; the plain sum for 0-d input; nan for an empty batch). Negative targets give
    nan (as torch; use kl_divergence for checked probabilities). Dtypes: input's compute dtype.

    Equivalent: ``torch.nn.functional.kl_div(input, target, reduction=reduction, log_target=log_target)``;
    with reduction="sum" on one row it equals ``kl_divergence(target, exp(input))``.

    >>> p, q = np.array([0.8, 0.1, 0.1]), np.array([0.2, 0.2, 0.6])
    >>> fl.kl_div(np.log(q), p, reduction="sum")
    np.float64(0.8605448239171126)
    """
    return _kl_div(input, target, log_target, reduction, n_threads, False, None)


def kl_div_and_grad(input: ArrayLike, target: ArrayLike, *, log_target: bool = False, reduction: str = "mean",
                    n_threads: int | None = None, grad_out: Array | None = None) -> LossAndGrad:
    """(kl_div(...), d loss / d input) from one pass: grad = -target (-exp(target) with log_target), divided by
    the number of elements for "mean" and by input.shape[0] for "batchmean". grad has input's shape and
    compute dtype (written into grad_out when given: C-contiguous, that shape and dtype; partly written if a
    Ctrl-C interrupts the call).

    Equivalent: ``torch.autograd.grad(F.kl_div(input, target, ...), input)``.
    """
    return _kl_div(input, target, log_target, reduction, n_threads, True, grad_out)


def kl_div_grad_hess(input: ArrayLike, target: ArrayLike, *, log_target: bool = False, reduction: str = "mean",
                     n_threads: int | None = None, grad_out: Array | None = None,
                     hess_out: Array | None = None) -> LossGradHess:
    """(kl_div(...), d loss / d input, d^2 loss / d input^2) from one pass. kl_div is linear in input (log q), so
    hess is 0; provided so that every loss with a gradient has NAME_grad_hess.
    grad_out / hess_out: two separate writable C-contiguous arrays of input's shape and compute dtype.

    >>> fl.kl_div_grad_hess(np.log(np.array([0.5, 0.5])), np.array([0.9, 0.1]), reduction="sum")[2]
    array([0., 0.])
    """
    return _kl_div(input, target, log_target, reduction, n_threads, True, grad_out, True, hess_out)
