"""``Experiment``: runs phases and phase groups against the model graph of its context and keeps their history.

An Experiment owns an execution plan (a :class:`PhaseGroup`), experiment-level callbacks run at
phase and group boundaries, and the history of its runs.

Files and checkpoints:

- :meth:`Experiment.save` writes one ``<name>.exp.mml`` holding everything needed to carry on
  elsewhere (the FeatureSets, the model graph with weights and optimizer state, the plan with its
  phases, samplers, losses and callbacks, the history with its results, checkpoint settings and the
  phases' checkpoint files); :meth:`Experiment.load` rebuilds it into the active context, in any
  process. :meth:`Experiment.get_state`/:meth:`Experiment.set_state` are the same as plain data.
- Phase checkpoints (a TrainPhase's :class:`~modularml.phases.Checkpointing`) go under
  :meth:`Experiment.set_checkpoint_dir`; experiment checkpoints (the whole experiment, at phase and
  group boundaries: ``Experiment(checkpointing=Checkpointing(mode="disk", save_on="phase_end"))``,
  or :meth:`Experiment.save_checkpoint`) too. :attr:`Experiment.available_checkpoints` lists them
  and :meth:`Experiment.restore_checkpoint` restores either kind.
- ``run_phase(phase, resume_from=checkpoint)`` continues a TrainPhase from one of its disk
  checkpoints (epoch or batch ends) exactly where it was taken: the run ends bit for bit as the
  uninterrupted run would have.
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modularml.callbacks.experiment_callback import ExperimentCallback
from modularml.context import ExperimentContext, RegistrationPolicy
from modularml.context.context import _ACTIVE_CONTEXT
from modularml.errors import InvalidArgumentError, InvalidTypeError, ModularMLWarning
from modularml.experiment.run import ExperimentRun
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
_NOT_FLAGS = frozenset({"self", "graph", "results", "resume"})

#: Names of experiment checkpoints, per hook, when the Checkpointing has no name_template.
DEFAULT_EXPERIMENT_CHECKPOINT_NAMES = {
    "phase_start": "{label}_start",
    "phase_end": "{label}_end",
    "group_start": "group_{label}_start",
    "group_end": "group_{label}_end",
}


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


@dataclass
class _ResumeFrom:
    """A resumable checkpoint, read, and the phase it continues."""

    phase: ExperimentPhase
    container: Any
    run_state: dict[str, Any]
    reached: bool = False


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


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
        checkpointing (Checkpointing | None): Saves the full experiment state to disk at phase and
            group boundaries (see :meth:`set_checkpointing`). Defaults to None.
        callbacks (list[ExperimentCallback] | None): Experiment-level callbacks run at phase and
            group boundaries by :meth:`run`, :meth:`run_group` and :meth:`run_phase`.

    Raises:
        TypeError: If ``label`` is not a non-empty string, a ctx that is not an
            ExperimentContext, or a callback that is not an ExperimentCallback.
        ValueError: If ``checkpointing`` is not in disk mode or uses hooks or placeholders an
            Experiment does not have.
    """

    def __init__(
        self,
        label: str,
        registration_policy: RegistrationPolicy | str | None = None,
        ctx: ExperimentContext | None = None,
        checkpointing: Checkpointing | None = None,
        callbacks: Sequence[ExperimentCallback] | None = None,
    ) -> None:
        if not isinstance(label, str) or not label:
            raise InvalidTypeError(f"An experiment label is a non-empty string; got {label!r}.")
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
        self._checkpointing: Checkpointing | None = None
        self._in_progress: ExperimentRun | None = None
        self.set_checkpointing(checkpointing)
        for callback in callbacks or []:
            self.add_callback(callback)

    @classmethod
    def from_active_context(
        cls,
        label: str,
        registration_policy: RegistrationPolicy | str | None = None,
        checkpointing: Checkpointing | None = None,
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
        """The experiment-level Checkpointing configuration, or None."""
        return self._checkpointing

    def set_checkpointing(self, checkpointing: Checkpointing | None) -> None:
        """Attach (or, with None, remove) the Checkpointing that saves the experiment at phase and group ends.

        It must use ``mode="disk"``, ``save_on`` hooks of an Experiment (``phase_start``,
        ``phase_end``, ``group_start``, ``group_end``) and only the ``{label}`` placeholder (the
        label of the phase or group). Without a ``name_template`` files are named per hook
        (:data:`DEFAULT_EXPERIMENT_CHECKPOINT_NAMES`: ``train_end`` after phase ``train``,
        ``group_cv_end`` after group ``cv``...); without a ``directory`` they go to
        :attr:`checkpoint_dir`. Each file is an experiment checkpoint: restore it with
        :meth:`restore_checkpoint`.

        Raises:
            TypeError: If ``checkpointing`` is not a Checkpointing.
            ValueError: If it is not in disk mode, or a hook or placeholder is not one of an Experiment.
        """
        if checkpointing is not None:
            if not isinstance(checkpointing, Checkpointing):
                raise InvalidTypeError(
                    f"checkpointing is a modularml Checkpointing (or None); got {type(checkpointing).__name__}."
                )
            if checkpointing.mode != "disk":
                raise InvalidArgumentError(
                    f"Experiment checkpoints are files: pass Checkpointing(mode='disk', ...); got mode="
                    f"{checkpointing.mode!r}. (A TrainPhase keeps memory checkpoints of the model graph.)"
                )
            checkpointing.validate_for(
                f"Experiment {self.label!r}", Checkpointing.EXPERIMENT_HOOKS, Checkpointing.EXPERIMENT_PLACEHOLDERS
            )
            if checkpointing.name_template is None:
                checkpointing.set_default_name_template(DEFAULT_EXPERIMENT_CHECKPOINT_NAMES["phase_end"])
        self._checkpointing = checkpointing

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

    def restore_checkpoint(self, name_or_path: str | Path, *, allow_packaged_code: bool = False) -> None:
        """Restore a checkpoint: a name of :attr:`available_checkpoints`, or the path of a ``.ckpt.mml`` file.

        The kind is detected from the file: an experiment checkpoint (:meth:`save_checkpoint`, or
        the experiment's Checkpointing; it holds an ``"experiment"`` entry) restores the whole
        experiment with :meth:`set_state`; a model-graph checkpoint (what a TrainPhase saves, or
        ``ModelGraph.save_checkpoint``) restores the graph's weights, optimizer state and freeze
        flags. Either is all or nothing.

        Args:
            name_or_path: The checkpoint.
            allow_packaged_code: Run the source of your own classes stored in an experiment
                checkpoint (see :meth:`save`); without it such a checkpoint is refused.

        Raises:
            ValueError: If it is neither a known name nor an existing file.
            TypeError: If the file holds neither an experiment nor a model-graph checkpoint.
            SerializationError: If the file is damaged or of another graph.
        """
        from modularml.graph.model_graph import ModelGraph
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(self._checkpoint_path(name_or_path), kind=CHECKPOINT_KIND)
        if container.class_path == _class_path(Experiment):
            packaged = container.state.get("packaged_code") or {}
            with loading(
                container.path, allow_packaged_code=allow_packaged_code, what="experiment checkpoint", packaged=packaged
            ):
                self._apply_state(container.state, allow_packaged_code=allow_packaged_code)
            return
        if container.class_path != _class_path(ModelGraph):
            raise InvalidTypeError(
                f"{str(container.path)!r} is a checkpoint of {container.class_path}; restore_checkpoint() restores "
                "experiment and model-graph checkpoints."
            )
        graph = self.model_graph
        if graph is None:
            raise InvalidArgumentError(
                f"Cannot restore {str(container.path)!r}: this experiment's context has no ModelGraph to restore it "
                "into."
            )
        graph.restore_checkpoint(container)  # the file is read once

    def _checkpoint_path(self, name_or_path: str | Path) -> Path:
        """The file of a checkpoint given by name (of :attr:`available_checkpoints`) or path."""
        available = self.available_checkpoints
        path = available.get(str(name_or_path)) or Path(name_or_path)
        if not path.is_file():
            raise InvalidArgumentError(
                f"No checkpoint {str(name_or_path)!r}: it is not a name of available_checkpoints "
                f"({sorted(available) or 'none'}) and not an existing file."
            )
        return path

    def save_checkpoint(self, name: str, *, overwrite: bool = False, meta: dict[str, Any] | None = None) -> Path:
        """Save the full experiment state (:meth:`get_state`) to the checkpoint file ``<name>.ckpt.mml``.

        The file goes to the experiment Checkpointing's directory, else :attr:`checkpoint_dir`;
        ``name`` may hold subfolders (``"runs/first"``). Restore it with :meth:`restore_checkpoint`.
        Phase checkpoint files are not copied into it (:meth:`save` carries them).

        Args:
            name: Unique name of the checkpoint.
            overwrite: Replace an existing checkpoint of that name. Defaults to False.
            meta: JSON values and numpy arrays to keep with it.

        Returns:
            Path: The file written.

        Raises:
            ValueError: If there is no checkpoint directory, or ``name`` is empty.
            FileExistsError: If the checkpoint exists and ``overwrite`` is False.
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"A checkpoint name is a non-empty string; got {name!r}.")
        directory = self._experiment_checkpoint_dir("save_checkpoint()")
        return self._write_checkpoint(directory / name, overwrite=overwrite, meta=dict(meta or {}))

    def _write_checkpoint(self, path: Path, *, overwrite: bool, meta: dict[str, Any]) -> Path:
        from modularml.io import write_container
        from modularml.plugins.packaging import PACKAGED_CODE_KEY, package_code

        state = self.get_state()
        state[PACKAGED_CODE_KEY] = package_code(state, what=f"a checkpoint of experiment {self.label!r}")
        return write_container(
            path,
            kind=CHECKPOINT_KIND,
            cls=Experiment,
            config={"label": self.label, "meta": meta},
            state=state,
            overwrite=overwrite,
        )

    def _experiment_checkpoint_dir(self, what: str) -> Path:
        directory = None if self._checkpointing is None else self._checkpointing.directory
        directory = directory or self._checkpoint_dir
        if directory is None:
            raise InvalidArgumentError(
                f"{what} needs a directory for experiment checkpoints: call experiment.set_checkpoint_dir(path), or "
                "give the experiment's Checkpointing a directory."
            )
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _checkpoint_at(self, hook: str, label: str) -> None:
        """Save an experiment checkpoint at ``hook`` of the phase or group ``label``, as the Checkpointing says."""
        ckpt = self._checkpointing
        if ckpt is None or self.checkpointing_suppressed or not ckpt.should_save(hook):
            return
        own = ckpt.get_config()["name_template"]
        template = own if own is not None else DEFAULT_EXPERIMENT_CHECKPOINT_NAMES[hook]
        name = template.format(label=label)
        directory = self._experiment_checkpoint_dir("Experiment checkpointing")
        path = self._write_checkpoint(directory / name, overwrite=ckpt.overwrite, meta={"hook": hook, "label": label})
        ckpt.record_disk(f"{hook}:{label}", path)
        self._checkpoint_trackers[id(ckpt)] = ckpt

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
    def _execute(
        self, phase: ExperimentPhase, kwargs: dict[str, Any], resume: _ResumeFrom | None = None
    ) -> tuple[PhaseResults, float, float]:
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
            if resume is not None:
                graph.restore_checkpoint(resume.container)
                results = phase.execute(graph=graph, resume=resume.run_state, **kwargs)
            else:
                results = phase.execute(graph=graph, **kwargs)
            return results, started, time.time()

    def _run_phase_with_callbacks(
        self,
        phase: ExperimentPhase,
        kwargs: dict[str, Any],
        notified: set[int],
        group: PhaseGroup | None,
        callbacks: bool,
        out: PhaseGroupResults | None = None,
        resume: _ResumeFrom | None = None,
    ) -> tuple[PhaseResults, float, float]:
        try:
            if callbacks:
                self._fire("on_phase_start", phase=phase)
                self._checkpoint_at("phase_start", phase.label)
            results, started, ended = self._execute(phase, kwargs, resume)
            if out is not None:
                out.add_result(results)
            elif callbacks:  # a phase run on its own: its results are the run so far
                self._in_progress = ExperimentRun(phase.label, results, started, ended, meta={"partial": True})
            if callbacks:
                self._fire("on_phase_end", phase=phase, results=results)
                self._checkpoint_at("phase_end", phase.label)
        except GeneratorExit:
            raise
        except BaseException as exc:
            if callbacks:
                self._notify_exception(exc, notified, phase=phase, group=group)
            raise
        return results, started, ended

    def _run_group(
        self,
        group: PhaseGroup,
        flags: dict[str, Any],
        notified: set[int],
        *,
        callbacks: bool,
        out: PhaseGroupResults | None = None,
        resume: _ResumeFrom | None = None,
    ) -> PhaseGroupResults:
        out = PhaseGroupResults(group.label) if out is None else out
        try:
            if callbacks:
                self._fire("on_group_start", group=group)
                self._checkpoint_at("group_start", group.label)
            for item in group.all:
                if resume is not None and not resume.reached and item is not resume.phase:
                    if isinstance(item, PhaseGroup) and resume.phase in item.flatten():
                        out.add_result(self._run_group(item, flags, notified, callbacks=callbacks, resume=resume))
                    continue  # ran before the checkpoint
                if isinstance(item, PhaseGroup):
                    out.add_result(self._run_group(item, flags, notified, callbacks=callbacks))
                else:
                    here = resume if resume is not None and item is resume.phase else None
                    if here is not None:
                        here.reached = True
                    self._run_phase_with_callbacks(item, _flags_for(item, flags), notified, group, callbacks, out, here)
            if callbacks:
                self._fire("on_group_end", group=group, results=out)
                self._checkpoint_at("group_end", group.label)
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

    def _execute_group(
        self,
        group: PhaseGroup,
        flags: dict[str, Any],
        *,
        callbacks: bool,
        kind: str | None = None,
        resume: _ResumeFrom | None = None,
    ) -> PhaseGroupResults:
        """Run ``group``; with ``kind``, record it in history (``"plan"`` or ``"group"``)."""
        _check_flags(flags, group.flatten())
        out = PhaseGroupResults(group.label)
        started = time.time()
        if kind is not None:
            self._in_progress = ExperimentRun(group.label, out, started, started, meta={"partial": True}, kind=kind)
        try:
            with self._ctx.activate():
                self._run_group(group, flags, set(), callbacks=callbacks, out=out, resume=resume)
        finally:
            self._in_progress = None
        if kind is not None:
            self._history.append(ExperimentRun(group.label, out, started, time.time(), kind=kind))
        return out

    def _resume_from(self, name_or_path: str | Path, phase: ExperimentPhase | None) -> _ResumeFrom:
        """Read a resumable checkpoint and find the phase it continues (``phase``, or the plan's phase of its label).

        Raises:
            ValueError: If it is not a TrainPhase checkpoint saved at an epoch or batch end, or no
                phase matches it.
        """
        from modularml.graph.model_graph import ModelGraph
        from modularml.io import read_container

        container = read_container(self._checkpoint_path(name_or_path), kind=CHECKPOINT_KIND)
        run_state = container.state.get("run")
        if container.class_path != _class_path(ModelGraph) or not isinstance(run_state, dict):
            raise InvalidArgumentError(
                f"{str(container.path)!r} cannot be resumed from: it is not a TrainPhase's disk checkpoint saved at an "
                "epoch or batch end (those hold the run's position). Restore other checkpoints with "
                "restore_checkpoint()."
            )
        label = run_state.get("phase")
        if phase is None:
            matches = [p for p in self._plan.flatten() if p.label == label]
            if not matches:
                raise InvalidArgumentError(
                    f"{str(container.path)!r} was saved by phase {label!r}, which is not in the execution plan of "
                    f"experiment {self.label!r} (phases: {[p.label for p in self._plan.flatten()]})."
                )
            phase = matches[0]
        if not hasattr(phase, "_resume_point"):
            raise InvalidTypeError(f"Only a TrainPhase resumes from a checkpoint; got {type(phase).__name__}.")
        phase._resume_point(run_state)  # checked before anything changes
        return _ResumeFrom(phase, container, run_state)

    def run(self, *, resume_from: str | Path | None = None, **kwargs: Any) -> PhaseGroupResults:
        """Run the execution plan: every phase and group of :attr:`execution_plan`, in the order added.

        The run is recorded in :attr:`history` (kind ``"plan"``); experiment callbacks fire at
        every phase and group boundary, the plan itself included. At the end a summary of every
        phase is written (epochs run, why training stopped, the epoch restored, final metrics;
        see :mod:`modularml.phases.progress`), unless ``show_training_progress=False``.

        Args:
            resume_from: A TrainPhase disk checkpoint (a name of :attr:`available_checkpoints` or a
                path) to continue the plan from: the phases before the one that saved it are skipped
                (they ran before the interruption), that phase resumes where the checkpoint was
                taken (see :meth:`run_phase`), and the rest of the plan runs as usual. The returned
                results hold the resumed phase and those after it.
            **kwargs: Display flags (``show_training_progress=False``, ``show_eval_progress=True``,
                ...), passed to each phase whose kind accepts them and skipped for the others.

        Returns:
            PhaseGroupResults: Results of all executed phases, labelled like the plan.

        Raises:
            ValueError: If the plan is empty, a flag is accepted by no phase kind, or the checkpoint
                cannot be resumed from.
        """
        if not len(self._plan):
            raise InvalidArgumentError(
                f"The execution plan of experiment {self.label!r} is empty; add phases with "
                "experiment.execution_plan.add_phase(...) (or add_group(...)) before run()."
            )
        resume = None if resume_from is None else self._resume_from(resume_from, None)
        started = time.time()
        results = self._execute_group(self._plan, kwargs, callbacks=True, kind="plan", resume=resume)
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
        return self._execute_group(group, kwargs, callbacks=True, kind="group")

    def run_phase(
        self, phase: ExperimentPhase, *, resume_from: str | Path | None = None, **kwargs: Any
    ) -> PhaseResults:
        """Execute a single phase, record it in :attr:`history` and return its results.

        This mutates the experiment state (weights, optimizer state, freeze state after a fit).
        Keyword arguments are the phase's display flags (``show_training_progress``...).
        Experiment callbacks fire ``on_phase_start``/``on_phase_end`` around it.

        Args:
            phase: The phase to run.
            resume_from: For a TrainPhase: one of its disk checkpoints saved at an epoch or batch end
                (a name of :attr:`available_checkpoints` or a path). The graph gets the checkpoint's
                weights and optimizer state, and the run continues right after the checkpoint with
                the results so far, the callbacks' state (early-stopping counters...), the checkpoint
                records and every random generator (Python, numpy, the backends': dropout included)
                as they were: it ends bit for bit as the uninterrupted run would have (on the same
                machine and library versions).
            **kwargs: Display flags.

        Raises:
            TypeError: If ``phase`` is not an experiment phase, or resumes but is not a TrainPhase.
            ValueError: If the checkpoint is not one this phase can resume from.
        """
        if not isinstance(phase, ExperimentPhase):
            raise InvalidTypeError(
                f"run_phase() takes a TrainPhase, EvalPhase or FitPhase; got {type(phase).__name__}."
                + (" Use run_group() for a PhaseGroup." if isinstance(phase, PhaseGroup) else "")
            )
        resume = None if resume_from is None else self._resume_from(resume_from, phase)
        try:
            results, started, ended = self._run_phase_with_callbacks(phase, kwargs, set(), None, True, resume=resume)
        finally:
            self._in_progress = None
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

    # ------------------------------------------------------------------ state and files
    def get_state(self) -> dict[str, Any]:
        """The full experiment as plain data: FeatureSets, model graph state, plan, callbacks, history.

        JSON values, numpy arrays and Arrow tables only (see :mod:`modularml.experiment.files`),
        so it can be saved, sent to another process and given to :meth:`set_state` there. A run in
        progress (an experiment checkpoint taken at a phase end inside :meth:`run`) is included as
        a history entry with ``meta={"partial": True}``.

        Raises:
            SerializationError: If a part cannot be saved (a callback result that is not plain data).
        """
        from modularml.experiment.files import experiment_state

        return experiment_state(self)

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the experiment from :meth:`get_state` output (of this process or another).

        The saved FeatureSets and model graph are restored into this experiment's context (the
        same node ids: their state is replaced; others are registered), and the plan, callbacks,
        history and checkpointing replaced. All or nothing: on any failure the experiment, its
        context, FeatureSets and graph are left as they were.

        Raises:
            SerializationError: If the state is malformed or names classes that cannot be resolved.
        """
        from modularml.plugins.resolver import loading

        with loading(what="experiment state"):
            self._apply_state(state)

    def _apply_state(self, state: dict[str, Any], *, allow_packaged_code: bool = False) -> None:
        from modularml.experiment.files import restore_experiment

        restore_experiment(state, experiment=self, allow_packaged_code=allow_packaged_code)

    def _snapshot_attributes(self) -> dict[str, Any]:
        """What :meth:`set_state` replaces, to put back when it fails."""
        return {
            "label": self.label,
            "_plan": self._plan,
            "_callbacks": list(self._callbacks),
            "_history": list(self._history),
            "_checkpointing": self._checkpointing,
            "_checkpoint_dir": self._checkpoint_dir,
        }

    def _restore_attributes(self, saved: dict[str, Any]) -> None:
        for name, value in saved.items():
            setattr(self, name, value)

    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Serializes this experiment to ``<name>.exp.mml``, atomically; returns the path written.

        The file holds :meth:`get_state` (each FeatureSet once, the model graph with weights and
        optimizer state, the plan with its phases, samplers, losses and callbacks, the history with
        its results) and the files of the phases' disk checkpoints (:attr:`available_checkpoints`),
        which :meth:`load` extracts into its ``checkpoint_dir``. Classes defined in your own modules
        (not in an installed distribution) are stored with their module's source; loading runs it
        only with ``allow_packaged_code=True`` (see :func:`modularml.inspect_packaged_code`).

        Args:
            filepath: Where to save; the name is completed to ``<name>.exp.mml``.
            overwrite: Replace an existing file. Defaults to False.

        Raises:
            FileExistsError: If the file exists and ``overwrite`` is False.
            SerializationError: If a part cannot be saved (a class defined in ``__main__`` or inside
                a function, a callback result that is not plain data).
        """
        from modularml.experiment.files import EXPERIMENT_KIND, pack_checkpoint_files
        from modularml.io import write_container
        from modularml.plugins.packaging import PACKAGED_CODE_KEY, package_code

        state = self.get_state()
        state["checkpoint_files"] = pack_checkpoint_files(self.available_checkpoints)
        state[PACKAGED_CODE_KEY] = package_code(state, what=f"experiment {self.label!r}")
        return write_container(
            filepath,
            kind=EXPERIMENT_KIND,
            cls=Experiment,
            config={"label": self.label},
            state=state,
            overwrite=overwrite,
        )

    @classmethod
    def load(
        cls,
        filepath: str | Path,
        *,
        checkpoint_dir: str | Path | None = None,
        allow_packaged_code: bool = False,
        overwrite: bool = False,
    ) -> Experiment:
        """Load an experiment saved with :meth:`save` into the active ExperimentContext.

        Loading never unpickles and runs no code from the file unless ``allow_packaged_code``:
        every class the file names resolves through the plugin layer. Re-running a loaded phase
        gives the same predictions as in the process that saved it.

        Args:
            filepath: The ``.exp.mml`` file.
            checkpoint_dir: Folder to extract the file's phase checkpoints into (it becomes the
                experiment's :attr:`checkpoint_dir`). If the file holds checkpoints and this is None,
                they are not restored and a warning says so.
            allow_packaged_code: Run the source of your own classes stored in the file (see
                :meth:`save`); without it, a file that needs such code is refused, naming the class
                and its module, and nothing runs.
            overwrite: Replace colliding registrations in the active context with the saved nodes.
                If False, nodes whose id is taken get new ids. Load into a new or empty context
                (``mml.ExperimentContext().activate()``) to keep the saved ids.

        Returns:
            Experiment: The reloaded experiment (the active context's experiment).

        Raises:
            FileNotFoundError: If there is no such file.
            SerializationError: If the file is damaged, not an experiment, or cannot be rebuilt; the
                active context is then unchanged.
        """
        from modularml.experiment.files import (
            EXPERIMENT_KIND,
            check_state,
            restore_experiment,
            unpack_checkpoint_files,
        )
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=EXPERIMENT_KIND)
        container.require_class(Experiment)
        state = container.state
        files = state.get("checkpoint_files") or {}
        ctx = ExperimentContext.get_active()
        snapshot = ctx.get_state()
        with loading(
            container.path,
            allow_packaged_code=allow_packaged_code,
            what="experiment",
            packaged=state.get("packaged_code") or {},
        ):
            try:
                check_state(state)
                info = state["experiment"]
                experiment = cls(info["label"], registration_policy=info.get("registration_policy"), ctx=ctx)
                restore_experiment(
                    state, experiment=experiment, allow_packaged_code=allow_packaged_code, overwrite=overwrite
                )
            except BaseException:
                ctx.set_state(snapshot)  # a failed load leaves the context as it was
                raise
            if files and checkpoint_dir is None:
                warnings.warn(
                    f"{str(container.path)!r} holds {len(files)} checkpoint file(s) ({sorted(files)[:5]}...); they are "
                    "not restored. Pass checkpoint_dir= to Experiment.load to extract them.",
                    ModularMLWarning,
                    stacklevel=2,
                )
            elif checkpoint_dir is not None:
                directory = Path(checkpoint_dir)
                unpack_checkpoint_files(files, directory)
                experiment.set_checkpoint_dir(directory)
        return experiment

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

    # ------------------------------------------------------------------ config files
    def to_file(self, path: str | Path, *, overwrite: bool = False, seed: int | None = None) -> Path:
        """Write this experiment as a config file (``.toml`` or ``.json``), its FeatureSets saved next to it.

        See :func:`modularml.experiment.config_file.write_experiment_file`; ``modularml run`` runs the file.
        """
        from modularml.experiment.config_file import write_experiment_file

        return write_experiment_file(self, path, overwrite=overwrite, seed=seed)

    @classmethod
    def from_file(cls, path: str | Path, *, allow_packaged_code: bool = False) -> Experiment:
        """Build the experiment a config file describes, in a new ExperimentContext (made active).

        See :func:`modularml.experiment.config_file.read_experiment_file`.
        """
        from modularml.experiment.config_file import read_experiment_file

        return read_experiment_file(path, experiment_cls=cls, allow_packaged_code=allow_packaged_code)

    def __repr__(self) -> str:
        return f"Experiment(label={self.label!r}, plan={[i.label for i in self._plan.all]}, runs={len(self._history)})"
