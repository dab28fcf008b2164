"""Property tests (hypothesis): random shapes, dtypes, layouts and extreme values (+-max, +-inf, nan, subnormals)
against the oracle (fastloss.reference) with the documented tolerance, and invariants. The "ci" profile
(HYPOTHESIS_PROFILE=ci, set by .ci/run) is derandomized."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastloss as fl
from fastloss import reference as ref

from conftest import assert_close

settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
settings.register_profile("dev", deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
EXAMPLES = settings(max_examples=120, deadline=None)

DTYPES = st.sampled_from([np.float32, np.float64])


def extreme_floats(dtype, finite=False):
    """Any value of the dtype: +-max, subnormals, +-inf and nan (unless finite)."""
    width = 32 if dtype == np.float32 else 64
    big = 1e38 if dtype == np.float32 else 1e308
    special = [big, -big, 0.0, -0.0, float(np.finfo(dtype).smallest_subnormal)]
    if not finite:
        special += [np.inf, -np.inf, np.nan]
    return st.one_of(st.floats(width=width, allow_nan=not finite, allow_infinity=not finite),
                     st.sampled_from(special), st.floats(-30, 30, width=width))


def layout(a, how):
    if how == "fortran" and a.ndim == 2:
        return np.asfortranarray(a)
    if how == "reversed" and a.ndim >= 1:
        return np.flip(np.flip(a, -1).copy(), -1)
    if how == "strided" and a.ndim >= 1:
        return np.repeat(a, 2, axis=-1)[..., ::2]
    return a


@st.composite
def matrices(draw, finite=False, min_cols=1, elements=None):
    dtype = draw(DTYPES)
    shape = draw(st.tuples(st.integers(0, 5), st.integers(min_cols, 9)))
    a = draw(hnp.arrays(dtype, shape, elements=elements(dtype) if elements else extreme_floats(dtype, finite)))
    return layout(a, draw(st.sampled_from(["c", "fortran", "reversed", "strided"])))


def close(got, expected):
    with np.errstate(all="ignore"):
        assert_close(got, expected)


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
@EXAMPLES
@given(x=matrices())
def test_primitives_match_the_oracle(name, x):
    if x.shape[0] == 0 and name != "logsumexp":
        return
    with np.errstate(all="ignore"):
        close(getattr(fl, name)(x), getattr(ref, name)(x))


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "multiclass_hinge_loss"])
@EXAMPLES
@given(x=matrices(finite=True), data=st.data())
def test_class_losses_match_the_oracle(name, x, data):
    t = data.draw(hnp.arrays(np.int64, x.shape[0], elements=st.integers(0, x.shape[1] - 1)))
    with np.errstate(all="ignore"):
        close(getattr(fl, name)(x, t, reduction="none"), getattr(ref, name)(x, t, reduction="none"))


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss", "logistic_loss", "hinge_loss",
                                  "exponential_loss", "binary_cross_entropy_with_logits"])
@EXAMPLES
@given(x=matrices(), data=st.data())
def test_pair_losses_match_the_oracle(name, x, data):
    if name.endswith(("logistic_loss", "hinge_loss", "exponential_loss")):
        y = data.draw(hnp.arrays(x.dtype, x.shape, elements=st.sampled_from([-1.0, 1.0])))
    elif name.startswith("binary"):
        y = data.draw(hnp.arrays(x.dtype, x.shape, elements=st.floats(0, 1, width=32)))
    else:
        y = data.draw(hnp.arrays(x.dtype, x.shape, elements=extreme_floats(x.dtype)))
    with np.errstate(all="ignore"):
        close(getattr(fl, name)(x, y, reduction="none"), getattr(ref, name)(x, y, reduction="none"))


def probabilities(dtype):
    return st.one_of(st.floats(0, 1, width=32 if dtype == np.float32 else 64), st.sampled_from([0.0, 1.0]))


@pytest.mark.parametrize("name", ["entropy", "categorical_cross_entropy", "kl_divergence"])
@EXAMPLES
@given(p=matrices(elements=probabilities), data=st.data())
def test_distributions_match_the_oracle(name, p, data):
    args = [p] if name == "entropy" else [p, data.draw(hnp.arrays(p.dtype, p.shape, elements=probabilities(p.dtype)))]
    with np.errstate(all="ignore"):
        close(getattr(fl, name)(*args), getattr(ref, name)(*args))


# ---- invariants ----------------------------------------------------------------------------------------------

@EXAMPLES
@given(x=matrices(finite=True, elements=lambda dt: st.floats(-1e4, 1e4, width=32 if dt == np.float32 else 64)))
def test_softmax_rows_sum_to_one(x):
    s = fl.softmax(x).astype(np.float64).sum(axis=-1)
    tol = 4 * np.finfo(x.dtype).eps * x.shape[-1]
    assert np.all(np.abs(s - 1) <= tol), s


@EXAMPLES
@given(x=matrices(finite=True, elements=lambda dt: st.floats(-50, 50, width=32 if dt == np.float32 else 64)),
       c=st.floats(-100, 100))
def test_logsumexp_shifts_with_its_input(x, c):
    c = float(x.dtype.type(c))
    shifted = (x.astype(np.float64) + c).astype(x.dtype)
    if not np.array_equal(shifted.astype(np.float64) - c, x.astype(np.float64)):
        return  # the shift rounded some entry: the identity holds only up to that rounding
    got = fl.logsumexp(shifted).astype(np.float64)
    expected = fl.logsumexp(x).astype(np.float64) + c
    eps = np.finfo(x.dtype).eps
    assert np.all(np.abs(got - expected) <= 4 * eps * np.maximum(1, np.abs(expected)) + 4 * eps * abs(c))


@EXAMPLES
@given(x=matrices(finite=True, elements=lambda dt: st.floats(-100, 100, width=32 if dt == np.float32 else 64)),
       data=st.data())
def test_mean_cross_entropy_gradient_rows_sum_to_zero(x, data):
    t = data.draw(hnp.arrays(np.int64, x.shape[0], elements=st.integers(0, x.shape[1] - 1)))
    _, g = fl.cross_entropy_and_grad(x, t)
    scale = 1.0 / max(1, x.shape[0])
    assert np.all(np.abs(g.astype(np.float64).sum(axis=-1)) <= 8 * np.finfo(x.dtype).eps * x.shape[1] * scale)


@EXAMPLES
@given(p=matrices(elements=probabilities), data=st.data())
def test_entropy_and_kl_divergence_are_nonnegative(p, data):
    assert np.all(np.asarray(fl.entropy(p)) >= 0)
    q = data.draw(hnp.arrays(p.dtype, p.shape, elements=probabilities(p.dtype)))
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    with np.errstate(all="ignore"):
        pn, qn = p64 / p64.sum(-1, keepdims=True), q64 / q64.sum(-1, keepdims=True)
    ok = np.isfinite(pn).all(-1) & np.isfinite(qn).all(-1)
    pn, qn = pn[ok].astype(p.dtype), qn[ok].astype(p.dtype)
    d = np.asarray(fl.kl_divergence(pn, qn), dtype=np.float64)
    # normalised in float64 then rounded: the sums are 1 within a few eps, so D >= -(a few eps)
    assert np.all(d >= -8 * np.finfo(p.dtype).eps), d
