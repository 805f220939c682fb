"""``Experiment``: runs phases against the model graph of its context and keeps their history.

This first slice runs single phases (:meth:`Experiment.run_phase`, :meth:`Experiment.preview_phase`);
execution plans, phase groups, experiment callbacks and checkpointing come next.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modularml.context import ExperimentContext, RegistrationPolicy
from modularml.context.context import _ACTIVE_CONTEXT
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.phases.base import ExperimentPhase

if TYPE_CHECKING:
    from modularml.graph import ModelGraph
    from modularml.results.phase_results import PhaseResults

__all__ = ["Experiment", "ExperimentRun"]


@dataclass
class ExperimentRun:
    """One recorded execution: what ran, when, and its results.

    Attributes:
        label (str): Label of the phase (or group) that ran.
        results (PhaseResults): Its results.
        started_at (float): Start time (``time.time()``).
        ended_at (float): End time.
        meta (dict[str, Any]): Free-form information.
    """

    label: str
    results: PhaseResults
    started_at: float
    ended_at: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds the run took."""
        return self.ended_at - self.started_at


class Experiment:
    """High-level container coordinating phases (this slice: single phases and their history).

    Args:
        label (str): Name of the experiment.
        registration_policy (RegistrationPolicy | str | None): Policy for nodes created after
            the experiment; the context's own when None.
        ctx (ExperimentContext | None): Context of the experiment. When None a new context is
            created and activated (in the current ``contextvars`` context).
        checkpointing: Not available yet; must be None.
        callbacks: Experiment-level callbacks are not available yet; must be None or empty.

    Raises:
        ValueError: If ``checkpointing`` or ``callbacks`` is given.
    """

    def __init__(
        self,
        label: str,
        registration_policy: RegistrationPolicy | str | None = None,
        ctx: ExperimentContext | None = None,
        checkpointing: Any = None,
        callbacks: list[Any] | None = None,
    ) -> None:
        if not isinstance(label, str) or not label:
            raise InvalidTypeError(f"An experiment label is a non-empty string; got {label!r}.")
        if checkpointing is not None:
            raise InvalidArgumentError("Experiment checkpointing is not available yet; pass checkpointing=None.")
        if callbacks:
            raise InvalidArgumentError("Experiment-level callbacks are not available yet; pass callbacks=None.")
        if ctx is None:
            ctx = ExperimentContext(registration_policy=registration_policy)
            _ACTIVE_CONTEXT.set(ctx)
        elif not isinstance(ctx, ExperimentContext):
            raise InvalidTypeError(f"ctx is an ExperimentContext; got {type(ctx).__name__}.")
        elif registration_policy is not None:
            ctx.set_registration_policy(registration_policy)
        self.label = label
        self._ctx = ctx
        self._ctx.set_experiment(self)
        self._history: list[ExperimentRun] = []

    @classmethod
    def from_active_context(
        cls,
        label: str,
        registration_policy: RegistrationPolicy | str | None = None,
        checkpointing: Any = None,
        callbacks: list[Any] | None = None,
    ) -> Experiment:
        """An Experiment on the active ExperimentContext, keeping every node registered there."""
        return cls(
            label,
            registration_policy=registration_policy,
            ctx=ExperimentContext.get_active(),
            checkpointing=checkpointing,
            callbacks=callbacks,
        )

    # ------------------------------------------------------------------ properties
    @property
    def ctx(self) -> ExperimentContext:
        """The context associated with this experiment."""
        return self._ctx

    @property
    def model_graph(self) -> ModelGraph | None:
        """The ModelGraph of the experiment's context."""
        return self._ctx.model_graph

    @property
    def history(self) -> list[ExperimentRun]:
        """All completed runs in chronological order (a copy)."""
        return list(self._history)

    @property
    def last_run(self) -> ExperimentRun | None:
        """The most recent run."""
        return self._history[-1] if self._history else None

    # ------------------------------------------------------------------ execution
    def _execute(self, phase: ExperimentPhase, kwargs: dict[str, Any]) -> tuple[PhaseResults, float, float]:
        if not isinstance(phase, ExperimentPhase):
            raise InvalidTypeError(
                f"run_phase() takes a TrainPhase, EvalPhase or FitPhase; got {type(phase).__name__}."
            )
        with self._ctx.activate():
            graph = phase._model_graph(self.model_graph)
            started = time.time()
            results = phase.execute(graph=graph, **kwargs)
            return results, started, time.time()

    def run_phase(self, phase: ExperimentPhase, **kwargs: Any) -> PhaseResults:
        """Execute a single phase, record it in :attr:`history` and return its results.

        This mutates the experiment state (weights, optimizer state, freeze state after a fit).
        Keyword arguments are the phase's display flags (``show_training_progress``...).

        Raises:
            TypeError: If ``phase`` is not an experiment phase.
        """
        results, started, ended = self._execute(phase, kwargs)
        self._history.append(ExperimentRun(phase.label, results, started, ended))
        return results

    def preview_phase(self, phase: ExperimentPhase, **kwargs: Any) -> PhaseResults:
        """Execute a phase without mutating the experiment: state is restored afterwards, nothing enters history.

        Model-graph state (weights, optimizer state, freeze flags) and the context's registrations
        are snapshotted before and restored after, even if the phase fails.
        """
        graph = phase._model_graph(self.model_graph) if isinstance(phase, ExperimentPhase) else None
        if graph is not None:
            graph._ensure_built()  # snapshot built weights, so that restoring them undoes the phase
        graph_state = copy.deepcopy(graph.get_state()) if graph is not None else None
        ctx_state = self._ctx.get_state()
        try:
            results, _, _ = self._execute(phase, kwargs)
        finally:
            self._ctx.set_state(ctx_state)
            if graph is not None:
                graph.set_state(graph_state)
        return results

    def __repr__(self) -> str:
        return f"Experiment(label={self.label!r}, runs={len(self._history)})"
