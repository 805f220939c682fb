"""Row conditions shared by ``filter`` and ``ConditionSplitter``: literal, collection or predicate.

- a literal selects rows equal to it (``float("nan")`` selects NaN rows);
- a collection (list, tuple, set, frozenset, range, numpy array) selects rows whose value is in it;
- a callable is a predicate. It is first called once on the whole column (a numpy array of shape
  ``(N, *shape)``) and must then return ``N`` booleans; if that fails or returns another shape it
  is called once per sample instead (slower; vectorise the predicate for large data).

Literals and collections apply to scalar columns; use a predicate for array-valued columns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modularml.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["condition_mask", "describe_condition", "is_serializable_condition"]

logger = logging.getLogger("modularml.data.conditions")

_COLLECTIONS = (list, tuple, set, frozenset, range, np.ndarray)


def _is_nan(value: Any) -> bool:
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def condition_mask(values: np.ndarray, condition: Any, column: str) -> np.ndarray:
    """Boolean mask of the rows of ``values`` that satisfy ``condition``.

    Args:
        values: The column, shape ``(N, *shape)``.
        condition: A literal, a collection of allowed values, or a predicate.
        column: The column's name, for error messages.

    Returns:
        np.ndarray: ``N`` booleans.

    Raises:
        InvalidArgumentError: If a predicate does not return one boolean per sample, or raises.
        InvalidTypeError: If a literal or collection is applied to an array-valued column.
    """
    n = len(values)
    if callable(condition) and not isinstance(condition, type):
        return _predicate_mask(values, condition, column)
    if values.ndim > 1:
        raise InvalidTypeError(
            f"Column {column!r} holds arrays of shape {values.shape[1:]}; a literal or a collection only applies to "
            "scalar columns. Use a predicate, e.g. lambda x: x.max(axis=1) > 3."
        )
    if isinstance(condition, _COLLECTIONS):
        allowed = list(condition)
        if values.dtype == object:  # text: Arrow's hash-based membership copes with missing values
            value_set = pa.array([v for v in allowed if isinstance(v, str)], type=pa.string())
            found = pc.is_in(pa.array(values, type=pa.string()), value_set=value_set)
            return found.to_numpy(zero_copy_only=False).astype(bool)
        mask = np.isin(values, np.asarray(allowed))
        if values.dtype.kind == "f" and any(_is_nan(v) for v in allowed):
            mask |= np.isnan(values)
        return mask
    if _is_nan(condition):
        return np.isnan(values) if values.dtype.kind == "f" else np.zeros(n, dtype=bool)
    mask = np.asarray(values == condition)
    if mask.shape != (n,):
        return np.zeros(n, dtype=bool)
    return mask


def _predicate_mask(values: np.ndarray, predicate: Callable[[Any], Any], column: str) -> np.ndarray:
    n = len(values)
    try:
        result = np.asarray(predicate(values))
        if result.shape == (n,) and result.dtype == bool:
            return result
    except Exception as exc:  # a per-sample predicate may fail on a whole column
        logger.debug("predicate on %s is not vectorised (%s); applying it per sample", column, exc)
    try:
        return np.fromiter((bool(predicate(v)) for v in values), dtype=bool, count=n)
    except Exception as exc:
        raise InvalidArgumentError(
            f"The predicate for column {column!r} failed: {type(exc).__name__}: {exc}. A predicate takes the whole "
            "column (or one sample) and returns booleans."
        ) from exc


def is_serializable_condition(condition: Any) -> bool:
    """Whether a condition can be stored as JSON (literals and collections of literals)."""
    if callable(condition):
        return False
    items = list(condition) if isinstance(condition, _COLLECTIONS) else [condition]
    return all(v is None or isinstance(v, (str, bool, int, float, np.generic)) for v in items)


def describe_condition(condition: Any) -> str:
    """A short human-readable description (for diagrams and messages)."""
    if callable(condition):
        return getattr(condition, "__name__", "predicate")
    if isinstance(condition, _COLLECTIONS):
        items = list(condition)
        shown = ", ".join(repr(v) for v in items[:5]) + (", ..." if len(items) > 5 else "")
        return f"in [{shown}]"
    return f"== {condition!r}"
