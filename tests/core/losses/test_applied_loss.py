from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import modularml as mml
from modularml.batches import Batch, ExecutionContext, SampleData
from modularml.context import ExperimentContext
from modularml.errors import LossError
from modularml_numpy.autograd import Tensor
from modularml_numpy.models import LinearModel


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[ExperimentContext]:
    ctx = ExperimentContext(registration_policy="error")
    with ctx.activate():
        yield ctx


@pytest.fixture
def node():
    fs = mml.FeatureSet.from_dict("d", {"x": np.arange(4.0), "y": np.arange(4.0) * 2}, ["x"], ["y"])
    return fs, mml.ModelNode("m", LinearModel(output_shape=(1,)), fs)


def _mse() -> mml.Loss:
    return mml.Loss("mse", backend="numpy")


def _ctx(node_id, outputs, targets, *, weights=None, masks=None, uuids=None, roles=("default",)) -> ExecutionContext:
    n = outputs.shape[0]
    uuids = np.array([f"u{i}" for i in range(n)]) if uuids is None else uuids
    data = {
        r: SampleData(targets=targets, outputs=Tensor(outputs), features=Tensor(outputs), sample_uuids=uuids)
        for r in roles
    }
    batch = Batch(n, data, weights, masks)
    ctx = ExecutionContext("t")
    ctx.set_output(node_id, batch)
    return ctx


def test_scalar_targets_never_broadcast_against_column_outputs(node) -> None:
    _, m = node
    outputs = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    targets = np.array([1.0, 1.0, 1.0])
    loss = mml.AppliedLoss(_mse(), on=m, inputs=["outputs", "targets"])
    value = loss.compute(_ctx(m.node_id, outputs, targets))
    assert float(value.data) == pytest.approx((0 + 1 + 4) / 3)


def test_value_is_weighted_masked_sum_over_batch_size(node) -> None:
    _, m = node
    outputs = np.zeros((4, 2, 3), dtype=np.float32)
    targets = np.stack([np.full((2, 3), v) for v in (1.0, 2.0, 3.0, 4.0)])
    weights = {"default": np.array([1.0, 0.5, 2.0, 1.0], dtype=np.float32)}
    masks = {"default": np.array([True, True, True, False])}
    loss = mml.AppliedLoss(_mse(), on="m", inputs=["outputs", "targets"], weight=3.0, label="w")
    value = loss.compute(_ctx(m.node_id, outputs, targets, weights=weights, masks=masks))
    per_sample = np.array([1.0, 4.0, 9.0, 16.0])
    expected = (per_sample * weights["default"] * masks["default"]).sum() * 3.0 / 4
    assert float(value.data) == pytest.approx(expected)
    assert loss.label == "w"


def test_mismatched_shapes_raise_naming_both_shapes_and_the_loss(node) -> None:
    _, m = node
    loss = mml.AppliedLoss(_mse(), on=m, inputs=["outputs", "targets"])
    with pytest.raises(LossError, match=r"mse.*outputs of shape \(3, 2\) and targets of shape \(3,\)"):
        loss.compute(_ctx(m.node_id, np.zeros((3, 2), dtype=np.float32), np.zeros(3)))


def test_keyword_inputs_roles_and_mean_role_weight(node) -> None:
    _, m = node
    calls = {}

    def paired(outputs, other):
        calls["shapes"] = (outputs.shape, other.shape)
        return (outputs - other).square().mean(axis=1)

    outputs = np.ones((2, 1), dtype=np.float32)
    weights = {"anchor": np.array([1.0, 1.0], dtype=np.float32), "pair": np.array([0.0, 1.0], dtype=np.float32)}
    ctx = _ctx(m.node_id, outputs, np.zeros(2), weights=weights, roles=("anchor", "pair"))
    loss = mml.AppliedLoss(
        mml.Loss(paired, backend="numpy"), on=m, inputs={"outputs": "outputs.anchor", "other": "targets.pair"}
    )
    value = loss.compute(ctx)
    assert calls["shapes"] == ((2, 1), (2, 1))
    assert float(value.data) == pytest.approx((1 * 0.5 + 1 * 1.0) / 2)
    ambiguous = mml.AppliedLoss(_mse(), on=m, inputs=["outputs", "targets"])
    with pytest.raises(ValueError, match="name one in the loss input"):
        ambiguous.compute(ctx)


def test_featureset_column_reference_input_reads_rows_by_uuid(node) -> None:
    fs, m = node
    uuids = fs.get_sample_uuids()[[2, 0]]
    outputs = np.array([[4.0], [0.0]], dtype=np.float32)
    loss = mml.AppliedLoss(_mse(), on=m, inputs=["outputs", fs.column_reference(target="y")])
    value = loss.compute(_ctx(m.node_id, outputs, None, uuids=np.asarray(uuids)))
    assert float(value.data) == pytest.approx(0.0)


def test_bad_specs_are_refused(node) -> None:
    _, m = node
    with pytest.raises(ValueError, match="Unknown loss input"):
        mml.AppliedLoss(_mse(), on=m, inputs=["features", "targets"])
    with pytest.raises(TypeError):
        mml.AppliedLoss(_mse(), on=3, inputs=["outputs", "targets"])
    with pytest.raises(TypeError):
        mml.AppliedLoss(_mse(), on=m, inputs="outputs")


def test_missing_node_output_is_a_key_error(node) -> None:
    _, m = node
    loss = mml.AppliedLoss(_mse(), on=m, inputs=["outputs", "targets"])
    with pytest.raises(KeyError, match="no output"):
        loss.compute(ExecutionContext("t"))


def test_config_round_trip(node) -> None:
    fs, m = node
    loss = mml.AppliedLoss(_mse(), on=m, inputs=["outputs", fs.column_reference(target="y")], weight=0.5, label="l")
    clone = mml.AppliedLoss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    assert clone.weight == 0.5
    assert clone.node_id == m.node_id


@pytest.mark.parametrize(
    ("weights", "masks"),
    [
        (None, None),  # unit weights, nothing masked: the shortcut that skips the weight product
        ({"default": np.array([1.0, 1.0, 1.0, 0.5], dtype=np.float32)}, None),
        (None, {"default": np.array([True, False, True, True])}),
    ],
)
def test_unit_weight_shortcut_equals_the_weighted_sum(node, weights, masks) -> None:
    _, m = node
    rng = np.random.default_rng(3)
    outputs = rng.normal(size=(4, 1)).astype(np.float32)
    targets = rng.normal(size=4).astype(np.float32)
    loss = mml.AppliedLoss(_mse(), on="m", inputs=["outputs", "targets"], weight=2.0)
    value = loss.compute(_ctx(m.node_id, outputs, targets, weights=weights, masks=masks))
    w = np.ones(4, dtype=np.float32) if weights is None else weights["default"]
    mask = np.ones(4, dtype=bool) if masks is None else masks["default"]
    per_sample = ((outputs - targets[:, None]) ** 2).mean(axis=1)
    expected = (per_sample * (w * mask).astype(np.float32)).sum() * (2.0 / 4)
    assert float(value.data) == pytest.approx(float(expected), rel=1e-6)


def test_uniform_batch_reduction_equals_the_explicit_unit_weight_path(node) -> None:
    _, m = node
    rng = np.random.default_rng(5)
    outputs = rng.normal(size=(4, 2, 3)).astype(np.float32)
    targets = rng.normal(size=(4, 2, 3)).astype(np.float32)
    loss = mml.AppliedLoss(_mse(), on="m", inputs=["outputs", "targets"], weight=0.5)
    plain = _ctx(m.node_id, outputs, targets)
    explicit = _ctx(m.node_id, outputs, targets, weights={"default": np.ones(4, dtype=np.float32)})
    assert plain.outputs[m.node_id].uniform_weights
    assert not explicit.outputs[m.node_id].uniform_weights
    expected = ((outputs - targets) ** 2).mean() * 0.5
    for ctx in (plain, explicit):
        assert float(loss.compute(ctx).data) == pytest.approx(float(expected), rel=1e-6)
