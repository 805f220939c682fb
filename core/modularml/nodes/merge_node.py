"""``MergeNode`` (combine several inputs into one batch) and ``ConcatNode`` (concatenate them)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import numpy as np

from modularml.backends.numpy_ops import NumpyTensorOps
from modularml.backends.padding import check_pad_mode
from modularml.batches import Batch, RoleData, SampleData
from modularml.batches.tensors import to_numpy
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.nodes.graph_node import ComputeNode, convert_batch
from modularml.nodes.references import ExperimentNodeReference, to_upstream_ref

__all__ = ["ConcatNode", "MergeNode", "MergeStrategy"]

_NUMPY_OPS = NumpyTensorOps()


class MergeStrategy(StrEnum):
    """Aggregations for the targets and tags of merged inputs."""

    FIRST = "first"
    LAST = "last"
    MEAN = "mean"


def _normalize_strategy(value: Any, what: str) -> int | MergeStrategy | ExperimentNodeReference:
    if isinstance(value, bool):
        raise InvalidTypeError(f"{what} is an int axis, 'first', 'last', 'mean' or a node reference; got {value!r}.")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        try:
            return MergeStrategy(value.lower())
        except ValueError:
            raise InvalidArgumentError(
                f"{what}: unknown strategy {value!r}; use an int axis, 'first', 'last', 'mean' or a node reference."
            ) from None
    ref = to_upstream_ref(value)
    if not isinstance(ref, ExperimentNodeReference):
        raise InvalidTypeError(f"{what}: a reference strategy points at an upstream graph node; got {value!r}.")
    return ref


def _ops(values: Sequence[Any]) -> Any:
    """The backend implementation owning ``values`` (numpy ops for numpy arrays)."""
    from modularml.backends import backend_of

    for value in values:
        owner = backend_of(value)
        if owner is not None:
            return owner.implementation
    return _NUMPY_OPS


class MergeNode(ComputeNode):
    """A graph node that combines the outputs of several upstream nodes into one batch.

    The merged batch has one row per sample: all inputs must hold the same samples in the same
    order (their sample UUIDs are checked), and the first input's UUIDs, role weights and masks
    are kept.
    """

    def __init__(
        self,
        label: str,
        upstream_refs: list[Any],
        *,
        target_strategy: Any = -1,
        tags_strategy: Any = -1,
        node_id: str | None = None,
        register: bool = True,
    ) -> None:
        if not isinstance(upstream_refs, Sequence) or isinstance(upstream_refs, str) or not upstream_refs:
            raise InvalidArgumentError(f"{type(self).__name__} {label!r} needs a list of upstream references.")
        self.target_strategy = _normalize_strategy(target_strategy, "concat_axis_targets")
        self.tags_strategy = _normalize_strategy(tags_strategy, "concat_axis_tags")
        self._output_shape: tuple[int, ...] | None = None
        self._backend_cache: str | None = None
        super().__init__(label, upstream_refs, node_id=node_id, register=register)

    @property
    def output_backend(self) -> str | None:
        """The backend of the first upstream node that has one (None: numpy)."""
        for ref in self.upstream_refs:
            backend = self._upstream_backend(ref)
            if backend is not None:
                return backend
        return None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """Per-sample shape of the merged features, once built."""
        return self._output_shape

    @property
    def is_built(self) -> bool:
        """Whether the output shape is known."""
        return self._output_shape is not None

    @property
    def target_axis(self) -> int:
        """Target concatenation axis (only valid when the target strategy is an int).

        Raises:
            TypeError: If the target strategy is not int-based.
        """
        if not isinstance(self.target_strategy, int):
            raise InvalidTypeError(f"The target strategy of {self.label!r} is {self.target_strategy!r}, not an axis.")
        return self.target_strategy

    @property
    def tags_axis(self) -> int:
        """Tags concatenation axis (only valid when the tags strategy is an int).

        Raises:
            TypeError: If the tags strategy is not int-based.
        """
        if not isinstance(self.tags_strategy, int):
            raise InvalidTypeError(f"The tags strategy of {self.label!r} is {self.tags_strategy!r}, not an axis.")
        return self.tags_strategy

    @abstractmethod
    def apply_merge(
        self, values: list[Any], *, includes_batch_dim: bool = True, fmt: str | None = None, domain: str = "features"
    ) -> Any:
        """Merge a list of tensors of one domain."""

    def build(self, input_shapes: list[tuple[int, ...]], *, force: bool = False) -> tuple[int, ...]:
        """Infer the merged per-sample feature shape from the input shapes."""
        dummies = [np.zeros((1, *shape), dtype=np.float32) for shape in input_shapes]
        self._output_shape = tuple(int(d) for d in np.shape(self.apply_merge(dummies))[1:])
        return self._output_shape

    def forward(self, inputs: list[Batch], **kwargs: Any) -> Batch:
        """Merge batches (same samples, same roles) into one batch."""
        return self._merge_batches(list(inputs))

    def _forward_gathered(self, inputs: list[tuple[Batch, str | None]]) -> Batch:
        target = next((source for _, source in inputs if source is not None), None)
        batches = [convert_batch(b, target, cross=source is not None and source != target) for b, source in inputs]
        return self._merge_batches(batches)

    def _merge_batches(self, batches: list[Batch]) -> Batch:
        if not batches:
            raise InvalidArgumentError(f"{type(self).__name__} {self.label!r} got no inputs.")
        first = batches[0]
        for other in batches[1:]:
            if other.roles != first.roles or other.batch_size != first.batch_size:
                raise InvalidArgumentError(
                    f"{type(self).__name__} {self.label!r}: inputs have roles/batch sizes {first.roles}/"
                    f"{first.batch_size} and {other.roles}/{other.batch_size}; merged inputs hold the same samples."
                )
        roles = {}
        for role in first.roles:
            items = [b.role_data[role] for b in batches]
            roles[role] = self._merge_sample_data(items)
        merged = Batch(first.batch_size, RoleData(roles), dict(first.role_weights), dict(first.role_masks))
        merged._uniform = first.uniform_weights
        return merged

    def _merge_sample_data(self, items: list[SampleData]) -> SampleData:
        uuids = items[0].sample_uuids
        if uuids is not None:
            for item in items[1:]:
                if item.sample_uuids is not None and not np.array_equal(item.sample_uuids, uuids):
                    raise InvalidArgumentError(
                        f"{type(self).__name__} {self.label!r}: inputs hold different samples (sample UUIDs differ). "
                        "Feed every branch the same batch of samples."
                    )
        features = self.apply_merge([i.features for i in items], domain="features")
        targets = self._merge_domain([i.targets for i in items], self.target_strategy, "targets")
        tags = self._merge_domain([i.tags for i in items], self.tags_strategy, "tags")
        return SampleData(features=features, targets=targets, tags=tags, sample_uuids=uuids, outputs=features)

    def _merge_domain(self, values: list[Any], strategy: Any, domain: str) -> Any:
        if isinstance(strategy, ExperimentNodeReference):
            for ref, value in zip(self.upstream_refs, values, strict=True):
                if ref == strategy:
                    return value
            raise InvalidArgumentError(
                f"{type(self).__name__} {self.label!r}: the {domain} strategy references {strategy.node_label!r}, "
                f"which is not an input (inputs: {[str(r) for r in self.upstream_refs]})."
            )
        present = [v for v in values if v is not None]
        if not present:
            return None
        if strategy is MergeStrategy.FIRST:
            return present[0]
        if strategy is MergeStrategy.LAST:
            return present[-1]
        if strategy is MergeStrategy.MEAN:
            arrays = present
            if any(isinstance(v, np.ndarray) and v.dtype.kind in "OUS" for v in arrays):
                raise InvalidArgumentError(f"{self.label!r}: cannot average text {domain}; use 'first' or 'last'.")
            ops = _ops(arrays)
            return ops.mean(ops.stack([_as(ops, v) for v in arrays], axis=0), axis=0)
        return self.apply_merge(present, domain=domain)

    def get_state(self) -> dict[str, Any]:
        """The inferred output shape."""
        return {"output_shape": None if self._output_shape is None else list(self._output_shape)}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output."""
        shape = state.get("output_shape")
        self._output_shape = None if shape is None else tuple(int(d) for d in shape)

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this node."""
        return {
            **self._base_config(),
            "target_strategy": _strategy_config(self.target_strategy),
            "tags_strategy": _strategy_config(self.tags_strategy),
        }


def _as(ops: Any, value: Any) -> Any:
    if ops is _NUMPY_OPS or ops.is_native(value):
        return value
    return ops.from_numpy(to_numpy(value))


def _strategy_config(strategy: Any) -> Any:
    if isinstance(strategy, ExperimentNodeReference):
        return {"kind": "node", **strategy.get_config()}
    return strategy if isinstance(strategy, int) else str(strategy)


def _strategy_from_config(value: Any) -> Any:
    if isinstance(value, dict):
        return ExperimentNodeReference.from_config(value)
    return value


class ConcatNode(MergeNode):
    """A merge stage that concatenates multiple inputs along a specified axis.

    ``concat_axis`` does not count the batch dimension: for a batch of shape ``(32, 1, 16)``,
    ``axis=0`` is the ``1``. Per-sample scalars (a single scalar column, ``(B,)``) are treated as
    shape ``(1,)``. With ``pad_inputs``, every non-concat axis is padded at its end (with the
    backend's ``pad``) to the largest size among the inputs.
    """

    def __init__(
        self,
        label: str,
        upstream_refs: list[Any],
        concat_axis: int = 0,
        *,
        concat_axis_targets: Any = -1,
        concat_axis_tags: Any = -1,
        pad_inputs: bool = False,
        pad_mode: str = "constant",
        pad_value: float = 0.0,
        node_id: str | None = None,
        register: bool = True,
    ) -> None:
        """Initialize a ConcatNode; see the class docstring and the API reference for the arguments.

        Raises:
            ValueError: If ``pad_mode`` is unknown or ``concat_axis`` is not an int.
        """
        if isinstance(concat_axis, bool) or not isinstance(concat_axis, (int, np.integer)):
            raise InvalidArgumentError(f"concat_axis is an int; got {concat_axis!r}.")
        self.concat_axis = int(concat_axis)
        self.pad_inputs = bool(pad_inputs)
        self.pad_mode = check_pad_mode(str(getattr(pad_mode, "value", pad_mode)))
        self.pad_value = float(pad_value)
        super().__init__(
            label,
            upstream_refs,
            target_strategy=concat_axis_targets,
            tags_strategy=concat_axis_tags,
            node_id=node_id,
            register=register,
        )

    def _axis_for(self, domain: str) -> int:
        if domain == "targets":
            return self.target_axis
        if domain == "tags":
            return self.tags_axis
        return self.concat_axis

    def apply_merge(
        self, values: list[Any], *, includes_batch_dim: bool = True, fmt: str | None = None, domain: str = "features"
    ) -> Any:
        """Concatenate tensors along the configured axis (of ``domain``), padding first if enabled.

        Raises:
            ValueError: If the inputs' ranks differ, the axis is out of range, or non-concat axes
                differ without ``pad_inputs``; the message names the shapes.
        """
        if any(isinstance(v, dict) for v in values):
            raise InvalidArgumentError(f"ConcatNode {self.label!r} merges single arrays, not column dicts.")
        ops = _ops(values)
        values = [_as(ops, v) for v in values]
        if not includes_batch_dim:
            values = [ops.reshape(v, (1, *tuple(v.shape))) for v in values]
        values = [ops.reshape(v, (int(v.shape[0]), 1)) if len(v.shape) == 1 else v for v in values]
        shapes = [tuple(int(d) for d in v.shape) for v in values]
        ndims = {len(s) for s in shapes}
        if len(ndims) != 1:
            raise InvalidArgumentError(
                f"ConcatNode {self.label!r}: {domain} inputs have per-sample shapes {[s[1:] for s in shapes]} of "
                "different ranks; reshape them to one rank first."
            )
        ndim = ndims.pop()
        axis = self._axis_for(domain)
        per_sample_ndim = ndim - 1
        if not -per_sample_ndim <= axis < per_sample_ndim:
            raise InvalidArgumentError(
                f"ConcatNode {self.label!r}: concat axis {axis} (batch axis not counted) is out of range for "
                f"{domain} of per-sample shapes {[s[1:] for s in shapes]}."
            )
        full_axis = axis + 1 if axis >= 0 else ndim + axis
        others = [d for d in range(ndim) if d != full_axis]
        mismatched = [d for d in others if len({s[d] for s in shapes}) > 1]
        if mismatched:
            if not self.pad_inputs or 0 in mismatched:
                raise InvalidArgumentError(
                    f"ConcatNode {self.label!r}: {domain} of per-sample shapes {[s[1:] for s in shapes]} differ "
                    f"outside the concat axis {axis}; pass pad_inputs=True to pad them."
                )
            target = [max(s[d] for s in shapes) for d in range(ndim)]
            padded = []
            for value, shape in zip(values, shapes, strict=True):
                width = [(0, 0 if d == full_axis else target[d] - shape[d]) for d in range(ndim)]
                if any(after for _, after in width):
                    value = ops.pad(value, width, mode=self.pad_mode, constant_value=self.pad_value)
                padded.append(value)
            values = padded
        out = ops.concat(values, axis=full_axis)
        if not includes_batch_dim:
            out = ops.reshape(out, tuple(out.shape)[1:])
        if fmt is not None:
            from modularml.batches.tensors import convert_value, resolve_format

            out = convert_value(out, resolve_format(fmt))
        return out

    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this node."""
        return {
            **super().get_config(),
            "concat_axis": self.concat_axis,
            "pad_inputs": self.pad_inputs,
            "pad_mode": self.pad_mode,
            "pad_value": self.pad_value,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], *, register: bool = True, **_: Any) -> ConcatNode:
        """Construct a ConcatNode from :meth:`get_config` output."""
        from modularml.nodes.references import ref_from_config

        return cls(
            config["label"],
            [ref_from_config(r) for r in config["upstream_refs"]],
            config.get("concat_axis", 0),
            concat_axis_targets=_strategy_from_config(config.get("target_strategy", -1)),
            concat_axis_tags=_strategy_from_config(config.get("tags_strategy", -1)),
            pad_inputs=config.get("pad_inputs", False),
            pad_mode=config.get("pad_mode", "constant"),
            pad_value=config.get("pad_value", 0.0),
            node_id=config.get("node_id"),
            register=register,
        )
