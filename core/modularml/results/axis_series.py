"""``AxisSeries``: values keyed by named axes (epoch, batch, loss, ...), what the results queries return."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError

__all__ = ["AxisSeries"]

Reducer = str | Callable[[list[Any]], Any]

_NUMERIC_REDUCERS: dict[str, Callable[..., Any]] = {
    "mean": np.mean,
    "sum": np.sum,
    "min": np.min,
    "max": np.max,
    "median": np.median,
    "std": np.std,
}
_REDUCERS = (*_NUMERIC_REDUCERS, "first", "last", "concat", "list")


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    # None (e.g. an epoch-level batch index) sorts after every value of its axis
    return tuple((1, 0) if part is None else (0, part) for part in key)


def _matches(value: Any, condition: Any) -> bool:
    if callable(condition):
        return bool(condition(value))
    if isinstance(condition, Collection) and not isinstance(condition, str | bytes):
        return value in condition
    return value == condition


class AxisSeries:
    """An ordered mapping from keys on named axes to values (tensors, batches, floats, results).

    A key holds one entry per axis, e.g. ``(epoch, batch)`` for axes ``("epoch", "batch")``.
    Entries are kept sorted by key. Queries return new series; nothing is copied but the index.

    Args:
        axes (Sequence[str]): Names of the axes, unique.
        data (Mapping[tuple, Any] | None): Key tuple (one entry per axis) -> value.
        name (str | None): What the values are (shown in messages and the repr).

    Raises:
        ValueError: For repeated axis names or a key whose length differs from the number of axes.

    Example:
        >>> losses = results.losses("head")  # axes ("loss", "epoch", "batch")
        >>> per_epoch = losses.where(loss="mse").collapse("batch", "mean").squeeze()
        >>> per_epoch.last()
    """

    __slots__ = ("_axes", "_data", "name")

    def __init__(
        self, axes: Sequence[str], data: Mapping[tuple[Any, ...], Any] | None = None, *, name: str | None = None
    ) -> None:
        if isinstance(axes, str) or not isinstance(axes, Sequence):
            raise InvalidTypeError(f"axes is a sequence of axis names; got {axes!r}.")
        axes = tuple(axes)
        if len(set(axes)) != len(axes) or not all(isinstance(a, str) and a for a in axes):
            raise InvalidArgumentError(f"Axis names are unique non-empty strings; got {axes}.")
        items = []
        for key, value in (data or {}).items():
            key = key if isinstance(key, tuple) else (key,)
            if len(key) != len(axes):
                raise InvalidArgumentError(f"Key {key!r} has {len(key)} entries; the series has axes {axes}.")
            items.append((key, value))
        with contextlib.suppress(TypeError):  # keys of mixed types keep their insertion order
            items.sort(key=lambda item: _sort_key(item[0]))
        self._axes: tuple[str, ...] = axes
        self._data: dict[tuple[Any, ...], Any] = dict(items)
        self.name = name

    # ------------------------------------------------------------------ basics
    @property
    def axes(self) -> tuple[str, ...]:
        """Names of the axes, in key order."""
        return self._axes

    @property
    def values(self) -> list[Any]:
        """The values, in key order."""
        return list(self._data.values())

    def keys(self) -> list[tuple[Any, ...]]:
        """The keys (one tuple per value), sorted."""
        return list(self._data)

    def items(self) -> list[tuple[tuple[Any, ...], Any]]:
        """``(key, value)`` pairs, in key order."""
        return list(self._data.items())

    def to_dict(self) -> dict[tuple[Any, ...], Any]:
        """Key tuple -> value (a copy)."""
        return dict(self._data)

    def axes_values(self, axis: str | None = None) -> Any:
        """The distinct values of each axis, in order of first appearance in the sorted keys.

        Args:
            axis: One axis: return only its values (a list). All axes (a dict) when None.

        Raises:
            KeyError: If ``axis`` is not an axis of this series.
        """
        if axis is not None:
            position = self._position(axis)
            return list(dict.fromkeys(key[position] for key in self._data))
        return {a: list(dict.fromkeys(key[i] for key in self._data)) for i, a in enumerate(self._axes)}

    def _position(self, axis: str) -> int:
        try:
            return self._axes.index(axis)
        except ValueError:
            raise NotRegisteredError(
                f"{self._describe()} has no axis {axis!r}; its axes are {list(self._axes)}."
            ) from None

    def _describe(self) -> str:
        return f"AxisSeries {self.name!r}" if self.name else "The AxisSeries"

    def _new(self, axes: Sequence[str], data: Mapping[tuple[Any, ...], Any]) -> AxisSeries:
        return AxisSeries(axes, data, name=self.name)

    # ------------------------------------------------------------------ selection
    def where(self, **conditions: Any) -> AxisSeries:
        """Keep the entries whose axis values match every condition; all axes stay.

        A condition is a literal (equality), a collection (membership) or a callable
        (predicate on the axis value): ``where(epoch=lambda e: e >= 5, loss={"mse", "mae"})``.

        Raises:
            KeyError: If a condition names an unknown axis.
        """
        positions = {self._position(axis): cond for axis, cond in conditions.items()}
        kept = {
            key: value
            for key, value in self._data.items()
            if all(_matches(key[i], cond) for i, cond in positions.items())
        }
        return self._new(self._axes, kept)

    def select(self, **fixed: Any) -> AxisSeries:
        """Fix axes to single values and drop them: ``select(epoch=3)`` is the series over the other axes.

        Raises:
            KeyError: If an axis is unknown or has no entry with the given value.
        """
        positions = {self._position(axis): value for axis, value in fixed.items()}
        kept_axes = [a for i, a in enumerate(self._axes) if i not in positions]
        data = {
            tuple(part for i, part in enumerate(key) if i not in positions): value
            for key, value in self._data.items()
            if all(key[i] == v for i, v in positions.items())
        }
        if not data and self._data:
            raise NotRegisteredError(f"{self._describe()} has no entry at {fixed}; available: {self.axes_values()}.")
        return self._new(kept_axes, data)

    def at(self, **key: Any) -> Any:
        """The value at one full key (every axis named): ``at(epoch=2, batch=0)``.

        Raises:
            ValueError: If not every axis is given.
            KeyError: If an axis is unknown or there is no value at that key.
        """
        for axis in key:
            self._position(axis)
        missing = [a for a in self._axes if a not in key]
        if missing:
            raise InvalidArgumentError(
                f"at() needs a value for every axis of {self._describe().lower()}; missing {missing}. "
                "Use select() or where() for partial keys."
            )
        full = tuple(key[a] for a in self._axes)
        if full not in self._data:
            raise NotRegisteredError(f"{self._describe()} has no value at {key}; available: {self.axes_values()}.")
        return self._data[full]

    def one(self) -> Any:
        """The single value of this series.

        Raises:
            ValueError: If the series holds no value or more than one.
        """
        if len(self._data) != 1:
            raise InvalidArgumentError(
                f"one() needs exactly one value; {self._describe().lower()} holds {len(self._data)} "
                f"(axes values {self.axes_values()}). Narrow it with select()/where() or collapse() an axis."
            )
        return next(iter(self._data.values()))

    def first(self, axis: str | None = None) -> Any:
        """The first value (smallest key); with ``axis``, the series at that axis' first value (axis dropped).

        Raises:
            ValueError: If the series is empty.
        """
        return self._end(axis, last=False)

    def last(self, axis: str | None = None) -> Any:
        """The last value (largest key); with ``axis``, the series at that axis' last value (axis dropped).

        Raises:
            ValueError: If the series is empty.
        """
        return self._end(axis, last=True)

    def _end(self, axis: str | None, *, last: bool) -> Any:
        if not self._data:
            raise InvalidArgumentError(f"{self._describe()} is empty; it has no {'last' if last else 'first'} value.")
        if axis is None:
            keys = list(self._data)
            return self._data[keys[-1] if last else keys[0]]
        values = self.axes_values(axis)
        with contextlib.suppress(TypeError):
            values = sorted(values, key=lambda v: _sort_key((v,)))
        return self.select(**{axis: values[-1] if last else values[0]})

    # ------------------------------------------------------------------ reshaping
    def collapse(self, axis: str, reducer: Reducer = "mean") -> AxisSeries:
        """Reduce over ``axis``: the values sharing the other axes' values are combined into one.

        Args:
            axis: The axis to remove.
            reducer: ``"mean"``, ``"sum"``, ``"min"``, ``"max"``, ``"median"``, ``"std"`` (numeric,
                element-wise for arrays), ``"first"``, ``"last"``, ``"list"`` (the values as a list),
                ``"concat"`` (tensors or batches concatenated along the batch dimension), or a
                callable taking the list of values.

        Raises:
            KeyError: If ``axis`` is unknown.
            ValueError: For an unknown reducer name.
        """
        position = self._position(axis)
        if not callable(reducer) and reducer not in _REDUCERS:
            raise InvalidArgumentError(f"Unknown reducer {reducer!r}; use one of {list(_REDUCERS)} or a callable.")
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for key, value in self._data.items():
            groups.setdefault(key[:position] + key[position + 1 :], []).append(value)
        kept_axes = [a for a in self._axes if a != axis]
        return self._new(kept_axes, {key: _reduce(values, reducer) for key, values in groups.items()})

    def squeeze(self) -> AxisSeries:
        """Drop every axis that holds a single value (a series with one value ends with no axes)."""
        single = {a: values[0] for a, values in self.axes_values().items() if len(values) == 1}
        return self.select(**single) if single else self

    def map(self, fn: Callable[[Any], Any]) -> AxisSeries:
        """A series with ``fn(value)`` for every value, on the same keys."""
        return self._new(self._axes, {key: fn(value) for key, value in self._data.items()})

    # ------------------------------------------------------------------ dunder
    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the values in key order."""
        return iter(self._data.values())

    def __contains__(self, key: object) -> bool:
        return (key if isinstance(key, tuple) else (key,)) in self._data

    def __getitem__(self, key: Any) -> Any:
        """The value at a full key tuple (a bare value for a one-axis series)."""
        full = key if isinstance(key, tuple) else (key,)
        try:
            return self._data[full]
        except KeyError:
            raise NotRegisteredError(
                f"{self._describe()} has no key {key!r} on axes {list(self._axes)}; available: {self.axes_values()}."
            ) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AxisSeries):
            return NotImplemented
        if self._axes != other._axes or list(self._data) != list(other._data):
            return False
        return all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(self.values, other.values, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}: {_short(v)}" for k, v in list(self._data.items())[:6])
        more = ", ..." if len(self._data) > 6 else ""
        label = f"name={self.name!r}, " if self.name else ""
        return f"AxisSeries({label}axes={list(self._axes)}, n={len(self._data)}, {{{shown}{more}}})"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} shape={tuple(shape)}>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _reduce(values: list[Any], reducer: Reducer) -> Any:
    if callable(reducer):
        return reducer(values)
    if reducer == "first":
        return values[0]
    if reducer == "last":
        return values[-1]
    if reducer == "list":
        return list(values)
    if reducer == "concat":
        from modularml.batches import Batch
        from modularml.batches.tensors import concat_values

        if all(isinstance(v, Batch) for v in values):
            return Batch.concat(values)
        return concat_values(values, "AxisSeries.collapse(reducer='concat')")
    from modularml.batches.tensors import to_numpy

    arrays = [to_numpy(v) if not isinstance(v, int | float | np.number) else v for v in values]
    result = _NUMERIC_REDUCERS[reducer](np.stack([np.asarray(a, dtype=np.float64) for a in arrays]), axis=0)
    return float(result) if np.ndim(result) == 0 else result
