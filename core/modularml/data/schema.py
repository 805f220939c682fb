"""Domains, representations, column names, and the per-column schema of a FeatureSet's table.

A FeatureSet stores one Arrow column per ``domain.key.rep`` (``"features.voltage.raw"``) plus a
``sample_uuids`` column. Each column holds one value per sample: a scalar, or a fixed-shape
array (a 100-point curve, an 8x16 map). Fixed-shape arrays are stored as (nested) Arrow
fixed-size lists, so the table describes itself; the per-sample shape and the numpy dtype of
every column are also written into the field metadata, and the whole :class:`SampleSchema` into
the schema metadata, so a column of curves reads back as ``(N, 100)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from modularml.errors import InvalidArgumentError, InvalidLabelError
from modularml.utils.naming import validate_label

__all__ = [
    "DATA_DOMAINS",
    "DOMAINS",
    "DOMAIN_FEATURES",
    "DOMAIN_OUTPUTS",
    "DOMAIN_SAMPLE_UUIDS",
    "DOMAIN_TAGS",
    "DOMAIN_TARGETS",
    "REPRESENTATIONS",
    "REP_RAW",
    "REP_TRANSFORMED",
    "SAMPLE_UUIDS_COLUMN",
    "STRING_DTYPE",
    "ColumnSpec",
    "SampleSchema",
    "check_domain",
    "check_rep",
    "column_name",
    "parse_column_name",
    "validate_label",
]

DOMAIN_FEATURES = "features"
DOMAIN_TARGETS = "targets"
DOMAIN_TAGS = "tags"
DOMAIN_SAMPLE_UUIDS = "sample_uuids"
DOMAIN_OUTPUTS = "outputs"
#: The domains a FeatureSet stores data columns in, in display order.
DATA_DOMAINS: tuple[str, ...] = (DOMAIN_FEATURES, DOMAIN_TARGETS, DOMAIN_TAGS)
#: Every domain name of the vocabulary (``outputs`` appears in batches, not in FeatureSets).
DOMAINS: tuple[str, ...] = (*DATA_DOMAINS, DOMAIN_SAMPLE_UUIDS, DOMAIN_OUTPUTS)

REP_RAW = "raw"
REP_TRANSFORMED = "transformed"
#: The representations a column may have: the data as given, and the scaled data.
REPRESENTATIONS: tuple[str, ...] = (REP_RAW, REP_TRANSFORMED)

#: Name of the column holding one UUID4 string per sample.
SAMPLE_UUIDS_COLUMN = DOMAIN_SAMPLE_UUIDS
#: The dtype name used for text columns (Arrow ``string``; numpy object arrays of ``str``).
STRING_DTYPE = "string"

SCHEMA_VERSION = 1
SCHEMA_METADATA_KEY = b"modularml.schema"
FIELD_SHAPE_KEY = b"modularml.shape"
FIELD_DTYPE_KEY = b"modularml.dtype"

_NUMERIC_KINDS = frozenset("biufM")  # bool, int, uint, float, datetime64


def check_domain(domain: object) -> str:
    """Return ``domain`` if it is a data domain (``features``, ``targets``, ``tags``), else raise.

    Raises:
        InvalidArgumentError: Naming the value and the allowed domains.
    """
    if domain not in DATA_DOMAINS:
        raise InvalidArgumentError(f"Unknown domain {domain!r}; use one of {list(DATA_DOMAINS)}.")
    return domain  # type: ignore[return-value]


def check_rep(rep: object) -> str:
    """Return ``rep`` if it is a representation (``raw``, ``transformed``), else raise.

    Raises:
        InvalidArgumentError: Naming the value and the allowed representations.
    """
    if rep not in REPRESENTATIONS:
        raise InvalidArgumentError(f"Unknown representation {rep!r}; use one of {list(REPRESENTATIONS)}.")
    return rep  # type: ignore[return-value]


def column_name(domain: str, key: str, rep: str = REP_RAW) -> str:
    """The fully qualified column name ``domain.key.rep``.

    Raises:
        InvalidArgumentError: If the domain or representation is unknown.
        InvalidLabelError: If the key is not a valid label.
    """
    check_domain(domain)
    check_rep(rep)
    validate_label(key, what="column key")
    return f"{domain}.{key}.{rep}"


def parse_column_name(name: str) -> tuple[str, str, str]:
    """Split ``"domain.key.rep"`` into its three parts, validating each.

    Raises:
        InvalidArgumentError: If ``name`` does not have the form ``domain.key.rep`` or names an
            unknown domain or representation.
    """
    parts = name.split(".") if isinstance(name, str) else []
    if len(parts) != 3:
        raise InvalidArgumentError(
            f"Column name {name!r} is not of the form 'domain.key.rep' (e.g. 'features.voltage.raw')."
        )
    domain, key, rep = parts
    check_domain(domain)
    check_rep(rep)
    try:
        validate_label(key, what="column key")
    except InvalidLabelError as exc:
        raise InvalidArgumentError(f"Column name {name!r} has an invalid key: {exc}") from None
    return domain, key, rep


def _dtype_name(dtype: np.dtype) -> str:
    """The dtype name stored in the schema: a numpy dtype name, or ``"string"`` for text."""
    if dtype.kind in "OUT":
        return STRING_DTYPE
    if dtype.kind not in _NUMERIC_KINDS:
        raise InvalidArgumentError(
            f"Unsupported dtype {dtype}: columns hold booleans, integers, floats, datetimes or strings."
        )
    return dtype.name


def arrow_value_type(dtype: str) -> pa.DataType:
    """The Arrow type of one element of a column of dtype ``dtype``."""
    if dtype == STRING_DTYPE:
        return pa.string()
    return pa.from_numpy_dtype(np.dtype(dtype))


def _describe_arrow_type(arrow_type: pa.DataType, name: str) -> tuple[tuple[int, ...], str]:
    """Per-sample shape and dtype name of an Arrow column type."""
    shape: list[int] = []
    value_type = arrow_type
    while pa.types.is_fixed_size_list(value_type):
        shape.append(value_type.list_size)
        value_type = value_type.value_type
    if pa.types.is_string(value_type) or pa.types.is_large_string(value_type):
        return tuple(shape), STRING_DTYPE
    try:
        dtype = np.dtype(value_type.to_pandas_dtype())
    except (NotImplementedError, TypeError):
        dtype = None
    if dtype is None or dtype.kind not in _NUMERIC_KINDS or (pa.types.is_timestamp(value_type) and value_type.tz):
        raise InvalidArgumentError(
            f"Column {name!r} has Arrow type {arrow_type}, which a FeatureSet cannot hold: use booleans, "
            "integers, floats, timestamps (no time zone) or strings, as scalars or fixed-size lists."
        )
    if pa.types.is_timestamp(value_type):
        dtype = np.dtype(f"datetime64[{value_type.unit}]")
    return tuple(shape), _dtype_name(dtype)


@dataclass(frozen=True)
class ColumnSpec:
    """What one column of a FeatureSet holds.

    Attributes:
        domain: ``features``, ``targets`` or ``tags``.
        key: The column key (a valid label: no ``.``, space, ``/``, ``\\`` or ``:``).
        rep: ``raw`` or ``transformed``.
        shape: Per-sample shape; ``()`` for scalars, ``(100,)`` for a 100-point curve.
        dtype: A numpy dtype name (``"float32"``) or ``"string"``.
    """

    domain: str
    key: str
    rep: str
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        column_name(self.domain, self.key, self.rep)  # validates all three
        shape = tuple(self.shape)
        if not all(isinstance(s, (int, np.integer)) and s >= 0 for s in shape):
            raise InvalidArgumentError(f"Column {self.name!r}: shape must be non-negative integers; got {shape}.")
        object.__setattr__(self, "shape", tuple(int(s) for s in shape))
        if self.dtype != STRING_DTYPE:
            _dtype_name(np.dtype(self.dtype))

    @property
    def name(self) -> str:
        """The fully qualified column name, ``domain.key.rep``."""
        return f"{self.domain}.{self.key}.{self.rep}"

    @property
    def size(self) -> int:
        """Number of elements per sample (1 for scalars)."""
        return math.prod(self.shape)

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type of the column: the element type, wrapped in a fixed-size list per axis."""
        arrow_type = arrow_value_type(self.dtype)
        for size in reversed(self.shape):
            arrow_type = pa.list_(arrow_type, size)
        return arrow_type

    def arrow_field(self) -> pa.Field:
        """The Arrow field of the column, with shape and dtype in its metadata."""
        metadata = {FIELD_SHAPE_KEY: json.dumps(list(self.shape)).encode(), FIELD_DTYPE_KEY: self.dtype.encode()}
        return pa.field(self.name, self.arrow_type, nullable=True, metadata=metadata)

    def with_rep(self, rep: str) -> ColumnSpec:
        """The same column under another representation."""
        return ColumnSpec(self.domain, self.key, rep, self.shape, self.dtype)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable description."""
        return {"domain": self.domain, "key": self.key, "rep": self.rep, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnSpec:
        """Rebuild a spec from :meth:`to_json` output."""
        return cls(data["domain"], data["key"], data["rep"], tuple(data["shape"]), data["dtype"])

    @classmethod
    def from_arrow_field(cls, field: pa.Field) -> ColumnSpec:
        """Describe an Arrow field named ``domain.key.rep``; the type decides shape and dtype.

        Raises:
            InvalidArgumentError: If the name, the type, or the field metadata is not valid.
        """
        domain, key, rep = parse_column_name(field.name)
        shape, dtype = _describe_arrow_type(field.type, field.name)
        metadata = field.metadata or {}
        if FIELD_SHAPE_KEY in metadata and tuple(json.loads(metadata[FIELD_SHAPE_KEY])) != shape:
            raise InvalidArgumentError(
                f"Column {field.name!r}: its metadata says shape {json.loads(metadata[FIELD_SHAPE_KEY])} but its "
                f"Arrow type {field.type} holds shape {list(shape)}."
            )
        return cls(domain, key, rep, shape, dtype)


class SampleSchema:
    """The ordered set of :class:`ColumnSpec` of a FeatureSet's table (``sample_uuids`` excluded).

    Column keys are unique across domains: ``voltage`` may be a feature or a target, not both.
    A key may have several representations within its domain.

    Args:
        columns: The column specs, in table order.

    Raises:
        InvalidArgumentError: If a column name repeats, or a key appears in two domains.
    """

    def __init__(self, columns: Iterable[ColumnSpec] = ()) -> None:
        self._columns: dict[str, ColumnSpec] = {}
        key_domain: dict[str, str] = {}
        for spec in columns:
            if not isinstance(spec, ColumnSpec):
                raise InvalidArgumentError(f"A SampleSchema holds ColumnSpec objects; got {spec!r}.")
            if spec.name in self._columns:
                raise InvalidArgumentError(f"Column {spec.name!r} appears twice; column names must be unique.")
            other = key_domain.setdefault(spec.key, spec.domain)
            if other != spec.domain:
                raise InvalidArgumentError(
                    f"Key {spec.key!r} is used in both {other!r} and {spec.domain!r}; keys must be unique across "
                    "domains. Rename one of the columns."
                )
            self._columns[spec.name] = spec

    # -- container protocol ----------------------------------------------------------------
    def __iter__(self) -> Iterator[ColumnSpec]:
        return iter(self._columns.values())

    def __len__(self) -> int:
        return len(self._columns)

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __getitem__(self, name: str) -> ColumnSpec:
        return self._columns[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SampleSchema) and list(self) == list(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"SampleSchema({[f'{c.name}{list(c.shape)}:{c.dtype}' for c in self]})"

    # -- queries ------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Fully qualified names of all columns, in table order."""
        return list(self._columns)

    def column_names(self, domain: str | None = None, rep: str | None = None) -> list[str]:
        """Fully qualified names of the columns of one domain and/or representation."""
        return [c.name for c in self if (domain is None or c.domain == domain) and (rep is None or c.rep == rep)]

    def keys(self, domain: str) -> list[str]:
        """The distinct keys of a domain, in table order."""
        return list(dict.fromkeys(c.key for c in self if c.domain == domain))

    def domain_of(self, key: str) -> str | None:
        """The domain a key belongs to, or ``None``."""
        return next((c.domain for c in self if c.key == key), None)

    def reps(self, domain: str, key: str) -> list[str]:
        """The representations a key has."""
        return [c.rep for c in self if c.domain == domain and c.key == key]

    def with_column(self, spec: ColumnSpec) -> SampleSchema:
        """A new schema with ``spec`` added, or replacing the column of the same name."""
        columns = dict(self._columns)
        columns[spec.name] = spec
        return SampleSchema(columns.values())

    def select(self, names: Iterable[str]) -> SampleSchema:
        """A new schema of the named columns, in the given order."""
        return SampleSchema(self._columns[n] for n in names)

    # -- Arrow ------------------------------------------------------------------------------------
    def to_arrow(self) -> pa.Schema:
        """The Arrow schema of a table with these columns and ``sample_uuids`` (metadata included)."""
        fields = [spec.arrow_field() for spec in self]
        fields.append(pa.field(SAMPLE_UUIDS_COLUMN, pa.string(), nullable=False))
        return pa.schema(fields, metadata={SCHEMA_METADATA_KEY: json.dumps(self.to_json()).encode()})

    @classmethod
    def from_arrow(cls, schema: pa.Schema) -> SampleSchema:
        """Describe the data columns of an Arrow schema (``sample_uuids`` is skipped).

        Raises:
            InvalidArgumentError: If a column name or type is not valid for a FeatureSet.
        """
        return cls(ColumnSpec.from_arrow_field(f) for f in schema if f.name != SAMPLE_UUIDS_COLUMN)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable description (versioned)."""
        return {"version": SCHEMA_VERSION, "columns": [spec.to_json() for spec in self]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleSchema:
        """Rebuild a schema from :meth:`to_json` output.

        Raises:
            InvalidArgumentError: If the description is of an unknown version or malformed.
        """
        if not isinstance(data, dict) or data.get("version") != SCHEMA_VERSION:
            raise InvalidArgumentError(f"Unsupported SampleSchema description: {data!r:.200}.")
        return cls(ColumnSpec.from_json(c) for c in data["columns"])
