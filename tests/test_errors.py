"""The bad-input battery: every public function against wrong shapes, lengths, dtypes, class indices, labels,
probabilities, options and output buffers (the exception type of API.md, a message naming the problem, every
caller buffer untouched), and odd-but-valid inputs (zero strides, unaligned, byte-swapped, negative strides,
lists, empty batches, huge rows) against the oracle.

Table-driven: SPECS lists every function with its family ("kind"); BUILD makes each kind's arguments; the options
a function takes are read from its signature, so a new function needs one line in SPECS.
"""
import inspect

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as ref

from conftest import assert_close, assert_unmodified, snapshot, zoo_variant

N, C = 3, 5  # N + 1 != C and N != C, so a wrong length never broadcasts by accident

# name -> kind. Kinds: rows (x), class ((N, C) scores, (N,) class indices), binary ((N, C) scores, y = +-1),
# pair ((N, C) input and target of the same shape), dist1 (p), dist2 (p, q).
SPECS = {
    "logsumexp": "rows", "softmax": "rows", "log_softmax": "rows",
    "cross_entropy": "class", "cross_entropy_and_grad": "class", "cross_entropy_grad_hess": "class",
    "nll_loss": "class", "nll_loss_and_grad": "class",
    "multiclass_hinge_loss": "class", "multiclass_hinge_loss_and_grad": "class", "zero_one_loss": "binary",
    "logistic_loss": "binary", "logistic_loss_and_grad": "binary", "exponential_loss": "binary",
    "exponential_loss_and_grad": "binary", "hinge_loss": "binary", "hinge_loss_and_grad": "binary",
    "binary_cross_entropy_with_logits": "pair", "binary_cross_entropy_with_logits_and_grad": "pair",
    "kl_div": "pair", "kl_div_and_grad": "pair", "mse_loss": "pair", "mse_loss_and_grad": "pair",
    "l1_loss": "pair", "l1_loss_and_grad": "pair", "huber_loss": "pair", "huber_loss_and_grad": "pair",
    "entropy": "dist1", "categorical_cross_entropy": "dist2", "kl_divergence": "dist2",
}
# issue 13: second derivatives and the new element-wise losses (pair3: input, target and var)
SPECS.update({"logistic_loss_grad_hess": "binary", "exponential_loss_grad_hess": "binary",
              "gaussian_nll_loss": "pair3", "gaussian_nll_loss_and_grad": "pair3",
              "gaussian_nll_loss_grad_hess": "pair3"})
SPECS.update({name: "pair" for name in (
    "mse_loss_grad_hess", "huber_loss_grad_hess", "binary_cross_entropy_with_logits_grad_hess", "kl_div_grad_hess",
    "poisson_nll_loss", "poisson_nll_loss_and_grad", "poisson_nll_loss_grad_hess", "tweedie_loss",
    "tweedie_loss_and_grad", "tweedie_loss_grad_hess", "pinball_loss", "pinball_loss_and_grad", "smooth_l1_loss",
    "smooth_l1_loss_and_grad", "smooth_l1_loss_grad_hess", "log_cosh_loss", "log_cosh_loss_and_grad",
    "log_cosh_loss_grad_hess", "sigmoid_focal_loss", "sigmoid_focal_loss_and_grad",
    "sigmoid_focal_loss_grad_hess")})
NAMES = sorted(SPECS)
CLASS_INDEX_FUNCS = [n for n in NAMES if SPECS[n] == "class"] + ["zero_one_loss"]


def test_table_covers_the_public_api():
    """Every computing public name is in the table (a new function must join the battery)."""
    public = {n for n in dir(fl) if callable(getattr(fl, n)) and not n.startswith("_")
              and n not in ("get_num_threads", "set_num_threads", "simd_level", "available_simd_levels",
                            "set_simd_level", "show_config", "clear_output_cache", "set_output_cache_mb",
                            # the evaluation API: its bad input is tested in test_evaluate.py / test_streaming.py
                            "evaluate", "evaluate_binary", "stream_loss", "EvalResult", "BinaryEvalResult")}
    assert public == set(SPECS)


def build(name, dtype=np.float64, n=N, c=C, seed=0, classes=False):
    """The positional arguments of a valid call of `name`: a list of arrays (first: the differentiated one).
    classes=True: zero_one_loss's multiclass form (integer targets)."""
    rng = np.random.default_rng(seed)
    kind = SPECS[name]
    x = (rng.standard_normal((n, c)) * 2).astype(dtype)
    if kind == "rows":
        return [x]
    if kind == "class" or classes:
        return [x, rng.integers(0, max(c, 1), n)]
    if kind == "binary":
        return [x, np.where(rng.random((n, c)) < 0.5, -1.0, 1.0)]
    if kind == "pair":  # targets in [0, 1] where the loss wants probabilities, counts or y >= 0
        return [x, rng.random((n, c)).astype(dtype) if name.startswith(("binary", "kl_div", "poisson", "tweedie",
                                                                         "sigmoid_focal")) else
                rng.standard_normal((n, c)).astype(dtype)]
    if kind == "pair3":  # gaussian_nll_loss: input, target, var > 0
        return [x, rng.standard_normal((n, c)).astype(dtype), (rng.random((n, c)) + 0.1).astype(dtype)]
    p = rng.random((n, c)).astype(dtype)
    return [p] if kind == "dist1" else [p, rng.random((n, c)).astype(dtype)]


def params(name):
    return inspect.signature(getattr(fl, name)).parameters


def out_name(name):
    """The name of the function's output-buffer option (grad_out or out), or None."""
    ps = params(name)
    return "grad_out" if "grad_out" in ps else "out" if "out" in ps else None


def result_of(name, args):
    """The shape and dtype of the gradient / out buffer of a call on these arguments."""
    x = np.asarray(args[0])
    return x.shape, np.dtype(np.float32) if x.dtype in (np.float16, np.float32) else np.dtype(np.float64)


SENTINEL = -12345.5


def call_expecting(name, args, kwargs, exc, words):
    """Calls fl.<name>(*args, **kwargs) expecting `exc` with every word of `words` in its message; checks that
    no argument was modified and that a sentinel-filled output buffer (passed when the call has none) is
    untouched."""
    kwargs = dict(kwargs)
    for buf_name in (out_name(name), "hess_out" if "hess_out" in params(name) else None):
        if buf_name and buf_name not in kwargs:
            shape, dt = result_of(name, args) if np.asarray(args[0]).dtype.kind in "fiub" else ((N, C), np.float64)
            kwargs[buf_name] = np.full(shape, SENTINEL, dt)
    before = [snapshot(a) for a in args]
    kw_before = {k: snapshot(v) for k, v in kwargs.items() if isinstance(v, np.ndarray)}
    with pytest.raises(exc) as info:
        getattr(fl, name)(*args, **kwargs)
    assert type(info.value) is exc or exc is not ValueError or not isinstance(info.value, IndexError), info.value
    message = str(info.value)
    for w in ([words] if isinstance(words, str) else words):
        assert w in message, f"{w!r} not in the message {message!r}"
    for a, b in zip(args, before):
        assert_unmodified(a, b)
    for k, b in kw_before.items():
        v = kwargs[k]
        assert np.array_equal(v, b, equal_nan=v.dtype.kind == "f"), f"{k} was written although the call failed"
    return message


# ---- shapes --------------------------------------------------------------------------------------------------

def bad_shapes(name):
    """(position, bad array) pairs: arguments whose shape does not fit the others."""
    args = build(name)
    kind = SPECS[name]
    if kind == "class":
        return [(1, args[1][:-1]), (1, np.zeros((N, C + 1), np.int64)), (1, np.zeros((N + 1, 2), np.int64))]
    if kind in ("binary", "pair", "pair3", "dist2"):
        return [(1, args[1][:, :-1]), (1, args[1][0]), (1, args[1].reshape(-1)), (0, args[0][:-1])]
    return []


@pytest.mark.parametrize("name", [n for n in NAMES if bad_shapes(n)])
def test_wrong_shape_is_value_error_naming_both_shapes(name):
    for pos, bad in bad_shapes(name):
        args = build(name)
        args[pos] = bad
        other = args[1 - pos]
        words = ["shape", str(bad.shape)] + ([str(other.shape)] if SPECS[name] != "class" else [])
        call_expecting(name, args, {}, ValueError, words)


@pytest.mark.parametrize("name", NAMES)
def test_zero_d_input(name):
    """0-d: class scores and distributions need an axis (ValueError); element-wise losses take scalars."""
    args = [np.asarray(a).reshape(-1)[0] for a in build(name)]
    kind = SPECS[name]
    if kind in ("class", "rows", "dist1", "dist2"):
        word = "dimension" if kind == "class" else "axis"
        call_expecting(name, [np.float64(a) for a in args], {}, ValueError, word)
    else:
        assert_matches_oracle(name, [np.asarray(a) for a in args], {"reduction": "none"})


@pytest.mark.parametrize("name", NAMES)
def test_zero_classes(name):
    args = build(name, c=0)
    if SPECS[name] == "class":
        call_expecting(name, args, {}, ValueError, "no classes")
    elif name in ("softmax", "log_softmax"):  # the oracle's max has no identity; the result is empty
        assert getattr(fl, name)(args[0]).shape == (N, 0)
    else:
        assert_matches_oracle(name, args, {})


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name, reduction):
    kw = {"reduction": reduction} if "reduction" in params(name) else {}
    assert_matches_oracle(name, build(name, n=0), kw)


# ---- dtypes ------------------------------------------------------------------------------------------------

def non_numeric(a, how):
    a = np.asarray(a)
    if how == "complex":
        return a.astype(np.complex128)
    if how == "object":
        return a.astype(object)
    if how == "string":
        return a.astype(str)
    return a.astype("datetime64[s]") if a.dtype.kind in "iu" else a.astype("timedelta64[s]").astype("M8[s]")


@pytest.mark.parametrize("how", ["complex", "object", "string", "datetime"])
@pytest.mark.parametrize("name", NAMES)
def test_non_numeric_input_is_type_error(name, how):
    n_args = len(build(name))
    for pos in range(n_args):
        args = build(name)
        args[pos] = non_numeric(args[pos], how)
        call_expecting(name, args, {}, TypeError, "dtype")


@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n] == "class"])
def test_float_or_bool_class_indices_are_type_error(name):
    for bad in (np.array([0.0, 1.0, 2.0]), np.array([True, False, True])):
        args = build(name)
        args[1] = bad
        call_expecting(name, args, {}, TypeError, "integer")


# ---- class indices -------------------------------------------------------------------------------------------

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def bad_indices(dtype):
    """Out-of-range values of this dtype: C, the dtype's extremes, negatives, and for uint64 values that
    become negative (or ignore_index) when cast to int64."""
    info = np.iinfo(dtype)
    values = [C, info.max]
    if info.min < 0:
        values += [-1, info.min, -101]
    if dtype == np.uint64:
        values += [2 ** 63, 2 ** 64 - 1, 2 ** 64 - 100]  # int64: -2**63, -1, -100 (the default ignore_index)
    return values


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", CLASS_INDEX_FUNCS)
def test_out_of_range_class_index_is_index_error(name, dtype):
    for value in bad_indices(dtype):
        for ignore_index in ([-100, -1] if "ignore_index" in params(name) else [None]):
            if value == ignore_index:
                continue
            args = build(name, classes=True)
            t = args[1].astype(dtype)
            t[1] = value
            args[1] = t
            kw = {} if ignore_index is None else {"ignore_index": ignore_index}
            call_expecting(name, args, kw, IndexError, ["target[1]", str(value), "out of bounds"])


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", CLASS_INDEX_FUNCS)
def test_valid_class_indices_of_every_integer_dtype(name, dtype):
    args = build(name, classes=True)
    kw = {"reduction": "none"}
    if "ignore_index" in params(name) and np.iinfo(dtype).min < 0:
        args[1][0] = -100  # ignored, in every signed dtype
    expected = ref_call(name, args, kw)
    got = getattr(fl, name)(args[0], args[1].astype(dtype), **kw)
    compare(name, got, expected)


# ---- labels and probabilities ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n] == "binary"])
@pytest.mark.parametrize("bad", [0.0, 2.0, 0.5, -3.0, np.nan, np.inf, -np.inf, 1.0 + 1e-9])
def test_label_outside_plus_minus_one_is_value_error(name, bad):
    for dtype in (np.float32, np.float64):
        args = build(name, dtype)
        args[1][1, 2] = bad
        call_expecting(name, args, {}, ValueError, ["y[1, 2]", "binary label"])
    args = build(name)
    y = args[1].astype(np.int64)
    y[0, 0] = 0
    call_expecting(name, [args[0], y], {}, ValueError, ["y[0, 0] = 0"])


@pytest.mark.parametrize("name", [n for n in NAMES if SPECS[n].startswith("dist")])
@pytest.mark.parametrize("bad", [-0.1, -1e-320, -np.inf, -1e300])
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_negative_probability_is_value_error(name, bad):
    for pos in range(len(build(name))):
        for dtype in (np.float32, np.float64):
            args = build(name, dtype)
            args[pos][2, 1] = bad
            word = "negative" if dtype(bad) != 0 else None  # -1e-320 is -0.0 in float32: valid
            if word is None:
                continue
            call_expecting(name, args, {}, ValueError, [f"{'pq'[pos]}[2, 1]", word])


# ---- options -------------------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
OPTION_CASES = {
    "reduction": [("avg", ValueError), (None, ValueError), (1, ValueError), ("MEAN", ValueError)],
    "n_threads": [(0, ValueError), (-3, ValueError), (-2 ** 70, ValueError), (1.5, TypeError), ("2", TypeError)],
    "label_smoothing": [(-0.1, ValueError), (1.5, ValueError), (NAN, ValueError), (INF, ValueError),
                        ("a", TypeError)],
    "ignore_index": [(1.5, TypeError), (2 ** 63, ValueError), (-2 ** 63 - 1, ValueError), ("x", TypeError)],
    "kind": [("foo", ValueError), (None, ValueError), (0, ValueError)],
    "margin": [(NAN, ValueError), (INF, ValueError), (-INF, ValueError), ("1", TypeError)],
    "delta": [(0.0, ValueError), (-1.0, ValueError), (NAN, ValueError), (INF, ValueError)],
    "p": [(0, ValueError), (3, ValueError), (2.0, ValueError), (True, ValueError), (1 + 0j, ValueError)],
    "base": [(0, ValueError), (-2.0, ValueError), (1, ValueError), (NAN, ValueError), (INF, ValueError),
             ("e", TypeError)],
    "axis": [(5, ValueError), (-6, ValueError), (1.0, TypeError), ((1, 1), ValueError)],
    "weight": [(np.ones(C + 1), ValueError), (np.ones((2, C)), ValueError), (np.ones(C, complex), TypeError)],
    "sample_weight": [(np.ones(N + 1), ValueError), (np.ones((N, C + 1)), ValueError),
                      (np.array(["a"] * N), TypeError)],
    "pos_weight": [(np.ones(C + 1), ValueError), (np.ones((N + 1, 1)), ValueError)],
    "beta": [(-1.0, ValueError), (NAN, ValueError), (INF, ValueError), ("1", TypeError)],
    "quantile": [(0.0, ValueError), (1.0, ValueError), (-0.5, ValueError), (NAN, ValueError), ("q", TypeError)],
    "power": [(0.5, ValueError), (2.5, ValueError), (NAN, ValueError), (-INF, ValueError)],
    "eps": [(-1.0, ValueError), (NAN, ValueError), (INF, ValueError)],
    "alpha": [(NAN, ValueError), (INF, ValueError)],
    "gamma": [(-1.0, ValueError), (NAN, ValueError), (INF, ValueError)],
}


def option_cases():
    for name in NAMES:
        for opt, param in params(name).items():
            if param.kind != param.KEYWORD_ONLY and opt != "axis":
                continue  # the arrays (p, q of the distributions are positional)
            for value, exc in OPTION_CASES.get(opt, ()):
                if opt == "sample_weight" and SPECS[name] in ("binary", "pair", "pair3") and value.shape == (N + 1,):
                    continue  # (N+1,) broadcasts to nothing of (N, C), covered by the (N, C+1) case
                yield pytest.param(name, opt, value, exc, id=f"{name}-{opt}={value!r}"[:80])


@pytest.mark.parametrize("name, opt, value, exc", list(option_cases()))
def test_bad_option(name, opt, value, exc):
    call_expecting(name, build(name), {opt: value}, exc, "repeated" if isinstance(value, tuple) else opt)


# ---- output buffers -----------------------------------------------------------------------------------------

def bad_buffers(shape, dtype):
    """(buffer, exception, word): every way an out= / grad_out= buffer can be wrong, filled with the sentinel."""
    other = np.float32 if dtype == np.float64 else np.float64
    readonly = np.full(shape, SENTINEL, dtype)
    readonly.flags.writeable = False
    raw = np.zeros(int(np.prod(shape)) * np.dtype(dtype).itemsize + 1, np.uint8)
    unaligned = raw[1:].view(dtype).reshape(shape)
    unaligned[...] = SENTINEL
    return [
        (np.full(shape[:-1] + (shape[-1] + 1,), SENTINEL, dtype), ValueError, "shape"),
        (np.full(shape[::-1], SENTINEL, dtype), ValueError, "shape"),
        (np.full(shape, SENTINEL, other), TypeError, "dtype"),
        (np.full(shape, SENTINEL, np.int64), TypeError, "dtype"),
        (np.full(shape, SENTINEL, dtype, order="F"), ValueError, "C-contiguous"),
        (np.full(shape[:-1] + (2 * shape[-1],), SENTINEL, dtype)[..., ::2], ValueError, "C-contiguous"),
        (readonly, ValueError, "read-only"),
        (unaligned, ValueError, "aligned"),
        (np.full(shape, SENTINEL).tolist(), TypeError, "ndarray"),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", [n for n in NAMES if out_name(n)])
def test_bad_output_buffer(name, dtype):
    args = build(name, dtype)
    shape, dt = result_of(name, args)
    for buf_name in (out_name(name), "hess_out" if "hess_out" in params(name) else None):
        for buf, exc, word in bad_buffers(shape, dt) if buf_name else ():
            msg = call_expecting(name, args, {buf_name: buf}, exc, word)
            assert buf_name in msg


# ---- odd but valid --------------------------------------------------------------------------------------------

def ref_call(name, args, kwargs):
    return getattr(ref, name)(*[np.asarray(a) for a in args], **kwargs)


def compare(name, got, expected):
    if name.endswith(("_and_grad", "_grad_hess")):
        assert_close(got[0], expected[0])
        for g, e in zip(got[1:], expected[1:]):
            assert_close(g, e, kind="grad")
        assert len(got) == len(expected)
    else:
        assert_close(got, expected)


def assert_matches_oracle(name, args, kwargs):
    compare(name, getattr(fl, name)(*args, **kwargs), ref_call(name, [np.asarray(a) for a in args], kwargs))


def odd_layouts(a):
    """Layouts of the array a that hold its values: zero strides, unaligned, byte-swapped, negative strides,
    Fortran order, a Python list."""
    yield "broadcast", np.broadcast_to(a[:1], a.shape) if a.shape[0] else None
    for zoo in ("unaligned", "byteswapped", "reversed_last", "reversed_first", "fortran", "strided_last", "list"):
        yield zoo, zoo_variant(a, zoo)
    if a.dtype == np.float64 and a.size:
        raw = bytes(1) + np.ascontiguousarray(a).tobytes()
        yield "frombuffer_offset_1", np.frombuffer(raw, a.dtype, offset=1).reshape(a.shape)


@pytest.mark.parametrize("name", NAMES)
def test_odd_but_valid_layouts_match_the_oracle(name):
    for pos in range(len(build(name))):
        for layout, _ in odd_layouts(build(name)[pos]):
            args = build(name)
            if layout == "broadcast":
                args[pos] = np.broadcast_to(args[pos][:1], args[pos].shape)
                plain = [np.array(a) for a in args]
            else:
                plain = [np.array(a) for a in args]
                variant = dict(odd_layouts(args[pos]))[layout]
                if variant is None:
                    continue
                args[pos] = variant
            before = snapshot(args[pos])
            compare(name, getattr(fl, name)(*args), ref_call(name, plain, {}))
            assert_unmodified(args[pos], before)


HUGE = 1 << 22


@pytest.mark.parametrize("name", ["cross_entropy", "logsumexp", "softmax"])
def test_huge_rows_float32(name):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((2, HUGE)) * 4).astype(np.float32)
    args = [x, np.array([3, HUGE - 1])] if name == "cross_entropy" else [x]
    got = getattr(fl, name)(*args)
    assert_close(got, getattr(ref, name)(*args))
    assert np.asarray(got).dtype == np.float32
