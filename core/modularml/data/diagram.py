"""Mermaid diagram text of a FeatureSet: its columns and shapes, its splits, and their overlaps."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

import numpy as np

from modularml.data.schema import DOMAIN_FEATURES, DOMAIN_TAGS, DOMAIN_TARGETS

if TYPE_CHECKING:
    from modularml.data.featureset import FeatureSet

__all__ = ["featureset_mermaid"]


def _node_id(prefix: str, name: str) -> str:
    return f"{prefix}_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"


def _escape(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _column_lines(fs: FeatureSet, domains: list[str]) -> list[str]:
    lines = []
    schema = fs.collection.schema
    for domain in domains:
        for name in schema.column_names(domain):
            spec = schema[name]
            shape = "scalar" if not spec.shape else "x".join(str(s) for s in spec.shape)
            lines.append(_escape(f"{domain}.{spec.key}.{spec.rep}: {shape} {spec.dtype}"))
    return lines


def featureset_mermaid(
    fs: FeatureSet,
    *,
    show_features: bool = True,
    show_targets: bool = True,
    show_tags: bool | str = "root",
    show_overlaps: bool = True,
) -> str:
    """The mermaid ``flowchart`` text for ``fs``; see :meth:`FeatureSet.visualize` for the options."""
    domains = [d for d, show in ((DOMAIN_FEATURES, show_features), (DOMAIN_TARGETS, show_targets)) if show]
    root_domains = [*domains, DOMAIN_TAGS] if show_tags in (True, "root") else domains
    split_domains = [*domains, DOMAIN_TAGS] if show_tags is True else domains
    root = _node_id("fs", fs.label)
    root_lines = [_escape(f"FeatureSet {fs.label}"), f"{fs.n_samples} samples", *_column_lines(fs, root_domains)]
    out = ["flowchart TD", f'    {root}["{"<br/>".join(root_lines)}"]']
    split_lines = _column_lines(fs, split_domains)
    splits = fs.splits
    for name, view in splits.items():
        node = _node_id("split", name)
        lines = [_escape(f"split {name}"), f"{len(view)} samples", *split_lines]
        parent = fs._split_parents.get(name)
        parent_node = _node_id("split", parent) if parent in splits else root
        out.append(f'    {node}["{"<br/>".join(lines)}"]')
        out.append(f"    {parent_node} --> {node}")
    if show_overlaps:
        for (a, view_a), (b, view_b) in itertools.combinations(splits.items(), 2):
            if fs._split_parents.get(a) == b or fs._split_parents.get(b) == a:
                continue
            shared = len(np.intersect1d(view_a.valid_indices, view_b.valid_indices))
            if shared:
                out.append(f'    {_node_id("split", a)} -. "overlap: {shared}" .- {_node_id("split", b)}')
    return "\n".join(out)
