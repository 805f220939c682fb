"""Finding a registered FeatureSet in an ExperimentContext, by node id or label."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modularml.errors import InvalidArgumentError

if TYPE_CHECKING:
    from modularml.context import ExperimentContext
    from modularml.data.featureset import FeatureSet

__all__ = ["resolve_featureset"]


def resolve_featureset(
    node_label: str | None, node_id: str | None = None, ctx: ExperimentContext | None = None
) -> FeatureSet:
    """The FeatureSet registered under ``node_id`` (preferred) or ``node_label``.

    Args:
        node_label: The FeatureSet's label.
        node_id: Its node id; tried first.
        ctx: The context to look in; the active one by default.

    Raises:
        KeyError: If no such FeatureSet is registered.
        TypeError: If the node found is not a FeatureSet.
    """
    from modularml.context import ExperimentContext

    ctx = ctx or ExperimentContext.get_active()
    if node_id is not None and ctx.has_node(node_id=node_id):
        return ctx.get_node(node_id=node_id, enforce_type="FeatureSet")  # type: ignore[return-value]
    if node_label is None:
        raise InvalidArgumentError("A FeatureSet reference needs a label or a node id.")
    return ctx.get_node(label=node_label, enforce_type="FeatureSet")  # type: ignore[return-value]
