from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modularml.data import FeatureSet
from modularml.errors import SerializationError
from modularml.plugins import PluginManager, hookimpl
from modularml.splitters import BaseSplitter, ConditionSplitter, RandomSplitter, SplitterRecord
from modularml.splitters.base import splitter_class


def test_builtin_splitters_register_through_the_hook(manager: PluginManager) -> None:
    registry = manager.registry("splitters")
    assert registry.get("RandomSplitter") is RandomSplitter
    assert registry.get("ConditionSplitter") is ConditionSplitter
    assert registry.entry("RandomSplitter").distribution == "modularml"
    assert splitter_class("RandomSplitter") is RandomSplitter


class EveryOther(BaseSplitter):
    """A third-party splitter: even and odd rows."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def split_indices(self, view) -> dict[str, np.ndarray]:
        rows = view.valid_indices
        return {
            "even": np.sort(rows[(rows + self.offset) % 2 == 0]),
            "odd": np.sort(rows[(rows + self.offset) % 2 == 1]),
        }

    def get_config(self) -> dict[str, Any]:
        return {"offset": self.offset}


class _Plugin:
    @staticmethod
    @hookimpl
    def register_splitters(register) -> None:
        register("EveryOther", EveryOther)


def test_a_plugin_splitter_is_recorded_and_rebuilt(manager: PluginManager) -> None:
    manager.register(_Plugin(), name="every-other", distribution="every-other-dist")
    fs = FeatureSet.from_dict("p", {"x": np.arange(6.0)}, "x", [])
    fs.split(EveryOther(offset=1))
    assert fs["even"].indices.tolist() == [1, 3, 5]
    (record,) = fs.split_records
    state = record.to_state()
    assert state["splitter"] == {"name": "EveryOther", "config": {"offset": 1}}
    rebuilt = SplitterRecord.from_state(state)
    assert rebuilt.splitter == EveryOther(offset=1)


def test_records_of_unknown_or_unsaveable_splitters() -> None:
    with pytest.raises(SerializationError, match="Invalid splitter record"):
        SplitterRecord.from_state({"splitter": {"name": "Missing", "config": {}}, "split_names": ["a"]})
    record = SplitterRecord(ConditionSplitter(a={"x": lambda v: v > 0}), ("a",), description="ConditionSplitter(...)")
    state = record.to_state()
    assert state["splitter"] is None
    assert state["description"] == "ConditionSplitter(...)"
    assert SplitterRecord.from_state(state).splitter is None


def test_splitter_equality_and_hash() -> None:
    a, b = RandomSplitter({"x": 0.5, "y": 0.5}, seed=1), RandomSplitter({"x": 0.5, "y": 0.5}, seed=1)
    assert a == b
    assert hash(a) == hash(b)
    assert a != RandomSplitter({"x": 0.5, "y": 0.5}, seed=2)
