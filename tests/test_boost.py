"""fastloss.xgboost and fastloss.lightgbm: proof by training. With the matching options, the fastloss objective
trains the model of the built-in one (max |margin difference| < 1e-4 after several rounds); what the built-ins
lack (label smoothing with class weights, focal loss) trains and lowers its loss; bad losses and options are
errors when the objective is made. Small data sets, few rounds, one thread: under half a minute.

The losses that arrive with the element-wise NAME_grad_hess (binary_cross_entropy_with_logits_grad_hess,
tweedie_loss_grad_hess, sigmoid_focal_loss_grad_hess) skip until fastloss has them; the classes of XGBoost and LightGBM
skip where the library is not installed (CI installs the boost extra to run them)."""
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl

N_ROWS, K, ROUNDS = 400, 3, 6

try:  # the libraries are optional: their classes skip without them, the adapters' error tests run anyway
    import xgboost as _xgb
except ImportError:
    _xgb = None
try:
    import lightgbm as _lgb
except ImportError:
    _lgb = None


def needs(name):
    return pytest.mark.skipif(not hasattr(fl, name), reason=f"fastloss.{name} not in this version yet")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N_ROWS, 6))
    score = X[:, 0] + 0.7 * X[:, 1] * X[:, 2] + rng.normal(size=N_ROWS) * 0.5
    y_class = np.digitize(score, [-0.5, 0.5])  # 3 classes
    y_bin = (score > 0).astype(np.float64)
    y_tweedie = np.exp(0.5 * X[:, 0]) * rng.gamma(2.0, 0.5, N_ROWS) * (rng.random(N_ROWS) < 0.7)
    w = rng.random(N_ROWS) + 0.5
    return dict(X=X, y_class=y_class, y_bin=y_bin, y_tweedie=y_tweedie, w=w)


def test_importing_fastloss_imports_neither_library():
    """(the adapters read the DMatrix / Dataset through get_label and get_weight)"""
    code = ("import sys, fastloss, fastloss.xgboost, fastloss.lightgbm; "
            "assert 'xgboost' not in sys.modules and 'lightgbm' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- XGBoost ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(_xgb is None, reason="xgboost is not installed (the boost extra)")
class TestXGBoost:
    xgb = _xgb
    import fastloss.xgboost as flx
    BASE = {"max_depth": 3, "eta": 0.3, "tree_method": "hist", "nthread": 1}

    def margins_apart(self, builtin_params, custom_params, dtrain, obj):
        b1 = self.xgb.train({**self.BASE, **builtin_params}, dtrain, ROUNDS)
        b2 = self.xgb.train({**self.BASE, **custom_params}, dtrain, ROUNDS, obj=obj)
        m1, m2 = b1.predict(dtrain, output_margin=True), b2.predict(dtrain, output_margin=True)
        assert m1.shape == m2.shape
        return float(np.max(np.abs(m1 - m2)))

    def test_softprob(self, data):
        d = self.xgb.DMatrix(data["X"], data["y_class"], weight=data["w"])
        obj = self.flx.objective("cross_entropy", hess_scale=2.0)
        # base_score in margin space for both (softprob's intercept estimate otherwise)
        apart = self.margins_apart({"objective": "multi:softprob", "num_class": K, "base_score": 0.5},
                                   {"num_class": K, "base_score": 0.5}, d, obj)
        assert apart < 1e-4
        # with the plain p (1 - p) the trees differ: the hess_scale is what makes the identity
        assert self.margins_apart({"objective": "multi:softprob", "num_class": K, "base_score": 0.5},
                                  {"num_class": K, "base_score": 0.5}, d,
                                  self.flx.objective("cross_entropy")) > 1e-2

    @needs("binary_cross_entropy_with_logits_grad_hess")
    def test_binary_logistic(self, data):
        d = self.xgb.DMatrix(data["X"], data["y_bin"], weight=data["w"])
        # binary:logistic's base_score 0.5 is the margin 0
        assert self.margins_apart({"objective": "binary:logistic", "base_score": 0.5}, {"base_score": 0.0}, d,
                                  self.flx.objective("logistic")) < 1e-4

    @needs("tweedie_loss_grad_hess")
    def test_tweedie(self, data):
        d = self.xgb.DMatrix(data["X"], data["y_tweedie"], weight=data["w"])
        # reg:tweedie's base_score 1 is the margin log 1 = 0
        assert self.margins_apart({"objective": "reg:tweedie", "tweedie_variance_power": 1.5, "base_score": 1.0},
                                  {"base_score": 0.0}, d, self.flx.objective("tweedie", power=1.5)) < 1e-4

    def test_smoothing_and_class_weights_train_and_lower_the_loss(self, data):
        opts = {"label_smoothing": 0.1, "weight": np.array([1.0, 2.0, 0.5])}
        d = self.xgb.DMatrix(data["X"], data["y_class"], weight=data["w"])
        log = {}
        self.xgb.train({**self.BASE, "num_class": K, "base_score": 0.0, "disable_default_eval_metric": 1}, d,
                       ROUNDS, obj=self.flx.objective("cross_entropy", **opts),
                       custom_metric=self.flx.metric("cross_entropy", **opts), evals=[(d, "train")],
                       evals_result=log, verbose_eval=False)
        curve = log["train"]["cross_entropy"]
        assert len(curve) == ROUNDS and curve[-1] < 0.8 * curve[0] and np.all(np.diff(curve) < 0)
        # the metric is fastloss's loss of the margins, sample-weighted
        margins = np.zeros((N_ROWS, K))
        first = fl.cross_entropy(margins, data["y_class"], sample_weight=data["w"], **opts)
        assert curve[0] < first  # after one round, below the loss of the all-zero start

    @needs("sigmoid_focal_loss_grad_hess")
    def test_focal_trains(self, data):
        d = self.xgb.DMatrix(data["X"], data["y_bin"])
        log = {}
        self.xgb.train({**self.BASE, "base_score": 0.0, "disable_default_eval_metric": 1}, d, ROUNDS,
                       obj=self.flx.objective("focal", min_hess=1e-6, gamma=2.0, alpha=0.25),
                       custom_metric=self.flx.metric("focal", gamma=2.0, alpha=0.25), evals=[(d, "train")],
                       evals_result=log, verbose_eval=False)
        curve = log["train"]["focal"]
        assert curve[-1] < 0.8 * curve[0]

    def test_sklearn_classifier(self, data):
        obj = self.flx.objective("cross_entropy", hess_scale=2.0)
        common = dict(n_estimators=ROUNDS, max_depth=3, learning_rate=0.3, tree_method="hist", n_jobs=1,
                      base_score=0.5)
        custom = self.xgb.XGBClassifier(objective=obj.sklearn, eval_metric=self.flx.metric("cross_entropy").sklearn,
                                        **common)
        custom.fit(data["X"], data["y_class"], sample_weight=data["w"], eval_set=[(data["X"], data["y_class"])],
                   verbose=False)
        builtin = self.xgb.XGBClassifier(objective="multi:softprob", **common)
        builtin.fit(data["X"], data["y_class"], sample_weight=data["w"])
        m1 = builtin.predict(data["X"], output_margin=True)
        m2 = custom.predict(data["X"], output_margin=True)
        assert np.max(np.abs(m1 - m2)) < 1e-4
        curve = custom.evals_result()["validation_0"]["cross_entropy"]
        assert len(curve) == ROUNDS and curve[-1] < curve[0]

    def test_multiclass_margins_flat_as_before_xgboost_2_1(self, data):
        """(n * K,) margins (XGBoost < 2.1) give the same derivatives, flat."""
        obj = self.flx.objective("cross_entropy", hess_scale=2.0)
        d = self.xgb.DMatrix(data["X"][:5], data["y_class"][:5])
        m = np.random.default_rng(0).normal(size=(5, K)).astype(np.float32)
        g2, h2 = obj(m, d)
        g1, h1 = obj(m.reshape(-1), d)
        assert g1.shape == h1.shape == (5 * K,) and g2.shape == (5, K)
        np.testing.assert_array_equal(g1, g2.reshape(-1))
        np.testing.assert_array_equal(h1, h2.reshape(-1))


# ---- LightGBM -----------------------------------------------------------------------------------------------

@pytest.mark.skipif(_lgb is None, reason="lightgbm is not installed (the boost extra)")
class TestLightGBM:
    lgb = _lgb
    import fastloss.lightgbm as fll
    BASE = {"num_leaves": 7, "learning_rate": 0.3, "verbose": -1, "num_threads": 1, "boost_from_average": False,
            "deterministic": True, "force_row_wise": True}

    def margins_apart(self, params, objective, X, y, w):
        b1 = self.lgb.train({**self.BASE, **params}, self.lgb.Dataset(X, y, weight=w), ROUNDS)
        b2 = self.lgb.train({**self.BASE, **params, "objective": objective}, self.lgb.Dataset(X, y, weight=w),
                            ROUNDS)
        m1, m2 = b1.predict(X, raw_score=True), b2.predict(X, raw_score=True)
        assert m1.shape == m2.shape
        return float(np.max(np.abs(m1 - m2)))

    def test_multiclass(self, data):
        obj = self.fll.objective("cross_entropy", hess_scale=K / (K - 1))
        assert self.margins_apart({"objective": "multiclass", "num_class": K}, obj, data["X"], data["y_class"],
                                  data["w"]) < 1e-4

    @needs("binary_cross_entropy_with_logits_grad_hess")
    def test_binary(self, data):
        assert self.margins_apart({"objective": "binary"}, self.fll.objective("logistic"), data["X"], data["y_bin"],
                                  data["w"]) < 1e-4

    def test_smoothing_and_class_weights_train_and_lower_the_loss(self, data):
        opts = {"label_smoothing": 0.1, "weight": np.array([1.0, 2.0, 0.5])}
        log = {}
        train = self.lgb.Dataset(data["X"], data["y_class"], weight=data["w"])
        self.lgb.train({**self.BASE, "num_class": K, "metric": "None",
                        "objective": self.fll.objective("cross_entropy", **opts)}, train, ROUNDS,
                       valid_sets=[train], valid_names=["train"], feval=self.fll.metric("cross_entropy", **opts),
                       callbacks=[self.lgb.record_evaluation(log)])
        curve = log["train"]["cross_entropy"]
        assert len(curve) == ROUNDS and curve[-1] < 0.8 * curve[0] and np.all(np.diff(curve) < 0)

    def test_sklearn_classifier(self, data):
        common = dict(n_estimators=ROUNDS, num_leaves=7, learning_rate=0.3, verbose=-1, n_jobs=1,
                      boost_from_average=False, deterministic=True, force_row_wise=True)
        custom = self.lgb.LGBMClassifier(objective=self.fll.objective("cross_entropy", hess_scale=K / (K - 1)).sklearn,
                                         **common)
        import inspect
        # LightGBM 4.7 names the evaluation data eval_X / eval_y (eval_set is deprecated there)
        X, y = data["X"], data["y_class"]
        evals = ({"eval_X": (X,), "eval_y": (y,)} if "eval_X" in inspect.signature(custom.fit).parameters
                 else {"eval_set": [(X, y)]})
        custom.fit(X, y, sample_weight=data["w"], eval_metric=self.fll.metric("cross_entropy").sklearn, **evals)
        builtin = self.lgb.LGBMClassifier(objective="multiclass", **common)
        builtin.fit(data["X"], data["y_class"], sample_weight=data["w"])
        m1 = builtin.predict(data["X"], raw_score=True)
        m2 = custom.predict(data["X"], raw_score=True)
        assert np.max(np.abs(m1 - m2)) < 1e-4
        (curves,) = custom.evals_result_.values()  # "training": LightGBM's name for the training data
        curve = curves["cross_entropy"]
        assert len(curve) == ROUNDS and curve[-1] < curve[0]


# ---- errors: when the objective is made, nothing trained ----------------------------------------------------

ADAPTERS = ["fastloss.xgboost", "fastloss.lightgbm"]


def adapter(name):
    import importlib
    return importlib.import_module(name)


@pytest.mark.parametrize("name", ADAPTERS)
def test_unknown_loss_lists_the_names(name):
    for make in (adapter(name).objective, adapter(name).metric):
        with pytest.raises(ValueError, match="unknown loss 'softmax'.*cross_entropy.*tweedie"):
            make("softmax")


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("kw, exc, word", [
    ({"hess_scale": 0.0}, ValueError, "hess_scale"), ({"hess_scale": float("nan")}, ValueError, "hess_scale"),
    ({"hess_scale": "2"}, TypeError, "hess_scale"), ({"min_hess": -1.0}, ValueError, "min_hess"),
    ({"min_hess": float("inf")}, ValueError, "min_hess"), ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
    ({"weight": np.ones((2, 2))}, ValueError, "weight"), ({"delta": 1.0}, TypeError, "delta"),
    ({"reduction": "sum"}, ValueError, "reduction"), ({"sample_weight": np.ones(3)}, ValueError, "sample_weight"),
])
def test_bad_options(name, kw, exc, word):
    with pytest.raises(exc, match=word):
        adapter(name).objective("cross_entropy", **kw)


@pytest.mark.parametrize("name", ADAPTERS)
def test_bad_labels_raise_and_the_derivatives_are_not_returned(name):
    obj = adapter(name).objective("cross_entropy").sklearn
    margins = np.zeros((4, 3))
    call = (lambda y: obj(y, margins)) if name.endswith("xgboost") else (lambda y: obj(y, margins, None))
    with pytest.raises(ValueError, match=r"label\[2\] = 1.5"):
        call(np.array([0.0, 1.0, 1.5, 2.0]))
    with pytest.raises(IndexError, match=r"target\[3\] = 3 is out of bounds"):
        call(np.array([0.0, 1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="n_classes"):
        call_1d = (lambda y: obj(y, np.zeros(4))) if name.endswith("xgboost") else (lambda y: obj(y, np.zeros(4), None))
        call_1d(np.array([0.0, 1.0, 2.0, 1.0]))


@pytest.mark.parametrize("name", ADAPTERS)
def test_hess_scale_and_floor(name):
    obj = adapter(name).objective("cross_entropy", hess_scale=2.0, min_hess=0.05).sklearn
    m = np.array([[8.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    y = np.array([0.0, 2.0])
    g, h = obj(y, m) if name.endswith("xgboost") else obj(y, m, None)
    _, g0, h0 = fl.cross_entropy_grad_hess(m, y.astype(np.int64), reduction="none")
    np.testing.assert_array_equal(g, g0)
    np.testing.assert_array_equal(h, np.maximum(2.0 * h0, 0.05))
    assert h[0, 1] == 0.05 and h[1, 0] == 2.0 * h0[1, 0]


@pytest.mark.parametrize("name", ADAPTERS)
def test_sample_weights_scale_the_derivatives(name):
    obj = adapter(name).objective("cross_entropy").sklearn
    m = np.random.default_rng(1).normal(size=(5, 3))
    y = np.array([0.0, 1.0, 2.0, 1.0, 0.0])
    w = np.array([1.0, 2.0, 0.5, 0.0, 3.0])
    g, h = obj(y, m, w)
    _, g0, h0 = fl.cross_entropy_grad_hess(m, y.astype(np.int64), reduction="none")
    np.testing.assert_allclose(g, g0 * w[:, None], rtol=1e-15)
    np.testing.assert_allclose(h, h0 * w[:, None], rtol=1e-15)


@pytest.mark.parametrize("name", ADAPTERS)
@pytest.mark.parametrize("loss", ["exponential", "mse", "huber"])
def test_regression_and_margin_losses_are_the_fastloss_function(name, loss):
    """Per element: NAME_grad_hess(reduction="none") of the predictions and (mapped) labels."""
    fn = {"exponential": "exponential_loss", "mse": "mse_loss", "huber": "huber_loss"}[loss] + "_grad_hess"
    if not hasattr(fl, fn):
        pytest.skip(f"fastloss.{fn} not in this version yet")
    obj = adapter(name).objective(loss).sklearn
    p = np.array([0.3, -1.2, 2.0, 0.0])
    y = np.array([1.0, 0.0, 1.0, 0.0]) if loss == "exponential" else np.array([0.5, -3.0, 2.0, 1.0])
    g, h = obj(y, p) if name.endswith("xgboost") else obj(y, p, None)
    _, g0, h0 = getattr(fl, fn)(p, np.where(y == 0, -1.0, y) if loss == "exponential" else y, reduction="none")
    np.testing.assert_array_equal(g, g0)
    np.testing.assert_array_equal(h, h0)


@pytest.mark.parametrize("name", ADAPTERS)
def test_metric_is_the_weighted_mean_loss(name):
    met = adapter(name).metric("cross_entropy", label_smoothing=0.2).sklearn
    m = np.random.default_rng(2).normal(size=(6, 3))
    y = np.array([0.0, 1.0, 2.0, 1.0, 0.0, 2.0])
    w = np.linspace(0.5, 2.0, 6)
    got = met(y, m, w)
    value = got[1] if isinstance(got, tuple) else got
    expected = fl.cross_entropy(m, y.astype(np.int64), sample_weight=w, label_smoothing=0.2)
    assert value == pytest.approx(float(expected), rel=1e-15)
