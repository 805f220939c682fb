"""The Scaler wrapper: construction, fitting, inversion, cloning, config and state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import modularml as mml
from modularml.errors import NotFittedError, NotInvertibleError
from modularml.scalers import Negate, PerSampleZeroStart, Scaler

X = np.random.default_rng(1).normal(loc=3.0, scale=2.0, size=(20, 3))


class CenterScaler:
    """A tiny scikit-learn-like scaler (no sklearn needed): subtracts the mean, optionally divides by the std."""

    def __init__(self, with_std: bool = True) -> None:
        self.with_std = with_std

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"with_std": self.with_std}

    def fit(self, X: np.ndarray, y: Any = None) -> CenterScaler:
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) if self.with_std else np.ones(X.shape[1])
        self.n_samples_seen_ = np.int64(len(X))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_ + self.mean_


class OneWay:
    """Sklearn-like, but without an inverse (like sklearn's Normalizer)."""

    def fit(self, X: np.ndarray, y: Any = None) -> OneWay:
        self.norm_ = np.linalg.norm(X, axis=1).max()
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X / self.norm_


def test_scaler_from_a_registered_name_with_kwargs() -> None:
    scaler = Scaler("PerSampleMinMaxScaler", scaler_kwargs={"feature_range": (-1, 1)})
    assert scaler.scaler_name == "PerSampleMinMaxScaler"
    assert scaler.scaler.feature_range == (-1, 1)
    assert not scaler.is_fit
    assert scaler.per_sample
    assert mml.Scaler is Scaler
    assert Scaler("persampleminmaxscaler").scaler_name == "PerSampleMinMaxScaler"  # case-insensitive lookup


def test_scaler_from_a_class_and_from_an_instance() -> None:
    by_class = Scaler(CenterScaler, scaler_kwargs={"with_std": False})
    assert by_class.scaler_name == "CenterScaler"
    assert by_class.scaler_kwargs == {"with_std": False}
    assert by_class.get_config()["scaler"].endswith(":CenterScaler")
    assert Scaler(Negate).scaler_name == "Negate"
    assert Scaler(Negate).get_config() == {"scaler": "Negate", "scaler_kwargs": {}}  # registered name, not a path
    instance = CenterScaler(with_std=False)
    wrapped = Scaler(instance)
    assert wrapped.scaler is instance
    assert wrapped.scaler_kwargs == {"with_std": False}
    assert not wrapped.is_fit
    assert Scaler(CenterScaler().fit(X)).is_fit  # a fitted instance is recognised


def test_scaler_construction_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"No scaler named 'NoSuchScaler'.*Available: \[.*'Negate'"):
        Scaler("NoSuchScaler")
    with pytest.raises(TypeError, match=r"fit\(\) and transform\(\); got builtins\.object"):
        Scaler(object())
    with pytest.raises(TypeError, match="not a scaler class"):
        Scaler(dict)
    with pytest.raises(ValueError, match=r"scaler_kwargs \['with_std'\] cannot be applied to an existing CenterScaler"):
        Scaler(CenterScaler(), scaler_kwargs={"with_std": False})
    with pytest.raises(TypeError, match=r"Cannot build scaler 'Negate' with scaler_kwargs \{'bogus': 1\}"):
        Scaler("Negate", scaler_kwargs={"bogus": 1})


def test_fit_transform_and_inverse() -> None:
    scaler = Scaler(CenterScaler)
    out = scaler.fit_transform(X)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(scaler.inverse_transform(out), X)
    assert scaler.fit(X) is scaler
    with pytest.raises(ValueError, match=r"2-D data.*got shape \(20,\)"):
        scaler.transform(X[:, 0])


def test_unfitted_scaler_raises_runtime_error() -> None:
    scaler = Scaler(CenterScaler)
    with pytest.raises(NotFittedError, match="'CenterScaler' has not been fit; call fit\\(\\) before transform"):
        scaler.transform(X)
    with pytest.raises(RuntimeError):
        scaler.inverse_transform(X)


def test_not_implemented_only_without_an_inverse() -> None:
    scaler = Scaler(OneWay).fit(X)
    assert not scaler.has_inverse
    with pytest.raises(NotImplementedError, match=r"'OneWay'.*has no inverse_transform"):
        scaler.inverse_transform(scaler.transform(X))
    assert issubclass(NotInvertibleError, NotImplementedError)
    assert Scaler(CenterScaler).has_inverse


def test_clone_unfitted_shares_config_but_not_state() -> None:
    scaler = Scaler(CenterScaler, scaler_kwargs={"with_std": False}).fit(X)
    clone = scaler.clone_unfitted()
    assert not clone.is_fit
    assert clone.scaler is not scaler.scaler
    assert clone.scaler.with_std is False
    assert not hasattr(clone.scaler, "mean_")
    assert clone.get_config() == scaler.get_config()
    copied = Scaler(scaler)  # a Scaler given to Scaler is copied, fitted state included
    np.testing.assert_array_equal(copied.transform(X), scaler.transform(X))
    assert copied.scaler is not scaler.scaler


def test_config_round_trip(register_test_scalers) -> None:
    register_test_scalers(CenterScaler)
    scaler = Scaler("PerSampleMinMaxScaler", scaler_kwargs={"feature_range": (0, 10)})
    config = scaler.get_config()
    assert config == {"scaler": "PerSampleMinMaxScaler", "scaler_kwargs": {"feature_range": (0, 10)}}
    again = Scaler.from_config(config)
    assert again.scaler.feature_range == (0, 10)
    by_path = Scaler.from_config(Scaler(CenterScaler).get_config())  # its package registered a scaler
    assert type(by_path.scaler) is CenterScaler
    with pytest.raises(ValueError, match="A Scaler config is"):
        Scaler.from_config({"name": "Negate"})


def test_state_round_trip_is_plain_arrays() -> None:
    scaler = Scaler(CenterScaler).fit(X)
    state = scaler.get_state()
    assert state["is_fit"] is True
    assert set(state) == {"is_fit", "mean_", "scale_", "n_samples_seen_", "n_features_in_"}
    assert isinstance(state["mean_"], np.ndarray)
    fresh = scaler.clone_unfitted()
    fresh.set_state(state)
    assert fresh.is_fit
    np.testing.assert_array_equal(fresh.transform(X), scaler.transform(X))
    assert type(fresh.scaler.n_samples_seen_) is np.int64  # numpy scalars keep their dtype
    unfit = Scaler(CenterScaler)
    assert unfit.get_state() == {"is_fit": False}
    with pytest.raises(ValueError, match="A Scaler state is"):
        unfit.set_state({"mean_": 1})


def test_per_sample_scaler_gets_sample_ids_and_others_ignore_them() -> None:
    per_sample = Scaler(PerSampleZeroStart)
    out = per_sample.fit_transform(X[:3], sample_ids=["a", "b", "c"])
    np.testing.assert_allclose(per_sample.inverse_transform(out[::-1], sample_ids=["c", "b", "a"]), X[:3][::-1])
    plain = Scaler(CenterScaler)
    np.testing.assert_allclose(plain.fit_transform(X, sample_ids=np.arange(20)), plain.transform(X))


def test_state_of_an_attribute_that_cannot_be_stored_is_refused() -> None:
    scaler = Scaler(CenterScaler).fit(X)
    scaler.scaler.callback_ = print
    with pytest.raises(ValueError, match=r"CenterScaler\.callback_ is a builtins\.builtin_function_or_method"):
        scaler.get_state()


def test_repr() -> None:
    assert repr(Scaler("Negate")) == "Scaler('Negate', is_fit=False)"
