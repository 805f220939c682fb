"""``Experiment``: runs phases and phase groups against the model graph of its context and keeps their history.

An Experiment owns an execution plan (a :class:`PhaseGroup`), experiment-level callbacks run at
phase and group boundaries, and the history of its runs. Its phases' checkpoints (a TrainPhase's
:class:`~modularml.phases.Checkpointing`) go under :meth:`Experiment.set_checkpoint_dir`, are
listed by :attr:`Experiment.available_checkpoints` and restored with
:meth:`Experiment.restore_checkpoint`. Experiment-level checkpoints (the whole experiment at
phase and group boundaries) need experiment files and are refused for now.
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modularml.callbacks.experiment_callback import ExperimentCallback
from modularml.context import ExperimentContext, RegistrationPolicy
from modularml.context.context import _ACTIVE_CONTEXT
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.graph.model_graph import CHECKPOINT_KIND
from modularml.phases.base import ExperimentPhase
from modularml.phases.checkpointing import Checkpointing
from modularml.phases.phase_group import PhaseGroup, _phase_classes
from modularml.phases.progress import write_experiment_summary
from modularml.results.phase_group_results import PhaseGroupResults

if TYPE_CHECKING:
    from modularml.graph import ModelGraph
    from modularml.results.phase_results import PhaseResults

__all__ = ["Experiment", "ExperimentRun"]

logger = logging.getLogger("modularml.experiment")

#: Parameters of ``execute``/``iter_execution`` that are not display flags.
_NOT_FLAGS = frozenset({"self", "graph", "results"})


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


def _flag_names(phase_cls: type) -> tuple[set[str], bool]:
    """The display flags a phase class accepts, and whether it accepts any keyword (``**kwargs``)."""
    names: set[str] = set()
    open_ended = True
    for method_name in ("iter_execution", "execute"):
        method = getattr(phase_cls, method_name, None)
        if method is None:
            continue
        params = inspect.signature(method).parameters.values()
        names |= {
            p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _NOT_FLAGS
        }
        if method_name == "iter_execution":
            open_ended = any(p.kind is p.VAR_KEYWORD for p in params)
    return names, open_ended


def _flags_for(phase: ExperimentPhase, flags: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``flags`` that ``phase`` accepts (all of them if its iter_execution takes ``**kwargs``)."""
    names, open_ended = _flag_names(type(phase))
    return dict(flags) if open_ended else {k: v for k, v in flags.items() if k in names}


def _check_flags(flags: dict[str, Any], phases: Sequence[ExperimentPhase]) -> None:
    """Refuse keyword arguments that no phase kind accepts (a typo would otherwise be ignored silently)."""
    known: set[str] = set()
    for cls in {*_phase_classes().values(), *(type(p) for p in phases)}:
        names, open_ended = _flag_names(cls)
        if open_ended and cls in {type(p) for p in phases}:
            return
        known |= names
    unknown = sorted(set(flags) - known)
    if unknown:
        raise InvalidArgumentError(
            f"Unknown display flag(s) {unknown}; phases accept {sorted(known)}. A flag is passed to every phase "
            "kind that accepts it and skipped for the others."
        )


class Experiment:
    """High-level container coordinating phases, phase groups, callbacks and run history.

    The experiment's nodes and ModelGraph live in its :class:`ExperimentContext`; the experiment
    adds an execution plan (:attr:`execution_plan`, run by :meth:`run`), experiment-level
    callbacks and the :attr:`history` of recorded runs.

    Args:
        label (str): Name of the experiment (also the label of its execution plan).
        registration_policy (RegistrationPolicy | str | None): Policy for nodes created after
            the experiment; the context's own when None.
        ctx (ExperimentContext | None): Context of the experiment. When None a new context is
            created and activated (in the current ``contextvars`` context).
        checkpointing: Experiment-level checkpointing is refused for now (see the module docstring); must be None.
        callbacks (list[ExperimentCallback] | None): Experiment-level callbacks run at phase and
            group boundaries by :meth:`run`, :meth:`run_group` and :meth:`run_phase`.

    Raises:
        TypeError: For a label that is not a non-empty string, a ctx that is not an
            ExperimentContext, or a callback that is not an ExperimentCallback.
        ValueError: If ``checkpointing`` is given.
    """

    def __init__(
        self,
        label: str,
        registration_policy: RegistrationPolicy | str | None = None,
        ctx: ExperimentContext | None = None,
        checkpointing: Any = None,
        callbacks: Sequence[ExperimentCallback] | None = None,
    ) -> None:
        if not isinstance(label, str) or not label:
            raise InvalidTypeError(f"An experiment label is a non-empty string; got {label!r}.")
        if checkpointing is not None:
            raise InvalidArgumentError(
                "Experiment-level checkpointing (saving the whole experiment at phase and group boundaries) needs "
                "experiment files, which this version cannot write; pass checkpointing=None and checkpoint the "
                "model graph from a TrainPhase instead: TrainPhase(..., checkpointing=Checkpointing(...))."
            )
        if callbacks is not None and (isinstance(callbacks, ExperimentCallback) or not isinstance(callbacks, Sequence)):
            raise InvalidTypeError(f"callbacks is a list of ExperimentCallbacks; got {callbacks!r:.100}.")
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
        self._plan = PhaseGroup(label)
        self._callbacks: list[ExperimentCallback] = []
        self._checkpoint_dir: Path | None = None
        self._checkpointing_suppressed = 0
        self._checkpoint_trackers: dict[int, Checkpointing] = {}
        for callback in callbacks or []:
            self.add_callback(callback)

    @classmethod
    def from_active_context(
        cls,
        label: str,
        registration_policy: RegistrationPolicy | str | None = None,
        checkpointing: Any = None,
        callbacks: Sequence[ExperimentCallback] | None = None,
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
    def execution_plan(self) -> PhaseGroup:
        """The group of phases (and sub-groups) that :meth:`run` executes; add to it in place.

        Example:
            >>> exp.execution_plan.add_phase(train_phase).add_phase(eval_phase)
            >>> results = exp.run()
        """
        return self._plan

    @property
    def history(self) -> list[ExperimentRun]:
        """All completed runs in chronological order (a copy)."""
        return list(self._history)

    @property
    def last_run(self) -> ExperimentRun | None:
        """The most recent run."""
        return self._history[-1] if self._history else None

    @property
    def checkpointing(self) -> Checkpointing | None:
        """The experiment-level Checkpointing configuration: None (experiment-level checkpoints are refused)."""
        return None

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_dir(self) -> Path | None:
        """Where phases without a directory of their own write disk checkpoints (``<dir>/<phase label>/``)."""
        return self._checkpoint_dir

    def set_checkpoint_dir(self, path: Path | str, *, create: bool = True) -> None:
        """Set the directory for the checkpoints of this experiment's phases.

        Args:
            path: The directory.
            create: Create it (and its parents) if it does not exist. Defaults to True.

        Raises:
            ValueError: If it does not exist and ``create`` is False, or it is a file.
        """
        directory = Path(path)
        if directory.exists() and not directory.is_dir():
            raise InvalidArgumentError(f"The checkpoint directory {str(directory)!r} is a file; give a folder.")
        if not directory.exists():
            if not create:
                raise InvalidArgumentError(
                    f"The checkpoint directory {str(directory)!r} does not exist; create it or pass create=True."
                )
            directory.mkdir(parents=True, exist_ok=True)
        self._checkpoint_dir = directory

    @property
    def checkpointing_suppressed(self) -> bool:
        """Whether checkpointing is off now (inside :meth:`disable_checkpointing`, or in a preview)."""
        return self._checkpointing_suppressed > 0

    @contextmanager
    def disable_checkpointing(self) -> Iterator[None]:
        """Suppress every checkpoint (of the phases this experiment runs) inside the ``with`` block.

        The configurations are untouched; checkpointing resumes on exit, even after an exception.

        Example:
            >>> with experiment.disable_checkpointing():
            ...     experiment.run_phase(training_phase)
        """
        self._checkpointing_suppressed += 1
        try:
            yield
        finally:
            self._checkpointing_suppressed -= 1

    @property
    def available_checkpoints(self) -> dict[str, Path]:
        """Every disk checkpoint of this experiment's phases, by name.

        The checkpoints its phases recorded in this process, and the ``.ckpt.mml`` files under
        :attr:`checkpoint_dir`; a name is the file's path relative to that directory (or its file
        name) without ``.ckpt.mml``, e.g. ``"train/train_epoch0004"``.
        """
        paths = [
            path
            for tracker in self._checkpoint_trackers.values()
            for key in tracker.saved_keys
            if (path := tracker.get_path(key)) is not None
        ]
        if self._checkpoint_dir is not None:
            paths += sorted(self._checkpoint_dir.rglob(f"*.{CHECKPOINT_KIND}.mml"))
        found: dict[str, Path] = {}
        for path in paths:
            base = self._checkpoint_dir
            relative = path.relative_to(base) if base is not None and path.is_relative_to(base) else Path(path.name)
            found.setdefault(str(relative)[: -len(f".{CHECKPOINT_KIND}.mml")], path)
        return found

    def restore_checkpoint(self, name_or_path: str | Path) -> None:
        """Restore a checkpoint: a name of :attr:`available_checkpoints`, or the path of a ``.ckpt.mml`` file.

        A model-graph checkpoint (what a TrainPhase saves, or ``ModelGraph.save_checkpoint``)
        restores the graph's weights, optimizer state and freeze flags, all or nothing.

        Raises:
            ValueError: If it is neither a known name nor an existing file.
            TypeError: If the file is a checkpoint of something other than a model graph.
            SerializationError: If the file is damaged or of another graph.
        """
        from modularml.graph.model_graph import ModelGraph
        from modularml.io import read_container

        available = self.available_checkpoints
        path = available.get(str(name_or_path)) or Path(name_or_path)
        if not path.is_file():
            raise InvalidArgumentError(
                f"No checkpoint {str(name_or_path)!r}: it is not a name of available_checkpoints "
                f"({sorted(available) or 'none'}) and not an existing file."
            )
        container = read_container(path, kind=CHECKPOINT_KIND)
        if container.class_path != f"{ModelGraph.__module__}:{ModelGraph.__qualname__}":
            raise InvalidTypeError(
                f"{str(path)!r} is a checkpoint of {container.class_path}; restore_checkpoint() restores model-graph "
                "checkpoints."
            )
        graph = self.model_graph
        if graph is None:
            raise InvalidArgumentError(
                f"Cannot restore {str(path)!r}: this experiment's context has no ModelGraph to restore it into."
            )
        graph.restore_checkpoint(container)  # the file is read once

    # ------------------------------------------------------------------ callbacks
    @property
    def exp_callbacks(self) -> list[ExperimentCallback]:
        """Experiment-level callbacks in execution order."""
        return sorted(self._callbacks, key=lambda c: c.execution_order)

    def add_callback(self, callback: ExperimentCallback) -> None:
        """Register an experiment-level callback.

        Raises:
            TypeError: If ``callback`` is not an ExperimentCallback.
            ValueError: If another callback of the same type and label is registered.
        """
        if not isinstance(callback, ExperimentCallback):
            hint = " Phase callbacks go to a phase (callbacks=...)." if hasattr(callback, "on_epoch_end") else ""
            raise InvalidTypeError(f"add_callback() takes an ExperimentCallback; got {type(callback).__name__}.{hint}")
        for other in self._callbacks:
            if type(other) is type(callback) and other.label == callback.label:
                raise InvalidArgumentError(
                    f"Experiment {self.label!r} already has a {type(callback).__name__} labelled {callback.label!r}; "
                    "give the new callback another label."
                )
        self._callbacks.append(callback)

    def _fire(self, hook: str, **kwargs: Any) -> None:
        for callback in self.exp_callbacks:
            getattr(callback, hook)(experiment=self, **kwargs)

    def _notify_exception(
        self, exc: BaseException, notified: set[int], *, phase: ExperimentPhase | None, group: PhaseGroup | None
    ) -> None:
        """Run ``on_exception`` once per exception (the innermost failing phase or group reports it)."""
        if id(exc) in notified:
            return
        notified.add(id(exc))
        for callback in self.exp_callbacks:
            try:
                callback.on_exception(experiment=self, exception=exc, phase=phase, group=group)
            except Exception:  # a failing handler must not hide the original error
                logger.exception("on_exception of %r failed", callback)

    # ------------------------------------------------------------------ execution
    def _execute(self, phase: ExperimentPhase, kwargs: dict[str, Any]) -> tuple[PhaseResults, float, float]:
        if not isinstance(phase, ExperimentPhase):
            raise InvalidTypeError(
                f"run_phase() takes a TrainPhase, EvalPhase or FitPhase; got {type(phase).__name__}."
            )
        checkpointing = getattr(phase, "checkpointing", None)
        if checkpointing is not None and checkpointing.mode == "disk":
            self._checkpoint_trackers[id(checkpointing)] = checkpointing
        with self._ctx.activate():
            graph = phase.resolve_model_graph(self.model_graph)
            started = time.time()
            results = phase.execute(graph=graph, **kwargs)
            return results, started, time.time()

    def _run_phase_with_callbacks(
        self,
        phase: ExperimentPhase,
        kwargs: dict[str, Any],
        notified: set[int],
        group: PhaseGroup | None,
        callbacks: bool,
    ) -> tuple[PhaseResults, float, float]:
        try:
            if callbacks:
                self._fire("on_phase_start", phase=phase)
            results, started, ended = self._execute(phase, kwargs)
            if callbacks:
                self._fire("on_phase_end", phase=phase, results=results)
        except GeneratorExit:
            raise
        except BaseException as exc:
            if callbacks:
                self._notify_exception(exc, notified, phase=phase, group=group)
            raise
        return results, started, ended

    def _run_group(
        self, group: PhaseGroup, flags: dict[str, Any], notified: set[int], *, callbacks: bool
    ) -> PhaseGroupResults:
        out = PhaseGroupResults(group.label)
        try:
            if callbacks:
                self._fire("on_group_start", group=group)
            for item in group.all:
                if isinstance(item, PhaseGroup):
                    out.add_result(self._run_group(item, flags, notified, callbacks=callbacks))
                else:
                    results, _, _ = self._run_phase_with_callbacks(
                        item, _flags_for(item, flags), notified, group, callbacks
                    )
                    out.add_result(results)
            if callbacks:
                self._fire("on_group_end", group=group, results=out)
        except GeneratorExit:
            raise
        except BaseException as exc:
            if callbacks:
                self._notify_exception(exc, notified, phase=None, group=group)
            raise
        return out

    @staticmethod
    def _check_group(group: Any, method: str) -> PhaseGroup:
        if not isinstance(group, PhaseGroup):
            hint = (
                f" Use {method.replace('group', 'phase')}() for a single phase."
                if isinstance(group, ExperimentPhase)
                else ""
            )
            raise InvalidTypeError(f"{method}() takes a PhaseGroup; got {type(group).__name__}.{hint}")
        return group

    def _execute_group(self, group: PhaseGroup, flags: dict[str, Any], *, callbacks: bool) -> PhaseGroupResults:
        _check_flags(flags, group.flatten())
        with self._ctx.activate():
            return self._run_group(group, flags, set(), callbacks=callbacks)

    def run(self, **kwargs: Any) -> PhaseGroupResults:
        """Run the execution plan: every phase and group of :attr:`execution_plan`, in the order added.

        The run is recorded in :attr:`history` (kind ``"plan"``); experiment callbacks fire at
        every phase and group boundary, the plan itself included. At the end a summary of every
        phase is written (epochs run, why training stopped, the epoch restored, final metrics;
        see :mod:`modularml.phases.progress`), unless ``show_training_progress=False``.

        Args:
            **kwargs: Display flags (``show_training_progress=False``, ``show_eval_progress=True``,
                ...), passed to each phase whose kind accepts them and skipped for the others.

        Returns:
            PhaseGroupResults: Results of all executed phases, labelled like the plan.

        Raises:
            ValueError: If the plan is empty, or a flag is accepted by no phase kind.
        """
        if not len(self._plan):
            raise InvalidArgumentError(
                f"The execution plan of experiment {self.label!r} is empty; add phases with "
                "experiment.execution_plan.add_phase(...) (or add_group(...)) before run()."
            )
        started = time.time()
        results = self._execute_group(self._plan, kwargs, callbacks=True)
        self._history.append(ExperimentRun(self._plan.label, results, started, time.time(), kind="plan"))
        if kwargs.get("show_training_progress", True):  # the run summary; silenced with the training display
            write_experiment_summary(self.label, time.time() - started, [p.last_summary for p in self._plan.flatten()])
        return results

    def run_group(self, group: PhaseGroup, **kwargs: Any) -> PhaseGroupResults:
        """Execute all phases of ``group`` (registered in the plan or not) and record the run in :attr:`history`.

        This mutates the experiment state; use :meth:`preview_group` to leave it unchanged.

        Args:
            group (PhaseGroup): The group to execute.
            **kwargs: Display flags, passed to each phase whose kind accepts them.

        Returns:
            PhaseGroupResults: Results of the executed group.

        Raises:
            TypeError: If ``group`` is not a PhaseGroup.
            ValueError: If a flag is accepted by no phase kind.
        """
        group = self._check_group(group, "run_group")
        started = time.time()
        results = self._execute_group(group, kwargs, callbacks=True)
        self._history.append(ExperimentRun(group.label, results, started, time.time(), kind="group"))
        return results

    def run_phase(self, phase: ExperimentPhase, **kwargs: Any) -> PhaseResults:
        """Execute a single phase, record it in :attr:`history` and return its results.

        This mutates the experiment state (weights, optimizer state, freeze state after a fit).
        Keyword arguments are the phase's display flags (``show_training_progress``...).
        Experiment callbacks fire ``on_phase_start``/``on_phase_end`` around it.

        Raises:
            TypeError: If ``phase`` is not an experiment phase.
        """
        if not isinstance(phase, ExperimentPhase):
            raise InvalidTypeError(
                f"run_phase() takes a TrainPhase, EvalPhase or FitPhase; got {type(phase).__name__}."
                + (" Use run_group() for a PhaseGroup." if isinstance(phase, PhaseGroup) else "")
            )
        results, started, ended = self._run_phase_with_callbacks(phase, kwargs, set(), None, True)
        self._history.append(ExperimentRun(phase.label, results, started, ended))
        return results

    # ------------------------------------------------------------------ previews
    @contextmanager
    def _preserved_state(self, phase: ExperimentPhase | None = None) -> Iterator[None]:
        """Snapshot graph state (weights, optimizer state, freeze flags) and context registrations; restore on exit."""
        with self._ctx.activate():
            graph = phase.resolve_model_graph(self.model_graph) if phase is not None else self.model_graph
        if graph is not None:
            graph.ensure_built()  # snapshot built weights, so that restoring them undoes the run
        graph_state = copy.deepcopy(graph.get_state()) if graph is not None else None
        ctx_state = self._ctx.get_state()
        self._checkpointing_suppressed += 1  # a preview writes no checkpoint
        try:
            yield
        finally:
            self._checkpointing_suppressed -= 1
            self._ctx.set_state(ctx_state)
            if graph is not None:
                graph.set_state(graph_state)

    def preview_phase(self, phase: ExperimentPhase, **kwargs: Any) -> PhaseResults:
        """Execute a phase without mutating the experiment: state is restored afterwards, nothing enters history.

        Model-graph state (weights, optimizer state, freeze flags) and the context's registrations
        are snapshotted before and restored after, even if the phase fails. No experiment
        callbacks run.
        """
        with self._preserved_state(phase if isinstance(phase, ExperimentPhase) else None):
            results, _, _ = self._execute(phase, kwargs)
        return results

    def preview_group(self, group: PhaseGroup, **kwargs: Any) -> PhaseGroupResults:
        """Execute a phase group without mutating the experiment state.

        The group runs on the current state; model-graph state (weights, optimizer state, freeze
        flags) and the context's registrations are restored afterwards, even if a phase fails.
        Nothing is recorded in :attr:`history` and no experiment callbacks run.

        Args:
            group (PhaseGroup): The group to run.
            **kwargs: Display flags, passed to each phase whose kind accepts them.

        Returns:
            PhaseGroupResults: Results of the previewed group.

        Raises:
            TypeError: If ``group`` is not a PhaseGroup.
        """
        group = self._check_group(group, "preview_group")
        with self._preserved_state():
            return self._execute_group(group, kwargs, callbacks=False)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration of this experiment: label, registration policy, execution plan and callbacks.

        The nodes and ModelGraph live in the context and are not part of this config, nor is any
        state (weights, history). Phase configs leave out phase callbacks.

        Raises:
            ValueError: If a callback's class cannot be named in a config.
        """
        return {
            "label": self.label,
            "registration_policy": self._ctx.registration_policy.value,
            "execution_plan": self._plan.get_config(),
            "callbacks": [callback.get_config() for callback in self._callbacks],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], *, allow_packaged_code: bool = False) -> Experiment:
        """Rebuild an experiment from :meth:`get_config` output, bound to the active ExperimentContext.

        No state is restored. The phases of the plan bind to nodes and FeatureSets of the active
        context, which must hold them.

        Args:
            config: Output of :meth:`get_config`.
            allow_packaged_code: Allow importing callback classes from modules outside modularml
                and the installed plugins (e.g. the user's own module).

        Raises:
            TypeError: If ``config`` is not a dict.
            ValueError: If required keys are missing.
        """
        if not isinstance(config, dict):
            raise InvalidTypeError(f"An Experiment config is a dict; got {type(config).__name__}.")
        missing = [k for k in ("label", "execution_plan") if k not in config]
        if missing:
            raise InvalidArgumentError(f"Experiment config misses {missing}; pass the dict from get_config().")
        callbacks = [
            ExperimentCallback.from_config(c, allow_packaged_code=allow_packaged_code)
            for c in config.get("callbacks") or []
        ]
        plan = PhaseGroup.from_config(config["execution_plan"])
        experiment = cls.from_active_context(
            config["label"], registration_policy=config.get("registration_policy"), callbacks=callbacks
        )
        experiment._plan = plan
        return experiment

    def __repr__(self) -> str:
        return f"Experiment(label={self.label!r}, plan={[i.label for i in self._plan.all]}, runs={len(self._history)})"
