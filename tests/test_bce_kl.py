"""binary_cross_entropy_with_logits and kl_div (and their _and_grad) against the oracle, torch, finite
differences and closed forms."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

from _dist_layouts import DTYPES, LAYOUTS, assert_close
from pair_suite import stable_seed

REDUCTIONS = ["none", "sum", "mean"]
KL_REDUCTIONS = REDUCTIONS + ["batchmean"]


def bce_inputs(rng, shape):
    return rng.normal(scale=3.0, size=shape), rng.random(shape)


def kl_inputs(rng, shape, log_target):
    x = np.log(rng.random(shape) + 1e-3)
    y = rng.random(shape)
    if not log_target and y.size:
        y[rng.random(shape) < 0.2] = 0.0
    return x, (np.log(y + 1e-3) if log_target else y)


def check_pair(got, want, dtype):
    """(loss, grad) pairs or losses: same shape, dtype and values."""
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            check_pair(g, w, dtype)
        return
    assert np.shape(got) == np.shape(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert_close(got, want, dtype)


# ---- oracle ------------------------------------------------------------------------------------------------

SHAPES = [(), (1,), (7,), (5, 3), (4, 1), (2, 3, 4), (0, 3), (40000,)]
WEIGHTS = {  # name: (weight, pos_weight, sample_weight) as functions of the shape
    "none": lambda s: (None, None, None),
    "pos_weight_last_axis": lambda s: (None, np.linspace(0.5, 3, s[-1]) if s else 2.0, None),
    "weight_full": lambda s: (np.linspace(0.1, 2, int(np.prod(s))).reshape(s), None, None),
    "weight_rows_sample_weight_cols": lambda s: (np.linspace(1, 2, s[0]).reshape((s[0],) + (1,) * (len(s) - 1))
                                                 if s else 3.0, None, np.linspace(0.2, 1, s[-1]) if s else 0.5),
    "all": lambda s: (2.0, np.full(s[-1:], 1.5), np.arange(int(np.prod(s)), dtype=float).reshape(s) % 3),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_oracle(shape, weights, reduction):
    rng = np.random.default_rng(len(shape) * 31 + len(weights))
    x, y = bce_inputs(rng, shape)
    w, pw, sw = WEIGHTS[weights](shape)
    kw = dict(weight=w, pos_weight=pw, sample_weight=sw, reduction=reduction)
    check_pair(fl.binary_cross_entropy_with_logits(x, y, **kw), R.binary_cross_entropy_with_logits(x, y, **kw),
               np.float64)
    check_pair(fl.binary_cross_entropy_with_logits_and_grad(x, y, **kw),
               R.binary_cross_entropy_with_logits_and_grad(x, y, **kw), np.float64)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", KL_REDUCTIONS)
def test_kl_div_matches_oracle(shape, log_target, reduction):
    rng = np.random.default_rng(len(shape))
    x, y = kl_inputs(rng, shape, log_target)
    kw = dict(log_target=log_target, reduction=reduction)
    check_pair(fl.kl_div(x, y, **kw), R.kl_div(x, y, **kw), np.float64)
    check_pair(fl.kl_div_and_grad(x, y, **kw), R.kl_div_and_grad(x, y, **kw), np.float64)


@pytest.mark.parametrize("dtype", DTYPES + [np.int32])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dtypes_and_layouts(dtype, layout):
    rng = np.random.default_rng(9)
    x, y = bce_inputs(rng, (6, 5))
    x = (x * 10 if dtype == np.int32 else x).astype(dtype)
    y = y.astype(dtype) if dtype != np.int32 else (y > 0.5).astype(dtype)
    xs, ys = LAYOUTS[layout](x), LAYOUTS[layout](y)
    before = xs.copy(), ys.copy()
    out_dtype = np.float64 if dtype in (np.float64, np.int32) else np.float32
    for reduction in REDUCTIONS:
        kw = dict(pos_weight=np.arange(1, 6), reduction=reduction)
        got = fl.binary_cross_entropy_with_logits_and_grad(xs, ys, **kw)
        assert got[1].dtype == out_dtype
        check_pair(got, R.binary_cross_entropy_with_logits_and_grad(x, y, **kw), out_dtype)
        lq = -np.abs(xs)
        got = fl.kl_div_and_grad(lq, np.abs(ys), reduction=reduction)
        check_pair(got, R.kl_div_and_grad(np.asarray(lq), np.abs(y), reduction=reduction), out_dtype)
    np.testing.assert_array_equal(xs, before[0])
    np.testing.assert_array_equal(ys, before[1])


# ---- torch --------------------------------------------------------------------------------------------------

def test_bce_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(1)
    x, y = bce_inputs(rng, (6, 4))
    x[0] = [np.inf, -np.inf, 1e4, -1e4]
    y[0] = [0.0, 0.0, 0.0, 1.0]
    w, pw = rng.random((6, 1)), rng.random(4) * 3
    for reduction in REDUCTIONS:
        for kw in ({}, {"weight": w}, {"pos_weight": pw}, {"weight": w, "pos_weight": pw}):
            tx = torch.tensor(x, requires_grad=True)
            tkw = {k: torch.tensor(v) for k, v in kw.items()}
            t_loss = F.binary_cross_entropy_with_logits(tx, torch.tensor(y), reduction=reduction, **tkw)
            (t_grad,) = torch.autograd.grad(t_loss.sum(), tx)
            loss, grad = fl.binary_cross_entropy_with_logits_and_grad(x, y, reduction=reduction, **kw)
            np.testing.assert_allclose(loss, t_loss.detach().numpy(), rtol=1e-12)
            np.testing.assert_allclose(grad, t_grad.numpy(), rtol=1e-12, atol=1e-300)


def test_kl_div_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    for shape in [(), (5,), (3, 4), (2, 3, 4)]:
        for log_target in (False, True):
            x, y = kl_inputs(rng, shape, log_target)
            for reduction in KL_REDUCTIONS:
                tx = torch.tensor(x, requires_grad=True)
                with pytest.warns(UserWarning) if reduction == "mean" else _nothing():
                    t_loss = F.kl_div(tx, torch.tensor(y), reduction=reduction, log_target=log_target)
                (t_grad,) = torch.autograd.grad(t_loss.sum(), tx)
                loss, grad = fl.kl_div_and_grad(x, y, reduction=reduction, log_target=log_target)
                np.testing.assert_allclose(loss, t_loss.detach().numpy(), rtol=1e-12, atol=1e-15)
                np.testing.assert_allclose(grad, t_grad.numpy(), rtol=1e-12)
    # edge values: 0 * -inf is nan, a negative target gives nan, 0 target gives 0
    x = np.array([-np.inf, -1.0, -1.0, -np.inf])
    y = np.array([0.0, 0.0, -0.5, 0.5])
    t = F.kl_div(torch.tensor(x), torch.tensor(y), reduction="none").numpy()
    np.testing.assert_array_equal(fl.kl_div(x, y, reduction="none"), t)
    with np.errstate(divide="ignore"):
        log_y = np.log(y + 0.5)
    t = F.kl_div(torch.tensor(x), torch.tensor(log_y), reduction="none", log_target=True).numpy()
    np.testing.assert_array_equal(fl.kl_div(x, log_y, reduction="none", log_target=True), t)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---- gradients by finite differences ------------------------------------------------------------------------

def finite_difference(f, x, h=1e-6):
    g = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (float(np.sum(f(xp))) - float(np.sum(f(xm)))) / (2 * h)
    return g


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_gradient_finite_differences(reduction):
    rng = np.random.default_rng(4)
    x, y = bce_inputs(rng, (3, 4))
    kw = dict(weight=rng.random((3, 1)), pos_weight=rng.random(4) * 2, sample_weight=rng.random(4),
              reduction=reduction)
    _, grad = fl.binary_cross_entropy_with_logits_and_grad(x, y, **kw)
    fd = finite_difference(lambda v: fl.binary_cross_entropy_with_logits(v, y, **kw), x)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reduction", KL_REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_gradient_finite_differences(reduction, log_target):
    rng = np.random.default_rng(6)
    x, y = kl_inputs(rng, (3, 4), log_target)
    _, grad = fl.kl_div_and_grad(x, y, log_target=log_target, reduction=reduction)
    fd = finite_difference(lambda v: fl.kl_div(v, y, log_target=log_target, reduction=reduction), x)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


# ---- closed forms and edge values ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_extreme_logits_exact(dtype):
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0], dtype)
    loss, grad = fl.binary_cross_entropy_with_logits_and_grad(x, y, reduction="none")
    np.testing.assert_array_equal(loss, np.array([1e4, 1e4, 0.0, 0.0, np.log(2)], dtype))
    np.testing.assert_array_equal(grad, np.array([1.0, -1.0, 0.0, 0.0, -0.5], dtype))
    # pos_weight multiplies the positive term: y = 1, x = -1e4 costs pw * 1e4
    assert fl.binary_cross_entropy_with_logits(x[1:2], y[1:2], pos_weight=3.0, reduction="sum") == 3e4


def test_bce_infinities_and_nan_as_torch():
    x = np.array([np.inf, np.inf, -np.inf, np.nan])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss = fl.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_array_equal(loss, [np.nan, np.inf, np.nan, np.nan])
    assert np.isnan(fl.binary_cross_entropy_with_logits(x, y))


def test_bce_sample_weight_mean_divides_by_sum_of_weights():
    x, y = np.array([[0.3, -1.0], [2.0, 0.5]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    per = R.binary_cross_entropy_with_logits(x, y, reduction="none")
    sw = np.array([[1.0], [3.0]])  # broadcast over the columns: the divisor is 1 + 1 + 3 + 3
    np.testing.assert_allclose(fl.binary_cross_entropy_with_logits(x, y, sample_weight=sw),
                               np.sum(per * sw) / 8.0, rtol=1e-15)
    # torch's weight rescales but is not a divisor
    np.testing.assert_allclose(fl.binary_cross_entropy_with_logits(x, y, weight=sw), np.sum(per * sw) / 4.0,
                               rtol=1e-15)
    assert np.isnan(fl.binary_cross_entropy_with_logits(x, y, sample_weight=0.0))


def test_kl_div_equals_kl_divergence_and_batchmean():
    p, q = np.array([0.8, 0.1, 0.1]), np.array([0.2, 0.2, 0.6])
    assert round(float(fl.kl_div(np.log(q), p, reduction="sum")), 6) == 0.860545
    P = np.stack([p, q, p])
    Q = np.stack([q, p, p])
    np.testing.assert_allclose(fl.kl_div(np.log(Q), P, reduction="batchmean"),
                               np.mean(fl.kl_divergence(P, Q)), rtol=1e-15)
    np.testing.assert_allclose(fl.kl_div(np.log(Q), P, reduction="mean"), np.sum(fl.kl_divergence(P, Q)) / 9,
                               rtol=1e-15)
    # batchmean: by shape[0]; the sum for 0-d; nan for an empty batch; mean over nothing is nan
    assert fl.kl_div(np.float64(-1.0), np.float64(0.5), reduction="batchmean") == \
        fl.kl_div(np.float64(-1.0), np.float64(0.5), reduction="sum")
    assert np.isnan(fl.kl_div(np.zeros((0, 3)), np.zeros((0, 3)), reduction="batchmean"))
    assert fl.kl_div(np.zeros((3, 0)), np.zeros((3, 0)), reduction="batchmean") == 0.0
    assert np.isnan(fl.kl_div(np.zeros((3, 0)), np.zeros((3, 0))))


def test_results_types():
    x = np.zeros((2, 3), np.float32)
    assert isinstance(fl.binary_cross_entropy_with_logits(x, x), np.float32)
    assert isinstance(fl.kl_div(x, x, reduction="sum"), np.float32)
    assert fl.kl_div(x, x, reduction="none").shape == (2, 3)
    assert fl.binary_cross_entropy_with_logits(x.astype(np.float16), x, reduction="none").dtype == np.float32


# ---- grad_out and errors ------------------------------------------------------------------------------------

def test_grad_out_is_filled():
    rng = np.random.default_rng(8)
    x, y = bce_inputs(rng, (4, 5))
    buf = np.empty((4, 5))
    loss, grad = fl.binary_cross_entropy_with_logits_and_grad(x, y, grad_out=buf)
    assert grad is buf
    np.testing.assert_array_equal(buf, fl.binary_cross_entropy_with_logits_and_grad(x, y)[1])
    buf32 = np.empty((4, 5), np.float32)
    loss, grad = fl.kl_div_and_grad(x.astype(np.float32), y.astype(np.float32), grad_out=buf32)
    assert grad is buf32


BAD_GRAD_OUT = {
    "shape": (np.zeros((5, 4)), ValueError),
    "dtype": (np.zeros((4, 5), np.float32), TypeError),
    "not_contiguous": (np.zeros((4, 10))[:, ::2], ValueError),
    "read_only": (np.zeros((4, 5)), ValueError),
    "list": ([[0.0] * 5] * 4, TypeError),
}


@pytest.mark.parametrize("case", BAD_GRAD_OUT)
@pytest.mark.parametrize("func", ["bce", "kl_div"])
def test_bad_grad_out(case, func):
    buf, err = BAD_GRAD_OUT[case]
    if case == "read_only":
        buf.flags.writeable = False
    f = fl.binary_cross_entropy_with_logits_and_grad if func == "bce" else fl.kl_div_and_grad
    with pytest.raises(err, match="grad_out"):
        f(np.zeros((4, 5)), np.zeros((4, 5)), grad_out=buf)


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(weight=np.ones(3)), ValueError, r"weight shape \(3,\)"),
    (dict(pos_weight=np.ones((2, 1, 5))), ValueError, "pos_weight"),
    (dict(sample_weight=np.ones(4)), ValueError, "sample_weight"),
])
def test_bce_errors_leave_grad_out_untouched(kwargs, err, match):
    buf = np.full((4, 5), 7.0)
    with pytest.raises(err, match=match):
        fl.binary_cross_entropy_with_logits_and_grad(np.zeros((4, 5)), np.zeros((4, 5)), grad_out=buf, **kwargs)
    assert np.all(buf == 7.0)


def test_errors():
    buf = np.full((2, 3), 7.0)
    with pytest.raises(ValueError, match=r"logits \(2, 3\) and target \(3, 2\)"):
        fl.binary_cross_entropy_with_logits_and_grad(np.zeros((2, 3)), np.zeros((3, 2)), grad_out=buf)
    with pytest.raises(ValueError, match=r"input \(2, 3\) and target \(2,\)"):
        fl.kl_div_and_grad(np.zeros((2, 3)), np.zeros(2), grad_out=buf)
    with pytest.raises(ValueError, match="batchmean"):
        fl.kl_div_and_grad(np.zeros((2, 3)), np.zeros((2, 3)), reduction="batch", grad_out=buf)
    with pytest.raises(ValueError, match="n_threads"):
        fl.kl_div(np.zeros(3), np.zeros(3), n_threads=-1)
    with pytest.raises(TypeError, match="complex"):
        fl.kl_div(np.zeros(3, complex), np.zeros(3))
    assert np.all(buf == 7.0)
    with pytest.raises(ValueError, match="reduction"):
        fl.binary_cross_entropy_with_logits(np.zeros(3), np.zeros(3), reduction="batchmean")


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_kl_div_vector_form(dtype):
    """Float data goes through a vector form: log p as a float pair (within 5e-11), the loss fma(p, hi - x, p lo),
    within 1.25 float32 eps of the exact loss where |log p - x| >= 2^-9; closer differences (log p ~ log q) and
    the edge values take a double log, the element form's operations. Each loss depends on its own element only
    (the same bits wherever the element falls), and agrees with the element form (an array of one) to those
    bounds."""
    rng = np.random.default_rng(21)
    n = 4099
    p = rng.random(n)
    lq = np.log(p) * (1 + rng.normal(scale=1e-5, size=n))  # y log y - y x cancels to ~1e-5 of its terms
    lq[::3] = np.log(p[::3]) + rng.normal(scale=3e-3, size=len(lq[::3]))  # either side of 2^-9
    lq[1::3] = np.log(rng.random(len(lq[1::3])))  # unrelated
    at = rng.choice(n, 40, replace=False)
    p[at[:20]] = [0.0, 0.0, -1.0, np.inf, np.nan, 1e-45, 3e4, 1.0, 0.5, 0.0] * 2
    lq[at[:20]] = [-np.inf, 1.0, 0.0, 1.0, 0.0, 2.0, 3.0, np.nan, -np.inf, np.inf] * 2
    # p = +0 with log q within 2^-9 of log 1 (the near test passes: the double path's +0), and p = -0
    p[at[20:24]] = [0.0, 0.0, -0.0, -0.0]
    lq[at[20:24]] = [1e-4, -3e-4, 0.5, 1e-4]
    p, lq = p.astype(dtype), lq.astype(dtype)
    loss, g = fl.kl_div_and_grad(lq, p, reduction="none")
    np.testing.assert_array_equal(g, -p.astype(np.float32))
    # shifted by one element: everything but the last group of each array is computed in vectors either way
    np.testing.assert_array_equal(fl.kl_div(lq[1:], p[1:], reduction="none")[:-200], loss[1:-200])
    want = R.kl_div(lq.astype(np.float64), p.astype(np.float64), reduction="none")
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(want))
    np.testing.assert_array_equal(loss[np.isinf(want)], want[np.isinf(want)])
    terms = np.abs(p * np.log(np.where(p > 0, p, 1).astype(np.float64))) + np.abs(p * lq.astype(np.float64))
    bound = 2.6 * 2.0**-24 * np.abs(want[fin]) + 2.0**-50 * terms[fin] + 1e-45
    np.testing.assert_array_less(np.abs(loss[fin] - want[fin]), bound)
    one = np.array([fl.kl_div(lq[i:i + 1], p[i:i + 1], reduction="none")[0] for i in range(n)])
    np.testing.assert_array_equal(np.isnan(one), np.isnan(loss))
    np.testing.assert_array_less(np.abs(one[fin] - want[fin]), bound)
    np.testing.assert_array_equal(loss[at[20:24]], 0.0)


def test_kl_div_float_log_pair_accuracy():
    """The float path's log pair across the whole normal range, against float64: differences log p - log q from
    2^-9 up (the float path) to well below it (the double path), relative to the loss itself."""
    rng = np.random.default_rng(22)
    n = 400_000
    p = np.exp(rng.uniform(-87, 5, n)).astype(np.float32)
    for scale in [10.0, 0.1, 3e-3, 1e-3, 1e-6]:
        lq = (np.log(p.astype(np.float64)) + rng.normal(scale=scale, size=n)).astype(np.float32)
        got = fl.kl_div(lq, p, reduction="none").astype(np.float64)
        want = R.kl_div(lq.astype(np.float64), p.astype(np.float64), reduction="none")
        terms = np.abs(p * np.log(p.astype(np.float64))) + np.abs(p * lq.astype(np.float64))
        np.testing.assert_array_less(np.abs(got - want),
                                     2.6 * 2.0**-24 * np.abs(want) + 2.0**-50 * terms + 2.0**-148)


@pytest.mark.parametrize("shape", [(1000, 10), (64, 33), (256, 1000)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_kl_div_reduced_where_q_is_close_to_p(simd_level, shape, dtype):
    """kl_div's reductions where q is close to p (both normalised): terms p (log p - log q) of either sign, ~1e-3 ..
    1e-5 of p, whose sum (the KL, ~scale^2 / 2 a row) is far below them. Each term summed as the double it is
    computed in, the result is within 2 float32 eps of the exact sum of the inputs' terms (80-bit long double),
    besides 2^-50 of their size; rounded to float first, as until 2026-12-07, it was 7-31 eps off. The same bits
    on 1 and 2 threads; p = 0 terms add nothing."""
    rng = np.random.default_rng(31)
    n, c = shape
    for scale in [1e-3, 1e-4, 1e-5]:
        p64 = rng.random(shape) + 1e-3
        p64 /= p64.sum(1, keepdims=True)
        q64 = p64 * np.exp(rng.normal(scale=scale, size=shape))
        p, lq = p64.astype(dtype), np.log(q64 / q64.sum(1, keepdims=True)).astype(dtype)
        p[3, :2] = 0.0  # log q finite there: a term of 0
        P, LQ = p.astype(np.longdouble), lq.astype(np.longdouble)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(P > 0, P * (np.log(P) - LQ), 0.0)
            size = float(np.sum(np.where(P > 0, np.abs(P * np.log(P)), 0.0) + np.abs(P * LQ)))
        exact = float(np.sum(terms))
        for reduction, divisor in [("sum", 1), ("batchmean", n), ("mean", n * c)]:
            got = fl.kl_div(lq, p, reduction=reduction)
            assert got.dtype == np.float32  # half precision computes and returns float32
            want = exact / divisor
            eps = 2.0**-23
            # log p good to ~2 ulp of double: 2^-50 of the terms' size besides (at 1e-3, 0.1 eps of the sum)
            assert abs(float(got) - want) <= 2 * eps * abs(want) + 2.0**-50 * size / divisor, (reduction, scale)
            two = fl.kl_div(lq, p, reduction=reduction, n_threads=2)
            assert two.tobytes() == fl.kl_div(lq, p, reduction=reduction, n_threads=1).tobytes()


def _kl_sums(rng, kind, rows, c, dtype):
    """(log q, p) of kl_div sums: "unrelated", rows of softmax p and q of independent N(0, 1) logits (the
    benchmark's: a KL ~1 a row, every block in float), zeros and a float32 subnormal among p; "near", q = p e^N(0,
    1e-3) (a KL ~5e-7 a row: every block's probe fails, the double form); "blocks cancel", unrelated rows then rows
    with log q = log p + 2 (terms -2 p) that cancel them: each block's float sum within its bound, the total ~0
    (the call done again in double); "one-hot", p = 1 at one class a row, unrelated q."""
    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    lp = rng.standard_normal((rows, c))
    p = softmax(lp)
    if kind == "one-hot":  # p = 0 but at a class a row: the float form's y = +0 lanes (a term of 0)
        p = np.zeros((rows, c))
        p[np.arange(rows), rng.integers(0, c, rows)] = 1.0
    if kind == "near":
        lq = np.log(softmax(lp + rng.normal(scale=1e-3, size=(rows, c))))
    else:
        lq = np.log(softmax(rng.standard_normal((rows, c))))
    p, lq = p.ravel().astype(dtype).astype(np.float64), lq.ravel().astype(dtype).astype(np.float64)
    if kind == "unrelated":
        p[rng.random(p.size) < 0.01] = 0.0
        if dtype == np.float32:
            p[p.size // 3] = 1e-40
    if kind == "blocks cancel":  # the last third of the rows: log q = log p + 2, then the last row's + d
        m = rows // 3 * c
        lq[-m:] = np.log(p[-m:]) + 2.0
        P, LQ = p[:-c].astype(np.longdouble), lq[:-c].astype(np.longdouble)
        lq[-c:] = np.log(p[-c:]) + float(np.sum(P * (np.log(P) - LQ))) / np.sum(p[-c:])  # the total ~0
    return lq.reshape(rows, c).astype(dtype), p.reshape(rows, c).astype(dtype)


@pytest.mark.parametrize("kind,shape", [("unrelated", (7, 10)), ("unrelated", (500, 10)), ("unrelated", (70, 1000)),
                                        ("unrelated", (3, 32000)), ("near", (70, 1000)),
                                        ("blocks cancel", (70, 1000)), ("one-hot", (70, 1000))])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_kl_div_sums_of_float_terms(kind, shape, dtype, simd_level):
    """kl_div's reductions take log p's float form (log p = k ln2 + lm, lm = log m in float, the term in double)
    where the bounds of lm's error add up to at most a float32 eps of the sum, block by block and over the call,
    else the double terms: the sum, the mean and batchmean within 1.5 eps of the exact sum of the inputs' terms
    (80-bit long double) besides 2^-50 of their size, kl_div, kl_div_and_grad and kl_div_grad_hess the same bits,
    1 or 2 threads. Float lm everywhere would leave "blocks cancel" far off (its terms ~1 each against ~0)."""
    rng = np.random.default_rng(stable_seed("kl float terms", kind, shape, np.dtype(dtype).name))
    lq, p = _kl_sums(rng, kind, shape[0], shape[1], dtype)
    P, LQ = p.astype(np.longdouble), lq.astype(np.longdouble)
    with np.errstate(divide="ignore"):
        logp = np.where(P > 0, np.log(np.where(P > 0, P, 1)), 0.0)
    exact = float(np.sum(P * (logp - LQ)))
    size = float(np.sum(np.abs(P * logp) + np.abs(P * LQ)))
    eps = 2.0**-23
    for reduction, div in (("sum", 1), ("mean", p.size), ("batchmean", shape[0])):
        got = [fl.kl_div(lq, p, reduction=reduction),
               fl.kl_div(lq, p, reduction=reduction, n_threads=1),
               fl.kl_div_and_grad(lq, p, reduction=reduction)[0],
               fl.kl_div_grad_hess(lq, p, reduction=reduction)[0]]
        want = exact / div
        assert abs(float(got[0]) - want) <= 1.5 * eps * abs(want) + 2.0**-50 * size / div, \
            (reduction, float(got[0]), want, (float(got[0]) - want) / abs(want) / eps)
        for g in got[1:]:
            assert g.tobytes() == got[0].tobytes(), (reduction, got)
    if kind == "one-hot":  # p = 0 against log q = -inf inside a vector step: 0 inf = nan, as torch
        r = len(p) // 2
        lq[r, np.flatnonzero(p[r] == 0)[shape[1] // 2]] = -np.inf
        assert np.isnan(fl.kl_div(lq, p, reduction="sum")) and np.isnan(fl.kl_div_and_grad(lq, p)[0])


def test_kl_div_near_lanes_same_bits_in_any_company():
    """p close to q (log p - log q below 2^-9 in most lanes): the lanes the double path takes give the same bits
    whether their whole group of vectors goes through it in lockstep (every vector has such a lane) or their
    vector alone (its neighbours are far), and are within the bound of the vector form's test."""
    rng = np.random.default_rng(23)
    m = 16 * 256
    p = (rng.random(m) + 1e-3).astype(np.float32)
    lq = (np.log(p.astype(np.float64)) + rng.normal(scale=1e-4, size=m)).astype(np.float32)
    alone = fl.kl_div(lq, p, reduction="none")  # near everywhere: every group all slow
    # the same pairs 16 at a time at the start of each run of 64, the rest far (p and q unrelated)
    far_p = (rng.random((m // 16, 48)) + 1e-3).astype(np.float32)
    far_lq = np.log(rng.random((m // 16, 48)) + 1e-3).astype(np.float32)
    mixed_p = np.concatenate([p.reshape(-1, 16), far_p], axis=1).ravel()
    mixed_lq = np.concatenate([lq.reshape(-1, 16), far_lq], axis=1).ravel()
    mixed = fl.kl_div(mixed_lq, mixed_p, reduction="none").reshape(-1, 64)[:, :16].ravel()
    np.testing.assert_array_equal(mixed.view(np.uint32), alone.view(np.uint32))
    want = R.kl_div(lq.astype(np.float64), p.astype(np.float64), reduction="none")
    terms = np.abs(p * np.log(p.astype(np.float64))) + np.abs(p * lq.astype(np.float64))
    np.testing.assert_array_less(np.abs(alone - want), 2.6 * 2.0**-24 * np.abs(want) + 2.0**-50 * terms + 2.0**-148)
    assert np.mean(np.abs(np.log(p.astype(np.float64)) - lq) < 2.0**-9) > 0.9
    np.testing.assert_allclose(fl.kl_div(lq, p, reduction="sum"), want.sum(), rtol=1e-6)



def test_kl_div_odd_lanes_leave_their_neighbours_bits():
    """A step of vectors with an odd p (0, -0, negative, inf, nan) goes through the special-value form; its other
    lanes give the bits they have in a step without one (AVX-512 computes every lane in double, the special form
    the same operations for normal p), near (log q ~ log p) and far lanes, subnormal p among them."""
    rng = np.random.default_rng(24)
    m = 64 * 200
    p = (rng.random(m) + 1e-3).astype(np.float32)
    lq = np.log(p.astype(np.float64)) + rng.normal(scale=1e-3, size=m)
    lq[1::3] = np.log(rng.random(len(lq[1::3])))
    lq[2::3] = np.log(p[2::3].astype(np.float64))  # q = p: log q - log p is log p's rounding to float32
    p[5::97] = np.float32(3e-39)  # subnormal: a normal double
    lq = lq.astype(np.float32)
    clean = fl.kl_div(lq, p, reduction="none")
    odd_p = p.copy()
    at = np.arange(7, m, 64)
    odd_p[at] = np.resize(np.array([0.0, -0.0, -1.0, np.inf, np.nan], np.float32), len(at))
    got = fl.kl_div(lq, odd_p, reduction="none")
    keep = np.ones(m, bool)
    keep[at] = False
    np.testing.assert_array_equal(got[keep].view(np.uint32), clean[keep].view(np.uint32))
    want = R.kl_div(lq.astype(np.float64), odd_p.astype(np.float64), reduction="none")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_kl_div_p_near_one():
    """p close to 1 (a confident distribution: log p ~ -1e-7) against log q close to log p: the loss relative to
    itself, where a log good only to 2^-53 of its table's constants would lose most of it."""
    rng = np.random.default_rng(25)
    n = 100_000
    p = (1.0 - rng.uniform(0, 3e-2, n) * 10.0 ** rng.integers(-5, 1, n)).astype(np.float32)
    p[::7] = (1.0 + rng.uniform(0, 3e-2, len(p[::7]))).astype(np.float32)
    lp = np.log(p.astype(np.float64))
    lq = (lp + lp * rng.normal(scale=1e-3, size=n)).astype(np.float32)
    got = fl.kl_div(lq, p, reduction="none").astype(np.float64)
    want = R.kl_div(lq.astype(np.float64), p.astype(np.float64), reduction="none")
    terms = np.abs(p * lp) + np.abs(p * lq.astype(np.float64))
    np.testing.assert_array_less(np.abs(got - want), 2.6 * 2.0**-24 * np.abs(want) + 2.0**-50 * terms + 2.0**-148)


# ---- threads ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_any_threads(dtype):
    rng = np.random.default_rng(10)
    x, y = (a.astype(dtype) for a in bce_inputs(rng, (2000, 500)))
    pw = rng.random(500)
    runs = []
    for nt in (1, 2):
        runs.append(fl.binary_cross_entropy_with_logits_and_grad(x, y, pos_weight=pw, n_threads=nt)
                    + fl.kl_div_and_grad(-np.abs(x), y, reduction="batchmean", n_threads=nt))
    for a, b in zip(*runs):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    check_pair(runs[0][:2], R.binary_cross_entropy_with_logits_and_grad(x, y, pos_weight=pw), dtype)
