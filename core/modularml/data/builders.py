"""Building a :class:`~modularml.data.collection.SampleCollection` from pandas long-format data.

With ``group_by``, all rows of one group key become one sample: rows are ordered by group key
and, within a group, by ``sort_by`` (stable sorts, so ties keep their input order and the result
is the same on every machine); the values of each column are then cut into one array per group
with a reshape (equal group lengths) or a vectorised scatter (padding). No step loops over rows
or groups in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modularml.data.collection import SampleCollection, as_column_array
from modularml.data.formats import import_pandas
from modularml.data.schema import DATA_DOMAINS
from modularml.errors import ColumnNotFoundError, InvalidArgumentError, InvalidTypeError
from modularml.utils.warn import warn

__all__ = ["collection_from_pandas"]


def _stable_argsort(keys: np.ndarray, n_values: int | None = None) -> np.ndarray:
    """Stable argsort; small non-negative integer codes use numpy's radix sort."""
    if n_values is not None and n_values <= np.iinfo(np.uint16).max:
        keys = keys.astype(np.uint16)
    return np.argsort(keys, kind="stable")


def _sort_key(pd: Any, series: Any) -> tuple[np.ndarray, int | None]:
    """A numpy array that sorts like ``series`` (factorized codes for text and categoricals)."""
    values = series.to_numpy()
    if values.dtype.kind in "biufmM":
        return values, None
    codes, uniques = pd.factorize(series, sort=True, use_na_sentinel=True)
    codes = np.where(codes < 0, len(uniques), codes)  # missing values sort last
    return codes, len(uniques) + 1


def _group_order(pd: Any, df: Any, group_cols: list[str], sort_cols: list[str]) -> tuple[np.ndarray, np.ndarray, Any]:
    """Row order (by group, then sort keys), group code of every row, and the group keys."""
    missing = df[group_cols].isna().sum()
    if missing.any():
        col = missing[missing > 0].index[0]
        raise InvalidArgumentError(
            f"Group column {col!r} has {int(missing[col])} missing (NaN/None) values; every row needs a group key. "
            f"Fill them (df[{col!r}].fillna(...)) or drop those rows first."
        )
    grouped = df.groupby(group_cols, sort=True, observed=True)
    codes = grouped.ngroup().to_numpy()
    order = np.arange(len(df))
    for col in reversed(sort_cols):
        key, n_values = _sort_key(pd, df[col])
        order = order[_stable_argsort(key[order], n_values)]
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    order = order[_stable_argsort(codes[order], n_groups)]
    keys = grouped.size().index
    return order, codes, keys


def _group_label(keys: Any, group_cols: list[str], code: int) -> str:
    key = keys[code]
    key = key if isinstance(key, tuple) else (key,)
    key = tuple(v.item() if isinstance(v, np.generic) else v for v in key)
    return ", ".join(f"{c}={v!r}" for c, v in zip(group_cols, key, strict=True))


def _equal_within_groups(values: np.ndarray, first: np.ndarray, lengths: np.ndarray) -> bool:
    repeated = np.repeat(first, lengths, axis=0)
    same = values == repeated
    if values.dtype.kind == "f":
        same |= np.isnan(values) & np.isnan(repeated)
    return bool(np.all(same))


def _cut(
    values: np.ndarray,
    group_of_row: np.ndarray,
    position: np.ndarray,
    n_groups: int,
    length: int,
    equal: bool,
    pad_value: Any,
    name: str,
) -> np.ndarray:
    """(sorted rows, *shape) -> (groups, length, *shape)."""
    if equal:
        return values.reshape(n_groups, length, *values.shape[1:])
    if values.dtype == object:
        raise InvalidArgumentError(
            f"Column {name!r} holds text and varies within groups of different lengths; "
            "it cannot be padded. Make it a constant tag per group, or leave it out."
        )
    dtype = np.result_type(values.dtype, np.min_scalar_type(pad_value) if np.isscalar(pad_value) else values.dtype)
    out = np.full((n_groups, length, *values.shape[1:]), pad_value, dtype=dtype)
    out[group_of_row, position] = values
    return out


def collection_from_pandas(
    df: Any,
    domains: Mapping[str, list[str]],
    group_by: list[str],
    sort_by: list[str],
    pad_value: Any = None,
) -> SampleCollection:
    """Build a collection from a DataFrame; see ``FeatureSet.from_pandas`` for the rules.

    Args:
        df: The DataFrame.
        domains: ``{"features": [...], "targets": [...], "tags": [...]}`` column names.
        group_by: Columns whose combined value defines a sample; empty for one sample per row.
        sort_by: Columns ordering the rows within a group.
        pad_value: Pad shorter groups to the longest with this value; ``None`` raises instead.

    Raises:
        KeyError: If a named column is not in the DataFrame.
        ValueError: For missing group keys, ragged groups without ``pad_value``, or bad values.
    """
    pd = import_pandas()
    if not isinstance(df, pd.DataFrame):
        raise InvalidTypeError(f"Expected a pandas DataFrame; got {type(df).__name__}.")
    named = [c for cols in domains.values() for c in cols] + group_by + sort_by
    absent = [c for c in dict.fromkeys(named) if c not in df.columns]
    if absent:
        raise ColumnNotFoundError(f"The DataFrame has no column {absent[0]!r}; its columns are {list(df.columns)}.")
    if not group_by:
        if sort_by:
            warn(f"sort_by={sort_by} is ignored: it orders rows within groups, and no group_by was given.")
        return SampleCollection.from_columns(*(dict((c, df[c]) for c in domains[d]) for d in DATA_DOMAINS))
    order, codes, keys = _group_order(pd, df, group_by, sort_by)
    n_groups = len(keys)
    lengths = np.bincount(codes, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    group_of_row = codes[order]
    length = int(lengths.max()) if n_groups else 0
    equal = bool(n_groups == 0 or lengths.min() == length)
    if not equal and pad_value is None:
        short, long = int(np.argmin(lengths)), int(np.argmax(lengths))
        raise InvalidArgumentError(
            f"Groups have different numbers of rows: ({_group_label(keys, group_by, short)}) has {lengths[short]}, "
            f"({_group_label(keys, group_by, long)}) has {lengths[long]}. Every sample of a column needs the same "
            f"shape: pass pad_value= (e.g. pad_value=np.nan) to pad shorter groups at the end, or filter the rows."
        )
    position = np.arange(len(order)) - starts[group_of_row]
    columns: dict[str, dict[str, np.ndarray]] = {d: {} for d in DATA_DOMAINS}
    for domain in DATA_DOMAINS:
        for col in domains[domain]:
            values = as_column_array(col, df[col])[order]
            if domain != "features":
                first = values[starts]
                if _equal_within_groups(values, first, lengths):
                    columns[domain][col] = first
                    continue
            columns[domain][col] = _cut(values, group_of_row, position, n_groups, length, equal, pad_value, col)
    return SampleCollection.from_columns(*(columns[d] for d in DATA_DOMAINS), copy=False)
