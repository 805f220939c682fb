from __future__ import annotations

import math

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import Callback, EarlyStopping, Evaluation, MetricCallback, MetricResult
from modularml.callbacks.early_stopping import EarlyStoppingResult
from modularml.errors import ModularMLWarning
from modularml.phases import EvalPhase, TrainPhase


class _Scripted(MetricCallback):
    """Logs scripted values: ``values[epoch]`` (None: nothing that epoch)."""

    def __init__(self, values: list[float | None], name: str = "score", **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.values = values

    def compute(self, *, experiment, phase, exec_ctx, results):
        epoch = exec_ctx.epoch_idx
        if self.every == "batch":
            return self.values[epoch * 3 + exec_ctx.batch_idx]
        return self.values[epoch]


class _WeightLog(Callback):
    """Records the head's weights at the end of each epoch (after training it)."""

    def __init__(self, node) -> None:
        super().__init__(execution_order=10)
        self.node = node
        self.weights: dict[int, dict[str, np.ndarray]] = {}

    def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
        self.weights[exec_ctx.epoch_idx] = self.node.model.get_weights()


def _phase(s, n_epochs: int, callbacks: list, **kwargs) -> TrainPhase:
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    return TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=[s.loss], n_epochs=n_epochs, callbacks=callbacks, **kwargs
    )


def _run(phase: TrainPhase) -> mml.TrainResults:
    return phase.execute(show_sampler_progress=False, show_training_progress=False)


def test_stops_after_exactly_patience_epochs_without_improvement(linear_setup) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="score", patience=2)
    results = _run(_phase(s, 10, [_Scripted([5.0, 4.0, 3.0, 3.5, 3.0, 1.0, 0.5, 0.1, 0.1, 0.1]), stopper]))
    # best 3.0 at epoch 2; epochs 3 and 4 do not improve (3.0 is not < 3.0) -> stop after epoch 4
    assert results.n_epochs == 5
    assert list(results.epoch_losses()) == [0, 1, 2, 3, 4]
    assert (stopper.best_epoch, stopper.best_value, stopper.stopped_epoch) == (2, 3.0, 4)
    summary = results.callbacks(kind="early_stopping")
    assert len(summary) == 1
    assert isinstance(summary[0], EarlyStoppingResult)
    assert (summary[0].best_epoch, summary[0].stopped_epoch, summary[0].restored) == (2, 4, False)


def test_improvement_resets_patience_and_runs_to_the_end(linear_setup) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="score", patience=2)
    results = _run(_phase(s, 6, [_Scripted([5.0, 6.0, 4.0, 6.0, 3.0, 7.0]), stopper]))
    assert results.n_epochs == 6
    assert stopper.stopped_epoch is None
    assert (stopper.best_epoch, stopper.best_value) == (4, 3.0)


def test_mode_max_and_min_delta(linear_setup) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="acc", mode="max", patience=3, min_delta=0.1)
    # gains below min_delta do not count: only 0.7 (epoch 3) improves on 0.5; 0.75, 0.79, 0.78 do not
    values = [0.5, 0.55, 0.58, 0.7, 0.75, 0.79, 0.78, 0.95]
    results = _run(_phase(s, 8, [_Scripted(values, name="acc"), stopper]))
    assert (stopper.best_epoch, stopper.best_value, stopper.stopped_epoch) == (3, 0.7, 6)
    assert results.n_epochs == 7
    greedy = EarlyStopping(monitor="acc", mode="max", patience=3)
    _run(_phase(s, 8, [_Scripted(values, name="acc"), greedy]))
    assert (greedy.best_epoch, greedy.stopped_epoch) == (7, None)


def test_epochs_without_the_metric_are_skipped_and_nan_never_improves(linear_setup) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="score", patience=2)
    values = [math.nan, 3.0, None, 4.0, None, math.nan, None, 1.0]
    results = _run(_phase(s, 8, [_Scripted(values), stopper]))
    # logged epochs: 0 (nan, no best yet), 1 (best), 3 (worse), 5 (nan: worse) -> stop after epoch 5
    assert (stopper.best_epoch, stopper.stopped_epoch) == (1, 5)
    assert results.n_epochs == 6


@pytest.mark.parametrize(("reducer", "best"), [("mean", 2.0), ("sum", 6.0), ("first", 1.0), ("last", 3.0)])
def test_reducer_combines_batch_level_values(linear_setup, reducer, best) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="score", patience=1, reducer=reducer)
    values = [1.0, 2.0, 3.0] + [9.0, 9.0, 9.0]  # three batches per epoch
    results = _run(_phase(s, 2, [_Scripted(values, every="batch"), stopper]))
    assert stopper.best_epoch == 0
    assert stopper.best_value == pytest.approx(best)
    assert stopper.stopped_epoch == 1
    assert results.n_epochs == 2


def test_restore_best_restores_the_weights_of_the_best_epoch(linear_setup) -> None:
    s = linear_setup()
    log = _WeightLog(s.head)
    stopper = EarlyStopping(monitor="score", patience=3, restore_best=True)
    results = _run(_phase(s, 8, [_Scripted([4.0, 1.0, 2.0, 3.0, 5.0, 0.5, 0.1, 0.1]), stopper, log]))
    assert stopper.stopped_epoch == 4
    assert sorted(log.weights) == [0, 1, 2, 3, 4]
    restored = s.head.model.get_weights()
    for name, value in restored.items():
        np.testing.assert_array_equal(value, log.weights[1][name])
        assert not np.array_equal(value, log.weights[4][name])
    assert results.callbacks(kind="early_stopping")[0].restored is True


def test_without_restore_best_the_last_weights_stay(linear_setup) -> None:
    s = linear_setup()
    log = _WeightLog(s.head)
    _run(_phase(s, 8, [_Scripted([4.0, 1.0, 2.0, 3.0, 5.0, 0.5, 0.1, 0.1]), EarlyStopping(monitor="score"), log]))
    for name, value in s.head.model.get_weights().items():
        np.testing.assert_array_equal(value, log.weights[7][name])


def test_recording_last_with_restore_best_keeps_the_best_epoch(linear_setup) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="score", patience=2, restore_best=True)
    results = _run(_phase(s, 6, [_Scripted([3.0, 1.0, 2.0, 2.0, 0.1, 0.1]), stopper], result_recording="last"))
    assert stopper.stopped_epoch == 3
    assert sorted({c.epoch_idx for c in results.execution_contexts()}) == [1]
    assert results.batches(s.head).axes_values("epoch") == [1]
    plain = _run(_phase(s, 6, [_Scripted([3.0, 1.0, 2.0, 2.0, 0.1, 0.1]), EarlyStopping(monitor="score", patience=2)]))
    assert plain.n_epochs == 4


def test_with_an_evaluation_monitoring_val_loss(linear_setup) -> None:
    s = linear_setup(lr=0.8)  # a large step: the validation loss stops improving after a few epochs
    evaluation = Evaluation(EvalPhase.from_split("val", split="val", losses=[s.loss]))
    stopper = EarlyStopping(patience=2, restore_best=True)
    results = _run(_phase(s, 40, [stopper, evaluation]))  # execution_order puts the evaluation first
    val = results.metrics().epoch_values("val_loss")
    best_epoch = min(val, key=val.get)
    assert stopper.best_epoch == best_epoch
    assert stopper.best_value == pytest.approx(val[best_epoch])
    assert stopper.stopped_epoch == best_epoch + 2
    assert results.n_epochs == stopper.stopped_epoch + 1 < 40
    restored = EvalPhase.from_split("check", split="val", losses=[s.loss]).execute().metrics().get("eval_loss", 0)
    assert restored == pytest.approx(val[best_epoch], rel=1e-5)


def test_an_unknown_monitor_warns_at_the_end_of_the_phase(linear_setup) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="val_los", restore_best=True)
    with pytest.warns(ModularMLWarning, match=r"'val_los'.*never logged.*\['train_loss'\]"):
        results = _run(_phase(s, 3, [stopper]))
    assert results.n_epochs == 3
    assert stopper.best_epoch is None
    assert results.callbacks(kind="early_stopping")[0].restored is False


def test_monitoring_train_loss_works_without_other_callbacks(linear_setup) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="train_loss", patience=1)
    results = _run(_phase(s, 3, [stopper]))
    assert stopper.best_epoch == 2  # the training loss decreases every epoch
    assert stopper.best_value == pytest.approx(results.epoch_losses()[2])


def test_state_resets_between_runs(linear_setup) -> None:
    s = linear_setup()
    stopper = EarlyStopping(monitor="score", patience=1)
    phase = _phase(s, 4, [_Scripted([1.0, 2.0, 0.5, 0.4]), stopper])
    assert _run(phase).n_epochs == 2
    phase.callbacks[0].values = [3.0, 2.0, 1.0, 0.5]
    assert _run(phase).n_epochs == 4
    assert (stopper.best_epoch, stopper.stopped_epoch) == (3, None)


def test_config_round_trip() -> None:
    stopper = EarlyStopping(
        monitor="acc",
        mode="max",
        patience=7,
        min_delta=0.01,
        restore_best=True,
        reducer="mean",
        label="stop-acc",
        execution_order=3,
    )
    config = stopper.get_config()
    assert config == {
        "monitor": "acc",
        "mode": "max",
        "patience": 7,
        "min_delta": 0.01,
        "restore_best": True,
        "reducer": "mean",
        "label": "stop-acc",
        "execution_order": 3,
    }
    rebuilt = EarlyStopping.from_config(config)
    assert rebuilt.get_config() == config
    assert (rebuilt.monitor, rebuilt.restore_best, rebuilt.label) == ("acc", True, "stop-acc")
    default = EarlyStopping()
    assert (default.monitor, default.mode, default.patience, default.execution_order) == ("val_loss", "min", 5, 1)
    assert default.label == "EarlyStopping"
    with pytest.raises(ValueError, match="Cannot rebuild EarlyStopping"):
        EarlyStopping.from_config({**config, "delta": 1})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "avg"}, ValueError, "mode is 'min' or 'max'; got 'avg'"),
        ({"patience": -1}, ValueError, "patience"),
        ({"patience": 2.5}, ValueError, "patience"),
        ({"min_delta": -0.1}, ValueError, "min_delta"),
        ({"reducer": "median"}, ValueError, "reducer"),
        ({"monitor": ""}, TypeError, "monitor"),
        ({"execution_order": "1"}, TypeError, "execution_order"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        EarlyStopping(**kwargs)


def test_early_stopping_needs_a_phase_that_can_stop(linear_setup) -> None:
    s = linear_setup()
    phase = EvalPhase.from_split("val", split="val", losses=[s.loss], callbacks=[EarlyStopping()])
    with pytest.raises(TypeError, match="request_stop"):
        phase.execute()


def test_metric_results_can_target_another_epoch(linear_setup) -> None:
    s = linear_setup()

    class Delayed(MetricCallback):
        def compute(self, *, experiment, phase, exec_ctx, results):
            return MetricResult(self.name, 10.0 + exec_ctx.epoch_idx, epoch_idx=0, batch_idx=exec_ctx.epoch_idx)

    results = _run(_phase(s, 2, [Delayed("delayed")]))
    assert results.metrics().batch_values("delayed") == {(0, 0): 10.0, (0, 1): 11.0}
