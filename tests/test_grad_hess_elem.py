"""NAME_grad_hess of the element-wise losses (issue 13): loss, gradient and Hessian diagonal from one pass, against
the oracle (fastloss.reference) over shapes, dtypes, layouts, options, reductions and sample weights; the Hessian
by central differences of the gradient in float64; grad_out / hess_out, untouched on error."""
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

SHAPES = [(), (0,), (1,), (7,), (3, 4), (2, 3, 17)]
REDUCTIONS = ("none", "sum", "mean")


def _dtypes():
    out = [np.float32, np.float64, np.float16]
    try:
        import ml_dtypes
        out.append(ml_dtypes.bfloat16)
    except ImportError:
        pass
    return out


DTYPES = _dtypes()


@dataclass
class Case:
    name: str
    kwargs: dict = field(default_factory=dict)
    y: str = "normal"        # normal | labels (+-1) | unit (in [0, 1]) | positive (> 0)
    kink: object = None      # kink(x, y): distance to the nearest point where the Hessian jumps
    has_var: bool = False    # gaussian_nll_loss: a var argument

    @property
    def id(self):
        return self.name + "".join(f"-{k}={v}" for k, v in self.kwargs.items())

    def data(self, rng, shape, dtype=np.float64):
        x = rng.normal(scale=1.5, size=shape)
        if self.y == "labels":
            y = rng.choice([-1.0, 1.0], size=shape)
        elif self.y == "unit":
            y = rng.choice([0.0, 1.0, 0.3], size=shape)
        elif self.y == "positive":
            y = rng.gamma(2.0, size=shape) + 0.05
        else:
            y = rng.normal(size=shape)
        extra = {}
        if self.has_var:
            extra["var"] = rng.uniform(0.2, 3.0, size=shape).astype(dtype)
        return x.astype(dtype), y.astype(dtype), extra

    def call(self, suffix, x, y, extra, **kw):
        return getattr(fl, self.name + suffix)(x, y, **extra, **self.kwargs, **kw)

    def ref(self, suffix, x, y, extra, **kw):
        return getattr(R, self.name + suffix)(x, y, **extra, **self.kwargs, **kw)


def _abs_kink(delta):
    return lambda x, y: np.abs(np.abs(x - y) - delta)


CASES = [
    Case("mse_loss"),
    Case("huber_loss", kink=_abs_kink(1.0)),
    Case("huber_loss", {"delta": 0.4}, kink=_abs_kink(0.4)),
    Case("logistic_loss", y="labels"),
    Case("exponential_loss", y="labels"),
    Case("binary_cross_entropy_with_logits", y="unit"),
    Case("kl_div", y="positive"),
    Case("kl_div", {"log_target": True}),
    Case("smooth_l1_loss", kink=_abs_kink(1.0)),
    Case("smooth_l1_loss", {"beta": 0.5}, kink=_abs_kink(0.5)),
    Case("smooth_l1_loss", {"beta": 0.0}, kink=_abs_kink(0.0)),
    Case("log_cosh_loss"),
    Case("poisson_nll_loss", y="positive"),
    Case("poisson_nll_loss", {"log_input": False, "full": True}, y="positive"),
    Case("gaussian_nll_loss", has_var=True),
    Case("gaussian_nll_loss", {"full": True, "eps": 0.5}, has_var=True),
    Case("tweedie_loss", y="positive"),
    Case("tweedie_loss", {"power": 1.0}, y="positive"),
    Case("tweedie_loss", {"power": 2.0}, y="positive"),
    Case("tweedie_loss", {"power": 1.2}, y="positive"),
    Case("sigmoid_focal_loss", y="unit"),
    Case("sigmoid_focal_loss", {"alpha": -1.0, "gamma": 0.0}, y="unit"),
    Case("sigmoid_focal_loss", {"alpha": 0.7, "gamma": 1.0}, y="unit"),
    Case("sigmoid_focal_loss", {"gamma": 1.5}, y="unit"),
]
IDS = [c.id for c in CASES]


def _close(got, want, dtype):
    """Relative to each value, and absolute on the scale of the array's largest value: an element computed in
    float32 from terms that cancel (x - y log x near its minimum, the focal gradient's two terms) is off by
    a few ulps of the terms, not of the result."""
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert np.shape(got) == np.shape(want)
    w = np.asarray(want, np.float64)
    rtol = 1e-11 if np.dtype(dtype) == np.float64 else 2e-5
    scale = float(np.max(np.abs(w[np.isfinite(w)]), initial=0.0))
    np.testing.assert_allclose(np.asarray(got, np.float64), w, rtol=rtol, atol=rtol * scale + 1e-300)


def _x_for_positive_rate(case, x):
    # poisson_nll_loss without log_input takes a rate: keep it positive
    if case.name == "poisson_nll_loss" and case.kwargs.get("log_input") is False:
        return np.abs(x) + np.asarray(0.25, x.dtype)
    return x


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_oracle_and_the_other_functions(case, dtype, shape):
    rng = np.random.default_rng(zlib.crc32(f"{case.id} {shape} {np.dtype(dtype).name}".encode()))
    x, y, extra = case.data(rng, shape, dtype)
    x = _x_for_positive_rate(case, x)
    x0, y0 = x.copy(), y.copy()
    weighted = case.name != "kl_div" and len(shape) > 1
    sw = {"sample_weight": rng.uniform(0.1, 2.0, size=shape)} if weighted else {}
    reductions = ("none", "sum", "mean", "batchmean") if case.name == "kl_div" else REDUCTIONS
    for reduction in reductions:
        loss, g, h = case.call("_grad_hess", x, y, extra, reduction=reduction, **sw)
        want = case.ref("_grad_hess", x, y, extra, reduction=reduction, **sw)
        for got, w in zip((loss, g, h), want):
            _close(got, w, np.float64 if np.dtype(dtype) == np.float64 else np.float32)
        assert g.shape == h.shape == np.shape(x) and g.dtype == h.dtype
        # the same pass as NAME and NAME_and_grad: the same bits
        l_only = case.call("", x, y, extra, reduction=reduction, **sw)
        l2, g2 = case.call("_and_grad", x, y, extra, reduction=reduction, **sw)
        np.testing.assert_array_equal(loss, l_only)
        np.testing.assert_array_equal(loss, l2)
        np.testing.assert_array_equal(g, g2)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_hessian_by_central_differences(case, reduction):
    """d grad / dx by central differences in float64 (the losses are element-wise: one step of every element at
    once gives every diagonal entry), and d loss / dx the same way."""
    rng = np.random.default_rng(11)
    x, y, extra = case.data(rng, (6, 9))
    x = _x_for_positive_rate(case, x)
    sw = {} if case.name == "kl_div" else {"sample_weight": rng.uniform(0.5, 2.0, size=x.shape)}
    step = 1e-5
    _, g, h = case.call("_grad_hess", x, y, extra, reduction=reduction, **sw)
    _, g_up = case.call("_and_grad", x + step, y, extra, reduction=reduction, **sw)
    _, g_down = case.call("_and_grad", x - step, y, extra, reduction=reduction, **sw)
    keep = np.ones(x.shape, bool) if case.kink is None else case.kink(x, y) > 1e-3
    assert keep.sum() > 20
    scale = max(1.0, float(np.max(np.abs(h))))
    np.testing.assert_allclose(h[keep], ((g_up - g_down) / (2 * step))[keep], rtol=1e-6, atol=1e-8 * scale)
    # and the gradient from the loss, per element (reduction "none", weighted and scaled as the reduction)
    up = case.call("", x + step, y, extra, reduction="none", **sw)
    down = case.call("", x - step, y, extra, reduction="none", **sw)
    fd = (up - down) / (2 * step)
    if reduction == "mean":
        fd = fd / (sw["sample_weight"].sum() if sw else x.size)
    np.testing.assert_allclose(g[keep], fd[keep], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_strided_and_fortran_input(case):
    rng = np.random.default_rng(12)
    x, y, extra = case.data(rng, (8, 10))
    x = _x_for_positive_rate(case, x)
    views = [(x[::2, 1::3], y[::2, 1::3], {k: v[::2, 1::3] for k, v in extra.items()}),
             (np.asfortranarray(x), np.asfortranarray(y), {k: np.asfortranarray(v) for k, v in extra.items()}),
             (x[::-1], y[::-1], {k: v[::-1] for k, v in extra.items()})]
    for xv, yv, ev in views:
        got = case.call("_grad_hess", xv, yv, ev, reduction="sum")
        want = case.ref("_grad_hess", np.ascontiguousarray(xv), np.ascontiguousarray(yv),
                        {k: np.ascontiguousarray(v) for k, v in ev.items()}, reduction="sum")
        for a, b in zip(got, want):
            _close(a, b, np.float64)
        assert got[1].flags.c_contiguous and got[2].flags.c_contiguous


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grad_out_and_hess_out(case):
    rng = np.random.default_rng(13)
    x, y, extra = case.data(rng, (4, 5), np.float32)
    x = _x_for_positive_rate(case, x)
    gbuf, hbuf = np.full(x.shape, 7.0, np.float32), np.full(x.shape, 7.0, np.float32)
    loss, g, h = case.call("_grad_hess", x, y, extra, grad_out=gbuf, hess_out=hbuf)
    assert g is gbuf and h is hbuf
    _, g2, h2 = case.call("_grad_hess", x, y, extra)
    np.testing.assert_array_equal(gbuf, g2)
    np.testing.assert_array_equal(hbuf, h2)
    # only one of them given: the other is allocated
    _, g3, h3 = case.call("_grad_hess", x, y, extra, hess_out=np.empty(x.shape, np.float32))
    np.testing.assert_array_equal(g3, g2)
    np.testing.assert_array_equal(h3, h2)
    ro = np.empty(x.shape, np.float32)
    ro.flags.writeable = False
    bad = [(np.empty((5, 4), np.float32), ValueError, "hess_out has shape"),
           (np.empty(x.shape, np.float64), TypeError, "hess_out has dtype"),
           (np.empty((4, 10), np.float32)[:, ::2], ValueError, "C-contiguous"),
           (ro, ValueError, "read-only"),
           ([[0.0] * 5] * 4, TypeError, "ndarray")]
    for out, exc, words in bad:
        gbuf[...] = 7.0
        with pytest.raises(exc, match=words):
            case.call("_grad_hess", x, y, extra, grad_out=gbuf, hess_out=out)
        assert np.all(gbuf == 7.0)  # nothing written on error
    with pytest.raises(ValueError, match="overlap"):
        case.call("_grad_hess", x, y, extra, grad_out=gbuf, hess_out=gbuf)
    assert np.all(gbuf == 7.0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_threads_bitwise(case):
    rng = np.random.default_rng(14)
    x, y, extra = case.data(rng, 200_003, np.float32)
    x = _x_for_positive_rate(case, x)
    for kw in ({}, {"sample_weight": rng.uniform(0.5, 2.0, size=x.shape)}):
        if case.name == "kl_div" and kw:
            continue
        one = case.call("_grad_hess", x, y, extra, reduction="mean", n_threads=1, **kw)
        for nt in (2, 3):
            other = case.call("_grad_hess", x, y, extra, reduction="mean", n_threads=nt, **kw)
            for a, b in zip(one, other):
                assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def test_closed_forms():
    x = np.array([-2.0, 0.0, 0.5, 3.0])
    t = np.zeros(4)
    _, _, h = fl.mse_loss_grad_hess(x, t, reduction="sum")
    np.testing.assert_array_equal(h, [2.0, 2.0, 2.0, 2.0])
    _, _, h = fl.mse_loss_grad_hess(x, t)  # mean: / n
    np.testing.assert_array_equal(h, [0.5, 0.5, 0.5, 0.5])
    # Huber: 1 inside delta, 0 outside and at |d| = delta (the true second derivative, not floored)
    _, _, h = fl.huber_loss_grad_hess(np.array([-2.0, 0.0, 0.5, 1.0, 3.0]), np.zeros(5), reduction="sum")
    np.testing.assert_array_equal(h, [0.0, 1.0, 1.0, 0.0, 0.0])
    # logistic and bce: sigmoid(x) sigmoid(-x); at 0: 1/4
    _, _, h = fl.logistic_loss_grad_hess(np.array([0.0, 50.0, -50.0]), np.array([1, 1, -1]), reduction="sum")
    np.testing.assert_allclose(h, [0.25, np.exp(-50.0), np.exp(-50.0)], rtol=1e-14)
    _, _, h = fl.binary_cross_entropy_with_logits_grad_hess(np.array([0.0, 800.0]), np.array([1.0, 0.0]),
                                                            pos_weight=np.array([3.0, 3.0]), reduction="sum")
    np.testing.assert_array_equal(h, [0.75, 0.0])  # lw = 1 + (pw - 1) y
    _, _, h = fl.exponential_loss_grad_hess(np.array([1.0]), np.array([-1]), reduction="sum")
    np.testing.assert_allclose(h, [np.e], rtol=1e-15)
    _, _, h = fl.kl_div_grad_hess(np.log([0.5, 0.5]), np.array([0.9, 0.1]), reduction="sum")
    np.testing.assert_array_equal(h, [0.0, 0.0])


def test_nan_and_inf_propagate():
    loss, g, h = fl.huber_loss_grad_hess(np.array([np.nan, np.inf]), np.zeros(2), reduction="none")
    assert np.isnan(h[0]) and h[1] == 0.0
    for dtype in (np.float32, np.float64):
        loss, g, h = fl.mse_loss_grad_hess(np.array([np.nan] * 40, dtype), np.zeros(40, dtype), reduction="none")
        assert np.isnan(loss).all() and np.isnan(g).all() and (h == 2.0).all()
        loss, g, h = fl.huber_loss_grad_hess(np.array([np.nan] * 40, dtype), np.zeros(40, dtype), reduction="none")
        assert np.isnan(h).all()  # the vector form too (40 > one vector group)


@pytest.mark.parametrize("name", ["logistic_loss", "exponential_loss"])
def test_bad_label_writes_nothing(name):
    x, y = np.zeros(6), np.array([1.0, -1.0, 0.0, 1.0, 1.0, 1.0])
    gbuf, hbuf = np.full(6, 7.0), np.full(6, 7.0)
    with pytest.raises(ValueError, match=r"y\[2\] = 0.0 is not a binary label"):
        getattr(fl, name + "_grad_hess")(x, y, grad_out=gbuf, hess_out=hbuf)
    assert np.all(gbuf == 7.0) and np.all(hbuf == 7.0)
    with pytest.raises(ValueError, match=r"y\[2\]"):  # hess_out alone is a caller's buffer too
        getattr(fl, name + "_grad_hess")(x, y, hess_out=hbuf)
    assert np.all(hbuf == 7.0)


def test_grad_hess_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    x, t = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    p = rng.uniform(size=(5, 6))
    forms = {
        "mse_loss": (lambda a: torch.nn.functional.mse_loss(a, torch.tensor(t), reduction="sum"), t, {}),
        "huber_loss": (lambda a: torch.nn.functional.huber_loss(a, torch.tensor(t), delta=0.8, reduction="sum"), t,
                       {"delta": 0.8}),
        "binary_cross_entropy_with_logits": (
            lambda a: torch.nn.functional.binary_cross_entropy_with_logits(a, torch.tensor(p), reduction="sum"), p,
            {}),
    }
    for name, (f, target, kw) in forms.items():
        xt = torch.tensor(x, requires_grad=True)
        (g,) = torch.autograd.grad(f(xt), xt, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), xt)  # element-wise: d(sum g)/dx is the Hessian diagonal
        loss, gf, hf = getattr(fl, name + "_grad_hess")(x, target, reduction="sum", **kw)
        np.testing.assert_allclose(gf, g.detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(hf, h.numpy(), rtol=1e-12, atol=1e-14)
