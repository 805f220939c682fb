"""``ExperimentPhase``: what every phase shares (label, bindings, losses, active nodes, callbacks)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from modularml.backends.devices import Accelerator, as_accelerator
from modularml.context import ExperimentContext
from modularml.data.references import FeatureSetReference
from modularml.data.splitting import missing_split_message
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml.losses.applied_loss import AppliedLoss
from modularml.phases.callback import Callback, CallbackResult
from modularml.phases.input_binding import InputBinding, resolve_graph_node
from modularml.phases.progress import PhaseSummary, progress_bar

if TYPE_CHECKING:
    from modularml.batches import ExecutionContext
    from modularml.graph import ModelGraph
    from modularml.nodes import GraphNode
    from modularml.results.phase_results import PhaseResults

__all__ = ["ExperimentPhase", "progress_bar"]

logger = logging.getLogger("modularml.phases")


def _loss_value(value: Any) -> float:
    """A recorded loss as a Python float (a one-element tensor directly; anything else summed)."""
    item = getattr(value, "item", None)  # one-element torch tensors, numpy scalars: no copy, no backend lookup
    if item is not None:
        try:
            return float(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    from modularml.batches.tensors import to_numpy

    return float(to_numpy(value).astype("float64").sum())


class ExperimentPhase:
    """Base of TrainPhase, EvalPhase and FitPhase.

    Args:
        label (str): Label of the phase.
        input_sources (list[InputBinding]): One binding per head-node input.
        losses (list[AppliedLoss] | None): Losses computed in the phase.
        active_nodes (list[str | GraphNode] | None): Nodes to run (with their upstream nodes);
            every node of the model graph when None.
        callbacks (list[Callback] | None): Callbacks run during the phase.
        accelerator (Accelerator | str | None): Where the phase's model nodes run (``"cuda:0"``
            or an :class:`~modularml.Accelerator`); a node's own accelerator wins. None: each
            model stays where it is.

    Raises:
        TypeError: For arguments of the wrong type.
        ValueError: For an empty label, no bindings, or two bindings of one head-node input.
        DeviceError: If ``accelerator`` is a malformed device string.
    """

    #: Short name of the phase kind, used in configs.
    phase_kind: str = "phase"
    #: The summary of this phase's last run (epochs, why it stopped, final metrics), None before one.
    last_summary: PhaseSummary | None = None

    def __init__(
        self,
        label: str,
        *,
        input_sources: Sequence[InputBinding],
        losses: Sequence[AppliedLoss] | None = None,
        active_nodes: Sequence[str | GraphNode] | None = None,
        callbacks: Sequence[Callback] | None = None,
        accelerator: Accelerator | str | None = None,
    ) -> None:
        if not isinstance(label, str) or not label:
            raise InvalidTypeError(f"A phase label is a non-empty string; got {label!r}.")
        self.label = label
        if isinstance(input_sources, InputBinding) or not isinstance(input_sources, Sequence):
            raise InvalidTypeError(f"input_sources is a list of InputBindings; got {input_sources!r:.100}.")
        bindings = list(input_sources)
        if not bindings:
            raise InvalidArgumentError(f"Phase {label!r} needs at least one InputBinding in input_sources.")
        seen: set[tuple[str, FeatureSetReference]] = set()
        for binding in bindings:
            if not isinstance(binding, InputBinding):
                raise InvalidTypeError(f"input_sources holds InputBindings; got {type(binding).__name__}.")
            if binding.input_key in seen:
                raise InvalidArgumentError(
                    f"Phase {label!r} binds input {binding.upstream_ref.node_label!r} of node {binding.node_id!r} "
                    "twice; give one InputBinding per head-node input."
                )
            seen.add(binding.input_key)
        self.input_sources: list[InputBinding] = bindings
        if losses is not None and (isinstance(losses, AppliedLoss) or not isinstance(losses, Sequence)):
            raise InvalidTypeError(f"losses is a list of AppliedLoss; got {losses!r:.100}.")
        self.losses: list[AppliedLoss] = list(losses or [])
        for loss in self.losses:
            if not isinstance(loss, AppliedLoss):
                raise InvalidTypeError(f"losses holds AppliedLoss objects; got {type(loss).__name__}.")
        labels = [loss.label for loss in self.losses]
        if len(set(labels)) != len(labels):
            raise InvalidArgumentError(f"Phase {label!r}: loss labels must be unique; got {labels}.")
        self.active_nodes: list[str] | None = None
        if active_nodes is not None:
            if isinstance(active_nodes, str) or not isinstance(active_nodes, Sequence):
                raise InvalidTypeError(f"active_nodes is a list of nodes, labels or ids; got {active_nodes!r:.100}.")
            self.active_nodes = [resolve_graph_node(n).node_id for n in active_nodes]
        self.accelerator: Accelerator | None = as_accelerator(accelerator)
        self._callbacks: list[Callback] = []
        for callback in callbacks or []:
            self.add_callback(callback)

    # ------------------------------------------------------------------ callbacks
    @property
    def callbacks(self) -> list[Callback]:
        """Callbacks in execution order."""
        return sorted(self._callbacks, key=lambda c: c.execution_order)

    def add_callback(self, callback: Callback) -> None:
        """Add a callback to this phase.

        Raises:
            TypeError: If ``callback`` is not a Callback.
            ValueError: If another callback of the same type and label exists.
        """
        if not isinstance(callback, Callback):
            raise InvalidTypeError(f"add_callback() takes a Callback; got {type(callback).__name__}.")
        for other in self._callbacks:
            if type(other) is type(callback) and other.label == callback.label:
                raise InvalidArgumentError(
                    f"Phase {self.label!r} already has a {type(callback).__name__} labelled {callback.label!r}; "
                    "give the new callback another label."
                )
        self._callbacks.append(callback)

    @staticmethod
    def _experiment() -> Any:
        """The Experiment of the active context, or None (callbacks receive it as ``experiment``)."""
        return ExperimentContext.get_active().get_experiment()

    def _fire(
        self,
        hook: str,
        results: PhaseResults | None,
        exec_ctx: ExecutionContext | None = None,
        *,
        epoch_idx: int | None = None,
        batch_idx: int | None = None,
    ) -> None:
        """Run ``hook`` of every callback (keyword arguments) and record what they return."""
        if not self._callbacks:
            return
        callbacks = self.callbacks
        kwargs: dict[str, Any] = {"experiment": self._experiment(), "phase": self, "results": results}
        if exec_ctx is not None:
            kwargs["exec_ctx"] = exec_ctx
        for callback in callbacks:
            value = getattr(callback, hook)(**kwargs)
            if value is None or results is None:
                continue
            if not isinstance(value, CallbackResult):
                value = CallbackResult(callback.kind, callback.label, epoch_idx, batch_idx, value)
            results.add_callback_result(value)

    @contextmanager
    def _guard(self, results: PhaseResults | None) -> Iterator[None]:
        """Run ``on_exception`` callbacks when the phase fails, then re-raise."""
        try:
            yield
        except GeneratorExit:
            raise
        except BaseException as exc:
            for callback in self.callbacks:
                try:
                    callback.on_exception(experiment=self._experiment(), phase=self, exception=exc, results=results)
                except Exception:  # a failing handler must not hide the original error
                    logger.exception("on_exception of %r failed", callback)
            raise

    # ------------------------------------------------------------------ graph checks
    @staticmethod
    def resolve_model_graph(graph: ModelGraph | None = None) -> ModelGraph:
        if graph is not None:
            return graph
        found = ExperimentContext.get_active().model_graph
        if found is None:
            raise NotRegisteredError(
                "No ModelGraph is registered in the active ExperimentContext; build a ModelGraph before running "
                "a phase."
            )
        return found

    def _execution_nodes(self, graph: ModelGraph) -> list[GraphNode]:
        return graph.execution_order(self.active_nodes)

    def _check_against_graph(self, graph: ModelGraph) -> None:
        """Check that bindings feed head nodes of ``graph``, every active head input is bound, losses are known.

        Raises:
            ValueError: If a binding's node is not a head node of the graph, or an input is unbound.
            KeyError: If a loss is on a node the graph does not have.
        """
        order = self._execution_nodes(graph)
        heads = {n.node_id for n in order if any(isinstance(r, FeatureSetReference) for r in n.upstream_refs)}
        for binding in self.input_sources:
            node = graph.nodes.get(binding.node_id)
            if node is None:
                raise NotRegisteredError(
                    f"Phase {self.label!r} binds node {binding.node_id!r}, which is not in ModelGraph "
                    f"{graph.label!r} (nodes: {sorted(graph.node_labels)})."
                )
            if binding.upstream_ref not in node.upstream_refs:
                raise InvalidArgumentError(
                    f"Phase {self.label!r}: node {node.label!r} has no input {binding.upstream_ref}; it is not a head "
                    "node fed by that FeatureSet."
                )
        bound = {b.input_key for b in self.input_sources}
        for node in order:
            if node.node_id not in heads:
                continue
            for ref in node.upstream_refs:
                if isinstance(ref, FeatureSetReference) and (node.node_id, ref) not in bound:
                    raise InvalidArgumentError(
                        f"Phase {self.label!r}: head node {node.label!r} input {ref.node_label!r} has no InputBinding. "
                        "Bind every input of the active head nodes, or restrict active_nodes."
                    )
        for loss in self.losses:
            graph.resolve_node(loss.node_id)

    def _place_nodes(self, graph: ModelGraph) -> None:
        """Put the models this phase runs on their devices (a node's accelerator, else the phase's).

        Raises:
            DeviceError: If a device is not available to a node's backend.
        """
        graph.place_nodes(self._execution_nodes(graph), self.accelerator)

    def _loss_nodes(self, graph: ModelGraph) -> dict[str, str]:
        return {loss.label: graph.resolve_node(loss.node_id).node_id for loss in self.losses}

    @classmethod
    def _bindings_for_split(
        cls,
        split: str,
        active_nodes: Sequence[str | GraphNode] | None,
        sampler: Any = None,
    ) -> list[InputBinding]:
        """One binding per FeatureSet input of every active head node of the active context's graph."""
        graph = cls.resolve_model_graph()
        wanted = None if active_nodes is None else [resolve_graph_node(n).node_id for n in active_nodes]
        bindings = []
        for node in graph.execution_order(wanted):
            for ref in node.upstream_refs:
                if not isinstance(ref, FeatureSetReference):
                    continue
                fs = ref.resolve_featureset()
                if split not in fs.available_splits:
                    raise NotRegisteredError(
                        f"Head node {node.label!r} reads {missing_split_message(fs.label, split, fs.available_splits)}"
                    )
                bindings.append(InputBinding(node.node_id, ref, split=split, sampler=sampler))
        if not bindings:
            raise InvalidArgumentError(f"ModelGraph {graph.label!r} has no head node to bind split {split!r} to.")
        return bindings

    # ------------------------------------------------------------------ config
    def _base_config(self) -> dict[str, Any]:
        return {
            "phase_kind": self.phase_kind,
            "label": self.label,
            "input_sources": [b.get_config() for b in self.input_sources],
            "losses": [loss.get_config() for loss in self.losses],
            "active_nodes": self.active_nodes,
            "accelerator": None if self.accelerator is None else self.accelerator.get_config(),
        }

    @staticmethod
    def _base_kwargs(config: dict[str, Any]) -> dict[str, Any]:
        return {
            "input_sources": [InputBinding.from_config(c) for c in config["input_sources"]],
            "losses": [AppliedLoss.from_config(c) for c in config.get("losses") or []],
            "active_nodes": config.get("active_nodes"),
            "accelerator": as_accelerator(config.get("accelerator")),
        }

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this phase (callbacks are not included)."""
        return self._base_config()

    # ------------------------------------------------------------------ execution
    def iter_execution(self, *, results: PhaseResults | None = None, **kwargs: Any) -> Iterator[ExecutionContext]:
        """The execution contexts of this phase; see the subclasses."""
        raise NotImplementedError

    def new_results(self) -> PhaseResults:
        """An empty results container of the right kind for this phase."""
        raise NotImplementedError

    @staticmethod
    def _drive(contexts: Iterator[ExecutionContext], step: Any) -> None:
        """Run ``step(ctx)`` on every context; a failing step is thrown into the generator (for on_exception)."""
        for ctx in contexts:
            try:
                step(ctx)
            except Exception as exc:
                contexts.throw(exc)  # type: ignore[attr-defined]
                raise

    def execute(self, *, graph: ModelGraph | None = None, **kwargs: Any) -> PhaseResults:
        """Run this phase on ``graph`` (the active context's by default) and return its results.

        Keyword arguments are the display flags of :meth:`iter_execution`.
        """
        raise NotImplementedError

    def _repr_html_(self) -> str:
        """A notebook's view: the bindings, the losses, and the summary of the last run."""
        from modularml.utils.display import html_section, html_table

        bindings = [
            (b.upstream_ref.node_label, b.split or "all rows", type(b.sampler).__name__ if b.sampler else "")
            for b in self.input_sources
        ]
        parts = [html_table(["FeatureSet", "split", "sampler"], bindings)]
        if self.losses:
            parts.append(html_table(["loss", "weight"], [(loss.label, loss.weight) for loss in self.losses]))
        if self.last_summary is not None:
            parts.append(html_table(["last run"], [(line,) for line in self.last_summary.lines()]))
        return html_section(f"{type(self).__name__} {self.label!r}", *parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r}, bindings={len(self.input_sources)})"
