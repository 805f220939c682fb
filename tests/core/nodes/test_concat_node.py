from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.batches import Batch, BatchView, SampleData
from modularml.nodes import ExperimentNodeReference, MergeStrategy
from modularml_numpy.autograd import Tensor


@pytest.fixture
def branches(regression_fs):
    from modularml_numpy.models import LinearModel

    fs = regression_fs()
    a = mml.ModelNode("a", LinearModel(output_shape=(2,)), fs)
    b = mml.ModelNode("b", LinearModel(output_shape=(2,)), fs)
    return fs, a, b


def _concat(branches, axis=0, **kwargs) -> mml.ConcatNode:
    _, a, b = branches
    return mml.ConcatNode("cat", [a, b], axis, register=False, **kwargs)


def _batch(features, targets=None, tags=None, uuids=None) -> Batch:
    n = features.shape[0]
    uuids = np.array([f"u{i}" for i in range(n)]) if uuids is None else uuids
    return Batch(n, {"default": SampleData(features=features, targets=targets, tags=tags, sample_uuids=uuids)})


@pytest.mark.parametrize(
    ("axis", "shapes", "expected"),
    [
        (0, [(1, 16), (1, 16)], (2, 16)),
        (1, [(1, 16, 16), (1, 8, 16)], (1, 24, 16)),
        (2, [(1, 16, 16), (1, 16, 8)], (1, 16, 24)),
        (-1, [(1, 16, 16), (1, 16, 8)], (1, 16, 24)),
        (0, [(3,), (5,)], (8,)),
        (0, [(), ()], (2,)),
    ],
)
def test_concat_axis_excludes_the_batch_dimension(branches, axis, shapes, expected) -> None:
    node = _concat(branches, axis)
    values = [np.ones((4, *s), dtype=np.float32) for s in shapes]
    assert np.shape(node.apply_merge(values)) == (4, *expected)
    assert node.build(list(shapes)) == expected
    assert node.output_shape == expected


def test_concat_without_batch_dim(branches) -> None:
    node = _concat(branches, 0)
    out = node.apply_merge([np.ones((1, 16)), np.zeros((1, 16))], includes_batch_dim=False)
    assert out.shape == (2, 16)


def test_concat_refuses_bad_axes_and_mismatched_shapes(branches) -> None:
    node = _concat(branches, 2)
    with pytest.raises(ValueError, match="out of range"):
        node.apply_merge([np.ones((4, 3, 2)), np.ones((4, 3, 2))])
    node0 = _concat(branches, -1)
    with pytest.raises(ValueError, match=r"differ outside the concat axis.*pad_inputs=True"):
        node0.apply_merge([np.ones((4, 3, 2)), np.ones((4, 5, 2))])
    with pytest.raises(ValueError, match="different ranks"):
        node0.apply_merge([np.ones((4, 3, 2)), np.ones((4, 3))])


@pytest.mark.parametrize(
    ("mode", "np_mode"), [("constant", "constant"), ("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")]
)
def test_padding_modes_pad_non_concat_axes_at_the_end(branches, mode, np_mode) -> None:
    node = _concat(branches, -1, pad_inputs=True, pad_mode=mode, pad_value=7.0)
    small = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    big = np.ones((2, 5, 2), dtype=np.float32)
    out = node.apply_merge([small, big])
    assert out.shape == (2, 5, 4)
    kwargs = {"constant_values": 7.0} if np_mode == "constant" else {}
    expected_small = np.pad(small, ((0, 0), (0, 2), (0, 0)), mode=np_mode, **kwargs)
    np.testing.assert_array_equal(out[..., :2], expected_small)
    np.testing.assert_array_equal(out[..., 2:], big)


def test_unknown_pad_mode_is_refused(branches) -> None:
    with pytest.raises(ValueError, match="Unknown padding mode"):
        _concat(branches, pad_mode="mirror")


def test_concat_of_native_tensors_is_differentiable(branches) -> None:
    node = _concat(branches, 0)
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = Tensor(np.full((2, 2), 2.0, dtype=np.float32), requires_grad=True)
    out = node.apply_merge([x, y])
    assert isinstance(out, Tensor)
    assert out.shape == (2, 5)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))
    np.testing.assert_array_equal(y.grad, np.ones((2, 2)))


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("first", [[1.0], [2.0]]),
        ("last", [[10.0], [20.0]]),
        ("mean", [[5.5], [11.0]]),
        (MergeStrategy.MEAN, [[5.5], [11.0]]),
        (-1, [[1.0, 10.0], [2.0, 20.0]]),
        (0, [[1.0, 10.0], [2.0, 20.0]]),
    ],
)
def test_target_strategies(branches, strategy, expected) -> None:
    node = _concat(branches, 0, concat_axis_targets=strategy)
    b1 = _batch(np.zeros((2, 2)), targets=np.array([[1.0], [2.0]]))
    b2 = _batch(np.ones((2, 2)), targets=np.array([[10.0], [20.0]]))
    merged = node.forward([b1, b2])
    np.testing.assert_allclose(merged.targets, expected)
    assert merged.features.shape == (2, 4)
    np.testing.assert_array_equal(merged.sample_uuids, b1.sample_uuids)


def test_reference_strategy_selects_one_input(branches) -> None:
    _, a, b = branches
    node = mml.ConcatNode(
        "cat", [a, b], concat_axis_targets=b, concat_axis_tags=ExperimentNodeReference("a", a.node_id)
    )
    b1 = _batch(np.zeros((2, 2)), targets=np.array([1.0, 2.0]), tags=np.array(["x", "y"]))
    b2 = _batch(np.ones((2, 2)), targets=np.array([10.0, 20.0]), tags=np.array(["p", "q"]))
    merged = node.forward([b1, b2])
    np.testing.assert_array_equal(merged.targets, [10.0, 20.0])
    np.testing.assert_array_equal(merged.tags, ["x", "y"])
    with pytest.raises(TypeError, match="not an axis"):
        _ = node.target_axis
    assert _concat(branches).target_axis == -1


def test_tag_strategies_and_text_mean_refused(branches) -> None:
    node = _concat(branches, 0, concat_axis_tags="mean")
    b1 = _batch(np.zeros((2, 1)), tags=np.array(["x", "y"]))
    with pytest.raises(ValueError, match="cannot average text"):
        node.forward([b1, b1])
    node_cat = _concat(branches, 0)
    merged = node_cat.forward([b1, b1])
    assert merged.tags.shape == (2, 2)
    assert node_cat.tags_axis == -1


def test_unknown_strategy_refused(branches) -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        _concat(branches, concat_axis_targets="median")


def test_merge_refuses_misaligned_samples(branches) -> None:
    node = _concat(branches, 0)
    b1 = _batch(np.zeros((2, 1)))
    b2 = _batch(np.zeros((2, 1)), uuids=np.array(["u1", "u0"]))
    with pytest.raises(ValueError, match="different samples"):
        node.forward([b1, b2])


def test_concat_node_config_round_trip(branches) -> None:
    _, a, _ = branches
    node = _concat(branches, 1, concat_axis_targets=a, concat_axis_tags="first", pad_inputs=True, pad_mode="reflect")
    clone = mml.ConcatNode.from_config(node.get_config(), register=False)
    assert clone.get_config() == node.get_config()
    assert clone.target_strategy == ExperimentNodeReference("a", a.node_id)


def test_multi_role_batches_flow_through_model_and_concat_nodes(branches) -> None:
    fs, a, b = branches
    view = BatchView(fs, {"anchor": np.arange(4), "pair": np.arange(4, 8)})
    batch = view.materialize_batch("numpy")
    out_a, out_b = a.forward(batch), b.forward(batch)
    merged = _concat(branches, 0, concat_axis_targets="first").forward([out_a, out_b])
    assert merged.roles == ["anchor", "pair"]
    for role in merged.roles:
        data = merged.get_role(role)
        assert tuple(data.features.shape) == (4, 4)
        np.testing.assert_array_equal(data.sample_uuids, batch.get_role(role).sample_uuids)
    np.testing.assert_array_equal(merged.get_role_weights("pair"), batch.get_role_weights("pair"))
