"""Shared test helpers of fastloss: the tolerance rule, the oracle comparison, and the "array zoo" of memory
layouts (after bottleneck's tests).

Test modules import the helpers directly (``from conftest import assert_close, zoo_variant, ...``): pytest puts
this directory on sys.path (rootdir-relative "prepend" import mode, tests/ has no __init__.py).
"""
import numpy as np
import pytest

import fastloss as fl

# ---- tolerances ---------------------------------------------------------------------------------------------

#: float32 results: within this many float32 eps; float64 results: within RTOL_F64.
F32_EPS_COUNT = 4
F32_EPS = float(np.finfo(np.float32).eps)
RTOL_F64 = 1e-12


def tolerance(dtype):
    """The relative tolerance of a result of this dtype (compared with the float64 truth):
    float32 (also float16 input) 4 float32 eps, float64 1e-12."""
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        return RTOL_F64
    if dtype in (np.float32, np.float16):
        return F32_EPS_COUNT * F32_EPS
    raise AssertionError(f"no tolerance for dtype {dtype}")


def assert_close(actual, expected, dtype=None, kind="value", factor=1.0, scale=0.0, err_msg=""):
    """Compares a fastloss result with the (float64) truth.

    kind="value": |actual - expected| <= tol * max(1, |expected|) element-wise (losses, logsumexp, log-probs,
    probabilities).  kind="grad": |actual - expected| <= tol * max(max |expected|, scale) over the whole array:
    a gradient's error is absolute, on the scale of its largest entry or of the terms that cancel in it
    (`scale`, e.g. the weight times the reduction's 1/den of a row whose gradient is p - onehot); an expected
    gradient that is all zero with scale 0 must be exactly zero. tol = tolerance(dtype) * factor, dtype
    defaulting to actual's dtype.
    nan must be where expected has nan, and +-inf exactly where expected has it.
    """
    a = np.asarray(actual)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"shape {a.shape} != expected {e.shape}. {err_msg}"
    dt = a.dtype if dtype is None else np.dtype(dtype)
    tol = tolerance(dt) * factor
    a64 = a.astype(np.float64)
    nan_e, nan_a = np.isnan(e), np.isnan(a64)
    assert np.array_equal(nan_e, nan_a), (
        f"nan mismatch: expected nan at {np.argwhere(nan_e)[:5].tolist()}, got nan at "
        f"{np.argwhere(nan_a)[:5].tolist()}. {err_msg}")
    inf_e = np.isinf(e)
    assert np.array_equal(inf_e, np.isinf(a64)) and np.array_equal(e[inf_e], a64[inf_e]), (
        f"inf mismatch: expected {e[inf_e | np.isinf(a64)][:5]}, got {a64[inf_e | np.isinf(a64)][:5]}. {err_msg}")
    fin = np.isfinite(e)
    if not fin.any():
        return
    ef, af = e[fin], a64[fin]
    if kind == "value":
        bound = tol * np.maximum(1.0, np.abs(ef))
    elif kind == "grad":
        bound = tol * max(float(np.max(np.abs(ef))), scale) * np.ones_like(ef)
    else:
        raise ValueError(kind)
    err = np.abs(af - ef)
    bad = err > bound
    if bad.any():
        k = int(np.argmax(err - bound))
        raise AssertionError(
            f"{int(bad.sum())} of {ef.size} values off beyond tol {tol:.3g} ({kind}): worst got {af[k]!r}, "
            f"expected {ef[k]!r}, error {err[k]:.3g} > bound {bound[k]:.3g}. {err_msg}")


def assert_identical(actual, expected, err_msg=""):
    """Same dtype, shape and bits (nan equal to nan): for thread counts, layouts and repeated calls."""
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.dtype == e.dtype, f"dtype {a.dtype} != {e.dtype}. {err_msg}"
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}. {err_msg}"
    if a.dtype.kind == "f":
        # compare bit patterns (distinguishes -0.0 from 0.0; any nan equals any nan)
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        same &= (np.signbit(a) == np.signbit(e)) | np.isnan(a)
    else:
        same = a == e
    if not np.all(same):
        idx = np.argwhere(~np.asarray(same))[:3].tolist()
        raise AssertionError(f"results differ at {idx}: {a[tuple(np.array(idx).T)] if a.ndim else a} vs "
                             f"{e[tuple(np.array(idx).T)] if e.ndim else e}. {err_msg}")


def result_dtype(input_dtype):
    """The API's compute/result dtype of an input dtype: float16 -> float32, integers/bool -> float64."""
    dt = np.dtype(input_dtype)
    return np.dtype(np.float32) if dt in (np.float16, np.float32) else np.dtype(np.float64)


# ---- random data ---------------------------------------------------------------------------------------------

@pytest.fixture
def rng(request):
    """A generator seeded from the test's node id: fixed for each test, different between tests."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(request.node.nodeid)) % (2 ** 32)
    return np.random.default_rng(seed)


def random_logits(rng, shape, dtype=np.float64, scale=3.0):
    """Normal logits times `scale` in `dtype` (integers: rounded normal * scale, bool: random bits)."""
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    x = rng.standard_normal(shape) * scale
    if dt.kind in "iu":
        lo = np.iinfo(dt).min
        return np.clip(np.round(x), lo, np.iinfo(dt).max).astype(dt)
    return x.astype(dt)


# ---- the array zoo -------------------------------------------------------------------------------------------
# Every variant holds exactly the values of x (nan included), with another memory layout. A function must give
# the same result (the same bits) for every variant, and must leave the variant unmodified.

ZOO = ("c_order", "fortran", "strided_last", "strided_first", "reversed_last", "reversed_first", "readonly",
       "byteswapped", "unaligned", "list")


def _garbage(dtype):
    """A fill value that changes any result it leaks into: huge floats, the largest integer (an out-of-range
    class index), True."""
    if dtype.kind == "f":
        return np.finfo(dtype).max / 4
    if dtype.kind in "iu":
        return np.iinfo(dtype).max
    return True


def zoo_variant(x, name):
    """x (a NumPy array) in memory layout `name` (see ZOO), or None when the layout does not apply to x
    (e.g. a strided view of a 0-d array, or a list of a float32 array, which would become float64)."""
    x = np.asarray(x)
    if name == "c_order":
        return np.ascontiguousarray(x)
    if name == "fortran":
        return np.asfortranarray(x) if x.ndim >= 2 else None
    if name in ("strided_last", "strided_first"):
        if x.ndim == 0:
            return None
        ax = x.ndim - 1 if name == "strided_last" else 0
        big_shape = list(x.shape)
        big_shape[ax] *= 2
        big = np.full(big_shape, _garbage(x.dtype), dtype=x.dtype)  # between the elements: never read
        sl = [slice(None)] * x.ndim
        sl[ax] = slice(None, None, 2)
        big[tuple(sl)] = x
        return big[tuple(sl)]  # x[:, ::2] (last axis) / x[::2] (first axis) of a twice larger array
    if name in ("reversed_last", "reversed_first"):
        if x.ndim == 0:
            return None
        ax = x.ndim - 1 if name == "reversed_last" else 0
        return np.flip(np.flip(x, ax).copy(), ax)  # negative stride along ax, same values
    if name == "readonly":
        v = x.copy()
        v.flags.writeable = False
        return v
    if name == "byteswapped":
        if x.dtype.itemsize == 1:
            return None
        v = x.astype(x.dtype.newbyteorder())
        assert v.dtype != x.dtype and np.array_equal(v, x, equal_nan=x.dtype.kind == "f")
        return v
    if name == "unaligned":
        if x.dtype.itemsize == 1 or x.size == 0:
            return None
        buf = np.empty(x.nbytes + 1, dtype=np.uint8)
        v = buf[1:].view(x.dtype).reshape(x.shape)
        v[...] = x
        assert not v.flags.aligned
        return v
    if name == "list":
        # a list round-trips to the same dtype only for float64, int64 and bool
        if x.dtype not in (np.float64, np.int64, np.bool_):
            return None
        return x.tolist()
    raise ValueError(name)


def array_zoo(x):
    """Yields (name, variant) for every layout of ZOO that applies to x."""
    for name in ZOO:
        v = zoo_variant(x, name)
        if v is not None:
            yield name, v


def snapshot(v):
    """A copy of an input to check later that the call did not modify it."""
    if isinstance(v, np.ndarray):
        return v.copy()
    import copy
    return copy.deepcopy(v)


def assert_unmodified(v, before, name="input"):
    if isinstance(v, np.ndarray):
        assert v.dtype == before.dtype and v.shape == before.shape, f"{name} changed dtype or shape"
        assert np.array_equal(v, before, equal_nan=v.dtype.kind == "f"), f"{name} was modified by the call"
    else:
        assert v == before, f"{name} was modified by the call"


# ---- SIMD level ------------------------------------------------------------------------------------------------

@pytest.fixture(params=fl.available_simd_levels())
def simd_level(request):
    """Runs the test once per SIMD level this build and CPU have; restores the level in use after."""
    before = fl.simd_level()
    fl.set_simd_level(request.param)
    try:
        yield request.param
    finally:
        fl.set_simd_level(before)
