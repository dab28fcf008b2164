"""The types of fastloss's public signatures (annotations only: nothing here runs).

Inputs are anything ``numpy.asarray`` accepts (``numpy.typing.ArrayLike``). A loss is what the reduction
makes it: a NumPy scalar of the compute dtype (``numpy.float32`` or ``numpy.float64``) for "mean" and "sum", an
ndarray of per-sample losses for "none"; gradients, softmax and log-probabilities are ndarrays of that dtype.
"""
from typing import Any, Tuple, Union

import numpy as np
import numpy.typing as npt

#: an ndarray of any dtype (the internal arrays: class indices, weights, scratch buffers)
Array = npt.NDArray[Any]
#: an ndarray of the compute dtype (float32 or float64): per-sample losses, gradients, probabilities
FloatArray = npt.NDArray[np.floating[Any]]
#: a NumPy scalar or an ndarray of the compute dtype (logsumexp of one row or of many, a reduced loss or not)
FloatResult = Union[np.floating[Any], FloatArray]
#: a NumPy scalar of the compute dtype ("mean", "sum") or an ndarray of per-sample losses ("none")
Loss = FloatResult
#: (loss, gradient with respect to the first argument)
LossAndGrad = Tuple[Loss, FloatArray]
#: (loss, gradient, diagonal of the Hessian), both with respect to the first argument
LossGradHess = Tuple[Loss, FloatArray, FloatArray]
