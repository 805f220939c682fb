"""References between graph nodes, and the helpers that turn user arguments into references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modularml.data.references import FeatureSetReference
from modularml.errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:
    from modularml.context import ExperimentContext, ExperimentNode

__all__ = ["ExperimentNodeReference", "UpstreamRef", "ref_from_config", "ref_to_config", "to_upstream_ref"]


@dataclass(frozen=True)
class ExperimentNodeReference:
    """A symbolic pointer to a graph node (no data held), resolved against an ExperimentContext.

    Two references to the same node compare equal (by ``node_id``; by label when either has none).

    Attributes:
        node_label (str): Label of the node when the reference was made.
        node_id (str | None): Node id; preferred when resolving.
    """

    node_label: str
    node_id: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExperimentNodeReference):
            return NotImplemented
        if self.node_id is not None and other.node_id is not None:
            return self.node_id == other.node_id
        return self.node_label == other.node_label

    def __hash__(self) -> int:
        return hash(self.node_id or self.node_label)

    def resolve(self, ctx: ExperimentContext | None = None) -> ExperimentNode:
        """The referenced node, from ``ctx`` (the active context by default).

        Raises:
            KeyError: If it is not registered.
        """
        from modularml.context import ExperimentContext

        ctx = ctx or ExperimentContext.get_active()
        if self.node_id is not None and ctx.has_node(node_id=self.node_id):
            return ctx.get_node(node_id=self.node_id)
        return ctx.get_node(label=self.node_label)

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable configuration."""
        return {"node_label": self.node_label, "node_id": self.node_id}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ExperimentNodeReference:
        """Rebuild a reference from :meth:`get_config` output."""
        return cls(config["node_label"], config.get("node_id"))

    def __str__(self) -> str:
        return self.node_label


#: What a graph node's input points at: a FeatureSet's columns, or another graph node.
UpstreamRef = FeatureSetReference | ExperimentNodeReference


def to_upstream_ref(value: Any) -> UpstreamRef:
    """Turn a FeatureSet, a FeatureSetView, a graph node, or a reference into an upstream reference.

    A FeatureSet becomes a reference to all its columns, resolved at every step: each key reads its
    ``transformed`` representation where one exists, else ``raw`` (so a scaler fitted after the
    node was created is used). A view becomes a reference to its FeatureSet with the view's
    columns; a graph node becomes an :class:`ExperimentNodeReference`.

    Raises:
        TypeError: For anything else.
    """
    if isinstance(value, (FeatureSetReference, ExperimentNodeReference)):
        return value
    from modularml.context import ExperimentNode
    from modularml.data.featureset import FeatureSet
    from modularml.data.view import FeatureSetView

    if isinstance(value, FeatureSet):
        return FeatureSetReference(node_label=value.label, node_id=value.node_id)
    if isinstance(value, FeatureSetView):
        source = value.source
        cols = list(value.columns)
        return FeatureSetReference(
            node_label=source.label,
            node_id=source.node_id,
            features=tuple(c for c in cols if c.startswith("features.")),
            targets=tuple(c for c in cols if c.startswith("targets.")),
            tags=tuple(c for c in cols if c.startswith("tags.")),
        )
    if isinstance(value, ExperimentNode):
        return ExperimentNodeReference(value.label, value.node_id)
    raise InvalidTypeError(
        f"An upstream reference is a FeatureSet, a FeatureSetView, a graph node or a reference to one; got "
        f"{type(value).__name__} {value!r:.100}."
    )


def ref_to_config(ref: UpstreamRef) -> dict[str, Any]:
    """A tagged config of either kind of reference."""
    kind = "featureset" if isinstance(ref, FeatureSetReference) else "node"
    return {"kind": kind, **ref.get_config()}


def ref_from_config(config: dict[str, Any]) -> UpstreamRef:
    """Rebuild a reference from :func:`ref_to_config` output.

    Raises:
        InvalidArgumentError: If the config names no known kind.
    """
    config = dict(config)
    kind = config.pop("kind", None)
    if kind == "featureset":
        return FeatureSetReference.from_config(config)
    if kind == "node":
        return ExperimentNodeReference.from_config(config)
    raise InvalidArgumentError(f"An upstream reference config has kind 'featureset' or 'node'; got {kind!r}.")
