"""How a :class:`~modularml.graph.ModelGraph` builds and trains, as the mixin :class:`GraphTraining`.

It holds the global optimizer and its backend checks, the build (shapes inferred from the
FeatureSets, then the optimizers), the forward pass, and the steps: the cached step plan
(:class:`_StepPlan`), stage-wise and graph-wise training, evaluation and batch fitting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.backends.backend import Backend, get_backend
from modularml.batches import Batch, BatchView, ExecutionContext
from modularml.data.references import FeatureSetReference
from modularml.errors import BackendMismatchError, GraphTopologyError, InvalidArgumentError
from modularml.losses.applied_loss import AppliedLoss
from modularml.nodes.graph_node import ComputeNode, GraphNode
from modularml.nodes.model_node import ModelNode
from modularml.optimizers import Optimizer

if TYPE_CHECKING:
    from modularml.context import ExperimentContext
    from modularml.nodes.references import ExperimentNodeReference

__all__ = ["GraphTraining"]

logger = logging.getLogger("modularml.graph")


@dataclass(frozen=True)
class _StepPlan:
    """A training step's decisions (see :meth:`ModelGraph._step_plan`).

    Attributes:
        key: The losses and active nodes it was made for.
        model_nodes: Built model nodes of the step (their training mode is set every step).
        frozen: Their freeze flags when the plan was made.
        steps: Per node in execution order: the node, the losses on it, whether it trains itself
            (stage-wise: its own optimizer) or is forwarded without gradients.
        losses: Every loss of the step on an executed node.
    """

    key: tuple[Any, ...]
    model_nodes: tuple[ModelNode, ...]
    frozen: tuple[bool, ...]
    steps: tuple[tuple[GraphNode, tuple[AppliedLoss, ...], bool], ...]
    losses: tuple[AppliedLoss, ...]


class GraphTraining:
    """Building, the forward pass and the train / eval / fit steps of a :class:`~modularml.graph.ModelGraph`.

    A mixin of it: the graph's constructor sets the attributes below, and
    :class:`~modularml.graph.topology.GraphTopology` provides the node lookup and the orders.
    """

    _ctx: ExperimentContext
    label: str
    _nodes: dict[str, GraphNode]
    _optimizer: Optimizer | None
    _contributing: tuple[str, ...]
    _built: bool
    _plan: _StepPlan | None

    if TYPE_CHECKING:

        @property
        def topological_order(self) -> list[GraphNode]: ...
        @property
        def frozen_nodes(self) -> dict[str, GraphNode]: ...
        def _graph_id(self, ref: ExperimentNodeReference) -> str | None: ...
        def _model_nodes(self, nodes: list[str | GraphNode] | None) -> list[ModelNode]: ...
        def execution_order(self, active_nodes: list[str | GraphNode] | None) -> list[GraphNode]: ...

    # ------------------------------------------------------------------ backends and optimizer
    def _check_optimizer_backends(self) -> None:
        if self._optimizer is None:
            return
        backends = {str(n.backend) for n in self._model_nodes(None) if n.is_trainable}
        if self._optimizer.backend is not None:
            backends.add(str(self._optimizer.backend))
        if len(backends) > 1:
            raise BackendMismatchError(
                f"ModelGraph {self.label!r} has a global optimizer, but its trainable nodes use backends "
                f"{sorted(backends)}. A global optimizer steps one backend; remove it and give each node its own "
                "optimizer (stage-wise training) to train a mixed-backend graph."
            )

    @property
    def backend(self) -> Backend | None:
        """The backend of the global optimizer, if one is used; None otherwise (e.g. mixed backends)."""
        if self._optimizer is None:
            return None
        if self._optimizer.backend is not None:
            return self._optimizer.backend
        backends = {n.backend for n in self._model_nodes(None)}
        return next(iter(backends)) if len(backends) == 1 else None

    @property
    def optimizer(self) -> Optimizer | None:
        """The global optimizer, if any."""
        return self._optimizer

    def _trainable_unfrozen(self) -> list[ModelNode]:
        return [n for n in self.topological_order if isinstance(n, ModelNode) and n.is_trainable and not n.is_frozen]

    def _build_global_optimizer(self, *, force: bool = False) -> None:
        if self._optimizer is None:
            return
        nodes = [n for n in self._trainable_unfrozen() if n.is_built]
        contributing = tuple(n.node_id for n in nodes)
        if self._optimizer.is_built and contributing == self._contributing and not force:
            return
        params = [p for n in nodes for p in n.parameters()]
        if not params:
            return
        backend = self.backend
        self._optimizer.build(parameters=params, backend=backend, force_rebuild=True)
        self._contributing = contributing

    def get_optimizer_parameters(self) -> dict[str, Any]:
        """State of the global optimizer: ``backend``, ``contributing_nodes`` and its parameters.

        The parameters are under the key the backend names (its ``optimizer_parameters_key``):
        ``"parameters"`` by default (PyTorch), ``"variables"`` for TensorFlow. Returns an empty
        dict when there is no global optimizer.
        """
        if self._optimizer is None:
            return {}
        self._build_global_optimizer()
        backend = self.backend
        key = "parameters" if backend is None else getattr(get_backend(backend), "optimizer_parameters_key", None)
        return {
            "backend": backend,
            "contributing_nodes": set(self._contributing),
            key or "parameters": list(self._optimizer.parameters or []),
        }

    # ------------------------------------------------------------------ building
    @property
    def is_built(self) -> bool:
        """True once :meth:`build` has run successfully."""
        return self._built

    def _featureset_shape(self, ref: FeatureSetReference) -> tuple[int, ...]:
        fs = ref.resolve_featureset(self._ctx)
        if ref.columns and not ref.features:  # an empty reference means every column
            raise GraphTopologyError(f"The reference to FeatureSet {ref.node_label!r} names no feature columns.")
        view = BatchView(fs, np.array([0], dtype=np.int64), columns=ref.columns or None)
        batch = view.materialize_batch("numpy", columns=list(ref.columns) or None)
        return tuple(int(d) for d in np.shape(batch.features)[1:])

    def build(self, *, force: bool = False) -> None:
        """Build every node with shapes inferred from the FeatureSets, then the optimizers.

        A node whose upstream output shape is not known yet (an estimator that learns it in a
        :class:`FitPhase`) is left for later: the graph stays unbuilt, and the next build (every
        step tries) completes it once the shape is known.

        Args:
            force (bool): Rebuild even if already built. Defaults to False.
        """
        if self._built and not force:
            return
        shapes: dict[str, tuple[int, ...] | None] = {}
        pending: list[str] = []
        for node in self.topological_order:
            in_shapes = []
            for ref in node.upstream_refs:
                if isinstance(ref, FeatureSetReference):
                    in_shapes.append(self._featureset_shape(ref))
                else:
                    in_shapes.append(shapes[self._graph_id(ref)])
            if not isinstance(node, ComputeNode):
                shapes[node.node_id] = None
                continue
            try:
                shapes[node.node_id] = node.build(in_shapes, force=force)
            except InvalidArgumentError:
                if all(shape is not None for shape in in_shapes):
                    raise
                # An upstream output shape is not known yet (e.g. an estimator before its FitPhase):
                # this node is built later, by the next build (each step tries) or from its first batch.
                shapes[node.node_id] = None
                pending.append(node.label)
        self._build_optimizers(force=force)
        self._built = not pending
        if pending:
            logger.debug("ModelGraph %r: nodes %s wait for their upstream output shapes.", self.label, pending)

    def _build_optimizers(self, *, force: bool = False) -> None:
        if self._optimizer is not None:
            self._build_global_optimizer(force=force)
        else:
            for node in self._model_nodes(None):
                node.build_optimizer(force=force)

    # ------------------------------------------------------------------ execution
    def _no_grad_all(self, stack: contextlib.ExitStack, nodes: list[GraphNode]) -> None:
        backends = {getattr(n, "output_backend", None) for n in nodes} - {None}
        for backend in sorted(backends):
            stack.enter_context(get_backend(backend).no_grad())

    @staticmethod
    def _losses_for(losses: list[AppliedLoss] | None, nodes: list[GraphNode]) -> list[AppliedLoss]:
        keys = {n.node_id for n in nodes} | {n.label for n in nodes}
        return [loss for loss in losses or [] if loss.node_id in keys]

    def forward(
        self, inputs: Mapping[tuple[str, Any], Batch | BatchView], *, active_nodes: list[str | GraphNode] | None = None
    ) -> dict[str, Batch]:
        """Execute a forward pass; return the output batch of every executed node, keyed by node_id.

        Args:
            inputs: ``(head_node_id, FeatureSetReference) -> Batch`` (or BatchView).
            active_nodes: Subset of nodes to run; their upstream dependencies are included.
        """
        ctx = ExecutionContext("forward", inputs=dict(inputs))
        for node in self.execution_order(active_nodes):
            node.forward_from_context(ctx)  # type: ignore[attr-defined]
        return dict(ctx.outputs)

    @staticmethod
    def _set_training_modes(order: list[GraphNode], *, training: bool) -> None:
        """Training mode for unfrozen model nodes when ``training``; inference mode otherwise."""
        for node in order:
            if isinstance(node, ModelNode) and node.model.is_built:
                node.model.set_training(training and not node.is_frozen)

    def set_inference_modes(self, active_nodes: list[str | GraphNode] | None = None) -> None:
        """Build the graph if needed and put the models of ``active_nodes`` (and upstream) in inference mode."""
        self.ensure_built()
        self._set_training_modes(self.execution_order(active_nodes), training=False)

    def ensure_built(self) -> None:
        """Build the graph (with the shapes its FeatureSets give) unless it is built already."""
        if not self._built:
            self.build()

    def train_step(
        self, ctx: ExecutionContext, losses: list[AppliedLoss], *, active_nodes: list[str | GraphNode] | None = None
    ) -> None:
        """Execute one training step (stage-wise without a global optimizer, graph-wise with one).

        Outputs and loss values are recorded in ``ctx``. Frozen nodes are forwarded, never updated.
        """
        self.ensure_built()
        plan = self._step_plan(losses, active_nodes)
        for node in plan.model_nodes:
            node.model.set_training(not node.is_frozen)
        if self._optimizer is not None:
            self._train_graphwise(ctx, plan)
        else:
            self._train_stagewise(ctx, plan)

    def _step_plan(self, losses: list[AppliedLoss], active_nodes: list[str | GraphNode] | None) -> _StepPlan:
        """What a training step with ``losses`` on ``active_nodes`` runs, decided once and reused.

        The plan is kept while the graph, the losses, the active nodes and every node's freeze flag
        stay the same (an edit of the graph drops it), so a training loop decides the order, the
        losses of each node and which nodes train only at its first step.
        """
        key = (tuple(losses), None if active_nodes is None else tuple(active_nodes))
        plan = self._plan
        if plan is not None and plan.key == key and plan.frozen == tuple([n.is_frozen for n in plan.model_nodes]):
            return plan
        order = self.execution_order(active_nodes)
        applied = self._losses_for(losses, order)
        model_nodes = tuple(n for n in order if isinstance(n, ModelNode) and n.model.is_built)
        steps = []
        for node in order:
            own = tuple(self._losses_for(applied, [node]))
            trains = (
                self._optimizer is None
                and isinstance(node, ModelNode)
                and node.optimizer is not None
                and node.is_trainable
                and not node.is_frozen
                and bool(own)
            )
            steps.append((node, own, trains))
        if self._optimizer is not None:
            self._build_global_optimizer()
            if not self._optimizer.is_built:
                raise InvalidArgumentError(f"ModelGraph {self.label!r}: no unfrozen trainable node to optimize.")
            if not applied:
                raise InvalidArgumentError(
                    f"ModelGraph {self.label!r}: train_step needs at least one loss on its nodes."
                )
        elif not any(trains for _, _, trains in steps) and not self.frozen_nodes:
            fitted = [
                n for n, own, _ in steps if own and isinstance(n, ModelNode) and not n.is_trainable and n.is_fittable
            ]
            if fitted:
                raise InvalidArgumentError(
                    f"ModelGraph {self.label!r}: node(s) {[n.label for n in fitted]} wrap models that are fitted "
                    f"(backend {str(fitted[0].backend)!r}), not trained by gradient steps, so a TrainPhase cannot "
                    "train them. Fit them in a FitPhase instead: "
                    "FitPhase.from_split('fit', split='train'); run it before a TrainPhase of the other nodes (it "
                    "freezes what it fitted)."
                )
            raise InvalidArgumentError(
                f"ModelGraph {self.label!r}: no node trained in this step. Give the nodes that carry losses an "
                "optimizer, or give the graph a global optimizer."
            )
        plan = _StepPlan(key, model_nodes, tuple(n.is_frozen for n in model_nodes), tuple(steps), tuple(applied))
        if self._built:  # a node still waiting for its build is built during the step: decide again next time
            self._plan = plan
        return plan

    def _train_graphwise(self, ctx: ExecutionContext, plan: _StepPlan) -> None:
        impl = get_backend(self.backend)
        compile_step = getattr(impl, "compile_train_step", None)
        if callable(compile_step) and self._train_graphwise_compiled(ctx, plan, compile_step):
            return
        with impl.gradient_scope() as scope:
            for node, _, _ in plan.steps:
                node.forward_from_context(ctx)  # type: ignore[attr-defined]
            total = None
            for loss in plan.losses:
                value = loss.compute(ctx)
                ctx.add_loss(loss.label, value)
                total = value if total is None else total + value
        impl.apply_gradients(total, self._optimizer.instance, self._optimizer.parameters, scope)

    def _train_graphwise_compiled(self, ctx: ExecutionContext, plan: _StepPlan, compile_step: Any) -> bool:
        """A graph-wise step as one compiled function, for a backend with ``compile_train_step``.

        For plans of model nodes of the optimizer's backend only, each reading a FeatureSet or
        another node of the plan (chains and trees; no merge nodes), plain inputs
        (:meth:`ModelNode.plain_native_input`) and losses on the nodes' outputs and targets. The
        compiled function takes the input tensors and returns the total loss, every loss value and
        every node's outputs; the output batches are then rebuilt around them, tags and sample UUIDs
        passed through as the eager path passes them. Anything else runs the eager step.

        Returns:
            bool: Whether the step ran.
        """
        backend = str(self.backend)
        nodes = [node for node, _, _ in plan.steps]
        if not nodes or any(not isinstance(n, ModelNode) or n.output_backend != backend for n in nodes):
            return False
        if any(loss.reads_columns or not loss.computes_in(backend) for loss in plan.losses):
            return False
        sources: list[str | None] = []  # per node: the id of the upstream node in the plan, or None (a FeatureSet)
        ids = {n.node_id for n in nodes}
        heads: dict[str, Batch] = {}
        for node in nodes:
            (ref,) = node.upstream_refs
            if isinstance(ref, FeatureSetReference):
                batch = node.plain_native_input(ctx)
                if batch is None:
                    return False
                heads[node.node_id] = batch
                sources.append(None)
            else:
                upstream = self._graph_id(ref)
                if upstream not in ids:
                    return False
                sources.append(upstream)
        tensors: list[Any] = []
        layout: list[tuple[int, tuple[str, ...], tuple[bool, ...]]] = []
        for batch in heads.values():
            flat, has_targets = ModelNode.plain_tensors(batch)
            tensors.extend(flat)
            layout.append((batch.batch_size, tuple(batch.roles), has_targets))
        losses = plan.losses
        key = (
            "graph",
            id(self),
            plan.key,
            tuple(n.node_id for n in nodes),
            tuple(layout),
            tuple(getattr(n.model, "training", None) for n in nodes),
        )

        def step(*flat: Any) -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
            values = iter(flat)
            inputs = dict(zip(heads, (ModelNode.plain_batch(n, r, t, values) for n, r, t in layout), strict=True))
            scratch = ExecutionContext.trusted("train", 0, 0, {})
            produced = []
            for node, source in zip(nodes, sources, strict=True):
                batch = inputs[node.node_id] if source is None else scratch.outputs[source]
                outputs = {role: node.model.forward(batch.role_data[role].features) for role in batch.roles}
                scratch.set_output(node.node_id, node.output_batch(batch, outputs))
                produced.extend(outputs[role] for role in batch.roles)
            loss_values = tuple(loss.compute(scratch) for loss in losses)
            total = loss_values[0]
            for value in loss_values[1:]:
                total = total + value
            return total, loss_values, tuple(produced)

        run = compile_step(key, step, self._optimizer.instance, self._optimizer.parameters)
        _, loss_values, produced = run(*tensors)
        outputs_in_order = iter(produced)
        for node, source in zip(nodes, sources, strict=True):
            batch = heads[node.node_id] if source is None else ctx.outputs[source]
            outputs = {role: next(outputs_in_order) for role in batch.roles}
            ctx.set_output(node.node_id, node.output_batch(batch, outputs))
        for loss, value in zip(losses, loss_values, strict=True):
            ctx.add_loss(loss.label, value)
        return True

    def _train_stagewise(self, ctx: ExecutionContext, plan: _StepPlan) -> None:
        for node, own, trains in plan.steps:
            if trains:
                node.train_step(ctx, list(own))  # type: ignore[attr-defined]
                continue
            with contextlib.ExitStack() as stack:
                self._no_grad_all(stack, [node])
                node.forward_from_context(ctx, detach=True)  # type: ignore[attr-defined]
                for loss in own:
                    ctx.add_loss(loss.label, loss.compute(ctx))

    def eval_step(
        self,
        ctx: ExecutionContext,
        losses: list[AppliedLoss] | None = None,
        *,
        active_nodes: list[str | GraphNode] | None = None,
        set_modes: bool = True,
    ) -> None:
        """Forward-only pass under no-grad, models in inference mode; outputs and losses are recorded in ``ctx``.

        Args:
            ctx: The step's context.
            losses: Losses to compute on the outputs.
            active_nodes: Subset of nodes to run; their upstream dependencies are included.
            set_modes: Put the models in inference mode first. A phase that did so once for all its
                steps (:meth:`set_inference_modes`) passes False.
        """
        self.ensure_built()
        order = self.execution_order(active_nodes)
        if set_modes:
            self._set_training_modes(order, training=False)
        with contextlib.ExitStack() as stack:
            self._no_grad_all(stack, order)
            for node in order:
                node.forward_from_context(ctx)  # type: ignore[attr-defined]
            for loss in self._losses_for(losses, order):
                ctx.add_loss(loss.label, loss.compute(ctx))

    def fit_step(
        self,
        ctx: ExecutionContext,
        losses: list[AppliedLoss] | None = None,
        *,
        active_nodes: list[str | GraphNode] | None = None,
        freeze_after_fit: bool = True,
    ) -> None:
        """Fit batch-fit nodes (unfrozen ModelNodes with a ``fit`` model) in topological order; forward the rest."""
        order = self.execution_order(active_nodes)
        self._set_training_modes(order, training=False)
        fitted: list[ModelNode] = []
        for node in order:
            if isinstance(node, ModelNode) and node.is_fittable and not node.is_frozen:
                node.fit_step(ctx)
                fitted.append(node)
                continue
            with contextlib.ExitStack() as stack:
                self._no_grad_all(stack, [node])
                node.forward_from_context(ctx, detach=True)  # type: ignore[attr-defined]
        with contextlib.ExitStack() as stack:
            self._no_grad_all(stack, order)
            for loss in self._losses_for(losses, order):
                ctx.add_loss(loss.label, loss.compute(ctx))
        if freeze_after_fit:
            for node in fitted:
                node.freeze()
