"""``TrainPhase``: trains model-graph nodes over epochs of sampler batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modularml.batches import BatchView, ExecutionContext
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.losses.applied_loss import AppliedLoss
from modularml.phases.base import ExperimentPhase, _loss_value, _NoBar, progress_bar
from modularml.phases.callback import Callback
from modularml.phases.input_binding import InputBinding
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
        checkpointing: Not supported yet; must be None.
        result_recording (str | ResultRecording): Which execution contexts the results keep.
            Defaults to ``"all"``.

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
        checkpointing: Any = None,
        result_recording: ResultRecording | str = ResultRecording.ALL,
    ) -> None:
        super().__init__(
            label, input_sources=input_sources, losses=losses, active_nodes=active_nodes, callbacks=callbacks
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
        if checkpointing is not None:
            raise InvalidArgumentError("TrainPhase checkpointing is not available yet; pass checkpointing=None.")
        self.n_epochs = n_epochs
        self.batch_schedule = BatchSchedulingPolicy.from_value(batch_schedule)
        self.result_recording = ResultRecording.from_value(result_recording)
        self._stop_requested = False

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
        checkpointing: Any = None,
        result_recording: ResultRecording | str = ResultRecording.ALL,
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
        )

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
    ) -> Iterator[ExecutionContext]:
        """Iterate over all execution steps of this training phase, every epoch.

        Bindings with the same sampler config, FeatureSet and split share one sampler run. Every
        epoch the schedule (:attr:`batch_schedule`) combines the samplers' batches into steps; an
        inactive sampler (alternating policies) contributes a fully masked batch. After the
        consumer runs a step (``ModelGraph.train_step(ctx, ...)``), the context is recorded in
        ``results`` (as :attr:`result_recording` says) and the ``train_loss`` metric is logged.

        Args:
            results: Container the contexts, metrics and callback results go to.
            show_sampler_progress: Show progress bars while samplers build batches.
            show_training_progress: Show epoch and batch progress bars.
            persist_progress: Leave all bars visible after completion.
            persist_epoch_progress: Leave the per-epoch batch bars visible.
            val_loss_metric: Metric (in ``results``) to show as the validation loss, if logged.

        Yields:
            ExecutionContext: One per step.
        """
        self._stop_requested = False
        graph = self.resolve_model_graph()
        self._check_against_graph(graph)
        if results is not None:
            results.record_loss_nodes(self._loss_nodes(graph))
        with self._guard(results):
            executions = self._build_sampler_executions(show_progress=show_sampler_progress)
            self._fire("on_phase_start", results)
            last_epoch = 0
            with progress_bar(
                enabled=show_training_progress,
                total=self.n_epochs,
                desc=f"{self.label}",
                leave=persist_progress,
                unit="epoch",
            ) as epoch_bar:
                for epoch in range(self.n_epochs):
                    last_epoch = epoch
                    yield from self._iter_epoch(
                        epoch, executions, results, show_training_progress, persist_progress or persist_epoch_progress
                    )
                    postfix = self._postfix(results, epoch, val_loss_metric)
                    epoch_bar.set_postfix(postfix, refresh=False)
                    epoch_bar.update(1)
                    if self._stop_requested:
                        break
            self._fire("on_phase_end", results)
            if results is not None:
                kept = self._retained_epochs(last_epoch, final=True)
                if kept is not None:
                    results.retain_epochs(kept)

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
        show: bool,
        leave: bool,
    ) -> Iterator[ExecutionContext]:
        ctx = ExecutionContext(self.label, epoch_idx=epoch, batch_idx=0)
        self._fire("on_epoch_start", results, ctx, epoch_idx=epoch)
        metrics = None if results is None else results.metrics()
        epoch_batches = [execution.batches(epoch) for execution in executions]
        counts = [min(len(v) for v in batches.values()) for batches in epoch_batches]
        steps = list(iter_schedule(self.batch_schedule, counts))
        total = 0.0
        with progress_bar(
            enabled=show and len(steps) > 1, total=len(steps), desc=f"epoch {epoch}", leave=leave, unit="batch"
        ) as bar:
            shown = not isinstance(bar, _NoBar)
            recording = results is not None and self.result_recording is not ResultRecording.NONE
            for batch_idx, step in enumerate(steps):
                inputs = {}
                for k, batches in enumerate(epoch_batches):
                    index = step[k]
                    for key, views in batches.items():
                        inputs[key] = (
                            views[index % len(views)] if index is not None else views[batch_idx % len(views)].masked()
                        )
                ctx = ExecutionContext.trusted(self.label, epoch, batch_idx, inputs)
                self._fire("on_batch_start", results, ctx, epoch_idx=epoch, batch_idx=batch_idx)
                yield ctx
                value = sum(map(_loss_value, ctx.losses.values()))
                total += value
                if metrics is not None:
                    metrics.log_step(TRAIN_LOSS, value, epoch, batch_idx)
                    if recording:
                        results.add_execution_context(ctx.detach_tensors())
                self._fire("on_batch_end", results, ctx, epoch_idx=epoch, batch_idx=batch_idx)
                if shown:
                    bar.set_postfix({TRAIN_LOSS: f"{value:.4g}"}, refresh=False)
                    bar.update(1)
        if results is not None:
            results.metrics().log(TRAIN_LOSS, total / max(len(steps), 1), epoch)
            kept = self._retained_epochs(epoch)
            if kept is not None:
                results.retain_epochs(kept)
        self._fire("on_epoch_end", results, ctx, epoch_idx=epoch)  # ctx: the epoch's last step

    @staticmethod
    def _postfix(results: TrainResults | None, epoch: int, val_loss_metric: str) -> dict[str, str]:
        if results is None:
            return {}
        out = {}
        for name in (TRAIN_LOSS, val_loss_metric):
            value = results.metrics().get(name, epoch)
            if value is not None:
                out[name] = f"{value:.4g}"
        return out

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
        )
