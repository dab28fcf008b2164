"""fastloss on dask arrays: `evaluate`, `cross_entropy` and `nll_loss` ("mean" or "sum") of logits spread over
the workers of a cluster. Each chunk of rows is computed where it lives by the same C kernels, returning its
per-block partial sums (a few numbers per block of rows), which are added in block order on the client:

    >>> from dask.distributed import Client                                      # doctest: +SKIP
    >>> client = Client("tcp://scheduler:8786")                                  # doctest: +SKIP
    >>> x = dask.array.from_zarr("logits.zarr"); t = dask.array.from_zarr("targets.zarr")   # doctest: +SKIP
    >>> fastloss.dask.evaluate(x, t)                                             # doctest: +SKIP

Exactness: the rows are rechunked (only when needed) so that every chunk but the last is a whole number of the
kernels' blocks of rows, and the class axis is one chunk. Then `evaluate` and the sums of `cross_entropy` and
`nll_loss` equal the in-memory results bit for bit. One exception: with `weight` or `sample_weight`, the divisor
of "mean" (the sum of the effective weights) is summed per chunk and then over the chunks, where the in-memory
kernel adds it row by row: the mean may then differ in the last bits, by a relative error of at most about
(number of chunks) x 2**-53 for non-negative weights.
Needs `pip install "fastloss[dask]"` (dask[array], distributed for a cluster); fastloss must be installed on
the workers.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import dask
import dask.array as da
import numpy as np
from numpy.typing import ArrayLike

from . import _checks as ck
from . import _kernels as K
from . import evaluation, streaming
from ._typing import Array

__all__ = ["evaluate", "cross_entropy", "nll_loss"]


def _aligned_rows(logits: Any, target: Any, sample_weight: Any) -> tuple[Any, Any, Any, tuple[int, ...]]:
    """The logits as a (rows, C) dask array whose row chunks are whole blocks of the kernels (and one chunk of
    columns), and the per-row dask arrays (target, sample_weight) chunked the same way; also the leading shape."""
    x = logits if isinstance(logits, da.Array) else da.asarray(logits)
    if x.ndim == 0 or any(np.isnan(s) for s in x.shape):
        raise ValueError(f"logits must have a known shape with a class axis, got {x.shape}")
    lead, n_cols = x.shape[:-1], x.shape[-1]
    if n_cols == 0:
        raise ValueError("logits has no classes: its last axis has length 0")
    x = x.reshape(-1, n_cols) if x.ndim != 2 else x
    rpb = K.block_layout(n_cols)[0]
    rows = x.chunks[0]
    if any(c % rpb for c in rows[:-1]) or len(x.chunks[1]) != 1:
        step = max(1, round(max(rows, default=1) / rpb)) * rpb
        x = x.rechunk({0: step, 1: -1})
    per_row: list[Any] = []
    for a, name in ((target, "target"), (sample_weight, "sample_weight")):
        if a is None:
            per_row.append(None)
            continue
        v = a if isinstance(a, da.Array) else da.asarray(a)
        if v.shape != lead:
            what = f"{name} shape {v.shape} does not fit the scores' leading shape {lead}"
            raise ValueError(what)
        per_row.append(v.reshape(-1).rechunk({0: x.chunks[0]}))
    return x, per_row[0], per_row[1], lead


def _chunks(x: Any, *vectors: Any) -> Iterator[tuple[Any, ...]]:
    """(row offset, delayed logits chunk, delayed chunks of each vector or None) per chunk of rows."""
    blocks = [b.ravel() if b is not None else None for b in
              [x.to_delayed()] + [v.to_delayed() if v is not None else None for v in vectors]]
    r0 = 0
    for i, n in enumerate(x.chunks[0]):
        yield (r0, blocks[0][i]) + tuple(b[i] if b is not None else None for b in blocks[1:])  # type: ignore[index]
        r0 += n


def _scores(x: Any) -> Array:
    a = np.asarray(x)
    return ck.rows_view(a.astype(ck.scores_dtype(a.dtype, "logits"), copy=False))


def _indices(t: Any) -> Array:
    a = np.asarray(t)
    ck.index_dtype_check(a.dtype, "target")
    return np.ascontiguousarray(a, np.int64)


def _evaluate_chunk(x: Any, t: Any, w: Array | None, ignore_index: int, k_arr: Array, n_threads: int | None,
                    lead: tuple[int, ...], r0: int) -> Array:
    return evaluation.block_sums(_scores(x), _indices(t), w, ignore_index, k_arr, ck.n_threads(n_threads),
                                 lead, r0)


def evaluate(logits: Any, target: Any, *, ignore_index: int = -100, weight: ArrayLike | None = None,
             topk: int | Sequence[int] = (1, 5), n_threads: int | None = None) -> evaluation.EvalResult:
    """fastloss.evaluate on dask arrays (or a dask logits array and a NumPy target): same arguments, semantics
    and result (an EvalResult), bit for bit. Computed with the current dask scheduler (a distributed Client's,
    when one is active); n_threads is the kernel threads in each task (None: the worker's default)."""
    ignore_index = ck.integer_option(ignore_index, "ignore_index")
    ks = ck.topk_values(topk)
    x, t, _, lead = _aligned_rows(logits, target, None)
    w = ck.class_weight(weight, x.shape[1])
    k_arr = evaluation.topk_array(ks, x.shape[1])
    task = dask.delayed(_evaluate_chunk, pure=True)
    parts = dask.compute(*[task(xc, tc, w, ignore_index, k_arr, n_threads, lead, r0)
                           for r0, xc, tc in _chunks(x, t)])
    totals = np.zeros(3 + len(ks))
    for sums in parts:
        totals = streaming.add_blocks(totals, sums)
    return evaluation.eval_result(totals, ks, w is not None)


def _class_chunk(op: str, x: Any, t: Any, w: Array | None, sw: Any, ignore_index: int, label_smoothing: float,
                 n_threads: int | None, lead: tuple[int, ...], r0: int) -> tuple[Array, float]:
    swc = None if sw is None else np.ascontiguousarray(sw, np.float64)
    return streaming.class_sums(op, _scores(x), _indices(t), w, swc, ignore_index, label_smoothing, 0.0,
                                ck.n_threads(n_threads), lead, r0)


def _class_loss(op: str, logits: Any, target: Any, weight: ArrayLike | None, sample_weight: Any, ignore_index: int,
                label_smoothing: float, reduction: str, n_threads: int | None) -> np.floating[Any]:
    if ck.reduction_code(reduction) == "none":
        raise ValueError("fastloss.dask reduces: reduction must be 'mean' or 'sum' (for per-row losses, "
                         "map fastloss over the blocks: logits.map_blocks(...))")
    ignore_index = ck.integer_option(ignore_index, "ignore_index")
    label_smoothing = ck.finite_option(label_smoothing, "label_smoothing", 0.0, 1.0)
    x, t, sw, lead = _aligned_rows(logits, target, sample_weight)
    w = ck.class_weight(weight, x.shape[1])
    task = dask.delayed(_class_chunk, pure=True, nout=2)
    parts = dask.compute(*[task(op, xc, tc, w, swc, ignore_index, label_smoothing, n_threads, lead, r0)
                           for r0, xc, tc, swc in _chunks(x, t, sw)])
    loss_sum, weight_sum = np.zeros(1), 0.0
    for sums, ws in parts:
        loss_sum, weight_sum = streaming.add_blocks(loss_sum, sums), weight_sum + ws
    dt = ck.result_dtype(ck.scores_dtype(x.dtype, "logits"))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.float64(loss_sum[0]) / np.float64(weight_sum) if reduction == "mean" else float(loss_sum[0])
    return ck.scalar_result(value, dt)


def cross_entropy(logits: Any, target: Any, *, weight: ArrayLike | None = None, sample_weight: Any = None,
                  ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean",
                  n_threads: int | None = None) -> np.floating[Any]:
    """fastloss.cross_entropy of dask arrays with integer targets, reduced ("mean" or "sum"): same semantics and
    result dtype; equal bit for bit (see the module's note on weighted means)."""
    return _class_loss("cross_entropy", logits, target, weight, sample_weight, ignore_index, label_smoothing,
                       reduction, n_threads)


def nll_loss(log_probs: Any, target: Any, *, weight: ArrayLike | None = None, sample_weight: Any = None,
             ignore_index: int = -100, reduction: str = "mean", n_threads: int | None = None) -> np.floating[Any]:
    """fastloss.nll_loss of dask arrays, reduced ("mean" or "sum"); as cross_entropy above."""
    return _class_loss("nll", log_probs, target, weight, sample_weight, ignore_index, 0.0, reduction, n_threads)
