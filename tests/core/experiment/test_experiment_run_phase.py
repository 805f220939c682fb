from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.context import ExperimentContext
from modularml.experiment import Experiment, ExperimentRun


def _flat_state(graph) -> dict[str, np.ndarray]:
    out = {}
    for nid, state in graph.get_state()["nodes"].items():
        for key, value in state["model"].get("weights", state["model"]).items():
            if isinstance(value, np.ndarray):
                out[f"{nid}.{key}"] = value.copy()
    return out


def _train_phase(s, n_epochs: int = 3) -> mml.TrainPhase:
    sampler = mml.SimpleSampler(batch_size=8, shuffle=True, seed=0)
    return mml.TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=n_epochs)


_QUIET = {"show_sampler_progress": False, "show_training_progress": False}


def test_run_phase_records_history(linear_setup) -> None:
    s = linear_setup()
    exp = Experiment.from_active_context("exp")
    assert exp.ctx is ExperimentContext.get_active()
    assert exp.model_graph is s.graph
    assert exp.ctx.get_experiment() is exp
    results = exp.run_phase(_train_phase(s), **_QUIET)
    assert isinstance(results, mml.TrainResults)
    evaluation = exp.run_phase(mml.EvalPhase.from_split("val", split="val", losses=[s.loss]))
    assert [run.label for run in exp.history] == ["train", "val"]
    assert isinstance(exp.last_run, ExperimentRun)
    assert exp.last_run.results is evaluation
    assert exp.history[0].duration >= 0


def test_preview_phase_reverts_weights_and_leaves_history_alone(linear_setup) -> None:
    s = linear_setup()
    exp = Experiment.from_active_context("exp")
    s.graph.build()
    before = _flat_state(s.graph)
    assert before
    results = exp.preview_phase(_train_phase(s), **_QUIET)
    assert results.n_epochs == 3
    after = _flat_state(s.graph)
    assert before.keys() == after.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)
    assert exp.history == []
    assert exp.last_run is None
    exp.run_phase(_train_phase(s, 1), **_QUIET)
    changed = _flat_state(s.graph)
    assert any(not np.array_equal(changed[k], before[k]) for k in before)


def test_a_new_experiment_gets_a_new_active_context() -> None:
    outer = ExperimentContext.get_active()
    exp = Experiment("fresh", registration_policy="overwrite")
    assert exp.ctx is not outer
    assert ExperimentContext.get_active() is exp.ctx
    assert exp.ctx.registration_policy.value == "overwrite"
    assert exp.model_graph is None
    with pytest.raises(TypeError, match="TrainPhase, EvalPhase or FitPhase"):
        exp.run_phase("train")
    with pytest.raises(TypeError, match="checkpointing is a modularml Checkpointing"):
        Experiment("x", checkpointing=object())
    with pytest.raises(ValueError, match="Experiment checkpoints are files: pass Checkpointing\\(mode='disk'"):
        Experiment("x", checkpointing=mml.Checkpointing(mode="memory"))
