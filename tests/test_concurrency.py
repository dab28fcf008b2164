"""Many Python threads calling fastloss at once get the bits of serial calls; many calls, failing ones included,
do not grow resident memory."""
import threading

import numpy as np
import pytest

import fastloss as fl

from conftest import assert_identical

rng = np.random.default_rng(11)
X32 = rng.standard_normal((64, 300)).astype(np.float32)
X64 = rng.standard_normal((64, 300))
T = rng.integers(0, 300, 64)
Y = np.where(rng.random((64, 300)) < 0.5, -1.0, 1.0)
P = rng.random((64, 300))

# name, call: each returns a tuple of arrays
CALLS = {
    "cross_entropy_and_grad": lambda: fl.cross_entropy_and_grad(X32, T, label_smoothing=0.1),
    "nll_loss": lambda: (fl.nll_loss(X64, T, reduction="none"),),
    "softmax": lambda: (fl.softmax(X64),),
    "logsumexp": lambda: (fl.logsumexp(X32, axis=0),),
    "logistic_loss_and_grad": lambda: fl.logistic_loss_and_grad(X64, Y),
    "multiclass_hinge_loss_and_grad": lambda: fl.multiclass_hinge_loss_and_grad(X32, T, kind="weston_watkins"),
    "huber_loss_and_grad": lambda: fl.huber_loss_and_grad(X64, P, n_threads=2),
    "bce_and_grad": lambda: fl.binary_cross_entropy_with_logits_and_grad(X32, P.astype(np.float32)),
    "kl_divergence": lambda: (fl.kl_divergence(P, P[::-1]),),
}
N_THREADS, N_CALLS = 8, 200


def run_threads(work):
    errors = []

    def body(i):
        try:
            work(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("mixed", [False, True], ids=["same_function", "different_functions"])
def test_threads_give_the_serial_bits(mixed):
    names = sorted(CALLS)
    expected = {name: CALLS[name]() for name in names}
    results = [[] for _ in range(N_THREADS)]

    def work(i):
        for k in range(N_CALLS):
            name = names[(i + k) % len(names)] if mixed else names[0]
            results[i].append((name, CALLS[name]()))

    run_threads(work)
    for per_thread in results:
        assert len(per_thread) == N_CALLS
        for name, got in per_thread:
            for g, e in zip(got, expected[name]):
                assert_identical(g, e, err_msg=name)


def test_threads_with_errors_leave_buffers_and_results_intact():
    """Failing calls on some threads (IndexError, ValueError) do not disturb good calls on others."""
    good = fl.cross_entropy_and_grad(X64, T)
    bad_t = T.copy()
    bad_t[5] = 300

    def work(i):
        for _ in range(N_CALLS // 2):
            if i % 2:
                buf = np.full(X64.shape, 3.0)
                with pytest.raises(IndexError):
                    fl.cross_entropy_and_grad(X64, bad_t, grad_out=buf)
                assert (buf == 3.0).all()
            else:
                got = fl.cross_entropy_and_grad(X64, T)
                assert_identical(got[0], good[0])
                assert_identical(got[1], good[1])

    run_threads(work)


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


SMALL_X = rng.standard_normal((4, 7))
SMALL_T = rng.integers(0, 7, 4)
BAD_T = np.array([0, 9, 1, 2])


def one_round():
    """One of each: a success and each error type."""
    fl.cross_entropy_and_grad(SMALL_X, SMALL_T)
    fl.hinge_loss(SMALL_X, np.sign(SMALL_X) + (SMALL_X == 0))
    fl.entropy(np.abs(SMALL_X))
    for call, exc in ((lambda: fl.cross_entropy(SMALL_X, BAD_T), IndexError),
                      (lambda: fl.hinge_loss(SMALL_X, SMALL_X), ValueError),
                      (lambda: fl.mse_loss(SMALL_X, SMALL_X.astype(complex)), TypeError),
                      (lambda: fl.entropy(-np.abs(SMALL_X) - 1), ValueError),
                      (lambda: fl.softmax(SMALL_X, out=np.zeros((4, 7), np.float32)), TypeError)):
        try:
            call()
        except exc:
            pass
        else:
            raise AssertionError("no error")


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_twenty_thousand_calls_do_not_grow_memory():
    calls_per_round = 8
    for _ in range(200):  # warm-up: caches, interned strings, NumPy's small-array cache
        one_round()
    before = resident_bytes()
    for _ in range(20000 // calls_per_round):
        one_round()
    grown = resident_bytes() - before
    assert grown < 8 * 2 ** 20, f"resident memory grew by {grown / 2 ** 20:.1f} MB over 20,000 calls"
