"""Fuzzes every public fastloss function: arbitrary bytes become arrays (dtype, shape, layout, values with nan,
inf, subnormals, out-of-range indices) and options (valid and invalid), and the call must either succeed or
raise ValueError, IndexError or TypeError (MemoryError is allowed too). Anything else fails, and so does a
crash (under tools/sanitize.sh, any out-of-bounds access). On an error, a caller's grad_out / out buffer must be
untouched; on success the result has a float dtype.

    pip install -e ".[fuzz]"
    python tools/fuzz_fastloss.py -max_total_time=60          # atheris (libFuzzer) for 60 s
    FUZZ_SECONDS=60 tools/sanitize.sh -k fuzz                   # the same on the ASan/UBSan build

`run_one(data)` is the harness; tests/test_fuzz_smoke.py replays random byte strings through it without atheris.
"""
import inspect
import sys
import warnings

import numpy as np

FUNCTIONS = ("logsumexp", "softmax", "log_softmax", "cross_entropy", "cross_entropy_and_grad", "nll_loss",
             "nll_loss_and_grad", "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_and_grad",
             "kl_div", "kl_div_and_grad", "entropy", "categorical_cross_entropy", "kl_divergence", "zero_one_loss",
             "logistic_loss", "logistic_loss_and_grad", "exponential_loss", "exponential_loss_and_grad",
             "hinge_loss", "hinge_loss_and_grad", "multiclass_hinge_loss", "multiclass_hinge_loss_and_grad",
             "mse_loss", "mse_loss_and_grad", "l1_loss", "l1_loss_and_grad", "huber_loss", "huber_loss_and_grad",
             "cross_entropy_grad_hess")
ALLOWED = (ValueError, IndexError, TypeError, MemoryError)
DTYPES = (np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, np.uint64, np.int32, np.bool_,
          np.complex128, object)
SPECIAL = (0.0, 1.0, -1.0, 0.5, 2.0, -0.0, np.nan, np.inf, -np.inf, 1e38, -1e38, 1e308, -1e308, 5e-324, 1e-40,
           3.0, -100.0, 2.0 ** 63, 2.0 ** 64 - 1, -(2.0 ** 63), 255.0, 127.0)
# option: (valid values, invalid values); an invalid one is drawn one time in eight
OPTIONS = {
    "reduction": (("mean", "sum", "none"), ("batchmean", "avg", None)),
    "ignore_index": ((-100, -1, 0, 1), (2 ** 63, 1.5)),
    "label_smoothing": ((0.0, 0.1, 1.0), (-0.1, 1.5, np.nan)),
    "margin": ((1.0, 0.0, -2.0), (np.inf, np.nan)),
    "delta": ((1.0, 0.5, 1e-300), (0.0, -1.0, np.inf)),
    "p": ((1, 2), (3, 2.0)),
    "kind": (("crammer_singer", "weston_watkins"), ("other",)),
    "squared": ((False, True), ()),
    "log_target": ((False, True), ()),
    "base": ((None, 2, 10.0), (1, 0, -1.0, np.nan)),
    "axis": ((-1, 0, None, (0, 1)), (5, (0, 0))),
    "keepdims": ((False, True), ()),
    "n_threads": ((None, 1, 2, 3), (0, -1)),
}
MAX_DIM = 6


class Bytes:
    """Draws choices from a byte string (zeros once it is used up), so every byte string is a test case."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def byte(self):
        b = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return b

    def below(self, n):
        return self.byte() % n if n > 1 else 0

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def raw(self, n):
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk + bytes(n - len(chunk))


def make_shape(src, ndim=None):
    ndim = src.below(4) if ndim is None else ndim
    return tuple(0 if src.below(8) == 7 else 1 + src.below(MAX_DIM) for _ in range(ndim))


def make_values(src, shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    if src.below(4) == 0 and dtype is not object:  # raw bytes reinterpreted: any bit pattern
        item = np.dtype(dtype).itemsize
        return np.frombuffer(src.raw(n * item), dtype=dtype).reshape(shape).copy()
    vals = [src.choice(SPECIAL) if src.below(3) else (src.byte() - 128) / 16.0 for _ in range(n)]
    a = np.array(vals, dtype=np.float64).reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype is object:
            return a.astype(object)
        if np.dtype(dtype).kind in "iub":
            info = np.iinfo(dtype) if np.dtype(dtype).kind != "b" else None
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
            if info is not None:
                a = np.clip(a, float(info.min), float(info.max))
        return a.astype(dtype)


def make_layout(src, a):
    """a in a random memory layout (same values): C, Fortran, strided, reversed, broadcast, unaligned,
    byte-swapped, read-only, or a list."""
    a = np.asarray(a)
    how = src.below(10)
    if how == 1 and a.ndim >= 2:
        return np.asfortranarray(a)
    if how == 2 and a.ndim >= 1:
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if how == 3 and a.ndim >= 1:
        return np.flip(np.flip(a, 0).copy(), 0)
    if how == 4 and a.ndim >= 1 and a.shape[0] >= 1:
        return np.broadcast_to(a[:1], a.shape)
    if how == 5 and a.dtype.itemsize > 1 and a.dtype != object:
        buf = np.empty(a.nbytes + 1, np.uint8)
        v = buf[1:].view(a.dtype).reshape(a.shape)
        v[...] = a
        return v
    if how == 6 and a.dtype.itemsize > 1 and a.dtype != object:
        return a.astype(a.dtype.newbyteorder())
    if how == 7:
        v = a.copy()
        v.flags.writeable = False
        return v
    if how == 8 and a.dtype in (np.float64, np.int64):
        return a.tolist()
    return a


def make_array(src, shape):
    dtype = src.choice(DTYPES) if src.below(3) == 0 else src.choice(DTYPES[:2])
    return make_layout(src, make_values(src, shape, dtype))


def second_shape(src, shape):
    """The shape of the second argument: the first's (element-wise losses, probability targets), the first's
    without its last axis (class indices), or anything."""
    how = src.below(6)
    if how <= 2:
        return shape
    if how <= 4 and shape:
        return shape[:-1]
    return make_shape(src)


def make_indices(src, shape):
    dtype = src.choice((np.int64, np.int64, np.int8, np.uint8, np.int32, np.uint64, np.int16))
    info = np.iinfo(dtype)
    pool = [0, 1, 2, 3, -1, -100, info.max, info.min, 7]
    n = int(np.prod(shape, dtype=np.int64))
    vals = [src.choice(pool) if src.below(4) == 0 else src.below(6) for _ in range(n)]
    return make_layout(src, np.array([int(np.clip(v, info.min, info.max)) for v in vals], dtype=dtype)
                       .reshape(shape))


def make_buffer(src, shape, dtype):
    """A grad_out / out buffer: usually right, sometimes wrong (shape, dtype, layout, read-only)."""
    how = src.below(8)
    if how == 1:
        return np.zeros(shape + (1,), dtype)
    if how == 2:
        return np.zeros(shape, np.float32 if dtype == np.float64 else np.float64)
    if how == 3 and len(shape) >= 1:
        return np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]
    if how == 4:
        v = np.zeros(shape, dtype)
        v.flags.writeable = False
        return v
    if how == 5:
        buf = np.zeros(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize + 1, np.uint8)
        return buf[1:].view(dtype).reshape(shape)
    return np.full(shape, -7.25, dtype)


_PARAMS = {}


def params(name):
    import fastloss as fl
    if name not in _PARAMS:
        _PARAMS[name] = inspect.signature(getattr(fl, name)).parameters
    return _PARAMS[name]


def run_one(data):
    """One fuzz case: calls one public function on arrays and options made from `data`. Raises AssertionError
    (or the unexpected exception) when fastloss misbehaves."""
    import fastloss as fl
    src = Bytes(data)
    name = src.choice(FUNCTIONS)
    ps = params(name)
    shape = make_shape(src)
    first = make_array(src, shape)
    args = [first]
    second_name = [p for p in ps][1] if len(ps) > 1 else None
    if second_name in ("target", "y", "q"):
        s2 = second_shape(src, shape)
        use_indices = s2 != shape or src.below(3) == 0
        args.append(make_indices(src, s2) if use_indices and src.below(4) else make_array(src, s2))
    kwargs = {}
    n_classes = shape[-1] if shape else 1
    for opt, (valid, invalid) in OPTIONS.items():
        if opt in ps and (ps[opt].kind != ps[opt].POSITIONAL_OR_KEYWORD or opt == "axis"):
            if src.below(3) == 0:
                kwargs[opt] = src.choice(invalid) if invalid and src.below(8) == 7 else src.choice(valid)
    for opt in ("weight", "sample_weight", "pos_weight"):
        if opt in ps and src.below(4) == 0:
            wshape = src.choice(((n_classes,), shape[:-1] if shape else (), shape, make_shape(src)))
            kwargs[opt] = make_array(src, wshape)
    buf_name = "grad_out" if "grad_out" in ps else "out" if "out" in ps else None
    buf = None
    if buf_name and src.below(2):
        dt = np.asarray(first).dtype
        dt = np.float32 if dt in (np.float16, np.float32) else np.float64
        buf = make_buffer(src, shape, dt)
        kwargs[buf_name] = buf
    hess = None
    if "hess_out" in ps and src.below(2):
        dt = np.asarray(first).dtype
        hess = make_buffer(src, shape, np.float32 if dt in (np.float16, np.float32) else np.float64)
        kwargs["hess_out"] = hess
    before = None if buf is None else buf.copy()
    hess_before = None if hess is None else hess.copy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = getattr(fl, name)(*args, **kwargs)
    except ALLOWED as e:
        if buf is not None:
            assert np.array_equal(buf, before, equal_nan=True), f"{name} wrote {buf_name} and raised {e!r}"
        if hess is not None:
            assert np.array_equal(hess, hess_before, equal_nan=True), f"{name} wrote hess_out and raised {e!r}"
        return
    for r in (result if isinstance(result, tuple) else (result,)):
        assert np.asarray(r).dtype in (np.float32, np.float64), f"{name} returned dtype {np.asarray(r).dtype}"
    if buf is not None and name.endswith(("_and_grad", "_grad_hess")):
        assert result[1] is buf, f"{name} did not return grad_out"
    if hess is not None:
        assert result[2] is hess, f"{name} did not return hess_out"


def main():
    import atheris
    with atheris.instrument_imports():
        import fastloss  # noqa: F401  (coverage feedback from the Python layer)
    atheris.Setup(sys.argv, run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
