"""``ConditionSplitter``: named splits defined by conditions on columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.data.conditions import condition_mask, is_serializable_condition
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.splitters.base import BaseSplitter, check_split_name

if TYPE_CHECKING:
    from modularml.data.view import FeatureSetView

__all__ = ["ConditionSplitter"]


def _jsonable(condition: Any) -> Any:
    if isinstance(condition, (set, frozenset)):
        return sorted(_jsonable(v) for v in condition)
    if isinstance(condition, (list, tuple, range, np.ndarray)):
        return [_jsonable(v) for v in condition]
    if isinstance(condition, np.generic):
        return condition.item()
    return condition


class ConditionSplitter(BaseSplitter):
    """Split samples by conditions on their columns: one named split per set of conditions.

    Each keyword is a split name mapped to ``{column: condition}``; a sample belongs to the split
    when it meets every condition. A column is named by key (``"cell_id"``), ``key.rep`` or its
    qualified name. A condition is a literal (equality), a collection of allowed values
    (membership) or a predicate (a callable, tried on the whole column first, see
    :mod:`modularml.data.conditions`). Splits may overlap; ``FeatureSet.split`` then warns.

    Example:
        >>> ConditionSplitter(
        ...     cold={"temperature": lambda t: t < 20},
        ...     warm={"temperature": lambda t: t >= 20},
        ...     cell_5={"cell_id": 5},
        ... )

    Raises:
        ValueError: If no split is given, a split name is invalid, or a split has no condition.
        TypeError: If a split's conditions are not a mapping of column names.
    """

    def __init__(self, **conditions: Mapping[str, Any]) -> None:
        if not conditions:
            raise InvalidArgumentError(
                "ConditionSplitter needs at least one split, e.g. ConditionSplitter(train={'cell_id': [1, 2]})."
            )
        clean: dict[str, dict[str, Any]] = {}
        for name, mapping in conditions.items():
            check_split_name(name)
            if not isinstance(mapping, Mapping):
                raise InvalidTypeError(
                    f"Split {name!r} must map column names to conditions, e.g. {{'cell_id': 5}}; got {mapping!r}."
                )
            if not mapping:
                raise InvalidArgumentError(f"Split {name!r} has no condition; give at least one column condition.")
            for column in mapping:
                if not isinstance(column, str):
                    raise InvalidTypeError(f"Split {name!r}: column names are strings; got {column!r}.")
            clean[name] = dict(mapping)
        self.conditions = clean

    @property
    def is_serializable(self) -> bool:
        """Whether every condition is a literal or collection (predicates cannot be saved)."""
        return all(is_serializable_condition(c) for m in self.conditions.values() for c in m.values())

    def get_config(self) -> dict[str, Any]:
        """``{"conditions": {split: {column: condition}}}``; collections become lists."""
        return {
            "conditions": {
                name: {col: c if callable(c) else _jsonable(c) for col, c in mapping.items()}
                for name, mapping in self.conditions.items()
            }
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ConditionSplitter:
        """Build a splitter from :meth:`get_config` output."""
        return cls(**dict(config["conditions"]))

    def split_indices(self, view: FeatureSetView) -> dict[str, np.ndarray]:
        """The rows of ``view`` meeting each split's conditions (sorted source indices).

        Raises:
            KeyError: If a condition names an unknown column.
            ValueError: If a predicate fails.
        """
        fs = view.source
        rows = view.valid_indices
        columns: dict[str, np.ndarray] = {}
        result: dict[str, np.ndarray] = {}
        for name, mapping in self.conditions.items():
            mask = np.ones(len(rows), dtype=bool)
            for selector, condition in mapping.items():
                column = fs.find_column(selector)
                if column not in columns:
                    columns[column] = fs.collection.to_numpy(column)[rows]
                mask &= condition_mask(columns[column], condition, column)
            result[name] = np.sort(rows[mask])
        return result
