"""The losses of issue 13: poisson_nll_loss, gaussian_nll_loss, tweedie_loss, pinball_loss, smooth_l1_loss,
log_cosh_loss, sigmoid_focal_loss. The shared pair suite (oracle over shapes, dtypes, layouts, reductions, weights;
gradients by finite differences; grad_out; errors; threads), closed forms in float64, the peers (torch,
scikit-learn; skipped when missing), stability at the edges, and the bad options (ValueErrors naming them,
nothing written)."""
import math

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

from pair_suite import Case, make_suite, stable_seed


class PositiveCase(Case):
    """Targets > 0 (counts, Tweedie / Gamma responses): |y| + 0.5 (integers: rounded, >= 1)."""

    def data(self, rng, shape, dtype=np.float64):
        x, y = super().data(rng, shape, np.float64)
        y = np.abs(y) + 0.5
        if np.dtype(dtype).kind == "i":
            y = np.rint(3 * y)
        return x.astype(dtype), y.astype(dtype)


class UnitCase(Case):
    """Targets in [0, 1] (focal loss): 0, 1 and soft 0.3 (integers: 0 and 1)."""

    def data(self, rng, shape, dtype=np.float64):
        x, _ = super().data(rng, shape, np.float64)
        y = rng.choice([0.0, 1.0] if np.dtype(dtype).kind == "i" else [0.0, 1.0, 0.3], size=shape)
        return (np.rint(3 * x) if np.dtype(dtype).kind == "i" else x).astype(dtype), y.astype(dtype)


def _kink(delta):
    return lambda x, y, **kw: np.abs(np.abs(x - y) - kw.get("beta", delta))


CASES = [
    Case("smooth_l1_loss", kink=_kink(1.0)),
    Case("smooth_l1_loss", {"beta": 0.3}, kink=_kink(0.3)),
    Case("smooth_l1_loss", {"beta": 0.0}, kink=_kink(0.0)),
    Case("log_cosh_loss"),
    Case("pinball_loss", kink=lambda x, y, **kw: np.abs(x - y)),
    Case("pinball_loss", {"quantile": 0.9}, kink=lambda x, y, **kw: np.abs(x - y)),
    # float32 losses whose terms cancel near their minimum (exp(x) - y x, log v + d^2 / v, x + y exp(-x)): the
    # oracle's float32 form is a few ulps of the terms off, up to ~1e-5 of the result (poisson_nll's and
    # gaussian_nll's own losses are within half an ulp of the exact value: test_*_loss_where_its_terms_cancel)
    PositiveCase("poisson_nll_loss", rtol32=3e-5),
    PositiveCase("poisson_nll_loss", {"full": True}, rtol32=3e-5, atol32=1e-5),  # float32 terms up to ~30
    Case("gaussian_nll_loss", {"var": 0.7}, rtol32=3e-5),
    Case("gaussian_nll_loss", {"var": 1e-9, "full": True, "eps": 0.25}, rtol32=3e-5),
    PositiveCase("tweedie_loss", rtol32=3e-5),
    PositiveCase("tweedie_loss", {"power": 1.0}, rtol32=3e-5),
    PositiveCase("tweedie_loss", {"power": 2.0}, rtol32=3e-5),
    UnitCase("sigmoid_focal_loss", rtol32=3e-5),
    UnitCase("sigmoid_focal_loss", {"alpha": -1.0, "gamma": 0.5}, rtol32=3e-5),
]

TestMoreLossPairs = make_suite(CASES)


# ---- closed forms ----------------------------------------------------------------------------------------------

def test_closed_forms():
    x, t = np.array([0.0, 0.5, 2.0, -3.0]), np.zeros(4)
    np.testing.assert_array_equal(fl.smooth_l1_loss(x, t, reduction="none"), [0.0, 0.125, 1.5, 2.5])
    np.testing.assert_array_equal(fl.smooth_l1_loss(x, t, beta=0.0, reduction="none"), [0.0, 0.5, 2.0, 3.0])
    _, g, h = fl.smooth_l1_loss_grad_hess(x, t, beta=0.0, reduction="none")
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, -1.0])  # beta = 0: l1's sign, sign(0) = 0
    np.testing.assert_array_equal(h, [0.0, 0.0, 0.0, 0.0])
    _, _, h = fl.smooth_l1_loss_grad_hess(x, t, beta=4.0, reduction="sum")
    np.testing.assert_array_equal(h, [0.25, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(fl.log_cosh_loss(x, t, reduction="none"), np.log(np.cosh(x)), rtol=1e-15)
    np.testing.assert_array_equal(fl.pinball_loss(np.array([1.0, 3.0, 2.0]), np.full(3, 2.0), quantile=0.9,
                                                  reduction="none"), [0.9, 1 - 0.9, 0.0])
    _, g = fl.pinball_loss_and_grad(np.array([1.0, 3.0, 2.0]), np.full(3, 2.0), quantile=0.25, reduction="sum")
    np.testing.assert_array_equal(g, [-0.25, 0.75, -0.25])  # at pred = y: -q, as scikit-learn's PinballLoss
    # poisson: exp(x) - y x; the rate form x - y log(x + eps); Stirling's term only where y > 1
    y = np.array([0.0, 1.0, 3.0])
    r = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(fl.poisson_nll_loss(np.log(r), y, reduction="none"), r - y * np.log(r), rtol=1e-15)
    np.testing.assert_allclose(fl.poisson_nll_loss(r, y, log_input=False, eps=0.0, reduction="none"),
                               r - y * np.log(r), rtol=1e-15)
    stirling = np.array([0.0, 0.0, 3 * np.log(3) - 3 + 0.5 * np.log(6 * np.pi)])
    np.testing.assert_allclose(fl.poisson_nll_loss(np.log(r), y, full=True, reduction="none"),
                               r - y * np.log(r) + stirling, rtol=1e-15)
    # gaussian: 0.5 (log v + d^2 / v), v clamped to eps; full adds 0.5 log(2 pi)
    loss = fl.gaussian_nll_loss(np.array([1.0, 1.0]), np.zeros(2), np.array([4.0, 0.0]), eps=0.5, reduction="none")
    np.testing.assert_allclose(loss, [0.5 * (np.log(4.0) + 0.25), 0.5 * (np.log(0.5) + 2.0)], rtol=1e-15)
    loss = fl.gaussian_nll_loss(np.array([1.0]), np.zeros(1), np.array([4.0]), full=True, reduction="sum")
    np.testing.assert_allclose(loss, 0.5 * (np.log(4.0) + 0.25 + np.log(2 * np.pi)), rtol=1e-15)
    # tweedie: the three forms
    raw, y = np.array([0.3, -1.0]), np.array([2.0, 0.5])
    np.testing.assert_allclose(fl.tweedie_loss(raw, y, power=1.0, reduction="none"), np.exp(raw) - y * raw,
                               rtol=1e-15)
    np.testing.assert_allclose(fl.tweedie_loss(raw, y, power=2.0, reduction="none"), raw + y * np.exp(-raw),
                               rtol=1e-15)
    p = 1.5
    np.testing.assert_allclose(fl.tweedie_loss(raw, y, power=p, reduction="none"),
                               np.exp((2 - p) * raw) / (2 - p) - y * np.exp((1 - p) * raw) / (1 - p), rtol=1e-15)
    # focal: at x = 0 with y = 1, p_t = 1/2: alpha (1/2)^gamma log 2
    np.testing.assert_allclose(fl.sigmoid_focal_loss(np.zeros(1), np.ones(1), reduction="sum"),
                               0.25 * 0.25 * np.log(2), rtol=1e-15)


def test_stable_edges():
    big = np.array([1e4, -1e4, 30.0, -30.0, 0.0, 1e-8])
    # log_cosh: no overflow, and full relative accuracy for tiny differences (d^2 / 2)
    loss, g, h = fl.log_cosh_loss_grad_hess(big, np.zeros(6), reduction="none")
    np.testing.assert_allclose(loss, [1e4 - np.log(2), 1e4 - np.log(2), 30 - np.log(2), 30 - np.log(2), 0.0,
                                      5e-17], rtol=1e-15)
    np.testing.assert_array_equal(g[:2], [1.0, -1.0])
    np.testing.assert_allclose(h, [0.0, 0.0, 4 * np.exp(-60.0), 4 * np.exp(-60.0), 1.0, 1.0], rtol=1e-14)
    for dtype in (np.float32, np.float64):
        loss, g, h = fl.log_cosh_loss_grad_hess(big.astype(dtype), np.zeros(6, dtype), reduction="none")
        assert np.isfinite(loss).all() and np.isfinite(g).all() and np.isfinite(h).all()
        np.testing.assert_allclose(loss[5], 5e-17, rtol=1e-6)
    # focal: finite for any finite logit, in every dtype; the limits of the exact formulas
    x = np.array([1e4, -1e4, 1e4, -1e4, 80.0, -80.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.3])
    for gamma in (0.0, 0.5, 1.0, 2.0, 3.5):
        for dtype in (np.float32, np.float64):
            loss, g, h = fl.sigmoid_focal_loss_grad_hess(x.astype(dtype), y.astype(dtype), gamma=gamma,
                                                         reduction="none")
            assert np.isfinite(loss).all() and np.isfinite(g).all() and np.isfinite(h).all(), (gamma, dtype)
            np.testing.assert_allclose(loss[:4], [0.0, 0.0, 0.75e4, 0.25e4], rtol=1e-6)
            np.testing.assert_allclose(g[:4], [0.0, 0.0, 0.75, -0.25], rtol=1e-6, atol=1e-30)
    # bce at 1e4 is exact too (the same e = exp(-|x|) forms)
    np.testing.assert_array_equal(fl.sigmoid_focal_loss(np.array([1e4]), np.zeros(1), alpha=-1, gamma=0.0,
                                                        reduction="sum"), 1e4)


@pytest.mark.parametrize("name,kw", [("poisson_nll_loss", {}), ("poisson_nll_loss", {"log_input": False}),
                                     ("tweedie_loss", {"power": 1.0}), ("tweedie_loss", {"power": 1.5}),
                                     ("tweedie_loss", {"power": 2.0})], ids=str)
@pytest.mark.parametrize("n", [7, 4099])  # the element form only; the vector form and a tail
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gradient_near_the_optimum(name, kw, n, dtype):
    """Near its optimum (exp(x) ~ y, x + eps ~ y) a gradient is a small difference of large terms: float math
    lost it (the error a float ulp of the terms, 4.7e-5 of the result in a CI run); in double, it keeps a few
    ulps of the result, up to double rounding of the terms (2^-50 of them)."""
    rng = np.random.default_rng(stable_seed(name, kw, n, np.dtype(dtype).name))
    y = (np.abs(rng.normal(size=n)) + 0.5).astype(dtype).astype(np.float64)
    log_input = kw.get("log_input", True)
    x = (np.log(y) if log_input else y) * (1 + rng.normal(scale=1e-3 if dtype == np.float16 else 1e-5, size=n))
    x = x.astype(dtype)
    _, g = getattr(fl, name + "_and_grad")(x, y.astype(dtype), reduction="none", **kw)
    x = x.astype(np.float64)
    _, want = getattr(R, name + "_and_grad")(x, y, reduction="none", **kw)
    p = kw.get("power", 1.0)
    terms = np.exp((2 - p) * x) + y * np.exp((1 - p) * x) if log_input else 1 + y / (x + 1e-8)
    eps = np.finfo(dtype).eps
    np.testing.assert_array_less(np.abs(g - want), 1.5 * eps * np.abs(want) + 2**-50 * terms)


def _poisson_near_zero(rng, n, log_input, dtype):
    """(x, y) of dtype whose poisson losses cross 0 or nearly (exp(x) ~ y x; x ~ y log x): a fitted model's half,
    and the rest at the roots, moved by a relative 1e-4 .. 1e-7."""
    y = rng.uniform(3.0, 40.0, n)
    g = (lambda x: np.exp(x) - y * x, lambda x: np.exp(x) - y) if log_input else \
        (lambda x: x - y * np.log(x), lambda x: 1 - y / x)
    x = np.log(y) + 1.5 if log_input else y * np.log(y) * 1.3  # past the minimum: the larger root
    for _ in range(60):
        x = x - g[0](x) / g[1](x)
    x = x * (1 + rng.normal(size=n) * 10.0 ** rng.uniform(-7, -4, n))
    mu = rng.uniform(0.5, 6.0, n)
    fitted = rng.random(n) < 0.5
    y = np.where(fitted, rng.poisson(mu), y).astype(dtype).astype(np.float64)
    x = np.where(fitted, np.log(mu) + rng.normal(0, 0.05, n) if log_input else mu, x).astype(dtype)
    return x.astype(np.float64), y


@pytest.mark.parametrize("name,kw", [("poisson_nll_loss", {}), ("poisson_nll_loss", {"full": True}),
                                     ("poisson_nll_loss", {"log_input": False}),
                                     ("poisson_nll_loss", {"log_input": False, "full": True}),
                                     ("tweedie_loss", {"power": 1.0})], ids=str)
@pytest.mark.parametrize("n", [7, 4099])  # the element form only; the vector form and a tail
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_poisson_loss_where_its_terms_cancel(name, kw, n, dtype, simd_level):
    """exp(x) - y x (x - y log(x + eps); plus Stirling's term with full) crosses 0: each loss in double, rounded
    once, is within half an ulp of the exact value and 2^-50 of its terms, from every form it can take (loss
    alone, with the gradient, with the Hessian) at every SIMD level. In float (the terms rounded, then
    subtracted) the worst of 100,000 elements of a fitted model was 12,700 float32 eps off."""
    rng = np.random.default_rng(stable_seed(name, kw, n, np.dtype(dtype).name))
    log_input = kw.get("log_input", True)
    x, y = _poisson_near_zero(rng, n, log_input, dtype)
    want = getattr(R, name)(x, y, reduction="none", **kw)
    terms = np.exp(x) + np.abs(y * x) if log_input else x + y * np.abs(np.log(x + 1e-8))
    if kw.get("full"):
        ly = np.log(np.maximum(y, 1.0))
        terms = terms + np.where(y > 1, y * ly + y + ly + np.log(2 * np.pi), 0.0)
    eps = np.finfo(np.float32).eps  # half data: float32 losses
    xs, ys = x.astype(dtype), y.astype(dtype)
    outs = [getattr(fl, name)(xs, ys, reduction="none", **kw),
            getattr(fl, name + "_and_grad")(xs, ys, reduction="none", **kw)[0],
            getattr(fl, name + "_grad_hess")(xs, ys, reduction="none", **kw)[0]]
    for got in outs:
        assert got.dtype == np.float32
        err = np.abs(got.astype(np.float64) - want)
        np.testing.assert_array_less(err, 0.5 * eps * np.abs(want) + 2**-50 * terms + 2.0**-149)
        np.testing.assert_array_equal(got, outs[0])


@pytest.mark.parametrize("name,kw", [("poisson_nll_loss", {}), ("poisson_nll_loss", {"log_input": False}),
                                     ("tweedie_loss", {"power": 1.0}), ("tweedie_loss", {"power": 2.0})], ids=str)
@pytest.mark.parametrize("n", [7, 4099])  # the element form only; the vector form and a tail
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_sum_where_the_losses_cancel(name, kw, n, dtype, simd_level):
    """The reductions of poisson_nll_loss and tweedie_loss at powers 1 and 2 sum each loss in double as computed,
    not rounded to float first (and exp(x) - y x's float terms are not kept: their bounds are not within the
    sum): where the losses of the elements cancel each other (pairs of about opposite losses), the sum and the
    mean stay within a few float32 eps of the exact value and 2^-50 of the terms.
    Summing the float32 losses left them 1e6-2e7 eps off (poisson_nll, 5 of 5 seeds of 4,096 elements, one with
    the wrong sign), with or without the gradient."""
    rng = np.random.default_rng(stable_seed("sum cancels", name, kw, n, np.dtype(dtype).name))
    m = n // 2 + 1
    if kw.get("power") == 2.0:  # x + y e^-x and x + y2 e^-x ~ -(x + y e^-x): y2 = -2 x e^x - y
        x = rng.uniform(-4.0, -0.05, m).astype(dtype).astype(np.float64)
        y = (rng.uniform(0.05, 0.95, m) * -2 * x * np.exp(x)).astype(dtype).astype(np.float64)
        y2 = -2 * x * np.exp(x) - y
        terms = np.abs(x) + y * np.exp(-x)
    elif kw.get("log_input", True):  # exp(x) - y x and exp(x) - y2 x ~ -(exp(x) - y x)
        x = rng.uniform(0.5, 3.0, m).astype(dtype).astype(np.float64)
        y = (rng.uniform(0.05, 0.95, m) * np.exp(x) / x).astype(dtype).astype(np.float64)
        y2 = (2 * np.exp(x) - y * x) / x
        terms = np.exp(x) + y * x
    else:  # x - y log(x + eps), the same
        x = rng.uniform(2.0, 20.0, m).astype(dtype).astype(np.float64)
        lx = np.log(x + 1e-8)
        y = (rng.uniform(0.05, 0.95, m) * x / lx).astype(dtype).astype(np.float64)
        y2 = (2 * x - y * lx) / lx
        terms = x + y * lx
    x, y, terms = np.concatenate([x, x]), np.concatenate([y, y2.astype(dtype).astype(np.float64)]), np.tile(terms, 2)
    order = rng.permutation(2 * m)[:n]
    x, y, terms = x[order], y[order], terms[order]
    want = getattr(R, name)(x, y, reduction="none", **kw)
    eps = np.finfo(np.float32).eps
    xs, ys = x.astype(dtype), y.astype(dtype)
    for reduction, div in (("sum", 1), ("mean", n)):
        exact = math.fsum(want) / div
        for got in (getattr(fl, name)(xs, ys, reduction=reduction, **kw),
                    getattr(fl, name + "_and_grad")(xs, ys, reduction=reduction, **kw)[0]):
            assert abs(float(got) - exact) <= 2 * eps * abs(exact) + 2**-50 * terms.sum() / div, (reduction, got, exact)


def _poisson_sums(rng, kind, n, dtype):
    """(x, y) of poisson losses exp(x) - y x whose sum is: "unrelated", x ~ N(0, 1), y ~ U(0, 1) (the benchmark's:
    every block in float); "fitted", a model of counts around 3 (losses of either sign, each block's terms
    cancel: double); "blocks cancel", whole blocks of positive losses then whole blocks of negative ones, each
    block's float sum within its bound but the total about 0 (the call done again in double)."""
    if kind == "unrelated":
        x, y = rng.standard_normal(n), rng.random(n)
    elif kind == "fitted":
        x = rng.normal(1.0, 0.5, n)
        y = rng.poisson(np.exp(x)).astype(np.float64)
    else:  # exp(x) - y x: ~ +1.65 an element in the first part, ~ -2.28 (x ~ 1, y ~ 5) in the last
        m, k = int(n * 2.28 / (1.65 + 2.28)), 1000
        x = np.concatenate([rng.standard_normal(m), 1.0 + rng.normal(0, 0.01, n - m)]).astype(dtype)
        y = np.concatenate([rng.random(m), np.full(n - m, 5.0)]).astype(dtype).astype(np.float64)
        x = x.astype(np.float64)
        rest = math.fsum(np.exp(x[:-k]) - y[:-k] * x[:-k])
        y[-k:] = (np.exp(x[-k:]) + rest / k) / x[-k:]  # the total 0 but for these y's roundings
    return x.astype(dtype), y.astype(dtype)


@pytest.mark.parametrize("name,kw", [("poisson_nll_loss", {}), ("poisson_nll_loss", {"full": True}),
                                     ("tweedie_loss", {"power": 1.0})], ids=str)
@pytest.mark.parametrize("kind,n", [("unrelated", 100), ("unrelated", 5000), ("unrelated", 70000),
                                    ("fitted", 5000), ("fitted", 70000), ("blocks cancel", 70000)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_poisson_sums_of_float_terms(name, kw, kind, n, dtype, simd_level):
    """The reductions of exp(x) - y x (poisson_nll_loss with log_input, tweedie_loss at power 1) take the float
    exp where its error bounds (1.43 float32 ulp an exp) add up to at most a float32 eps of the sum, block by
    block and over the call, else the double terms: the sum and the mean within 1.5 eps of the exact value (and
    2^-50 of the terms), the loss alone, with the gradient and with the Hessian the same bits, 1 or 2 threads.
    Float terms everywhere would leave "blocks cancel" 6e4 (float16) and 7.5e7 (float32) eps off (the same float
    exp summed in NumPy): their errors against a total ~ 0."""
    rng = np.random.default_rng(stable_seed("float terms", name, kw, kind, n, np.dtype(dtype).name))
    xs, ys = _poisson_sums(rng, kind, n, dtype)
    x, y = xs.astype(np.float64), ys.astype(np.float64)
    want = getattr(R, name)(x, y, reduction="none", **kw)
    terms = np.exp(x) + np.abs(y * x) + np.abs(want)
    eps = np.finfo(np.float32).eps
    for reduction, div in (("sum", 1), ("mean", n)):
        exact = math.fsum(want) / div
        got = [getattr(fl, name)(xs, ys, reduction=reduction, **kw),
               getattr(fl, name)(xs, ys, reduction=reduction, n_threads=1, **kw),
               getattr(fl, name + "_and_grad")(xs, ys, reduction=reduction, **kw)[0],
               getattr(fl, name + "_grad_hess")(xs, ys, reduction=reduction, **kw)[0]]
        assert abs(float(got[0]) - exact) <= 1.5 * eps * abs(exact) + 2**-50 * terms.sum() / div, \
            (reduction, got[0], exact, (float(got[0]) - exact) / abs(exact) / eps)
        for g in got[1:]:
            assert g == got[0], (reduction, got)


@pytest.mark.parametrize("n", [7, 4099])  # the element form only; the vector form and a tail
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_tweedie_gamma_where_its_terms_cancel(n, dtype, simd_level):
    """tweedie_loss at power 2: x + y exp(-x) crosses 0 where y < 1/e (y = -x e^x), its gradient 1 - y exp(-x) at
    the optimum: both from one exp in double, each rounded once, within half an ulp of the exact value and 2^-50
    of the terms, at every SIMD level and from every form."""
    rng = np.random.default_rng(stable_seed("tweedie gamma", n, np.dtype(dtype).name))
    x = rng.uniform(-4.0, -0.05, n)
    y = -x * np.exp(x)
    x = x * (1 + rng.normal(size=n) * 10.0 ** rng.uniform(-7, -4, n))
    fitted = rng.random(n) < 0.5
    y = np.where(fitted, rng.gamma(2.0, 1.0, n), y).astype(dtype).astype(np.float64)
    x = np.where(fitted, np.log(y) * (1 + rng.normal(size=n) * 1e-5), x).astype(dtype).astype(np.float64)
    want, gwant = R.tweedie_loss_and_grad(x, y, power=2.0, reduction="none")
    ye = y * np.exp(-x)
    eps = np.finfo(np.float32).eps  # half data: float32 losses
    xs, ys = x.astype(dtype), y.astype(dtype)
    outs = [fl.tweedie_loss(xs, ys, power=2.0, reduction="none"),
            fl.tweedie_loss_and_grad(xs, ys, power=2.0, reduction="none"),
            fl.tweedie_loss_grad_hess(xs, ys, power=2.0, reduction="none")]
    for got in (outs[0], outs[1][0], outs[2][0]):
        err = np.abs(got.astype(np.float64) - want)
        np.testing.assert_array_less(err, 0.5 * eps * np.abs(want) + 2**-50 * (np.abs(x) + ye) + 2.0**-149)
        np.testing.assert_array_equal(got, outs[0])
    for g in (outs[1][1], outs[2][1]):
        err = np.abs(g.astype(np.float64) - gwant)
        np.testing.assert_array_less(err, 0.5 * eps * np.abs(gwant) + 2**-50 * (1 + ye) + 2.0**-149)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("n", [7, 4099])  # the element form only; the vector form and a tail
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_gaussian_loss_where_its_terms_cancel(full, n, dtype, simd_level):
    """0.5 (log v + d^2 / v) crosses 0 where v < 1 (d^2 / v = -log v): each loss in double, rounded once, is
    within half an ulp of the exact value and 2^-50 of its terms from every form (loss alone, with the gradient,
    with the Hessian) at every SIMD level; in float the worst of 100,000 elements was 20,000 float32 eps off. A
    var past 2^+-126 takes the float log (its own test: the vector and scalar forms at the edges); the reductions
    sum the float form (FL_VELEM3_SUM_ONLY), checked against the exact sum below."""
    rng = np.random.default_rng(stable_seed("gaussian", full, n, np.dtype(dtype).name))
    v = rng.uniform(0.05, 0.98, n)
    d = np.sqrt(-v * np.log(v)) * (1 + rng.normal(size=n) * 10.0 ** rng.uniform(-7, -3, n))
    fitted = rng.random(n) < 0.5
    v = np.where(fitted, rng.uniform(0.05, 2.0, n), v).astype(dtype).astype(np.float64)
    d = np.where(fitted, rng.normal(size=n) * np.sqrt(v), d)
    y = rng.normal(size=n).astype(dtype).astype(np.float64)
    x = (y + d).astype(dtype).astype(np.float64)
    want = R.gaussian_nll_loss(x, y, v, full=full, reduction="none")
    terms = np.abs(np.log(v)) + (x - y) ** 2 / v + 1.0
    eps = np.finfo(np.float32).eps  # half data: float32 losses
    xs, ys, vs = x.astype(dtype), y.astype(dtype), v.astype(dtype)
    outs = [fl.gaussian_nll_loss(xs, ys, vs, full=full, reduction="none"),
            fl.gaussian_nll_loss_and_grad(xs, ys, vs, full=full, reduction="none")[0],
            fl.gaussian_nll_loss_grad_hess(xs, ys, vs, full=full, reduction="none")[0]]
    for got in outs:
        assert got.dtype == np.float32
        err = np.abs(got.astype(np.float64) - want)
        np.testing.assert_array_less(err, 0.5 * eps * np.abs(want) + 2**-50 * terms + 2.0**-149)
        np.testing.assert_array_equal(got, outs[0])
    # the sums of the float form: its terms' roundings (each within ~2^-23 of its terms) average out, to within a few
    # eps of the exact sum and a root-sum-square of those roundings
    for reduction, scale in (("sum", 1), ("mean", n)):
        got = fl.gaussian_nll_loss(xs, ys, vs, full=full, reduction=reduction)
        exact = R.gaussian_nll_loss(x, y, v, full=full, reduction=reduction)
        assert abs(float(got) - exact) <= 4 * eps * abs(exact) + 2**-23 * np.sqrt(np.sum(terms**2)) / scale


@pytest.mark.parametrize("n", [3, 4099])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_poisson_rate_gradient_at_infinite_rates(n, dtype):
    """log_input=False, x = +-inf: the gradient 1 - y / (x + eps) = 1 (the double form's (x + eps - y) / (x + eps)
    would be inf * 0 there), element and vector forms alike."""
    x = np.full(n, 2.0, dtype)
    x[:2] = [np.inf, -np.inf]
    y = np.full(n, 3.0, dtype)
    _, g = fl.poisson_nll_loss_and_grad(x, y, log_input=False, reduction="none")
    np.testing.assert_array_equal(g[:2], [1.0, 1.0])
    np.testing.assert_allclose(g[2:], 1 - 3.0 / (2.0 + 1e-8), rtol=1e-6)


# ---- peers -------------------------------------------------------------------------------------------------------

def _torch_check(torch_loss, fl_name, x, args, kw, fl_kw=None, rtol=1e-12):
    """loss, grad and Hessian diagonal of a torch expression (autograd, double backward) against fastloss's."""
    import torch
    xt = torch.tensor(x, requires_grad=True)
    out = torch_loss(xt, *[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args], **kw)
    (g,) = torch.autograd.grad(out.sum(), xt, create_graph=True)
    h = torch.autograd.grad(g.sum(), xt)[0] if g.requires_grad else torch.zeros_like(xt)
    loss, gf, hf = getattr(fl, fl_name + "_grad_hess")(x, *args, reduction="sum", **(fl_kw or kw))
    np.testing.assert_allclose(loss, out.sum().item(), rtol=rtol)
    np.testing.assert_allclose(gf, g.detach().numpy(), rtol=rtol, atol=1e-14)
    np.testing.assert_allclose(hf, h.numpy(), rtol=rtol, atol=1e-14)
    for reduction in ("none", "mean"):
        want = torch_loss(xt, *[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args],
                          **{**kw, "reduction": reduction} if "reduction" in kw else kw)
        want = want.detach().numpy() if reduction == "none" else want.mean().item()
        if "reduction" not in kw and reduction == "none":
            np.testing.assert_allclose(getattr(fl, fl_name)(x, *args, reduction="none", **(fl_kw or kw)), want,
                                       rtol=rtol)


@pytest.mark.parametrize("log_input,full", [(True, False), (True, True), (False, False), (False, True)])
def test_poisson_against_torch(log_input, full):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(20)
    x = rng.normal(size=(4, 6))
    if not log_input:
        x = np.abs(x) + 0.1
    y = rng.poisson(2.0, size=x.shape).astype(np.float64)
    for reduction in ("none", "sum", "mean"):
        want = torch.nn.functional.poisson_nll_loss(torch.tensor(x), torch.tensor(y), log_input=log_input,
                                                    full=full, reduction=reduction).numpy()
        got = fl.poisson_nll_loss(x, y, log_input=log_input, full=full, reduction=reduction)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    _torch_check(lambda a, b: torch.nn.functional.poisson_nll_loss(a, b, log_input=log_input, full=full,
                                                                   reduction="none"),
                 "poisson_nll_loss", x, (y,), {}, {"log_input": log_input, "full": full})


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", [(3, 4, 5), (3, 4), (3, 4, 1), (3, 1, 5), (1, 4, 5)])
def test_gaussian_against_torch(full, var_shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    x, t = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4, 5))
    var = rng.uniform(0.0, 2.0, size=var_shape)
    var.flat[0] = 0.0  # clamped to eps
    for reduction in ("none", "sum", "mean"):
        want = torch.nn.functional.gaussian_nll_loss(torch.tensor(x), torch.tensor(t), torch.tensor(var), full=full,
                                                     reduction=reduction).numpy()
        got = fl.gaussian_nll_loss(x, t, var, full=full, reduction=reduction)
        np.testing.assert_allclose(got, want, rtol=1e-12)
    xt = torch.tensor(x, requires_grad=True)
    out = torch.nn.functional.gaussian_nll_loss(xt, torch.tensor(t), torch.tensor(var), full=full, reduction="sum")
    (g,) = torch.autograd.grad(out, xt, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), xt)
    _, gf, hf = fl.gaussian_nll_loss_grad_hess(x, t, var, full=full, reduction="sum")
    np.testing.assert_allclose(gf, g.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(hf, h.numpy(), rtol=1e-12)


def test_gaussian_var_errors():
    x = np.zeros((3, 4))
    gbuf, hbuf = np.full(x.shape, 7.0), np.full(x.shape, 7.0)
    bad_var = np.ones((3, 4))
    bad_var[1, 2] = -0.5
    with pytest.raises(ValueError, match="var has a negative entry"):
        fl.gaussian_nll_loss_grad_hess(x, x, bad_var, grad_out=gbuf, hess_out=hbuf)
    assert (gbuf == 7.0).all() and (hbuf == 7.0).all()
    for shape in [(4,), (2, 4), (3, 4, 1), (1, 1)]:
        with pytest.raises(ValueError, match=r"var has shape"):
            fl.gaussian_nll_loss(x, x, np.ones(shape))
    # nan var: a nan loss, not an error (as torch)
    assert np.isnan(fl.gaussian_nll_loss(np.zeros(2), np.zeros(2), np.array([1.0, np.nan])))
    assert fl.gaussian_nll_loss(np.ones(2), np.zeros(2), 2.0) == pytest.approx(0.5 * (np.log(2.0) + 0.5))


@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0])
def test_smooth_l1_against_torch(beta):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(22)
    x, t = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    x[0, :2] = t[0, :2]  # d = 0
    for reduction in ("none", "sum", "mean"):
        for dtype in (np.float32, np.float64):
            want = torch.nn.functional.smooth_l1_loss(torch.tensor(x.astype(dtype)), torch.tensor(t.astype(dtype)),
                                                      beta=beta, reduction=reduction).numpy()
            got = fl.smooth_l1_loss(x.astype(dtype), t.astype(dtype), beta=beta, reduction=reduction)
            np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == np.float64 else 2e-6, atol=1e-7)
    xt = torch.tensor(x, requires_grad=True)
    out = torch.nn.functional.smooth_l1_loss(xt, torch.tensor(t), beta=beta, reduction="sum")
    (g,) = torch.autograd.grad(out, xt)
    _, gf = fl.smooth_l1_loss_and_grad(x, t, beta=beta, reduction="sum")
    np.testing.assert_allclose(gf, g.numpy(), rtol=1e-12)


def _torch_focal(torch, inputs, targets, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss (reduction "none"), its code written in torch ops."""
    p = torch.sigmoid(inputs)
    ce_loss = torch.nn.functional.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (-1.0, 2.0), (0.6, 0.0), (0.25, 1.0), (0.4, 1.5), (0.5, 3.0)])
def test_focal_against_torchvision_formula(alpha, gamma):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(23)
    x = rng.normal(scale=3.0, size=(6, 8))
    y = rng.choice([0.0, 1.0, 0.2, 0.9], size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    loss_t = _torch_focal(torch, xt, torch.tensor(y), alpha, gamma)
    (g,) = torch.autograd.grad(loss_t.sum(), xt, create_graph=True)
    h = torch.autograd.grad(g.sum(), xt)[0]
    loss, gf, hf = fl.sigmoid_focal_loss_grad_hess(x, y, alpha=alpha, gamma=gamma, reduction="none")
    np.testing.assert_allclose(loss, loss_t.detach().numpy(), rtol=1e-11)
    np.testing.assert_allclose(gf, g.detach().numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(hf, h.numpy(), rtol=1e-9, atol=1e-14)
    for dtype in (np.float32,):
        np.testing.assert_allclose(fl.sigmoid_focal_loss(x.astype(dtype), y.astype(dtype), alpha=alpha, gamma=gamma),
                                   loss_t.mean().item(), rtol=1e-5)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_pinball_against_sklearn(q):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(24)
    pred, y, sw = rng.normal(size=50), rng.normal(size=50), rng.uniform(0.5, 2.0, size=50)
    np.testing.assert_allclose(fl.pinball_loss(pred, y, quantile=q), metrics.mean_pinball_loss(y, pred, alpha=q),
                               rtol=1e-13)
    np.testing.assert_allclose(fl.pinball_loss(pred, y, quantile=q, sample_weight=sw),
                               metrics.mean_pinball_loss(y, pred, alpha=q, sample_weight=sw), rtol=1e-13)
    from sklearn._loss.loss import PinballLoss
    _, g = fl.pinball_loss_and_grad(pred, y, quantile=q, reduction="none")
    np.testing.assert_allclose(g, PinballLoss(quantile=q).gradient(y, pred), rtol=1e-15)


@pytest.mark.parametrize("power", [1.0, 1.3, 1.5, 1.8, 2.0])
def test_tweedie_against_sklearn(power):
    pytest.importorskip("sklearn")
    from sklearn._loss.loss import HalfGammaLoss, HalfPoissonLoss, HalfTweedieLoss
    sk = HalfPoissonLoss() if power == 1.0 else HalfGammaLoss() if power == 2.0 else HalfTweedieLoss(power=power)
    rng = np.random.default_rng(25)
    raw, y = rng.normal(size=40), rng.gamma(1.5, size=40) + 0.01
    sw = rng.uniform(0.5, 2.0, size=40)
    want_g, want_h = sk.gradient_hessian(y, raw)
    loss, g, h = fl.tweedie_loss_grad_hess(raw, y, power=power, reduction="none")
    np.testing.assert_allclose(loss, sk.loss(y, raw), rtol=1e-12)
    np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h, want_h, rtol=1e-12)
    # the mean with sample weights: sum sw l / sum sw (scikit-learn's __call__ is the weighted average)
    np.testing.assert_allclose(fl.tweedie_loss(raw, y, power=power, sample_weight=sw),
                               sk(y, raw, sample_weight=sw), rtol=1e-12)
    if power == 1.0:  # poisson_nll_loss with log_input is the same loss
        np.testing.assert_allclose(fl.poisson_nll_loss(raw, y, reduction="none"), loss, rtol=1e-15)


def test_log_cosh_against_optax_formula():
    """optax.log_cosh is logaddexp(d, -d) - log 2: the same values where that form does not cancel."""
    rng = np.random.default_rng(26)
    d = rng.normal(scale=5.0, size=200)
    d = d[np.abs(d) > 1]
    np.testing.assert_allclose(fl.log_cosh_loss(d, np.zeros_like(d), reduction="none"),
                               np.logaddexp(d, -d) - np.log(2.0), rtol=1e-14)


# ---- bad options ----------------------------------------------------------------------------------------------

BAD_OPTIONS = [
    ("tweedie_loss", {"power": 0.5}, "power"), ("tweedie_loss", {"power": 2.5}, "power"),
    ("tweedie_loss", {"power": np.nan}, "power"), ("tweedie_loss", {"power": np.inf}, "power"),
    ("pinball_loss", {"quantile": 0.0}, "quantile"), ("pinball_loss", {"quantile": 1.0}, "quantile"),
    ("pinball_loss", {"quantile": -0.2}, "quantile"), ("pinball_loss", {"quantile": np.nan}, "quantile"),
    ("smooth_l1_loss", {"beta": -1.0}, "beta"), ("smooth_l1_loss", {"beta": np.inf}, "beta"),
    ("poisson_nll_loss", {"eps": np.nan}, "eps"), ("poisson_nll_loss", {"eps": -1.0}, "eps"),
    ("gaussian_nll_loss", {"eps": np.inf}, "eps"), ("gaussian_nll_loss", {"eps": -1e-6}, "eps"),
    ("sigmoid_focal_loss", {"alpha": np.nan}, "alpha"), ("sigmoid_focal_loss", {"gamma": -1.0}, "gamma"),
    ("sigmoid_focal_loss", {"gamma": np.inf}, "gamma"),
]


@pytest.mark.parametrize("name,kw,word", BAD_OPTIONS, ids=[f"{n}-{k}" for n, k, _ in BAD_OPTIONS])
def test_bad_options(name, kw, word):
    x, y = np.full((2, 3), 0.5), np.full((2, 3), 0.5)
    extra = (np.ones((2, 3)),) if name == "gaussian_nll_loss" else ()
    suffixes = ("", "_and_grad") + (() if name == "pinball_loss" else ("_grad_hess",))
    for suffix in suffixes:
        buffers = {}
        if suffix:
            buffers["grad_out"] = np.full(x.shape, 7.0)
        if suffix == "_grad_hess":
            buffers["hess_out"] = np.full(x.shape, 7.0)
        with pytest.raises(ValueError, match=word):
            getattr(fl, name + suffix)(x, y, *extra, **kw, **buffers)
        for b in buffers.values():
            assert (b == 7.0).all()  # nothing written on error


@pytest.mark.parametrize("power,bad", [(1.5, -1.0), (1.0, -0.5), (2.0, 0.0), (2.0, -1.0), (1.5, np.nan)])
def test_tweedie_bad_y(power, bad):
    y = np.ones((2, 3))
    y[1, 1] = bad
    y[1, 2] = bad  # only the first is named
    gbuf, hbuf = np.full(y.shape, 7.0), np.full(y.shape, 7.0)
    with pytest.raises(ValueError, match=rf"y\[1, 1\] = {bad!r} is out of range"):
        fl.tweedie_loss_grad_hess(np.zeros(y.shape), y, power=power, grad_out=gbuf, hess_out=hbuf)
    assert (gbuf == 7.0).all() and (hbuf == 7.0).all()
    with pytest.raises(ValueError, match="y"):
        fl.tweedie_loss(np.zeros(y.shape), y, power=power)
    if power != 2.0:  # y = 0 is fine for power < 2
        assert np.isfinite(fl.tweedie_loss(np.zeros(3), np.zeros(3), power=power))


def test_no_pinball_grad_hess():
    assert not hasattr(fl, "pinball_loss_grad_hess")  # its second derivative is 0 almost everywhere
    assert hasattr(R, "pinball_loss_and_grad")


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("at", [0, 37, 16384 * 3 + 5, 200_000 - 1])  # the first vector, a later block, the tail
def test_domain_checks_in_the_pass(dtype, at, simd_level):
    """tweedie's y and gaussian_nll's var are checked by the kernel in its pass, on every thread and SIMD level:
    the first bad element (in flat order) is named, whichever block or thread meets it first, with and without
    an output of the caller's (then nothing is written)."""
    n = 200_000
    rng = np.random.default_rng(at)
    x = rng.standard_normal(n).astype(dtype)
    y = rng.random(n).astype(dtype) + np.array(0.5, dtype)
    later = at + 90_001 if at + 90_001 < n else None  # a later bad element (none after the last)
    for power, bad in [(1.5, -1.0), (1.0, np.nan), (2.0, 0.0)]:
        yb = y.copy()
        if later is not None:
            yb[later] = -3.0  # never the one named
        yb[at] = bad
        for kw in ({}, {"grad_out": np.full(n, 7.0, np.float64 if dtype == "float64" else np.float32)}):
            f = fl.tweedie_loss_and_grad if kw else fl.tweedie_loss
            with pytest.raises(ValueError, match=rf"y\[{at}\] = {bad!r} is out of range"):
                f(x, yb, power=power, n_threads=2, **kw)
            for b in kw.values():
                assert (b == 7.0).all()
    var = rng.random(n).astype(dtype) + np.array(0.5, dtype)
    if later is not None:
        var[later] = -2.0
    var[at] = -0.5
    with pytest.raises(ValueError, match=rf"var has a negative entry: var\[{at}\] = -0.5;"):
        fl.gaussian_nll_loss(x, y, var, n_threads=2)
    g = np.full(n, 7.0, np.float64 if dtype == "float64" else np.float32)
    with pytest.raises(ValueError, match=rf"var\[{at}\] = -0.5"):
        fl.gaussian_nll_loss_and_grad(x, y, var, n_threads=2, grad_out=g)
    assert (g == 7.0).all()
    var[at] = np.nan  # nan is not negative: a nan loss, as torch; the later -2.0 is then the first bad one
    if later is not None:
        with pytest.raises(ValueError, match=rf"var\[{later}\] = -2.0"):
            fl.gaussian_nll_loss(x, y, var)
        var[later] = 1.0
    assert np.isnan(fl.gaussian_nll_loss(x, y, var))
    # var broadcast along the last axis: the position is the input's
    v2 = np.ones((4, 1), dtype)
    v2[2, 0] = -1.0
    with pytest.raises(ValueError, match=r"var\[2, 0\] \(var broadcast to input's shape\) = -1.0"):
        fl.gaussian_nll_loss(np.zeros((4, 3), dtype), np.zeros((4, 3), dtype), v2)
