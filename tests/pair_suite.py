"""The tests every element-wise (pair) loss shares, margin and regression alike: oracle comparison over shapes,
dtypes, layouts, reductions and sample weights; gradients (oracle and finite differences); grad_out; errors;
thread determinism. test_margin.py and test_regression.py instantiate the suite with their cases."""
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R


def stable_seed(*parts):
    """A seed from a test's parameters, the same in every process (hash() of a str is salted per process:
    a seed from it gave each CI run other data)."""
    return zlib.crc32(repr(parts).encode())

SHAPES = [(), (0,), (1,), (7,), (3, 4), (2, 3, 5)]
DTYPES = [np.float32, np.float64, np.float16, np.int64]
REDUCTIONS = ("none", "sum", "mean")


@dataclass
class Case:
    name: str                      # the public function (and its reference)
    kwargs: dict = field(default_factory=dict)
    labels: bool = False           # y in {-1, +1}
    grad: bool = True              # has NAME_and_grad
    kink: object = None            # kink(x, y, **kwargs): distance to the nearest non-smooth point
    rtol32: float = 3e-6           # float32 results: a loss whose terms cancel (exp(x) - y x) needs more,
    atol32: float = 1e-30          # and one that crosses 0 (Stirling's term added) an absolute tolerance

    @property
    def id(self):
        return self.name + "".join(f"-{k}={v}" for k, v in self.kwargs.items())

    def call(self, x, y, grad=False, **kw):
        name = self.name + ("_and_grad" if grad else "")
        return getattr(fl, name)(x, y, **self.kwargs, **kw)

    def ref(self, x, y, grad=False, **kw):
        name = self.name + ("_and_grad" if grad else "")
        return getattr(R, name)(x, y, **self.kwargs, **kw)

    def data(self, rng, shape, dtype=np.float64):
        x = rng.normal(scale=2.0, size=shape)
        y = rng.choice([-1.0, 1.0], size=shape) if self.labels else rng.normal(size=shape)
        if np.dtype(dtype).kind == "i":
            x, y = np.rint(3 * x), (y if self.labels else np.rint(3 * y))
        return x.astype(dtype), y.astype(dtype)


def tolerance(dtype, rtol32=3e-6, atol32=1e-30):
    return dict(rtol=1e-12, atol=1e-300) if fl._checks.compute_dtype(np.dtype(dtype)) == np.float64 \
        else dict(rtol=rtol32, atol=atol32)


def assert_same(got, want, dtype, rtol32=3e-6, atol32=1e-30):
    assert type(got) is type(want) or np.ndim(got) == np.ndim(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               **tolerance(dtype, rtol32, atol32))


def make_suite(cases):
    ids = [c.id for c in cases]
    grad_cases = [c for c in cases if c.grad]
    grad_ids = [c.id for c in grad_cases]
    label_cases = [c for c in cases if c.labels]

    class PairSuite:
        @pytest.mark.parametrize("case", cases, ids=ids)
        @pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
        @pytest.mark.parametrize("shape", SHAPES, ids=str)
        @pytest.mark.parametrize("weighted", [False, True], ids=["", "sw"])
        def test_matches_oracle(self, case, dtype, shape, weighted):
            rng = np.random.default_rng(stable_seed(case.id, shape, np.dtype(dtype).name))
            x, y = case.data(rng, shape, dtype)
            sw = rng.uniform(0.1, 2.0, size=shape) if weighted else None
            x0, y0 = x.copy(), y.copy()
            for reduction in REDUCTIONS:
                got = case.call(x, y, sample_weight=sw, reduction=reduction)
                want = case.ref(x, y, sample_weight=sw, reduction=reduction)
                assert_same(got, want, dtype, case.rtol32, case.atol32)
                if reduction == "none":
                    assert isinstance(got, np.ndarray)
                else:
                    assert isinstance(got, np.generic)
                if case.grad:
                    loss, g = case.call(x, y, grad=True, sample_weight=sw, reduction=reduction)
                    _, g_want = case.ref(x, y, grad=True, sample_weight=sw, reduction=reduction)
                    np.testing.assert_array_equal(loss, got)  # the same pass gives the same loss
                    assert_same(g, g_want, dtype, case.rtol32, case.atol32)
            np.testing.assert_array_equal(x, x0)
            np.testing.assert_array_equal(y, y0)

        @pytest.mark.parametrize("case", cases, ids=ids)
        @pytest.mark.parametrize("layout", ["strided", "fortran", "readonly", "byteswapped", "negative",
                                            "broadcast_weight"])
        def test_layouts(self, case, layout):
            rng = np.random.default_rng(1)
            x, y = case.data(rng, (6, 8))
            sw = rng.uniform(0.5, 1.5, size=(6, 8))
            if layout == "strided":
                x, y, sw = x[::2, 1::3], y[::2, 1::3], sw[::2, 1::3]
            elif layout == "fortran":
                x, y = np.asfortranarray(x), np.asfortranarray(y)
            elif layout == "readonly":
                x.flags.writeable = y.flags.writeable = False
            elif layout == "byteswapped":
                x, y = x.astype(">f8"), y.astype(">f4")
            elif layout == "negative":
                x, y, sw = x[::-1, ::-2], y[::-1, ::-2], sw[::-1, ::-2]
            elif layout == "broadcast_weight":
                sw = sw[0]
            xc, yc = np.array(x, np.float64), np.array(y, y.dtype.newbyteorder("="))
            for reduction in REDUCTIONS:
                got = case.call(x, y, sample_weight=sw, reduction=reduction)
                assert_same(got, case.ref(xc, yc, sample_weight=sw, reduction=reduction), np.float64)
                if case.grad:
                    _, g = case.call(x, y, grad=True, sample_weight=sw, reduction=reduction)
                    assert g.flags.c_contiguous and g.shape == x.shape
                    assert_same(g, case.ref(xc, yc, grad=True, sample_weight=sw, reduction=reduction)[1],
                                np.float64)

        @pytest.mark.parametrize("case", grad_cases, ids=grad_ids)
        @pytest.mark.parametrize("reduction", ["sum", "mean"])
        def test_gradient_finite_differences(self, case, reduction):
            rng = np.random.default_rng(2)
            x, y = case.data(rng, (5, 7))
            sw = rng.uniform(0.5, 2.0, size=x.shape)
            h = 1e-6
            _, g = case.call(x, y, grad=True, sample_weight=sw, reduction=reduction)
            # the losses are element-wise: one perturbation of every element at once gives every partial
            up = case.call(x + h, y, sample_weight=sw, reduction="none")
            down = case.call(x - h, y, sample_weight=sw, reduction="none")
            fd = (up - down) / (2 * h)
            if reduction == "mean":
                fd = fd / sw.sum()
            keep = np.ones(x.shape, bool) if case.kink is None else case.kink(x, y, **case.kwargs) > 1e-3
            assert keep.sum() > 10
            np.testing.assert_allclose(g[keep], fd[keep], rtol=1e-6, atol=1e-9)

        @pytest.mark.parametrize("case", grad_cases, ids=grad_ids)
        def test_grad_out(self, case):
            rng = np.random.default_rng(3)
            x, y = case.data(rng, (4, 5), np.float32)
            buf = np.full(x.shape, 7.0, np.float32)
            loss, g = case.call(x, y, grad=True, grad_out=buf)
            assert g is buf
            np.testing.assert_array_equal(buf, case.call(x, y, grad=True)[1])
            bad = [
                (np.empty((5, 4), np.float32), ValueError, "shape"),
                (np.empty((4, 5), np.float64), TypeError, "dtype"),
                (np.empty((4, 10), np.float32)[:, ::2], ValueError, "C-contiguous"),
                ([[0.0] * 5] * 4, TypeError, "ndarray"),
            ]
            ro = np.empty((4, 5), np.float32)
            ro.flags.writeable = False
            bad.append((ro, ValueError, "read-only"))
            for out, exc, words in bad:
                with pytest.raises(exc, match=words):
                    case.call(x, y, grad=True, grad_out=out)

        @pytest.mark.parametrize("case", cases, ids=ids)
        def test_errors(self, case):
            x, y = case.data(np.random.default_rng(4), (3, 4))
            with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 3\)"):
                case.call(x, y.T)
            with pytest.raises(ValueError, match=r"\(3, 4\).*\(3,\)"):
                case.call(x, y[:, 0])
            with pytest.raises(ValueError, match="reduction"):
                case.call(x, y, reduction="avg")
            with pytest.raises(ValueError, match="n_threads"):
                case.call(x, y, n_threads=0)
            with pytest.raises(TypeError, match="complex"):
                case.call(x + 1j, y)
            with pytest.raises(TypeError):
                case.call(np.array(["a"] * 12).reshape(3, 4), y)
            with pytest.raises(ValueError, match="sample_weight"):
                case.call(x, y, sample_weight=np.ones(5))

        @pytest.mark.parametrize("case", label_cases, ids=[c.id for c in label_cases])
        @pytest.mark.parametrize("dtype,bad", [(dt, bad) for dt in (np.float32, np.float64) for bad in
                                               (0, 2, np.nan, 0.5, -3)] + [(np.int64, 0), (np.int64, 2)])
        def test_bad_label(self, case, bad, dtype):
            x, y = case.data(np.random.default_rng(5), (3, 4), dtype)
            y[1, 2] = bad
            y[2, 0] = bad  # only the first is named
            shown = "nan" if np.isnan(bad) else repr(np.asarray(bad, y.dtype).item())
            for reduction in REDUCTIONS:
                with pytest.raises(ValueError, match=rf"y\[1, 2\] = {shown} is not a binary label"):
                    case.call(x, y, reduction=reduction)
            if case.grad:
                buf = np.full(x.shape, 7.0, fl._checks.compute_dtype(x.dtype))
                with pytest.raises(ValueError, match=r"y\[1, 2\]"):
                    case.call(x, y, grad=True, grad_out=buf)
                assert np.all(buf == 7.0)  # nothing written on error
            with pytest.raises(ValueError, match=r"y\[6\]"):  # 1-d position
                case.call(x.ravel(), y.ravel())

        @pytest.mark.parametrize("case", cases, ids=ids)
        def test_threads_bitwise(self, case):
            rng = np.random.default_rng(6)
            x, y = case.data(rng, 300_001, np.float32)
            sw = rng.uniform(0.5, 2.0, size=x.shape)
            for reduction in REDUCTIONS:
                one = case.call(x, y, grad=case.grad, sample_weight=sw, reduction=reduction, n_threads=1)
                for nt in (2, 3):
                    other = case.call(x, y, grad=case.grad, sample_weight=sw, reduction=reduction, n_threads=nt)
                    for a, b in zip(one if case.grad else (one,), other if case.grad else (other,)):
                        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()

    if not label_cases:
        del PairSuite.test_bad_label
    return PairSuite
