"""SimpleSampler: epochs, shuffling, drop_last, group_by, stratify_by, streams, binding."""

from __future__ import annotations

import numpy as np
import pytest

from modularml.batches import BatchView
from modularml.data import FeatureSet
from modularml.samplers import STREAM_DEFAULT, SampledView, SamplerNotReadyError, SimpleSampler


def _fs(n: int = 103, label: str = "data") -> FeatureSet:
    rng = np.random.default_rng(0)
    classes = np.repeat(np.array(["a", "b", "c"]), [n // 2, n // 3, n - n // 2 - n // 3])
    return FeatureSet.from_dict(
        label,
        {
            "x": rng.random((n, 3), dtype=np.float32),
            "y": rng.random(n),
            "group": rng.integers(0, 7, n),
            "label": rng.permutation(classes),
        },
        "x",
        "y",
        ["group", "label"],
    )


def _indices(batches: list[BatchView]) -> list[np.ndarray]:
    return [b.role_indices["default"] for b in batches]


def test_every_sample_exactly_once_per_epoch() -> None:
    fs = _fs()
    sampler = SimpleSampler(batch_size=16, shuffle=True, drop_last=False, seed=3, source=fs)
    for epoch in range(3):
        batches = sampler.get_batches(epoch=epoch)
        assert [len(b) for b in batches] == [16] * 6 + [7]
        seen = np.concatenate(_indices(batches))
        np.testing.assert_array_equal(np.sort(seen), np.arange(103))
    assert sampler.num_batches == 7
    assert sampler.role_names == ["default"]
    assert all(b.role_indice_weights is None for b in batches)


def test_drop_last_drops_only_the_short_last_batch() -> None:
    fs = _fs()
    keep = SimpleSampler(batch_size=10, source=fs).get_batches()
    drop = SimpleSampler(batch_size=10, drop_last=True, source=fs).get_batches()
    assert [len(b) for b in keep] == [10] * 10 + [3]
    assert [len(b) for b in drop] == [10] * 10
    for kept, dropped in zip(keep, drop, strict=False):
        np.testing.assert_array_equal(kept.role_indices["default"], dropped.role_indices["default"])
    exact = SimpleSampler(batch_size=103, drop_last=True, source=fs).get_batches()
    assert [len(b) for b in exact] == [103]
    with pytest.raises(ValueError, match="drops every sample"):
        SimpleSampler(batch_size=200, drop_last=True, source=fs).get_batches()


def test_shuffle_false_is_source_order_every_epoch() -> None:
    fs = _fs()
    view = fs.take(np.arange(50, 0, -1))
    sampler = SimpleSampler(batch_size=8, source=view)
    first = np.concatenate(_indices(sampler.get_batches()))
    np.testing.assert_array_equal(first, view.indices)
    np.testing.assert_array_equal(np.concatenate(_indices(sampler.get_batches(epoch=4))), first)


def test_shuffle_is_reproducible_and_differs_per_epoch_and_seed() -> None:
    fs = _fs()
    one = SimpleSampler(batch_size=16, shuffle=True, seed=1, source=fs)
    same = SimpleSampler(batch_size=16, shuffle=True, seed=1, source=fs)
    other = SimpleSampler(batch_size=16, shuffle=True, seed=2, source=fs)
    for epoch in (0, 1):
        for a, b in zip(_indices(one.get_batches(epoch=epoch)), _indices(same.get_batches(epoch=epoch)), strict=True):
            np.testing.assert_array_equal(a, b)
    order = np.concatenate(_indices(one.get_batches()))
    assert not np.array_equal(order, np.concatenate(_indices(other.get_batches())))
    assert not np.array_equal(order, np.concatenate(_indices(one.get_batches(epoch=1))))
    np.testing.assert_array_equal(order, np.concatenate(_indices(one.get_batches(epoch=0))))  # epochs repeat


def test_seed_none_draws_and_keeps_a_seed() -> None:
    fs = _fs()
    sampler = SimpleSampler(batch_size=16, shuffle=True, source=fs)
    assert isinstance(sampler.seed, int)
    again = SimpleSampler.from_config(sampler.get_config())
    again.bind_sources(fs)
    for a, b in zip(_indices(sampler.get_batches()), _indices(again.get_batches()), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shuffle", [False, True])
def test_group_by_keeps_each_group_inside_one_batch(shuffle: bool) -> None:
    fs = _fs()
    groups = fs.get_tags("dict_numpy")["group"]
    sampler = SimpleSampler(batch_size=6, group_by="group", shuffle=shuffle, seed=0, source=fs)
    batches = sampler.get_batches()
    for batch in batches:
        assert len(np.unique(groups[batch.role_indices["default"]])) == 1
        assert len(batch) <= 6
    np.testing.assert_array_equal(np.sort(np.concatenate(_indices(batches))), np.arange(103))
    sizes = np.bincount(groups)
    assert len(batches) == int((-(-sizes // 6)).sum())
    dropped = SimpleSampler(batch_size=6, group_by="group", drop_last=True, source=fs).get_batches()
    assert all(len(b) == 6 for b in dropped)
    assert len(dropped) == int((sizes // 6).sum())


@pytest.mark.parametrize("shuffle", [False, True])
def test_stratify_by_keeps_class_proportions_per_batch(shuffle: bool) -> None:
    fs = _fs(n=120)
    labels = fs.get_tags("dict_numpy")["label"]
    classes, counts = np.unique(labels, return_counts=True)
    share = counts / counts.sum()
    sampler = SimpleSampler(batch_size=12, stratify_by="label", shuffle=shuffle, seed=4, source=fs)
    batches = sampler.get_batches()
    for batch in batches:
        in_batch = labels[batch.role_indices["default"]]
        per_class = np.array([(in_batch == c).sum() for c in classes])
        assert (np.abs(per_class - len(batch) * share) < 1).all(), per_class
    np.testing.assert_array_equal(np.sort(np.concatenate(_indices(batches))), np.arange(120))


def test_stratify_interleaves_equal_strata_round_robin() -> None:
    fs = FeatureSet.from_dict("rr", {"x": np.arange(9.0), "k": ["a", "b", "c"] * 3}, "x", [], "k")
    batch = SimpleSampler(batch_size=9, stratify_by="k", source=fs).get_batches()[0]
    labels = fs.get_tags("dict_numpy")["k"][batch.role_indices["default"]]
    assert list(labels) == ["a", "b", "c"] * 3


def test_strict_stratification_names_the_strata_that_are_too_small() -> None:
    labels = ["big"] * 95 + ["rare"] * 5
    fs = FeatureSet.from_dict("skewed", {"x": np.arange(100.0), "label": labels}, "x", [], "label")
    with pytest.raises(ValueError, match=r"rare \(5 samples\).*strict_stratification=False"):
        SimpleSampler(batch_size=10, stratify_by="label", source=fs).get_batches()
    loose = SimpleSampler(batch_size=10, stratify_by="label", strict_stratification=False, source=fs)
    assert loose.num_batches == 10
    fine = SimpleSampler(batch_size=20, stratify_by="label", source=fs).get_batches()
    assert len(fine) == 5


def test_group_by_and_stratify_by_are_exclusive() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        SimpleSampler(group_by="a", stratify_by="b")
    with pytest.raises(ValueError, match="batch_size"):
        SimpleSampler(batch_size=0)


def test_binding_materialising_and_errors() -> None:
    fs = _fs()
    sampler = SimpleSampler(batch_size=50)
    assert not sampler.is_bound
    assert not sampler.is_materialized
    with pytest.raises(SamplerNotReadyError, match="bind_sources"):
        sampler.get_batches()
    with pytest.raises(RuntimeError):
        _ = sampler.num_batches
    sampler.bind_sources([fs])
    assert sampler.is_bound
    assert not sampler.is_materialized
    sampled = sampler.materialize_batches(show_progress=False)
    assert isinstance(sampled, SampledView)
    assert sampler.is_materialized
    assert sampled.num_batches == 3
    assert sampler.stream_names == [STREAM_DEFAULT]
    assert sampler.get_stream(STREAM_DEFAULT) == sampler.get_batches()
    with pytest.raises(KeyError, match="streams"):
        sampler.get_stream("train")
    with pytest.raises(TypeError, match="FeatureSet"):
        sampler.bind_sources([np.zeros(3)])
    sampler.bind_sources(fs.take(np.arange(10)))
    assert not sampler.is_materialized
    assert sampler.num_batches == 1


def test_several_sources_give_one_stream_each() -> None:
    first, second = _fs(label="first"), _fs(n=40, label="second")
    sampler = SimpleSampler(batch_size=20, source=[first, second])
    assert sampler.stream_names == ["first", "second"]
    assert len(sampler.get_stream("first")) == 6
    assert len(sampler.get_stream("second")) == 2
    assert sampler.get_stream("second")[0].source is second
    assert sampler.num_batches == 2
    with pytest.raises(ValueError, match="several output streams"):
        sampler.get_batches()
    steps = list(sampler.sampled_view())
    assert len(steps) == 2
    assert set(steps[0]) == {"first", "second"}
    with pytest.raises(ValueError, match="one view per FeatureSet"):
        sampler.bind_sources([first, first.take([0, 1])])


def test_batches_materialise_the_bound_view_columns() -> None:
    fs = _fs()
    view = fs.take(np.arange(20)).select(features="x", targets="y")
    batch = SimpleSampler(batch_size=5, source=view).get_batches()[0].materialize_batch()
    assert batch.features.shape == (5, 3)
    assert batch.tags is None
    np.testing.assert_array_equal(batch.sample_uuids, fs.get_sample_uuids()[:5])


def test_batches_see_representations_added_after_sampling() -> None:
    from modularml.data import ColumnSpec

    fs = _fs()
    sampler = SimpleSampler(batch_size=4, source=fs)
    view = sampler.get_batches()[0]
    spec = ColumnSpec("targets", "y", "transformed", (), "float64")
    fs._collection = fs.collection.with_columns({spec: -fs.get_targets("numpy")})  # as a scaler would
    batch = view.materialize_batch()
    np.testing.assert_array_equal(batch.targets, -fs.get_targets("numpy")[:4])
    np.testing.assert_array_equal(view.materialize_batch(rep="raw").targets, fs.get_targets("numpy")[:4])
