"""Threads and SIMD levels of the probabilistic core: bitwise identical results for every n_threads, the
thread-count and SIMD-level settings (API, environment variables in a subprocess, show_config), every SIMD level
against the oracle, and many Python threads calling at once."""
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as R

from conftest import assert_close, assert_identical

F64 = np.float64
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fl.__file__)))

# ---- bitwise identical for every n_threads -----------------------------------------------------------------

BIG_SHAPES = ((1000, 1000), (50, 40000))  # 1M and 2M elements: 30+ blocks of rows, 7 threads worth starting
THREAD_COUNTS = (1, 2, 3, 7)


@pytest.fixture(scope="module", params=[(s, d) for s in BIG_SHAPES for d in (np.float32, np.float64)],
                ids=lambda p: f"{p[0][0]}x{p[0][1]}-{np.dtype(p[1]).name}")
def big_inputs(request):
    shape, dtype = request.param
    rng = np.random.default_rng(shape[0] * 7 + np.dtype(dtype).itemsize)
    x = (rng.standard_normal(shape, dtype=np.float32) * 3).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    t[::7] = -100
    q = fl.softmax(x[::-1])  # probability targets: another row's softmax
    weight = rng.uniform(0.5, 2.0, shape[1])
    sw = rng.uniform(0.5, 2.0, shape[0])
    return x, t, q, weight, sw


def _all_results(x, t, q, weight, sw, n_threads):
    """Every function of the core on the big inputs, with this n_threads."""
    nt = dict(n_threads=n_threads)
    opts = dict(weight=weight, sample_weight=sw, label_smoothing=0.1)
    return {
        "logsumexp": fl.logsumexp(x, **nt),
        "softmax": fl.softmax(x, **nt),
        "log_softmax": fl.log_softmax(x, **nt),
        "cross_entropy_none": fl.cross_entropy(x, t, reduction="none", **nt),
        "cross_entropy_and_grad_sum": fl.cross_entropy_and_grad(x, t, reduction="sum", **nt),
        "cross_entropy_and_grad_mean_options": fl.cross_entropy_and_grad(x, t, reduction="mean", **opts, **nt),
        "cross_entropy_prob_and_grad_mean": fl.cross_entropy_and_grad(x, q, reduction="mean", weight=weight, **nt),
        "cross_entropy_prob_sum": fl.cross_entropy(x, q, reduction="sum", sample_weight=sw, **nt),
        "nll_loss_none": fl.nll_loss(x, t, reduction="none", **nt),
        "nll_loss_and_grad_mean": fl.nll_loss_and_grad(x, t, reduction="mean", weight=weight, sample_weight=sw,
                                                       **nt),
        "nll_loss_sum": fl.nll_loss(x, t, reduction="sum", **nt),
    }


def test_bitwise_identical_for_every_n_threads(big_inputs):
    x, t, q, weight, sw = big_inputs
    reference = _all_results(*big_inputs, n_threads=1)
    # the results are sane (not e.g. all nan, which would also be identical)
    assert np.all(np.isfinite(reference["logsumexp"]))
    assert np.isfinite(reference["cross_entropy_and_grad_mean_options"][0])
    for n_threads in THREAD_COUNTS[1:]:
        got = _all_results(*big_inputs, n_threads=n_threads)
        for name, value in reference.items():
            values = value if isinstance(value, tuple) else (value,)
            got_values = got[name] if isinstance(got[name], tuple) else (got[name],)
            for v, g in zip(values, got_values):
                assert_identical(g, v, f"{name} with n_threads={n_threads} differs from n_threads=1")


def test_default_threads_identical(big_inputs):
    """n_threads=None (the default, fl.get_num_threads()) gives the bits of n_threads=1."""
    x, t, q, weight, sw = big_inputs
    assert_identical(fl.cross_entropy(x, t, n_threads=None), fl.cross_entropy(x, t, n_threads=1))
    assert_identical(fl.log_softmax(x), fl.log_softmax(x, n_threads=1))


def test_big_values_match_oracle():
    """The big shapes are also right (checked once, float32, against the float64 oracle)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((50, 40000)) * 3).astype(np.float32)
    t = rng.integers(0, 40000, 50)
    loss, grad = fl.cross_entropy_and_grad(x, t, n_threads=2)
    x64 = x.astype(F64)
    assert_close(loss, R.cross_entropy(x64, t))
    assert_close(grad, R.cross_entropy_grad(x64, t), kind="grad", scale=1.0 / 50)
    assert_close(fl.logsumexp(x, n_threads=2), R.logsumexp(x64))


# ---- the thread-count setting ------------------------------------------------------------------------------

@pytest.fixture
def restore_threads():
    before = fl.get_num_threads()
    yield before
    fl.set_num_threads(None)  # back to the default order (restoring `before` would pin it)


def test_set_num_threads_round_trip(restore_threads):
    before = restore_threads
    assert isinstance(before, int) and before >= 1
    assert fl.set_num_threads(3) == before
    assert fl.get_num_threads() == 3
    assert fl.set_num_threads(1) == 3
    assert fl.get_num_threads() == 1
    assert fl.set_num_threads(np.int64(5)) == 1
    assert fl.get_num_threads() == 5


@pytest.mark.parametrize("bad, exc", ((0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError)),
                         ids=("zero", "negative", "float", "str"))
def test_set_num_threads_errors(restore_threads, bad, exc):
    fl.set_num_threads(2)
    with pytest.raises(exc):
        fl.set_num_threads(bad)
    assert fl.get_num_threads() == 2


def test_set_num_threads_is_used(restore_threads):
    """Calls without n_threads run with the setting: same bits (and no error) with 1 and 3 threads."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((400, 300))
    t = rng.integers(0, 300, 400)
    fl.set_num_threads(1)
    one = fl.cross_entropy_and_grad(x, t)
    fl.set_num_threads(3)
    three = fl.cross_entropy_and_grad(x, t)
    assert_identical(one[0], three[0])
    assert_identical(one[1], three[1])


# ---- environment variables, in a subprocess ------------------------------------------------------------------

_PROBE = """
import io, json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import fastloss as fl
import numpy as np
out = io.StringIO()
fl.show_config(file=out)
x = np.random.default_rng(0).standard_normal((50, 70))
print(json.dumps({"simd": fl.simd_level(), "threads": fl.get_num_threads(), "config": out.getvalue(),
                  "warnings": [str(w.message) for w in caught],
                  "loss": float(fl.cross_entropy(x, np.arange(50) % 70))}))
"""


def run_probe(**env_vars):
    env = dict(os.environ)
    for k in ("FASTLOSS_SIMD", "FASTLOSS_NUM_THREADS"):
        env.pop(k, None)
    env.update(env_vars)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("n", (1, 3))
def test_env_num_threads(n):
    info = run_probe(FASTLOSS_NUM_THREADS=str(n))
    assert info["threads"] == n


@pytest.mark.parametrize("level", fl.available_simd_levels())
def test_env_simd_level(level):
    info = run_probe(FASTLOSS_SIMD=level)
    assert info["simd"] == level
    assert level in info["config"]
    assert not info["warnings"], info["warnings"]
    x = np.random.default_rng(0).standard_normal((50, 70))
    assert_close(np.float64(info["loss"]), R.cross_entropy(x, np.arange(50) % 70))


def test_env_simd_default_is_best():
    info = run_probe()
    assert info["simd"] == fl.available_simd_levels()[-1]


def test_env_simd_unknown_warns_and_uses_best():
    info = run_probe(FASTLOSS_SIMD="sse9")
    assert info["simd"] == fl.available_simd_levels()[-1]
    assert any("FASTLOSS_SIMD" in w for w in info["warnings"]), info["warnings"]


# ---- SIMD levels ------------------------------------------------------------------------------------------

def test_set_simd_level_errors():
    before = fl.simd_level()
    with pytest.raises(ValueError):
        fl.set_simd_level("sse2")
    assert fl.simd_level() == before
    for level in fl.SIMD_LEVELS:
        if level not in fl.available_simd_levels():
            with pytest.raises(ValueError):
                fl.set_simd_level(level)
            assert fl.simd_level() == before


def test_available_simd_levels():
    levels = fl.available_simd_levels()
    assert "scalar" in levels
    assert set(levels) <= set(fl.SIMD_LEVELS)
    assert list(levels) == [lv for lv in fl.SIMD_LEVELS if lv in levels]  # best last


def test_set_simd_level_none_is_best(simd_level):
    assert fl.simd_level() == simd_level
    assert fl.set_simd_level(None) == fl.available_simd_levels()[-1]


def test_show_config(simd_level):
    out = io.StringIO()
    fl.show_config(file=out)
    text = out.getvalue()
    assert "openmp" in text.lower()
    assert simd_level in text
    assert fl.__version__ in text


def test_show_config_stdout(capsys):
    fl.show_config()
    text = capsys.readouterr().out
    assert "openmp" in text.lower() and fl.simd_level() in text


# Shapes around the kernels' internal sizes: vector widths, the few-classes tiles (16 rows of <= 32 classes),
# the 2048-element chunks of long rows, groups of rows.
SIMD_SHAPES = ((1, 1), (15, 3), (16, 31), (17, 32), (33, 33), (257, 7), (5, 2047), (4, 2048), (3, 2049), (2, 4097),
               (17, 1000))


def _edge_matrix(dtype, n_cols):
    """Rows with inf, -inf, nan, huge values at the start, middle and end of the row, plus normal rows."""
    h = 1e38 if np.dtype(dtype) == np.float32 else 1e308
    rng = np.random.default_rng(n_cols)
    rows = []
    for pos in sorted({0, n_cols // 2, n_cols - 1}):
        for v in (np.inf, -np.inf, np.nan, h, -h):
            r = rng.standard_normal(n_cols)
            r[pos] = v
            rows.append(r)
    rows.append(np.full(n_cols, -np.inf))
    rows.append(rng.standard_normal(n_cols) * 50)
    return np.array(rows).astype(dtype)


@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SIMD_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_simd_level_vs_oracle(simd_level, shape, dtype):
    rng = np.random.default_rng(shape[0] * 100003 + shape[1])
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    x64 = x.astype(F64)
    n, c = shape
    t = rng.integers(0, c, n)
    t[::5] = -100
    q = rng.random(shape) + 0.01
    q = (q / q.sum(-1, keepdims=True)).astype(dtype)
    w = rng.uniform(0.5, 2.0, c)
    for name in ("logsumexp", "softmax", "log_softmax"):
        assert_close(getattr(fl, name)(x), getattr(R, name)(x64), err_msg=f"{name} at {simd_level}")
    keep = t != -100
    den = max(1, int(keep.sum()))
    for kw in (dict(reduction="none"), dict(reduction="mean", weight=w, label_smoothing=0.1)):
        loss, grad = fl.cross_entropy_and_grad(x, t, **kw)
        assert_close(loss, R.cross_entropy(x64, t, **kw), err_msg=f"cross_entropy {kw} at {simd_level}")
        g = R.cross_entropy_grad(x64, t, **kw) if keep.any() else np.zeros_like(x64)
        scale = 2.0 / den if kw["reduction"] == "mean" else 1.0
        assert_close(grad, g, kind="grad", scale=scale, err_msg=f"grad {kw} at {simd_level}")
        loss, grad = fl.cross_entropy_and_grad(x, q, **kw)
        qq = q.astype(F64)
        assert_close(loss, R.cross_entropy(x64, qq, **kw), err_msg=f"prob cross_entropy {kw} at {simd_level}")
        assert_close(grad, R.cross_entropy_grad(x64, qq, **kw), kind="grad",
                     scale=2.0 / n if kw["reduction"] == "mean" else 1.0, err_msg=f"prob grad {kw} at {simd_level}")
        if keep.any():
            loss, grad = fl.nll_loss_and_grad(x, t, **{k: v for k, v in kw.items() if k != "label_smoothing"})
            e_loss, e_grad = R.nll_loss_and_grad(x64, t, **{k: v for k, v in kw.items() if k != "label_smoothing"})
            assert_close(loss, e_loss, err_msg=f"nll_loss {kw} at {simd_level}")
            assert_close(grad, e_grad, kind="grad", err_msg=f"nll grad {kw} at {simd_level}")


@pytest.mark.parametrize("dtype", (np.float32, np.float64), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n_cols", (7, 32, 33, 2050))
def test_simd_level_edge_values(simd_level, n_cols, dtype):
    x = _edge_matrix(dtype, n_cols)
    x64 = x.astype(F64)
    with np.errstate(all="ignore"):
        assert_close(fl.logsumexp(x), R.logsumexp(x64), err_msg=simd_level)
        assert_close(fl.softmax(x), R.softmax(x64), err_msg=simd_level)
        assert_close(fl.log_softmax(x), R.log_softmax(x64), err_msg=simd_level)
        t = np.arange(x.shape[0]) % n_cols
        loss, grad = fl.cross_entropy_and_grad(x, t, reduction="none")
        assert_close(loss, R.cross_entropy(x64, t, reduction="none"), err_msg=simd_level)
        assert_close(grad, R.cross_entropy_grad(x64, t, reduction="none"), kind="grad", scale=1.0,
                     err_msg=simd_level)


def test_simd_levels_agree_with_each_other():
    """Every level within tolerance of every other one (they may differ in the last bits only)."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 3000)) * 3).astype(np.float32)
    t = rng.integers(0, 3000, 64)
    before = fl.simd_level()
    results = {}
    try:
        for level in fl.available_simd_levels():
            fl.set_simd_level(level)
            results[level] = (fl.cross_entropy(x, t, reduction="none"), fl.softmax(x), fl.logsumexp(x))
    finally:
        fl.set_simd_level(before)
    base = results["scalar"]
    for level, res in results.items():
        for a, b in zip(res, base):
            assert_close(a, b.astype(F64), factor=2.0, err_msg=f"{level} vs scalar")


# ---- many Python threads at once -----------------------------------------------------------------------------

def test_python_threads_identical_to_serial():
    """8 Python threads x 50 calls each (the kernels release the GIL) give the results of serial calls."""
    rng = np.random.default_rng(17)
    inputs = []
    for k in range(16):
        dtype = np.float32 if k % 2 else np.float64
        x = (rng.standard_normal((64 + k, 1000)) * 3).astype(dtype)
        t = rng.integers(0, 1000, 64 + k)
        t[::9] = -100
        kw = dict(reduction=("mean", "sum", "none")[k % 3], label_smoothing=0.1 * (k % 2),
                  n_threads=1 + k % 2, sample_weight=rng.uniform(0.5, 2, 64 + k) if k % 4 == 0 else None)
        inputs.append((x, t, kw))
    serial = [fl.cross_entropy_and_grad(x, t, **kw) for x, t, kw in inputs]

    def job(worker):
        out = []
        for i in range(50):
            k = (worker * 7 + i) % len(inputs)
            x, t, kw = inputs[k]
            out.append((k, fl.cross_entropy(x, t, **kw), fl.cross_entropy_and_grad(x, t, **kw)))
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(job, range(8)))
    n_checked = 0
    for out in results:
        for k, loss, (loss_g, grad) in out:
            assert_identical(loss, serial[k][0], f"input {k}")
            assert_identical(loss_g, serial[k][0], f"input {k}")
            assert_identical(grad, serial[k][1], f"input {k}")
            n_checked += 1
    assert n_checked == 400


# ---- the few-classes tiles: every class count, short tiles, strided rows ----------------------------------------

def _tile_dtypes():
    out = [np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)]
    try:
        import ml_dtypes
        out.append(np.dtype(ml_dtypes.bfloat16))
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("dtype", _tile_dtypes(), ids=lambda d: d.name)
def test_tiles_every_class_count(simd_level, dtype):
    """Rows of 1 to 32 classes are transposed a tile of rows at a time (in registers where the level has a way,
    chunks of 8 or 4 classes): every class count, tiles cut short, rows further apart than their length. A row's
    results are its own: the same bits alone, in another order, and as the oracle says."""
    rng = np.random.default_rng(7)
    for n in range(1, 34):
        wide = (rng.standard_normal((19, n + 5)) * 4).astype(dtype)
        x = wide[:, 2:2 + n]  # row stride n + 5 elements, an odd offset
        t = rng.integers(0, n, x.shape[0])
        x64 = x.astype(F64)
        lse, (loss, grad) = fl.logsumexp(x), fl.cross_entropy_and_grad(x, t, reduction="none")
        assert_close(lse, R.logsumexp(x64), err_msg=f"n={n}")
        assert_close(loss, R.cross_entropy(x64, t, reduction="none"), err_msg=f"n={n}")
        assert_close(grad, R.cross_entropy_grad(x64, t, reduction="none"), kind="grad", err_msg=f"n={n}")
        perm = rng.permutation(x.shape[0])
        assert_identical(fl.logsumexp(x[perm]), lse[perm], err_msg=f"n={n} permuted")
        assert_identical(fl.cross_entropy(x[perm], t[perm], reduction="none"), loss[perm], err_msg=f"n={n}")
        for r in (0, 5, 18):  # alone: a tile of one row
            assert_identical(fl.logsumexp(x[r:r + 1]), lse[r:r + 1], err_msg=f"n={n} row {r}")
