"""``ExecutionContext``: everything about one execution step (phase, epoch, batch) of a model graph."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from modularml.batches.batch import Batch
from modularml.batches.batch_view import BatchView
from modularml.batches.tensors import detach_value
from modularml.context.fold import active_fold
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError

__all__ = ["ExecutionContext"]

#: The key of an input: ``(head node id, upstream reference)``.
InputKey = tuple[str, Hashable]


@dataclass
class ExecutionContext:
    """One execution step: the inputs a phase feeds the graph, and what the graph produced.

    Phases create one context per step (a FitPhase one for the whole dataset) and the model graph
    fills in outputs and losses; results keep the contexts per epoch and batch.

    Attributes:
        phase_label (str): Label of the phase that created the step.
        epoch_idx (int): Epoch index (0 for evaluation and fit phases).
        batch_idx (int): Batch index within the epoch.
        inputs (dict[tuple[str, FeatureSetReference], BatchView | Batch]): Input per
            ``(head node id, upstream FeatureSetReference)``: a BatchView until materialised.
        outputs (dict[str, Batch]): Output batch per node id.
        losses (dict[str, Any]): Loss value per loss label (backend scalars or per-sample tensors).
        fold (str | None): The cross-validation fold the step ran in (the active
            :func:`~modularml.context.fold_scope` when the context was made); None outside one.
    """

    phase_label: str
    epoch_idx: int = 0
    batch_idx: int = 0
    inputs: dict[InputKey, BatchView | Batch] = field(default_factory=dict)
    outputs: dict[str, Batch] = field(default_factory=dict)
    losses: dict[str, Any] = field(default_factory=dict)
    fold: str | None = field(default_factory=active_fold)

    def __post_init__(self) -> None:
        if not isinstance(self.phase_label, str):
            raise InvalidTypeError(f"phase_label is a string; got {self.phase_label!r}.")
        for name in ("epoch_idx", "batch_idx"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgumentError(f"{name} is an int >= 0; got {value!r}.")
        for key, value in self.inputs.items():
            self._check_input(key, value)

    @classmethod
    def trusted(cls, phase_label: str, epoch_idx: int, batch_idx: int, inputs: dict[InputKey, Any]) -> ExecutionContext:
        """A context from already valid parts, without checks (phases make one per training step)."""
        ctx = cls.__new__(cls)
        ctx.phase_label, ctx.epoch_idx, ctx.batch_idx = phase_label, epoch_idx, batch_idx
        ctx.inputs, ctx.outputs, ctx.losses = inputs, {}, {}
        ctx.fold = active_fold()
        return ctx

    @staticmethod
    def _check_input(key: Any, value: Any) -> None:
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str)):
            raise InvalidTypeError(f"An input key is (head node id, upstream reference); got {key!r}.")
        if not isinstance(value, (BatchView, Batch)):
            raise InvalidTypeError(f"An input is a BatchView or a Batch; got {type(value).__name__} for {key!r}.")

    # -- inputs -------------------------------------------------------------------------------------------
    def set_input(self, node_id: str, upstream_ref: Hashable, data: BatchView | Batch) -> None:
        """Set the input of head node ``node_id`` from ``upstream_ref``.

        Raises:
            TypeError: If ``data`` is not a BatchView or Batch.
        """
        key = (node_id, upstream_ref)
        self._check_input(key, data)
        self.inputs[key] = data

    def get_input(self, node_id: str, upstream_ref: Hashable | None = None) -> BatchView | Batch:
        """The input of head node ``node_id`` (from ``upstream_ref``; optional if it has one input).

        Raises:
            KeyError: If there is no such input, or ``upstream_ref`` is needed to choose.
        """
        if upstream_ref is not None:
            try:
                return self.inputs[(node_id, upstream_ref)]
            except KeyError:
                raise NotRegisteredError(
                    f"No input for node {node_id!r} from {upstream_ref!r}; inputs: {list(self.inputs)}."
                ) from None
        found = [value for (node, _), value in self.inputs.items() if node == node_id]
        if len(found) != 1:
            refs = [ref for (node, ref) in self.inputs if node == node_id]
            raise NotRegisteredError(
                f"Node {node_id!r} has {len(found)} inputs ({refs}); pass upstream_ref to choose one."
                if found
                else f"No input for node {node_id!r}; inputs are for nodes {sorted({n for n, _ in self.inputs})}."
            )
        return found[0]

    def materialize_inputs(self, fmt: str = "numpy") -> dict[InputKey, Batch]:
        """Gather every BatchView input into a Batch of format ``fmt`` and store it in place.

        A reference with a ``columns`` attribute (a FeatureSetReference) limits the columns read to
        those it names. Inputs already materialised are converted to ``fmt``.

        Returns:
            dict: The materialised inputs, keyed as :attr:`inputs`.
        """
        for key, value in list(self.inputs.items()):
            if isinstance(value, BatchView):
                columns = list(getattr(key[1], "columns", []) or []) or None
                self.inputs[key] = value.materialize_batch(fmt, columns=columns)
            else:
                self.inputs[key] = value.to_format(fmt)
        return dict(self.inputs)  # type: ignore[arg-type]

    # -- outputs and losses -----------------------------------------------------------------------------
    def set_output(self, node_id: str, batch: Batch) -> None:
        """Record the output batch of node ``node_id``.

        Raises:
            TypeError: If ``batch`` is not a Batch.
        """
        if not isinstance(batch, Batch):
            raise InvalidTypeError(f"A node output is a Batch; got {type(batch).__name__} for node {node_id!r}.")
        self.outputs[node_id] = batch

    def get_output(self, node_id: str) -> Batch:
        """The output batch of node ``node_id``.

        Raises:
            KeyError: If the node has no output in this step.
        """
        try:
            return self.outputs[node_id]
        except KeyError:
            raise NotRegisteredError(
                f"Node {node_id!r} has no output in this step; outputs exist for {sorted(self.outputs)}."
            ) from None

    def add_loss(self, label: str, value: Any) -> None:
        """Record the value of the loss labelled ``label``.

        Raises:
            ValueError: If a loss with that label was already recorded in this step.
        """
        if label in self.losses:
            raise InvalidArgumentError(f"Loss {label!r} is already recorded for this step; give each loss a label.")
        self.losses[label] = value

    def detach_tensors(self) -> ExecutionContext:
        """A copy whose outputs, materialised inputs and losses are detached from autograd graphs (for results)."""
        ctx = ExecutionContext.__new__(ExecutionContext)  # every part is already valid: no checks again
        ctx.phase_label, ctx.epoch_idx, ctx.batch_idx, ctx.fold = (
            self.phase_label,
            self.epoch_idx,
            self.batch_idx,
            self.fold,
        )
        ctx.inputs = {k: v.detach_tensors() if isinstance(v, Batch) else v for k, v in self.inputs.items()}
        ctx.outputs = {k: v.detach_tensors() for k, v in self.outputs.items()}
        ctx.losses = {k: detach_value(v) for k, v in self.losses.items()}
        return ctx

    def __repr__(self) -> str:
        return (
            f"ExecutionContext(phase={self.phase_label!r}, epoch={self.epoch_idx}, batch={self.batch_idx}, "
            f"inputs={len(self.inputs)}, outputs={sorted(self.outputs)}, losses={sorted(self.losses)})"
        )
