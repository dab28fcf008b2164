"""Large outputs and memory (_checks.py, "large outputs"; issue 17).

By default nothing is kept: a released output gives its memory back (RSS, in a subprocess), and a loop with
grad_out= / out= allocates nothing (tracemalloc). With the opt-in cache (fl.set_output_cache_mb,
FASTLOSS_OUTPUT_CACHE_MB), large outputs (>= 16 MiB) reuse the memory of earlier outputs that every array has
released: never memory that an array or view still uses, values as without the cache, a cap, a switch."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss as fl
from fastloss import _checks as ck
from fastloss import reference as ref

ROWS, COLS = 1100, 4096   # 18 MB of float32: above the threshold
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fl.__file__)))


def run_python(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k != "FASTLOSS_OUTPUT_CACHE_MB"}
    full_env.update(env)
    full_env["PYTHONPATH"] = REPO_ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-W", "always", "-c", textwrap.dedent(code)], env=full_env,
                          cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=300)


@pytest.fixture
def cache_on():
    """The opt-in cache, 1 GiB, for one test; off (and emptied) afterwards."""
    old = fl.set_output_cache_mb(1024)
    yield
    fl.set_output_cache_mb(old)
    fl.clear_output_cache()


# ---- by default: nothing kept ---------------------------------------------------------------------------------

_RSS_SCRIPT = """
import gc, json, sys
import numpy as np
import fastloss as fl

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

rng = np.random.default_rng(0)
x = rng.standard_normal((2048, 8192), dtype=np.float32)     # 64 MiB: outputs of this size are mmapped by malloc
y = rng.standard_normal((2048, 8192), dtype=np.float32)
labels = np.where(y > 0, 1.0, -1.0).astype(np.float32)
p = fl.softmax(y)
t = rng.integers(0, 8192, 2048)
kinds = {
    "cross_entropy_and_grad": lambda: fl.cross_entropy_and_grad(x, t)[1],
    "nll_loss_and_grad": lambda: fl.nll_loss_and_grad(x, t)[1],
    "softmax": lambda: fl.softmax(x),
    "log_softmax": lambda: fl.log_softmax(x),
    "cross_entropy_prob_and_grad": lambda: fl.cross_entropy_and_grad(x, p)[1],
    "mse_loss_and_grad": lambda: fl.mse_loss_and_grad(x, y)[1],
    "logistic_loss_and_grad": lambda: fl.logistic_loss_and_grad(x, labels)[1],
    "bce_with_logits_and_grad": lambda: fl.binary_cross_entropy_with_logits_and_grad(x, p)[1],
    "kl_div_and_grad": lambda: fl.kl_div_and_grad(x, p)[1],
    "multiclass_hinge_loss_and_grad": lambda: fl.multiclass_hinge_loss_and_grad(x, t)[1],
    "mse_loss_none": lambda: fl.mse_loss(x, y, reduction="none"),
    "softmax_axis0": lambda: fl.softmax(x, axis=0),
}
fl.cross_entropy_and_grad(x[:4], t[:4])  # warm up: first calls
gc.collect()
res = {}
for name, f in kinds.items():
    base = rss_mb()
    out = f()
    held = rss_mb() - base
    del out
    gc.collect()
    res[name] = (held, rss_mb() - base)
print(json.dumps(res))
"""


# the gradients written sparse into zeroed memory (one or two entries a row): resident are the pages the rows'
# entries fall on, at least 2,048 of 4 KiB (all of them where they are huge pages; the watch of a new output's
# pages may turn them small)
_SPARSE = {"nll_loss_and_grad", "multiclass_hinge_loss_and_grad"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS from /proc/self/statm")
def test_released_outputs_give_their_memory_back():
    """Each kind of large output (gradients of the class, element-wise and distribution losses, softmax,
    log_softmax, per-element losses), once released, leaves RSS within 32 MB of where it was: nothing kept."""
    res = json.loads(run_python(_RSS_SCRIPT).stdout.strip().splitlines()[-1])
    for name, (held, after) in res.items():
        least = 7.5 if name in _SPARSE else 48
        assert held > least, f"{name}: the 64 MiB output should be resident while held ({held:.0f} MB)"
        assert after < 32, f"{name}: RSS {after:.0f} MB above where it was after the output was released"


def test_grad_out_loop_allocates_nothing():
    """A training loop that passes grad_out= / out= allocates no array: tracemalloc (which NumPy reports its
    allocations to) sees less than 64 KiB at the peak for inputs of 16 MiB."""
    import tracemalloc
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1024, 4096), dtype=np.float32)
    y = rng.standard_normal((1024, 4096), dtype=np.float32)
    t = rng.integers(0, 4096, 1024)
    g = np.empty_like(x)

    def step():
        fl.cross_entropy_and_grad(x, t, grad_out=g)
        fl.nll_loss_and_grad(x, t, grad_out=g)
        fl.softmax(x, out=g)
        fl.log_softmax(x, out=g)
        fl.mse_loss_and_grad(x, y, grad_out=g)

    step()
    tracemalloc.start()
    try:
        for _ in range(5):
            step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 10, f"peak {peak} bytes traced in a grad_out= loop"


def test_off_by_default():
    out = run_python("""
        import numpy as np, fastloss as fl
        x = np.zeros((1100, 4096), np.float32)
        g = fl.cross_entropy_and_grad(x, np.zeros(1100, np.int64))[1]
        print(fl._checks._output_cache.max_bytes, g.base is None)
    """)
    assert out.stdout.split() == ["0", "True"]


def test_switched_on_by_the_environment():
    out = run_python("""
        import numpy as np, fastloss as fl
        x = np.zeros((1100, 4096), np.float32)
        g = fl.cross_entropy_and_grad(x, np.zeros(1100, np.int64))[1]
        print(fl._checks._output_cache.max_bytes >> 20, g.base is not None)
    """, FASTLOSS_OUTPUT_CACHE_MB="64")
    assert out.stdout.split() == ["64", "True"]


def test_set_output_cache_mb():
    old = fl.set_output_cache_mb(64)
    try:
        assert old == 0
        assert fl.set_output_cache_mb(128) == 64
        with pytest.raises(ValueError, match="mb must be >= 0"):
            fl.set_output_cache_mb(-1)
        with pytest.raises(TypeError, match="mb must be an integer"):
            fl.set_output_cache_mb(1.5)
        assert fl.set_output_cache_mb(np.int64(32)) == 128
        x, t = _inputs()
        grads = [fl.cross_entropy_and_grad(x, t)[1] for _ in range(2)]
        del grads
        assert sum(r.nbytes for r in ck._output_cache.free) > 0
        fl.set_output_cache_mb(0)                        # off: what was kept is given back
        assert ck._output_cache.free == []
        g = fl.cross_entropy_and_grad(x, t)[1]
        assert g.base is None
    finally:
        fl.set_output_cache_mb(old)
        fl.clear_output_cache()


# ---- the opt-in cache ---------------------------------------------------------------------------------------


def _inputs():
    rng = np.random.default_rng(3)
    return (rng.standard_normal((ROWS, COLS)) * 2).astype(np.float32), rng.integers(0, COLS, ROWS)


def test_memory_in_use_is_never_handed_out(cache_on):
    fl.clear_output_cache()
    x, t = _inputs()
    _, g1 = fl.cross_entropy_and_grad(x, t)
    view = g1[5:7]
    del g1                                    # a view still holds the memory
    _, g2 = fl.cross_entropy_and_grad(x, t)
    assert not np.shares_memory(view, g2)
    before = view.copy()
    sm = fl.softmax(x, axis=-1)
    assert not np.shares_memory(view, sm) and not np.shares_memory(g2, sm)
    np.testing.assert_array_equal(view, before)


def test_released_memory_is_reused_with_the_right_values(cache_on):
    fl.clear_output_cache()
    x, t = _inputs()
    _, g1 = fl.cross_entropy_and_grad(x, t)
    address = g1.ctypes.data
    g1[:] = np.nan                            # garbage left in the memory
    del g1
    _, g2 = fl.cross_entropy_and_grad(x, t)
    assert g2.ctypes.data == address          # the same memory, reused
    _, want = fl.cross_entropy_and_grad(x, t, grad_out=np.empty_like(x))
    np.testing.assert_array_equal(g2, want)
    assert g2.flags.c_contiguous and g2.flags.writeable and g2.flags.aligned and g2.ctypes.data % 64 == 0


def test_nll_grad_from_the_cache_is_written_whole(cache_on):
    # a new nll gradient with the cache on is reused memory, not zeros: the kernel writes every entry
    fl.clear_output_cache()
    x, t = _inputs()
    t[::5] = -100                             # ignored rows: all zeros
    _, g1 = fl.nll_loss_and_grad(x, t)
    address = g1.ctypes.data
    g1[:] = np.nan
    del g1
    _, g2 = fl.nll_loss_and_grad(x, t)
    assert g2.ctypes.data == address
    _, want = fl.nll_loss_and_grad(x, t, grad_out=np.full_like(x, np.nan))
    np.testing.assert_array_equal(g2, want)
    assert np.count_nonzero(g2) == np.count_nonzero(t != -100)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"reduction": "sum", "ignore": True},
                                     {"weight": True, "sample_weight": True, "reduction": "none"}])
def test_large_new_nll_grad_is_zeros_but_the_targets(dtype, options):
    # with the cache off, a new nll gradient of >= 16 MiB is np.zeros (ck.new_zeroed_output) and the kernel
    # writes only the targets' entries: the same values as into a caller's grad_out of garbage
    rng = np.random.default_rng(11)
    x = rng.standard_normal((ROWS, COLS)).astype(dtype)
    t = rng.integers(0, COLS, ROWS)
    kw = {"reduction": options.get("reduction", "mean")}
    if options.get("ignore"):
        t[::3] = -100
    if options.get("weight"):
        kw["weight"] = rng.random(COLS)
    if options.get("sample_weight"):
        kw["sample_weight"] = rng.random(ROWS)
    old = fl.set_output_cache_mb(0)
    try:
        assert ck.new_zeroed_output(x.shape, np.dtype(np.float64 if dtype == np.float64 else np.float32))[1]
        loss, g = fl.nll_loss_and_grad(x, t, **kw)
    finally:
        fl.set_output_cache_mb(old)
    assert g.nbytes >= ck.OUTPUT_CACHE_MIN  # float16 logits: a float32 gradient
    loss2, g2 = fl.nll_loss_and_grad(x, t, grad_out=np.full_like(g, np.nan), **kw)
    np.testing.assert_array_equal(loss, loss2)
    np.testing.assert_array_equal(g, g2)
    rl, rg = ref.nll_loss_and_grad(x, t, **kw)
    np.testing.assert_allclose(g, rg, rtol=1e-6, atol=0)
    np.testing.assert_allclose(loss, rl, rtol=1e-5)
    assert np.count_nonzero(g) == np.count_nonzero(t != -100)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"reduction": "sum"},
                                     {"weight": True, "sample_weight": True, "reduction": "none"}])
def test_large_new_crammer_singer_grad_is_zeros_but_two_a_row(dtype, options):
    # as nll's: a new crammer_singer gradient of >= 16 MiB is np.zeros, the kernel writing each row's (at most)
    # two nonzero entries; rows past the margin (no gradient), a tied rival, a nan row
    rng = np.random.default_rng(12)
    x = rng.standard_normal((ROWS, COLS)).astype(dtype)
    t = rng.integers(0, COLS, ROWS)
    x[::4][np.arange(len(x[::4])), t[::4]] = 50.0   # the target far ahead: z <= 0, a row of zeros
    x[1, :] = 0.0
    x[1, t[1]] = -1.0                                # every rival tied: the first one gets the +w_t
    x[2, 3] = np.nan                                 # a nan: the loss nan, no gradient entry
    kw = {"reduction": options.get("reduction", "mean")}
    if options.get("weight"):
        kw["weight"] = rng.random(COLS)
    if options.get("sample_weight"):
        kw["sample_weight"] = rng.random(ROWS)
    f = fl.multiclass_hinge_loss_and_grad
    old = fl.set_output_cache_mb(0)
    try:
        assert ck.new_zeroed_output(x.shape, np.dtype(np.float64 if dtype == np.float64 else np.float32))[1]
        loss, g = f(x, t, kind="crammer_singer", **kw)
    finally:
        fl.set_output_cache_mb(old)
    assert g.nbytes >= ck.OUTPUT_CACHE_MIN
    loss2, g2 = f(x, t, kind="crammer_singer", grad_out=np.full_like(g, np.nan), **kw)
    np.testing.assert_array_equal(loss, loss2)
    np.testing.assert_array_equal(g, g2)
    rl, rg = ref.multiclass_hinge_loss_and_grad(x, t, kind="crammer_singer", **kw)
    np.testing.assert_allclose(g, rg, rtol=1e-6, atol=0)
    assert 0 < np.count_nonzero(g) <= 2 * ROWS and not np.any(g[::4])


def test_small_outputs_and_caller_buffers_are_not_cached():
    x, t = _inputs()
    _, g = fl.cross_entropy_and_grad(x[:10], t[:10])
    assert g.base is None
    out = np.empty_like(x)
    _, g = fl.cross_entropy_and_grad(x, t, grad_out=out)
    assert g is out


def test_clear_and_cap(cache_on):
    x, t = _inputs()
    grads = [fl.cross_entropy_and_grad(x, t)[1] for _ in range(3)]
    del grads
    assert 0 < sum(r.nbytes for r in ck._output_cache.free) <= ck._output_cache.max_bytes
    fl.clear_output_cache()
    assert ck._output_cache.free == []


def test_concurrent_calls_get_their_own_memory(cache_on):
    """Threads asking for and releasing outputs of two sizes at once: every output has its own memory of its
    own size, with the right values (the cache's list is locked between search and pop)."""
    import threading
    x, t = _inputs()
    big = np.concatenate([x, x[:100]])
    tb = np.concatenate([t, t[:100]])
    want = {n: fl.cross_entropy_and_grad(a, b)[1] for n, (a, b) in {ROWS: (x, t), ROWS + 100: (big, tb)}.items()}
    errors = []

    def work(a, b):
        for _ in range(15):
            g = fl.cross_entropy_and_grad(a, b)[1]
            if g.shape[0] != a.shape[0] or not np.array_equal(g, want[a.shape[0]]):
                errors.append(g.shape)

    threads = [threading.Thread(target=work, args=p) for p in [(x, t), (big, tb), (x, t), (big, tb)]]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def test_bad_environment_value_warns():
    code = "import fastloss as fl; print(fl._checks._output_cache.max_bytes >> 20)"
    out = run_python(code, FASTLOSS_OUTPUT_CACHE_MB="lots")
    assert out.stdout.strip() == "0" and "FASTLOSS_OUTPUT_CACHE_MB" in out.stderr


# ---- a new output's pages, watched by the kernel that writes it (_kernels.watch_output, src_c/process.h) -------

_HUGE = 2 << 20
_MB64 = 64 << 20


def _vma_flags(addr):
    """The VmFlags of the mapping of this process that holds addr (/proc/self/smaps)."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head[0].split("-")) == 2 and ":" not in head[0]:
                try:
                    lo, hi = (int(v, 16) for v in head[0].split("-"))
                except ValueError:
                    continue
                inside = lo <= addr < hi
            elif inside and line.startswith("VmFlags:"):
                return line.split()[1:]
    return None


def _last_huge_page(a):
    return (a.ctypes.data + a.nbytes - _HUGE) & ~(_HUGE - 1)


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise / mincore / smaps")


@linux_only
@pytest.mark.parametrize("n_threads", [1, 2])
def test_watched_output_turns_to_small_pages_when_pages_are_slow(n_threads):
    """With a threshold of 0 ns every page is 'slow': after three, the rest of a new 64 MiB output is advised to
    small pages (VmFlags nh on its mapping) during the softmax that writes it, whose values are those written
    into a held array."""
    x = np.random.default_rng(0).standard_normal((_MB64 // 4 // 1000, 1000), dtype=np.float32)
    out = np.empty_like(x)
    assert ck._kernels.watch_output(out, 0) is True
    fl.softmax(x, out=out, n_threads=n_threads)
    flags = _vma_flags(_last_huge_page(out))
    assert flags is not None and "nh" in flags, flags
    np.testing.assert_array_equal(out, fl.softmax(x, out=np.full_like(x, np.nan), n_threads=n_threads))


@linux_only
def test_watched_output_keeps_huge_pages_when_none_is_slow():
    """With a threshold of 10 s no page is slow: the kernel's output is written whole (RSS grows by nearly its
    size), nothing is advised."""
    x = np.ones((_MB64 // 4 // 1000, 1000), np.float32)
    out = np.empty_like(x)
    before = _rss_mb()
    assert ck._kernels.watch_output(out, 10**10) is True
    fl.softmax(x, out=out)
    assert _rss_mb() - before > 48
    assert "nh" not in (_vma_flags(_last_huge_page(out)) or [])
    assert np.all(out == np.float32(1e-3))


@linux_only
def test_watch_left_to_the_loop_that_writes():
    """cross_entropy_and_grad checks its targets in a loop of its own before the one that writes the gradient:
    the watch is taken by the second (the rest turned small there), and dropped at the call's end (the next
    output can be watched again)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4096, 4096), np.float32)
    t = rng.integers(0, 4096, 4096)
    g = np.empty_like(x)
    assert ck._kernels.watch_output(g, 0) is True
    loss, g = fl.cross_entropy_and_grad(x, t, grad_out=g)
    assert "nh" in (_vma_flags(_last_huge_page(g)) or [])
    held = np.full_like(x, np.nan)
    assert fl.cross_entropy_and_grad(x, t, grad_out=held)[0] == loss and np.array_equal(g, held)
    assert ck._kernels.watch_output(np.empty_like(x), 0) is True
    fl.cross_entropy(x, t)  # the call that drops it


@linux_only
@pytest.mark.parametrize("size", [_MB64 // 4, 1 << 20])
def test_watch_leaves_memory_in_use_alone(size):
    """Memory already written (a caller's array) or an output too small to matter: not watched (False), and a
    kernel's call after it writes as before, nothing advised."""
    a = np.full(size, 7.0, np.float32)
    assert ck._kernels.watch_output(a, 0) is False
    fl.softmax(a.reshape(-1, 1024), out=a.reshape(-1, 1024))
    assert np.all(a == np.float32(1 / 1024))
    assert "nh" not in (_vma_flags(_last_huge_page(a)) or [])


@linux_only
def test_watch_holds_four_outputs_a_call():
    """At most four outputs are watched for one call; the call's end drops them all (four new ones can then be
    watched)."""
    arrays = [np.empty(_MB64 // 4, np.float32) for _ in range(5)]
    assert [ck._kernels.watch_output(a, 10**10) for a in arrays] == [True] * 4 + [False]
    fl.logsumexp(np.ones((4, 4), np.float32))
    more = [np.empty(_MB64 // 4, np.float32) for _ in range(4)]
    assert all(ck._kernels.watch_output(a, 10**10) for a in more)
    fl.logsumexp(np.ones((4, 4), np.float32))


@linux_only
def test_outputs_on_small_pages_give_the_same_results(monkeypatch):
    """The library's new outputs with every page 'slow' (the rest on small pages): dense, sparse (zeroed) and
    two-output kinds equal those written into held arrays."""
    real = ck._kernels.watch_output
    calls = []
    monkeypatch.setattr(ck, "_reporting", [True])
    monkeypatch.setattr(ck._kernels, "watch_output", lambda a, s=-1: calls.append(real(a, 0)) or calls[-1])
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2048, 4096), dtype=np.float32)
    t = rng.integers(0, 4096, 2048)
    for fn in (fl.cross_entropy_and_grad, fl.nll_loss_and_grad, fl.multiclass_hinge_loss_and_grad):
        loss, g = fn(x, t)
        held = np.full_like(x, np.nan)
        loss2, g2 = fn(x, t, grad_out=held)
        assert loss == loss2 and np.array_equal(g, g2), fn.__name__
    loss, g, h = fl.cross_entropy_grad_hess(x, t)
    loss2, g2, h2 = fl.cross_entropy_grad_hess(x, t, grad_out=np.empty_like(g), hess_out=np.empty_like(h))
    assert loss == loss2 and np.array_equal(g, g2) and np.array_equal(h, h2)
    z = x.ravel()
    y = (z > 0.5).astype(np.float32)
    loss, g, h = fl.binary_cross_entropy_with_logits_grad_hess(z, y)
    loss2, g2, h2 = fl.binary_cross_entropy_with_logits_grad_hess(z, y, grad_out=np.empty_like(z),
                                                                   hess_out=np.empty_like(z))
    assert loss == loss2 and np.array_equal(g, g2) and np.array_equal(h, h2)
    assert calls and all(calls), calls


@linux_only
def test_small_pages_advises_whole_extents_only():
    """small_pages turns a new array's whole 2 MiB extents to 4 KiB pages (VmFlags nh) and changes no byte; an
    array within one extent: nothing to advise (False)."""
    a = np.zeros(_MB64 // 4, np.float32)
    assert ck._kernels.small_pages(a) is True
    assert "nh" in (_vma_flags(_last_huge_page(a)) or [])
    assert not a.any()
    assert ck._kernels.small_pages(np.zeros(1000, np.float32)) is False


@linux_only
@pytest.mark.parametrize("n_cols,per_row,small", [(32768, 1, True), (4096, 1, True), (2048, 1, False),
                                                  (8192, 2, True), (4096, 2, False)])
def test_sparse_outputs_on_small_pages_where_rows_are_long(monkeypatch, n_cols, per_row, small):
    """A new zeroed output (nll_loss's, crammer_singer's gradients) is on small pages where a row spans at least
    SMALL_PAGE_ROW_PAGES 4 KiB pages a nonzero (float32: 4,096 classes for one nonzero a row, 8,192 for two), and
    is left to the watch otherwise; all zeros either way."""
    calls = []
    monkeypatch.setattr(ck, "_reporting", [True])
    monkeypatch.setattr(ck._kernels, "watch_output", lambda a, s=-1: calls.append(a.nbytes) or False)
    g, zeroed = ck.new_zeroed_output((_MB64 // 4 // n_cols, n_cols), np.dtype(np.float32), per_row)
    assert zeroed and not g.any()
    assert ("nh" in (_vma_flags(_last_huge_page(g)) or [])) is small
    assert (not calls) is small


@pytest.mark.parametrize("reported,watching,expected", [(True, False, True), (True, True, False),
                                                       (False, False, False), (False, True, False)])
def test_zeroed_outputs_on_small_pages_where_free_pages_are_reported(monkeypatch, reported, watching, expected):
    """Every new zeroed output goes to small pages on a VM that reports free pages, unless the watch is on
    (which handles its pages); elsewhere only those of long rows do."""
    monkeypatch.setattr(ck, "_reported", [reported])
    monkeypatch.setattr(ck, "_reporting", [watching])
    assert ck._small_pages_for_zeros() is expected


def test_free_page_reporting_is_read_once_for_zeroed_outputs(monkeypatch):
    """Unsettled, _small_pages_for_zeros reads free_page_reporting() once and keeps the answer."""
    calls = []
    monkeypatch.setattr(ck, "_reported", [])
    monkeypatch.setattr(ck, "_reporting", [False])
    monkeypatch.setattr(ck, "free_page_reporting", lambda: calls.append(1) or True)
    assert ck._small_pages_for_zeros() is True and ck._small_pages_for_zeros() is True
    assert calls == [1] and ck._reported == [True]


@linux_only
@pytest.mark.parametrize("reported", [False, True])
@pytest.mark.parametrize("fn,kw,per_row", [(fl.nll_loss_and_grad, {}, 1),
                                           (fl.multiclass_hinge_loss_and_grad, {"kind": "crammer_singer"}, 2)])
def test_short_rows_zeroed_output_on_small_pages_where_reported(monkeypatch, reported, fn, kw, per_row):
    """Rows of 1,000 float32 (too short for the long-row rule): the new zeroed gradient is on small pages where
    free pages are reported (and the watch is off), on huge pages elsewhere; all zeros before the kernel, and the
    kernel's gradient equals the one written into a held array either way."""
    monkeypatch.setattr(ck, "_reported", [reported])
    monkeypatch.setattr(ck, "_reporting", [False])
    g, zeroed = ck.new_zeroed_output((_MB64 // 4 // 1000, 1000), np.dtype(np.float32), per_row)
    assert zeroed and not g.any()
    assert ("nh" in (_vma_flags(_last_huge_page(g)) or [])) is reported
    rng = np.random.default_rng(11)
    x = rng.standard_normal((_MB64 // 4 // 1000, 1000), dtype=np.float32)
    t = rng.integers(0, 1000, x.shape[0])
    loss, g = fn(x, t, **kw)
    loss2, g2 = fn(x, t, grad_out=np.full_like(x, np.nan), **kw)
    assert loss == loss2 and np.array_equal(g, g2)


@linux_only
@pytest.mark.parametrize("fn,kw", [(fl.nll_loss_and_grad, {}),
                                   (fl.multiclass_hinge_loss_and_grad, {"kind": "crammer_singer"})])
def test_sparse_gradients_on_small_pages_touch_few_pages(fn, kw):
    """nll_loss's and crammer_singer's new gradients of long rows: the values of a held gradient, and only the
    pages their nonzeros fall on resident (RSS: 512 rows of 32,768 float32, a 64 MiB gradient, grows by far less
    than 64 MiB)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((512, 32768), dtype=np.float32)
    t = rng.integers(0, 32768, 512)
    fn(x, t, **kw)
    before = _rss_mb()
    loss, g = fn(x, t, **kw)
    grown = _rss_mb() - before
    held = np.full_like(x, np.nan)
    loss2, g2 = fn(x, t, grad_out=held, **kw)
    assert loss == loss2 and np.array_equal(g, g2)
    assert grown < 16, f"{grown:.0f} MB resident for a 64 MiB gradient of one or two nonzeros a row"


def _fake_device(root, name, device, features):
    d = root / name
    d.mkdir()
    (d / "device").write_text(device + "\n")
    (d / "features").write_text(features + "\n")


def test_free_page_reporting_reads_the_balloon_feature(tmp_path):
    """A virtio balloon (device 0x0005) with feature bit 5 (VIRTIO_BALLOON_F_REPORTING) set: True; the bit
    clear, the bit on another device, no devices directory: False."""
    assert ck.free_page_reporting(str(tmp_path / "missing")) is False
    _fake_device(tmp_path, "virtio0", "0x0002", "0010011000")   # a console with bit 5 set: not a balloon
    _fake_device(tmp_path, "virtio1", "0x0005", "0110000000")   # a balloon without reporting
    assert ck.free_page_reporting(str(tmp_path)) is False
    _fake_device(tmp_path, "virtio2", "0x0005", "0110010000")   # a balloon that reports free pages
    assert ck.free_page_reporting(str(tmp_path)) is True


@pytest.mark.parametrize("env,reporting,expected", [("", True, False), ("0", True, False), ("1", True, True),
                                                     ("", False, False), ("1", False, False)])
def test_pages_watched_when_asked_where_reported(monkeypatch, env, reporting, expected):
    """New outputs' pages are watched only with FASTLOSS_FRESH_PAGES=1 and on a VM that reports free pages."""
    monkeypatch.setenv("FASTLOSS_FRESH_PAGES", env)
    monkeypatch.setattr(ck, "free_page_reporting", lambda: reporting)
    assert ck._watching() is expected


@linux_only
@pytest.mark.parametrize("reporting", [False, True])
def test_new_outputs_watched_only_where_pages_are_reported(monkeypatch, reporting):
    """The library's new large outputs are registered with watch_output where the watch is on (_reporting),
    and nowhere else."""
    calls = []
    monkeypatch.setattr(ck, "_reporting", [reporting])
    monkeypatch.setattr(ck._kernels, "watch_output", lambda a, s=-1: calls.append(a.nbytes) or False)
    x = np.zeros((2048, 4096), np.float32)
    fl.softmax(x)
    fl.cross_entropy_and_grad(x, np.zeros(2048, np.int64))
    assert (len(calls) == 2) == reporting and (not calls) == (not reporting), calls
