"""Scaler files: the container format, learned state as .npy arrays, never pickle."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modularml.errors import FileCollisionError, SerializationError
from modularml.io import write_container
from modularml.scalers import Scaler

X = np.random.default_rng(2).normal(loc=1.0, scale=3.0, size=(30, 4)).astype(np.float32)
IDS = [f"sample-{i}" for i in range(len(X))]


class RangeScaler:
    """Sklearn-like, with a nested sklearn-like helper (as sklearn's PowerTransformer keeps one)."""

    def __init__(self, margin: float = 0.0) -> None:
        self.margin = margin

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"margin": self.margin}

    def fit(self, X: np.ndarray, y: Any = None) -> RangeScaler:
        self.low_ = X.min(axis=0) - self.margin
        self.high_ = X.max(axis=0) + self.margin
        self._helper = Shift().fit(X)
        self.labels_ = np.array(["a", "b"], dtype=object)
        self.info_ = {"n": np.int32(len(X)), "bounds": (1.5, None)}
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self._helper.transform((X - self.low_) / (self.high_ - self.low_))

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return (X + self._helper.offset_) * (self.high_ - self.low_) + self.low_


class Shift:
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}

    def fit(self, X: np.ndarray, y: Any = None) -> Shift:
        self.offset_ = np.float64(0.5)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X - self.offset_


def _arrays_without_pickle(path: Path) -> list[np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".npy")]
        return [np.load(io.BytesIO(archive.read(n)), allow_pickle=False) for n in names]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("Absolute", {}),
        ("Negate", {}),
        ("PerSampleMinMaxScaler", {"feature_range": (-1, 1)}),
        ("PerSampleZeroStart", {}),
        ("SegmentedScaler", {"boundaries": [0, 1, 3], "scaler": "PerSampleMinMaxScaler"}),
        ("SegmentedScaler", {"boundaries": [0, 2], "scaler": "Negate"}),
    ],
)
def test_core_scalers_round_trip_through_a_file(name: str, kwargs: dict, tmp_path: Path) -> None:
    scaler = Scaler(name, scaler_kwargs=kwargs)
    out = scaler.fit_transform(X, sample_ids=IDS)
    path = scaler.save(tmp_path / "scaler")
    assert path.name == "scaler.sc.mml"
    loaded = Scaler.load(path)
    assert loaded.get_config() == scaler.get_config()
    assert loaded.is_fit
    np.testing.assert_array_equal(
        loaded.inverse_transform(out, sample_ids=IDS), scaler.inverse_transform(out, sample_ids=IDS)
    )
    np.testing.assert_array_equal(loaded.transform(X, sample_ids=IDS), out)
    _arrays_without_pickle(path)


def test_sklearn_like_state_with_nested_objects_round_trips(tmp_path: Path, register_test_scalers) -> None:
    register_test_scalers(RangeScaler)
    scaler = Scaler(RangeScaler, scaler_kwargs={"margin": 0.5}).fit(X)
    path = scaler.save(tmp_path / "range.sc.mml")
    arrays = _arrays_without_pickle(path)
    assert len(arrays) >= 3
    loaded = Scaler.load(path)
    np.testing.assert_array_equal(loaded.transform(X), scaler.transform(X))
    np.testing.assert_array_equal(
        loaded.inverse_transform(loaded.transform(X)), scaler.inverse_transform(scaler.transform(X))
    )
    assert type(loaded.scaler._helper) is Shift
    assert type(loaded.scaler._helper.offset_) is np.float64
    assert loaded.scaler.labels_.tolist() == ["a", "b"]
    assert loaded.scaler.info_ == {"n": 30, "bounds": (1.5, None)}
    assert type(loaded.scaler.info_["n"]) is np.int32
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        config = json.loads(archive.read("config.json"))
    assert manifest["kind"] == "sc"
    assert manifest["class"] == "modularml.scalers.scaler:Scaler"
    assert config["scaler_kwargs"] == {"margin": 0.5}


def test_unfitted_scaler_round_trips(tmp_path: Path) -> None:
    loaded = Scaler.load(Scaler("Negate").save(tmp_path / "n"))
    assert not loaded.is_fit


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = Scaler("Negate").save(tmp_path / "n")
    with pytest.raises(FileCollisionError):
        Scaler("Negate").save(path)
    assert Scaler("Negate").save(path, overwrite=True) == path


def test_load_never_imports_a_module_named_by_the_file(tmp_path: Path) -> None:
    path = write_container(
        tmp_path / "evil",
        kind="sc",
        cls=Scaler,
        config={"scaler": "an_unimported_module_abc:Thing", "scaler_kwargs": {}},
        state={"is_fit": False},
    )
    with pytest.raises(SerializationError, match=r"evil\.sc\.mml.*Refusing to import 'an_unimported_module_abc:Thing'"):
        Scaler.load(path)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sc.mml"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SerializationError, match=r"bad\.sc\.mml"):
        Scaler.load(bad)
    path = write_container(
        tmp_path / "unknown", kind="sc", cls=Scaler, config={"scaler": "NoSuchScaler"}, state={"is_fit": False}
    )
    with pytest.raises(SerializationError, match=r"unknown\.sc\.mml.*No scaler named 'NoSuchScaler'"):
        Scaler.load(path)
    with pytest.raises(FileNotFoundError):
        Scaler.load(tmp_path / "missing")


def test_classes_from_untrusted_packages_are_refused(tmp_path: Path) -> None:
    path = Scaler(RangeScaler, scaler_kwargs={"margin": 0.5}).fit(X).save(tmp_path / "range.sc.mml")
    with pytest.raises(SerializationError, match="Refusing to import"):
        Scaler.load(path)
    with pytest.raises(SerializationError, match=r"Refusing to import 'subprocess:Popen'"):
        Scaler.from_config({"scaler": "subprocess:Popen", "scaler_kwargs": {"args": ["true"]}})
