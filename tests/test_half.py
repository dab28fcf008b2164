"""float16 and bfloat16 inputs: read by the kernels as they are (no float32 copy), computed in float32, results
float32, equal to the float32 computation on the same values (within 4 float32 eps relative: the summation
order of a half kernel may differ from the float32 one's by the vector grouping), at every SIMD level."""
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import fastloss as fl
from fastloss import _checks as ck

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
HALVES = [np.dtype(np.float16), BF16]
EPS32 = 2.0 ** -23


def _as_f32(a):
    return a.astype(np.float32) if isinstance(a, np.ndarray) and ck.is_half(a.dtype) else a


def _same_as_float32(res_half, res_f32, what):
    rh = res_half if isinstance(res_half, tuple) else (res_half,)
    rf = res_f32 if isinstance(res_f32, tuple) else (res_f32,)
    for u, v in zip(rh, rf):
        u, v = np.asarray(u), np.asarray(v)
        assert u.dtype == np.float32, f"{what}: result dtype {u.dtype}"
        assert u.shape == v.shape, what
        if np.array_equal(u, v, equal_nan=True):
            continue
        both = np.isfinite(v)
        assert np.array_equal(np.isnan(u), np.isnan(v)) and np.array_equal(u[~both], v[~both], equal_nan=True), what
        err = np.abs(u[both].astype(np.float64) - v[both]) / np.maximum(np.abs(v[both].astype(np.float64)), 1e-30)
        assert err.max() <= 4 * EPS32, f"{what}: relative error {err.max():.3g}"


def _check(fn, *args, **kw):
    """fn on half-type arrays (every float32 array argument rounded to the half type) against fn on float32
    arrays of the same values."""
    for dt in HALVES:
        h = [a.astype(dt) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a for a in args]
        f = [_as_f32(a) for a in h]
        _same_as_float32(fn(*h, **kw), fn(*f, **kw), f"{fn.__name__} {dt.name}")


@pytest.fixture
def data():
    rng = np.random.default_rng(12)
    x = (rng.normal(size=(301, 37)) * 3).astype(np.float32)
    return dict(rng=rng, x=x, t=rng.integers(0, 37, 301), few=x[:, :10].copy(), tf=rng.integers(0, 10, 301),
                long=(rng.normal(size=(9, 5003)) * 3).astype(np.float32), tl=rng.integers(0, 5003, 9),
                s=rng.normal(size=20011).astype(np.float32),
                y=np.where(rng.random(20011) < 0.5, -1.0, 1.0).astype(np.float32),
                r=rng.normal(size=20011).astype(np.float32))


def test_class_losses(simd_level, data):
    d = data
    for x, t in ((d["x"], d["t"]), (d["few"], d["tf"]), (d["long"], d["tl"])):
        _check(fl.cross_entropy, x, t)
        _check(fl.cross_entropy, x, t, reduction="none")
        _check(fl.cross_entropy_and_grad, x, t, label_smoothing=0.1, reduction="sum")
        _check(fl.cross_entropy_and_grad, x, t, weight=np.linspace(0.5, 2, x.shape[1]))
        _check(fl.nll_loss_and_grad, x, t, reduction="none")
        _check(fl.multiclass_hinge_loss_and_grad, x, t)
        _check(fl.multiclass_hinge_loss_and_grad, x, t, kind="weston_watkins", p=2)
        _check(fl.zero_one_loss, x, t)
    prob = fl.softmax(d["x"] * 0.5)
    _check(fl.cross_entropy_and_grad, d["x"], prob)


def test_primitives(simd_level, data):
    for x in (data["x"], data["few"], data["long"]):
        _check(fl.logsumexp, x)
        _check(fl.softmax, x)
        _check(fl.log_softmax, x)
        _check(fl.logsumexp, x, axis=0)


def test_elementwise(simd_level, data):
    s, y, r = data["s"], data["y"], data["r"]
    for fn in (fl.logistic_loss_and_grad, fl.exponential_loss_and_grad, fl.hinge_loss_and_grad, fl.zero_one_loss):
        _check(fn, s, y)
    _check(fl.hinge_loss_and_grad, s, y, squared=True, reduction="none")
    for fn in (fl.mse_loss_and_grad, fl.l1_loss_and_grad, fl.huber_loss_and_grad):
        _check(fn, s, r)
        _check(fn, s, r, reduction="none", sample_weight=np.abs(r))
    _check(fl.binary_cross_entropy_with_logits_and_grad, s, (y > 0).astype(np.float32))
    _check(fl.binary_cross_entropy_with_logits_and_grad, s, (y > 0).astype(np.float32), pos_weight=np.array([2.0]))
    p = np.abs(r) / np.abs(r).sum()
    _check(fl.kl_div_and_grad, np.log(np.abs(s) + 0.1), p.astype(np.float32), reduction="batchmean")


def test_elementwise_grad_hess_and_new_losses(simd_level, data):
    """issue 13: NAME_grad_hess of the element-wise losses and the new losses, half types as float32."""
    s, y, r = data["s"], data["y"], data["r"]
    pos, unit = (np.abs(r) + 0.1).astype(np.float32), (y > 0).astype(np.float32)
    for fn in (fl.logistic_loss_grad_hess, fl.exponential_loss_grad_hess):
        _check(fn, s, y)
    for fn in (fl.mse_loss_grad_hess, fl.huber_loss_grad_hess, fl.smooth_l1_loss_grad_hess, fl.log_cosh_loss_grad_hess,
               fl.pinball_loss_and_grad):
        _check(fn, s, r)
        _check(fn, s, r, reduction="none", sample_weight=np.abs(r))
    _check(fl.binary_cross_entropy_with_logits_grad_hess, s, unit)
    _check(fl.kl_div_grad_hess, np.log(np.abs(s) + 0.1), pos, reduction="batchmean")
    _check(fl.poisson_nll_loss_grad_hess, s, pos, full=True)
    _check(fl.poisson_nll_loss_grad_hess, pos, pos, log_input=False, reduction="none")
    _check(fl.gaussian_nll_loss_grad_hess, s, r, pos, reduction="none")
    for power in (1.0, 1.5, 2.0):
        _check(fl.tweedie_loss_grad_hess, s, pos, power=power)
    for gamma in (2.0, 1.5):
        _check(fl.sigmoid_focal_loss_grad_hess, s, unit, gamma=gamma, reduction="none")


def test_distributions(simd_level, data):
    p = fl.softmax(data["x"])
    q = fl.softmax(data["x"][::-1].copy())
    _check(fl.entropy, p)
    _check(fl.categorical_cross_entropy, p, q)
    _check(fl.kl_divergence, p, q)
    _check(fl.kl_divergence, p, q, base=2)


def test_evaluation(simd_level, data):
    x = data["x"]
    for dt in HALVES:
        h = x.astype(dt)
        assert fl.evaluate(h, data["t"], topk=(1, 5)) == fl.evaluate(h.astype(np.float32), data["t"], topk=(1, 5))
        s, y = data["s"].astype(dt), data["y"].astype(dt)
        assert fl.evaluate_binary(s, y) == fl.evaluate_binary(s.astype(np.float32), y.astype(np.float32))
        assert fl.stream_loss("cross_entropy", h, data["t"], reduction="sum") == \
            fl.cross_entropy(h, data["t"], reduction="sum")


@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
def test_special_values(simd_level, dt):
    """inf, -inf, nan, the largest and the subnormal values of each half type convert exactly."""
    info = ml_dtypes.finfo(dt) if dt == BF16 else np.finfo(dt)
    vals = np.array([0.0, -0.0, 1.0, -2.5, float(info.max), -float(info.max), float(info.smallest_subnormal),
                     float(info.tiny), np.inf, -np.inf, np.nan], np.float32).astype(dt)
    # one value per row (the conversion of every element position: few-class tiles, vector bodies, tails)
    for n in (1, 3, 17, 40):
        x = np.resize(vals, (len(vals), n))
        np.testing.assert_array_equal(fl.logsumexp(x), fl.logsumexp(x.astype(np.float32)))
        np.testing.assert_array_equal(fl.softmax(x), fl.softmax(x.astype(np.float32)))
    y = np.ones(len(vals), np.float32)
    np.testing.assert_array_equal(fl.mse_loss(vals, y.astype(dt), reduction="none"),
                                  fl.mse_loss(vals.astype(np.float32), y, reduction="none"))


def test_no_input_sized_copy():
    """A 64 MB bfloat16 / float16 input is not converted: the call allocates far less than its size."""
    rng = np.random.default_rng(3)
    x32 = rng.normal(size=(1024, 32768)).astype(np.float32)
    t = rng.integers(0, 32768, 1024)
    for dt in HALVES:
        x = x32.astype(dt)
        p = np.abs(x)
        assert x.nbytes == 64 << 20
        calls = (lambda x, p: fl.cross_entropy(x, t), lambda x, p: fl.logsumexp(x),
                 lambda x, p: fl.evaluate(x, t, topk=5), lambda x, p: fl.mse_loss(x, x), lambda x, p: fl.entropy(p),
                 lambda x, p: fl.kl_divergence(p, p), lambda x, p: fl.zero_one_loss(x, t))
        for call in calls:
            tracemalloc.start()
            try:
                call(x, p)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert peak < 4 << 20, f"{dt.name}: {peak} bytes allocated"


def test_mixed_dtypes_are_not_rounded_to_half():
    """A float32 target with half-type predictions is not rounded to the half type: both are read as float32."""
    x = np.array([1.0, 2.0, 3.0], np.float16)
    y = np.array([1.0001, 2.0002, 2.9999], np.float32)
    assert fl.mse_loss(x, y) == fl.mse_loss(x.astype(np.float32), y)
    logits = np.array([[1.0, 2.0, 0.5]], BF16)
    prob = np.array([[0.3001, 0.6998, 0.0001]], np.float32)
    assert fl.cross_entropy(logits, prob) == fl.cross_entropy(logits.astype(np.float32), prob)


def test_grad_out_dtype():
    """float32 by default; a grad_out of the input's own half dtype is accepted, any other half dtype is not."""
    x = np.zeros((4, 3), BF16)
    t = np.array([0, 1, 2, 0])
    g = np.empty((4, 3), np.float32)
    fl.cross_entropy_and_grad(x, t, grad_out=g)
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-7)
    assert fl.cross_entropy_and_grad(x, t)[1].dtype == np.float32
    gb = np.empty((4, 3), BF16)
    assert fl.cross_entropy_and_grad(x, t, grad_out=gb)[1] is gb
    with pytest.raises(TypeError, match="grad_out has dtype float16, expected float32.*only for input of that"):
        fl.cross_entropy_and_grad(x, t, grad_out=np.empty((4, 3), np.float16))
    with pytest.raises(TypeError, match="grad_out has dtype bfloat16, expected float32"):
        fl.cross_entropy_and_grad(x.astype(np.float32), t, grad_out=gb)
    with pytest.raises(TypeError, match="grad_out has dtype bfloat16, expected float32.*float32 only"):
        fl.cross_entropy_grad_hess(x, t, grad_out=gb)


def _bits_equal(got, want, what):
    """got == want bit for bit (both of one half dtype), nans compared as nans (their payloads differ between
    conversions)."""
    assert got.dtype == want.dtype, what
    nan = np.isnan(want.astype(np.float32))
    assert np.array_equal(np.isnan(got.astype(np.float32)), nan), what
    gu, wu = got.view(np.uint16)[~nan], want.view(np.uint16)[~nan]
    bad = np.flatnonzero(gu != wu)
    assert bad.size == 0, f"{what}: {bad.size} differ, first {gu[bad[0]]:#06x} != {wu[bad[0]]:#06x}" if bad.size else ""


def _half_grad(fn, x, *args, **kw):
    """fn's gradient of half x written in x's dtype, and its float32 gradient rounded to x's dtype."""
    g = np.full(x.shape, np.nan, x.dtype)
    with np.errstate(over="ignore"):  # huge sample weights: float32 sums and values past the half's largest
        got = fn(x, *args, grad_out=g, **kw)
        assert got[1] is g
        loss32, g32 = fn(x, *args, **kw)
        np.testing.assert_array_equal(got[0], loss32)  # the loss is the float32 one either way
        return g, g32.astype(x.dtype)


@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
def test_half_grad_is_float32_grad_rounded(simd_level, data, dt):
    """A half grad_out gets the float32 gradient rounded to nearest even, bit for bit, on every kernel path:
    few classes (grouped exps), many, one long row, smoothing, weights, probability targets, ignored rows, nan
    rows, and sample weights that push values to half's subnormals and past its largest (inf)."""
    d = data
    big = float(np.finfo(np.float16).max) * 4 if dt == np.float16 else 3.39e38
    sw = np.resize([1.0, 2.0 ** -20, 3e-7, 2.0 ** -130, big, 1e-3, 0.0, 7.0], 301)
    for x32, t in ((d["x"], d["t"]), (d["few"], d["tf"]), (d["long"], d["tl"]), (d["x"][:, :1], d["t"] * 0)):
        x = x32.astype(dt)
        x[5, 0] = np.nan
        t = t.copy()
        t[7] = -100
        n = len(t)
        for kw in (dict(), dict(reduction="sum", sample_weight=sw[:n]), dict(label_smoothing=0.1),
                   dict(weight=np.linspace(0.5, 2, x.shape[1]), reduction="none"),
                   dict(label_smoothing=0.2, sample_weight=sw[:n], reduction="sum")):
            _bits_equal(*_half_grad(fl.cross_entropy_and_grad, x, t, **kw), f"cross_entropy {x.shape} {kw}")
        _bits_equal(*_half_grad(fl.nll_loss_and_grad, x, t, reduction="sum", sample_weight=sw[:n]),
                    f"nll_loss {x.shape}")
    prob = fl.softmax(d["x"] * 0.5).astype(dt)
    _bits_equal(*_half_grad(fl.cross_entropy_and_grad, d["x"].astype(dt), prob), "probability targets")


@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
def test_half_grad_of_long_rows_stored_directly(simd_level, dt):
    """Rows of more than 4,096 classes (a group of one row) store the half gradient straight from the vector exps
    when there is no smoothing or Hessian: still the float32 gradient rounded, bit for bit, with the target at
    the row's max (its entry -so / s) and elsewhere, tied maxima, class and sample weights, ignored and nan rows,
    rows whose values round past the half's largest, and lengths off the vector width; with smoothing (the
    scratch path) the same."""
    rng = np.random.default_rng(31)
    big = float(np.finfo(np.float16).max) * 4 if dt == np.float16 else 3.39e38
    for n in (4097, 5003, 8192 + 13):
        x32 = (rng.normal(size=(12, n)) * 4).astype(np.float32)
        t = rng.integers(0, n, 12)
        x = x32.astype(dt)
        xf = x.astype(np.float32)
        t[:4] = np.argmax(xf[:4], axis=1)  # the target is the max
        x[4, [3, n - 1]] = np.max(xf[4]) + 1  # a tied max, one of them the target
        t[4] = n - 1
        t[5] = -100
        x[6, n // 2] = np.nan
        x[7, 10] = np.inf
        t[8] = n - 1  # the last element: in the row's tail
        sw = np.array([1.0, 3e-7, big, 0.5, 2.0, 1.0, 1.0, 1.0, 7.0, 2.0 ** -130, 1e-3, 0.0])
        for kw in (dict(), dict(reduction="sum", sample_weight=sw), dict(weight=rng.uniform(0.5, 2, n)),
                   dict(reduction="none", sample_weight=sw, weight=rng.uniform(0.5, 2, n)),
                   dict(label_smoothing=0.1, reduction="sum")):
            _bits_equal(*_half_grad(fl.cross_entropy_and_grad, x, t, **kw), f"{n} {kw}")
        strided = np.repeat(x, 2, axis=0)[::2]  # rows apart in memory: the row stride is not n
        _bits_equal(*_half_grad(fl.cross_entropy_and_grad, strided, t), f"{n} strided rows")


@pytest.mark.parametrize("dt", HALVES, ids=lambda d: d.name)
def test_half_grad_rounding_edges(simd_level, dt):
    """Exact float32 values stored as half: nll's gradient at the target is -sample_weight (float32), so every
    value lands in the gradient as it is and only the store rounds. Ties (to even, both ways), the largest
    values, the rounding into inf, subnormals and their ties, the smallest, zeros, inf and nan; in rows of 1
    and 21 classes (one vector body and tails at each level)."""
    mant = 10 if dt == np.float16 else 7
    one = 2.0 ** -mant  # the half's last place at 1
    info = np.finfo(np.float16) if dt == np.float16 else ml_dtypes.finfo(dt)
    sub = float(info.smallest_subnormal)
    top = float(info.max)
    vals = [1.0 + one / 2, 1.0 + 3 * one / 2, 1.0 + one / 2 + 2.0 ** -23, 1.0 + one / 4, 1.0 + 3 * one / 4,
            2.0 - one / 2, top, top * (1 + one / 4), top * (1 + one / 2), top * 2.0, sub, sub / 2, sub * 1.5,
            sub * 2.5, sub / 4, float(info.tiny), float(info.tiny) * (1 - one / 2), 2.0 ** -149, 0.0, -0.0,
            np.inf, np.nan, 1.0 / 3, -np.pi, 65519.996, 65520.0]
    with np.errstate(over="ignore"):  # the values past the half's largest, and past float32's (inf)
        sw = np.array(vals, np.float32)
    sw = np.concatenate([sw, -sw])
    for n in (1, 21):
        x = np.zeros((len(sw), n), dt)
        t = np.arange(len(sw)) % n
        g = np.empty(x.shape, dt)
        with np.errstate(over="ignore", invalid="ignore"):
            fl.nll_loss_and_grad(x, t, reduction="sum", sample_weight=sw.astype(np.float64), grad_out=g)
        want = np.zeros(x.shape, np.float32)
        want[np.arange(len(sw)), t] = -sw
        with np.errstate(over="ignore"):
            _bits_equal(g, want.astype(dt), f"n={n}")


def test_bfloat16_without_ml_dtypes_imported():
    """fastloss recognises bfloat16 by its dtype: importing fastloss does not import ml_dtypes."""
    code = "import fastloss, sys; print('ml_dtypes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
