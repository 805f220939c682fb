"""The core's scalers: Absolute, Negate, PerSampleMinMaxScaler, PerSampleZeroStart, SegmentedScaler."""

from __future__ import annotations

import numpy as np
import pytest

from modularml.errors import NotFittedError
from modularml.scalers import (
    Absolute,
    Negate,
    PerSampleMinMaxScaler,
    PerSampleZeroStart,
    Scaler,
    SegmentedScaler,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 5))


def test_negate_is_its_own_inverse() -> None:
    scaler = Negate().fit(X)
    np.testing.assert_array_equal(scaler.transform(X), -X)
    np.testing.assert_array_equal(scaler.inverse_transform(-X), X)
    assert scaler.n_features_in_ == 5
    assert not Negate.per_sample


def test_absolute_restores_the_recorded_signs_by_sample() -> None:
    data = np.array([[-1.0, 2.0, -0.0], [3.0, -4.0, 5.0]])
    scaler = Absolute()
    out = scaler.fit_transform(data, sample_ids=["a", "b"])
    np.testing.assert_array_equal(out, np.abs(data))
    restored = scaler.inverse_transform(out[::-1], sample_ids=["b", "a"])  # other order: keyed by sample
    np.testing.assert_array_equal(restored, data[::-1])
    assert np.signbit(restored[1, 2])  # -0.0 comes back as -0.0


def test_per_sample_min_max_scales_every_row_to_the_range() -> None:
    scaler = PerSampleMinMaxScaler(feature_range=(-1, 1))
    out = scaler.fit_transform(X)
    np.testing.assert_allclose(out.min(axis=1), -1)
    np.testing.assert_allclose(out.max(axis=1), 1)
    np.testing.assert_allclose(scaler.inverse_transform(out), X)
    assert scaler.get_params() == {"feature_range": (-1, 1)}
    constant = PerSampleMinMaxScaler().fit_transform(np.full((2, 3), 7.0))
    np.testing.assert_array_equal(constant, 0.0)


def test_per_sample_min_max_keeps_float32() -> None:
    data = X.astype(np.float32)
    out = PerSampleMinMaxScaler().fit_transform(data)
    assert out.dtype == np.float32


def test_per_sample_zero_start_subtracts_each_first_value() -> None:
    scaler = PerSampleZeroStart()
    out = scaler.fit_transform(X, sample_ids=[f"s{i}" for i in range(6)])
    np.testing.assert_array_equal(out[:, 0], 0.0)
    np.testing.assert_allclose(out, X - X[:, :1])
    # rows come back in another order and in two batches: each is inverted with its own offset
    ids = np.array([f"s{i}" for i in range(6)])
    np.testing.assert_allclose(scaler.inverse_transform(out[[4, 1]], sample_ids=ids[[4, 1]]), X[[4, 1]])
    np.testing.assert_allclose(scaler.inverse_transform(out[[0]], sample_ids=ids[[0]]), X[[0]])


def test_per_sample_scalers_invert_rows_they_transformed_not_the_last_call() -> None:
    scaler = PerSampleZeroStart().fit(X)
    first = scaler.transform(X[:3], sample_ids=["a", "b", "c"])
    scaler.transform(X[3:], sample_ids=["d", "e", "f"])  # a later call must not replace a, b, c
    np.testing.assert_allclose(scaler.inverse_transform(first, sample_ids=["a", "b", "c"]), X[:3])
    with pytest.raises(ValueError, match=r"no statistics for 1 of the 1 rows \(e\.g\. sample id 'zzz'\)"):
        scaler.inverse_transform(first[:1], sample_ids=["zzz"])
    with pytest.raises(ValueError, match="one sample id per row"):
        scaler.transform(X[:2], sample_ids=["a"])
    with pytest.raises(ValueError, match="repeated sample ids"):
        scaler.transform(X[:2], sample_ids=["a", "a"])


def test_segmented_scaler_clones_the_scaler_per_segment() -> None:
    data = np.array([[0.0, 2.0, 10.0, 30.0], [1.0, 5.0, 0.0, 10.0]])
    scaler = SegmentedScaler(boundaries=(0, 2), scaler="PerSampleMinMaxScaler")
    out = scaler.fit_transform(data, sample_ids=["a", "b"])
    np.testing.assert_allclose(out, [[0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
    np.testing.assert_allclose(scaler.inverse_transform(out, sample_ids=["a", "b"]), data)
    assert scaler.per_sample
    assert [s.scaler_name for s in scaler.scalers_] == ["PerSampleMinMaxScaler"] * 2
    np.testing.assert_array_equal(scaler.segments_, [[0, 2], [2, 4]])
    same = SegmentedScaler(boundaries=[0, 2, 4], scaler=Negate()).fit(data)
    np.testing.assert_array_equal(same.segments_, [[0, 2], [2, 4]])
    assert not same.per_sample
    params = scaler.get_params()
    assert params == {"boundaries": (0, 2), "scaler": {"scaler": "PerSampleMinMaxScaler", "scaler_kwargs": {}}}
    rebuilt = SegmentedScaler(**params)
    np.testing.assert_allclose(rebuilt.fit_transform(data), out)


def test_segmented_scaler_validates_boundaries() -> None:
    with pytest.raises(ValueError, match=r"start at 0 and increase strictly.*\[1, 3\]"):
        SegmentedScaler(boundaries=[1, 3], scaler="Negate")
    with pytest.raises(ValueError, match=r"\[0, 3, 3\]"):
        SegmentedScaler(boundaries=[0, 3, 3], scaler="Negate")
    with pytest.raises(ValueError, match="reach beyond the 5 columns"):
        SegmentedScaler(boundaries=[0, 6], scaler="Negate").fit(X)
    with pytest.raises(TypeError):
        SegmentedScaler(boundaries=[0], scaler=object())


def test_core_scalers_check_their_input() -> None:
    with pytest.raises(NotFittedError, match="has not been fit"):
        Negate().transform(X)
    with pytest.raises(RuntimeError):
        PerSampleZeroStart().transform(X)
    with pytest.raises(ValueError, match=r"2-D data.*\(6,\)"):
        Negate().fit(X[:, 0])
    with pytest.raises(ValueError, match="fit on 5 features; got data with 2"):
        Negate().fit(X).transform(X[:, :2])
    with pytest.raises(ValueError, match="feature_range needs low < high"):
        PerSampleMinMaxScaler(feature_range=(1, 0))
    with pytest.raises(ValueError, match="no parameter 'bogus'"):
        Negate().set_params(bogus=1)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("Absolute", {}),
        ("Negate", {}),
        ("PerSampleMinMaxScaler", {"feature_range": (2, 3)}),
        ("PerSampleZeroStart", {}),
        ("SegmentedScaler", {"boundaries": (0, 3), "scaler": "PerSampleZeroStart"}),
    ],
)
def test_every_core_scaler_round_trips_through_the_wrapper(name: str, kwargs: dict) -> None:
    scaler = Scaler(name, scaler_kwargs=kwargs)
    ids = [f"id{i}" for i in range(len(X))]
    out = scaler.fit_transform(X, sample_ids=ids)
    assert out.shape == X.shape
    np.testing.assert_allclose(scaler.inverse_transform(out, sample_ids=ids), X)
