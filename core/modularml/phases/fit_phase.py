"""``FitPhase``: fits batch-fit model nodes (e.g. scikit-learn estimators) on all data at once."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from modularml.backends.devices import Accelerator
from modularml.batches import BatchView, ExecutionContext
from modularml.losses.applied_loss import AppliedLoss
from modularml.phases.base import ExperimentPhase, _loss_value
from modularml.phases.callback import Callback
from modularml.phases.eval_phase import full_data_views
from modularml.phases.input_binding import InputBinding
from modularml.phases.progress import PhaseSummary
from modularml.results.fit_results import FitResults

if TYPE_CHECKING:
    from modularml.graph import ModelGraph
    from modularml.nodes import GraphNode

__all__ = ["FitPhase"]

#: Metric logged by a fit phase (sum of its losses, for information).
FIT_LOSS = "fit_loss"


class FitPhase(ExperimentPhase):
    """Phase that fits batch-fit model nodes on the complete dataset: one step, no epochs, no sampling.

    Args:
        label (str): Label of the phase.
        input_sources (list[InputBinding]): Bindings of the head nodes; all read the same FeatureSet.
        losses (list[AppliedLoss] | None): Losses computed after fitting (metrics only).
        active_nodes (list[GraphNode] | None): Nodes to fit (with their upstream nodes); all when None.
        freeze_after_fit (bool): Freeze the fitted nodes afterwards. Defaults to True.
        callbacks (list[Callback] | None): Callbacks run during the phase.
        accelerator (Accelerator | str | None): Where its model nodes run (``"cuda:0"``, an
            :class:`~modularml.Accelerator`); a node's own accelerator wins. Defaults to None (each
            model stays where it is).
    """

    phase_kind = "fit"

    def __init__(
        self,
        label: str,
        *,
        input_sources: Sequence[InputBinding],
        losses: Sequence[AppliedLoss] | None = None,
        active_nodes: Sequence[str | GraphNode] | None = None,
        freeze_after_fit: bool = True,
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
        self.freeze_after_fit = bool(freeze_after_fit)

    @classmethod
    def from_split(
        cls,
        label: str,
        *,
        split: str,
        losses: Sequence[AppliedLoss] | None = None,
        active_nodes: Sequence[str | GraphNode] | None = None,
        freeze_after_fit: bool = True,
        callbacks: Sequence[Callback] | None = None,
        accelerator: Accelerator | str | None = None,
    ) -> FitPhase:
        """A fit phase on ``split`` of the FeatureSet feeding the active head nodes.

        Raises:
            KeyError: If no ModelGraph is registered, or a head node's FeatureSet lacks ``split``.
        """
        return cls(
            label,
            input_sources=cls._bindings_for_split(split, active_nodes),
            losses=losses,
            active_nodes=active_nodes,
            freeze_after_fit=freeze_after_fit,
            callbacks=callbacks,
            accelerator=accelerator,
        )

    def iter_execution(self, *, results: FitResults | None = None) -> Iterator[ExecutionContext]:
        """Yield the single ExecutionContext (epoch 0, batch 0) holding all rows, for ``ModelGraph.fit_step``."""
        graph = self.resolve_model_graph()
        self._check_against_graph(graph)
        self._place_nodes(graph)
        if results is not None:
            results.record_loss_nodes(self._loss_nodes(graph))
        started = time.perf_counter()
        with self._guard(results):
            rows = full_data_views(self)
            ctx = ExecutionContext(self.label, epoch_idx=0, batch_idx=0)
            for binding in self.input_sources:
                fs = binding.upstream_ref.resolve_featureset()
                ctx.set_input(binding.node_id, binding.upstream_ref, BatchView(fs, rows[binding.input_key]))
            self._fire("on_phase_start", results)
            self._fire("on_batch_start", results, ctx, epoch_idx=0, batch_idx=0)
            yield ctx
            if results is not None:
                if ctx.losses:
                    results.metrics().log(FIT_LOSS, sum(_loss_value(v) for v in ctx.losses.values()), 0)
                results.add_execution_context(ctx.detach_tensors())
            self._fire("on_batch_end", results, ctx, epoch_idx=0, batch_idx=0)
            self._fire("on_phase_end", results)
            metrics = {FIT_LOSS: sum(_loss_value(v) for v in ctx.losses.values())} if ctx.losses else {}
            n = len(next(iter(rows.values())))
            self.last_summary = PhaseSummary(
                self.label, "fit", time.perf_counter() - started, final_metrics=metrics, n_samples=n
            )

    def new_results(self) -> FitResults:
        """An empty FitResults for this phase."""
        return FitResults(self.label)

    def execute(
        self, *, graph: ModelGraph | None = None, results: FitResults | None = None, **kwargs: Any
    ) -> FitResults:
        """Fit the active nodes (``ModelGraph.fit_step``) and return the results."""
        graph = self.resolve_model_graph(graph)
        results = self.new_results() if results is None else results
        self._drive(
            self.iter_execution(results=results),
            lambda ctx: graph.fit_step(
                ctx, self.losses, active_nodes=self.active_nodes, freeze_after_fit=self.freeze_after_fit
            ),
        )
        return results

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this phase (callbacks are not included)."""
        return {**self._base_config(), "freeze_after_fit": self.freeze_after_fit}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FitPhase:
        """Rebuild a fit phase from :meth:`get_config` output."""
        return cls(config["label"], **cls._base_kwargs(config), freeze_after_fit=config.get("freeze_after_fit", True))
