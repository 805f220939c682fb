"""``TrainResults``: results of a TrainPhase (contexts by epoch and batch, metrics, callback results)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from modularml.errors import InvalidArgumentError, NotRegisteredError
from modularml.results.axis_series import AxisSeries
from modularml.results.phase_results import Domain, PhaseResults, _graph_node

if TYPE_CHECKING:
    from modularml.results.callback_result import CallbackResult
    from modularml.results.eval_results import EvalResults

__all__ = ["TrainResults"]

#: Kind of the callback results that evaluation callbacks record.
EVALUATION_KIND = "evaluation"


@dataclass(repr=False)
class TrainResults(PhaseResults):
    """Results container for a training phase.

    The ``train_loss`` metric holds the summed loss of every step (per batch) and its epoch mean
    (epoch level), whatever the result recording; evaluation callbacks add ``val_loss`` (or the
    metrics they are given). The results of evaluation callbacks (kind ``"evaluation"``) are
    exposed through :meth:`validation_results`, :meth:`validation_losses` and
    :meth:`validation_tensors`.
    """

    def epoch_losses(self, name: str = "train_loss") -> dict[int, float]:
        """Epoch-level values of a loss metric: epoch index -> value.

        Raises:
            KeyError: If the metric was not logged.
        """
        return self._metrics.epoch_values(name)

    def plot_losses(self, *, log_scale: bool = False, ax: Any = None) -> Any:
        """The losses per epoch: one axes per (node, loss), with the training and the validation line.

        Training values are the epoch means of the recorded steps; validation values come from the
        phase's evaluation callbacks. Results that recorded no steps (``result_recording="none"``)
        draw the loss metrics (``train_loss``, ``val_loss``...) on one axes instead. Needs
        matplotlib (``pip install "modularml[plot]"``); returns the figure without showing it.

        Args:
            log_scale: Use a logarithmic y axis.
            ax: Axes to draw into, one per panel; a new figure by default.

        Returns:
            matplotlib.figure.Figure: The figure.

        Raises:
            ValueError: If no loss was recorded.
        """
        from modularml.results.plots import plot_losses

        return plot_losses(self, log_scale=log_scale, ax=ax)

    # ------------------------------------------------------------------ validation
    def _evaluations(self, label: str | None) -> list[CallbackResult]:
        found = [r for r in self._callbacks if r.kind == EVALUATION_KIND and isinstance(r.value, PhaseResults)]
        labels = list(dict.fromkeys(r.label for r in found))
        if not found:
            raise NotRegisteredError(
                f"Results {self.label!r} hold no evaluation results; add an Evaluation callback to the TrainPhase."
            )
        if label is None:
            if len(labels) > 1:
                raise InvalidArgumentError(
                    f"Results {self.label!r} hold several evaluations {labels}; pass label= to choose one."
                )
            return found
        chosen = [r for r in found if r.label == label]
        if not chosen:
            raise NotRegisteredError(f"Results {self.label!r} hold no evaluation {label!r}; evaluations: {labels}.")
        return chosen

    def validation_results(self, *, label: str | None = None) -> AxisSeries:
        """The EvalResults of an evaluation callback, by epoch.

        An evaluation run before the first epoch (``run_on_start=True``) is at epoch ``-1``.

        Args:
            label: Label of the evaluation callback; optional when the phase had one.

        Returns:
            AxisSeries: Axis ``("epoch",)`` -> EvalResults.

        Raises:
            KeyError: If there are no evaluation results (with that label).
            ValueError: If several evaluation callbacks ran and ``label`` is None.
        """
        found = self._evaluations(label)
        return AxisSeries(
            ("epoch",),
            {(-1 if r.epoch_idx is None else r.epoch_idx,): r.value for r in found},
            name=f"evaluation {found[0].label}",
        )

    def validation_losses(
        self, node: Any, *, label: str | None = None, reducer: Literal["mean", "sum"] = "mean"
    ) -> AxisSeries:
        """Losses on ``node`` of every evaluation during training, reduced over the evaluation's batches.

        Evaluations whose contexts were dropped (``result_recording`` ``"last"``/``"none"``) are
        skipped; their metrics (e.g. ``val_loss``) remain in :meth:`metrics`.

        Returns:
            AxisSeries: Axes ``("loss", "epoch")`` (loss label, epoch) -> float.

        Raises:
            KeyError: If there are no evaluation results (with that label).
            ValueError: For an unknown reducer, or several evaluations and no ``label``.
        """
        if reducer not in ("mean", "sum"):
            raise InvalidArgumentError(f"reducer is 'mean' or 'sum'; got {reducer!r}.")
        graph_node = _graph_node(node)
        data = {}
        for (epoch,), evaluation in self.validation_results(label=label).items():
            evaluation: EvalResults
            if not evaluation._execution:
                continue
            steps = evaluation.losses(graph_node)
            for loss_label in steps.axes_values("loss"):
                values = steps.where(loss=loss_label).values
                data[(loss_label, epoch)] = float(sum(values) / len(values) if reducer == "mean" else sum(values))
        return AxisSeries(("loss", "epoch"), data, name=f"validation losses of {graph_node.label}")

    def validation_tensors(
        self,
        node: Any,
        domain: Domain,
        *,
        label: str | None = None,
        role: str = "default",
        fmt: str | None = None,
        unscale: bool = False,
    ) -> AxisSeries:
        """The stacked ``domain`` values of ``node`` from every evaluation during training.

        Arguments are those of :meth:`PhaseResults.stacked_tensors`; evaluations whose contexts
        were dropped are skipped.

        Returns:
            AxisSeries: Axis ``("epoch",)`` -> tensor of all evaluated samples.
        """
        graph_node = _graph_node(node)
        data = {
            key: evaluation.stacked_tensors(graph_node, domain, role=role, fmt=fmt, unscale=unscale)
            for key, evaluation in self.validation_results(label=label).items()
            if evaluation._execution
        }
        return AxisSeries(("epoch",), data, name=f"validation {domain} of {graph_node.label}")
