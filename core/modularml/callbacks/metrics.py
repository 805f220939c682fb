"""Metric callbacks: ``MetricCallback`` (computed in a phase), ``EvaluationMetric`` (read from an Evaluation)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modularml.errors import InvalidArgumentError, InvalidTypeError, SerializationError
from modularml.phases.callback import Callback, CallbackResult

if TYPE_CHECKING:
    from modularml.batches import ExecutionContext
    from modularml.callbacks.evaluation import EvaluationCallbackResult
    from modularml.losses.applied_loss import AppliedLoss
    from modularml.phases.eval_phase import EvalPhase
    from modularml.results.phase_results import PhaseResults

__all__ = ["EvalLossMetric", "EvaluationMetric", "MetricCallback", "MetricResult"]


@dataclass(frozen=True)
class MetricResult:
    """One metric value produced by a metric callback or an evaluation metric.

    Attributes:
        name (str): Metric name it is logged under.
        value (float): The value.
        epoch_idx (int | None): Epoch it belongs to (the current one when None).
        batch_idx (int | None): Batch it belongs to (None: an epoch-level value).
    """

    name: str
    value: float
    epoch_idx: int | None = None
    batch_idx: int | None = None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidTypeError(f"A metric name is a non-empty string; got {name!r}.")
    return name


def _as_metric(value: Any, name: str) -> MetricResult | None:
    if value is None or isinstance(value, MetricResult):
        return value
    try:
        return MetricResult(name, float(value))
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"Metric {name!r}: compute()/extract() returns a real scalar, a MetricResult or None; got {value!r:.80}."
        ) from None


class MetricCallback(Callback, ABC):
    """Base of metrics computed during a phase and logged into its MetricStore.

    Subclasses implement :meth:`compute`; it runs at the end of every epoch (``every="epoch"``,
    logged as an epoch-level value) or after every step (``every="batch"``). The logged values are
    what :class:`EarlyStopping` monitors and the training progress bar shows.

    Args:
        name (str): Metric name to log under.
        every (Literal["epoch", "batch"]): When to compute. Defaults to ``"epoch"``.
        label (str | None): Label of the callback; ``name`` by default.
        execution_order (int): Sort key among callbacks. Defaults to 0 (before EarlyStopping's 1).

    Raises:
        TypeError: If ``name`` is not a non-empty string.
        ValueError: If ``every`` is not ``"epoch"`` or ``"batch"``.

    Example:
        >>> class WeightNorm(MetricCallback):
        ...     def compute(self, *, experiment, phase, exec_ctx, results):
        ...         return float(np.linalg.norm(head.get_weights()["w"]))
        >>> phase.add_callback(WeightNorm("w_norm"))
    """

    kind = "metric"

    def __init__(
        self,
        name: str,
        *,
        every: Literal["epoch", "batch"] = "epoch",
        label: str | None = None,
        execution_order: int = 0,
    ) -> None:
        self.name = _check_name(name)
        if every not in ("epoch", "batch"):
            raise InvalidArgumentError(f"every is 'epoch' or 'batch'; got {every!r}.")
        self.every = every
        super().__init__(label or name, execution_order=execution_order)

    @abstractmethod
    def compute(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None
    ) -> float | MetricResult | None:
        """The metric value now (a float, a MetricResult, or None to log nothing)."""

    def _log(self, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None) -> None:
        value = _as_metric(
            self.compute(experiment=experiment, phase=phase, exec_ctx=exec_ctx, results=results), self.name
        )
        if value is None or results is None:
            return
        epoch = exec_ctx.epoch_idx if value.epoch_idx is None else value.epoch_idx
        batch = value.batch_idx if value.batch_idx is not None or self.every == "epoch" else exec_ctx.batch_idx
        results.metrics().log(value.name, value.value, epoch, batch)

    def on_epoch_end(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Compute and log the metric (``every="epoch"``)."""
        if self.every == "epoch":
            self._log(experiment, phase, exec_ctx, results)
        return None

    def on_batch_end(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Compute and log the metric (``every="batch"``)."""
        if self.every == "batch":
            self._log(experiment, phase, exec_ctx, results)
        return None

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this callback."""
        return {"name": self.name, "every": self.every, **super().get_config()}


class EvaluationMetric(ABC):
    """Base of metrics read from the results of an :class:`~modularml.callbacks.Evaluation`.

    Give instances to ``Evaluation(metrics=[...])``: after each evaluation, :meth:`extract` turns
    its results into a value, which the Evaluation logs under :attr:`name` into the training
    phase's MetricStore.

    Args:
        name (str): Metric name to log under.

    Raises:
        TypeError: If ``name`` is not a non-empty string.
    """

    def __init__(self, *, name: str) -> None:
        self.name = _check_name(name)

    def prepare(self, eval_phase: EvalPhase) -> None:
        """Adapt the evaluation phase this metric reads (called once by the Evaluation); nothing by default."""
        return None

    @abstractmethod
    def extract(
        self, *, eval_result: EvaluationCallbackResult, exec_ctx: ExecutionContext | None = None
    ) -> MetricResult | float | None:
        """The metric value of one evaluation (a float, a MetricResult, or None to log nothing)."""

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this metric."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EvaluationMetric:
        """Rebuild a metric from :meth:`get_config` output."""
        try:
            return cls(**config)
        except TypeError as exc:
            raise SerializationError(f"Cannot rebuild {cls.__name__} from config {config!r:.200}: {exc}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class EvalLossMetric(EvaluationMetric):
    """Extracts a scalar loss from an Evaluation callback and logs it as a metric.

    Args:
        loss (AppliedLoss): The loss to track; added to the Evaluation's EvalPhase when missing.
        reducer (Literal["sum", "mean"]): How to aggregate the per-batch losses of the evaluation.
            Defaults to ``"mean"``.
        name (str): Metric name to log under. Defaults to ``"val_loss"``.

    Raises:
        TypeError: If ``loss`` is not an AppliedLoss.
        ValueError: For an unknown reducer.

    Example:
        >>> val_metric = EvalLossMetric(loss=mse_loss, name="val_loss")
        >>> phase.add_callback(Evaluation(eval_phase=eval_phase, metrics=[val_metric]))
    """

    def __init__(self, *, loss: AppliedLoss, reducer: Literal["sum", "mean"] = "mean", name: str = "val_loss") -> None:
        from modularml.losses.applied_loss import AppliedLoss

        super().__init__(name=name)
        if not isinstance(loss, AppliedLoss):
            raise InvalidTypeError(f"EvalLossMetric(loss=...) takes an AppliedLoss; got {type(loss).__name__}.")
        if reducer not in ("sum", "mean"):
            raise InvalidArgumentError(f"reducer is 'sum' or 'mean'; got {reducer!r}.")
        self.loss = loss
        self.reducer = reducer

    def prepare(self, eval_phase: EvalPhase) -> None:
        """Add :attr:`loss` to ``eval_phase`` unless it already computes a loss of that label.

        Raises:
            ValueError: If ``eval_phase`` has a different loss with the same label.
        """
        for existing in eval_phase.losses:
            if existing.label == self.loss.label:
                if existing is not self.loss and existing.get_config() != self.loss.get_config():
                    raise InvalidArgumentError(
                        f"EvalPhase {eval_phase.label!r} already has another loss labelled {self.loss.label!r}; "
                        "give the tracked loss a distinct label."
                    )
                return
        eval_phase.losses.append(self.loss)

    def extract(
        self, *, eval_result: EvaluationCallbackResult, exec_ctx: ExecutionContext | None = None
    ) -> MetricResult | None:
        """The loss aggregated over the evaluation's batches, as :attr:`name`."""
        losses = eval_result.eval_results.aggregated_losses(self.loss.node_id, reducer=self.reducer)
        return MetricResult(self.name, losses[self.loss.label])

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this metric (the loss as its own config)."""
        return {"loss": self.loss.get_config(), "reducer": self.reducer, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EvalLossMetric:
        """Rebuild from :meth:`get_config` output."""
        from modularml.losses.applied_loss import AppliedLoss

        loss = config["loss"]
        return cls(
            loss=loss if isinstance(loss, AppliedLoss) else AppliedLoss.from_config(loss),
            reducer=config.get("reducer", "mean"),
            name=config.get("name", "val_loss"),
        )

    def __repr__(self) -> str:
        return f"EvalLossMetric(loss={self.loss.label!r}, reducer={self.reducer!r}, name={self.name!r})"
