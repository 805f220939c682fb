"""The DAG bookkeeping of :class:`~modularml.graph.ModelGraph`, as the mixin :class:`GraphTopology`.

It holds node lookup (by instance, node_id or label), the checks of dangling references and
cycles, the cached topological order, head and tail nodes, the edits (adding, inserting,
removing and replacing nodes, all or nothing), the active-node execution order, and freezing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from modularml.data.references import FeatureSetReference
from modularml.errors import GraphTopologyError, InvalidTypeError, NodeCollisionError, NotRegisteredError
from modularml.nodes.graph_node import GraphNode
from modularml.nodes.model_node import ModelNode
from modularml.nodes.references import ExperimentNodeReference, UpstreamRef

if TYPE_CHECKING:
    from modularml.context import ExperimentContext
    from modularml.graph.model_graph import ModelGraph
    from modularml.graph.training import _StepPlan

__all__ = ["GraphTopology"]


def _ref_of(node: GraphNode) -> ExperimentNodeReference:
    return ExperimentNodeReference(node.label, node.node_id)


class GraphTopology:
    """The nodes and connections of a :class:`~modularml.graph.ModelGraph` (a mixin of it).

    The graph's constructor sets the attributes below; an edit keeps them consistent and drops
    the build flag and the cached step plan.
    """

    _ctx: ExperimentContext
    label: str
    _nodes: dict[str, GraphNode]
    _order: list[str] | None
    _built: bool
    _plan: _StepPlan | None

    if TYPE_CHECKING:

        def _check_optimizer_backends(self) -> None: ...

    # ------------------------------------------------------------------ lookup
    def _lookup(self, node: str | GraphNode) -> GraphNode:
        if isinstance(node, GraphNode):
            return node
        if isinstance(node, str):
            return self._ctx.get_node(node, enforce_type="GraphNode")  # type: ignore[return-value]
        raise InvalidTypeError(f"A node is given as a GraphNode, a node_id or a label; got {node!r:.100}.")

    def resolve_node(self, node: str | GraphNode) -> GraphNode:
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
    def backends(self) -> list[str]:
        """Names of the backends the graph's model nodes run on, sorted (what a run seeds and checkpoints)."""
        return sorted({str(n.backend) for n in self._nodes.values() if getattr(n, "backend", None) is not None})

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

    def execution_order(self, active_nodes: list[str | GraphNode] | None) -> list[GraphNode]:
        """The nodes a step runs, in topological order: all, or ``active_nodes`` and everything upstream of them."""
        order = self.topological_order
        if active_nodes is None:
            return order
        wanted: set[str] = set()
        stack = [self.resolve_node(n).node_id for n in active_nodes]
        while stack:
            nid = stack.pop()
            if nid in wanted:
                continue
            wanted.add(nid)
            stack.extend(self._upstream_ids(self._nodes[nid]))
        return [n for n in order if n.node_id in wanted]

    # ------------------------------------------------------------------ edits
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
        if not self._ctx.is_registered(node):
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
        up = self.resolve_node(upstream)
        with self._editing(new_node):
            new_node.set_upstream_refs([_ref_of(up)])
            self._add_unchecked(new_node)
        return self

    def insert_node_before(self, new_node: GraphNode, *, downstream: str | GraphNode) -> ModelGraph:
        """Insert ``new_node`` upstream of ``downstream``: it takes all of that node's inputs. Returns self."""
        down = self.resolve_node(downstream)
        with self._editing(new_node):
            new_node.set_upstream_refs(down.upstream_refs)
            self._add_unchecked(new_node)
            down.set_upstream_refs([_ref_of(new_node)])
        return self

    def insert_node_between(
        self, new_node: GraphNode, *, upstream: str | GraphNode, downstream: str | GraphNode
    ) -> ModelGraph:
        """Replace the connection ``upstream -> downstream`` with ``upstream -> new_node -> downstream``.

        Raises:
            ValueError: If the two nodes are not connected.
        """
        up, down = self.resolve_node(upstream), self.resolve_node(downstream)
        refs = down.upstream_refs
        if _ref_of(up) not in refs:
            raise GraphTopologyError(
                f"Nodes {up.label!r} and {down.label!r} are not connected ({up.label} -> {down.label})."
            )
        with self._editing(new_node):
            new_node.set_upstream_refs([_ref_of(up)])
            self._add_unchecked(new_node)
            down.set_upstream_refs([_ref_of(new_node) if r == _ref_of(up) else r for r in refs])
        return self

    def remove_node(self, node: str | GraphNode) -> ModelGraph:
        """Remove a node; nodes downstream of it take its inputs in its place (A -> B -> C, remove B: A -> C).

        Raises:
            ValueError: If a downstream node cannot accept the re-routed number of inputs.
        """
        target = self.resolve_node(node)
        ref = _ref_of(target)
        with self._editing():
            for nid in self._downstream_map()[target.node_id]:
                child = self._nodes[nid]
                new_refs: list[UpstreamRef] = []
                for r in child.upstream_refs:
                    for replacement in target.upstream_refs if r == ref else [r]:
                        if replacement not in new_refs:
                            new_refs.append(replacement)
                child.set_upstream_refs(new_refs)
            del self._nodes[target.node_id]
        return self

    def replace_node(self, old_node: str | GraphNode, new_node: GraphNode) -> ModelGraph:
        """Put ``new_node`` in the place of ``old_node``, keeping all connections. Returns self."""
        old = self.resolve_node(old_node)
        old_ref = _ref_of(old)
        with self._editing(new_node):
            new_node.set_upstream_refs(old.upstream_refs)
            for nid in self._downstream_map()[old.node_id]:
                child = self._nodes[nid]
                child.set_upstream_refs([_ref_of(new_node) if r == old_ref else r for r in child.upstream_refs])
            del self._nodes[old.node_id]
            self._add_unchecked(new_node)
        return self

    # ------------------------------------------------------------------ freezing
    def _model_nodes(self, nodes: list[str | GraphNode] | None) -> list[ModelNode]:
        chosen = list(self._nodes.values()) if nodes is None else [self.resolve_node(n) for n in nodes]
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
