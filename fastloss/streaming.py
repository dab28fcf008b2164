"""Streaming: losses of arrays larger than memory (a .npy file, a numpy.memmap), read in chunks of rows.

How the chunked result equals the in-memory one to the last bit:
  * the kernels cut a matrix into blocks of `rows_per_block` rows, a number that depends on n_cols only
    (`_kernels.block_layout`, the C function itself, not a copy of its constant), and sum each block apart;
  * a chunk is a whole number of blocks, so each block of a chunk holds the same rows, summed in the same order,
    as the same block of the whole matrix;
  * the kernels here return their per-block partial sums (not a chunk total), and `add_blocks` adds them onto a
    running total one block at a time, in block order: the same additions, in the same order, as the kernel
    does for the whole matrix.

Files are read with file reads (readinto at offsets) into buffers allocated once and reused; the pages of a file
are never mapped, so the resident memory is bounded by about 2 x chunk_bytes (the read buffer and, for dtypes
that are converted, the float32/float64 buffer) whatever the file size.

Ctrl-C: the reading, converting and adding happen in Python between chunks, where a SIGINT becomes a
KeyboardInterrupt at once (a read interrupted by it returns to Python for that); a chunk's kernel call stops
between its blocks of rows (see _kernels.pyx, "Ctrl-C"). So a stream of any size stops within a chunk's reading.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _checks as ck
from . import _kernels as K
from ._typing import Array, Loss

__all__ = ["CHUNK_BYTES", "stream_loss"]

#: The default size of a chunk of logits (in the compute dtype): 64 MiB.
CHUNK_BYTES = 64 << 20

_I64 = np.dtype(np.int64)
_F64 = np.dtype(np.float64)


# ---- sources of rows -----------------------------------------------------------------------------------------

class Rows:
    """A matrix of n_rows rows of row_len elements (row_len 1 for a vector of per-row values), in memory, in a
    memmap or in a .npy file, read chunk by chunk in its compute dtype. shape is the array's own shape."""

    streamed = True

    def __init__(self, shape: Sequence[int], dtype: np.dtype[Any], compute: np.dtype[Any], row_len: int) -> None:
        self.shape, self.dtype, self.compute, self.row_len = tuple(shape), dtype, compute, row_len
        self.n_rows = int(np.prod(shape, dtype=np.int64)) // row_len

    def read(self, r0: int, r1: int) -> Array:
        """Rows [r0, r1) as a (r1 - r0, row_len) array of the compute dtype, with a contiguous last axis; valid
        until the next read."""
        raise NotImplementedError


class _ArrayRows(Rows):
    """An ndarray (or a memmap that cannot be read as a file): chunks are views, converted when needed."""

    def __init__(self, a: Array, compute: np.dtype[Any], row_len: int, streamed: bool) -> None:
        super().__init__(a.shape, a.dtype, compute, row_len)
        # per-row vectors are small (one value per row): made contiguous once, as the kernels read them
        self.matrix = np.ascontiguousarray(a).reshape(self.n_rows, 1) if row_len == 1 else ck.rows_view(a)
        self.streamed = streamed

    def read(self, r0: int, r1: int) -> Array:
        part = self.matrix[r0:r1]
        return part if part.dtype == self.compute else part.astype(self.compute)


class _FileRows(Rows):
    """Rows of a file: element (i, j) at byte pos0 + i * row_stride + j * itemsize. Read with readinto into a
    raw buffer, converted into a reused buffer of the compute dtype when the file's dtype differs."""

    def __init__(self, path: str | os.PathLike[str], pos0: int, row_stride: int, shape: Sequence[int],
                 dtype: np.dtype[Any], compute: np.dtype[Any], row_len: int) -> None:
        super().__init__(shape, dtype, compute, row_len)
        self.path, self.pos0, self.row_stride = path, pos0, row_stride
        self.file: Any = None  # the open binary file, once read
        self.raw: Any = None  # the read buffer (uint8), and the compute-dtype buffer on it or apart
        self.buf: Any = None

    def read(self, r0: int, r1: int) -> Array:
        k = r1 - r0
        if self.file is None:
            self.file = open(self.path, "rb", buffering=0)
        if self.raw is None or len(self.raw) < k * self.row_len * self.dtype.itemsize:
            self.raw = np.empty(k * self.row_len * self.dtype.itemsize, np.uint8)
            self.buf = self.raw if self.dtype == self.compute else np.empty(k * self.row_len, self.compute)
        row_bytes = self.row_len * self.dtype.itemsize
        raw = self.raw[:k * row_bytes]
        if self.row_stride == row_bytes:
            self._read_into(self.pos0 + r0 * row_bytes, raw)
        else:
            for i in range(k):
                self._read_into(self.pos0 + (r0 + i) * self.row_stride, raw[i * row_bytes:(i + 1) * row_bytes])
        data = raw.view(self.dtype).reshape(k, self.row_len)
        if self.dtype == self.compute:
            return data
        out = self.buf[:k * self.row_len].view(self.compute).reshape(k, self.row_len)
        np.copyto(out, data, casting="unsafe")
        return out

    def _read_into(self, pos: int, view: Array) -> None:
        self.file.seek(pos)
        mv = memoryview(view)  # type: ignore[arg-type]  # (an ndarray is a buffer)
        got = 0
        while got < len(mv):
            n = self.file.readinto(mv[got:])
            if not n:
                raise ValueError(f"{self.path}: the file ends before its data (truncated .npy file?)")
            got += n

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def _npy_header(path: str | os.PathLike[str]) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """(shape, fortran_order, dtype, data offset) of a .npy file, from its header only."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
        except ValueError as e:
            raise ValueError(f"{os.fspath(path)} is not a .npy file: {e}") from None
        return shape, fortran, dtype, f.tell()


def _memmap_file_position(m: np.memmap[Any, Any]) -> tuple[str, int] | None:
    """(path, byte position of m's first element in its file) for a memmap whose file can be read directly
    (shared mapping, so a file read sees what the map holds); else None."""
    mm = getattr(m, "_mmap", None)
    if mm is None or getattr(m, "filename", None) is None or getattr(m, "mode", "c") == "c" or m.size == 0:
        return None
    try:
        base = np.frombuffer(mm, np.uint8).ctypes.data
    except (ValueError, TypeError, BufferError):
        return None
    import mmap
    map_start = m.offset - m.offset % mmap.ALLOCATIONGRANULARITY  # where np.memmap started the mapping
    return m.filename, map_start + (m.ctypes.data - base)  # type: ignore[return-value]  # (not None: above)


def _row_stride_bytes(a: Array, row_len: int) -> int | None:
    """The byte stride between the rows of a (..., row_len) array seen as a matrix, if the last axis is
    contiguous and the leading axes fold into one stride without a copy; else None."""
    try:
        v = a.view(np.ndarray)
        v.shape = (a.size // row_len if row_len else 0, row_len)
    except (AttributeError, ValueError):
        return None
    if row_len > 1 and v.strides[1] != a.itemsize:
        return None
    return v.strides[0] if v.shape[0] > 1 else row_len * a.itemsize


def open_rows(x: Any, name: str, kind: str, row_len: int | None = None) -> Rows:
    """A Rows source for x: a path to a .npy file (str or os.PathLike), a numpy.memmap, or anything
    numpy.asarray accepts. kind: "scores" (float compute dtype; row_len None: the class axis is the last axis),
    "indices" (int64) or "weights" (float64), per-row vectors (row_len 1)."""
    if isinstance(x, (str, os.PathLike)):
        path = os.fspath(x)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{name}: no such file: {path}")
        shape, fortran, dtype, offset = _npy_header(path)
        dtype = ck.file_dtype(dtype)
        compute = _compute(dtype, name, kind)
        rl = _row_len(shape, name, row_len)
        if fortran and len(shape) > 1:  # rows are not contiguous in the file: read through a map
            return _ArrayRows(np.load(path, mmap_mode="r"), compute, rl, True)
        return _FileRows(path, offset, rl * dtype.itemsize, shape, dtype, compute, rl)
    if isinstance(x, np.memmap):
        if ck.file_dtype(x.dtype) != x.dtype:  # np.load(mmap_mode=...) of a bfloat16 file: '|V2'
            x = x.view(ck.file_dtype(x.dtype))
        compute = _compute(x.dtype, name, kind)
        rl = _row_len(x.shape, name, row_len)
        where, stride = _memmap_file_position(x), _row_stride_bytes(x, rl)
        if where is not None and stride is not None and stride >= 0:
            return _FileRows(where[0], where[1], stride, x.shape, x.dtype, compute, rl)
        return _ArrayRows(x, compute, rl, True)
    a = ck.any_array(x) if kind == "scores" else ck.as_array(x, name)
    compute = _compute(a.dtype, name, kind)
    rl = _row_len(a.shape, name, row_len)
    return _ArrayRows(a, compute, rl, a.dtype != compute)


def _compute(dtype: np.dtype[Any], name: str, kind: str) -> np.dtype[Any]:
    if kind == "scores":
        return ck.scores_dtype(dtype, name)
    if kind == "indices":
        ck.index_dtype_check(dtype, name)
        return _I64
    ck.scores_dtype(dtype, name)
    return _F64


def _row_len(shape: tuple[int, ...], name: str, row_len: int | None) -> int:
    if row_len is not None:
        return row_len
    if not shape:
        raise ValueError(f"{name} must have at least one dimension (the class axis), got a 0-d array")
    if shape[-1] == 0:
        raise ValueError(f"{name} has no classes: its last axis has length 0")
    return shape[-1]


def per_row(x: Any, name: str, kind: str, lead: tuple[int, ...]) -> Rows:
    """A Rows source of per-row values (targets, sample weights) of the leading shape `lead`."""
    src = open_rows(x, name, kind, row_len=1)
    if src.shape != tuple(lead):
        what = "target" if kind == "indices" else name
        raise ValueError(f"{what} shape {src.shape} does not fit the scores' leading shape {tuple(lead)}")
    return src


def close(*sources: Rows | None) -> None:
    for s in sources:
        if s is not None and hasattr(s, "close"):
            s.close()


# ---- chunks and block sums -----------------------------------------------------------------------------------

def rows_per_chunk(scores: Rows, chunk_bytes: int) -> int:
    """Rows per chunk: a multiple of the kernels' rows per block, of at most chunk_bytes in the compute dtype
    (at least one block); all rows at once for an array in memory that needs no conversion."""
    rpb = K.block_layout(scores.row_len)[0]
    if not scores.streamed:
        return max(scores.n_rows, 1)
    row_bytes = scores.row_len * scores.compute.itemsize
    return max(1, chunk_bytes // (row_bytes * rpb)) * rpb


def chunks(n_rows: int, step: int, progress: Callable[[int, int], object] | None = None) -> Iterator[tuple[int, int]]:
    """(r0, r1) of the chunks of step rows; progress(rows done, n_rows) is called after each."""
    for r0 in range(0, n_rows, step):
        r1 = min(r0 + step, n_rows)
        yield r0, r1
        if progress is not None:
            progress(r1, n_rows)


def n_blocks(n_rows: int, rows_per_block: int) -> int:
    return -(-n_rows // rows_per_block)


def add_blocks(total: Array, block_sums: Array) -> Array:
    """total + the rows of block_sums, added one block at a time in block order (np.add.accumulate is
    sequential): the kernels' own order, so that chunked sums equal whole-matrix sums bit for bit."""
    if len(block_sums) == 0:
        return total
    stacked = np.concatenate((np.asarray(total, _F64).reshape(1, -1), block_sums.reshape(len(block_sums), -1)))
    return np.add.accumulate(stacked, axis=0)[-1]


# ---- stream_loss ---------------------------------------------------------------------------------------------

_STREAM_LOSSES = {"cross_entropy": "cross_entropy", "nll_loss": "nll"}


def class_sums(op: str, x: Array, t: Array, w: Array | None, sw: Array | None, ignore_index: int,
               label_smoothing: float, weight_sum: float, nt: int, lead: tuple[int, ...],
               r0: int = 0) -> tuple[Array, float]:
    """(block loss sums, weight_sum continued) of a class kernel over one chunk of rows starting at row r0."""
    sums = np.empty(n_blocks(len(x), K.block_layout(x.shape[1])[0]))
    status, weight_sum, pos, value = K.class_block_sums(K.OPS[op], x, t, w, sw, ignore_index, label_smoothing,
                                                        sums, weight_sum, nt)
    if status == K.STATUS_INDEX:
        raise ck.class_index_error(r0 + pos, value, lead, x.shape[1])
    if status:
        raise MemoryError("fastloss: a scratch buffer could not be allocated")
    return sums, weight_sum


def stream_loss(name: str, logits: ArrayLike | str | os.PathLike[str], target: ArrayLike | str | os.PathLike[str], *,
                weight: ArrayLike | None = None, sample_weight: ArrayLike | str | os.PathLike[str] | None = None,
                ignore_index: int = -100, label_smoothing: float = 0.0, reduction: str = "mean",
                n_threads: int | None = None, chunk_bytes: int | None = None,
                progress: Callable[[int, int], object] | None = None) -> Loss:
    """`name`(logits, target, ...) reduced by "mean" or "sum", for logits too large for memory: a path to a .npy
    file (str or os.PathLike), a numpy.memmap, or any array; read in chunks of rows of at most chunk_bytes
    (default CHUNK_BYTES, 64 MiB) in the compute dtype, so memory stays bounded whatever the size.

    name: "cross_entropy" (logits) or "nll_loss" (log-probabilities), with integer class targets. target and
    sample_weight: arrays, memmaps or .npy paths of the leading shape. Same options, semantics and dtype rules as
    the in-memory functions, whose result this equals bit for bit (the chunks are whole blocks of the kernel and
    the block sums are added in the kernel's order); float16 and bfloat16 (ml_dtypes; a .npy '|V2' is read as
    bfloat16) are read as they are and computed in float32. progress: called as progress(rows done, total rows)
    after each chunk.

    >>> fl.stream_loss("cross_entropy", "logits.npy", "targets.npy")    # doctest: +SKIP
    np.float32(2.3418)
    """
    if name not in _STREAM_LOSSES:
        raise ValueError(f"stream_loss computes one of {tuple(_STREAM_LOSSES)}, got {name!r}")
    if ck.reduction_code(reduction) == "none":
        raise ValueError("stream_loss reduces: reduction must be 'mean' or 'sum' (per-row losses of a file "
                         "larger than memory would not fit in it)")
    ignore_index = ck.integer_option(ignore_index, "ignore_index")
    label_smoothing = ck.finite_option(label_smoothing, "label_smoothing", 0.0, 1.0)
    if name == "nll_loss" and label_smoothing:
        raise ValueError("nll_loss has no label_smoothing")
    chunk = ck.chunk_bytes_value(chunk_bytes, CHUNK_BYTES)
    nt = ck.n_threads(n_threads)
    x = open_rows(logits, "log_probs" if name == "nll_loss" else "logits", "scores")
    t = sw = None
    try:
        lead = x.shape[:-1]
        t = per_row(target, "target", "indices", lead)
        sw = None if sample_weight is None else per_row(sample_weight, "sample_weight", "weights", lead)
        w = ck.class_weight(weight, x.row_len)
        loss_sum, weight_sum = np.zeros(1), 0.0
        for r0, r1 in chunks(x.n_rows, rows_per_chunk(x, chunk), progress):
            sums, weight_sum = class_sums(_STREAM_LOSSES[name], x.read(r0, r1), t.read(r0, r1).reshape(-1), w,
                                          None if sw is None else sw.read(r0, r1).reshape(-1), ignore_index,
                                          label_smoothing, weight_sum, nt, lead, r0)
            loss_sum = add_blocks(loss_sum, sums)
    finally:
        close(x, t, sw)
    total = float(loss_sum[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.float64(total) / np.float64(weight_sum) if reduction == "mean" else total
    return ck.scalar_result(value, ck.result_dtype(x.compute))
