"""Information measures of probability vectors: entropy, categorical_cross_entropy and kl_divergence, along any
axis, in nats or any base. They take probabilities (not logits), do not renormalise, and raise ValueError on a
negative entry; 0 log 0 = 0, as scipy.special.entr / xlogy / rel_entr."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _checks as ck
from . import _kernels as K
from ._typing import FloatResult

__all__ = ["entropy", "categorical_cross_entropy", "kl_divergence"]


def _measure(op: str, p: ArrayLike, q: ArrayLike | None, axis: int | tuple[int, ...] | None, base: float | None,
             n_threads: int | None = None) -> FloatResult:
    """Runs one distribution kernel over the rows of p (and q) with `axis` folded last; raises on negatives."""
    if q is None:
        pa, qa = ck.as_float(p, "p"), None
    else:
        pa, qa = ck.common_float(p, q, "p", "q")
    log_base = ck.log_base(base)
    if pa.ndim == 0 and axis is None:
        pa, qa = pa.reshape(1), None if qa is None else qa.reshape(1)
    axes = ck.normalize_axes(axis, pa.ndim)
    pm, lead = ck.move_axes_last(pa, axes)
    mat_p = ck.rows_view(pm)
    mat_q = None if qa is None else ck.rows_view(ck.move_axes_last(qa, axes)[0])
    out = np.zeros(mat_p.shape[0], ck.result_dtype(mat_p.dtype))  # an empty distribution has measure 0
    if mat_p.size:
        status, pos, operand, value = K.distribution(K.DIST_OPS[op], mat_p, mat_q, log_base, out,
                                                     ck.n_threads(n_threads))
        if status == K.STATUS_NEGATIVE:
            name, src = ("q", qa) if operand else ("p", pa)
            raise ck.negative_probability(name, _source_index(pos, src.shape, axes, mat_p.shape[1]),  # type: ignore[union-attr]
                                          value)
        if status != K.STATUS_OK:
            raise MemoryError("fastloss: a scratch buffer could not be allocated")
    res = out.reshape(lead)
    return res[()] if res.ndim == 0 else res


def _source_index(flat: int, shape: tuple[int, ...], axes: tuple[int, ...], n_cols: int) -> tuple[int, ...]:
    """The multi-index in the input of entry `flat` (row * n_cols + col) of the kernels' matrix."""
    rest = [ax for ax in range(len(shape)) if ax not in axes]
    row, col = divmod(int(flat), n_cols)
    lead_idx = np.unravel_index(row, tuple(shape[ax] for ax in rest)) if rest else ()
    axes_idx = np.unravel_index(col, tuple(shape[ax] for ax in axes))
    index = [0] * len(shape)
    for ax, i in zip(rest, lead_idx):
        index[ax] = int(i)
    for ax, i in zip(axes, axes_idx):
        index[ax] = int(i)
    return tuple(index)


def entropy(p: ArrayLike, axis: int | tuple[int, ...] | None = -1, *, base: float | None = None) -> FloatResult:
    """Shannon entropy H(p) = -sum_j p_j log(p_j) along `axis`, with 0 log 0 = 0, in nats (base=2: bits).

    p: probabilities (float16, bfloat16, float32, float64, ints), not renormalised. axis: int, tuple of ints,
    or None (all axes).
    base: None (e), or a finite number > 0 other than 1: the result is divided by log(base).
    Returns an array of p's shape without `axis`, or a NumPy scalar for 1-d input, in the compute dtype
    (float32 for float16/bfloat16/float32). A negative entry raises ValueError naming its position and value; nan in
    gives nan out; an empty distribution has entropy 0.

    Equivalent: ``scipy.special.entr(p).sum(axis) / log(base)``; ``scipy.stats.entropy(p, base=base, axis=axis)``
    and ``torch.distributions.Categorical(probs=p).entropy()`` agree when p sums to 1 (they renormalise).

    >>> fl.entropy(np.array([0.8, 0.1, 0.1]))   # the bag of balls: red, green, yellow
    np.float64(0.639031859650177)
    >>> fl.entropy(np.full(4, 0.25), base=2)
    np.float64(2.0)
    """
    return _measure("entropy", p, None, axis, base)


def categorical_cross_entropy(p: ArrayLike, q: ArrayLike, axis: int | tuple[int, ...] | None = -1, *,
                              base: float | None = None) -> FloatResult:
    """Cross-entropy H(p, q) = -sum_j p_j log(q_j) along `axis`, for probability vectors p (true) and q
    (predicted), in nats (base=2: bits). 0 log q = 0 for every q >= 0; q_j = 0 < p_j gives +inf.

    p, q: probabilities of the same shape (ValueError naming both shapes otherwise), not renormalised; the
    computation uses float32 only if both are float16/bfloat16/float32. axis, base, result shape and dtype, negative
    entries (in p or q), nan and empty rows as `entropy`. H(p, q) = H(p) + D(p || q).

    Equivalent: ``-scipy.special.xlogy(p, q).sum(axis) / log(base)``;
    ``torch.sum(-p * torch.log(q), dim=axis)`` where q > 0.

    >>> fl.categorical_cross_entropy(np.array([0.8, 0.1, 0.1]), np.array([0.2, 0.2, 0.6]))
    np.float64(1.4995766835672895)
    """
    return _measure("categorical_cross_entropy", p, q, axis, base)


def kl_divergence(p: ArrayLike, q: ArrayLike, axis: int | tuple[int, ...] | None = -1, *,
                  base: float | None = None) -> FloatResult:
    """Kullback-Leibler divergence D(p || q) = sum_j p_j log(p_j / q_j) along `axis`, in nats (base=2: bits):
    the sum of scipy.special.rel_entr. Terms with p_j = 0 are 0; q_j = 0 < p_j gives +inf.

    p, q: probabilities of the same shape, not renormalised; axis, base, shapes, dtypes, errors, nan and
    empty rows as `categorical_cross_entropy`.

    Equivalent: ``scipy.special.rel_entr(p, q).sum(axis) / log(base)``; ``scipy.stats.entropy(p, q, base=base,
    axis=axis)`` when p and q sum to 1; ``torch.nn.functional.kl_div(torch.log(q), p, reduction="sum")`` for
    one vector with q > 0.

    >>> fl.kl_divergence(np.array([0.8, 0.1, 0.1]), np.array([0.2, 0.2, 0.6]))
    np.float64(0.8605448239171124)
    """
    return _measure("kl_divergence", p, q, axis, base)
