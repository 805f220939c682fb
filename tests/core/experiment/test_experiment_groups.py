from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import ExperimentCallback
from modularml.context import ExperimentContext
from modularml.errors import SerializationError
from modularml.experiment import Experiment, ExperimentRun
from modularml.phases import EvalPhase, PhaseGroup, TrainPhase
from modularml.results import EvalResults, FitResults, PhaseGroupResults, TrainResults

_QUIET = {"show_sampler_progress": False, "show_training_progress": False}


class Recorder(ExperimentCallback):
    """Records every hook call as a tuple into a shared list (module level, so it can be named in a config)."""

    def __init__(self, label: str | None = None, *, execution_order: int = 0, calls: list | None = None) -> None:
        super().__init__(label, execution_order=execution_order)
        self.calls: list[tuple[Any, ...]] = [] if calls is None else calls
        self.seen_experiments: set[int] = set()

    def on_group_start(self, *, experiment, group):
        self.seen_experiments.add(id(experiment))
        self.calls.append((self.label, "group_start", group.label))

    def on_group_end(self, *, experiment, group, results):
        self.calls.append((self.label, "group_end", group.label, type(results).__name__, tuple(results.labels)))

    def on_phase_start(self, *, experiment, phase):
        self.seen_experiments.add(id(experiment))
        self.calls.append((self.label, "phase_start", phase.label))

    def on_phase_end(self, *, experiment, phase, results):
        self.calls.append((self.label, "phase_end", phase.label, type(results).__name__, results.label))

    def on_exception(self, *, experiment, exception, phase=None, group=None):
        self.calls.append(
            (
                self.label,
                "exception",
                type(exception).__name__,
                str(exception),
                None if phase is None else phase.label,
                None if group is None else group.label,
            )
        )

    def get_config(self) -> dict[str, Any]:
        return super().get_config()


def _flat_state(graph) -> dict[str, np.ndarray]:
    """Every array in the graph state (weights, optimizer buffers) plus freeze flags, keyed by path."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{prefix}[{i}]", item)
        elif isinstance(value, np.ndarray):
            out[prefix] = value.copy()
        elif isinstance(value, (bool, int, float)) and not prefix.endswith("is_built"):
            out[prefix] = value

    walk("graph", copy.deepcopy(graph.get_state()))
    return out


def _assert_same_state(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(after[key], value, err_msg=key)
        else:
            assert after[key] == value, key


def _train(label: str = "train", n_epochs: int = 2, loss=None, s=None) -> TrainPhase:
    sampler = mml.SimpleSampler(batch_size=8, shuffle=True, seed=0)
    return TrainPhase.from_split(label, split="train", sampler=sampler, losses=[loss or s.loss], n_epochs=n_epochs)


def _eval(s, label: str = "val", split: str = "val") -> EvalPhase:
    return EvalPhase.from_split(label, split=split, losses=[s.loss])


def _plan(exp: Experiment, s) -> None:
    exp.execution_plan.add_phase(_train(s=s)).add_group(
        PhaseGroup("checks", [_eval(s, "val"), _eval(s, "on_train", "train")])
    )


# ---------------------------------------------------------------------- run / run_group
def test_run_executes_the_plan_in_order_and_records_history(linear_setup) -> None:
    s = linear_setup()
    exp = Experiment.from_active_context("exp")
    assert isinstance(exp.execution_plan, PhaseGroup)
    assert exp.execution_plan.label == "exp"
    assert exp.execution_plan.all == []
    _plan(exp, s)
    s.graph.build()
    before = _flat_state(s.graph)
    results = exp.run(**_QUIET)
    assert isinstance(results, PhaseGroupResults)
    assert results.label == "exp"
    assert results.labels == ["train", "checks"]
    assert isinstance(results.get_train_result("train"), TrainResults)
    checks = results.get_group_result("checks")
    assert checks.labels == ["val", "on_train"]
    assert all(type(r) is EvalResults for r in checks.phase_results.values())
    assert list(results.flatten()) == ["train", "val", "on_train"]
    assert results.get_train_result().n_epochs == 2
    # evaluations ran after training: their loss is that of the trained weights
    trained_val = EvalPhase.from_split("again", split="val", losses=[s.loss]).execute()
    assert results.get_eval_result("val").aggregated_losses(s.head)[s.loss.label] == pytest.approx(
        trained_val.aggregated_losses(s.head)[s.loss.label]
    )
    after = _flat_state(s.graph)
    assert any(not np.array_equal(after[k], before[k]) for k in before if isinstance(before[k], np.ndarray))
    assert len(exp.history) == 1
    run = exp.last_run
    assert isinstance(run, ExperimentRun)
    assert (run.label, run.kind, run.results) == ("exp", "plan", results)
    assert run.duration >= 0
    exp.run(**_QUIET)
    assert [r.kind for r in exp.history] == ["plan", "plan"]
    assert exp.history[1].results is not results


def test_run_group_records_history_and_accepts_groups_outside_the_plan(linear_setup) -> None:
    s = linear_setup()
    exp = Experiment.from_active_context("exp")
    group = PhaseGroup("finetune", [_train("ft", n_epochs=1, s=s), PhaseGroup("inner", [_eval(s)])])
    results = exp.run_group(group, **_QUIET)
    assert results.label == "finetune"
    assert results.labels == ["ft", "inner"]
    assert exp.execution_plan.all == []
    assert [(r.label, r.kind) for r in exp.history] == [("finetune", "group")]
    assert exp.last_run.results is results
    phase_results = exp.run_phase(_eval(s, "single"))
    assert [(r.label, r.kind) for r in exp.history] == [("finetune", "group"), ("single", "phase")]
    assert exp.last_run.results is phase_results
    with pytest.raises(TypeError, match=r"run_group\(\) takes a PhaseGroup; got EvalPhase. Use run_phase"):
        exp.run_group(_eval(s))
    with pytest.raises(TypeError, match="got str"):
        exp.run_group("finetune")
    with pytest.raises(TypeError, match="Use run_group"):
        exp.run_phase(group)
    assert len(exp.history) == 2


def test_run_with_an_empty_plan_fails_clearly() -> None:
    exp = Experiment.from_active_context("exp")
    with pytest.raises(ValueError, match="execution plan of experiment 'exp' is empty"):
        exp.run()
    assert exp.history == []


def test_display_flags_go_only_to_phase_kinds_that_accept_them(linear_setup, capfd) -> None:
    s = linear_setup()
    exp = Experiment.from_active_context("exp")
    group = PhaseGroup("g", [_train(n_epochs=1, s=s), _eval(s, "val_bar")])
    # show_training_progress does not apply to an EvalPhase, show_eval_progress not to a TrainPhase
    exp.run_group(group, show_eval_progress=True, persist_progress=True, **_QUIET)
    err = capfd.readouterr().err
    assert "val_bar" in err  # the eval bar was shown
    assert "train" not in err.replace("val_bar", "")  # the training bars were not
    exp.run_group(group, show_eval_progress=False, **_QUIET)
    assert capfd.readouterr().err == ""
    with pytest.raises(ValueError, match=r"Unknown display flag\(s\) \['show_progres'\]"):
        exp.run_group(group, show_progres=False)
    with pytest.raises(ValueError, match="show_progres"):
        exp.preview_group(group, show_progres=False)
    assert len(exp.history) == 2


def test_a_fit_phase_in_a_group_ignores_display_flags(regression_fs, mean_fit_model_cls) -> None:
    fs = regression_fs()
    fs.split_random({"train": 0.5, "val": 0.5}, seed=0)
    node = mml.ModelNode("mean", mean_fit_model_cls(), fs)
    mml.ModelGraph([node])
    exp = Experiment.from_active_context("exp")
    exp.execution_plan.add_phase(mml.FitPhase.from_split("fit", split="train"))
    results = exp.run(show_training_progress=False, show_eval_progress=False)
    assert isinstance(results.get_fit_result("fit"), FitResults)
    assert node.model.fit_calls == 1
    assert node.model.value == pytest.approx(float(np.mean(fs["train"].get_targets(fmt="np"))))


# ---------------------------------------------------------------------- preview_group
def test_preview_group_leaves_weights_optimizer_history_and_context_untouched(regression_fs) -> None:
    from modularml_numpy.models import LinearModel

    fs = regression_fs()
    fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
    adam = mml.Optimizer("adam", opt_kwargs={"lr": 0.05}, backend="numpy")
    head = mml.ModelNode("head", LinearModel(output_shape=(1,)), fs, adam)
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])
    s = SimpleNamespace(head=head, loss=loss)
    ctx = ExperimentContext.get_active()
    exp = Experiment.from_active_context("exp")
    graph = exp.model_graph
    # one recorded run first, so the optimizers have state (Adam moments, step counts) to protect
    exp.run_group(PhaseGroup("warmup", [_train(n_epochs=1, loss=loss)]), **_QUIET)
    recorder = Recorder()
    exp.add_callback(recorder)
    before = _flat_state(graph)
    assert any("optimizer" in k and isinstance(v, np.ndarray) for k, v in before.items())
    ctx_before = ctx.get_state()
    history_before = exp.history
    group = PhaseGroup("preview", [_train(n_epochs=3, loss=s.loss), PhaseGroup("inner", [_eval(s)])])
    results = exp.preview_group(group, **_QUIET)
    assert results.labels == ["train", "inner"]
    assert results.get_train_result().n_epochs == 3
    _assert_same_state(before, _flat_state(graph))
    assert exp.history == history_before
    assert recorder.calls == []  # previews run no experiment callbacks
    ctx_after = ctx.get_state()
    assert ctx_after["nodes"] == ctx_before["nodes"]
    assert ctx_after["labels"] == ctx_before["labels"]
    # the same group run for real does change the state
    exp.run_group(group, **_QUIET)
    after = _flat_state(graph)
    assert any(not np.array_equal(after[k], v) for k, v in before.items() if isinstance(v, np.ndarray))


def test_preview_group_restores_freeze_flags_and_state_after_a_failure(regression_fs, mean_fit_model_cls) -> None:
    fs = regression_fs()
    fs.split_random({"train": 0.5, "val": 0.5}, seed=0)
    node = mml.ModelNode("mean", mean_fit_model_cls(), fs)
    mml.ModelGraph([node])
    exp = Experiment.from_active_context("exp")
    group = PhaseGroup("g").add_phase(mml.FitPhase.from_split("fit", split="train"))
    results = exp.preview_group(group)
    assert results.get_fit_result().label == "fit"
    assert node.is_frozen is False  # freeze_after_fit was undone
    assert node.model.value in (None, 0.0)
    assert exp.history == []

    failing = PhaseGroup(
        "bad", [mml.FitPhase.from_split("fit", split="train"), mml.FitPhase.from_split("f2", split="train")]
    )
    failing.get_phase("f2").execute = _boom
    with pytest.raises(RuntimeError, match="boom"):
        exp.preview_group(failing)
    assert node.is_frozen is False
    assert node.model.value in (None, 0.0)
    assert exp.history == []
    with pytest.raises(TypeError, match=r"preview_group\(\) takes a PhaseGroup; got FitPhase. Use preview_phase"):
        exp.preview_group(failing.get_phase("fit"))


def _boom(**kwargs: Any) -> None:
    raise RuntimeError("boom")


# ---------------------------------------------------------------------- callbacks
def test_callbacks_fire_at_every_boundary_in_order(linear_setup) -> None:
    s = linear_setup()
    calls: list[tuple[Any, ...]] = []
    late = Recorder("late", execution_order=5, calls=calls)
    early = Recorder("early", execution_order=-1, calls=calls)
    exp = Experiment.from_active_context("exp", callbacks=[late])
    exp.add_callback(early)
    assert exp.exp_callbacks == [early, late]
    _plan(exp, s)
    exp.run(**_QUIET)
    expected = [
        ("group_start", "exp"),
        ("phase_start", "train"),
        ("phase_end", "train", "TrainResults", "train"),
        ("group_start", "checks"),
        ("phase_start", "val"),
        ("phase_end", "val", "EvalResults", "val"),
        ("phase_start", "on_train"),
        ("phase_end", "on_train", "EvalResults", "on_train"),
        ("group_end", "checks", "PhaseGroupResults", ("val", "on_train")),
        ("group_end", "exp", "PhaseGroupResults", ("train", "checks")),
    ]
    assert calls == [(who, *event) for event in expected for who in ("early", "late")]
    assert early.seen_experiments == {id(exp)}
    calls.clear()
    exp.run_phase(_eval(s, "single"))
    assert calls == [
        ("early", "phase_start", "single"),
        ("late", "phase_start", "single"),
        ("early", "phase_end", "single", "EvalResults", "single"),
        ("late", "phase_end", "single", "EvalResults", "single"),
    ]


def test_exception_path_notifies_once_and_reraises(linear_setup) -> None:
    s = linear_setup()
    recorder = Recorder()
    exp = Experiment.from_active_context("exp", callbacks=[recorder])
    bad = _eval(s, "bad")
    bad.execute = _boom
    exp.execution_plan.add_phase(_eval(s, "ok")).add_group(PhaseGroup("inner", [bad, _eval(s, "never")]))
    with pytest.raises(RuntimeError, match="boom"):
        exp.run()
    assert recorder.calls == [
        ("Recorder", "group_start", "exp"),
        ("Recorder", "phase_start", "ok"),
        ("Recorder", "phase_end", "ok", "EvalResults", "ok"),
        ("Recorder", "group_start", "inner"),
        ("Recorder", "phase_start", "bad"),
        ("Recorder", "exception", "RuntimeError", "boom", "bad", "inner"),
    ]
    assert exp.history == []
    recorder.calls.clear()
    with pytest.raises(RuntimeError, match="boom"):
        exp.run_phase(bad)
    assert recorder.calls[-1] == ("Recorder", "exception", "RuntimeError", "boom", "bad", None)
    assert exp.history == []


class _FailingHook(ExperimentCallback):
    def on_group_end(self, *, experiment, group, results):
        raise ValueError(f"cannot end {group.label}")

    def on_exception(self, *, experiment, exception, phase=None, group=None):
        raise RuntimeError("handler failed too")


def test_a_failing_hook_is_reported_and_a_failing_handler_does_not_hide_the_error(linear_setup, caplog) -> None:
    s = linear_setup()
    recorder = Recorder(execution_order=1)
    exp = Experiment.from_active_context("exp", callbacks=[_FailingHook(), recorder])
    exp.execution_plan.add_group(PhaseGroup("inner", [_eval(s)]))
    with pytest.raises(ValueError, match="cannot end inner"):
        exp.run()
    assert recorder.calls[-1] == ("Recorder", "exception", "ValueError", "cannot end inner", None, "inner")
    assert [c[1] for c in recorder.calls].count("exception") == 1
    assert "on_exception of" in caplog.text
    assert exp.history == []


def test_add_callback_errors() -> None:
    exp = Experiment.from_active_context("exp")
    exp.add_callback(Recorder("a"))
    with pytest.raises(ValueError, match="already has a Recorder labelled 'a'"):
        exp.add_callback(Recorder("a"))
    exp.add_callback(Recorder("b"))
    assert [c.label for c in exp.exp_callbacks] == ["a", "b"]
    with pytest.raises(TypeError, match=r"takes an ExperimentCallback; got Callback. Phase callbacks"):
        exp.add_callback(mml.Callback())
    with pytest.raises(TypeError, match="list of ExperimentCallbacks"):
        Experiment.from_active_context("x", callbacks=Recorder())
    with pytest.raises(TypeError, match="execution_order is an int"):
        Recorder(execution_order="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty string"):
        Recorder("")
    assert repr(Recorder("r", execution_order=2)) == "Recorder(label='r', execution_order=2)"


# ---------------------------------------------------------------------- config
def test_config_round_trip(linear_setup) -> None:
    s = linear_setup()
    exp = Experiment.from_active_context("exp", callbacks=[Recorder("rec", execution_order=3), ExperimentCallback()])
    _plan(exp, s)
    config = exp.get_config()
    assert config["label"] == "exp"
    assert config["registration_policy"] == "error"
    assert config["execution_plan"] == exp.execution_plan.get_config()
    assert [c["label"] for c in config["callbacks"]] == ["rec", "ExperimentCallback"]
    with pytest.raises(ValueError, match="Refusing to import"):
        Experiment.from_config(config)
    rebuilt = Experiment.from_config(config, allow_packaged_code=True)
    assert rebuilt is not exp
    assert rebuilt.ctx is exp.ctx
    assert rebuilt.get_config() == config
    assert [p.label for p in rebuilt.execution_plan.flatten()] == ["train", "val", "on_train"]
    assert [(type(c).__name__, c.label, c.execution_order) for c in rebuilt.exp_callbacks] == [
        ("ExperimentCallback", "ExperimentCallback", 0),
        ("Recorder", "rec", 3),
    ]
    assert rebuilt.history == []
    results = rebuilt.run(**_QUIET)
    assert list(results.flatten()) == ["train", "val", "on_train"]


def test_config_errors() -> None:
    with pytest.raises(TypeError, match="is a dict"):
        Experiment.from_config("exp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="misses \\['execution_plan'\\]"):
        Experiment.from_config({"label": "exp"})

    class Local(ExperimentCallback):
        pass

    exp = Experiment.from_active_context("exp", callbacks=[Local()])
    with pytest.raises(ValueError, match="define the callback class at module level"):
        exp.get_config()
    with pytest.raises(SerializationError, match=r"not a subclass of modularml\.callbacks\.experiment_callback"):
        ExperimentCallback.from_config({"class": "modularml.phases.phase_group:PhaseGroup", "label": "x"})
    with pytest.raises(SerializationError, match="not defined there"):  # a re-export is not where it is defined
        ExperimentCallback.from_config({"class": "modularml.phases:PhaseGroup", "label": "x"})
    with pytest.raises(ValueError, match="Cannot rebuild ExperimentCallback from config keys"):
        ExperimentCallback.from_config(
            {"class": "modularml.callbacks.experiment_callback:ExperimentCallback", "bogus": 1}
        )
    with pytest.raises(TypeError, match="'class' entry"):
        ExperimentCallback.from_config({"label": "x"})
    with pytest.raises(TypeError, match="checkpointing is a modularml Checkpointing"):
        Experiment("x", checkpointing=object())
    with pytest.raises(ValueError, match="Experiment checkpoints are files: pass Checkpointing\\(mode='disk'"):
        Experiment("x", checkpointing=mml.Checkpointing(mode="memory"))
