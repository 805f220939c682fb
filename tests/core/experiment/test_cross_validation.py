"""Cross-validation: fold assignment, per-fold refit, isolation, fold failures, results with a fold axis."""

from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import Evaluation
from modularml.context import ExperimentContext
from modularml.errors import ModularMLError
from modularml.experiment import CrossValidation, CVBinding

pytest.importorskip("modularml_numpy", reason="the folds train with the numpy backend plugin")

QUIET = {"show_fold_progress": False, "show_training_progress": False, "show_sampler_progress": False}


class CenterScaler:
    """A scikit-learn-like standard scaler (the core session has no scikit-learn)."""

    def get_params(self, deep: bool = True) -> dict:
        return {}

    def fit(self, X: np.ndarray, y=None) -> CenterScaler:
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_ + self.mean_


class TrainingRowStats(mml.Callback):
    """Returns, at phase start, the mean of the training split's scaled features and the head's first weights."""

    def on_phase_start(self, *, experiment, phase, results=None):
        fs = phase.input_sources[0].upstream_ref.resolve_featureset()
        train = fs.get_split("train")
        column = next(c for c in fs.schema.names if c.startswith("features.") and c.endswith(".transformed"))
        x = fs.collection.to_numpy(column)[np.asarray(train.valid_indices)]
        weights = next(iter(experiment.model_graph.nodes.values())).model.get_weights()
        value = {"mean": x.mean(axis=0), "weights": {k: np.asarray(v) for k, v in weights.items()}}
        return mml.CallbackResult("stats", self.label, value=value)


class FailInFold(mml.Callback):
    def __init__(self, fold: str = "CV_fold1", label=None, execution_order=0) -> None:
        super().__init__(label, execution_order=execution_order)
        self.fold = fold

    def on_phase_start(self, *, experiment, phase, results=None):
        from modularml.context.fold import active_fold

        if active_fold() == self.fold:
            raise RuntimeError(f"boom in {self.fold}")

    def get_config(self):
        return {**super().get_config(), "fold": self.fold}


def _setup(n: int = 120, groups: int = 12):
    from modularml_numpy.models import LinearModel

    mml.get_backend("numpy").seed(0)
    rng = np.random.default_rng(0)
    x = (3 + 2 * rng.standard_normal((n, 3))).astype("float32")
    y = (x @ np.array([[1.0], [2.0], [-1.0]], dtype="float32")).astype("float32")
    g = np.repeat(np.arange(groups), n // groups)
    s = np.tile(np.array(["a", "b", "b", "c"]), n // 4)
    fs = mml.FeatureSet.from_dict(
        "data", {"x": x, "y": y, "g": g, "s": s}, feature_keys=["x"], target_keys=["y"], tag_keys=["g", "s"]
    )
    fs.split_random({"train": 0.6, "val": 0.2, "test": 0.2}, group_by="g", seed=1)
    fs.fit_transform(CenterScaler(), domain="features", fit_to_split="train")
    head = mml.ModelNode(
        "head", LinearModel(output_shape=(1,)), fs, mml.Optimizer("sgd", opt_kwargs={"lr": 0.01}, backend="numpy")
    )
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])
    exp = mml.Experiment.from_active_context("exp")
    train = mml.TrainPhase.from_split(
        "train",
        split="train",
        sampler=mml.SimpleSampler(batch_size=8, shuffle=True, seed=0, show_progress=False),
        losses=[loss],
        n_epochs=2,
    )
    train.add_callback(Evaluation(mml.EvalPhase.from_split("val", split="val", losses=[loss])))
    exp.execution_plan.add_phase(train)
    return exp, fs, head, train


@pytest.fixture(autouse=True)
def _own_context(fresh_context):
    return fresh_context


def test_kfold_parts_are_disjoint_and_cover_the_pool() -> None:
    _, fs, _, _ = _setup()
    binding = CVBinding(fs, ["train", "val"])
    pool = binding.pool()
    assert len(pool) == len(fs["train"]) + len(fs["val"])
    folds = binding.folds(4, seed=3)
    vals = [v for _, v in folds]
    assert sorted(np.concatenate(vals).tolist()) == pool.tolist()  # every pooled sample validated once
    for train, val in folds:
        assert not set(train) & set(val)
        assert sorted(np.concatenate([train, val]).tolist()) == pool.tolist()
    assert max(len(v) for v in vals) - min(len(v) for v in vals) <= 1
    again = binding.folds(4, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))  # seeded
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, binding.folds(4, seed=4), strict=True))


def test_groups_stay_whole_and_strata_are_spread() -> None:
    _, fs, _, _ = _setup()
    groups = fs.collection.to_numpy("tags.g.raw")
    by_group = CVBinding(fs, ["train", "val"], group_by="g").folds(3, seed=0)
    for train, val in by_group:
        assert not set(groups[train]) & set(groups[val])  # no group on both sides
    strata = fs.collection.to_numpy("tags.s.raw")
    binding = CVBinding(fs, ["train", "val"], stratify_by="s")
    pool = binding.pool()
    for _, val in binding.folds(3, seed=0):
        for stratum in ("a", "b", "c"):
            want = np.count_nonzero(strata[pool] == stratum) / 3
            assert abs(np.count_nonzero(strata[val] == stratum) - want) <= 1
    n_groups = len(set(groups[pool]))
    with pytest.raises(ValueError, match=f"has {n_groups} groups, fewer than the {n_groups + 1} folds"):
        CVBinding(fs, ["train", "val"], group_by="g").folds(n_groups + 1, seed=0)
    random_val = CVBinding(fs, ["train", "val"], val_size=0.25).folds(3, seed=0)
    assert all(len(v) == round(0.25 * len(pool)) for _, v in random_val)


def test_binding_arguments_are_checked() -> None:
    _, fs, _, _ = _setup()
    with pytest.raises(ValueError, match="not both"):
        CVBinding(fs, ["train"], group_by="g", stratify_by="s")
    with pytest.raises(ValueError, match="source_splits"):
        CVBinding(fs, [])
    with pytest.raises(ValueError, match="val_size"):
        CVBinding(fs, ["train"], val_size=1.5)
    with pytest.raises(KeyError, match=r"source splits \['nope'\]"):
        CVBinding(fs, ["nope"]).pool()
    with pytest.raises(ValueError, match="n_folds"):
        CrossValidation(bindings=CVBinding(fs, ["train"]), n_folds=1)


def test_each_fold_refits_scalers_on_its_training_rows_and_starts_from_one_state() -> None:
    exp, fs, _, train = _setup()
    train.add_callback(TrainingRowStats())
    before_splits = {name: np.asarray(fs.get_split(name).indices).copy() for name in fs.available_splits}
    before_x = fs.collection.to_numpy("features.x.transformed").copy()
    pool_mean = before_x[CVBinding(fs, ["train", "val"]).pool()].mean(axis=0)
    assert np.abs(pool_mean).max() > 0.01  # scaled on the original train split only: the pool is not centred
    cv = CrossValidation(bindings=CVBinding(fs, ["train", "val"], group_by="g"), n_folds=3, seed=5)
    results = cv.run(**QUIET)
    assert results.n_folds == 3
    assert results.fold_labels == ["CV_fold0", "CV_fold1", "CV_fold2"]
    stats = [results.get_fold(i).get_train_result("train").callbacks("stats")[0].value for i in range(3)]
    for fold in stats:
        np.testing.assert_allclose(fold["mean"], 0.0, atol=1e-5)  # refit on the fold's own training rows
    for name in stats[0]["weights"]:
        for other in stats[1:]:
            np.testing.assert_array_equal(other["weights"][name], stats[0]["weights"][name])  # one initial state
    # the caller's objects are untouched
    assert {n: np.asarray(fs.get_split(n).indices).tolist() for n in fs.available_splits} == {
        n: v.tolist() for n, v in before_splits.items()
    }
    np.testing.assert_array_equal(fs.collection.to_numpy("features.x.transformed"), before_x)
    assert exp.history == []
    assert not exp.model_graph.get_state()["is_built"]
    rows = results.fold_rows[1]["data"]
    assert set(rows) == {"train", "val"}
    fold_val = [r["data"]["val"] for r in results.fold_rows]
    assert sorted(np.concatenate(fold_val).tolist()) == CVBinding(fs, ["train", "val"]).pool().tolist()


def test_results_have_a_fold_axis_and_a_summary() -> None:
    _, fs, head, _ = _setup()
    results = CrossValidation(bindings=CVBinding(fs, ["train", "val"]), n_folds=3).run(**QUIET)
    losses = results.losses(head, "train")
    assert losses.axes[0] == "fold"
    assert sorted(losses.axes_values("fold")) == results.fold_labels
    fold1 = results.get_fold("CV_fold1").get_train_result("train").losses(head)
    assert losses.where(fold="CV_fold1").values == fold1.values
    val = results.metric("val_loss", "train")
    assert val.axes == ("fold", "epoch")
    assert len(val) == 3 * 2
    summary = results.summary("train")
    last = [results.get_fold(i).get_train_result("train").metrics().epoch_values("val_loss")[1] for i in range(3)]
    assert summary["val_loss"]["values"] == last
    assert summary["val_loss"]["mean"] == pytest.approx(np.mean(last))
    assert summary["val_loss"]["std"] == pytest.approx(np.std(last, ddof=1))
    assert "val_loss" in results.summary_table("train")
    collected = results.collect(lambda r: r.get_train_result("train").n_epochs)
    assert collected.values == [2, 2, 2]
    frame = results.metrics_to_pandas()
    assert sorted(frame["fold"].unique()) == results.fold_labels
    assert results.get_fold(0).get_train_result("train").fold == "CV_fold0"


def test_a_failing_fold_names_itself_and_chains_the_cause() -> None:
    _, fs, _, train = _setup()
    train.add_callback(FailInFold("CV_fold1"))
    cv = CrossValidation(bindings=CVBinding(fs, ["train", "val"]), n_folds=3)
    with pytest.raises(ModularMLError, match="CV_fold1") as info:
        cv.run(**QUIET)
    cause = info.value.__cause__
    while cause is not None and not isinstance(cause, RuntimeError):
        cause = cause.__cause__
    assert isinstance(cause, RuntimeError)
    assert "boom in CV_fold1" in str(cause)


def test_a_phase_template_and_executor_errors() -> None:
    exp, fs, _, train = _setup()
    exp.execution_plan.clear()
    with pytest.raises(ValueError, match="pass phase="):
        CrossValidation(bindings=CVBinding(fs, ["train", "val"]), n_folds=2).run(**QUIET)
    results = CrossValidation(bindings=CVBinding(fs, ["train", "val"]), n_folds=2, phase=train, label="k").run(**QUIET)
    assert results.fold_labels == ["k_fold0", "k_fold1"]
    assert results.get_fold(0).labels == ["train"]
    with pytest.raises(KeyError, match="No executor 'nope'"):
        CrossValidation(bindings=CVBinding(fs, ["train", "val"]), n_folds=2, phase=train).run(executor="nope", **QUIET)
    with ExperimentContext().activate(), pytest.raises(TypeError, match="needs an Experiment"):
        CrossValidation(bindings=CVBinding(fs, ["train", "val"]), n_folds=2).run(**QUIET)
