"""The scikit-learn scalers contributed by modularml-sklearn: registry, files without pickle, FeatureSets."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn import preprocessing

import modularml as mml
from modularml.context import ExperimentContext
from modularml.datasets import make_featureset
from modularml.plugins.known import KNOWN_COMPONENTS
from modularml.scalers import Scaler
from modularml_sklearn.plugin import SCALERS as SKLEARN_SCALERS

KWARGS = {"QuantileTransformer": {"n_quantiles": 25}}
X = np.random.default_rng(0).gamma(2.0, 1.5, size=(60, 4)).astype(np.float32)


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[ExperimentContext]:
    ctx = ExperimentContext(registration_policy="error")
    with ctx.activate():
        yield ctx


def test_the_scaler_names_are_the_ones_the_core_advertises() -> None:
    # one list: the names the core tells users without the plugin to install it for are the ones it registers
    assert set(SKLEARN_SCALERS) == {name for kind, name in KNOWN_COMPONENTS if kind == "scalers"}
    assert {"StandardScaler", "MinMaxScaler", "PowerTransformer"} <= set(SKLEARN_SCALERS)
    for name in SKLEARN_SCALERS:
        assert isinstance(getattr(preprocessing, name), type), name


def test_the_plugin_contributes_every_sklearn_scaler() -> None:
    entries = {e.name: e for e in mml.get_plugin_manager().registry("scalers")}
    for name in SKLEARN_SCALERS:
        assert entries[name].distribution == "modularml-sklearn"
        assert entries[name].obj == f"sklearn.preprocessing:{name}"  # an import path: sklearn loads on use
        assert mml.supported_scalers[name] is getattr(preprocessing, name)  # sklearn is imported here


def test_registering_imports_no_sklearn_and_using_does() -> None:
    script = textwrap.dedent(
        """
        import sys, modularml as mml
        mml.get_plugin_manager().plugins()
        shown = repr(mml.supported_scalers)
        assert "'StandardScaler': sklearn.preprocessing.StandardScaler" in shown, shown
        before = "sklearn" in sys.modules
        mml.Scaler("StandardScaler")
        print(before, "sklearn" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("name", SKLEARN_SCALERS)
def test_fitted_state_round_trips_through_a_file_without_pickle(name: str, tmp_path: Path) -> None:
    scaler = Scaler(name, scaler_kwargs=KWARGS.get(name))
    out = scaler.fit_transform(X)
    path = scaler.save(tmp_path / name)
    with zipfile.ZipFile(path) as archive:
        arrays = [
            np.load(io.BytesIO(archive.read(n)), allow_pickle=False) for n in archive.namelist() if n.endswith(".npy")
        ]
    assert arrays or name == "Normalizer"  # Normalizer learns nothing but n_features_in_
    loaded = Scaler.load(path)
    assert type(loaded.scaler) is getattr(preprocessing, name)
    assert loaded.get_config() == scaler.get_config() == {"scaler": name, "scaler_kwargs": KWARGS.get(name, {})}
    np.testing.assert_array_equal(loaded.transform(X), out)
    other = X[::-1] * 1.1
    np.testing.assert_array_equal(loaded.transform(other), scaler.transform(other))
    if name == "Normalizer":
        with pytest.raises(NotImplementedError, match=r"'Normalizer'.*has no inverse_transform"):
            loaded.inverse_transform(out)
    else:
        np.testing.assert_array_equal(loaded.inverse_transform(out), scaler.inverse_transform(out))


def test_power_transformer_nested_scaler_is_restored(tmp_path: Path) -> None:
    scaler = Scaler("PowerTransformer").fit(X)
    loaded = Scaler.load(scaler.save(tmp_path / "pt"))
    assert type(loaded.scaler._scaler) is preprocessing.StandardScaler
    np.testing.assert_array_equal(loaded.scaler._scaler.mean_, scaler.scaler._scaler.mean_)
    np.testing.assert_allclose(loaded.inverse_transform(loaded.transform(X)), X, rtol=1e-4, atol=1e-4)


def test_classes_and_instances_are_recognised_by_name() -> None:
    by_class = Scaler(preprocessing.MinMaxScaler, scaler_kwargs={"feature_range": (-1, 1)})
    assert by_class.scaler_name == "MinMaxScaler"
    assert by_class.get_config() == {"scaler": "MinMaxScaler", "scaler_kwargs": {"feature_range": (-1, 1)}}
    instance = preprocessing.StandardScaler(with_mean=False)
    wrapped = Scaler(instance)
    assert wrapped.get_config()["scaler"] == "StandardScaler"
    assert wrapped.scaler_kwargs == {"copy": True, "with_mean": False, "with_std": True}
    assert not wrapped.is_fit
    assert Scaler(preprocessing.StandardScaler().fit(X)).is_fit
    clone = Scaler(preprocessing.RobustScaler().fit(X)).clone_unfitted()
    assert not hasattr(clone.scaler, "center_")


def test_standard_scaler_on_a_featureset_fit_to_train(tmp_path: Path) -> None:
    fs = make_featureset("cells", n_samples=80, n_points=16, seed=2)
    fs.split_random({"train": 0.75, "test": 0.25}, group_by="cell_id", seed=3)
    fs.fit_transform("StandardScaler", domain="targets", fit_to_split="train")
    fs.fit_transform("MinMaxScaler", domain="features", merged_axes=(0, 2), fit_to_split="train")
    fitted = fs.scaler_records[0].scaler.scaler
    train = fs["train"].get_targets("numpy")
    np.testing.assert_allclose(fitted.mean_, [train.mean()], rtol=1e-6)
    assert not np.isclose(fitted.mean_[0], fs.get_targets("numpy").mean())
    path = fs.save(tmp_path / "cells")
    with ExperimentContext(registration_policy="error").activate():
        loaded = mml.FeatureSet.load(path)
    test = loaded["test"]
    predictions = test.get_targets("numpy", rep="transformed")[:, None]
    unscaled = loaded.unscale_data_for_cols(data=predictions, domain="targets", columns="soh")
    np.testing.assert_allclose(unscaled[:, 0], test.get_targets("numpy"), rtol=1e-6)
    np.testing.assert_array_equal(
        loaded.get_features("numpy", rep="transformed"), fs.get_features("numpy", rep="transformed")
    )
    copy = loaded.copy(label="again", restore_splits=True, restore_scalers=True, register=True)
    np.testing.assert_array_equal(
        copy.get_targets("numpy", rep="transformed"), fs.get_targets("numpy", rep="transformed")
    )
    loaded.undo_all_transforms()
    assert loaded.collection.schema.column_names(rep="transformed") == []
