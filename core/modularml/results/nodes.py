"""How results find nodes: a node given by instance, id or label, and the FeatureSets feeding it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modularml.context import ExperimentContext
from modularml.data.references import FeatureSetReference
from modularml.errors import InvalidTypeError

if TYPE_CHECKING:
    from modularml.nodes import GraphNode

__all__ = ["upstream_featureset_refs"]


def _graph_node(node: Any) -> GraphNode:
    from modularml.nodes import GraphNode

    if isinstance(node, GraphNode):
        return node
    if isinstance(node, str):
        return ExperimentContext.get_active().get_node(node, enforce_type="GraphNode")  # type: ignore[return-value]
    raise InvalidTypeError(f"A node is given as a GraphNode, its node_id or its label; got {node!r:.100}.")


def upstream_featureset_refs(node: GraphNode) -> list[FeatureSetReference]:
    """The FeatureSet references feeding ``node``, directly or through upstream nodes, in order (unique)."""
    found: list[FeatureSetReference] = []
    seen: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop(0)
        if current.node_id in seen:
            continue
        seen.add(current.node_id)
        for ref in current.upstream_refs:
            if isinstance(ref, FeatureSetReference):
                if ref not in found:
                    found.append(ref)
            else:
                stack.append(ref.resolve())  # type: ignore[arg-type]
    return found
