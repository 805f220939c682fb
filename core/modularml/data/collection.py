"""``SampleCollection``: one Arrow table of samples, with a cached numpy view of every column.

The table has one column per ``domain.key.rep`` and a ``sample_uuids`` column. Reading a column
converts it to a contiguous numpy array of shape ``(n_samples, *per_sample_shape)`` once, without a
copy where Arrow allows (numeric columns without nulls in one chunk), and caches it; the cached
arrays are read-only so that no caller can change the data behind another's back.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modularml.data.formats import stack_columns
from modularml.data.schema import (
    DATA_DOMAINS,
    REP_RAW,
    SAMPLE_UUIDS_COLUMN,
    SCHEMA_METADATA_KEY,
    STRING_DTYPE,
    ColumnSpec,
    SampleSchema,
    _dtype_name,
    column_name,
)
from modularml.errors import ColumnNotFoundError, InvalidArgumentError, InvalidTypeError

__all__ = [
    "SampleCollection",
    "arrow_to_numpy",
    "as_column_array",
    "generate_sample_uuids",
    "numpy_to_arrow",
    "readonly_indices",
]

logger = logging.getLogger("modularml.data.collection")

#: Cache key of :meth:`SampleCollection.sample_uuid_strings` (not a column name: it never clashes).
_UUID_STRINGS = "\x00sample_uuid_strings"

#: Byte value -> its two lowercase hex digits, as the uint16 whose memory holds them.
_HEX_PAIRS = np.array([int.from_bytes(f"{i:02x}".encode(), "little") for i in range(256)], dtype=np.uint16)


def generate_sample_uuids(n: int) -> pa.StringArray:
    """``n`` random UUID4 strings (``"xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"``), built without a Python loop.

    The 122 random bits of each UUID come from a PCG64 generator freshly seeded with 128 bits
    of operating-system entropy (``numpy.random.default_rng()``), so UUIDs of different calls,
    processes and machines do not collide in practice.
    """
    if n == 0:  # (an empty collection: no generator to seed from the operating system)
        return pa.array([], type=pa.string())
    raw = np.random.default_rng().bit_generator.random_raw(2 * n).view(np.uint8).reshape(n, 16)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    pairs = np.take(_HEX_PAIRS, raw)  # (n, 16) two hex digits per byte
    # Text is 8-4-4-4-12 digits: digit pairs start at even offsets in three groups and at odd
    # offsets in two, so write them through two uint16 views shifted by one byte.
    buffer = np.empty(n * 36 + 2, dtype=np.uint8)
    text = buffer[1 : 1 + n * 36].reshape(n, 36)
    at_even = buffer[: n * 36].view(np.uint16).reshape(n, 18)
    at_odd = buffer[1 : 1 + n * 36].view(np.uint16).reshape(n, 18)
    at_odd[:, 0:4] = pairs[:, 0:4]
    at_even[:, 5:7] = pairs[:, 4:6]
    at_odd[:, 7:9] = pairs[:, 6:8]
    at_even[:, 10:12] = pairs[:, 8:10]
    at_odd[:, 12:18] = pairs[:, 10:16]
    text[:, [8, 13, 18, 23]] = ord("-")
    data = pa.py_buffer(np.ascontiguousarray(text))
    if 36 * n < 2**31:
        offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), data)
    offsets64 = np.arange(0, 36 * (n + 1), 36, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets64), data)


# ---------------------------------------------------------------------------------------------
# conversions between user values, numpy and Arrow
# ---------------------------------------------------------------------------------------------
def _ragged_error(name: str, values: Any) -> InvalidArgumentError:
    lengths: dict[int, int] = {}
    try:
        for i, item in enumerate(values):
            lengths.setdefault(len(item), i)
            if len(lengths) > 1:
                break
    except TypeError:
        pass
    where = ", ".join(f"sample {i} has length {n}" for n, i in lengths.items()) or "samples differ in shape"
    return InvalidArgumentError(
        f"Column {name!r} is ragged ({where}): every sample of a column must have the same shape. "
        "Pad or truncate the samples first (FeatureSet.from_pandas(..., pad_value=...) pads grouped rows)."
    )


def as_column_array(name: str, values: Any) -> np.ndarray:
    """Convert a user column (list, numpy array, pandas Series, backend tensor) to numpy ``(N, *shape)``.

    Strings become a numpy array of ``str`` (dtype ``<U``) or an object array of ``str``.

    Raises:
        InvalidArgumentError: If the values are ragged, of an unsupported type, or not one per sample.
    """
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        spec = ColumnSpec.from_arrow_field(pa.field(column_name("features", "x"), values.type))
        return np.asarray(arrow_to_numpy(values, spec))
    if not isinstance(values, np.ndarray):
        from modularml.backends import backend_of

        backend = backend_of(values)
        if backend is not None:
            values = backend.implementation.to_numpy(values)
        elif hasattr(values, "to_numpy") and not isinstance(values, (list, tuple)):
            values = values.to_numpy()  # pandas Series / Index
    try:
        array = np.asarray(values)
    except ValueError:
        raise _ragged_error(name, values) from None
    if array.ndim == 0:
        raise InvalidArgumentError(
            f"Column {name!r} must be a sequence with one value per sample; got the single value {values!r:.80}."
        )
    if array.dtype == object:
        array = _resolve_object_array(name, array)
    if array.dtype.kind == "S":
        raise InvalidArgumentError(f"Column {name!r} holds bytes; decode them to str first.")
    try:
        _dtype_name(array.dtype)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"Column {name!r}: {exc}") from None
    return array


def _resolve_object_array(name: str, array: np.ndarray) -> np.ndarray:
    """Turn an object array (strings, or per-sample arrays as pandas holds them) into a typed array."""
    flat = array.reshape(-1)
    first = next((v for v in flat[: min(len(flat), 64)] if v is not None), None)
    if first is None or isinstance(first, str):
        return array  # strings (None allowed); checked when converted to Arrow
    if isinstance(first, (list, tuple, np.ndarray, pa.Array)) and array.ndim == 1:
        try:
            stacked = np.array(array.tolist())
        except ValueError:
            raise _ragged_error(name, array) from None
        if stacked.dtype == object or stacked.shape[0] != array.shape[0]:
            raise _ragged_error(name, array)
        return stacked
    try:
        converted = np.array(array.tolist())
    except ValueError:
        raise _ragged_error(name, array) from None
    if converted.dtype == object:
        kinds = sorted({type(v).__name__ for v in flat[:1000]})
        raise InvalidArgumentError(
            f"Column {name!r} mixes value types {kinds}; a column holds numbers, booleans or strings, one kind only."
        )
    return converted


def numpy_to_arrow(values: np.ndarray, spec: ColumnSpec) -> pa.Array:
    """Convert ``(N, *spec.shape)`` values to the Arrow array of ``spec`` (zero-copy for contiguous numbers).

    Raises:
        InvalidArgumentError: If the values do not match the spec, or a text column holds non-strings.
    """
    if tuple(values.shape[1:]) != spec.shape:
        raise InvalidArgumentError(
            f"Column {spec.name!r} expects per-sample shape {spec.shape}; got values of shape {values.shape}."
        )
    flat_values = values.reshape(-1)
    if spec.dtype == STRING_DTYPE:
        try:
            flat = pa.array(flat_values, type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidArgumentError(
                f"Column {spec.name!r} mixes strings with other values ({exc}); convert all values to str."
            ) from None
    else:
        flat = pa.array(np.ascontiguousarray(flat_values, dtype=np.dtype(spec.dtype)))
    for size in reversed(spec.shape):
        flat = pa.FixedSizeListArray.from_arrays(flat, size)
    return flat


def readonly_indices(indices: Any) -> np.ndarray:
    """``indices`` as a contiguous ``int64`` array, made read-only.

    An array that already is contiguous ``int64`` is not copied but frozen in place: pass only
    arrays nobody else will write to (internal, freshly computed indices).
    """
    out = np.ascontiguousarray(indices, dtype=np.int64)
    out.flags.writeable = False
    return out


def _single_chunk(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.Array):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    if column.num_chunks == 0:
        return pa.array([], type=column.type)
    return pa.concat_arrays(column.chunks)


def _flatten(array: pa.Array, depth: int) -> pa.Array:
    for _ in range(depth):
        array = array.flatten()
    return array


def arrow_to_numpy(column: pa.ChunkedArray | pa.Array, spec: ColumnSpec) -> np.ndarray:
    """Convert an Arrow column to a read-only numpy array ``(N, *spec.shape)``.

    Numeric columns in one chunk without nulls are not copied; several chunks are concatenated
    once. Text columns become object arrays of ``str``.
    """
    array = _single_chunk(column)
    flat = _flatten(array, len(spec.shape))
    out = flat.to_numpy(zero_copy_only=False)
    out = out.reshape((len(array), *spec.shape))
    if out.flags.writeable:
        out.flags.writeable = False
    return out


def _fixed_size(array: pa.Array, name: str) -> pa.Array:
    """Turn variable-size lists of equal lengths (at every depth) into fixed-size lists."""
    sizes: list[int] = []
    values = array
    while (
        pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or pa.types.is_fixed_size_list(values.type)
    ):
        if pa.types.is_fixed_size_list(values.type):
            sizes.append(values.type.list_size)
            values = values.flatten()
            continue
        lengths = pc.list_value_length(values)
        if lengths.null_count:
            raise InvalidArgumentError(f"Column {name!r} has {lengths.null_count} missing (null) samples.")
        unique = pc.unique(lengths).to_pylist()
        if len(unique) > 1:
            first_other = int(pc.index(lengths, unique[1]).as_py())
            raise InvalidArgumentError(
                f"Column {name!r} is ragged: sample 0 has length {unique[0]}, sample {first_other} has length "
                f"{unique[1]}. Every sample of a column must have the same shape; pad or truncate first."
            )
        sizes.append(int(unique[0]) if unique else 0)
        values = values.flatten()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    for size in reversed(sizes):
        values = pa.FixedSizeListArray.from_arrays(values, size)
    return values


def _count_nulls(array: pa.Array, depth: int) -> int:
    count = array.null_count
    for _ in range(depth):
        array = array.flatten()
        count += array.null_count
    return count


class SampleCollection:
    """One Arrow table of samples: ``domain.key.rep`` columns plus ``sample_uuids``.

    Args:
        table: The table. Columns are named ``domain.key.rep``; a ``sample_uuids`` column of
            unique strings is used if present, else UUID4 strings are generated. Variable-size
            list columns whose samples all have the same length become fixed-size lists;
            dictionary-encoded strings are decoded.
        schema: The expected schema; inferred from the table if omitted.

    Raises:
        InvalidArgumentError: If a column name, type, or value (nulls in a numeric column,
            duplicate sample UUIDs) is not valid, or the table does not match ``schema``.
        InvalidTypeError: If ``table`` is not a ``pyarrow.Table``.
    """

    def __init__(self, table: pa.Table, schema: SampleSchema | None = None) -> None:
        if not isinstance(table, pa.Table):
            raise InvalidTypeError(f"A SampleCollection wraps a pyarrow.Table; got {type(table).__name__}.")
        self._table, self._schema = _normalize_table(table, schema)
        self._cache: dict[str, np.ndarray] = {}
        self._stacked: dict[tuple[str, ...], np.ndarray] = {}

    @classmethod
    def _from_parts(
        cls, table: pa.Table, schema: SampleSchema, cache: Mapping[str, np.ndarray] | None = None
    ) -> SampleCollection:
        """Wrap an already normalised table (internal: no validation)."""
        collection = cls.__new__(cls)
        collection._table = table
        collection._schema = schema
        collection._cache = dict(cache or {})
        collection._stacked = {}
        return collection

    @classmethod
    def from_columns(
        cls,
        features: Mapping[str, Any],
        targets: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        sample_uuids: Sequence[str] | pa.Array | None = None,
        copy: bool = True,
    ) -> SampleCollection:
        """Build a collection from per-domain mappings of key -> values (one value per sample).

        Values may be lists, numpy arrays, pandas Series or backend tensors. Numeric input is
        copied once into Arrow memory (so later changes to the caller's arrays do not leak in)
        unless ``copy=False``, which hands arrays that nobody else holds to Arrow as they are.

        Raises:
            InvalidArgumentError: For invalid keys, ragged or mismatched lengths, or bad values.
        """
        domains = dict(zip(DATA_DOMAINS, (features, targets or {}, tags or {}), strict=True))
        specs: list[ColumnSpec] = []
        arrays: list[pa.Array] = []
        lengths: dict[str, int] = {}
        for domain, columns in domains.items():
            for key, values in columns.items():
                name = column_name(domain, key, REP_RAW)
                array = as_column_array(key, values)
                spec = ColumnSpec(domain, key, REP_RAW, tuple(array.shape[1:]), _dtype_name(array.dtype))
                if copy and spec.dtype != STRING_DTYPE and (array is values or not array.flags.owndata):
                    array = np.array(array, copy=True, order="C")  # never alias the caller's memory
                specs.append(spec)
                arrays.append(numpy_to_arrow(array, spec))
                lengths[name] = len(array)
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{name.split('.')[1]!r}: {n}" for name, n in lengths.items())
            raise InvalidArgumentError(
                f"Columns have different lengths ({detail}); every column needs one value per sample."
            )
        schema = SampleSchema(specs)
        n = next(iter(lengths.values()), 0)
        uuids = generate_sample_uuids(n) if sample_uuids is None else _checked_uuids(sample_uuids, n)
        table = pa.Table.from_arrays([*arrays, uuids], schema=schema.to_arrow())
        return cls._from_parts(table, schema)

    # -- basic properties -------------------------------------------------------------------------
    @property
    def table(self) -> pa.Table:
        """The Arrow table (data columns in schema order, then ``sample_uuids``)."""
        return self._table

    @property
    def schema(self) -> SampleSchema:
        """The :class:`SampleSchema` of the data columns."""
        return self._schema

    @property
    def n_samples(self) -> int:
        """Number of samples (rows)."""
        return self._table.num_rows

    def __len__(self) -> int:
        return self._table.num_rows

    @property
    def nbytes(self) -> int:
        """Bytes referenced by the Arrow table."""
        return self._table.nbytes

    def column_names(self, domain: str | None = None, rep: str | None = None) -> list[str]:
        """Qualified names of the data columns, optionally of one domain and/or representation."""
        return self._schema.column_names(domain, rep)

    def spec(self, name: str) -> ColumnSpec:
        """The :class:`ColumnSpec` of a column.

        Raises:
            ColumnNotFoundError: If there is no such column.
        """
        try:
            return self._schema[name]
        except KeyError:
            raise ColumnNotFoundError(f"No column {name!r}; available columns: {self._schema.names}.") from None

    # -- data ----------------------------------------------------------------------------------
    def to_numpy(self, name: str) -> np.ndarray:
        """The whole column as a read-only numpy array ``(n_samples, *shape)``, converted once and cached.

        Raises:
            ColumnNotFoundError: If there is no such column.
        """
        cached = self._cache.get(name)
        if cached is None:
            spec = self.spec(name)
            cached = arrow_to_numpy(self._table.column(name), spec)
            self._cache[name] = cached
            logger.debug("converted column %s to numpy (%d bytes)", name, cached.nbytes)
        return cached

    def stacked_numpy(self, names: tuple[str, ...]) -> np.ndarray:
        """Several columns stacked on axis 1 as one read-only array ``(n_samples, len(names), *shape)``, cached.

        Built once per column set (the collection is replaced whenever columns change, so the cache
        never goes stale): a batch of these columns is then one ``take`` instead of one per column.
        One name returns :meth:`to_numpy` itself.

        Raises:
            ColumnNotFoundError: If a column does not exist.
            InvalidArgumentError: If the columns' per-sample shapes differ.
        """
        names = tuple(names)
        cached = self._stacked.get(names)
        if cached is None:
            cached = stack_columns({name: self.to_numpy(name) for name in names})
            if len(names) > 1:
                cached.flags.writeable = False
            self._stacked[names] = cached
            logger.debug("stacked %d columns (%d bytes)", len(names), cached.nbytes)
        return cached

    def sample_uuids(self) -> np.ndarray:
        """The sample UUIDs as a read-only object array of ``str`` (cached)."""
        cached = self._cache.get(SAMPLE_UUIDS_COLUMN)
        if cached is None:
            cached = _single_chunk(self._table.column(SAMPLE_UUIDS_COLUMN)).to_numpy(zero_copy_only=False)
            cached.flags.writeable = False
            self._cache[SAMPLE_UUIDS_COLUMN] = cached
        return cached

    def sample_uuid_strings(self) -> np.ndarray:
        """The sample UUIDs as a read-only fixed-width unicode array (``<U36`` for generated UUIDs), cached.

        Batches gather their UUIDs from this array: taking rows of it is a plain copy, while taking
        rows of the object array of :meth:`sample_uuids` touches every string object.
        """
        cached = self._cache.get(_UUID_STRINGS)
        if cached is None:
            cached = self.sample_uuids().astype(str)
            cached.flags.writeable = False
            self._cache[_UUID_STRINGS] = cached
        return cached

    def sample_uuid_array(self) -> pa.Array:
        """The sample UUIDs as one Arrow string array."""
        return _single_chunk(self._table.column(SAMPLE_UUIDS_COLUMN))

    def null_count(self, name: str) -> int:
        """Number of missing values in a column (only text columns may have any)."""
        return _count_nulls(_single_chunk(self._table.column(name)), len(self.spec(name).shape))

    # -- derived collections --------------------------------------------------------------------
    def select(self, names: Iterable[str]) -> SampleCollection:
        """A collection of the named data columns (and the UUIDs); buffers and cache are shared."""
        names = list(names)
        for name in names:
            self.spec(name)
        schema = self._schema.select(names)
        table = pa.Table.from_arrays(
            [self._table.column(n) for n in [*names, SAMPLE_UUIDS_COLUMN]], schema=schema.to_arrow()
        )
        cache = {n: a for n, a in self._cache.items() if n in schema or n == SAMPLE_UUIDS_COLUMN}
        return SampleCollection._from_parts(table, schema, cache)

    def with_columns(self, columns: Mapping[ColumnSpec, np.ndarray]) -> SampleCollection:
        """A collection with columns added or replaced; untouched columns share buffers and cache.

        Raises:
            InvalidArgumentError: If a value array has the wrong length or shape.
        """
        schema = self._schema
        new_arrays: dict[str, pa.Array] = {}
        for spec, values in columns.items():
            values = np.asarray(values)
            if len(values) != self.n_samples:
                raise InvalidArgumentError(
                    f"Column {spec.name!r} has {len(values)} values; this collection has {self.n_samples} samples."
                )
            new_arrays[spec.name] = numpy_to_arrow(values, spec)
            schema = schema.with_column(spec)
        arrays = [new_arrays[n] if n in new_arrays else self._table.column(n) for n in schema.names]
        table = pa.Table.from_arrays([*arrays, self._table.column(SAMPLE_UUIDS_COLUMN)], schema=schema.to_arrow())
        cache = {n: a for n, a in self._cache.items() if n not in new_arrays}
        return SampleCollection._from_parts(table, schema, cache)

    def take(self, indices: np.ndarray) -> SampleCollection:
        """A new collection of the given rows (copied), in the given order; UUIDs are kept."""
        table = self._table.take(pa.array(np.asarray(indices, dtype=np.int64)))
        return SampleCollection._from_parts(table, self._schema)

    def shallow_copy(self) -> SampleCollection:
        """A new collection over the same Arrow buffers (zero-copy), with its own cache."""
        table = pa.Table.from_arrays(self._table.columns, schema=self._table.schema)
        return SampleCollection._from_parts(table, self._schema)

    def deep_copy(self) -> SampleCollection:
        """A new collection whose Arrow buffers are copies."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self._table.schema) as writer:
            writer.write_table(self._table)
        table = pa.ipc.open_stream(sink.getvalue()).read_all()
        return SampleCollection._from_parts(table, self._schema)

    def __repr__(self) -> str:
        return f"SampleCollection(n_samples={self.n_samples}, columns={self._schema.names})"


def _all_distinct(array: pa.Array) -> bool:
    """Whether a string array has no repeated value (fast path for canonical 36-character UUIDs)."""
    n = len(array)
    if n < 2:
        return True
    if pa.types.is_string(array.type) and array.null_count == 0:
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=n + 1, offset=array.offset * 4)
        if np.all(np.diff(offsets) == 36):
            data = array.buffers()[2]
            start = int(offsets[0])
            # the first and last 8 characters of every string, read in place as uint64
            head = np.ndarray((n,), dtype="<u8", buffer=data, offset=start, strides=(36,))
            tail = np.ndarray((n,), dtype="<u8", buffer=data, offset=start + 28, strides=(36,))
            if _distinct_keys(head ^ (tail * np.uint64(0x9E3779B97F4A7C15))):  # distinct keys: distinct strings
                return True
    return pc.count_distinct(array).as_py() == n


_MAX_BUCKET_BITS = 22
#: Odd multipliers of the hash passes of :func:`_distinct_keys` (each spreads the keys differently).
_HASH_MULTIPLIERS = tuple(
    np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)
)


def _distinct_keys(keys: np.ndarray) -> bool:
    """Whether the ``uint64`` keys are pairwise distinct, in about linear time for random keys.

    Each pass hashes the keys still in question into about ``4 n`` buckets (at most 2**22, 32 MiB
    of counts) and keeps only those that share a bucket: equal keys always do, so a key alone in
    its bucket is distinct from every other. The few left are sorted and compared. For 100,000
    keys this is 3-4x faster than sorting them all; past 2**23 keys the buckets would be too
    crowded to help, and the keys are sorted directly.
    """
    with np.errstate(over="ignore"):
        for multiplier in _HASH_MULTIPLIERS:
            n = len(keys)
            if n < 4096 or n > 2 << _MAX_BUCKET_BITS:
                break
            bits = min((4 * n - 1).bit_length(), _MAX_BUCKET_BITS)
            bucket = ((keys * multiplier) >> np.uint64(64 - bits)).astype(np.intp)
            keys = keys[np.bincount(bucket, minlength=1 << bits)[bucket] > 1]
    keys = np.sort(keys)
    return not (keys[1:] == keys[:-1]).any()


def _checked_uuids(values: Any, n: int) -> pa.Array:
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(np.asarray(values, dtype=object))
    array = _single_chunk(array)
    if pa.types.is_large_string(array.type) or pa.types.is_dictionary(array.type):
        array = array.cast(pa.string()) if not pa.types.is_dictionary(array.type) else array.dictionary_decode()
    if not pa.types.is_string(array.type):
        raise InvalidArgumentError(f"Sample UUIDs must be strings; got Arrow type {array.type}.")
    if len(array) != n:
        raise InvalidArgumentError(f"Got {len(array)} sample UUIDs for {n} samples.")
    if array.null_count:
        raise InvalidArgumentError(f"{array.null_count} sample UUIDs are missing (null); every sample needs one.")
    if not _all_distinct(array):
        distinct = pc.count_distinct(array).as_py()
        counts = pc.value_counts(array)
        dupes = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")[:3].to_pylist()
        raise InvalidArgumentError(
            f"Sample UUIDs must be unique; {n - distinct} repeat (e.g. {dupes}). Drop the column to generate new ones."
        )
    return array


@functools.lru_cache(maxsize=64)
def _described_schema(text: bytes) -> tuple[SampleSchema, pa.Schema] | None:
    """The SampleSchema a table's schema metadata describes, and its Arrow schema (cached: loading a
    saved table, or rebuilding one, parses the same text again)."""
    try:
        described = SampleSchema.from_json(json.loads(text))
        return described, described.to_arrow()
    except (ValueError, KeyError, TypeError, InvalidArgumentError):
        return None


def _canonical(table: pa.Table, schema: SampleSchema | None) -> SampleSchema | None:
    """The table's schema if the table is already in canonical form (e.g. as saved by ModularML)."""
    metadata = table.schema.metadata or {}
    if SCHEMA_METADATA_KEY not in metadata:
        return None
    parsed = _described_schema(metadata[SCHEMA_METADATA_KEY])
    if parsed is None:
        return None
    described, arrow_schema = parsed
    if schema is not None and described != schema:
        return None
    if not table.schema.equals(arrow_schema, check_metadata=True):
        return None
    return described


def _normalize_table(table: pa.Table, schema: SampleSchema | None) -> tuple[pa.Table, SampleSchema]:
    """Validate a user table, fix representable type variants, attach schema metadata."""
    canonical = _canonical(table, schema)
    if canonical is not None:  # types and metadata already right: check values only
        for spec in canonical:
            if spec.dtype != STRING_DTYPE:
                nulls = _count_nulls(_single_chunk(table.column(spec.name)), len(spec.shape))
                if nulls:
                    raise InvalidArgumentError(f"Column {spec.name!r} has {nulls} missing (null) values.")
        uuids = _checked_uuids(table.column(SAMPLE_UUIDS_COLUMN), table.num_rows)
        columns = [_single_chunk(table.column(spec.name)) for spec in canonical]
        return pa.Table.from_arrays([*columns, uuids], schema=table.schema), canonical
    names = table.column_names
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InvalidArgumentError(f"The table has duplicate column names {dupes}.")
    arrays: dict[str, pa.Array] = {}
    specs: list[ColumnSpec] = []
    for name in names:
        if name == SAMPLE_UUIDS_COLUMN:
            continue
        array = _fixed_size(_single_chunk(table.column(name)), name)
        field = pa.field(name, array.type, metadata=table.schema.field(name).metadata)
        spec = ColumnSpec.from_arrow_field(field)
        if schema is not None:
            if name not in schema:
                raise InvalidArgumentError(f"Column {name!r} of the table is not in the given schema {schema.names}.")
            expected = schema[name]
            if expected.arrow_type != spec.arrow_type:
                raise InvalidArgumentError(
                    f"Column {name!r} has Arrow type {array.type}; the schema expects {expected.arrow_type}."
                )
            spec = expected
        if spec.dtype != STRING_DTYPE:
            nulls = _count_nulls(array, len(spec.shape))
            if nulls:
                raise InvalidArgumentError(
                    f"Column {name!r} has {nulls} missing (null) values; fill them (e.g. with NaN) first."
                )
        arrays[name] = array
        specs.append(spec)
    if schema is not None:
        missing = [n for n in schema.names if n not in arrays]
        if missing:
            raise InvalidArgumentError(f"The table lacks columns {missing} of the given schema.")
        specs = list(schema)
    final_schema = SampleSchema(specs)
    n = table.num_rows
    if SAMPLE_UUIDS_COLUMN in names:
        uuids = _checked_uuids(table.column(SAMPLE_UUIDS_COLUMN), n)
    else:
        uuids = generate_sample_uuids(n)
    columns = [arrays[s.name] for s in final_schema]
    out = pa.Table.from_arrays([*columns, uuids], schema=final_schema.to_arrow())
    return out, final_schema
