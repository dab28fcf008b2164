"""The NumPy API on other libraries' CPU arrays (objects with __dlpack__: torch tensors, JAX arrays): the same
results, bit for bit, as on the NumPy arrays of the same values, and the input shared, not copied."""
import contextlib
import tracemalloc

import numpy as np
import pytest

import fastloss as fl

LIBRARIES = ["torch", "jax"]
DTYPES = [np.float16, np.float32, np.float64]


def converter(library, dtype):
    """A function that turns a NumPy array into the library's array of the same values (a context that lets
    JAX hold float64 for the duration)."""
    if library == "torch":
        torch = pytest.importorskip("torch")
        return torch.from_numpy, contextlib.nullcontext()
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    return jnp.asarray, (jax.enable_x64(True) if dtype == np.float64 else contextlib.nullcontext())


def data(dtype):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5)).astype(dtype)
    return {
        "x": x, "x2": rng.normal(size=(6, 5)).astype(dtype), "t": rng.integers(0, 5, 6),
        "p": rng.dirichlet(np.ones(5), 6).astype(dtype), "q": rng.dirichlet(np.ones(5), 6).astype(dtype),
        "y": np.where(rng.normal(size=(6, 5)) > 0, 1.0, -1.0).astype(dtype),
        "y01": rng.random((6, 5)).astype(dtype),
    }


CALLS = {  # public function -> the names of its array arguments in data()
    "cross_entropy": ("x", "t"), "cross_entropy_and_grad": ("x", "t"), "nll_loss": ("x", "t"),
    "nll_loss_and_grad": ("x", "t"), "logsumexp": ("x",), "softmax": ("x",), "log_softmax": ("x",),
    "binary_cross_entropy_with_logits": ("x", "y01"), "binary_cross_entropy_with_logits_and_grad": ("x", "y01"),
    "kl_div": ("x", "p"), "kl_div_and_grad": ("x", "p"), "entropy": ("p",), "categorical_cross_entropy": ("p", "q"),
    "kl_divergence": ("p", "q"), "zero_one_loss": ("x", "y"), "logistic_loss": ("x", "y"),
    "logistic_loss_and_grad": ("x", "y"), "exponential_loss": ("x", "y"), "exponential_loss_and_grad": ("x", "y"),
    "hinge_loss": ("x", "y"), "hinge_loss_and_grad": ("x", "y"), "multiclass_hinge_loss": ("x", "t"),
    "multiclass_hinge_loss_and_grad": ("x", "t"), "mse_loss": ("x", "x2"), "mse_loss_and_grad": ("x", "x2"),
    "l1_loss": ("x", "x2"), "l1_loss_and_grad": ("x", "x2"), "huber_loss": ("x", "x2"),
    "huber_loss_and_grad": ("x", "x2"), "evaluate": ("x", "t"), "evaluate_binary": ("x", "y"),
}


def _flat(result):
    if isinstance(result, tuple) and not hasattr(result, "_fields"):
        return [np.asarray(r) for r in result]
    if hasattr(result, "_fields"):  # the evaluation results
        return [np.asarray(v) for v in result]
    return [np.asarray(result)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_same_results_as_numpy(name, library, dtype):
    convert, context = converter(library, dtype)
    arrays = data(dtype)
    args = [arrays[k] for k in CALLS[name]]
    want = getattr(fl, name)(*args)
    with context:
        theirs = [convert(a) for a in args]
        assert [str(a.dtype).split(".")[-1] for a in theirs[:1]] == [np.dtype(dtype).name]
        got = getattr(fl, name)(*theirs)
    for g, w in zip(_flat(got), _flat(want)):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("library", LIBRARIES)
def test_input_is_not_copied(library):
    """A 32 MiB float32 input is read where it is: the calls allocate nothing near its size in NumPy."""
    convert, context = converter(library, np.float32)
    x = np.random.default_rng(0).normal(size=(2048, 4096)).astype(np.float32)
    t = np.random.default_rng(1).integers(0, 4096, 2048)
    with context:
        xs, ts = convert(x), convert(t)
        fl.cross_entropy(xs, ts)
        tracemalloc.start()
        try:
            loss = fl.cross_entropy(xs, ts, label_smoothing=0.1)
            fl.logsumexp(xs)
            fl.mse_loss(xs, xs)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert loss == fl.cross_entropy(x, t, label_smoothing=0.1)
    assert peak < x.nbytes // 16, peak


def test_a_torch_tensor_that_requires_grad_is_refused_with_torchs_message():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="requires grad"):
        fl.cross_entropy(torch.zeros(3, 4, requires_grad=True), torch.zeros(3, dtype=torch.int64))


class DLPackOnly:
    """An array known only by the DLPack protocol (no __array__, no buffer): as a CuPy-on-host array is."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_array_with_only_dlpack(name, dtype):
    arrays = data(dtype)
    args = [arrays[k] for k in CALLS[name]]
    for g, w in zip(_flat(getattr(fl, name)(*[DLPackOnly(a) for a in args])), _flat(getattr(fl, name)(*args))):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    x = np.zeros((2048, 4096), np.float32)
    tracemalloc.start()
    try:
        fl.logsumexp(DLPackOnly(x))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes // 16, peak
