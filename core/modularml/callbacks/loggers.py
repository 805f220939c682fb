"""Metrics loggers: phase callbacks that record a run's parameters, metrics and artifacts outside the process.

:class:`MetricsLogger` is the one small interface every logger implements (``log_params`` once
per phase, ``log_metrics`` per epoch, ``log_artifact`` for files); it turns the phase's hooks
into those calls, so a logger for another tool (TensorBoard, MLflow) implements three methods.
:class:`CSVLogger` is the core's own: one CSV file per phase run, written as the run goes.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modularml.errors import FileCollisionError, InvalidArgumentError, InvalidTypeError
from modularml.phases.callback import Callback

if TYPE_CHECKING:
    from modularml.batches import ExecutionContext
    from modularml.results.phase_results import PhaseResults

__all__ = ["CSVLogger", "MetricsLogger"]


class MetricsLogger(Callback):
    """Base of metrics loggers: implement :meth:`log_params`, :meth:`log_metrics` and :meth:`log_artifact`.

    When a phase starts, its configuration is passed to :meth:`log_params`. At the end of every
    epoch (and once more at the end of the phase, for what was logged after the last epoch, or by
    phases without epochs) the metrics logged since are passed to :meth:`log_metrics`, one call
    per (epoch, batch) step. The logger runs after the callbacks that log metrics (its
    ``execution_order`` defaults to 100), so a validation loss of the same epoch is included.

    Args:
        label (str | None): Label of the callback; the class name by default.
        execution_order (int): Sort key among the phase's callbacks. Defaults to 100.
    """

    kind = "logger"

    def __init__(self, label: str | None = None, *, execution_order: int = 100) -> None:
        super().__init__(label, execution_order=execution_order)
        self._logged: set[tuple[str, int, int | None]] = set()

    # ------------------------------------------------------------------ the interface
    def log_params(self, params: Mapping[str, Any], *, phase: str) -> None:
        """Record the parameters of a run (the phase's configuration), once per phase run."""
        raise NotImplementedError

    def log_metrics(self, metrics: Mapping[str, float], *, phase: str, epoch: int, batch: int | None) -> None:
        """Record the values of one step: ``batch`` is None for epoch-level values."""
        raise NotImplementedError

    def log_artifact(self, path: str | Path) -> None:
        """Record a file (a saved model, a plot) with the run."""
        raise NotImplementedError

    # ------------------------------------------------------------------ phase hooks
    def on_phase_start(self, *, experiment: Any, phase: Any, results: PhaseResults | None = None) -> None:
        """Start a run: log the phase's configuration."""
        self._logged = set()
        self.log_params(phase.get_config(), phase=phase.label)

    def on_epoch_end(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> None:
        """Log the metrics logged since the last call."""
        if results is not None:
            self._flush(results, phase.label)

    def on_phase_end(self, *, experiment: Any, phase: Any, results: PhaseResults | None = None) -> None:
        """Log what is left, then end the run (:meth:`close`)."""
        if results is not None:
            self._flush(results, phase.label)
        self.close()

    def close(self) -> None:
        """End the current run (release files or connections); nothing by default."""

    def _flush(self, results: PhaseResults, phase: str) -> None:
        """Log the entries not logged yet, one call per step: batches in order, then the epoch-level values."""
        steps: dict[tuple[int, int | None], dict[str, float]] = {}
        for entry in results.metrics():
            key = (entry.name, entry.epoch_idx, entry.batch_idx)
            if key not in self._logged:
                self._logged.add(key)
                steps.setdefault((entry.epoch_idx, entry.batch_idx), {})[entry.name] = entry.value
        for epoch, batch in sorted(steps, key=lambda step: (step[0], step[1] is None, step[1] or 0)):
            self.log_metrics(steps[(epoch, batch)], phase=phase, epoch=epoch, batch=batch)


class CSVLogger(MetricsLogger):
    """Writes each phase run's metrics to a CSV file in ``directory``, row by row as the run goes.

    The file (``filename``, default ``"{phase}.csv"``) has the stable columns ``phase``,
    ``epoch``, ``batch`` (empty for epoch-level values), ``name``, ``value``: one row per logged
    value, flushed at every epoch end, so a crash keeps what was logged. The phase's
    configuration goes to ``<file stem>.params.json`` next to it; :meth:`log_artifact` copies a
    file into ``directory``.

    Args:
        directory (str | Path): Folder of the files; created if needed.
        filename (str): Name of the CSV file; ``{phase}`` is replaced by the phase label.
            Defaults to ``"{phase}.csv"``.
        overwrite (bool): Replace a file of a previous run. If False, a run whose file exists
            fails at its start. Defaults to True.
        label (str | None): Label of the callback. Defaults to ``"CSVLogger"``.
        execution_order (int): Sort key among the phase's callbacks. Defaults to 100.

    Raises:
        TypeError: If ``directory`` or ``filename`` has the wrong type.
        ValueError: If ``filename`` is empty or names a folder.

    Example:
        >>> phase.add_callback(CSVLogger("runs/soh"))  # runs/soh/train.csv, runs/soh/train.params.json
    """

    COLUMNS = ("phase", "epoch", "batch", "name", "value")

    def __init__(
        self,
        directory: str | Path,
        *,
        filename: str = "{phase}.csv",
        overwrite: bool = True,
        label: str | None = None,
        execution_order: int = 100,
    ) -> None:
        super().__init__(label, execution_order=execution_order)
        if not isinstance(directory, (str, Path)) or not str(directory):
            raise InvalidTypeError(f"CSVLogger's directory is a folder path; got {directory!r}.")
        if not isinstance(filename, str):
            raise InvalidTypeError(f"CSVLogger's filename is a string such as '{{phase}}.csv'; got {filename!r}.")
        if not filename or "/" in filename or "\\" in filename:
            raise InvalidArgumentError(f"CSVLogger's filename is a file name without folders; got {filename!r}.")
        self.directory = Path(directory)
        self.filename = filename
        self.overwrite = bool(overwrite)
        self._path: Path | None = None

    @property
    def path(self) -> Path | None:
        """The CSV file of the current (or last) run."""
        return self._path

    def log_params(self, params: Mapping[str, Any], *, phase: str) -> None:
        """Start the phase's CSV file (with its header) and write the parameters as JSON beside it.

        Raises:
            FileCollisionError: If the file exists and ``overwrite`` is False.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / self.filename.replace("{phase}", phase)
        if path.exists() and not self.overwrite:
            raise FileCollisionError(
                f"{str(path)!r} already exists; pass CSVLogger(..., overwrite=True) to replace it."
            )
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerow(self.COLUMNS)
        path.with_suffix(".params.json").write_text(json.dumps(params, indent=1, sort_keys=True, default=str))
        self._path = path

    def log_metrics(self, metrics: Mapping[str, float], *, phase: str, epoch: int, batch: int | None) -> None:
        """Append one row per value and flush."""
        if self._path is None:
            raise InvalidArgumentError("CSVLogger.log_metrics() before a run started (log_params() starts one).")
        with self._path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in metrics.items():
                writer.writerow((phase, epoch, "" if batch is None else batch, name, repr(float(value))))

    def log_artifact(self, path: str | Path) -> None:
        """Copy the file ``path`` into :attr:`directory` (a file already there stays as it is).

        Raises:
            FileNotFoundError: If there is no such file.
        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"No file {str(source)!r} to log as an artifact.")
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / source.name
        if target.exists() and target.samefile(source):
            return
        shutil.copy2(source, target)

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this logger."""
        return {
            "directory": str(self.directory),
            "filename": self.filename,
            "overwrite": self.overwrite,
            **super().get_config(),
        }

    def __repr__(self) -> str:
        return f"CSVLogger(directory={str(self.directory)!r}, filename={self.filename!r})"
