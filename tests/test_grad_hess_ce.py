"""cross_entropy_grad_hess: (loss, gradient, Hessian diagonal) from one pass. The loss and the gradient are
cross_entropy_and_grad's, bit for bit; the Hessian's diagonal against the oracle (reference.cross_entropy_hess)
over shapes, dtypes, layouts and every option, and against central finite differences of the gradient in
float64 (so the oracle's formula is checked too); errors leave grad_out and hess_out unwritten."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as ref

from conftest import array_zoo, assert_close, assert_identical, random_logits

SHAPES = [(1, 1), (5, 3), (64, 10), (7, 33), (3, 300), (2, 4, 9), (0, 5)]
REDUCTIONS = ["none", "sum", "mean"]


def options(rng, shape, kind):
    """Keyword arguments of one option set for logits of this shape."""
    c, lead = shape[-1], shape[:-1]
    if kind == "plain":
        return {}
    if kind == "weights":
        return {"weight": rng.random(c) + 0.1, "sample_weight": rng.random(lead) + 0.1}
    if kind == "smoothing":
        return {"label_smoothing": 0.2}
    if kind == "all":
        return {"weight": rng.random(c) + 0.1, "sample_weight": rng.random(lead) + 0.1, "label_smoothing": 0.15,
                "ignore_index": 1}
    raise ValueError(kind)


def targets(rng, shape, prob=False):
    if prob:
        q = rng.random(shape)
        return q / q.sum(axis=-1, keepdims=True) if shape[-1] else q
    t = rng.integers(0, shape[-1], shape[:-1])
    if t.size > 2:
        t.reshape(-1)[1] = -100  # an ignored row (the default ignore_index)
    return t


def hess_scale(x, t, kw):
    """The largest entry the Hessian could have on this call (its error is absolute on that scale)."""
    h = ref.cross_entropy_hess(np.asarray(x).astype(np.float64), t, **kw)
    return float(np.max(np.abs(h))) if h.size else 0.0


def check(x, t, **kw):
    """One call: the loss and the gradient identical to cross_entropy_and_grad's, the Hessian against the oracle."""
    loss, grad, hess = fl.cross_entropy_grad_hess(x, t, **kw)
    loss2, grad2 = fl.cross_entropy_and_grad(x, t, **kw)
    assert_identical(loss, loss2, "loss")
    assert_identical(grad, grad2, "grad")
    assert hess.shape == grad.shape and hess.dtype == grad.dtype and hess.flags.c_contiguous
    e_loss, e_grad, e_hess = ref.cross_entropy_grad_hess(x, t, **kw)
    assert_close(hess, e_hess, kind="grad", err_msg=f"hess {kw}")
    return loss, grad, hess


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["plain", "weights", "smoothing", "all"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vs_oracle_class_targets(rng, dtype, shape, kind, reduction):
    x = random_logits(rng, shape, dtype)
    kw = options(rng, shape, kind)
    t = targets(rng, shape)
    t[t == -100] = kw.get("ignore_index", -100)
    check(x, t, reduction=reduction, **kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["plain", "weights", "smoothing"])
@pytest.mark.parametrize("shape", [(5, 3), (64, 10), (3, 300), (2, 4, 9)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vs_oracle_probability_targets(rng, dtype, shape, kind, reduction):
    x = random_logits(rng, shape, dtype)
    q = targets(rng, shape, prob=True).astype(dtype)
    check(x, q, reduction=reduction, **options(rng, shape, kind))


def test_half_types_compute_in_float32(rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x32 = random_logits(rng, (33, 12), np.float32)
    t = targets(rng, x32.shape)
    for dt in (np.float16, ml_dtypes.bfloat16):
        xh = x32.astype(dt)
        loss, grad, hess = fl.cross_entropy_grad_hess(xh, t, reduction="none", label_smoothing=0.1)
        assert grad.dtype == hess.dtype == np.float32
        _, g2 = fl.cross_entropy_and_grad(xh, t, reduction="none", label_smoothing=0.1)
        assert_identical(grad, g2)
        e = ref.cross_entropy_hess(xh.astype(np.float64), t, reduction="none", label_smoothing=0.1)
        assert_close(hess, e, kind="grad")


def test_layouts_give_the_same_bits(rng):
    x = random_logits(rng, (9, 7), np.float64)
    t = targets(rng, x.shape)
    base = fl.cross_entropy_grad_hess(x, t, reduction="sum", weight=np.arange(1.0, 8.0))
    for name, v in array_zoo(x):
        got = fl.cross_entropy_grad_hess(v, t, reduction="sum", weight=np.arange(1.0, 8.0))
        for a, b in zip(got, base):
            assert_identical(a, b, name)


@pytest.mark.parametrize("n_classes", [10, 40])  # the group path of few classes, and rows one by one
def test_threads_give_the_same_bits(rng, n_classes):
    x = random_logits(rng, (5000, n_classes), np.float32)
    t = targets(rng, x.shape)
    one = fl.cross_entropy_grad_hess(x, t, n_threads=1, label_smoothing=0.05)
    two = fl.cross_entropy_grad_hess(x, t, n_threads=2, label_smoothing=0.05)
    for a, b in zip(one, two):
        assert_identical(a, b)


def test_simd_levels(rng, simd_level):
    x = random_logits(rng, (40, 37), np.float32)
    check(x, targets(rng, x.shape), reduction="mean", label_smoothing=0.1)
    check(x[:, :5], targets(rng, (40, 5)), reduction="none")


# ---- finite differences: the Hessian's diagonal is the derivative of the gradient ----------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", ["plain", "all", "prob", "prob_smoothing_weights"])
def test_hessian_by_central_differences(rng, case, reduction):
    """hess[i, c] = (grad(x + h e_ic)[i, c] - grad(x - h e_ic)[i, c]) / 2h, element by element, in float64."""
    shape = (4, 6)
    x = random_logits(rng, shape, np.float64, scale=2.0)
    if case.startswith("prob"):
        t = targets(rng, shape, prob=True)
        kw = {"weight": rng.random(6) + 0.5, "label_smoothing": 0.3,
              "sample_weight": rng.random(4) + 0.5} if case != "prob" else {}
    else:
        t = targets(rng, shape)
        kw = options(rng, shape, case)
        t[t == -100] = kw.get("ignore_index", -100)
    kw["reduction"] = reduction
    _, _, hess = fl.cross_entropy_grad_hess(x, t, **kw)
    h = 1e-5
    fd = np.empty(shape)
    for idx in np.ndindex(*shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        grad_p, grad_m = fl.cross_entropy_and_grad(xp, t, **kw)[1], fl.cross_entropy_and_grad(xm, t, **kw)[1]
        fd[idx] = (grad_p[idx] - grad_m[idx]) / (2 * h)
    np.testing.assert_allclose(hess, fd, rtol=1e-6, atol=1e-9)
    assert np.any(hess > 0)


def test_hessian_matches_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    x = random_logits(rng, (3, 5), np.float64)
    t = np.array([0, 4, 2])
    w = rng.random(5) + 0.5
    xt = torch.from_numpy(x)
    full = torch.autograd.functional.hessian(
        lambda z: torch.nn.functional.cross_entropy(z, torch.from_numpy(t), weight=torch.from_numpy(w),
                                                    label_smoothing=0.1), xt)
    diag = full.reshape(15, 15).diagonal().reshape(3, 5).numpy()
    _, _, hess = fl.cross_entropy_grad_hess(x, t, weight=w, label_smoothing=0.1)
    np.testing.assert_allclose(hess, diag, rtol=1e-12, atol=1e-15)


# ---- edge values -----------------------------------------------------------------------------------------------

def test_confident_row_keeps_its_digits():
    """p_t = 1 - 1e-12: the Hessian at the target is p_t (1 - p_t) ~ 1e-12, from the others' sum, not 1 - p_t
    rounded (0 in float32, 2 digits in float64)."""
    for dt in (np.float32, np.float64):
        x = np.array([[40.0, 40.0 - np.log(1e12), -50.0]], dt)
        _, _, hess = fl.cross_entropy_grad_hess(x, np.array([0]))
        so = np.exp(np.float64(x[0, 1]) - np.float64(x[0, 0])) + np.exp(np.float64(x[0, 2]) - np.float64(x[0, 0]))
        expected = so / (1 + so) ** 2
        assert abs(hess[0, 0] - expected) <= 4 * np.finfo(dt).eps * expected, (dt, hess[0, 0], expected)


def test_ignored_nan_and_infinite_rows():
    x = np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 1.0], [np.inf, 0.0, 0.0], [-np.inf, 0.0, 1.0], [0.5, 0.5, 0.5]])
    t = np.array([0, 1, 0, 0, -100])
    loss, grad, hess = fl.cross_entropy_grad_hess(x, t, reduction="none")
    assert np.all(np.isnan(hess[1])) and np.all(np.isnan(hess[2]))
    assert np.all(hess[4] == 0) and np.all(grad[4] == 0) and loss[4] == 0
    assert hess[3, 0] == 0 and np.isinf(loss[3])  # a -inf logit at the target: p = 0 there
    e = ref.cross_entropy_hess(x[[0, 3]], t[[0, 3]], reduction="none")
    assert_close(hess[[0, 3]], e, kind="grad")


def test_all_rows_ignored():
    x = np.ones((3, 4))
    loss, grad, hess = fl.cross_entropy_grad_hess(x, np.full(3, -100))
    assert np.isnan(loss) and np.all(grad == 0) and np.all(hess == 0)


# ---- outputs and errors ------------------------------------------------------------------------------------

def test_grad_out_and_hess_out_are_filled(rng):
    x = random_logits(rng, (6, 4), np.float32)
    t = targets(rng, x.shape)
    g, h = np.empty((6, 4), np.float32), np.empty((6, 4), np.float32)
    loss, grad, hess = fl.cross_entropy_grad_hess(x, t, grad_out=g, hess_out=h)
    assert grad is g and hess is h
    for a, b in zip((loss, grad, hess), fl.cross_entropy_grad_hess(x, t)):
        assert_identical(a, b)


SENTINEL = -12345.5


@pytest.mark.parametrize("bad", ["index", "hess_shape", "hess_dtype", "hess_fortran", "hess_readonly", "overlap",
                                 "smoothing", "weight"])
def test_errors_write_nothing(rng, bad):
    x = random_logits(rng, (5, 4), np.float64)
    t = np.array([0, 1, 2, 3, 1])
    g, h = np.full((5, 4), SENTINEL), np.full((5, 4), SENTINEL)
    kw = {}
    exc, word = ValueError, "hess_out"
    if bad == "index":
        t[3], exc, word = 4, IndexError, "target[3] = 4"
    elif bad == "hess_shape":
        h = np.full((5, 5), SENTINEL)
    elif bad == "hess_dtype":
        h, exc = np.full((5, 4), SENTINEL, np.float32), TypeError
    elif bad == "hess_fortran":
        h = np.asfortranarray(np.full((4, 5), SENTINEL).T)
    elif bad == "hess_readonly":
        h.flags.writeable = False
    elif bad == "overlap":
        h, word = g, "overlap"
    elif bad == "smoothing":
        kw, word = {"label_smoothing": 1.5}, "label_smoothing"
    elif bad == "weight":
        kw, word = {"weight": np.ones(3)}, "weight"
    with pytest.raises(exc, match=word.replace("[", r"\[").replace("]", r"\]")):
        fl.cross_entropy_grad_hess(x, t, grad_out=g, hess_out=h, **kw)
    assert np.all(g == SENTINEL) and np.all(h == SENTINEL)


# ---- few classes in float: the tiled pass (rows a vector lane each, stored back into rows) -------------------

@pytest.mark.parametrize("n_classes", [1, 2, 7, 8, 9, 10, 16, 17, 31, 32])
@pytest.mark.parametrize("n_rows", [1, 3, 8, 13, 300])
def test_tiled_rows_vs_oracle(rng, simd_level, n_rows, n_classes):
    """Every tile shape (rows past a multiple of the lanes; a row's last chunk of 8 classes short or whole) with
    class and sample weights and an ignored row, at every level (the tiles are AVX2's and AVX-512's): the loss
    and the gradient are cross_entropy_and_grad's bits (which takes the tiles too), all three the oracle's."""
    x = random_logits(rng, (n_rows, n_classes), np.float32)
    t = rng.integers(0, n_classes, n_rows)
    if n_rows > 2:
        t[1] = -100
    kw = {"weight": rng.random(n_classes) + 0.1, "sample_weight": rng.random(n_rows) + 0.1}
    for reduction in ("none", "mean"):
        for w in ({}, kw):
            loss, grad, _ = check(x, t, reduction=reduction, **w)
            e_loss, e_grad = ref.cross_entropy_and_grad(x, t, reduction=reduction, **w)
            assert_close(loss, e_loss, err_msg=f"loss {reduction} {w}")
            assert_close(grad, e_grad, kind="grad", err_msg=f"grad {reduction} {w}")


@pytest.mark.parametrize("n_classes", [3, 10, 24])
def test_tiled_rows_same_bits_wherever_they_fall(rng, simd_level, n_classes):
    """A row's loss, gradient and Hessian depend on that row alone: the same bits one row further on (another lane
    of another tile), from a strided view, and in float16 the float32 call's on the same values."""
    x = random_logits(rng, (203, n_classes), np.float32)
    t = rng.integers(0, n_classes, 203)
    t[[5, 77]] = -100
    x[9, 1], x[40, 0], x[41, :] = np.nan, np.inf, -np.inf
    base = fl.cross_entropy_grad_hess(x, t, reduction="none")
    shifted = fl.cross_entropy_grad_hess(x[1:], t[1:], reduction="none")
    wide = np.zeros((203, n_classes + 5), np.float32)
    wide[:, :n_classes] = x
    strided = fl.cross_entropy_grad_hess(wide[:, :n_classes], t, reduction="none")
    for a, b, c in zip(base, shifted, strided):
        assert_identical(b, a[1:])
        assert_identical(c, a)
    loss, grad, hess = base
    assert np.all(np.isnan(grad[[9, 40, 41]])) and np.all(np.isnan(hess[[9, 40, 41]]))
    assert np.all(grad[[5, 77]] == 0) and np.all(hess[[5, 77]] == 0) and np.all(loss[[5, 77]] == 0)
    ok = np.ones(203, bool)
    ok[[5, 9, 40, 41, 77]] = False
    e_hess = ref.cross_entropy_hess(x[ok].astype(np.float64), t[ok], reduction="none")
    assert_close(hess[ok], e_hess, kind="grad")
    half = x.astype(np.float16)
    for a, b in zip(fl.cross_entropy_grad_hess(half, t, reduction="none"),
                    fl.cross_entropy_grad_hess(half.astype(np.float32), t, reduction="none")):
        assert_identical(a, b)


def test_tiled_confident_rows_keep_their_digits(rng):
    """Rows whose target is the max by far among rows of the tiled pass: p_t (1 - p_t) from the others' sum
    (1e-12 here), exact to a few eps; where the max is not the target, the target's p_t (1 - p_t) ~ p_t likewise,
    and the max's from sh - 1 in double (the others' sum to double's absolute precision, as the row path)."""
    x = random_logits(rng, (37, 10), np.float32)
    t = rng.integers(0, 10, 37)
    x[[4, 20], :] = -50.0
    x[[4, 20], 3] = 40.0
    x[[4, 20], 5] = np.float32(40.0 - np.log(1e12))
    t[4], t[20] = 3, 5  # row 20: the max (class 3) is not the target
    _, _, hess = fl.cross_entropy_grad_hess(x, t, reduction="none")
    for r, c, tol in ((4, 3, 4 * 2.0**-23), (20, 5, 4 * 2.0**-23), (20, 3, 2.0**-52 / 1e-12)):
        x64 = x[r].astype(np.float64)
        p = np.exp(x64 - x64.max())
        so = np.delete(p, c).sum()  # (not p.sum() - p[c]: 1e-12 next to 1 keeps 4 digits)
        expected = (p[c] / p.sum()) * (so / p.sum())
        assert abs(hess[r, c] - expected) <= tol * expected, (r, c, hess[r, c], expected)
