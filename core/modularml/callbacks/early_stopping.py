"""``EarlyStopping``: stops a TrainPhase when a monitored metric stops improving."""

from __future__ import annotations

import copy
import logging
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modularml.errors import InvalidArgumentError, InvalidTypeError, ModularMLWarning
from modularml.phases.callback import Callback, CallbackResult, RunNote

if TYPE_CHECKING:
    from modularml.batches import ExecutionContext
    from modularml.results.phase_results import PhaseResults

__all__ = ["EarlyStopping", "EarlyStoppingResult"]

logger = logging.getLogger("modularml.callbacks.early_stopping")

_REDUCERS = ("mean", "sum", "last", "first")


@dataclass(frozen=True)
class EarlyStoppingResult(CallbackResult):
    """What :class:`EarlyStopping` records at the end of a phase.

    Attributes:
        best_epoch (int | None): Epoch of the best monitored value (None if it was never logged).
        best_value (float | None): The best monitored value.
        stopped_epoch (int | None): Epoch after which training stopped, or None if it ran to the end.
        restored (bool): Whether the weights of ``best_epoch`` were restored.
    """

    best_epoch: int | None = None
    best_value: float | None = None
    stopped_epoch: int | None = None
    restored: bool = False


class EarlyStopping(Callback):
    """Stop training when a monitored metric stops improving.

    At the end of every epoch the value of ``monitor`` logged in the phase's MetricStore at that
    epoch is compared with the best so far; an epoch where the metric was not logged (e.g. between
    evaluations with ``every_n_epochs > 1``) is skipped. After ``patience`` consecutive logged
    epochs without improvement, ``phase.request_stop()`` is called and the training loop ends
    after that epoch. With ``restore_best=True`` the best epoch's graph state (weights and
    optimizer state) is restored at the end of the phase: from the phase's own checkpoint of that
    epoch when its Checkpointing saved one (``save_on="epoch_end"``, memory or disk), else from a
    snapshot taken in memory whenever the metric improves. A TrainPhase recording ``"last"`` then
    keeps the best epoch's contexts.

    Args:
        monitor (str): Metric to monitor, logged during training (by an Evaluation, an
            EvalLossMetric or a MetricCallback). Defaults to ``"val_loss"``.
        mode (Literal["min", "max"]): Whether the metric should decrease or increase. Defaults to ``"min"``.
        patience (int): Logged epochs without improvement before stopping. Defaults to 5.
        min_delta (float): Minimum change that counts as an improvement. Defaults to 0.0.
        restore_best (bool): Restore the best epoch's state at the end of the phase. Defaults to False.
        reducer (Literal["mean", "sum", "last", "first"]): How several batch-level values of
            ``monitor`` in one epoch are combined when no epoch-level value was logged. Defaults to ``"last"``.
        label (str | None): Label of the callback. Defaults to ``"EarlyStopping"``.
        execution_order (int): Sort key among callbacks; keep it above the callback that logs
            ``monitor``. Defaults to 1.

    Raises:
        TypeError: For arguments of the wrong type.
        ValueError: For an unknown mode or reducer, ``patience < 0`` or ``min_delta < 0``.

    Example:
        >>> phase.add_callback(EarlyStopping(monitor="val_loss", patience=5, restore_best=True))
    """

    kind = "early_stopping"

    def __init__(
        self,
        *,
        monitor: str = "val_loss",
        mode: Literal["min", "max"] = "min",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best: bool = False,
        reducer: Literal["mean", "sum", "last", "first"] = "last",
        label: str | None = None,
        execution_order: int = 1,
    ) -> None:
        super().__init__(label, execution_order=execution_order)
        if not isinstance(monitor, str) or not monitor:
            raise InvalidTypeError(f"monitor is a metric name (a non-empty string); got {monitor!r}.")
        if mode not in ("min", "max"):
            raise InvalidArgumentError(f"mode is 'min' or 'max'; got {mode!r}.")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise InvalidArgumentError(f"patience is an int >= 0; got {patience!r}.")
        if isinstance(min_delta, bool) or not isinstance(min_delta, int | float) or not min_delta >= 0:
            raise InvalidArgumentError(f"min_delta is a number >= 0; got {min_delta!r}.")
        if reducer not in _REDUCERS:
            raise InvalidArgumentError(f"reducer is one of {list(_REDUCERS)}; got {reducer!r}.")
        self._monitor = monitor
        self.mode = mode
        self.patience = patience
        self.min_delta = float(min_delta)
        self._restore_best = bool(restore_best)
        self.reducer = reducer
        self._reset()

    def _reset(self) -> None:
        self._note: RunNote | None = None
        self._best_value: float | None = None
        self._best_epoch: int | None = None
        self._stopped_epoch: int | None = None
        self._wait = 0
        self._snapshot: dict[str, Any] | None = None

    # ------------------------------------------------------------------ properties
    @property
    def monitor(self) -> str:
        """The name of the monitored metric."""
        return self._monitor

    def retained_epochs(self) -> set[int]:
        """The best epoch, when its state is to be restored (its results are kept with it)."""
        return {self._best_epoch} if self._restore_best and self._best_epoch is not None else set()

    @property
    def restore_best(self) -> bool:
        """Whether model state restoration to the best epoch is enabled."""
        return self._restore_best

    @property
    def best_epoch(self) -> int | None:
        """The epoch index that achieved the best metric value, or None."""
        return self._best_epoch

    @property
    def best_value(self) -> float | None:
        """The best observed metric value so far."""
        return self._best_value

    @property
    def stopped_epoch(self) -> int | None:
        """The epoch at which training was stopped, or None if not triggered."""
        return self._stopped_epoch

    # ------------------------------------------------------------------ hooks
    def on_phase_start(self, *, experiment: Any, phase: Any, results: PhaseResults | None = None) -> None:
        """Reset internal state at the start of each phase.

        Raises:
            TypeError: If ``phase`` cannot be stopped (it has no ``request_stop``, e.g. an EvalPhase).
        """
        if not callable(getattr(phase, "request_stop", None)):
            raise InvalidTypeError(
                f"EarlyStopping needs a phase that can stop early (a TrainPhase); {type(phase).__name__} "
                f"{getattr(phase, 'label', '')!r} has no request_stop()."
            )
        self._reset()

    def _epoch_value(self, results: PhaseResults, epoch: int) -> float | None:
        store = results.metrics()
        value = store.get(self._monitor, epoch)
        if value is not None or self._monitor not in store:
            return value
        batch = list(store.batch_values(self._monitor, epoch).values())
        if not batch:
            return None
        if self.reducer == "first":
            return batch[0]
        if self.reducer == "last":
            return batch[-1]
        return math.fsum(batch) / (len(batch) if self.reducer == "mean" else 1)

    def _improves(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self._best_value is None:
            return True
        if self.mode == "min":
            return value < self._best_value - self.min_delta
        return value > self._best_value + self.min_delta

    def on_epoch_end(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Check the monitored metric and request a stop once patience is exceeded."""
        if results is None:
            return None
        epoch = exec_ctx.epoch_idx
        value = self._epoch_value(results, epoch)
        if value is None:
            return None
        if self._improves(value):
            self._best_value, self._best_epoch, self._wait = value, epoch, 0
            if self._restore_best:
                # The phase's own checkpoint of this epoch serves, unless it may be deleted or replaced later
                # (max_to_keep, or a name template of the user's that may reuse its file).
                ckpt = getattr(phase, "active_checkpointing", None)
                kept = (
                    ckpt is not None
                    and ckpt.has_key(epoch)
                    and ckpt.max_to_keep is None
                    and (ckpt.mode == "memory" or ckpt.get_config()["name_template"] is None)
                )
                self._snapshot = None if kept else copy.deepcopy(phase.resolve_model_graph().get_state())
            return None
        self._wait += 1
        if self._wait >= self.patience and self._stopped_epoch is None:
            self._stopped_epoch = epoch
            logger.info(
                "EarlyStopping: phase %r stops after epoch %d: %s did not improve for %d epoch(s) (best %.6g at "
                "epoch %d)",
                getattr(phase, "label", "?"),
                epoch + 1,
                self._monitor,
                self._wait,
                self._best_value,
                self._best_epoch + 1,
            )
            phase.request_stop()
        return None

    def on_phase_end(
        self, *, experiment: Any, phase: Any, results: PhaseResults | None = None
    ) -> EarlyStoppingResult | None:
        """Restore the best model state (if enabled) and return a summary.

        Warns:
            ModularMLWarning: If ``monitor`` was never logged during the phase (nothing was monitored).
        """
        if self._best_epoch is None and results is not None:
            warnings.warn(
                f"EarlyStopping monitored {self._monitor!r}, which phase {phase.label!r} never logged "
                f"(metrics: {results.metrics().names}); training ran without early stopping. Add an Evaluation "
                "callback (it logs 'val_loss') or a MetricCallback, or monitor a logged metric.",
                ModularMLWarning,
                stacklevel=2,
            )
        restored = False
        ckpt = getattr(phase, "active_checkpointing", None)
        best = self._best_epoch
        if self._restore_best and best is not None and ckpt is not None and ckpt.has_key(best):
            graph = phase.resolve_model_graph()
            if ckpt.mode == "memory":
                graph.set_state(copy.deepcopy(ckpt.get_state(best)))
            else:
                graph.restore_checkpoint(ckpt.get_path(best))
            restored = True
        elif self._restore_best and self._snapshot is not None:
            phase.resolve_model_graph().set_state(self._snapshot)
            restored = True
        self._snapshot = None  # not needed any more: free its memory
        self._note = self._make_note(restored)
        if restored:
            logger.info(
                "EarlyStopping: phase %r restored the state of its best epoch %d (%s %.6g)",
                getattr(phase, "label", "?"),
                best + 1,
                self._monitor,
                self._best_value,
            )
        return EarlyStoppingResult(
            self.kind,
            self.label,
            None,
            None,
            {"best_epoch": self._best_epoch, "best_value": self._best_value, "stopped_epoch": self._stopped_epoch},
            best_epoch=self._best_epoch,
            best_value=self._best_value,
            stopped_epoch=self._stopped_epoch,
            restored=restored,
        )

    # ------------------------------------------------------------------ run state
    def get_state(self) -> dict[str, Any]:
        """Best value and epoch, epochs waited, the stop epoch and the best state's snapshot (when it keeps one)."""
        return {
            "best_value": self._best_value,
            "best_epoch": self._best_epoch,
            "stopped_epoch": self._stopped_epoch,
            "wait": self._wait,
            "snapshot": copy.deepcopy(self._snapshot),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (a resumed run then stops when the uninterrupted one would).

        Raises:
            InvalidArgumentError: If ``state`` is not an EarlyStopping state.
        """
        keys = {"best_value", "best_epoch", "stopped_epoch", "wait", "snapshot"}
        if not isinstance(state, dict) or set(state) != keys:
            raise InvalidArgumentError(f"Not an EarlyStopping state (keys {sorted(keys)}): {state!r:.120}.")
        wait = state["wait"]
        if isinstance(wait, bool) or not isinstance(wait, int) or wait < 0:
            raise InvalidArgumentError(f"An EarlyStopping state's 'wait' is an int >= 0; got {wait!r}.")
        self._best_value = None if state["best_value"] is None else float(state["best_value"])
        self._best_epoch = state["best_epoch"]
        self._stopped_epoch = state["stopped_epoch"]
        self._wait = wait
        self._snapshot = copy.deepcopy(state["snapshot"])

    def _make_note(self, restored: bool) -> RunNote | None:
        if self._best_epoch is None:
            return RunNote(f"EarlyStopping: {self._monitor} was never logged, nothing was monitored")
        parts = []
        if self._stopped_epoch is not None:
            epochs = f"{self.patience} epoch{'s' * (self.patience != 1)}"
            parts.append(f"stopped after epoch {self._stopped_epoch + 1}: {self._monitor} did not improve for {epochs}")
        best = f"best epoch {self._best_epoch + 1} ({self._monitor} {self._best_value:.4g})"
        parts.append(f"restored the {best}" if restored else best)
        return RunNote(
            "EarlyStopping: " + "; ".join(parts),
            stopped=self._stopped_epoch is not None,
            restored_epoch=self._best_epoch if restored else None,
        )

    def run_note(self) -> RunNote | None:
        """Why the phase stopped (if it did) and which epoch was restored, after the phase's last run."""
        return self._note

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this callback."""
        return {
            "monitor": self._monitor,
            "mode": self.mode,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "restore_best": self._restore_best,
            "reducer": self.reducer,
            **super().get_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EarlyStopping:
        """Construct from config data."""
        return super().from_config(config)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self._monitor!r}, mode={self.mode!r}, patience={self.patience}, "
            f"restore_best={self._restore_best})"
        )
