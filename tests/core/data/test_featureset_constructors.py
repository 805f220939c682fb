from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import modularml as mml
from modularml.context import ExperimentContext
from modularml.data import FeatureSet, SampleCollection
from modularml.errors import ColumnNotFoundError, InvalidArgumentError, InvalidLabelError, InvalidTypeError


def test_from_dict_reference_example() -> None:
    fs = FeatureSet.from_dict(
        label="CycleData",
        data={
            "voltage": [[3.1, 3.2, 3.3], [3.2, 3.3, 3.4]],
            "current": [[1.0, 1.1, 1.0], [0.9, 1.0, 1.1]],
            "soh": [0.95, 0.93],
            "cell_id": ["A1", "A2"],
        },
        feature_keys=["voltage", "current"],
        target_keys=["soh"],
        tag_keys=["cell_id"],
    )
    assert len(fs) == 2
    assert fs.get_feature_keys() == ["voltage", "current"]
    assert fs.get_feature_shapes() == {"features.voltage.raw": (3,), "features.current.raw": (3,)}
    assert fs.get_targets("numpy").tolist() == [0.95, 0.93]
    assert fs.get_tags()["cell_id"].tolist() == ["A1", "A2"]
    assert ExperimentContext.get_active().get_node(label="CycleData") is fs
    assert isinstance(fs, mml.ExperimentNode)


def test_from_dict_accepts_single_keys_and_no_targets() -> None:
    fs = FeatureSet.from_dict("x", {"a": np.arange(3.0), "b": [1, 2, 3]}, "a", [])
    assert fs.get_target_keys() == []
    assert fs.get_feature_dtypes() == {"features.a.raw": "float64"}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"feature_keys": "nope", "target_keys": "y"}, InvalidArgumentError, "Key 'nope' is not in data"),
        ({"feature_keys": "x", "target_keys": "x"}, InvalidArgumentError, "both features and targets"),
        ({"feature_keys": ["x", 3], "target_keys": "y"}, InvalidTypeError, "got int 3"),
    ],
)
def test_from_dict_bad_keys(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        FeatureSet.from_dict("x", {"x": [1.0, 2.0], "y": [1.0, 2.0]}, **kwargs)
    assert not ExperimentContext.get_active().has_node(label="x")


def test_from_dict_bad_label_and_lengths() -> None:
    with pytest.raises(InvalidLabelError, match=r"a.b"):
        FeatureSet.from_dict("a.b", {"x": [1.0]}, "x", [])
    with pytest.raises(InvalidArgumentError, match="different lengths"):
        FeatureSet.from_dict("x", {"x": [1.0, 2.0], "y": [1.0]}, "x", "y")


def _long_frame() -> pd.DataFrame:
    # three groups of 4 rows, shuffled, with time out of order
    rows = []
    for cell, cycle, soh in (("A", 1, 0.9), ("A", 2, 0.8), ("B", 1, 0.95)):
        for t in range(4):
            rows.append(
                {
                    "cell_id": cell,
                    "cycle": cycle,
                    "time": float(t),
                    "voltage": 10 * cycle + t + (100 if cell == "B" else 0),
                    "current": -t,
                    "soh": soh,
                    "temperature": 20.0 + t,  # varies within a group
                }
            )
    df = pd.DataFrame(rows)
    return df.sample(frac=1.0, random_state=3).reset_index(drop=True)


def test_from_pandas_groups_sorts_and_aggregates() -> None:
    fs = FeatureSet.from_pandas(
        label="PulseData",
        df=_long_frame(),
        feature_cols=["voltage", "current"],
        target_cols=["soh"],
        group_by=["cell_id", "cycle"],
        tag_cols=["temperature", "cell_id"],
        sort_by="time",
    )
    assert len(fs) == 3
    features = fs.get_features()
    # groups in sorted key order: (A, 1), (A, 2), (B, 1); rows sorted by time within each
    assert features["voltage"].tolist() == [[10, 11, 12, 13], [20, 21, 22, 23], [110, 111, 112, 113]]
    assert features["current"].tolist() == [[0, -1, -2, -3]] * 3
    assert fs.get_targets("numpy").tolist() == [0.9, 0.8, 0.95]  # constant per group -> scalar
    tags = fs.get_tags()
    assert tags["cell_id"].tolist() == ["A", "A", "B"]
    assert tags["temperature"].shape == (3, 4)  # varies within groups -> array per sample
    assert FeatureSet.from_df.__func__ is FeatureSet.from_pandas.__func__


def test_from_pandas_without_group_by_is_one_sample_per_row() -> None:
    df = _long_frame()
    with pytest.warns(mml.errors.ModularMLWarning, match="sort_by=.* is ignored"):
        fs = FeatureSet.from_pandas("rows", df, "voltage", "soh", tag_cols="cell_id", sort_by="time")
    assert len(fs) == 12
    assert fs.get_features("numpy").tolist() == df["voltage"].tolist()


def test_from_pandas_ragged_groups_raise_or_pad() -> None:
    df = _long_frame()
    df = df[~((df.cell_id == "B") & (df.time == 3.0))]
    with pytest.raises(InvalidArgumentError, match=r"\(cell_id='B', cycle=1\) has 3.*pad_value="):
        FeatureSet.from_pandas("r", df, "voltage", "soh", group_by=["cell_id", "cycle"], sort_by="time")
    fs = FeatureSet.from_pandas(
        "r", df, "voltage", "soh", group_by=["cell_id", "cycle"], sort_by="time", pad_value=np.nan
    )
    voltage = fs.get_features("numpy")
    assert voltage.dtype == np.float64
    assert voltage[2, :3].tolist() == [110, 111, 112]
    assert np.isnan(voltage[2, 3])


def test_from_pandas_nan_group_key_raises() -> None:
    df = _long_frame()
    df.loc[0, "cycle"] = np.nan
    with pytest.raises(InvalidArgumentError, match="'cycle' has 1 missing"):
        FeatureSet.from_pandas("n", df, "voltage", "soh", group_by=["cell_id", "cycle"])


def test_from_pandas_unknown_column_and_type() -> None:
    with pytest.raises(ColumnNotFoundError, match="no column 'volts'"):
        FeatureSet.from_pandas("u", _long_frame(), "volts", "soh")
    with pytest.raises(InvalidTypeError, match="DataFrame"):
        FeatureSet.from_pandas("u", {"voltage": [1]}, "voltage", [])


def test_from_pandas_without_pandas_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r'pip install "modularml\[pandas\]"'):
        FeatureSet.from_pandas("p", object(), "a", "b")


def test_from_pandas_stable_order_for_ties() -> None:
    df = pd.DataFrame({"g": [1, 1, 1, 1], "t": [0, 0, 1, 1], "v": [1.0, 2.0, 3.0, 4.0], "y": 0.0})
    fs = FeatureSet.from_pandas("ties", df, "v", "y", group_by="g", sort_by="t")
    assert fs.get_features("numpy").tolist() == [[1, 2, 3, 4]]


def test_from_pyarrow_table_shares_buffers_and_keeps_uuids() -> None:
    table = pa.table(
        {
            "features.x.raw": pa.array([1.0, 2.0]),
            "targets.y.raw": pa.array([3.0, 4.0]),
            "sample_uuids": ["u1", "u2"],
        }
    )
    fs = FeatureSet.from_pyarrow_table("t", table, register=False)
    assert fs.get_sample_uuids().tolist() == ["u1", "u2"]
    address = table.column("features.x.raw").chunk(0).buffers()[1].address
    assert fs.collection.table.column("features.x.raw").chunk(0).buffers()[1].address == address
    assert not ExperimentContext.get_active().has_node(label="t")


def test_constructor_validates_its_arguments() -> None:
    with pytest.raises(InvalidTypeError, match="SampleCollection"):
        FeatureSet("x", {"a": [1]})
    with pytest.raises(InvalidTypeError, match="unexpected keyword"):
        FeatureSet("x", SampleCollection(pa.table({})), colour="red")


def test_label_collisions_follow_the_registration_policy() -> None:
    FeatureSet.from_dict("same", {"x": [1.0]}, "x", [])
    with pytest.raises(ValueError, match="already used"):
        FeatureSet.from_dict("same", {"x": [1.0]}, "x", [])


def test_import_modularml_does_not_import_pandas_or_the_data_module() -> None:
    import subprocess

    script = "import sys, modularml; print('pandas' in sys.modules, 'modularml.data' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert mml.FeatureSet is FeatureSet
