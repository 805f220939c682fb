"""Metrics loggers: phase callbacks that record a run's parameters, metrics and artifacts outside the process.

:class:`MetricsLogger` is the one small interface every logger implements: :meth:`~MetricsLogger.start_run`
when a phase starts (with the cross-validation fold it runs in, if any), ``log_params`` once per
run, ``log_metrics`` per step (batch) and per epoch, ``log_artifact`` for files at the end, and
:meth:`~MetricsLogger.close`. The base turns the phase's hooks into those calls, reading only the
values logged since its last call; a logger for another tool implements the calls.
:class:`CSVLogger` is the core's own: one CSV file per phase run, written as the run goes. The
TensorBoard and MLflow loggers are plugins (``modularml-tensorboard``, ``modularml-mlflow``).
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modularml.errors import FileCollisionError, InvalidArgumentError, InvalidTypeError, ModularMLError
from modularml.phases.callback import Callback

if TYPE_CHECKING:
    from modularml.batches import ExecutionContext
    from modularml.results.metric_store import MetricStore
    from modularml.results.phase_results import PhaseResults

__all__ = ["CSVLogger", "MetricsLogger", "flatten_params"]


def flatten_params(params: Mapping[str, Any], *, prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """A nested configuration as one level of ``"a.b.0.c" -> value`` entries (what trackers take as parameters).

    Mappings are entered by key, lists and tuples by position; an empty mapping or list is kept as
    itself (``{}``, ``[]``) so that no key disappears. Values are left as they are.

    Example:
        >>> flatten_params({"phase": {"n_epochs": 3, "losses": [{"name": "mse"}]}})
        {'phase.n_epochs': 3, 'phase.losses.0.name': 'mse'}
    """
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(v, f"{key}{sep}{k}" if key else str(k))
        elif isinstance(value, (list, tuple)) and value:
            for i, v in enumerate(value):
                walk(v, f"{key}{sep}{i}" if key else str(i))
        else:
            flat[key] = value

    walk(params, prefix)
    return flat


class MetricsLogger(Callback):
    """Base of metrics loggers: implement :meth:`log_params`, :meth:`log_metrics` and :meth:`log_artifact`.

    When a phase starts, :meth:`start_run` opens a run (with the phase's label and the
    cross-validation fold it runs in, or None) and :meth:`run_params` goes to :meth:`log_params`.
    At the end of every epoch (and once more at the end of the phase, for what was logged after the
    last epoch, or by phases without epochs) the values logged since the last call are passed to
    :meth:`log_metrics`, one call per (epoch, batch) step; each value is read once, so a run of
    many epochs costs no more per epoch than its first. At the end, :meth:`log_run_artifacts` logs
    files, then :meth:`close` ends the run. The logger runs after the callbacks that log metrics
    (its ``execution_order`` defaults to 100), so a validation loss of the same epoch is included.

    Args:
        label (str | None): Label of the callback; the class name by default.
        execution_order (int): Sort key among the phase's callbacks. Defaults to 100.
        log_experiment_file (bool): At the end of a run inside an Experiment, save the experiment
            (``Experiment.save``, where this version has it) and log the file as an artifact.
            Defaults to False.
    """

    kind = "logger"

    def __init__(
        self, label: str | None = None, *, execution_order: int = 100, log_experiment_file: bool = False
    ) -> None:
        super().__init__(label, execution_order=execution_order)
        self.log_experiment_file = bool(log_experiment_file)
        self._store: MetricStore | None = None
        self._position = 0

    # ------------------------------------------------------------------ the interface
    def start_run(self, *, phase: str, fold: str | None) -> None:
        """Open the run of phase ``phase`` (in cross-validation fold ``fold``, or None); nothing by default."""

    def log_params(self, params: Mapping[str, Any], *, phase: str) -> None:
        """Record the parameters of a run (:meth:`run_params`), once per phase run."""
        raise NotImplementedError

    def log_metrics(self, metrics: Mapping[str, float], *, phase: str, epoch: int, batch: int | None) -> None:
        """Record the values of one step: ``batch`` is None for epoch-level values."""
        raise NotImplementedError

    def log_artifact(self, path: str | Path) -> None:
        """Record a file (a saved model, a plot) with the run."""
        raise NotImplementedError

    def close(self) -> None:
        """End the current run (release files or connections); nothing by default."""

    # ------------------------------------------------------------------ what is logged
    def run_params(self, *, experiment: Any, phase: Any) -> dict[str, Any]:
        """The parameters of a run: the phase's configuration, and the experiment's under ``"experiment"``.

        The experiment's part is there when the phase runs inside an Experiment whose
        configuration can be written (a callback class that cannot be named in a config leaves it
        out, with a warning).
        """
        params = dict(phase.get_config())
        if experiment is not None and hasattr(experiment, "get_config"):
            try:
                params["experiment"] = experiment.get_config()
            except ModularMLError as exc:
                warnings.warn(
                    f"{self.label}: the experiment's configuration is not logged: {exc}", UserWarning, stacklevel=2
                )
        return params

    def log_run_artifacts(self, *, experiment: Any, phase: Any) -> None:
        """Log the files of a finished run: the experiment file when :attr:`log_experiment_file` is set.

        The experiment is saved with ``Experiment.save`` into a temporary folder (only where
        this version of modularml has it; otherwise nothing is logged) and the file passed to
        :meth:`log_artifact`. A failing save is reported as a warning: the run's metrics are kept.
        """
        if not self.log_experiment_file or experiment is None or not hasattr(experiment, "save"):
            return
        with tempfile.TemporaryDirectory(prefix="modularml-artifact-") as folder:
            try:
                path = experiment.save(Path(folder) / experiment.label, overwrite=True)
            except Exception as exc:
                warnings.warn(f"{self.label}: the experiment file is not logged: {exc}", UserWarning, stacklevel=2)
                return
            self.log_artifact(path)

    # ------------------------------------------------------------------ phase hooks
    def on_phase_start(self, *, experiment: Any, phase: Any, results: PhaseResults | None = None) -> None:
        """Start a run: open it, then log the run's parameters."""
        self._store, self._position = None, 0
        self.start_run(phase=phase.label, fold=None if results is None else results.fold)
        self.log_params(self.run_params(experiment=experiment, phase=phase), phase=phase.label)

    def on_epoch_end(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> None:
        """Log the metrics logged since the last call."""
        if results is not None:
            self._flush(results, phase.label)

    def on_phase_end(self, *, experiment: Any, phase: Any, results: PhaseResults | None = None) -> None:
        """Log what is left and the run's files, then end the run (:meth:`close`)."""
        try:
            if results is not None:
                self._flush(results, phase.label)
            self.log_run_artifacts(experiment=experiment, phase=phase)
        finally:
            self.close()

    def on_exception(
        self, *, experiment: Any, phase: Any, exception: BaseException, results: PhaseResults | None = None
    ) -> None:
        """Log what was logged before the failure, then end the run."""
        try:
            if results is not None:
                self._flush(results, phase.label)
        finally:
            self.close()

    def _flush(self, results: PhaseResults, phase: str) -> None:
        """Log the values logged since the last call, one call per step: batches in order, then the epoch level."""
        store = results.metrics()
        if store is not self._store:
            self._store, self._position = store, 0
        new = store.logged_since(self._position)
        self._position = store.position
        steps: dict[tuple[int, int | None], dict[str, float]] = {}
        for entry in new:
            steps.setdefault((entry.epoch_idx, entry.batch_idx), {})[entry.name] = entry.value
        for epoch, batch in sorted(steps, key=lambda step: (step[0], step[1] is None, step[1] or 0)):
            self.log_metrics(steps[(epoch, batch)], phase=phase, epoch=epoch, batch=batch)

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this logger (subclasses add their arguments)."""
        return {**super().get_config(), "log_experiment_file": self.log_experiment_file}


class CSVLogger(MetricsLogger):
    """Writes each phase run's metrics to a CSV file in ``directory``, row by row as the run goes.

    The file (``filename``, default ``"{phase}.csv"``) has the stable columns ``phase``,
    ``epoch``, ``batch`` (empty for epoch-level values), ``name``, ``value``: one row per logged
    value, flushed at every epoch end, so a crash keeps what was logged. A run in a
    cross-validation fold writes into a sub-folder named after the fold (``<directory>/fold_0/``),
    unless ``filename`` names the fold itself (``"{fold}_{phase}.csv"``). The run's parameters go to
    ``<file stem>.params.json`` next to it; :meth:`log_artifact` copies a file into the run's folder.

    Args:
        directory (str | Path): Folder of the files; created if needed.
        filename (str): Name of the CSV file; ``{phase}`` is replaced by the phase label and
            ``{fold}`` by the fold's. Defaults to ``"{phase}.csv"``.
        overwrite (bool): Replace a file of a previous run. If False, a run whose file exists
            fails at its start. Defaults to True.
        label (str | None): Label of the callback. Defaults to ``"CSVLogger"``.
        execution_order (int): Sort key among the phase's callbacks. Defaults to 100.
        log_experiment_file (bool): Copy the experiment file next to the CSV at the end of a run
            (see :class:`MetricsLogger`). Defaults to False.

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
        log_experiment_file: bool = False,
    ) -> None:
        super().__init__(label, execution_order=execution_order, log_experiment_file=log_experiment_file)
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

    def start_run(self, *, phase: str, fold: str | None) -> None:
        """Start the run's CSV file with its header.

        Raises:
            FileCollisionError: If the file exists and ``overwrite`` is False.
        """
        folder = self.directory if fold is None or "{fold}" in self.filename else self.directory / fold
        path = folder / self.filename.replace("{phase}", phase).replace("{fold}", fold or "")
        if path.exists() and not self.overwrite:
            raise FileCollisionError(
                f"{str(path)!r} already exists; pass CSVLogger(..., overwrite=True) to replace it."
            )
        folder.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerow(self.COLUMNS)
        self._path = path

    def log_params(self, params: Mapping[str, Any], *, phase: str) -> None:
        """Write the parameters as JSON beside the CSV file (``<stem>.params.json``)."""
        path = self._require_run("log_params")
        path.with_suffix(".params.json").write_text(json.dumps(params, indent=1, sort_keys=True, default=str))

    def log_metrics(self, metrics: Mapping[str, float], *, phase: str, epoch: int, batch: int | None) -> None:
        """Append one row per value and flush."""
        path = self._require_run("log_metrics")
        with path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in metrics.items():
                writer.writerow((phase, epoch, "" if batch is None else batch, name, repr(float(value))))

    def log_artifact(self, path: str | Path) -> None:
        """Copy the file ``path`` into the run's folder (:attr:`directory` before any run; a file already there stays).

        Raises:
            FileNotFoundError: If there is no such file.
        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"No file {str(source)!r} to log as an artifact.")
        folder = self.directory if self._path is None else self._path.parent
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / source.name
        if target.exists() and target.samefile(source):
            return
        shutil.copy2(source, target)

    def _require_run(self, method: str) -> Path:
        if self._path is None:
            raise InvalidArgumentError(f"CSVLogger.{method}() before a run started (start_run() starts one).")
        return self._path

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
