"""``InputBinding``: which data (FeatureSet, split, sampler, stream) feeds a head node in one phase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modularml.batches import BatchView
from modularml.context import ExperimentContext
from modularml.data.references import FeatureSetReference
from modularml.data.splitting import missing_split_message
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml.samplers import STREAM_DEFAULT, BaseSampler, sampler_class

if TYPE_CHECKING:
    from modularml.data import FeatureSet, FeatureSetView
    from modularml.nodes import GraphNode

__all__ = ["InputBinding", "resolve_graph_node"]


def resolve_graph_node(node: Any, ctx: ExperimentContext | None = None) -> GraphNode:
    """The GraphNode given as an instance, a node id or a label.

    Raises:
        TypeError: If ``node`` is neither a GraphNode nor a string, or names another kind of node.
        KeyError: If no such node is registered.
    """
    from modularml.nodes import GraphNode

    if isinstance(node, GraphNode):
        return node
    if isinstance(node, str):
        ctx = ctx or ExperimentContext.get_active()
        return ctx.get_node(node, enforce_type="GraphNode")  # type: ignore[return-value]
    raise InvalidTypeError(f"A node is given as a GraphNode, its node_id or its label; got {node!r:.100}.")


def _featureset_refs(node: GraphNode) -> list[FeatureSetReference]:
    refs = [ref for ref in node.upstream_refs if isinstance(ref, FeatureSetReference)]
    if not refs:
        upstream = [getattr(ref, "node_label", str(ref)) for ref in node.upstream_refs]
        raise InvalidArgumentError(
            f"Node {node.label!r} is not a head node: it takes its input from {upstream}, not from a FeatureSet. "
            "Bind data only to head nodes (nodes created with a FeatureSet or FeatureSetView as upstream)."
        )
    return refs


def _resolve_upstream(node: GraphNode, upstream: Any) -> FeatureSetReference:
    from modularml.data import FeatureSet, FeatureSetView

    refs = _featureset_refs(node)
    if upstream is None:
        if len(refs) != 1:
            raise InvalidArgumentError(
                f"Node {node.label!r} has {len(refs)} upstream FeatureSets ({[str(r) for r in refs]}); pass "
                "upstream= (a FeatureSet, a view, or a FeatureSet label or id) to choose one."
            )
        return refs[0]
    if isinstance(upstream, FeatureSetView):
        upstream = upstream.source
    if isinstance(upstream, FeatureSet):
        found = [
            r for r in refs if r.node_id == upstream.node_id or (r.node_id is None and r.node_label == upstream.label)
        ]
        wanted = upstream.label
    elif isinstance(upstream, str):
        found = [r for r in refs if upstream in (r.node_id, r.node_label)]
        wanted = upstream
    elif isinstance(upstream, FeatureSetReference):
        found = [r for r in refs if r == upstream]
        wanted = str(upstream)
    else:
        raise InvalidTypeError(
            f"upstream is a FeatureSet, a FeatureSetView, a FeatureSet label or id, or None; got {upstream!r:.100}."
        )
    if not found:
        raise NotRegisteredError(
            f"Node {node.label!r} takes no input from FeatureSet {wanted!r}; its FeatureSet inputs are "
            f"{[r.node_label for r in refs]}."
        )
    if len(found) > 1:
        raise InvalidArgumentError(
            f"Node {node.label!r} takes {len(found)} inputs from FeatureSet {wanted!r} ({[str(r) for r in found]}); "
            "pass the exact FeatureSetReference as upstream= to choose one."
        )
    return found[0]


def _check_split(ref: FeatureSetReference, split: str | None) -> None:
    if split is None:
        return
    if not isinstance(split, str):
        raise InvalidTypeError(f"split is a split name (str) or None; got {split!r}.")
    fs = ref.resolve_featureset()
    if split not in fs.available_splits:
        raise NotRegisteredError(f"A binding reads {missing_split_message(fs.label, split, fs.available_splits)}")


@dataclass(eq=False)
class InputBinding:
    """A phase-specific binding of input data to a head GraphNode.

    An InputBinding attaches a sampler (training) or a direct pass-through (evaluation) to an
    existing edge between a FeatureSet and a head node, optionally restricted to one split.
    Build one with :meth:`for_training` or :meth:`for_evaluation`.

    Attributes:
        node_id (str): ID of the head GraphNode.
        upstream_ref (FeatureSetReference): The upstream reference of that node this binding feeds.
        split (str | None): If defined, only rows of this split are used.
        sampler (BaseSampler | None): The sampler that batches the data (None: all rows at once).
        stream (str): The sampler output stream fed to the node. Defaults to ``"default"``.
    """

    node_id: str
    upstream_ref: FeatureSetReference
    split: str | None = None
    sampler: BaseSampler | None = None
    stream: str = STREAM_DEFAULT

    def __post_init__(self) -> None:
        if not isinstance(self.node_id, str):
            raise InvalidTypeError(f"node_id is a string; got {self.node_id!r:.100}.")
        if not isinstance(self.upstream_ref, FeatureSetReference):
            raise InvalidTypeError(f"upstream_ref is a FeatureSetReference; got {type(self.upstream_ref).__name__}.")
        if self.sampler is not None and not isinstance(self.sampler, BaseSampler):
            raise InvalidTypeError(f"sampler is a BaseSampler or None; got {type(self.sampler).__name__}.")
        if not isinstance(self.stream, str) or not self.stream:
            raise InvalidTypeError(f"stream is a non-empty string; got {self.stream!r}.")
        if self.split is not None and not isinstance(self.split, str):
            raise InvalidTypeError(f"split is a split name (str) or None; got {self.split!r}.")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def for_training(
        cls,
        *,
        node: GraphNode | str,
        sampler: BaseSampler,
        upstream: FeatureSet | FeatureSetView | str | None = None,
        split: str | None = None,
        stream: str = STREAM_DEFAULT,
    ) -> InputBinding:
        """Create an InputBinding for a training phase: a sampler between a FeatureSet and a head node.

        Nothing is sampled here; the phase binds and materialises the sampler when it runs.

        Args:
            node: The head node (instance, label or id).
            sampler: The sampler that builds the batches.
            upstream: Which FeatureSet input of ``node`` (instance, view, label or id); None
                only if the node has exactly one.
            split: Split of the FeatureSet to sample (None: every row).
            stream: Sampler output stream to feed to ``node``.

        Raises:
            TypeError: If ``sampler`` is not a BaseSampler.
            ValueError: If ``node`` is not a head node or ``upstream`` is ambiguous.
            KeyError: If the node, the upstream FeatureSet or the split is unknown.
        """
        if not isinstance(sampler, BaseSampler):
            raise InvalidTypeError(f"for_training() needs a BaseSampler; got {type(sampler).__name__}.")
        graph_node = resolve_graph_node(node)
        ref = _resolve_upstream(graph_node, upstream)
        _check_split(ref, split)
        return cls(graph_node.node_id, ref, split=split, sampler=sampler, stream=stream)

    @classmethod
    def for_evaluation(
        cls,
        *,
        node: GraphNode | str,
        upstream: FeatureSet | FeatureSetView | str | None = None,
        split: str | None = None,
    ) -> InputBinding:
        """Create an InputBinding for an evaluation phase: every row (of ``split``) fed to a head node.

        Args:
            node: The head node (instance, label or id).
            upstream: Which FeatureSet input of ``node``; None only if the node has exactly one.
            split: Split of the FeatureSet to evaluate (None: the whole FeatureSet).

        Raises:
            ValueError: If ``node`` is not a head node or ``upstream`` is ambiguous.
            KeyError: If the node, the upstream FeatureSet or the split is unknown.
        """
        graph_node = resolve_graph_node(node)
        ref = _resolve_upstream(graph_node, upstream)
        _check_split(ref, split)
        return cls(graph_node.node_id, ref, split=split)

    # ------------------------------------------------------------------ data
    def resolve_input_view(self) -> FeatureSetView:
        """The view of the upstream FeatureSet this binding reads (its split's rows if ``split`` is set).

        Raises:
            KeyError: If the FeatureSet or the split is not registered.
        """
        fs = self.upstream_ref.resolve_featureset()
        return fs.get_split(self.split) if self.split is not None else fs.to_view()

    def materialize_batches(self, *, show_progress: bool = True) -> list[BatchView]:
        """Sample the data of this binding: the sampler's batches of ``stream`` for epoch 0.

        Without a sampler, one batch holds every row of the view.

        Raises:
            KeyError: If the sampler has no such stream.
        """
        view = self.resolve_input_view()
        if self.sampler is None:
            return [BatchView(view.source, np.asarray(view.indices, dtype=np.int64))]
        self.sampler.bind_sources(view)
        self.sampler.materialize_batches(show_progress=show_progress)
        return self.sampler.get_batches(self.check_stream(self.sampler))

    def check_stream(self, sampler: BaseSampler) -> str:
        """This binding's stream, checked against ``sampler``'s streams.

        Raises:
            KeyError: If the sampler has no such stream.
        """
        names = sampler.stream_names
        if self.stream not in names:
            raise NotRegisteredError(
                f"Binding of node {self.node_id!r}: the sampler has no stream {self.stream!r}; its streams: {names}."
            )
        return self.stream

    @property
    def input_key(self) -> tuple[str, FeatureSetReference]:
        """The key of this binding's input in an ExecutionContext: ``(node_id, upstream_ref)``."""
        return (self.node_id, self.upstream_ref)

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this binding (the sampler by its registered name and config)."""
        sampler = None
        if self.sampler is not None:
            sampler = {"name": type(self.sampler).registry_name, "config": self.sampler.get_config()}
        return {
            "node_id": self.node_id,
            "upstream_ref": self.upstream_ref.get_config(),
            "split": self.split,
            "sampler": sampler,
            "stream": self.stream,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> InputBinding:
        """Rebuild a binding from :meth:`get_config` output (the sampler is rebuilt unbound)."""
        sampler = None
        if config.get("sampler") is not None:
            sampler = sampler_class(config["sampler"]["name"]).from_config(config["sampler"]["config"])
        return cls(
            node_id=config["node_id"],
            upstream_ref=FeatureSetReference.from_config(config["upstream_ref"]),
            split=config.get("split"),
            sampler=sampler,
            stream=config.get("stream", STREAM_DEFAULT),
        )

    def __repr__(self) -> str:
        sampler = type(self.sampler).__name__ if self.sampler is not None else None
        return (
            f"InputBinding(node_id={self.node_id!r}, upstream={self.upstream_ref.node_label!r}, split={self.split!r}, "
            f"sampler={sampler}, stream={self.stream!r})"
        )
