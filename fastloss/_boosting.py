"""What fastloss.xgboost and fastloss.lightgbm share: the table of loss names, the translation of a booster's
labels, predictions and weights into a call of `NAME_grad_hess` (or of the loss, for a metric), and the Hessian's
scale and floor. Neither library is imported here (nor in the two adapters): their objects are read through the
methods they document (`get_label`, `get_weight`), so `import fastloss.xgboost` works without XGBoost.

Each loss is a fastloss function looked up by name when an objective or metric is made: the losses that later
versions add (sigmoid_focal_loss, poisson_nll_loss, ...) work here as soon as the function exists.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, NamedTuple

import numpy as np

from ._typing import Array


class _Loss(NamedTuple):
    function: str  # the fastloss loss; its derivatives are function + "_grad_hess"
    labels: str    # how the booster's float labels become the function's targets: see _targets


# labels: "class" (class indices, predictions (n, K)), "binary" ({0, 1}, or probabilities in [0, 1]),
# "sign" ({0, 1} or {-1, +1}, given to the margin loss as {-1, +1}), "value" (regression targets as they are)
LOSSES = {
    "logistic": _Loss("binary_cross_entropy_with_logits", "binary"),
    "cross_entropy": _Loss("cross_entropy", "class"),
    "focal": _Loss("sigmoid_focal_loss", "binary"),
    "exponential": _Loss("exponential_loss", "sign"),
    "mse": _Loss("mse_loss", "value"),
    "huber": _Loss("huber_loss", "value"),
    "smooth_l1": _Loss("smooth_l1_loss", "value"),
    "log_cosh": _Loss("log_cosh_loss", "value"),
    "poisson": _Loss("poisson_nll_loss", "value"),
    "tweedie": _Loss("tweedie_loss", "value"),
}
# set by the adapter, one value per call: not options
_RESERVED = ("reduction", "sample_weight", "grad_out", "hess_out")


def loss_spec(loss: Any) -> _Loss:
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; the losses are: {', '.join(LOSSES)}")
    return LOSSES[loss]


def _function(name: str, loss: str) -> Callable[..., Any]:
    import fastloss  # the package, at call time (this module is imported by it)

    fn = getattr(fastloss, name, None)
    if fn is None:
        raise ValueError(f"loss {loss!r} needs fastloss.{name}, which this version of fastloss does not have")
    return fn


def _check_options(fn: Callable[..., Any], loss: str, options: dict[str, Any]) -> None:
    """The option names fn takes (a TypeError names the others), none of those the adapter sets."""
    allowed = [p for p, v in inspect.signature(fn).parameters.items()
               if v.kind == v.KEYWORD_ONLY and p not in _RESERVED]
    for name in options:
        if name in _RESERVED:
            raise ValueError(f"option {name!r} is set by the adapter (per-row derivatives, the booster's weights)")
        if name not in allowed:
            raise TypeError(f"loss {loss!r} has no option {name!r}; its options: {', '.join(allowed)}")


def _dry_run(fn: Callable[..., Any], spec: _Loss, options: dict[str, Any], **kw: Any) -> None:
    """One call on a one-sample input, so that a bad option value (a ValueError or TypeError of the function,
    naming it) is raised when the objective is made, not in the first round of training."""
    if spec.labels == "class":
        weight = options.get("weight")
        n_classes = max(np.size(weight), 1) if weight is not None else 2
        fn(np.zeros((1, n_classes)), np.zeros(1, np.int64), sample_weight=np.ones(1), **kw, **options)
    else:
        fn(np.zeros(1), np.ones(1), sample_weight=np.ones(1), **kw, **options)


def _positive_finite(value: Any, name: str, low: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or v < low or (strict and v == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return v


def _targets(spec: _Loss, labels: Array, predt: Array) -> Array:
    """The booster's labels (float, one per row, or one per output) as the function's targets."""
    labels = np.asarray(labels)
    if spec.labels == "class":
        if predt.ndim != 2:
            raise ValueError(f"loss 'cross_entropy' needs predictions of shape (n, n_classes), got {predt.shape}: "
                             "train with num_class (XGBoost) / num_class and a multiclass objective (LightGBM)")
        labels = labels.reshape(-1)
        whole = labels == np.floor(labels)
        if not np.all(whole):
            i = int(np.argmin(whole))
            raise ValueError(f"label[{i}] = {labels[i]} is not a class index (cross_entropy takes labels 0 .. K-1)")
        return labels.astype(np.int64)
    labels = labels.reshape(predt.shape) if labels.size == predt.size else labels
    if spec.labels == "sign":
        return np.where(labels == 0, -1.0, labels)  # {0, 1} as {-1, +1}; a label outside both: the loss says so
    return labels


def _rows(predt: Any, n_labels: int, spec: _Loss) -> Array:
    """Predictions as the loss takes them: XGBoost before 2.1 passed multiclass margins flat, (n * K,)."""
    predt = np.asarray(predt)
    if spec.labels == "class" and predt.ndim == 1 and n_labels and predt.size != n_labels \
            and predt.size % n_labels == 0:
        return predt.reshape(n_labels, -1)
    return predt


def _sample_weight(weights: Any, predt: Array, spec: _Loss) -> Array | None:
    """The booster's per-row weights (None, or an empty array: none), per element for multi-output regression."""
    if weights is None or np.size(weights) == 0:
        return None
    w = np.asarray(weights, np.float64)
    if spec.labels != "class" and predt.ndim == 2 and w.shape == predt.shape[:1]:
        return np.broadcast_to(w[:, None], predt.shape)
    return w


class Objective:
    """fn(predt, labels, weights) -> (grad, hess) of the loss at each prediction: NAME_grad_hess with
    reduction="none", the Hessian times hess_scale and floored at min_hess. The adapters wrap it into each
    library's calling convention."""

    def __init__(self, loss: Any, hess_scale: Any, min_hess: Any, options: dict[str, Any]) -> None:
        self.loss, self.spec = loss, loss_spec(loss)
        self.hess_scale = _positive_finite(hess_scale, "hess_scale", 0.0, True)
        self.min_hess = _positive_finite(min_hess, "min_hess", 0.0, False)
        self.fn = _function(self.spec.function + "_grad_hess", loss)
        _check_options(self.fn, loss, options)
        _dry_run(self.fn, self.spec, options, reduction="none")
        self.options = options

    def __call__(self, predt: Any, labels: Any, weights: Any) -> tuple[Array, Array]:
        labels = np.asarray(labels)
        x = _rows(predt, labels.size, self.spec)
        _, grad, hess = self.fn(x, _targets(self.spec, labels, x), reduction="none",
                                sample_weight=_sample_weight(weights, x, self.spec), **self.options)
        if self.hess_scale != 1.0:
            hess *= self.hess_scale
        if self.min_hess > 0.0:
            np.maximum(hess, self.min_hess, out=hess)
        # the shape the booster passed (XGBoost < 2.1: flat)
        return grad.reshape(np.shape(predt)), hess.reshape(np.shape(predt))


class Metric:
    """fn(predt, labels, weights) -> the loss over the data set: NAME with reduction="mean" (weighted by the
    booster's sample weights). predt are margins: what a booster passes to a metric when it trains with a
    custom objective."""

    def __init__(self, loss: Any, options: dict[str, Any]) -> None:
        self.loss, self.spec = loss, loss_spec(loss)
        self.fn = _function(self.spec.function, loss)
        _check_options(self.fn, loss, options)
        _dry_run(self.fn, self.spec, options, reduction="mean")
        self.options = options

    def __call__(self, predt: Any, labels: Any, weights: Any) -> float:
        labels = np.asarray(labels)
        x = _rows(predt, labels.size, self.spec)
        return float(self.fn(x, _targets(self.spec, labels, x), reduction="mean",
                             sample_weight=_sample_weight(weights, x, self.spec), **self.options))

