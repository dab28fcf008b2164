"""pytest-benchmark cases: fastloss against its NumPy baseline and each installed peer (torch, JAX, scikit-learn,
SciPy) on the workloads of issue 5's goal table, at a small and a large (the goal's) size, grouped per workload.

Run with `pytest benchmarks/bench_peers.py` (not part of the default test run; the large sizes take minutes:
`-k small` for the small ones only). The implementations (same semantics, same arrays) and their thread
settings come from fastloss.bench (see its docstring): FASTLOSS_BENCH_THREADS (default 2) threads for fastloss,
torch (set_num_threads), JAX (PJRT_NPROC, set here before jax is imported) and sklearn._loss (n_threads).
A peer that is not installed, or a fastloss function that is not in this build, is skipped. Compare within one
run: absolute times drift on a shared machine. `python -m fastloss bench` is the report with the goals."""
import os

import pytest

pytest.importorskip("pytest_benchmark")

import fastloss as fl  # noqa: E402
from fastloss import bench  # noqa: E402

THREADS = int(os.environ.get("FASTLOSS_BENCH_THREADS", bench.DEFAULT_THREADS))
bench.configure_threads(THREADS)  # before any peer import

PEER_MODULES = {"torch": "torch", "jax": "jax", "sklearn": "sklearn", "scipy": "scipy"}


def _cases():
    """(id, workload, size name, shape, impl), in an order that keeps equal inputs adjacent."""
    seen, cases = set(), []
    for size in ("small", "large"):
        for wl in bench.WORKLOADS:
            shape = wl.quick_shape if size == "small" else wl.shape
            if wl.per_call and size == "large":
                continue  # the 4 x 10 workload has one size
            key = (wl.kind, shape, wl.dtype)
            if key in seen:
                continue
            seen.add(key)
            dims = "x".join(str(d) for d in shape)
            for impl in bench.KINDS[wl.kind].impls:
                cases.append(pytest.param(wl, shape, impl, id=f"{size}-{wl.kind}-{dims}-{wl.dtype}-{impl}"))
    return cases


@pytest.fixture(scope="module")
def peers():
    old = fl.get_num_threads()
    fl.set_num_threads(THREADS)
    yield bench.Peers(THREADS).load()
    fl.set_num_threads(old)


@pytest.fixture(scope="module")
def inputs():
    store = bench.Inputs()
    yield store
    store.clear()


@pytest.mark.parametrize("wl, shape, impl", _cases())
def test_peer(benchmark, peers, inputs, wl, shape, impl):
    if impl in PEER_MODULES:
        pytest.importorskip(PEER_MODULES[impl])
    try:
        arrays = inputs.get(wl.kind, shape, wl.dtype)
        run = bench.KINDS[wl.kind].impls[impl](arrays, peers)
    except bench.Skip as e:
        pytest.skip(str(e))
    run()  # warm-up outside the timing: first-call costs, JAX compilation
    benchmark.group = f"{wl.kind} {' x '.join(str(d) for d in shape)} {wl.dtype}"
    benchmark.extra_info.update({"impl": impl, "threads": THREADS,
                                 "input_bytes": bench.input_bytes(wl.kind, arrays),
                                 "output_bytes": bench.output_bytes(wl.kind, arrays)})
    benchmark(run)
