"""The one-pass chunks of long rows (probabilistic_tpl.h row_stats: after a row's first chunk of 2,048 classes, the
max, evaluate's rank count and label smoothing's sum are taken in the pass of the exps, against the max so far) and
the float-vector rows of kl_divergence (distributions.c: fewer checks, the specials sent the double way by the
row's sum). Each case puts the special value where that path meets it: a max that rises in a later chunk (a little,
or by more than the 64 the pass rescales), nan and +-inf in a later chunk, a target's chunk before or after."""
import numpy as np
import pytest

import fastloss as fl
import fastloss.reference as ref

from conftest import assert_close, assert_identical

ml_dtypes = pytest.importorskip("ml_dtypes")
DTYPES = [np.float32, np.float16, np.dtype(ml_dtypes.bfloat16)]
C = 5 * 2048 + 300  # five whole chunks and a short one


def long_rows(dtype, rng):
    """Rows whose max rises in a later chunk by a little (row 0), by 70 (row 1: beyond the rebase), late in the
    row (row 2); a nan (row 3), a +inf (row 4), a -inf (row 5) in a later chunk; the target in the last chunk
    (row 6) or the first (the others)."""
    x = rng.normal(0.0, 2.0, size=(8, C))
    x[0, 3 * 2048 + 5] = 9.0
    x[1, 2 * 2048 + 7] = 80.0
    x[2, C - 3] = 12.0
    x[3, 4 * 2048 + 1] = np.nan
    x[4, 2 * 2048 + 9] = np.inf
    x[5, 1 * 2048 + 2] = -np.inf
    x = x.astype(dtype)
    t = rng.integers(0, 2048, 8)
    t[6] = C - 1
    return x, t


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_long_rows(simd_level, dtype, smoothing, rng):
    x, t = long_rows(dtype, rng)
    x64 = x.astype(np.float64)
    got = fl.cross_entropy(x, t, reduction="none", label_smoothing=smoothing)
    want = ref.cross_entropy(x64, t, reduction="none", label_smoothing=smoothing)
    assert_close(got, want, dtype=np.float32, err_msg=f"{simd_level}")
    for nt in (1, 2, 3):
        assert_identical(fl.cross_entropy(x, t, reduction="none", label_smoothing=smoothing, n_threads=nt), got)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_logsumexp_long_rows(simd_level, dtype, rng):
    x, _ = long_rows(dtype, rng)
    assert_close(fl.logsumexp(x), ref.logsumexp(x.astype(np.float64)), dtype=np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_evaluate_long_rows_ranks(simd_level, dtype, rng):
    """top-k from the rank counted in the one-pass chunks: the target's rank against a count in NumPy, ties
    (the target's value repeated in later chunks) counted as not above."""
    x, t = long_rows(dtype, rng)
    x[7, 4 * 2048 + 11] = x[7, t[7]]  # a tie in a later chunk
    x[0, 2 * 2048 + 3] = x[0, t[0]] + 1  # one above, in a chunk before the max rises
    keep = np.isfinite(x.astype(np.float64)).all(axis=1)
    x, t = x[keep], t[keep]
    x64 = x.astype(np.float64)
    above = (x64 > x64[np.arange(len(t)), t][:, None]).sum(axis=1)
    r = fl.evaluate(x, t, topk=(1, 2, 5))
    for k in (1, 2, 5):
        assert r.accuracy[k] == pytest.approx(np.mean(above < k))
    assert r.cross_entropy == pytest.approx(float(fl.cross_entropy(x, t)), rel=1e-6)


def kl_rows(rng, n):
    """Strictly positive rows, then the specials: p = 0 with q nan (nan), p = 0 with q = inf (0), a subnormal p,
    q = 0 < p (inf), p = 0 = q (0)."""
    p = rng.random((7, n)) + 0.05
    q = rng.random((7, n)) + 0.05
    p /= p.sum(1, keepdims=True)
    q /= q.sum(1, keepdims=True)
    p[1, n // 2], q[1, n // 2] = 0.0, np.nan
    p[2, n // 3], q[2, n // 3] = 0.0, np.inf
    p[3, n - 1] = 1e-40
    q[4, 5] = 0.0
    p[5, 7], q[5, 7] = 0.0, 0.0
    p[6, 3] = np.nan
    return p.astype(np.float32), q.astype(np.float32)


@pytest.mark.parametrize("n", [10, 37, 1000, 1003])
def test_kl_divergence_float_rows_specials(simd_level, n, rng):
    p, q = kl_rows(rng, n)
    with np.errstate(all="ignore"):
        want = ref.kl_divergence(p.astype(np.float64), q.astype(np.float64))
    got = fl.kl_divergence(p, q)
    assert_close(got, want, dtype=np.float32, err_msg=f"{simd_level}")
    # a strided view of the same rows: the row path (not the flat one of short contiguous rows)
    p2 = np.repeat(p, 2, axis=1)[:, ::2]
    q2 = np.repeat(q, 2, axis=1)[:, ::2]
    assert_close(fl.kl_divergence(p2, q2), want, dtype=np.float32)


def test_kl_divergence_negative_reported_by_row_path(rng):
    """A negative p where q is negative too (p / q > 0): q's minimum sends the row the double way, which names
    the first negative entry."""
    p, q = kl_rows(rng, 1000)
    p[0, 17], q[0, 17] = -0.001, -0.002
    with pytest.raises(ValueError, match="negative"):
        fl.kl_divergence(p, q)
