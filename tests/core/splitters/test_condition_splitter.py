from __future__ import annotations

import numpy as np
import pytest

from modularml.data import FeatureSet
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.splitters import ConditionSplitter


@pytest.fixture
def fs() -> FeatureSet:
    return FeatureSet.from_dict(
        "cond",
        {
            "x": np.arange(16.0).reshape(8, 2),
            "temp": [10.0, 25.0, 30.0, 15.0, 22.0, 5.0, 40.0, 20.0],
            "cell": [1, 2, 3, 1, 2, 3, 5, 5],
            "kind": ["a", "b", "a", "b", "a", "b", "a", "b"],
        },
        "x",
        "temp",
        ["cell", "kind"],
    )


def test_literal_collection_and_predicate_conditions(fs: FeatureSet) -> None:
    splitter = ConditionSplitter(
        cold={"temp": lambda t: t < 20},
        warm={"temp": lambda t: t >= 20},
        cell_5={"cell": 5},
        early={"cell": [1, 2], "kind": "a"},
    )
    parts = splitter.split_indices(fs.to_view())
    assert parts["cold"].tolist() == [0, 3, 5]
    assert parts["warm"].tolist() == [1, 2, 4, 6, 7]
    assert parts["cell_5"].tolist() == [6, 7]
    assert parts["early"].tolist() == [0, 4]


def test_columns_by_key_rep_or_qualified_name(fs: FeatureSet) -> None:
    parts = ConditionSplitter(a={"tags.kind.raw": "a"}, b={"kind.raw": "b"}).split_indices(fs.to_view())
    assert parts["a"].tolist() == [0, 2, 4, 6]
    assert parts["b"].tolist() == [1, 3, 5, 7]


def test_splitting_a_view_keeps_to_its_rows(fs: FeatureSet) -> None:
    parts = ConditionSplitter(a={"kind": "a"}).split_indices(fs.take([4, 5, 6]))
    assert parts["a"].tolist() == [4, 6]


def test_registered_on_the_featureset(fs: FeatureSet) -> None:
    fs.split(ConditionSplitter(train={"cell": [1, 2, 3]}, test={"cell": 5}))
    assert fs.available_splits == ["train", "test"]
    assert len(fs["train"]) == 6


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, InvalidArgumentError, "at least one split"),
        ({"a": "cell"}, InvalidTypeError, "must map column names"),
        ({"a": {}}, InvalidArgumentError, "has no condition"),
    ],
)
def test_invalid_conditions(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ConditionSplitter(**kwargs)


def test_unknown_columns_and_empty_splits(fs: FeatureSet) -> None:
    with pytest.raises(KeyError, match="No column matches 'nope'"):
        fs.split(ConditionSplitter(a={"nope": 1}))
    with pytest.raises(InvalidArgumentError, match="empty split 'none'"):
        fs.split(ConditionSplitter(none={"cell": 99}))
    assert fs.n_splits == 0


def test_config_and_serializability(fs: FeatureSet) -> None:
    plain = ConditionSplitter(a={"cell": {3, 1}}, b={"kind": np.str_("b"), "temp": (1.0, 2.0)})
    assert plain.is_serializable
    assert plain.get_config() == {"conditions": {"a": {"cell": [1, 3]}, "b": {"kind": "b", "temp": [1.0, 2.0]}}}
    rebuilt = ConditionSplitter.from_config(plain.get_config())
    assert rebuilt.split_indices(fs.to_view())["a"].tolist() == plain.split_indices(fs.to_view())["a"].tolist()
    with_function = ConditionSplitter(a={"temp": lambda t: t > 0})
    assert not with_function.is_serializable
