"""fastloss.torch: torch.nn.functional's losses on CPU tensors, computed by fastloss, with autograd.

A drop-in for a training or evaluation loop: change the import, keep the calls.

    >>> import torch, fastloss.torch as FL                  # instead of torch.nn.functional as F
    >>> logits = torch.randn(8, 5, requires_grad=True); target = torch.randint(0, 5, (8,))
    >>> loss = FL.cross_entropy(logits, target, label_smoothing=0.1)
    >>> loss.backward()                                     # logits.grad: the gradient written in the forward pass

What this module does is translation only (DESIGN.md, adapters): torch's layouts and arguments in, the public
fastloss function called on NumPy views of the tensors' memory, tensors out. The math and the checks are
fastloss's; its docstrings give the formulas.

- Signatures, defaults and semantics are those of ``torch.nn.functional`` (``logsumexp``: ``torch.logsumexp``),
  legacy ``size_average`` / ``reduce`` included. Class losses take ``(C)``, ``(N, C)`` or ``(N, C, d1, ...)``
  inputs with the classes on dim 1; fastloss wants them last, so dim 1 is moved last as a view: no copy when
  the strides allow it (a ``channels_last`` tensor, or ``(N, C)``), else fastloss copies the moved input once.
- Dtypes: float32, float64 and float16 tensors are read in place through ``Tensor.numpy()`` views (no copy; the
  kernels read float16 as it is); bfloat16 is handed over in place too, viewed as ml_dtypes.bfloat16 (without
  ml_dtypes, which the torch extra installs, as a float32 copy).
  Losses and gradients are tensors of the input's dtype, as in torch: ``cross_entropy`` and ``nll_loss`` have the
  kernels write a half input's gradient in its own dtype (rounded to nearest even from float32, as torch's cast,
  in the same pass); the other losses' float32 gradient of a half input is cast once.
- Autograd: each loss is one ``torch.autograd.Function``. When the input requires grad, the forward calls
  fastloss's ``NAME_and_grad``, which writes d loss / d input in the same pass that computes the loss (into
  fastloss's own output array, which the gradient tensor shares: see _Call.run); the backward multiplies it by
  grad_output (a scalar, or per sample for ``reduction="none"``), and hands it over unscaled when grad_output
  is exactly 1 (``loss.backward()``). Only the input gets a gradient, except ``mse_loss``, ``l1_loss``,
  ``huber_loss``, ``smooth_l1_loss`` and ``gaussian_nll_loss``, whose target gets minus the input's (their
  losses are functions of input - target). Differences from torch: torch also differentiates other tensor
  arguments (probability targets of ``cross_entropy``, ``kl_div``'s and ``binary_cross_entropy_with_logits``'s
  targets, ``gaussian_nll_loss``'s var, weights); here such an argument that requires grad raises a
  RuntimeError (``.detach()`` it, or use torch's function) instead of silently getting no gradient.
  Double backward (``create_graph=True``) raises a RuntimeError: fastloss.torch does not support it.
  ``softmax``, ``log_softmax`` and ``logsumexp`` compute their forward with fastloss and their backward with
  torch's own backward kernels (fastloss has no vector-Jacobian product for them).
- Errors: a CUDA (any non-CPU) tensor is a TypeError; a class index out of range an IndexError naming its
  position and value; shapes that do not fit a ValueError naming both. ``soft_margin_loss`` takes targets in
  {-1, +1} only (a ValueError naming the first other value; torch accepts any number).
- ``smooth_l1_loss``, ``poisson_nll_loss`` and ``gaussian_nll_loss`` call fastloss's functions of the same name;
  a fastloss without them raises NotImplementedError.

- Threads: fastloss's own (``fastloss.set_num_threads``, ``FASTLOSS_NUM_THREADS``), not torch.set_num_threads.

torch is imported by this module only: ``import fastloss`` never imports it.
"""
from __future__ import annotations

import types
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import _reduction
from torch.nn import functional as _F

import fastloss as fl
from fastloss import _checks as fl_checks

__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "kl_div", "mse_loss", "l1_loss",
           "huber_loss", "smooth_l1_loss", "soft_margin_loss", "multi_margin_loss", "poisson_nll_loss",
           "gaussian_nll_loss", "log_softmax", "softmax", "logsumexp",
           "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "KLDivLoss", "MSELoss", "L1Loss", "HuberLoss",
           "SmoothL1Loss", "SoftMarginLoss", "MultiMarginLoss", "PoissonNLLLoss", "GaussianNLLLoss"]

_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


# ---- tensors <-> arrays -----------------------------------------------------------------------------------

def _numpy(t: Any, name: str, fname: str) -> npt.NDArray[Any]:
    """The one translation of a tensor into what fastloss reads: a NumPy view of the same memory, any strides.
    A bfloat16 tensor is viewed as ml_dtypes.bfloat16 (fastloss reads it as it is, 2 bytes an element); without
    ml_dtypes (in the torch extra) NumPy has no such dtype and the tensor is converted to float32 (one copy)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{fname}(): {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise TypeError(f"fastloss.torch is for CPU tensors: {fname}() got {name} on {t.device} "
                        f"(use torch.nn.functional.{fname} there, or move the tensor with .cpu())")
    t = t.detach()
    if t.is_neg() or t.is_conj():  # lazy negation/conjugation bits: numpy() refuses them
        t = t.resolve_neg().resolve_conj()
    if t.dtype == torch.bfloat16:
        bf16 = _bfloat16()
        if bf16 is None:
            return t.float().numpy()
        return t.view(torch.int16).numpy().view(bf16)
    return t.numpy()


def _reads_as(arg: Any, dtype: np.dtype[Any]) -> bool:
    """Whether a positional argument leaves the kernel reading the input in dtype: class indices do; a
    probability target of another dtype makes fastloss read both in float32 (then the gradient is float32)."""
    dt = getattr(arg, "dtype", None)
    return dt is None or dt.kind in "iub" or dt == dtype


def _bfloat16() -> np.dtype[Any] | None:
    """NumPy's bfloat16 dtype (ml_dtypes), or None when ml_dtypes is not installed."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def _input(t: Any, fname: str, name: str = "input") -> torch.Tensor:
    """The differentiable input: a float CPU tensor (torch's losses refuse integer inputs too)."""
    if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
        _numpy(t, name, fname)  # raises the TypeError for a non-tensor or a tensor off the CPU
    if t.dtype not in _FLOATS:
        raise TypeError(f"{fname}(): {name} must be a floating-point tensor (float32, float64, float16, bfloat16), "
                        f"got {t.dtype}")
    return t


def _argument(t: Any, name: str, fname: str) -> npt.NDArray[Any] | None:
    """A non-differentiable tensor argument (target, weight, var) as an array, or None. fastloss gives it no
    gradient, so one that requires grad is refused rather than silently left without one."""
    if t is None:
        return None
    if isinstance(t, torch.Tensor) and t.requires_grad and torch.is_grad_enabled():
        raise RuntimeError(f"fastloss.torch.{fname} gives no gradient to {name}, which requires grad: pass "
                           f"{name}.detach(), or use torch.nn.functional.{fname} to differentiate {name}")
    return _numpy(t, name, fname)


def _result(loss: Any, dtype: torch.dtype) -> torch.Tensor:
    """fastloss's loss (an ndarray of per-sample losses, or a NumPy scalar) as a tensor of the input's dtype;
    the per-sample array is shared, not copied."""
    t = torch.from_numpy(np.asarray(loss))
    return t if t.dtype == dtype else t.to(dtype)


def _reduction_arg(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's legacy size_average / reduce, as torch reads them (with its deprecation warning)."""
    if size_average is not None or reduce is not None:
        return _reduction.legacy_get_string(size_average, reduce)
    return reduction


# ---- autograd ---------------------------------------------------------------------------------------------

class _Call:
    """One loss call, translated: fastloss's NAME and NAME_and_grad with their arguments in fastloss's layout.
    run(x) computes (loss, d loss / d x) from the input tensor x, the gradient in x's layout and dtype."""
    __slots__ = ("fname", "fn", "fn_and_grad", "args", "kwargs", "class_dim", "target_grad", "half_grad")

    def __init__(self, fname: str, fn: Callable[..., Any], fn_and_grad: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any], class_dim: int | None = None, target_grad: torch.Tensor | None = None,
                 half_grad: bool = False) -> None:
        self.fname, self.fn, self.fn_and_grad, self.args, self.kwargs = fname, fn, fn_and_grad, args, kwargs
        self.class_dim = class_dim      # 1: the classes are on dim 1 and go last for fastloss
        self.target_grad = target_grad  # the target tensor, for the losses of (input - target)
        self.half_grad = half_grad      # fn_and_grad writes a half input's gradient into a grad_out of its dtype

    def run(self, x: torch.Tensor, want_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        xv = x.movedim(1, -1) if self.class_dim else x  # a view; fastloss copies only if the strides need it
        a = _numpy(xv, "input", self.fname)
        if not want_grad:
            return _result(self.fn(a, *self.args, **self.kwargs), x.dtype), None
        # The gradient array is fastloss's own output, shared with the tensor (torch.from_numpy, no copy): a large
        # one reuses the memory of the last gradient released (fastloss's output cache). A new torch.empty
        # buffer passed as grad_out= costs its first touch instead: 4096 x 32000 float32, 1.2 s of page faults
        # on the development VM against 0.27 s for the whole fused loss-and-gradient pass.
        if self.half_grad and a.dtype.itemsize == 2 and all(_reads_as(arg, a.dtype) for arg in self.args):
            # a half input's gradient in its dtype, written by the kernel (no float32 gradient, no cast): into
            # memory of fastloss's output cache as above, as uint16 (the cache's arrays have NumPy dtypes), which
            # torch views as the half type
            raw = fl_checks.new_output(a.shape, np.dtype(np.uint16))
            loss = self.fn_and_grad(a, *self.args, **self.kwargs, grad_out=raw.view(a.dtype))[0]
            grad = torch.from_numpy(raw).view(x.dtype)
        else:
            loss, grad = self.fn_and_grad(a, *self.args, **self.kwargs)
            grad = torch.from_numpy(grad)
            if grad.dtype != x.dtype:  # half precision: fastloss's float32 gradient, cast once
                grad = grad.to(x.dtype)
        return _result(loss, x.dtype), (grad.movedim(-1, 1) if self.class_dim else grad)


def _loss_forward(ctx: Any, x: torch.Tensor, target: torch.Tensor | None, call: _Call) -> torch.Tensor:
    want_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
    loss, grad = call.run(x, want_grad)
    ctx.call, ctx.grad = call, grad
    if want_grad:
        ctx.save_for_backward(x)  # only to recompute the gradient for a second backward (retain_graph=True)
    return loss


def _loss_backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
    if torch.is_grad_enabled():
        raise RuntimeError(f"fastloss.torch does not support double backward (create_graph=True) through "
                           f"{ctx.call.fname}; use torch.nn.functional.{ctx.call.fname} for higher derivatives")
    grad, ctx.grad = ctx.grad, None  # handed out at most once, so that no caller's in-place update reaches it
    if grad is None:  # a second backward through the same graph (retain_graph=True): computed again
        grad = ctx.call.run(ctx.saved_tensors[0], True)[1]
    if grad_output.dim() == 0:
        if grad_output.item() != 1.0:
            grad = grad * grad_output
    else:  # reduction="none": grad is the gradient of the sum; scale each sample's part
        g = grad_output.unsqueeze(1) if ctx.call.class_dim else grad_output
        grad = grad * g
    grad_target = -grad if ctx.needs_input_grad[1] else None
    return (grad if ctx.needs_input_grad[0] else None), grad_target, None


def _loss_function(name: str) -> Any:
    """A torch.autograd.Function subclass named `name` (its grad_fn shows as `<name>Backward`)."""
    def body(ns: dict[str, Any]) -> None:
        ns["forward"] = staticmethod(_loss_forward)
        ns["backward"] = staticmethod(_loss_backward)
        ns["__doc__"] = f"fastloss.torch's autograd Function for {name}: the gradient comes from the forward pass."
        ns["__module__"] = __name__
    return types.new_class(name, (torch.autograd.Function,), exec_body=body)


_FUNCTIONS: dict[str, Any] = {}  # fname -> its autograd Function class


def _apply(call: _Call, x: torch.Tensor) -> torch.Tensor:
    if not torch.is_grad_enabled() or not (x.requires_grad or call.target_grad is not None):
        # nothing to differentiate (no_grad, inference_mode, or no input that requires grad): the loss alone.
        # Inside Function.forward grad mode is always off and needs_input_grad follows requires_grad only, so
        # this is where a no_grad caller is told apart.
        return call.run(x, False)[0]
    fn = _FUNCTIONS.get(call.fname)
    if fn is None:
        fn = _FUNCTIONS[call.fname] = _loss_function("".join(p.title() for p in call.fname.split("_")))
    # the target is an argument of the Function only for the losses that give it a gradient
    return fn.apply(x, call.target_grad, call)


def _fastloss_functions(name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """fastloss.<name> and fastloss.<name>_and_grad; NotImplementedError naming the missing one."""
    fn, fn_and_grad = getattr(fl, name, None), getattr(fl, name + "_and_grad", None)
    if fn is None or fn_and_grad is None:
        missing = name if fn is None else name + "_and_grad"
        raise NotImplementedError(f"fastloss.torch.{name} calls fastloss.{missing}, which this version of fastloss "
                                  f"does not have; use torch.nn.functional.{name}")
    return fn, fn_and_grad


# ---- class losses (classes on dim 1) ----------------------------------------------------------------------

def _class_target(fname: str, input: torch.Tensor, target: torch.Tensor, allow_prob: bool) -> npt.NDArray[Any] | None:
    """target in fastloss's layout: class indices of shape (N, d1, ...) as they are, or probabilities of the
    input's shape with dim 1 moved last; ValueError naming both shapes when it is neither."""
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{fname}(): target must be a torch.Tensor, got {type(target).__name__}")
    shape = tuple(input.shape)
    if not shape:
        raise ValueError(f"{fname}(): input must have the class dimension, got a 0-d tensor")
    idx_shape = shape[:1] + shape[2:] if len(shape) >= 2 else ()
    if allow_prob and target.is_floating_point() and tuple(target.shape) == shape:
        return _argument(target.movedim(1, -1) if len(shape) >= 2 else target, "target", fname)
    if tuple(target.shape) != idx_shape:
        also = f" or {shape} (class probabilities)" if allow_prob else ""
        raise ValueError(f"{fname}(): target has shape {tuple(target.shape)} and input has shape {shape}: target "
                         f"must have shape {idx_shape} (class indices, input's shape without dim 1){also}")
    return _argument(target, "target", fname)


def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> torch.Tensor:
    """``torch.nn.functional.cross_entropy`` computed by ``fastloss.cross_entropy`` (one fused pass; with
    autograd, ``fastloss.cross_entropy_and_grad`` writes the gradient in that pass).

    input: (C), (N, C) or (N, C, d1, ...) logits, float32/64/16 or bfloat16. target: class indices of shape
    (), (N) or (N, d1, ...), or probabilities of the input's shape. weight: (C). Returns a tensor of the input's
    dtype: 0-d, or (N, d1, ...) for reduction="none". Probability targets get no gradient (torch gives them one).

    >>> x = torch.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
    >>> FL.cross_entropy(x, torch.tensor([0]))
    tensor(0.2413, grad_fn=<CrossEntropyBackward>)
    """
    fname = "cross_entropy"
    _input(input, fname)
    t = _class_target(fname, input, target, True)
    kwargs = dict(weight=_argument(weight, "weight", fname), ignore_index=ignore_index,
                  label_smoothing=label_smoothing, reduction=_reduction_arg(size_average, reduce, reduction))
    return _apply(_Call(fname, fl.cross_entropy, fl.cross_entropy_and_grad, (t,), kwargs,
                        class_dim=1 if input.dim() >= 2 else None, half_grad=True), input)


def nll_loss(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
             size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
             reduction: str = "mean") -> torch.Tensor:
    """``torch.nn.functional.nll_loss`` computed by ``fastloss.nll_loss``: input holds log-probabilities,
    (C), (N, C) or (N, C, d1, ...); target class indices (), (N) or (N, d1, ...); weight (C).

    >>> FL.nll_loss(torch.tensor([[0.7, 0.2, 0.1]]).log(), torch.tensor([1]))
    tensor(1.6094)
    """
    fname = "nll_loss"
    _input(input, fname)
    t = _class_target(fname, input, target, False)
    kwargs = dict(weight=_argument(weight, "weight", fname), ignore_index=ignore_index,
                  reduction=_reduction_arg(size_average, reduce, reduction))
    return _apply(_Call(fname, fl.nll_loss, fl.nll_loss_and_grad, (t,), kwargs,
                        class_dim=1 if input.dim() >= 2 else None, half_grad=True), input)


def multi_margin_loss(input: torch.Tensor, target: torch.Tensor, p: int = 1, margin: float = 1.0,
                      weight: torch.Tensor | None = None, size_average: bool | None = None, reduce: bool | None = None,
                      reduction: str = "mean") -> torch.Tensor:
    """``torch.nn.functional.multi_margin_loss`` computed by ``fastloss.multiclass_hinge_loss`` with
    kind="weston_watkins": sum_{j != y} w_y max(0, margin - x_y + x_j)^p / C per sample.
    input: (C) or (N, C); target: () or (N) class indices; p: 1 or 2; weight: (C).

    >>> FL.multi_margin_loss(torch.tensor([[0.2, 0.9, 0.4]]), torch.tensor([0]))
    tensor(0.9667)
    """
    fname = "multi_margin_loss"
    _input(input, fname)
    if input.dim() > 2:
        raise ValueError(f"{fname}(): input must be (C) or (N, C), got shape {tuple(input.shape)}")
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"{fname}(): only p == 1 and p == 2 are supported, got p={p!r}")
    t = _class_target(fname, input, target, False)
    kwargs = dict(kind="weston_watkins", margin=margin, p=int(p), weight=_argument(weight, "weight", fname),
                  reduction=_reduction_arg(size_average, reduce, reduction))
    return _apply(_Call(fname, fl.multiclass_hinge_loss, fl.multiclass_hinge_loss_and_grad, (t,), kwargs,
                        class_dim=1 if input.dim() == 2 else None), input)


# ---- element-wise losses (input and target of one shape) --------------------------------------------------

def _pair(fname: str, fn: Callable[..., Any], fn_and_grad: Callable[..., Any], input: torch.Tensor,
          target: torch.Tensor, kwargs: dict[str, Any], extra: tuple[Any, ...] = (),
          target_gets_grad: bool = False) -> torch.Tensor:
    _input(input, fname)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"{fname}(): target must be a torch.Tensor, got {type(target).__name__}")
    t: npt.NDArray[Any] | None
    if target_gets_grad and target.requires_grad and torch.is_grad_enabled():
        t, target_grad = _numpy(target, "target", fname), target  # gets minus the input's gradient
    else:
        t, target_grad = _argument(target, "target", fname), None
    return _apply(_Call(fname, fn, fn_and_grad, (t,) + tuple(extra), kwargs, target_grad=target_grad), input)


def binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.binary_cross_entropy_with_logits`` computed by
    ``fastloss.binary_cross_entropy_with_logits``: input and target of one shape; weight broadcastable to it,
    pos_weight to its last dim. target, weight and pos_weight get no gradient.

    >>> FL.binary_cross_entropy_with_logits(torch.tensor([2.0, -1.0, 0.0]), torch.tensor([1.0, 0.0, 1.0]))
    tensor(0.3778)
    """
    fname = "binary_cross_entropy_with_logits"
    kwargs = dict(weight=_argument(weight, "weight", fname), pos_weight=_argument(pos_weight, "pos_weight", fname),
                  reduction=_reduction_arg(size_average, reduce, reduction))
    return _pair(fname, fl.binary_cross_entropy_with_logits, fl.binary_cross_entropy_with_logits_and_grad,
                 input, target, kwargs)


def kl_div(input: torch.Tensor, target: torch.Tensor, size_average: bool | None = None, reduce: bool | None = None,
           reduction: str = "mean", log_target: bool = False) -> torch.Tensor:
    """``torch.nn.functional.kl_div`` computed by ``fastloss.kl_div``: input is log q, target p (log p with
    log_target); reductions "none", "sum", "mean", "batchmean". target gets no gradient.

    >>> p, q = torch.tensor([0.8, 0.1, 0.1]), torch.tensor([0.2, 0.2, 0.6])
    >>> FL.kl_div(q.log(), p, reduction="sum")
    tensor(0.8605)
    """
    fname = "kl_div"
    kwargs = dict(log_target=log_target, reduction=_reduction_arg(size_average, reduce, reduction))
    return _pair(fname, fl.kl_div, fl.kl_div_and_grad, input, target, kwargs)


def _elementwise_weight(fname: str, input: torch.Tensor, weight: torch.Tensor | None) -> npt.NDArray[Any] | None:
    if weight is not None and isinstance(weight, torch.Tensor) and weight.shape != input.shape:
        raise ValueError(f"{fname}(): weight has shape {tuple(weight.shape)} and input has shape "
                         f"{tuple(input.shape)}: they must be the same")
    return _argument(weight, "weight", fname)


def mse_loss(input: torch.Tensor, target: torch.Tensor, size_average: bool | None = None, reduce: bool | None = None,
             reduction: str = "mean", weight: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.mse_loss`` computed by ``fastloss.mse_loss`` (weight: fastloss's sample_weight,
    input's shape; "mean" divides by its sum, as torch). input and target must have one shape (torch broadcasts
    them with a warning; here that is a ValueError). target gets minus the input's gradient.

    >>> FL.mse_loss(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 2.0]))
    tensor(1.4167)
    """
    fname = "mse_loss"
    kwargs = dict(sample_weight=_elementwise_weight(fname, input, weight),
                  reduction=_reduction_arg(size_average, reduce, reduction))
    return _pair(fname, fl.mse_loss, fl.mse_loss_and_grad, input, target, kwargs, target_gets_grad=True)


def l1_loss(input: torch.Tensor, target: torch.Tensor, size_average: bool | None = None, reduce: bool | None = None,
            reduction: str = "mean", weight: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.l1_loss`` computed by ``fastloss.l1_loss``; shapes and weight as mse_loss.

    >>> FL.l1_loss(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 2.0]))
    tensor(0.8333)
    """
    fname = "l1_loss"
    kwargs = dict(sample_weight=_elementwise_weight(fname, input, weight),
                  reduction=_reduction_arg(size_average, reduce, reduction))
    return _pair(fname, fl.l1_loss, fl.l1_loss_and_grad, input, target, kwargs, target_gets_grad=True)


def huber_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.huber_loss`` computed by ``fastloss.huber_loss``; shapes as mse_loss. With weight,
    torch's "mean" is the plain mean of the weighted losses (not divided by the weights' sum): it is computed
    as fastloss's "sum" with sample_weight = weight / input.numel().

    >>> FL.huber_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]), reduction="none")
    tensor([0.1250, 2.5000])
    """
    fname = "huber_loss"
    w = _elementwise_weight(fname, input, weight)
    if w is not None and reduction == "mean" and input.numel():
        w, reduction = w / np.float64(input.numel()), "sum"
    kwargs = dict(delta=delta, sample_weight=w, reduction=reduction)
    return _pair(fname, fl.huber_loss, fl.huber_loss_and_grad, input, target, kwargs, target_gets_grad=True)


def smooth_l1_loss(input: torch.Tensor, target: torch.Tensor, size_average: bool | None = None,
                   reduce: bool | None = None, reduction: str = "mean", beta: float = 1.0) -> torch.Tensor:
    """``torch.nn.functional.smooth_l1_loss`` computed by ``fastloss.smooth_l1_loss`` (NotImplementedError while
    fastloss lacks it). target gets minus the input's gradient."""
    fname = "smooth_l1_loss"
    fn, fn_and_grad = _fastloss_functions(fname)
    kwargs = dict(beta=beta, reduction=_reduction_arg(size_average, reduce, reduction))
    return _pair(fname, fn, fn_and_grad, input, target, kwargs, target_gets_grad=True)


def soft_margin_loss(input: torch.Tensor, target: torch.Tensor, size_average: bool | None = None,
                     reduce: bool | None = None, reduction: str = "mean") -> torch.Tensor:
    """``torch.nn.functional.soft_margin_loss``, log(1 + exp(-y x)), computed by ``fastloss.logistic_loss``.
    target must hold -1 or +1 (a ValueError naming the first other value; torch accepts any number).

    >>> FL.soft_margin_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, -1.0]), reduction="sum")
    tensor(2.8201)
    """
    fname = "soft_margin_loss"
    kwargs = dict(reduction=_reduction_arg(size_average, reduce, reduction))
    return _pair(fname, fl.logistic_loss, fl.logistic_loss_and_grad, input, target, kwargs)


def poisson_nll_loss(input: torch.Tensor, target: torch.Tensor, log_input: bool = True, full: bool = False,
                     size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None,
                     reduction: str = "mean") -> torch.Tensor:
    """``torch.nn.functional.poisson_nll_loss`` computed by ``fastloss.poisson_nll_loss`` (NotImplementedError
    while fastloss lacks it). target gets no gradient."""
    fname = "poisson_nll_loss"
    fn, fn_and_grad = _fastloss_functions(fname)
    kwargs = dict(log_input=log_input, full=full, eps=eps, reduction=_reduction_arg(size_average, reduce, reduction))
    return _pair(fname, fn, fn_and_grad, input, target, kwargs)


def gaussian_nll_loss(input: torch.Tensor, target: torch.Tensor, var: torch.Tensor | float, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> torch.Tensor:
    """``torch.nn.functional.gaussian_nll_loss`` computed by ``fastloss.gaussian_nll_loss`` (NotImplementedError
    while fastloss lacks it). input gets the gradient and target minus it; a var that requires grad is refused
    (torch differentiates var: use torch's function to learn a variance)."""
    fname = "gaussian_nll_loss"
    fn, fn_and_grad = _fastloss_functions(fname)
    v = _argument(var, "var", fname) if isinstance(var, torch.Tensor) else float(var)
    kwargs = dict(full=full, eps=eps, reduction=reduction)
    return _pair(fname, fn, fn_and_grad, input, target, kwargs, extra=(v,), target_gets_grad=True)


# ---- primitives -------------------------------------------------------------------------------------------

def _no_double_backward(fname: str) -> None:
    if torch.is_grad_enabled():
        raise RuntimeError(f"fastloss.torch does not support double backward (create_graph=True) through "
                           f"{fname}; use torch's {fname} for higher derivatives")


class SoftmaxFunction(torch.autograd.Function):
    """softmax / log_softmax along one dim: forward by fastloss (its output array shared), backward by torch's own
    backward kernels (_softmax_backward_data / _log_softmax_backward_data) from the saved output."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dim: int, log: bool) -> torch.Tensor:
        fname = "log_softmax" if log else "softmax"
        out = torch.from_numpy((fl.log_softmax if log else fl.softmax)(_numpy(x, "input", fname), axis=dim))
        out = out if out.dtype == x.dtype else out.to(x.dtype)
        ctx.dim, ctx.log, ctx.in_dtype = dim, log, x.dtype
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        _no_double_backward("log_softmax" if ctx.log else "softmax")
        out, = ctx.saved_tensors
        back = torch._log_softmax_backward_data if ctx.log else torch._softmax_backward_data
        return back(grad_output, out, ctx.dim, ctx.in_dtype), None, None


def _softmax_like(fname: str, input: torch.Tensor, dim: int | None, _stacklevel: int, dtype: torch.dtype | None,
                  log: bool) -> torch.Tensor:
    _input(input, fname)
    if dim is None:
        dim = _F._get_softmax_dim(fname, input.dim(), _stacklevel + 1)  # torch's implicit choice, with its warning
    if dtype is not None:
        input = input.to(dtype)
    if input.dim() == 0:  # one element: fastloss wants an axis to reduce
        return SoftmaxFunction.apply(input.reshape(1), 0, log).reshape(())
    return SoftmaxFunction.apply(input, dim, log)


def softmax(input: torch.Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.nn.functional.softmax`` computed by ``fastloss.softmax`` (a new contiguous tensor of the input's
    dtype, or of `dtype`); its backward is torch's.

    >>> FL.softmax(torch.tensor([1.0, 2.0, 3.0]), dim=0)
    tensor([0.0900, 0.2447, 0.6652])
    """
    return _softmax_like("softmax", input, dim, _stacklevel, dtype, False)


def log_softmax(input: torch.Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.nn.functional.log_softmax`` computed by ``fastloss.log_softmax``; as softmax.

    >>> FL.log_softmax(torch.tensor([1.0, 2.0, 3.0]), dim=0)
    tensor([-2.4076, -1.4076, -0.4076])
    """
    return _softmax_like("log_softmax", input, dim, _stacklevel, dtype, True)


class LogsumexpFunction(torch.autograd.Function):
    """logsumexp over dims: forward by fastloss; backward grad_output * exp(input - result), torch's formula."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dims: tuple[int, ...], keepdim: bool) -> torch.Tensor:
        res = _result(fl.logsumexp(_numpy(x, "input", "logsumexp"), axis=dims, keepdims=keepdim), x.dtype)
        ctx.dims, ctx.keepdim = dims, keepdim
        ctx.save_for_backward(x, res)
        return res

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        _no_double_backward("logsumexp")
        x, res = ctx.saved_tensors
        g = grad_output
        if not ctx.keepdim:
            for d in sorted(ctx.dims):
                g, res = g.unsqueeze(d), res.unsqueeze(d)
        return g * (x - res).exp(), None, None


def logsumexp(input: torch.Tensor, dim: int | Sequence[int], keepdim: bool = False, *,
              out: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.logsumexp`` computed by ``fastloss.logsumexp`` (sums in float64; nan, inf edges as torch).
    dim: an int or a tuple of ints.

    >>> FL.logsumexp(torch.tensor([1.0, 2.0, 3.0]), 0)
    tensor(3.4076)
    """
    _input(input, "logsumexp")
    ndim = max(input.dim(), 1)
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if not dims:
        raise ValueError("logsumexp(): dim must name at least one dimension")
    for d in dims:
        if not -ndim <= d < ndim:
            raise IndexError(f"logsumexp(): dim {d} is out of range for a tensor of {input.dim()} dimensions")
    dims = tuple(d % ndim for d in dims)  # fastloss rejects repeated dims (ValueError)
    if input.dim() == 0:
        res = LogsumexpFunction.apply(input.reshape(1), (0,), keepdim).reshape(())
    else:
        res = LogsumexpFunction.apply(input, dims, keepdim)
    if out is not None:
        if res.requires_grad:
            raise RuntimeError("logsumexp(): functions with out=... arguments don't support automatic "
                               "differentiation, but one of the arguments requires grad")
        out.resize_(res.shape).copy_(res)
        return out
    return res


# ---- torch.nn module classes ------------------------------------------------------------------------------
# Subclasses of torch's own: the same constructors, attributes, buffers and state_dict; forward calls the
# functions above.

class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """``torch.nn.CrossEntropyLoss`` whose forward is ``fastloss.torch.cross_entropy``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(torch.nn.NLLLoss):
    """``torch.nn.NLLLoss`` whose forward is ``fastloss.torch.nll_loss``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class BCEWithLogitsLoss(torch.nn.BCEWithLogitsLoss):
    """``torch.nn.BCEWithLogitsLoss`` whose forward is ``fastloss.torch.binary_cross_entropy_with_logits``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight, pos_weight=self.pos_weight,
                                                reduction=self.reduction)


class KLDivLoss(torch.nn.KLDivLoss):
    """``torch.nn.KLDivLoss`` whose forward is ``fastloss.torch.kl_div``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class MSELoss(torch.nn.MSELoss):
    """``torch.nn.MSELoss`` whose forward is ``fastloss.torch.mse_loss``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(torch.nn.L1Loss):
    """``torch.nn.L1Loss`` whose forward is ``fastloss.torch.l1_loss``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class HuberLoss(torch.nn.HuberLoss):
    """``torch.nn.HuberLoss`` whose forward is ``fastloss.torch.huber_loss``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(torch.nn.SmoothL1Loss):
    """``torch.nn.SmoothL1Loss`` whose forward is ``fastloss.torch.smooth_l1_loss``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class SoftMarginLoss(torch.nn.SoftMarginLoss):
    """``torch.nn.SoftMarginLoss`` whose forward is ``fastloss.torch.soft_margin_loss``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiMarginLoss(torch.nn.MultiMarginLoss):
    """``torch.nn.MultiMarginLoss`` whose forward is ``fastloss.torch.multi_margin_loss``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        return multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                 reduction=self.reduction)


class PoissonNLLLoss(torch.nn.PoissonNLLLoss):
    """``torch.nn.PoissonNLLLoss`` whose forward is ``fastloss.torch.poisson_nll_loss``."""

    def forward(self, log_input: bool, target: torch.Tensor | None) -> torch.Tensor:
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                reduction=self.reduction)


class GaussianNLLLoss(torch.nn.GaussianNLLLoss):
    """``torch.nn.GaussianNLLLoss`` whose forward is ``fastloss.torch.gaussian_nll_loss``."""

    def forward(self, input: torch.Tensor, target: torch.Tensor | None, var: torch.Tensor) -> torch.Tensor:
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)
