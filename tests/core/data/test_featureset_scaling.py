"""FeatureSet.fit_transform, the scaler records, undo, inversion of predictions, copies and files."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modularml as mml
from modularml.data import FeatureSet
from modularml.datasets import make_featureset
from modularml.errors import ModularMLWarning
from modularml.scalers import Negate, PerSampleMinMaxScaler, Scaler

N_POINTS = 20


class CenterScaler:
    """A tiny scikit-learn-like standard scaler, so these tests need no scikit-learn."""

    def __init__(self, with_std: bool = True) -> None:
        self.with_std = with_std

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"with_std": self.with_std}

    def fit(self, X: np.ndarray, y: Any = None) -> CenterScaler:
        self.mean_ = X.mean(axis=0)
        self.scale_ = X.std(axis=0) if self.with_std else np.ones(X.shape[1])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale_ + self.mean_


class OneWay(CenterScaler):
    """No inverse."""

    inverse_transform = None  # type: ignore[assignment]


class Exploding(CenterScaler):
    def fit(self, X: np.ndarray, y: Any = None) -> Exploding:
        raise RuntimeError("fit failed on purpose")


class Shrinking(CenterScaler):
    def transform(self, X: np.ndarray) -> np.ndarray:
        return X[:, :1]


@pytest.fixture
def fs() -> FeatureSet:
    fs = make_featureset("cells", n_samples=60, n_points=N_POINTS, seed=4)
    fs.split_random({"train": 0.7, "val": 0.3}, group_by="cell_id", seed=1)
    return fs


def _snapshot(fs: FeatureSet) -> dict[str, np.ndarray]:
    return {name: np.array(fs.collection.to_numpy(name)) for name in fs.collection.schema.names}


def _assert_same_data(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        if a[name].dtype == object:
            assert a[name].tolist() == b[name].tolist(), name
        else:
            assert a[name].tobytes() == b[name].tobytes(), name  # bit for bit


def test_fit_to_train_only_and_transform_every_row(fs: FeatureSet) -> None:
    fs.fit_transform(CenterScaler(), domain="targets", fit_to_split="train")
    (record,) = fs.scaler_records
    raw = fs.get_targets("numpy")
    train_rows = fs["train"].valid_indices
    fitted_mean = record.scaler.scaler.mean_
    np.testing.assert_allclose(fitted_mean, [raw[train_rows].mean()], rtol=1e-6)
    assert not np.isclose(fitted_mean[0], raw.mean())  # the train mean, not all rows'
    assert record.fit_to_split == "train"
    np.testing.assert_array_equal(record.fit_indices, train_rows)
    transformed = fs.get_targets("numpy", rep="transformed")
    expected = (raw - fitted_mean[0]) / record.scaler.scaler.scale_[0]
    np.testing.assert_allclose(transformed, expected, rtol=1e-5)  # val rows too
    assert abs(fs["train"].get_targets("numpy", rep="transformed").mean()) < 1e-5
    assert fs.get_target_shapes() == {"targets.soh.raw": (), "targets.soh.transformed": ()}


def test_the_given_scaler_is_cloned_and_names_work(fs: FeatureSet) -> None:
    scaler = Scaler(CenterScaler)
    fs.fit_transform(scaler, domain="targets")
    assert not scaler.is_fit
    assert fs.scaler_records[0].scaler is not scaler
    fs.fit_transform("Negate", domain="features", keys="voltage")
    assert fs.scaler_records[1].scaler.scaler_name == "Negate"
    np.testing.assert_array_equal(
        fs.get_features("numpy", keys="voltage", rep="transformed"), -fs.get_features("numpy", keys="voltage")
    )


def test_splits_see_the_transformed_columns(fs: FeatureSet) -> None:
    before = fs["val"]
    assert "targets.soh.transformed" not in before.columns
    fs.fit_transform(Negate(), domain="targets")
    val = fs["val"]
    assert "targets.soh.transformed" in val.columns
    np.testing.assert_array_equal(val.indices, before.indices)
    np.testing.assert_array_equal(val.get_targets("numpy", rep="transformed"), -val.get_targets("numpy"))


def test_undo_restores_raw_bit_for_bit(fs: FeatureSet) -> None:
    original = _snapshot(fs)
    fs.fit_transform(CenterScaler(), domain="features", merged_axes=(0, 2), fit_to_split="train")
    fs.fit_transform(PerSampleMinMaxScaler(), domain="targets")
    fs.undo_last_transform("targets")
    fs.undo_last_transform("features")
    assert fs.scaler_records == []
    _assert_same_data(_snapshot(fs), original)
    assert fs["train"].columns == fs.collection.schema.names


def test_undo_of_a_chained_scaler_restores_the_previous_transform_exactly(fs: FeatureSet) -> None:
    fs.fit_transform(CenterScaler(), domain="features", keys="voltage", fit_to_split="train")
    after_first = _snapshot(fs)
    fs.fit_transform(PerSampleMinMaxScaler(feature_range=(-3, 7)), domain="features", keys="voltage")
    assert fs.scaler_records[1].is_chained
    assert fs.scaler_records[1].input_rep == "transformed"
    fs.undo_last_transform("features", keys="voltage")
    _assert_same_data(_snapshot(fs), after_first)
    assert [r.order for r in fs.scaler_records] == [0]


def test_chained_scalers_undo_in_reverse_order_only(fs: FeatureSet) -> None:
    raw = _snapshot(fs)
    fs.fit_transform(CenterScaler(), domain="features", merged_axes=(0, 2), fit_to_split="train")
    fs.fit_transform(Negate(), domain="features", keys=["voltage"])
    assert fs.scaler_records[1].input_rep == "transformed"
    with pytest.raises(ValueError, match=r"Cannot undo #0 CenterScaler on features \['voltage', 'current'\]") as info:
        fs.undo_last_transform("features", keys=["voltage", "current"])
    assert "the more recent transform #1 Negate on features ['voltage'] (fit to all samples" in str(info.value)
    assert "undo_last_transform('features', keys=['voltage'])" in str(info.value)
    with pytest.raises(ValueError, match=r"also transforms \['current'\]"):
        fs.undo_all_transforms("features", keys="voltage")  # undoes Negate, then stops at the shared scaler
    assert [r.scaler.scaler_name for r in fs.scaler_records] == ["CenterScaler"]
    with pytest.raises(ValueError, match=r"No transform was applied to exactly features \['voltage'\]"):
        fs.undo_last_transform("features", keys="voltage")
    fs.undo_last_transform("features")
    _assert_same_data(_snapshot(fs), raw)
    with pytest.raises(ValueError, match=r"No transform was applied to features \['voltage', 'current'\]"):
        fs.undo_last_transform("features")


def test_undo_all_transforms_everywhere(fs: FeatureSet) -> None:
    raw = _snapshot(fs)
    fs.fit_transform(CenterScaler(), domain="targets", fit_to_split="train")
    fs.fit_transform(Negate(), domain="targets")
    fs.fit_transform("PerSampleZeroStart", domain="features", keys="current")
    fs.fit_transform("Absolute", domain="features", keys="voltage")
    fs.undo_all_transforms("targets")
    assert [r.domain for r in fs.scaler_records] == ["features", "features"]
    fs.undo_all_transforms(keys="current")  # the domain is found from the key
    assert [r.scaler.scaler_name for r in fs.scaler_records] == ["Absolute"]
    fs.undo_all_transforms()
    _assert_same_data(_snapshot(fs), raw)


def test_scalers_on_separate_keys_undo_independently(fs: FeatureSet) -> None:
    fs.fit_transform(Negate(), domain="features", keys="voltage")
    fs.fit_transform(CenterScaler(), domain="features", keys="current")
    expected_current = np.array(fs.get_features("numpy", keys="current", rep="transformed"))
    fs.undo_last_transform("features", keys="voltage")  # no later transform touches voltage
    assert "features.voltage.transformed" not in fs.collection.schema.names
    np.testing.assert_array_equal(fs.get_features("numpy", keys="current", rep="transformed"), expected_current)


def test_unscale_predictions_of_an_identity_model_gives_raw_targets(fs: FeatureSet) -> None:
    fs.fit_transform(CenterScaler(), domain="targets", fit_to_split="train")
    fs.fit_transform(Negate(), domain="targets")
    val = fs["val"]
    predictions = val.get_targets("numpy", rep="transformed").reshape(-1, 1)  # an identity model's (N, 1) output
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unscaled = fs.unscale_data_for_cols(data=predictions, domain="targets", columns="soh")
    assert unscaled.shape == predictions.shape
    np.testing.assert_allclose(unscaled[:, 0], val.get_targets("numpy"), rtol=1e-6)
    scalers = fs.iter_scalers_on_cols(domain="targets", columns="soh")
    assert [s.scaler_name for s in scalers] == ["Negate", "CenterScaler"]  # newest to oldest


def test_unscale_needs_the_uuids_of_per_sample_scalers_and_warns_when_partial(fs: FeatureSet) -> None:
    fs.fit_transform(CenterScaler(), domain="targets", fit_to_split="train")
    fs.fit_transform("Absolute", domain="targets")
    val = fs["val"].take(np.arange(len(fs["val"]))[::-1])  # rows in another order
    predictions = val.get_targets("numpy", rep="transformed")
    unscaled = fs.unscale_data_for_cols(
        data=predictions, domain="targets", columns=["soh"], sample_uuids=val.get_sample_uuids()
    )
    np.testing.assert_allclose(unscaled, val.get_targets("numpy"), rtol=1e-6)
    with pytest.warns(ModularMLWarning, match=r"Only partially unscaled targets \['soh'\].*pass sample_uuids="):
        partial = fs.unscale_data_for_cols(data=predictions, domain="targets", columns="soh")
    np.testing.assert_array_equal(partial, predictions)


def test_unscale_warns_for_a_scaler_without_inverse(fs: FeatureSet) -> None:
    fs.fit_transform(OneWay(), domain="targets")
    fs.fit_transform(Negate(), domain="targets")
    data = fs.get_targets("numpy", rep="transformed")
    with pytest.warns(ModularMLWarning, match=r"#0 OneWay .* has no inverse_transform\(\)\. Inverted 1 of 2 scalers"):
        partial = fs.unscale_data_for_cols(data=data, domain="targets", columns="soh")
    np.testing.assert_allclose(partial, -data)


def test_unscale_checks_shapes_and_columns(fs: FeatureSet) -> None:
    fs.fit_transform(CenterScaler(), domain="features", merged_axes=(0, 2))
    data = fs.get_features("numpy", rep="transformed")  # (N, 2, N_POINTS)
    unscaled = fs.unscale_data_for_cols(data=data, domain="features", columns=["voltage", "current"])
    np.testing.assert_allclose(unscaled, fs.get_features("numpy"), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=rf"holds {N_POINTS} values per sample, but features columns"):
        fs.unscale_data_for_cols(data=data[:, 0], domain="features", columns=["voltage", "current"])
    with pytest.raises(ValueError, match=r"Cannot invert features \['voltage'\] on their own.*also \['current'\]"):
        fs.unscale_data_for_cols(data=data[:, 0], domain="features", columns="voltage")
    with pytest.raises(ValueError, match=r"also \['current'\]"):
        fs.iter_scalers_on_cols(domain="features", columns="voltage")
    assert fs.iter_scalers_on_cols(domain="targets", columns="soh") == []


def test_per_sample_scalers_on_curves(fs: FeatureSet) -> None:
    fs.fit_transform(PerSampleMinMaxScaler(), domain="features", keys="voltage")
    curves = fs.get_features("numpy", keys="voltage", rep="transformed")
    assert curves.shape == (60, N_POINTS)
    np.testing.assert_allclose(curves.min(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(curves.max(axis=1), 1, atol=1e-6)
    rows = np.array([7, 3, 41])
    view = fs.take(rows)
    restored = fs.unscale_data_for_cols(
        data=curves[rows], domain="features", columns="voltage", sample_uuids=view.get_sample_uuids()
    )
    np.testing.assert_allclose(restored, fs.get_features("numpy", keys="voltage")[rows], rtol=1e-5)
    # both curves scaled per sample and per column: merge the samples with the column axis
    fs.fit_transform("PerSampleZeroStart", domain="features", merged_axes=(0, 1))
    both = fs.get_features("numpy", rep="transformed")
    np.testing.assert_array_equal(both[:, :, 0], 0)
    restored = fs.unscale_data_for_cols(
        data=both, domain="features", columns=["voltage", "current"], sample_uuids=fs.get_sample_uuids()
    )
    np.testing.assert_allclose(restored, fs.get_features("numpy"), rtol=1e-5, atol=1e-6)


def test_merged_axes_on_3d_data(fs: FeatureSet) -> None:
    with pytest.raises(ValueError, match=rf"stack to shape \(N, 2, {N_POINTS}\), which is 3-D.*Pass merged_axes"):
        fs.fit_transform(CenterScaler(), domain="features")
    fs.fit_transform(CenterScaler(), domain="features", merged_axes=(0, 2), fit_to_split="train")
    record = fs.scaler_records[0]
    assert record.merged_axes == (0, 2)
    train = fs["train"]
    np.testing.assert_allclose(
        record.scaler.scaler.mean_,
        [train.get_features("numpy", keys="voltage").mean(), train.get_features("numpy", keys="current").mean()],
        rtol=1e-5,
    )
    fs.undo_last_transform("features")
    fs.fit_transform(CenterScaler(), domain="features", merged_axes=(1, 2))
    assert fs.scaler_records[0].scaler.scaler.mean_.shape == (2 * N_POINTS,)
    transformed = fs.get_features("numpy", rep="transformed")
    np.testing.assert_allclose(transformed.mean(axis=0), 0, atol=1e-3)
    fs.undo_all_transforms()
    fs.fit_transform(CenterScaler(), domain="features", merged_axes=(-1, 0))  # negative axes count from the end
    assert fs.scaler_records[0].merged_axes == (0, 2)
    with pytest.raises(
        ValueError, match=r"names axis 3, but the stacked columns, shaped \(N, 2, 20\), have axes 0 to 2"
    ):
        fs.fit_transform(CenterScaler(), domain="features", merged_axes=(1, 3))
    with pytest.raises(ValueError, match=r"Merging axes \(2,\).*leaves 3 dimensions"):
        fs.fit_transform(CenterScaler(), domain="features", merged_axes=2)
    with pytest.raises(ValueError, match="repeats an axis"):
        fs.fit_transform(CenterScaler(), domain="features", merged_axes=(1, -2))


def test_a_single_column_of_maps_is_flattened_automatically() -> None:
    maps = np.random.default_rng(3).normal(size=(12, 4, 5)).astype(np.float32)
    fs = mml.FeatureSet.from_dict("maps", {"m": maps, "y": np.arange(12.0)}, feature_keys="m", target_keys="y")
    fs.fit_transform(CenterScaler(), domain="features")
    assert fs.scaler_records[0].scaler.scaler.mean_.shape == (20,)
    out = fs.get_features("numpy", rep="transformed")
    assert out.shape == (12, 4, 5)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    fs.undo_last_transform("features")
    fs.fit_transform(CenterScaler(), domain="features", merged_axes=(0, 2))  # statistics per map row
    assert fs.scaler_records[0].scaler.scaler.mean_.shape == (4,)


def test_bad_domain_keys_and_split_names_are_named(fs: FeatureSet) -> None:
    with pytest.raises(ValueError, match="'featurez'"):
        fs.fit_transform(Negate(), domain="featurez")
    with pytest.raises(ValueError, match=r"no features key 'volts'; its features keys are \['voltage', 'current'\]"):
        fs.fit_transform(Negate(), domain="features", keys=["voltage", "volts"])
    with pytest.raises(ValueError, match=r"no split 'tarin'.*available splits: \['train', 'val'\]"):
        fs.fit_transform(Negate(), domain="targets", fit_to_split="tarin")
    with pytest.raises(ValueError, match=r"no features key 'features\.voltage'.*e\.g\. 'voltage'"):
        fs.fit_transform(Negate(), domain="features", keys="features.voltage")
    with pytest.raises(ValueError, match="'soh'"):
        fs.undo_last_transform("features", keys="soh")
    with pytest.raises(ValueError, match="'targetz'"):
        fs.undo_all_transforms("targetz")
    with pytest.raises(ValueError, match="no key 'nope'"):
        fs.undo_all_transforms(keys="nope")
    with pytest.raises(ValueError, match="'sho'"):
        fs.unscale_data_for_cols(data=np.zeros(3), domain="targets", columns="sho")
    with pytest.raises(ValueError, match=r"'tags\.cell_id\.raw' holds text"):
        fs.fit_transform(Negate(), domain="tags", keys="cell_id")
    with pytest.raises(TypeError, match="fit_transform\\(\\) needs a scaler"):
        fs.fit_transform(object(), domain="targets")


@pytest.mark.parametrize(
    "scaler", [Exploding(), Shrinking(), "NoSuchScaler"], ids=["fit raises", "changes shape", "unknown"]
)
def test_a_failing_fit_leaves_the_featureset_unchanged(fs: FeatureSet, scaler: Any) -> None:
    fs.fit_transform(Negate(), domain="targets")
    before = _snapshot(fs)
    records = fs.scaler_records
    with pytest.raises((RuntimeError, ValueError)):
        fs.fit_transform(scaler, domain="features", merged_axes=(0, 2), fit_to_split="train")
    _assert_same_data(_snapshot(fs), before)
    assert fs.scaler_records == records


def test_copy_restores_scalers_exactly(fs: FeatureSet) -> None:
    fs.fit_transform(CenterScaler(), domain="features", merged_axes=(0, 2), fit_to_split="train")
    fs.fit_transform(PerSampleMinMaxScaler(), domain="features", keys="voltage")
    fs.fit_transform(CenterScaler(with_std=False), domain="targets", fit_to_split="val")
    copy = fs.copy(label="copy", restore_splits=True, restore_scalers=True, register=True)
    _assert_same_data(_snapshot(copy), _snapshot(fs))
    assert [r.describe() for r in copy.scaler_records] == [r.describe() for r in fs.scaler_records]
    for mine, theirs in zip(fs.scaler_records, copy.scaler_records, strict=True):
        assert mine.scaler is not theirs.scaler
        assert theirs.scaler.is_fit
    copy.undo_all_transforms()
    assert len(fs.scaler_records) == 3  # the original is untouched
    plain = fs.copy(label="plain")
    assert plain.collection.schema.names == fs.collection.schema.column_names(rep="raw")
    assert plain.scaler_records == []


def test_scaler_records_and_transformed_columns_survive_save_and_load(
    fs: FeatureSet, tmp_path: Path, register_test_scalers
) -> None:
    register_test_scalers(CenterScaler)
    fs.fit_transform(CenterScaler(), domain="targets", fit_to_split="train")
    fs.fit_transform("Absolute", domain="targets")
    segmented = Scaler("SegmentedScaler", scaler_kwargs={"boundaries": (0, 5), "scaler": "PerSampleMinMaxScaler"})
    fs.fit_transform(segmented, domain="features", keys="voltage")
    before = _snapshot(fs)
    path = fs.save(tmp_path / "scaled")
    with mml.ExperimentContext(registration_policy="error").activate():
        loaded = FeatureSet.load(path)
    _assert_same_data(_snapshot(loaded), before)
    assert [r.describe() for r in loaded.scaler_records] == [r.describe() for r in fs.scaler_records]
    assert loaded.scaler_records[0].fit_to_split == "train"
    val = loaded["val"]
    unscaled = loaded.unscale_data_for_cols(
        data=val.get_targets("numpy", rep="transformed"),
        domain="targets",
        columns="soh",
        sample_uuids=val.get_sample_uuids(),
    )
    np.testing.assert_allclose(unscaled, val.get_targets("numpy"), rtol=1e-6)
    loaded.undo_last_transform("targets")
    np.testing.assert_array_equal(
        loaded.get_targets("numpy", rep="transformed"),
        loaded.scaler_records[0].scaler.transform(loaded.get_targets("numpy").reshape(-1, 1))[:, 0],
    )
    copy = loaded.copy(label="again", restore_splits=True, restore_scalers=True, register=True)
    _assert_same_data(_snapshot(copy), _snapshot(loaded))


def test_summary_lists_the_scalers(fs: FeatureSet) -> None:
    fs.fit_transform(CenterScaler(), domain="targets", fit_to_split="train")
    assert "scaler #0 CenterScaler on targets ['soh'] (fit to 'train')" in fs.summary()


def test_a_scaler_reads_raw_unless_every_selected_key_has_transformed(fs: FeatureSet) -> None:
    user_scaler = CenterScaler()
    fs.fit_transform(user_scaler, domain="features", keys="voltage")
    assert not hasattr(user_scaler, "mean_")  # the FeatureSet fits its own clone
    voltage_after_first = np.array(fs.get_features("numpy", keys="voltage", rep="transformed"))
    fs.fit_transform(Negate(), domain="features", merged_axes=(0, 2))  # current has no transformed: both read raw
    assert fs.scaler_records[1].input_rep == "raw"
    np.testing.assert_array_equal(fs.get_features("numpy", rep="transformed"), -fs.get_features("numpy"))
    assert [s.scaler_name for s in fs.iter_scalers_on_cols(domain="features", columns=["voltage", "current"])] == [
        "Negate"
    ]
    fs.undo_last_transform("features")  # the older scaler's output for voltage comes back
    np.testing.assert_array_equal(fs.get_features("numpy", keys="voltage", rep="transformed"), voltage_after_first)
    assert "features.current.transformed" not in fs.collection.schema.names


def test_refit_scalers_fits_every_record_again_on_another_split(fs: FeatureSet) -> None:
    fs.fit_transform(CenterScaler(), domain="targets", fit_to_split="train")
    fs.fit_transform(CenterScaler(with_std=False), domain="targets", fit_to_split="train")  # chained on the first
    fs.refit_scalers("val")
    first, second = fs.scaler_records
    raw = fs.get_targets("numpy")
    val_rows = fs["val"].valid_indices
    assert (first.fit_to_split, second.fit_to_split) == ("val", "val")
    np.testing.assert_array_equal(first.fit_indices, val_rows)
    np.testing.assert_allclose(first.scaler.scaler.mean_, [raw[val_rows].mean()], rtol=1e-6)
    assert abs(fs["val"].get_targets("numpy", rep="transformed").mean()) < 1e-5
    assert abs(fs["train"].get_targets("numpy", rep="transformed").mean()) > 1e-3
    before = _snapshot(fs)
    with pytest.raises(ValueError, match="no split 'nope'"):
        fs.refit_scalers("nope")
    _assert_same_data(before, _snapshot(fs))  # nothing changed
