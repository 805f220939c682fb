from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from modularml.data import FeatureSet, FeatureSetView
from modularml.errors import ColumnNotFoundError, InvalidArgumentError, InvalidTypeError, ModularMLWarning


@pytest.fixture
def fs() -> FeatureSet:
    n = 10
    return FeatureSet.from_dict(
        "base",
        {
            "x": np.arange(n * 3, dtype=np.float64).reshape(n, 3),
            "y": np.arange(n, dtype=np.float64) / 10,
            "cell": [f"c{i % 3}" for i in range(n)],
            "temp": np.array([10, 20, 30, 40, np.nan, 10, 20, 30, 40, 50], dtype=float),
        },
        feature_keys="x",
        target_keys="y",
        tag_keys=["cell", "temp"],
    )


def test_view_holds_indices_not_data(fs: FeatureSet) -> None:
    view = fs.to_view()
    assert view.source is fs
    assert view.indices.tolist() == list(range(10))
    assert view.indices.dtype == np.int64
    assert not view.indices.flags.writeable
    assert view.columns == fs.get_all_keys()
    with pytest.raises(AttributeError):
        view.indices = np.arange(2)  # type: ignore[misc]


def test_view_constructor_validates(fs: FeatureSet) -> None:
    with pytest.raises(IndexError, match="10 is out of range"):
        FeatureSetView(fs, [10], fs.get_all_keys())
    with pytest.raises(InvalidTypeError, match="integer"):
        FeatureSetView(fs, [0.5], fs.get_all_keys())
    with pytest.raises(ColumnNotFoundError, match=r"features.z.raw"):
        FeatureSetView(fs, [0], ["features.z.raw"])
    caller = np.array([1, 2])
    view = FeatureSetView(fs, caller, ["features.x.raw"], label="v")
    caller[0] = 5
    assert view.indices.tolist() == [1, 2]


def test_negative_indices_are_padding(fs: FeatureSet) -> None:
    view = FeatureSetView(fs, np.array([2, -1, 4]), fs.get_all_keys())
    assert view.indices.tolist() == [2, -1, 4]
    assert view.valid_indices.tolist() == [2, 4]
    assert len(view) == 2
    assert view.get_targets("np").tolist() == [0.2, 0.4]


def test_view_of_a_million_rows_allocates_no_feature_data() -> None:
    n = 1_000_000
    fs = FeatureSet.from_dict("big", {"x": np.zeros((n, 16), dtype=np.float32)}, "x", [])
    tracemalloc.start()
    view = fs.to_view()
    split = view.take(np.arange(0, n, 2))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    feature_bytes = fs.collection.table.column("features.x.raw").nbytes
    assert peak < 3 * 8 * n  # index arrays only (int64), far below the 64 MB of features
    assert peak < feature_bytes / 3
    assert len(split) == n // 2


def test_take_is_relative_to_the_view(fs: FeatureSet) -> None:
    view = fs.take([9, 7, 5, 3])
    assert view.take([0, -1]).indices.tolist() == [9, 3]
    with pytest.raises(IndexError, match="position 4 is out of range for 4"):
        view.take([4])
    with pytest.raises(InvalidTypeError, match="integer positions"):
        view.take([[0]])


def test_filter_with_literals_collections_and_predicates(fs: FeatureSet) -> None:
    assert fs.filter(cell="c1").indices.tolist() == [1, 4, 7]
    assert fs.filter(cell=["c1", "c2"]).indices.tolist() == [1, 2, 4, 5, 7, 8]
    assert fs.filter(y=lambda v: v >= 0.7).indices.tolist() == [7, 8, 9]
    assert fs.filter(temp=float("nan")).indices.tolist() == [4]
    assert fs.filter({"tags.temp.raw": {10.0, 50.0}}).indices.tolist() == [0, 5, 9]
    # a predicate on an array-valued column, written per sample, falls back to per-sample calls
    assert fs.filter(x=lambda row: float(row.max()) > 25).indices.tolist() == [8, 9]
    assert fs.filter(x=lambda arr: arr[:, 0] == 3).indices.tolist() == [1]
    # filters compose and respect the view's rows
    assert fs.take([1, 4, 5]).filter(cell="c1", y=lambda v: v > 0.3).indices.tolist() == [4]


def test_filter_errors(fs: FeatureSet) -> None:
    with pytest.raises(ColumnNotFoundError, match="No column matches 'nope'"):
        fs.filter(nope=1)
    with pytest.raises(InvalidTypeError, match="Use a predicate"):
        fs.filter(x=3)
    with pytest.raises(InvalidArgumentError, match=r"predicate for column 'targets.y.raw' failed"):
        fs.filter(y=lambda v: 1 / 0)
    with pytest.raises(InvalidArgumentError, match="at least one condition"):
        fs.filter()
    with pytest.warns(ModularMLWarning, match="No samples"):
        assert len(fs.filter(cell="zz")) == 0


def test_select_columns(fs: FeatureSet) -> None:
    view = fs.select(features="*", tags="cell")
    assert view.columns == ["features.x.raw", "tags.cell.raw"]
    assert view.indices.tolist() == list(range(10))
    assert fs.select(["targets.y.raw"]).columns == ["targets.y.raw"]
    assert fs.select(columns="*.raw", rep="raw").columns == fs.get_all_keys()
    with pytest.raises(InvalidArgumentError, match="at least one selector"):
        fs.select()
    narrowed = view.select(tags="cell")
    assert narrowed.columns == ["tags.cell.raw"]
    with pytest.raises(ColumnNotFoundError):
        narrowed.select(features="x")
    assert narrowed.expand_columns().columns == fs.get_all_keys()


def test_expand_columns_label(fs: FeatureSet) -> None:
    view = FeatureSetView.from_featureset(fs, rows=np.array([1, 2]), columns=["targets.y.raw"], label="v")
    assert view.expand_columns().label == "v_expanded"
    assert view.expand_columns(label="w").label == "w"
    assert view.expand_columns().indices is view.indices


def test_take_sample_uuids_in_the_given_order(fs: FeatureSet) -> None:
    uuids = fs.get_sample_uuids()
    view = fs.take_sample_uuids([uuids[5], uuids[2]])
    assert view.indices.tolist() == [5, 2]
    with pytest.raises(KeyError, match="not in"):
        fs.take_sample_uuids(["nope"])


def test_overlap_by_index_and_by_uuid(fs: FeatureSet) -> None:
    a, b = fs.take([0, 1, 2, 3]), fs.take([3, 4, 5])
    assert not a.is_disjoint_with(b)
    assert a.get_overlap_with(b) == [fs.get_sample_uuids()[3]]
    assert a.is_disjoint_with(fs.take([7, 8]))
    assert a.take_intersection(b).indices.tolist() == [3]
    assert a.take_difference(b).indices.tolist() == [0, 1, 2]
    copy = fs.copy(label="other")  # same samples (UUIDs), other source
    other = copy.take([2, 9])
    assert a.get_overlap_with(other) == [fs.get_sample_uuids()[2]]
    assert not other.is_disjoint_with(a)
    assert fs.is_disjoint_with(fs.to_featureset("fresh").take([0])) is False
    with pytest.raises(InvalidTypeError):
        a.is_disjoint_with([1, 2])


def test_to_featureset_materialises_rows_and_columns(fs: FeatureSet) -> None:
    view = fs.take([4, 2]).select(features="x", tags="cell")
    new = view.to_featureset("small")
    assert new.get_all_keys() == ["features.x.raw", "tags.cell.raw"]
    assert new.get_features("np").tolist() == fs.get_features("np")[[4, 2]].tolist()
    assert new.get_sample_uuids().tolist() == fs.get_sample_uuids()[[4, 2]].tolist()
    assert new.n_splits == 0


def test_view_config_round_trip(fs: FeatureSet) -> None:
    view = fs.take([1, 3], label="mine").select(features="x")
    config = view.get_config()
    assert config["source_label"] == "base"
    assert config["columns"] == ["features.x.raw"]
    rebuilt = FeatureSetView.from_config(config)
    assert rebuilt.source is fs
    assert rebuilt.indices.tolist() == [1, 3]
    assert rebuilt.columns == ["features.x.raw"]
    with pytest.raises(InvalidArgumentError, match="needs"):
        FeatureSetView.from_config({"label": "x"})
