"""``EvalPhase``: forward passes (no gradients) over a FeatureSet split, optionally in chunks."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.backends.devices import Accelerator
from modularml.batches import BatchView, ExecutionContext
from modularml.batches.sample_data import ROLE_DEFAULT
from modularml.errors import InvalidArgumentError
from modularml.losses.applied_loss import AppliedLoss
from modularml.phases.base import ExperimentPhase, _loss_value
from modularml.phases.callback import Callback
from modularml.phases.input_binding import InputBinding
from modularml.phases.progress import PhaseSummary, progress_bar, write_line
from modularml.results.eval_results import EvalResults
from modularml.utils.environment import IN_NOTEBOOK

if TYPE_CHECKING:
    from modularml.graph import ModelGraph
    from modularml.nodes import GraphNode

__all__ = ["EvalPhase", "full_data_views"]

#: Metric logged by an evaluation phase (sum of its losses).
EVAL_LOSS = "eval_loss"


def full_data_views(phase: ExperimentPhase) -> dict[tuple[str, Any], np.ndarray]:
    """The row indices every binding of ``phase`` reads.

    The bindings read one FeatureSet, or several FeatureSets whose selected rows are the same
    samples in the same order (same sample UUIDs, e.g. FeatureSets made with
    ``select(...).to_featureset()`` from one recording and split alike), so a merge node that needs
    every input at once can be evaluated. This goes beyond the reference, which asks for one
    FeatureSet per phase.

    Raises:
        ValueError: If the bindings read different numbers of rows, or FeatureSets whose rows are
            not the same samples in the same order.
    """
    rows: dict[tuple[str, Any], np.ndarray] = {}
    first: tuple[str, np.ndarray] | None = None
    for binding in phase.input_sources:
        view = binding.resolve_input_view()
        indices = np.asarray(view.indices, dtype=np.int64)
        rows[binding.input_key] = indices
        lengths = {len(r) for r in rows.values()}
        if len(lengths) > 1:
            raise InvalidArgumentError(
                f"{type(phase).__name__} {phase.label!r}: the bindings read different numbers of rows "
                f"{sorted(lengths)}; bind the same split to every head node."
            )
        if first is None:
            first = (view.source.label, view.source.collection.sample_uuids()[indices])
        elif view.source.label != first[0]:
            uuids = view.source.collection.sample_uuids()[indices]
            if not np.array_equal(uuids, first[1]):
                raise InvalidArgumentError(
                    f"{type(phase).__name__} {phase.label!r}: the bindings read FeatureSets {first[0]!r} and "
                    f"{view.source.label!r}, whose selected rows are not the same samples in the same order. Bind "
                    "FeatureSets that hold the same samples (split alike), or use one phase per FeatureSet."
                )
    return rows


def _chunker(source: Any, indices: np.ndarray) -> Any:
    """``chunk(start, stop)``: the BatchView of rows ``indices[start:stop]`` of ``source``, checked once here.

    The indices are validated once for the whole split; a split that is one contiguous range of
    rows (what ``FeatureSet.split`` and whole FeatureSets give) hands out views that read each
    chunk as one slice instead of row by row.
    """
    whole = BatchView(source, indices)
    fs, columns = whole._source, whole._columns
    checked = whole._role_indices[ROLE_DEFAULT]
    all_valid = bool((checked >= 0).all())
    first = int(checked[0]) if len(checked) else 0
    contiguous = all_valid and np.array_equal(checked, np.arange(first, first + len(checked)))

    def chunk(start: int, stop: int) -> BatchView:
        part = checked[start:stop]
        span = (first + start, first + start + len(part)) if contiguous else None
        return BatchView.trusted(fs, {ROLE_DEFAULT: part}, None, columns, all_valid, span=span)

    return chunk


class EvalPhase(ExperimentPhase):
    """Phase that evaluates model outputs on a fixed FeatureSet split (forward only, no gradients).

    Args:
        label (str): Label of the phase.
        input_sources (list[InputBinding]): Evaluation bindings; all read the same FeatureSet, or
            FeatureSets holding the same samples in the same order (see :func:`full_data_views`).
        losses (list[AppliedLoss] | None): Losses computed on the outputs.
        active_nodes (list[GraphNode] | None): Nodes to run; all when None.
        batch_size (int | None): Samples per forward pass; all at once when None.
        callbacks (list[Callback] | None): Callbacks run during the phase.
        accelerator (Accelerator | str | None): Where its model nodes run (``"cuda:0"``, an
            :class:`~modularml.Accelerator`); a node's own accelerator wins. Defaults to None (each
            model stays where it is).
    """

    phase_kind = "eval"

    def __init__(
        self,
        label: str,
        *,
        input_sources: Sequence[InputBinding],
        losses: Sequence[AppliedLoss] | None = None,
        active_nodes: Sequence[str | GraphNode] | None = None,
        batch_size: int | None = None,
        callbacks: Sequence[Callback] | None = None,
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
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise InvalidArgumentError(f"batch_size is an int >= 1 or None; got {batch_size!r}.")
        self.batch_size = batch_size

    @classmethod
    def from_split(
        cls,
        label: str,
        *,
        split: str,
        losses: Sequence[AppliedLoss] | None = None,
        active_nodes: Sequence[str | GraphNode] | None = None,
        batch_size: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        accelerator: Accelerator | str | None = None,
    ) -> EvalPhase:
        """An evaluation phase on ``split`` of the FeatureSet feeding the active head nodes.

        Raises:
            KeyError: If no ModelGraph is registered, or a head node's FeatureSet lacks ``split``.
        """
        return cls(
            label,
            input_sources=cls._bindings_for_split(split, active_nodes),
            losses=losses,
            active_nodes=active_nodes,
            batch_size=batch_size,
            callbacks=callbacks,
            accelerator=accelerator,
        )

    def iter_execution(
        self,
        *,
        results: EvalResults | None = None,
        show_eval_progress: bool = False,
        persist_progress: bool = False,
    ) -> Iterator[ExecutionContext]:
        """Iterate over the evaluation steps: the split in chunks of ``batch_size`` (epoch 0).

        After the consumer runs a step (``ModelGraph.eval_step(ctx, ...)``) it is recorded in
        ``results`` and the ``eval_loss`` metric is logged. The run's summary is kept as
        :attr:`last_summary`, and written at the end when ``show_eval_progress``.

        Yields:
            ExecutionContext: One per chunk.
        """
        graph = self.resolve_model_graph()
        self._check_against_graph(graph)
        self._place_nodes(graph)
        if results is not None:
            results.record_loss_nodes(self._loss_nodes(graph))
        started = time.perf_counter()
        with self._guard(results):
            rows = full_data_views(self)
            sources = {b.input_key: b.upstream_ref.resolve_featureset() for b in self.input_sources}
            n = len(next(iter(rows.values())))
            size = self.batch_size or max(n, 1)
            starts = list(range(0, n, size)) or [0]
            chunks = {key: _chunker(sources[key], indices) for key, indices in rows.items()}
            self._fire("on_phase_start", results)
            self._fire("on_epoch_start", results, ExecutionContext(self.label, epoch_idx=0, batch_idx=0), epoch_idx=0)
            total = 0.0
            with progress_bar(
                enabled=show_eval_progress, total=len(starts), desc=self.label, leave=persist_progress, unit="batch"
            ) as bar:
                for batch_idx, start in enumerate(starts):
                    inputs = {key: chunk(start, start + size) for key, chunk in chunks.items()}
                    ctx = ExecutionContext.trusted(self.label, 0, batch_idx, inputs)
                    self._fire("on_batch_start", results, ctx, epoch_idx=0, batch_idx=batch_idx)
                    yield ctx
                    value = sum(_loss_value(v) for v in ctx.losses.values())
                    total += value
                    if results is not None:
                        if ctx.losses:
                            results.metrics().log(EVAL_LOSS, value, 0, batch_idx)
                        results.add_execution_context(ctx.detach_tensors())
                    self._fire("on_batch_end", results, ctx, epoch_idx=0, batch_idx=batch_idx)
                    bar.update(1)
            if results is not None and self.losses:
                results.metrics().log(EVAL_LOSS, total / len(starts), 0)
            self._fire("on_epoch_end", results, ctx, epoch_idx=0)  # the last chunk (there is at least one)
            self._fire("on_phase_end", results)
            metrics = {EVAL_LOSS: total / len(starts)} if self.losses else {}
            self.last_summary = PhaseSummary(
                self.label, "eval", time.perf_counter() - started, final_metrics=metrics, n_samples=n
            )
            if show_eval_progress:
                for line in self.last_summary.lines():
                    write_line(line)

    def new_results(self) -> EvalResults:
        """An empty EvalResults for this phase."""
        return EvalResults(self.label)

    def execute(
        self, *, graph: ModelGraph | None = None, results: EvalResults | None = None, **kwargs: Any
    ) -> EvalResults:
        """Run the evaluation (``ModelGraph.eval_step`` on every chunk) and return the results.

        Keyword arguments are the display flags of :meth:`iter_execution`; ``persist_progress``
        defaults to ``IN_NOTEBOOK``.
        """
        kwargs.setdefault("persist_progress", IN_NOTEBOOK)
        graph = self.resolve_model_graph(graph)
        results = self.new_results() if results is None else results
        graph.set_inference_modes(self.active_nodes)  # once for the phase, not at every chunk
        self._drive(
            self.iter_execution(results=results, **kwargs),
            lambda ctx: graph.eval_step(ctx, self.losses, active_nodes=self.active_nodes, set_modes=False),
        )
        return results

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this phase (callbacks are not included)."""
        return {**self._base_config(), "batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EvalPhase:
        """Rebuild an evaluation phase from :meth:`get_config` output."""
        return cls(config["label"], **cls._base_kwargs(config), batch_size=config.get("batch_size"))
