"""scikit-learn estimators as ModularML models: wrapping, fitting, forwarding, files, phases and graphs."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge, SGDRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modularml as mml
from modularml.batches import BatchView, ExecutionContext
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.datasets import make_featureset
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotFittedError, SerializationError
from modularml.models import BaseModel
from modularml_sklearn.models import ScikitModelWrapper

RNG = np.random.default_rng(0)
X3 = RNG.normal(size=(40, 2, 6)).astype(np.float32)  # 40 samples of 2 x 6 features
Y = (X3.reshape(40, -1) @ RNG.normal(size=12) + 0.5).astype(np.float32)


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[ExperimentContext]:
    with ExperimentContext(registration_policy="error").activate() as ctx:
        yield ctx


def _regression_fs(label: str = "data", n: int = 60) -> FeatureSet:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.05 * rng.normal(size=n)).astype(np.float32)
    fs = FeatureSet.from_dict(label, {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}, ["a", "b", "c"], ["y"])
    fs.split_random({"train": 0.75, "test": 0.25}, seed=2)
    return fs


def _curves_fs(label: str = "cells") -> FeatureSet:
    fs = make_featureset(label, n_samples=48, n_points=8, seed=2)
    fs.split_random({"train": 0.75, "test": 0.25}, group_by="cell_id", seed=3)
    return fs


def _context(node: mml.ModelNode, fs: FeatureSet, rows: np.ndarray | None = None, label: str = "step"):
    rows = np.arange(len(fs)) if rows is None else rows
    return ExecutionContext(label, inputs={(node.node_id, node.upstream_refs[0]): BatchView(fs, rows)})


def _outputs(graph: mml.ModelGraph, node: mml.ModelNode, fs: FeatureSet) -> np.ndarray:
    ctx = _context(node, fs, label="eval")
    graph.eval_step(ctx)
    return np.asarray(mml.get_backend("scikit").to_numpy(ctx.get_output(node.node_id).outputs))


# ---------------------------------------------------------------------- the backend claims estimators
def test_backend_claims_estimator_instances_only() -> None:
    impl = mml.get_backend("sklearn")
    from modularml_numpy.models import LinearModel

    class DuckModel:  # fit and predict, but not a scikit-learn estimator
        def fit(self, x, y):
            return self

        def predict(self, x):
            return x

    for estimator in (PCA(n_components=2), Ridge(), make_pipeline(StandardScaler(), Ridge()), KMeans(2)):
        assert impl.claims_model(estimator) is True
    wrapper = ScikitModelWrapper(Ridge())
    for other in (PCA, object(), np.zeros(3), "model", None, {"a": 1}, DuckModel(), LinearModel(), wrapper):
        assert impl.claims_model(other) is False, other
    assert impl.wrap_model(wrapper) is wrapper
    with pytest.raises(InvalidTypeError, match=r"'numpy' model, not a scikit-learn model"):
        impl.wrap_model(LinearModel())
    with pytest.raises(InvalidTypeError, match=r"BaseEstimator instances\); got DuckModel"):
        impl.wrap_model(DuckModel())


def test_the_plugin_registers_the_wrapper_for_the_scikit_backend() -> None:
    entries = {(e.name, e.backend): e for e in mml.get_plugin_manager().registry("models")}
    entry = entries[("ScikitModelWrapper", "scikit")]
    assert entry.distribution == "modularml-sklearn"
    assert entry.obj == "modularml_sklearn.models:ScikitModelWrapper"


def test_a_model_node_wraps_an_estimator_and_knows_its_output_shape_before_fitting() -> None:
    fs = _curves_fs()
    pca = PCA(n_components=4)
    node = mml.ModelNode("pca", pca, fs)
    scaler = mml.ModelNode("scaler", StandardScaler(), fs)
    ridge = mml.ModelNode("ridge", Ridge(), fs)
    chain = mml.ModelNode("chain", make_pipeline(StandardScaler(), PCA(n_components=3)), fs)
    assert isinstance(node.model, ScikitModelWrapper)
    assert node.model.estimator is pca
    assert str(node.backend) == "scikit"
    assert not node.is_trainable
    assert node.is_fittable
    assert node.parameters() == []
    mml.ModelGraph([node, scaler, ridge, chain]).build()
    assert node.input_shape == (2, 8)
    assert node.output_shape == (4,)
    assert scaler.output_shape == (16,)  # a transformer that keeps the number of features
    assert chain.output_shape == (3,)  # through the pipeline's steps
    assert ridge.output_shape is None  # a regressor's outputs are known once fitted
    assert not node.model.is_fitted


# ---------------------------------------------------------------------- fit and forward
def test_transformers_flatten_samples_and_match_sklearn() -> None:
    model = ScikitModelWrapper(PCA(n_components=3, random_state=0)).fit(X3)
    assert model.is_fitted
    assert model.method == "transform"
    assert model.input_shape == (2, 6)
    assert model.output_shape == (3,)
    out = model.forward(X3)
    assert out.shape == (40, 3)
    assert out.dtype == np.float32
    direct = PCA(n_components=3, random_state=0).fit(X3.reshape(40, -1))
    np.testing.assert_allclose(out, direct.transform(X3.reshape(40, -1)), rtol=1e-5, atol=1e-6)
    scaled = ScikitModelWrapper(StandardScaler()).fit(X3).forward(X3[:5])
    np.testing.assert_allclose(scaled, StandardScaler().fit_transform(X3.reshape(40, -1))[:5], rtol=1e-5, atol=1e-6)


def test_regressors_get_squeezed_targets_and_predict_columns() -> None:
    model = ScikitModelWrapper(Ridge(alpha=0.1)).fit(X3, Y[:, None])  # (B, 1) targets reach fit as (B,)
    assert model.method == "predict"
    assert model.estimator.coef_.shape == (12,)
    assert model.output_shape == (1,)
    out = model.forward(X3)
    assert out.shape == (40, 1)
    assert out.dtype == np.float32
    direct = Ridge(alpha=0.1).fit(X3.reshape(40, -1), Y)
    np.testing.assert_allclose(out[:, 0], direct.predict(X3.reshape(40, -1)), rtol=1e-5, atol=1e-5)
    two = ScikitModelWrapper(Ridge()).fit(X3, np.stack([Y, -Y], axis=1))
    assert two.output_shape == (2,)
    assert two.forward(X3).shape == (40, 2)


def test_classifiers_predict_labels_or_probabilities() -> None:
    labels = (np.median(Y) < Y).astype(np.int64)
    model = ScikitModelWrapper(LogisticRegression()).fit(X3, labels)
    out = model.forward(X3)
    assert out.shape == (40, 1)
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert (out[:, 0] == labels).mean() > 0.8
    proba = ScikitModelWrapper(LogisticRegression(), method="predict_proba").fit(X3, labels)
    assert proba.output_shape == (2,)
    np.testing.assert_allclose(proba.forward(X3).sum(axis=1), 1.0, rtol=1e-5)
    named = ScikitModelWrapper(LogisticRegression())
    with pytest.raises(InvalidTypeError, match=r"predict\(\) returned <U3 values.*method='predict_proba'"):
        named.fit(X3, np.where(labels == 1, "big", "low"))


def test_incremental_fitting_with_partial_fit() -> None:
    model = ScikitModelWrapper(SGDRegressor(random_state=0, learning_rate="constant", eta0=0.01))
    flat = X3.reshape(40, -1)
    first = model.partial_fit(flat[:20], Y[:20]).get_weights()["coef_"]
    second = model.partial_fit(flat[20:], Y[20:]).get_weights()["coef_"]
    assert model.is_fitted
    assert not np.array_equal(first, second)
    with pytest.raises(InvalidArgumentError, match=r"fitted on per-sample input shape \(12,\)"):
        model.partial_fit(flat[:, :5], Y)
    with pytest.raises(InvalidTypeError, match="PCA has no partial_fit"):
        ScikitModelWrapper(PCA()).partial_fit(flat)


def test_a_prefitted_estimator_forwards_without_fitting() -> None:
    fitted = Ridge().fit(X3.reshape(40, -1), Y)
    model = ScikitModelWrapper(fitted)
    assert model.is_fitted
    assert model.is_built
    assert model.input_shape == (12,)
    np.testing.assert_allclose(model.forward(X3)[:, 0], fitted.predict(X3.reshape(40, -1)), rtol=1e-5)
    assert model.output_shape == (1,)


# ---------------------------------------------------------------------- errors
def test_forward_before_fit_says_to_run_a_fit_phase() -> None:
    with pytest.raises(NotFittedError, match=r"ScikitModelWrapper\(PCA\) is not fitted.*run a FitPhase"):
        ScikitModelWrapper(PCA(n_components=2)).forward(X3)


def test_shape_and_argument_errors() -> None:
    model = ScikitModelWrapper(PCA(n_components=2)).fit(X3)
    with pytest.raises(
        InvalidArgumentError, match=r"fitted on per-sample input shape \(2, 6\) \(12 features\); got \(5,\)"
    ):
        model.forward(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(InvalidArgumentError, match=r"fitted on 12 features per sample; input shape \(3,\)"):
        model.build((3,))
    model.build((3, 4))  # the same 12 features in another layout is fine
    with pytest.raises(InvalidArgumentError, match=r"declared with output_shape=\(3,\).*gives \(2,\)"):
        ScikitModelWrapper(PCA(n_components=2), output_shape=3).fit(X3)
    with pytest.raises(InvalidArgumentError, match=r"fit got 40 samples of features but targets of shape \(39,\)"):
        ScikitModelWrapper(Ridge()).fit(X3, Y[:-1])
    with pytest.raises(InvalidArgumentError, match=r"Ridge\)\.fit\(\) failed on X \(40, 12\), y \(40,\)"):
        ScikitModelWrapper(Ridge()).fit(np.full_like(X3, np.nan), Y)
    with pytest.raises(InvalidArgumentError, match="estimator_kwargs are for an estimator class"):
        ScikitModelWrapper(PCA(), estimator_kwargs={"n_components": 2})
    with pytest.raises(InvalidArgumentError, match="Cannot build PCA with estimator_kwargs"):
        ScikitModelWrapper(PCA, estimator_kwargs={"n_compnents": 2})
    with pytest.raises(InvalidArgumentError, match="method is one of"):
        ScikitModelWrapper(PCA(), method="score")
    with pytest.raises(InvalidArgumentError, match=r"Ridge has no transform\(\).*\['predict'\]"):
        ScikitModelWrapper(Ridge(), method="transform")
    with pytest.raises(InvalidTypeError, match="got the class dict"):
        ScikitModelWrapper(dict)
    with pytest.raises(InvalidTypeError, match="got int"):
        ScikitModelWrapper(3)


def test_build_with_force_starts_over_unfitted() -> None:
    model = ScikitModelWrapper(PCA(n_components=2)).fit(X3)
    model.build((5,), force=True)
    assert not model.is_fitted
    assert model.get_weights() == {}
    assert model.input_shape == (5,)
    assert model.output_shape == (2,)
    with pytest.raises(NotFittedError):
        model.forward(np.zeros((2, 5), dtype=np.float32))


# ---------------------------------------------------------------------- weights, state and files
def test_weights_are_copies_of_the_learned_arrays_and_can_be_overwritten() -> None:
    model = ScikitModelWrapper(Ridge()).fit(X3, Y)
    weights = model.get_weights()
    assert set(weights) >= {"coef_"}
    assert "n_features_in_" not in weights
    weights["coef_"][:] = 0.0
    assert np.any(model.estimator.coef_ != 0.0)
    model.set_weights({"coef_": np.zeros(12), "intercept_": np.array(2.0)})
    np.testing.assert_allclose(model.forward(X3[:3]), 2.0)
    with pytest.raises(InvalidArgumentError, match=r"no learned array 'bogus_'"):
        model.set_weights({"bogus_": np.zeros(1)})
    with pytest.raises(InvalidArgumentError, match=r"'coef_' has shape \(12,\), not \(3,\)"):
        model.set_weights({"coef_": np.zeros(3)})
    with pytest.raises(NotFittedError, match="set_state"):
        ScikitModelWrapper(Ridge()).set_weights({"coef_": np.zeros(12)})


@pytest.mark.parametrize(
    "estimator",
    [PCA(n_components=3), Ridge(alpha=0.5), make_pipeline(StandardScaler(), PCA(n_components=2))],
    ids=["pca", "ridge", "pipeline"],
)
def test_a_fitted_model_round_trips_through_a_file_without_pickle(estimator, tmp_path: Path) -> None:
    model = ScikitModelWrapper(estimator).fit(X3, Y)
    expected = model.forward(X3)
    path = model.save(tmp_path / "model")
    assert path.name == "model.md.mml"
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(".npy"):
                np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
    loaded = BaseModel.load(path)
    assert isinstance(loaded, ScikitModelWrapper)
    assert loaded.is_fitted
    assert type(loaded.estimator) is type(estimator)
    assert loaded.estimator is not estimator
    assert loaded.estimator.get_params(deep=False).keys() == estimator.get_params(deep=False).keys()
    assert loaded.input_shape == (2, 6)
    assert loaded.output_shape == model.output_shape
    np.testing.assert_array_equal(loaded.forward(X3), expected)
    unfitted = ScikitModelWrapper.load(ScikitModelWrapper(PCA(n_components=3)).save(tmp_path / "unfitted"))
    assert not unfitted.is_fitted
    assert unfitted.estimator.n_components == 3


def test_estimator_classes_outside_sklearn_need_allow_packaged_code(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "my_estimators.py").write_text(
        "from sklearn.linear_model import Ridge\n\nclass MyRidge(Ridge):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from my_estimators import MyRidge  # type: ignore[import-not-found]

    path = ScikitModelWrapper(MyRidge()).fit(X3, Y).save(tmp_path / "mine")
    with pytest.raises(SerializationError, match="Refusing to import 'my_estimators:MyRidge'"):
        BaseModel.load(path)
    loaded = BaseModel.load(path, allow_packaged_code=True)
    assert type(loaded.estimator).__name__ == "MyRidge"
    assert loaded.forward(X3).shape == (40, 1)


def test_set_state_rejects_foreign_state() -> None:
    with pytest.raises(InvalidArgumentError, match="the dict returned by get_state"):
        ScikitModelWrapper(PCA()).set_state({"weights": {}})


# ---------------------------------------------------------------------- in a graph and in phases
def test_fit_step_fits_the_estimator_and_freezes_it() -> None:
    fs = _regression_fs()
    node = mml.ModelNode("ridge", Ridge(alpha=0.1), fs)
    graph = mml.ModelGraph([node])
    rows = np.asarray(fs["train"].indices)
    assert 0 < len(rows) < len(fs)
    graph.fit_step(_context(node, fs, rows, "fit"))
    assert node.model.is_fitted
    assert node.is_frozen
    x = fs.get_features("numpy")
    direct = Ridge(alpha=0.1).fit(x[rows], fs.get_targets("numpy")[rows])
    np.testing.assert_allclose(_outputs(graph, node, fs)[:, 0], direct.predict(x), rtol=1e-5, atol=1e-5)
    before = node.model.get_weights()
    graph.fit_step(_context(node, fs, np.arange(len(fs)), "fit again"))  # frozen: forwarded, not refitted
    for key, value in before.items():
        np.testing.assert_array_equal(node.model.get_weights()[key], value)


def test_fit_phase_fits_a_regressor_like_sklearn_does() -> None:
    from modularml.phases import EvalPhase, FitPhase

    fs = _regression_fs()
    node = mml.ModelNode("ridge", Ridge(alpha=0.1), fs)
    mml.ModelGraph([node])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=node, inputs=["outputs", "targets"])
    fitted = FitPhase.from_split("fit", split="train").execute()
    assert node.is_frozen
    assert node.model.is_fitted
    assert len(fitted.execution_contexts()) == 1
    results = EvalPhase.from_split("test", split="test", losses=[loss]).execute()
    predicted = np.asarray(results.stacked_tensors(node, "outputs", fmt="numpy")).reshape(-1)
    train, test = fs["train"], fs["test"]
    direct = Ridge(alpha=0.1).fit(train.get_features("numpy"), train.get_targets("numpy"))
    expected = direct.predict(test.get_features("numpy"))
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-5)
    assert results.aggregated_losses(node)[loss.label] < 0.01  # the data is nearly linear


def test_an_estimator_in_a_train_phase_is_told_to_use_a_fit_phase() -> None:
    from modularml.phases import TrainPhase

    fs = _regression_fs()
    node = mml.ModelNode("ridge", Ridge(), fs)
    mml.ModelGraph([node])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=node, inputs=["outputs", "targets"])
    phase = TrainPhase.from_split("train", split="train", sampler=mml.SimpleSampler(batch_size=8), losses=[loss])
    with pytest.raises(InvalidArgumentError) as info:
        phase.execute(show_training_progress=False, show_sampler_progress=False)
    message = str(info.value)
    assert "node(s) ['ridge'] wrap models that are fitted (backend 'scikit'), not trained by gradient steps" in message
    assert "Fit them in a FitPhase instead: FitPhase.from_split('fit', split='train')" in message
    assert "optimizer" not in message


def test_a_trainable_node_downstream_of_a_fitted_estimator_trains_and_the_estimator_stays() -> None:
    from modularml_numpy.models import LinearModel

    mml.get_backend("numpy").seed(0)
    fs = _curves_fs()
    fs.fit_transform("StandardScaler", domain="targets", fit_to_split="train")
    pca = mml.ModelNode("pca", make_pipeline(StandardScaler(), PCA(n_components=4, random_state=0)), fs)
    head = mml.ModelNode(
        "head", LinearModel(output_shape=(1,)), pca, mml.Optimizer("sgd", opt_kwargs={"lr": 0.05}, backend="numpy")
    )
    graph = mml.ModelGraph([pca, head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])
    with pytest.raises(NotFittedError, match="run a FitPhase"):
        graph.train_step(_context(pca, fs), [loss])
    graph.fit_step(_context(pca, fs, label="fit"))
    assert pca.is_frozen
    assert head.is_built
    assert head.input_shape == (4,)
    pca_state = pca.model.get_state()["estimator_params"]["steps"][1][1]["state"]  # the fitted PCA step
    assert pca_state["components_"].shape == (4, 16)
    values = []
    for _ in range(60):
        ctx = _context(pca, fs, label="train")
        graph.train_step(ctx, [loss])
        values.append(float(np.asarray(mml.get_backend("numpy").to_numpy(ctx.losses[loss.label]))))
        assert isinstance(ctx.get_output(pca.node_id).outputs, np.ndarray)
    assert values[-1] < 0.1 * values[0]
    fitted_pca = pca.model.estimator.steps[1][1]
    for key in ("components_", "mean_", "explained_variance_"):
        np.testing.assert_array_equal(getattr(fitted_pca, key), pca_state[key])


def test_a_fitted_graph_reloads_in_a_fresh_context_with_identical_predictions(tmp_path: Path) -> None:
    fs = _curves_fs()
    node = mml.ModelNode("pca", make_pipeline(StandardScaler(), PCA(n_components=3)), fs)
    graph = mml.ModelGraph([node])
    graph.fit_step(_context(node, fs, label="fit"))
    expected = _outputs(graph, node, fs)
    path = graph.save(tmp_path / "graph")
    state = node.get_state()
    with ExperimentContext(registration_policy="error").activate():
        fs2 = _curves_fs()
        loaded = mml.ModelGraph.load(path)
        again = next(iter(loaded.nodes.values()))
        assert again.is_frozen
        assert again.model.is_fitted
        np.testing.assert_array_equal(_outputs(loaded, again, fs2), expected)
    with ExperimentContext(registration_policy="error").activate():
        fs3 = _curves_fs()
        fresh = mml.ModelNode("pca", make_pipeline(StandardScaler(), PCA(n_components=3)), fs3)
        fresh.set_state(state)
        np.testing.assert_array_equal(_outputs(mml.ModelGraph([fresh]), fresh, fs3), expected)
