"""The runtime context: the registry of an experiment's nodes, which context is active, and
:class:`ExperimentNode`, the base of every node (it registers itself in the active context, so
the two live in one module).

The active context lives in a :class:`contextvars.ContextVar`. One default context is created
when this module is imported and is active wherever no other context has been activated, so
``ExperimentContext.get_active()`` always returns a context.

Threads: a thread started with :mod:`threading` (or a ``concurrent.futures`` thread pool)
begins with a fresh ``contextvars`` context, so it sees the process's default context, not a
context activated in the thread that started it. To run work in another thread under a given
context, activate it there (``with ctx.activate(): ...``) or submit
``contextvars.copy_context().run``. An ``ExperimentContext`` itself is not synchronised: share
one between threads only for reading.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from modularml.context.policy import RegistrationPolicy
from modularml.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NodeCollisionError,
    NodeNotFoundError,
    NodeTypeError,
    RegistrationWarning,
)
from modularml.utils.naming import validate_label
from modularml.utils.warn import warn

__all__ = ["ExperimentContext", "ExperimentNode"]

_R = TypeVar("_R")

#: Keys of the snapshot returned by :meth:`ExperimentContext.get_state`.
_STATE_KEYS = ("nodes", "labels", "model_graph", "registration_policy", "experiment")


class _Activation:
    """What :meth:`ExperimentContext.activate` returns: the context is active from the call on; ``with`` scopes it."""

    __slots__ = ("_ctx", "_token")

    def __init__(self, ctx: ExperimentContext) -> None:
        self._ctx = ctx
        self._token = _ACTIVE_CONTEXT.set(ctx)

    def __enter__(self) -> ExperimentContext:
        return self._ctx

    def __exit__(self, *exc: object) -> None:
        _ACTIVE_CONTEXT.reset(self._token)

    def __repr__(self) -> str:
        return f"<active {self._ctx!r}>"


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
        ctx = ExperimentContext.get_active()
        if ctx.is_registered(self):
            ctx.update_node_label(self._node_id, new_label)
        else:
            self._label = validate_label(new_label)

    @property
    def node_id(self) -> str:
        """The node's unique identifier (a UUID4 string unless given at construction)."""
        return self._node_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self._label!r}, node_id={self._node_id!r})"


def _type_names(obj: object) -> set[str]:
    """Names (bare and qualified) of every class in the MRO of ``obj``'s type."""
    names: set[str] = set()
    for cls in type(obj).__mro__:
        names.add(cls.__name__)
        names.add(f"{cls.__module__}.{cls.__qualname__}")
    return names


def _is_of_type(obj: object, expected: str | type) -> bool:
    """Whether ``obj`` is an instance of ``expected``, a class or the name of a class in its MRO.

    Checking by name lets the context recognise FeatureSets, compute nodes, model graphs and
    experiments without importing the packages that define them.
    """
    if isinstance(expected, type):
        return isinstance(obj, expected)
    return expected in _type_names(obj)


class _class_or_instance_method(Generic[_R]):
    """A method that, called on the class, applies to the active context instead of an instance."""

    def __init__(self, func: Callable[[ExperimentContext], _R]) -> None:
        self.__func__ = func
        functools.update_wrapper(self, func)

    def __get__(self, instance: ExperimentContext | None, owner: type[ExperimentContext]) -> Callable[[], _R]:
        func = self.__func__

        @functools.wraps(func)
        def bound() -> _R:
            return func(instance if instance is not None else owner.get_active())

        return bound


class ExperimentContext:
    """Registry and lifecycle controller for a single Experiment.

    A context holds the :class:`~modularml.context.ExperimentNode` objects created while it is
    active (keyed by ``node_id``; labels are unique under the default policy), the
    ``ModelGraph`` and the ``Experiment`` they belong to, and the
    :class:`~modularml.context.RegistrationPolicy` applied to label collisions.
    """

    def __init__(
        self,
        *,
        experiment: Any | None = None,
        registration_policy: RegistrationPolicy | str | None = None,
    ) -> None:
        """Create an empty context.

        Args:
            experiment (Experiment, optional): Experiment to associate. Defaults to None.
            registration_policy (RegistrationPolicy | str, optional): How label collisions are
                handled. Defaults to ``error`` in scripts and ``overwrite_warn`` in notebooks.

        Raises:
            ValueError: If ``registration_policy`` names no policy.
            TypeError: If ``experiment`` is not an ``Experiment``.
        """
        self._nodes: dict[str, ExperimentNode] = {}
        self._model_graph: Any | None = None
        self._experiment: Any | None = None
        self._policy = (
            RegistrationPolicy.default() if registration_policy is None else RegistrationPolicy(registration_policy)
        )
        if experiment is not None:
            self.set_experiment(experiment)

    def __repr__(self) -> str:
        return (
            f"ExperimentContext(nodes={len(self._nodes)}, registration_policy={self._policy.value!r}, "
            f"experiment={self._experiment!r})"
        )

    # ------------------------------------------------------------------ activation and scopes

    @classmethod
    def get_active(cls) -> ExperimentContext:
        """Return the active ``ExperimentContext``.

        Args:
            cls (type[ExperimentContext]): Ignored class reference.

        Returns:
            ExperimentContext: The context activated most recently in the current
            ``contextvars`` context, or the process's default context if none is.
        """
        return _ACTIVE_CONTEXT.get()

    def activate(self) -> _Activation:
        """Make this context the active one: at once, or within a ``with`` block.

        Called on its own (``mml.ExperimentContext().activate()``), it stays active from then on
        (in the current ``contextvars`` context): the way to start clean, e.g. at the top of a
        notebook. In a ``with`` block it is active inside the block only: activations nest, and
        on exit the context that was active before is active again, even if an exception was
        raised.

        Returns:
            A context manager whose ``__enter__`` gives this context.

        Example:
            >>> mml.ExperimentContext().activate()  # a fresh, empty context from here on
            >>> with ExperimentContext(experiment=my_exp).activate():
            ...     ref.resolve()  # resolves using the context of `my_exp`
        """
        return _Activation(self)

    @contextmanager
    def temporary(self) -> Iterator[ExperimentContext]:
        """Create a fully isolated temporary execution scope.

        All modifications to the registered nodes (including their labels), the model graph,
        the registration policy and the experiment binding are reverted when the scope exits,
        even if an exception was raised. The context is also active inside the scope, so
        nodes created there register in it and are dropped on exit. The internal state of the
        nodes themselves (weights, splits, ...) is not restored. This is primarily used for
        cross-validation and other meta-execution procedures.

        Yields:
            ExperimentContext: This context.

        Example:
            >>> ctx = ExperimentContext.get_active()
            >>> with ctx.temporary():
            ...     ctx.set_registration_policy("overwrite")
            ...     ctx.register_experiment_node(new_fs)
            ...     run_fold()
            ... # context fully restored on exit
        """
        state = self.get_state()
        token = _ACTIVE_CONTEXT.set(self)
        try:
            yield self
        finally:
            _ACTIVE_CONTEXT.reset(token)
            self.set_state(state)

    @_class_or_instance_method
    @contextmanager
    def dont_register(self) -> Iterator[ExperimentContext]:
        """Temporarily disable ExperimentNode registration.

        Any nodes created inside this scope will not be registered to the context: its
        registration policy is ``no_register`` until the scope exits, when the previous policy
        is restored. Called on the class (``ExperimentContext.dont_register()``), it applies to
        the active context.

        Yields:
            ExperimentContext: The context whose registration is disabled.

        Example:
            >>> with ExperimentContext.dont_register():
            ...     internal_copy = ModelStage.from_state(...)
        """
        previous = self._policy
        self._policy = RegistrationPolicy.NO_REGISTER
        try:
            yield self
        finally:
            self._policy = previous

    # ------------------------------------------------------------------ policy and bindings

    @property
    def registration_policy(self) -> RegistrationPolicy:
        """The policy applied to new registrations (see :meth:`set_registration_policy`)."""
        return self._policy

    def set_registration_policy(self, policy: str | RegistrationPolicy) -> None:
        """Permanently set the registration policy.

        Args:
            policy (str | RegistrationPolicy): Policy name (any case) or enum.

        Raises:
            ValueError: If ``policy`` names no policy.
        """
        self._policy = RegistrationPolicy(policy)

    def get_experiment(self) -> Any | None:
        """Return the Experiment active in this context, if defined."""
        return self._experiment

    def set_experiment(self, experiment: Any, *, reset_registries: bool = False) -> None:
        """Set the experiment reference for this context.

        Args:
            experiment (Experiment): Experiment to associate.
            reset_registries (bool, optional): Whether to clear node registries (and the model
                graph) prior to association. Defaults to False.

        Raises:
            TypeError: If ``experiment`` is not an ``Experiment`` (checked by class name).
        """
        if not _is_of_type(experiment, "Experiment"):
            raise InvalidTypeError(f"Expected an Experiment; got {type(experiment).__name__} {experiment!r}.")
        if reset_registries:
            self._nodes = {}
            self._model_graph = None
        self._experiment = experiment

    @property
    def model_graph(self) -> Any | None:
        """The active ModelGraph instance in this context."""
        return self._model_graph

    def register_model_graph(self, graph: Any) -> None:
        """Register a ModelGraph to this context.

        An existing, different graph is handled by the registration policy: ``error`` raises,
        ``overwrite`` replaces it, ``overwrite_warn`` replaces it with a warning and
        ``no_register`` leaves the context unchanged.

        Args:
            graph (ModelGraph): Model graph instance to associate.

        Raises:
            TypeError: If ``graph`` is not a ``ModelGraph`` (checked by class name).
            ValueError: If overwrite is disallowed and a graph already exists.
        """
        if not _is_of_type(graph, "ModelGraph"):
            raise NodeTypeError(f"Expected a ModelGraph; got {type(graph).__name__} {graph!r}.")
        policy = self._policy
        if policy is RegistrationPolicy.NO_REGISTER or graph is self._model_graph:
            return
        existing = self._model_graph
        if existing is not None:
            if policy is RegistrationPolicy.ERROR:
                raise NodeCollisionError(
                    f"Cannot register ModelGraph {getattr(graph, 'label', graph)!r}: this ExperimentContext "
                    f"already has ModelGraph {getattr(existing, 'label', existing)!r}. Build one graph per "
                    "context, or allow replacement with ctx.set_registration_policy('overwrite')."
                )
            if policy is RegistrationPolicy.OVERWRITE_WARN:
                warn(
                    f"ModelGraph {getattr(existing, 'label', existing)!r} was replaced by "
                    f"{getattr(graph, 'label', graph)!r} in the ExperimentContext.",
                    RegistrationWarning,
                )
        self._model_graph = graph

    # ------------------------------------------------------------------ node registry

    @property
    def available_nodes(self) -> dict[str, ExperimentNode]:
        """All registered ExperimentNodes.

        Returns:
            dict[str, ExperimentNode]: Nodes keyed by node_id (a copy).
        """
        return dict(self._nodes)

    @property
    def available_featuresets(self) -> dict[str, Any]:
        """All registered FeatureSets (nodes with a class named ``FeatureSet`` in their MRO).

        Returns:
            dict[str, FeatureSet]: Nodes keyed by node_id.
        """
        return {node_id: node for node_id, node in self._nodes.items() if _is_of_type(node, "FeatureSet")}

    @property
    def available_computenodes(self) -> dict[str, Any]:
        """All registered ComputeNodes (nodes with a class named ``ComputeNode`` in their MRO).

        Returns:
            dict[str, ComputeNode]: Nodes keyed by node_id.
        """
        return {node_id: node for node_id, node in self._nodes.items() if _is_of_type(node, "ComputeNode")}

    def register_experiment_node(self, node: ExperimentNode, *, check_label_collision: bool = True) -> None:
        """Register a node with optional collision handling.

        A collision, with a registered node that has the same label or the same node_id, is
        handled by the registration policy: ``error`` raises, ``overwrite`` replaces the
        existing node, ``overwrite_warn`` replaces it with a warning, and ``no_register``
        registers nothing. Registering a node that is already registered does nothing.

        Args:
            node (ExperimentNode): Node to register in this context.
            check_label_collision (bool, optional): Whether to enforce uniqueness for labels.
                Defaults to True.

        Raises:
            TypeError: If ``node`` is not an ``ExperimentNode``.
            ValueError: If duplicates are encountered under ``RegistrationPolicy.ERROR``.
        """
        if not isinstance(node, ExperimentNode):
            raise NodeTypeError(f"Only an ExperimentNode can be registered; got {type(node).__name__} {node!r}.")
        policy = self._policy
        if policy is RegistrationPolicy.NO_REGISTER:
            return
        same_id = self._nodes.get(node.node_id)
        if same_id is node:
            return
        replaced: list[ExperimentNode] = []
        if same_id is not None:
            if policy is RegistrationPolicy.ERROR:
                raise NodeCollisionError(
                    f"Cannot register {type(node).__name__} {node.label!r}: node_id {node.node_id!r} is already "
                    f"used by {type(same_id).__name__} {same_id.label!r} in this ExperimentContext. Remove it with "
                    f"ctx.remove_node(node_id={node.node_id!r}), or allow replacement with "
                    "ctx.set_registration_policy('overwrite')."
                )
            replaced.append(same_id)
        if check_label_collision:
            for existing in self._nodes.values():
                if existing.label != node.label or existing is same_id:
                    continue
                if policy is RegistrationPolicy.ERROR:
                    raise NodeCollisionError(
                        f"Cannot register {type(node).__name__} {node.label!r}: the label {node.label!r} is already "
                        f"used by {type(existing).__name__} with node_id {existing.node_id!r} in this "
                        f"ExperimentContext. Choose another label, remove the existing node with "
                        f"ctx.remove_node(label={node.label!r}), or allow replacement with "
                        "ctx.set_registration_policy('overwrite')."
                    )
                replaced.append(existing)
        for old in replaced:
            del self._nodes[old.node_id]
        self._nodes[node.node_id] = node
        if replaced and policy is RegistrationPolicy.OVERWRITE_WARN:
            olds = ", ".join(f"{type(old).__name__} {old.label!r} (node_id {old.node_id!r})" for old in replaced)
            warn(
                f"{olds} was replaced in the ExperimentContext by {type(node).__name__} {node.label!r} "
                f"(node_id {node.node_id!r}).",
                RegistrationWarning,
            )

    def has_node(self, *, node_id: str | None = None, label: str | None = None) -> bool:
        """Check whether node is registered in this context.

        Args:
            node_id (str, optional): ID of the node. Exactly one of node_id and label is given.
            label (str, optional): Label of the node.

        Returns:
            bool: Whether a node with that id or label is registered.

        Raises:
            ValueError: If neither or both of node_id / label are provided.
        """
        _require_exactly_one(node_id=node_id, label=label)
        if node_id is not None:
            return node_id in self._nodes
        return any(node.label == label for node in self._nodes.values())

    def get_node(
        self,
        val: str | None = None,
        *,
        node_id: str | None = None,
        label: str | None = None,
        enforce_type: str | type | None = "ExperimentNode",
    ) -> ExperimentNode:
        """Retrieve the specified node, as registered in this context.

        Args:
            val (str, optional): Either the ID or label of a node. ID is checked first. If
                provided, node_id and label must be None.
            node_id (str, optional): ID of node to retrieve. If provided, val and label must
                be None.
            label (str, optional): Label of node to retrieve. If provided, val and node_id
                must be None.
            enforce_type (str | type, optional): The node must be an instance of this class,
                given as a class or as the name of a class in the node's MRO (bare, such as
                ``"FeatureSet"``, or qualified with its module). None skips the check.
                Defaults to "ExperimentNode".

        Returns:
            ExperimentNode: The registered node.

        Raises:
            ValueError: If not exactly one of val, node_id and label is given, or if the label
                is shared by several nodes (registered with ``check_label_collision=False``).
            KeyError: If no such node is registered.
            TypeError: If the node is not of type ``enforce_type``.
        """
        _require_exactly_one(val=val, node_id=node_id, label=label)
        if val is not None:
            node = self._nodes.get(val)
            if node is None:  # not `or`: a node may define __len__ and be falsy
                node = self._find_by_label(val)
            wanted = f"id or label {val!r}"
        elif node_id is not None:
            node = self._nodes.get(node_id)
            wanted = f"node_id {node_id!r}"
        else:
            node = self._find_by_label(label)
            wanted = f"label {label!r}"
        if node is None:
            known = sorted(n.label for n in self._nodes.values())
            raise NodeNotFoundError(
                f"No node with {wanted} is registered in this ExperimentContext. Registered labels: {known}."
            )
        if enforce_type is not None and not _is_of_type(node, enforce_type):
            expected = enforce_type.__name__ if isinstance(enforce_type, type) else enforce_type
            raise NodeTypeError(
                f"Node {node.label!r} (node_id {node.node_id!r}) is a {type(node).__name__}, not a {expected}."
            )
        return node

    def update_node_label(self, node_id: str, new_label: str, *, check_label_collision: bool = True) -> None:
        """Update the label mapping for a registered node.

        The registration policy does not apply: renaming onto a label in use is always
        refused while ``check_label_collision`` is True.

        Args:
            node_id (str): Identifier of the node whose label is updated.
            new_label (str): Replacement label.
            check_label_collision (bool, optional): Whether to enforce uniqueness of labels.
                Defaults to True.

        Raises:
            KeyError: If the node ID is not registered.
            ValueError: If ``new_label`` is invalid, or if a collision occurs and
                check_label_collision is True.
        """
        node = self._nodes.get(node_id)
        if node is None:
            raise NodeNotFoundError(f"No node with node_id {node_id!r} is registered in this ExperimentContext.")
        validate_label(new_label)
        if check_label_collision:
            for other in self._nodes.values():
                if other is not node and other.label == new_label:
                    raise NodeCollisionError(
                        f"Cannot rename {type(node).__name__} {node.label!r} to {new_label!r}: the label is already "
                        f"used by {type(other).__name__} with node_id {other.node_id!r}. Choose another label, or "
                        f"remove that node first with ctx.remove_node(node_id={other.node_id!r})."
                    )
        node._label = new_label

    def remove_node(
        self,
        *,
        node_id: str | None = None,
        label: str | None = None,
        error_if_missing: bool = True,
    ) -> ExperimentNode | None:
        """Remove a registered ExperimentNode from this context.

        Exactly one of node_id or label must be provided. The model graph is not edited.

        Args:
            node_id (str | None): Internal node UUID to remove.
            label (str | None): Node label to remove.
            error_if_missing (bool): Whether to raise if the node does not exist.

        Returns:
            ExperimentNode | None: The removed node if found, otherwise None.

        Raises:
            ValueError: If neither or both of node_id / label are provided, or if the label is
                shared by several nodes.
            KeyError: If the node does not exist and error_if_missing=True.
        """
        _require_exactly_one(node_id=node_id, label=label)
        node = self._nodes.get(node_id) if node_id is not None else self._find_by_label(label)
        if node is None:
            if error_if_missing:
                wanted = f"node_id {node_id!r}" if node_id is not None else f"label {label!r}"
                raise NodeNotFoundError(
                    f"Cannot remove the node with {wanted}: it is not registered in this ExperimentContext. "
                    "Pass error_if_missing=False to ignore missing nodes."
                )
            return None
        del self._nodes[node.node_id]
        return node

    # ------------------------------------------------------------------ snapshots

    def get_state(self) -> dict[str, Any]:
        """Capture the current registration state for restoration.

        The snapshot holds references to the registered objects (it is an in-memory snapshot,
        not a file format): the nodes keyed by id, their labels, the model graph, the
        registration policy and the experiment.

        Returns:
            dict[str, Any]: Snapshot that can be supplied to :meth:`set_state`.
        """
        return {
            "nodes": dict(self._nodes),
            "labels": {node_id: node.label for node_id, node in self._nodes.items()},
            "model_graph": self._model_graph,
            "registration_policy": self._policy,
            "experiment": self._experiment,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the context from a state snapshot.

        The registered nodes are replaced by those of the snapshot, and their labels reset to
        the labels they had when it was taken.

        Args:
            state (dict[str, Any]): Snapshot produced by :meth:`get_state`.

        Raises:
            TypeError: If ``state`` is not a mapping or holds a non-node under ``"nodes"``.
            ValueError: If a key is missing or the policy is unknown.
        """
        if not isinstance(state, Mapping):
            raise InvalidTypeError(f"A context state is the dict returned by get_state(); got {type(state).__name__}.")
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise InvalidArgumentError(
                f"The context state lacks {missing}; pass the dict returned by ExperimentContext.get_state()."
            )
        nodes = dict(state["nodes"])
        for node_id, node in nodes.items():
            if not isinstance(node, ExperimentNode):
                raise NodeTypeError(f"The context state holds {type(node).__name__} {node!r} under node {node_id!r}.")
        policy = RegistrationPolicy(state["registration_policy"])
        labels = {node_id: validate_label(label) for node_id, label in dict(state["labels"]).items()}
        for node_id, label in labels.items():
            if node_id in nodes:
                nodes[node_id]._label = label
        self._nodes = nodes
        self._model_graph = state["model_graph"]
        self._policy = policy
        self._experiment = state["experiment"]

    # ------------------------------------------------------------------ helpers

    def is_registered(self, node: ExperimentNode) -> bool:
        """Whether this very node object is registered here."""
        return self._nodes.get(node.node_id) is node

    def _find_by_label(self, label: str | None) -> ExperimentNode | None:
        matches = [node for node in self._nodes.values() if node.label == label]
        if len(matches) > 1:
            ids = [node.node_id for node in matches]
            raise NodeCollisionError(
                f"The label {label!r} is shared by several registered nodes (node_ids {ids}); look the node up "
                "by node_id instead."
            )
        return matches[0] if matches else None


def _require_exactly_one(**candidates: object) -> None:
    given = [name for name, value in candidates.items() if value is not None]
    if len(given) != 1:
        names = " / ".join(candidates)
        detail = "none was" if not given else f"{', '.join(given)} were"
        raise InvalidArgumentError(f"Give exactly one of {names}; {detail} given.")


#: The active context. Its default, created with this module, is the process's default context:
#: one shared, mutable object on purpose (B039), seen wherever no context has been activated.
#: Creating it eagerly keeps it unique without a lock; it costs a few empty dicts.
_ACTIVE_CONTEXT: ContextVar[ExperimentContext] = ContextVar(
    "modularml_active_experiment_context",
    default=ExperimentContext(),  # noqa: B039
)
