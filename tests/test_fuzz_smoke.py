"""Replays random byte strings through the fuzz harness (tools/fuzz_fastloss.py) without atheris, so the default
test run covers it: every call must succeed or raise ValueError / IndexError / TypeError, leave a failing call's
output buffer untouched, and not crash."""
import importlib.util
import os

import numpy as np
import pytest

_PATH = os.path.join(os.path.dirname(__file__), os.pardir, "tools", "fuzz_fastloss.py")
_spec = importlib.util.spec_from_file_location("fuzz_fastloss", _PATH)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

N_CASES = 6000


@pytest.mark.parametrize("chunk", range(6))
def test_random_bytes_through_the_harness(chunk):
    rng = np.random.default_rng(1000 + chunk)
    for _ in range(N_CASES // 6):
        fuzz.run_one(rng.bytes(int(rng.integers(0, 400))))


def test_every_function_is_reached():
    """The first byte picks the function: each one is called (valid arrays of zeros in C order)."""
    for i, _ in enumerate(fuzz.FUNCTIONS):
        fuzz.run_one(bytes([i]))
