"""Input conversion and validation: the one place where user input becomes kernel input, and where every error
message of the public API is written.

Kernel input means: float16, bfloat16, float32 or float64 arrays in native byte order whose last axis is
contiguous (the half types are never converted: the kernels read them), int64 class indices, float64 weight
vectors, and C-contiguous writable output buffers of exactly the right shape and of the result dtype (float32
for the half types).
"""
from __future__ import annotations

import math
import operator
import os
import threading
import warnings
from typing import Any, Sequence, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.typing import ArrayLike

from . import _kernels
from ._typing import Array

_T = TypeVar("_T")

REDUCTIONS = ("none", "sum", "mean")

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_I64 = np.dtype(np.int64)


def is_bfloat16(dtype: np.dtype[Any]) -> bool:
    """A bfloat16 dtype (ml_dtypes.bfloat16 or any 2-byte dtype named "bfloat16"): recognised without importing
    ml_dtypes."""
    return dtype.kind == "V" and dtype.itemsize == 2 and dtype.fields is None and dtype.name == "bfloat16"


def is_half(dtype: np.dtype[Any]) -> bool:
    """float16 or bfloat16: read by the kernels as they are, computed in float32, results float32."""
    return dtype == _F16 or is_bfloat16(dtype)


# What the kernels read for each input dtype: float16, bfloat16, float32 and float64 as they are (float16 and
# bfloat16 computed in float32); integers, bools and long doubles as float64.
_KERNEL_DTYPE: dict[np.dtype[Any], np.dtype[Any]] = {_F16: _F16, _F32: _F32, _F64: _F64}


def compute_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype the kernels read data of this dtype as: float16, bfloat16, float32 and float64 themselves (any
    byte order), float64 for longdouble, integers and bools. TypeError for what is not real numbers."""
    if is_bfloat16(dtype):
        return dtype
    dt = _KERNEL_DTYPE.get(dtype.newbyteorder("="))  # a byte-swapped float32 is still float32
    if dt is not None:
        return dt
    if dtype.kind in "fiub":
        return _F64
    raise TypeError(f"expected a real numeric array, got dtype {dtype}")


def result_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype of the results (losses, gradients, softmax) of kernel input of this dtype: float32 for the
    half types (computed in float32), else the dtype itself."""
    return _F32 if is_half(dtype) else dtype


def grad_dtype(grad_out: Any, dtype: np.dtype[Any], allow_half: bool = True) -> np.dtype[Any]:
    """The dtype of the gradient of kernel input of this dtype: result_dtype(dtype) (float32 for the half types),
    or, with allow_half, the half dtype itself where the caller's grad_out has it (the class kernels then store
    each float32 value rounded to nearest even, as torch's and NumPy's conversions: no float32 gradient and no
    second pass). TypeError for a half grad_out that is not allowed."""
    rdt = result_dtype(dtype)
    out_dt = grad_out.dtype if isinstance(grad_out, np.ndarray) else None
    if out_dt is None or out_dt == rdt:
        return rdt
    if allow_half and is_half(dtype) and out_dt == dtype:
        return dtype
    if is_half(out_dt):
        why = (f"only for input of that dtype (got {dtype})" if allow_half else "not here (float32 only)")
        raise TypeError(f"grad_out has dtype {out_dt}, expected {rdt}: a half-precision gradient is written {why}")
    return rdt  # output_buffer names the wrong dtype


def common_dtype(a: np.dtype[Any], b: np.dtype[Any]) -> np.dtype[Any]:
    """The kernel dtype of two arrays read together (x and y, logits and probabilities, p and q): their common
    dtype; two different half types meet in float32."""
    try:
        dt = np.promote_types(a, b)
    except TypeError:
        dt = _F32
    return compute_dtype(dt)


def as_array(x: ArrayLike, name: str) -> Array:
    """np.asarray(x), refusing what is not real numbers (complex, object, strings, datetimes). An array of
    another library with `__dlpack__` (torch tensor, JAX array) on the CPU is viewed without a copy."""
    a = any_array(x)
    if a.dtype.kind not in "fiub" and not is_bfloat16(a.dtype):
        kind = "complex" if a.dtype.kind == "c" else "non-numeric"
        raise TypeError(f"{name} must be a real numeric array, got {kind} dtype {a.dtype}")
    return a


def any_array(x: Any) -> Array:
    """x as an ndarray, any dtype: np.asarray(x), but an array of another library with `__dlpack__` (torch tensor,
    JAX array) is np.from_dlpack(x), its memory shared. What DLPack cannot hand over (a device array, a dtype
    NumPy lacks such as bfloat16, a torch tensor that requires grad) goes to np.asarray, which converts it or
    raises the producer's own error."""
    if isinstance(x, np.ndarray) or not hasattr(x, "__dlpack__"):
        return np.asarray(x)
    try:
        return np.from_dlpack(x)
    except (BufferError, TypeError, ValueError, RuntimeError):
        return np.asarray(x)


_NATIVE_FLOATS = (_F32, _F64, _F16)


def as_float(x: ArrayLike, name: str, dtype: np.dtype[Any] | None = None) -> Array:
    """x as a native-order float array of its kernel dtype (or of `dtype` when given): float16 and bfloat16
    arrays are not converted (the kernels read them as they are)."""
    if type(x) is np.ndarray and (x.dtype is dtype if dtype is not None else x.dtype in _NATIVE_FLOATS) \
            and x.flags.aligned:
        return x  # the common case, first and cheap: small calls are dominated by these checks
    a = as_array(x, name)
    dt = compute_dtype(a.dtype) if dtype is None else dtype
    if a.dtype != dt:  # also catches byte-swapped arrays: their dtype differs from the native one
        a = a.astype(dt)
    return aligned(a)


def aligned(a: Array) -> Array:
    """a, or an aligned copy of it: C reads a double through a double pointer, and a misaligned one (an array
    viewed from a bytes buffer at an odd offset) is undefined behaviour (a crash with aligned vector loads)."""
    return a if a.flags.aligned else a.copy()


def rows_view(a: Array) -> Array:
    """A 2-D (n_rows, n_cols) view of a (..., n_cols) float array with a contiguous last axis: the kernels'
    matrix. Copies only when the leading axes cannot be folded into one stride or the last axis is strided."""
    if a.ndim == 2 and a.strides[1] == a.itemsize and a.strides[0] >= 0 and a.strides[0] % a.itemsize == 0:
        return a
    n_cols = a.shape[-1]
    n_rows = a.size // n_cols if n_cols else int(np.prod(a.shape[:-1], dtype=np.int64))
    if a.ndim == 2 and (a.strides[1] == a.itemsize or n_cols <= 1):
        m = a
    else:
        try:
            m = a.reshape(n_rows, n_cols, copy=False) if _HAS_COPY_KW else _reshape_no_copy(a, n_rows, n_cols)
        except (ValueError, AttributeError):
            m = np.ascontiguousarray(a).reshape(n_rows, n_cols)
    if m.strides[1] != m.itemsize and n_cols > 1:
        m = np.ascontiguousarray(m)
    if n_rows > 1 and (m.strides[0] < 0 or m.strides[0] % m.itemsize):
        m = np.ascontiguousarray(m)
    return m


def _reshape_no_copy(a: Array, n_rows: int, n_cols: int) -> Array:
    v = a.view()
    v.shape = (n_rows, n_cols)  # raises AttributeError when a copy would be needed
    return v


_HAS_COPY_KW = np.lib.NumpyVersion(np.__version__) >= "2.1.0"


def normalize_axis(axis: Any, ndim: int, name: str = "axis") -> int:
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(axis).__name__}") from None
    if not -ndim <= ax < ndim:
        raise ValueError(f"{name} {axis} is out of bounds for an array of dimension {ndim}")
    return ax % ndim


def normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """axis (int, tuple of ints, or None for all) as a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axis(ax, ndim) for ax in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"repeated axis in {axis}")
        return tuple(sorted(axes))
    return (normalize_axis(axis, ndim),)


def move_axes_last(a: Array, axes: Sequence[int]) -> tuple[Array, tuple[int, ...]]:
    """a with `axes` moved to the end and folded into one: a (N..., K) array, and the leading shape."""
    rest = [ax for ax in range(a.ndim) if ax not in axes]
    moved = a.transpose(rest + list(axes)) if list(axes) != list(range(a.ndim - len(axes), a.ndim)) else a
    lead = tuple(a.shape[ax] for ax in rest)
    k = 1
    for ax in axes:
        k *= a.shape[ax]
    return moved.reshape(lead + (k,)) if len(axes) != 1 else moved, lead


def reduction_code(reduction: Any) -> str:
    if reduction.__class__ is str and reduction in REDUCTIONS:
        return reduction
    if isinstance(reduction, str) and reduction in REDUCTIONS:  # a str subclass, e.g. numpy.str_
        return str(reduction)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def finite_option(value: Any, name: str, lo: float | None = None, hi: float | None = None,
                  lo_open: bool = False) -> float:
    """A float option, finite and within [lo, hi] (lo excluded when lo_open)."""
    if value.__class__ is float and value - value == 0.0 \
            and (lo is None or value > lo or (value == lo and not lo_open)) and (hi is None or value <= hi):
        return value  # the common case, cheap (value - value is nan for nan and infinities)
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return v


_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def integer_option(value: Any, name: str) -> int:
    """An integer option that fits int64 (the kernels' index type)."""
    if value.__class__ is int and _INT64_MIN <= value <= _INT64_MAX:
        return value
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise ValueError(f"{name} must fit a 64-bit signed integer, got {v}")
    return v


# ---- threads ----------------------------------------------------------------------------------------------
# n_threads=None reaches the kernels as 0, "the default", which the C side works out only when a call is large
# enough to start threads (src_c/process.h: fl_default_threads), so that small calls pay nothing and OpenMP's
# limit is read at call time in the calling thread. The order: fl.set_num_threads(k), else FASTLOSS_NUM_THREADS,
# else OpenMP's limit (OMP_NUM_THREADS, threadpoolctl's threadpool_limits, omp_set_num_threads), capped by the
# CPUs this process may use unless OMP_NUM_THREADS asked for more; 1 in a child forked from a threaded process.

_MAX_THREADS = 1 << 16


def _env_threads() -> int:
    """FASTLOSS_NUM_THREADS as a thread count (0 when unset; a warning and 0 when not an integer >= 1)."""
    env = os.environ.get("FASTLOSS_NUM_THREADS", "").strip()
    if not env:
        return 0
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        warnings.warn(f"FASTLOSS_NUM_THREADS={env!r} is not an integer >= 1; ignored", RuntimeWarning, stacklevel=3)
        return 0
    return min(n, _MAX_THREADS)


def _cgroup_cpu_quota() -> int | None:
    """The CPUs a cgroup quota allows this process (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us), rounded up;
    None without a quota or where it cannot be read."""
    def read(path: str) -> list[str] | None:
        try:
            with open(path) as f:
                return f.read().split()
        except OSError:
            return None

    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        hier, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hier == "0" and controllers == "":  # cgroup v2: /sys/fs/cgroup<path>/cpu.max = "quota period" or "max ..."
            # a quota set higher up also binds: the smallest along the path (the container's own root included)
            best = None
            parts = path.strip("/").split("/") if path.strip("/") else []
            for k in range(len(parts), -1, -1):
                v = read(os.path.join("/sys/fs/cgroup", *parts[:k], "cpu.max"))
                if v and len(v) == 2 and v[0] != "max":
                    n = -(-int(v[0]) // int(v[1]))
                    best = n if best is None else min(best, n)
            return best
        if "cpu" in controllers.split(","):  # cgroup v1
            for base in ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"):
                q, per = read(os.path.join(base, "cpu.cfs_quota_us")), read(os.path.join(base, "cpu.cfs_period_us"))
                if q and per and int(q[0]) > 0 and int(per[0]) > 0:
                    return -(-int(q[0]) // int(per[0]))
    return None


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (a container's --cpus)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    try:
        quota = _cgroup_cpu_quota()
    except (ValueError, IndexError):  # a file of an unexpected form
        quota = None
    return max(1, min(n, quota) if quota else n)


_override = 0  # fl.set_num_threads(k), 0 until called
# Read once, at import, as OpenMP reads OMP_NUM_THREADS when it loads
ENV_THREADS = _env_threads()
USABLE_CPUS = usable_cpus()
OMP_ENV_SET = bool(os.environ.get("OMP_NUM_THREADS", "").strip())


def _send_thread_settings() -> None:
    _kernels.set_thread_settings(_override, ENV_THREADS, USABLE_CPUS, OMP_ENV_SET)


_send_thread_settings()


def get_num_threads() -> int:
    """The number of threads a call without n_threads uses at most (fewer when the work is small), worked out now
    for the calling thread: fl.set_num_threads(k) if called; else FASTLOSS_NUM_THREADS (read at import); else the
    OpenMP limit in force (OMP_NUM_THREADS, threadpoolctl.threadpool_limits, omp_set_num_threads), capped by the
    CPUs this process may use (affinity, cgroup quota) unless OMP_NUM_THREADS asked for more; 1 in a child forked
    from a process that had threads (GNU OpenMP's workers do not survive a fork).

    >>> fl.get_num_threads()    # doctest: +SKIP
    2
    """
    return _kernels.default_threads()


def set_num_threads(n: Any) -> int:
    """Sets the number of threads of calls without n_threads (above everything else but a forked child's 1);
    returns the number in force before. set_num_threads(None) goes back to the default order (returns it too).

    >>> old = fl.set_num_threads(1); fl.get_num_threads()
    1
    """
    global _override
    k = 0 if n is None else _threads_value(n)
    old = get_num_threads()
    _override = k
    _send_thread_settings()
    return old


def _threads_value(n: Any) -> int:
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"n_threads must be an integer or None, got {n!r}") from None
    if k < 1:
        raise ValueError(f"n_threads must be >= 1, got {k}")
    return min(k, _MAX_THREADS)  # more threads than this are never started (nor are more than the work pays for)


def n_threads(n: Any) -> int:
    """The kernels' n_threads: 0 (the default, worked out in C) for None, else the checked count."""
    return 0 if n is None else _threads_value(n)


# ---- targets and weights ----------------------------------------------------------------------------------

def class_indices(target: ArrayLike, lead_shape: Sequence[int], ignore_index: int | None = None,
                  name: str = "target") -> Array:
    """Integer class targets of shape lead_shape, as a C-ordered int64 array. Values are range-checked by
    the kernel; uint64 values beyond int64 become a negative sentinel other than ignore_index, so that the
    kernel reports them (the error message then shows the original value)."""
    if type(target) is np.ndarray and target.dtype is _I64 and target.shape == lead_shape \
            and target.flags.c_contiguous and target.flags.aligned:
        return target  # the common case, cheap: the kernel reads it as a flat C-ordered vector
    t = as_array(target, name)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name} of class indices must have an integer dtype, got {t.dtype}")
    if t.shape != tuple(lead_shape):
        raise ValueError(f"{name} shape {t.shape} does not fit the scores' leading shape {tuple(lead_shape)}")
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and t.size and t.max() > np.iinfo(np.int64).max:
        sentinel = -1 if ignore_index != -1 else -2
        t = np.where(t > np.iinfo(np.int64).max, sentinel, t).astype(_I64)
    return aligned(np.ascontiguousarray(t, dtype=_I64))


def class_target(target: ArrayLike, shape: Sequence[int], ignore_index: int | None,
                 allow_prob: bool) -> tuple[Array | None, Array | None]:
    """(class indices, None) for integer targets of shape shape[:-1], or (None, probabilities) for a floating
    target of the scores' shape (when allowed)."""
    if type(target) is np.ndarray and target.dtype is _I64 and target.shape == shape[:-1] \
            and target.flags.c_contiguous and target.flags.aligned:
        return target, None  # the common case, cheap
    t = as_array(target, "target")
    if t.shape == shape and (t.dtype.kind == "f" or is_bfloat16(t.dtype)):
        if not allow_prob:
            raise TypeError(f"target must hold class indices (an integer dtype), got {t.dtype}")
        return None, t
    if t.shape != shape[:-1]:
        fits = f"the scores' leading shape {shape[:-1]}"
        if allow_prob:
            fits += f" (class indices) or their shape {shape} (probabilities)"
        raise ValueError(f"target shape {t.shape} fits neither " + fits if allow_prob else
                         f"target shape {t.shape} does not fit " + fits)
    return class_indices(t, shape[:-1], ignore_index), None


def class_weight(weight: ArrayLike | None, n_classes: int, name: str = "weight") -> Array | None:
    """Per-class weights: None, or a contiguous float64 vector of length n_classes."""
    if weight is None:
        return None
    w = as_float(weight, name, _F64)
    if w.shape != (n_classes,):
        raise ValueError(f"{name} must have shape ({n_classes},) (one per class), got {w.shape}")
    return np.ascontiguousarray(w)


def sample_weights(sample_weight: ArrayLike | None, lead_shape: Sequence[int],
                   name: str = "sample_weight") -> Array | None:
    """Per-sample weights: None, or a contiguous float64 vector of the samples (broadcast to lead_shape)."""
    if sample_weight is None:
        return None
    w = as_float(sample_weight, name, _F64)
    if w.shape != tuple(lead_shape):
        try:
            w = np.broadcast_to(w, lead_shape)
        except ValueError:
            raise ValueError(f"{name} shape {w.shape} does not fit the per-sample loss shape "
                             f"{tuple(lead_shape)}") from None
    return np.ascontiguousarray(w.reshape(-1))


# ---- large outputs: an opt-in cache ------------------------------------------------------------------------
# By default an output is a plain np.empty array: released, its memory goes back to the allocator (glibc unmaps
# blocks over 32 MiB at once; smaller ones may stay in malloc's heap for its reuse, glibc's dynamic mmap
# threshold). Its first touch costs the OS zeroing its pages as the kernel writes them; NumPy already asks for
# transparent huge pages for arrays of 4 MiB and more (madvise, on Linux): ~1.7x cheaper in CPU time than 4 KiB
# pages here, and 99.6% of a 512 MiB array in huge pages, so an allocation of our own aligned to 2 MiB with
# madvise would gain only the two partial extents at the ends. Loops that ask for a gradient of the same size
# every call have two ways to skip that cost: grad_out= / out= (no allocation at all), or the opt-in cache below:
# the memory of a large output (>= OUTPUT_CACHE_MIN bytes) that its arrays have all released is kept and handed
# to the next output of exactly that size, up to FASTLOSS_OUTPUT_CACHE_MB MiB (default 0: no cache) or
# fl.set_output_cache_mb(n); fl.clear_output_cache() gives it back at once.
# With FASTLOSS_FRESH_PAGES=1 on a VM whose balloon reports free memory to its host, a new large output's pages
# are watched by the kernel that writes it (_kernels.watch_output, process.h): each huge page faulted, timed, just
# before the block that writes it, and once three are slow (from a block the host took back: 22x slower there)
# the rest are small pages. Off by default: in the bench's process (peers freeing and allocating between our
# calls) the switch to small pages made the median call slower, not faster (README, "Fresh memory"). New zeroed
# outputs (a few nonzeros a row) go to small pages there from the start instead (_small_pages_for_zeros).

OUTPUT_CACHE_MIN = 16 << 20
SMALL_PAGE_ROW_PAGES = 4  # see _OutputCache.zeros
_ALIGN = 64


def free_page_reporting(devices: str = "/sys/bus/virtio/devices") -> bool:
    """Whether this machine is a VM whose balloon reports free pages to its host: a virtio balloon (device id 5)
    that negotiated VIRTIO_BALLOON_F_REPORTING (feature bit 5; sysfs lists the bits from 0)."""
    try:
        names = os.listdir(devices)
    except OSError:
        return False
    for name in names:
        try:
            with open(os.path.join(devices, name, "device")) as f:
                if int(f.read().strip(), 16) != 5:
                    continue
            with open(os.path.join(devices, name, "features")) as f:
                bits = f.read().strip()
        except (OSError, ValueError):
            continue
        if len(bits) > 5 and bits[5] == "1":
            return True
    return False


_reporting: list[bool] = []  # whether to watch new outputs' pages, settled at the first large output


def _watching() -> bool:
    """With FASTLOSS_FRESH_PAGES=1, where free_page_reporting() (a machine without it has no slow pages to avoid);
    unset or anything else (the default): never."""
    return os.environ.get("FASTLOSS_FRESH_PAGES", "").strip() == "1" and free_page_reporting()


_reported: list[bool] = []  # free_page_reporting(), read at the first new zeroed output


def _small_pages_for_zeros() -> bool:
    """Whether a new zeroed output goes to small pages whatever its rows: on a VM that reports free pages to its
    host, unless the watch is on (FASTLOSS_FRESH_PAGES=1, which handles its pages). There a new array's huge pages
    are quick (~0.23 ms) or, from blocks the host took back, ~5 ms each, and turn slow partway through an array
    (its first page does not tell); where a process's other libraries allocate and free between our calls it is
    a coin toss a call, while small pages come from the guest's own fragments, never reported. The gradient of
    nll_loss_and_grad (and crammer_singer's) is written a few entries a row into memory the OS zeroes, so small
    pages cost only the pages touched. Measured there (this Intel Xeon, --sweep --only nll_loss_and_grad, peers in
    the process, two runs each): 65,536 x 1,000 float32 on huge pages 26-316 ms a call (0.18x and 2.32x JAX), on
    small pages 42-61 ms (1.33x, 1.24x); float64 35-633 ms against 48-60 (0.36x, 0.22x against 2.16-2.30x
    torch); 1,000,000 x 10 float32 6-45 ms against 10.5-13.4. In a process of only our calls the huge pages were
    quick every time (65,536 x 1,000 float32 17.3 ms, 48.6 on small pages): the price of never meeting the slow
    ones."""
    if not _reported:
        _reported.append(free_page_reporting())
    if not _reporting:
        _reporting.append(_watching())
    return _reported[0] and not _reporting[0]


def _fresh(a: Array) -> Array:
    """A new large output; with FASTLOSS_FRESH_PAGES=1 on a VM that reports free pages, its pages watched by the
    kernel call that follows (see above). The same array."""
    if not _reporting:
        _reporting.append(_watching())
    if _reporting[0]:
        _kernels.watch_output(a)
    return a


class _Block:
    """The owner of a cached output's memory: the `base` of the arrays on it. When the last of them is gone,
    its memory goes back to the cache."""
    __slots__ = ("__array_interface__", "raw")

    def __init__(self, raw: Array, shape: Sequence[int], dtype: np.dtype[Any]) -> None:
        self.raw = raw
        ptr = raw.ctypes.data
        offset = -ptr % _ALIGN
        self.__array_interface__ = {"shape": tuple(shape), "typestr": dtype.str, "version": 3,
                                    "data": (ptr + offset, False)}

    def __del__(self) -> None:
        try:
            _output_cache.release(self.raw)
        except Exception:  # interpreter shutdown
            pass


class _OutputCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.free: list[npt.NDArray[Any]] = []  # raw uint8 buffers, most recently released last
        # One lock for the list: a release (from __del__, in any thread, or from the garbage collector while
        # this thread is inside empty()) must not shift the list between the search and the pop, which could
        # hand out a buffer of another size. Reentrant, for the collector's case.
        self.lock = threading.RLock()

    def empty(self, shape: Sequence[int], dtype: np.dtype[Any]) -> Array:
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < OUTPUT_CACHE_MIN:
            return np.empty(shape, dtype)
        if self.max_bytes <= 0:
            return _fresh(np.empty(shape, dtype))
        size = nbytes + _ALIGN
        raw = None
        with self.lock:
            for i in range(len(self.free) - 1, -1, -1):
                if self.free[i].nbytes == size:
                    raw = self.free.pop(i)
                    break
        if raw is None:
            raw = _fresh(np.empty(size, np.uint8))
        return np.asarray(_Block(raw, shape, dtype))

    def zeros(self, shape: Sequence[int], dtype: np.dtype[Any], per_row: int = 1) -> tuple[Array, bool]:
        """A new output for a kernel that writes per_row nonzero entries a row (nll_loss's gradient: one;
        crammer_singer's: two), and whether it is all zeros already: a large one (>= OUTPUT_CACHE_MIN bytes) with
        the cache off is np.zeros, calloc'd pages that the OS zeroes as they are first written, so the kernel
        writes only the nonzero entries instead of zeroing the pages a second time; otherwise (not zeroed) as
        empty(). Where a row spans SMALL_PAGE_ROW_PAGES 4 KiB pages or more a nonzero, the memory is turned to
        small pages first (_kernels.small_pages): the kernel's stores then fault in only the pages they touch, a
        quarter of them or fewer, where a huge page is zeroed whole (4,096 x 32,000 float32 nll_loss_and_grad
        31 -> 3.5 ms); with shorter rows every small page is touched, and 4 KiB pages cost more than huge ones
        (65,536 x 1,000: 16.6 -> 40.1 ms), so those stay on huge pages but on a VM that reports free pages
        (_small_pages_for_zeros)."""
        if math.prod(shape) * dtype.itemsize >= OUTPUT_CACHE_MIN and self.max_bytes <= 0:
            a = np.zeros(shape, dtype)
            if shape[-1] * dtype.itemsize >= SMALL_PAGE_ROW_PAGES * 4096 * per_row or _small_pages_for_zeros():
                _kernels.small_pages(a)
                return a, True
            return _fresh(a), True
        return self.empty(shape, dtype), False

    def release(self, raw: Array) -> None:
        if raw.nbytes > self.max_bytes:
            return
        with self.lock:
            self.free.append(raw)
            total = sum(r.nbytes for r in self.free)
            while total > self.max_bytes:
                total -= self.free.pop(0).nbytes

    def clear(self) -> None:
        with self.lock:
            self.free = []


def _cache_limit() -> int:
    v = os.environ.get("FASTLOSS_OUTPUT_CACHE_MB", "").strip()
    if not v:
        return 0
    try:
        return max(0, int(v)) << 20
    except ValueError:
        warnings.warn(f"FASTLOSS_OUTPUT_CACHE_MB={v!r} is not a whole number of MiB; no output cache",
                      RuntimeWarning, stacklevel=2)
        return 0


_output_cache = _OutputCache(_cache_limit())
new_output = _output_cache.empty
new_zeroed_output = _output_cache.zeros


def clear_output_cache() -> None:
    """Releases the memory fastloss keeps for reuse by large outputs (only with the opt-in cache on: see
    set_output_cache_mb and the README, "Large outputs")."""
    _output_cache.clear()


def set_output_cache_mb(mb: Any) -> int:
    """Turns on (mb > 0) or off (0) the cache of large outputs, and sets how many MiB of released outputs it keeps
    at most; returns the previous size. Off by default (or FASTLOSS_OUTPUT_CACHE_MB=mb at import).

    With the cache on, the memory of an output of 16 MiB or more (a gradient, a softmax) that every array has
    released is kept, up to mb MiB, and handed to the next output of exactly that size: a loop that drops its
    gradient each step then skips the OS's zeroing of new pages. That memory stays in the process (counted in its
    RSS) until reused, clear_output_cache() or set_output_cache_mb(0). A loop that can pass grad_out= / out=
    allocates nothing at all and needs no cache.

    >>> old = fl.set_output_cache_mb(1024)   # keep up to 1 GiB of released gradients for reuse
    >>> fl.set_output_cache_mb(old)          # back off (frees what was kept)
    1024
    """
    try:
        n = operator.index(mb)
    except TypeError:
        raise TypeError(f"mb must be an integer number of MiB, got {mb!r}") from None
    if n < 0:
        raise ValueError(f"mb must be >= 0, got {n}")
    with _output_cache.lock:
        old = _output_cache.max_bytes >> 20
        _output_cache.max_bytes = n << 20
        total = sum(r.nbytes for r in _output_cache.free)
        while _output_cache.free and total > _output_cache.max_bytes:  # oldest first, as release() does
            total -= _output_cache.free.pop(0).nbytes
    return old


def output_buffer(out: Any, shape: Sequence[int], dtype: np.dtype[Any], name: str) -> Array:
    """A caller's output array: writable, C-contiguous, of exactly this shape and dtype; or a new one
    (new_output)."""
    if out is None:
        return new_output(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if not out.flags.aligned:
        raise ValueError(f"{name} is not aligned to its dtype (the kernels write it through a typed pointer)")
    return out


_F32_ROUNDS_TO_INF = 2.0 ** 128 - 2.0 ** 103  # from here on a double rounds to float32 inf


def scalar_result(value: Any, dtype: np.dtype[Any]) -> np.floating[Any]:
    """A reduced loss as a NumPy scalar of the result dtype (a float32 sum beyond float32's range is inf, without
    NumPy's overflow warning: the sum was exact in double, the result type cannot hold it)."""
    if dtype.itemsize == 4 and abs(value) >= _F32_ROUNDS_TO_INF:
        return dtype.type(math.copysign(math.inf, value))
    return dtype.type(value)


# ---- distributions, binary cross-entropy, kl_div ----------------------------------------------------------

KL_DIV_REDUCTIONS = ("none", "sum", "mean", "batchmean")


def kl_div_reduction(reduction: Any) -> str:
    return choice_option(reduction, "reduction", KL_DIV_REDUCTIONS)


def same_shape(a: Array, b: Array, name_a: str, name_b: str) -> None:
    """ValueError naming both shapes unless the two arrays have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {name_a} {a.shape} and "
                         f"{name_b} {b.shape}")


def common_float(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> tuple[Array, Array]:
    """Two arrays of the same shape as floats of their common compute dtype (float32 only if both are)."""
    a, b = as_array(a, name_a), as_array(b, name_b)
    same_shape(a, b, name_a, name_b)
    dt = common_dtype(compute_dtype(a.dtype), compute_dtype(b.dtype))
    return as_float(a, name_a, dt), as_float(b, name_b, dt)


def scores_and_targets(x: ArrayLike, y: ArrayLike, name_x: str, name_y: str) -> tuple[Array, Array]:
    """x as a float array of its kernel dtype, and y, of the same shape, in that dtype (half-type x with y of
    another dtype: both in float32, so that y is not rounded to x's half type)."""
    a, t = as_array(x, name_x), as_array(y, name_y)
    same_shape(a, t, name_x, name_y)
    a = as_float(a, name_x, half_partner_dtype(a.dtype, t.dtype))
    return a, as_float(t, name_y, a.dtype)


def half_partner_dtype(x_dtype: np.dtype[Any], y_dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The kernel dtype of x when y (targets, probabilities) is read with it in x's dtype: x's own, except a
    half-type x with a y of another dtype, computed in float32 (y is then not rounded to x's half type)."""
    dt = compute_dtype(x_dtype)
    return _F32 if is_half(dt) and y_dtype != dt else dt


def log_base(base: Any) -> float:
    """The divisor that turns nats into units of `base`: 1 for None, log(base) for a finite base > 0, != 1."""
    if base is None:
        return 1.0
    b = finite_option(base, "base", 0.0, lo_open=True)
    if b == 1.0:
        raise ValueError(f"base must not be 1 (log(1) = 0), got {base!r}")
    return float(np.log(b))


def negative_probability(name: str, index: Sequence[int], value: Any) -> ValueError:
    """The ValueError for a negative entry `value` of the array `name` at the multi-index `index`."""
    where = f"{name}[{', '.join(str(int(i)) for i in index)}]" if len(index) else name
    return ValueError(f"{where} = {value!r} is negative: probabilities must be >= 0")


def periodic_weights(w: ArrayLike | None, shape: Sequence[int], name: str) -> tuple[Array | None, int]:
    """A weight array broadcastable to `shape`, as the shortest contiguous float64 vector that, repeated, gives
    its broadcast over the flat C-order array of that shape (a (C,) vector stays of length C); or None.
    The second result is how many times it repeats."""
    if w is None:
        return None, 0
    a = as_float(w, name, _F64)
    try:
        full = np.broadcast_shapes(a.shape, tuple(shape))
    except ValueError:
        full = None
    if full != tuple(shape):
        raise ValueError(f"{name} shape {a.shape} cannot be broadcast to the shape {tuple(shape)} of the input")
    k = a.ndim
    while k and a.shape[a.ndim - k] == 1:  # leading length-1 axes repeat the rest
        k -= 1
    tail = tuple(shape[len(shape) - k:]) if k else ()
    vec = np.ascontiguousarray(np.broadcast_to(a.reshape(a.shape[a.ndim - k:]), tail)).reshape(-1)
    n = int(np.prod(shape, dtype=np.int64))
    return vec, (n // vec.size if vec.size else 0)


def elementwise_weights(weight: ArrayLike | None, sample_weight: ArrayLike | None,
                        shape: Sequence[int]) -> tuple[Array | None, float]:
    """binary_cross_entropy_with_logits' per-element weight, weight x sample_weight as one periodic vector
    (see periodic_weights; None if neither), and the mean's divisor: the sum of sample_weight broadcast to
    `shape` (the number of elements without it)."""
    w, _ = periodic_weights(weight, shape, "weight")
    sw, reps = periodic_weights(sample_weight, shape, "sample_weight")
    divisor = float(np.prod(shape, dtype=np.int64)) if sw is None else float(np.sum(sw)) * reps
    if w is None or sw is None:
        return (sw if w is None else w), divisor
    product = np.multiply(as_float(weight, "weight", _F64),  # type: ignore[arg-type]  # (not None here)
                          as_float(sample_weight, "sample_weight", _F64))  # type: ignore[arg-type]
    return periodic_weights(product, shape, "weight x sample_weight")[0], divisor

# ---- margin and regression --------------------------------------------------------------------------------

def choice_option(value: Any, name: str, choices: Sequence[_T]) -> _T:
    """An option that must be one of `choices` (strings, or integers such as p), returned as that choice (a
    plain str or int also for a numpy.str_ or numpy.int64; a float such as 2.0 or an array is not a choice)."""
    if isinstance(choices[0], str):
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if ok:
        for choice in choices:
            if value == choice:
                return choice
    raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def pair_arrays(x: ArrayLike, y: ArrayLike, x_name: str, y_name: str,
                labels: bool = False) -> tuple[Array, Array, tuple[int, ...], np.dtype[Any], Array]:
    """The two arrays of an element-wise loss, which must have the same shape, as flat C-order vectors of x's
    compute dtype (y converted to it). Returns (x_flat, y_flat, shape, dtype, y_as_given).
    labels=True: y holds labels that the kernel checks, so a value that the conversion rounds (1 + 1e-9 in
    float64 becomes 1.0 in float32) becomes nan, which the kernel reports as not a label."""
    b = as_array(y, y_name)
    a = as_array(x, x_name)
    # labels (+-1) are exact in a half type; targets of another dtype are not rounded to it (see there)
    a = as_float(a, x_name, None if labels else half_partner_dtype(a.dtype, b.dtype))
    if a.shape != b.shape:
        raise ValueError(f"{x_name} has shape {a.shape} and {y_name} has shape {b.shape}: they must be the same")
    x_flat = np.ascontiguousarray(a).reshape(-1)
    y_flat = np.ascontiguousarray(as_float(b, y_name, a.dtype)).reshape(-1)
    if labels and b.dtype.kind == "f" and b.dtype.itemsize > a.dtype.itemsize:
        inexact = y_flat.astype(b.dtype) != np.ravel(b)
        if inexact.any():
            y_flat = np.where(inexact, np.nan, y_flat).astype(a.dtype)
    return x_flat, y_flat, a.shape, a.dtype, b


def class_scores(scores: ArrayLike, name: str = "scores") -> tuple[Array, int, tuple[int, ...]]:
    """Scores of shape (..., C), C >= 1, in their compute dtype; returns (array, C, leading shape)."""
    a = as_float(scores, name)
    if a.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the class axis), got a 0-d array")
    if a.shape[-1] == 0:
        raise ValueError(f"{name} has no classes: its last axis has length 0")
    return a, a.shape[-1], a.shape[:-1]


def _position(name: str, flat_position: int, shape: Sequence[int]) -> str:
    """name[i, j, ...] for the element at flat_position of an array of this shape (name alone when 0-d)."""
    if not shape:
        return name
    where = np.unravel_index(flat_position, shape)
    return f"{name}[{', '.join(str(int(i)) for i in where)}]"


def _value_at(given: Any, flat_position: int) -> Any:
    v = given.reshape(-1)[flat_position] if given.ndim else given[()]
    return v.item() if hasattr(v, "item") else v


def label_error(y: Any, shape: Sequence[int], flat_position: int, name: str = "y") -> ValueError:
    """The ValueError for the first binary label outside {-1, +1} (its position and value as given)."""
    return ValueError(f"{_position(name, flat_position, shape)} = {_value_at(y, flat_position)!r} is not a "
                      f"binary label: {name} must hold -1 or +1")


def target_index_error(target: Any, lead_shape: Sequence[int], flat_position: int, n_classes: int,
                       name: str = "target") -> IndexError:
    """The IndexError for the first class index outside [0, n_classes) (its position and value as given)."""
    return IndexError(f"{_position(name, flat_position, lead_shape)} = {_value_at(target, flat_position)!r} is "
                      f"out of bounds for {n_classes} classes (valid: 0 to {n_classes - 1})")


def kernel_error(status: int, nomem_status: int) -> Exception:
    """The error of a kernel status that has no input to blame (nomem_status: the kernels' FL_ERR_NOMEM)."""
    if status == nomem_status:
        return MemoryError("fastloss: a scratch buffer could not be allocated")
    return RuntimeError(f"fastloss kernel failed with status {status}")


# ---- evaluation ----------------------------------------------------------------------------------------------


def _ml_float_dtypes() -> tuple[np.dtype[Any], ...]:
    """The narrow float dtypes of ml_dtypes (bfloat16, the float8 kinds), if it is installed: computed as
    float32. Imported only when an array of such a dtype (kind 'V') shows up."""
    try:
        import ml_dtypes
    except ImportError:
        return ()
    names = ("bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e4m3b11fnuz")
    return tuple(np.dtype(getattr(ml_dtypes, n)) for n in names if hasattr(ml_dtypes, n))


def scores_dtype(dtype: np.dtype[Any], name: str) -> np.dtype[Any]:
    """The kernel dtype of score data of this dtype: as compute_dtype (bfloat16 read as it is), and float32 for
    the other ml_dtypes floats (float8 kinds). TypeError for what is not real numbers."""
    if is_bfloat16(dtype):
        return dtype
    if dtype.kind == "V" and dtype.fields is None and dtype in _ml_float_dtypes():
        return _F32
    if dtype.kind not in "fiub":
        kind = "complex" if dtype.kind == "c" else "non-numeric"
        raise TypeError(f"{name} must be a real numeric array, got {kind} dtype {dtype}")
    return compute_dtype(dtype)


def file_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype of a .npy file's elements: a 2-byte void ('|V2', how np.save stores ml_dtypes.bfloat16, whose
    name the header cannot hold) is read as bfloat16 when ml_dtypes is installed."""
    if dtype.kind == "V" and dtype.fields is None and dtype.itemsize == 2:
        for d in _ml_float_dtypes():
            if d.name == "bfloat16":
                return d
    return dtype


def index_dtype_check(dtype: np.dtype[Any], name: str) -> None:
    if dtype.kind not in "iu":
        raise TypeError(f"{name} of class indices must have an integer dtype, got {dtype}")


def topk_values(topk: Any) -> tuple[int, ...]:
    """The top-k list: a tuple of distinct ints >= 1 (an int alone is one k), in the order given."""
    ks = (topk,) if not isinstance(topk, (tuple, list)) else tuple(topk)
    out = tuple(integer_option(k, "topk") for k in ks)
    for k in out:
        if k < 1:
            raise ValueError(f"topk values must be >= 1, got {k}")
    if len(set(out)) != len(out):
        raise ValueError(f"topk values must be distinct, got {ks}")
    return out


def chunk_bytes_value(chunk_bytes: Any, default: int) -> int:
    if chunk_bytes is None:
        return default
    c = integer_option(chunk_bytes, "chunk_bytes")
    if c < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {c}")
    return c


def class_index_error(position: int, value: int, lead: tuple[int, ...], n_classes: int) -> IndexError:
    """The IndexError for the target `value` at flat row `position` of the leading shape `lead`."""
    where = np.unravel_index(position, lead) if len(lead) else ()
    where_s = f"target[{', '.join(str(int(i)) for i in where)}]" if len(lead) else "target"
    return IndexError(f"{where_s} = {value} is out of bounds for {n_classes} classes "
                      f"(valid: 0 to {n_classes - 1}, or ignore_index)")


def binary_label_error(position: int, value: float, shape: tuple[int, ...]) -> ValueError:
    where = np.unravel_index(position, shape) if len(shape) else ()
    where_s = f"y[{', '.join(str(int(i)) for i in where)}]" if len(shape) else "y"
    return ValueError(f"{where_s} = {value} is not a label: y must be -1 or +1")
