"""fastloss.torch against torch.nn.functional: values and gradients (float32 within 2e-6 relative, float64 within
1e-12, relative to the largest magnitude of the result), gradcheck in float64, a training run, the module classes,
errors, half precision, and memory."""
import inspect
import tracemalloc
import warnings

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import fastloss  # noqa: E402
import fastloss.torch as FL  # noqa: E402

RTOL = {torch.float32: 2e-6, torch.float64: 1e-12}


def _rng(seed=0):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=_rng(seed), dtype=torch.float64).to(dtype)


def probs(*shape, seed=1, dim=1):
    return torch.softmax(randn(*shape, seed=seed), dim=dim)


def labels(*shape, high, seed=2):
    return torch.randint(0, high, shape, generator=_rng(seed))


def assert_close(got, want, dtype):
    """Equal within RTOL[dtype] of the largest |want| (so that entries near 0 are judged on the result's scale)."""
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = float(want.abs().nan_to_num(0, 0, 0).max()) if want.numel() else 0.0
    torch.testing.assert_close(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * scale, equal_nan=True)


def run(fn, args, kwargs, grad_args):
    """fn(*args, **kwargs) with the float tensors at positions grad_args requiring grad, backward with a
    grad_output that is not 1 (per-sample values for reduction="none"); returns the loss and the gradients."""
    args = [a.detach().clone().requires_grad_() if i in grad_args else a for i, a in enumerate(args)]
    out = fn(*args, **kwargs)
    g = torch.rand(out.shape, generator=_rng(9), dtype=torch.float64).to(out.dtype) + 0.5 if out.dim() else \
        torch.tensor(1.75, dtype=out.dtype)
    out.backward(g)
    return out.detach(), [args[i].grad for i in grad_args]


def compare(name, args, kwargs=None, dtype=torch.float64, grad_args=(0,)):
    kwargs = kwargs or {}
    args = [a.to(dtype) if a.is_floating_point() else a for a in args]
    kwargs = {k: (v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in kwargs.items()}
    ref = getattr(torch, name) if name == "logsumexp" else getattr(F, name)
    got, got_grads = run(getattr(FL, name), args, kwargs, grad_args)
    want, want_grads = run(ref, args, kwargs, grad_args)
    assert_close(got, want, dtype)
    for g, w in zip(got_grads, want_grads):
        assert_close(g, w, dtype)


N, C = 7, 5
REDUCTIONS = ["none", "sum", "mean"]
DTYPES = [torch.float32, torch.float64]


# ---- every function and option against torch ---------------------------------------------------------------

CLASS_CASES = [  # (input shape, target kind)
    ((C,), "index"), ((N, C), "index"), ((N, C, 3, 2), "index"), ((N, C), "prob"), ((N, C, 3), "prob"),
]


def class_target(shape, kind, ignore=False):
    if kind == "prob":
        return probs(*shape, dim=0 if len(shape) == 1 else 1)
    t = labels(*((shape[:1] + shape[2:]) if len(shape) > 1 else ()), high=shape[1] if len(shape) > 1 else shape[0])
    if ignore and t.dim():
        t.view(-1)[::3] = -100
    return t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,kind", CLASS_CASES)
@pytest.mark.parametrize("options", [{}, {"weight": True}, {"label_smoothing": 0.15}, {"ignore": True},
                                     {"weight": True, "label_smoothing": 0.3, "ignore": True}])
def test_cross_entropy(shape, kind, reduction, dtype, options):
    options = dict(options)
    kw = {"reduction": reduction}
    if options.pop("weight", False):
        kw["weight"] = torch.rand(shape[1] if len(shape) > 1 else shape[0], generator=_rng(4), dtype=torch.float64)
    if "label_smoothing" in options:
        kw["label_smoothing"] = options.pop("label_smoothing")
    t = class_target(shape, kind, ignore=options.pop("ignore", False))
    compare("cross_entropy", [randn(*shape), t], kw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(C,), (N, C), (N, C, 4)])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(shape, reduction, dtype, weighted):
    kw = {"reduction": reduction, "ignore_index": 1}
    if weighted:
        kw["weight"] = torch.rand(C, generator=_rng(4), dtype=torch.float64)
    compare("nll_loss", [F.log_softmax(randn(*shape), dim=0 if len(shape) == 1 else 1),
                         class_target(shape, "index")], kw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,margin,weighted", [(1, 1.0, False), (2, 1.0, False), (1, 0.5, True), (2, 2.0, True)])
@pytest.mark.parametrize("shape", [(C,), (N, C)])
def test_multi_margin_loss(shape, p, margin, weighted, reduction, dtype):
    kw = {"p": p, "margin": margin, "reduction": reduction}
    if weighted:
        kw["weight"] = torch.rand(C, generator=_rng(4), dtype=torch.float64)
    compare("multi_margin_loss", [randn(*shape), class_target(shape, "index")], kw, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weights", [{}, {"weight": (N, 1)}, {"pos_weight": (C,)},
                                     {"weight": (C,), "pos_weight": (C,)}])
def test_binary_cross_entropy_with_logits(weights, reduction, dtype):
    kw = {"reduction": reduction}
    for k, shape in weights.items():
        kw[k] = torch.rand(shape, generator=_rng(5), dtype=torch.float64) + 0.5
    target = torch.rand(N, C, generator=_rng(6), dtype=torch.float64)
    compare("binary_cross_entropy_with_logits", [randn(N, C) * 3, target], kw, dtype)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # torch's, from F.kl_div
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target, dtype):
    target = probs(N, C)
    target[0, 0] = 0.0  # 0 log 0 = 0
    if log_target:
        target = probs(N, C).log()
    compare("kl_div", [F.log_softmax(randn(N, C), dim=1), target],
            {"reduction": reduction, "log_target": log_target}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kw", [("mse_loss", {}), ("l1_loss", {}), ("huber_loss", {}),
                                     ("huber_loss", {"delta": 0.4}), ("mse_loss", {"weight": True}),
                                     ("l1_loss", {"weight": True}), ("huber_loss", {"weight": True, "delta": 0.7})])
def test_regression(name, kw, reduction, dtype):
    kw = dict(kw, reduction=reduction)
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(N, C, 2, generator=_rng(5), dtype=torch.float64)
    # both input and target differentiated: the target gets minus the input's gradient, as in torch
    compare(name, [randn(N, C, 2), randn(N, C, 2, seed=3)], kw, dtype, grad_args=(0, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_margin_loss(reduction, dtype):
    y = torch.where(randn(N, C, seed=3) > 0, 1.0, -1.0)
    compare("soft_margin_loss", [randn(N, C) * 4, y], {"reduction": reduction}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,dim", [((C,), 0), ((N, C), 1), ((N, C), 0), ((N, C, 3), 1), ((N, C, 3), -1)])
def test_softmax_like(name, shape, dim, dtype):
    compare(name, [randn(*shape)], {"dim": dim}, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim,keepdim", [((C,), 0, False), ((N, C), 1, False), ((N, C), 0, True),
                                               ((N, C, 3), (0, 2), False), ((N, C, 3), (1, 2), True)])
def test_logsumexp(shape, dim, keepdim, dtype):
    compare("logsumexp", [randn(*shape)], {"dim": dim, "keepdim": keepdim}, dtype)


def test_softmax_implicit_dim_and_dtype():
    x = randn(N, C, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close(FL.softmax(x), F.softmax(x), torch.float32)  # torch's implicit choice: dim 1 for 2-D
    assert_close(FL.log_softmax(x, 1, dtype=torch.float64), F.log_softmax(x, 1, dtype=torch.float64), torch.float64)


def test_legacy_size_average_and_reduce():
    x, t = randn(N, C), class_target((N, C), "index")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sa, red in [(False, None), (None, False), (True, True)]:
            assert_close(FL.cross_entropy(x, t, size_average=sa, reduce=red),
                         F.cross_entropy(x, t, size_average=sa, reduce=red), torch.float64)
            assert_close(FL.mse_loss(x, x * 2, size_average=sa, reduce=red),
                         F.mse_loss(x, x * 2, size_average=sa, reduce=red), torch.float64)


def test_signatures_are_torchs():
    for name in ["cross_entropy", "nll_loss", "binary_cross_entropy_with_logits", "kl_div", "mse_loss", "l1_loss",
                 "huber_loss", "smooth_l1_loss", "soft_margin_loss", "multi_margin_loss", "poisson_nll_loss",
                 "gaussian_nll_loss", "log_softmax", "softmax"]:
        ours, theirs = inspect.signature(getattr(FL, name)), inspect.signature(getattr(F, name))
        assert [(p.name, p.default, p.kind) for p in ours.parameters.values()] == \
            [(p.name, p.default, p.kind) for p in theirs.parameters.values()], name


# ---- gradcheck ------------------------------------------------------------------------------------------

def _x(*shape, seed=0):
    return randn(*shape, seed=seed).requires_grad_()


GRADCHECK = {
    "cross_entropy": lambda: (lambda x: FL.cross_entropy(x, class_target((N, C, 2), "index"), label_smoothing=0.2,
                                                         weight=torch.linspace(0.5, 2, C, dtype=torch.float64)),
                              _x(N, C, 2)),
    "cross_entropy_prob": lambda: (lambda x: FL.cross_entropy(x, probs(N, C), reduction="none"), _x(N, C)),
    "nll_loss": lambda: (lambda x: FL.nll_loss(x, class_target((N, C), "index"), reduction="sum"), _x(N, C)),
    "multi_margin_loss": lambda: (lambda x: FL.multi_margin_loss(x, class_target((N, C), "index"), p=2),
                                  _x(N, C)),
    "bce": lambda: (lambda x: FL.binary_cross_entropy_with_logits(x, probs(N, C), pos_weight=torch.full(
        (C,), 2.0, dtype=torch.float64)), _x(N, C)),
    "kl_div": lambda: (lambda x: FL.kl_div(x, probs(N, C), reduction="batchmean"), _x(N, C)),
    "mse_loss": lambda: (lambda x, y: FL.mse_loss(x, y), _x(N, C), _x(N, C, seed=3)),
    "l1_loss": lambda: (lambda x: FL.l1_loss(x, randn(N, C, seed=3), reduction="none"), _x(N, C)),
    "huber_loss": lambda: (lambda x: FL.huber_loss(x, randn(N, C, seed=3), delta=0.5), _x(N, C)),
    "soft_margin_loss": lambda: (lambda x: FL.soft_margin_loss(x, torch.ones(N, C, dtype=torch.float64)),
                                 _x(N, C)),
    "softmax": lambda: (lambda x: FL.softmax(x, 1), _x(N, C, 2)),
    "log_softmax": lambda: (lambda x: FL.log_softmax(x, 0), _x(N, C)),
    "logsumexp": lambda: (lambda x: FL.logsumexp(x, (0, 2), keepdim=True), _x(N, C, 2)),
}


@pytest.mark.parametrize("case", sorted(GRADCHECK))
def test_gradcheck(case):
    fn, *inputs = GRADCHECK[case]()
    assert torch.autograd.gradcheck(fn, inputs)


# ---- autograd plumbing ----------------------------------------------------------------------------------

def test_training_matches_torch():
    """A small MLP trained 40 SGD steps with fastloss.torch.cross_entropy ends where F.cross_entropy ends."""
    x, y = randn(256, 20, dtype=torch.float32), labels(256, high=10)
    finals = []
    for loss_fn in (F.cross_entropy, FL.cross_entropy):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(40):
            opt.zero_grad()
            loss = loss_fn(model(x), y, label_smoothing=0.05)
            loss.backward()
            opt.step()
        finals.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert not torch.equal(finals[1], torch.cat([p.detach().reshape(-1) for p in torch.nn.Sequential(
        torch.nn.Linear(20, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10)).parameters()]))
    torch.testing.assert_close(finals[1], finals[0], rtol=1e-4, atol=1e-4)


def test_gradient_flows_through_a_graph_and_scales():
    w = randn(C, C, seed=4).requires_grad_()
    x, t = randn(N, C), class_target((N, C), "index")
    (3.0 * FL.cross_entropy(x @ w, t)).backward()
    got = w.grad.clone()
    w.grad = None
    (3.0 * F.cross_entropy(x @ w, t)).backward()
    assert_close(got, w.grad, torch.float64)


def test_backward_twice_with_retain_graph():
    x, t = randn(N, C).requires_grad_(), class_target((N, C), "index")
    loss = FL.cross_entropy(x, t)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward(retain_graph=True)  # the first handed its gradient out: computed again, not the same tensor
    assert_close(x.grad, 2 * first, torch.float64)
    x.grad.zero_()
    loss.backward()
    assert_close(x.grad, first, torch.float64)


def test_no_gradient_computed_without_requires_grad(monkeypatch):
    """The gradient is computed only when something will be differentiated: not for an input that does not
    require grad, nor under no_grad or inference_mode."""
    calls = []
    with_grad = fastloss.cross_entropy_and_grad
    monkeypatch.setattr(fastloss, "cross_entropy_and_grad", lambda *a, **k: calls.append(1) or with_grad(*a, **k))
    x, t = randn(N, C), class_target((N, C), "index")
    loss = FL.cross_entropy(x, t)
    assert loss.grad_fn is None and not loss.requires_grad
    x.requires_grad_()
    with torch.no_grad():
        assert FL.cross_entropy(x, t).grad_fn is None
    with torch.inference_mode():
        assert FL.cross_entropy(x, t).grad_fn is None
    assert calls == []
    assert FL.cross_entropy(x, t).grad_fn is not None and calls == [1]


@pytest.mark.parametrize("fn", [lambda x: FL.cross_entropy(x, torch.tensor([0, 1, 2, 3, 4, 0, 1])),
                                lambda x: FL.mse_loss(x, torch.zeros(N, C, dtype=torch.float64)),
                                lambda x: FL.softmax(x, 1).sum(), lambda x: FL.logsumexp(x, 1).sum()])
def test_double_backward_raises(fn):
    x = randn(N, C).requires_grad_()
    with pytest.raises(RuntimeError, match="fastloss.torch does not support double backward"):
        g, = torch.autograd.grad(fn(x), x, create_graph=True)
        g.sum().backward()


def test_targets_and_weights_that_require_grad_are_refused():
    x = randn(N, C).requires_grad_()
    with pytest.raises(RuntimeError, match="gives no gradient to target"):
        FL.cross_entropy(x, probs(N, C).requires_grad_())
    with pytest.raises(RuntimeError, match="gives no gradient to weight"):
        FL.cross_entropy(x, class_target((N, C), "index"), weight=torch.ones(C, requires_grad=True))
    with pytest.raises(RuntimeError, match="gives no gradient to target"):
        FL.kl_div(x, probs(N, C).requires_grad_())
    with torch.no_grad():  # nothing is differentiated: allowed
        FL.kl_div(x, probs(N, C).requires_grad_())


# ---- layouts, dtypes, errors ------------------------------------------------------------------------------

def test_channels_last_and_strided_inputs():
    x = randn(2, C, 3, 4)
    for variant in (x, x.contiguous(memory_format=torch.channels_last), x[:, :, ::2], x.transpose(2, 3)):
        v, t = variant.detach().requires_grad_(), class_target(tuple(variant.shape), "index")
        got, (g,) = run(FL.cross_entropy, [v, t], {}, (0,))
        want, (w,) = run(F.cross_entropy, [v, t], {}, (0,))
        assert_close(got, want, torch.float64)
        assert_close(g, w, torch.float64)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    x = randn(N, C, 3).to(dtype).requires_grad_()
    t = class_target((N, C, 3), "index")
    loss = FL.cross_entropy(x, t)
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    x32 = x.detach().float().requires_grad_()  # the same values, computed in float32
    want = F.cross_entropy(x32, t)
    want.backward()
    torch.testing.assert_close(loss, want.to(dtype), rtol=float(torch.finfo(dtype).eps), atol=0)
    torch.testing.assert_close(x.grad, x32.grad.to(dtype), rtol=0, atol=float(torch.finfo(dtype).eps))
    assert FL.mse_loss(x, x.detach() * 2, reduction="none").dtype == dtype
    assert FL.softmax(x, 1).dtype == dtype and FL.logsumexp(x, 1).dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(N, C), (N, C, 3)])
def test_half_gradient_written_in_half(dtype, shape):
    """A half input's gradient is written by the kernel in the input's dtype: bit for bit fastloss's float32
    gradient of the same values rounded by torch's cast (classes last, or moved last: a copy of the input)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = (randn(*shape) * 4).to(dtype).requires_grad_()
    t = class_target(shape, "index")
    xv = x.detach().movedim(1, -1).contiguous()
    xa = xv.numpy() if dtype == torch.float16 else xv.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    for fn, fn_and_grad in ((FL.cross_entropy, fastloss.cross_entropy_and_grad),
                            (FL.nll_loss, fastloss.nll_loss_and_grad)):
        x.grad = None
        fn(x, t, reduction="sum").backward()
        g32 = fn_and_grad(xa, t.numpy(), reduction="sum")[1]  # (N, [3,] C), float32
        want = torch.from_numpy(g32).to(dtype).movedim(-1, 1)
        assert x.grad.dtype == dtype
        assert torch.equal(x.grad.contiguous().view(torch.int16), want.contiguous().view(torch.int16)), fn.__name__


def test_errors():
    x, t = randn(N, C), class_target((N, C), "index")
    with pytest.raises(TypeError, match="fastloss.torch is for CPU tensors"):
        FL.cross_entropy(torch.empty(N, C, device="meta"), t)
    with pytest.raises(TypeError, match="fastloss.torch is for CPU tensors"):
        FL.mse_loss(x, torch.empty(N, C, device="meta"))
    bad = t.clone()
    bad[4] = 9
    with pytest.raises(IndexError, match=r"target\[4\] = 9 is out of bounds"):
        FL.cross_entropy(x, bad)
    t3 = class_target((2, C, 3), "index")
    t3[1, 2] = -7
    with pytest.raises(IndexError, match=r"target\[1, 2\] = -7"):
        FL.nll_loss(randn(2, C, 3), t3)
    with pytest.raises(ValueError, match=r"\(6,\).*\(7, 5\)"):
        FL.cross_entropy(x, t[:6])
    with pytest.raises(ValueError, match=r"\(7, 5\).*\(7, 4\)|\(7, 4\).*\(7, 5\)"):
        FL.mse_loss(x, x[:, :4])
    with pytest.raises(ValueError, match=r"\(7, 5\).*\(7, 4\)|\(7, 4\).*\(7, 5\)"):
        FL.kl_div(x, x[:, :4])
    with pytest.raises(TypeError, match="floating-point"):
        FL.cross_entropy(t.view(N, 1).expand(N, C), t)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        FL.cross_entropy(x.numpy(), t)
    with pytest.raises(ValueError, match="reduction"):
        FL.cross_entropy(x, t, reduction="average")
    with pytest.raises(ValueError, match="p == 1 and p == 2"):
        FL.multi_margin_loss(x, t, p=3)
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        FL.logsumexp(x, 2)
    with pytest.raises(ValueError, match=r"y\[0, 0\] = 0.5"):
        FL.soft_margin_loss(x, torch.full((N, C), 0.5, dtype=torch.float64))


# ---- module classes -------------------------------------------------------------------------------------

MODULES = [
    ("CrossEntropyLoss", dict(weight=torch.linspace(0.5, 2, C, dtype=torch.float64), label_smoothing=0.1,
                              ignore_index=2), lambda: (randn(N, C), class_target((N, C), "index"))),
    ("NLLLoss", dict(reduction="sum"), lambda: (F.log_softmax(randn(N, C), 1), class_target((N, C), "index"))),
    ("BCEWithLogitsLoss", dict(pos_weight=torch.full((C,), 3.0, dtype=torch.float64)),
     lambda: (randn(N, C), probs(N, C))),
    ("KLDivLoss", dict(reduction="batchmean", log_target=True), lambda: (randn(N, C), probs(N, C).log())),
    ("MSELoss", {}, lambda: (randn(N, C), randn(N, C, seed=3))),
    ("L1Loss", dict(reduction="none"), lambda: (randn(N, C), randn(N, C, seed=3))),
    ("HuberLoss", dict(delta=0.3), lambda: (randn(N, C), randn(N, C, seed=3))),
    ("SoftMarginLoss", {}, lambda: (randn(N, C), torch.where(randn(N, C, seed=3) > 0, 1.0, -1.0).double())),
    ("MultiMarginLoss", dict(p=2, margin=0.5), lambda: (randn(N, C), class_target((N, C), "index"))),
]


@pytest.mark.parametrize("name,kw,data", MODULES, ids=[m[0] for m in MODULES])
def test_module_classes(name, kw, data):
    ours, theirs = getattr(FL, name)(**kw), getattr(torch.nn, name)(**kw)
    assert isinstance(ours, getattr(torch.nn, name))
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    x, t = data()
    got, (g,) = run(ours, [x, t], {}, (0,))
    want, (w,) = run(theirs, [x, t], {}, (0,))
    assert_close(got, want, torch.float64)
    assert_close(g, w, torch.float64)


# ---- functions fastloss may not have yet (issue 13) -------------------------------------------------------

LATER = {
    "smooth_l1_loss": (dict(beta=0.5), lambda: [randn(N, C), randn(N, C, seed=3)], (0, 1)),
    "poisson_nll_loss": (dict(log_input=True, full=True), lambda: [randn(N, C), torch.rand(N, C, generator=_rng(7),
                                                                                         dtype=torch.float64) * 4],
                         (0,)),
    "gaussian_nll_loss": (dict(full=True), lambda: [randn(N, C), randn(N, C, seed=3),
                                                    torch.rand(N, C, generator=_rng(7), dtype=torch.float64) + 0.1],
                          (0, 1)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(LATER))
def test_functions_of_issue_13(name, reduction, dtype):
    if not hasattr(fastloss, name):
        pytest.skip(f"fastloss.{name} does not exist yet")
    kw, data, grad_args = LATER[name]
    compare(name, data(), dict(kw, reduction=reduction), dtype, grad_args)


@pytest.mark.parametrize("name", sorted(LATER))
def test_functions_of_issue_13_missing(name):
    if hasattr(fastloss, name):
        pytest.skip(f"fastloss.{name} exists")
    with pytest.raises(NotImplementedError, match=f"fastloss.{name}"):
        getattr(FL, name)(*LATER[name][1]())


# Until issue 13 lands: the adapters' plumbing (arguments passed, layouts, reductions, autograd, the target's
# gradient) checked against torch with NumPy stand-ins of the fastloss functions, written from API.md's formulas.

def _stand_in(elem, elem_grad):
    """fastloss.NAME and NAME_and_grad for an element-wise loss: elem(x, *arrays, **opts) per element."""
    import numpy as np

    def reduce(v, reduction):
        return v if reduction == "none" else v.dtype.type(v.sum() / (v.size if reduction == "mean" else 1))

    def fn(x, *arrays, reduction="mean", **opts):
        return reduce(elem(x, *arrays, **opts).astype(x.dtype), reduction)

    def fn_and_grad(x, *arrays, reduction="mean", grad_out=None, **opts):
        g = elem_grad(x, *arrays, **opts) / (x.size if reduction == "mean" else 1)
        grad = np.asarray(g, x.dtype) if grad_out is None else np.copyto(grad_out, g) or grad_out
        return fn(x, *arrays, reduction=reduction, **opts), grad
    return fn, fn_and_grad


def _stand_ins():
    import numpy as np
    half_log_2pi = 0.5 * np.log(2 * np.pi)

    def smooth_l1(x, t, beta):
        d = np.abs(x - t)
        return np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)

    def poisson(x, t, log_input, full, eps):
        v = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
        if full:
            tt = np.where(t > 1, t, 2.0)
            v = v + np.where(t > 1, tt * np.log(tt) - tt + 0.5 * np.log(2 * np.pi * tt), 0.0)
        return v

    def gaussian(x, t, var, full, eps):
        v = np.maximum(var, eps)
        return 0.5 * (np.log(v) + (x - t) ** 2 / v) + (half_log_2pi if full else 0.0)

    return {
        "smooth_l1_loss": _stand_in(smooth_l1, lambda x, t, beta: np.clip((x - t) / beta, -1, 1)),
        "poisson_nll_loss": _stand_in(poisson, lambda x, t, log_input, full, eps:
                                      np.exp(x) - t if log_input else 1 - t / (x + eps)),
        "gaussian_nll_loss": _stand_in(gaussian, lambda x, t, var, full, eps: (x - t) / np.maximum(var, eps)),
    }


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(LATER))
def test_functions_of_issue_13_plumbing(name, reduction, monkeypatch):
    fn, fn_and_grad = _stand_ins()[name]
    monkeypatch.setattr(fastloss, name, fn, raising=False)
    monkeypatch.setattr(fastloss, name + "_and_grad", fn_and_grad, raising=False)
    kw, data, grad_args = LATER[name]
    compare(name, data(), dict(kw, reduction=reduction), torch.float64, grad_args)


@pytest.mark.parametrize("name,module", [("smooth_l1_loss", "SmoothL1Loss"), ("poisson_nll_loss", "PoissonNLLLoss"),
                                         ("gaussian_nll_loss", "GaussianNLLLoss")])
def test_module_classes_of_issue_13(name, module):
    if not hasattr(fastloss, name):
        pytest.skip(f"fastloss.{name} does not exist yet")
    kw, data, _ = LATER[name]
    if name == "smooth_l1_loss":
        kw = {}
    args = data()
    assert_close(getattr(FL, module)(**kw)(*args), getattr(torch.nn, module)(**kw)(*args), torch.float64)


# ---- memory ---------------------------------------------------------------------------------------------

def test_no_input_sized_numpy_allocation():
    """Forward and backward of a 2048 x 4096 float32 batch (32 MiB) allocate no NumPy array of the input's size
    but the gradient itself (the output that becomes x.grad): the input is read in place. With fastloss's opt-in
    output cache, the gradient reuses the memory of the one released before and nothing is allocated."""
    x = torch.randn(2048, 4096, generator=_rng(0)).requires_grad_()
    t = torch.randint(0, 4096, (2048,), generator=_rng(1))
    nbytes = x.numel() * 4

    def peak_of_two_steps():
        tracemalloc.start()
        try:
            for _ in range(2):
                x.grad = None
                FL.cross_entropy(x, t, label_smoothing=0.1).backward()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak_of_two_steps() < nbytes + nbytes // 16  # one gradient at a time, no temporary
    old = fastloss.set_output_cache_mb(256)
    try:
        for _ in range(2):  # the first call's gradient fills the cache
            x.grad = None
            FL.cross_entropy(x, t).backward()
        peak = peak_of_two_steps()
    finally:
        fastloss.set_output_cache_mb(old)
    assert x.grad.shape == x.shape
    assert peak < nbytes // 16, peak


def test_import_fastloss_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, fastloss; fastloss.cross_entropy([[1.0, 2.0]], [1]); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
