"""Mermaid diagram text of a :class:`~modularml.graph.ModelGraph`: its FeatureSets, nodes and connections."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from modularml.data.references import FeatureSetReference
from modularml.nodes.merge_node import MergeNode
from modularml.nodes.model_node import ModelNode

if TYPE_CHECKING:
    from modularml.graph.model_graph import ModelGraph

__all__ = ["graph_mermaid"]


def graph_mermaid(
    graph: ModelGraph,
    *,
    show_features: bool = False,
    show_targets: bool = False,
    show_tags: bool | str = False,
    show_frozen: bool = True,
    show_splits: bool = False,
) -> str:
    """The mermaid ``flowchart`` text for ``graph``; see :meth:`ModelGraph.visualize` for the options."""
    ids: dict[str, str] = {}

    def mid(key: str) -> str:
        return ids.setdefault(key, f"n{len(ids)}")

    lines = ["flowchart LR"]
    lines += _featureset_lines(
        graph, mid, show_features=show_features, show_targets=show_targets, show_tags=show_tags, show_splits=show_splits
    )
    node_lines, frozen_ids = _node_lines(graph, mid, show_frozen=show_frozen)
    lines += node_lines
    lines += _edge_lines(graph, mid)
    if frozen_ids:
        lines.append("    classDef frozen fill:#eee,stroke:#999,color:#999")
        lines.append(f"    class {','.join(frozen_ids)} frozen")
    return "\n".join(lines)


def _featureset_lines(
    graph: ModelGraph,
    mid: Callable[[str], str],
    *,
    show_features: bool,
    show_targets: bool,
    show_tags: bool | str,
    show_splits: bool,
) -> list[str]:
    """One diagram node per FeatureSet the graph reads, with the columns and splits asked for."""
    lines = []
    featuresets: dict[str, list[FeatureSetReference]] = {}
    for node in graph.topological_order:
        for ref in node.upstream_refs:
            if isinstance(ref, FeatureSetReference):
                if not ref.columns:  # every column: show what a step reads now
                    with contextlib.suppress(KeyError, TypeError, AttributeError):
                        ref = ref.resolve_featureset(graph._ctx).reference(rep="transformed")
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
                splits = ref.resolve_featureset(graph._ctx).available_splits
            except (KeyError, TypeError, AttributeError):
                splits = []
            parts.append("splits: " + ", ".join(splits))
        lines.append(f'    {mid("fs:" + key)}[("{"<br/>".join(parts)}")]')
    return lines


def _node_lines(graph: ModelGraph, mid: Callable[[str], str], *, show_frozen: bool) -> tuple[list[str], list[str]]:
    """One diagram node per graph node (merge nodes as hexagons); also the diagram ids of the frozen ones."""
    lines = []
    frozen_ids = []
    for node in graph.topological_order:
        text = f"{type(node).__name__}: {node.label}"
        if show_frozen and isinstance(node, ModelNode) and node.is_frozen:
            text += " (frozen)"
            frozen_ids.append(mid(node.node_id))
        shape = ("{{", "}}") if isinstance(node, MergeNode) else ("[", "]")
        lines.append(f'    {mid(node.node_id)}{shape[0]}"{text}"{shape[1]}')
    return lines, frozen_ids


def _edge_lines(graph: ModelGraph, mid: Callable[[str], str]) -> list[str]:
    """One arrow per connection: FeatureSet or upstream node to the node that reads it."""
    lines = []
    for node in graph.topological_order:
        for ref in node.upstream_refs:
            if isinstance(ref, FeatureSetReference):
                source = mid("fs:" + (ref.node_id or ref.node_label))
            else:
                source = mid(graph._graph_id(ref))
            lines.append(f"    {source} --> {mid(node.node_id)}")
    return lines
