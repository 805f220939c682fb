from __future__ import annotations

import copy

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import (
    EvalLossMetric,
    Evaluation,
    EvaluationCallbackResult,
    EvaluationMetric,
    MetricCallback,
    MetricResult,
)
from modularml.phases import EvalPhase, TrainPhase


def _sampler(batch_size: int = 16) -> mml.SimpleSampler:
    return mml.SimpleSampler(batch_size=batch_size, shuffle=True, seed=0, show_progress=False)


def _quiet() -> dict:
    return {"show_sampler_progress": False, "show_training_progress": False}


class _ReferenceEval(MetricCallback):
    """Logs the loss of an independent EvalPhase run on the weights at the end of each epoch."""

    def __init__(self, eval_phase: EvalPhase, **kwargs) -> None:
        super().__init__("reference_loss", **kwargs)
        self.eval_phase = eval_phase

    def compute(self, *, experiment, phase, exec_ctx, results):
        return self.eval_phase.execute(persist_progress=False).metrics().get("eval_loss", 0)


def _train(s, n_epochs: int, callbacks: list, **kwargs) -> mml.TrainResults:
    phase = TrainPhase.from_split(
        "train", split="train", sampler=_sampler(), losses=[s.loss], n_epochs=n_epochs, callbacks=callbacks, **kwargs
    )
    return phase.execute(**_quiet())


def test_val_loss_is_logged_every_epoch_with_the_weights_of_that_epoch(linear_setup) -> None:
    s = linear_setup()
    evaluation = Evaluation(EvalPhase.from_split("val", split="val", losses=[s.loss]))
    reference = _ReferenceEval(EvalPhase.from_split("reference", split="val", losses=[s.loss]), execution_order=5)
    results = _train(s, 4, [evaluation, reference])
    val = results.metrics().epoch_values("val_loss")
    assert list(val) == [0, 1, 2, 3]
    assert list(val.values()) == pytest.approx(list(results.metrics().epoch_values("reference_loss").values()))
    assert val[3] < val[0]  # training improves the validation loss
    recorded = results.callbacks(kind="evaluation")
    assert [r.epoch_idx for r in recorded] == [0, 1, 2, 3]
    assert all(isinstance(r, EvaluationCallbackResult) for r in recorded)
    assert [r.metrics["val_loss"] for r in recorded] == pytest.approx(list(val.values()))
    assert recorded[0].eval_results.n_batches == 1


def test_evaluation_does_not_change_the_training(linear_setup) -> None:
    s = linear_setup()
    s.graph.build()
    start = copy.deepcopy(s.graph.get_state())
    _train(s, 3, [Evaluation.from_split("val", split="val", losses=[s.loss], batch_size=4)])
    with_eval = s.head.model.get_weights()
    s.graph.set_state(start)
    plain = _train(s, 3, [])
    without_eval = s.head.model.get_weights()
    for name in with_eval:
        np.testing.assert_array_equal(with_eval[name], without_eval[name])
    assert "val_loss" not in plain.metrics()


def test_every_n_epochs_and_run_on_start(linear_setup) -> None:
    s = linear_setup()
    before = EvalPhase.from_split("before", split="val", losses=[s.loss]).execute().metrics().get("eval_loss", 0)
    evaluation = Evaluation.from_split("val", split="val", losses=[s.loss], every_n_epochs=2, run_on_start=True)
    results = _train(s, 5, [evaluation])
    assert list(results.metrics().epoch_values("val_loss")) == [1, 3]
    recorded = results.callbacks(kind="evaluation")
    assert [r.epoch_idx for r in recorded] == [None, 1, 3]
    assert recorded[0].metrics["val_loss"] == pytest.approx(before)
    series = results.validation_results()
    assert series.axes == ("epoch",)
    assert series.axes_values("epoch") == [-1, 1, 3]
    assert series.at(epoch=-1) is recorded[0].eval_results


def test_the_epoch_lines_show_the_validation_loss(linear_setup, capsys) -> None:
    s = linear_setup()
    phase = TrainPhase.from_split(
        "train",
        split="train",
        sampler=_sampler(),
        losses=[s.loss],
        n_epochs=2,
        callbacks=[Evaluation.from_split("val", split="val", losses=[s.loss])],
    )
    results = phase.execute(show_sampler_progress=False, show_training_progress=True, persist_progress=True)
    err = capsys.readouterr().err
    assert f"val_loss {results.metrics().last('val_loss'):.4g}" in err.splitlines()[1]  # the line of epoch 2


def test_eval_loss_metric_adds_its_loss_and_logs_under_its_name(linear_setup) -> None:
    s = linear_setup()
    eval_phase = EvalPhase.from_split("val", split="val", batch_size=4)  # no losses of its own
    metrics = [EvalLossMetric(loss=s.loss, name="val_mse"), EvalLossMetric(loss=s.loss, reducer="sum", name="sum_mse")]
    evaluation = Evaluation(eval_phase, metrics=metrics)
    assert eval_phase.losses == [s.loss]  # added once, by the first metric
    results = _train(s, 2, [evaluation])
    assert "val_loss" not in results.metrics()
    for epoch, recorded in enumerate(results.callbacks(kind="evaluation")):
        per_batch = recorded.eval_results.losses(s.head).values
        assert len(per_batch) == 4
        assert results.metrics().get("val_mse", epoch) == pytest.approx(np.mean(per_batch))
        assert results.metrics().get("sum_mse", epoch) == pytest.approx(np.sum(per_batch))
    assert EvalLossMetric.from_config(metrics[1].get_config()).get_config() == metrics[1].get_config()


def test_custom_evaluation_metric(linear_setup) -> None:
    s = linear_setup()

    class MaxAbsError(EvaluationMetric):
        def extract(self, *, eval_result, exec_ctx=None):
            res = eval_result.eval_results
            err = res.stacked_tensors("head", "outputs", fmt="np") - res.stacked_tensors("head", "targets", fmt="np")
            return MetricResult(self.name, float(np.abs(err).max()))

    evaluation = Evaluation.from_split("val", split="val", metrics=[MaxAbsError(name="max_err")])
    results = _train(s, 2, [evaluation])
    last = results.callbacks(kind="evaluation")[-1].eval_results
    expected = np.abs(
        last.stacked_tensors(s.head, "outputs", fmt="np") - last.stacked_tensors(s.head, "targets", fmt="np")
    ).max()
    assert results.metrics().last("max_err") == pytest.approx(expected)


def test_validation_accessors_of_train_results(linear_setup) -> None:
    s = linear_setup()
    results = _train(s, 3, [Evaluation.from_split("val", split="val", losses=[s.loss], batch_size=8)])
    losses = results.validation_losses(s.head)
    assert losses.axes == ("loss", "epoch")
    assert losses.select(loss=s.loss.label).values == pytest.approx(
        list(results.metrics().epoch_values("val_loss").values())
    )
    summed = results.validation_losses(s.head, reducer="sum").at(loss=s.loss.label, epoch=2)
    assert summed == pytest.approx(2 * losses.at(loss=s.loss.label, epoch=2))  # two batches of 8
    outputs = results.validation_tensors(s.head, "outputs", fmt="np")
    assert outputs.axes_values("epoch") == [0, 1, 2]
    assert outputs.at(epoch=2).shape == (16, 1)
    assert not np.allclose(outputs.at(epoch=0), outputs.at(epoch=2))
    targets = results.validation_tensors(s.head, "targets", unscale=True).at(epoch=1)
    np.testing.assert_allclose(targets, s.fs["val"].get_targets(fmt="np", rep="raw").reshape(targets.shape))
    with pytest.raises(ValueError, match="reducer"):
        results.validation_losses(s.head, reducer="max")


def test_validation_accessors_need_a_matching_evaluation(linear_setup) -> None:
    s = linear_setup()
    plain = _train(s, 1, [])
    with pytest.raises(KeyError, match="no evaluation results"):
        plain.validation_results()
    two = _train(
        s,
        1,
        [
            Evaluation.from_split("val", split="val", losses=[s.loss]),
            Evaluation.from_split("train_eval", split="train", metrics=[EvalLossMetric(loss=s.loss, name="fit")]),
        ],
    )
    with pytest.raises(ValueError, match=r"several evaluations \['val', 'train_eval'\]"):
        two.validation_results()
    assert two.validation_results(label="train_eval").one().label == "train_eval"
    assert two.metrics().names == ["train_loss", "val_loss", "fit"]
    with pytest.raises(KeyError, match="no evaluation 'test'"):
        two.validation_losses(s.head, label="test")


@pytest.mark.parametrize("recording", ["last", "none"])
def test_evaluation_contexts_follow_result_recording(linear_setup, recording) -> None:
    s = linear_setup()
    results = _train(s, 3, [Evaluation.from_split("val", split="val", losses=[s.loss])], result_recording=recording)
    kept = [len(r.eval_results.execution_contexts()) for r in results.callbacks(kind="evaluation")]
    assert kept == {"last": [0, 0, 1], "none": [0, 0, 0]}[recording]
    assert list(results.metrics().epoch_values("val_loss")) == [0, 1, 2]  # metrics stay
    assert results.validation_tensors(s.head, "outputs").axes_values("epoch") == {"last": [2], "none": []}[recording]


def test_config_round_trip_and_argument_errors(linear_setup) -> None:
    s = linear_setup()
    evaluation = Evaluation.from_split(
        "val",
        split="val",
        losses=[s.loss],
        batch_size=4,
        every_n_epochs=3,
        run_on_start=True,
        metrics=[EvalLossMetric(loss=s.loss, name="val_mse")],
        execution_order=-2,
    )
    config = evaluation.get_config()
    rebuilt = Evaluation.from_config(config)
    assert rebuilt.get_config() == config
    assert (rebuilt.label, rebuilt.every_n_epochs, rebuilt.run_on_start, rebuilt.execution_order) == (
        "val",
        3,
        True,
        -2,
    )
    assert rebuilt.eval_phase.batch_size == 4
    assert [m.name for m in rebuilt.metrics] == ["val_mse"]
    with pytest.raises(TypeError, match="takes an EvalPhase"):
        Evaluation("val")
    with pytest.raises(ValueError, match="every_n_epochs"):
        Evaluation(evaluation.eval_phase, every_n_epochs=0)
    with pytest.raises(ValueError, match="distinct names"):
        Evaluation(evaluation.eval_phase, metrics=[EvalLossMetric(loss=s.loss), EvalLossMetric(loss=s.loss)])
    with pytest.raises(TypeError, match="EvaluationMetric"):
        Evaluation(evaluation.eval_phase, metrics=["val_loss"])
    with pytest.raises(TypeError, match="AppliedLoss"):
        EvalLossMetric(loss="mse")
    with pytest.raises(ValueError, match="reducer"):
        EvalLossMetric(loss=s.loss, reducer="max")
    with pytest.raises(KeyError, match="no split 'test'"):
        Evaluation.from_split("test", split="test")


def test_metric_callback_logs_per_batch_and_checks_its_values(linear_setup) -> None:
    s = linear_setup()

    class BatchSize(MetricCallback):
        def compute(self, *, experiment, phase, exec_ctx, results):
            return next(iter(exec_ctx.outputs.values())).batch_size

    class Broken(MetricCallback):
        def compute(self, *, experiment, phase, exec_ctx, results):
            return "high"

    results = _train(s, 2, [BatchSize("rows", every="batch")])
    assert results.metrics().batch_values("rows") == {(e, b): 16.0 for e in range(2) for b in range(3)}
    assert results.metrics().epoch_values("rows") == {}
    with pytest.raises(TypeError, match="real scalar"):
        _train(s, 1, [Broken("broken")])
    with pytest.raises(ValueError, match="every is 'epoch' or 'batch'"):
        BatchSize("rows", every="step")
