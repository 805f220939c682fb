"""``MetricStore``: scalar metrics of a phase, keyed by (name, epoch, batch)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml.results.axis_series import AxisSeries

__all__ = ["MetricEntry", "MetricStore"]


@dataclass(frozen=True, slots=True)
class MetricEntry:
    """One logged value.

    Attributes:
        name (str): Metric name (e.g. ``"train_loss"``).
        value (float): The value.
        epoch_idx (int): Epoch it belongs to.
        batch_idx (int | None): Batch within the epoch; None for an epoch-level value.
    """

    name: str
    value: float
    epoch_idx: int
    batch_idx: int | None = None


class MetricStore:
    """Scalar metrics per epoch (and optionally per batch); a value logged twice for one key replaces the first.

    Besides the entries by key, the store keeps the order values were logged in, so that a reader
    that follows a run (a logger) takes only what is new: :attr:`position` and :meth:`logged_since`.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, int | None], MetricEntry] = {}
        self._log: list[MetricEntry] = []

    def log(self, name: str, value: Any, epoch_idx: int, batch_idx: int | None = None) -> None:
        """Record ``value`` of metric ``name`` at ``epoch_idx`` (and ``batch_idx``; None: epoch level).

        Raises:
            TypeError: If ``name`` is not a string or ``value`` is not a real scalar.
            ValueError: If an index is negative.
        """
        if not isinstance(name, str) or not name:
            raise InvalidTypeError(f"A metric name is a non-empty string; got {name!r}.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidTypeError(f"Metric {name!r}: a value is a real scalar; got {value!r:.80}.") from None
        for what, index in (("epoch_idx", epoch_idx), ("batch_idx", batch_idx)):
            if index is None and what == "batch_idx":
                continue
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise InvalidArgumentError(f"Metric {name!r}: {what} is an int >= 0; got {index!r}.")
        entry = MetricEntry(name, number, epoch_idx, batch_idx)
        self._entries[(name, epoch_idx, batch_idx)] = entry
        self._log.append(entry)

    def log_step(self, name: str, value: float, epoch_idx: int, batch_idx: int) -> None:
        """:meth:`log` for values the phases made themselves (a float, valid indices): no checks per step."""
        entry = MetricEntry(name, value, epoch_idx, batch_idx)
        self._entries[(name, epoch_idx, batch_idx)] = entry
        self._log.append(entry)

    @property
    def position(self) -> int:
        """How many values were logged so far (replacements included): a cursor for :meth:`logged_since`."""
        return len(self._log)

    def logged_since(self, position: int) -> list[MetricEntry]:
        """The values logged after ``position`` (an earlier :attr:`position`), in the order they were logged.

        A value that replaced an earlier one for the same key is included again. Costs only the
        number of new values, so a reader that calls it every epoch stays linear in the run.

        Raises:
            ValueError: If ``position`` is not an int between 0 and :attr:`position`.
        """
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= len(self._log):
            raise InvalidArgumentError(f"position is an int in [0, {len(self._log)}]; got {position!r}.")
        return self._log[position:]

    @property
    def names(self) -> list[str]:
        """Names of the logged metrics, in first-logged order."""
        return list(dict.fromkeys(key[0] for key in self._entries))

    def entries(self, name: str | None = None) -> list[MetricEntry]:
        """Logged entries (of ``name`` only, if given), sorted by epoch then batch (epoch-level last)."""
        found = [e for e in self._entries.values() if name is None or e.name == name]
        return sorted(found, key=lambda e: (e.name, e.epoch_idx, math.inf if e.batch_idx is None else e.batch_idx))

    def get(self, name: str, epoch_idx: int, batch_idx: int | None = None) -> float | None:
        """The value of ``name`` at (``epoch_idx``, ``batch_idx``), or None if it was not logged."""
        entry = self._entries.get((name, epoch_idx, batch_idx))
        return None if entry is None else entry.value

    def epoch_values(self, name: str) -> dict[int, float]:
        """Epoch-level values of ``name``: epoch index -> value.

        Raises:
            KeyError: If no metric ``name`` was logged.
        """
        self._require(name)
        return {e.epoch_idx: e.value for e in self.entries(name) if e.batch_idx is None}

    def batch_values(self, name: str, epoch_idx: int | None = None) -> dict[tuple[int, int], float]:
        """Batch-level values of ``name`` (of one epoch if given): ``(epoch, batch)`` -> value.

        Raises:
            KeyError: If no metric ``name`` was logged.
        """
        self._require(name)
        return {
            (e.epoch_idx, e.batch_idx): e.value
            for e in self.entries(name)
            if e.batch_idx is not None and (epoch_idx is None or e.epoch_idx == epoch_idx)
        }

    def last(self, name: str) -> float:
        """The epoch-level value of the latest epoch (the latest batch value if none is epoch-level).

        Raises:
            KeyError: If no metric ``name`` was logged.
        """
        epochs = self.epoch_values(name)
        if epochs:
            return epochs[max(epochs)]
        return self.entries(name)[-1].value

    @property
    def epoch_indices(self) -> list[int]:
        """Sorted epochs with any logged value."""
        return sorted({key[1] for key in self._entries})

    @property
    def batch_indices(self) -> list[int]:
        """Sorted batch indices with any batch-level value."""
        return sorted({key[2] for key in self._entries if key[2] is not None})

    def series(self, name: str, *, level: Literal["epoch", "batch"] = "epoch") -> AxisSeries:
        """The values of ``name`` as an AxisSeries.

        Args:
            name: The metric.
            level: ``"epoch"``: epoch-level values, axis ``("epoch",)``; ``"batch"``: batch-level
                values, axes ``("epoch", "batch")``.

        Raises:
            KeyError: If no metric ``name`` was logged.
            ValueError: For an unknown level.
        """
        if level == "epoch":
            return AxisSeries(("epoch",), {(e,): v for e, v in self.epoch_values(name).items()}, name=name)
        if level == "batch":
            return AxisSeries(("epoch", "batch"), self.batch_values(name), name=name)
        raise InvalidArgumentError(f"level is 'epoch' or 'batch'; got {level!r}.")

    def _require(self, name: str) -> None:
        if not any(key[0] == name for key in self._entries):
            raise NotRegisteredError(f"No metric {name!r} was logged; metrics: {self.names}.")

    def to_dict(self) -> list[dict[str, Any]]:
        """All entries as plain dicts (JSON values)."""
        return [
            {"name": e.name, "value": e.value, "epoch_idx": e.epoch_idx, "batch_idx": e.batch_idx}
            for e in self.entries()
        ]

    def to_pandas(self, *, phase: str | None = None, fold: str | None = None) -> Any:
        """All entries as a long-format ``pandas.DataFrame`` (needs ``pip install "modularml[pandas]"``).

        Columns: ``name``, ``epoch``, ``batch`` (nullable ``Int64``: missing for epoch-level
        values), ``value`` (float64), preceded by ``phase`` when ``phase`` is given and by ``fold``
        when ``fold`` is given. Rows are in the order of :meth:`entries`: by name, then epoch,
        then batch (epoch-level last).

        Args:
            phase: The label of the phase the metrics belong to, added as a column.
            fold: The cross-validation fold they belong to, added as a column.

        Raises:
            ImportError: If pandas is not installed; the message says how to install it.
        """
        from modularml.data.formats import import_pandas

        pd = import_pandas()
        entries = self.entries()
        columns = {
            "name": pd.Series([e.name for e in entries], dtype="object"),
            "epoch": pd.Series([e.epoch_idx for e in entries], dtype="int64"),
            "batch": pd.Series([e.batch_idx for e in entries], dtype="Int64"),
            "value": pd.Series([e.value for e in entries], dtype="float64"),
        }
        if fold is not None:
            columns = {"fold": pd.Series([fold] * len(entries), dtype="object"), **columns}
        if phase is not None:
            columns = {"phase": pd.Series([phase] * len(entries), dtype="object"), **columns}
        return pd.DataFrame(columns)

    def __contains__(self, name: object) -> bool:
        return any(key[0] == name for key in self._entries)

    def __iter__(self) -> Iterator[MetricEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"MetricStore(names={self.names}, entries={len(self)})"
