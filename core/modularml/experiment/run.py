"""``ExperimentRun``: one recorded execution of an experiment (what ran, when, and its results)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modularml.results.phase_group_results import PhaseGroupResults
    from modularml.results.phase_results import PhaseResults

__all__ = ["ExperimentRun"]


@dataclass
class ExperimentRun:
    """One recorded execution: what ran, when, and its results.

    Attributes:
        label (str): Label of the phase or group that ran (the execution plan's for :meth:`Experiment.run`).
        results (PhaseResults | PhaseGroupResults): Its results.
        started_at (float): Start time (``time.time()``).
        ended_at (float): End time.
        meta (dict[str, Any]): Free-form information.
        kind (str): ``"phase"`` (:meth:`Experiment.run_phase`), ``"group"``
            (:meth:`Experiment.run_group`) or ``"plan"`` (:meth:`Experiment.run`).
    """

    label: str
    results: PhaseResults | PhaseGroupResults
    started_at: float
    ended_at: float
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str = "phase"

    @property
    def duration(self) -> float:
        """Seconds the run took."""
        return self.ended_at - self.started_at

    def metrics_to_pandas(self) -> Any:
        """The run's metrics as one long-format DataFrame (``phase``, ``name``, ``epoch``, ``batch``, ``value``).

        See :meth:`PhaseGroupResults.metrics_to_pandas`; needs pandas.
        """
        return self.results.metrics_to_pandas()
