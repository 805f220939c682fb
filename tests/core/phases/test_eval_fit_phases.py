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
