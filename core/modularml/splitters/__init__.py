"""Splitters: turn a FeatureSet (or a view of one) into named row subsets.

The core's splitters, :class:`RandomSplitter` and :class:`ConditionSplitter`, register through the
``register_splitters`` plugin hook like any third-party splitter; subclass :class:`BaseSplitter`
to write one.
"""

from modularml.splitters.base import BaseSplitter, SplitterRecord
from modularml.splitters.condition_splitter import ConditionSplitter
from modularml.splitters.random_splitter import RandomSplitter

__all__ = ["BaseSplitter", "ConditionSplitter", "RandomSplitter", "SplitterRecord"]
