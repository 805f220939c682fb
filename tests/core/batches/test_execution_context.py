"""ExecutionContext: inputs keyed by (head node, upstream reference), outputs per node, losses."""

from __future__ import annotations

import numpy as np
import pytest

from modularml.batches import Batch, BatchView, ExecutionContext
from modularml.data import FeatureSet


@pytest.fixture
def fs() -> FeatureSet:
    return FeatureSet.from_dict(
        "data", {"x": np.arange(6, dtype=np.float32), "z": np.ones(6), "y": np.arange(6) * 2.0}, ["x", "z"], "y"
    )


def test_inputs_materialise_with_the_reference_columns(fs: FeatureSet) -> None:
    ref = fs.reference(features="x", targets="y")
    ctx = ExecutionContext("train", epoch_idx=2, batch_idx=5)
    ctx.set_input("head", ref, BatchView(fs, [1, 3]))
    assert isinstance(ctx.get_input("head"), BatchView)
    inputs = ctx.materialize_inputs("numpy")
    batch = inputs[("head", ref)]
    assert isinstance(batch, Batch)
    np.testing.assert_array_equal(batch.features, [1.0, 3.0])  # only x: the reference names it
    np.testing.assert_array_equal(batch.targets, [2.0, 6.0])
    assert ctx.get_input("head", ref) is batch
    assert (ctx.phase_label, ctx.epoch_idx, ctx.batch_idx) == ("train", 2, 5)


def test_lookups_outputs_losses_and_errors(fs: FeatureSet) -> None:
    ctx = ExecutionContext("eval")
    view = BatchView(fs, [0])
    ctx.set_input("a", "ref1", view)
    ctx.set_input("a", "ref2", view)
    with pytest.raises(KeyError, match="pass upstream_ref"):
        ctx.get_input("a")
    with pytest.raises(KeyError, match="No input for node 'b'"):
        ctx.get_input("b")
    with pytest.raises(TypeError, match="BatchView or a Batch"):
        ctx.set_input("a", "ref3", np.zeros(3))
    out = view.materialize_batch()
    ctx.set_output("a", out)
    assert ctx.get_output("a") is out
    with pytest.raises(KeyError, match="no output"):
        ctx.get_output("b")
    ctx.add_loss("mse", 0.5)
    with pytest.raises(ValueError, match="already recorded"):
        ctx.add_loss("mse", 0.7)
    detached = ctx.detach_tensors()
    assert detached.losses == {"mse": 0.5}
    assert detached.get_output("a").features is out.features
    with pytest.raises(ValueError, match="epoch_idx"):
        ExecutionContext("x", epoch_idx=-1)
    assert "epoch=0" in repr(ctx)
