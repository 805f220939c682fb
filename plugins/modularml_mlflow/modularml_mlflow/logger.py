"""``MLflowLogger``: a phase's parameters, metrics and files as an MLflow run.

The logger talks to the tracking store through :class:`mlflow.MlflowClient`, never through
mlflow's global "active run", so it neither needs nor disturbs a run the user has open.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modularml.callbacks.loggers import MetricsLogger, flatten_params
from modularml.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["MLflowLogger"]

#: The most parameters (and metrics) MLflow takes in one ``log_batch`` request.
_BATCH_PARAMS = 100
_BATCH_METRICS = 1000
#: The longest parameter value MLflow stores; longer values are cut (with a warning).
_MAX_PARAM_LENGTH = 6000


def _check_optional_str(name: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidTypeError(f"MLflowLogger's {name} is a non-empty string or None; got {value!r}.")
    return value


class MLflowLogger(MetricsLogger):
    """Logs each phase run to MLflow: parameters, metrics per epoch, nested runs per fold, files.

    A phase run is one MLflow run (named ``run_name``, or the phase's label) in experiment
    ``experiment_name`` (the modularml Experiment's label by default, else MLflow's
    ``"Default"``). Its parameters are the phase's configuration and, inside an Experiment, the
    experiment's configuration (``experiment.*``), flattened to ``a.b.0.c`` keys. Epoch-level
    values are metrics at step = epoch; with ``log_batches`` the batch-level ones are
    ``<name>_batch`` at a step counting the run's batches. In a cross-validation fold, each fold's
    phase run is a child run (named ``<fold>/<phase>``) of one parent run for the cross-validation.
    At the end of a run the experiment file is logged (``Experiment.save``, where this version has
    it; see ``log_experiment_file``) and, with ``log_model``, the model graph (``ModelGraph.save``)
    under ``model/``. Tags ``modularml.phase`` and ``modularml.fold`` name what ran.

    Args:
        tracking_uri (str | None): The tracking store or server (``"sqlite:///mlflow.db"``,
            ``"http://127.0.0.1:5000"``); MLflow's own default (``MLFLOW_TRACKING_URI``) when None.
        experiment_name (str | None): The MLflow experiment, created if missing.
        run_name (str | None): Name of the runs (of the parent run under cross-validation).
        log_model (bool): Log the model graph file at the end of each run. Defaults to False.
        log_batches (bool): Also log the batch-level values. Defaults to False.
        log_experiment_file (bool): Log the experiment file at the end of each run. Defaults to True.
        artifact_location (str | None): Where a new MLflow experiment keeps its files; the
            store's default when None.
        label (str | None): Label of the callback. Defaults to ``"MLflowLogger"``.
        execution_order (int): Sort key among the phase's callbacks. Defaults to 100.

    Raises:
        TypeError: If a name or URI is not a non-empty string.

    Example:
        >>> phase.add_callback(MLflowLogger(tracking_uri="sqlite:///mlflow.db", experiment_name="soh"))
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
        log_model: bool = False,
        *,
        log_batches: bool = False,
        log_experiment_file: bool = True,
        artifact_location: str | None = None,
        label: str | None = None,
        execution_order: int = 100,
    ) -> None:
        super().__init__(label, execution_order=execution_order, log_experiment_file=log_experiment_file)
        self.tracking_uri = _check_optional_str("tracking_uri", tracking_uri)
        self.experiment_name = _check_optional_str("experiment_name", experiment_name)
        self.run_name = _check_optional_str("run_name", run_name)
        self.artifact_location = _check_optional_str("artifact_location", artifact_location)
        self.log_model = bool(log_model)
        self.log_batches = bool(log_batches)
        self._client: Any = None
        self._experiment: Any = None  # the modularml Experiment of the current run
        self._run_id: str | None = None
        self._open = False
        self._parent_id: str | None = None
        self._parent_runs: set[tuple[str, str]] = set()
        self._batch_step = 0

    # ------------------------------------------------------------------ runs
    @property
    def run_id(self) -> str | None:
        """The MLflow run id of the current (or last) run."""
        return self._run_id

    @property
    def parent_run_id(self) -> str | None:
        """The MLflow run id of the current (or last) cross-validation parent run."""
        return self._parent_id

    @property
    def client(self) -> Any:
        """The ``mlflow.MlflowClient`` of :attr:`tracking_uri` (made on first use)."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _experiment_id(self) -> str:
        name = self.experiment_name or getattr(self._experiment, "label", None) or "Default"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage != "active":
                raise InvalidArgumentError(
                    f"The MLflow experiment {name!r} is deleted; restore it or give MLflowLogger another "
                    "experiment_name."
                )
            return found.experiment_id
        return self.client.create_experiment(name, artifact_location=self.artifact_location)

    def on_phase_start(self, *, experiment: Any, phase: Any, results: Any = None) -> None:
        """Remember the phase's Experiment (the default MLflow experiment name), then start the run."""
        self._experiment = experiment
        super().on_phase_start(experiment=experiment, phase=phase, results=results)

    def start_run(self, *, phase: str, fold: str | None) -> None:
        """Create the MLflow run of the phase (a child of the cross-validation's parent run in a fold)."""
        from modularml import __version__

        self.close()
        experiment_id = self._experiment_id()
        tags = {"modularml.phase": phase, "modularml.version": __version__}
        if fold is None:
            self._parent_id, self._parent_runs = None, set()
            name = self.run_name or phase
        else:
            if self._parent_id is None or (fold, phase) in self._parent_runs:
                parent_name = self.run_name or getattr(self._experiment, "label", None) or phase
                parent = self.client.create_run(
                    experiment_id, run_name=parent_name, tags={"modularml.cross_validation": "true"}
                )
                self._parent_id, self._parent_runs = parent.info.run_id, set()
            else:
                self.client.update_run(self._parent_id, status="RUNNING")
            self._parent_runs.add((fold, phase))
            tags.update({"modularml.fold": fold, "mlflow.parentRunId": self._parent_id})
            name = f"{fold}/{phase}"
        self._run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        self._open = True
        self._batch_step = 0

    def log_params(self, params: Mapping[str, Any], *, phase: str) -> None:
        """Log the flattened parameters (values as text; values over MLflow's 6000 characters are cut)."""
        from mlflow.entities import Param

        run_id = self._require_run("log_params")
        flat = {key: "None" if value is None else str(value) for key, value in flatten_params(params).items()}
        long = sorted(key for key, value in flat.items() if len(value) > _MAX_PARAM_LENGTH)
        if long:
            warnings.warn(
                f"MLflowLogger: parameters {long} are longer than MLflow's {_MAX_PARAM_LENGTH} characters and are cut.",
                UserWarning,
                stacklevel=2,
            )
        items = [Param(key, value[:_MAX_PARAM_LENGTH]) for key, value in flat.items()]
        for start in range(0, len(items), _BATCH_PARAMS):
            self.client.log_batch(run_id, params=items[start : start + _BATCH_PARAMS])

    def log_metrics(self, metrics: Mapping[str, float], *, phase: str, epoch: int, batch: int | None) -> None:
        """Log epoch-level values at step ``epoch`` (and batch-level ones as ``<name>_batch`` with ``log_batches``)."""
        from mlflow.entities import Metric

        run_id = self._require_run("log_metrics")
        if batch is not None and not self.log_batches:
            return
        now = int(time.time() * 1000)
        if batch is None:
            items = [Metric(name, float(value), now, epoch) for name, value in metrics.items()]
        else:
            items = [Metric(f"{name}_batch", float(value), now, self._batch_step) for name, value in metrics.items()]
            self._batch_step += 1
        for start in range(0, len(items), _BATCH_METRICS):
            self.client.log_batch(run_id, metrics=items[start : start + _BATCH_METRICS])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Log the file ``path`` with the run (under ``artifact_path``, a folder of the run's files).

        Raises:
            FileNotFoundError: If there is no such file.
        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"No file {str(source)!r} to log as an artifact.")
        self.client.log_artifact(self._require_run("log_artifact"), str(source), artifact_path)

    def log_run_artifacts(self, *, experiment: Any, phase: Any) -> None:
        """Log the experiment file (see :class:`MetricsLogger`) and, with ``log_model``, the model graph file."""
        super().log_run_artifacts(experiment=experiment, phase=phase)
        if not self.log_model:
            return
        graph = phase.resolve_model_graph(None if experiment is None else experiment.model_graph)
        with tempfile.TemporaryDirectory(prefix="modularml-mlflow-") as folder:
            self.log_artifact(graph.save(Path(folder) / graph.label, overwrite=True), "model")

    def close(self) -> None:
        """End the run (status FINISHED); a cross-validation parent run is marked finished with it."""
        self._end("FINISHED")

    def _end(self, status: str) -> None:
        if not self._open or self._run_id is None:
            return
        self._open = False
        self.client.set_terminated(self._run_id, status=status)
        if self._parent_id is not None:
            self.client.set_terminated(self._parent_id, status=status)

    def on_exception(self, *, experiment: Any, phase: Any, exception: BaseException, results: Any = None) -> None:
        """Log what was logged before the failure and end the run as FAILED."""
        try:
            if results is not None:
                self._flush(results, phase.label)
        finally:
            self._end("FAILED")

    def _require_run(self, method: str) -> str:
        if self._run_id is None:
            raise InvalidArgumentError(f"MLflowLogger.{method}() before a run started (start_run() starts one).")
        return self._run_id

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this logger."""
        return {
            "tracking_uri": self.tracking_uri,
            "experiment_name": self.experiment_name,
            "run_name": self.run_name,
            "log_model": self.log_model,
            "log_batches": self.log_batches,
            "artifact_location": self.artifact_location,
            **super().get_config(),
        }

    def __repr__(self) -> str:
        return (
            f"MLflowLogger(tracking_uri={self.tracking_uri!r}, experiment_name={self.experiment_name!r}, "
            f"run_name={self.run_name!r}, log_model={self.log_model})"
        )
