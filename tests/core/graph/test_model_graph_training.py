from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.batches import BatchView, ExecutionContext
from modularml_numpy.models import LinearModel


def _sgd(lr: float = 0.05) -> mml.Optimizer:
    return mml.Optimizer("sgd", opt_kwargs={"lr": lr}, backend="numpy")


def _mse() -> mml.Loss:
    return mml.Loss("mse", backend="numpy")


def _ctx(fs, heads, n=None, phase="train") -> ExecutionContext:
    rows = np.arange(len(fs) if n is None else n)
    return ExecutionContext(phase, inputs={(h.node_id, fs.reference()): BatchView(fs, rows) for h in heads})


def _loss_value(ctx, loss) -> float:
    return float(np.asarray(mml.get_backend("numpy").to_numpy(ctx.losses[loss.label])))


def _weights(node) -> dict[str, np.ndarray]:
    return node.model.get_weights()


def _train(graph, fs, heads, losses, steps) -> list[float]:
    values = []
    for _ in range(steps):
        ctx = _ctx(fs, heads)
        graph.train_step(ctx, losses)
        values.append(sum(_loss_value(ctx, loss) for loss in losses))
    return values


def test_stage_wise_training_reduces_the_loss(regression_fs) -> None:
    fs = regression_fs()
    a = mml.ModelNode("enc", LinearModel(output_shape=(4,)), fs, _sgd())
    head = mml.ModelNode("head", LinearModel(output_shape=(1,)), a, _sgd())
    graph = mml.ModelGraph([a, head])
    loss = mml.AppliedLoss(_mse(), on=head, inputs=["outputs", "targets"])
    graph.build()
    enc_before = _weights(a)
    values = _train(graph, fs, [a], [loss], 200)
    assert values[-1] < 0.1 * values[0]
    # Stage-wise: the encoder carries no loss, so it is not trained (inputs are detached at node boundaries).
    for key, value in enc_before.items():
        np.testing.assert_array_equal(_weights(a)[key], value)


def test_stage_wise_trains_each_node_on_its_own_losses(regression_fs) -> None:
    fs = regression_fs()
    a = mml.ModelNode("a", LinearModel(output_shape=(1,)), fs, _sgd())
    b = mml.ModelNode("b", LinearModel(output_shape=(1,)), a, _sgd())
    graph = mml.ModelGraph([a, b])
    la = mml.AppliedLoss(_mse(), on=a, inputs=["outputs", "targets"])
    lb = mml.AppliedLoss(_mse(), on=b, inputs=["outputs", "targets"])
    values = _train(graph, fs, [a], [la, lb], 60)
    assert values[-1] < 0.1 * values[0]


def test_global_optimizer_trains_end_to_end(regression_fs) -> None:
    fs = regression_fs()
    a = mml.ModelNode("enc", LinearModel(output_shape=(4,)), fs)
    head = mml.ModelNode("head", LinearModel(output_shape=(1,)), a)
    graph = mml.ModelGraph([a, head], optimizer=_sgd(0.03))
    assert graph.backend == "numpy"
    loss = mml.AppliedLoss(_mse(), on=head, inputs=["outputs", "targets"])
    graph.build()
    enc_before = _weights(a)
    values = _train(graph, fs, [a], [loss], 80)
    assert values[-1] < 0.05 * values[0]
    assert not np.array_equal(_weights(a)["weight"], enc_before["weight"])
    params = graph.get_optimizer_parameters()
    assert params["contributing_nodes"] == {a.node_id, head.node_id}
    assert len(params["parameters"]) == 4


def test_global_optimizer_makes_one_backward_and_one_step(regression_fs, monkeypatch) -> None:
    fs = regression_fs()
    a = mml.ModelNode("a", LinearModel(output_shape=(1,)), fs)
    b = mml.ModelNode("b", LinearModel(output_shape=(1,)), a)
    graph = mml.ModelGraph([a, b], optimizer=_sgd())
    la = mml.AppliedLoss(_mse(), on=a, inputs=["outputs", "targets"], label="la")
    lb = mml.AppliedLoss(_mse(), on=b, inputs=["outputs", "targets"], weight=2.0, label="lb")
    impl = mml.get_backend("numpy")
    calls = []
    original = type(impl).apply_gradients

    def spy(self, loss, optimizer, parameters, scope):
        calls.append(float(loss.data))
        return original(self, loss, optimizer, parameters, scope)

    monkeypatch.setattr(type(impl), "apply_gradients", spy)
    ctx = _ctx(fs, [a])
    graph.train_step(ctx, [la, lb])
    assert len(calls) == 1
    assert calls[0] == pytest.approx(_loss_value(ctx, la) + _loss_value(ctx, lb), rel=1e-6)


def test_training_through_a_concat_merge(regression_fs) -> None:
    fs = regression_fs()
    left = mml.ModelNode("left", LinearModel(output_shape=(3,)), fs.reference(features=["a", "b"]))
    right = mml.ModelNode("right", LinearModel(output_shape=(3,)), fs.reference(features=["c"]))
    cat = mml.ConcatNode("cat", [left, right], concat_axis_targets="first", concat_axis_tags="first")
    head = mml.ModelNode("head", LinearModel(output_shape=(1,)), cat)
    graph = mml.ModelGraph([left, right, cat, head], optimizer=_sgd(0.03))
    loss = mml.AppliedLoss(_mse(), on=head, inputs=["outputs", "targets"])
    graph.build()
    assert cat.output_shape == (6,)
    before = {n.label: _weights(n)["weight"].copy() for n in (left, right)}
    ctx = ExecutionContext(
        "train",
        inputs={
            (left.node_id, left.upstream_refs[0]): BatchView(fs, np.arange(64)),
            (right.node_id, right.upstream_refs[0]): BatchView(fs, np.arange(64)),
        },
    )
    graph.train_step(ctx, [loss])
    merged = ctx.outputs[cat.node_id]
    assert merged.batch_size == 64
    np.testing.assert_array_equal(merged.sample_uuids, fs.get_sample_uuids())
    assert tuple(merged.targets.shape) == (64,)
    np.testing.assert_array_equal(np.asarray(merged.targets.data), fs.get_data(fmt="numpy", columns=["targets.y.raw"]))
    for node in (left, right):
        assert not np.array_equal(_weights(node)["weight"], before[node.label]), node.label
    values = []
    for _ in range(80):
        ctx = ExecutionContext(
            "train",
            inputs={
                (left.node_id, left.upstream_refs[0]): BatchView(fs, np.arange(64)),
                (right.node_id, right.upstream_refs[0]): BatchView(fs, np.arange(64)),
            },
        )
        graph.train_step(ctx, [loss])
        values.append(_loss_value(ctx, loss))
    assert values[-1] < 0.05 * values[0]


@pytest.mark.parametrize("global_optimizer", [False, True])
def test_freeze_stops_parameter_changes(regression_fs, global_optimizer) -> None:
    fs = regression_fs()
    opt = (lambda: None) if global_optimizer else _sgd
    enc = mml.ModelNode("enc", LinearModel(output_shape=(1,)), fs, opt())
    head = mml.ModelNode("head", LinearModel(output_shape=(1,)), enc, opt())
    graph = mml.ModelGraph([enc, head], optimizer=_sgd() if global_optimizer else None)
    losses = [
        mml.AppliedLoss(_mse(), on=head, inputs=["outputs", "targets"], label="head_loss"),
        mml.AppliedLoss(_mse(), on=enc, inputs=["outputs", "targets"], label="enc_loss"),
    ]
    graph.build()
    graph.freeze(["enc"])
    enc_before, head_before = _weights(enc), _weights(head)
    graph.train_step(_ctx(fs, [enc]), losses)
    for key, value in enc_before.items():
        np.testing.assert_array_equal(_weights(enc)[key], value)
    assert not np.array_equal(_weights(head)["weight"], head_before["weight"])
    if global_optimizer:
        assert graph.get_optimizer_parameters()["contributing_nodes"] == {head.node_id}
    graph.unfreeze()
    graph.train_step(_ctx(fs, [enc]), losses)
    assert not np.array_equal(_weights(enc)["weight"], enc_before["weight"])


def test_eval_step_records_outputs_and_losses_without_gradients(regression_fs) -> None:
    fs = regression_fs()
    a = mml.ModelNode("a", LinearModel(output_shape=(1,)), fs, _sgd())
    graph = mml.ModelGraph([a])
    loss = mml.AppliedLoss(_mse(), on=a, inputs=["outputs", "targets"])
    graph.build()
    before = _weights(a)
    ctx = _ctx(fs, [a], phase="eval")
    graph.eval_step(ctx, [loss])
    assert a.node_id in ctx.outputs
    assert not ctx.losses[loss.label].requires_grad
    assert not ctx.outputs[a.node_id].outputs.requires_grad
    np.testing.assert_array_equal(_weights(a)["weight"], before["weight"])


def test_fit_step_fits_fittable_nodes_and_forwards_the_others(regression_fs, mean_fit_model_cls) -> None:
    fs = regression_fs()
    fit_node = mml.ModelNode("mean", mean_fit_model_cls(), fs)
    lin = mml.ModelNode("lin", LinearModel(output_shape=(1,)), fs)
    after = mml.ModelNode("after", LinearModel(output_shape=(1,)), fit_node)
    graph = mml.ModelGraph([fit_node, lin, after])
    loss = mml.AppliedLoss(_mse(), on=fit_node, inputs=["outputs", "targets"])
    ctx = _ctx(fs, [fit_node, lin], phase="fit")
    graph.fit_step(ctx, [loss])
    assert fit_node.model.fit_calls == 1
    assert set(ctx.outputs) == {fit_node.node_id, lin.node_id, after.node_id}
    assert loss.label in ctx.losses
    assert fit_node.is_frozen
    assert not lin.is_frozen
    graph.unfreeze()
    graph.fit_step(_ctx(fs, [fit_node, lin], phase="fit"), freeze_after_fit=False)
    assert fit_node.model.fit_calls == 2
    assert not fit_node.is_frozen


def test_train_step_without_any_optimizer_is_refused(regression_fs) -> None:
    fs = regression_fs()
    a = mml.ModelNode("a", LinearModel(output_shape=(1,)), fs)
    graph = mml.ModelGraph([a])
    loss = mml.AppliedLoss(_mse(), on=a, inputs=["outputs", "targets"])
    with pytest.raises(ValueError, match="no node trained"):
        graph.train_step(_ctx(fs, [a]), [loss])


def test_steps_follow_changes_of_losses_active_nodes_and_the_graph(regression_fs) -> None:
    # train_step decides the order and the losses per node once and reuses that while nothing changes.
    fs = regression_fs()
    a = mml.ModelNode("a", LinearModel(output_shape=(1,)), fs, _sgd())
    b = mml.ModelNode("b", LinearModel(output_shape=(1,)), fs, _sgd())
    graph = mml.ModelGraph([a, b])
    la = mml.AppliedLoss(_mse(), on=a, inputs=["outputs", "targets"])
    lb = mml.AppliedLoss(_mse(), on=b, inputs=["outputs", "targets"])
    graph.build()

    def changed(step) -> set[str]:
        before = {n.label: _weights(n)["weight"] for n in (a, b)}
        step()
        return {n.label for n in (a, b) if not np.array_equal(_weights(n)["weight"], before[n.label])}

    assert changed(lambda: graph.train_step(_ctx(fs, [a, b]), [la])) == {"a"}
    assert changed(lambda: graph.train_step(_ctx(fs, [a, b]), [la])) == {"a"}
    assert changed(lambda: graph.train_step(_ctx(fs, [a, b]), [lb])) == {"b"}
    assert changed(lambda: graph.train_step(_ctx(fs, [a, b]), [la, lb], active_nodes=["a"])) == {"a"}
    assert changed(lambda: graph.train_step(_ctx(fs, [a, b]), [la, lb])) == {"a", "b"}

    c = mml.ModelNode("c", LinearModel(output_shape=(1,)), a, _sgd())
    lc = mml.AppliedLoss(_mse(), on=c, inputs=["outputs", "targets"])
    graph.add_node(c)
    ctx = _ctx(fs, [a, b])
    graph.train_step(ctx, [la, lb, lc])  # builds c, then trains all three
    assert c.node_id in ctx.outputs
    assert lc.label in ctx.losses
    c_before = _weights(c)["weight"]
    graph.remove_node(c)
    ctx = _ctx(fs, [a, b])
    graph.train_step(ctx, [la, lb, lc])  # c's loss no longer applies
    assert c.node_id not in ctx.outputs
    assert lc.label not in ctx.losses
    np.testing.assert_array_equal(_weights(c)["weight"], c_before)
