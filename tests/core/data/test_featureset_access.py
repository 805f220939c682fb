from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import modularml as mml
from modularml.data import FeatureSet
from modularml.errors import ColumnNotFoundError, InvalidArgumentError
from modularml.plugins import PluginManager, hookimpl


@pytest.fixture
def fs() -> FeatureSet:
    n = 5
    return FeatureSet.from_dict(
        "cells",
        {
            "voltage": np.arange(n * 4, dtype=np.float32).reshape(n, 4),
            "current": -np.arange(n * 4, dtype=np.float32).reshape(n, 4),
            "temp": np.arange(n, dtype=np.float64),
            "soh": np.linspace(1.0, 0.8, n),
            "cell_id": ["a", "b", "a", "c", "b"],
        },
        feature_keys=["voltage", "current", "temp"],
        target_keys="soh",
        tag_keys="cell_id",
    )


def test_keys_and_their_formatting(fs: FeatureSet) -> None:
    assert fs.get_feature_keys() == ["voltage", "current", "temp"]
    assert fs.get_target_keys(include_domain_prefix=True) == ["targets.soh"]
    assert fs.get_tag_keys(include_rep_suffix=True) == ["cell_id.raw"]
    assert fs.get_all_keys() == [
        "features.voltage.raw",
        "features.current.raw",
        "features.temp.raw",
        "targets.soh.raw",
        "tags.cell_id.raw",
    ]
    assert fs.get_feature_shapes(include_domain_prefix=False, include_rep_suffix=False) == {
        "voltage": (4,),
        "current": (4,),
        "temp": (),
    }
    assert fs.get_tag_dtypes() == {"tags.cell_id.raw": "string"}
    assert fs.get_target_dtypes() == {"targets.soh.raw": "float64"}


def test_dict_numpy_is_the_cached_read_only_column(fs: FeatureSet) -> None:
    data = fs.get_features(keys=["voltage"])
    assert list(data) == ["voltage"]
    assert data["voltage"] is fs.collection.to_numpy("features.voltage.raw")
    assert not data["voltage"].flags.writeable


def test_numpy_format_stacks_columns_on_axis_1_in_the_order_given(fs: FeatureSet) -> None:
    stacked = fs.get_features("np", keys=["current", "voltage"])
    assert stacked.shape == (5, 2, 4)
    assert np.array_equal(stacked[:, 0], fs.get_features()["current"])
    assert fs.get_features("numpy", keys="temp").shape == (5,)
    assert fs.get_targets("numpy").shape == (5,)
    with pytest.raises(InvalidArgumentError, match=r"different per-sample shapes.*dict_numpy"):
        fs.get_features("numpy")


def test_scalar_columns_stack_to_a_matrix(fs: FeatureSet) -> None:
    out = fs.get_data("np", columns=["features.temp.raw", "targets.soh.raw"])
    assert out.shape == (5, 2)
    assert out[:, 1].tolist() == fs.get_targets("np").tolist()


def test_wildcards_and_fully_qualified_selectors(fs: FeatureSet) -> None:
    assert list(fs.get_features(keys="*rent")) == ["current"]
    assert list(fs.get_features(keys="features.voltage.raw")) == ["voltage"]
    assert list(fs.get_data(columns="*.raw")) == fs.get_all_keys()
    assert list(fs.get_data(columns="features.*", include_domain_prefix=False, include_rep_suffix=False)) == [
        "voltage",
        "current",
        "temp",
    ]
    assert list(fs.get_data(features="volt*", tags="cell_id")) == ["features.voltage.raw", "tags.cell_id.raw"]


def test_unknown_columns_wrong_domains_and_reps(fs: FeatureSet) -> None:
    with pytest.raises(ColumnNotFoundError, match=r"No features column matches 'power'.*voltage"):
        fs.get_features(keys="power")
    with pytest.raises(InvalidArgumentError, match="names domain 'targets'"):
        fs.get_features(keys="targets.soh")
    with pytest.raises(ColumnNotFoundError, match=r"voltage.transformed"):
        fs.get_features(keys="voltage", rep="transformed")
    with pytest.raises(InvalidArgumentError, match="representation 'transformed'"):
        fs.get_features(rep="transformed")
    with pytest.raises(InvalidArgumentError, match="Unknown representation"):
        fs.get_features(rep="scaled")


def test_pandas_format_and_exports(fs: FeatureSet) -> None:
    df = fs.get_features("pandas")
    assert list(df.columns) == ["voltage", "current", "temp"]
    assert df["voltage"].iloc[1].tolist() == [4, 5, 6, 7]
    full = fs.to_pandas()
    assert list(full.columns) == [*fs.get_all_keys(), "sample_uuids"]
    assert isinstance(full, pd.DataFrame)
    assert fs.to_arrow() is fs.collection.table


def test_sample_uuid_formats(fs: FeatureSet) -> None:
    uuids = fs.get_sample_uuids()
    assert uuids.dtype == object
    assert len(set(uuids)) == 5
    assert fs.get_sample_uuids("list") == uuids.tolist()
    assert fs.get_sample_uuids("arrow").to_pylist() == uuids.tolist()
    assert fs.get_sample_uuids("pandas").tolist() == uuids.tolist()
    with pytest.raises(InvalidArgumentError, match="Unknown fmt 'torch'"):
        fs.get_sample_uuids("torch")


def test_unknown_format_lists_what_is_available(fs: FeatureSet) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Unknown data format 'nope'.*dict_numpy"):
        fs.get_features("nope")


class _FakeBackend(mml.backends.NumpyTensorOps):
    """A numpy-native backend whose 'tensors' are tagged copies, to see the conversion happen."""

    name = "fakearray"
    calls: ClassVar[list[tuple[int, ...]]] = []

    def from_numpy(self, array, *, dtype=None, device=None):
        self.calls.append(array.shape)
        return ("fake", np.array(array))


class _FakePlugin:
    @staticmethod
    @hookimpl
    def register_backends(register) -> None:
        register("fakearray", _FakeBackend, formats=("fake",))


def test_backend_formats_go_through_the_backend_protocol(fs: FeatureSet, manager: PluginManager) -> None:
    manager.register(_FakePlugin(), name="fake-plugin", distribution="fake-dist")
    _FakeBackend.calls.clear()
    tag, array = fs.get_features("fake", keys=["voltage", "current"])
    assert tag == "fake"
    assert array.shape == (5, 2, 4)
    as_dict = fs.get_targets("dict_fake")
    assert as_dict["soh"][0] == "fake"
    assert _FakeBackend.calls == [(5, 2, 4), (5,)]
    with pytest.raises(InvalidArgumentError, match="holds strings"):
        fs.get_tags("fake")


def test_view_reads_only_its_rows_and_columns(fs: FeatureSet) -> None:
    view = fs.take([3, 1]).select(features="voltage", targets="soh")
    assert len(view) == 2
    assert view.get_all_keys() == ["features.voltage.raw", "targets.soh.raw"]
    assert view.get_features()["voltage"].tolist() == [[12, 13, 14, 15], [4, 5, 6, 7]]
    assert view.get_tags() == {}
    assert view.get_sample_uuids().tolist() == fs.get_sample_uuids()[[3, 1]].tolist()
    table = view.to_arrow()
    assert table.column_names == ["features.voltage.raw", "targets.soh.raw", "sample_uuids"]
    assert table.num_rows == 2
    assert isinstance(table, pa.Table)


def test_summary_mentions_every_column_and_split(fs: FeatureSet) -> None:
    fs.split_random({"a": 0.6, "b": 0.4})
    text = fs.summary()
    assert "5 samples" in text
    assert "features.voltage.raw" in text
    assert "split 'a': 3 samples" in text
