"""``PhaseResults``: what a phase recorded (execution contexts, callback results, metrics) and its queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modularml.batches import Batch, ExecutionContext
from modularml.batches.tensors import concat_values, convert_value, resolve_format, to_numpy
from modularml.context.fold import active_fold
from modularml.data.formats import PANDAS_FORMATS
from modularml.data.schema import parse_column_name
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml.results.axis_series import AxisSeries
from modularml.results.callback_result import CallbackResult
from modularml.results.metric_store import MetricStore
from modularml.results.nodes import _graph_node, upstream_featureset_refs

if TYPE_CHECKING:
    from modularml.data import FeatureSet, FeatureSetView
    from modularml.nodes import GraphNode

__all__ = ["PhaseResults"]

Domain = Literal["outputs", "targets", "tags", "sample_uuids"]
_DOMAINS = ("outputs", "targets", "tags", "sample_uuids")


@dataclass
class PhaseResults:
    """Results of one phase: its execution contexts (by epoch and batch), callback results and metrics.

    Attributes:
        label (str): Label of the phase.
        fold (str | None): The cross-validation fold the phase ran in (the active
            :func:`~modularml.context.fold_scope` when the results were made); None outside one.
    """

    label: str
    _execution: list[ExecutionContext] = field(default_factory=list)
    _callbacks: list[CallbackResult] = field(default_factory=list)
    _metrics: MetricStore = field(default_factory=MetricStore)
    _loss_nodes: dict[str, str] = field(default_factory=dict)
    fold: str | None = field(default_factory=active_fold)

    # ------------------------------------------------------------------ recording
    def add_execution_context(self, ctx: ExecutionContext) -> None:
        """Record one executed step.

        Raises:
            TypeError: If ``ctx`` is not an ExecutionContext.
        """
        if not isinstance(ctx, ExecutionContext):
            raise InvalidTypeError(f"Expected an ExecutionContext; got {type(ctx).__name__}.")
        self._execution.append(ctx)

    def add_callback_result(self, result: CallbackResult) -> None:
        """Record what a callback returned."""
        if not isinstance(result, CallbackResult):
            raise InvalidTypeError(f"Expected a CallbackResult; got {type(result).__name__}.")
        self._callbacks.append(result)

    def record_loss_nodes(self, loss_nodes: Mapping[str, str]) -> None:
        """Record which graph node each loss label belongs to (label -> node_id), for per-node queries."""
        self._loss_nodes.update(loss_nodes)

    def retain_epochs(self, epochs: set[int]) -> None:
        """Drop the recorded contexts of every epoch not in ``epochs``, also inside callback results.

        Callback results whose value is a PhaseResults (evaluations run during training) lose
        their contexts when their epoch is not kept; their metrics stay.
        """
        self._execution = [c for c in self._execution if c.epoch_idx in epochs]
        for result in self._callbacks:
            if isinstance(result.value, PhaseResults) and result.epoch_idx not in epochs and result.value._execution:
                result.value._execution = []

    # ------------------------------------------------------------------ raw access
    def execution_contexts(self, *, epoch: int | None = None, batch: int | None = None) -> list[ExecutionContext]:
        """Recorded contexts in execution order (of one epoch and/or batch, if given)."""
        return [
            c
            for c in self._execution
            if (epoch is None or c.epoch_idx == epoch) and (batch is None or c.batch_idx == batch)
        ]

    def metrics(self) -> MetricStore:
        """The scalar metrics logged during the phase."""
        return self._metrics

    def plot_metrics(self, names: Sequence[str] | None = None, *, log_scale: bool = False, ax: Any = None) -> Any:
        """Epoch-level values of ``names`` (every metric with epoch-level values by default), one line each.

        Needs matplotlib (``pip install "modularml[plot]"``); returns the figure without showing it.
        See :func:`modularml.results.plots.plot_epoch_metrics`.
        """
        from modularml.results.plots import plot_epoch_metrics

        store = self._metrics
        chosen = list(names) if names is not None else [n for n in store.names if store.epoch_values(n)]
        return plot_epoch_metrics(store, chosen, title=f"metrics of {self.label!r}", log_scale=log_scale, ax=ax)

    def plot_predictions(
        self, node: Any, *, unscale: bool = True, epoch: int | None = None, role: str = "default", ax: Any = None
    ) -> Any:
        """Predicted against true values of ``node`` (unscaled by default), one scatter per target.

        Needs matplotlib (``pip install "modularml[plot]"``); returns the figure without showing it.
        See :func:`modularml.results.plots.plot_predictions`.
        """
        from modularml.results.plots import plot_predictions

        return plot_predictions(self, node, unscale=unscale, epoch=epoch, role=role, ax=ax)

    def metrics_to_pandas(self) -> Any:
        """The phase's metrics as a long-format DataFrame: ``phase``, ``name``, ``epoch``, ``batch``, ``value``.

        A ``fold`` column follows ``phase`` when the phase ran in a cross-validation fold
        (:attr:`fold`). See :meth:`MetricStore.to_pandas`; needs pandas.
        """
        return self._metrics.to_pandas(phase=self.label, fold=self.fold)

    def callbacks(self, kind: str | None = None) -> list[CallbackResult]:
        """Recorded callback results (of ``kind`` only, if given)."""
        return [r for r in self._callbacks if kind is None or r.kind == kind]

    @property
    def epoch_indices(self) -> list[int]:
        """Sorted epoch indices with recorded contexts or metrics."""
        return sorted({c.epoch_idx for c in self._execution} | set(self._metrics.epoch_indices))

    @property
    def batch_indices(self) -> list[int]:
        """Sorted batch indices of the recorded contexts or batch-level metrics."""
        return sorted({c.batch_idx for c in self._execution} | set(self._metrics.batch_indices))

    @property
    def n_epochs(self) -> int:
        """Number of epochs recorded (with contexts or metrics)."""
        return len(self.epoch_indices)

    @property
    def n_batches(self) -> int:
        """Number of distinct batch indices recorded (batches per epoch, for a phase with equal epochs)."""
        return len(self.batch_indices)

    # ------------------------------------------------------------------ queries
    def _contexts_for(
        self, node: Any, epoch: int | None, batch: int | None
    ) -> tuple[GraphNode, list[ExecutionContext]]:
        graph_node = _graph_node(node)
        contexts = self.execution_contexts(epoch=epoch, batch=batch)
        if not self._execution:
            raise InvalidArgumentError(
                f"Results {self.label!r} hold no execution contexts (the phase ran with result_recording='none', "
                "or has not run); only metrics() are available."
            )
        found = [c for c in contexts if graph_node.node_id in c.outputs]
        if not found:
            raise NotRegisteredError(
                f"Node {graph_node.label!r} produced no output in results {self.label!r}"
                + (f" (epoch={epoch}, batch={batch})." if epoch is not None or batch is not None else ".")
            )
        return graph_node, found

    def batches(self, node: Any, *, epoch: int | None = None, batch: int | None = None) -> AxisSeries:
        """The output Batch of ``node`` in every recorded step (of one epoch/batch if given).

        Returns:
            AxisSeries: Axes ``("epoch", "batch")``; iterating it yields the batches in execution order.

        Raises:
            ValueError: If the results hold no execution contexts.
            KeyError: If ``node`` produced no recorded output.
        """
        graph_node, contexts = self._contexts_for(node, epoch, batch)
        return AxisSeries(
            ("epoch", "batch"),
            {(c.epoch_idx, c.batch_idx): c.outputs[graph_node.node_id] for c in contexts},
            name=f"batches of {graph_node.label}",
        )

    def stacked_batches(
        self, node: Any, *, fmt: str | None = None, epoch: int | None = None, batch: int | None = None
    ) -> Batch:
        """All output batches of ``node``, concatenated into one Batch (converted to ``fmt`` if given)."""
        stacked = Batch.concat(self.batches(node, epoch=epoch, batch=batch).values)
        return stacked if fmt is None else stacked.to_format(fmt)

    def tensors(
        self,
        node: Any,
        domain: Domain,
        *,
        role: str = "default",
        fmt: str | None = None,
        unscale: bool = False,
        epoch: int | None = None,
        batch: int | None = None,
    ) -> AxisSeries:
        """The ``domain`` values of ``node`` (one role) in every recorded step, not concatenated.

        Arguments are those of :meth:`stacked_tensors`. ``tensors(...).collapse("batch", "concat")``
        joins the steps of each epoch.

        Returns:
            AxisSeries: Axes ``("epoch", "batch")``, one tensor per step.

        Raises:
            ValueError: For an unknown domain, or ``unscale`` with another domain.
        """
        if domain not in _DOMAINS:
            raise InvalidArgumentError(f"domain is one of {list(_DOMAINS)}; got {domain!r}.")
        if unscale and domain not in ("outputs", "targets"):
            raise InvalidArgumentError(f"unscale=True applies to 'outputs' and 'targets', not {domain!r}.")
        graph_node = _graph_node(node)
        data = {}
        for key, b in self.batches(graph_node, epoch=epoch, batch=batch).items():
            data_role = b.get_role(role)
            value = getattr(data_role, domain)
            if unscale:
                value = self._unscale(graph_node, to_numpy(value), data_role.sample_uuids)
            data[key] = value if fmt is None else convert_value(value, resolve_format(fmt))
        return AxisSeries(("epoch", "batch"), data, name=f"{domain} of {graph_node.label}")

    def stacked_tensors(
        self,
        node: Any,
        domain: Domain,
        *,
        role: str = "default",
        fmt: str | None = None,
        unscale: bool = False,
        epoch: int | None = None,
        batch: int | None = None,
    ) -> Any:
        """The ``domain`` values of ``node`` (one role) concatenated over the recorded steps.

        Args:
            node: The node (instance, id or label).
            domain: ``"outputs"``, ``"targets"``, ``"tags"`` or ``"sample_uuids"``.
            role: Role to read. Defaults to ``"default"``.
            fmt: Format to convert to (``"np"``, ``"torch"``...); as produced when None.
                ``"pandas"`` gives a DataFrame of one row per sample: its step and UUID, the
                values, and for ``"outputs"`` the targets and the sample's tags next to the
                predictions (see :func:`modularml.results.frames.stacked_frame`).
            unscale: Invert the target scalers of the node's upstream FeatureSet (``outputs`` and
                ``targets`` only); the result is a numpy array unless ``fmt`` says otherwise.
            epoch, batch: Restrict to one epoch and/or batch index.

        Raises:
            ValueError: For an unknown domain, or ``unscale`` with another domain or with targets
                that cannot be traced to one FeatureSet.
        """
        if domain not in _DOMAINS:
            raise InvalidArgumentError(f"domain is one of {list(_DOMAINS)}; got {domain!r}.")
        graph_node = _graph_node(node)
        if unscale and domain not in ("outputs", "targets"):
            raise InvalidArgumentError(f"unscale=True applies to 'outputs' and 'targets', not {domain!r}.")
        if isinstance(fmt, str) and fmt.lower() in PANDAS_FORMATS:
            from modularml.results.frames import stacked_frame

            return stacked_frame(
                self,
                graph_node,
                domain,
                sources=upstream_featureset_refs(graph_node),
                role=role,
                unscale=unscale,
                epoch=epoch,
                batch=batch,
            )
        roles = [b.get_role(role) for b in self.batches(graph_node, epoch=epoch, batch=batch)]
        value = concat_values([getattr(r, domain) for r in roles], f"{domain} of node {graph_node.label!r}")
        if unscale:
            uuids = concat_values([r.sample_uuids for r in roles], "sample_uuids")
            value = self._unscale(graph_node, to_numpy(value), uuids)
        return value if fmt is None else convert_value(value, resolve_format(fmt))

    @staticmethod
    def _unscale(node: GraphNode, data: np.ndarray, uuids: Any) -> np.ndarray:
        refs = upstream_featureset_refs(node)
        featuresets = {ref.resolve_featureset().node_id: ref for ref in refs}
        if len(featuresets) != 1:
            raise InvalidArgumentError(
                f"Cannot unscale the data of node {node.label!r}: it reads {len(featuresets)} FeatureSets "
                f"({[r.node_label for r in refs]}); unscale the tensors with FeatureSet.unscale_data_for_cols()."
            )
        ref = refs[0]
        fs: FeatureSet = ref.resolve_featureset()
        if ref.targets:
            keys = [parse_column_name(name)[1] for name in ref.targets]
            reps = {parse_column_name(name)[2] for name in ref.targets}
            if reps == {"raw"}:
                return data
            if "raw" in reps:
                raise InvalidArgumentError(
                    f"Node {node.label!r} reads targets {list(ref.targets)} in mixed representations; cannot unscale."
                )
        else:
            keys = fs.get_target_keys()
        ids = None if uuids is None else to_numpy(uuids)
        return fs.unscale_data_for_cols(data=data, domain="targets", columns=keys, sample_uuids=ids)

    def losses(self, node: Any, *, epoch: int | None = None, batch: int | None = None) -> AxisSeries:
        """Per-step values of every loss on ``node``.

        Returns:
            AxisSeries: Axes ``("loss", "epoch", "batch")`` (loss label, epoch, batch) -> float.
            ``losses(node).where(loss="mse").collapse("batch", "mean")`` gives epoch means.
        """
        graph_node = _graph_node(node)
        labels = [label for label, nid in self._loss_nodes.items() if nid == graph_node.node_id]
        data = {}
        for ctx in self.execution_contexts(epoch=epoch, batch=batch):
            for label in labels:
                if label in ctx.losses:
                    data[(label, ctx.epoch_idx, ctx.batch_idx)] = float(
                        to_numpy(ctx.losses[label]).astype(np.float64).sum()
                    )
        return AxisSeries(("loss", "epoch", "batch"), data, name=f"losses of {graph_node.label}")

    def aggregated_losses(
        self, node: Any, *, reducer: Literal["mean", "sum"] = "mean", epoch: int | None = None
    ) -> dict[str, float]:
        """Losses on ``node`` reduced over the recorded steps: loss label -> value.

        Raises:
            ValueError: For an unknown reducer, or if no loss on ``node`` was recorded.
        """
        if reducer not in ("mean", "sum"):
            raise InvalidArgumentError(f"reducer is 'mean' or 'sum'; got {reducer!r}.")
        steps = self.losses(node, epoch=epoch)
        if not len(steps):
            raise InvalidArgumentError(
                f"Results {self.label!r} hold no recorded loss on node {_graph_node(node).label!r}; losses are "
                f"recorded for nodes {sorted(set(self._loss_nodes.values()))}."
            )
        reduce = np.mean if reducer == "mean" else np.sum
        return {label: float(reduce(steps.where(loss=label).values)) for label in steps.axes_values("loss")}

    def source_views(
        self, node: Any, *, role: str = "default", epoch: int | None = None, batch: int | None = None
    ) -> dict[str, FeatureSetView]:
        """Views of the upstream FeatureSets of ``node`` holding exactly the samples used (masked rows excluded).

        Each view lists a sample once, in the FeatureSet's row order: it is not a 1-to-1 map of
        result rows (use :meth:`stacked_tensors` for that).

        Returns:
            dict[str, FeatureSetView]: FeatureSet label -> view.
        """
        graph_node = _graph_node(node)
        uuid_parts = []
        for b in self.batches(graph_node, epoch=epoch, batch=batch).values:
            mask = to_numpy(b.get_role_mask(role)).astype(bool)
            uuid_parts.append(to_numpy(b.get_role(role).sample_uuids)[mask])
        used = np.unique(np.concatenate(uuid_parts).astype(str)) if uuid_parts else np.array([], dtype=str)
        views: dict[str, FeatureSetView] = {}
        for ref in upstream_featureset_refs(graph_node):
            fs = ref.resolve_featureset()
            if fs.label in views:
                continue
            rows = np.flatnonzero(np.isin(np.asarray(fs.get_sample_uuids()).astype(str), used))
            views[fs.label] = fs.take(rows, label=f"{self.label}_{graph_node.label}")
        return views

    def source_view(
        self, node: Any, *, role: str = "default", epoch: int | None = None, batch: int | None = None
    ) -> FeatureSetView:
        """The single upstream FeatureSet view of :meth:`source_views`.

        Raises:
            ValueError: If ``node`` has several upstream FeatureSets.
        """
        views = self.source_views(node, role=role, epoch=epoch, batch=batch)
        if len(views) != 1:
            raise InvalidArgumentError(
                f"Node {_graph_node(node).label!r} has {len(views)} upstream FeatureSets ({sorted(views)}); "
                "use source_views()."
            )
        return next(iter(views.values()))

    def _repr_html_(self) -> str:
        """A notebook's view: the metrics table (epochs logged, last and lowest value per metric)."""
        from modularml.utils.display import html_section, html_table, metrics_rows

        title = f"{type(self).__name__} {self.label!r}: {self.n_epochs} epoch(s), {len(self._execution)} contexts"
        return html_section(title, html_table(["metric", "epochs", "last", "lowest"], metrics_rows(self._metrics)))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(label={self.label!r}, contexts={len(self._execution)}, "
            f"epochs={self.n_epochs}, metrics={self._metrics.names})"
        )
