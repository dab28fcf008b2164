"""python -m fastloss eval LOGITS.npy TARGETS.npy: score a model's outputs stored in .npy files (any size: read
in chunks, memory bounded) and print the metrics: mean loss, perplexity, top-k accuracies, rows counted.

Exit status: 0 done, 1 an error in the data or at run time (missing file, shape or dtype that does not fit,
out-of-range target), 2 a usage error (bad options), 130 interrupted (Ctrl-C, SIGINT: one line on stderr; the
kernels stop between blocks of rows and the reader between chunks, so this is prompt).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any, Callable, Sequence, TypeVar

from . import evaluation, streaming

_N = TypeVar("_N", int, float)

LOSSES = ("cross_entropy", "nll_loss")


def _topk(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not ks or min(ks) < 1 or len(set(ks)) != len(ks):
        raise argparse.ArgumentTypeError(f"expected distinct integers >= 1, got {text!r}")
    return ks


def _positive(kind: Callable[[str], _N]) -> Callable[[str], _N]:
    def parse(text: str) -> _N:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return v
    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fastloss eval", description=__doc__.split("\n\n")[0])
    p.add_argument("logits", help=".npy file of (..., C) logits (float16, bfloat16, float32, float64, ...); "
                                  "log-probabilities with --loss nll_loss")
    p.add_argument("targets", help=".npy file of (...) integer class indices")
    p.add_argument("--loss", choices=LOSSES, default="cross_entropy",
                   help="cross_entropy of logits (default; one pass), or nll_loss of log-probabilities (a second "
                        "pass for the loss)")
    p.add_argument("--ignore-index", type=int, default=-100, metavar="K", help="target of rows that do not count "
                                                                              "(default -100)")
    p.add_argument("--topk", type=_topk, default=(1, 5), metavar="K1,K2", help="top-k accuracies (default 1,5)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr (default: when stderr "
                                                           "is a terminal)")
    p.add_argument("--chunk-mb", type=_positive(float), default=streaming.CHUNK_BYTES / 2**20, metavar="N",
                   help=f"MiB of logits per chunk (default {streaming.CHUNK_BYTES >> 20})")
    p.add_argument("--threads", type=_positive(int), default=None, metavar="N", help="kernel threads")
    return p


class _Progress:
    """A progress bar on stderr: tqdm when installed, else one line rewritten in place."""

    bar: Any  # a tqdm bar, once started
    tqdm: Any  # the tqdm class, or None

    def __init__(self, label: str) -> None:
        self.label, self.bar, self.t0, self.last = label, None, time.monotonic(), 0.0
        try:
            from tqdm import tqdm
            self.tqdm = tqdm
        except ImportError:
            self.tqdm = None

    def __call__(self, done: int, total: int) -> None:
        if self.tqdm is not None:
            if self.bar is None:
                self.bar = self.tqdm(total=total, desc=self.label, unit="rows", file=sys.stderr)
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        sys.stderr.write(f"\r{self.label}: {done}/{total} rows ({100 * done / max(total, 1):.0f}%, "
                         f"{rate:,.0f} rows/s)")
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.tqdm is None and self.last:
            sys.stderr.write("\n")


def _table(metrics: dict[str, Any]) -> str:
    lines = []
    for k, v in metrics.items():
        value = f"{v:.6f}" if isinstance(v, float) and not math.isnan(v) else str(v)
        lines.append(f"{k:<18} {value:>14}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    show = args.progress or sys.stderr.isatty()
    chunk = max(1, int(args.chunk_mb * 2**20))
    progress = _Progress("eval") if show else None
    try:
        res = evaluation.evaluate(args.logits, args.targets, ignore_index=args.ignore_index, topk=args.topk,
                                  n_threads=args.threads, chunk_bytes=chunk, progress=progress)
        metrics = {"loss": args.loss, **res.to_dict()}
        if args.loss == "nll_loss":
            del metrics["cross_entropy"]
            nll = float(streaming.stream_loss("nll_loss", args.logits, args.targets, ignore_index=args.ignore_index,
                                              n_threads=args.threads, chunk_bytes=chunk))
            metrics = {"loss": args.loss, "nll_loss": nll, **metrics, "perplexity": math.exp(nll)}
    finally:
        if progress is not None:
            progress.close()
    print(json.dumps(metrics) if args.json else _table(metrics))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)  # usage errors: message and exit status 2
    try:
        return run(args)
    except (OSError, ValueError, TypeError, IndexError, MemoryError) as e:
        print(f"fastloss eval: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastloss eval: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


if __name__ == "__main__":
    sys.exit(main())
