"""``GraphNode`` (a node of a model graph, with upstream references) and ``ComputeNode`` (one that computes)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from modularml.batches import Batch, BatchView, ExecutionContext
from modularml.batches.sample_data import SampleData
from modularml.batches.tensors import to_numpy
from modularml.context import ExperimentContext, ExperimentNode
from modularml.data.references import FeatureSetReference
from modularml.errors import InvalidArgumentError, NotRegisteredError
from modularml.nodes.references import UpstreamRef, to_upstream_ref

__all__ = ["ComputeNode", "GraphNode", "convert_batch"]


def convert_batch(batch: Batch, backend: Any, *, cross: bool) -> Batch:
    """``batch`` with its tensors in ``backend`` (a name); ``cross`` detaches first (a backend boundary)."""
    if backend is None:
        return batch
    if cross:
        batch = batch.detach_tensors().to_format("numpy")
    return batch.to_backend(backend)


def _numpy_only(batch: Batch) -> bool:
    """Whether every array of ``batch`` is a numpy array (so there is nothing to detach), e.g. a fresh gather."""

    def plain(value: Any) -> bool:
        if value is None or type(value) is np.ndarray:
            return True
        return type(value) is dict and all(type(item) is np.ndarray for item in value.values())

    role_data = batch.role_data
    return all(
        plain(batch.get_role_weights(role))
        and plain(batch.get_role_mask(role))
        and all(plain(getattr(role_data[role], domain)) for domain in SampleData.TENSOR_DOMAINS)
        for role in batch.roles
    )


class GraphNode(ExperimentNode):
    """A node of a :class:`~modularml.ModelGraph`: it receives input from upstream references.

    An upstream reference is a :class:`~modularml.FeatureSetReference` (the node is then a head
    node, fed by a FeatureSet) or an :class:`ExperimentNodeReference` to another graph node.
    """

    def __init__(
        self,
        label: str,
        upstream_refs: Sequence[Any] | None = None,
        *,
        node_id: str | None = None,
        register: bool = True,
    ) -> None:
        self._upstream_refs: list[UpstreamRef] = []
        super().__init__(label, node_id=node_id, register=register)
        if upstream_refs:
            self.set_upstream_refs([to_upstream_ref(r) for r in upstream_refs])

    # ------------------------------------------------------------------ topology
    @property
    def max_upstream_refs(self) -> int | None:
        """Most upstream references this node accepts (None: any number)."""
        return None

    @property
    def upstream_refs(self) -> list[UpstreamRef]:
        """The references this node receives input from, in order (a copy)."""
        return list(self._upstream_refs)

    def get_upstream_refs(self) -> list[UpstreamRef]:
        """Same as :attr:`upstream_refs`."""
        return self.upstream_refs

    def set_upstream_refs(self, refs: Sequence[UpstreamRef]) -> None:
        """Replace this node's inputs (the graph's topology edits call this; the graph validates the result).

        Raises:
            InvalidArgumentError: If there are more references than the node accepts.
        """
        refs = [to_upstream_ref(r) for r in refs]
        limit = self.max_upstream_refs
        if limit is not None and len(refs) > limit:
            raise InvalidArgumentError(
                f"{type(self).__name__} {self.label!r} accepts at most {limit} upstream reference(s); got {len(refs)}: "
                f"{[str(r) for r in refs]}. Put a MergeNode (e.g. ConcatNode) in front of it to combine inputs."
            )
        if len(set(refs)) != len(refs):
            raise InvalidArgumentError(f"{type(self).__name__} {self.label!r} got a duplicated upstream reference.")
        self._upstream_refs = refs

    @property
    def is_head(self) -> bool:
        """Whether every input of this node comes from a FeatureSet."""
        return all(isinstance(r, FeatureSetReference) for r in self._upstream_refs)

    # ------------------------------------------------------------------ execution helpers
    @property
    def output_backend(self) -> str | None:
        """Backend of the tensors this node outputs (None for numpy)."""
        return None

    def _upstream_backend(self, ref: UpstreamRef, ctx: ExperimentContext | None = None) -> str | None:
        if isinstance(ref, FeatureSetReference):
            return None
        node = ref.resolve(ctx)
        return getattr(node, "output_backend", None)

    @property
    def _gather_format(self) -> Any:
        """The format BatchView inputs are gathered in (numpy; a model node gathers in its backend's)."""
        return "numpy"

    def _input_from(self, ctx: ExecutionContext, ref: UpstreamRef) -> Batch:
        """The batch ``ref`` gives this node in step ``ctx`` (BatchView inputs gathered in :attr:`_gather_format`)."""
        return self._resolve_input(ctx, ref)[0]

    def _resolve_input(self, ctx: ExecutionContext, ref: UpstreamRef) -> tuple[Batch, bool]:
        """:meth:`_input_from`, and whether the batch was gathered just now from a BatchView (no autograd history)."""
        if isinstance(ref, FeatureSetReference):
            value = ctx.inputs.get((self.node_id, ref))
            if value is None:
                found = [
                    v
                    for (nid, r), v in ctx.inputs.items()
                    if nid == self.node_id and getattr(r, "node_id", None) == ref.node_id
                ]
                if len(found) != 1:
                    raise NotRegisteredError(
                        f"No input for node {self.label!r} from FeatureSet {ref.node_label!r} in this step; inputs "
                        f"are keyed (head node id, FeatureSetReference): {[(n, str(r)) for n, r in ctx.inputs]}."
                    )
                value = found[0]
            if isinstance(value, BatchView):
                return value.materialize_batch(self._gather_format, columns=ref.columns or None), True
            return value, False
        try:
            return ctx.outputs[ref.node_id], False
        except KeyError:
            raise NotRegisteredError(
                f"Node {self.label!r} needs the output of {ref.node_label!r}, which has not run in this step."
            ) from None

    def gather_inputs(self, ctx: ExecutionContext, *, detach: bool = False) -> list[tuple[Batch, str | None]]:
        """The input batches of this node in ``ctx`` with the backend each came from."""
        out = []
        for ref in self._upstream_refs:
            batch, fresh = self._resolve_input(ctx, ref)
            if detach and not fresh and not _numpy_only(batch):
                batch = batch.detach_tensors()
            out.append((batch, self._upstream_backend(ref)))
        return out

    # ------------------------------------------------------------------ config
    def _base_config(self) -> dict[str, Any]:
        from modularml.nodes.references import ref_to_config

        return {
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "label": self.label,
            "node_id": self.node_id,
            "upstream_refs": [ref_to_config(r) for r in self._upstream_refs],
        }

    def get_config(self) -> dict[str, Any]:
        """Configuration to reconstruct this node (no learned state)."""
        return self._base_config()

    def get_state(self) -> dict[str, Any]:
        """Runtime state (none for a plain graph node)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output (nothing for a plain graph node)."""


class ComputeNode(GraphNode):
    """A graph node that computes an output batch from its input batches."""

    @abstractmethod
    def forward(self, inputs: Any, **kwargs: Any) -> Batch:
        """Compute this node's output batch."""

    @abstractmethod
    def build(self, input_shapes: list[tuple[int, ...]], *, force: bool = False) -> tuple[int, ...] | None:
        """Build with the per-sample feature shapes of the inputs; return the per-sample output shape."""

    @property
    def is_frozen(self) -> bool:
        """Whether training is disabled (always False for nodes without parameters)."""
        return False

    @property
    def is_trainable(self) -> bool:
        """Whether this node has parameters that learn."""
        return False

    def forward_from_context(self, ctx: ExecutionContext, *, detach: bool = False) -> Batch:
        """Run this node on its inputs in ``ctx`` and record the output there."""
        out = self._forward_gathered(self.gather_inputs(ctx, detach=detach))
        ctx.set_output(self.node_id, out)
        return out

    @abstractmethod
    def _forward_gathered(self, inputs: list[tuple[Batch, str | None]]) -> Batch:
        """Forward on gathered (batch, source backend) pairs."""


def per_sample_shape_of(value: Any) -> tuple[int, ...]:
    """Per-sample shape of a batch value (numpy or native)."""
    shape = getattr(value, "shape", None)
    if shape is None:
        shape = np.shape(to_numpy(value))
    return tuple(int(d) for d in tuple(shape)[1:])
