"""kl_div's vector form (distributions.c: fl_kl_div_velem, float data computed in float vectors: the log or exp and
the loss in float, the sums in double) against its scalar form (the element loop, in double: the last < 16
elements of each block of 16384) and the float64 kernel: edge values, both log_target forms, every tail and
block boundary, half types and strided input, at every SIMD level (test_pair_vector.py does this for the pair
losses; kl_div has no sample weights, so its own file)."""
import zlib

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

from test_pair_vector import BLOCK, HALVES, X_EDGES, _assert_agree, _in_tails, _in_vectors, _outputs

# y = p (or log p): zeros of both signs, subnormal, tiny, huge, negative (nan), infinities, nan
Y_EDGES = [0.0, -0.0, 1e-40, 1e-30, 1e-8, 0.3, 1.0, 2.5, -2.0, 20.0, 1e4, 3e38, np.inf, -np.inf, np.nan]
FORMS = [False, True]


def _grid():
    x, y = (a.ravel() for a in np.meshgrid(np.array(X_EDGES), np.array(Y_EDGES), indexing="ij"))
    return x.astype(np.float32), y.astype(np.float32)


def _scale_of_terms(x, y, log_target):
    """|y log y| + |y x| (exp(y) (|y| + |x|) with log_target): a float form's error is a few eps of this (its two
    terms cancel where x ~ log y, as in torch's float32 form); at least 1e-30."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    with np.errstate(all="ignore"):
        if log_target:
            s = np.exp(y) * (np.abs(y) + np.abs(x))
        else:
            s = np.abs(np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)) + np.abs(y * x)
    return np.maximum(np.nan_to_num(s, nan=np.inf), 1e-30)


@pytest.mark.parametrize("log_target", FORMS)
def test_vector_form_against_scalar_form_and_float64_at_edges(log_target, simd_level):
    x, y = _grid()
    kw = {"log_target": log_target}
    vec = _in_vectors("kl_div", x, y, {}, kw)
    sca = _in_tails("kl_div", x, y, {}, kw)
    f64 = _outputs("kl_div", x.astype(np.float64), y.astype(np.float64), {}, kw)
    scale = _scale_of_terms(x, y, log_target)
    for what, v, s, t in zip(("loss", "grad", "hess"), vec, sca, f64):
        assert v.dtype == s.dtype == np.float32
        # nan and inf where the scalar form (double, rounded once) has them, the same signs; but where y log y
        # overflows float (y > 3.8e36; the vector form's inf - inf x is torch's float32 form there)
        with np.errstate(over="ignore"):
            t32 = t.astype(np.float32)
        fin = np.isfinite(t32) & np.isfinite(v)
        same = (np.abs(y) < 1e36) | np.isinf(y) | log_target
        np.testing.assert_array_equal(np.isnan(v[same]), np.isnan(s[same]),
                                      err_msg=f"{what} log_target={log_target}: nan")
        np.testing.assert_array_equal(np.where(np.isinf(v), v, 0)[same], np.where(np.isinf(s), s, 0)[same],
                                      err_msg=f"{what} log_target={log_target}: inf")
        # finite where float64 is finite and fits float32, except where a float32 intermediate overflows (y log y
        # or exp(y) of a y near float32's top)
        overflow = ~np.isfinite(v) & np.isfinite(t32)
        assert not overflow[np.abs(y) < 1e30].any(), (what, x[overflow], y[overflow])
        err = np.abs(v[fin].astype(np.float64) - t[fin]) / (scale[fin] if what == "loss" else np.maximum(
            np.abs(t[fin]), 1e-30))
        worst = np.argmax(err) if err.size else 0
        assert (err <= 4 * np.finfo(np.float32).eps).all(), \
            (what, log_target, float(x[fin][worst]), float(y[fin][worst]), float(err.max()))


@pytest.mark.parametrize("log_target", FORMS)
@pytest.mark.parametrize("n", [1, 15, 16, 17, 33, 100, 129, BLOCK + 31, 2 * BLOCK + 5])
def test_lengths_and_reductions_against_the_oracle(log_target, n, simd_level):
    """Random (log q, p) over every tail and block boundary: per element, the sums (sum, batchmean) and the
    gradient against the float64 oracle; zeros of p in the vector groups and the tails."""
    rng = np.random.default_rng(zlib.crc32(f"kl_div {n} {log_target}".encode()))
    x = np.log(rng.random(n) + 1e-3).astype(np.float32)
    p = rng.random(n)
    p[rng.random(n) < 0.2] = 0.0
    y = (np.log(p + 1e-3) if log_target else p).astype(np.float32)
    kw = {"log_target": log_target}
    scale = _scale_of_terms(x, y, log_target)
    for reduction in ("none", "sum", "batchmean"):
        loss, grad, hess = fl.kl_div_grad_hess(x, y, reduction=reduction, **kw)
        want_loss, want_grad = R.kl_div_and_grad(x.astype(np.float64), y.astype(np.float64), reduction=reduction,
                                                 **kw)
        assert grad.dtype == hess.dtype == np.float32 and not hess.any()
        np.testing.assert_allclose(grad, want_grad, rtol=2 * np.finfo(np.float32).eps, atol=0)
        bound = 4 * np.finfo(np.float32).eps * (scale if reduction == "none" else
                                                np.sum(scale) / (1 if reduction == "sum" else max(n, 1)))
        assert np.all(np.abs(np.asarray(loss, np.float64) - want_loss) <= bound), reduction
    # the threads' blocks: the same bits on 1 and 2 threads
    np.testing.assert_array_equal(fl.kl_div(x, y, reduction="sum", n_threads=1, **kw),
                                  fl.kl_div(x, y, reduction="sum", n_threads=2, **kw))


@pytest.mark.parametrize("log_target", FORMS)
@pytest.mark.parametrize("dtype", HALVES, ids=lambda d: np.dtype(d).name)
def test_half_types_and_strided(log_target, dtype, simd_level):
    """float16 / bfloat16 input (computed in float32: the same bits as float32 input holding the same values), from
    a strided view, over a length with a tail in every block."""
    n = BLOCK + 45
    rng = np.random.default_rng(zlib.crc32(f"kl_div half {log_target}".encode()))
    x = np.log(rng.random(2 * n) + 1e-3).astype(dtype)[::2]
    p = rng.random(2 * n)
    p[rng.random(2 * n) < 0.2] = 0.0
    y = (np.log(p + 1e-3) if log_target else p).astype(dtype)[::2]
    for reduction in ("none", "sum"):
        got = fl.kl_div_grad_hess(x, y, reduction=reduction, log_target=log_target)
        want = fl.kl_div_grad_hess(x.astype(np.float32), y.astype(np.float32), reduction=reduction,
                                   log_target=log_target)
        for g, h in zip(got, want):
            assert np.asarray(g).dtype == np.float32
            np.testing.assert_array_equal(g, h)
