"""pytest-benchmark cases for the margin and regression losses: fastloss vs the NumPy baseline (reference.py)
at 1M float32 elements. Run with `pytest benchmarks/` (not part of the default test run)."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

N = 1_000_000
rng = np.random.default_rng(0)
SCORES = rng.normal(size=N).astype(np.float32)
LABELS = rng.choice([-1.0, 1.0], size=N).astype(np.float32)
TARGETS = rng.normal(size=N).astype(np.float32)
MC_SCORES = rng.normal(size=(N // 10, 10)).astype(np.float32)
MC_TARGET = rng.integers(0, 10, N // 10)

PAIR = [
    ("zero_one_loss", {}, LABELS),
    ("logistic_loss", {}, LABELS),
    ("exponential_loss", {}, LABELS),
    ("hinge_loss", {}, LABELS),
    ("hinge_loss", {"squared": True}, LABELS),
    ("mse_loss", {}, TARGETS),
    ("l1_loss", {}, TARGETS),
    ("huber_loss", {"delta": 0.5}, TARGETS),
]
IDS = [name + "".join(f"-{k}" for k in kw) for name, kw, _ in PAIR]
IMPLS = {"fastloss": fl, "numpy": R}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name,kw,y", PAIR, ids=IDS)
def test_pair_loss(benchmark, impl, name, kw, y):
    benchmark.group = name
    benchmark(getattr(IMPLS[impl], name), SCORES, y, **kw)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name,kw,y", [c for c in PAIR if c[0] != "zero_one_loss"], ids=IDS[1:])
def test_pair_loss_and_grad(benchmark, impl, name, kw, y):
    benchmark.group = name + "_and_grad"
    benchmark(getattr(IMPLS[impl], name + "_and_grad"), SCORES, y, **kw)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["crammer_singer", "weston_watkins"])
def test_multiclass_hinge_and_grad(benchmark, impl, kind):
    benchmark.group = "multiclass_hinge_and_grad-" + kind
    benchmark(IMPLS[impl].multiclass_hinge_loss_and_grad, MC_SCORES, MC_TARGET, kind=kind)


@pytest.mark.parametrize("impl", IMPLS)
def test_top1_zero_one(benchmark, impl):
    benchmark.group = "zero_one_loss-top1"
    benchmark(IMPLS[impl].zero_one_loss, MC_SCORES, MC_TARGET)
