"""fastloss.dask on a real distributed cluster (two worker processes on loopback): evaluate, cross_entropy and
nll_loss equal the in-memory results (bit for bit; weighted means within the documented bound)."""
import os
import pathlib

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import fastloss as fl  # noqa: E402
import fastloss.dask as fld  # noqa: E402

from _eval_helpers import logits_and_target, same_result  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # the worker processes import fastloss from the source tree as this process does
    root = str(pathlib.Path(fl.__file__).parents[1])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root + (os.pathsep + old if old else "")
    try:
        with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                      host="127.0.0.1") as cluster, distributed.Client(cluster) as c:
            yield c
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x, t = logits_and_target(rng, (6000, 40), ignore_every=9)
    return x.astype(np.float32), t, rng.random(40), rng.random(6000)


@pytest.mark.parametrize("row_chunks", [(700,), (2048,), (6000,)])
def test_evaluate_equals_in_memory(client, data, row_chunks):
    x, t, w, _ = data
    X, T = da.from_array(x, chunks=(row_chunks[0], 17)), da.from_array(t, chunks=1000)  # unaligned chunks
    for weight in (None, w):
        same_result(fld.evaluate(X, T, weight=weight, topk=(1, 3)), fl.evaluate(x, t, weight=weight, topk=(1, 3)))
    same_result(fld.evaluate(X, t), fl.evaluate(x, t))  # a NumPy target


def test_class_losses_equal_in_memory(client, data):
    x, t, w, sw = data
    X, T, SW = da.from_array(x, chunks=(900, 40)), da.from_array(t, chunks=900), da.from_array(sw, chunks=900)
    n_chunks = len(X.chunks[0])
    for name in ("cross_entropy", "nll_loss"):
        mine, theirs = getattr(fld, name), getattr(fl, name)
        for reduction in ("mean", "sum"):
            for kw, kw_dask in (({}, {}), ({"weight": w}, {"weight": w}),
                                ({"sample_weight": sw}, {"sample_weight": SW})):
                got, want = mine(X, T, reduction=reduction, **kw_dask), theirs(x, t, reduction=reduction, **kw)
                if kw and reduction == "mean":  # the divisor is summed per chunk: the documented bound
                    assert got == pytest.approx(want, rel=n_chunks * 2.0**-53 + 2.0**-24, abs=0)
                else:
                    assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (name, reduction, kw)
    got = fld.cross_entropy(X, T, label_smoothing=0.1)
    assert got.tobytes() == fl.cross_entropy(x, t, label_smoothing=0.1).tobytes()


def test_nd_float16_and_errors(client):
    rng = np.random.default_rng(1)
    x, t = logits_and_target(rng, (4, 500, 12))
    x = x.astype(np.float16)
    X, T = da.from_array(x, chunks=(1, 300, 12)), da.from_array(t, chunks=(2, 100))
    same_result(fld.evaluate(X, T), fl.evaluate(x.astype(np.float32), t))
    t[2, 77] = 12
    with pytest.raises(IndexError, match=r"target\[2, 77\] = 12 is out of bounds"):
        fld.evaluate(X, da.from_array(t, chunks=(2, 100)))
    with pytest.raises(ValueError, match="does not fit"):
        fld.cross_entropy(X, t[:2])
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        fld.cross_entropy(X, T, reduction="none")
