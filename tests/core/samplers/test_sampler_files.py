"""Sampler configs, files, registry and top-level exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.errors import SerializationError
from modularml.samplers import (
    BaseSampler,
    NSampler,
    PairedSampler,
    SimpleSampler,
    TripletSampler,
    sampler_class,
)
from modularml.similarity import SimilarityCondition as Cond


def _fs(label: str = "data") -> FeatureSet:
    rng = np.random.default_rng(0)
    n = 80
    return FeatureSet.from_dict(
        label,
        {"x": rng.random(n), "y": np.round(rng.random(n), 2), "g": rng.integers(0, 4, n)},
        "x",
        "y",
        "g",
    )


def _samplers() -> list[BaseSampler]:
    return [
        SimpleSampler(batch_size=7, shuffle=True, group_by="g", drop_last=True, seed=3),
        PairedSampler({"y": Cond(tolerance=0.05, weight_mode="linear", max_weight=3.0)}, batch_size=9, seed=4),
        TripletSampler(
            {"y": Cond(tolerance=0.05)},
            {"y": Cond(mode="dissimilar", tolerance=0.2, allow_fallback=True)},
            max_samples_per_anchor=2,
            choose_best_only=True,
            batch_size=5,
            shuffle=True,
            stratify_by="g",
            strict_stratification=False,
            seed=5,
        ),
        NSampler({"near": {"y": Cond(tolerance=0.1)}, "same": {"g": Cond()}}, batch_size=11, seed=6),
    ]


def _same_batches(first: BaseSampler, second: BaseSampler, epoch: int = 0) -> None:
    one, two = first.get_batches(epoch=epoch), second.get_batches(epoch=epoch)
    assert len(one) == len(two)
    for a, b in zip(one, two, strict=True):
        assert a.roles == b.roles
        for role in a.roles:
            np.testing.assert_array_equal(a.role_indices[role], b.role_indices[role])
            np.testing.assert_array_equal(a.get_role_weights(role), b.get_role_weights(role))


@pytest.mark.parametrize("index", range(4))
def test_config_round_trip_gives_the_same_batches(index: int) -> None:
    fs = _fs()
    sampler = _samplers()[index]
    rebuilt = type(sampler).from_config(sampler.get_config())
    assert rebuilt == sampler
    assert hash(rebuilt) == hash(sampler)
    assert rebuilt.get_config() == sampler.get_config()
    sampler.bind_sources(fs)
    rebuilt.bind_sources(fs)
    _same_batches(sampler, rebuilt)
    _same_batches(sampler, rebuilt, epoch=3)


@pytest.mark.parametrize("index", range(4))
def test_save_and_load_give_the_same_batches(index: int, tmp_path: Path) -> None:
    fs = _fs()
    sampler = _samplers()[index]
    sampler.bind_sources(fs.take(np.arange(5, 75)))
    sampler.materialize_batches(show_progress=False)
    path = sampler.save(tmp_path / "sampler")
    assert path.name == "sampler.sm.mml"
    loaded = BaseSampler.load(path)
    assert type(loaded) is type(sampler)
    assert loaded.is_bound
    assert loaded.is_materialized
    _same_batches(sampler, loaded)
    _same_batches(sampler, loaded, epoch=2)
    assert type(sampler).load(tmp_path / "sampler") == sampler


def test_unbound_samplers_save_config_only(tmp_path: Path) -> None:
    sampler = SimpleSampler(batch_size=4, seed=1)
    loaded = SimpleSampler.load(sampler.save(tmp_path / "plain"))
    assert loaded == sampler
    assert not loaded.is_bound


def test_loading_needs_the_source_featureset(tmp_path: Path) -> None:
    fs = _fs("cells")
    path = SimpleSampler(batch_size=4, source=fs).save(tmp_path / "bound")
    with ExperimentContext(registration_policy="error").activate(), pytest.raises(KeyError, match="Create or load"):
        SimpleSampler.load(path)


def test_loading_checks_the_class_and_the_file(tmp_path: Path) -> None:
    path = SimpleSampler(batch_size=4).save(tmp_path / "simple")
    with pytest.raises(
        SerializationError, match=r"SimpleSampler, not a subclass of modularml\.samplers\.paired\.PairedSampler"
    ):
        PairedSampler.load(path)
    fs_path = _fs().save(tmp_path / "data")
    with pytest.raises(SerializationError, match="not a Sampler"):
        BaseSampler.load(fs_path)
    lambda_metric = PairedSampler({"y": Cond(metric=lambda a, b: a - b)})
    with pytest.raises(SerializationError, match="function"):
        lambda_metric.save(tmp_path / "lambda")


def test_from_config_on_the_base_class_explains_itself() -> None:
    with pytest.raises(TypeError, match="sampler_class"):
        BaseSampler.from_config({})


def test_samplers_are_registered_through_the_plugin_hook() -> None:
    for cls in (SimpleSampler, NSampler, PairedSampler, TripletSampler):
        assert sampler_class(cls.__name__) is cls
        assert cls.registry_name == cls.__name__
    entry = mml.get_plugin_manager().registry("samplers").entry("TripletSampler")
    assert entry.distribution == "modularml"


def test_top_level_exports() -> None:
    assert mml.SimpleSampler is SimpleSampler
    assert mml.STREAM_DEFAULT == "default"
    for name in ("Batch", "BatchView", "SampleData", "RoleData", "ExecutionContext", "SampledView", "BaseSampler"):
        assert name in mml.__all__
        assert getattr(mml, name).__name__ == name
