"""pytest-benchmark cases: fastloss against the NumPy baselines of fastloss.reference, small and large.

Run with `pytest benchmarks/` (not part of the default test run). Compare within one run: the machine is
shared and absolute times drift."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as ref

pytest.importorskip("pytest_benchmark")

SHAPES = {"small 4x10": (4, 10), "classifier 65536x1000": (65536, 1000), "llm 1024x32000": (1024, 32000)}
IMPLS = {"fastloss": fl, "numpy": ref}


@pytest.fixture(scope="module", params=list(SHAPES), ids=list(SHAPES))
def batch(request):
    rng = np.random.default_rng(0)
    n, c = SHAPES[request.param]
    return rng.normal(size=(n, c)).astype(np.float32) * 3, rng.integers(0, c, size=n)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_primitive(benchmark, batch, impl, name):
    benchmark.group = f"{name} {batch[0].shape}"
    benchmark(getattr(IMPLS[impl], name), batch[0])


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("name", ["cross_entropy", "cross_entropy_and_grad", "nll_loss", "nll_loss_and_grad"])
def test_class_loss(benchmark, batch, impl, name):
    benchmark.group = f"{name} {batch[0].shape}"
    benchmark(getattr(IMPLS[impl], name), batch[0], batch[1])
