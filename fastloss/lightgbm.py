"""fastloss objectives and metrics for LightGBM: exact, one-pass derivatives of fastloss's losses, with the
options LightGBM's built-ins lack (label smoothing, class weights with sample weights, focal loss).

    import lightgbm as lgb, fastloss.lightgbm as fll
    booster = lgb.train({"objective": fll.objective("cross_entropy", hess_scale=1.5), "num_class": 3,
                         "metric": "None"}, train_set, 10,
                        feval=fll.metric("cross_entropy"), valid_sets=[train_set])
    model = lgb.LGBMClassifier(objective=fll.objective("cross_entropy", label_smoothing=0.1).sklearn)
    model.fit(X, y, eval_metric=fll.metric("cross_entropy").sklearn)

Loss names and options: as fastloss.xgboost (fastloss._boosting.LOSSES). Scores as LightGBM 4 passes them:
(n,), or (n, K) for multiclass; the gradient and Hessian are returned in that shape.

The built-ins, reproduced with boost_from_average off in both (the custom objective starts from 0):
    multiclass = objective("cross_entropy", hess_scale=K / (K - 1))   (LightGBM's Hessian is K/(K-1) p (1 - p))
    binary     = objective("logistic")

LightGBM itself is not imported here: the Dataset is read through get_label() and get_weight().
"""
from __future__ import annotations

from typing import Any, Callable

from ._boosting import Metric, Objective
from ._typing import Array

__all__ = ["objective", "metric"]


def objective(loss: str, *, hess_scale: float = 1.0, min_hess: float = 0.0,
              **options: Any) -> Callable[[Any, Any], tuple[Array, Array]]:
    """A custom objective for ``lightgbm.train(params={"objective": ...})``: per row (per score for multiclass)
    the gradient and Hessian diagonal of `loss` by ``fastloss.<loss>_grad_hess(scores, labels,
    reduction="none", sample_weight=<the Dataset's weights>, **options)``, the Hessian multiplied by
    `hess_scale` and floored at `min_hess`. Its attribute ``.sklearn`` is the same objective for
    ``LGBMClassifier / LGBMRegressor(objective=...)`` (called with y_true, y_pred, weight).
    Errors as fastloss.xgboost.objective.

    >>> obj = objective("cross_entropy", hess_scale=3 / 2)   # LightGBM's multiclass, 3 classes
    """
    core = Objective(loss, hess_scale, min_hess, options)

    def lightgbm_objective(preds: Any, train_data: Any) -> tuple[Array, Array]:
        return core(preds, train_data.get_label(), train_data.get_weight())

    def sklearn(y_true: Any, y_pred: Any, weight: Any) -> tuple[Array, Array]:
        return core(y_pred, y_true, weight)

    lightgbm_objective.sklearn = sklearn  # type: ignore[attr-defined]
    return lightgbm_objective


def metric(loss: str, **options: Any) -> Callable[[Any, Any], tuple[str, float, bool]]:
    """A ``feval`` for ``lightgbm.train``: (loss, fastloss.<loss>(scores, labels, reduction="mean",
    sample_weight=<the Dataset's weights>, **options), False) (lower is better). Scores are raw: what
    LightGBM passes to feval when the objective is a custom one. Its ``.sklearn`` is the estimator API's
    ``eval_metric`` callable (y_true, y_pred, weight -> the same triple).
    """
    core = Metric(loss, options)

    def lightgbm_metric(preds: Any, eval_data: Any) -> tuple[str, float, bool]:
        return loss, core(preds, eval_data.get_label(), eval_data.get_weight()), False

    def sklearn(y_true: Any, y_pred: Any, weight: Any) -> tuple[str, float, bool]:
        return loss, core(y_pred, y_true, weight), False

    lightgbm_metric.sklearn = sklearn  # type: ignore[attr-defined]
    return lightgbm_metric
