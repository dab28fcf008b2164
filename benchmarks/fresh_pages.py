"""How quick a new array's pages are, by how long ago the process freed memory of the same size (Linux).

On a VM whose balloon reports free memory to its host (virtio free page reporting), a block the guest has
reported costs the host's fault again at its next touch: a new array's 2 MiB huge pages are then ~6-22x slower
to fault than pages the guest still holds. This times that directly, with nothing of fastloss: an anonymous
mapping of SIZE MiB (2 MiB aligned) on huge pages (MADV_HUGEPAGE) or small ones (MADV_NOHUGEPAGE), faulted in by
MADV_POPULATE_WRITE on one thread (Linux 5.14+), GAP seconds after the process unmapped one of the same size.
The gaps are shuffled over the rounds. README, "Fresh memory", quotes a run of it.

    python benchmarks/fresh_pages.py [--size-mb 524] [--rounds 8] [--gaps 0.03,0.3,0.6,1,1.5,2,3] [--small]
"""
from __future__ import annotations

import argparse
import ctypes
import random
import time

MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_POPULATE_WRITE = 14, 15, 23
HUGE = 2 << 20

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def fault_new(nbytes: int, huge: bool) -> float:
    """Seconds to fault in a new mapping of nbytes (then unmapped)."""
    p = libc.mmap(None, nbytes + HUGE, 3, 0x22, -1, 0)  # PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS
    if p in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap failed")
    try:
        a = (p + HUGE - 1) & ~(HUGE - 1)
        libc.madvise(a, nbytes, MADV_HUGEPAGE if huge else MADV_NOHUGEPAGE)
        t = time.perf_counter()
        if libc.madvise(a, nbytes, MADV_POPULATE_WRITE) != 0:
            raise OSError(ctypes.get_errno(), "MADV_POPULATE_WRITE failed (Linux 5.14 or later)")
        return time.perf_counter() - t
    finally:
        libc.munmap(p, nbytes + HUGE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=524)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--gaps", default="0.03,0.3,0.6,1,1.5,2,3", help="seconds, comma-separated")
    ap.add_argument("--small", action="store_true", help="time small pages (MADV_NOHUGEPAGE) instead")
    args = ap.parse_args()
    if args.size_mb < 1 or args.rounds < 1:
        ap.error(f"--size-mb and --rounds must be at least 1, got {args.size_mb} and {args.rounds}")
    try:
        gaps = [float(g) for g in args.gaps.split(",")]
    except ValueError:
        ap.error(f"--gaps must be numbers of seconds separated by commas, got {args.gaps!r}")
    if not all(0 <= g < float("inf") for g in gaps):
        ap.error(f"--gaps must be finite and >= 0, got {args.gaps!r}")
    nbytes = args.size_mb << 20
    order = gaps * args.rounds
    random.shuffle(order)
    times: dict[float, list[float]] = {g: [] for g in gaps}
    fault_new(nbytes, not args.small)  # the first array frees what the first gap starts from
    for g in order:
        time.sleep(g)
        times[g].append(fault_new(nbytes, not args.small))
    kind = "small" if args.small else "huge"
    print(f"{args.size_mb} MiB on {kind} pages, faulted on one thread, {args.rounds} rounds a gap:")
    for g in gaps:
        ms = sorted(round(t * 1e3) for t in times[g])
        print(f"  gap {g:5.2f} s: {ms} ms")


if __name__ == "__main__":
    main()
