"""Cross-validation on Ray: the folds run in Ray workers and give what the local executor gives (to 1e-6)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import ray

import modularml as mml
from modularml.callbacks import Evaluation
from modularml.context import ExperimentContext
from modularml.errors import ExecutionError
from modularml.experiment import CrossValidation, CVBinding
from modularml_ray import RayExecutor

torch = pytest.importorskip("torch")

QUIET = {"show_fold_progress": False, "show_training_progress": False, "show_sampler_progress": False}


class CenterScaler:
    """A scikit-learn-like standard scaler of this module: the folds get it as packaged code."""

    def get_params(self, deep: bool = True) -> dict:
        return {}

    def fit(self, X: np.ndarray, y=None) -> CenterScaler:
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_ + self.mean_


class FailIn(mml.Callback):
    def __init__(self, fold: str = "", label=None, execution_order=0) -> None:
        super().__init__(label, execution_order=execution_order)
        self.fold = fold

    def on_phase_start(self, *, experiment, phase, results=None):
        from modularml.context.fold import active_fold

        if active_fold() == self.fold:
            raise ValueError(f"no good in {self.fold}")

    def get_config(self):
        return {**super().get_config(), "fold": self.fold}


@pytest.fixture(scope="module")
def executor(runtime_env: dict, local_ray: dict) -> Iterator[RayExecutor]:
    assert not ray.is_initialized(), "another test left Ray initialised in this process"
    started = RayExecutor(address="local", runtime_env=runtime_env, init_kwargs=local_ray).start()
    yield started
    started.close()


def _cv(fail_in: str = "") -> tuple[CrossValidation, mml.ModelNode]:
    from modularml_torch import SequentialMLP

    mml.seed_everything(0)
    rng = np.random.default_rng(0)
    x = (2 + rng.standard_normal((96, 4))).astype("float32")
    y = (x[:, :1] * 1.5 - x[:, 1:2]).astype("float32")
    groups = np.repeat(np.arange(12), 8)
    fs = mml.FeatureSet.from_dict(
        "data", {"x": x, "y": y, "g": groups}, feature_keys=["x"], target_keys=["y"], tag_keys=["g"]
    )
    fs.split_random({"train": 0.75, "val": 0.25}, group_by="g", seed=1)
    fs.fit_transform(CenterScaler(), domain="features", fit_to_split="train")
    head = mml.ModelNode("head", SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=16, dropout=0.2), fs)
    mml.ModelGraph([head], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch"))
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
    exp = mml.Experiment.from_active_context("ray-cv")
    train = mml.TrainPhase.from_split(
        "train",
        split="train",
        sampler=mml.SimpleSampler(batch_size=8, shuffle=True, seed=0, show_progress=False),
        losses=[loss],
        n_epochs=3,
        callbacks=[Evaluation(mml.EvalPhase.from_split("val", split="val", losses=[loss])), FailIn(fail_in)],
    )
    exp.execution_plan.add_phase(train)
    return CrossValidation(bindings=CVBinding(fs, ["train", "val"], group_by="g"), n_folds=4, seed=5), head


def test_folds_on_ray_equal_the_local_folds(executor: RayExecutor) -> None:
    with ExperimentContext().activate():
        cv, head = _cv()
        local = cv.run(**QUIET)
        remote = cv.run(executor=executor, **QUIET)
        assert remote.fold_labels == local.fold_labels == [f"CV_fold{i}" for i in range(4)]
        for i in range(4):
            a = local.get_fold(i).get_train_result("train")
            b = remote.get_fold(i).get_train_result("train")
            np.testing.assert_allclose(
                list(b.metrics().epoch_values("val_loss").values()),
                list(a.metrics().epoch_values("val_loss").values()),
                rtol=0,
                atol=1e-6,
            )
            np.testing.assert_allclose(
                b.stacked_tensors(head, "outputs"), a.stacked_tensors(head, "outputs"), rtol=0, atol=1e-6
            )
            for name in ("train", "val"):  # the same fold samples
                np.testing.assert_array_equal(remote.fold_rows[i]["data"][name], local.fold_rows[i]["data"][name])


def test_a_failing_fold_on_ray_names_the_fold(executor: RayExecutor) -> None:
    with ExperimentContext().activate():
        cv, _ = _cv(fail_in="CV_fold2")
        with pytest.raises(ExecutionError, match="CV_fold2") as info:
            cv.run(executor=executor, **QUIET)
        assert isinstance(info.value.__cause__, ValueError)
        assert "no good in CV_fold2" in str(info.value.__cause__)
