"""The row kernels of top-1 zero-one, multiclass hinge (crammer_singer, weston_watkins) and nll_loss: rows read in
vectors (partial last vectors read past the row's end where the array allows it, else copied), early exit for
top-1, prefetched picks for nll. Checked against reference.py at every class count around the vector widths,
with ties, nan, +-inf and -inf rows, strided and sliced layouts (a row whose end is the array's end included),
and bitwise equal across n_threads and across SIMD levels (set in-process and by FASTLOSS_SIMD in a
subprocess)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

from conftest import assert_close

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fl.__file__)))
# 1..17 straddle the vector widths of every level (4, 8, 16 floats; 2, 4, 8 doubles); 33 and 100: several vectors
N_CLASSES = list(range(1, 18)) + [31, 33, 100]
DTYPES = [np.float32, np.float64, np.float16]
HINGES = [("crammer_singer", 1), ("weston_watkins", 1), ("weston_watkins", 2)]


def _scores(rng, n_rows, n_cols, dtype):
    """Integer-valued scores in a small range (ties everywhere), with nan, +inf, -inf entries and an all -inf row."""
    s = rng.integers(-2, 3, size=(n_rows, n_cols)).astype(np.float64)
    s[rng.random((n_rows, n_cols)) < 0.03] = np.nan
    s[rng.random((n_rows, n_cols)) < 0.03] = np.inf
    s[rng.random((n_rows, n_cols)) < 0.03] = -np.inf
    s[n_rows // 2] = -np.inf
    return s.astype(dtype), rng.integers(0, n_cols, n_rows)


def _check_all(s, t, msg):
    ref = s.astype(np.float64)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(fl.zero_one_loss(s, t, reduction="none"),
                                      R.zero_one_loss(ref, t, reduction="none"), err_msg=f"top-1 {msg}")
        for kind, p in HINGES:
            for margin in (1.0, 0.0):
                kw = dict(kind=kind, p=p, margin=margin, reduction="none")
                loss, g = fl.multiclass_hinge_loss_and_grad(s, t, **kw)
                want, g_want = R.multiclass_hinge_loss_and_grad(ref, t, **kw)
                assert_close(loss, want, err_msg=f"{kind} p={p} margin={margin} {msg}")
                assert_close(g, g_want, kind="grad", scale=1.0, err_msg=f"{kind} p={p} grad {msg}")
                np.testing.assert_array_equal(fl.multiclass_hinge_loss(s, t, **kw), loss)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n_cols", N_CLASSES)
def test_rows_vs_oracle_every_level(simd_level, n_cols, dtype):
    rng = np.random.default_rng(n_cols)
    s, t = _scores(rng, 61, n_cols, dtype)
    _check_all(s, t, f"C={n_cols} at {simd_level}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n_cols", [3, 8, 10, 17])
def test_rows_strided_and_at_the_array_end(simd_level, n_cols, dtype):
    """Rows that are slices of wider rows (row stride > C), every other row, and a single row whose end is the
    buffer's end (no read past it is allowed): the partial vector must come from a copy there."""
    rng = np.random.default_rng(100 + n_cols)
    wide, t = _scores(rng, 40, n_cols + 5, dtype)
    t = t % n_cols
    _check_all(wide[:, :n_cols], t, f"slice C={n_cols} at {simd_level}")
    _check_all(wide[::2, 5:], t[::2], f"every other row C={n_cols} at {simd_level}")
    for k in range(n_cols):  # the last row alone, at the end of its own buffer, target everywhere
        row = np.ascontiguousarray(wide[-1:, 5:])
        _check_all(row, np.array([k]), f"one row C={n_cols} t={k} at {simd_level}")


def test_top1_every_target_position_and_tie():
    """Ties at the target, before it and after it, in every lane of two vectors; nan first / after the target."""
    for n in (5, 10, 16, 24, 40):
        for t in range(n):
            for other in range(n):
                s = np.zeros((1, n), np.float32)
                s[0, t] = 1.0
                s[0, other] = 1.0  # a tie: the first of the two wins
                got = fl.zero_one_loss(s, np.array([t]), reduction="none")[0]
                assert got == float(other < t), (n, t, other)
                s[0, other] = np.nan
                got = fl.zero_one_loss(s, np.array([t]), reduction="none")[0]
                assert got == float(other != t), (n, t, other, "nan")
                s[0, t] = np.nan  # both nan: the first nan wins
                got = fl.zero_one_loss(s, np.array([t]), reduction="none")[0]
                assert got == float(other < t), (n, t, other, "both nan")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).name)
def test_top1_many_rows_ties_nan_inf(simd_level, dtype):
    """Rows of up to 17 classes in arrays of many rows (the row-at-a-time masks: one vector or two overlapping
    ones, the last rows and nan targets by the row function): small integer scores (ties everywhere), nan and
    inf sprinkled in, contiguous and strided, against the oracle row by row."""
    rng = np.random.default_rng(17)
    for n in range(1, 18):
        for rows in (2, 9, 333):
            x = rng.integers(-3, 3, (rows, n)).astype(dtype)
            x[rng.random((rows, n)) < 0.05] = np.nan
            x[rng.random((rows, n)) < 0.05] = np.inf
            x[rng.random((rows, n)) < 0.05] = -np.inf
            t = rng.integers(0, n, rows)
            want = R.zero_one_loss(x, t, reduction="none")
            for s in (x, np.repeat(x, 2, axis=1)[:, ::2], np.concatenate([x, x], axis=1)[:, n:]):
                got = fl.zero_one_loss(s, t, reduction="none")
                np.testing.assert_array_equal(got, want, err_msg=f"n={n} rows={rows} at {simd_level}")
            assert fl.zero_one_loss(x, t, reduction="sum") == want.sum()
            # broadcast rows (a row stride of 0: every row the same memory; was a division by zero, the fuzzer)
            b = np.broadcast_to(x[:1], x.shape)
            np.testing.assert_array_equal(fl.zero_one_loss(b, t, reduction="none"),
                                          R.zero_one_loss(np.ascontiguousarray(b), t, reduction="none"))


@pytest.mark.parametrize("op", ["top1", "cs", "ww1", "ww2", "nll"])
@pytest.mark.parametrize("n_cols", [10, 1000])
def test_levels_and_threads_bitwise(op, n_cols):
    rng = np.random.default_rng(7)
    n_rows = 300_000 // n_cols
    s = (rng.standard_normal((n_rows, n_cols)) * 3).astype(np.float32)
    t = rng.integers(0, n_cols, n_rows)
    sw = rng.uniform(0.5, 2, n_rows)

    def run():
        out = []
        for nt in (1, 2, 3):
            for reduction in ("mean", "none"):
                if op == "top1":
                    out.append(fl.zero_one_loss(s, t, sample_weight=sw, reduction=reduction, n_threads=nt))
                elif op == "nll":
                    out.append(fl.nll_loss(s, t, reduction=reduction, n_threads=nt))
                    out.extend(fl.nll_loss_and_grad(s, t, sample_weight=sw, reduction=reduction, n_threads=nt))
                else:
                    kind, p = ("crammer_singer", 1) if op == "cs" else ("weston_watkins", int(op[2]))
                    out.extend(fl.multiclass_hinge_loss_and_grad(s, t, kind=kind, p=p, reduction=reduction,
                                                                 n_threads=nt))
                    out.append(fl.multiclass_hinge_loss(s, t, kind=kind, p=p, reduction=reduction, n_threads=nt))
        return [np.asarray(o).tobytes() for o in out]

    before = fl.simd_level()
    try:
        results = {}
        for level in fl.available_simd_levels():
            fl.set_simd_level(level)
            results[level] = run()
    finally:
        fl.set_simd_level(before)
    for level, res in results.items():
        for k in (1, 2):  # n_threads 2, 3 against 1, per reduction
            for r in range(len(res) // 3):
                assert res[r] == res[k * len(res) // 3 + r], f"{op} threads at {level}"
        assert res == results["scalar"], f"{op}: {level} differs from scalar"


_PROBE = """
import hashlib, json, numpy as np, fastloss as fl
rng = np.random.default_rng(5)
h = hashlib.sha256()
for n_cols in (3, 10, 19, 1000):
    s = (rng.standard_normal((2000, n_cols)) * 3).astype(np.float32)
    s[::13, ::3] = np.nan
    t = rng.integers(0, n_cols, 2000)
    for kind, p in (("crammer_singer", 1), ("weston_watkins", 1), ("weston_watkins", 2)):
        for o in fl.multiclass_hinge_loss_and_grad(s, t, kind=kind, p=p, reduction="none"):
            h.update(np.asarray(o).tobytes())
    h.update(fl.zero_one_loss(s, t, reduction="none").tobytes())
    h.update(fl.nll_loss(s, t, reduction="none").tobytes())
print(json.dumps({"simd": fl.simd_level(), "digest": h.hexdigest()}))
"""


def test_env_simd_levels_same_bits():
    """FASTLOSS_SIMD chosen at import, in a subprocess per level: the same bits from each."""
    digests = {}
    for level in fl.available_simd_levels():
        env = {k: v for k, v in os.environ.items() if k not in ("FASTLOSS_SIMD", "FASTLOSS_NUM_THREADS")}
        env["FASTLOSS_SIMD"] = level
        env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        res = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, res.stderr
        info = json.loads(res.stdout.strip().splitlines()[-1])
        assert info["simd"] == level
        digests[level] = info["digest"]
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n_cols", [1, 10, 1000])
def test_nll_picks(simd_level, n_cols, dtype):
    """The prefetching loop of the plain call: ignore_index rows, class weights, a strided view."""
    rng = np.random.default_rng(n_cols)
    x = rng.standard_normal((3000, n_cols + 2)).astype(dtype)
    t = rng.integers(0, n_cols, 3000)
    t[::7] = -100
    w = rng.uniform(0.5, 2, n_cols)
    for xx in (np.ascontiguousarray(x[:, :n_cols]), x[:, 2:]):
        ref = xx.astype(np.float64)
        for kw in (dict(), dict(weight=w)):
            for reduction in ("none", "sum", "mean"):
                assert_close(fl.nll_loss(xx, t, reduction=reduction, **kw),
                             R.nll_loss(ref, t, reduction=reduction, **kw), err_msg=f"{kw} {reduction}")


@pytest.mark.parametrize("n_cols", [1, 10, 300, 1000, 17_000])
def test_nll_loss_only_bits_and_errors(n_cols):
    """nll_loss without a gradient has a pass of its own (runs of blocks a task, the picks of several blocks before
    their lane sums): it adds the same rows in the same blocks and lanes as nll_loss_and_grad, so the same bits at
    1 and 2 threads, with ignored rows, weights or none; the first bad target is the one reported. 300 classes:
    4,333 rows, prefetched picks in five tasks of at most FL_NLL_TASK_ROWS rows, on two threads (a pick counts as
    FL_NLL_PICK_COST elements: 2 threads from 4,096 rows)."""
    rng = np.random.default_rng(n_cols)
    n_rows = max(40, 1_300_000 // n_cols)
    x = (rng.standard_normal((n_rows, n_cols)) * 3).astype(np.float32)
    t = rng.integers(0, n_cols, n_rows)
    t[::7] = -100
    for kw in ({}, {"weight": rng.uniform(0.5, 2, n_cols)}, {"sample_weight": rng.uniform(0.5, 2, n_rows)}):
        for reduction in ("mean", "sum", "none"):
            want = R.nll_loss(x.astype(np.float64), t, reduction=reduction, **kw)
            for nt in (1, 2):
                got = fl.nll_loss(x, t, reduction=reduction, n_threads=nt, **kw)
                with_grad, _ = fl.nll_loss_and_grad(x, t, reduction=reduction, n_threads=nt, **kw)
                assert np.asarray(got).tobytes() == np.asarray(with_grad).tobytes(), (kw, reduction, nt)
                assert_close(got, want, err_msg=f"{kw} {reduction} {nt}")
    bad = t.copy()
    bad[-1], bad[n_rows // 2] = -1, n_cols  # the later one must not be the one reported
    with pytest.raises(IndexError, match=rf"target\[{n_rows // 2}\] = {n_cols} is out of bounds"):
        fl.nll_loss(x, bad, n_threads=2)
    assert np.isnan(fl.nll_loss(x, np.full(n_rows, -100)))  # every row ignored: 0 / 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_weston_watkins_every_target_position(simd_level, dtype):
    """The target's lane is masked only in the vector that holds it: every target position of rows of 2..64
    classes (several vectors at every level), with ties, a nan and a -inf, loss alone and with its gradient."""
    rng = np.random.default_rng(16)
    for n in (2, 5, 9, 16, 17, 40, 64):
        s = rng.integers(-2, 3, size=(n, n)).astype(dtype)
        s[0, -1], s[1, 0] = np.nan, -np.inf
        t = np.arange(n)  # row i has its target at i
        for p in (1, 2):
            kw = dict(kind="weston_watkins", p=p, reduction="none")
            want, g_want = R.multiclass_hinge_loss_and_grad(s.astype(np.float64), t, **kw)
            loss, g = fl.multiclass_hinge_loss_and_grad(s, t, **kw)
            assert_close(loss, want, err_msg=f"n={n} p={p} at {simd_level}")
            assert_close(g, g_want, kind="grad", scale=1.0, err_msg=f"n={n} p={p} grad at {simd_level}")
            np.testing.assert_array_equal(fl.multiclass_hinge_loss(s, t, **kw), loss)


@pytest.mark.parametrize("n_cols", [1, 2, 7, 8, 9, 10, 16, 17, 32])
def test_top1_tiles_reductions_and_weights(simd_level, n_cols):
    """Few classes go a tile of rows at a time: every reduction, with and without sample weights, row counts that
    end in a short tile, against the oracle; the mean without weights counts the errors exactly."""
    rng = np.random.default_rng(n_cols)
    for n_rows in (1, 7, 8, 9, 23, 1000):
        s, t = _scores(rng, n_rows, n_cols, np.float32)
        sw = rng.uniform(0.5, 2.0, n_rows)
        ref = s.astype(np.float64)
        with np.errstate(all="ignore"):
            for reduction in ("none", "sum", "mean"):
                for w in (None, sw):
                    got = fl.zero_one_loss(s, t, sample_weight=w, reduction=reduction)
                    want = R.zero_one_loss(ref, t, sample_weight=w, reduction=reduction)
                    assert_close(got, want, err_msg=f"C={n_cols} rows={n_rows} {reduction} w={w is not None}")
            errors = (R.zero_one_loss(ref, t, reduction="none") != 0).sum()
            assert fl.zero_one_loss(s, t, reduction="sum") == errors
