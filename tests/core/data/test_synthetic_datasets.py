from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from modularml.data import FeatureSet
from modularml.datasets import make_curves, make_featureset, make_long_dataframe
from modularml.errors import InvalidArgumentError

README = Path(__file__).resolve().parents[3] / "README.md"


def test_make_curves_shapes_dtypes_and_determinism() -> None:
    data = make_curves(50, n_points=20, n_groups=4, seed=7)
    assert data["voltage"].shape == (50, 20)
    assert data["voltage"].dtype == np.float32
    assert data["current"].shape == (50, 20)
    assert data["soh"].shape == (50,)
    assert data["soh"].min() >= 0.5
    assert data["soh"].max() <= 1.0
    assert set(data["cell_id"]) <= {f"cell_{i:02d}" for i in range(4)}
    assert set(data["protocol"]) <= {"A", "B", "C"}
    again = make_curves(50, n_points=20, n_groups=4, seed=7)
    assert all(np.array_equal(data[k], again[k]) for k in data)
    other = make_curves(50, n_points=20, n_groups=4, seed=8)
    assert not np.array_equal(data["voltage"], other["voltage"])


def test_target_shapes_the_curves() -> None:
    data = make_curves(400, seed=1, noise=0.0)
    # a worse state of health bends the discharge curve down: the mid-curve voltage tracks soh
    correlation = np.corrcoef(data["soh"], data["voltage"][:, 50])[0, 1]
    assert correlation > 0.5


def test_make_featureset_and_long_frame() -> None:
    fs = make_featureset("gen", n_samples=30, n_points=10)
    assert fs.get_feature_keys() == ["voltage", "current"]
    assert fs.get_target_keys() == ["soh"]
    assert fs.get_tag_keys() == ["cell_id", "protocol", "temperature"]
    frame = make_long_dataframe(12, n_points=6, n_cells=3)
    assert len(frame) == 72
    assert frame.groupby(["cell_id", "cycle"]).size().eq(6).all()
    grouped = FeatureSet.from_pandas(
        "long", frame, ["voltage", "current"], "soh", group_by=["cell_id", "cycle"], tag_cols="protocol", sort_by="time"
    )
    assert grouped.get_features("np").shape == (12, 2, 6)
    assert np.all(np.diff(grouped.get_features("np", keys="voltage"), axis=1) < 0.05)  # time-ordered discharge


def test_bad_sizes() -> None:
    with pytest.raises(InvalidArgumentError, match="n_points >= 2"):
        make_curves(10, n_points=1)


def test_readme_example_builds_and_splits_a_featureset() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (example,) = [b for b in blocks if "make_featureset" in b and "Experiment" not in b]
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)
    fs = namespace["fs"]
    assert fs.available_splits == ["train", "val"]
    assert namespace["x"].shape == (len(fs["train"]), 2, 100)
    assert (namespace["x"].min(), namespace["x"].max()) == (0.0, 1.0)  # the README scales the curves
    assert [r.scaler.scaler_name for r in fs.scaler_records] == ["PerSampleMinMaxScaler"]
