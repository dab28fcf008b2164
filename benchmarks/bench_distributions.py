"""pytest-benchmark cases for the distribution measures, binary cross-entropy and kl_div: fastloss against the
NumPy baseline (fastloss.reference). Run: python -m pytest benchmarks/bench_distributions.py --benchmark-only
(the file name does not match test_*.py, so pass it explicitly)."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

IMPLS = {"fastloss": fl, "numpy": R}


@pytest.fixture(scope="module")
def probs():
    rng = np.random.default_rng(0)
    return rng.random((10_000, 1_000)).astype(np.float32), rng.random((10_000, 1_000)).astype(np.float32)


@pytest.fixture(scope="module")
def binary():
    rng = np.random.default_rng(1)
    return rng.normal(size=1_000_000), rng.random(1_000_000)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["entropy", "categorical_cross_entropy", "kl_divergence"])
def test_distribution_10000x1000_f32(benchmark, probs, impl, name):
    benchmark.group = f"{name} 10000x1000 float32"
    f = getattr(IMPLS[impl], name)
    args = probs[:1] if name == "entropy" else probs
    benchmark(f, *args)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_and_grad"])
def test_bce_1m_f64(benchmark, binary, impl, name):
    benchmark.group = f"{name} 1M float64"
    benchmark(getattr(IMPLS[impl], name), *binary, pos_weight=2.0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["kl_div", "kl_div_and_grad"])
def test_kl_div_1000x1000_f32(benchmark, probs, impl, name):
    benchmark.group = f"{name} 1000x1000 float32 batchmean"
    p, q = probs[0][:1000], np.log(probs[1][:1000] + np.float32(1e-3))
    benchmark(getattr(IMPLS[impl], name), q, p, reduction="batchmean")
