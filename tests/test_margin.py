"""Margin losses: binary (zero-one, logistic, exponential, hinge) and multiclass (hinge, top-1 zero-one), with
gradients; compared with reference.py, closed forms, finite differences, scikit-learn and torch."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

from pair_suite import REDUCTIONS, Case, assert_same, make_suite, stable_seed


def _hinge_kink(x, y, margin=1.0, squared=False):
    return np.abs(margin - y * x)


CASES = [
    Case("zero_one_loss", labels=True, grad=False),
    Case("logistic_loss", labels=True),
    Case("exponential_loss", labels=True),
    Case("hinge_loss", labels=True, kink=_hinge_kink),
    Case("hinge_loss", {"margin": 0.5, "squared": True}, labels=True, kink=_hinge_kink),
    Case("hinge_loss", {"margin": -0.25}, labels=True, kink=_hinge_kink),
]

TestBinaryMargin = make_suite(CASES)


# ---- binary: closed forms and conventions -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logistic_closed_forms(dtype):
    m = np.array([0.0, -1e4, 1e4, 40.0, -40.0, 1e300 if dtype == np.float64 else 3e38], dtype)
    y = np.array([1, 1, 1, -1, -1, 1])
    loss, g = fl.logistic_loss_and_grad(m * y, y, reduction="none")
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(g))
    rtol = 1e-15 if dtype == np.float64 else 1e-7
    np.testing.assert_allclose(loss[:2], [np.log(2), 1e4], rtol=rtol)
    assert 0.0 <= loss[2] < 1e-300
    np.testing.assert_allclose(loss[3], np.exp(-40.0), rtol=rtol)   # no 1 + tiny rounded away
    np.testing.assert_allclose(loss[4], 40.0 + np.log1p(np.exp(-40.0)), rtol=rtol)
    np.testing.assert_allclose(g[:2], [-0.5, -1.0], rtol=rtol)
    assert g[2] == 0.0 and loss[5] == 0.0
    assert fl.logistic_loss(np.array([-np.inf]), np.array([1]), reduction="sum") == np.inf
    assert np.isnan(fl.logistic_loss(np.array([np.nan]), np.array([1]), reduction="sum"))


def test_exponential_and_zero_one_closed_forms():
    loss, g = fl.exponential_loss_and_grad(np.array([0.0, 1.0, -2.0]), np.array([1, -1, -1]), reduction="none")
    np.testing.assert_allclose(loss, [1.0, np.e, np.exp(-2.0)], rtol=1e-15)
    np.testing.assert_allclose(g, [-1.0, np.e, np.exp(-2.0)], rtol=1e-15)
    # the prediction is +1 only where score > 0: score 0 and nan predict -1
    zo = fl.zero_one_loss(np.array([0.0, 0.0, np.nan, 1e-300, -1.0]), np.array([-1, 1, -1, 1, 1]), reduction="none")
    np.testing.assert_array_equal(zo, [0.0, 1.0, 0.0, 0.0, 1.0])


def test_hinge_kink_and_nan():
    y = np.array([1, -1, 1, 1])
    s = np.array([1.0, -1.0, 0.5, 3.0])  # m = 1, 1 (kinks), 0.5 (active), 3 (inactive)
    loss, g = fl.hinge_loss_and_grad(s, y, reduction="none")
    np.testing.assert_array_equal(loss, [0.0, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, -1.0, 0.0])  # the kink: 0, as torch's relu
    loss, g = fl.hinge_loss_and_grad(s, y, squared=True, reduction="none")
    np.testing.assert_array_equal(loss, [0.0, 0.0, 0.25, 0.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, -1.0, 0.0])
    loss = fl.hinge_loss(np.array([np.nan]), np.array([1]), reduction="none")
    assert np.isnan(loss[0])


@pytest.mark.parametrize("margin", [np.nan, np.inf, -np.inf, "a", None])
def test_bad_margin(margin):
    with pytest.raises((ValueError, TypeError), match="margin"):
        fl.hinge_loss(np.zeros(3), np.ones(3), margin=margin)
    with pytest.raises((ValueError, TypeError), match="margin"):
        fl.multiclass_hinge_loss(np.zeros((2, 3)), np.zeros(2, int), margin=margin)


def test_zero_dim_and_empty():
    # 0-d scores and labels: one sample; "none" gives a 0-d array
    loss = fl.logistic_loss(np.float32(0.0), 1, reduction="none")
    assert isinstance(loss, np.ndarray) and loss.shape == () and loss.dtype == np.float32
    np.testing.assert_allclose(loss, np.log(2), rtol=1e-7)
    with pytest.raises(ValueError, match=r"^y = 0 is not a binary label"):
        fl.hinge_loss(1.0, 0)
    assert np.isnan(fl.hinge_loss(np.zeros(0), np.zeros(0)))
    assert fl.hinge_loss(np.zeros((0, 3)), np.zeros((0, 3)), reduction="sum") == 0.0
    assert fl.hinge_loss(np.zeros((0, 3)), np.zeros((0, 3)), reduction="none").shape == (0, 3)


def test_labels_converted_to_score_dtype():
    # labels as bool/int/float16 are accepted; y=True is +1, y=False is 0: an error
    s = np.array([0.5, -0.5], np.float32)
    assert fl.hinge_loss(s, np.array([1, -1], np.int8), reduction="sum").dtype == np.float32
    with pytest.raises(ValueError, match=r"y\[1\] = False"):
        fl.hinge_loss(s, np.array([True, False]))


# ---- binary: scikit-learn and torch -----------------------------------------------------------------------

def test_binary_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(10)
    s, y = rng.normal(size=200), rng.choice([-1, 1], size=200)
    sw = rng.uniform(0.1, 2.0, size=200)
    np.testing.assert_allclose(fl.hinge_loss(s, y, sample_weight=sw), metrics.hinge_loss(y, s, sample_weight=sw),
                               rtol=1e-12)
    np.testing.assert_allclose(fl.zero_one_loss(s, y, sample_weight=sw),
                               metrics.zero_one_loss(y, np.where(s > 0, 1, -1), sample_weight=sw), rtol=1e-12)
    np.testing.assert_allclose(fl.logistic_loss(s, y, sample_weight=sw),
                               metrics.log_loss(y, 1 / (1 + np.exp(-s)), sample_weight=sw), rtol=1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_against_torch(reduction, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(11)
    s, y = rng.normal(scale=3, size=(8, 5)).astype(dtype), rng.choice([-1, 1], size=(8, 5)).astype(dtype)
    s[0, :2] = y[0, :2]  # hinge kinks: m = 1
    rtol = 1e-12 if dtype == np.float64 else 3e-6
    for name, fn, kw in [
        ("logistic_loss", lambda t, u: F.soft_margin_loss(t, u, reduction=reduction), {}),
        ("hinge_loss", lambda t, u: _torch_reduce(torch.relu(1.0 - u * t), reduction), {}),
        ("hinge_loss", lambda t, u: _torch_reduce(torch.relu(0.5 - u * t) ** 2, reduction),
         {"margin": 0.5, "squared": True}),
        ("exponential_loss", lambda t, u: _torch_reduce(torch.exp(-u * t), reduction), {}),
    ]:
        st = torch.tensor(s, requires_grad=True)
        out = fn(st, torch.tensor(y))
        out.backward(torch.ones_like(out))
        loss, g = getattr(fl, name + "_and_grad")(s, y, reduction=reduction, **kw)
        np.testing.assert_allclose(loss, out.detach().numpy(), rtol=rtol, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(g, st.grad.numpy(), rtol=rtol, atol=1e-7, err_msg=name)


def _torch_reduce(t, reduction):
    return t if reduction == "none" else (t.sum() if reduction == "sum" else t.mean())


# ---- multiclass -----------------------------------------------------------------------------------------

KINDS = [("crammer_singer", 1), ("weston_watkins", 1), ("weston_watkins", 2)]
MC_SHAPES = [((5, 4), (5,)), ((2, 3, 6), (2, 3)), ((3,), ()), ((0, 4), (0,)), ((7, 1), (7,)), ((4, 2), (4,))]


def _mc_data(rng, shape, lead, dtype=np.float64):
    s = rng.normal(size=shape)
    if np.dtype(dtype).kind == "i":
        s = np.rint(3 * s)
    return s.astype(dtype), rng.integers(0, shape[-1], size=lead)


@pytest.mark.parametrize("kind,p", KINDS)
@pytest.mark.parametrize("shape,lead", MC_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("options", ["plain", "weights", "margin"])
def test_multiclass_hinge_matches_oracle(kind, p, shape, lead, dtype, options):
    rng = np.random.default_rng(stable_seed(kind, p, shape, options))
    s, t = _mc_data(rng, shape, lead, dtype)
    kw = dict(kind=kind, p=p)
    if options == "weights":
        kw.update(weight=rng.uniform(0.5, 2, shape[-1]), sample_weight=rng.uniform(0.5, 2, lead))
    elif options == "margin":
        kw.update(margin=0.3)
    for reduction in REDUCTIONS:
        loss, g = fl.multiclass_hinge_loss_and_grad(s, t, reduction=reduction, **kw)
        want, g_want = R.multiclass_hinge_loss_and_grad(s, t, reduction=reduction, **kw)
        assert_same(loss, want, dtype)
        assert_same(g, g_want, dtype)
        np.testing.assert_array_equal(fl.multiclass_hinge_loss(s, t, reduction=reduction, **kw), loss)


@pytest.mark.parametrize("layout", ["strided", "fortran", "negative", "byteswapped", "readonly"])
def test_multiclass_layouts(layout):
    rng = np.random.default_rng(12)
    s, t = _mc_data(rng, (6, 10), (6,))
    if layout == "strided":
        s, t = s[::2, ::3], t[::2] % 4
    elif layout == "fortran":
        s = np.asfortranarray(s)
    elif layout == "negative":
        s, t = s[::-1, ::-1], t[::-1]
    elif layout == "byteswapped":
        s, t = s.astype(">f8"), t.astype(">i4")
    else:
        s.flags.writeable = False
    sc = np.array(s, np.float64)
    for kind, p in KINDS:
        loss, g = fl.multiclass_hinge_loss_and_grad(s, t, kind=kind, p=p, reduction="none")
        want, g_want = R.multiclass_hinge_loss_and_grad(sc, t, kind=kind, p=p, reduction="none")
        assert_same(loss, want, np.float64)
        assert_same(g, g_want, np.float64)
    assert_same(fl.zero_one_loss(s, t), R.zero_one_loss(sc, t), np.float64)


@pytest.mark.parametrize("kind,p", KINDS)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_multiclass_gradient_finite_differences(kind, p, reduction):
    rng = np.random.default_rng(13)
    s, t = _mc_data(rng, (6, 5), (6,))
    kw = dict(kind=kind, p=p, weight=rng.uniform(0.5, 2, 5), sample_weight=rng.uniform(0.5, 2, 6),
              reduction=reduction, margin=0.8)
    _, g = fl.multiclass_hinge_loss_and_grad(s, t, **kw)
    h = 1e-6
    fd = np.zeros_like(s)
    for idx in np.ndindex(s.shape):
        e = np.zeros_like(s)
        e[idx] = h
        fd[idx] = (fl.multiclass_hinge_loss(s + e, t, **kw) - fl.multiclass_hinge_loss(s - e, t, **kw)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_multiclass_kinks_and_edges():
    s = np.array([[1.0, 0.0, 0.0], [2.0, 1.0, 0.5]])  # z = margin - s_t + rival = 0 exactly for both rows
    for kind in ("crammer_singer", "weston_watkins"):
        loss, g = fl.multiclass_hinge_loss_and_grad(s, np.array([0, 0]), kind=kind, reduction="sum")
        assert loss == 0.0 and np.all(g == 0.0)  # the kink has gradient 0, as torch
    # crammer_singer: the rival is the first largest other score
    _, g = fl.multiclass_hinge_loss_and_grad(np.array([[0.0, 0.5, 0.5]]), np.array([0]), reduction="sum")
    np.testing.assert_array_equal(g, [[-1.0, 1.0, 0.0]])
    # one class: no rival, no loss
    assert fl.multiclass_hinge_loss(np.ones((3, 1)), np.zeros(3, int), reduction="sum") == 0.0
    # nan: crammer_singer gives nan; weston_watkins (torch) skips terms that are not > 0
    s = np.array([[0.0, np.nan, 0.2]])
    assert np.isnan(fl.multiclass_hinge_loss(s, np.array([0])))
    np.testing.assert_allclose(fl.multiclass_hinge_loss(s, np.array([0]), kind="weston_watkins"), 1.2 / 3)
    # mean over nothing is nan
    assert np.isnan(fl.multiclass_hinge_loss(np.zeros((0, 3)), np.zeros(0, int)))


def test_multiclass_mean_divisors():
    # crammer_singer: sum / sum(sw * w_t); weston_watkins: sum / sum(sw), class weights aside (torch)
    s, t = np.array([[0.0, 0.5, 0.2], [0.3, 0.0, 0.9]]), np.array([0, 2])
    w, sw = np.array([2.0, 1.0, 3.0]), np.array([1.0, 0.5])
    cs = fl.multiclass_hinge_loss(s, t, weight=w, sample_weight=sw, reduction="none")
    assert np.isclose(fl.multiclass_hinge_loss(s, t, weight=w, sample_weight=sw), cs.sum() / (2.0 + 1.5))
    ww = fl.multiclass_hinge_loss(s, t, kind="weston_watkins", weight=w, sample_weight=sw, reduction="none")
    assert np.isclose(fl.multiclass_hinge_loss(s, t, kind="weston_watkins", weight=w, sample_weight=sw),
                      ww.sum() / 1.5)


@pytest.mark.parametrize("kind,p", KINDS)
def test_multiclass_errors(kind, p):
    s, t = np.zeros((3, 4)), np.array([0, 1, 2])
    buf = np.full((3, 4), 7.0)
    for bad, shown in [(4, "4"), (-1, "-1")]:
        tt = t.copy()
        tt[1] = bad
        with pytest.raises(IndexError, match=rf"target\[1\] = {shown} is out of bounds for 4 classes"):
            fl.multiclass_hinge_loss(s, tt, kind=kind, p=p)
        with pytest.raises(IndexError, match=r"target\[1\]"):
            fl.multiclass_hinge_loss_and_grad(s, tt, kind=kind, p=p, grad_out=buf)
        assert np.all(buf == 7.0)
    with pytest.raises(IndexError, match=r"target\[1, 0\] = 9"):
        fl.multiclass_hinge_loss(np.zeros((2, 2, 4)), np.array([[0, 1], [9, 9]]), kind=kind, p=p)
    with pytest.raises(IndexError, match=r"target\[0\] = 18446744073709551615"):
        fl.multiclass_hinge_loss(s, np.array([2**64 - 1, 0, 0], np.uint64), kind=kind, p=p)
    with pytest.raises(IndexError, match=r"^target = 5"):
        fl.multiclass_hinge_loss(np.zeros(4), 5, kind=kind, p=p)
    with pytest.raises(ValueError, match="target shape"):
        fl.multiclass_hinge_loss(s, np.zeros(4, int), kind=kind, p=p)
    with pytest.raises(TypeError, match="integer"):
        fl.multiclass_hinge_loss(s, t.astype(float), kind=kind, p=p)
    with pytest.raises(ValueError, match="weight"):
        fl.multiclass_hinge_loss(s, t, kind=kind, p=p, weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight"):
        fl.multiclass_hinge_loss(s, t, kind=kind, p=p, sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="0-d"):
        fl.multiclass_hinge_loss(np.float64(1.0), 0, kind=kind, p=p)
    with pytest.raises(ValueError, match="no classes"):
        fl.multiclass_hinge_loss(np.zeros((3, 0)), t, kind=kind, p=p)
    with pytest.raises(ValueError, match="reduction"):
        fl.multiclass_hinge_loss(s, t, kind=kind, p=p, reduction="batchmean")
    with pytest.raises(ValueError, match="n_threads"):
        fl.multiclass_hinge_loss(s, t, kind=kind, p=p, n_threads=0)
    with pytest.raises(ValueError, match="grad_out"):
        fl.multiclass_hinge_loss_and_grad(s, t, kind=kind, p=p, grad_out=np.zeros((4, 3)))
    with pytest.raises(TypeError, match="grad_out"):
        fl.multiclass_hinge_loss_and_grad(s, t, kind=kind, p=p, grad_out=np.zeros((3, 4), np.float32))


@pytest.mark.parametrize("kind,p", [("hinge", 1), ("cs", 1), ("weston_watkins", 3), ("weston_watkins", 0),
                                    ("crammer_singer", True), ("crammer_singer", 1.5)])
def test_multiclass_bad_options(kind, p):
    with pytest.raises(ValueError, match="kind" if kind in ("hinge", "cs") else "p must"):
        fl.multiclass_hinge_loss(np.zeros((2, 3)), np.zeros(2, int), kind=kind, p=p)


def test_multiclass_grad_out():
    rng = np.random.default_rng(14)
    s, t = _mc_data(rng, (4, 3), (4,), np.float32)
    buf = np.empty((4, 3), np.float32)
    loss, g = fl.multiclass_hinge_loss_and_grad(s, t, kind="weston_watkins", grad_out=buf)
    assert g is buf
    np.testing.assert_array_equal(buf, fl.multiclass_hinge_loss_and_grad(s, t, kind="weston_watkins")[1])


@pytest.mark.parametrize("shape,lead", MC_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64], ids=lambda d: np.dtype(d).name)
def test_top1_zero_one_matches_oracle(shape, lead, dtype):
    rng = np.random.default_rng(15)
    s, t = _mc_data(rng, shape, lead, dtype)
    sw = rng.uniform(0.5, 2, lead)
    for reduction in REDUCTIONS:
        for w in (None, sw):
            assert_same(fl.zero_one_loss(s, t, sample_weight=w, reduction=reduction),
                        R.zero_one_loss(s, t, sample_weight=w, reduction=reduction), dtype)


def test_top1_ties_nan_and_errors():
    s = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [np.nan, 5.0, np.nan], [0.0, 5.0, np.nan]])
    # first maximum on ties; the first nan wins, as np.argmax
    np.testing.assert_array_equal(fl.zero_one_loss(s, np.array([0, 1, 0, 2]), reduction="none"), [0, 0, 0, 0])
    np.testing.assert_array_equal(fl.zero_one_loss(s, np.array([1, 2, 1, 1]), reduction="none"), [1, 1, 1, 1])
    with pytest.raises(IndexError, match=r"target\[3\] = 3"):
        fl.zero_one_loss(s, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3,\)"):
        fl.zero_one_loss(s, np.array([0, 1, 2]))


@pytest.mark.parametrize("n_classes", [3, 5])
def test_multiclass_against_sklearn(n_classes):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(16)
    s, t = rng.normal(size=(50, n_classes)), rng.integers(0, n_classes, 50)
    sw = rng.uniform(0.1, 2.0, 50)
    np.testing.assert_allclose(fl.multiclass_hinge_loss(s, t, sample_weight=sw),
                               metrics.hinge_loss(t, s, labels=np.arange(n_classes), sample_weight=sw), rtol=1e-12)
    np.testing.assert_allclose(fl.zero_one_loss(s, t, sample_weight=sw),
                               metrics.zero_one_loss(t, s.argmax(-1), sample_weight=sw), rtol=1e-12)


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_weston_watkins_against_torch(p, reduction, dtype, weighted):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    s, t = rng.normal(size=(9, 4)).astype(dtype), rng.integers(0, 4, 9)
    s[0] = [0.7, 0.0, 0.0, 0.0]  # kinks: z = 0.3 - 0.7 + 0.0... with margin 0.7: z = 0 exactly
    t[0] = 0
    w = rng.uniform(0.5, 2, 4).astype(dtype) if weighted else None
    st = torch.tensor(s, requires_grad=True)
    out = torch.nn.functional.multi_margin_loss(st, torch.tensor(t), p=p, margin=0.7, reduction=reduction,
                                                weight=None if w is None else torch.tensor(w))
    out.backward(torch.ones_like(out))
    loss, g = fl.multiclass_hinge_loss_and_grad(s, t, kind="weston_watkins", p=p, margin=0.7, weight=w,
                                                reduction=reduction)
    rtol = 1e-12 if dtype == np.float64 else 3e-6
    np.testing.assert_allclose(loss, out.detach().numpy(), rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(g, st.grad.numpy(), rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("op", ["cs", "ww", "top1"])
def test_multiclass_threads_bitwise(op):
    rng = np.random.default_rng(18)
    s, t = _mc_data(rng, (100_003, 3), (100_003,), np.float32)
    sw = rng.uniform(0.5, 2, 100_003)
    for reduction in REDUCTIONS:
        def run(nt, reduction=reduction):
            if op == "top1":
                return (fl.zero_one_loss(s, t, sample_weight=sw, reduction=reduction, n_threads=nt),)
            kind = "crammer_singer" if op == "cs" else "weston_watkins"
            return fl.multiclass_hinge_loss_and_grad(s, t, kind=kind, sample_weight=sw, reduction=reduction,
                                                     n_threads=nt)
        one = run(1)
        for nt in (2, 3):
            for a, b in zip(one, run(nt)):
                assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
