"""fastloss: loss functions for NumPy arrays, computed by fused, threaded C kernels, accurate to the last bits.

    >>> import numpy as np, fastloss as fl
    >>> fl.cross_entropy(np.array([[2.0, 0.5, -1.0]]), np.array([0]))

Every sum accumulates in float64; results are bitwise identical for every number of threads.
See shared/API.md (the contract) and README.md.
"""
from __future__ import annotations

import os as _os
import typing as _typing
import warnings as _warnings

from . import _checks, _kernels
from ._checks import clear_output_cache, get_num_threads, set_num_threads, set_output_cache_mb
from .probabilistic import (cross_entropy, cross_entropy_and_grad, cross_entropy_grad_hess, log_softmax, logsumexp,
                            nll_loss, nll_loss_and_grad, softmax)
# margin losses
from .margin import (exponential_loss, exponential_loss_and_grad, hinge_loss, hinge_loss_and_grad,
                     logistic_loss, logistic_loss_and_grad, multiclass_hinge_loss, multiclass_hinge_loss_and_grad,
                     zero_one_loss)

# regression losses
from .regression import huber_loss, huber_loss_and_grad, l1_loss, l1_loss_and_grad, mse_loss, mse_loss_and_grad

# distributions, binary cross-entropy, kl_div
from .distributions import categorical_cross_entropy, entropy, kl_divergence
from .probabilistic import (binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_and_grad, kl_div,
                            kl_div_and_grad)
# second derivatives and the losses of issue 13 (element-wise)
from .margin import (exponential_loss_grad_hess, logistic_loss_grad_hess, sigmoid_focal_loss,
                     sigmoid_focal_loss_and_grad, sigmoid_focal_loss_grad_hess)
from .probabilistic import binary_cross_entropy_with_logits_grad_hess, kl_div_grad_hess
from .regression import (gaussian_nll_loss, gaussian_nll_loss_and_grad, gaussian_nll_loss_grad_hess,
                         huber_loss_grad_hess, log_cosh_loss, log_cosh_loss_and_grad, log_cosh_loss_grad_hess,
                         mse_loss_grad_hess, pinball_loss, pinball_loss_and_grad, poisson_nll_loss,
                         poisson_nll_loss_and_grad, poisson_nll_loss_grad_hess, smooth_l1_loss,
                         smooth_l1_loss_and_grad, smooth_l1_loss_grad_hess, tweedie_loss, tweedie_loss_and_grad,
                         tweedie_loss_grad_hess)
# ---- evaluation ----
from .evaluation import BinaryEvalResult, EvalResult, evaluate, evaluate_binary
from .streaming import stream_loss

__all__ = [
    "__version__", "SIMD_LEVELS", "simd_level", "available_simd_levels", "set_simd_level", "show_config",
    "get_num_threads", "set_num_threads", "clear_output_cache", "set_output_cache_mb",
    "logsumexp", "softmax", "log_softmax",
    "cross_entropy", "cross_entropy_and_grad", "cross_entropy_grad_hess", "nll_loss", "nll_loss_and_grad",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_and_grad", "kl_div", "kl_div_and_grad",
    "entropy", "categorical_cross_entropy", "kl_divergence",
    "zero_one_loss", "logistic_loss", "logistic_loss_and_grad", "exponential_loss", "exponential_loss_and_grad",
    "hinge_loss", "hinge_loss_and_grad", "multiclass_hinge_loss", "multiclass_hinge_loss_and_grad",
    "mse_loss", "mse_loss_and_grad", "l1_loss", "l1_loss_and_grad", "huber_loss", "huber_loss_and_grad",
    "evaluate", "evaluate_binary", "EvalResult", "BinaryEvalResult", "stream_loss",
]
__all__ += [
    "mse_loss_grad_hess", "huber_loss_grad_hess", "logistic_loss_grad_hess", "exponential_loss_grad_hess",
    "binary_cross_entropy_with_logits_grad_hess", "kl_div_grad_hess",
    "poisson_nll_loss", "poisson_nll_loss_and_grad", "poisson_nll_loss_grad_hess",
    "gaussian_nll_loss", "gaussian_nll_loss_and_grad", "gaussian_nll_loss_grad_hess",
    "tweedie_loss", "tweedie_loss_and_grad", "tweedie_loss_grad_hess", "pinball_loss", "pinball_loss_and_grad",
    "smooth_l1_loss", "smooth_l1_loss_and_grad", "smooth_l1_loss_grad_hess",
    "log_cosh_loss", "log_cosh_loss_and_grad", "log_cosh_loss_grad_hess",
    "sigmoid_focal_loss", "sigmoid_focal_loss_and_grad", "sigmoid_focal_loss_grad_hess",
]

__version__ = "0.1.0"

SIMD_LEVELS = ("scalar", "avx2", "avx512")


def _select_simd_from_env() -> None:
    level = _os.environ.get("FASTLOSS_SIMD", "").strip().lower()
    if level and level not in SIMD_LEVELS:
        _warnings.warn(f"FASTLOSS_SIMD={level!r} is not one of {SIMD_LEVELS}; using the best level available",
                       RuntimeWarning, stacklevel=3)
        level = ""
    if not _kernels.select_simd(level):
        _warnings.warn(f"FASTLOSS_SIMD={level!r}: this CPU or build lacks it; using the best level available",
                       RuntimeWarning, stacklevel=3)
        _kernels.select_simd("")


_select_simd_from_env()


def simd_level() -> str:
    """The SIMD level of the kernels in use: 'scalar', 'avx2' or 'avx512'."""
    return _kernels.simd_level()


def available_simd_levels() -> tuple[str, ...]:
    """The SIMD levels this build has and this CPU runs, best last."""
    return tuple(level for level in SIMD_LEVELS if _kernels.simd_available(level))


def set_simd_level(level: str | None = None) -> str:
    """Switches the kernels to a SIMD level ('scalar', 'avx2', 'avx512'; None for the best available).
    Meant for tests and benchmarks; not thread-safe against calls running at the same time."""
    if level is not None and level not in SIMD_LEVELS:
        raise ValueError(f"SIMD level must be one of {SIMD_LEVELS} or None, got {level!r}")
    if not _kernels.select_simd(level or ""):
        raise ValueError(f"SIMD level {level!r} is not available here (available: {available_simd_levels()})")
    return simd_level()


def show_config(file: _typing.TextIO | None = None) -> None:
    """Prints the version, the compiler, OpenMP, the threads and the SIMD level in use."""
    import platform
    import sys

    import numpy

    lines = [
        f"fastloss {__version__}",
        f"  python            {platform.python_version()} ({sys.executable})",
        f"  numpy             {numpy.__version__}",
        f"  compiler          {_kernels.compiler()}",
        f"  openmp            {'yes' if _kernels.openmp_enabled() else 'NO (kernels run on one thread)'}",
        f"  threads           {get_num_threads()} (default of n_threads: {_threads_source()})",
        f"  simd level        {simd_level()} (available: {', '.join(available_simd_levels())})",
        "  output cache      " + (f"{_checks._output_cache.max_bytes >> 20} MiB for outputs of "
                                  f"{_checks.OUTPUT_CACHE_MIN >> 20} MiB and more" if _checks._output_cache.max_bytes
                                  else "off (fl.set_output_cache_mb, FASTLOSS_OUTPUT_CACHE_MB)"),
        f"  machine           {platform.machine()}, {_os.cpu_count()} CPUs",
    ]
    print("\n".join(lines), file=file if file is not None else sys.stdout)


def _threads_source() -> str:
    """Where get_num_threads() comes from, for show_config."""
    if _kernels.forked_serial():
        return "serial: a child forked from a process that had threads (GNU OpenMP's do not survive fork)"
    if _checks._override:
        return "fl.set_num_threads"
    if _checks.ENV_THREADS:
        return "FASTLOSS_NUM_THREADS"
    if not _kernels.openmp_enabled():
        return "no OpenMP"
    return (f"OpenMP limit {_kernels.max_threads()} (OMP_NUM_THREADS, threadpool_limits), "
            f"CPUs usable {_checks.USABLE_CPUS}")
