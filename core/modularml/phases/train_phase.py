"""``TrainPhase``: trains model-graph nodes over epochs of sampler batches."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modularml.backends.devices import Accelerator
from modularml.batches import BatchView, ExecutionContext
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.io import container_path
from modularml.losses.applied_loss import AppliedLoss
from modularml.phases.base import ExperimentPhase, _loss_value
from modularml.phases.callback import Callback
from modularml.phases.checkpointing import Checkpointing
from modularml.phases.input_binding import InputBinding
from modularml.phases.progress import TrainingDisplay, epoch_metrics, training_summary
from modularml.phases.recording import ResultRecording
from modularml.phases.scheduling import BatchSchedulingPolicy, iter_schedule
from modularml.results.train_results import TrainResults
from modularml.samplers import BaseSampler
from modularml.utils.environment import IN_NOTEBOOK

if TYPE_CHECKING:
    from modularml.graph import ModelGraph
    from modularml.nodes import GraphNode

__all__ = ["TrainPhase"]

#: Metric names logged by a training phase.
TRAIN_LOSS = "train_loss"


#: File names of disk checkpoints, per hook, when the Checkpointing has no name_template of its own.
DEFAULT_CHECKPOINT_NAMES = {
    "phase_start": "{phase}_start",
    "phase_end": "{phase}_end",
    "epoch_start": "{phase}_epoch{epoch:04d}_start",
    "epoch_end": "{phase}_epoch{epoch:04d}",
    "batch_start": "{phase}_epoch{epoch:04d}_batch{batch:06d}_start",
    "batch_end": "{phase}_epoch{epoch:04d}_batch{batch:06d}",
}


#: Hooks whose disk checkpoints hold the run's position, so that a run can resume from them
#: (``Experiment.run_phase(phase, resume_from=...)``).
RESUMABLE_HOOKS = ("epoch_end", "batch_end")


@dataclass
class _Resume:
    """Where a resumed run continues: right after the checkpoint of ``hook`` at ``epoch`` (and ``batch``).

    After ``epoch_end`` the epoch's ``on_epoch_end`` callbacks still run (the checkpoint is saved
    before them, so that ``EarlyStopping`` finds it), then the next epoch starts; after
    ``batch_end`` the epoch continues with the next batch.
    """

    hook: str
    epoch: int
    batch: int
    state: dict[str, Any]


class _RunCheckpoints:
    """The checkpoints of one run of a phase: when a hook fires, save the graph state as its Checkpointing says.

    Keys: the epoch index (an ``int``) for ``epoch_end``, so that ``EarlyStopping`` finds the best
    epoch's state; ``"<hook>"`` for phase hooks, ``"<hook>:<epoch>"`` and ``"<hook>:<epoch>:<batch>"``
    for the others. Memory mode keeps a deep copy of ``ModelGraph.get_state()``; disk mode writes
    ``ModelGraph.save_checkpoint`` files into ``directory``, named by :data:`DEFAULT_CHECKPOINT_NAMES`
    unless the Checkpointing has a ``name_template`` of its own. A template that gives a later
    checkpoint the file of an earlier one (``"{phase}_latest"``) replaces it: the earlier key is
    forgotten, so it never claims the newer content.
    """

    def __init__(self, phase: TrainPhase, checkpointing: Checkpointing, graph: ModelGraph, directory: Path | None):
        self.phase, self.checkpointing, self.graph, self.directory = phase, checkpointing, graph, directory
        checkpointing.reset()

    def save(self, hook: str, epoch: int = 0, batch: int = 0) -> None:
        ckpt = self.checkpointing
        if not ckpt.should_save(hook):
            return
        if hook == "epoch_end":
            key: int | str = epoch
        elif hook.startswith("phase"):
            key = hook
        elif hook.startswith("epoch"):
            key = f"{hook}:{epoch}"
        else:
            key = f"{hook}:{epoch}:{batch}"
        if ckpt.mode == "memory":
            ckpt.record_memory(key, copy.deepcopy(self.graph.get_state()))
            return
        assert self.directory is not None
        values = {"phase": self.phase.label, "epoch": epoch, "batch": batch}
        own_template = ckpt.get_config()["name_template"]
        name = (
            ckpt.format_name(**values) if own_template is not None else DEFAULT_CHECKPOINT_NAMES[hook].format(**values)
        )
        target = container_path(self.directory / name, "ckpt")
        for other in ckpt.saved_keys:
            if other != key and ckpt.get_path(other) == target:
                ckpt.forget(other)  # the file is about to hold this checkpoint instead
        meta = {**values, "hook": hook}
        run_state = self.phase._run_state(hook, epoch, batch, key, target) if hook in RESUMABLE_HOOKS else None
        path = self.graph.save_checkpoint(target, overwrite=ckpt.overwrite, meta=meta, run_state=run_state)
        ckpt.record_disk(key, path)


@dataclass
class _SamplerExecution:
    """One sampler run shared by every binding with the same sampler config, FeatureSet and split."""

    sampler: BaseSampler
    bindings: list[InputBinding]

    def batches(self, epoch: int) -> dict[tuple[str, Any], list[BatchView]]:
        return {b.input_key: self.sampler.get_batches(b.stream, epoch=epoch) for b in self.bindings}

    @property
    def num_batches(self) -> int:
        return min(len(self.sampler.get_batches(b.stream)) for b in self.bindings)


def _adopt_results(results: TrainResults, state: dict[str, Any]) -> None:
    """Make ``results`` hold the results saved in a resumable checkpoint (the run so far)."""
    from modularml.results.serialization import results_from_state

    saved = results_from_state(state)
    if not isinstance(saved, TrainResults):
        raise InvalidArgumentError(f"The checkpoint's results are {type(saved).__name__}, not TrainResults.")
    results._execution, results._callbacks = saved._execution, saved._callbacks
    results._metrics, results._loss_nodes = saved._metrics, saved._loss_nodes


class TrainPhase(ExperimentPhase):
    """Phase that trains model graph nodes over one or more epochs.

    Args:
        label (str): Label of the phase.
        input_sources (list[InputBinding]): Training bindings (with samplers) of the head nodes.
        losses (list[AppliedLoss]): Losses to train on (at least one).
        n_epochs (int): Number of epochs. Defaults to 1.
        active_nodes (list[str | GraphNode] | None): Nodes to train (with their upstream nodes,
            which are forwarded); all when None.
        batch_schedule (str | BatchSchedulingPolicy): How the batches of several samplers form
            steps; see :class:`BatchSchedulingPolicy`. Defaults to ``"zip_strict"``.
        callbacks (list[Callback] | None): Callbacks run during the phase.
        checkpointing (Checkpointing | None): Saves the model graph's state at lifecycle hooks of the
            phase (see :meth:`set_checkpointing`). Defaults to None.
        result_recording (str | ResultRecording): Which execution contexts the results keep.
            Defaults to ``"all"``.
        accelerator (Accelerator | str | None): Where its model nodes run (``"cuda:0"``, an
            :class:`~modularml.Accelerator`); a node's own accelerator wins. Defaults to None (each
            model stays where it is).

    Raises:
        ValueError: If no loss is given, a binding has no sampler, or ``n_epochs < 1``.
    """

    phase_kind = "train"

    def __init__(
        self,
        label: str,
        *,
        input_sources: Sequence[InputBinding],
        losses: Sequence[AppliedLoss],
        n_epochs: int = 1,
        active_nodes: Sequence[str | GraphNode] | None = None,
        batch_schedule: BatchSchedulingPolicy | str = BatchSchedulingPolicy.ZIP_STRICT,
        callbacks: Sequence[Callback] | None = None,
        checkpointing: Checkpointing | None = None,
        result_recording: ResultRecording | str = ResultRecording.ALL,
        accelerator: Accelerator | str | None = None,
    ) -> None:
        super().__init__(
            label,
            input_sources=input_sources,
            losses=losses,
            active_nodes=active_nodes,
            callbacks=callbacks,
            accelerator=accelerator,
        )
        if not self.losses:
            raise InvalidArgumentError(
                f"TrainPhase {label!r} needs at least one AppliedLoss in losses= (e.g. "
                "AppliedLoss(Loss('mse'), on=head, inputs=['outputs', 'targets']))."
            )
        for binding in self.input_sources:
            if binding.sampler is None:
                raise InvalidArgumentError(
                    f"TrainPhase {label!r}: the binding of node {binding.node_id!r} has no sampler; build training "
                    "bindings with InputBinding.for_training(node=..., sampler=...)."
                )
        if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 1:
            raise InvalidArgumentError(f"n_epochs is an int >= 1; got {n_epochs!r}.")
        self._checkpointing: Checkpointing | None = None
        self._run_ckpt: _RunCheckpoints | None = None
        self.set_checkpointing(checkpointing)
        self.n_epochs = n_epochs
        self.batch_schedule = BatchSchedulingPolicy.from_value(batch_schedule)
        self.result_recording = ResultRecording.from_value(result_recording)
        self._stop_requested = False
        self._run_results: TrainResults | None = None
        self._epoch_total = 0.0

    @classmethod
    def from_split(
        cls,
        label: str,
        *,
        split: str,
        sampler: BaseSampler,
        losses: Sequence[AppliedLoss],
        n_epochs: int = 1,
        active_nodes: Sequence[str | GraphNode] | None = None,
        batch_schedule: BatchSchedulingPolicy | str = BatchSchedulingPolicy.ZIP_STRICT,
        callbacks: Sequence[Callback] | None = None,
        checkpointing: Checkpointing | None = None,
        result_recording: ResultRecording | str = ResultRecording.ALL,
        accelerator: Accelerator | str | None = None,
    ) -> TrainPhase:
        """A training phase on ``split`` of every FeatureSet feeding the active head nodes.

        Raises:
            KeyError: If no ModelGraph is registered, or a head node's FeatureSet lacks ``split``.
        """
        if not isinstance(sampler, BaseSampler):
            raise InvalidTypeError(f"from_split() needs a BaseSampler; got {type(sampler).__name__}.")
        return cls(
            label,
            input_sources=cls._bindings_for_split(split, active_nodes, sampler),
            losses=losses,
            n_epochs=n_epochs,
            active_nodes=active_nodes,
            batch_schedule=batch_schedule,
            callbacks=callbacks,
            checkpointing=checkpointing,
            result_recording=result_recording,
            accelerator=accelerator,
        )

    # ------------------------------------------------------------------ checkpointing
    @property
    def checkpointing(self) -> Checkpointing | None:
        """The Checkpointing instance configured for this phase, or None."""
        return self._checkpointing

    def set_checkpointing(self, checkpointing: Checkpointing | None) -> None:
        """Attach (or, with None, remove) the Checkpointing that saves the model graph's state during runs.

        Its ``save_on`` hooks must be TrainPhase hooks (``phase_start``, ``phase_end``,
        ``epoch_start``, ``epoch_end``, ``batch_start``, ``batch_end``) and its ``name_template`` may
        use ``{phase}``, ``{epoch}`` and ``{batch}``; without one, files are named per hook
        (:data:`DEFAULT_CHECKPOINT_NAMES`: ``train_epoch0004`` at an epoch end, ``train_epoch0004_start``
        at its start, ``train_end`` at the phase end...). In disk
        mode without a ``directory``, files go to ``<experiment checkpoint dir>/<phase label>/``
        (:meth:`Experiment.set_checkpoint_dir`), chosen when the phase runs.

        Raises:
            TypeError: If ``checkpointing`` is not a Checkpointing.
            ValueError: If a hook or a placeholder is not one of a TrainPhase.
        """
        if checkpointing is not None:
            if not isinstance(checkpointing, Checkpointing):
                raise InvalidTypeError(
                    f"checkpointing is a modularml Checkpointing (or None); got {type(checkpointing).__name__}."
                )
            checkpointing.validate_for(
                f"TrainPhase {self.label!r}", Checkpointing.TRAIN_PHASE_HOOKS, Checkpointing.TRAIN_PHASE_PLACEHOLDERS
            )
            if checkpointing.name_template is None:  # shown as the name of its epoch (or batch) ends
                batches = any(hook.startswith("batch") for hook in checkpointing.save_on)
                checkpointing.set_default_name_template(
                    DEFAULT_CHECKPOINT_NAMES["batch_end" if batches else "epoch_end"]
                )
        self._checkpointing = checkpointing

    @property
    def active_checkpointing(self) -> Checkpointing | None:
        """The Checkpointing recording the current run's checkpoints (None between runs, or when suppressed)."""
        return None if self._run_ckpt is None else self._run_ckpt.checkpointing

    def _run_checkpoints(self, graph: ModelGraph) -> _RunCheckpoints | None:
        """The checkpoints of this run: None without checkpointing, or inside ``Experiment.disable_checkpointing()``.

        Raises:
            ValueError: In disk mode without a directory, here or on the experiment.
        """
        ckpt = self._checkpointing
        experiment = self._experiment()
        if ckpt is None or (experiment is not None and experiment.checkpointing_suppressed):
            return None
        directory = None
        if ckpt.mode == "disk":
            directory = ckpt.directory
            if directory is None and experiment is not None and experiment.checkpoint_dir is not None:
                directory = experiment.checkpoint_dir / self.label
            if directory is None:
                raise InvalidArgumentError(
                    f"TrainPhase {self.label!r} checkpoints to disk but has no directory: pass "
                    "Checkpointing(mode='disk', directory=...), or set one on the experiment with "
                    "experiment.set_checkpoint_dir(path) (the phase then writes to <path>/<phase label>/)."
                )
            directory.mkdir(parents=True, exist_ok=True)
        return _RunCheckpoints(self, ckpt, graph, directory)

    @contextmanager
    def _checkpoints_end(self) -> Iterator[None]:
        try:
            yield
        finally:
            self._run_ckpt = None

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """Request early termination: the loop ends cleanly after the current epoch."""
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`request_stop` was called during the current run."""
        return self._stop_requested

    # ------------------------------------------------------------------ execution
    def _build_sampler_executions(self, *, show_progress: bool) -> list[_SamplerExecution]:
        """Group bindings into unique sampler runs (same sampler config, FeatureSet and split) and materialise them."""
        groups: dict[tuple[Any, ...], _SamplerExecution] = {}
        used: set[int] = set()
        for binding in self.input_sources:
            sampler = binding.sampler
            assert sampler is not None
            fs = binding.upstream_ref.resolve_featureset()
            key = (type(sampler).__name__, repr(sampler.get_config()), fs.node_id, binding.split)
            if key in groups:
                groups[key].bindings.append(binding)
                continue
            if id(sampler) in used:  # the same instance feeds another source: give that run its own copy
                sampler = type(sampler).from_config(sampler.get_config())
            used.add(id(sampler))
            groups[key] = _SamplerExecution(sampler, [binding])
        for execution in groups.values():
            first = execution.bindings[0]
            execution.sampler.bind_sources(first.resolve_input_view())
            execution.sampler.materialize_batches(show_progress=show_progress)
            for binding in execution.bindings:
                binding.check_stream(execution.sampler)
        return list(groups.values())

    def iter_execution(
        self,
        *,
        results: TrainResults | None = None,
        show_sampler_progress: bool = True,
        show_training_progress: bool = True,
        persist_progress: bool = False,
        persist_epoch_progress: bool = False,
        val_loss_metric: str = "val_loss",
        resume: dict[str, Any] | None = None,
        log_every_n_epochs: int | None = None,
    ) -> Iterator[ExecutionContext]:
        """Iterate over all execution steps of this training phase, every epoch.

        Bindings with the same sampler config, FeatureSet and split share one sampler run. Every
        epoch the schedule (:attr:`batch_schedule`) combines the samplers' batches into steps; an
        inactive sampler (alternating policies) contributes a fully masked batch. After the
        consumer runs a step (``ModelGraph.train_step(ctx, ...)``), the context is recorded in
        ``results`` (as :attr:`result_recording` says) and the ``train_loss`` metric is logged.

        What it shows (:mod:`modularml.phases.progress`): a bar over the epochs and one over the
        batches (its postfix is the running mean of the training loss), a line per epoch that stays
        (``train  epoch  3/100  train_loss 0.04089  val_loss 0.0129  0.31s``), and at the end a
        summary (epochs run, why it stopped, the epoch restored, the final metrics), which is also
        kept as :attr:`last_summary`. Bars are drawn only in a terminal or a notebook; elsewhere
        the lines are plain text.

        Args:
            results: Container the contexts, metrics and callback results go to.
            show_sampler_progress: Show progress bars while samplers build batches.
            show_training_progress: Show the bars, the epoch lines and the summary.
            persist_progress: Leave the epoch bar visible after completion.
            persist_epoch_progress: Leave one batch bar per epoch visible (otherwise one is reused).
            val_loss_metric: Metric (in ``results``) to show right after the training loss, if logged.
            log_every_n_epochs: Epochs between two epoch lines (0: none); every epoch for runs of up to
                100 epochs, about 100 lines for longer runs, when None. The first and last epoch always
                get one.
            resume: The run state of a disk checkpoint (``state["run"]`` of an ``epoch_end`` or
                ``batch_end`` checkpoint of this phase) to continue from; the model graph must
                hold that checkpoint's state already (``Experiment.run_phase(phase, resume_from=...)``
                does both). The results so far, callback states, checkpoint records and every random
                generator are restored, and the run goes on exactly where the checkpoint was taken.

        Yields:
            ExecutionContext: One per step.
        """
        self._stop_requested = False
        graph = self.resolve_model_graph()
        self._check_against_graph(graph)
        self._place_nodes(graph)
        point = None if resume is None else self._resume_point(resume)
        if results is not None:
            if point is not None and point.state.get("results") is not None:
                _adopt_results(results, point.state["results"])
            results.record_loss_nodes(self._loss_nodes(graph))
        self._run_results, self._epoch_total = results, 0.0
        checkpoints = self._run_ckpt = self._run_checkpoints(graph)
        with self._guard(results), self._checkpoints_end():
            executions = self._build_sampler_executions(show_progress=show_sampler_progress)
            if point is None:
                self._fire("on_phase_start", results)
                if checkpoints is not None:
                    checkpoints.save("phase_start")
            else:
                self._restore_run(point, checkpoints)
            first = 0 if point is None else point.epoch
            last_epoch = first
            first_metrics = (TRAIN_LOSS, val_loss_metric)  # shown first, in this order
            display = TrainingDisplay(
                self.label,
                self.n_epochs,
                enabled=show_training_progress,
                persist=persist_progress,
                persist_epochs=persist_epoch_progress,
                log_every_n_epochs=log_every_n_epochs,
            )
            with display:
                display.resume_at(first)
                for epoch in range(first, self.n_epochs):
                    last_epoch = epoch
                    resume_here = point if epoch == first else None
                    yield from self._iter_epoch(epoch, executions, results, display, checkpoints, resume_here)
                    metrics = {} if results is None else epoch_metrics(results.metrics(), epoch, first_metrics)
                    display.end_epoch(epoch, metrics, last=self._stop_requested or epoch == self.n_epochs - 1)
                    if self._stop_requested:
                        break
            self._fire("on_phase_end", results)
            if checkpoints is not None:
                checkpoints.save("phase_end", last_epoch)
            self.last_summary = training_summary(self, results, last_epoch + 1, display.seconds, first_metrics)
            display.finish(self.last_summary)
            if results is not None:
                kept = self._retained_epochs(last_epoch, final=True)
                if kept is not None:
                    results.retain_epochs(kept)
        self._run_results = None

    # ------------------------------------------------------------------ resuming
    def _run_state(self, hook: str, epoch: int, batch: int, key: int | str, target: Path) -> dict[str, Any]:
        """The position of the running run, for a resumable checkpoint (plain data; see :meth:`iter_execution`)."""
        from modularml.backends.components import import_path
        from modularml.backends.randomness import capture_rng_state
        from modularml.results.serialization import results_to_state

        graph = self.resolve_model_graph()
        ckpt = self._run_ckpt.checkpointing if self._run_ckpt is not None else None
        records = None
        if ckpt is not None:
            records = ckpt.records()
            records["paths"] = [[k, p] for k, p in records["paths"] if k != key] + [[key, str(target)]]
        results = self._run_results
        return {
            "phase": self.label,
            "hook": hook,
            "epoch": epoch,
            "batch": batch,
            "n_epochs": self.n_epochs,
            "epoch_total": self._epoch_total,
            "stop_requested": self._stop_requested,
            "rng": capture_rng_state(graph.backends),
            "callbacks": [
                {"class": import_path(type(cb)), "label": cb.label, "state": cb.get_state()} for cb in self.callbacks
            ],
            "checkpointing": records,
            "results": None if results is None else results_to_state(results),
        }

    def _resume_point(self, state: Any) -> _Resume:
        """Check a checkpoint's run state against this phase before anything changes."""
        if not isinstance(state, dict) or state.get("hook") not in RESUMABLE_HOOKS:
            raise InvalidArgumentError(
                f"TrainPhase {self.label!r} resumes from the run state of a disk checkpoint saved at "
                f"{' or '.join(RESUMABLE_HOOKS)}; got {state!r:.120}."
            )
        if state.get("phase") != self.label:
            raise InvalidArgumentError(
                f"The checkpoint was saved by phase {state.get('phase')!r}, not by TrainPhase {self.label!r}; resume "
                "the phase that saved it."
            )
        epoch, batch = state.get("epoch"), state.get("batch")
        if not isinstance(epoch, int) or not isinstance(batch, int) or not 0 <= epoch < self.n_epochs:
            raise InvalidArgumentError(
                f"The checkpoint is at epoch {epoch!r}, batch {batch!r}; TrainPhase {self.label!r} runs "
                f"{self.n_epochs} epochs."
            )
        saved = [(cb.get("class"), cb.get("label")) for cb in state.get("callbacks") or []]
        from modularml.backends.components import import_path

        here = [(import_path(type(cb)), cb.label) for cb in self.callbacks]
        if saved != here:
            raise InvalidArgumentError(
                f"The checkpoint was saved with callbacks {saved}; TrainPhase {self.label!r} has {here}. Resume with "
                "the callbacks the run had."
            )
        return _Resume(state["hook"], epoch, batch, state)

    def _restore_run(self, point: _Resume, checkpoints: _RunCheckpoints | None) -> None:
        """Put back callback states and checkpoint records of a resumed run (RNGs are restored at the step)."""
        for callback, saved in zip(self.callbacks, point.state.get("callbacks") or [], strict=True):
            callback.set_state(dict(saved["state"]))
        if checkpoints is not None and point.state.get("checkpointing") is not None:
            checkpoints.checkpointing.restore_records(point.state["checkpointing"])
        self._stop_requested = bool(point.state.get("stop_requested", False))

    def _retained_epochs(self, epoch: int, *, final: bool = False) -> set[int] | None:
        """Epochs whose contexts the results keep after ``epoch`` (None: all), as :attr:`result_recording` says.

        With ``"last"``, the epochs a callback asks to keep (:meth:`Callback.retained_epochs`, e.g. the
        best epoch of an ``EarlyStopping`` that restores it) are kept as well; at the end of the phase
        only those, if there are any.
        """
        if self.result_recording is ResultRecording.ALL:
            return None
        if self.result_recording is ResultRecording.NONE:
            return set()
        best = set().union(*(cb.retained_epochs() for cb in self._callbacks))
        if final and best:
            return best
        return {epoch} | best

    def _iter_epoch(
        self,
        epoch: int,
        executions: list[_SamplerExecution],
        results: TrainResults | None,
        display: TrainingDisplay,
        checkpoints: _RunCheckpoints | None = None,
        resume: _Resume | None = None,
    ) -> Iterator[ExecutionContext]:
        ctx = ExecutionContext(self.label, epoch_idx=epoch, batch_idx=0)
        if resume is None:
            self._fire("on_epoch_start", results, ctx, epoch_idx=epoch)
            if checkpoints is not None:
                checkpoints.save("epoch_start", epoch)
        metrics = None if results is None else results.metrics()
        epoch_batches = [execution.batches(epoch) for execution in executions]
        counts = [min(len(v) for v in batches.values()) for batches in epoch_batches]
        steps = list(iter_schedule(self.batch_schedule, counts))
        total = 0.0
        start = 0
        if resume is not None:
            total = float(resume.state.get("epoch_total", 0.0))
            start = len(steps) if resume.hook == "epoch_end" else resume.batch + 1
            from modularml.backends.randomness import restore_rng_state

            restore_rng_state(resume.state["rng"])
        self._epoch_total = total
        with display.epoch(epoch, len(steps)):
            recording = results is not None and self.result_recording is not ResultRecording.NONE
            for batch_idx, step in enumerate(steps):
                if batch_idx < start:
                    continue
                inputs = {}
                for k, batches in enumerate(epoch_batches):
                    index = step[k]
                    for key, views in batches.items():
                        inputs[key] = (
                            views[index % len(views)] if index is not None else views[batch_idx % len(views)].masked()
                        )
                ctx = ExecutionContext.trusted(self.label, epoch, batch_idx, inputs)
                self._fire("on_batch_start", results, ctx, epoch_idx=epoch, batch_idx=batch_idx)
                if checkpoints is not None:
                    checkpoints.save("batch_start", epoch, batch_idx)
                yield ctx
                value = sum(map(_loss_value, ctx.losses.values()))
                total += value
                self._epoch_total = total
                if metrics is not None:
                    metrics.log_step(TRAIN_LOSS, value, epoch, batch_idx)
                    if recording:
                        results.add_execution_context(ctx.detach_tensors())
                self._fire("on_batch_end", results, ctx, epoch_idx=epoch, batch_idx=batch_idx)
                if checkpoints is not None:
                    checkpoints.save("batch_end", epoch, batch_idx)
                display.step(value, TRAIN_LOSS)
        if resume is None or resume.hook != "epoch_end":
            if results is not None:
                results.metrics().log(TRAIN_LOSS, total / max(len(steps), 1), epoch)
                kept = self._retained_epochs(epoch)
                if kept is not None:
                    results.retain_epochs(kept)
            if checkpoints is not None:  # before the callbacks: EarlyStopping finds this epoch's checkpoint
                checkpoints.save("epoch_end", epoch)
        elif results is not None and results.execution_contexts(epoch=epoch):
            ctx = results.execution_contexts(epoch=epoch)[-1]  # the epoch's last step, as recorded
        self._fire("on_epoch_end", results, ctx, epoch_idx=epoch)  # ctx: the epoch's last step

    def new_results(self) -> TrainResults:
        """An empty TrainResults for this phase."""
        return TrainResults(self.label)

    def execute(
        self, *, graph: ModelGraph | None = None, results: TrainResults | None = None, **kwargs: Any
    ) -> TrainResults:
        """Run the training loop (``ModelGraph.train_step`` on every step) and return the results.

        Keyword arguments are the display flags of :meth:`iter_execution`; the persistence flags
        default to ``IN_NOTEBOOK`` (bars stay visible in notebooks, vanish in scripts).
        """
        kwargs.setdefault("persist_progress", IN_NOTEBOOK)
        kwargs.setdefault("persist_epoch_progress", IN_NOTEBOOK)
        graph = self.resolve_model_graph(graph)
        results = self.new_results() if results is None else results
        self._drive(
            self.iter_execution(results=results, **kwargs),
            lambda ctx: graph.train_step(ctx, self.losses, active_nodes=self.active_nodes),
        )
        return results

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this phase (callbacks are not included)."""
        return {
            **self._base_config(),
            "n_epochs": self.n_epochs,
            "batch_schedule": self.batch_schedule.value,
            "result_recording": self.result_recording.value,
            "checkpointing": None if self._checkpointing is None else self._checkpointing.get_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrainPhase:
        """Rebuild a training phase from :meth:`get_config` output."""
        return cls(
            config["label"],
            **cls._base_kwargs(config),
            n_epochs=config.get("n_epochs", 1),
            batch_schedule=config.get("batch_schedule", "zip_strict"),
            result_recording=config.get("result_recording", "all"),
            checkpointing=None
            if config.get("checkpointing") is None
            else Checkpointing.from_config(config["checkpointing"]),
        )
