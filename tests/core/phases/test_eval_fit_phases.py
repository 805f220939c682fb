from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.phases import EvalPhase, FitPhase, InputBinding
from modularml_numpy.models import LinearModel


def test_eval_phase_chunks_the_split_by_batch_size(linear_setup) -> None:
    s = linear_setup()
    phase = EvalPhase.from_split("val", split="val", losses=[s.loss], batch_size=5)
    contexts = list(phase.iter_execution())
    assert [(c.epoch_idx, c.batch_idx) for c in contexts] == [(0, b) for b in range(4)]
    key = (s.head.node_id, s.head.upstream_refs[0])
    rows = np.concatenate([c.inputs[key].role_indices["default"] for c in contexts])
    np.testing.assert_array_equal(rows, s.fs["val"].indices)
    assert [c.inputs[key].n_samples for c in contexts] == [5, 5, 5, 1]


def test_eval_phase_does_not_change_weights_and_records_everything(linear_setup) -> None:
    s = linear_setup()
    before = s.head.model.get_weights()
    results = EvalPhase.from_split("val", split="val", losses=[s.loss], batch_size=4).execute()
    for key, value in before.items():
        np.testing.assert_array_equal(s.head.model.get_weights()[key], value)
    assert results.n_batches == 4
    assert results.n_epochs == 1
    assert results.batch_indices == [0, 1, 2, 3]
    whole = EvalPhase.from_split("all", split="val", losses=[s.loss]).execute()
    assert whole.n_batches == 1
    assert whole.aggregated_losses(s.head)[s.loss.label] == pytest.approx(
        results.aggregated_losses(s.head)[s.loss.label], rel=0.2
    )
    assert "eval_loss" in results.metrics()


def test_eval_phase_without_losses_records_outputs(linear_setup) -> None:
    s = linear_setup()
    results = EvalPhase("all", input_sources=[InputBinding.for_evaluation(node=s.head)]).execute()
    assert results.stacked_tensors(s.head, "outputs", fmt="np").shape == (len(s.fs), 1)
    assert "eval_loss" not in results.metrics()
    with pytest.raises(ValueError, match="batch_size"):
        EvalPhase("bad", input_sources=[InputBinding.for_evaluation(node=s.head)], batch_size=0)


def test_eval_from_split_and_config(linear_setup) -> None:
    s = linear_setup()
    with pytest.raises(KeyError, match="no split 'test'"):
        EvalPhase.from_split("test", split="test")
    phase = EvalPhase.from_split("val", split="val", losses=[s.loss], batch_size=7)
    config = phase.get_config()
    assert EvalPhase.from_config(config).get_config() == config


def test_fit_phase_fits_on_all_rows_in_one_context(regression_fs, mean_fit_model_cls) -> None:
    fs = regression_fs()
    fs.split_random({"train": 0.5, "val": 0.5}, seed=0)
    node = mml.ModelNode("mean", mean_fit_model_cls(), fs)
    mml.ModelGraph([node])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=node, inputs=["outputs", "targets"])
    phase = FitPhase.from_split("fit", split="train", losses=[loss])
    results = phase.execute()
    assert node.model.fit_calls == 1
    assert node.model.value == pytest.approx(float(np.mean(fs["train"].get_targets(fmt="np"))), rel=1e-5)
    assert node.is_frozen
    assert results.n_batches == 1
    assert results.n_epochs == 1
    assert results.stacked_tensors(node, "outputs", fmt="np").shape == (32, 1)
    assert set(results.aggregated_losses(node)) == {loss.label}
    assert results.source_view(node).n_samples == 32
    config = phase.get_config()
    assert FitPhase.from_config(config).get_config() == config


def test_fit_phase_can_leave_nodes_unfrozen(regression_fs, mean_fit_model_cls) -> None:
    fs = regression_fs()
    node = mml.ModelNode("mean", mean_fit_model_cls(), fs)
    mml.ModelGraph([node])
    FitPhase("fit", input_sources=[InputBinding.for_evaluation(node=node)], freeze_after_fit=False).execute()
    assert node.model.fit_calls == 1
    assert not node.is_frozen


def test_phases_refuse_bindings_to_nodes_that_are_no_longer_heads(linear_setup) -> None:
    s = linear_setup()
    binding = InputBinding.for_evaluation(node=s.head)
    binding.upstream_ref = s.fs.reference(features=["a"])  # an edge the node does not have
    with pytest.raises(ValueError, match="not a head node fed by that FeatureSet"):
        EvalPhase("eval", input_sources=[binding]).execute()
    tail = mml.ModelNode("tail", LinearModel(output_shape=(1,)), s.head)
    with pytest.raises(ValueError, match="not a head node"):
        InputBinding.for_evaluation(node=tail)


class _HookLog(mml.Callback):
    """Records (hook, experiment, epoch, batch, has outputs) for every hook."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def _log(self, hook, experiment, exec_ctx=None):
        where = (
            (None, None, None) if exec_ctx is None else (exec_ctx.epoch_idx, exec_ctx.batch_idx, bool(exec_ctx.outputs))
        )
        self.calls.append((hook, experiment, *where))

    def on_phase_start(self, *, experiment, phase, results=None):
        self._log("phase_start", experiment)

    def on_epoch_start(self, *, experiment, phase, exec_ctx, results=None):
        self._log("epoch_start", experiment, exec_ctx)

    def on_batch_end(self, *, experiment, phase, exec_ctx, results=None):
        self._log("batch_end", experiment, exec_ctx)

    def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
        self._log("epoch_end", experiment, exec_ctx)
        return {"rows": sum(b.batch_size for b in exec_ctx.outputs.values())}

    def on_phase_end(self, *, experiment, phase, results=None):
        self._log("phase_end", experiment)


def test_eval_phase_hooks_get_keyword_arguments_and_the_experiment(linear_setup) -> None:
    s = linear_setup()
    log = _HookLog()
    results = EvalPhase.from_split("val", split="val", losses=[s.loss], batch_size=6, callbacks=[log]).execute()
    assert log.calls == [
        ("phase_start", None, None, None, None),
        ("epoch_start", None, 0, 0, False),  # an empty context of the epoch
        ("batch_end", None, 0, 0, True),
        ("batch_end", None, 0, 1, True),
        ("batch_end", None, 0, 2, True),
        ("epoch_end", None, 0, 2, True),  # the epoch's last chunk
        ("phase_end", None, None, None, None),
    ]
    wrapped = results.callbacks(kind="callback")
    assert [(r.label, r.epoch_idx, r.batch_idx, r.value) for r in wrapped] == [("_HookLog", 0, None, {"rows": 4})]
    log.calls.clear()
    experiment = mml.Experiment.from_active_context("exp")
    experiment.run_phase(EvalPhase.from_split("val2", split="val", callbacks=[log]))
    assert {call[1] for call in log.calls} == {experiment}


def test_fit_phase_hooks_see_the_single_context(regression_fs, mean_fit_model_cls) -> None:
    fs = regression_fs()
    node = mml.ModelNode("mean", mean_fit_model_cls(), fs)
    mml.ModelGraph([node])
    log = _HookLog()
    FitPhase("fit", input_sources=[InputBinding.for_evaluation(node=node)], callbacks=[log]).execute()
    assert log.calls == [
        ("phase_start", None, None, None, None),
        ("batch_end", None, 0, 0, True),
        ("phase_end", None, None, None, None),
    ]


def _two_featureset_graph(left, right):
    a = mml.ModelNode("a", LinearModel(output_shape=(2,)), left)
    b = mml.ModelNode("b", LinearModel(output_shape=(2,)), right)
    concat = mml.ConcatNode("ab", [a, b], concat_axis=-1)
    head = mml.ModelNode("ab_head", LinearModel(output_shape=(1,)), concat)
    return a, b, head, mml.ModelGraph([a, b, concat, head])


def test_eval_phase_reads_featuresets_that_hold_the_same_samples(regression_fs) -> None:
    fs = regression_fs(n=12)
    left = fs.select(features=["a", "b"], targets="y").to_featureset("left")
    right = fs.select(features="c", targets="y").to_featureset("right")
    a, b, head, graph = _two_featureset_graph(left, right)
    bindings = [
        InputBinding.for_evaluation(node=a, upstream=left),
        InputBinding.for_evaluation(node=b, upstream=right),
    ]
    results = EvalPhase("both", input_sources=bindings, batch_size=5).execute(graph=graph)
    outputs = results.stacked_tensors(head, "outputs", fmt="np")
    expected = graph.forward(
        {
            (a.node_id, a.upstream_refs[0]): mml.BatchView(left, np.arange(12)),
            (b.node_id, b.upstream_refs[0]): mml.BatchView(right, np.arange(12)),
        }
    )[head.node_id].outputs
    np.testing.assert_allclose(outputs, mml.get_backend("numpy").to_numpy(expected), rtol=1e-6)


def test_eval_phase_refuses_featuresets_whose_rows_are_different_samples(regression_fs) -> None:
    left = regression_fs(label="left", n=12)
    right = regression_fs(label="right", n=12)  # same values, different sample UUIDs
    a, b, _, graph = _two_featureset_graph(left, right)
    bindings = [
        InputBinding.for_evaluation(node=a, upstream=left),
        InputBinding.for_evaluation(node=b, upstream=right),
    ]
    with pytest.raises(ValueError, match="not the same samples in the same order"):
        EvalPhase("both", input_sources=bindings).execute(graph=graph)


def test_eval_phase_refuses_bindings_of_different_lengths(regression_fs) -> None:
    a, b, _, graph = _two_featureset_graph(regression_fs(label="long", n=12), regression_fs(label="short", n=8))
    bindings = [InputBinding.for_evaluation(node=a), InputBinding.for_evaluation(node=b)]
    with pytest.raises(ValueError, match="different numbers of rows"):
        EvalPhase("uneven", input_sources=bindings).execute(graph=graph)


def test_a_node_after_an_unfitted_estimator_is_built_once_the_fit_tells_its_shape(
    regression_fs, mean_fit_model_cls
) -> None:
    class ShapeAfterFit(mean_fit_model_cls):
        """Its output shape (the width of the targets it saw) is unknown until fit."""

        @property
        def output_shape(self):
            return None if self.value is None else (1,)

    fs = regression_fs(n=32)
    fs.split_random({"train": 0.75, "val": 0.25}, seed=0)
    fitted = mml.ModelNode("fitted", ShapeAfterFit(), fs)
    opt = mml.Optimizer("sgd", opt_kwargs={"lr": 0.05}, backend="numpy")
    after = mml.ModelNode("after", LinearModel(output_shape=(1,)), fitted, opt)
    graph = mml.ModelGraph([fitted, after])
    graph.build()  # nothing tells `after` its input shape yet: it waits instead of failing
    assert not graph.is_built
    assert fitted.is_built
    assert not after.is_built
    FitPhase.from_split("fit", split="train").execute(graph=graph)
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=after, inputs=["outputs", "targets"])
    graph.build()
    assert graph.is_built
    assert after.model.input_shape == (1,)
    results = EvalPhase.from_split("val", split="val", losses=[loss]).execute(graph=graph)
    assert results.stacked_tensors(after, "outputs", fmt="np").shape == (len(fs["val"]), 1)
