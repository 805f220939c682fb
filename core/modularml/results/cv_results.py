"""``CVResults``: the results of a cross-validation, one :class:`PhaseGroupResults` per fold, queried across folds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml.results.axis_series import AxisSeries
from modularml.results.phase_group_results import PhaseGroupResults
from modularml.results.phase_results import PhaseResults

__all__ = ["CVResults"]


class CVResults:
    """What a cross-validation ran: one :class:`PhaseGroupResults` per fold, and queries with a ``fold`` axis.

    Every fold ran the same phases on its own training and validation rows. Queries that return an
    :class:`AxisSeries` put ``fold`` (the fold label, ``"CV_fold0"``...) first, so
    ``cv.losses(head, "train").where(fold="CV_fold2")`` or ``.collapse("fold", "mean")`` work as
    for any series.

    The steps recorded in fold results keep their outputs, targets, tags and losses; their inputs
    (the fold's own scaled rows) are not kept. :attr:`fold_rows` gives the rows of every fold.

    Args:
        label: Label of the cross-validation.
        folds: The results of each fold, in fold order.
        fold_labels: The label of each fold.
        fold_rows: Per fold, FeatureSet label -> split name -> row indices.

    Raises:
        TypeError: If a fold's results are not a PhaseGroupResults.
        ValueError: If the labels do not match the folds.
    """

    def __init__(
        self,
        label: str,
        folds: Sequence[PhaseGroupResults],
        fold_labels: Sequence[str],
        fold_rows: Sequence[Mapping[str, Mapping[str, np.ndarray]]] | None = None,
    ) -> None:
        folds = list(folds)
        if not all(isinstance(f, PhaseGroupResults) for f in folds):
            raise InvalidTypeError("Every fold's results are a PhaseGroupResults.")
        if len(fold_labels) != len(folds) or len(set(fold_labels)) != len(folds):
            raise InvalidArgumentError(f"Give one unique label per fold; got {list(fold_labels)} for {len(folds)}.")
        self.label = label
        self._folds = folds
        self._labels = list(fold_labels)
        self._rows = [dict(r) for r in fold_rows] if fold_rows is not None else [{} for _ in folds]

    # ------------------------------------------------------------------ folds
    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self._folds)

    @property
    def fold_labels(self) -> list[str]:
        """The fold labels, in fold order."""
        return list(self._labels)

    @property
    def fold_rows(self) -> list[dict[str, dict[str, np.ndarray]]]:
        """Per fold: FeatureSet label -> split name (the bindings' train and validation names) -> row indices."""
        return [{fs: dict(splits) for fs, splits in rows.items()} for rows in self._rows]

    def _index(self, fold: int | str) -> int:
        if isinstance(fold, str):
            if fold not in self._labels:
                raise NotRegisteredError(f"No fold {fold!r}; folds are {self._labels}.")
            return self._labels.index(fold)
        if isinstance(fold, bool) or not isinstance(fold, int) or not -self.n_folds <= fold < self.n_folds:
            raise InvalidArgumentError(f"A fold is an index in [0, {self.n_folds}) or a label; got {fold!r}.")
        return fold % self.n_folds

    def get_fold(self, fold: int | str) -> PhaseGroupResults:
        """The results of one fold, by index or label.

        Raises:
            KeyError: If there is no such fold label.
            ValueError: If the index is out of range.
        """
        return self._folds[self._index(fold)]

    def __iter__(self) -> Iterator[tuple[str, PhaseGroupResults]]:
        """``(fold label, fold results)`` pairs in fold order."""
        return iter(zip(self._labels, self._folds, strict=True))

    def __len__(self) -> int:
        return self.n_folds

    # ------------------------------------------------------------------ queries across folds
    def collect(self, fn: Callable[[PhaseGroupResults], Any], *, name: str | None = None) -> AxisSeries:
        """``fn(fold results)`` for every fold, as a series on the ``fold`` axis.

        Example:
            >>> cv.collect(lambda r: r.get_eval_result("test").losses(head).collapse("batch").one())
        """
        if not callable(fn):
            raise InvalidTypeError(f"collect() takes a function of one fold's PhaseGroupResults; got {fn!r:.80}.")
        return AxisSeries(("fold",), {(label,): fn(r) for label, r in self}, name=name)

    def _phase(self, results: PhaseGroupResults, phase: str) -> PhaseResults:
        return results.get_phase_result(phase)

    def losses(self, node: Any, phase: str) -> AxisSeries:
        """The losses of ``node`` in phase ``phase`` of every fold: axes ``("fold", "loss", "epoch", "batch")``.

        Raises:
            KeyError: If a fold has no phase of that label.
        """
        data = {}
        axes: tuple[str, ...] | None = None
        for label, results in self:
            series = self._phase(results, phase).losses(node)
            axes = axes or series.axes
            data.update({(label, *key): value for key, value in series.items()})
        return AxisSeries(("fold", *(axes or ())), data, name=f"losses of {phase!r}")

    def metric(self, name: str, phase: str, *, level: str = "epoch") -> AxisSeries:
        """Metric ``name`` of phase ``phase`` in every fold: axes ``("fold", "epoch")`` (and ``"batch"``).

        Raises:
            KeyError: If a fold lacks the phase or the metric.
        """
        data = {}
        inner: tuple[str, ...] = ()
        for label, results in self:
            series = self._phase(results, phase).metrics().series(name, level=level)  # type: ignore[arg-type]
            inner = series.axes
            data.update({(label, *key): value for key, value in series.items()})
        return AxisSeries(("fold", *inner), data, name=name)

    def summary(self, phase: str | None = None) -> dict[str, dict[str, Any]]:
        """Mean and standard deviation across folds of every metric's last epoch-level value.

        Args:
            phase: One phase's metrics; every phase's (named ``"<phase>/<metric>"``) when None.

        Returns:
            dict: ``name -> {"mean", "std", "values"}`` (``values`` per fold, in fold order; ``std``
            is the sample standard deviation, 0 for one fold).
        """
        per_name: dict[str, list[float]] = {}
        for _, results in self:
            for phase_label, phase_results in results.flatten().items():
                if phase is not None and phase_label != phase:
                    continue
                store = phase_results.metrics()
                for metric in store.names:
                    values = store.epoch_values(metric)
                    if values:
                        key = metric if phase is not None else f"{phase_label}/{metric}"
                        per_name.setdefault(key, []).append(values[max(values)])
        return {
            name: {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values,
            }
            for name, values in per_name.items()
        }

    def summary_table(self, phase: str | None = None) -> str:
        """:meth:`summary` as aligned text: one row per metric, ``mean ± std`` and the per-fold values."""
        rows = self.summary(phase)
        if not rows:
            return f"CVResults {self.label!r}: no epoch-level metrics."
        width = max(len(n) for n in rows)
        lines = [f"{'metric':<{width}}  mean ± std            per fold"]
        for name, row in rows.items():
            values = ", ".join(f"{v:.4g}" for v in row["values"])
            lines.append(f"{name:<{width}}  {row['mean']:<9.4g} ± {row['std']:<9.3g}  [{values}]")
        return "\n".join(lines)

    def metrics_to_pandas(self) -> Any:
        """Every fold's metrics as one long table with a ``fold`` column; needs pandas."""
        import pandas as pd

        frames = []
        for label, results in self:
            frame = results.metrics_to_pandas()
            if "fold" not in frame.columns:
                frame.insert(0, "fold", label)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def __repr__(self) -> str:
        best = {k: v for k, v in self.summary().items() if not math.isnan(v["mean"])}
        shown = ", ".join(f"{k}={v['mean']:.4g}±{v['std']:.2g}" for k, v in list(best.items())[:3])
        return f"CVResults(label={self.label!r}, n_folds={self.n_folds}{', ' + shown if shown else ''})"
