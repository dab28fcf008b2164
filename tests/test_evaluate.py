"""fl.evaluate and fl.evaluate_binary: against the NumPy oracle, the separate functions and torch; ties, nan,
topk edge cases, errors, dtypes, threads."""
import dataclasses
import json
import math

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as ref

from _eval_helpers import DTYPES, as_dtype, compute_view, logits_and_target, same_result

SHAPES = [(1, 1), (7, 3), (200, 10), (64, 1000), (3, 20000), (4, 5, 12), (6,)]


def close_dict(got, want, rtol):
    assert got.keys() == want.keys()
    for k in want:
        if k.startswith("top") or k in ("n_rows", "n"):
            assert got[k] == want[k] or (math.isnan(got[k]) and math.isnan(want[k])), k
        else:
            np.testing.assert_allclose(got[k], want[k], rtol=rtol, err_msg=k)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_evaluate_matches_oracle(shape, dtype):
    rng = np.random.default_rng(len(shape) * 1000 + shape[-1])
    x, t = logits_and_target(rng, shape, ignore_every=5 if len(shape) > 1 else 0)
    x = as_dtype(x, dtype)
    got = fl.evaluate(x, t, topk=(1, 2, 5))
    want = ref.evaluate(compute_view(x), t, topk=(1, 2, 5))
    close_dict(got.to_dict(), want, rtol=1e-12 if dtype == "float64" else 2e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluate_equals_cross_entropy(dtype):
    rng = np.random.default_rng(3)
    x, t = logits_and_target(rng, (500, 40), ignore_every=7, ignore_index=3)
    x = x.astype(dtype)
    w = rng.random(40) + 0.5
    for weight in (None, w):
        res = fl.evaluate(x, t, ignore_index=3, weight=weight)
        ce = fl.cross_entropy(x, t, ignore_index=3, weight=weight)
        assert res.cross_entropy == pytest.approx(float(ce), rel=1e-13 if dtype == "float64" else 1e-6)
        assert res.perplexity == pytest.approx(math.exp(res.cross_entropy), rel=1e-15)
        assert res.n_rows == int(np.sum(t != 3))
        if weight is None:
            assert res.weight_sum is None
        else:
            assert res.weight_sum == pytest.approx(np.sum(w[t[t != 3]]), rel=1e-14)


def test_topk_against_torch_on_tie_free_data():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.permuted(np.tile(np.arange(50, dtype=np.float64), (300, 1)), axis=1)  # distinct values per row
    t = rng.integers(0, 50, 300)
    t[::4] = -100
    res = fl.evaluate(x, t, topk=(1, 3, 10))
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    keep = tt != -100
    for k in (1, 3, 10):
        hit = (xt.topk(k, dim=1).indices == tt[:, None]).any(dim=1)[keep].double().mean().item()
        assert res.accuracy[k] == hit
    want = torch.nn.functional.cross_entropy(xt, tt, ignore_index=-100).item()
    assert res.cross_entropy == pytest.approx(want, rel=1e-13)


def test_ties_go_the_targets_way():
    x = np.array([[1.0, 1.0, 1.0, 0.0]] * 4)
    t = np.array([0, 2, 3, 3])
    res = fl.evaluate(x, t, topk=(1, 3, 4))
    # rows 0, 1: no logit strictly greater than the target's: top-1; rows 2, 3: three greater: only top-4
    assert res.accuracy == {1: 0.5, 3: 0.5, 4: 1.0}


def test_nan_and_inf():
    x = np.array([[0.0, np.nan, 1.0], [np.nan, 0.0, 1.0], [0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf]])
    for row, target, top1, top2, top3 in [(0, 0, 0.0, 0.0, 1.0),   # nan elsewhere counts as greater
                                          (1, 0, 0.0, 0.0, 0.0),   # a nan target logit: never in the top k
                                          (2, 2, 1.0, 1.0, 1.0),
                                          (3, 1, 1.0, 1.0, 1.0)]:  # all -inf: all tie
        res = fl.evaluate(x[row:row + 1], np.array([target]), topk=(1, 2, 3))
        assert res.accuracy == {1: top1, 2: top2, 3: top3}, row
    assert math.isnan(fl.evaluate(x[:2], np.array([0, 1])).cross_entropy)
    assert fl.evaluate(x[2:3], np.array([1])).cross_entropy == math.inf   # -inf at the target
    assert math.isnan(fl.evaluate(x[3:4], np.array([1])).cross_entropy)   # only -inf, as torch


def test_topk_larger_than_classes_counts_as_all():
    rng = np.random.default_rng(5)
    x, t = logits_and_target(rng, (30, 3))
    res = fl.evaluate(x, t, topk=(1, 3, 10))
    assert res.accuracy[3] == 1.0 and res.accuracy[10] == 1.0
    assert list(res.to_dict())[2:5] == ["top1_accuracy", "top3_accuracy", "top10_accuracy"]
    assert fl.evaluate(x, t, topk=2).accuracy.keys() == {2}


@pytest.mark.parametrize("topk, exc", [(0, ValueError), ((1, -2), ValueError), ((1, 1), ValueError),
                                       ((1.5,), TypeError), (("a",), TypeError)])
def test_topk_errors(topk, exc):
    with pytest.raises(exc, match="topk"):
        fl.evaluate(np.zeros((2, 3)), np.array([0, 1]), topk=topk)


def test_all_ignored_and_empty():
    res = fl.evaluate(np.zeros((3, 4)), np.full(3, -100))
    assert res.n_rows == 0 and math.isnan(res.cross_entropy) and math.isnan(res.accuracy[1])
    res = fl.evaluate(np.zeros((0, 4)), np.zeros(0, np.int64))
    assert res.n_rows == 0 and math.isnan(res.perplexity)


def test_errors():
    x = np.zeros((2, 3, 4))
    with pytest.raises(IndexError, match=r"target\[1, 0\] = 4 is out of bounds for 4 classes"):
        fl.evaluate(x, np.array([[0, 1, 2], [4, 0, 0]]))
    with pytest.raises(IndexError, match=r"target\[0, 2\] = -1"):
        fl.evaluate(x, np.array([[0, 1, -1], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"target shape \(3,\) does not fit .* \(2, 3\)"):
        fl.evaluate(x, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer dtype"):
        fl.evaluate(x, np.zeros((2, 3)))
    with pytest.raises(TypeError, match="complex"):
        fl.evaluate(x.astype(complex), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="weight must have shape"):
        fl.evaluate(x, np.zeros((2, 3), int), weight=np.ones(3))
    with pytest.raises(ValueError, match="no classes"):
        fl.evaluate(np.zeros((2, 0)), np.zeros(2, int))
    with pytest.raises(ValueError, match="at least one dimension"):
        fl.evaluate(np.float64(1.0), np.int64(0))
    with pytest.raises(ValueError, match="n_threads"):
        fl.evaluate(x, np.zeros((2, 3), int), n_threads=0)


def test_threads_give_the_same_bits():
    rng = np.random.default_rng(6)
    for shape in [(5000, 30), (40, 20000)]:
        x, t = logits_and_target(rng, shape, ignore_every=3)
        x = x.astype(np.float32)
        w = rng.random(shape[-1])
        base = fl.evaluate(x, t, weight=w, n_threads=1)
        for nt in (2, 3, 8):
            same_result(fl.evaluate(x, t, weight=w, n_threads=nt), base)


def test_input_not_modified_and_strided():
    rng = np.random.default_rng(7)
    x, t = logits_and_target(rng, (40, 16))
    big = np.asfortranarray(np.repeat(x, 2, axis=1))
    x_view = big[:, ::2]
    before = big.copy()
    same_result(fl.evaluate(x_view, t), fl.evaluate(np.ascontiguousarray(x), t))
    assert np.array_equal(big, before)


def test_result_object():
    res = fl.evaluate(np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]]), np.array([0, 1]), topk=(1, 2),
                      weight=np.ones(3))
    assert repr(res).startswith("EvalResult(cross_entropy=1.20558, perplexity=3.33869, top1_accuracy=0.5, ")
    assert "weight_sum=2" in repr(res)
    d = res.to_dict()
    assert list(d) == ["cross_entropy", "perplexity", "top1_accuracy", "top2_accuracy", "n_rows", "weight_sum"]
    assert json.loads(json.dumps(d)) == d
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.n_rows = 3


# ---- evaluate_binary -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (100,), (3, 70000)])
def test_evaluate_binary_matches_oracle(dtype, shape):
    rng = np.random.default_rng(shape[-1])
    s = as_dtype(rng.normal(size=shape) * 4, dtype)
    y = rng.choice([-1, 1], size=shape)
    sw = rng.random(shape)
    # float data: each term is its loss's float value (a few float32 eps of the double one), summed in double
    rtol = 1e-12 if compute_view(s).dtype == np.float64 else 3e-7
    for weight in (None, sw):
        got = fl.evaluate_binary(s, y, sample_weight=weight).to_dict()
        want = ref.evaluate_binary(compute_view(s), y, sample_weight=weight)
        assert got.keys() == want.keys()
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=rtol, err_msg=k)
        # the same as the separate losses (float32 results, themselves rounded once)
        got = fl.evaluate_binary(s, y, sample_weight=weight)
        sep = [f(s, y, sample_weight=weight) for f in (fl.logistic_loss, fl.hinge_loss, fl.exponential_loss)]
        rtol_sep = 1e-12 if compute_view(s).dtype == np.float64 else 2 * np.finfo(np.float32).eps
        np.testing.assert_allclose([got.logistic_loss, got.hinge_loss, got.exponential_loss], sep, rtol=rtol_sep)
        np.testing.assert_allclose(got.accuracy, 1 - fl.zero_one_loss(s, y, sample_weight=weight), rtol=rtol_sep)


def test_evaluate_binary_formulas_and_edges():
    s = np.array([1000.0, -1000.0, 0.0, 0.5, 2.0])
    y = np.array([1, 1, 1, -1, 1])
    res = fl.evaluate_binary(s, y)
    m = y * s
    want_log = np.mean([np.log1p(np.exp(-abs(v))) + max(-v, 0.0) for v in m])
    assert res.logistic_loss == pytest.approx(want_log, rel=1e-15)  # 1000 for m = -1000, no overflow
    assert res.hinge_loss == pytest.approx(np.mean(np.maximum(0.0, 1.0 - m)), rel=1e-15)
    assert res.exponential_loss == math.inf                          # exp(1000)
    assert res.accuracy == pytest.approx(2 / 5)                      # score 0 predicts -1
    assert res.n == 5 and res.weight_sum is None


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("edge", [1000.0, -1000.0, 0.0, np.nan])
def test_evaluate_binary_float_vectors_edges(dtype, edge):
    """Float data goes through the separate losses' vector forms (the last elements of a block, the element
    form): an edge value anywhere gives what the separate functions give."""
    rng = np.random.default_rng(4)
    s = rng.normal(size=4099) * 3
    y = rng.choice([-1.0, 1.0], size=4099)
    s[[5, 600, 4097]] = edge
    s, y = s.astype(dtype), y.astype(dtype)
    got = fl.evaluate_binary(s, y)
    sep = [f(s, y) for f in (fl.logistic_loss, fl.hinge_loss, fl.exponential_loss)]
    np.testing.assert_allclose([got.logistic_loss, got.hinge_loss, got.exponential_loss], sep,
                               rtol=2 * np.finfo(np.float32).eps)
    assert got.accuracy == pytest.approx(1 - float(fl.zero_one_loss(s, y)), rel=1e-6)


def test_evaluate_binary_threads_and_errors():
    rng = np.random.default_rng(9)
    s = rng.normal(size=200_000).astype(np.float32)
    y = rng.choice([-1.0, 1.0], size=200_000)
    base = fl.evaluate_binary(s, y, n_threads=1)
    for nt in (2, 5):
        same_result(fl.evaluate_binary(s, y, n_threads=nt), base)
    y2 = y.reshape(400, 500).copy()
    y2[3, 7] = 0.5
    with pytest.raises(ValueError, match=r"y\[3, 7\] = 0.5 is not a label"):
        fl.evaluate_binary(s.reshape(400, 500), y2)
    with pytest.raises(ValueError, match="same shape"):
        fl.evaluate_binary(s, y[:-1])
    with pytest.raises(TypeError, match="non-numeric"):
        fl.evaluate_binary(np.array(["a"]), np.array([1]))
