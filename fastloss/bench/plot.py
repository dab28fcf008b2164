"""--plot FILE.png: throughput (GB/s of input read) of fastloss and the peers over input sizes from 32 KB up,
one panel per workload kind (matplotlib, optional)."""
import sys

import numpy as np

from .timing import measure
from .workloads import KINDS, Inputs, input_bytes

PLOT_KINDS = ("cross_entropy", "cross_entropy_and_grad", "logsumexp", "kl_divergence",
              "hinge_loss", "logistic_loss", "exponential_loss", "mse_loss")
COLORS = {"fastloss": "C3", "numpy": "C7", "torch": "C1", "jax": "C0", "sklearn": "C2", "scipy": "C4"}


def plot_shape(kind, nbytes):
    maker = KINDS[kind].maker
    if maker == "logits":
        per_row = 1000 * 4 + (8 if kind != "logsumexp" else 0)
        return (max(1, nbytes // per_row), 1000)
    if maker == "probs":
        return (max(1, nbytes // 8000), 1000)
    return (max(1, nbytes // 8),)


def throughput_sweep(P, repeat, quick, log=sys.stdout):
    """{kind: {impl: [(input bytes, GB/s), ...]}} over input sizes from 32 KB up (fastloss and the peers)."""
    sizes = [2 ** k for k in range(15, 24 if quick else 28, 2)]
    data = {}
    for kind in PLOT_KINDS:
        data[kind] = {}
        inputs = Inputs(seed=7)
        for nbytes in sizes:
            shape = plot_shape(kind, nbytes)
            arrays = inputs.get(kind, shape)
            nb = input_bytes(kind, arrays)
            for impl, builder in KINDS[kind].impls.items():
                try:
                    samples, _ = measure(builder(arrays, P), repeat)
                except Exception:  # noqa: BLE001 - missing function or peer: no point
                    continue
                data[kind].setdefault(impl, []).append((nb, nb / float(np.median(samples)) / 1e9))
        inputs.clear()
        print(f"   swept {kind}", file=log, flush=True)
    return data


def save_plot(data, path, m):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(20, 9), squeeze=False)
    for ax, kind in zip(axes.flat, PLOT_KINDS):
        for k, (impl, pts) in enumerate(data.get(kind, {}).items()):
            if not pts:
                continue
            xs, ys = zip(*pts)
            color = COLORS.get(impl, f"C{5 + k % 5}")
            ax.plot([x / 1e6 for x in xs], ys, "o-", color=color, label=impl,
                    linewidth=2.5 if impl == "fastloss" else 1.2)
        bw = (m.get("bandwidth") or {}).get("read_Bps")
        if bw:
            ax.axhline(bw / 1e9, color="k", linestyle="--", linewidth=0.8, label="streaming read")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(kind + (" (C = 1000)" if KINDS[kind].maker in ("logits", "probs") else ""))
        ax.set_xlabel("input size (MB)")
        ax.set_ylabel("input read (GB/s)")
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"fastloss and peers, float32, {m['threads']} threads: {m['cpu']}, simd {m['simd']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
