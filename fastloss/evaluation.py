"""Evaluation of a model's outputs in one pass: mean cross-entropy, perplexity and top-k accuracies of logits
(`evaluate`), and the margin losses and accuracy of binary scores (`evaluate_binary`).

`evaluate` reads arrays in memory, numpy.memmap arrays and .npy files (walked in chunks of rows, memory bounded:
see fastloss.streaming); the result is the same to the last bit whichever way the logits come, and whatever
n_threads: the kernel returns per-block partial sums, added in block order.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _checks as ck
from . import _kernels as K
from . import streaming
from ._typing import Array

__all__ = ["EvalResult", "BinaryEvalResult", "evaluate", "evaluate_binary"]


class _Metrics:
    """A readable repr (floats to 6 significant digits) and to_dict() for the frozen result dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """The metrics as a flat dict of plain Python numbers (weight_sum only when weights were given)."""
        return {k: v for k, v in self._items()}

    def _items(self) -> list[tuple[str, Any]]:
        values = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return [(k, v) for k, v in values if v is not None]

    def __repr__(self) -> str:
        parts = [f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in self._items()]
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclasses.dataclass(frozen=True, repr=False)
class EvalResult(_Metrics):
    """What `evaluate` measured over the rows that count (target != ignore_index).

    cross_entropy: the mean softmax cross-entropy, sum_i w[t_i] (L_i - x_i[t_i]) / sum_i w[t_i] (float64);
    perplexity: exp(cross_entropy); accuracy: {k: fraction of the counted rows whose target is in the top k}
    (not weighted); n_rows: rows counted; weight_sum: sum_i w[t_i] when a class weight was given, else None.
    to_dict() flattens accuracy into top{k}_accuracy keys.
    """
    cross_entropy: float
    perplexity: float
    accuracy: dict[int, float]
    n_rows: int
    weight_sum: float | None = None

    def _items(self) -> list[tuple[str, Any]]:
        items = [("cross_entropy", self.cross_entropy), ("perplexity", self.perplexity)]
        items += [(f"top{k}_accuracy", v) for k, v in self.accuracy.items()]
        items += [("n_rows", self.n_rows)]
        return items + ([("weight_sum", self.weight_sum)] if self.weight_sum is not None else [])


@dataclasses.dataclass(frozen=True, repr=False)
class BinaryEvalResult(_Metrics):
    """What `evaluate_binary` measured: the (sample-weighted) means of the logistic, hinge and exponential
    losses and the accuracy; n: the number of scores; weight_sum: sum of sample_weight when given, else None."""
    logistic_loss: float
    hinge_loss: float
    exponential_loss: float
    accuracy: float
    n: int
    weight_sum: float | None = None


def _mean(num: float, den: float) -> float:
    return float(num / den) if den else math.nan


# ---- evaluate ------------------------------------------------------------------------------------------------

def block_sums(x: Array, t: Array, w: Array | None, ignore_index: int,
               topk: Array, nt: int, lead: tuple[int, ...], r0: int = 0) -> Array:
    """The kernel's per-block sums [loss, weight, rows, hits per k] over one chunk of rows (x: 2-D, its rows
    starting at row r0 of the whole matrix of leading shape lead; t: int64 targets of the chunk)."""
    rpb = K.block_layout(x.shape[1])[0]
    sums = np.empty((streaming.n_blocks(len(x), rpb), 3 + len(topk)))
    status, pos, value = K.evaluate(x, t, w, ignore_index, topk, sums, nt)
    if status:
        raise ck.class_index_error(r0 + pos, value, lead, x.shape[1])
    return sums


def topk_array(topk: Sequence[int], n_classes: int) -> Array:
    """The k values as the kernel takes them: int64, each clipped to n_classes."""
    return np.minimum(np.array(topk, np.int64), n_classes)


def eval_result(totals: Array, topk: Sequence[int], weighted: bool) -> EvalResult:
    """EvalResult from the added block sums [loss, weight, rows, hits per k]."""
    loss, weight, rows = totals[0], totals[1], totals[2]
    ce = _mean(loss, weight)
    with np.errstate(over="ignore"):
        ppl = float(np.exp(ce))
    acc = {int(k): _mean(totals[3 + i], rows) for i, k in enumerate(topk)}
    return EvalResult(ce, ppl, acc, int(rows), float(weight) if weighted else None)


def evaluate(logits: ArrayLike | str | os.PathLike[str], target: ArrayLike | str | os.PathLike[str], *,
             ignore_index: int = -100, weight: ArrayLike | None = None, topk: int | Sequence[int] = (1, 5),
             n_threads: int | None = None, chunk_bytes: int | None = None,
             progress: Callable[[int, int], object] | None = None) -> EvalResult:
    """Mean cross-entropy, perplexity and top-k accuracies of logits against class targets, in one read of
    the logits. Returns an EvalResult.

    For each row i whose target t_i is not ignore_index, with L_i = logsumexp(logits[i]) and class weights w
    (1 if None):  cross_entropy = sum_i w[t_i] (L_i - logits[i, t_i]) / sum_i w[t_i]  (what
    ``cross_entropy(logits, target, weight=w, reduction="mean")`` gives, in float64), perplexity =
    exp(cross_entropy), and for each k in topk the fraction of those rows (not weighted) whose target is among
    the k largest logits.

    Ties: the target counts as in the top k iff fewer than k logits of its row are strictly greater than its
    own (ties go the target's way; a nan logit counts as greater; a nan target logit is never in the top k).
    A k larger than the number of classes C counts as C. topk: an int or a sequence of distinct ints >= 1.

    logits: (..., C) array, numpy.memmap or path to a .npy file (str or os.PathLike); files and memmaps are read
    in chunks of rows of at most chunk_bytes (default 64 MiB) of the file's dtype (float16 and bfloat16 are read
    as they are and computed in float32), so memory stays bounded. target: (...) integers (also a memmap or .npy path).
    Out-of-range targets raise IndexError (position and value). progress(rows done, rows) is called after each
    chunk. Results are identical to the last bit for any n_threads and any chunk_bytes.

    Equivalent: ``F.cross_entropy(x, t, weight=w, ignore_index=...)`` and
    ``(x.topk(k).indices == t[:, None]).any(1)[t != ignore_index].float().mean()`` on tie-free data.

    >>> fl.evaluate(np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]]), np.array([0, 1]), topk=(1, 2))
    EvalResult(cross_entropy=1.20558, perplexity=3.33869, top1_accuracy=0.5, top2_accuracy=1, n_rows=2)
    """
    ignore_index = ck.integer_option(ignore_index, "ignore_index")
    ks = ck.topk_values(topk)
    chunk = ck.chunk_bytes_value(chunk_bytes, streaming.CHUNK_BYTES)
    nt = ck.n_threads(n_threads)
    x = streaming.open_rows(logits, "logits", "scores")
    t = None
    try:
        lead = x.shape[:-1]
        t = streaming.per_row(target, "target", "indices", lead)
        w = ck.class_weight(weight, x.row_len)
        k_arr = topk_array(ks, x.row_len)
        totals = np.zeros(3 + len(ks))
        for r0, r1 in streaming.chunks(x.n_rows, streaming.rows_per_chunk(x, chunk), progress):
            sums = block_sums(x.read(r0, r1), t.read(r0, r1).reshape(-1), w, ignore_index, k_arr, nt, lead, r0)
            totals = streaming.add_blocks(totals, sums)
    finally:
        streaming.close(x, t)
    return eval_result(totals, ks, w is not None)


# ---- evaluate_binary -----------------------------------------------------------------------------------------

def evaluate_binary(scores: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None,
                    n_threads: int | None = None) -> BinaryEvalResult:
    """Means of the margin losses and the accuracy of binary scores against labels y in {-1, +1}, in one pass.

    With m = y * score and sample weights sw (1 if None), each mean is sum(sw * loss) / sum(sw) of
      logistic_loss = log(1 + exp(-m)) (computed as log1p(exp(-|m|)) + max(-m, 0): stable for every m),
      hinge_loss = max(0, 1 - m), exponential_loss = exp(-m),
      accuracy: the predicted label is +1 where score > 0, else -1; the (weighted) fraction equal to y.
    scores, y: the same shape (any). sample_weight: broadcast to it. A y outside {-1, +1} raises ValueError
    (position and value). Sums in float64; identical for any n_threads. Returns a BinaryEvalResult.

    Equivalent: the means of ``logistic_loss``, ``hinge_loss``, ``exponential_loss`` and 1 - ``zero_one_loss``.

    >>> fl.evaluate_binary(np.array([2.0, -1.0, 0.5]), np.array([1, -1, -1]))
    BinaryEvalResult(logistic_loss=0.471422, hinge_loss=0.5, exponential_loss=0.717312, accuracy=0.666667, n=3)
    """
    s_in, y_in = ck.any_array(scores), ck.as_array(y, "y")
    dt = ck.scores_dtype(s_in.dtype, "scores")
    ck.same_shape(s_in, y_in, "scores", "y")
    s = np.ascontiguousarray(s_in, dt).reshape(-1)
    yv = np.ascontiguousarray(y_in, dt).reshape(-1)
    sw = ck.sample_weights(sample_weight, s_in.shape)
    nt = ck.n_threads(n_threads)
    per_block = K.block_layout(1)[1]
    sums = np.empty((streaming.n_blocks(s.size, per_block), 5))
    status, pos, value = K.evaluate_binary(s, yv, sw, sums, nt)
    if status:
        raise ck.binary_label_error(pos, y_in.reshape(-1)[pos], y_in.shape)
    totals = streaming.add_blocks(np.zeros(5), sums)
    den = totals[0]
    return BinaryEvalResult(_mean(totals[1], den), _mean(totals[2], den), _mean(totals[3], den),
                            _mean(totals[4], den), int(s.size), float(den) if sw is not None else None)
