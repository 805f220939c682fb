from __future__ import annotations

import numpy as np
import pytest

from modularml.batches import Batch
from modularml.phases import EvalPhase, TrainPhase
from modularml.results import AxisSeries


def _grid() -> AxisSeries:
    """loss x epoch x batch -> 100 * loss_index + 10 * epoch + batch (inserted out of order)."""
    data = {
        (loss, epoch, batch): float(100 * i + 10 * epoch + batch)
        for i, loss in enumerate(["mae", "mse"])
        for epoch in (2, 0, 1)
        for batch in (1, 0)
    }
    return AxisSeries(("loss", "epoch", "batch"), data, name="grid")


def test_construction_sorts_keys_and_exposes_axes_and_values() -> None:
    s = _grid()
    assert s.axes == ("loss", "epoch", "batch")
    assert len(s) == 12
    assert s.keys()[:3] == [("mae", 0, 0), ("mae", 0, 1), ("mae", 1, 0)]
    assert s.values[:4] == [0.0, 1.0, 10.0, 11.0]
    assert list(s) == s.values
    assert s.axes_values() == {"loss": ["mae", "mse"], "epoch": [0, 1, 2], "batch": [0, 1]}
    assert s.axes_values("epoch") == [0, 1, 2]
    assert ("mse", 2, 1) in s
    assert s[("mse", 2, 1)] == 121.0
    assert s.to_dict()[("mae", 1, 1)] == 11.0
    one_axis = AxisSeries(("epoch",), {3: "c", 1: "a"})
    assert one_axis[1] == "a"
    assert one_axis.items() == [((1,), "a"), ((3,), "c")]


def test_where_filters_by_literal_collection_and_predicate() -> None:
    s = _grid()
    only_mse = s.where(loss="mse")
    assert only_mse.axes == s.axes
    assert len(only_mse) == 6
    assert all(key[0] == "mse" for key in only_mse.keys())  # noqa: SIM118 (iterating a series yields values)
    late = s.where(epoch=lambda e: e >= 1, batch={0})
    assert late.keys() == [("mae", 1, 0), ("mae", 2, 0), ("mse", 1, 0), ("mse", 2, 0)]
    assert len(s.where(epoch=7)) == 0


def test_select_fixes_axes_and_drops_them() -> None:
    s = _grid()
    epoch_two = s.select(epoch=2)
    assert epoch_two.axes == ("loss", "batch")
    assert epoch_two.to_dict() == {("mae", 0): 20.0, ("mae", 1): 21.0, ("mse", 0): 120.0, ("mse", 1): 121.0}
    per_batch = s.select(loss="mse", epoch=1)
    assert per_batch.axes == ("batch",)
    assert per_batch.values == [110.0, 111.0]


def test_at_one_first_last() -> None:
    s = _grid()
    assert s.at(loss="mae", epoch=1, batch=1) == 11.0
    assert s.where(loss="mse", epoch=0, batch=1).one() == 101.0
    assert s.first() == 0.0
    assert s.last() == 121.0
    last_epoch = s.last("epoch")
    assert last_epoch.axes == ("loss", "batch")
    assert last_epoch.values == [20.0, 21.0, 120.0, 121.0]
    assert s.first("loss").axes == ("epoch", "batch")
    assert s.first("loss").values == [0.0, 1.0, 10.0, 11.0, 20.0, 21.0]


def test_collapse_reduces_one_axis() -> None:
    s = _grid()
    mean_over_batches = s.collapse("batch", "mean")
    assert mean_over_batches.axes == ("loss", "epoch")
    assert mean_over_batches.at(loss="mse", epoch=2) == pytest.approx(120.5)
    assert s.collapse("batch", "sum").at(loss="mae", epoch=1) == 21.0
    assert s.collapse("epoch", "max").at(loss="mae", batch=0) == 20.0
    assert s.collapse("epoch", "min").at(loss="mse", batch=1) == 101.0
    assert s.collapse("epoch", "first").at(loss="mse", batch=0) == 100.0
    assert s.collapse("epoch", "last").at(loss="mse", batch=0) == 120.0
    assert s.collapse("batch", "list").at(loss="mae", epoch=0) == [0.0, 1.0]
    assert s.collapse("batch", lambda values: len(values)).values == [2] * 6
    total = s.collapse("batch", "sum").collapse("epoch", "sum").collapse("loss", "sum")
    assert total.axes == ()
    assert total.one() == pytest.approx(sum(s.values))


def test_collapse_of_arrays_is_elementwise_and_concat_joins_batches() -> None:
    arrays = AxisSeries(("epoch", "batch"), {(0, 0): np.array([1.0, 2.0]), (0, 1): np.array([3.0, 6.0])})
    np.testing.assert_allclose(arrays.collapse("batch", "mean").one(), [2.0, 4.0])
    np.testing.assert_allclose(arrays.collapse("batch", "concat").one(), [1.0, 2.0, 3.0, 6.0])
    doubled = arrays.map(lambda a: a * 2)
    np.testing.assert_allclose(doubled.at(epoch=0, batch=1), [6.0, 12.0])


def test_squeeze_drops_single_valued_axes() -> None:
    s = _grid().where(loss="mse", epoch=1)
    squeezed = s.squeeze()
    assert squeezed.axes == ("batch",)
    assert squeezed.values == [110.0, 111.0]
    single = _grid().where(loss="mae", epoch=0, batch=0).squeeze()
    assert single.axes == ()
    assert single.one() == 0.0
    full = _grid()
    assert full.squeeze() is full


def test_equality_and_repr() -> None:
    assert _grid() == _grid()
    assert _grid() != _grid().where(loss="mse")
    assert "axes=['loss', 'epoch', 'batch']" in repr(_grid())
    assert "n=12" in repr(_grid())


def test_errors_name_the_axis_the_key_and_what_exists() -> None:
    s = _grid()
    with pytest.raises(KeyError, match=r"no axis 'fold'.*\['loss', 'epoch', 'batch'\]"):
        s.where(fold=1)
    with pytest.raises(KeyError, match="no entry at"):
        s.select(epoch=9)
    with pytest.raises(ValueError, match=r"missing \['batch'\]"):
        s.at(loss="mse", epoch=0)
    with pytest.raises(KeyError, match="no value at"):
        s.at(loss="mse", epoch=0, batch=5)
    with pytest.raises(ValueError, match=r"exactly one value.*holds 12"):
        s.one()
    with pytest.raises(ValueError, match="Unknown reducer 'avg'"):
        s.collapse("batch", "avg")
    with pytest.raises(KeyError, match="has no key"):
        s[("mse", 0)]
    with pytest.raises(ValueError, match="empty"):
        AxisSeries(("epoch",)).last()
    with pytest.raises(ValueError, match="unique"):
        AxisSeries(("epoch", "epoch"))
    with pytest.raises(ValueError, match="has 1 entries"):
        AxisSeries(("epoch", "batch"), {(0,): 1.0})
    with pytest.raises(TypeError, match="sequence of axis names"):
        AxisSeries("epoch")


def test_results_queries_return_axis_series(linear_setup) -> None:
    import modularml as mml

    s = linear_setup()
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    phase = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=2)
    results = phase.execute(show_sampler_progress=False, show_training_progress=False)
    batches = results.batches(s.head)
    assert batches.axes == ("epoch", "batch")
    assert batches.keys() == [(e, b) for e in range(2) for b in range(3)]
    assert all(isinstance(b, Batch) for b in batches)
    outputs = results.tensors(s.head, "outputs", fmt="np")
    assert outputs.axes == ("epoch", "batch")
    assert outputs.at(epoch=1, batch=2).shape == (16, 1)
    per_epoch = outputs.collapse("batch", "concat")
    np.testing.assert_allclose(per_epoch.at(epoch=1), results.stacked_tensors(s.head, "outputs", epoch=1, fmt="np"))
    targets = results.tensors(s.head, "targets", unscale=True).select(epoch=0)
    np.testing.assert_allclose(
        np.concatenate(targets.values), results.stacked_tensors(s.head, "targets", epoch=0, unscale=True)
    )
    losses = results.losses(s.head)
    epoch_means = losses.select(loss=s.loss.label).collapse("batch", "mean")
    assert epoch_means.values == pytest.approx(list(results.epoch_losses().values()))
    assert results.metrics().series("train_loss").values == pytest.approx(list(results.epoch_losses().values()))
    assert results.metrics().series("train_loss", level="batch").keys() == batches.keys()
    with pytest.raises(ValueError, match="'epoch' or 'batch'"):
        results.metrics().series("train_loss", level="step")
    with pytest.raises(ValueError, match="unscale=True applies"):
        results.tensors(s.head, "tags", unscale=True)
    evaluation = EvalPhase.from_split("val", split="val", losses=[s.loss], batch_size=4).execute()
    assert evaluation.losses(s.head).axes_values("batch") == [0, 1, 2, 3]
