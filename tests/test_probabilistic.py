"""The probabilistic core (logsumexp, softmax, log_softmax, cross_entropy, nll_loss and their gradients) against
the NumPy oracles of fastloss.reference, scipy and torch; edge values, memory layouts, finite differences,
float32 accuracy on long rows, and the errors of shared/API.md."""
import re
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

from conftest import (
    F32_EPS,
    array_zoo,
    assert_close,
    assert_identical,
    assert_unmodified,
    random_logits,
    result_dtype,
    snapshot,
    zoo_variant,
)

F64 = np.float64
FLOATS = (np.float32, np.float64)
REDUCTIONS = ("none", "sum", "mean")
PRIMITIVES = ("logsumexp", "softmax", "log_softmax")
INT_DTYPES = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
CLASS_COUNTS = (1, 2, 3, 7, 64, 1000, 5000)


def _logits_shapes():
    shapes = []
    for c in CLASS_COUNTS:
        shapes += [(c,), (1, c), (0, c), (3, c), (17, c), (2, 3, c)]
        if c <= 1000:
            shapes.append((1000, c))
    return shapes


LOGITS_SHAPES = _logits_shapes()


def shape_id(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def dt_id(dtype):
    return np.dtype(dtype).name


def random_targets(rng, lead, n_classes, ignore_index=None, frac_ignored=0.25):
    """Class indices of shape lead (int64), about frac_ignored of them set to ignore_index (if given)."""
    t = rng.integers(0, n_classes, size=lead).astype(np.int64)
    if ignore_index is not None and t.size:
        mask = rng.random(lead) < frac_ignored
        t = np.where(mask, ignore_index, t)
    return t


def random_probs(rng, shape):
    p = rng.random(shape) + 0.01
    return p / p.sum(axis=-1, keepdims=True)


def as_target(t):
    """A scalar target for (C,) logits, the array otherwise."""
    t = np.asarray(t)
    return t[()] if t.ndim == 0 else t


# ---- oracles in float64 ---------------------------------------------------------------------------------------

def oracle_primitive(name, x, **kw):
    return getattr(R, name)(np.asarray(x).astype(F64), **kw)


def oracle_class(func, logits, target, **kw):
    """The float64 truth (loss, grad) of cross_entropy / nll_loss for the values fastloss computes with:
    logits (and probability targets) rounded to the compute dtype, then exact in float64. Ignored rows get a
    zero gradient (API.md), also when every row is ignored (the oracle divides 0 by 0 there)."""
    x = np.asarray(logits)
    cdt = result_dtype(x.dtype)
    x64 = x.astype(cdt).astype(F64)
    t = np.asarray(target)
    prob = t.shape == x.shape and t.dtype.kind == "f"
    if prob:
        t = t.astype(cdt).astype(F64)
    with np.errstate(invalid="ignore", divide="ignore"):  # the oracle's 0/0 when no row counts
        if func == "cross_entropy":
            loss, grad = R.cross_entropy(x64, t, **kw), R.cross_entropy_grad(x64, t, **kw)
        else:
            loss, grad = R.nll_loss_and_grad(x64, t, **kw)
    if not prob:
        keep = t.reshape(-1).astype(np.int64) != kw.get("ignore_index", -100)
        grad = np.array(grad).reshape(-1, x.shape[-1])
        grad[~keep] = 0.0
        grad = grad.reshape(x.shape)
    return loss, grad


def grad_scale(logits, target, *, weight=None, sample_weight=None, ignore_index=-100, reduction="mean", **_):
    """The scale of the terms of a class-loss gradient: max sample weight x max class weight (/ the mean's
    divisor) over the rows that count; 0 when no row counts (the gradient is then exactly 0)."""
    x = np.asarray(logits)
    n_classes, lead = x.shape[-1], x.shape[:-1]
    w = np.ones(n_classes) if weight is None else np.abs(np.asarray(weight, F64))
    sw = np.ones(lead) if sample_weight is None else np.broadcast_to(np.asarray(sample_weight, F64), lead)
    sw = np.abs(sw).reshape(-1)
    t = np.asarray(target)
    if t.shape == x.shape and t.dtype.kind == "f":
        keep, den = np.ones(sw.shape, bool), np.sum(sw)
    else:
        t = t.reshape(-1).astype(np.int64)
        keep = t != ignore_index
        den = np.sum(np.where(keep, w[np.where(keep, t, 0)] * sw, 0.0))
    if not keep.any():
        return 0.0
    scale = float(np.max(sw[keep]) * np.max(w))
    return scale / abs(den) if reduction == "mean" else scale


CLASS_FUNCS = {
    "cross_entropy": (fl.cross_entropy, fl.cross_entropy_and_grad),
    "nll_loss": (fl.nll_loss, fl.nll_loss_and_grad),
}


def check_class_loss(func, logits, target, err_msg="", **kw):
    """Calls NAME and NAME_and_grad; checks dtypes, shapes, types, the two losses identical, and both against the
    oracle. Returns (loss, grad)."""
    f, fg = CLASS_FUNCS[func]
    x = np.asarray(logits)
    dt = result_dtype(x.dtype)
    loss = f(logits, target, **kw)
    loss2, grad = fg(logits, target, **kw)
    assert_identical(loss2, loss, "loss of _and_grad differs from the loss. " + err_msg)
    red = kw.get("reduction", "mean")
    if red == "none":
        assert isinstance(loss, np.ndarray) and loss.shape == x.shape[:-1] and loss.dtype == dt
    else:
        assert isinstance(loss, dt.type) and not isinstance(loss, np.ndarray), type(loss)
    assert isinstance(grad, np.ndarray) and grad.shape == x.shape and grad.dtype == dt
    e_loss, e_grad = oracle_class(func, logits, target, **kw)
    assert_close(loss, e_loss, kind="value", err_msg="loss. " + err_msg)
    assert_close(grad, e_grad, kind="grad", scale=grad_scale(logits, target, **kw), err_msg="grad. " + err_msg)
    return loss, grad


# ---- primitives against the oracle --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("shape", LOGITS_SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_vs_oracle(rng, name, shape, dtype):
    x = random_logits(rng, shape, dtype)
    res = getattr(fl, name)(x)
    if name == "logsumexp":
        if len(shape) == 1:
            assert isinstance(res, np.dtype(dtype).type) and not isinstance(res, np.ndarray)
        assert np.shape(res) == shape[:-1]
    else:
        assert res.shape == shape
    assert np.asarray(res).dtype == dtype
    assert_close(res, oracle_primitive(name, x))


@pytest.mark.parametrize("in_dtype", (np.float16,) + INT_DTYPES + (np.bool_,), ids=dt_id)
@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_input_dtypes(rng, name, in_dtype):
    """float16 is computed as float32 (exact conversion), integers and bools as float64."""
    x = random_logits(rng, (5, 7), in_dtype)
    dt = result_dtype(in_dtype)
    f = getattr(fl, name)
    res = f(x)
    assert res.dtype == dt
    assert_identical(res, f(x.astype(dt)))
    assert_close(res, oracle_primitive(name, x))


AXES = (0, 1, 2, -1, -2, -3, (0, 2), (1, 2), (2, 0), (0, 1, 2), (-1, 0), None)


@pytest.mark.parametrize("keepdims", (False, True))
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
def test_logsumexp_axis(rng, dtype, axis, keepdims):
    x = random_logits(rng, (3, 4, 5), dtype)
    res = fl.logsumexp(x, axis=axis, keepdims=keepdims)
    exp = R.logsumexp(x.astype(F64), axis=axis, keepdims=keepdims)
    assert np.shape(res) == np.shape(exp) and np.asarray(res).dtype == dtype
    assert_close(res, exp)
    sp = pytest.importorskip("scipy.special")
    assert_close(res, sp.logsumexp(x.astype(F64), axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
def test_softmax_axis(rng, name, dtype, axis):
    x = random_logits(rng, (3, 4, 5), dtype)
    res = getattr(fl, name)(x, axis=axis)
    assert res.shape == x.shape and res.dtype == dtype
    assert_close(res, getattr(R, name)(x.astype(F64), axis=axis))
    sp = pytest.importorskip("scipy.special")
    assert_close(res, getattr(sp, name)(x.astype(F64), axis=axis))


@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_axis_out_of_range(name):
    with pytest.raises(ValueError):
        getattr(fl, name)(np.zeros((2, 3)), axis=2)
    with pytest.raises(ValueError):
        getattr(fl, name)(np.zeros((2, 3)), axis=(0, 0))


# ---- out= ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", (-1, 0, (0, 2), None), ids=str)
@pytest.mark.parametrize("in_dtype", (np.float16, np.float32, np.float64, np.int32), ids=dt_id)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
def test_softmax_out(rng, name, in_dtype, axis):
    x = random_logits(rng, (3, 4, 5), in_dtype)
    f = getattr(fl, name)
    out = np.full(x.shape, -7.0, dtype=result_dtype(in_dtype))
    res = f(x, axis=axis, out=out)
    assert res is out
    assert_identical(out, f(x, axis=axis))


@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
def test_softmax_out_is_input(rng, name):
    """out=x computes in place (a common idiom); the result equals the out-of-place one."""
    x = random_logits(rng, (6, 9), np.float64)
    expected = getattr(fl, name)(x)
    res = getattr(fl, name)(x, out=x)
    assert res is x
    assert_identical(x, expected)


def _bad_outs(shape, dtype):
    ro = np.zeros(shape, dtype)
    ro.flags.writeable = False
    wide = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
    return [
        ("shape", np.zeros(shape[:-1] + (shape[-1] + 1,), dtype), ValueError),
        ("shape_transposed", np.zeros(shape[::-1], dtype), ValueError),
        ("dtype", np.zeros(shape, np.float32 if dtype == np.float64 else np.float64), TypeError),
        ("dtype_float16", np.zeros(shape, np.float16), TypeError),
        ("non_contiguous", wide[..., ::2], ValueError),
        ("fortran", np.asfortranarray(np.zeros(shape, dtype)), ValueError),
        ("read_only", ro, ValueError),
        ("list", np.zeros(shape, dtype).tolist(), TypeError),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _bad_outs((4, 5), np.float64)])
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
def test_softmax_bad_out(rng, name, dtype, case):
    x = random_logits(rng, (4, 5), dtype)
    (_, out, exc), = [c for c in _bad_outs(x.shape, dtype) if c[0] == case]
    if isinstance(out, np.ndarray):
        if out.flags.writeable:
            out[...] = 42.0
        before = out.copy()
    with pytest.raises(exc):
        getattr(fl, name)(x, out=out)
    if isinstance(out, np.ndarray):
        assert_identical(out, before, "out was written by a failing call")


# ---- edge values ---------------------------------------------------------------------------------------------

inf, nan = np.inf, np.nan


def edge_rows(dtype):
    """Named rows of 4 values each (huge = 1e38 for float32, 1e308 for float64)."""
    h = 1e38 if np.dtype(dtype) == np.float32 else 1e308
    return {
        "pos_inf": [inf, 1.0, 2.0, 3.0],
        "neg_inf": [-inf, 1.0, 2.0, 3.0],
        "all_neg_inf": [-inf, -inf, -inf, -inf],
        "nan": [1.0, nan, 2.0, 3.0],
        "nan_and_inf": [inf, nan, -inf, 0.0],
        "pos_and_neg_inf": [inf, -inf, 0.0, 1.0],
        "two_pos_inf": [inf, inf, 0.0, 0.0],
        "equal": [5.0, 5.0, 5.0, 5.0],
        "huge_spread": [h, -h, 0.0, 1.0],
        "huge_tie": [h, h, 0.0, -h],
        "neg_huge_all_equal": [-h, -h, -h, -h],
        "tiny": [1e-30, -1e-30, 0.0, 1e-38],
    }


EDGE_NAMES = tuple(edge_rows(np.float64))
def _edge_params(names):
    return [pytest.param(name, row, id=f"{name}-{row}") for name in names for row in EDGE_NAMES]


@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("name, row", _edge_params(PRIMITIVES))
def test_primitive_edge_rows(name, row, dtype):
    rows = edge_rows(dtype)
    x = np.array([rows[row], rows["equal"], rows[row][::-1]], dtype=dtype)  # the edge row next to normal rows
    res = getattr(fl, name)(x)
    assert_close(res, oracle_primitive(name, x))
    if name == "log_softmax":
        return  # scipy gives [nan, -inf, -inf, -inf] for log_softmax([inf, 1, 2, 3]); API.md and torch: all nan
    sp = pytest.importorskip("scipy.special")
    with np.errstate(all="ignore"):
        assert_close(res, getattr(sp, name)(x.astype(F64), axis=-1))


@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("name, row", _edge_params(("cross_entropy", "cross_entropy_grad", "cross_entropy_prob",
                                                    "nll_loss")))
def test_class_loss_edge_rows(name, row, dtype):
    """Each edge row with each target 0..3 (so the target hits the inf, the nan, the huge value...)."""
    x = np.array([edge_rows(dtype)[row]] * 4, dtype=dtype)
    t = np.arange(4)
    with np.errstate(all="ignore"):
        if name == "cross_entropy_prob":
            q = np.eye(4, dtype=dtype)[[1, 2, 3, 0]] * 0.7 + 0.3 / 4  # no zero probability
            loss, grad = fl.cross_entropy_and_grad(x, q, reduction="none")
            e_loss, e_grad = oracle_class("cross_entropy", x, q, reduction="none")
        else:
            func = "nll_loss" if name == "nll_loss" else "cross_entropy"
            loss, grad = CLASS_FUNCS[func][1](x, t, reduction="none")
            e_loss, e_grad = oracle_class(func, x, t, reduction="none")
    if name != "cross_entropy_grad":
        assert_close(loss, e_loss)
    if name != "cross_entropy":
        # rows with a nan or +inf logit have a nan gradient (as torch); others row by row
        for i in range(4):
            assert_close(grad[i], e_grad[i], kind="grad", scale=1.0, err_msg=f"row {i}")


def test_logsumexp_no_classes():
    """logsumexp over an empty axis is -inf (scipy: log of an empty sum)."""
    for dtype in FLOATS:
        r = fl.logsumexp(np.zeros((3, 0), dtype))
        assert r.dtype == dtype and r.shape == (3,) and np.all(r == -np.inf)
        r = fl.logsumexp(np.zeros((0,), dtype))
        assert r == -np.inf and np.asarray(r).dtype == dtype
        r = fl.logsumexp(np.zeros((2, 0, 4), dtype), axis=1)
        assert r.shape == (2, 4) and np.all(r == -np.inf)
        r = fl.logsumexp(np.zeros((3, 0), dtype), keepdims=True)
        assert r.shape == (3, 1) and np.all(r == -np.inf)
        assert fl.logsumexp(np.zeros((3, 0), dtype), axis=None) == -np.inf


@pytest.mark.parametrize("shape", ((0, 5), (3, 0), (0, 0), (2, 0, 3)), ids=shape_id)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
def test_softmax_empty(name, shape):
    for dtype in FLOATS:
        r = getattr(fl, name)(np.zeros(shape, dtype))
        assert r.shape == shape and r.dtype == dtype
        out = np.zeros(shape, dtype)
        assert getattr(fl, name)(np.zeros(shape, dtype), out=out) is out


def test_logsumexp_empty_batch():
    r = fl.logsumexp(np.zeros((0, 5), np.float32))
    assert r.shape == (0,) and r.dtype == np.float32


# ---- class losses against the oracle ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("shape", LOGITS_SHAPES, ids=shape_id)
@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_class_loss_shapes(rng, func, shape, dtype):
    x = random_logits(rng, shape, dtype)
    if func == "nll_loss":
        x = (x - 10.0).astype(dtype)  # log-probabilities need not be normalised
    t = as_target(random_targets(rng, shape[:-1], shape[-1], ignore_index=-100 if len(shape) > 1 else None))
    for reduction in REDUCTIONS:
        check_class_loss(func, x, t, reduction=reduction, err_msg=reduction)


@pytest.mark.parametrize("in_dtype", (np.float16, np.int8, np.int64, np.uint8, np.bool_), ids=dt_id)
@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_class_loss_logits_dtypes(rng, func, in_dtype):
    x = random_logits(rng, (6, 5), in_dtype)
    t = random_targets(rng, (6,), 5)
    dt = result_dtype(in_dtype)
    loss, grad = check_class_loss(func, x, t, reduction="none")
    assert_identical(loss, CLASS_FUNCS[func][0](x.astype(dt), t, reduction="none"))
    assert_identical(grad, CLASS_FUNCS[func][1](x.astype(dt), t, reduction="none")[1])


@pytest.mark.parametrize("tdtype", INT_DTYPES, ids=dt_id)
@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_target_int_dtypes(rng, func, tdtype):
    """Every integer dtype of targets gives the bits of int64 targets; ignore_index works in each (a value the
    dtype can hold: -100 for signed types, 100 for unsigned)."""
    x = random_logits(rng, (2, 9, 7), np.float64)
    ignore = -100 if np.dtype(tdtype).kind == "i" else 100
    t64 = random_targets(rng, (2, 9), 7, ignore_index=ignore)
    t = t64.astype(tdtype)
    for reduction in REDUCTIONS:
        loss, grad = check_class_loss(func, x, t, reduction=reduction, ignore_index=ignore)
        loss64, grad64 = CLASS_FUNCS[func][1](x, t64, reduction=reduction, ignore_index=ignore)
        assert_identical(loss, loss64)
        assert_identical(grad, grad64)


def test_targets_python_objects(rng):
    x = random_logits(rng, (4, 3), np.float64)
    t = [0, 2, 1, 2]
    assert_identical(fl.cross_entropy(x, t), fl.cross_entropy(x, np.array(t)))
    assert_identical(fl.nll_loss(x, t), fl.nll_loss(x, np.array(t)))
    x1 = x[0]
    assert_identical(fl.cross_entropy(x1, 2), fl.cross_entropy(x1, np.int64(2)))
    assert_identical(fl.cross_entropy(x1, 2, reduction="none"), fl.cross_entropy(x, np.array(t) * 0 + 2,
                                                                                   reduction="none")[0])


def _sample_weight(rng, kind, lead):
    if kind == "none":
        return None
    if kind == "full":
        return rng.uniform(0.1, 2.0, lead)
    if kind == "broadcast_last":
        return rng.uniform(0.1, 2.0, lead[-1:])
    if kind == "broadcast_first":
        return rng.uniform(0.1, 2.0, lead[:1] + (1,) * (len(lead) - 1))
    if kind == "scalar":
        return 1.7
    raise ValueError(kind)


IGNORE_CASES = {"default": -100, "custom_neg": -1, "custom_255": 255, "in_range_0": 0}
SMOOTHINGS = (0.0, 0.1, 1.0)


@pytest.mark.parametrize("smoothing", SMOOTHINGS, ids=str)
@pytest.mark.parametrize("ignore", tuple(IGNORE_CASES))
@pytest.mark.parametrize("sw", ("none", "full", "broadcast_last"))
@pytest.mark.parametrize("weighted", (False, True), ids=("no_weight", "weight"))
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
def test_cross_entropy_options(rng, dtype, weighted, sw, ignore, smoothing):
    shape = (2, 6, 7)
    x = random_logits(rng, shape, dtype)
    ii = IGNORE_CASES[ignore]
    t = random_targets(rng, shape[:-1], shape[-1], ignore_index=ii)
    kw = dict(weight=rng.uniform(0.2, 2.0, 7) if weighted else None, sample_weight=_sample_weight(rng, sw, shape[:-1]),
              label_smoothing=smoothing)
    if ignore != "default":
        kw["ignore_index"] = ii
    for reduction in REDUCTIONS:
        check_class_loss("cross_entropy", x, t, reduction=reduction, err_msg=reduction, **kw)


@pytest.mark.parametrize("ignore", tuple(IGNORE_CASES))
@pytest.mark.parametrize("sw", ("none", "full", "broadcast_last"))
@pytest.mark.parametrize("weighted", (False, True), ids=("no_weight", "weight"))
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
def test_nll_loss_options(rng, dtype, weighted, sw, ignore):
    shape = (2, 6, 7)
    x = (random_logits(rng, shape, dtype) - 5).astype(dtype)
    ii = IGNORE_CASES[ignore]
    t = random_targets(rng, shape[:-1], shape[-1], ignore_index=ii)
    kw = dict(weight=rng.uniform(0.2, 2.0, 7) if weighted else None, sample_weight=_sample_weight(rng, sw, shape[:-1]))
    if ignore != "default":
        kw["ignore_index"] = ii
    for reduction in REDUCTIONS:
        check_class_loss("nll_loss", x, t, reduction=reduction, err_msg=reduction, **kw)


@pytest.mark.parametrize("smoothing", SMOOTHINGS, ids=str)
@pytest.mark.parametrize("sw", ("none", "full", "broadcast_first"))
@pytest.mark.parametrize("weighted", (False, True), ids=("no_weight", "weight"))
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
def test_cross_entropy_prob_options(rng, dtype, weighted, sw, smoothing):
    shape = (3, 5, 7)
    x = random_logits(rng, shape, dtype)
    q = random_probs(rng, shape).astype(dtype)
    q[0, 0] = np.eye(7)[3]  # a one-hot row (zeros in q)
    kw = dict(weight=rng.uniform(0.2, 2.0, 7) if weighted else None, sample_weight=_sample_weight(rng, sw, shape[:-1]),
              label_smoothing=smoothing)
    for reduction in REDUCTIONS:
        check_class_loss("cross_entropy", x, q, reduction=reduction, err_msg=reduction, **kw)
        # ignore_index does not apply to probability targets
        assert_identical(fl.cross_entropy(x, q, ignore_index=0, reduction=reduction, **kw),
                         fl.cross_entropy(x, q, reduction=reduction, **kw))


@pytest.mark.parametrize("shape", ((7,), (1, 7), (0, 7), (17, 64), (2, 3, 5), (3, 1000)), ids=shape_id)
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
def test_cross_entropy_prob_shapes(rng, dtype, shape):
    x = random_logits(rng, shape, dtype)
    q = random_probs(rng, shape)  # float64 targets with float32 logits: converted to the logits' dtype
    for reduction in REDUCTIONS:
        check_class_loss("cross_entropy", x, q, reduction=reduction)


@pytest.mark.parametrize("sw", ("full", "broadcast_last", "broadcast_first", "scalar"))
@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_sample_weight_broadcast(rng, func, sw):
    """A broadcastable sample_weight gives the bits of its broadcast full-shape version."""
    x = random_logits(rng, (3, 4, 5), np.float64)
    t = random_targets(rng, (3, 4), 5, ignore_index=-100)
    s = _sample_weight(rng, sw, (3, 4))
    full = np.broadcast_to(np.asarray(s, F64), (3, 4)).copy()
    for reduction in REDUCTIONS:
        loss, grad = check_class_loss(func, x, t, sample_weight=s, reduction=reduction)
        loss_f, grad_f = CLASS_FUNCS[func][1](x, t, sample_weight=full, reduction=reduction)
        assert_identical(loss, loss_f)
        assert_identical(grad, grad_f)


def test_ignored_rows_count_for_nothing(rng):
    """Changing the logits of an ignored row changes neither the loss nor the gradient of the other rows; the
    mean divides by the rows that count."""
    x = random_logits(rng, (5, 4), np.float64)
    t = np.array([1, -100, 3, -100, 0])
    y = x.copy()
    y[[1, 3]] = [[1e3, -1e3, np.inf, 0.0], [np.nan, 1.0, 2.0, 3.0]]
    for reduction in ("sum", "mean"):
        l1, g1 = fl.cross_entropy_and_grad(x, t, reduction=reduction)
        l2, g2 = fl.cross_entropy_and_grad(y, t, reduction=reduction)
        assert_identical(l1, l2)
        assert_identical(g1, g2)
        assert np.all(g2[[1, 3]] == 0)
    keep = t != -100
    assert fl.cross_entropy(x, t) == pytest.approx(fl.cross_entropy(x[keep], t[keep]), rel=1e-15)


@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_all_ignored(func, dtype):
    """Every row ignored: mean is nan (0/0, as torch), sum 0, none all 0; the gradient is all 0."""
    x = np.arange(12, dtype=dtype).reshape(4, 3)
    t = np.full(4, -100)
    f, fg = CLASS_FUNCS[func]
    for reduction, expected in (("mean", np.nan), ("sum", 0.0)):
        loss, grad = fg(x, t, reduction=reduction)
        assert isinstance(loss, np.dtype(dtype).type)
        assert_close(loss, expected)
        assert_identical(grad, np.zeros_like(x))
    assert_identical(f(x, t, reduction="none"), np.zeros(4, dtype))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("kind", ("cross_entropy", "cross_entropy_prob", "nll_loss"))
def test_grad_out(rng, kind, dtype, reduction):
    """grad_out receives the gradient and is the returned object."""
    x = random_logits(rng, (2, 5, 6), dtype)
    t = random_probs(rng, x.shape) if kind == "cross_entropy_prob" else random_targets(rng, (2, 5), 6, -100)
    fg = CLASS_FUNCS["nll_loss" if kind == "nll_loss" else "cross_entropy"][1]
    kw = dict(weight=np.linspace(0.5, 2, 6), reduction=reduction)
    g = np.full(x.shape, 99.0, dtype)
    loss, grad = fg(x, t, grad_out=g, **kw)
    assert grad is g
    loss2, grad2 = fg(x, t, **kw)
    assert_identical(loss, loss2)
    assert_identical(g, grad2)


@pytest.mark.parametrize("n_threads", (1, 2))
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("kind", ("cross_entropy", "cross_entropy_prob", "nll_loss"))
def test_class_loss_n_threads(rng, kind, dtype, n_threads):
    """Big enough (400 x 200) for the kernels to start 2 threads."""
    x = random_logits(rng, (400, 200), dtype)
    t = random_probs(rng, x.shape) if kind == "cross_entropy_prob" else random_targets(rng, (400,), 200, -100)
    func = "nll_loss" if kind == "nll_loss" else "cross_entropy"
    kw = dict(sample_weight=rng.uniform(0.5, 1.5, 400), n_threads=n_threads)
    for reduction in REDUCTIONS:
        loss, grad = CLASS_FUNCS[func][1](x, t, reduction=reduction, **kw)
        kw_o = dict(kw)
        del kw_o["n_threads"]
        e_loss, e_grad = oracle_class(func, x, t, reduction=reduction, **kw_o)
        assert_close(loss, e_loss)
        assert_close(grad, e_grad, kind="grad", scale=grad_scale(x, t, reduction=reduction, **kw_o))


@pytest.mark.parametrize("n_threads", (1, 2))
@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_n_threads(rng, name, n_threads):
    x = random_logits(rng, (400, 200), np.float32)
    assert_close(getattr(fl, name)(x, n_threads=n_threads), oracle_primitive(name, x))


# ---- large offsets: log_softmax_j = (x_j - m) - log s, not x_j - (m + log s), which loses log s ---------------

@pytest.mark.parametrize("name", ("logsumexp", "softmax", "log_softmax", "cross_entropy", "cross_entropy_prob",
                                  "cross_entropy_grad"))
@pytest.mark.parametrize("dtype, offset", ((np.float64, 1e6), (np.float32, 1e12)), ids=("f64+1e6", "f32+1e12"))
def test_large_offset_logits(rng, name, dtype, offset):
    x = (rng.standard_normal((8, 50)) * 3 + offset).astype(dtype)
    t = random_targets(rng, (8,), 50)
    if name in PRIMITIVES:
        assert_close(getattr(fl, name)(x), oracle_primitive(name, x))
        return
    target = random_probs(rng, x.shape) if name == "cross_entropy_prob" else t
    loss, grad = fl.cross_entropy_and_grad(x, target, reduction="none")
    e_loss, e_grad = oracle_class("cross_entropy", x, target, reduction="none")
    if name == "cross_entropy_grad":
        assert_close(grad, e_grad, kind="grad", scale=1.0)
    else:
        assert_close(loss, e_loss)


# ---- memory layouts: the array zoo ----------------------------------------------------------------------------

def _zoo_logits(rng, dtype, shape=(4, 3, 6)):
    """Random logits with an inf, a -inf and a nan in some rows."""
    x = random_logits(rng, shape, dtype).reshape(-1, shape[-1])
    x[1, :2] = [np.inf, 1]
    x[2, 3] = -np.inf
    x[3, 0] = np.nan
    return x.reshape(shape)


@pytest.mark.parametrize("axis", (-1, 0, (0, 1), None), ids=str)
@pytest.mark.parametrize("shape", ((4, 3, 6), (9, 37)), ids=shape_id)
@pytest.mark.parametrize("dtype", (np.float16, np.float32, np.float64, np.int64), ids=dt_id)
@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_layouts(rng, name, dtype, shape, axis):
    x = _zoo_logits(rng, np.float64, shape) if dtype != np.int64 else random_logits(rng, shape, dtype)
    x = x.astype(dtype)
    f = getattr(fl, name)
    expected = f(x, axis=axis)
    for layout, v in array_zoo(x):
        before = snapshot(v)
        assert_identical(f(v, axis=axis), expected, f"layout {layout}")
        assert_unmodified(v, before, f"{layout} input")


@pytest.mark.parametrize("shape", ((4, 3, 6), (9, 37)), ids=shape_id)
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("func, arg", [(f, a) for f in ("cross_entropy", "nll_loss")
                                       for a in ("logits", "target", "weight", "sample_weight", "prob_target")
                                       if (f, a) != ("nll_loss", "prob_target")])
def test_class_loss_layouts(rng, func, arg, dtype, shape):
    x = _zoo_logits(rng, dtype, shape)
    lead, n_classes = shape[:-1], shape[-1]
    args = dict(logits=x, weight=rng.uniform(0.5, 2, n_classes), sample_weight=rng.uniform(0.5, 2, lead))
    if arg == "prob_target":
        args["target"] = random_probs(rng, x.shape).astype(dtype)
    else:
        args["target"] = random_targets(rng, lead, n_classes, ignore_index=-100)
    f, fg = CLASS_FUNCS[func]
    smoothing = dict(label_smoothing=0.1) if func == "cross_entropy" else {}
    key = "target" if arg == "prob_target" else arg

    def call(a, grad):
        kw = dict(weight=a["weight"], sample_weight=a["sample_weight"], reduction="sum", **smoothing)
        return fg(a["logits"], a["target"], **kw) if grad else f(a["logits"], a["target"], reduction="none",
                                                                   **{k: v for k, v in kw.items() if
                                                                      k != "reduction"})

    expected = call(args, True), call(args, False)
    for layout, v in array_zoo(args[key]):
        before = snapshot(v)
        a = dict(args)
        a[key] = v
        (loss, grad), rows = call(a, True), call(a, False)
        assert_identical(loss, expected[0][0], f"{arg} in layout {layout}")
        assert_identical(grad, expected[0][1], f"{arg} in layout {layout}")
        assert_identical(rows, expected[1], f"{arg} in layout {layout}")
        assert_unmodified(v, before, f"{arg} in layout {layout}")


@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("n_classes", (3, 40))
def test_zero_stride_rows(rng, n_classes, dtype):
    """Broadcast logits (every row the same memory, row stride 0) give the bits of the materialised copy."""
    row = random_logits(rng, (n_classes,), dtype)
    xb = np.broadcast_to(row, (20, n_classes))
    xc = np.ascontiguousarray(xb)
    t = random_targets(rng, (20,), n_classes, ignore_index=-100)
    for name in PRIMITIVES:
        assert_identical(getattr(fl, name)(xb), getattr(fl, name)(xc), name)
    for func in CLASS_FUNCS:
        for got, exp in zip(CLASS_FUNCS[func][1](xb, t, reduction="sum"), CLASS_FUNCS[func][1](xc, t, reduction="sum")):
            assert_identical(got, exp, func)
        assert_identical(CLASS_FUNCS[func][0](xb, t, reduction="none"), CLASS_FUNCS[func][0](xc, t, reduction="none"))


@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_target_layouts_every_int_dtype(rng, func):
    x = random_logits(rng, (5, 4, 3), np.float32)
    t64 = random_targets(rng, (5, 4), 3)
    expected = CLASS_FUNCS[func][1](x, t64, reduction="sum")
    for tdtype in INT_DTYPES:
        for layout, v in array_zoo(t64.astype(tdtype)):
            loss, grad = CLASS_FUNCS[func][1](x, v, reduction="sum")
            assert_identical(loss, expected[0], f"{np.dtype(tdtype)} {layout}")
            assert_identical(grad, expected[1], f"{np.dtype(tdtype)} {layout}")


@pytest.mark.parametrize("dtype", (np.float16, np.float32), ids=dt_id)
@pytest.mark.parametrize("name", PRIMITIVES + ("cross_entropy", "nll_loss"))
def test_byteswapped_keeps_float32(rng, name, dtype):
    """A byte-swapped float16/float32 array computes in float32, bit for bit as the native one."""
    x = random_logits(rng, (4, 6), dtype)
    xs = zoo_variant(x, "byteswapped")
    if name in PRIMITIVES:
        assert_identical(getattr(fl, name)(xs), getattr(fl, name)(x))
    else:
        t = random_targets(rng, (4,), 6)
        (loss, grad), (e_loss, e_grad) = CLASS_FUNCS[name][1](xs, t), CLASS_FUNCS[name][1](x, t)
        assert_identical(loss, e_loss)
        assert_identical(grad, e_grad)


# ---- gradients by finite differences ------------------------------------------------------------------------

def numeric_grad(f, x, h=1e-6):
    """Central differences of the scalar f at x (float64)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


def check_fd(fg, x, target, **kw):
    """grad of NAME_and_grad against central differences of its loss (the sum of the losses for "none")."""
    def scalar(z):
        return float(np.sum(fg(z, target, **kw)[0]))

    _, grad = fg(x, target, **kw)
    num = numeric_grad(scalar, x)
    scale = max(1.0, float(np.max(np.abs(num))))
    err = np.max(np.abs(grad - num))
    assert err <= 1e-7 * scale, f"gradient vs finite differences: max error {err:.3g}\n{grad}\n{num}"
    return grad


@pytest.mark.parametrize("smoothing", SMOOTHINGS, ids=str)
@pytest.mark.parametrize("ignore", ("default", "in_range_0"))
@pytest.mark.parametrize("sw", ("none", "full"))
@pytest.mark.parametrize("weighted", (False, True), ids=("no_weight", "weight"))
def test_cross_entropy_grad_fd(rng, weighted, sw, ignore, smoothing):
    x = random_logits(rng, (2, 2, 4), np.float64)
    ii = IGNORE_CASES[ignore]
    t = np.array([[1, ii], [3, 0]])
    kw = dict(weight=rng.uniform(0.2, 2, 4) if weighted else None, sample_weight=_sample_weight(rng, sw, (2, 2)),
              label_smoothing=smoothing, ignore_index=ii)
    for reduction in REDUCTIONS:
        grad = check_fd(fl.cross_entropy_and_grad, x, t, reduction=reduction, **kw)
        assert np.all(grad[t == ii] == 0)


@pytest.mark.parametrize("smoothing", SMOOTHINGS, ids=str)
@pytest.mark.parametrize("sw", ("none", "full"))
@pytest.mark.parametrize("weighted", (False, True), ids=("no_weight", "weight"))
def test_cross_entropy_prob_grad_fd(rng, weighted, sw, smoothing):
    x = random_logits(rng, (3, 5), np.float64)
    q = random_probs(rng, (3, 5))
    q[1] = [0, 0, 1, 0, 0]
    kw = dict(weight=rng.uniform(0.2, 2, 5) if weighted else None, sample_weight=_sample_weight(rng, sw, (3,)),
              label_smoothing=smoothing)
    for reduction in REDUCTIONS:
        check_fd(fl.cross_entropy_and_grad, x, q, reduction=reduction, **kw)


@pytest.mark.parametrize("ignore", ("default", "in_range_0"))
@pytest.mark.parametrize("sw", ("none", "full"))
@pytest.mark.parametrize("weighted", (False, True), ids=("no_weight", "weight"))
def test_nll_loss_grad_fd(rng, weighted, sw, ignore):
    x = random_logits(rng, (2, 2, 4), np.float64) - 3
    ii = IGNORE_CASES[ignore]
    t = np.array([[1, ii], [3, 2]])
    kw = dict(weight=rng.uniform(0.2, 2, 4) if weighted else None, sample_weight=_sample_weight(rng, sw, (2, 2)),
              ignore_index=ii)
    for reduction in REDUCTIONS:
        grad = check_fd(fl.nll_loss_and_grad, x, t, reduction=reduction, **kw)
        assert np.all(grad[t == ii] == 0)


def test_single_sample_grad_fd(rng):
    """(C,) logits with a scalar target: one sample."""
    x = random_logits(rng, (6,), np.float64)
    for reduction in REDUCTIONS:
        check_fd(fl.cross_entropy_and_grad, x, 4, reduction=reduction, label_smoothing=0.1)
        check_fd(fl.nll_loss_and_grad, x, 4, reduction=reduction)


# ---- float32 accuracy on long rows ------------------------------------------------------------------------

WIDE = 262_144


@pytest.fixture(scope="module")
def wide_logits():
    rng = np.random.default_rng(20240601)
    x = (rng.standard_normal((8, WIDE)) * 3).astype(np.float32)
    t = rng.integers(0, WIDE, 8)
    return x, t


@pytest.mark.parametrize("smoothing", (0.0, 0.1), ids=str)
@pytest.mark.parametrize("rows", (1, 8))
def test_float32_accuracy_wide_rows(wide_logits, rows, smoothing):
    """float32 cross_entropy over 262,144 classes is within 4 float32 eps of the float64 result (relative to
    max(1, |loss|)): the row sums accumulate in float64."""
    x, t = wide_logits[0][:rows], wide_logits[1][:rows]
    x64 = x.astype(F64)
    for reduction in ("mean", "sum"):
        got = fl.cross_entropy(x, t, label_smoothing=smoothing, reduction=reduction)
        exp = R.cross_entropy(x64, t, label_smoothing=smoothing, reduction=reduction)
        assert isinstance(got, np.float32)
        assert abs(float(got) - exp) <= 4 * F32_EPS * max(1.0, abs(exp)), (got, exp)
    rows_got = fl.cross_entropy(x, t, label_smoothing=smoothing, reduction="none")
    assert_close(rows_got, R.cross_entropy(x64, t, label_smoothing=smoothing, reduction="none"))


@pytest.mark.parametrize("rows", (1, 8))
def test_float32_accuracy_wide_logsumexp(wide_logits, rows):
    x = wide_logits[0][:rows]
    got = fl.logsumexp(x)
    exp = R.logsumexp(x.astype(F64))
    assert np.asarray(got).dtype == np.float32
    assert np.all(np.abs(got.astype(F64) - exp) <= 4 * F32_EPS * np.maximum(1.0, np.abs(exp))), (got, exp)
    got_all = fl.logsumexp(x, axis=None)
    exp_all = R.logsumexp(x.astype(F64), axis=None)
    assert abs(float(got_all) - exp_all) <= 4 * F32_EPS * max(1.0, abs(exp_all))


def test_float32_accuracy_wide_prob_targets(wide_logits):
    x = wide_logits[0][:2]
    q = np.zeros(x.shape, np.float32)
    q[:, :: 1024] = 1.0 / 256
    got = fl.cross_entropy(x, q)
    exp = R.cross_entropy(x.astype(F64), q.astype(F64))
    assert abs(float(got) - exp) <= 4 * F32_EPS * max(1.0, abs(exp)), (got, exp)


@pytest.mark.parametrize("n_classes", (10, 1000))
def test_float32_row_losses_relative_accuracy(simd_level, rng, n_classes):
    """Row-relative accuracy of float32 results (the sum of exps and its log in double): each row's
    cross-entropy and each log_softmax entry stays within 4 float32 eps of the float64 result relative to
    itself, plus an eps absolute (the exps are added a few in float before the double sum: near s = 1, i.e.
    for confident rows, two roundings of up to 2^-24 of s, as in torch's float sums). Rows near uniform (s near
    n_classes) and confident rows (losses down to 1e-5) alike."""
    n = 4 * 16 + 5  # whole tiles and a tail
    x = rng.standard_normal((n, n_classes)) * 3
    t = rng.integers(0, n_classes, n)
    gaps = np.linspace(5, 14, n)  # the target's lead over the rest
    x[np.arange(n), t] = x.max(axis=1) + gaps * (np.arange(n) % 2)
    x[::7] *= 1e-3  # nearly uniform rows
    x32 = x.astype(np.float32)
    x64 = x32.astype(F64)

    def check(got, exp):
        got = np.asarray(got).astype(F64)
        err = np.abs(got - exp)
        assert np.all(err <= 4 * F32_EPS * np.abs(exp) + F32_EPS), np.max(err / (np.abs(exp) + 1e-300))

    exp = R.cross_entropy(x64, t, reduction="none")
    check(fl.cross_entropy(x32, t, reduction="none"), exp)
    check(fl.cross_entropy_and_grad(x32, t, reduction="none")[0], exp)
    check(fl.log_softmax(x32), R.log_softmax(x64))


# ---- torch -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _to_torch(torch, x):
    """A float64 tensor of x's values (float32 data compared with torch's float64 result: the truth)."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=F64)))


def _classes_to_axis1(torch, t):
    """(N, d1, ..., C) -> (N, C, d1, ...), torch's layout for leading dims."""
    return t.movedim(-1, 1) if t.dim() > 2 else t


@pytest.mark.parametrize("smoothing", SMOOTHINGS, ids=str)
@pytest.mark.parametrize("weighted", (False, True), ids=("no_weight", "weight"))
@pytest.mark.parametrize("target_kind, ignore", (("int", "default"), ("int", "in_range_0"), ("prob", "default")))
@pytest.mark.parametrize("shape", ((7,), (9, 7), (2, 3, 2, 7)), ids=shape_id)
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
def test_torch_cross_entropy(torch, rng, dtype, shape, target_kind, weighted, ignore, smoothing):
    """Values and gradients as torch (float64 torch on the same values), classes on axis 1 for torch."""
    F = torch.nn.functional
    x = random_logits(rng, shape, dtype)
    ii = IGNORE_CASES[ignore]
    if target_kind == "prob":
        t = random_probs(rng, shape).astype(dtype)
    else:
        t = as_target(random_targets(rng, shape[:-1], shape[-1], ignore_index=ii if len(shape) > 1 else None))
    w = rng.uniform(0.2, 2, shape[-1]) if weighted else None
    tt = _to_torch(torch, t) if target_kind == "prob" else torch.from_numpy(np.asarray(t, np.int64))
    for reduction in REDUCTIONS:
        kw = dict(weight=w, ignore_index=ii, label_smoothing=smoothing, reduction=reduction)
        loss, grad = fl.cross_entropy_and_grad(x, t, **kw)
        tx = _to_torch(torch, x).requires_grad_(True)
        tl = F.cross_entropy(_classes_to_axis1(torch, tx),
                             _classes_to_axis1(torch, tt) if target_kind == "prob" else tt,
                             weight=None if w is None else torch.from_numpy(w), ignore_index=ii,
                             label_smoothing=smoothing, reduction=reduction)
        tl.sum().backward()
        assert_close(loss, tl.detach().numpy(), err_msg=reduction)
        assert_close(grad, tx.grad.numpy(), kind="grad", scale=grad_scale(x, t, **kw), err_msg=reduction)


@pytest.mark.parametrize("ignore", ("default", "in_range_0"))
@pytest.mark.parametrize("weighted", (False, True), ids=("no_weight", "weight"))
@pytest.mark.parametrize("shape", ((7,), (9, 7), (2, 3, 7)), ids=shape_id)
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
def test_torch_nll_loss(torch, rng, dtype, shape, weighted, ignore):
    F = torch.nn.functional
    x = (random_logits(rng, shape, dtype) - 4).astype(dtype)
    ii = IGNORE_CASES[ignore]
    t = as_target(random_targets(rng, shape[:-1], shape[-1], ignore_index=ii if len(shape) > 1 else None))
    w = rng.uniform(0.2, 2, shape[-1]) if weighted else None
    for reduction in REDUCTIONS:
        loss, grad = fl.nll_loss_and_grad(x, t, weight=w, ignore_index=ii, reduction=reduction)
        tx = _to_torch(torch, x).requires_grad_(True)
        tl = F.nll_loss(_classes_to_axis1(torch, tx), torch.from_numpy(np.asarray(t, np.int64)),
                        weight=None if w is None else torch.from_numpy(w), ignore_index=ii, reduction=reduction)
        tl.sum().backward()
        assert_close(loss, tl.detach().numpy(), err_msg=reduction)
        assert_close(grad, tx.grad.numpy(), kind="grad", err_msg=reduction,
                     scale=grad_scale(x, t, weight=w, ignore_index=ii, reduction=reduction))


@pytest.mark.parametrize("axis", (-1, 0, 1))
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
def test_torch_primitives(torch, rng, dtype, axis):
    x = random_logits(rng, (4, 5, 6), dtype)
    x[0, 0, :] = [np.inf, 1, 2, 3, 4, 5]
    x[1, 1, :] = -np.inf
    tx = _to_torch(torch, x)
    with np.errstate(all="ignore"):
        assert_close(fl.logsumexp(x, axis=axis), torch.logsumexp(tx, dim=axis).numpy())
        assert_close(fl.logsumexp(x, axis=axis, keepdims=True), torch.logsumexp(tx, dim=axis, keepdim=True).numpy())
        assert_close(fl.softmax(x, axis=axis), torch.softmax(tx, dim=axis).numpy())
        assert_close(fl.log_softmax(x, axis=axis), torch.log_softmax(tx, dim=axis).numpy())


def test_torch_logsumexp_tuple_axis(torch, rng):
    x = random_logits(rng, (4, 5, 6), np.float64)
    assert_close(fl.logsumexp(x, axis=(0, 2)), torch.logsumexp(_to_torch(torch, x), dim=(0, 2)).numpy())


EDGE_CASES = {
    # name: (logits, target, reduction, expected value)
    "all_ignored_mean_is_nan": ([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [-100, -100], "mean", np.nan),
    "neg_inf_at_target_is_inf": ([[-np.inf, 2.0, 3.0], [0.0, 0.0, 0.0]], [0, 1], "mean", np.inf),
    "all_neg_inf_row_is_nan": ([[-np.inf, -np.inf, -np.inf], [0.0, 0.0, 0.0]], [0, 1], "mean", np.nan),
    "pos_inf_in_row_is_nan": ([[np.inf, 2.0, 3.0], [0.0, 0.0, 0.0]], [1, 1], "mean", np.nan),
    "pos_inf_at_target_is_nan": ([[np.inf, 2.0, 3.0], [0.0, 0.0, 0.0]], [0, 1], "sum", np.nan),
    "empty_batch_mean_is_nan": (np.zeros((0, 3)), np.zeros(0, np.int64), "mean", np.nan),
    "empty_batch_sum_is_zero": (np.zeros((0, 3)), np.zeros(0, np.int64), "sum", 0.0),
}


@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("case", tuple(EDGE_CASES))
def test_cross_entropy_edge_cases(case, dtype):
    x, t, reduction, expected = EDGE_CASES[case]
    x = np.array(x, dtype)
    got = fl.cross_entropy(x, np.array(t), reduction=reduction)
    assert isinstance(got, np.dtype(dtype).type)
    assert_close(got, expected)


@pytest.mark.parametrize("case", tuple(EDGE_CASES))
def test_torch_cross_entropy_edge_cases(torch, case):
    x, t, reduction, _ = EDGE_CASES[case]
    x = np.array(x, F64)
    expected = torch.nn.functional.cross_entropy(_to_torch(torch, x), torch.from_numpy(np.array(t, np.int64)),
                                                 reduction=reduction)
    assert_close(fl.cross_entropy(x, np.array(t), reduction=reduction), expected.numpy())


# ---- errors --------------------------------------------------------------------------------------------------

def _ce_args(rng, lead=(6,), n_classes=5):
    return random_logits(rng, lead + (n_classes,), np.float64), random_targets(rng, lead, n_classes)


@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
@pytest.mark.parametrize("case", ("positive_1d", "positive_nd", "negative", "uint64_huge", "uint8",
                                  "single_sample", "first_of_several"))
def test_target_out_of_range(rng, func, case):
    """IndexError naming the first offending position and its value; a given grad_out stays untouched."""
    n_classes = 5
    if case == "single_sample":
        x, t, where, value = random_logits(rng, (n_classes,)), 7, None, "7"
    else:
        lead = (3, 4) if case == "positive_nd" else (17,)
        x = random_logits(rng, lead + (n_classes,))
        t = random_targets(rng, lead, n_classes)
        if case == "positive_nd":
            t[2, 3], where, value = 9, r"\b2,\s*3\b", r"\b9\b"
        elif case == "negative":
            t[13], where, value = -3, r"\b13\b", r"-3\b"
        elif case == "uint64_huge":
            t = t.astype(np.uint64)
            t[13], where, value = np.uint64(2 ** 64 - 1), r"\b13\b", "18446744073709551615"
        elif case == "uint8":
            t = t.astype(np.uint8)
            t[13], where, value = 200, r"\b13\b", r"\b200\b"
        elif case == "first_of_several":
            t[[11, 13, 16]], where, value = [8, 7, 6], r"\b11\b", r"\b8\b"
        else:
            t[13], where, value = 7, r"\b13\b", r"\b7\b"
    f, fg = CLASS_FUNCS[func]
    with pytest.raises(IndexError) as info:
        f(x, t)
    msg = str(info.value)
    assert re.search(value, msg), msg
    if where:
        assert re.search(where, msg), msg
    g = np.full(np.shape(x), 42.0)
    for reduction in REDUCTIONS:
        with pytest.raises(IndexError):
            fg(x, t, reduction=reduction, grad_out=g)
    assert np.all(g == 42.0), "grad_out written by a failing call"


@pytest.mark.parametrize("ignore_index", (-1, -2, -100))
@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_uint64_huge_target_is_never_ignored(func, ignore_index):
    """uint64 targets beyond int64 are out of range whatever ignore_index is (they wrap to -1, -2... in int64)."""
    t = np.array([0, 2 ** 64 - 1, 2 ** 64 - 2, 2 ** 64 - 100, 1], np.uint64)
    with pytest.raises(IndexError, match="18446744073709551615"):
        CLASS_FUNCS[func][0](np.zeros((5, 4)), t, ignore_index=ignore_index)
    with pytest.raises(IndexError, match="18446744073709551614"):
        CLASS_FUNCS[func][0](np.zeros((4, 4)), t[[0, 2, 3, 4]], ignore_index=ignore_index)


def test_negative_target_equal_to_custom_ignore_index_is_fine(rng):
    x, t = _ce_args(rng)
    t[2] = -7
    fl.cross_entropy(x, t, ignore_index=-7)
    with pytest.raises(IndexError):
        fl.cross_entropy(x, t)


def _error_cases():
    """(id, function, make(rng) -> (args, kwargs), exception, message patterns)."""
    def ce(**over):
        def make(rng):
            x, t = _ce_args(rng, (2, 3))
            args = dict(logits=x, target=t)
            args.update(over)
            if callable(args.get("logits")):
                args["logits"] = args["logits"](x)
            if callable(args.get("target")):
                args["target"] = args["target"](t)
            return args
        return make

    rows = []
    for func in ("cross_entropy", "nll_loss"):
        rows += [
            (func, "logits_0d", ce(logits=np.float64(1.0), target=np.int64(0)), ValueError, ()),
            (func, "no_classes", ce(logits=np.zeros((2, 3, 0)), target=np.zeros((2, 3), np.int64)), ValueError, ()),
            (func, "no_classes_empty_batch", ce(logits=np.zeros((0, 0)), target=np.zeros(0, np.int64)), ValueError,
             ()),
            (func, "target_shape", ce(target=np.zeros((3, 2), np.int64)), ValueError, (r"\(3, 2\)", r"\(2, 3")),
            (func, "target_shape_1d", ce(target=np.zeros(6, np.int64)), ValueError, (r"\(6,\)", r"\(2, 3")),
            (func, "target_float_lead", ce(target=np.zeros((2, 3))), TypeError, ()),
            (func, "target_bool", ce(target=np.zeros((2, 3), bool)), TypeError, ()),
            (func, "target_complex", ce(target=np.zeros((2, 3), complex)), TypeError, ()),
            (func, "logits_complex", ce(logits=lambda x: x.astype(complex)), TypeError, ()),
            (func, "logits_object", ce(logits=lambda x: x.astype(object)), TypeError, ()),
            (func, "logits_string", ce(logits=lambda x: x.astype(str)), TypeError, ()),
            (func, "weight_length", ce(weight=np.ones(4)), ValueError, ()),
            (func, "weight_2d", ce(weight=np.ones((1, 5))), ValueError, ()),
            (func, "sample_weight_shape", ce(sample_weight=np.ones((3, 2))), ValueError, ()),
            (func, "sample_weight_too_many", ce(sample_weight=np.ones(6)), ValueError, ()),
            (func, "reduction_unknown", ce(reduction="avg"), ValueError, ("avg",)),
            (func, "reduction_batchmean", ce(reduction="batchmean"), ValueError, ()),
            (func, "reduction_none_object", ce(reduction=None), ValueError, ()),
            (func, "n_threads_0", ce(n_threads=0), ValueError, ()),
            (func, "n_threads_neg", ce(n_threads=-1), ValueError, ()),
        ]
    rows += [
        ("nll_loss", "nll_prob_target", ce(target=np.full((2, 3, 5), 0.2)), TypeError, ()),
        ("cross_entropy", "smoothing_negative", ce(label_smoothing=-0.1), ValueError, ()),
        ("cross_entropy", "smoothing_above_one", ce(label_smoothing=1.5), ValueError, ()),
        ("cross_entropy", "smoothing_nan", ce(label_smoothing=np.nan), ValueError, ()),
        ("cross_entropy", "smoothing_inf", ce(label_smoothing=np.inf), ValueError, ()),
        ("cross_entropy", "prob_weight_length", ce(target=np.full((2, 3, 5), 0.2), weight=np.ones(6)), ValueError,
         ()),
        ("cross_entropy", "prob_target_wrong_shape", ce(target=np.full((2, 3, 6), 0.2)), ValueError,
         (r"\(2, 3, 6\)", r"\(2, 3")),
        ("nll_loss", "float_target_wrong_shape", ce(target=np.full((2, 3, 6), 0.2)), ValueError,
         (r"\(2, 3, 6\)", r"\(2, 3")),
    ]
    return [pytest.param(*r, id=f"{r[0]}-{r[1]}") for r in rows]


def _unpack_case(rng, make):
    args = make(rng)
    x = args.pop("logits")
    t = args.pop("target")
    return x, t, args


@pytest.mark.parametrize("func, case, make, exc, patterns", _error_cases())
def test_class_loss_errors(rng, func, case, make, exc, patterns):
    """Each error with the loss, with the loss-and-gradient, and with a valid grad_out that stays untouched."""
    x, t, kw = _unpack_case(rng, make)
    f, fg = CLASS_FUNCS[func]
    with pytest.raises(exc) as info:
        f(x, t, **kw)
    for p in patterns:
        assert re.search(p, str(info.value)), f"{p!r} not in message {str(info.value)!r}"
    with pytest.raises(exc):
        fg(x, t, **kw)
    xs = np.shape(x)
    if np.asarray(x).dtype.kind in "fiub":
        g = np.full(xs, 42.0, result_dtype(np.asarray(x).dtype))
        with pytest.raises(exc):
            fg(x, t, grad_out=g, **kw)
        assert np.all(g == 42.0), "grad_out written by a failing call"


@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("case", [c[0] for c in _bad_outs((4, 5), np.float64)])
@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_bad_grad_out(rng, func, case, dtype):
    x = random_logits(rng, (4, 5), dtype)
    t = random_targets(rng, (4,), 5)
    (_, g, exc), = [c for c in _bad_outs(x.shape, dtype) if c[0] == case]
    if isinstance(g, np.ndarray):
        if g.flags.writeable:
            g[...] = 42.0
        before = g.copy()
    with pytest.raises(exc):
        CLASS_FUNCS[func][1](x, t, grad_out=g)
    if isinstance(g, np.ndarray):
        assert_identical(g, before, "grad_out written by a failing call")


@pytest.mark.parametrize("ignore_index", (2 ** 63, 2 ** 64, -2 ** 63 - 1), ids=("2^63", "2^64", "-2^63-1"))
@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_ignore_index_out_of_int64(func, ignore_index):
    with pytest.raises(ValueError):
        CLASS_FUNCS[func][0](np.zeros((3, 4)), np.array([0, 1, 2]), ignore_index=ignore_index)


@pytest.mark.parametrize("name", PRIMITIVES + ("cross_entropy", "nll_loss"))
def test_huge_n_threads_is_not_an_overflow(name):
    x = np.zeros((3, 4))
    args = (x,) if name in PRIMITIVES else (x, np.array([0, 1, 2]))
    try:
        res = getattr(fl, name)(*args, n_threads=2 ** 40)
    except ValueError:
        return
    assert_identical(res, getattr(fl, name)(*args, n_threads=1))


@pytest.mark.parametrize("func", ("cross_entropy", "nll_loss"))
def test_reduction_as_str_subclass(rng, func):
    x, t = _ce_args(rng)
    assert_identical(CLASS_FUNCS[func][0](x, t, reduction=np.str_("sum")), CLASS_FUNCS[func][0](x, t, reduction="sum"))


@pytest.mark.parametrize("n_threads", (0, -1))
@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_bad_n_threads(name, n_threads):
    with pytest.raises(ValueError):
        getattr(fl, name)(np.zeros((2, 3)), n_threads=n_threads)


@pytest.mark.parametrize("bad", (np.zeros(3, complex), np.array(["a", "b"]), np.array([1.0, None], object)),
                         ids=("complex", "string", "object"))
@pytest.mark.parametrize("name", PRIMITIVES)
def test_primitive_bad_dtype(name, bad):
    with pytest.raises(TypeError):
        getattr(fl, name)(bad)


def test_outputs_beyond_the_streaming_size():
    """Softmax and gradient outputs of 32 MB and more are written with non-temporal stores (AVX-512): rows of an
    odd length start anywhere within a cache line (the head and tail go the plain way); same values as the
    oracle, and as the plain stores of a smaller call on the same rows."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((1031, 8193)) * 3).astype(np.float32)   # 33.8 MB
    t = rng.integers(0, 8193, x.shape[0])
    sm = fl.softmax(x, axis=-1)
    assert_close(sm, R.softmax(x.astype(np.float64), axis=-1), np.float32)
    loss, grad = fl.cross_entropy_and_grad(x, t)
    want_loss, want_grad = R.cross_entropy_and_grad(x.astype(np.float64), t)
    assert_close(loss, want_loss, np.float32)
    assert_close(grad, want_grad, np.float32)
    head = slice(0, 64)  # 2 MB: plain stores
    np.testing.assert_array_equal(sm[head], fl.softmax(x[head], axis=-1))
    _, grad_sum = fl.cross_entropy_and_grad(x, t, reduction="sum")
    _, sub_grad = fl.cross_entropy_and_grad(x[head], t[head], reduction="sum")
    np.testing.assert_array_equal(grad_sum[head], sub_grad)


# ---- the common call's fast path (K.class_loss_fast, checked in C) ------------------------------------------

def _general(func, x, t, **kw):
    """The same call forced onto the general path (an explicit n_threads equal to the default)."""
    return getattr(fl, func)(x, t, n_threads=fl.get_num_threads(), **kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOATS, ids=dt_id)
@pytest.mark.parametrize("func", ("cross_entropy", "cross_entropy_and_grad", "nll_loss", "nll_loss_and_grad"))
def test_fast_path_equals_general_path(rng, func, dtype, reduction):
    """The common call gives the bits of the general path: results, dtypes (a NumPy scalar of the logits' dtype),
    ignored rows, and the gradient."""
    for shape in ((4, 10), (1, 1), (0, 5), (33, 7), (300, 1000)):
        x = random_logits(rng, shape, dtype)
        t = rng.integers(0, shape[1], shape[0])
        if shape[0] > 2:
            t[1] = -100
        got, want = getattr(fl, func)(x, t, reduction=reduction), _general(func, x, t, reduction=reduction)
        if func.endswith("_and_grad"):
            assert_identical(got[1], want[1])
            got, want = got[0], want[0]
        assert type(got) is type(want) and np.asarray(got).dtype == dtype
        assert_identical(got, want)


@pytest.mark.parametrize("func", ("cross_entropy", "cross_entropy_and_grad", "nll_loss", "nll_loss_and_grad"))
def test_fast_path_is_taken(rng, func, monkeypatch):
    """The common call (and label_smoothing=0 as an int, ignore_index any Python int) never reaches the general
    path; the other calls do, and agree with the oracle."""
    import fastloss.probabilistic as P
    x = random_logits(rng, (5, 6), np.float32)
    t = rng.integers(0, 6, 5)
    want = _general(func, x, t)
    calls = []
    real = P._class_loss
    monkeypatch.setattr(P, "_class_loss", lambda *a: calls.append(a) or real(*a))
    extra = {"label_smoothing": 0} if func.startswith("cross") else {}
    for kw in ({}, {"ignore_index": 2**62}, {"reduction": "sum"}, extra):
        getattr(fl, func)(x, t, **kw)
    assert calls == []
    got = getattr(fl, func)(x, t.astype(np.int32))
    assert len(calls) == 1
    if func.endswith("_and_grad"):
        assert_identical(got[1], want[1])
        got, want = got[0], want[0]
    assert_identical(got, want)


def _uncommon_inputs(x, t):
    """(name, logits, target, kwargs) of calls that the fast path must hand to the general path."""
    big = np.empty(x.size * 4 + 1, np.uint8)
    misaligned = np.frombuffer(big.data, np.float32, x.size, offset=1).reshape(x.shape)
    misaligned[...] = x
    return [
        ("swapped logits", x.astype(x.dtype.newbyteorder()), t, {}),
        ("swapped target", x, t.astype(t.dtype.newbyteorder()), {}),
        ("fortran logits", np.asfortranarray(x), t, {}),
        ("strided logits", np.repeat(x, 2, axis=1)[:, ::2], t, {}),
        ("misaligned logits", misaligned, t, {}),
        ("subclass logits", np.ma.masked_array(x), t, {}),
        ("int32 target", x, t.astype(np.int32), {}),
        ("list target", x, t.tolist(), {}),
        ("3-d logits", x.reshape(1, *x.shape), t.reshape(1, -1), {}),
        ("bool ignore_index", x, t, {"ignore_index": True}),
        ("numpy ignore_index", x, t, {"ignore_index": np.int64(-100)}),
        ("huge ignore_index", x, t, {"ignore_index": 2**70}),
        ("numpy smoothing", x, t, {"label_smoothing": np.float64(0.0)}),
        ("smoothing", x, t, {"label_smoothing": 0.1}),
        ("weight", x, t, {"weight": np.linspace(0.5, 2, x.shape[1])}),
        ("sample_weight", x, t, {"sample_weight": np.linspace(0.5, 2, x.shape[0])}),
        ("upper-case reduction", x, t, {"reduction": "MEAN"}),
        ("bytes reduction", x, t, {"reduction": b"mean"}),
        ("short target", x, t[:-1], {}),
        ("out-of-range target", x, np.where(np.arange(t.size) == 3, x.shape[1], t), {}),
        ("negative target", x, np.where(np.arange(t.size) == 2, -1, t), {}),
        ("no classes", x[:, :0], t, {}),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _uncommon_inputs(np.zeros((6, 5), np.float32),
                                                                  np.zeros(6, np.int64))])
def test_fast_path_hands_over(rng, case):
    """Every input the fast path does not take gives what the general path gives for it: the same values (as
    the oracle), or the same error, and the inputs are not modified."""
    x = random_logits(rng, (6, 5), np.float32)
    t = rng.integers(0, 5, 6)
    _, xx, tt, kw = next(c for c in _uncommon_inputs(x, t) if c[0] == case)
    before = [snapshot(v) for v in (xx, tt)]
    for func in ("cross_entropy", "cross_entropy_and_grad"):
        try:
            want = _general(func, xx, tt, **kw)
        except Exception as e:  # noqa: BLE001 - the general path's error is the expected one
            with pytest.raises(type(e), match=re.escape(str(e))):
                getattr(fl, func)(xx, tt, **kw)
            continue
        got = getattr(fl, func)(xx, tt, **kw)
        if func.endswith("_and_grad"):
            assert_identical(got[1], want[1])
            got, want = got[0], want[0]
        assert_identical(got, want)
    for v, b in zip((xx, tt), before):
        assert_unmodified(v, b)


def test_fast_path_threads(rng):
    """The fast path follows fl.set_num_threads (its own copy of the default): same bits at 1 and 2 threads,
    and a large gradient (the output cache's size) still comes out right."""
    x = random_logits(rng, (600, 1000), np.float32)
    t = rng.integers(0, 1000, 600)
    old = fl.set_num_threads(1)
    try:
        one = fl.cross_entropy_and_grad(x, t)
        fl.set_num_threads(2)
        two = fl.cross_entropy_and_grad(x, t)
    finally:
        fl.set_num_threads(old)
    assert_identical(one[0], two[0])
    assert_identical(one[1], two[1])
    xl = random_logits(rng, (4200, 1000), np.float32)  # 16.8 MB of gradient: the general path's allocation
    tl = rng.integers(0, 1000, 4200)
    loss, grad = fl.cross_entropy_and_grad(xl, tl)
    want_loss, want_grad = R.cross_entropy_and_grad(xl.astype(np.float64), tl)
    assert_close(loss, want_loss, np.float32)
    assert_close(grad, want_grad, np.float32)


def test_float32_sum_beyond_float32_is_inf_without_a_warning():
    # the sum is exact in double; float32 cannot hold it: inf, as the margin and regression losses (no NumPy
    # overflow RuntimeWarning from the cast)
    x, t = np.zeros((4, 3), np.float32), np.array([0, 1, 2, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fl.cross_entropy(x, t, sample_weight=np.full(4, 3e38), reduction="sum")
        loss, _ = fl.cross_entropy_and_grad(x, t, sample_weight=np.full(4, 3e38), reduction="sum")
    assert got.dtype == np.float32 and np.isinf(got) and got > 0 and loss == got


# ---- outputs larger than the caches: plain stores into new memory, non-temporal into held memory -------------

@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_large_outputs_new_or_held_same_bits(rng, simd_level, label_smoothing):
    """Outputs of 32 MiB and more go around the caches (non-temporal stores) when their memory is in use, and
    through them when it is new (its pages not yet touched: the OS zeroes them as they are first written). A
    new array and a held one (touched before the call) get the same bits, and the oracle's values."""
    x = random_logits(rng, (257, 32768), np.float32)  # 33.7 MB
    t = rng.integers(0, 32768, 257)
    for name in ("softmax", "log_softmax"):
        fresh = getattr(fl, name)(x)
        held = np.full_like(x, 7.0)
        getattr(fl, name)(x, out=held)
        assert_identical(fresh, held, name)
        rows = [0, 128, 256]
        assert_close(fresh[rows], getattr(R, name)(x[rows].astype(np.float64)), err_msg=name)
    loss, fresh = fl.cross_entropy_and_grad(x, t, label_smoothing=label_smoothing)
    held = np.full_like(x, 7.0)
    loss2, _ = fl.cross_entropy_and_grad(x, t, label_smoothing=label_smoothing, grad_out=held)
    assert_identical(loss, loss2, "loss")
    assert_identical(fresh, held, "grad")
    e_loss, e_grad = R.cross_entropy_and_grad(x.astype(np.float64), t, label_smoothing=label_smoothing)
    assert_close(loss, e_loss)
    assert_close(fresh, e_grad, kind="grad")


@pytest.mark.parametrize("n_classes", [1, 3, 5, 10, 17, 32])
def test_softmax_few_classes_tiles(rng, simd_level, n_classes):
    """Softmax of few float classes by tiles of rows (a row a lane, stored back into rows): every row the bits of
    the same row computed alone (the row loop where a row has fewer elements than a vector, else a tile of one
    row), a row of nan or -inf nan, the oracle's values."""
    x = random_logits(rng, (203, n_classes), np.float32)
    x[7, 0], x[8, :], x[9, -1] = np.nan, -np.inf, np.inf
    out = fl.softmax(x)
    for i in (0, 6, 7, 8, 9, 10, 16, 17, 202):
        # 1 x n: below a vector's elements (8 or 16 classes, by level) the call takes the row loop, not the tiles
        assert_identical(out[i:i + 1], fl.softmax(x[i:i + 1]), f"row {i}")
    assert np.all(np.isnan(out[[7, 8, 9]]))
    ok = np.ones(203, bool)
    ok[[7, 8, 9]] = False
    assert_close(out[ok], R.softmax(x[ok].astype(np.float64)))
    half = x.astype(np.float16)  # half rows go through the same tiles: the float call's bits on the same values
    assert_identical(fl.softmax(half), fl.softmax(half.astype(np.float32)))
