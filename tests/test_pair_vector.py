"""The vector forms of the element-wise (pair) losses (common.h: fl_velem_part, FL_PAIR_KERNEL_V): float data
(float32, float16, bfloat16) is computed FL_LANES (16) elements at a time by the vector form, the last < 16 elements
of each block of 16384 by the scalar element function. So an element's position decides which form computes it,
and these tests put the same values in both positions: every loss's vector form against its scalar form and the
float64 kernel at huge, tiny, nan and inf inputs; sample weights on the vector path (the element loop's bits)
over lengths that leave every tail, blocks, half types and strided input; at every SIMD level."""
import zlib

import numpy as np
import pytest

import fastloss as fl

try:
    import ml_dtypes
    HALVES = [np.float16, ml_dtypes.bfloat16]
except ImportError:  # bfloat16 needs ml_dtypes
    HALVES = [np.float16]

LANES = 16  # FL_LANES: the vector form takes whole groups of 16 from a block's start
BLOCK = 16384  # FL_BLOCK_ELEMENTS

# (function, options, kind of y); a gaussian_nll case has a var
CASES = [
    ("mse_loss", {}, "any"),
    ("l1_loss", {}, "any"),
    ("huber_loss", {"delta": 0.4}, "any"),
    ("smooth_l1_loss", {}, "any"),
    ("smooth_l1_loss", {"beta": 0.0}, "any"),
    ("log_cosh_loss", {}, "any"),
    ("pinball_loss", {"quantile": 0.3}, "any"),
    ("poisson_nll_loss", {}, "count"),
    ("poisson_nll_loss", {"full": True}, "count"),
    ("poisson_nll_loss", {"log_input": False, "full": True}, "count"),
    ("gaussian_nll_loss", {}, "any"),
    ("gaussian_nll_loss", {"full": True, "eps": 0.5}, "any"),
    ("gaussian_nll_loss", {"eps": 1e-40}, "any"),  # a subnormal eps: the var's log by the full vector log
    ("tweedie_loss", {}, "count"),
    ("tweedie_loss", {"power": 1.0}, "count"),
    ("tweedie_loss", {"power": 2.0}, "positive"),
    ("tweedie_loss", {"power": 1.2}, "count"),
    ("zero_one_loss", {}, "labels"),
    ("logistic_loss", {}, "labels"),
    ("exponential_loss", {}, "labels"),
    ("hinge_loss", {"squared": True}, "labels"),
    ("sigmoid_focal_loss", {}, "unit"),
    ("sigmoid_focal_loss", {"gamma": 1.5}, "unit"),
    ("sigmoid_focal_loss", {"alpha": -1.0, "gamma": 0.0}, "unit"),
    ("sigmoid_focal_loss", {"alpha": 0.7, "gamma": 1.0}, "unit"),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw, _ in CASES]

X_EDGES = [0.0, -0.0, 1e-40, -1e-40, 1e-30, 1e-8, -1e-8, 0.3, -0.7, 1.0, -1.0, 2.5, 20.0, -20.0, 80.0, -80.0, 88.5,
           -88.5, 95.0, -95.0, 110.0, -110.0, 1e4, -1e4, 3e38, -3e38, np.inf, -np.inf, np.nan]
Y_EDGES = {"any": [0.0, 1e-30, 0.5, -2.0, 1e4, np.inf, np.nan], "count": [0.0, 1e-30, 0.5, 1.0, 3.0, 1e4],
           "positive": [1e-30, 0.5, 1.0, 3.0, 1e4], "labels": [-1.0, 1.0], "unit": [0.0, 0.3, 1.0]}
VAR_EDGES = [0.0, 1e-40, 1e-30, 0.5, 1e4, 3e38, np.inf, np.nan]


def _grid(name, kind):
    """Every (x, y) pair of the edge lists (and a var for gaussian_nll), float32."""
    x, y = (a.ravel() for a in np.meshgrid(np.array(X_EDGES), np.array(Y_EDGES[kind]), indexing="ij"))
    extra = {}
    if name == "gaussian_nll_loss":
        x, y = np.repeat(x, len(VAR_EDGES)), np.repeat(y, len(VAR_EDGES))
        extra["var"] = np.tile(np.array(VAR_EDGES), x.size // len(VAR_EDGES)).astype(np.float32)
    return x.astype(np.float32), y.astype(np.float32), extra


def _outputs(name, x, y, extra, kw, **more):
    """loss per element, and the gradient and the Hessian where the loss has them (reduction sum: unscaled)."""
    if hasattr(fl, name + "_grad_hess"):
        return getattr(fl, name + "_grad_hess")(x, y, **extra, **kw, reduction="none", **more)[:1] + \
            getattr(fl, name + "_grad_hess")(x, y, **extra, **kw, reduction="sum", **more)[1:]
    if hasattr(fl, name + "_and_grad"):
        loss = getattr(fl, name + "_and_grad")(x, y, **extra, **kw, reduction="none", **more)[0]
        return loss, getattr(fl, name + "_and_grad")(x, y, **extra, **kw, reduction="sum", **more)[1]
    return (getattr(fl, name)(x, y, **extra, **kw, reduction="none", **more),)


def _in_vectors(name, x, y, extra, kw):
    """Every element in the vector form's part: the arrays padded to a multiple of 16 (with a copy of themselves)."""
    n = x.size
    pad = -n % LANES
    take = np.arange(n + pad) % n
    out = _outputs(name, x[take], y[take], {k: v[take] for k, v in extra.items()}, kw)
    return [o[:n] for o in out]


def _in_tails(name, x, y, extra, kw):
    """Every element in the scalar form's part: calls of 15 elements (no whole group of 16)."""
    parts = [_outputs(name, x[i:i + LANES - 1], y[i:i + LANES - 1], {k: v[i:i + LANES - 1] for k, v in extra.items()},
                      kw) for i in range(0, x.size, LANES - 1)]
    return [np.concatenate(p) for p in zip(*parts)]


def _assert_agree(got, want, rtol, what):
    """Same nan and inf positions (and signs); the finite values within rtol of each other, relative to the value
    or, where the terms of the formula cancel, to 1 (the losses here are O(1) where they cancel)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: nan positions")
    np.testing.assert_array_equal(np.where(np.isinf(got), got, 0), np.where(np.isinf(want), want, 0),
                                  err_msg=f"{what}: inf positions")
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=rtol, err_msg=what)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vector_form_against_scalar_form_and_float64_at_edges(case, simd_level):
    name, kw, kind = case
    x, y, extra = _grid(name, kind)
    vec = _in_vectors(name, x, y, extra, kw)
    sca = _in_tails(name, x, y, extra, kw)
    # the float64 kernel on the same (float32) values: the truth, rounded to float32 where it is finite
    # (and an eps as the float32 kernel takes it, rounded to float32: 1e-40 is 9.99995e-41 there, as in torch)
    kw64 = {k: float(np.float32(v)) if k == "eps" else v for k, v in kw.items()}
    f64 = _outputs(name, x.astype(np.float64), y.astype(np.float64),
                   {k: v.astype(np.float64) for k, v in extra.items()}, kw64)
    # against float64 on the same values: a nan there is nan here; where both are finite, within a few float32 eps,
    # times the condition of exp at x (the exp-based losses lose |x| eps to the rounding of their argument; |x| >
    # 100 overflows or underflows it). Where float64 is finite and float32 is not, a float32 intermediate overflows
    # (exp(x) - y x at x = 3e38 is inf - inf, y exp(95) with y = 1e-30 is inf) or x + eps is 0: the scalar form
    # computes the same, and is the spec there.
    cond = np.clip(np.nan_to_num(np.abs(x.astype(np.float64)), nan=100.0), 1.0, 100.0)
    for what, v, s, t in zip(("loss", "grad", "hess"), vec, sca, f64):
        assert v.dtype == s.dtype == np.float32
        _assert_agree(v, s, 4e-6, f"{name} {kw} {what}: vector vs scalar form")
        assert np.isnan(v[np.isnan(t)]).all(), f"{name} {kw} {what}: not nan where float64 is"
        with np.errstate(over="ignore"):
            both = np.isfinite(v) & np.isfinite(t.astype(np.float32))
        err = np.abs(v[both] - t[both]) / np.maximum(np.abs(t[both]), 1.0)
        assert (err <= 4e-6 * cond[both]).all(), \
            f"{name} {kw} {what}: vector form vs float64 at x = {x[both][np.argmax(err / cond[both])]}: {err.max()}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("n", [1, 15, 16, 17, 33, 100, 129, BLOCK + 31, 2 * BLOCK + 5])
def test_sample_weights_in_vectors_are_the_element_loops_bits(case, n):
    """Weighted: loss_i = w_i l_i and grad_i = w_i g_i (reduction sum), in double, rounded once to float32: the same
    bits from the vector form (the groups of 16) and the element loop (the tails), for every length."""
    name, kw, kind = case
    rng = np.random.default_rng(zlib.crc32(f"{name} {kw} {n}".encode()))
    x = rng.normal(scale=2.0, size=n).astype(np.float32)
    y = {"any": rng.normal(size=n), "count": rng.poisson(2.0, size=n), "positive": rng.gamma(2.0, size=n) + 0.1,
         "labels": rng.choice([-1.0, 1.0], size=n), "unit": rng.choice([0.0, 0.3, 1.0], size=n)}[kind]
    y = y.astype(np.float32)
    extra = {"var": rng.uniform(0.2, 3.0, size=n).astype(np.float32)} if name == "gaussian_nll_loss" else {}
    w = rng.uniform(0.1, 2.0, size=n)
    plain = _outputs(name, x, y, extra, kw)
    weighted = _outputs(name, x, y, extra, kw, sample_weight=w)
    for p, q in zip(plain, weighted):
        assert q.dtype == np.float32
        np.testing.assert_array_equal(q, (p.astype(np.float64) * w).astype(np.float32))
    # the weighted sum and mean: the per-element losses summed in double
    total = getattr(fl, name)(x, y, **extra, **kw, sample_weight=w, reduction="sum")
    np.testing.assert_allclose(total, np.sum(weighted[0].astype(np.float64)), rtol=1e-6)
    mean = getattr(fl, name)(x, y, **extra, **kw, sample_weight=w, reduction="mean")
    np.testing.assert_allclose(mean, np.float64(total) / w.sum(), rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", HALVES, ids=lambda d: np.dtype(d).name)
def test_half_types_weighted_and_strided(case, dtype, simd_level):
    """float16 / bfloat16 input (computed in float32: the same values as float32 input holding them), weighted,
    from a strided view, over a length with a tail in every block."""
    name, kw, kind = case
    n = BLOCK + 45
    rng = np.random.default_rng(zlib.crc32(f"{name} {kw} half".encode()))
    x = rng.normal(scale=2.0, size=2 * n).astype(dtype)[::2]
    y = {"any": rng.normal(size=2 * n), "count": rng.poisson(2.0, size=2 * n),
         "positive": rng.gamma(2.0, size=2 * n) + 0.1, "labels": rng.choice([-1.0, 1.0], size=2 * n),
         "unit": rng.choice([0.0, 0.3, 1.0], size=2 * n)}[kind].astype(dtype)[::2]
    extra = {"var": rng.uniform(0.2, 3.0, size=2 * n).astype(dtype)[::2]} if name == "gaussian_nll_loss" else {}
    w = rng.uniform(0.1, 2.0, size=n)
    got = _outputs(name, x, y, extra, kw, sample_weight=w)
    want = _outputs(name, x.astype(np.float32), y.astype(np.float32),
                    {k: v.astype(np.float32) for k, v in extra.items()}, kw, sample_weight=w)
    for g, h in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, h)
