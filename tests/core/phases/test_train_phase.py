from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import Callback, CallbackResult
from modularml.phases import EvalPhase, InputBinding, ResultRecording, TrainPhase
from modularml_numpy.models import LinearModel


def _sampler(batch_size: int = 8, **kwargs) -> mml.SimpleSampler:
    return mml.SimpleSampler(batch_size=batch_size, shuffle=True, seed=0, show_progress=False, **kwargs)


def _quiet() -> dict:
    return {"show_sampler_progress": False, "show_training_progress": False}


def test_training_lowers_the_eval_loss(linear_setup) -> None:
    s = linear_setup()
    evaluation = EvalPhase.from_split("val", split="val", losses=[s.loss])
    before = evaluation.execute().aggregated_losses(s.head)[s.loss.label]
    phase = TrainPhase.from_split("train", split="train", sampler=_sampler(), losses=[s.loss], n_epochs=15)
    results = phase.execute(**_quiet())
    after = evaluation.execute().aggregated_losses(s.head)[s.loss.label]
    assert after < 0.01 * before
    epoch_losses = results.epoch_losses()
    assert list(epoch_losses) == list(range(15))
    assert epoch_losses[14] < epoch_losses[0]
    assert results.n_epochs == 15
    assert results.n_batches == 6  # 48 training rows in batches of 8
    assert len(results.execution_contexts()) == 15 * 6


def test_iter_execution_yields_contexts_per_epoch_and_batch(linear_setup) -> None:
    s = linear_setup()
    phase = TrainPhase.from_split("train", split="train", sampler=_sampler(16), losses=[s.loss], n_epochs=2)
    contexts = list(phase.iter_execution(**_quiet()))
    assert [(c.phase_label, c.epoch_idx, c.batch_idx) for c in contexts] == [
        ("train", e, b) for e in range(2) for b in range(3)
    ]
    key = (s.head.node_id, s.head.upstream_refs[0])
    first = np.concatenate([c.inputs[key].role_indices["default"] for c in contexts[:3]])
    second = np.concatenate([c.inputs[key].role_indices["default"] for c in contexts[3:]])
    np.testing.assert_array_equal(np.sort(first), np.sort(s.fs["train"].indices))
    assert not np.array_equal(first, second)  # shuffle: a fresh order per epoch


def test_two_samplers_alternate_with_masked_inputs(linear_setup) -> None:
    s = linear_setup(extra_heads=1)
    other = s.extra[0]
    bindings = [
        InputBinding.for_training(node=s.head, sampler=_sampler(16), split="train"),  # 3 batches
        InputBinding.for_training(node=other, sampler=_sampler(24), split="train"),  # 2 batches
    ]
    phase = TrainPhase(
        "alt", input_sources=bindings, losses=[s.loss, *s.extra_losses], batch_schedule="alternate_cycle"
    )
    results = phase.new_results()
    active, sizes = [], []
    for ctx in phase.iter_execution(results=results, **_quiet()):
        masked = [ctx.inputs[b.input_key].is_fully_masked for b in bindings]
        assert masked.count(False) == 1
        active.append(masked.index(False))
        sizes.append([ctx.inputs[b.input_key].n_samples for b in bindings])
        s.graph.train_step(ctx, phase.losses)
    assert active == [0, 1, 0, 1, 0, 1]  # b1, c1, b2, c2, b3, c1
    assert sizes[0] == [16, 24]
    assert sizes[1] == [16, 24]
    assert len(results.execution_contexts()) == 6
    zipped = TrainPhase("zip", input_sources=bindings, losses=[s.loss, *s.extra_losses], batch_schedule="zip_cycle")
    contexts = list(zipped.iter_execution(**_quiet()))
    assert len(contexts) == 3
    assert not any(v.is_fully_masked for c in contexts for v in c.inputs.values())


def test_sampler_runs_are_shared_between_identical_bindings(linear_setup, monkeypatch) -> None:
    s = linear_setup(extra_heads=1)
    calls = []
    original = mml.SimpleSampler.materialize_batches

    def spy(self, show_progress=None):
        calls.append(id(self))
        return original(self, show_progress)

    monkeypatch.setattr(mml.SimpleSampler, "materialize_batches", spy)
    bindings = [
        InputBinding.for_training(node=s.head, sampler=_sampler(16), split="train"),
        InputBinding.for_training(node=s.extra[0], sampler=_sampler(16), split="train"),
    ]
    phase = TrainPhase("shared", input_sources=bindings, losses=[s.loss])
    contexts = list(phase.iter_execution(**_quiet()))
    assert len(calls) == 1
    for ctx in contexts:
        first, second = (ctx.inputs[b.input_key] for b in bindings)
        np.testing.assert_array_equal(first.role_indices["default"], second.role_indices["default"])
    calls.clear()
    phase = TrainPhase(
        "split",
        input_sources=[
            bindings[0],
            InputBinding.for_training(node=s.extra[0], sampler=bindings[0].sampler, split="val"),
        ],
        losses=[s.loss],
    )
    list(phase.iter_execution(**_quiet()))
    assert len(calls) == 2
    assert calls[0] != calls[1]


def test_a_head_input_without_binding_is_refused(linear_setup) -> None:
    s = linear_setup(extra_heads=1)
    binding = InputBinding.for_training(node=s.head, sampler=_sampler(), split="train")
    phase = TrainPhase("train", input_sources=[binding], losses=[s.loss])
    with pytest.raises(ValueError, match="'head1' input 'data' has no InputBinding"):
        list(phase.iter_execution(**_quiet()))
    restricted = TrainPhase("train", input_sources=[binding], losses=[s.loss], active_nodes=["head"])
    assert len(list(restricted.iter_execution(**_quiet()))) == 6


@pytest.mark.parametrize("recording", ["all", "last", "none"])
def test_result_recording_is_honoured(linear_setup, recording) -> None:
    s = linear_setup()
    phase = TrainPhase.from_split(
        "train", split="train", sampler=_sampler(16), losses=[s.loss], n_epochs=3, result_recording=recording
    )
    assert phase.result_recording is ResultRecording.from_value(recording)
    results = phase.execute(**_quiet())
    epochs = sorted({c.epoch_idx for c in results.execution_contexts()})
    assert epochs == {"all": [0, 1, 2], "last": [2], "none": []}[recording]
    assert list(results.metrics().epoch_values("train_loss")) == [0, 1, 2]
    assert len(results.metrics().batch_values("train_loss")) == 9
    assert results.n_epochs == 3
    if recording == "none":
        with pytest.raises(ValueError, match="result_recording='none'"):
            results.stacked_tensors(s.head, "outputs")


class KeepsFirstEpoch(Callback):
    """A callback that needs epoch 0's contexts (as EarlyStopping needs its best epoch's)."""

    def retained_epochs(self) -> set[int]:
        return {0}


def test_callbacks_say_which_epochs_the_results_keep(linear_setup) -> None:
    s = linear_setup()
    phase = TrainPhase.from_split(
        "train", split="train", sampler=_sampler(16), losses=[s.loss], n_epochs=3, result_recording="last"
    )
    assert Callback().retained_epochs() == set()
    phase.add_callback(KeepsFirstEpoch())
    results = phase.execute(**_quiet())
    assert sorted({c.epoch_idx for c in results.execution_contexts()}) == [0]  # at the end: only what is asked


def test_missing_losses_and_samplers_are_refused(linear_setup) -> None:
    s = linear_setup()
    binding = InputBinding.for_training(node=s.head, sampler=_sampler(), split="train")
    with pytest.raises(ValueError, match="at least one AppliedLoss"):
        TrainPhase("train", input_sources=[binding], losses=[])
    with pytest.raises(ValueError, match="has no sampler"):
        TrainPhase("train", input_sources=[InputBinding.for_evaluation(node=s.head)], losses=[s.loss])
    with pytest.raises(ValueError, match="n_epochs"):
        TrainPhase("train", input_sources=[binding], losses=[s.loss], n_epochs=0)
    with pytest.raises(ValueError, match="twice"):
        TrainPhase("train", input_sources=[binding, binding], losses=[s.loss])


def test_from_split_refuses_an_unknown_split(linear_setup) -> None:
    linear_setup()
    with pytest.raises(KeyError, match=r"no split 'test'.*\['train', 'val'\]"):
        TrainPhase.from_split("train", split="test", sampler=_sampler(), losses=[])


def test_a_loss_on_a_node_outside_the_graph_is_refused(linear_setup) -> None:
    s = linear_setup()
    stray = mml.ModelNode("stray", LinearModel(output_shape=(1,)), s.fs)
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=stray, inputs=["outputs", "targets"])
    phase = TrainPhase.from_split("train", split="train", sampler=_sampler(), losses=[loss])
    with pytest.raises(KeyError, match="not in ModelGraph"):
        phase.execute(**_quiet())


class _Recorder(Callback):
    def __init__(self, stop_at: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.events: list[tuple] = []
        self.stop_at = stop_at

    def on_phase_start(self, *, experiment, phase, results=None):
        self.events.append(("phase_start",))

    def on_epoch_start(self, *, experiment, phase, exec_ctx, results=None):
        self.events.append(("epoch_start", exec_ctx.epoch_idx))

    def on_batch_start(self, *, experiment, phase, exec_ctx, results=None):
        self.events.append(("batch_start", exec_ctx.epoch_idx, exec_ctx.batch_idx))

    def on_batch_end(self, *, experiment, phase, exec_ctx, results=None):
        assert exec_ctx.losses  # the graph has run
        self.events.append(("batch_end", exec_ctx.epoch_idx, exec_ctx.batch_idx))

    def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
        epoch_idx = exec_ctx.epoch_idx
        assert exec_ctx.losses  # the epoch's last step
        self.events.append(("epoch_end", epoch_idx))
        if self.stop_at == epoch_idx:
            phase.request_stop()
        return CallbackResult("probe", self.label, epoch_idx, None, epoch_idx * 10)

    def on_phase_end(self, *, experiment, phase, results=None):
        self.events.append(("phase_end",))

    def on_exception(self, *, experiment, phase, exception, results=None):
        self.events.append(("exception", type(exception).__name__))


def test_callbacks_run_in_order_and_request_stop_ends_after_the_epoch(linear_setup) -> None:
    s = linear_setup()
    recorder = _Recorder(stop_at=1)
    phase = TrainPhase.from_split(
        "train", split="train", sampler=_sampler(24), losses=[s.loss], n_epochs=5, callbacks=[recorder]
    )
    results = phase.execute(**_quiet())
    assert recorder.events == [
        ("phase_start",),
        ("epoch_start", 0),
        ("batch_start", 0, 0),
        ("batch_end", 0, 0),
        ("batch_start", 0, 1),
        ("batch_end", 0, 1),
        ("epoch_end", 0),
        ("epoch_start", 1),
        ("batch_start", 1, 0),
        ("batch_end", 1, 0),
        ("batch_start", 1, 1),
        ("batch_end", 1, 1),
        ("epoch_end", 1),
        ("phase_end",),
    ]
    assert results.n_epochs == 2
    assert [r.value for r in results.callbacks(kind="probe")] == [0, 10]
    with pytest.raises(ValueError, match="already has a _Recorder"):
        phase.add_callback(_Recorder())
    phase.add_callback(_Recorder(label="second", execution_order=-1))
    assert [c.label for c in phase.callbacks] == ["second", "_Recorder"]


def test_on_exception_runs_when_a_step_fails(linear_setup, monkeypatch) -> None:
    s = linear_setup()
    recorder = _Recorder()
    phase = TrainPhase.from_split("train", split="train", sampler=_sampler(), losses=[s.loss], callbacks=[recorder])

    def boom(*args, **kwargs):
        raise RuntimeError("step failed")

    monkeypatch.setattr(type(s.graph), "train_step", boom)
    with pytest.raises(RuntimeError, match="step failed"):
        phase.execute(**_quiet())
    assert recorder.events[-1] == ("exception", "RuntimeError")


def test_progress_bars_follow_the_display_flags(linear_setup, capsys) -> None:
    s = linear_setup()
    phase = TrainPhase.from_split("train", split="train", sampler=_sampler(), losses=[s.loss], n_epochs=2)
    phase.execute(**_quiet())
    assert "train" not in capsys.readouterr().err
    results = phase.execute(show_sampler_progress=False, show_training_progress=True, persist_progress=True)
    err = capsys.readouterr().err  # not a terminal: plain lines, no bar
    assert f"train  epoch 2/2  train_loss {results.metrics().get('train_loss', 1):.4g}" in err
    assert "\r" not in err
    assert "\x1b" not in err


def test_config_round_trip(linear_setup) -> None:
    s = linear_setup()
    phase = TrainPhase.from_split(
        "train",
        split="train",
        sampler=_sampler(),
        losses=[s.loss],
        n_epochs=3,
        batch_schedule="zip_cycle",
        result_recording="last",
    )
    config = phase.get_config()
    rebuilt = TrainPhase.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.n_epochs == 3
    assert rebuilt.result_recording is ResultRecording.LAST


def test_three_output_regression_trains_and_evaluates() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    y = x @ rng.normal(size=(3, 3)).astype(np.float32)
    fs = mml.FeatureSet.from_dict("d3", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}, ["a", "b", "c"], ["y"], [])
    fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
    fs.fit_transform("Negate", domain="targets")
    opt = mml.Optimizer("sgd", opt_kwargs={"lr": 0.05}, backend="numpy")
    head = mml.ModelNode("head", LinearModel(output_shape=(3,)), fs, opt)
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])
    evaluation = EvalPhase.from_split("val", split="val", losses=[loss])
    before = evaluation.execute().aggregated_losses(head)[loss.label]
    TrainPhase.from_split("train", split="train", sampler=_sampler(10), losses=[loss], n_epochs=30).execute(**_quiet())
    results = evaluation.execute()
    assert results.aggregated_losses(head)[loss.label] < 0.01 * before
    targets = results.stacked_tensors(head, "targets", unscale=True, fmt="np")
    np.testing.assert_allclose(targets, fs["val"].get_targets(fmt="np", rep="raw"))
    predictions = results.stacked_tensors(head, "outputs", unscale=True, fmt="np")
    assert predictions.shape == (20, 3)
    np.testing.assert_allclose(predictions, targets, atol=0.2)


def test_recorded_loss_values_are_floats_of_scalars_and_sums_of_arrays() -> None:
    from modularml.phases.base import _loss_value
    from modularml_numpy.autograd import Tensor

    assert _loss_value(np.float32(1.5)) == 1.5
    assert _loss_value(np.array(2.25)) == 2.25
    assert _loss_value(np.ones((2, 2), dtype=np.float32)) == 4.0  # several elements: summed
    assert _loss_value(Tensor(np.array([1.0, 2.0]))) == 3.0  # no .item(): converted by its backend
