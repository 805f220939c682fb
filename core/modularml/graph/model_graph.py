"""``ModelGraph``: the directed acyclic graph of FeatureSets and graph nodes, and how it trains."""

from __future__ import annotations

import contextlib
import copy
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modularml.backends.backend import Backend, get_backend
from modularml.batches import Batch, BatchView, ExecutionContext
from modularml.context import ExperimentContext, RegistrationPolicy
from modularml.data.references import FeatureSetReference
from modularml.errors import (
    BackendMismatchError,
    GraphTopologyError,
    InvalidArgumentError,
    InvalidTypeError,
    NodeCollisionError,
    NotRegisteredError,
    SerializationError,
)
from modularml.losses.applied_loss import AppliedLoss
from modularml.nodes.graph_node import ComputeNode, GraphNode
from modularml.nodes.merge_node import MergeNode
from modularml.nodes.model_node import ModelNode
from modularml.nodes.references import ExperimentNodeReference, UpstreamRef
from modularml.optimizers import Optimizer

__all__ = ["FILE_KIND", "ModelGraph"]

logger = logging.getLogger("modularml.graph")

#: File kinds: a saved graph ``<name>.mg.mml``; a checkpoint ``<name>.ckpt.mml``.
FILE_KIND = "mg"
CHECKPOINT_KIND = "ckpt"


def _ref_of(node: GraphNode) -> ExperimentNodeReference:
    return ExperimentNodeReference(node.label, node.node_id)


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


class ModelGraph:
    """Directed acyclic graph orchestrating :class:`GraphNode` nodes.

    Training is stage-wise (each :class:`ModelNode` with its own optimizer steps on its own
    losses, in topological order, with inputs detached at node boundaries) or graph-wise with a
    global optimizer (all losses of the step summed, one gradient scope, one backward, one step;
    one backend only). Inputs cross backends at node boundaries (detached, through numpy).

    Attributes:
        label (str): User-defined identifier for the graph.
    """

    def __init__(
        self,
        nodes: list[str | GraphNode] | None = None,
        optimizer: Optimizer | None = None,
        label: str = "model-graph",
        *,
        ctx: ExperimentContext | None = None,
        register: bool = True,
    ) -> None:
        """Initialize a ModelGraph from nodes (or all GraphNodes of the context) and an optional global optimizer.

        Raises:
            ValueError: If node labels are duplicated or the connectivity is invalid (a cycle, a
                reference to a node outside the graph or to an unregistered FeatureSet).
            RuntimeError: If the global optimizer cannot cover the nodes (mixed backends).
        """
        self._ctx = ctx or ExperimentContext.get_active()
        self.label = label
        if nodes is None:
            found = [n for n in self._ctx.available_nodes.values() if isinstance(n, GraphNode)]
        else:
            if isinstance(nodes, (str, GraphNode)) or not isinstance(nodes, Sequence):
                raise InvalidTypeError(f"nodes is a list of GraphNodes or their labels; got {nodes!r:.100}.")
            found = [self._lookup(n) for n in nodes]
        self._nodes: dict[str, GraphNode] = {}
        labels: set[str] = set()
        for node in found:
            if node.node_id in self._nodes or node.label in labels:
                raise GraphTopologyError(f"Node {node.label!r} is given twice to ModelGraph {label!r}.")
            self._nodes[node.node_id] = node
            labels.add(node.label)
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise InvalidTypeError(f"optimizer is a modularml Optimizer; got {type(optimizer).__name__}.")
        self._optimizer = optimizer
        self._contributing: tuple[str, ...] = ()
        self._built = False
        self._order: list[str] | None = None
        self._plan: _StepPlan | None = None
        self._validate()
        self._check_optimizer_backends()
        if register:
            self._ctx.register_model_graph(self)

    # ------------------------------------------------------------------ lookup
    def _lookup(self, node: str | GraphNode) -> GraphNode:
        if isinstance(node, GraphNode):
            return node
        if isinstance(node, str):
            return self._ctx.get_node(node, enforce_type="GraphNode")  # type: ignore[return-value]
        raise InvalidTypeError(f"A node is given as a GraphNode, a node_id or a label; got {node!r:.100}.")

    def _resolve(self, node: str | GraphNode) -> GraphNode:
        """The graph's node given by instance, id or label.

        Raises:
            KeyError: If it is not in this graph.
        """
        if isinstance(node, GraphNode):
            if node.node_id in self._nodes:
                return self._nodes[node.node_id]
        elif isinstance(node, str):
            if node in self._nodes:
                return self._nodes[node]
            for candidate in self._nodes.values():
                if candidate.label == node:
                    return candidate
        else:
            raise InvalidTypeError(f"A node is given as a GraphNode, a node_id or a label; got {node!r:.100}.")
        name = node.label if isinstance(node, GraphNode) else node
        raise NotRegisteredError(
            f"Node {name!r} is not in ModelGraph {self.label!r}; nodes: {sorted(self.node_labels)}."
        )

    def _graph_id(self, ref: ExperimentNodeReference) -> str | None:
        if ref.node_id is not None and ref.node_id in self._nodes:
            return ref.node_id
        for node in self._nodes.values():
            if node.label == ref.node_label and ref.node_id is None:
                return node.node_id
        return None

    # ------------------------------------------------------------------ topology
    def _validate(self) -> None:
        """Check references and acyclicity; cache the topological order."""
        for node in self._nodes.values():
            for ref in node.upstream_refs:
                if isinstance(ref, ExperimentNodeReference):
                    if self._graph_id(ref) is None:
                        raise GraphTopologyError(
                            f"Node {node.label!r} takes input from {ref.node_label!r}, which is not in ModelGraph "
                            f"{self.label!r} (a dangling reference). Add that node to the graph, or re-route the input."
                        )
                elif isinstance(ref, FeatureSetReference):
                    try:
                        ref.resolve_featureset(self._ctx)
                    except (KeyError, TypeError) as exc:
                        raise GraphTopologyError(
                            f"Node {node.label!r} takes input from FeatureSet {ref.node_label!r}, which is not "
                            f"registered in the ExperimentContext (a dangling reference): {exc}"
                        ) from None
        self._order = self._toposort()

    def _upstream_ids(self, node: GraphNode) -> list[str]:
        return [
            gid
            for ref in node.upstream_refs
            if isinstance(ref, ExperimentNodeReference) and (gid := self._graph_id(ref)) is not None
        ]

    def _toposort(self) -> list[str]:
        indegree = {nid: len(self._upstream_ids(n)) for nid, n in self._nodes.items()}
        downstream = self._downstream_map()
        ready = [nid for nid in self._nodes if indegree[nid] == 0]
        order: list[str] = []
        while ready:
            nid = ready.pop(0)
            order.append(nid)
            for child in downstream[nid]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        if len(order) != len(self._nodes):
            stuck = sorted(self._nodes[nid].label for nid, d in indegree.items() if d > 0)
            raise GraphTopologyError(
                f"ModelGraph {self.label!r} has a cycle among nodes {stuck}; a model graph must be acyclic."
            )
        return order

    def _downstream_map(self) -> dict[str, list[str]]:
        downstream: dict[str, list[str]] = {nid: [] for nid in self._nodes}
        for nid, node in self._nodes.items():
            for up in self._upstream_ids(node):
                downstream[up].append(nid)
        return downstream

    @contextlib.contextmanager
    def _editing(self, *new_nodes: GraphNode) -> Iterator[None]:
        """Apply an edit; on any error, restore the nodes and every connection as they were."""
        nodes = dict(self._nodes)
        touched = [*nodes.values(), *new_nodes]
        refs = [(node, node.upstream_refs) for node in touched]
        try:
            yield
            self._validate()
            self._check_optimizer_backends()
        except BaseException:
            for node, saved in refs:
                node._upstream_refs = saved
            self._nodes = nodes
            self._order = self._toposort()
            raise
        self._built = False  # shapes may have changed: the next build() re-infers them
        self._plan = None

    @property
    def nodes(self) -> dict[str, GraphNode]:
        """All GraphNodes in the ModelGraph, keyed by node_id."""
        return dict(self._nodes)

    @property
    def node_labels(self) -> set[str]:
        """The set of unique node labels in this ModelGraph."""
        return {n.label for n in self._nodes.values()}

    @property
    def topological_order(self) -> list[GraphNode]:
        """The nodes in an order where every node comes after its upstream nodes."""
        return [self._nodes[nid] for nid in self._order or []]

    @property
    def head_nodes(self) -> dict[str, GraphNode]:
        """Nodes whose inputs all come from FeatureSets, keyed by node_id."""
        return {nid: n for nid, n in self._nodes.items() if not self._upstream_ids(n)}

    @property
    def tail_nodes(self) -> dict[str, GraphNode]:
        """Nodes whose outputs no other node of the graph consumes, keyed by node_id."""
        downstream = self._downstream_map()
        return {nid: n for nid, n in self._nodes.items() if not downstream[nid]}

    def add_node(self, node: GraphNode) -> ModelGraph:
        """Add a node (already registered in the ExperimentContext) to the graph.

        Raises:
            ValueError: If a node with the same node_id or label is already in the graph, the node
                is not registered, or its references are dangling or make a cycle.
        """
        if not isinstance(node, GraphNode):
            raise InvalidTypeError(f"add_node takes a GraphNode; got {type(node).__name__}.")
        if node.node_id in self._nodes or node.label in self.node_labels:
            raise NodeCollisionError(f"Node {node.label!r} (node_id {node.node_id!r}) is already in the graph.")
        if not self._ctx._is_registered(node):
            raise GraphTopologyError(
                f"Node {node.label!r} is not registered in the graph's ExperimentContext; create it while that "
                "context is active."
            )
        with self._editing(node):
            self._nodes[node.node_id] = node
        return self

    def _add_unchecked(self, node: GraphNode) -> None:
        if node.node_id in self._nodes or node.label in self.node_labels:
            raise NodeCollisionError(f"Node {node.label!r} (node_id {node.node_id!r}) is already in the graph.")
        self._nodes[node.node_id] = node

    def insert_node_after(self, new_node: GraphNode, *, upstream: str | GraphNode) -> ModelGraph:
        """Insert ``new_node`` downstream of ``upstream``; it receives input only from it. Returns self."""
        up = self._resolve(upstream)
        with self._editing(new_node):
            new_node._set_upstream_refs([_ref_of(up)])
            self._add_unchecked(new_node)
        return self

    def insert_node_before(self, new_node: GraphNode, *, downstream: str | GraphNode) -> ModelGraph:
        """Insert ``new_node`` upstream of ``downstream``: it takes all of that node's inputs. Returns self."""
        down = self._resolve(downstream)
        with self._editing(new_node):
            new_node._set_upstream_refs(down.upstream_refs)
            self._add_unchecked(new_node)
            down._set_upstream_refs([_ref_of(new_node)])
        return self

    def insert_node_between(
        self, new_node: GraphNode, *, upstream: str | GraphNode, downstream: str | GraphNode
    ) -> ModelGraph:
        """Replace the connection ``upstream -> downstream`` with ``upstream -> new_node -> downstream``.

        Raises:
            ValueError: If the two nodes are not connected.
        """
        up, down = self._resolve(upstream), self._resolve(downstream)
        refs = down.upstream_refs
        if _ref_of(up) not in refs:
            raise GraphTopologyError(
                f"Nodes {up.label!r} and {down.label!r} are not connected ({up.label} -> {down.label})."
            )
        with self._editing(new_node):
            new_node._set_upstream_refs([_ref_of(up)])
            self._add_unchecked(new_node)
            down._set_upstream_refs([_ref_of(new_node) if r == _ref_of(up) else r for r in refs])
        return self

    def remove_node(self, node: str | GraphNode) -> ModelGraph:
        """Remove a node; nodes downstream of it take its inputs in its place (A -> B -> C, remove B: A -> C).

        Raises:
            ValueError: If a downstream node cannot accept the re-routed number of inputs.
        """
        target = self._resolve(node)
        ref = _ref_of(target)
        with self._editing():
            for nid in self._downstream_map()[target.node_id]:
                child = self._nodes[nid]
                new_refs: list[UpstreamRef] = []
                for r in child.upstream_refs:
                    for replacement in target.upstream_refs if r == ref else [r]:
                        if replacement not in new_refs:
                            new_refs.append(replacement)
                child._set_upstream_refs(new_refs)
            del self._nodes[target.node_id]
        return self

    def replace_node(self, old_node: str | GraphNode, new_node: GraphNode) -> ModelGraph:
        """Put ``new_node`` in the place of ``old_node``, keeping all connections. Returns self."""
        old = self._resolve(old_node)
        old_ref = _ref_of(old)
        with self._editing(new_node):
            new_node._set_upstream_refs(old.upstream_refs)
            for nid in self._downstream_map()[old.node_id]:
                child = self._nodes[nid]
                child._set_upstream_refs([_ref_of(new_node) if r == old_ref else r for r in child.upstream_refs])
            del self._nodes[old.node_id]
            self._add_unchecked(new_node)
        return self

    # ------------------------------------------------------------------ freezing
    def _model_nodes(self, nodes: list[str | GraphNode] | None) -> list[ModelNode]:
        chosen = list(self._nodes.values()) if nodes is None else [self._resolve(n) for n in nodes]
        return [n for n in chosen if isinstance(n, ModelNode)]

    def freeze(self, nodes: list[str | GraphNode] | None = None) -> None:
        """Freeze the given nodes (IDs, labels or instances; all when None)."""
        for node in self._model_nodes(nodes):
            node.freeze()

    def unfreeze(self, nodes: list[str | GraphNode] | None = None) -> None:
        """Unfreeze the given nodes (IDs, labels or instances; all when None)."""
        for node in self._model_nodes(nodes):
            node.unfreeze()

    @property
    def frozen_nodes(self) -> dict[str, GraphNode]:
        """All trainable but frozen nodes, keyed by node_id."""
        return {n.node_id: n for n in self._model_nodes(None) if n.is_frozen}

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
        """State of the global optimizer: ``backend``, ``contributing_nodes`` and ``parameters``.

        Returns an empty dict when there is no global optimizer.
        """
        if self._optimizer is None:
            return {}
        self._build_global_optimizer()
        return {
            "backend": self.backend,
            "contributing_nodes": set(self._contributing),
            "parameters": list(self._optimizer.parameters or []),
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
    def _execution_order(self, active_nodes: list[str | GraphNode] | None) -> list[GraphNode]:
        order = self.topological_order
        if active_nodes is None:
            return order
        wanted: set[str] = set()
        stack = [self._resolve(n).node_id for n in active_nodes]
        while stack:
            nid = stack.pop()
            if nid in wanted:
                continue
            wanted.add(nid)
            stack.extend(self._upstream_ids(self._nodes[nid]))
        return [n for n in order if n.node_id in wanted]

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
        for node in self._execution_order(active_nodes):
            node.forward_from_context(ctx)  # type: ignore[attr-defined]
        return dict(ctx.outputs)

    @staticmethod
    def _set_training_modes(order: list[GraphNode], *, training: bool) -> None:
        """Training mode for unfrozen model nodes when ``training``; inference mode otherwise."""
        for node in order:
            if isinstance(node, ModelNode) and node.model.is_built:
                node.model.set_training(training and not node.is_frozen)

    def _ensure_built(self) -> None:
        if not self._built:
            self.build()

    def train_step(
        self, ctx: ExecutionContext, losses: list[AppliedLoss], *, active_nodes: list[str | GraphNode] | None = None
    ) -> None:
        """Execute one training step (stage-wise without a global optimizer, graph-wise with one).

        Outputs and loss values are recorded in ``ctx``. Frozen nodes are forwarded, never updated.
        """
        self._ensure_built()
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
        order = self._execution_order(active_nodes)
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
        with impl.gradient_scope() as scope:
            for node, _, _ in plan.steps:
                node.forward_from_context(ctx)  # type: ignore[attr-defined]
            total = None
            for loss in plan.losses:
                value = loss.compute(ctx)
                ctx.add_loss(loss.label, value)
                total = value if total is None else total + value
        impl.apply_gradients(total, self._optimizer.instance, self._optimizer.parameters, scope)

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
    ) -> None:
        """Forward-only pass under no-grad, models in inference mode; outputs and losses are recorded in ``ctx``."""
        self._ensure_built()
        order = self._execution_order(active_nodes)
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
        order = self._execution_order(active_nodes)
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

    # ------------------------------------------------------------------ display
    def visualize(
        self,
        *,
        show_features: bool = False,
        show_targets: bool = False,
        show_tags: bool | str = False,
        show_frozen: bool = True,
        show_splits: bool = False,
    ) -> str:
        """Return a mermaid diagram of this graph (FeatureSets, nodes and connections).

        Args:
            show_features / show_targets / show_tags: List those columns on FeatureSet nodes.
            show_frozen: Mark frozen ModelNodes (label text and a dimmed style).
            show_splits: List the splits of FeatureSet nodes.
        """
        lines = ["flowchart LR"]
        ids: dict[str, str] = {}

        def mid(key: str) -> str:
            return ids.setdefault(key, f"n{len(ids)}")

        featuresets: dict[str, list[FeatureSetReference]] = {}
        for node in self.topological_order:
            for ref in node.upstream_refs:
                if isinstance(ref, FeatureSetReference):
                    if not ref.columns:  # every column: show what a step reads now
                        with contextlib.suppress(KeyError, TypeError, AttributeError):
                            ref = ref.resolve_featureset(self._ctx).reference(rep="transformed")
                    featuresets.setdefault(ref.node_id or ref.node_label, []).append(ref)
        for key, refs in featuresets.items():
            ref = refs[0]
            parts = [f"FeatureSet: {ref.node_label}"]
            if show_features:
                parts.append("features: " + ", ".join(sorted({c for r in refs for c in r.features})))
            if show_targets:
                parts.append("targets: " + ", ".join(sorted({c for r in refs for c in r.targets})))
            if show_tags:
                parts.append("tags: " + ", ".join(sorted({c for r in refs for c in r.tags})))
            if show_splits:
                try:
                    splits = ref.resolve_featureset(self._ctx).available_splits
                except (KeyError, TypeError, AttributeError):
                    splits = []
                parts.append("splits: " + ", ".join(splits))
            lines.append(f'    {mid("fs:" + key)}[("{"<br/>".join(parts)}")]')
        frozen_ids = []
        for node in self.topological_order:
            text = f"{type(node).__name__}: {node.label}"
            if show_frozen and isinstance(node, ModelNode) and node.is_frozen:
                text += " (frozen)"
                frozen_ids.append(mid(node.node_id))
            shape = ("{{", "}}") if isinstance(node, MergeNode) else ("[", "]")
            lines.append(f'    {mid(node.node_id)}{shape[0]}"{text}"{shape[1]}')
        for node in self.topological_order:
            for ref in node.upstream_refs:
                if isinstance(ref, FeatureSetReference):
                    source = mid("fs:" + (ref.node_id or ref.node_label))
                else:
                    source = mid(self._graph_id(ref))
                lines.append(f"    {source} --> {mid(node.node_id)}")
        if frozen_ids:
            lines.append("    classDef frozen fill:#eee,stroke:#999,color:#999")
            lines.append(f"    class {','.join(frozen_ids)} frozen")
        return "\n".join(lines)

    # ------------------------------------------------------------------ config and state
    def get_config(self) -> dict[str, Any]:
        """Configuration of this graph: label, node configs (topological order) and global optimizer."""
        return {
            "label": self.label,
            "nodes": [n.get_config() for n in self.topological_order],
            "optimizer": None if self._optimizer is None else self._optimizer.get_config(),
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, register: bool = True, allow_packaged_code: bool = False
    ) -> ModelGraph:
        """Reconstruct a ModelGraph (and its nodes, registered in the active context) from :meth:`get_config`.

        No learned state is restored (see :meth:`set_state`).
        """
        from modularml.plugins.resolver import loading, resolve

        if not isinstance(config, Mapping) or not isinstance(config.get("nodes"), list):
            raise InvalidArgumentError(
                f"A ModelGraph config is the dict returned by get_config(); got {config!r:.200}."
            )
        with loading(allow_packaged_code=allow_packaged_code, what="graph"):
            classes = []
            for index, node_cfg in enumerate(config["nodes"]):
                if not isinstance(node_cfg, Mapping) or not isinstance(node_cfg.get("node_id"), str):
                    raise SerializationError(
                        f"config['nodes'][{index}] is not a node config with a 'node_id'; got {node_cfg!r:.200}."
                    )
                entry = f"config['nodes'][{index}]['class']"
                classes.append(resolve(node_cfg.get("class"), what="graph node class", entry=entry, base=GraphNode))
            nodes = [
                node_cls.from_config(node_cfg, register=register, allow_packaged_code=allow_packaged_code)
                for node_cls, node_cfg in zip(classes, config["nodes"], strict=True)
            ]
            opt_cfg = config.get("optimizer")
            optimizer = (
                None if opt_cfg is None else Optimizer.from_config(opt_cfg, allow_packaged_code=allow_packaged_code)
            )
            return cls(nodes, optimizer, config.get("label", "model-graph"), register=register)

    def get_state(self) -> dict[str, Any]:
        """Node states (keyed by node_id), global optimizer state and build flag."""
        return {
            "is_built": self._built,
            "nodes": {nid: n.get_state() for nid, n in self._nodes.items()},
            "optimizer": None if self._optimizer is None else self._optimizer.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore node and optimizer state from :meth:`get_state` output.

        All or nothing: if any part fails (a weight of the wrong shape, an optimizer state that
        does not fit), every node and the optimizer are put back as they were and the error is
        raised.

        Raises:
            InvalidArgumentError: If ``state`` is not one :meth:`get_state` produced.
        """
        if (
            not isinstance(state, Mapping)
            or not isinstance(state.get("nodes"), Mapping)
            or not all(isinstance(s, Mapping) for s in state["nodes"].values())
        ):
            raise InvalidArgumentError(f"A ModelGraph state is the dict returned by get_state(); got {state!r:.200}.")
        if state.get("optimizer") is not None and not isinstance(state["optimizer"], Mapping):
            raise InvalidArgumentError(
                f"A ModelGraph state's optimizer state is a dict; got {state['optimizer']!r:.200}."
            )
        before = self.get_state()
        pending = None if self._optimizer is None else self._optimizer._pending_state
        try:
            self._apply_state(state)
        except BaseException:
            self._apply_state(before)
            self._built = bool(before["is_built"])
            if self._optimizer is not None and not self._optimizer.is_built:
                self._optimizer._pending_state = pending
            raise

    def _apply_state(self, state: Mapping[str, Any]) -> None:
        for nid, node_state in state["nodes"].items():
            if nid in self._nodes:
                self._nodes[nid].set_state(node_state)
        if self._optimizer is not None and state.get("optimizer") is not None:
            if self._optimizer.is_built:
                self._optimizer.set_state(state["optimizer"])
            else:
                self._optimizer._pending_state = state["optimizer"].get("backend_state")
        if state.get("is_built") and all(getattr(n, "is_built", True) for n in self._nodes.values()):
            self._build_optimizers()
            self._built = True

    # ------------------------------------------------------------------ files
    def save(self, filepath: str | Path, *, overwrite: bool = False) -> Path:
        """Serialize this graph (config and state) to ``<name>.mg.mml``; returns the path written."""
        from modularml.io import write_container

        return write_container(
            filepath,
            kind=FILE_KIND,
            cls=ModelGraph,
            config=self.get_config(),
            state=self.get_state(),
            overwrite=overwrite,
        )

    @classmethod
    def load(cls, filepath: str | Path, *, allow_packaged_code: bool = False, overwrite: bool = False) -> ModelGraph:
        """Load a ModelGraph (nodes, connections, learned state) saved with :meth:`save`.

        Args:
            overwrite: Replace colliding registrations in the active context. If False, nodes whose
                node_id is taken get new ids (labels must still be free under the context's policy).

        Raises:
            SerializationError: If the file is damaged, not a ModelGraph, or cannot be rebuilt.
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=FILE_KIND)
        container.require_class(ModelGraph)
        ctx = ExperimentContext.get_active()
        snapshot = ctx.get_state()
        try:
            with loading(container.path, allow_packaged_code=allow_packaged_code, what="graph"):
                config, state = copy.deepcopy(container.config), copy.deepcopy(container.state)
                _check_graph_file(config, state)
                if not overwrite:
                    taken = {n["node_id"] for n in config["nodes"] if ctx.has_node(node_id=n["node_id"])}
                    if taken:
                        mapping = {old: str(uuid.uuid4()) for old in taken}
                        config = _remap_ids(config, mapping)
                        state["nodes"] = {mapping.get(k, k): v for k, v in state["nodes"].items()}
                with _policy(ctx, RegistrationPolicy.OVERWRITE if overwrite else None):
                    graph = cls.from_config(config, allow_packaged_code=allow_packaged_code)
                graph.set_state(state)
        except BaseException:
            ctx.set_state(snapshot)  # a failed load registers nothing
            raise
        return graph

    def save_checkpoint(
        self, filepath: str | Path, *, overwrite: bool = False, meta: dict[str, Any] | None = None
    ) -> Path:
        """Save the full state (weights, optimizer state, freeze flags) to ``<name>.ckpt.mml``.

        ``meta`` must hold JSON values and numpy arrays (nothing is pickled).
        """
        from modularml.io import write_container

        return write_container(
            filepath,
            kind=CHECKPOINT_KIND,
            cls=ModelGraph,
            config={"label": self.label, "node_ids": sorted(self._nodes), "meta": dict(meta or {})},
            state=self.get_state(),
            overwrite=overwrite,
        )

    def restore_checkpoint(self, filepath: str | Path) -> ModelGraph:
        """Restore the state saved by :meth:`save_checkpoint`; returns self.

        Raises:
            SerializationError: If the checkpoint is of another graph (different node ids).
        """
        from modularml.io import read_container
        from modularml.plugins.resolver import loading

        container = read_container(filepath, kind=CHECKPOINT_KIND)
        container.require_class(ModelGraph)
        nodes = container.state.get("nodes")
        if not isinstance(nodes, Mapping) or sorted(nodes) != sorted(self._nodes):
            saved = sorted(nodes) if isinstance(nodes, Mapping) else nodes
            raise SerializationError(
                f"Cannot restore {str(container.path)!r}: it holds the state of nodes "
                f"{saved!r:.300}, not of this graph's {sorted(self._nodes)}."
            )
        with loading(container.path, what="checkpoint"):
            self.set_state(container.state)  # all or nothing
        return self

    def __repr__(self) -> str:
        return f"ModelGraph(label={self.label!r}, nodes={[n.label for n in self.topological_order]})"


def _check_graph_file(config: Any, state: Any) -> None:
    """The shape of a graph file's config and state, checked before anything is built or registered."""
    if not isinstance(config, Mapping) or not isinstance(config.get("nodes"), list):
        raise SerializationError("its config holds no list of 'nodes'.")
    for index, node in enumerate(config["nodes"]):
        if not isinstance(node, Mapping) or not isinstance(node.get("node_id"), str):
            raise SerializationError(f"config['nodes'][{index}] is not a node config with a 'node_id'.")
    if not isinstance(state, Mapping) or not isinstance(state.get("nodes"), Mapping):
        raise SerializationError("its state holds no 'nodes' mapping.")
    ids = {node["node_id"] for node in config["nodes"]}
    unknown = sorted(set(state["nodes"]) - ids)
    if unknown:
        raise SerializationError(f"its state holds nodes {unknown} that its config does not define.")


def _remap_ids(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (mapping.get(v, v) if k == "node_id" and isinstance(v, str) else _remap_ids(v, mapping))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_remap_ids(v, mapping) for v in value]
    return value


@contextlib.contextmanager
def _policy(ctx: ExperimentContext, policy: RegistrationPolicy | None) -> Iterator[None]:
    if policy is None:
        yield
        return
    previous = ctx.registration_policy
    ctx.set_registration_policy(policy)
    try:
        yield
    finally:
        ctx.set_registration_policy(previous)
