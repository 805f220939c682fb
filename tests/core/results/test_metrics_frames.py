"""Metrics as pandas DataFrames: a MetricStore, a phase's results, a group's, an experiment run's."""

from __future__ import annotations

import pandas as pd
import pytest

import modularml as mml
from modularml.phases import EvalPhase, PhaseGroup, TrainPhase
from modularml.results import MetricStore

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


def test_a_metric_store_as_a_long_frame() -> None:
    store = MetricStore()
    store.log("loss", 0.5, 0, 0)
    store.log("loss", 0.25, 0, 1)
    store.log("loss", 0.375, 0)
    store.log("acc", 0.9, 1)
    frame = store.to_pandas()
    assert list(frame.columns) == ["name", "epoch", "batch", "value"]
    assert frame["name"].tolist() == ["acc", "loss", "loss", "loss"]
    assert frame["epoch"].tolist() == [1, 0, 0, 0]
    assert frame["batch"].isna().tolist() == [True, False, False, True]  # epoch-level values have no batch
    assert frame["batch"].dropna().tolist() == [0, 1]
    assert frame["value"].tolist() == [0.9, 0.5, 0.25, 0.375]
    assert [str(t) for t in frame.dtypes] == ["object", "int64", "Int64", "float64"]
    assert list(store.to_pandas(phase="train").columns) == ["phase", "name", "epoch", "batch", "value"]
    assert MetricStore().to_pandas().empty


def test_results_of_phases_groups_and_runs_as_frames(linear_setup) -> None:
    s = linear_setup()
    experiment = mml.Experiment.from_active_context("exp")
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=2)
    inner = PhaseGroup("inner", [EvalPhase.from_split("val", split="val", losses=[s.loss])])
    experiment.execution_plan.add_phase(train).add_group(inner)
    results = experiment.run(**QUIET)
    train_frame = results.get_train_result("train").metrics_to_pandas()
    assert set(train_frame["phase"]) == {"train"}
    assert len(train_frame) == len(results.get_train_result("train").metrics())
    frame = results.metrics_to_pandas()
    assert list(frame.columns) == ["phase", "name", "epoch", "batch", "value"]
    assert list(dict.fromkeys(frame["phase"])) == ["train", "inner/val"]  # execution order, nested path
    val = frame[frame["phase"] == "inner/val"]
    epoch_level = val[val["batch"].isna()]
    assert epoch_level["value"].tolist() == [results.get_eval_result("val").metrics().get("eval_loss", 0)]
    pd.testing.assert_frame_equal(experiment.last_run.metrics_to_pandas(), frame)


def test_without_pandas_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match=r'pip install "modularml\[pandas\]"'):
        MetricStore().to_pandas()
