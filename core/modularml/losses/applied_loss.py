"""``AppliedLoss``: a :class:`Loss` bound to a model node, with its inputs given as references."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modularml.backends.backend import get_backend
from modularml.batches import Batch, ExecutionContext
from modularml.batches.tensors import to_numpy
from modularml.context import ExperimentNode
from modularml.data.references import FeatureSetColumnReference
from modularml.errors import InvalidArgumentError, InvalidTypeError, LossError, NotRegisteredError
from modularml.losses.loss import Loss

__all__ = ["AppliedLoss"]

_DOMAINS = ("outputs", "targets")
ReferenceLike = str | FeatureSetColumnReference


def _parse_spec(spec: Any) -> tuple[str, str | None] | FeatureSetColumnReference:
    if isinstance(spec, FeatureSetColumnReference):
        return spec
    if not isinstance(spec, str):
        raise InvalidTypeError(
            f"A loss input is 'outputs[.role]', 'targets[.role]' or a FeatureSetColumnReference; got {spec!r}."
        )
    domain, _, role = spec.partition(".")
    if domain not in _DOMAINS or (_ and not role):
        raise InvalidArgumentError(
            f"Unknown loss input {spec!r}: use 'outputs', 'targets', 'outputs.<role>', 'targets.<role>' or a "
            "FeatureSetColumnReference (fs.column_reference(...))."
        )
    return domain, role or None


def _numpy_dtype(value: Any) -> np.dtype | None:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    for candidate in (dtype, getattr(dtype, "name", None), str(dtype).rsplit(".", 1)[-1]):
        if candidate is None:  # np.dtype(None) is float64, not "unknown"
            continue
        try:
            return np.dtype(candidate)
        except TypeError:
            continue
    return None


def _is_graph_node(obj: Any) -> bool:
    """Whether ``obj`` is a graph node: an ExperimentNode that reads upstream references (nodes sit a layer above)."""
    return isinstance(obj, ExperimentNode) and hasattr(obj, "upstream_refs")


class AppliedLoss:
    """Bind a :class:`Loss` to a :class:`~modularml.ModelNode` with resolved inputs.

    Input specs: ``"outputs"``/``"outputs.<role>"`` (the node's predictions),
    ``"targets"``/``"targets.<role>"`` (the targets that passed through the node), or a
    :class:`~modularml.FeatureSetColumnReference` (any column of a FeatureSet, read for the
    batch's samples by their UUIDs). Positional inputs (a list) are passed positionally, a dict's
    by keyword.

    The value of one step is ``sum over samples of (per_sample_loss * mean role weight * mask) * weight / N``,
    where the per-sample loss is the mean over all non-batch axes of what the loss returns and
    ``N`` is the batch size. A target (or column) whose per-sample element count equals the
    outputs' is reshaped to the outputs' per-sample shape first; any other mismatch is an error.

    Attributes:
        loss (Loss): The loss.
        weight (float): Scalar multiplier applied to computed loss values before aggregation.
        label (str): Label used when recording this loss.
        node_id (str): Identifier (or label) of the model node the loss attaches to.
        inputs (dict[str, ReferenceLike]): Loss argument (position as ``"0"``, ``"1"``… or keyword)
            -> reference.
    """

    def __init__(
        self,
        loss: Loss,
        on: Any,
        inputs: Sequence[ReferenceLike] | Mapping[str, ReferenceLike],
        *,
        weight: float = 1.0,
        label: str | None = None,
    ) -> None:
        """Define a Loss applied on a model node.

        Raises:
            TypeError: If ``on`` is not a node or string, or ``inputs`` has an unsupported type.
            ValueError: If an input spec is unknown.
        """
        if not isinstance(loss, Loss):
            raise InvalidTypeError(f"AppliedLoss needs a modularml Loss; got {type(loss).__name__}.")
        if _is_graph_node(on):
            self.node_id, self._node_label = on.node_id, on.label
        elif isinstance(on, str):
            self.node_id, self._node_label = on, on
        else:
            raise InvalidTypeError(f"on= is a ModelNode or its label/node_id; got {type(on).__name__} {on!r:.80}.")
        if isinstance(inputs, Mapping):
            self._positional = False
            self.inputs: dict[str, ReferenceLike] = {str(k): v for k, v in inputs.items()}
        elif isinstance(inputs, Sequence) and not isinstance(inputs, str):
            self._positional = True
            self.inputs = {str(i): v for i, v in enumerate(inputs)}
        else:
            raise InvalidTypeError(f"inputs is a list or dict of references; got {type(inputs).__name__}.")
        if not self.inputs:
            raise InvalidArgumentError("AppliedLoss needs at least one input (e.g. ['outputs', 'targets']).")
        self._parsed = {k: _parse_spec(v) for k, v in self.inputs.items()}
        self.loss = loss
        self.weight = float(weight)
        self.label = label or f"{self._node_label}_{loss.name or 'loss'}"
        self._uuid_index: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def backend(self) -> Any:
        """Backend used by the underlying Loss."""
        return self.loss.backend

    def computes_in(self, backend: str) -> bool:
        """Whether this loss computes in ``backend``'s tensors: its Loss is of that backend or has none."""
        return self.loss._backend is None or str(self.loss._backend) == str(backend)

    @property
    def reads_columns(self) -> bool:
        """Whether an input is a FeatureSet column (read by sample UUID), not the node's outputs or targets."""
        return any(isinstance(spec, FeatureSetColumnReference) for spec in self._parsed.values())

    def _node_batch(self, ctx: ExecutionContext) -> Batch:
        batch = ctx.outputs.get(self.node_id)
        if batch is None:
            for node_id in ctx.outputs:
                from modularml.context import ExperimentContext

                active = ExperimentContext.get_active()
                if active.has_node(node_id=node_id) and active.get_node(node_id=node_id).label == self.node_id:
                    batch = ctx.outputs[node_id]
                    break
        if batch is None:
            raise NotRegisteredError(
                f"Loss {self.label!r} applies to node {self._node_label!r}, which has no output in this step "
                f"(outputs: {sorted(ctx.outputs)})."
            )
        return batch

    @staticmethod
    def _role(batch: Batch, role: str | None) -> str:
        roles = batch.roles
        if role is not None:
            if role not in roles:
                raise NotRegisteredError(f"No role {role!r} in the batch; roles: {roles}.")
            return role
        if len(roles) == 1:
            return roles[0]
        if "default" in roles:
            return "default"
        raise InvalidArgumentError(
            f"The batch has roles {roles}; name one in the loss input, e.g. 'outputs.{roles[0]}'."
        )

    def _column_values(self, ref: FeatureSetColumnReference, uuids: np.ndarray) -> np.ndarray:
        fs = ref.resolve_featureset()
        key = f"{fs.node_id}:{ref.column}"
        cached = self._uuid_index.get(key)
        if cached is None:
            all_uuids = np.asarray(fs.get_sample_uuids(), dtype=str)
            sorter = np.argsort(all_uuids)
            cached = (all_uuids[sorter], sorter)
            self._uuid_index[key] = cached
        sorted_uuids, sorter = cached
        uuids = np.asarray(uuids, dtype=str)
        pos = np.clip(np.searchsorted(sorted_uuids, uuids), 0, max(len(sorted_uuids) - 1, 0))
        if not np.array_equal(sorted_uuids[pos][uuids != ""], uuids[uuids != ""]):
            raise NotRegisteredError(f"Loss {self.label!r}: samples of the batch are not in FeatureSet {fs.label!r}.")
        values = np.asarray(fs.get_data(fmt="numpy", columns=[ref.column]))
        return values[sorter[pos]]

    def compute(self, ctx: ExecutionContext) -> Any:
        """Compute the weighted loss for a single execution step.

        Returns:
            Any: A backend scalar tensor (differentiable when computed in a gradient scope).

        Raises:
            LossError: If a target's shape does not fit the outputs'.
            KeyError: If the node has no output in ``ctx`` or a role is missing.
        """
        batch = self._node_batch(ctx)
        impl = self._backend_impl(batch)
        values: dict[str, Any] = {}
        kinds: dict[str, str] = {}
        roles: list[str] = []
        for name, spec in self._parsed.items():
            if isinstance(spec, FeatureSetColumnReference):
                role = self._role(batch, None)
                value = self._column_values(spec, batch.role_data[role].sample_uuids)
                kinds[name] = "targets"
            else:
                domain, role_name = spec
                role = self._role(batch, role_name)
                value = getattr(batch.role_data[role], domain)
                if value is None:
                    raise InvalidArgumentError(f"Loss {self.label!r}: the batch has no {domain} for role {role!r}.")
                kinds[name] = domain
            if role not in roles:
                roles.append(role)
            values[name] = value
        outputs = [values[n] for n in values if kinds[n] == "outputs"]
        reference = outputs[0] if outputs else None
        out_dtype = None
        for name, value in list(values.items()):
            if kinds[name] == "outputs":
                if not impl.is_native(value):
                    value = impl.from_numpy(to_numpy(value))
                values[name] = value
                continue
            if not impl.is_native(value):
                array = to_numpy(value)
                if out_dtype is None and reference is not None:
                    out_dtype = _numpy_dtype(reference)
                dtype = out_dtype if (out_dtype is not None and array.dtype.kind in "fiub") else None
                device = None if reference is None else impl.device_of(reference)  # targets go where outputs are
                value = impl.from_numpy(np.ascontiguousarray(array), dtype=dtype, device=device)
            if reference is not None:
                value = self._fit_shape(impl, value, reference)
            values[name] = value
        n = batch.batch_size
        if batch.uniform_weights and n > 0:
            fused = self.loss._fused_mean()
            if fused is not None:
                # Every weight is 1: the loss's own mean reduction is the mean of its per-element values.
                value = fused(*values.values()) if self._positional else fused(**values)
                return value if self.weight == 1.0 else value * self.weight
        per_sample = self.loss(*values.values()) if self._positional else self.loss(**values)
        shape = tuple(per_sample.shape)
        if len(shape) == 0:
            return per_sample * self.weight
        if batch.uniform_weights and n > 0:
            # Every weight is 1 and nothing is masked: the mean of the per-sample means is the mean over
            # all elements (every sample has as many), one reduction instead of three.
            value = impl.mean(per_sample)
            return value if self.weight == 1.0 else value * self.weight
        if len(shape) > 1:
            per_sample = impl.mean(per_sample, axis=tuple(range(1, len(shape))))
        if out_dtype is None and reference is not None:
            out_dtype = _numpy_dtype(reference)
        w_dtype = out_dtype if out_dtype is not None and out_dtype.kind == "f" else np.dtype(np.float32)

        def as_numpy(value: Any) -> np.ndarray:
            # The batch's own backend first: no search through the installed backends per step.
            return impl.to_numpy(value) if impl.is_native(value) else to_numpy(value)

        role_weights = [as_numpy(batch.get_role_weights(role)) for role in roles]
        role_masks = [as_numpy(batch.get_role_mask(role)) for role in roles]
        if (
            _numpy_dtype(per_sample) == w_dtype
            and all(bool((w == 1).all()) for w in role_weights)
            and all(bool(m.astype(bool, copy=False).all()) for m in role_masks)
        ):
            # Every weight is exactly 1: ``per_sample * 1`` is ``per_sample`` bit for bit, so skip the product.
            return impl.sum(per_sample) * (self.weight / max(n, 1))
        weights = np.zeros(n, dtype=np.float64)
        mask = np.ones(n, dtype=bool)
        for rw, rm in zip(role_weights, role_masks, strict=True):
            weights = weights + rw.astype(np.float64)
            mask &= rm.astype(bool)
        weights = (weights / len(roles)) * mask
        w = impl.from_numpy(weights.astype(w_dtype), device=impl.device_of(per_sample))
        return impl.sum(per_sample * w) * (self.weight / max(n, 1))

    def _backend_impl(self, batch: Batch) -> Any:
        if self.loss._backend is not None:
            return get_backend(self.loss.backend)
        from modularml.backends import backend_of

        for role in batch.roles:
            owner = backend_of(batch.role_data[role].outputs)
            if owner is not None:
                return owner.implementation
        raise LossError(f"Loss {self.label!r}: the loss has no backend and the outputs are not backend tensors.")

    def _fit_shape(self, impl: Any, value: Any, reference: Any) -> Any:
        out_shape = tuple(reference.shape)
        shape = tuple(value.shape)
        if shape == out_shape:
            return value
        if shape and out_shape and shape[0] == out_shape[0] and math.prod(shape[1:]) == math.prod(out_shape[1:]):
            return impl.reshape(value, out_shape)
        raise LossError(
            f"Loss {self.label!r} ({self.loss!r}) on node {self._node_label!r}: outputs of shape {out_shape} and "
            f"targets of shape {shape} do not match (per-sample element counts differ: {math.prod(out_shape[1:])} "
            f"and {math.prod(shape[1:])}). Check the loss inputs, or make the model of node {self._node_label!r} give "
            f"per-sample outputs of shape {shape[1:] or (1,)} (its output_shape)."
        )

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Configuration to rebuild this applied loss."""
        inputs = {
            k: ({"column_reference": v.get_config()} if isinstance(v, FeatureSetColumnReference) else v)
            for k, v in self.inputs.items()
        }
        return {
            "loss": self.loss.get_config(),
            "on": self.node_id,
            "inputs": list(inputs.values()) if self._positional else inputs,
            "weight": self.weight,
            "label": self.label,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AppliedLoss:
        """Construct an AppliedLoss from :meth:`get_config` output."""

        def spec(value: Any) -> Any:
            if isinstance(value, Mapping) and "column_reference" in value:
                return FeatureSetColumnReference.from_config(value["column_reference"])
            return value

        raw = config["inputs"]
        inputs = {k: spec(v) for k, v in raw.items()} if isinstance(raw, Mapping) else [spec(v) for v in raw]
        return cls(
            Loss.from_config(config["loss"]), config["on"], inputs, weight=config["weight"], label=config["label"]
        )

    def __repr__(self) -> str:
        return (
            f"AppliedLoss(label={self.label!r}, on={self._node_label!r}, inputs={self.inputs!r}, weight={self.weight})"
        )
