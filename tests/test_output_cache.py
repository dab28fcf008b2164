"""Large outputs (>= 16 MiB) reuse the memory of earlier outputs that every array has released (_checks.py,
"large outputs"): never memory that an array or view still uses, values as without the cache, a cap, a switch."""
import os
import subprocess
import sys

import numpy as np

import fastloss as fl
from fastloss import _checks as ck

ROWS, COLS = 1100, 4096   # 18 MB of float32: above the threshold


def _inputs():
    rng = np.random.default_rng(3)
    return (rng.standard_normal((ROWS, COLS)) * 2).astype(np.float32), rng.integers(0, COLS, ROWS)


def test_memory_in_use_is_never_handed_out():
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


def test_released_memory_is_reused_with_the_right_values():
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


def test_small_outputs_and_caller_buffers_are_not_cached():
    x, t = _inputs()
    _, g = fl.cross_entropy_and_grad(x[:10], t[:10])
    assert g.base is None
    out = np.empty_like(x)
    _, g = fl.cross_entropy_and_grad(x, t, grad_out=out)
    assert g is out


def test_clear_and_cap():
    x, t = _inputs()
    grads = [fl.cross_entropy_and_grad(x, t)[1] for _ in range(3)]
    del grads
    assert 0 < sum(r.nbytes for r in ck._output_cache.free) <= ck._output_cache.max_bytes
    fl.clear_output_cache()
    assert ck._output_cache.free == []


def test_switched_off_by_the_environment():
    code = ("import numpy as np, fastloss as fl; x = np.zeros((1100, 4096), np.float32); "
            "g = fl.cross_entropy_and_grad(x, np.zeros(1100, np.int64))[1]; print(g.base is None)")
    env = dict(os.environ, FASTLOSS_OUTPUT_CACHE_MB="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_concurrent_calls_get_their_own_memory():
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
    env = dict(os.environ, FASTLOSS_OUTPUT_CACHE_MB="lots")
    out = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "1024" and "FASTLOSS_OUTPUT_CACHE_MB" in out.stderr
