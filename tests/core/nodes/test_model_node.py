from __future__ import annotations

import warnings

import numpy as np
import pytest

import modularml as mml
from modularml.batches import Batch, BatchView, ExecutionContext, RoleData, SampleData
from modularml.errors import NodeCollisionError, RegistrationWarning
from modularml_numpy.models import LinearModel


def _sgd(lr: float = 0.1) -> mml.Optimizer:
    return mml.Optimizer("sgd", opt_kwargs={"lr": lr}, backend="numpy")


def _mse() -> mml.Loss:
    return mml.Loss("mse", backend="numpy")


def test_model_node_wraps_base_model_and_refuses_unclaimed_objects(regression_fs) -> None:
    fs = regression_fs()
    node = mml.ModelNode("lin", LinearModel(output_shape=1), fs)
    assert node.backend == "numpy"
    assert node.max_upstream_refs == 1
    assert node.upstream_refs == [mml.FeatureSetReference(node_label=fs.label, node_id=fs.node_id)]  # every column
    with pytest.raises(TypeError, match="no backend claims"):
        mml.ModelNode("raw", object(), fs)


def test_model_node_rejects_optimizer_of_other_backend(regression_fs) -> None:
    fs = regression_fs()
    opt = _sgd()
    opt._backend = mml.Backend.TORCH
    with pytest.raises(ValueError, match="optimizer is for 'torch'"):
        mml.ModelNode("lin", LinearModel(output_shape=1), fs, opt)


def test_model_node_accepts_one_upstream_ref_only(regression_fs) -> None:
    fs, other = regression_fs(), regression_fs("other")
    node = mml.ModelNode("lin", LinearModel(output_shape=1), fs)
    with pytest.raises(ValueError, match="at most 1 upstream"):
        node.set_upstream_refs([fs.reference(), other.reference()])


def test_build_model_infers_shapes_and_builds_optimizer(regression_fs) -> None:
    fs = regression_fs()
    node = mml.ModelNode("lin", LinearModel(output_shape=(2,)), fs, _sgd())
    node.build([(3,)])
    assert node.is_built
    assert node.input_shape == (3,)
    assert node.output_shape == (2,)
    assert node.optimizer.is_built
    assert len(node.parameters()) == 2


def test_forward_maps_only_features_and_keeps_the_input_type(regression_fs) -> None:
    fs = regression_fs(n=8)
    node = mml.ModelNode("lin", LinearModel(output_shape=(1,)), fs)
    batch = BatchView(fs, np.arange(8)).materialize_batch("numpy")
    out = node.forward(batch)
    assert isinstance(out, Batch)
    data = out.role_data["default"]
    assert tuple(data.outputs.shape) == (8, 1)
    assert data.features is data.outputs
    np.testing.assert_array_equal(data.sample_uuids, batch.sample_uuids)
    np.testing.assert_array_equal(np.asarray(data.targets.data), batch.targets)
    np.testing.assert_array_equal(data.tags, batch.tags)
    assert isinstance(node.forward(batch.role_data), RoleData)
    assert isinstance(node.forward_single(batch.role_data["default"]), SampleData)
    with pytest.raises(TypeError):
        node.forward(np.zeros((2, 3)))


def test_node_train_step_learns_and_records_outputs_and_losses(regression_fs) -> None:
    fs = regression_fs()
    node = mml.ModelNode("lin", LinearModel(output_shape=(1,)), fs, _sgd(0.1))
    loss = mml.AppliedLoss(_mse(), on=node, inputs=["outputs", "targets"])
    values = []
    for _ in range(30):
        ctx = ExecutionContext("train", inputs={(node.node_id, fs.reference()): BatchView(fs, np.arange(64))})
        node.train_step(ctx, [loss])
        assert node.node_id in ctx.outputs
        values.append(float(ctx.losses[loss.label].data))
    assert values[-1] < 0.05 * values[0]


def test_node_train_step_refuses_frozen_or_optimizer_less_nodes(regression_fs) -> None:
    fs = regression_fs()
    node = mml.ModelNode("lin", LinearModel(output_shape=(1,)), fs)
    loss = mml.AppliedLoss(_mse(), on=node, inputs=["outputs", "targets"])
    ctx = ExecutionContext("train", inputs={(node.node_id, fs.reference()): BatchView(fs, np.arange(8))})
    with pytest.raises(RuntimeError, match="no optimizer"):
        node.train_step(ctx, [loss])
    node2 = mml.ModelNode("lin2", LinearModel(output_shape=(1,)), fs, _sgd())
    node2.freeze()
    assert node2.is_frozen
    with pytest.raises(RuntimeError, match="frozen"):
        node2.train_step(ctx, [loss])


def test_eval_step_records_without_changing_weights(regression_fs) -> None:
    fs = regression_fs()
    node = mml.ModelNode("lin", LinearModel(output_shape=(1,)), fs, _sgd())
    node.build([(3,)])
    before = node.model.get_weights()
    loss = mml.AppliedLoss(_mse(), on="lin", inputs=["outputs", "targets"])
    ctx = ExecutionContext("eval", inputs={(node.node_id, fs.reference()): BatchView(fs, np.arange(8))})
    node.eval_step(ctx, [loss])
    assert not ctx.losses[loss.label].requires_grad
    after = node.model.get_weights()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_fit_step_calls_fit_on_the_wrapped_model(regression_fs, mean_fit_model_cls) -> None:
    fs = regression_fs()
    model = mean_fit_model_cls()
    node = mml.ModelNode("mean", model, fs)
    assert node.is_fittable
    ctx = ExecutionContext("fit", inputs={(node.node_id, fs.reference()): BatchView(fs, np.arange(64))})
    node.fit_step(ctx)
    assert model.fit_calls == 1
    expected = float(np.mean(fs.get_data(fmt="numpy", columns=["targets.y.raw"])))
    assert model.value == pytest.approx(expected)
    np.testing.assert_allclose(ctx.outputs[node.node_id].outputs.data, expected, rtol=1e-6)
    node.freeze()
    with pytest.raises(RuntimeError, match="frozen"):
        node.fit_step(ctx)


def test_fit_step_refuses_models_without_fit(regression_fs) -> None:
    fs = regression_fs()
    node = mml.ModelNode("lin", LinearModel(output_shape=(1,)), fs)
    ctx = ExecutionContext("fit", inputs={(node.node_id, fs.reference()): BatchView(fs, np.arange(8))})
    with pytest.raises(RuntimeError, match="has no fit"):
        node.fit_step(ctx)


def test_model_node_config_and_state_round_trip(regression_fs, fresh_context) -> None:
    fs = regression_fs()
    node = mml.ModelNode("lin", LinearModel(output_shape=(1,)), fs, _sgd(0.05))
    node.build([(3,)])
    node.freeze()
    config = node.get_config()
    state = node.get_state()
    clone = mml.ModelNode.from_config(config, register=False)
    clone.set_state(state)
    assert clone.label == "lin"
    assert clone.node_id == node.node_id
    assert clone.is_frozen
    assert clone.optimizer.kwargs == {"lr": 0.05}
    for key, value in node.model.get_weights().items():
        np.testing.assert_array_equal(clone.model.get_weights()[key], value)


@pytest.mark.parametrize("policy", ["error", "overwrite", "overwrite_warn", "no_register"])
def test_label_collisions_follow_the_registration_policy(regression_fs, fresh_context, policy) -> None:
    fs = regression_fs()
    first = mml.ModelNode("lin", LinearModel(output_shape=1), fs)
    fresh_context.set_registration_policy(policy)
    if policy == "error":
        with pytest.raises(NodeCollisionError):
            mml.ModelNode("lin", LinearModel(output_shape=1), fs)
        assert fresh_context.get_node(label="lin") is first
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = mml.ModelNode("lin", LinearModel(output_shape=1), fs)
    warned = any(issubclass(w.category, RegistrationWarning) for w in caught)
    assert warned == (policy == "overwrite_warn")
    expected = first if policy == "no_register" else second
    assert fresh_context.get_node(label="lin") is expected


def test_a_featureset_upstream_reads_transformed_data_added_after_the_node(regression_fs) -> None:
    fs = regression_fs()
    node = mml.ModelNode("lin", LinearModel(output_shape=(1,)), fs, _sgd())
    node.build([(3,)])
    fs.fit_transform("Negate", domain="targets")  # scaled after the node was created
    ctx = ExecutionContext("eval", inputs={(node.node_id, fs.reference()): BatchView(fs, np.arange(8))})
    node.eval_step(ctx)
    raw = fs.get_targets("numpy", rep="raw")[:8]
    np.testing.assert_array_equal(np.asarray(ctx.get_output(node.node_id).targets).reshape(-1), -raw)


def test_forward_keeps_the_batch_format_for_native_outputs_and_checks_their_batch_axis(regression_fs) -> None:
    fs = regression_fs(n=8)
    node = mml.ModelNode("lin", LinearModel(output_shape=1), fs)
    batch = BatchView(fs, np.arange(6)).materialize_batch(node._gather_format)
    out = node.forward(batch)
    assert out.outputs.shape == (6, 1)
    assert out.to_backend("numpy") is out  # outputs are native tensors: no conversion for the next node

    class WrongBatch(LinearModel):
        def forward(self, x, **kwargs):
            return super().forward(x, **kwargs)[:2]

    bad = mml.ModelNode("bad", WrongBatch(output_shape=1), fs)
    with pytest.raises(ValueError, match="outputs have 2 samples on their batch axis; the batch size is 6"):
        bad.forward(batch)

    class PlainArrays(LinearModel):
        def forward(self, x, **kwargs):
            return np.zeros((x.shape[0], 1), dtype=np.float32)  # not the backend's tensor type

    plain = mml.ModelNode("plain", PlainArrays(output_shape=1), fs)
    converted = plain.forward(batch)
    assert converted.to_backend("numpy") is not converted  # the format is no longer promised
