"""``TensorBoardLogger``: a phase's metrics as TensorBoard event files, written with tensorboardX.

tensorboardX writes the event files with protobuf alone, so the logger works with every backend
(numpy, scikit-learn, PyTorch, TensorFlow) and needs neither torch nor the tensorboard server
package; view the files with ``tensorboard --logdir <log_dir>``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modularml.callbacks.loggers import MetricsLogger
from modularml.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger(MetricsLogger):
    """Writes each phase run's metrics as TensorBoard scalars under ``log_dir``.

    A run writes into ``<log_dir>/<phase>`` (``<log_dir>/<fold>/<phase>`` in a cross-validation
    fold), so TensorBoard shows one run per phase (and fold). Epoch-level values are scalars named
    after the metric (``train_loss``, ``val_loss``) at step = epoch; with ``log_batches`` the
    per-batch values go to ``batch/<name>`` at a step counting the run's batches. The run's
    parameters are a text summary ``params`` (JSON). :meth:`log_artifact` copies a file into the
    run's folder. Event files are flushed at every epoch end.

    Args:
        log_dir (str | Path): Root folder of the runs; created if needed.
        log_batches (bool): Also write per-batch values. Defaults to False.
        label (str | None): Label of the callback. Defaults to ``"TensorBoardLogger"``.
        execution_order (int): Sort key among the phase's callbacks. Defaults to 100.
        log_experiment_file (bool): Copy the experiment file into the run's folder at the end of a
            run (see :class:`~modularml.callbacks.MetricsLogger`). Defaults to False.

    Raises:
        TypeError: If ``log_dir`` is not a path.

    Example:
        >>> phase.add_callback(TensorBoardLogger("runs/tb"))  # then: tensorboard --logdir runs/tb
    """

    def __init__(
        self,
        log_dir: str | Path,
        *,
        log_batches: bool = False,
        label: str | None = None,
        execution_order: int = 100,
        log_experiment_file: bool = False,
    ) -> None:
        super().__init__(label, execution_order=execution_order, log_experiment_file=log_experiment_file)
        if not isinstance(log_dir, (str, Path)) or not str(log_dir):
            raise InvalidTypeError(f"TensorBoardLogger's log_dir is a folder path; got {log_dir!r}.")
        self.log_dir = Path(log_dir)
        self.log_batches = bool(log_batches)
        self._writer: Any = None
        self._run_dir: Path | None = None
        self._batch_step = 0

    @property
    def run_dir(self) -> Path | None:
        """The folder of the current (or last) run."""
        return self._run_dir

    def start_run(self, *, phase: str, fold: str | None) -> None:
        """Open an event file writer in the run's folder."""
        from tensorboardX import SummaryWriter

        self.close()
        self._run_dir = self.log_dir / fold / phase if fold is not None else self.log_dir / phase
        self._run_dir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(logdir=str(self._run_dir), flush_secs=30)
        self._batch_step = 0

    def log_params(self, params: Mapping[str, Any], *, phase: str) -> None:
        """Write the parameters as the text summary ``params`` (a JSON block)."""
        text = json.dumps(params, indent=1, sort_keys=True, default=str)
        self._require_run("log_params").add_text("params", f"```\n{text}\n```", global_step=0)

    def log_metrics(self, metrics: Mapping[str, float], *, phase: str, epoch: int, batch: int | None) -> None:
        """Write the step's values as scalars (epoch-level ones at step ``epoch``); flush at epoch level."""
        writer = self._require_run("log_metrics")
        if batch is None:
            for name, value in metrics.items():
                writer.add_scalar(name, float(value), global_step=epoch)
            writer.flush()
        elif self.log_batches:
            for name, value in metrics.items():
                writer.add_scalar(f"batch/{name}", float(value), global_step=self._batch_step)
            self._batch_step += 1

    def log_artifact(self, path: str | Path) -> None:
        """Copy the file ``path`` into the run's folder (``log_dir`` before any run).

        Raises:
            FileNotFoundError: If there is no such file.
        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"No file {str(source)!r} to log as an artifact.")
        folder = self._run_dir or self.log_dir
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / source.name
        if not (target.exists() and target.samefile(source)):
            shutil.copy2(source, target)

    def close(self) -> None:
        """Flush and close the run's event file (the folder stays as :attr:`run_dir`)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _require_run(self, method: str) -> Any:
        if self._writer is None:
            raise InvalidArgumentError(f"TensorBoardLogger.{method}() outside a run (start_run() starts one).")
        return self._writer

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this logger."""
        return {"log_dir": str(self.log_dir), "log_batches": self.log_batches, **super().get_config()}

    def __repr__(self) -> str:
        return f"TensorBoardLogger(log_dir={str(self.log_dir)!r})"
