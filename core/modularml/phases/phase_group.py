"""``PhaseGroup``: a named, ordered collection of experiment phases and nested phase groups."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml.losses.applied_loss import AppliedLoss
from modularml.phases.base import ExperimentPhase
from modularml.phases.callback import Callback
from modularml.phases.eval_phase import EvalPhase
from modularml.phases.fit_phase import FitPhase
from modularml.phases.input_binding import InputBinding
from modularml.phases.recording import ResultRecording
from modularml.phases.scheduling import BatchSchedulingPolicy
from modularml.phases.train_phase import TrainPhase

if TYPE_CHECKING:
    from modularml.nodes import GraphNode

__all__ = ["PhaseGroup", "phase_from_config"]

#: Value of ``"kind"`` in a PhaseGroup config (phase configs carry ``"phase_kind"`` instead).
GROUP_KIND = "phase_group"

_T = TypeVar("_T")


def _phase_classes() -> dict[str, type[ExperimentPhase]]:
    """Phase classes by ``phase_kind``: the built-ins first, then any other subclass (first one wins)."""
    found: dict[str, type[ExperimentPhase]] = {"train": TrainPhase, "eval": EvalPhase, "fit": FitPhase}
    stack = list(ExperimentPhase.__subclasses__())
    while stack:
        cls = stack.pop(0)
        found.setdefault(cls.phase_kind, cls)
        stack.extend(cls.__subclasses__())
    return found


def phase_from_config(config: dict[str, Any]) -> ExperimentPhase:
    """Rebuild a phase from its ``get_config()`` output, choosing the class by ``"phase_kind"``.

    Raises:
        TypeError: If ``config`` is not a dict.
        ValueError: If its ``phase_kind`` is missing or unknown.
    """
    if not isinstance(config, dict):
        raise InvalidTypeError(f"A phase config is a dict; got {type(config).__name__}.")
    kind = config.get("phase_kind")
    classes = _phase_classes()
    cls = classes.get(kind) if isinstance(kind, str) else None
    if cls is None or not hasattr(cls, "from_config"):
        raise InvalidArgumentError(
            f"Unknown phase_kind {kind!r} in phase config (label {config.get('label')!r}); "
            f"known kinds: {sorted(classes)}."
        )
    return cls.from_config(config)


class PhaseGroup:
    """A named collection of experiment phases or nested phase groups, in execution order.

    PhaseGroups organise related phases (e.g. a training phase followed by evaluation phases).
    They nest: a group may contain other groups. Labels are unique among the direct items of a
    group (a phase and a sub-group may not share a label either); different groups may reuse a
    label.

    Args:
        label (str): Name of this group.
        phases (list[ExperimentPhase | PhaseGroup] | None): Initial phases or nested groups,
            in execution order.

    Raises:
        TypeError: If ``label`` is not a non-empty string, or an item is neither a phase nor a group.
        ValueError: If two items share a label, or a group would contain itself.

    Examples:
        >>> group = PhaseGroup("training_workflow")
        >>> group.add_phase(train_phase).add_phase(eval_phase)
        >>> [p.label for p in group.flatten()]
        ['train', 'eval']
    """

    def __init__(self, label: str, phases: Sequence[ExperimentPhase | PhaseGroup] | None = None) -> None:
        if not isinstance(label, str) or not label:
            raise InvalidTypeError(f"A PhaseGroup label is a non-empty string; got {label!r}.")
        self.label = label
        self._items: list[ExperimentPhase | PhaseGroup] = []
        if phases is not None:
            if isinstance(phases, (ExperimentPhase, PhaseGroup, str)) or not isinstance(phases, Iterable):
                raise InvalidTypeError(
                    f"phases is a list of phases or PhaseGroups; got {type(phases).__name__}. Wrap a single item "
                    "in a list."
                )
            self.add_items(phases)

    # ------------------------------------------------------------------ adding
    def _check_new(self, item: Any, taken: set[str]) -> None:
        if not isinstance(item, (ExperimentPhase, PhaseGroup)):
            raise InvalidTypeError(
                f"PhaseGroup {self.label!r} holds TrainPhase, EvalPhase, FitPhase or PhaseGroup items; "
                f"got {type(item).__name__} ({item!r:.80})."
            )
        if item.label in taken:
            raise InvalidArgumentError(
                f"PhaseGroup {self.label!r} already has an item labelled {item.label!r}; labels are unique within "
                f"a group (current labels: {[i.label for i in self._items]}). Give the new "
                f"{type(item).__name__} another label."
            )
        if isinstance(item, PhaseGroup) and (item is self or item._contains_group(self)):
            raise InvalidArgumentError(
                f"Cannot add PhaseGroup {item.label!r} to {self.label!r}: a group may not contain itself, directly "
                "or through nested groups."
            )

    def _contains_group(self, group: PhaseGroup) -> bool:
        for item in self._items:
            if isinstance(item, PhaseGroup) and (item is group or item._contains_group(group)):
                return True
        return False

    def add_item(self, item: ExperimentPhase | PhaseGroup) -> PhaseGroup:
        """Register a phase or phase group at the end of this collection.

        Args:
            item (ExperimentPhase | PhaseGroup): New phase or phase group to append. Its label must
                be unique among the items of this group.

        Returns:
            PhaseGroup: self

        Raises:
            TypeError: If ``item`` is neither a phase nor a PhaseGroup.
            ValueError: If its label is taken in this group, or it would make a group contain itself.
        """
        self._check_new(item, {i.label for i in self._items})
        self._items.append(item)
        return self

    def add_items(self, items: Iterable[ExperimentPhase | PhaseGroup]) -> PhaseGroup:
        """Register several phases or groups, in order; nothing is added if any of them is invalid.

        Args:
            items (Iterable[ExperimentPhase | PhaseGroup]): New phases or groups to append. All labels
                must be unique within this group (among themselves and the existing items).

        Returns:
            PhaseGroup: self

        Raises:
            TypeError: If ``items`` is not iterable or holds something that is neither a phase nor a group.
            ValueError: If a label is duplicated, or a group would contain itself.
        """
        if isinstance(items, (ExperimentPhase, PhaseGroup, str)) or not isinstance(items, Iterable):
            raise InvalidTypeError(f"add_items() takes an iterable of phases or PhaseGroups; got {items!r:.80}.")
        new = list(items)
        taken = {i.label for i in self._items}
        for item in new:
            self._check_new(item, taken)
            taken.add(item.label)
        self._items.extend(new)
        return self

    def add_phase(self, phase: ExperimentPhase) -> PhaseGroup:
        """Register a fully constructed phase; phases run in the order they are added.

        Args:
            phase (ExperimentPhase): A TrainPhase, EvalPhase or FitPhase.

        Returns:
            PhaseGroup: self

        Raises:
            TypeError: If ``phase`` is not an ExperimentPhase (use :meth:`add_group` for groups).
            ValueError: If its label is taken in this group.
        """
        if not isinstance(phase, ExperimentPhase):
            hint = " Use add_group() for a PhaseGroup." if isinstance(phase, PhaseGroup) else ""
            raise InvalidTypeError(f"add_phase() takes a TrainPhase, EvalPhase or FitPhase; got {phase!r:.80}.{hint}")
        return self.add_item(phase)

    def add_group(self, group: PhaseGroup) -> PhaseGroup:
        """Register a fully constructed phase group to nest under this one.

        Args:
            group (PhaseGroup): The group to append; it runs after the items added before it.

        Returns:
            PhaseGroup: self

        Raises:
            TypeError: If ``group`` is not a PhaseGroup (use :meth:`add_phase` for phases).
            ValueError: If its label is taken in this group, or it contains this group.
        """
        if not isinstance(group, PhaseGroup):
            hint = " Use add_phase() for a phase." if isinstance(group, ExperimentPhase) else ""
            raise InvalidTypeError(f"add_group() takes a PhaseGroup; got {group!r:.80}.{hint}")
        return self.add_item(group)

    def add_train_phase(
        self,
        label: str,
        *,
        input_sources: list[InputBinding],
        losses: list[AppliedLoss],
        n_epochs: int = 1,
        active_nodes: list[str | GraphNode] | None = None,
        batch_schedule: BatchSchedulingPolicy | str = BatchSchedulingPolicy.ZIP_STRICT,
        callbacks: list[Callback] | None = None,
        result_recording: ResultRecording | str = ResultRecording.ALL,
    ) -> PhaseGroup:
        """Construct and register a new :class:`TrainPhase`.

        Args:
            label (str): Label of the training phase; unique within this group.
            input_sources (list[InputBinding]): Training bindings (with samplers) of the head nodes.
            losses (list[AppliedLoss]): Losses to train on.
            n_epochs (int): Number of epochs. Defaults to 1.
            active_nodes (list[str | GraphNode] | None): Nodes to train; all when None.
            batch_schedule (BatchSchedulingPolicy | str): How batches of several samplers are
                scheduled. Defaults to ``"zip_strict"``.
            callbacks (list[Callback] | None): Callbacks run during the phase.
            result_recording (ResultRecording | str): Which execution contexts the results keep.
                Defaults to ``"all"``.

        Returns:
            PhaseGroup: self

        Raises:
            ValueError: If the label is taken, or the phase arguments are invalid (see TrainPhase).
        """
        self._check_label_free(label)
        phase = TrainPhase(
            label,
            input_sources=input_sources,
            losses=losses,
            n_epochs=n_epochs,
            active_nodes=active_nodes,
            batch_schedule=batch_schedule,
            callbacks=callbacks,
            result_recording=result_recording,
        )
        return self.add_item(phase)

    #: Alias of :meth:`add_train_phase`.
    add_train = add_train_phase
    #: Alias of :meth:`add_train_phase`.
    add_training = add_train_phase

    def add_eval_phase(
        self,
        label: str,
        *,
        input_sources: list[InputBinding],
        losses: list[AppliedLoss] | None = None,
        active_nodes: list[str | GraphNode] | None = None,
        callbacks: list[Callback] | None = None,
        batch_size: int | None = None,
    ) -> PhaseGroup:
        """Construct and register a new :class:`EvalPhase`.

        Args:
            label (str): Label of the evaluation phase; unique within this group.
            input_sources (list[InputBinding]): Input bindings for each head node.
            losses (list[AppliedLoss] | None): Losses computed during evaluation.
            active_nodes (list[str | GraphNode] | None): Nodes to run; all when None.
            callbacks (list[Callback] | None): Callbacks run during the phase.
            batch_size (int | None): Samples per forward pass; all at once when None.

        Returns:
            PhaseGroup: self

        Raises:
            ValueError: If the label is taken, or the phase arguments are invalid (see EvalPhase).
        """
        self._check_label_free(label)
        phase = EvalPhase(
            label,
            input_sources=input_sources,
            losses=losses,
            active_nodes=active_nodes,
            batch_size=batch_size,
            callbacks=callbacks,
        )
        return self.add_item(phase)

    #: Alias of :meth:`add_eval_phase`.
    add_eval = add_eval_phase
    #: Alias of :meth:`add_eval_phase`.
    add_evaluation = add_eval_phase

    def add_fit_phase(
        self,
        label: str,
        *,
        input_sources: list[InputBinding],
        losses: list[AppliedLoss] | None = None,
        active_nodes: list[str | GraphNode] | None = None,
        freeze_after_fit: bool = True,
        callbacks: list[Callback] | None = None,
    ) -> PhaseGroup:
        """Construct and register a new :class:`FitPhase`.

        Args:
            label (str): Label of the fit phase; unique within this group.
            input_sources (list[InputBinding]): Bindings of the head nodes (one FeatureSet).
            losses (list[AppliedLoss] | None): Losses computed after fitting.
            active_nodes (list[str | GraphNode] | None): Nodes to fit; all when None.
            freeze_after_fit (bool): Freeze the fitted nodes afterwards. Defaults to True.
            callbacks (list[Callback] | None): Callbacks run during the phase.

        Returns:
            PhaseGroup: self

        Raises:
            ValueError: If the label is taken.
        """
        self._check_label_free(label)
        phase = FitPhase(
            label,
            input_sources=input_sources,
            losses=losses,
            active_nodes=active_nodes,
            freeze_after_fit=freeze_after_fit,
            callbacks=callbacks,
        )
        return self.add_item(phase)

    #: Alias of :meth:`add_fit_phase`.
    add_fit = add_fit_phase

    def _check_label_free(self, label: Any) -> None:
        if isinstance(label, str) and any(i.label == label for i in self._items):
            raise InvalidArgumentError(
                f"PhaseGroup {self.label!r} already has an item labelled {label!r}; labels are unique within a group "
                f"(current labels: {[i.label for i in self._items]}). Choose another label."
            )

    # ------------------------------------------------------------------ access
    @property
    def all(self) -> list[ExperimentPhase | PhaseGroup]:
        """All registered phases and phase groups of this level, in execution order (a copy).

        Use :meth:`flatten` to unravel nested groups into a single list of phases.
        """
        return list(self._items)

    @property
    def phases(self) -> dict[str, ExperimentPhase]:
        """Only the top-level registered phases, keyed by label."""
        return {i.label: i for i in self._items if isinstance(i, ExperimentPhase)}

    @property
    def phase_groups(self) -> dict[str, PhaseGroup]:
        """Only the top-level registered phase groups, keyed by label."""
        return {i.label: i for i in self._items if isinstance(i, PhaseGroup)}

    def items(self) -> Iterator[tuple[str, ExperimentPhase | PhaseGroup]]:
        """Iterate over ``(label, phase or group)`` pairs of this level (in registration order)."""
        for item in list(self._items):
            yield item.label, item

    def flatten(self) -> list[ExperimentPhase]:
        """All phases of this group and its nested groups (depth first), in execution order."""
        out: list[ExperimentPhase] = []
        for item in self._items:
            if isinstance(item, PhaseGroup):
                out.extend(item.flatten())
            else:
                out.append(item)
        return out

    def _index_of(self, key: Any) -> int:
        """Position of the item named by ``key`` (position, label or instance) in :attr:`all`."""
        if isinstance(key, bool):
            raise InvalidTypeError(f"An item is named by its position (int), label (str) or instance; got {key!r}.")
        if isinstance(key, int):
            n = len(self._items)
            if not -n <= key < n:
                raise NotRegisteredError(
                    f"PhaseGroup {self.label!r} has no item at position {key}; it holds {n} item(s)."
                )
            return key % n
        if isinstance(key, str):
            for index, item in enumerate(self._items):
                if item.label == key:
                    return index
            raise NotRegisteredError(
                f"PhaseGroup {self.label!r} has no item labelled {key!r}; its labels are "
                f"{[i.label for i in self._items]}."
            )
        if isinstance(key, (ExperimentPhase, PhaseGroup)):
            for index, item in enumerate(self._items):
                if item is key:
                    return index
            raise NotRegisteredError(
                f"{type(key).__name__} {key.label!r} is not registered in PhaseGroup {self.label!r} (items are "
                "matched by identity; pass the label to match by name)."
            )
        raise InvalidTypeError(
            f"An item is named by its position (int), label (str) or instance; got {type(key).__name__}."
        )

    def _get(self, key: Any, cls: type[_T], what: str) -> _T:
        item = self._items[self._index_of(key)]
        if not isinstance(item, cls):
            raise InvalidTypeError(
                f"Item {key!r} of PhaseGroup {self.label!r} is a {type(item).__name__} ({item.label!r}), not a {what}."
            )
        return item

    def get_phase(self, key: int | str) -> ExperimentPhase:
        """Retrieve a registered phase of this group by label or position in :attr:`all`.

        Raises:
            KeyError: If no item has that label or position.
            TypeError: If the item is a PhaseGroup.
        """
        return self._get(key, ExperimentPhase, "phase")

    def get_train_phase(self, key: int | str) -> TrainPhase:
        """Retrieve a registered training phase by label or position in :attr:`all`.

        Raises:
            KeyError: If no item has that label or position.
            TypeError: If the item is not a TrainPhase.
        """
        return self._get(key, TrainPhase, "TrainPhase")

    def get_eval_phase(self, key: int | str) -> EvalPhase:
        """Retrieve a registered evaluation phase by label or position in :attr:`all`.

        Raises:
            KeyError: If no item has that label or position.
            TypeError: If the item is not an EvalPhase.
        """
        return self._get(key, EvalPhase, "EvalPhase")

    def get_fit_phase(self, key: int | str) -> FitPhase:
        """Retrieve a registered fit phase by label or position in :attr:`all`.

        Raises:
            KeyError: If no item has that label or position.
            TypeError: If the item is not a FitPhase.
        """
        return self._get(key, FitPhase, "FitPhase")

    def get_group(self, key: int | str) -> PhaseGroup:
        """Retrieve a registered sub-group by label or position in :attr:`all`.

        Raises:
            KeyError: If no item has that label or position.
            TypeError: If the item is a phase.
        """
        return self._get(key, PhaseGroup, "PhaseGroup")

    # ------------------------------------------------------------------ removing
    def remove_item(self, item: int | str | ExperimentPhase | PhaseGroup) -> PhaseGroup:
        """Remove a phase or phase group by position, label or instance.

        Returns:
            PhaseGroup: self

        Raises:
            KeyError: If nothing matches ``item``.
        """
        del self._items[self._index_of(item)]
        return self

    def remove_items(self, items: Iterable[int | str | ExperimentPhase | PhaseGroup]) -> PhaseGroup:
        """Remove several phases or groups; positions refer to the items before any removal.

        Nothing is removed if any entry matches nothing.

        Returns:
            PhaseGroup: self

        Raises:
            KeyError: If an entry matches nothing.
        """
        if isinstance(items, (str, ExperimentPhase, PhaseGroup)) or not isinstance(items, Iterable):
            raise InvalidTypeError(f"remove_items() takes a list of positions, labels or items; got {items!r:.80}.")
        indices = {self._index_of(key) for key in items}
        self._items = [item for index, item in enumerate(self._items) if index not in indices]
        return self

    def remove_phase(self, phase: int | str | ExperimentPhase) -> PhaseGroup:
        """Remove a phase by position, label or instance.

        Returns:
            PhaseGroup: self

        Raises:
            KeyError: If nothing matches ``phase``.
            TypeError: If it names a PhaseGroup (use :meth:`remove_group`).
        """
        self._get(phase, ExperimentPhase, "phase")
        return self.remove_item(phase)

    def remove_group(self, group: int | str | PhaseGroup) -> PhaseGroup:
        """Remove a sub-group by position, label or instance.

        Returns:
            PhaseGroup: self

        Raises:
            KeyError: If nothing matches ``group``.
            TypeError: If it names a phase (use :meth:`remove_phase`).
        """
        self._get(group, PhaseGroup, "PhaseGroup")
        return self.remove_item(group)

    def clear(self) -> PhaseGroup:
        """Remove all phases and groups of this group.

        Returns:
            PhaseGroup: self
        """
        self._items.clear()
        return self

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this group: its label and the configs of its items, in order.

        Phase configs do not include phase callbacks (see ``ExperimentPhase.get_config``).
        """
        return {
            "kind": GROUP_KIND,
            "label": self.label,
            "items": [item.get_config() for item in self._items],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PhaseGroup:
        """Rebuild a phase group (and its nested groups and phases) from :meth:`get_config` output.

        Phases rebuild their input bindings against the active ExperimentContext, so the nodes and
        FeatureSets they name must be registered there.

        Raises:
            TypeError: If ``config`` is not a dict.
            ValueError: If it is not a PhaseGroup config, or an item config is unknown.
        """
        if not isinstance(config, dict):
            raise InvalidTypeError(f"A PhaseGroup config is a dict; got {type(config).__name__}.")
        if config.get("kind") != GROUP_KIND or "label" not in config:
            raise InvalidArgumentError(
                f"Not a PhaseGroup config (expected kind {GROUP_KIND!r} and a label); got keys {sorted(config)}."
            )
        items: list[ExperimentPhase | PhaseGroup] = []
        for item_config in config.get("items") or []:
            if isinstance(item_config, dict) and item_config.get("kind") == GROUP_KIND:
                items.append(cls.from_config(item_config))
            else:
                items.append(phase_from_config(item_config))
        return cls(config["label"], items)

    # ------------------------------------------------------------------ dunder
    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[ExperimentPhase | PhaseGroup]:
        return iter(list(self._items))

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return any(item.label == key for item in self._items)
        return any(item is key for item in self._items)

    def __repr__(self) -> str:
        return f"PhaseGroup(label={self.label!r}, items={[i.label for i in self._items]})"
