"""Evaluation chunks read as slices, and detaching what has no autograd history (issue 19, item 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import modularml as mml
from modularml.batches import Batch, BatchView, ExecutionContext
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.phases import EvalPhase, InputBinding
from modularml_torch import SequentialMLP


@pytest.fixture(autouse=True)
def fresh_context():
    with ExperimentContext(registration_policy="error").activate() as ctx:
        mml.get_backend("torch").seed(0)
        yield ctx


def _fs(n: int = 50) -> FeatureSet:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return FeatureSet.from_dict("data", {"x": x, "y": x.sum(axis=1)}, "x", "y")


def test_a_span_view_gathers_what_the_index_view_gathers_into_a_writeable_copy() -> None:
    fs = _fs()
    rows = np.arange(10, 30, dtype=np.int64)
    taken = BatchView(fs, rows).materialize_batch("torch")
    sliced = BatchView.trusted(fs, {"default": rows}, None, None, True, span=(10, 30)).materialize_batch("torch")
    assert torch.equal(taken.features, sliced.features)
    assert torch.equal(taken.targets, sliced.targets)
    assert list(taken.sample_uuids) == list(sliced.sample_uuids)
    source = fs.collection.to_numpy("features.x.raw")
    sliced.features[0, 0] = 123.0  # the batch owns its rows: the FeatureSet is untouched
    assert source[10, 0] != 123.0
    assert np.array_equal(source[10:30], taken.features.numpy())


def test_chunks_of_a_permuted_split_are_gathered_row_by_row() -> None:
    from modularml.phases.eval_phase import _chunker

    fs = _fs()
    order = np.random.default_rng(0).permutation(len(fs)).astype(np.int64)
    chunk = _chunker(fs, order)(5, 12)
    assert chunk._span is None
    assert np.array_equal(
        chunk.materialize_batch("numpy").features, fs.collection.to_numpy("features.x.raw")[order[5:12]]
    )
    whole = _chunker(fs, np.arange(len(fs), dtype=np.int64))(5, 12)
    assert whole._span == (5, 12)


@pytest.mark.parametrize("batch_size", [7, None])
def test_eval_chunks_equal_one_forward_of_the_split(batch_size) -> None:
    fs = _fs()
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=8), fs)
    graph = mml.ModelGraph([node], label="g")
    graph.build()
    node.model.set_training(True)  # the phase puts it in inference mode once
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    phase = EvalPhase(
        "eval", input_sources=[InputBinding.for_evaluation(node=node)], losses=[loss], batch_size=batch_size
    )
    results = phase.execute(show_eval_progress=False)
    assert not node.model.training
    outputs = results.stacked_tensors(node, "outputs", fmt="numpy")
    with torch.no_grad():
        expected = node.model(torch.from_numpy(fs.collection.to_numpy("features.x.raw").copy())).numpy()
    np.testing.assert_allclose(outputs.reshape(-1), expected.reshape(-1), rtol=1e-6, atol=1e-7)
    uuids = np.concatenate([ctx.outputs[node.node_id].sample_uuids for ctx in results.execution_contexts()])
    assert list(uuids) == list(fs.get_sample_uuids())


def test_detaching_keeps_what_has_no_autograd_history_and_detaches_the_rest() -> None:
    fs = _fs()
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=8), fs)
    mml.ModelGraph([node], label="g").build()
    batch = BatchView(fs, np.arange(8)).materialize_batch("torch")
    assert batch.detach_tensors() is batch  # gathered data: nothing to detach
    out = node.forward(batch)
    assert out.outputs.requires_grad
    detached = out.detach_tensors()
    assert detached is not out
    assert not detached.outputs.requires_grad
    assert torch.equal(detached.outputs, out.outputs)
    with torch.no_grad():
        quiet = node.forward(batch)
    assert quiet.detach_tensors() is quiet
    ctx = ExecutionContext("eval", inputs={(node.node_id, fs.reference()): batch})
    ctx.set_output(node.node_id, out)
    ctx.add_loss("l", out.outputs.sum())
    copy = ctx.detach_tensors()
    assert copy is not ctx
    assert copy.epoch_idx == ctx.epoch_idx
    assert copy.fold == ctx.fold
    assert not copy.outputs[node.node_id].outputs.requires_grad
    assert not copy.losses["l"].requires_grad
    assert isinstance(copy.inputs[(node.node_id, fs.reference())], Batch)
