"""``SampleData`` (the data of one role of a batch) and ``RoleData`` (role name -> ``SampleData``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from modularml.batches.tensors import (
    TargetFormat,
    backend_format,
    concat_values,
    convert_value,
    detach_value,
    leading_dim,
    per_sample_shape,
    resolve_format,
)
from modularml.data.schema import DOMAIN_FEATURES, DOMAIN_OUTPUTS, DOMAIN_SAMPLE_UUIDS, DOMAIN_TAGS, DOMAIN_TARGETS
from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError

__all__ = ["ROLE_DEFAULT", "RoleData", "SampleData"]

#: The role of a batch that has only one (a :class:`~modularml.samplers.SimpleSampler` batch).
ROLE_DEFAULT = "default"


@dataclass(frozen=True, eq=False)
class SampleData:
    """The data of one role of a batch: one value per domain, each with the batch on axis 0.

    Instances compare by identity (tensors have no single truth value).

    A domain holds ``None`` (absent), one array or tensor ``(B, ...)``, or a mapping of column key
    -> array (``fmt="dict_numpy"``). Sample UUIDs are always a numpy array of ``str``.

    Attributes:
        features: Model inputs.
        targets: Expected outputs.
        tags: Identifying or categorical metadata (text tags stay numpy in every format).
        sample_uuids: The UUID of each sample (``""`` for masked/padding rows).
        outputs: Model predictions, filled in by the model graph.
    """

    DOMAINS: ClassVar[tuple[str, ...]] = (
        DOMAIN_FEATURES,
        DOMAIN_TARGETS,
        DOMAIN_TAGS,
        DOMAIN_SAMPLE_UUIDS,
        DOMAIN_OUTPUTS,
    )
    #: Domains holding tensors (converted between formats); sample UUIDs always stay numpy.
    TENSOR_DOMAINS: ClassVar[tuple[str, ...]] = (DOMAIN_FEATURES, DOMAIN_TARGETS, DOMAIN_TAGS, DOMAIN_OUTPUTS)

    features: Any = None
    targets: Any = None
    tags: Any = None
    sample_uuids: Any = None
    outputs: Any = None

    def __getitem__(self, domain: str) -> Any:
        """The value of ``domain`` (``"features"``, ``"targets"``, ``"tags"``, ``"sample_uuids"``, ``"outputs"``).

        Raises:
            KeyError: If ``domain`` is not one of those.
        """
        if domain not in self.DOMAINS:
            raise NotRegisteredError(f"Unknown domain {domain!r}; a SampleData has {list(self.DOMAINS)}.")
        return getattr(self, domain)

    def get(self, domain: str) -> Any:
        """Same as ``self[domain]``."""
        return self[domain]

    @property
    def n_samples(self) -> int | None:
        """Number of samples (the batch axis of the first domain present), or None when empty."""
        for domain in self.DOMAINS:
            size = leading_dim(getattr(self, domain))
            if size is not None:
                return size
        return None

    @property
    def shapes(self) -> dict[str, Any]:
        """Per-sample shape (without the batch axis) of each present tensor domain (a dict per key for dicts)."""
        return {
            domain: per_sample_shape(getattr(self, domain))
            for domain in self.TENSOR_DOMAINS
            if getattr(self, domain) is not None
        }

    def replace(self, **domains: Any) -> SampleData:
        """A copy with some domains replaced, e.g. ``data.replace(outputs=predictions)``.

        Raises:
            TypeError: If a keyword is not a domain.
        """
        unknown = sorted(set(domains) - set(self.DOMAINS))
        if unknown:
            raise InvalidTypeError(f"SampleData has no domain {unknown}; domains are {list(self.DOMAINS)}.")
        return dataclasses.replace(self, **domains)

    def map_tensors(self, fn: Callable[[Any], Any]) -> SampleData:
        """Apply ``fn`` to the value of every tensor domain (``None`` skipped; sample UUIDs untouched)."""
        return dataclasses.replace(
            self, **{d: fn(getattr(self, d)) for d in self.TENSOR_DOMAINS if getattr(self, d) is not None}
        )

    def convert(self, target: TargetFormat) -> SampleData:
        """This sample data with its tensors in ``target`` (a resolved ``TargetFormat``)."""
        changed = {}
        for domain in self.TENSOR_DOMAINS:
            value = getattr(self, domain)
            if value is not None:
                converted = convert_value(value, target)
                if converted is not value:
                    changed[domain] = converted
        # Frozen: when every value is already in the format (a second conversion), this data is the result.
        return dataclasses.replace(self, **changed) if changed else self

    def to_format(self, fmt: str) -> SampleData:
        """This data with every tensor in format ``fmt`` (``"numpy"``, ``"dict_numpy"``, ``"torch"``, ``"tf"``...).

        Column dicts are stacked on axis 1 for single-array formats and kept for ``dict_*`` formats;
        text stays numpy.

        Raises:
            ValueError: If ``fmt`` is unknown, or columns of different shapes would be stacked.
        """
        return self.convert(resolve_format(fmt))

    as_format = to_format

    def to_backend(self, backend: Any, *, device: str | None = None) -> SampleData:
        """This data with every numeric array as a tensor of ``backend`` (zero-copy where it allows).

        Args:
            backend: A backend name (``"torch"``), :class:`~modularml.Backend`, or implementation.
            device: Device for the tensors; the backend's default if None.
        """
        return self.convert(backend_format(backend, device=device))

    def detach_tensors(self) -> SampleData:
        """This data with every tensor detached from its autograd graph (itself when nothing had one)."""
        changed = {}
        for domain in self.TENSOR_DOMAINS:
            value = getattr(self, domain)
            if value is not None:
                detached = detach_value(value)
                if detached is not value:
                    changed[domain] = detached
        return dataclasses.replace(self, **changed) if changed else self

    @classmethod
    def concat(cls, items: Sequence[SampleData]) -> SampleData:
        """Join several SampleData along the batch axis (each domain through its backend's ``concat``).

        Raises:
            ValueError: If ``items`` is empty, or a domain is present in some and missing in others.
        """
        items = list(items)
        if not items:
            raise InvalidArgumentError("SampleData.concat() needs at least one SampleData.")
        return cls(**{d: concat_values([getattr(i, d) for i in items], d) for d in cls.DOMAINS})

    def __repr__(self) -> str:
        parts = []
        for domain in self.DOMAINS:
            value = getattr(self, domain)
            if value is None:
                continue
            shape = per_sample_shape(value) if domain != DOMAIN_SAMPLE_UUIDS else ()
            parts.append(f"{domain}={shape}")
        return f"SampleData(n_samples={self.n_samples}, {', '.join(parts)})"


class RoleData(Mapping[str, SampleData]):
    """Role name -> :class:`SampleData` for one batch (``"default"``, or ``"anchor"``, ``"pair"``, ...).

    Args:
        data: Role -> SampleData (roles keep the given order).

    Raises:
        TypeError: If a value is not a SampleData or a role is not a string.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, SampleData] | None = None) -> None:
        data = dict(data or {})
        for role, item in data.items():
            if not isinstance(role, str) or not role:
                raise InvalidTypeError(f"A role is a non-empty string; got {role!r}.")
            if not isinstance(item, SampleData):
                raise InvalidTypeError(f"RoleData values are SampleData; role {role!r} got {type(item).__name__}.")
        self._data = data

    @classmethod
    def trusted(cls, data: dict[str, SampleData]) -> RoleData:
        """A RoleData over ``data`` as it is, without checks (the caller made every value a SampleData)."""
        role_data = cls.__new__(cls)
        role_data._data = data
        return role_data

    @property
    def roles(self) -> list[str]:
        """Role names, in order."""
        return list(self._data)

    def __getitem__(self, role: str) -> SampleData:
        try:
            return self._data[role]
        except KeyError:
            raise NotRegisteredError(f"No role {role!r} in this batch; roles: {list(self._data)}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def map(self, fn: Callable[[SampleData], SampleData]) -> RoleData:
        """A RoleData with ``fn`` applied to every role's SampleData."""
        return RoleData({role: fn(item) for role, item in self._data.items()})

    def to_format(self, fmt: str) -> RoleData:
        """Every role in format ``fmt``; see :meth:`SampleData.to_format`."""
        target = resolve_format(fmt)
        return self.map(lambda item: item.convert(target))

    as_format = to_format

    def to_backend(self, backend: Any, *, device: str | None = None) -> RoleData:
        """Every role as tensors of ``backend``; see :meth:`SampleData.to_backend`."""
        target = backend_format(backend, device=device)
        return self.map(lambda item: item.convert(target))

    def detach_tensors(self) -> RoleData:
        """Every role's tensors detached from their autograd graphs (itself when no role changes)."""
        detached = {role: item.detach_tensors() for role, item in self._data.items()}
        if all(detached[role] is item for role, item in self._data.items()):
            return self
        return RoleData.trusted(detached)

    @classmethod
    def concat(cls, items: Sequence[RoleData]) -> RoleData:
        """Join several RoleData role by role along the batch axis.

        Raises:
            ValueError: If ``items`` is empty or the role names differ.
        """
        items = list(items)
        if not items:
            raise InvalidArgumentError("RoleData.concat() needs at least one RoleData.")
        roles = items[0].roles
        for item in items[1:]:
            if item.roles != roles:
                raise InvalidArgumentError(f"Cannot concatenate batches with roles {roles} and {item.roles}.")
        return cls({role: SampleData.concat([item[role] for item in items]) for role in roles})

    # Tensors have no single truth value, so containers compare by identity.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"RoleData({', '.join(f'{r}={d!r}' for r, d in self._data.items())})"
