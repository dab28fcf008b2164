"""entropy, categorical_cross_entropy, kl_divergence against the NumPy oracle, scipy and closed forms."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

from _dist_layouts import DTYPES, LAYOUTS, assert_close
from pair_suite import stable_seed

FUNCS = {
    "entropy": (fl.entropy, R.entropy, 1),
    "categorical_cross_entropy": (fl.categorical_cross_entropy, R.categorical_cross_entropy, 2),
    "kl_divergence": (fl.kl_divergence, R.kl_divergence, 2),
}
BAG_P, BAG_Q = [0.8, 0.1, 0.1], [0.2, 0.2, 0.6]


def call(name, arrays, **kw):
    f, ref, n_args = FUNCS[name]
    return f(*arrays[:n_args], **kw), ref(*arrays[:n_args], **kw)


def random_probs(rng, shape, zeros=True):
    p = rng.random(shape)
    if zeros and p.size:
        p[rng.random(shape) < 0.15] = 0.0
    return p


# ---- closed forms -----------------------------------------------------------------------------------------

def test_bag_of_balls():
    p, q = np.array(BAG_P), np.array(BAG_Q)
    assert round(float(fl.entropy(p)), 6) == 0.639032
    assert round(float(fl.categorical_cross_entropy(p, q)), 6) == 1.499577
    assert round(float(fl.kl_divergence(p, q)), 6) == 0.860545
    # in bits: divided by log 2; H(p, q) = H(p) + D(p || q)
    assert round(float(fl.entropy(p, base=2)), 6) == round(0.639031859650177 / np.log(2), 6)
    np.testing.assert_allclose(fl.categorical_cross_entropy(p, q), fl.entropy(p) + fl.kl_divergence(p, q),
                               rtol=1e-15)
    for f in (fl.entropy(p), fl.kl_divergence(p, q)):
        assert isinstance(f, np.float64)
    assert isinstance(fl.entropy(p.astype(np.float32)), np.float32)


@pytest.mark.parametrize("k", [1, 2, 3, 10, 1000])
def test_uniform_entropy_is_log_k(k):
    u = np.full(k, 1.0 / k)
    np.testing.assert_allclose(fl.entropy(u), np.log(k), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(fl.entropy(u, base=2), np.log2(k), rtol=1e-13, atol=1e-15)
    assert fl.kl_divergence(u, u) == 0.0


def test_edge_values():
    p = np.array([[0.0, 1.0], [0.5, 0.5], [0.0, 0.0], [0.3, 0.7]])
    q = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 0.0], [0.3, 0.7]])
    np.testing.assert_array_equal(fl.entropy(p[2:3]), [0.0])                      # 0 log 0 = 0
    np.testing.assert_array_equal(fl.kl_divergence(p, q)[:3], [0.0, np.inf, 0.0])  # q = 0 < p gives inf
    assert fl.categorical_cross_entropy(p, q)[1] == np.inf
    assert fl.categorical_cross_entropy(p, q)[0] == 0.0
    # nan in gives nan out, row by row
    pn = p.copy()
    pn[1, 0] = np.nan
    qn = q.copy()
    qn[3, 1] = np.nan
    for f in (fl.categorical_cross_entropy, fl.kl_divergence):
        r = f(pn, qn)
        assert np.isnan(r[1]) and np.isnan(r[3]) and not np.isnan(r[0])
    assert np.isnan(fl.entropy(pn)[1])
    # 0 * log(nan) is nan, as scipy's xlogy(0, nan)
    assert np.isnan(fl.kl_divergence([0.0, 1.0], [np.nan, 1.0]))


def test_empty():
    assert fl.entropy(np.zeros(0)) == 0.0                          # an empty distribution has entropy 0
    np.testing.assert_array_equal(fl.entropy(np.zeros((3, 0))), np.zeros(3))
    np.testing.assert_array_equal(fl.kl_divergence(np.zeros((3, 0)), np.zeros((3, 0))), np.zeros(3))
    assert fl.entropy(np.zeros((0, 4))).shape == (0,)
    assert fl.entropy(np.zeros((0, 4)), axis=0).shape == (4,)


def test_no_renormalisation():
    p = np.array([2.0, 3.0])
    np.testing.assert_allclose(fl.entropy(p), -(2 * np.log(2) + 3 * np.log(3)), rtol=1e-15)


# ---- oracle: shapes, axes, dtypes, layouts, base -----------------------------------------------------------

SHAPES_AXES = [((7,), -1), ((7,), None), ((4, 9), -1), ((4, 9), 0), ((3, 5, 6), 1), ((3, 5, 6), (0, 2)),
               ((3, 5, 6), None), ((2, 1, 4), -1), ((1, 300), -1), ((5, 1), 0)]


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
@pytest.mark.parametrize("base", [None, 2, 10.0, 0.5])
def test_matches_oracle(name, shape, axis, base):
    rng = np.random.default_rng(stable_seed(name, shape, str(axis)))
    arrays = [random_probs(rng, shape), random_probs(rng, shape) + 0.01]
    got, want = call(name, arrays, axis=axis, base=base)
    assert np.shape(got) == np.shape(want)
    assert_close(got, want, np.float64)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dtypes_and_layouts(name, dtype, layout):
    rng = np.random.default_rng(7)
    base_arrays = [random_probs(rng, (6, 11)).astype(dtype), (random_probs(rng, (6, 11)) + 0.05).astype(dtype)]
    arrays = [LAYOUTS[layout](a) for a in base_arrays]
    before = [a.copy() for a in arrays]
    for axis in (-1, 0):
        got, want = call(name, arrays, axis=axis)
        assert got.dtype == (np.float64 if dtype == np.float64 else np.float32)
        assert_close(got, want, dtype)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)  # inputs untouched


def test_integer_and_mixed_dtypes():
    p = np.array([[1, 0, 3], [2, 2, 0]])
    r = fl.entropy(p)
    assert r.dtype == np.float64
    assert_close(r, R.entropy(p), np.float64)
    # float32 p with float64 q is computed in float64
    p32 = np.array([0.5, 0.5], np.float32)
    assert fl.kl_divergence(p32, np.array([0.25, 0.75])).dtype == np.float64
    assert fl.kl_divergence(p32, p32).dtype == np.float32


def test_long_float32_rows_accumulate_in_double():
    rng = np.random.default_rng(3)
    p = rng.random((3, 200_000)).astype(np.float32)
    q = rng.random((3, 200_000)).astype(np.float32) + np.float32(0.01)
    for name in FUNCS:
        got, want = call(name, [p, q])
        np.testing.assert_allclose(got, want, rtol=1e-6)


# ---- scipy semantics -------------------------------------------------------------------------------------

def test_scipy_semantics():
    sp = pytest.importorskip("scipy.special")
    vals = np.array([0.0, 1e-300, 1e-30, 0.2, 1.0, 3.0, np.inf, np.nan])
    p, q = (g.ravel() for g in np.meshgrid(vals, vals, indexing="ij"))
    pairs = np.stack([p, q], axis=1)[:, :, None]  # one-entry distributions: the terms themselves
    # the same edge values (0, inf, nan exactly where scipy has them), finite values to 2 ulp of libm's log
    tol = dict(rtol=4 * np.finfo(np.float64).eps, atol=0)
    np.testing.assert_allclose(fl.entropy(pairs[:, 0]), sp.entr(p), **tol)
    np.testing.assert_allclose(fl.categorical_cross_entropy(pairs[:, 0], pairs[:, 1]), -sp.xlogy(p, q), **tol)
    np.testing.assert_allclose(fl.kl_divergence(pairs[:, 0], pairs[:, 1]), sp.rel_entr(p, q), **tol)
    rng = np.random.default_rng(11)
    a, b = random_probs(rng, (20, 30)), random_probs(rng, (20, 30))
    np.testing.assert_allclose(fl.kl_divergence(a, b, axis=0), sp.rel_entr(a, b).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(fl.entropy(a), sp.entr(a).sum(axis=-1), rtol=1e-12)


def test_scipy_stats_on_normalised_input():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(12)
    p, q = rng.random((4, 8)), rng.random((4, 8))
    p /= p.sum(axis=1, keepdims=True)
    q /= q.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fl.entropy(p, base=2), stats.entropy(p, base=2, axis=1), rtol=1e-12)
    np.testing.assert_allclose(fl.kl_divergence(p, q), stats.entropy(p, q, axis=1), rtol=1e-12)


# ---- errors -------------------------------------------------------------------------------------------------

def test_negative_entry_names_position_and_value():
    p = np.full((3, 4, 5), 0.1)
    p[1, 2, 3] = -0.25
    p[2, 0, 0] = -1.0
    with pytest.raises(ValueError, match=r"p\[1, 2, 3\] = -0\.25 is negative"):
        fl.entropy(p)
    # the first in the kernel's row order: rows are the positions off `axis`, here axis 2
    with pytest.raises(ValueError, match=r"p\[2, 0, 0\] = -1\.0"):
        fl.entropy(p, axis=(0, 1))
    q = np.full((3, 4, 5), 0.1)
    q[0, 3, 1] = -2.0
    with pytest.raises(ValueError, match=r"q\[0, 3, 1\] = -2\.0"):
        fl.kl_divergence(np.full((3, 4, 5), 0.1), q, axis=1)
    q = np.full((3, 4, 5), 0.1)
    q[1, 2, 4] = -5.0
    with pytest.raises(ValueError, match=r"p\[1, 2, 3\]"):  # the first in row order: p's entry comes first
        fl.categorical_cross_entropy(p, q)
    q[1, 2, 1] = -6.0
    with pytest.raises(ValueError, match=r"q\[1, 2, 1\] = -6\.0"):
        fl.categorical_cross_entropy(p, q)
    with pytest.raises(ValueError, match=r"p\[1\] = -inf"):
        fl.entropy([0.5, -np.inf])


def test_first_negative_reported_across_blocks_and_threads():
    p = np.full((2000, 500), 0.002)
    p[1500, 7] = -3.0
    p[1999, 499] = -4.0
    old = fl.set_num_threads(2)
    try:
        with pytest.raises(ValueError, match=r"p\[1500, 7\] = -3\.0"):
            fl.kl_divergence(p, np.full_like(p, 0.002))
    finally:
        fl.set_num_threads(old)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"p \(2, 3\) and q \(3, 2\)"):
        fl.kl_divergence(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"p \(3,\) and q \(4,\)"):
        fl.categorical_cross_entropy(np.ones(3), np.ones(4))


@pytest.mark.parametrize("base", [1, 1.0, 0, -2, np.inf, np.nan])
def test_bad_base(base):
    with pytest.raises(ValueError, match="base"):
        fl.entropy([0.5, 0.5], base=base)


def test_bad_axis_and_dtype():
    with pytest.raises(ValueError, match="out of bounds"):
        fl.entropy(np.ones((2, 3)), axis=2)
    with pytest.raises(TypeError, match="complex"):
        fl.entropy(np.ones(3, complex))
    with pytest.raises(TypeError):
        fl.kl_divergence(["a", "b"], [0.5, 0.5])


# ---- threads ------------------------------------------------------------------------------------------------

def test_bitwise_identical_for_any_threads():
    rng = np.random.default_rng(5)
    p, q = rng.random((2000, 500)), rng.random((2000, 500))
    results = []
    old = fl.get_num_threads()
    try:
        for nt in (1, 2):
            fl.set_num_threads(nt)
            results.append([fl.entropy(p), fl.kl_divergence(p, q, axis=0),
                            fl.categorical_cross_entropy(p.astype(np.float32), q.astype(np.float32))])
    finally:
        fl.set_num_threads(old)
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()
    assert_close(results[0][1], R.kl_divergence(p, q, axis=0), np.float64)


# ---- float32 rows in float vectors ------------------------------------------------------------------------
# Float rows are computed in float (kl: log(p / q) with the division's exact residual), the sums in double; rows
# up to 32 long a span of rows at a time. Rows whose terms cancel (kl with p ~ q, entries above 1) or that hold
# zeros of q, inf, nan, subnormals or negatives go the double way. Either way the result must be within a few
# float32 eps of the float64 value of the same float32 inputs, at every SIMD level.

def _rows(rng, n, c, lo=0.0):
    a = rng.random((n, c), dtype=np.float32) + np.float32(lo)
    return a / a.sum(axis=-1, keepdims=True)


def _assert_few_eps(name, p, q, label):
    f, ref, n_args = FUNCS[name]
    args = (p, q)[:n_args]
    got = f(*args)
    want = ref(*(a.astype(np.float64) for a in args))
    err = np.abs(got.astype(np.float64) - want) / np.maximum(np.abs(want), np.finfo(np.float64).tiny)
    assert err.max() <= 4 * np.finfo(np.float32).eps, (name, label, float(err.max()))


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("c", [1, 2, 7, 10, 16, 17, 32, 33, 100, 127, 128, 1000, 4099])
def test_float32_within_a_few_eps(simd_level, name, c):
    rng = np.random.default_rng(c)
    # short rows (float32 at the avx2 level: up to 128 classes but 128 itself take the flat path): several spans
    # of rows, the last one partial, its last tile of rows one row
    n = 64 if c > 128 else 3001
    p, q = _rows(rng, n, c), _rows(rng, n, c, 1e-3)
    _assert_few_eps(name, p, q, "independent rows")
    for delta in (1e-2, 1e-4, 1e-6):  # q = p * (1 + delta * noise), renormalised: kl's terms cancel
        q = p * (1 + np.float32(delta) * rng.standard_normal(p.shape).astype(np.float32))
        q = (q / q.sum(axis=-1, keepdims=True)).astype(np.float32)
        _assert_few_eps(name, p, q, delta)
    # entries above 1: negative terms (-p log p, -p log q < 0) that cancel the others in some rows
    big = (rng.random((n, c), dtype=np.float32) * 2).astype(np.float32)
    _assert_few_eps(name, big, (big * np.float32(1.01)).astype(np.float32), "entries up to 2")
    one = np.ones((n, c), np.float32)
    _assert_few_eps(name, one, one, "all ones")  # every term 0



def _kl_decimal(p, q):
    """sum p log(p / q) by row (p = 0 terms 0), each float32 value exact in a 40-digit decimal: a truth independent
    of floats"""
    import decimal
    D = decimal.Decimal
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        return np.array([float(sum((D(float(a)) * (D(float(a)) / D(float(b))).ln() for a, b in zip(pr, qr) if a != 0),
                                   D(0)))  # 0 log 0 = 0
                         for pr, qr in zip(p, q)])


@pytest.mark.parametrize("c", [2, 10, 1000])
def test_kl_divergence_terms_cancel_exactly(simd_level, c):
    """q close to p, renormalised: the terms (~delta p) cancel to a KL ~delta^2, up to 5e6 times below them. A
    term that loses p / q's rounding in float64 (2^-53 p) is then off by 1e-5 of the row's KL and more, and so
    was the float64 oracle that computed p log(p / q) in double. Against the sum in 40-digit decimals, fastloss
    and the reference are within a few float32 eps, relative to the KL itself."""
    rng = np.random.default_rng(100 + c)
    n = 1000 if c < 1000 else 8
    p = _rows(rng, n, c)
    for delta in (1e-2, 1e-4, 1e-6):
        q = p * (1 + np.float32(delta) * rng.standard_normal(p.shape).astype(np.float32))
        q = (q / q.sum(axis=-1, keepdims=True)).astype(np.float32)
        exact = _kl_decimal(p, q)
        den = np.maximum(np.abs(exact), np.finfo(np.float64).tiny)
        for label, got in (("fastloss", fl.kl_divergence(p, q)), ("reference", R.kl_divergence(p, q)),
                           ("reference, float64", R.kl_divergence(p.astype(np.float64), q.astype(np.float64)))):
            err = np.abs(got.astype(np.float64) - exact) / den
            assert err.max() <= 2 * np.finfo(np.float32).eps, (label, delta, float(err.max()))


@pytest.mark.parametrize("c", [129, 1000])
def test_kl_divergence_long_rows_of_q_close_to_p(simd_level, c):
    """Rows longer than the flat path's, q = p e^N(0, delta): their near groups are rearranged to d + q phi(d / q)
    (d = p - q; phi >= 0 in float, d summed in double). The sum of d cancels the sum of q phi where q is scaled up
    (the row is then done again in double terms: without that up to 6 eps off); p = 0 lanes are terms of 0; delta
    0.1 mixes near and far groups. Within 2 float32 eps of the 40-digit truth."""
    rng = np.random.default_rng(400 + c)
    p = _rows(rng, 4, c)
    for delta in (0.1, 1e-3, 1e-5, 1e-7):
        for mode in ("normalised", "scaled up", "scaled down", "zeros in p", "as drawn"):
            q = p * np.exp(delta * rng.standard_normal(p.shape))
            pp = p.copy()
            if mode != "as drawn":
                q /= q.sum(axis=-1, keepdims=True)
            if mode.startswith("scaled"):  # up: sum d = -0.97 sum q phi, the KL 3% of its positive part
                q *= 1 + (0.97 if mode == "scaled up" else -1.0) * (pp * np.log(pp / q)).sum(axis=-1, keepdims=True)
            if mode == "zeros in p":
                pp[:, ::17] = 0.0
            q = q.astype(np.float32)
            exact = _kl_decimal(pp, q)
            err = np.abs(fl.kl_divergence(pp, q).astype(np.float64) - exact) / np.maximum(np.abs(exact), 1e-300)
            assert err.max() <= 2 * np.finfo(np.float32).eps, (delta, mode, float(err.max()))


def test_kl_divergence_long_near_rows_with_odd_entries(simd_level):
    """One odd entry in a long row of q close to p (the rearranged near terms elsewhere in it): nan q or q = 0 at p =
    0, q = 0 < p, inf or nan p, a subnormal pair, q above 1, p = -0 give the float64 reference's value (nan, inf or
    the sum); a negative p raises ValueError."""
    rng = np.random.default_rng(500)
    p = _rows(rng, 8, 1000)
    q = (p * np.exp(1e-3 * rng.standard_normal(p.shape))).astype(np.float32)
    odd = [(0.0, np.nan), (0.0, 0.0), (None, 0.0), (np.inf, None), (np.nan, None), (1e-40, 1.1e-40), (None, 1.5),
           (-0.0, None)]
    for r, (pv, qv) in enumerate(odd):
        if pv is not None:
            p[r, 5 + 2 * r] = pv
        if qv is not None:
            q[r, 5 + 2 * r] = qv
    got = fl.kl_divergence(p, q)
    want = R.kl_divergence(p.astype(np.float64), q.astype(np.float64))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], rtol=4 * np.finfo(np.float32).eps)
    p[0, 3] = -0.1
    with pytest.raises(ValueError, match="negative"):
        fl.kl_divergence(p, q)


@pytest.mark.parametrize("c", [40, 1000, 4099])
def test_kl_divergence_row_value_independent_of_its_neighbours(simd_level, c):
    """The row path tries first the pass the previous row needed (AVX-512: the double terms after a row of q close
    to p); a row's value is the same bits whatever came before it: rows near and far interleaved, permuted, alone,
    on 1 and 2 threads."""
    rng = np.random.default_rng(200 + c)
    n = 48
    p = _rows(rng, n, c, 1e-3)
    q = _rows(rng, n, c, 1e-3)
    near = rng.random(n) < 0.5
    q[near] = (p[near] * np.exp(rng.normal(scale=1e-3, size=(int(near.sum()), c)))).astype(np.float32)
    q[3] = p[3] * np.float32(1.01)  # near by its first elements, its terms not cancelling
    q[4, :16] = p[4, :16]  # near at its start only
    whole = fl.kl_divergence(p, q)
    perm = rng.permutation(n)
    np.testing.assert_array_equal(fl.kl_divergence(p[perm], q[perm]).view(np.uint32), whole[perm].view(np.uint32))
    alone = np.array([fl.kl_divergence(p[i:i + 1], q[i:i + 1])[0] for i in range(n)])
    np.testing.assert_array_equal(alone.view(np.uint32), whole.view(np.uint32))
    old = fl.set_num_threads(2)
    try:
        np.testing.assert_array_equal(fl.kl_divergence(p, q).view(np.uint32), whole.view(np.uint32))
    finally:
        fl.set_num_threads(old)
    exact = _kl_decimal(p[:8], q[:8])
    np.testing.assert_allclose(whole[:8], exact, rtol=2 * np.finfo(np.float32).eps)

@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("c", [1, 3, 10, 16, 17, 32, 40, 100])
def test_kl_divergence_short_row_value_independent_of_its_neighbours(simd_level, c, dtype):
    """Short rows go a span at a time (up to 32 classes, AVX2 up to 128); AVX-512 and AVX2 try first the double
    terms where the thread's previous span was mostly q close to p, else the float terms. A row's value is the
    same bits whatever its span and the order: runs of near rows and of unrelated rows, rows near but for one
    element, near rows whose terms do not cancel, near rows with p = 0 < q, permuted, alone after a near and after
    an unrelated call, on 1 and 2 threads; and within float32 rounding of the decimal truth."""
    rng = np.random.default_rng(300 + c)
    n = 600
    p = _rows(rng, n, c, 1e-3)
    q = _rows(rng, n, c, 1e-3)
    near = np.zeros(n, bool)
    near[:250] = rng.random(250) < 0.9  # mostly near, then mostly unrelated, then mixed
    near[250:450] = rng.random(200) < 0.1
    near[450:] = rng.random(150) < 0.5
    scale = np.where(rng.random((n, 1)) < 0.5, 1e-3, 1e-2)
    q[near] = (p[near] * np.exp(rng.normal(size=(n, c)) * scale)[near]).astype(np.float32)
    one_far = np.flatnonzero(near)[::7]
    q[one_far, rng.integers(0, c, one_far.size)] *= np.float32(1.5)  # near but for one element
    q[np.flatnonzero(near)[3::11]] = p[np.flatnonzero(near)[3::11]] * np.float32(1.01)  # terms of one sign
    p[np.flatnonzero(near)[7::13], 0] = 0.0  # p = 0 < q: a near element, a term of 0
    p, q = p.astype(dtype), q.astype(dtype)
    whole = fl.kl_divergence(p, q)
    perm = rng.permutation(n)
    np.testing.assert_array_equal(fl.kl_divergence(p[perm], q[perm]).view(np.uint32), whole[perm].view(np.uint32))
    for lead in (slice(0, 250), slice(250, 450)):  # leaves the thread's hint on the double or the float side
        fl.kl_divergence(p[lead], q[lead])
        alone = np.array([fl.kl_divergence(p[i:i + 1], q[i:i + 1])[0] for i in range(0, n, 5)])
        np.testing.assert_array_equal(alone.view(np.uint32), whole[::5].view(np.uint32))
    old = fl.set_num_threads(2)
    try:
        np.testing.assert_array_equal(fl.kl_divergence(p, q).view(np.uint32), whole.view(np.uint32))
    finally:
        fl.set_num_threads(old)
    pick = np.concatenate([np.flatnonzero(near)[:6], np.flatnonzero(~near)[:2], one_far[:2]])
    np.testing.assert_allclose(whole[pick], _kl_decimal(p[pick], q[pick]), rtol=2 * np.finfo(np.float32).eps)


def _log_table_sweep(rng, n):
    """Log arguments over the whole table of vmath.h's fl__vlog_tab_normal_f32_n: log-uniform over 2^-60..2^60,
    dense within 0.06 of 1 (the interval where the table entry is 1, and the two beyond it, where log c_i and
    log1p(z) cancel) and at each of its interval bounds (0.708 + i / 16 below 1, 1.042 + i / 8 above) and the
    powers of two."""
    bounds = np.concatenate([0.70833337 + np.arange(6) / 16, 1.0416667 + np.arange(4) / 8, [0.5, 1.0, 2.0]])
    near = bounds[rng.integers(0, bounds.size, n)] * (1 + rng.uniform(-1e-6, 1e-6, n))
    return np.concatenate([2.0 ** rng.uniform(-60, 60, n), 1 + rng.uniform(-0.06, 0.06, n), near])


@pytest.mark.parametrize("name", FUNCS)
def test_float32_terms_across_the_log_table(simd_level, name):
    """Each float term on its own: rows of one element (the flat path of short rows), p log(p / q), -p log q and
    -p log p for log arguments over the whole range of the float log, within 4 eps of the float64 value."""
    rng = np.random.default_rng(11)
    arg = _log_table_sweep(rng, 4000).astype(np.float32)
    if name == "kl_divergence":  # r = p / q: q in (0, 1] (the float path's range), p = q r (normal)
        q = rng.uniform(0.01, 1, arg.size).astype(np.float32)
        p = (q * arg).astype(np.float32)
        keep = (p > 1e-30) & (p < 1e30)
        p, q = p[keep], q[keep]
    else:  # entropy's and cross-entropy's arguments <= 1: the float path's range (above 1 the row goes double)
        q = np.minimum(arg, np.float32(1)).astype(np.float32)
        p = q if name == "entropy" else rng.uniform(0.01, 1, q.size).astype(np.float32)
    _assert_few_eps(name, p[:, None], q[:, None], "one-element rows")
    n = p.size // 40 * 40  # the same terms in rows of 40 (the row path)
    _assert_few_eps(name, p[:n].reshape(-1, 40), q[:n].reshape(-1, 40), "rows of 40")


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("c", [10, 40, 64])  # 10, 40: the flat path of short rows (avx2); 64: the row path
def test_float32_edge_rows_take_the_exact_path(simd_level, name, c):
    p = np.full((13, c), 1 / c, np.float32)
    q = p.copy()
    p[0, 3] = 0          # a zero of p: a term of 0
    q[1, 5] = 0          # q = 0 < p: +inf
    p[2, 7] = np.nan     # nan
    q[3, 9] = np.inf     # inf
    p[4, 1] = 1e-42      # a subnormal p: its ratio leaves float's normal range
    p[5, 2], q[5, 2] = 1e-40, 1e-36  # a subnormal p whose ratio is normal (its reciprocal is not: was nan)
    q[6, 8] = 1e-40      # a subnormal q
    p[7, 0], q[7, 0] = 0, np.nan     # 0 log(0 / nan) is nan
    p[8, 4] = -0.0       # -0 is a zero of p
    p[9, 6], q[9, 6] = 0, 0          # 0 log 0
    p[10, 1] = np.inf    # p = inf
    p[11, 2], q[11, 2] = 1e-45, 3.0  # kl: p / q underflows to 0 (q > 1 sends the row the double way)
    p[11, 5], q[11, 5] = 2.5, 0.5    # an entry above 1
    got = FUNCS[name][0](p, q) if name != "entropy" else fl.entropy(p)
    want = (FUNCS[name][1](p.astype(np.float64), q.astype(np.float64)) if name != "entropy"
            else R.entropy(p.astype(np.float64)))
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=4e-7, atol=1e-12)


@pytest.mark.parametrize("c", [10, 40, 64])  # 10, 40: the flat path of short rows (avx2); 64: the row path
def test_float32_kl_ratios_outside_the_table_log(simd_level, c):
    """kl's float path takes log(p / q) from the table log of a normal r (or r = 0 where p = 0): a row whose
    r underflows to 0 with p > 0 (possible only for q > 1) or is subnormal (a subnormal p) must take the exact
    path. One nonzero term a row, its value a normal float: compared relatively."""
    p = np.zeros((3, c), np.float32)
    q = np.full((3, c), 1 / c, np.float32)
    p[0, 1], q[0, 1] = 1e-30, 1e20   # p / q = 1e-50 rounds to 0: term -1.15e-28
    p[1, 2], q[1, 2] = 1e-39, 0.1    # a subnormal p, r = 1e-38 subnormal: term -8.7e-38
    p[2, 3], q[2, 3] = 3e-38, 1.0    # the smallest normals: r normal, term -2.6e-36
    got = fl.kl_divergence(p, q).astype(np.float64)
    want = R.kl_divergence(p.astype(np.float64), q.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(np.float32).eps, atol=0)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("c", [10, 100])
def test_negative_inside_a_span_of_short_rows(simd_level, name, c):
    rng = np.random.default_rng(1)
    p, q = _rows(rng, 500, c), _rows(rng, 500, c)
    which = p if name == "entropy" else q
    which[137, 4] = -0.25
    which[300, 1] = -0.5
    with pytest.raises(ValueError, match=r"\[137, 4\] = -0\.25"):
        FUNCS[name][0](*(p, q)[:FUNCS[name][2]])
