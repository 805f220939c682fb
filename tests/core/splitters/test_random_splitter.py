from __future__ import annotations

import numpy as np
import pytest

from modularml.data import FeatureSet
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.splitters import RandomSplitter
from modularml.splitters.random_splitter import largest_remainder


def _fs(n: int = 100, groups: int = 10, label: str = "data") -> FeatureSet:
    rng = np.random.default_rng(0)
    group = np.arange(n) * groups // n
    return FeatureSet.from_dict(
        label,
        {
            "x": rng.random((n, 3)),
            "y": rng.random(n),
            "group": np.char.add("g", group.astype(str)),
            "cls": np.where(np.arange(n) % 4 == 0, "rare", "common"),
        },
        "x",
        "y",
        ["group", "cls"],
    )


def _split(fs, splitter: RandomSplitter) -> dict[str, np.ndarray]:
    return splitter.split_indices(fs.to_view())


def test_largest_remainder_counts() -> None:
    assert largest_remainder(np.array([0.5, 0.3, 0.2]), 10).tolist() == [5, 3, 2]
    assert largest_remainder(np.array([1 / 3, 1 / 3, 1 / 3]), 10).tolist() == [4, 3, 3]
    assert largest_remainder(np.array([0.7, 0.15, 0.15]), 7).tolist() == [5, 1, 1]
    assert largest_remainder(np.array([0.29, 0.71]), 100).tolist() == [29, 71]
    rows = largest_remainder(np.array([0.8, 0.2]), np.array([5, 10, 1]))
    assert rows.tolist() == [[4, 1], [8, 2], [1, 0]]
    assert largest_remainder(np.array([0.6, 0.4]), np.arange(100)).sum(axis=1).tolist() == list(range(100))


def test_ratios_partition_all_samples_in_source_order() -> None:
    fs = _fs(97)
    parts = _split(fs, RandomSplitter({"train": 0.7, "val": 0.2, "test": 0.1}, seed=1))
    assert [len(p) for p in parts.values()] == [68, 19, 10]
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(97))
    assert all(np.all(np.diff(p) > 0) for p in parts.values())


def test_same_seed_same_splits_other_seed_other_splits() -> None:
    fs = _fs()
    a = _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, seed=3))
    b = _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, seed=3))
    c = _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, seed=4))
    assert a["a"].tolist() == b["a"].tolist()
    assert a["a"].tolist() != c["a"].tolist()


def test_known_assignment_is_stable_across_machines() -> None:
    # PCG64 and numpy's permutation are platform-independent: pin the exact result
    fs = _fs(10, 10)
    parts = _split(fs, RandomSplitter({"a": 0.6, "b": 0.4}, seed=13))
    assert parts["a"].tolist() == np.sort(np.random.default_rng(13).permutation(10)[:6]).tolist()


def test_group_by_keeps_groups_whole_and_is_shuffled_by_seed() -> None:
    fs = _fs(100, 10)
    group = fs.get_tags()["group"]
    seen = set()
    for seed in range(6):
        parts = _split(fs, RandomSplitter({"train": 0.8, "val": 0.2}, group_by="group", seed=seed))
        train_groups, val_groups = set(group[parts["train"]]), set(group[parts["val"]])
        assert not train_groups & val_groups
        assert len(train_groups) == 8
        assert len(val_groups) == 2
        seen.add(frozenset(val_groups))
    assert len(seen) > 1  # different seeds move different groups


def test_group_by_several_columns() -> None:
    fs = _fs(100, 10)
    parts = _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, group_by=["group", "cls"], seed=0))
    tags = fs.get_tags()
    pairs = {(g, c) for g, c in zip(tags["group"], tags["cls"], strict=True)}
    a = {(tags["group"][i], tags["cls"][i]) for i in parts["a"]}
    b = {(tags["group"][i], tags["cls"][i]) for i in parts["b"]}
    assert not a & b
    assert a | b == pairs


def test_stratify_keeps_class_proportions() -> None:
    fs = _fs(100)
    parts = _split(fs, RandomSplitter({"train": 0.6, "val": 0.2, "test": 0.2}, stratify_by="cls", seed=2))
    cls = fs.get_tags()["cls"]
    for name, expected_rare in (("train", 15), ("val", 5), ("test", 5)):
        assert (cls[parts[name]] == "rare").sum() == expected_rare
    assert [len(p) for p in parts.values()] == [60, 20, 20]


def test_strict_stratification_rejects_tiny_strata() -> None:
    fs = FeatureSet.from_dict("tiny", {"x": np.arange(11.0), "c": ["a"] * 10 + ["b"]}, "x", [], "c")
    parts = _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, stratify_by="c", seed=0))
    assert sum(len(p) for p in parts.values()) == 11
    with pytest.raises(InvalidArgumentError, match=r"strata \('b',\) \(1 samples\) are too small"):
        _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, stratify_by="c", strict_stratification=True))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ({"a": 0.5, "b": 0.6}, {}, InvalidArgumentError, "sum to 1.*sums to 1.1"),
        ({}, {}, InvalidArgumentError, "maps split names"),
        ({"a": 0.0, "b": 1.0}, {}, InvalidArgumentError, "ratio of split 'a' must be positive"),
        ({"a": "half", "b": 0.5}, {}, InvalidTypeError, "must be a number"),
        ({"bad name": 1.0}, {}, InvalidArgumentError, "split name"),
        ({"a": 0.5, "b": 0.5}, {"group_by": "g", "stratify_by": "c"}, InvalidArgumentError, "cannot be combined"),
        ({"a": 0.5, "b": 0.5}, {"seed": 1.5}, InvalidTypeError, "seed"),
    ],
)
def test_invalid_configurations(args, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        RandomSplitter(args, **kwargs)


def test_ratio_tolerance() -> None:
    RandomSplitter({"a": 0.3333333, "b": 0.3333333, "c": 0.3333334})
    with pytest.raises(InvalidArgumentError):
        RandomSplitter({"a": 0.5, "b": 0.49999})


def test_empty_split_raises_naming_it() -> None:
    fs = _fs(10, 10)
    with pytest.raises(InvalidArgumentError, match=r"Split 'c' \(ratio 0.01\) would be empty: 10 samples"):
        _split(fs, RandomSplitter({"a": 0.5, "b": 0.49, "c": 0.01}))
    with pytest.raises(InvalidArgumentError, match="10 groups"):
        _split(fs, RandomSplitter({"a": 0.5, "b": 0.49, "c": 0.01}, group_by="group"))


def test_nan_group_keys_and_array_columns_raise() -> None:
    fs = FeatureSet.from_dict("nan", {"x": np.ones((4, 2)), "g": [1.0, np.nan, 2.0, 2.0]}, "x", [], "g")
    with pytest.raises(InvalidArgumentError, match=r"'tags.g.raw' has 1 NaN"):
        _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, group_by="g"))
    with pytest.raises(InvalidArgumentError, match="holds arrays"):
        _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, group_by="x"))
    with pytest.raises(KeyError, match="nope"):
        _split(fs, RandomSplitter({"a": 0.5, "b": 0.5}, stratify_by="nope"))


def test_seed_none_draws_and_keeps_a_seed() -> None:
    splitter = RandomSplitter({"a": 0.5, "b": 0.5}, seed=None)
    assert isinstance(splitter.seed, int)
    fs = _fs()
    assert _split(fs, splitter)["a"].tolist() == _split(fs, splitter)["a"].tolist()


def test_config_round_trip() -> None:
    splitter = RandomSplitter({"a": 0.25, "b": 0.75}, group_by="group", seed=9)
    assert splitter.get_config() == {
        "ratios": {"a": 0.25, "b": 0.75},
        "group_by": ["group"],
        "stratify_by": None,
        "strict_stratification": False,
        "seed": 9,
    }
    assert RandomSplitter.from_config(splitter.get_config()) == splitter
    assert "RandomSplitter(ratios=" in repr(splitter)


def test_splitting_a_view_only_uses_its_rows() -> None:
    fs = _fs(100)
    view = fs.take(np.arange(50, 100))
    parts = RandomSplitter({"a": 0.5, "b": 0.5}, seed=0).split_indices(view)
    assert np.concatenate(list(parts.values())).min() >= 50
    assert sum(len(p) for p in parts.values()) == 50
