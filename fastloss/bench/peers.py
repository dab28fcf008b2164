"""The peers of the benchmark: importing and configuring torch, JAX, scikit-learn and SciPy (and fastloss's own
optional torch adapter), with the same number of threads as fastloss.

Threads (--threads N, default 2 as in the goal tables):
- fastloss: fl.set_num_threads(N) for the run (restored afterwards).
- torch:    torch.set_num_threads(N) (intra-op pool).
- JAX:      PJRT_NPROC=N is set before jax is imported: it sizes the thread pool of XLA's CPU client
            (its default is the number of usable CPUs). XLA_FLAGS is left alone: --xla_cpu_multi_thread_eigen
            is true by default, and `intra_op_parallelism_threads` is not an XLA flag (XLA aborts on it).
            JAX_PLATFORMS=cpu is set unless already set. JAX computes in float32 unless x64 is enabled
            (JAX_ENABLE_X64=1): the float64 rows of the sweep compare with JAX only then.
- scikit-learn: its private `sklearn._loss` losses get n_threads=N (OpenMP); sklearn.metrics functions run on
            one thread.
- NumPy / SciPy: the ufuncs and reductions used here run on one thread (no BLAS call is involved).
"""
import os
import sys

import numpy as np

import fastloss as fl

DEFAULT_THREADS = 2
PEER_NAMES = ("torch", "jax", "sklearn", "scipy")


class Skip(Exception):
    """An implementation that cannot run here (function not in this build, peer not installed)."""


def _short(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:100]


def configure_threads(n):
    """Environment for the peers' thread pools; must run before jax is imported. Returns notes."""
    notes = []
    if "jax" in sys.modules:
        notes.append("jax was imported before the bench: PJRT_NPROC may not apply")
    os.environ["PJRT_NPROC"] = str(n)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    return notes


class Peers:
    """The installed peers, imported once, lazily. Attributes are None for a missing peer."""

    def __init__(self, threads, only=PEER_NAMES):
        self.threads = threads
        self.only = tuple(only)  # the peers to load (--peers); the others are reported as left out
        self.versions = {}
        self.missing = {}
        self.thread_notes = {}
        self.torch = self.F = None
        self.jax = self.jnp = self.jsp = None
        self.jax_x64 = False
        self.sk_loss = self.sk_metrics = None
        self.sp = None
        self.fl_torch = None
        self.fl_torch_missing = "not loaded"

    def load(self):
        n = self.threads
        for name in PEER_NAMES:
            if name not in self.only:
                self.missing[name] = "left out (--peers)"
        if "torch" in self.only:
            self._load_torch(n)
        if "jax" in self.only:
            self._load_jax()
        if "sklearn" in self.only:
            self._load_sklearn(n)
        if "scipy" in self.only:
            self._load_scipy()
        if self.torch is not None:
            # fastloss's own torch adapter (issue 14): optional, and absent from builds that predate it
            try:
                import fastloss.torch as fl_torch
                self.fl_torch, self.fl_torch_missing = fl_torch, None
            except Exception as e:  # noqa: BLE001
                self.fl_torch_missing = _short(e)
        else:
            self.fl_torch_missing = "torch not loaded"
        self.thread_notes["numpy"] = "1 thread (ufuncs and reductions; fastloss.reference)"
        self.thread_notes["fastloss"] = f"fl.set_num_threads({n}) -> {fl.get_num_threads()}"
        return self

    def _load_torch(self, n):
        try:
            import torch
            import torch.nn.functional as F
            torch.set_num_threads(n)
            self.torch, self.F = torch, F
            self.versions["torch"] = torch.__version__
            self.thread_notes["torch"] = f"torch.set_num_threads({n}) -> {torch.get_num_threads()}"
        except Exception as e:  # noqa: BLE001 - a broken install is a missing peer
            self.missing["torch"] = _short(e)

    def _load_jax(self):
        try:
            import jax
            import jax.numpy as jnp
            import jax.scipy.special as jsp
            self.jax, self.jnp, self.jsp = jax, jnp, jsp
            self.jax_x64 = bool(jax.config.jax_enable_x64)
            self.versions["jax"] = jax.__version__
            try:
                import jaxlib
                self.versions["jaxlib"] = jaxlib.__version__
            except Exception:  # noqa: BLE001
                pass
            self.thread_notes["jax"] = (f"PJRT_NPROC={os.environ.get('PJRT_NPROC')} (XLA CPU client pool), "
                                        f"backend {jax.default_backend()}, x64 {'on' if self.jax_x64 else 'off'}")
        except Exception as e:  # noqa: BLE001
            self.missing["jax"] = _short(e)

    def _load_sklearn(self, n):
        try:
            import sklearn
            import sklearn.metrics
            self.sk_metrics = sklearn.metrics
            self.versions["sklearn"] = sklearn.__version__
            try:
                from sklearn._loss import loss as sk_loss  # private API: HalfMultinomialLoss, HalfBinomialLoss
                self.sk_loss = sk_loss
            except Exception:  # noqa: BLE001
                pass
            self.thread_notes["sklearn"] = f"n_threads={n} for sklearn._loss; sklearn.metrics: 1 thread"
        except Exception as e:  # noqa: BLE001
            self.missing["sklearn"] = _short(e)

    def _load_scipy(self):
        try:
            import scipy
            import scipy.special
            self.sp = scipy.special
            self.versions["scipy"] = scipy.__version__
            self.thread_notes["scipy"] = "1 thread (ufuncs)"
        except Exception as e:  # noqa: BLE001
            self.missing["scipy"] = _short(e)

    def need(self, name):
        """Raises Skip unless the peer (or fastloss.torch) named is usable here."""
        base = "sklearn" if name == "sklearn._loss" else name
        if base in PEER_NAMES and base not in self.only:
            raise Skip(f"{base}: left out (--peers)")
        if name == "torch" and self.torch is None:
            raise Skip("torch not installed")
        if name == "jax" and self.jax is None:
            raise Skip("jax not installed")
        if name == "sklearn" and self.sk_metrics is None:
            raise Skip("scikit-learn not installed")
        if name == "sklearn._loss" and self.sk_loss is None:
            raise Skip("sklearn._loss (private API) not importable")
        if name == "scipy" and self.sp is None:
            raise Skip("scipy not installed")
        if name == "fastloss.torch" and self.fl_torch is None:
            raise Skip(f"fastloss.torch: not in this build ({self.fl_torch_missing})")

    def need_jax_dtype(self, dtype):
        """JAX computes float64 input in float32 unless x64 is on: no fair float64 row without it."""
        self.need("jax")
        if np.dtype(dtype) == np.float64 and not self.jax_x64:
            raise Skip("jax: float64 needs x64 (JAX_ENABLE_X64=1); JAX would compute in float32")

    def tensor(self, a):
        """A torch tensor sharing a's memory; bfloat16 (ml_dtypes) through an int16 view, which torch accepts."""
        self.need("torch")
        if a.dtype.name == "bfloat16":
            return self.torch.from_numpy(a.view(np.int16)).view(self.torch.bfloat16)
        return self.torch.from_numpy(a)

    def jarray(self, a, dtype_check=True):
        """A JAX array of a (a copy in XLA's buffer, made before timing)."""
        if dtype_check:
            self.need_jax_dtype(a.dtype)
        return self.jnp.asarray(a)
