"""Streaming: .npy files and memmaps read in chunks give the in-memory results bit for bit (evaluate,
stream_loss); memory stays bounded on a 1 GB file."""
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss as fl

from _eval_helpers import BF16, DTYPES, as_dtype, compute_view, logits_and_target, same_result

# (shape, chunk_bytes): C = 1; rows per block 2340 with a ragged last block; a chunk of one block of one row
# (C > 16384); N-D; many chunks of one block each (chunk_bytes=1)
CASES = [((3000, 1), 1), ((5000, 7), 70_000), ((5000, 7), 1), ((300, 100), 1), ((40, 20000), 1),
         ((40, 20000), 300_000), ((3, 50, 20), 4000), ((9,), 1)]


def save(tmp_path, name, a):
    path = tmp_path / name
    np.save(path, a)
    return path


@pytest.mark.parametrize("shape, chunk", CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_evaluate_file_and_memmap_equal_in_memory(tmp_path, shape, chunk, dtype):
    rng = np.random.default_rng(shape[-1] + len(shape))
    x, t = logits_and_target(rng, shape, ignore_every=11 if len(shape) > 1 else 0)
    x = as_dtype(x, dtype)
    w = rng.random(shape[-1]) + 0.1
    lp, tp = save(tmp_path, "x.npy", x), save(tmp_path, "t.npy", t)
    want = fl.evaluate(compute_view(x), t, weight=w, topk=(1, 3))
    same_result(fl.evaluate(lp, tp, weight=w, topk=(1, 3), chunk_bytes=chunk), want)         # pathlib.Path
    same_result(fl.evaluate(str(lp), t, weight=w, topk=(1, 3), chunk_bytes=chunk), want)     # str path
    m = np.load(lp, mmap_mode="r")
    same_result(fl.evaluate(m, np.load(tp, mmap_mode="r"), weight=w, topk=(1, 3), chunk_bytes=chunk), want)
    same_result(fl.evaluate(x, t, weight=w, topk=(1, 3)), want)                              # in memory
    same_result(fl.evaluate(lp, tp, weight=w, topk=(1, 3), chunk_bytes=chunk, n_threads=1), want)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("shape, chunk", CASES[1:6])
def test_stream_loss_equals_in_memory(tmp_path, name, shape, chunk):
    rng = np.random.default_rng(shape[0])
    x, t = logits_and_target(rng, shape, ignore_every=5, ignore_index=0)
    x = x.astype(np.float32)
    w, sw = rng.random(shape[-1]), rng.random(shape[:-1])
    lp, tp, swp = save(tmp_path, "x.npy", x), save(tmp_path, "t.npy", t), save(tmp_path, "sw.npy", sw)
    fn = getattr(fl, name)
    smooth = {"label_smoothing": 0.1} if name == "cross_entropy" else {}
    for kw in ({}, {"weight": w}, {"sample_weight": sw, **smooth}, {"weight": w, "sample_weight": sw}):
        for reduction in ("mean", "sum"):
            want = fn(x, t, ignore_index=0, reduction=reduction, **kw)
            got = fl.stream_loss(name, lp, tp, ignore_index=0, reduction=reduction, chunk_bytes=chunk, **kw)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (kw, reduction, got, want)
    got = fl.stream_loss(name, np.load(lp, mmap_mode="r"), tp, sample_weight=swp, ignore_index=0, chunk_bytes=chunk)
    assert got.tobytes() == fn(x, t, sample_weight=sw, ignore_index=0).tobytes()


def test_float16_bfloat16_and_byteswapped_files(tmp_path):
    rng = np.random.default_rng(1)
    x, t = logits_and_target(rng, (700, 33))
    for a in (x.astype(np.float16), x.astype(">f4"), x.astype(">f8"), (x * 10).astype(np.int16),
              *((x.astype(BF16),) if BF16 is not None else ())):
        lp = save(tmp_path, "x.npy", a)
        want_x = a.astype(np.float64 if a.dtype.kind == "i" or a.dtype.itemsize == 8 else np.float32)
        same_result(fl.evaluate(lp, t, chunk_bytes=5000), fl.evaluate(want_x, t))
        assert fl.stream_loss("cross_entropy", lp, t, chunk_bytes=5000).tobytes() == \
            fl.cross_entropy(want_x, t).tobytes()


def test_bfloat16_file_is_saved_as_void_and_read_as_bfloat16(tmp_path):
    if BF16 is None:
        pytest.skip("ml_dtypes is not installed")
    x = np.array([[1.0, 2.0, 3.0]]).astype(BF16)
    lp = save(tmp_path, "x.npy", x)
    assert np.load(lp).dtype.kind == "V"  # np.save cannot name bfloat16 in the header
    assert fl.evaluate(lp, np.array([2])).cross_entropy == pytest.approx(0.40760596, rel=1e-6)


def test_memmap_views_fortran_and_copy_on_write(tmp_path):
    rng = np.random.default_rng(2)
    x, t = logits_and_target(rng, (600, 40), ignore_every=3)
    lp = save(tmp_path, "x.npy", x.astype(np.float32))
    m = np.load(lp, mmap_mode="r")
    for view, tv in ((m[100:450], t[100:450]), (m[::3], t[::3]), (m[::-2], t[::-2])):
        same_result(fl.evaluate(view, tv, chunk_bytes=3000), fl.evaluate(np.array(view), tv))
    c = np.load(lp, mmap_mode="c")
    c[0] = 100.0  # a private change: must be seen (read through the map, not the file)
    same_result(fl.evaluate(c, t, chunk_bytes=3000), fl.evaluate(np.array(c), t))
    fp = save(tmp_path, "f.npy", np.asfortranarray(x))
    same_result(fl.evaluate(fp, t, chunk_bytes=3000), fl.evaluate(x, t))


def test_progress_and_chunks_align_with_blocks(tmp_path):
    rng = np.random.default_rng(3)
    x, t = logits_and_target(rng, (5000, 7))
    lp = save(tmp_path, "x.npy", x)
    seen = []
    fl.evaluate(lp, t, chunk_bytes=300_000, progress=lambda done, total: seen.append((done, total)))
    rpb = fl._kernels.block_layout(7)[0]
    step = max(1, 300_000 // (7 * 8 * rpb)) * rpb
    assert rpb == max(1, 16384 // 7) and step == 2 * rpb
    assert seen == [(min(r + step, 5000), 5000) for r in range(0, 5000, step)]


def test_errors(tmp_path):
    rng = np.random.default_rng(4)
    x, t = logits_and_target(rng, (4, 10, 6))
    t[3, 8] = 6
    lp, tp = save(tmp_path, "x.npy", x), save(tmp_path, "t.npy", t)
    with pytest.raises(IndexError, match=r"target\[3, 8\] = 6 is out of bounds for 6 classes"):
        fl.evaluate(lp, tp, chunk_bytes=1)  # found in the last chunk, named by its global position
    with pytest.raises(IndexError, match=r"target\[3, 8\] = 6"):
        fl.stream_loss("cross_entropy", lp, tp, chunk_bytes=1)
    with pytest.raises(FileNotFoundError, match="no such file"):
        fl.evaluate(tmp_path / "missing.npy", tp)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not a numpy file at all")
    with pytest.raises(ValueError, match="not a .npy file"):
        fl.evaluate(bad, tp)
    short = tmp_path / "short.npy"
    short.write_bytes(lp.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        fl.evaluate(short, tp)
    with pytest.raises(ValueError, match="does not fit"):
        fl.evaluate(lp, t[:2])
    with pytest.raises(TypeError, match="integer dtype"):
        fl.evaluate(lp, lp)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum'"):
        fl.stream_loss("cross_entropy", lp, tp, reduction="none")
    with pytest.raises(ValueError, match="stream_loss computes one of"):
        fl.stream_loss("mse", lp, tp)
    with pytest.raises(ValueError, match="chunk_bytes"):
        fl.evaluate(lp, tp, chunk_bytes=0)


GB_SCRIPT = textwrap.dedent("""
    import resource, sys
    import fastloss as fl
    res = fl.evaluate(sys.argv[1], sys.argv[2])
    ce = fl.stream_loss("cross_entropy", sys.argv[1], sys.argv[2])
    print(repr(res.cross_entropy), res.accuracy[1], res.accuracy[5], res.n_rows, repr(float(ce)))
    # the peak resident memory of this process, in KiB. Not ru_maxrss: Linux carries it over exec from the
    # parent (pytest, with its own large arrays), so it would measure the test runner; VmHWM is this program's.
    hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
    print(hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB and free disk space assumed on Linux")
def test_one_gigabyte_file_in_bounded_memory(tmp_path):
    """8192 x 32768 float32 (1 GiB) evaluated in a subprocess whose peak resident memory stays under 300 MB.
    Rows are a 64-row random base shifted by a constant per group: cross-entropy and ranks do not change with
    a shift of the whole row, so the expected metrics come from the 64 base rows."""
    n, c, base_rows = 8192, 32768, 64
    rng = np.random.default_rng(11)
    base = (rng.normal(size=(base_rows, c)) * 3).astype(np.float32)
    t = rng.integers(0, c, n)
    t[::10] = -100
    lp, tp = tmp_path / "logits.npy", save(tmp_path, "targets.npy", t)
    sums = np.zeros(4)
    with open(lp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n, c)})
        for g in range(n // base_rows):
            chunk = base + np.float32(g * 0.25)
            chunk.tofile(f)
            r = fl.evaluate(chunk, t[g * base_rows:(g + 1) * base_rows])
            if r.n_rows:
                sums += [r.cross_entropy * r.n_rows, r.accuracy[1] * r.n_rows, r.accuracy[5] * r.n_rows, r.n_rows]
    assert os.path.getsize(lp) > 2**30
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(fl.__file__).parents[1]))
    out = subprocess.run([sys.executable, "-c", GB_SCRIPT, str(lp), str(tp)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    first, rss_kib = out.stdout.split("\n")[:2]
    ce, top1, top5, rows, ce_separate = first.split()
    assert int(rows) == sums[3] == np.sum(t != -100)
    assert float(ce) == pytest.approx(sums[0] / sums[3], rel=1e-6)
    assert float(ce_separate) == pytest.approx(float(ce), rel=1e-6)
    assert float(top1) * sums[3] == pytest.approx(sums[1]) and float(top5) * sums[3] == pytest.approx(sums[2])
    peak_mb = int(rss_kib) / 1024
    print(f"\npeak resident memory evaluating a {os.path.getsize(lp) / 2**30:.2f} GiB file: {peak_mb:.0f} MB")
    assert peak_mb < 300
