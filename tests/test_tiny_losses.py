"""Tiny cross-entropy losses to the last bit: where the target's logit is the row's maximum, the loss is
log1p(sum over the other classes of exp(x_j - x_t)), computed from that sum alone, so a float32 loss of 4.4e-8 or
1e-13 has a relative error of a few float32 epsilons instead of being 0 (torch, JAX, scikit-learn and SciPy all
return 0 there). Also evaluate's cross-entropy, which shares the kernel's row losses bit for bit."""
import functools
import math

import numpy as np
import pytest

import fastloss as fl

mpmath = pytest.importorskip("mpmath")
mpmath.mp.dps = 40
EPS = {np.float32: 2.0 ** -23, np.float64: 2.0 ** -52}


def exact_nlp(row, t):
    """-log softmax(row)[t] in 40 digits."""
    xt = mpmath.mpf(float(row[t]))
    others = mpmath.fsum(mpmath.exp(mpmath.mpf(float(v)) - xt) for j, v in enumerate(row) if j != t)
    return mpmath.log1p(others)


def tiny_rows(dtype, n_classes, n_rows, rng):
    """Rows whose target (a random class) is the max, the others 17-40 (float32) or 30-60 (float64) below."""
    lo, hi = (17.0, 40.0) if dtype == np.float32 else (30.0, 60.0)
    x = -rng.uniform(lo, hi, size=(n_rows, n_classes))
    t = rng.integers(0, n_classes, n_rows)
    x[np.arange(n_rows), t] = rng.uniform(-3, 3, n_rows)
    return x.astype(dtype), t


@functools.lru_cache(maxsize=None)
def tiny_case(dtype, n_classes, n_rows):
    """tiny_rows and their exact losses, computed once for every SIMD level (mpmath over 50,000 classes is slow)."""
    x, t = tiny_rows(dtype, n_classes, n_rows, np.random.default_rng(n_classes))
    return x, t, [exact_nlp(x[i], t[i]) for i in range(n_rows)]


def assert_relative(got, want, dtype, what):
    got, want = float(got), float(want)
    assert want > 0
    assert abs(got - want) <= 4 * EPS[dtype] * want, f"{what}: {got!r} vs {want!r} ({abs(got - want) / want:.3g})"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("n_classes", [2, 3, 10, 33, 1000, 50000])
def test_tiny_losses_relative_accuracy(simd_level, dtype, n_classes):
    n_rows = 6 if n_classes == 50000 else 40
    x, t, want = tiny_case(dtype, n_classes, n_rows)
    rows = fl.cross_entropy(x, t, reduction="none")
    assert rows.dtype == dtype
    for i in range(n_rows):
        assert_relative(rows[i], want[i], dtype, f"row {i}")
    total = mpmath.fsum(want)
    assert_relative(fl.cross_entropy(x, t, reduction="sum"), total, dtype, "sum")
    assert_relative(fl.cross_entropy(x, t), total / n_rows, dtype, "mean")
    loss, grad = fl.cross_entropy_and_grad(x, t, reduction="none")
    np.testing.assert_array_equal(loss, rows)
    # the gradient at the target, p_t - 1 = -(1 - p_t): tiny too, and as exact
    for i in range(n_rows):
        assert_relative(-grad[i, t[i]], 1 - mpmath.exp(-want[i]), dtype, f"grad row {i}")
    res = fl.evaluate(x, t, topk=1)
    assert res.accuracy[1] == 1.0
    assert dtype(res.cross_entropy) == fl.cross_entropy(x, t)


def test_the_examples_of_the_readme():
    # 1 - ln(eps32) against 0: the exact loss is log1p(exp(-(1 - ln eps32))) = eps32 / e = 4.385e-8
    x = np.array([[1 - math.log(2.0 ** -23), 0.0]], np.float32)
    want = math.log1p(math.exp(-float(x[0, 0])))
    assert_relative(fl.cross_entropy(x, np.array([0])), want, np.float32, "float32")
    x64 = np.array([[40.0, 0.0]])
    assert_relative(fl.cross_entropy(x64, np.array([0])), math.exp(-40.0), np.float64, "float64")


def test_edge_rows_are_unchanged():
    """Ties at the max, +inf, nan and -inf rows keep their values (the log1p form applies to finite maxima)."""
    x = np.array([[1.0, 1.0, -5.0], [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0], [-np.inf, -np.inf, -np.inf],
                  [2.0, -np.inf, -np.inf]])
    t = np.array([0, 0, 1, 0, 0])
    got = fl.cross_entropy(x, t, reduction="none")
    assert got[0] == pytest.approx(math.log(2 + math.exp(-6)), rel=1e-15)
    assert np.isnan(got[1]) and np.isnan(got[2]) and np.isnan(got[3])
    assert got[4] == 0.0
