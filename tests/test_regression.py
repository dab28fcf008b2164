"""Regression losses: mse_loss, l1_loss, huber_loss (torch semantics) and their gradients."""
import numpy as np
import pytest

import fastloss as fl

from pair_suite import Case, make_suite


def _huber_kink(x, y, delta=1.0):
    return np.abs(np.abs(x - y) - delta)


CASES = [
    Case("mse_loss"),
    Case("l1_loss", kink=lambda x, y: np.abs(x - y)),
    Case("huber_loss", kink=_huber_kink),
    Case("huber_loss", {"delta": 0.3}, kink=_huber_kink),
    Case("huber_loss", {"delta": 2.5}, kink=_huber_kink),
]

TestRegressionPairs = make_suite(CASES)


def test_closed_forms():
    x, t = np.array([1.0, 2.0, 4.0, -1.0]), np.array([1.5, 2.0, 2.0, 2.0])
    np.testing.assert_array_equal(fl.mse_loss(x, t, reduction="none"), [0.25, 0.0, 4.0, 9.0])
    np.testing.assert_array_equal(fl.l1_loss(x, t, reduction="none"), [0.5, 0.0, 2.0, 3.0])
    np.testing.assert_array_equal(fl.huber_loss(x, t, reduction="none"), [0.125, 0.0, 1.5, 2.5])
    np.testing.assert_array_equal(fl.huber_loss(x, t, delta=2.0, reduction="none"), [0.125, 0.0, 2.0, 4.0])
    assert fl.mse_loss(x, t) == np.float64(13.25 / 4)
    assert fl.l1_loss(x, t, sample_weight=[1, 1, 0, 2]) == np.float64(6.5 / 4)
    assert fl.mse_loss(x.astype(np.float32), t).dtype == np.float32
    assert fl.mse_loss(x.astype(np.float16), t).dtype == np.float32
    assert np.isnan(fl.mse_loss(np.zeros(0), np.zeros(0)))  # mean over nothing
    assert fl.mse_loss(np.zeros(0), np.zeros(0), reduction="sum") == 0.0


def test_kinks_and_edges():
    # l1 at d = 0: sign(0) = 0; huber at |d| = delta: +-delta from both sides (continuous)
    _, g = fl.l1_loss_and_grad(np.array([2.0, 3.0, 1.0]), np.array([2.0, 2.0, 2.0]), reduction="sum")
    np.testing.assert_array_equal(g, [0.0, 1.0, -1.0])
    _, g = fl.huber_loss_and_grad(np.array([1.0, -1.0, 0.25]), np.zeros(3), reduction="sum")
    np.testing.assert_array_equal(g, [1.0, -1.0, 0.25])
    loss = fl.huber_loss(np.array([1.0, 1.0 - 1e-12, 1.0 + 1e-12]), np.zeros(3), reduction="none")
    np.testing.assert_allclose(loss, [0.5, 0.5, 0.5], rtol=1e-11)
    # nan and inf propagate
    loss, g = fl.mse_loss_and_grad(np.array([np.nan, np.inf]), np.zeros(2), reduction="none")
    assert np.isnan(loss[0]) and loss[1] == np.inf and np.isnan(g[0]) and g[1] == np.inf
    loss, g = fl.l1_loss_and_grad(np.array([np.nan]), np.zeros(1), reduction="none")
    assert np.isnan(loss[0]) and np.isnan(g[0])
    loss, g = fl.huber_loss_and_grad(np.array([np.nan, -np.inf]), np.zeros(2), reduction="none")
    assert np.isnan(loss[0]) and np.isnan(g[0]) and loss[1] == np.inf and g[1] == -1.0


@pytest.mark.parametrize("delta", [0.0, -1.0, np.nan, np.inf])
def test_bad_delta(delta):
    with pytest.raises(ValueError, match="delta"):
        fl.huber_loss(np.zeros(3), np.zeros(3), delta=delta)
    with pytest.raises(ValueError, match="delta"):
        fl.huber_loss_and_grad(np.zeros(3), np.zeros(3), delta=delta)


def test_regression_shape_message():
    with pytest.raises(ValueError, match=r"input has shape \(2, 3\) and target has shape \(3,\)"):
        fl.mse_loss(np.zeros((2, 3)), np.zeros(3))


@pytest.mark.parametrize("name,kw", [("mse_loss", {}), ("l1_loss", {}), ("huber_loss", {"delta": 0.7})])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_torch(name, kw, reduction, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x, t = rng.normal(size=(6, 5)).astype(dtype), rng.normal(size=(6, 5)).astype(dtype)
    x[0, :3] = t[0, :3]                       # l1 kink
    x[1, 0], x[1, 1] = t[1, 0] + 0.7, t[1, 1] - 0.7  # huber kink (up to rounding)
    xt = torch.tensor(x, requires_grad=True)
    out = getattr(torch.nn.functional, name)(xt, torch.tensor(t), reduction=reduction, **kw)
    out.backward(torch.ones_like(out))
    loss, g = getattr(fl, name + "_and_grad")(x, t, reduction=reduction, **kw)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(loss, out.detach().numpy(), rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=rtol, atol=1e-7)
