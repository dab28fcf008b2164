"""A user's code against fastloss's annotations: mypy type-checks this file in CI (pyproject.toml, [tool.mypy]
files), so the public signatures must accept what the API accepts (ndarrays, lists, scalars, None for the
options) and give the types it returns. tests/test_typing.py also runs it, so the calls are real ones.

The calls in `_rejected` are errors a type checker must report: each carries a `type: ignore[code]`, and mypy's
strict mode (warn_unused_ignores) fails if one of them stops being an error.
"""
from typing import Any, Tuple, Union

import numpy as np
import numpy.typing as npt

import fastloss as fl

Loss = Union[np.floating[Any], npt.NDArray[np.floating[Any]]]


def classifier() -> None:
    logits = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    target = np.array([0, 4, 1, 1, -100, 2, 3, 0])
    loss: Loss = fl.cross_entropy(logits, target)
    rows: Loss = fl.cross_entropy(logits, target, reduction="none", label_smoothing=0.1, weight=None)
    pair: Tuple[Loss, npt.NDArray[np.floating[Any]]] = fl.cross_entropy_and_grad(logits, target)
    grad: npt.NDArray[np.floating[Any]] = pair[1]
    probs: npt.NDArray[np.floating[Any]] = fl.softmax(logits, axis=-1)
    log_probs: npt.NDArray[np.floating[Any]] = fl.log_softmax(logits)
    lse: Loss = fl.logsumexp([[1.0, 2.0], [3.0, 4.0]], axis=-1, keepdims=True)
    nll: Loss = fl.nll_loss(log_probs, target, weight=np.ones(5), n_threads=1)
    print(float(np.sum(loss)), np.shape(rows), grad.shape, probs.dtype, np.shape(lse), float(np.sum(nll)))


def margins_and_regression() -> None:
    scores = [2.0, -0.5, 0.3]  # a list: anything numpy.asarray accepts
    y = np.array([1.0, 1.0, -1.0])
    values: list[Loss] = [
        fl.logistic_loss(scores, y),
        fl.hinge_loss(scores, y, squared=True, margin=0.5),
        fl.exponential_loss(scores, y, sample_weight=[1.0, 2.0, 1.0]),
        fl.zero_one_loss(scores, y),
        fl.mse_loss(scores, y),
        fl.l1_loss(scores, y, reduction="sum"),
        fl.huber_loss(scores, y, delta=0.5),
        fl.binary_cross_entropy_with_logits(scores, (y > 0).astype(float), pos_weight=np.array([2.0])),
    ]
    loss, grad = fl.huber_loss_and_grad(scores, y, delta=0.5)
    grads: npt.NDArray[np.floating[Any]] = grad
    print([float(np.sum(v)) for v in values], float(np.sum(loss)), grads.shape)


def distributions() -> None:
    p, q = np.array([0.8, 0.1, 0.1]), np.array([0.2, 0.2, 0.6])
    h: Loss = fl.entropy(p)
    ce: Loss = fl.categorical_cross_entropy(p, q, base=2)
    kl: Loss = fl.kl_divergence(p, q, axis=-1)
    print(float(np.sum(h)), float(np.sum(ce)), float(np.sum(kl)))


def evaluation_and_config() -> None:
    logits = np.random.default_rng(1).normal(size=(16, 10)).astype(np.float32)
    target = np.arange(16) % 10
    res: fl.EvalResult = fl.evaluate(logits, target, topk=(1, 5))
    summary: dict[str, Any] = res.to_dict()
    binary: fl.BinaryEvalResult = fl.evaluate_binary(logits[:, 0], np.where(target % 2 == 0, 1.0, -1.0))
    threads: int = fl.get_num_threads()
    level: str = fl.simd_level()
    levels: Tuple[str, ...] = fl.available_simd_levels()
    version: str = fl.__version__
    print(summary, binary, threads, level, levels, version)


def _rejected() -> None:
    """Never called: each line is a type error that mypy must report."""
    x = np.zeros((2, 3))
    fl.cross_entropy(x, [0, 1], label_smoothing="0.1")  # type: ignore[arg-type]
    fl.cross_entropy(x, [0, 1], n_threads=2.5)  # type: ignore[arg-type]
    fl.softmax(x, bad_option=True)  # type: ignore[call-arg]
    level: int = fl.simd_level()  # type: ignore[assignment]
    print(level)


if __name__ == "__main__":
    classifier()
    margins_and_regression()
    distributions()
    evaluation_and_config()
