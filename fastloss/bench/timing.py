"""Timing: interleaved rounds, and the floors (the memory system's pace, measured in the same run).

Interleaving: per workload, one untimed warm-up call of each implementation (it also compiles the JAX functions),
then `repeat` rounds in which each implementation is timed once (time.perf_counter, wall clock), in the orders
of a Williams design (balanced_orders: over its rounds each implementation follows each other equally often;
what ran just before a call, and what it left in the caches, is then the same for all), each call after PAUSE_S
of idle time (so that the previous implementation's spinning worker threads are asleep). On a shared machine
the load of other processes comes and goes over seconds; timed in
blocks, one implementation could be measured in a busy spell and another in a quiet one (ratios of one binary
moved by up to 1.5x between runs); interleaved, all see the same conditions (as Google Benchmark's
--benchmark_enable_random_interleaving). Calls slower than 1 s get 3 runs, slower than 3 s one run; calls faster
than 1 ms get three times the rounds (runs_for).

Floors: a streaming read of a buffer much larger than the last-level cache (fl_stream_read_f32 in
src_c/bench_kernels.c: a sum in vector lanes, OpenMP over blocks, the bench's threads) gives the read bandwidth;
a streaming fill of it the write bandwidth. A workload's floor is bytes read / read bandwidth + bytes written /
write bandwidth: no implementation that reads its input once can beat it. The bandwidth of a shared machine
moves with the others' load (here 4-8 GB/s within the hour), so the floor is also measured in the workload's own
rounds (floor_sampler: its inputs streamed, its outputs' bytes filled, interleaved with the implementations):
that measured floor is the one the report divides by; the one from the bandwidth at the start is recorded too.
"""
import time

import numpy as np

PAUSE_S = 0.03  # idle time before each interleaved call (see measure_interleaved)
BANDWIDTH_BYTES = 256 << 20  # 8x the 32 MiB L3 of the development machines: the read comes from memory


def per_call_loop(run):
    """For a per-call workload: a function timing one sample, a loop of calls sized to ~20 ms (per call)."""
    clock = time.perf_counter
    for _ in range(20):
        run()
    t0 = clock()
    for _ in range(200):
        run()
    k = int(min(max(0.02 / max((clock() - t0) / 200, 1e-9), 20), 1_000_000))

    def sample():
        t0 = clock()
        for _ in range(k):
            run()
        return (clock() - t0) / k
    return sample


def one_call(run):
    def sample():
        t0 = time.perf_counter()
        run()
        return time.perf_counter() - t0
    return sample


SHORT_CALL_S = 1e-3  # single calls faster than this get SHORT_CALL_ROUNDS times the rounds (see runs_for)
SHORT_CALL_ROUNDS = 3


def runs_for(first, repeat, short_rounds=1):
    """The samples an implementation gets, from its first one: `repeat`; at most 3 for calls over 1 s, 1 over 3 s;
    and short_rounds x `repeat` under 1 ms (the interleaved rounds of a single call each). A sub-millisecond call
    after an idle pause varies by 2-4x from call to call (where its few cache lines and pages are, whether a
    worker is awake): nll_loss 4,096 x 32,000 float64 took 0.07-0.31 ms in one sweep cell and torch's
    0.05-0.32 ms, medians of 5 put it at 0.89x torch there and at 1.28x in float32; the extra rounds cost the
    cell well under a second."""
    if first < SHORT_CALL_S:
        return short_rounds * repeat
    return repeat if first < 1.0 else (min(repeat, 3) if first < 3.0 else 1)


def measure(run, repeat, per_call=False):
    """(samples in seconds, first result) of one implementation alone: one warm-up call, then `repeat` timed
    calls; for calls slower than 1 s only 3 (3 s: 1). per_call: each sample times a loop of calls sized to
    ~20 ms and is the time per call. (The throughput plot; the workloads interleave, see measure_interleaved.)"""
    out = run()  # warm-up: first-call costs, JAX compilation
    sample = per_call_loop(run) if per_call else one_call(run)
    samples = [sample()]
    for _ in range(runs_for(samples[0], repeat) - 1):
        samples.append(sample())
    return samples, out


def balanced_orders(n):
    """The round orders of a Williams design for n implementations: in each order every index once, and over the
    orders (n of them for even n, 2n for odd n) each index directly follows each other index equally often (once
    for even n, twice for odd n), and a run of fewer rounds than a cycle gives each index varied predecessors.
    A rotation of one order (round r starts at index r) would not do: it keeps the cyclic order, so the first
    implementation always followed the last (the floor's sampler, which streams the input and leaves the caches
    holding its end)."""
    if n <= 0:
        return [[]]
    first, lo, hi = [0], 1, n - 1
    while lo <= hi:
        first.append(lo)
        lo += 1
        if lo <= hi:
            first.append(hi)
            hi -= 1
    orders = [[(i + r) % n for i in first] for r in range(n)]
    # odd n: each order then its reverse, so that the first rounds (a sweep takes 5) already vary the predecessors
    return [o for order in orders for o in (order, order[::-1])] if n % 2 else orders


def measure_interleaved(samplers, repeat, pause=PAUSE_S, short_rounds=1):
    """{name: samples} for the implementations of one workload timed in rounds: each round times one sample
    of each implementation, in the rounds' orders of balanced_orders (each follows each other equally often
    over a cycle of them), after `pause` s of idle time. On a shared machine, load from other processes comes and
    goes over seconds; timed one after another, one implementation's samples could all fall in a busy spell and
    another's in a quiet one; interleaved, every implementation sees the same spells. The pause lets the previous
    implementation's worker threads stop spinning (an OpenMP team spins for milliseconds after a parallel
    region) so that they do not slow the next one. Implementations slower than 1 s get at most 3 samples
    (3 s: 1), as in measure; faster than 1 ms short_rounds x `repeat` (runs_for: SHORT_CALL_ROUNDS where each
    sample is one call, 1 where a sample is a loop's time per call, or the bandwidth). Returns (samples, errors): an
    implementation that raises is dropped."""
    names = list(samplers)
    orders = balanced_orders(len(names))
    samples = {k: [] for k in names}
    want, errors = {}, {}
    for r in range(short_rounds * repeat):  # rounds past `repeat` only for the short calls (runs_for)
        if r >= repeat and all(k in errors or len(samples[k]) >= want.get(k, repeat) for k in names):
            break
        for k in (names[i] for i in orders[r % len(orders)]):
            if k in errors or len(samples[k]) >= want.get(k, repeat):
                continue
            if pause:
                time.sleep(pause)
            try:
                samples[k].append(samplers[k]())
            except Exception as e:  # noqa: BLE001 - reported on the implementation's row
                errors[k] = e
                continue
            want.setdefault(k, runs_for(samples[k][0], repeat, short_rounds))
    return samples, errors


# ---- floors -------------------------------------------------------------------------------------------------

def measure_bandwidth(threads, nbytes=BANDWIDTH_BYTES, repeat=7):
    """The read and write bandwidth of this machine now, on `threads` threads, in bytes/s: medians of `repeat`
    interleaved streaming reads and fills of one float32 buffer of nbytes (touched first, so that no page fault
    is timed). Returns a dict (read_Bps, write_Bps, their samples in seconds, bytes, threads), or {"error": why}
    when this build lacks the stream kernels (a fastloss built before them) or they fail (no memory)."""
    from fastloss import _kernels
    stream = getattr(_kernels, "stream_f32", None)
    if stream is None:
        return {"error": "this build of fastloss has no stream kernel (rebuild: python setup.py build_ext "
                         "--inplace)"}
    buf = np.empty(max(1, nbytes // 4), dtype=np.float32)
    status, _ = stream(True, buf, threads)  # touch every page; then warm the read path once
    stream(False, buf, threads)
    if status != 0:
        return {"error": f"stream kernel status {status}"}
    samplers = {"read": lambda: _timed(stream, False, buf, threads),
                "write": lambda: _timed(stream, True, buf, threads)}
    samples, _ = measure_interleaved(samplers, repeat, pause=0.005)
    read_s, write_s = float(np.median(samples["read"])), float(np.median(samples["write"]))
    return {"bytes": int(buf.nbytes), "threads": threads, "read_Bps": buf.nbytes / read_s,
            "write_Bps": buf.nbytes / write_s, "read_samples_s": samples["read"],
            "write_samples_s": samples["write"]}


def _timed(stream, write, buf, threads):
    t0 = time.perf_counter()
    stream(write, buf, threads)
    return time.perf_counter() - t0


FLOOR = "floor"  # the name of the floor's sampler among an interleaved round's implementations


def floor_sampler(arrays, bytes_read, bytes_written, threads):
    """A sampler for the interleaved rounds that measures the floor under the same load as the implementations:
    a streaming read of the floating-point arrays given (the workload's own inputs, in whatever cache state the
    other calls left them), its time scaled to bytes_read, plus a streaming fill of a buffer of bytes_written.
    Integer arrays are not streamed (their bit patterns read as floats would be subnormal, slow on some CPUs):
    their bytes count at the pace of the others. None without a stream kernel or a floating-point array."""
    from fastloss import _kernels
    stream = getattr(_kernels, "stream_f32", None)
    floats = [a for a in arrays if (a.dtype.kind == "f" or a.dtype.name == "bfloat16") and a.nbytes >= 4
              and a.flags.c_contiguous]
    if stream is None or not floats:
        return None
    views = [a.reshape(-1).view(np.uint8)[:a.nbytes // 4 * 4].view(np.float32) for a in floats]
    scale = bytes_read / sum(v.nbytes for v in views)
    out = np.empty(bytes_written // 4, dtype=np.float32) if bytes_written >= 4 else None
    if out is not None:
        stream(True, out, threads)  # the pages faulted in now, not in a timed call
    clock = time.perf_counter

    def sample():
        t0 = clock()
        for v in views:
            stream(False, v, threads)
        t1 = clock()
        if out is not None:
            stream(True, out, threads)
        return (t1 - t0) * scale + (clock() - t1)
    return sample


def floor_seconds(bytes_read, bytes_written, bandwidth):
    """The time to read bytes_read and write bytes_written at the measured pace: bytes_read / read bandwidth +
    bytes_written / write bandwidth. None without a bandwidth."""
    if not bandwidth or "read_Bps" not in bandwidth:
        return None
    return bytes_read / bandwidth["read_Bps"] + bytes_written / bandwidth["write_Bps"]
