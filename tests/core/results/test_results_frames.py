"""Results as DataFrames: stacked_tensors(fmt="pandas") and the fold column of the long metric tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import modularml as mml
from modularml.batches import ExecutionContext
from modularml.context import active_fold, fold_scope
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.phases import EvalPhase, PhaseGroup, TrainPhase

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


def _trained(s, n_epochs: int = 2):
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=n_epochs).execute(**QUIET)
    return EvalPhase.from_split("val", split="val", losses=[s.loss], batch_size=5).execute()


def test_predictions_next_to_targets_and_tags(linear_setup) -> None:
    s = linear_setup()
    results = _trained(s)
    frame = results.stacked_tensors("head", "outputs", fmt="pandas")
    assert list(frame.columns) == ["epoch", "batch", "sample_uuids", "outputs.y", "targets.y", "tags.g"]
    np.testing.assert_array_equal(frame["outputs.y"], results.stacked_tensors("head", "outputs", fmt="np")[:, 0])
    np.testing.assert_array_equal(frame["targets.y"], results.stacked_tensors("head", "targets", fmt="np"))
    np.testing.assert_array_equal(frame["sample_uuids"], results.stacked_tensors("head", "sample_uuids"))
    n_val = len(s.fs.get_split("val"))
    assert frame["batch"].tolist() == [i // 5 for i in range(n_val)]  # the step each row came from
    assert set(frame["epoch"]) == {0}
    # tags come from the FeatureSet by sample UUID: each row's own tag
    by_uuid = dict(zip(s.fs.get_sample_uuids(), s.fs.get_tags(fmt="dict_numpy")["g"], strict=True))
    assert frame["tags.g"].tolist() == [by_uuid[u] for u in frame["sample_uuids"]]
    assert (
        frame["targets.y"]
        == frame["sample_uuids"].map(dict(zip(s.fs.get_sample_uuids(), s.fs.get_targets(fmt="np"), strict=True)))
    ).all()


def test_unscaled_frames_and_other_domains(linear_setup) -> None:
    s = linear_setup(scale_targets="Negate")
    results = _trained(s)
    scaled = results.stacked_tensors("head", "outputs", fmt="pandas")
    unscaled = results.stacked_tensors("head", "outputs", fmt="pandas", unscale=True)
    np.testing.assert_allclose(unscaled["outputs.y"], -scaled["outputs.y"])
    np.testing.assert_allclose(unscaled["targets.y"], -scaled["targets.y"])
    raw = dict(zip(s.fs.get_sample_uuids(), s.fs.get_targets(fmt="np", rep="raw"), strict=True))
    np.testing.assert_allclose(unscaled["targets.y"], unscaled["sample_uuids"].map(raw), rtol=1e-6)
    targets = results.stacked_tensors("head", "targets", fmt="pandas", unscale=True)
    assert list(targets.columns) == ["epoch", "batch", "sample_uuids", "targets.y", "tags.g"]
    tags = results.stacked_tensors("head", "tags", fmt="pd", batch=1)
    assert list(tags.columns) == ["epoch", "batch", "sample_uuids", "tags.g"]
    assert len(tags) == 5
    assert set(tags["batch"]) == {1}
    with pytest.raises(InvalidArgumentError, match="unscale=True applies"):
        results.stacked_tensors("head", "tags", fmt="pandas", unscale=True)


def test_a_fold_scope_marks_contexts_results_and_tables(linear_setup) -> None:
    assert active_fold() is None
    with pytest.raises(InvalidTypeError, match="fold label"), fold_scope(""):
        pass
    s = linear_setup()
    experiment = mml.Experiment.from_active_context("exp")
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=1)
    experiment.execution_plan.add_phase(train).add_group(
        PhaseGroup("inner", [EvalPhase.from_split("val", split="val", losses=[s.loss])])
    )
    with fold_scope("fold_1"):
        assert ExecutionContext("p").fold == "fold_1"
        results = experiment.run(**QUIET)
    assert active_fold() is None
    assert ExecutionContext("p").fold is None
    train_results = results.get_train_result()
    assert train_results.fold == "fold_1"
    assert {c.fold for c in train_results.execution_contexts()} == {"fold_1"}
    frame = results.metrics_to_pandas()
    assert list(frame.columns) == ["phase", "fold", "name", "epoch", "batch", "value"]
    assert set(frame["fold"]) == {"fold_1"}
    assert list(train_results.metrics_to_pandas().columns)[:2] == ["phase", "fold"]
    predictions = results.get_eval_result().stacked_tensors("head", "outputs", fmt="pandas")
    assert predictions.columns[0] == "fold"
    assert set(predictions["fold"]) == {"fold_1"}
    outside = experiment.run(**QUIET).metrics_to_pandas()
    assert "fold" not in outside.columns  # no fold column outside cross-validation
    assert isinstance(outside, pd.DataFrame)
