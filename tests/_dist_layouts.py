"""Memory layouts and dtypes for the distribution / bce / kl_div tests (an "array zoo", as bottleneck's):
each gives an array holding the same values as the float64 C-contiguous input, stored differently."""
import numpy as np


def _strided(a):
    if a.ndim == 0:
        return a
    b = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    b[..., ::2] = a
    return b[..., ::2]


def _read_only(a):
    b = a.copy()
    b.flags.writeable = False
    return b


LAYOUTS = {
    "c": lambda a: a,
    "fortran": np.asfortranarray,
    "strided": _strided,
    "negative_strides": lambda a: np.flip(np.flip(a).copy()),
    "read_only": _read_only,
    "byte_swapped": lambda a: a.astype(a.dtype.newbyteorder()),
}

DTYPES = [np.float64, np.float32, np.float16]


def tol(dtype):
    """rtol, atol of a result computed from inputs of this dtype, against a float64 oracle on the same values."""
    return (1e-10, 1e-12) if np.dtype(dtype) == np.float64 else (2e-6, 1e-6)


def assert_close(actual, expected, dtype):
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=rtol,
                               atol=atol)
