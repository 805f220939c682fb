"""The base class of every object an :class:`~modularml.context.ExperimentContext` keeps track of."""

from __future__ import annotations

import uuid

from modularml.errors import InvalidArgumentError
from modularml.utils.naming import validate_label

__all__ = ["ExperimentNode"]


class ExperimentNode:
    """A named, identifiable part of an experiment (a FeatureSet, a model node, ...).

    A node has a human-readable :attr:`label` and a unique :attr:`node_id`. On construction it
    registers itself in the active :class:`~modularml.context.ExperimentContext`, which applies
    its :class:`~modularml.context.RegistrationPolicy` to label collisions.
    """

    def __init__(self, label: str, *, node_id: str | None = None, register: bool = True) -> None:
        """Initialize an ExperimentNode with a label and register it.

        Args:
            label (str): Name of this node, unique within its context. It may not contain
                ``.``, a space, ``/``, ``\\`` or ``:``.
            node_id (str, optional): Used only for de-serialization. Defaults to a new UUID4.
            register (bool, optional): Whether to register this node in the active
                ``ExperimentContext``. Used only for de-serialization. Defaults to True.

        Raises:
            ValueError: If ``label`` or ``node_id`` is invalid, or if the label is already
                taken and the context's policy is ``error``.
        """
        self._label = validate_label(label)
        if node_id is None:
            node_id = str(uuid.uuid4())
        elif not isinstance(node_id, str) or not node_id:
            raise InvalidArgumentError(f"A node_id must be a non-empty string; got {node_id!r}.")
        self._node_id = node_id
        if register:
            from modularml.context.context import ExperimentContext

            ExperimentContext.get_active().register_experiment_node(self)

    @property
    def label(self) -> str:
        """The node's label.

        Setting it renames the node. If the node is registered in the active context, the
        rename goes through :meth:`ExperimentContext.update_node_label`, so a label already
        used by another node there raises ``ValueError``.
        """
        return self._label

    @label.setter
    def label(self, new_label: str) -> None:
        from modularml.context.context import ExperimentContext

        ctx = ExperimentContext.get_active()
        if ctx._is_registered(self):
            ctx.update_node_label(self._node_id, new_label)
        else:
            self._label = validate_label(new_label)

    @property
    def node_id(self) -> str:
        """The node's unique identifier (a UUID4 string unless given at construction)."""
        return self._node_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self._label!r}, node_id={self._node_id!r})"
