"""Helpers of the evaluation tests: bitwise comparison of results, and logits of the dtypes the streaming reads."""
import numpy as np
import pytest

try:
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover
    BF16 = None

DTYPES = ["float32", "float64", "float16", "bfloat16"]


def as_dtype(x, name):
    """x (float64) rounded to the dtype `name`; skips when bfloat16 needs ml_dtypes and it is missing."""
    if name == "bfloat16":
        if BF16 is None:
            pytest.skip("ml_dtypes is not installed")
        return x.astype(BF16)
    return x.astype(name)


def compute_view(x):
    """What fastloss computes on: float32 for float16 and bfloat16 data, else x."""
    return x.astype(np.float32) if x.dtype in (np.float16, BF16) else x


def bits(v):
    return np.asarray(v, np.float64).view(np.int64).tolist()


def same_result(a, b):
    """Two EvalResults (or dicts of metrics) equal to the last bit, nan included."""
    da, db = (r if isinstance(r, dict) else r.to_dict() for r in (a, b))
    assert da.keys() == db.keys()
    for k in da:
        assert bits(da[k]) == bits(db[k]), (k, da[k], db[k])


def logits_and_target(rng, shape, ignore_every=0, ignore_index=-100):
    n_classes = shape[-1]
    x = rng.normal(size=shape) * 3
    t = rng.integers(0, n_classes, size=shape[:-1])
    if ignore_every:
        t.reshape(-1)[::ignore_every] = ignore_index
    return x, t
