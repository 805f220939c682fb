"""``Batch``: the gathered data of one batch, per role, with per-sample role weights and masks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from modularml.batches.sample_data import RoleData, SampleData
from modularml.batches.tensors import (
    TargetFormat,
    backend_format,
    concat_values,
    convert_value,
    detach_value,
    leading_dim,
    resolve_format,
)
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError

__all__ = ["Batch"]


class Batch:
    """The data of one batch: a :class:`SampleData` per role, plus per-sample role weights and masks.

    A Batch is immutable: conversions return new batches. The weights of a role are the per-sample
    weights a sampler assigned (similarity scores; 1 for plain batches), already zero where the
    sample is masked; a mask is True where the row holds a real sample and False for padding.

    Args:
        batch_size (int): Number of samples of every role.
        role_data (RoleData | Mapping[str, SampleData]): The data per role.
        role_weights (Mapping[str, array] | None): Per-role weights ``(batch_size,)``; ones when
            omitted (for all roles or for a role left out).
        role_masks (Mapping[str, array] | None): Per-role boolean masks ``(batch_size,)``; all True
            when omitted.

    Raises:
        TypeError: If ``role_data`` is not a mapping of SampleData.
        ValueError: If a value's batch axis differs from ``batch_size`` or weights/masks name
            roles the batch does not have.
    """

    __slots__ = ("_batch_size", "_format", "_role_data", "_role_masks", "_role_weights", "_uniform")

    def __init__(
        self,
        batch_size: int,
        role_data: RoleData | Mapping[str, SampleData],
        role_weights: Mapping[str, Any] | None = None,
        role_masks: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 0:
            raise InvalidArgumentError(f"batch_size is an int >= 0; got {batch_size!r}.")
        batch_size = int(batch_size)
        if not isinstance(role_data, RoleData):
            if not isinstance(role_data, Mapping):
                raise InvalidTypeError(
                    f"role_data maps role names to SampleData; got {type(role_data).__name__}. Wrap a single "
                    "SampleData as {'default': data}."
                )
            role_data = RoleData(role_data)
        if not len(role_data):
            raise InvalidArgumentError("A Batch needs at least one role.")
        roles = role_data.roles
        weights = self._per_role(role_weights, roles, "role_weights")
        masks = self._per_role(role_masks, roles, "role_masks")
        for role in roles:
            data = role_data[role]
            for domain in SampleData.DOMAINS:
                size = leading_dim(getattr(data, domain))
                if size is not None and size != batch_size:
                    raise InvalidArgumentError(
                        f"Role {role!r}: {domain} has {size} samples on its batch axis; the batch size is {batch_size}."
                    )
            if role not in weights:
                weights[role] = np.ones(batch_size, dtype=np.float32)
            if role not in masks:
                masks[role] = np.ones(batch_size, dtype=bool)
            for name, value in (("role_weights", weights[role]), ("role_masks", masks[role])):
                size = leading_dim(value)
                if size != batch_size:
                    raise InvalidArgumentError(f"{name}[{role!r}] has {size} entries; the batch size is {batch_size}.")
        self._batch_size = batch_size
        self._role_data = role_data
        self._role_weights = weights
        self._role_masks = masks
        self._uniform = role_weights is None and role_masks is None
        self._format: TargetFormat | None = None

    @staticmethod
    def _per_role(values: Mapping[str, Any] | None, roles: list[str], what: str) -> dict[str, Any]:
        if values is None:
            return {}
        if not isinstance(values, Mapping):
            raise InvalidTypeError(f"{what} maps role names to arrays; got {type(values).__name__}.")
        unknown = [r for r in values if r not in roles]
        if unknown:
            raise InvalidArgumentError(f"{what} names roles {unknown} that the batch does not have (roles: {roles}).")
        return dict(values)

    @classmethod
    def trusted(
        cls,
        batch_size: int,
        role_data: RoleData,
        role_weights: dict[str, Any] | None,
        role_masks: dict[str, Any] | None,
        uniform: bool = False,
        fmt: TargetFormat | None = None,
    ) -> Batch:
        """Build a batch from already consistent parts, without validation (the core's own assembly).

        ``uniform`` promises that every weight is 1 and every mask True (see :attr:`uniform_weights`);
        ``fmt`` that every tensor is already in that format (converting to it is then free). A
        uniform batch may pass ``None`` for both weights and masks: they are made, in ``fmt``, when
        first read.
        """
        batch = cls.__new__(cls)
        batch._batch_size = batch_size
        batch._role_data = role_data
        batch._role_weights = role_weights
        batch._role_masks = role_masks
        batch._uniform = uniform
        batch._format = fmt
        return batch

    # -- attributes ----------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """Number of samples of every role (masked rows included)."""
        return self._batch_size

    def __len__(self) -> int:
        return self._batch_size

    @property
    def roles(self) -> list[str]:
        """Role names, in order."""
        return self._role_data.roles

    @property
    def role_data(self) -> RoleData:
        """Role -> :class:`SampleData`."""
        return self._role_data

    @property
    def uniform_weights(self) -> bool:
        """Whether every weight is known to be 1 and every mask True (a plain batch: no padding, no scores).

        True for batches built without weights or masks and for plain sampler batches; False means
        "not known to be uniform" (the weights may still all be 1). Losses use it to skip the
        weighting arithmetic; the result is the same either way.
        """
        return self._uniform

    def _weights_and_masks(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The weights and masks, made first for a uniform batch that left them implicit."""
        if self._role_weights is None:
            target = self._format if self._format is not None else resolve_format("numpy")
            n, roles = self._batch_size, self._role_data.roles
            self._role_weights = {r: convert_value(np.ones(n, dtype=np.float32), target) for r in roles}
            self._role_masks = {r: convert_value(np.ones(n, dtype=bool), target) for r in roles}
        return self._role_weights, self._role_masks

    @property
    def role_weights(self) -> Mapping[str, Any]:
        """Role -> per-sample weights ``(batch_size,)`` (zero where masked), read-only mapping."""
        return MappingProxyType(self._weights_and_masks()[0])

    @property
    def role_masks(self) -> Mapping[str, Any]:
        """Role -> boolean mask ``(batch_size,)``, True for real samples, read-only mapping."""
        return MappingProxyType(self._weights_and_masks()[1])

    def _check_role(self, role: str) -> None:
        if role not in self._weights_and_masks()[0]:
            raise NotRegisteredError(f"No role {role!r} in this batch; roles: {self.roles}.")

    def get_role(self, role: str) -> SampleData:
        """The :class:`SampleData` of ``role``.

        Raises:
            KeyError: If the batch has no such role.
        """
        return self._role_data[role]

    def get_role_weights(self, role: str) -> Any:
        """Per-sample weights of ``role``.

        Raises:
            KeyError: If the batch has no such role.
        """
        self._check_role(role)
        return self._role_weights[role]

    def get_role_mask(self, role: str) -> Any:
        """Boolean mask of ``role`` (True for real samples).

        Raises:
            KeyError: If the batch has no such role.
        """
        self._check_role(role)
        return self._role_masks[role]

    # -- single-role shorthands ------------------------------------------------------------------------
    def _only_role(self, domain: str) -> SampleData:
        roles = self.roles
        if len(roles) != 1:
            raise InvalidArgumentError(
                f"This batch has roles {roles}, so batch.{domain} is ambiguous; use "
                f"batch.get_role(role).{domain} (e.g. batch.get_role({roles[0]!r}).{domain})."
            )
        return self._role_data[roles[0]]

    @property
    def features(self) -> Any:
        """Features of the batch's only role (``batch.get_role(role).features`` for multi-role batches).

        Raises:
            ValueError: If the batch has several roles.
        """
        return self._only_role("features").features

    @property
    def targets(self) -> Any:
        """Targets of the batch's only role; see :attr:`features`."""
        return self._only_role("targets").targets

    @property
    def tags(self) -> Any:
        """Tags of the batch's only role; see :attr:`features`."""
        return self._only_role("tags").tags

    @property
    def sample_uuids(self) -> Any:
        """Sample UUIDs of the batch's only role; see :attr:`features`."""
        return self._only_role("sample_uuids").sample_uuids

    @property
    def outputs(self) -> Any:
        """Outputs of the batch's only role; see :attr:`features`."""
        return self._only_role("outputs").outputs

    # -- derived batches -----------------------------------------------------------------------------
    def with_role_data(self, role_data: RoleData | Mapping[str, SampleData]) -> Batch:
        """A batch with the same weights and masks and new data per role (e.g. model outputs filled in).

        Raises:
            ValueError: If the roles differ from this batch's or a batch axis does not match.
        """
        role_data = role_data if isinstance(role_data, RoleData) else RoleData(role_data)
        if role_data.roles != self.roles:
            raise InvalidArgumentError(f"New role data has roles {role_data.roles}; this batch has {self.roles}.")
        weights, masks = self._weights_and_masks()
        batch = Batch(self._batch_size, role_data, weights, masks)
        batch._uniform = self._uniform
        return batch

    def with_outputs(self, role_data: RoleData) -> Batch:
        """:meth:`with_role_data` for a model's results (same roles, inputs kept): only the outputs' batch axis
        is checked, and the batch keeps its format when every output is a tensor of that format."""
        fmt = self._format
        for role in role_data.roles:
            outputs = role_data[role].outputs
            size = leading_dim(outputs)
            if size is not None and size != self._batch_size:
                raise InvalidArgumentError(
                    f"Role {role!r}: outputs have {size} samples on their batch axis; the batch size is "
                    f"{self._batch_size}."
                )
            if fmt is not None and not (
                type(outputs) is np.ndarray if fmt.backend is None else fmt.backend.is_native(outputs)
            ):
                fmt = None
        if fmt is None and self._role_weights is None:
            self._weights_and_masks()  # made in this batch's format before the new batch forgets it
        return Batch.trusted(self._batch_size, role_data, self._role_weights, self._role_masks, self._uniform, fmt)

    def convert(self, target: TargetFormat) -> Batch:
        """This batch in ``target``, a resolved ``TargetFormat`` (:meth:`to_format` takes a format name)."""
        if target == self._format:  # everything is in this format already (a second conversion per step)
            return self
        return Batch.trusted(
            self._batch_size,
            self._role_data.map(lambda item: item.convert(target)),
            None
            if self._role_weights is None
            else {r: convert_value(w, target) for r, w in self._role_weights.items()},
            None if self._role_masks is None else {r: convert_value(m, target) for r, m in self._role_masks.items()},
            self._uniform,
            target,
        )

    def to_format(self, fmt: str) -> Batch:
        """This batch with every tensor (data, weights, masks) in format ``fmt``.

        Args:
            fmt (str): ``"numpy"``/``"np"``, ``"dict_numpy"``, or an installed backend's format
                (``"torch"``, ``"tf"``, ``"dict_torch"``...). Column dicts are stacked on axis 1
                for single-array formats; text (tags, sample UUIDs) stays numpy.

        Returns:
            Batch: A new batch (arrays already in the format are not copied).

        Raises:
            ValueError: If ``fmt`` is unknown or columns of different shapes would be stacked.
        """
        return self.convert(resolve_format(fmt))

    as_format = to_format

    def to_backend(self, backend: Any, *, device: str | None = None) -> Batch:
        """This batch with every numeric array as a tensor of ``backend``, converted once, zero-copy where allowed.

        Args:
            backend: A backend name (``"torch"``), :class:`~modularml.Backend`, or implementation.
            device (str | None): Device for the tensors; the backend's default if None.

        Returns:
            Batch: A new batch; sample UUIDs and text tags stay numpy.

        Raises:
            BackendNotSupportedError: If the backend is unknown or not installed.
        """
        return self.convert(backend_format(backend, device=device))

    def detach_tensors(self) -> Batch:
        """This batch with every tensor detached from its autograd graph (for recording results).

        Returns:
            Batch: A batch sharing the detached tensors' memory; this batch itself when no tensor
            had autograd history (batches are immutable).
        """
        role_data = self._role_data.detach_tensors()
        weights = None if self._role_weights is None else {r: detach_value(w) for r, w in self._role_weights.items()}
        if role_data is self._role_data and (
            weights is None or all(weights[r] is w for r, w in self._role_weights.items())
        ):
            return self
        return Batch.trusted(
            self._batch_size,
            role_data,
            weights,
            None if self._role_masks is None else dict(self._role_masks),
            self._uniform,
            self._format,
        )

    @classmethod
    def concat(cls, *batches: Batch | Sequence[Batch]) -> Batch:
        """Join batches along the batch axis: ``Batch.concat(b1, b2)`` or ``Batch.concat([b1, b2, b3])``.

        Every domain, weight and mask is joined with its own backend's ``concat`` (numpy for arrays).

        Returns:
            Batch: One batch of the summed batch size.

        Raises:
            ValueError: If no batch is given, or the batches have different roles or domains.
        """
        items: list[Batch] = []
        for item in batches:
            if isinstance(item, Batch):
                items.append(item)
            elif isinstance(item, Sequence):
                items.extend(item)
            else:
                raise InvalidTypeError(f"Batch.concat() takes Batch objects; got {type(item).__name__}.")
        if not items:
            raise InvalidArgumentError("Batch.concat() needs at least one Batch.")
        for item in items:
            if not isinstance(item, Batch):
                raise InvalidTypeError(f"Batch.concat() takes Batch objects; got {type(item).__name__}.")
        if len(items) == 1:
            return items[0]
        roles = items[0].roles
        role_data = RoleData.concat([b.role_data for b in items])
        weights = {r: concat_values([b.role_weights[r] for b in items], f"role_weights[{r!r}]") for r in roles}
        masks = {r: concat_values([b.role_masks[r] for b in items], f"role_masks[{r!r}]") for r in roles}
        uniform = all(b._uniform for b in items)
        return cls.trusted(sum(b.batch_size for b in items), role_data, weights, masks, uniform)

    def __repr__(self) -> str:
        return f"Batch(batch_size={self._batch_size}, roles={self.roles})"
