"""The vector math of src_c/vmath.h (exp, log, log1p, expm1 in float32 and float64) at every SIMD level this
machine runs, against libm through NumPy: max ulp error over millions of inputs and every edge value.
Documented bounds (vmath.h): at most 2 ulp for every function (measured: <= 1.5)."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import _kernels as K

MAX_ULP = 2.0
OPS = ("exp", "log", "log1p", "expm1")


def vm(op, x):
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    K.vmath(K.VMATH_OPS[op], x, out)
    return out


def truth(op, x):
    """libm's value: for float32 inputs, float64 libm rounded to float32 (within 0.5 ulp + float64's error);
    for float64 inputs, long double libm where the platform has it (x86: 80-bit), else float64."""
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        return getattr(np, op)(x.astype(wide))


def ulp_error(got, want, dtype):
    """|got - want| in units of the last place of `want` in `dtype` (subnormals: the smallest spacing)."""
    want_d = want.astype(dtype)
    spacing = np.spacing(np.abs(want_d)).astype(np.longdouble)
    return np.abs(got.astype(np.longdouble) - want.astype(np.longdouble)) / spacing


def domain(op, dtype, n, rng):
    """n inputs spread over the function's whole finite domain (random bit patterns and a uniform range)."""
    info = np.finfo(dtype)
    if op == "exp":
        lo, hi = np.log(info.tiny) - 20, np.log(info.max)  # into the subnormal results, up to overflow
    elif op == "expm1":
        lo, hi = -40.0, np.log(info.max)
    elif op == "log":
        lo, hi = 0.0, None
    else:
        lo, hi = -1.0, None
    if hi is not None:
        x = rng.uniform(lo, hi, n).astype(dtype)
        small = rng.uniform(-1, 1, n // 4).astype(dtype) * dtype(1e-3)
        return np.concatenate([x, small])
    bits = rng.integers(0, np.iinfo(np.int32 if dtype == np.float32 else np.int64).max, n,
                        dtype=np.int32 if dtype == np.float32 else np.int64)
    x = np.abs(bits.view(dtype))
    x = x[np.isfinite(x)]
    if op == "log1p":
        x = np.concatenate([x, rng.uniform(-1, 1, n // 2).astype(dtype),
                            rng.uniform(-1e-5, 1e-5, n // 4).astype(dtype)])
        x = x[x > -1]
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_max_ulp_over_the_domain(simd_level, op, dtype):
    rng = np.random.default_rng(20261127)
    x = domain(op, dtype, 1_000_000, rng)
    want = truth(op, x)
    finite = np.isfinite(want.astype(dtype)) & (np.abs(want.astype(dtype)) > 0)
    err = ulp_error(vm(op, x)[finite], want[finite], dtype)
    assert err.max() <= MAX_ULP, (op, dtype.__name__, simd_level, float(err.max()), x[finite][np.argmax(err)])


def edge_values(dtype):
    info = np.finfo(dtype)
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, 2.0, info.tiny, -info.tiny, info.max, -info.max,
         info.smallest_subnormal, -info.smallest_subnormal, info.eps, -info.eps, 1e-30, -1e-30,
         np.log(info.max), -np.log(info.max), np.log(info.tiny), np.log(info.smallest_subnormal), 700.0, -700.0,
         88.0, 88.72, 89.0, -87.0, -103.0, -104.0, -746.0, 710.0, -0.9999, -1.0000001]
    with np.errstate(over="ignore"):
        x = np.array(v, dtype=dtype)
        return np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS)
def test_edge_values_as_libm(simd_level, op, dtype):
    x = edge_values(dtype)
    got = vm(op, x)
    with np.errstate(over="ignore"):
        want = truth(op, x).astype(dtype)
    # the same class of result: nan where libm has nan, the same infinities and signed zeros, exact 0/1 results
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{op} nan pattern")
    special = ~np.isfinite(want) | (want == 0) | (want == 1) | (want == -1)
    np.testing.assert_array_equal(got[special], want[special], err_msg=f"{op} special values")
    np.testing.assert_array_equal(np.signbit(got[want == 0]), np.signbit(want[want == 0]), err_msg=f"{op} zeros")
    finite = np.isfinite(want) & ~special
    assert ulp_error(got[finite], truth(op, x)[finite], dtype).max() <= MAX_ULP


def test_every_level_is_deterministic(simd_level):
    x = np.random.default_rng(1).normal(size=100_000) * 30
    for op in ("exp", "log1p"):
        a = vm(op, np.abs(x) if op == "log" else x)
        b = vm(op, np.abs(x) if op == "log" else x)
        assert a.tobytes() == b.tobytes()


# ---- the vector forms inside the float32 element-wise losses -------------------------------------------------
# exponential_loss, logistic_loss and binary_cross_entropy_with_logits compute float32 data without weights with
# vmath.h's vector exp (vscalefps at avx512) and log1p-of-[0, 1] (approximate reciprocal + a Newton step); the
# last < 16 elements of a block use the scalar functions. Per-element losses (reduction="none") and gradients
# must be within 3 float ulps of float64 libm (losses 2), over the whole range and the edge values.

def _margin_inputs(rng, n):
    x = np.concatenate([rng.uniform(-110, 110, n), rng.normal(size=n), rng.uniform(-1e-3, 1e-3, n // 4),
                        edge_values(np.float32).astype(np.float64)]).astype(np.float32)
    y = np.where(rng.random(x.size) < 0.5, -1.0, 1.0).astype(np.float32)
    return x, y


MAX_ULP_LOSSES = 3.0  # measured: losses <= 1.96, gradients (a product with 1 / (1 + e)) <= 2.97


def _assert_ulp(got, want, what):
    with np.errstate(over="ignore"):
        want32 = want.astype(np.float32)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want32), err_msg=f"{what}: nan pattern")
    special = ~np.isfinite(want32) | (want32 == 0)
    np.testing.assert_array_equal(got[special], want32[special], err_msg=f"{what}: inf / 0")
    fin = ~special & ~np.isnan(want32)
    with np.errstate(over="ignore"):
        err = ulp_error(got[fin], want[fin], np.float32)
    assert err.max() <= MAX_ULP_LOSSES, (what, float(err.max()))


def test_vector_forms_in_the_losses(simd_level):
    rng = np.random.default_rng(5)
    x, y = _margin_inputs(rng, 300_000)
    m = (x.astype(np.float64) * y)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(m))
        sig_neg = np.where(m < 0, 1.0, e) / (1.0 + e)                      # sigmoid(-m)
        cases = [
            ("exponential", fl.exponential_loss_and_grad, np.exp(-m), -y * np.exp(-m)),
            ("logistic", fl.logistic_loss_and_grad, np.maximum(-m, 0) + np.log1p(e), -y * sig_neg),
        ]
        t = (y > 0).astype(np.float32)
        xd = x.astype(np.float64)
        ex = np.exp(-np.abs(xd))
        bce = np.maximum(xd, 0) - t * xd + np.log1p(ex)  # without cancellation (float64 has it too)
    for name, fn, want_loss, want_grad in cases:
        loss, grad = fn(x, y, reduction="none")
        _assert_ulp(loss, want_loss, name + " loss")
        _assert_ulp(grad, want_grad, name + " grad")
    fin = np.isfinite(xd)  # torch's nan at x = +-inf (0 * inf) is tested in test_bce_kl.py
    loss, grad = fl.binary_cross_entropy_with_logits_and_grad(x[fin], t[fin], reduction="none")
    _assert_ulp(loss, bce[fin], "bce loss")
    _assert_ulp(grad, np.where(xd >= 0, (1 - t) - t * ex, ex * (1 - t) - t)[fin] / (1 + ex[fin]), "bce grad")
