"""SampleData, RoleData and Batch: validation, conversion, concatenation (numpy; backends in integration)."""

from __future__ import annotations

import numpy as np
import pytest

from modularml.batches import Batch, RoleData, SampleData


def _data(n: int, start: int = 0) -> SampleData:
    return SampleData(
        features=np.arange(start, start + n * 3, dtype=np.float32).reshape(n, 3),
        targets=np.arange(start, start + n, dtype=np.float32),
        sample_uuids=np.array([f"u{i}" for i in range(start, start + n)], dtype=object),
    )


def test_sample_data_domains_shapes_and_replace() -> None:
    data = _data(4)
    assert data.n_samples == 4
    assert data["features"] is data.features
    assert data.shapes == {"features": (3,), "targets": ()}
    with pytest.raises(KeyError, match="Unknown domain"):
        data["weights"]
    outputs = np.zeros((4, 1))
    assert data.replace(outputs=outputs).outputs is outputs
    with pytest.raises(TypeError, match="no domain"):
        data.replace(predictions=outputs)
    assert SampleData().n_samples is None


def test_sample_data_concat_and_format() -> None:
    joined = SampleData.concat([_data(2), _data(3, start=10)])
    assert joined.n_samples == 5
    np.testing.assert_array_equal(joined.targets, [0, 1, 10, 11, 12])
    assert list(joined.sample_uuids) == ["u0", "u1", "u10", "u11", "u12"]
    with pytest.raises(ValueError, match="missing"):
        SampleData.concat([_data(2), SampleData(features=np.zeros((2, 3)))])
    stacked = SampleData(features={"a": np.zeros((2, 3)), "b": np.ones((2, 3))}).to_format("numpy")
    assert stacked.features.shape == (2, 2, 3)
    kept = SampleData(features={"a": np.zeros((2, 3))}).to_format("dict_numpy")
    assert list(kept.features) == ["a"]
    with pytest.raises(ValueError, match="different per-sample shapes"):
        SampleData(features={"a": np.zeros((2, 3)), "b": np.ones((2, 4))}).to_format("np")


def test_role_data_is_a_mapping_of_sample_data() -> None:
    roles = RoleData({"anchor": _data(2), "pair": _data(2, 5)})
    assert roles.roles == ["anchor", "pair"]
    assert len(roles) == 2
    assert list(roles) == ["anchor", "pair"]
    with pytest.raises(KeyError, match="roles"):
        roles["negative"]
    with pytest.raises(TypeError, match="SampleData"):
        RoleData({"anchor": np.zeros(2)})
    with pytest.raises(ValueError, match="roles"):
        RoleData.concat([roles, RoleData({"anchor": _data(2)})])


def test_batch_defaults_validation_and_shorthands() -> None:
    batch = Batch(4, {"default": _data(4)})
    assert batch.batch_size == len(batch) == 4
    assert batch.roles == ["default"]
    np.testing.assert_array_equal(batch.get_role_weights("default"), np.ones(4, dtype=np.float32))
    np.testing.assert_array_equal(batch.get_role_mask("default"), np.ones(4, dtype=bool))
    assert batch.features is batch.get_role("default").features
    assert batch.outputs is None
    with pytest.raises(ValueError, match="batch size is 3"):
        Batch(3, {"default": _data(4)})
    with pytest.raises(ValueError, match="role_weights\\['default'\\] has 2"):
        Batch(4, {"default": _data(4)}, role_weights={"default": np.ones(2)})
    with pytest.raises(ValueError, match="does not have"):
        Batch(4, {"default": _data(4)}, role_masks={"pair": np.ones(4, bool)})
    with pytest.raises(TypeError, match="SampleData"):
        Batch(4, _data(4))
    two = Batch(2, {"anchor": _data(2), "pair": _data(2)})
    with pytest.raises(ValueError, match="ambiguous"):
        _ = two.features
    with pytest.raises(KeyError, match="roles"):
        two.get_role_weights("default")


def test_batch_concat_to_format_and_outputs() -> None:
    first = Batch(2, {"a": _data(2)}, role_weights={"a": np.array([0.5, 1.0], np.float32)})
    second = Batch(3, {"a": _data(3, 7)}, role_masks={"a": np.array([True, False, True])})
    joined = Batch.concat([first, second])
    assert joined.batch_size == 5
    np.testing.assert_array_equal(joined.get_role_weights("a"), [0.5, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(joined.get_role_mask("a"), [True, True, True, False, True])
    assert Batch.concat(first, second).batch_size == 5
    assert Batch.concat(first) is first
    with pytest.raises(ValueError, match="at least one"):
        Batch.concat([])
    with pytest.raises(ValueError, match="roles"):
        Batch.concat(first, Batch(2, {"b": _data(2)}))
    outputs = np.ones((5, 1))
    filled = joined.with_role_data({"a": joined.get_role("a").replace(outputs=outputs)})
    assert filled.outputs is outputs
    np.testing.assert_array_equal(filled.get_role_weights("a"), joined.get_role_weights("a"))
    same = joined.to_format("numpy")
    assert same.features is joined.features  # numpy arrays are not copied
    assert joined.as_format("np").batch_size == 5
    assert joined.detach_tensors().features is joined.features
    with pytest.raises(ValueError, match="DataFrames"):
        joined.to_format("pandas")


def test_uniform_weights_flag_is_kept_through_conversions_and_lost_with_weights() -> None:
    plain = Batch(4, {"default": _data(4)})
    assert plain.uniform_weights
    assert plain.to_format("dict_numpy").uniform_weights
    assert plain.detach_tensors().uniform_weights
    assert plain.with_role_data(RoleData({"default": _data(4, start=1)})).uniform_weights
    weighted = Batch(4, {"default": _data(4)}, role_weights={"default": np.ones(4, dtype=np.float32)})
    assert not weighted.uniform_weights
    masked = Batch(4, {"default": _data(4)}, role_masks={"default": np.array([True, True, False, True])})
    assert not masked.uniform_weights
    assert not Batch.concat(plain, weighted).uniform_weights
    assert Batch.concat(plain, plain).uniform_weights


def test_a_batch_already_in_a_format_converts_to_it_for_free() -> None:
    plain = Batch(4, {"default": _data(4)})
    once = plain.to_format("dict_numpy")
    assert once is not plain
    assert once.to_format("dict_numpy") is once  # every tensor is in that format already
    # numpy arrays have no autograd history: detaching gives the (immutable) batch itself, still converted
    assert once.detach_tensors() is once
    again = once.detach_tensors()
    assert again.to_format("dict_numpy") is again
    assert once.to_format("numpy") is not once
    # A batch assembled from parts has no known format: its first conversion really converts.
    rebuilt = once.with_role_data(RoleData({"default": _data(4)}))
    assert rebuilt.to_format("dict_numpy") is not rebuilt
