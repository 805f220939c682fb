"""``Evaluation``: runs an EvalPhase during training and logs validation metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modularml.callbacks.metrics import EvaluationMetric, _as_metric
from modularml.errors import InvalidArgumentError, InvalidTypeError, SerializationError
from modularml.phases.callback import Callback, CallbackResult

if TYPE_CHECKING:
    from modularml.batches import ExecutionContext
    from modularml.losses.applied_loss import AppliedLoss
    from modularml.nodes import GraphNode
    from modularml.phases.eval_phase import EvalPhase
    from modularml.results.eval_results import EvalResults
    from modularml.results.phase_results import PhaseResults

__all__ = ["Evaluation", "EvaluationCallbackResult"]

#: Metric an Evaluation without ``metrics`` logs: the evaluation's summed losses, averaged over its batches.
DEFAULT_METRIC = "val_loss"


@dataclass(frozen=True)
class EvaluationCallbackResult(CallbackResult):
    """What an :class:`Evaluation` records: the evaluation's results (``value``) and the metrics it logged.

    Attributes:
        metrics (dict[str, float]): Metric name -> value logged for this evaluation.
    """

    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def eval_results(self) -> EvalResults:
        """The EvalResults of this evaluation."""
        return self.value


def _metric_class(name: str) -> type[EvaluationMetric]:
    stack = list(EvaluationMetric.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls.__name__ == name:
            return cls
        stack.extend(cls.__subclasses__())
    raise SerializationError(
        f"Unknown EvaluationMetric class {name!r} in an Evaluation config; import the module defining it first."
    )


class Evaluation(Callback):
    """Evaluates the model with an EvalPhase during training (kind ``"evaluation"``).

    At the end of every ``every_n_epochs``-th epoch (epochs ``n-1``, ``2n-1``, ...) the EvalPhase
    runs on the current weights: forward only, under the backends' no-grad scope, no optimizer
    step. Its results are stored in the training results as an
    :class:`EvaluationCallbackResult` (see ``TrainResults.validation_results()``) and metrics are
    logged into the training MetricStore at that epoch: each of ``metrics`` under its name, or,
    without metrics, ``"val_loss"`` (the evaluation's summed losses averaged over its batches),
    which the training progress bar shows and :class:`EarlyStopping` monitors by default.

    With ``result_recording="last"``/``"none"`` on the TrainPhase, the contexts of evaluations
    that are not kept are dropped the same way (their metrics stay).

    Args:
        eval_phase (EvalPhase): The evaluation to run.
        every_n_epochs (int): Evaluate after every n-th epoch. Defaults to 1.
        run_on_start (bool): Also evaluate once before the first epoch (stored at epoch None, no
            metric logged). Defaults to False.
        metrics (list[EvaluationMetric] | None): Metrics to extract and log; ``val_loss`` when None.
        label (str | None): Label of the callback; the EvalPhase's label by default.
        execution_order (int): Sort key among callbacks. Defaults to 0 (before EarlyStopping's 1).

    Raises:
        TypeError: For an ``eval_phase`` that is not an EvalPhase, or metrics of the wrong type.
        ValueError: For ``every_n_epochs < 1`` or two metrics with one name.

    Example:
        >>> val = EvalPhase.from_split("val", split="val", losses=[mse])
        >>> train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[mse],
        ...                               n_epochs=50, callbacks=[Evaluation(val), EarlyStopping(patience=5)])
    """

    kind = "evaluation"

    def __init__(
        self,
        eval_phase: EvalPhase,
        every_n_epochs: int = 1,
        run_on_start: bool = False,
        metrics: Sequence[EvaluationMetric] | None = None,
        *,
        label: str | None = None,
        execution_order: int = 0,
    ) -> None:
        from modularml.phases.eval_phase import EvalPhase

        if not isinstance(eval_phase, EvalPhase):
            raise InvalidTypeError(f"Evaluation takes an EvalPhase; got {type(eval_phase).__name__}.")
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise InvalidArgumentError(f"every_n_epochs is an int >= 1; got {every_n_epochs!r}.")
        if metrics is not None and (isinstance(metrics, EvaluationMetric) or not isinstance(metrics, Sequence)):
            raise InvalidTypeError(f"metrics is a list of EvaluationMetric; got {metrics!r:.100}.")
        self.metrics: list[EvaluationMetric] = list(metrics or [])
        for metric in self.metrics:
            if not isinstance(metric, EvaluationMetric):
                raise InvalidTypeError(f"metrics holds EvaluationMetric objects; got {type(metric).__name__}.")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"Evaluation metrics need distinct names; got {names}.")
        super().__init__(label or eval_phase.label, execution_order=execution_order)
        self.eval_phase = eval_phase
        self.every_n_epochs = every_n_epochs
        self.run_on_start = bool(run_on_start)
        for metric in self.metrics:
            metric.prepare(eval_phase)

    @classmethod
    def from_split(
        cls,
        label: str,
        *,
        split: str,
        losses: Sequence[AppliedLoss] | None = None,
        active_nodes: Sequence[str | GraphNode] | None = None,
        batch_size: int | None = None,
        every_n_epochs: int = 1,
        run_on_start: bool = False,
        metrics: Sequence[EvaluationMetric] | None = None,
        execution_order: int = 0,
    ) -> Evaluation:
        """An Evaluation of ``split`` (an ``EvalPhase.from_split(label, split=...)``), labelled ``label``.

        Raises:
            KeyError: If no ModelGraph is registered, or a head node's FeatureSet lacks ``split``.
        """
        from modularml.phases.eval_phase import EvalPhase

        phase = EvalPhase.from_split(
            label, split=split, losses=losses, active_nodes=active_nodes, batch_size=batch_size
        )
        return cls(
            phase,
            every_n_epochs=every_n_epochs,
            run_on_start=run_on_start,
            metrics=metrics,
            label=label,
            execution_order=execution_order,
        )

    # ------------------------------------------------------------------ running
    def evaluate(
        self, *, exec_ctx: ExecutionContext | None = None, epoch_idx: int | None = None
    ) -> EvaluationCallbackResult:
        """Run the EvalPhase now and extract the metrics (nothing is logged).

        Returns:
            EvaluationCallbackResult: The eval results (``value``) and metric values (``metrics``).
        """
        eval_results = self.eval_phase.execute(show_eval_progress=False, persist_progress=False)
        result = EvaluationCallbackResult(self.kind, self.label, epoch_idx, None, eval_results)
        values: dict[str, float] = {}
        if self.metrics:
            for metric in self.metrics:
                found = _as_metric(metric.extract(eval_result=result, exec_ctx=exec_ctx), metric.name)
                if found is not None:
                    values[found.name] = found.value
        elif "eval_loss" in eval_results.metrics():
            values[DEFAULT_METRIC] = eval_results.metrics().get("eval_loss", 0)
        return replace(result, metrics=values)

    def on_phase_start(
        self, *, experiment: Any, phase: Any, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Evaluate before training when ``run_on_start``."""
        return self.evaluate() if self.run_on_start else None

    def on_epoch_end(
        self, *, experiment: Any, phase: Any, exec_ctx: ExecutionContext, results: PhaseResults | None = None
    ) -> CallbackResult | None:
        """Evaluate after every ``every_n_epochs``-th epoch and log the metrics at that epoch."""
        epoch = exec_ctx.epoch_idx
        if (epoch + 1) % self.every_n_epochs:
            return None
        result = self.evaluate(exec_ctx=exec_ctx, epoch_idx=epoch)
        if results is not None:
            for name, value in result.metrics.items():
                results.metrics().log(name, value, epoch)
        return result

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this callback (the EvalPhase and metrics as their configs)."""
        return {
            "eval_phase": self.eval_phase.get_config(),
            "every_n_epochs": self.every_n_epochs,
            "run_on_start": self.run_on_start,
            "metrics": [{"class": type(m).__name__, "config": m.get_config()} for m in self.metrics],
            **super().get_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Evaluation:
        """Rebuild from :meth:`get_config` output (the EvalPhase's graph must be registered).

        Raises:
            SerializationError: If a metric class is unknown.
        """
        from modularml.phases.eval_phase import EvalPhase

        metrics = [_metric_class(m["class"]).from_config(m["config"]) for m in config.get("metrics", [])]
        return cls(
            EvalPhase.from_config(config["eval_phase"]),
            every_n_epochs=config.get("every_n_epochs", 1),
            run_on_start=config.get("run_on_start", False),
            metrics=metrics,
            label=config.get("label"),
            execution_order=config.get("execution_order", 0),
        )

    def __repr__(self) -> str:
        return (
            f"Evaluation(label={self.label!r}, eval_phase={self.eval_phase.label!r}, "
            f"every_n_epochs={self.every_n_epochs}, metrics={[m.name for m in self.metrics]})"
        )
