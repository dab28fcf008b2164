"""fastloss objectives and metrics for XGBoost: exact, one-pass derivatives of fastloss's losses, with the options
XGBoost's built-ins lack (label smoothing, class weights with sample weights, focal loss).

    import xgboost as xgb, fastloss.xgboost as flx
    booster = xgb.train({"num_class": 3, "base_score": 0.0}, dtrain, 10,
                        obj=flx.objective("cross_entropy", hess_scale=2.0),
                        custom_metric=flx.metric("cross_entropy"), evals=[(dtrain, "train")])
    model = xgb.XGBClassifier(objective=flx.objective("cross_entropy", label_smoothing=0.1).sklearn,
                              eval_metric=flx.metric("cross_entropy").sklearn)

Loss names (fastloss._boosting.LOSSES): "logistic" (labels {0, 1}, binary_cross_entropy_with_logits),
"cross_entropy" (labels = class indices 0 .. K-1, margins (n, K)), "focal" (sigmoid_focal_loss), "exponential"
(labels {0, 1} or {-1, +1}), "mse", "huber", "smooth_l1", "log_cosh", "poisson" (poisson_nll_loss, log link),
"tweedie" (tweedie_loss, log link). The options are those of the fastloss function (weight, label_smoothing,
delta, power, ...). Margins as XGBoost passes them: (n,), or (n, K) for multiclass (XGBoost >= 2.1; the flat
(n * K,) of older versions is taken too).

The built-ins, reproduced (the same trees, margins within float rounding; give both the same base_score, in
margin space for the custom objective: 0 for binary:logistic's base_score 0.5):
    multi:softprob  = objective("cross_entropy", hess_scale=2.0)   (XGBoost's Hessian is 2 p (1 - p))
    binary:logistic = objective("logistic")
    reg:tweedie     = objective("tweedie", power=rho)              (tweedie_variance_power=rho)

XGBoost itself is not imported here: the DMatrix is read through get_label() and get_weight().
"""
from __future__ import annotations

from typing import Any, Callable

from ._boosting import Metric, Objective
from ._typing import Array

__all__ = ["objective", "metric"]


def objective(loss: str, *, hess_scale: float = 1.0, min_hess: float = 0.0,
              **options: Any) -> Callable[[Any, Any], tuple[Array, Array]]:
    """A custom objective for ``xgboost.train(params, dtrain, obj=...)``: per row (per margin for multiclass)
    the gradient and Hessian diagonal of `loss` by ``fastloss.<loss>_grad_hess(margins, labels,
    reduction="none", sample_weight=<the DMatrix's weights>, **options)``, the Hessian multiplied by
    `hess_scale` and floored at `min_hess` (a floor > 0 keeps Huber's or focal loss's flat regions from
    stopping the tree's growth). Its attribute ``.sklearn`` is the same objective for
    ``XGBClassifier / XGBRegressor(objective=...)`` (called with y_true, y_pred, sample_weight).

    An unknown loss is a ValueError listing the names; an unknown option a TypeError listing the loss's
    options; a bad option value (label_smoothing=2, power=3, ...) the function's ValueError, here and not in
    the first round; hess_scale must be > 0, min_hess >= 0.

    >>> obj = objective("cross_entropy", hess_scale=2.0)   # XGBoost's multi:softprob
    """
    core = Objective(loss, hess_scale, min_hess, options)

    def xgboost_objective(predt: Any, dtrain: Any) -> tuple[Array, Array]:
        return core(predt, dtrain.get_label(), dtrain.get_weight())

    def sklearn(y_true: Any, y_pred: Any, sample_weight: Any = None) -> tuple[Array, Array]:
        return core(y_pred, y_true, sample_weight)

    xgboost_objective.sklearn = sklearn  # type: ignore[attr-defined]
    return xgboost_objective


def metric(loss: str, **options: Any) -> Callable[[Any, Any], tuple[str, float]]:
    """A ``custom_metric`` for ``xgboost.train``: (loss, fastloss.<loss>(margins, labels, reduction="mean",
    sample_weight=<the DMatrix's weights>, **options)). Margins: XGBoost passes them to the metric when `obj`
    is a custom objective (with a built-in objective it passes transformed predictions, which this metric
    does not take). Its ``.sklearn`` is the estimator API's ``eval_metric`` callable (y_true, y_pred,
    sample_weight -> the value; its __name__ is the loss name). Names and options as in `objective`.
    """
    core = Metric(loss, options)

    def xgboost_metric(predt: Any, dmatrix: Any) -> tuple[str, float]:
        return loss, core(predt, dmatrix.get_label(), dmatrix.get_weight())

    def sklearn(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        return core(y_pred, y_true, sample_weight)

    sklearn.__name__ = loss  # XGBoost's name for the metric in evals_result()
    xgboost_metric.sklearn = sklearn  # type: ignore[attr-defined]
    return xgboost_metric
