"""``TrainResults``: results of a TrainPhase (contexts by epoch and batch, metrics, callback results)."""

from __future__ import annotations

from dataclasses import dataclass

from modularml.results.phase_results import PhaseResults

__all__ = ["TrainResults"]


@dataclass(repr=False)
class TrainResults(PhaseResults):
    """Results container for a training phase.

    The ``train_loss`` metric holds the summed loss of every step (per batch) and its epoch mean
    (epoch level), whatever the result recording; evaluation callbacks add ``val_loss``.
    """

    def epoch_losses(self, name: str = "train_loss") -> dict[int, float]:
        """Epoch-level values of a loss metric: epoch index -> value.

        Raises:
            KeyError: If the metric was not logged.
        """
        return self._metrics.epoch_values(name)
