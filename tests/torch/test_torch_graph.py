"""Torch models inside a ModelGraph, alone and after a numpy node (mixed backends)."""

from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.batches import BatchView, ExecutionContext
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml_numpy.models import LinearModel  # the numpy test backend: installed in every backend session
from modularml_torch import SequentialMLP


@pytest.fixture(autouse=True)
def fresh_context():
    with ExperimentContext(registration_policy="error").activate() as ctx:
        mml.get_backend("numpy").seed(0)
        mml.get_backend("torch").seed(0)
        yield ctx


def _regression_fs(n: int = 128) -> FeatureSet:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (np.tanh(x @ np.array([1.0, -2.0, 0.5])) + 0.3).astype(np.float32)
    return FeatureSet.from_dict("data", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}, ["a", "b", "c"], ["y"])


def _train(graph, fs, head, loss, steps: int) -> list[float]:
    values = []
    for _ in range(steps):
        ctx = ExecutionContext("train", inputs={(head.node_id, fs.reference()): BatchView(fs, np.arange(len(fs)))})
        graph.train_step(ctx, [loss])
        values.append(float(mml.get_backend("torch").to_numpy(ctx.losses[loss.label])))
    return values


def _eval_outputs(graph, fs, node) -> np.ndarray:
    ctx = ExecutionContext("eval", inputs={(node.node_id, fs.reference()): BatchView(fs, np.arange(len(fs)))})
    graph.eval_step(ctx)
    return mml.get_backend("torch").to_numpy(ctx.get_output(node.node_id).outputs).copy()


def test_torch_node_trains_in_a_graph() -> None:
    fs = _regression_fs()
    node = mml.ModelNode(
        "mlp", SequentialMLP(output_shape=(1,)), fs, mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch")
    )
    graph = mml.ModelGraph([node])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    values = _train(graph, fs, node, loss, 150)
    assert values[-1] < 0.05 * values[0]


def test_torch_node_after_a_numpy_node_trains() -> None:
    fs = _regression_fs()
    encoder = mml.ModelNode(
        "enc", LinearModel(output_shape=(4,)), fs, mml.Optimizer("sgd", opt_kwargs={"lr": 0.05}, backend="numpy")
    )
    head = mml.ModelNode(
        "head",
        SequentialMLP(output_shape=(1,)),
        encoder,
        mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch"),
    )
    graph = mml.ModelGraph([encoder, head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
    values = _train(graph, fs, encoder, loss, 150)
    assert values[-1] < 0.1 * values[0]


def test_global_torch_optimizer_trains_end_to_end_and_skips_frozen_nodes() -> None:
    fs = _regression_fs()
    encoder = mml.ModelNode("enc", SequentialMLP(output_shape=(8,), n_layers=2), fs)
    head = mml.ModelNode("head", SequentialMLP(output_shape=(1,), n_layers=2), encoder)
    graph = mml.ModelGraph([encoder, head], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch"))
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
    graph.build()
    encoder_before = encoder.model.get_weights()
    values = _train(graph, fs, encoder, loss, 150)
    assert values[-1] < 0.05 * values[0]
    assert any(not np.array_equal(encoder.model.get_weights()[k], v) for k, v in encoder_before.items())

    encoder.freeze()
    frozen = encoder.model.get_weights()
    _train(graph, fs, encoder, loss, 5)
    for key, value in frozen.items():
        np.testing.assert_array_equal(encoder.model.get_weights()[key], value)


def test_a_raw_module_given_to_a_node_is_wrapped_and_trains() -> None:
    from torch import nn

    from modularml_torch import TorchModelWrapper

    fs = _regression_fs()
    module = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    node = mml.ModelNode("raw", module, fs, mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch"))
    assert isinstance(node.model, TorchModelWrapper)
    assert node.model.model is module
    graph = mml.ModelGraph([node])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    values = _train(graph, fs, node, loss, 150)
    assert values[-1] < 0.05 * values[0]


def test_evaluation_and_frozen_nodes_run_in_inference_mode() -> None:
    fs = _regression_fs()
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), dropout=0.5), fs)
    graph = mml.ModelGraph([node], optimizer=mml.Optimizer("sgd", opt_kwargs={"lr": 1e-3}, backend="torch"))
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    graph.build()
    _train(graph, fs, node, loss, 1)
    assert node.model.training
    first, second = _eval_outputs(graph, fs, node), _eval_outputs(graph, fs, node)
    assert not node.model.training
    np.testing.assert_array_equal(first, second)  # dropout is off in evaluation
    _train(graph, fs, node, loss, 1)
    assert node.model.training


def test_a_torch_node_gathers_its_sampler_batch_straight_into_torch_tensors() -> None:
    import torch

    fs = _regression_fs(16)
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,)), fs)
    ctx = ExecutionContext("eval", inputs={(node.node_id, fs.reference()): BatchView(fs, np.arange(8))})
    [(batch, source)] = node.gather_inputs(ctx, detach=True)
    assert source is None
    assert isinstance(batch.features, torch.Tensor)
    assert isinstance(batch.get_role_weights("default"), torch.Tensor)
    np.testing.assert_array_equal(batch.features.numpy(), fs.get_features("numpy")[:8])
    assert batch.to_backend("torch") is batch  # no second conversion before the model
    out = node.forward(batch)
    assert tuple(out.outputs.shape) == (8, 1)


def test_unit_weights_of_a_plain_torch_batch_are_made_as_torch_tensors_when_read() -> None:
    import torch

    fs = _regression_fs(16)
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,)), fs)
    batch = BatchView(fs, np.arange(8)).materialize_batch(node._gather_format)
    out = node.forward(batch)
    for b in (batch, out, out.detach_tensors()):
        weights, mask = b.get_role_weights("default"), b.get_role_mask("default")
        assert isinstance(weights, torch.Tensor)
        assert isinstance(mask, torch.Tensor)
        assert weights.dtype == torch.float32
        assert bool((weights == 1).all())
        assert bool(mask.all())
