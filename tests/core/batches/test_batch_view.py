"""BatchView: indices per role, masks and weights, gathering into a Batch."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from modularml.batches import Batch, BatchView
from modularml.data import FeatureSet, FeatureSetView
from modularml.errors import ColumnNotFoundError


@pytest.fixture
def fs() -> FeatureSet:
    n = 10
    return FeatureSet.from_dict(
        "cells",
        {
            "voltage": np.arange(n * 4, dtype=np.float32).reshape(n, 4),
            "current": -np.arange(n * 4, dtype=np.float32).reshape(n, 4),
            "soh": np.linspace(0.5, 1.0, n, dtype=np.float32),
            "cell_id": [f"c{i % 3}" for i in range(n)],
        },
        feature_keys=["voltage", "current"],
        target_keys="soh",
        tag_keys="cell_id",
    )


def test_roles_sizes_masks_and_weights(fs: FeatureSet) -> None:
    view = BatchView(fs, {"anchor": [0, 1, 2], "pair": [3, -1, 5]}, {"pair": [0.5, 2.0, 1.5]})
    assert view.roles == ["anchor", "pair"]
    assert view.n_samples == len(view) == 3
    np.testing.assert_array_equal(view.role_masks["pair"], [True, False, True])
    np.testing.assert_array_equal(view.get_role_mask("anchor"), [True, True, True])
    np.testing.assert_array_equal(view.get_role_weights("pair"), [0.5, 0.0, 1.5])
    np.testing.assert_array_equal(view.get_role_weights("anchor"), [1.0, 1.0, 1.0])
    assert view.role_indice_weights is not None
    assert view.role_indices["pair"].dtype == np.int64
    assert not view.role_indices["pair"].flags.writeable
    assert not view.is_fully_masked


def test_a_bare_array_is_the_default_role(fs: FeatureSet) -> None:
    view = BatchView(fs, np.array([4, 2]))
    assert view.roles == ["default"]
    assert view.role_indice_weights is None


def test_invalid_views_are_refused(fs: FeatureSet) -> None:
    with pytest.raises(ValueError, match="same number of samples"):
        BatchView(fs, {"a": [0, 1], "b": [0]})
    with pytest.raises(IndexError, match="beyond the 10 rows"):
        BatchView(fs, [0, 10])
    with pytest.raises(TypeError, match="integer"):
        BatchView(fs, [0.5, 1.0])
    with pytest.raises(ValueError, match="one weight per sample"):
        BatchView(fs, {"a": [0, 1]}, {"a": [1.0]})
    with pytest.raises(ValueError, match="role 'b'"):
        BatchView(fs, {"a": [0, 1]}, {"b": [1.0, 1.0]})
    with pytest.raises(TypeError, match="FeatureSet or FeatureSetView"):
        BatchView(np.zeros(3), [0])
    with pytest.raises(KeyError, match="roles"):
        BatchView(fs, [0]).get_role_mask("pair")


def test_materialize_numpy_gathers_rows_per_role(fs: FeatureSet) -> None:
    view = BatchView(fs, {"anchor": [0, 7], "pair": [3, 9]}, {"pair": [0.25, 0.75]})
    batch = view.materialize_batch("numpy")
    assert isinstance(batch, Batch)
    assert batch.batch_size == 2
    anchor = batch.get_role("anchor")
    voltage = fs.get_features("dict_numpy")["voltage"]
    current = fs.get_features("dict_numpy")["current"]
    np.testing.assert_array_equal(anchor.features, np.stack([voltage[[0, 7]], current[[0, 7]]], axis=1))
    np.testing.assert_array_equal(batch.get_role("pair").targets, fs.get_targets("numpy")[[3, 9]])
    np.testing.assert_array_equal(anchor.sample_uuids, fs.get_sample_uuids()[[0, 7]])
    np.testing.assert_array_equal(batch.get_role("pair").tags, np.array(["c0", "c0"], dtype=object))
    np.testing.assert_array_equal(batch.get_role_weights("pair"), [0.25, 0.75])
    np.testing.assert_array_equal(batch.get_role_weights("anchor"), [1.0, 1.0])
    assert anchor.features.flags.writeable  # a fresh gathered array, never the FeatureSet's cache


def test_materialize_dict_numpy_and_column_selection(fs: FeatureSet) -> None:
    view = BatchView(fs, [1, 2, 3])
    batch = view.materialize_batch("dict_numpy", features="voltage")
    assert list(batch.features) == ["voltage"]
    assert list(batch.targets) == ["soh"]  # a domain nothing selects contributes all its columns
    assert batch.features["voltage"].shape == (3, 4)
    only = view.materialize_batch("numpy", columns=["features.current.raw", "targets.soh.raw"])
    np.testing.assert_array_equal(only.features, fs.get_features("numpy", keys="current")[[1, 2, 3]])
    with pytest.raises(ColumnNotFoundError):
        view.materialize_batch(features="pressure")
    with pytest.raises(ValueError, match="DataFrames"):
        view.materialize_batch("pandas")
    with pytest.raises(ValueError, match="Unknown batch format"):
        view.materialize_batch("parquet")


def test_masked_rows_are_zero_with_zero_weight(fs: FeatureSet) -> None:
    view = BatchView(fs, {"anchor": [2, -1, 4]}, {"anchor": [3.0, 3.0, 3.0]})
    batch = view.materialize_batch()
    np.testing.assert_array_equal(batch.get_role_weights("anchor"), [3.0, 0.0, 3.0])
    np.testing.assert_array_equal(batch.get_role_mask("anchor"), [True, False, True])
    assert not batch.features[1].any()
    assert batch.sample_uuids[1] == ""
    assert batch.tags[1] == ""
    np.testing.assert_array_equal(batch.features[0], fs.get_features("numpy")[2])


def test_fully_masked_views_carry_zero_weight(fs: FeatureSet) -> None:
    view = BatchView(fs, {"anchor": [0, 1, 2], "pair": [3, 4, 5]}, {"pair": [1.0, 2.0, 3.0]})
    masked = view.masked()
    assert masked.is_fully_masked
    assert masked.roles == view.roles
    assert masked.n_samples == 3
    batch = masked.materialize_batch()
    for role in masked.roles:
        assert not batch.get_role_weights(role).any()
        assert not batch.get_role_mask(role).any()
        assert not batch.get_role(role).features.any()
    fresh = BatchView.fully_masked(fs, 4, roles=["anchor", "positive"])
    assert fresh.is_fully_masked
    assert fresh.roles == ["anchor", "positive"]
    assert not fresh.materialize_batch().get_role_weights("positive").any()


def test_role_view_and_view_sources(fs: FeatureSet) -> None:
    view = BatchView(fs, {"anchor": [5, 6], "pair": [1, -1]})
    role_view = view.get_role_view("pair")
    assert isinstance(role_view, FeatureSetView)
    assert role_view.label == "pair"
    np.testing.assert_array_equal(role_view.indices, [1, -1])
    assert len(role_view) == 1  # padding is not a sample
    narrow = fs.select(features="voltage", targets="soh")
    from_view = BatchView(narrow, [0, 1])
    assert from_view.source is fs
    assert from_view.columns == narrow.columns
    batch = from_view.materialize_batch()
    assert batch.features.shape == (2, 4)  # only voltage: current is not a column of the view
    assert batch.tags is None


def test_default_representation_is_transformed_where_it_exists() -> None:
    table = pa.table(
        {
            "features.x.raw": pa.array([1.0, 2.0, 3.0]),
            "features.x.transformed": pa.array([10.0, 20.0, 30.0]),
            "targets.y.raw": pa.array([0.0, 1.0, 0.0]),
        }
    )
    fs = FeatureSet.from_pyarrow_table("reps", table)
    view = BatchView(fs, [0, 2])
    np.testing.assert_array_equal(view.materialize_batch().features, [10.0, 30.0])
    np.testing.assert_array_equal(view.materialize_batch(rep="raw").features, [1.0, 3.0])
    both = view.materialize_batch("dict_numpy", columns=["features.x.raw", "features.x.transformed"])
    assert sorted(both.features) == ["x.raw", "x.transformed"]


# -- the stacked-array cache (one take per domain, not one per column) ------------------------------------
def test_several_feature_columns_are_gathered_from_one_cached_stacked_array(fs: FeatureSet, monkeypatch) -> None:
    collection = fs.collection
    calls: list[tuple[str, ...]] = []
    original = np.stack

    def counting_stack(arrays, *args, **kwargs):
        calls.append(tuple(a.shape for a in arrays))
        return original(arrays, *args, **kwargs)

    monkeypatch.setattr(np, "stack", counting_stack)
    names = ("features.voltage.raw", "features.current.raw")
    first = BatchView(fs, np.array([3, 1, 4])).materialize_batch("numpy")
    second = BatchView(fs, np.array([0, 9])).materialize_batch("numpy")
    assert len(calls) == 1  # built once, reused by the second batch
    stacked = collection.stacked_numpy(names)
    assert stacked is collection.stacked_numpy(names)
    assert not stacked.flags.writeable
    assert len(calls) == 1
    expected = np.stack([collection.to_numpy(n) for n in names], axis=1)
    np.testing.assert_array_equal(first.features, expected[[3, 1, 4]])
    np.testing.assert_array_equal(second.features, expected[[0, 9]])
    assert first.features.flags.c_contiguous


def test_stacked_gather_zeroes_masked_rows_like_per_column_gathers(fs: FeatureSet) -> None:
    view = BatchView(fs, np.array([2, -1, 5]))
    batch = view.materialize_batch("numpy")
    per_column = view.materialize_batch("dict_numpy")
    expected = np.stack([per_column.features["voltage"], per_column.features["current"]], axis=1)
    np.testing.assert_array_equal(batch.features, expected)
    np.testing.assert_array_equal(batch.features[1], 0)


def test_stacked_cache_is_rebuilt_when_a_transformed_column_is_added(fs: FeatureSet) -> None:
    before = BatchView(fs, np.arange(4)).materialize_batch("numpy").features
    old_collection = fs.collection
    fs.fit_transform("Negate", domain="features", keys="voltage")
    assert fs.collection is not old_collection
    after = BatchView(fs, np.arange(4)).materialize_batch("numpy").features
    np.testing.assert_array_equal(after[:, 0], -before[:, 0])  # voltage now reads its transformed column
    np.testing.assert_array_equal(after[:, 1], before[:, 1])
    names = ("features.voltage.transformed", "features.current.raw")
    np.testing.assert_array_equal(
        fs.collection.stacked_numpy(names), np.stack([fs.collection.to_numpy(n) for n in names], axis=1)
    )


def test_only_plain_views_gather_uniform_batches(fs: FeatureSet) -> None:
    assert BatchView(fs, {"anchor": [2, 0, 4]}).materialize_batch().uniform_weights
    assert not BatchView(fs, {"anchor": [2, -1, 4]}).materialize_batch().uniform_weights
    assert not BatchView(fs, {"anchor": [2, 0, 4]}, {"anchor": [1.0, 1.0, 1.0]}).materialize_batch().uniform_weights
    assert not BatchView(fs, {"anchor": [0, 1, 2]}).masked().materialize_batch().uniform_weights


def test_materialize_accepts_a_resolved_format_and_records_it(fs: FeatureSet) -> None:
    from modularml.batches.tensors import resolve_format

    target = resolve_format("numpy")
    batch = BatchView(fs, {"anchor": [2, 0, 4]}).materialize_batch(target)
    np.testing.assert_array_equal(batch.features, fs.get_features("numpy")[[2, 0, 4]])
    assert batch.to_format("numpy") is batch


def test_a_plain_batch_makes_its_unit_weights_and_masks_when_first_read(fs: FeatureSet) -> None:
    batch = BatchView(fs, {"anchor": [2, 0, 4], "other": [1, 3, 5]}).materialize_batch()
    assert batch.uniform_weights
    detached = batch.detach_tensors()  # still implicit: nothing made yet
    for b in (batch, detached, batch.to_format("dict_numpy")):
        assert set(b.role_weights) == {"anchor", "other"}
        weights, mask = b.get_role_weights("other"), b.get_role_mask("other")
        assert weights.dtype == np.float32
        np.testing.assert_array_equal(weights, [1.0, 1.0, 1.0])
        np.testing.assert_array_equal(mask, [True, True, True])
    with pytest.raises(KeyError, match="No role 'missing'"):
        batch.get_role_weights("missing")
    joined = Batch.concat(batch, batch)
    np.testing.assert_array_equal(joined.get_role_weights("anchor"), np.ones(6, dtype=np.float32))
