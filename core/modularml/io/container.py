"""The ModularML file format: one zip container for every saved object.

A file ``<name>.<kind>.mml`` is a zip of stored (uncompressed) members holding:

- ``manifest.json``: ``{"format": "modularml", "format_version": 2, "kind": "fs", "class":
  "modularml.data.featureset:FeatureSet", "modularml_version": ..., "entries": [...],
  "checksums": {"config.json": "xxh3_64:<16 hex digits>", ...}}``;
- ``config.json``: the object's configuration (how to construct it);
- ``state.json``: its runtime state, where every numpy array is replaced by a reference to an
  ``arrays/<n>.npy`` entry and every Arrow table by a reference to a ``tables/<n>.arrow`` entry
  (Arrow IPC stream format, bodies uncompressed).

Format version 2 (version-1 files still load) stores
every member's data at a multiple of 64 bytes in the file (:mod:`modularml.io.zipwrite`), so
that arrays and Arrow buffers are views of the bytes read (or of the file mapped, with
``read_container(mmap=True)``), never copies. Integrity runs at memory speed: the manifest
records the XXH3-64 digest (xxHash) of every other entry, and the reader checks each entry's
bytes against it as they are read, before anything is decoded (verify-on-load, never
skipped); the manifest itself is covered by its zip CRC-32. A version-1 file has no digests:
its entries are checked against their zip CRC-32.

Loading never unpickles and never runs code from the file: arrays are read with pickling
disabled, tables with Arrow's validating reader, and the classes a file names are resolved by the
loaders through the plugin layer (:mod:`modularml.plugins.resolver`). Any damage (truncation, bad
checksums, a foreign or newer file) raises :class:`~modularml.errors.SerializationError` naming the
file and the problem. Writes are atomic (:func:`~modularml.io.atomic.atomic_write`).

A file is read as if it were hostile: every entry is read within a size limit
(:data:`MAX_MEMBER_BYTES`, :data:`MAX_JSON_BYTES`, and :data:`MAX_COMPRESSION_RATIO` for the
deflated entries other tools may write), JSON within a nesting depth (:data:`MAX_JSON_DEPTH`) and
integer length (:data:`MAX_INT_DIGITS`), and an entry the manifest does not list, a name that
appears twice, a tagged value of the wrong form or an array header that does not match its data
is refused. A checksum is no defence against a deliberate forger (who can recompute it), so
these checks stand behind it. The limits are read when a file is loaded, so a program that
trusts its (large) files may raise them here, or per call with the keywords of
:func:`read_container`.
"""

from __future__ import annotations

import io
import json
import logging
import math
import mmap as _mmap
import re
import reprlib
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from modularml._version import __version__
from modularml.errors import FileCollisionError, FileWriteError, InvalidArgumentError, SerializationError
from modularml.io.atomic import atomic_write
from modularml.io.zipwrite import AlignedZipWriter, format_checksum

__all__ = [
    "FILE_KINDS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_COMPRESSION_RATIO",
    "MAX_INT_DIGITS",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MEMBER_BYTES",
    "Container",
    "container_path",
    "read_container",
    "write_container",
]

logger = logging.getLogger("modularml.io.container")

FORMAT_NAME = "modularml"
FORMAT_VERSION = 2
#: File kinds: the part of ``<name>.<kind>.mml`` that says what the file holds.
FILE_KINDS: dict[str, str] = {
    "fs": "FeatureSet",
    "mg": "ModelGraph",
    "exp": "Experiment",
    "md": "model",
    "ls": "Loss",
    "op": "Optimizer",
    "sc": "Scaler",
    "sp": "Splitter",
    "sm": "Sampler",
    "ckpt": "checkpoint",
}

#: Most bytes one array or table entry may hold once read (16 GiB). Raise it (or pass
#: ``max_member_bytes`` to :func:`read_container`) to load files with larger entries.
MAX_MEMBER_BYTES = 16 * 2**30
#: Most bytes ``manifest.json``, ``config.json`` or ``state.json`` may hold (256 MiB).
MAX_JSON_BYTES = 256 * 2**20
#: A deflated entry may inflate to at most this many times its compressed size, plus 1 MiB; so
#: may all deflated entries together. ModularML itself stores entries uncompressed.
MAX_COMPRESSION_RATIO = 100
#: Deepest nesting of lists and objects in a JSON entry.
MAX_JSON_DEPTH = 200
#: Most digits of an integer in a JSON entry (Python's own default limit for ``int(str)``).
MAX_INT_DIGITS = 4300

MANIFEST = "manifest.json"
CONFIG = "config.json"
STATE = "state.json"
_JSON_ENTRIES = frozenset({MANIFEST, CONFIG, STATE})
_ARRAY_TAG = "__mml_array__"
_TABLE_TAG = "__mml_table__"
_TUPLE_TAG = "__mml_tuple__"
_FLOAT_TAG = "__mml_float__"
_TAGS = (_ARRAY_TAG, _TABLE_TAG, _TUPLE_TAG, _FLOAT_TAG)
_TAG_SET = frozenset(_TAGS)
_SHAPE_KEY = "object_array_shape"
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}  # as repr() writes them
_KIND_SUFFIX = re.compile(r"^(?P<stem>.+)\.(?P<kind>[a-z]+)\.mml$")
_ARRAY_ENTRY = re.compile(r"arrays/(?:0|[1-9][0-9]*)\.npy")
_TABLE_ENTRY = re.compile(r"tables/(?:0|[1-9][0-9]*)\.arrow")
_SAFE_ENTRY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")

_COMPRESSION_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_INFLATE_SLACK = 2**20
_READ_CHUNK = 2**20
#: buffers entries are read into start at a multiple of this (as their data does in the file)
_BUFFER_ALIGNMENT = 64
#: the magic, version and length of an ``.npy`` header, and numpy's own limit on its length
_NPY_PREFIX = 12 + 10_000
#: signature, name length and extra length of a zip local file header (30 bytes)
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_CHECKSUM = re.compile(r"xxh3_64:([0-9a-f]{16})")
#: dtype kinds an ``.npy`` entry may hold: bool, ints, floats, complex, str, bytes, datetimes.
_NPY_KINDS = frozenset("biufcUSMm")
_MAX_NDIM = 64
_MAX_DIM = int(np.iinfo(np.intp).max)
_LOG2_10 = math.log2(10)
_JSON_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# Arrow IPC flatbuffer layout (Message.fbs): the MessageHeader union's type codes, and the fields
# Message.header_type (1), Message.header (2), DictionaryBatch.data (1), RecordBatch.compression (3).
_IPC_DICTIONARY_BATCH = 2
_IPC_RECORD_BATCH = 3

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlist = _REPR.maxdict = 8


def _short(value: Any) -> str:
    """``repr(value)``, shortened: values from a hostile file may be of any size."""
    return _REPR.repr(value)


def container_path(filepath: str | Path, kind: str) -> Path:
    """The path a ``kind`` object saved at ``filepath`` is written to: ``<name>.<kind>.mml``.

    ``"run/data"`` -> ``"run/data.fs.mml"``, ``"data.mml"`` -> ``"data.fs.mml"``, and
    ``"data.fs.mml"`` stays as it is.

    Raises:
        InvalidArgumentError: If ``kind`` is unknown, or the name carries another kind's suffix.
    """
    if kind not in FILE_KINDS:
        raise InvalidArgumentError(f"Unknown file kind {kind!r}; known kinds: {sorted(FILE_KINDS)}.")
    path = Path(filepath)
    name = path.name
    match = _KIND_SUFFIX.match(name)
    if match and match["kind"] in FILE_KINDS:
        if match["kind"] != kind:
            raise InvalidArgumentError(
                f"{name!r} is the file name of a {FILE_KINDS[match['kind']]} ('.{match['kind']}.mml'); a "
                f"{FILE_KINDS[kind]} is saved as '<name>.{kind}.mml', e.g. {match['stem'] + '.' + kind + '.mml'!r}."
            )
        return path
    if name.endswith(".mml"):
        name = name[: -len(".mml")]
    return path.with_name(f"{name}.{kind}.mml")


def _is_class_path(value: Any) -> bool:
    """Whether ``value`` is a ``"module:QualName"`` string of dotted identifiers (syntax only)."""
    if not isinstance(value, str):
        return False
    module, sep, qualname = value.partition(":")
    return bool(sep) and all(part.isidentifier() for part in (*module.split("."), *qualname.split(".")))


def _npy_dtype_allowed(dtype: np.dtype) -> bool:
    """Whether arrays of ``dtype`` are saved as ``.npy``: fixed-size scalars, no objects or records."""
    return dtype.kind in _NPY_KINDS and dtype.itemsize > 0


# ---------------------------------------------------------------------------------------------
# encoding of config/state trees
# ---------------------------------------------------------------------------------------------
class _Encoder:
    """Turns a tree of JSON values, numpy arrays and Arrow tables into JSON plus binary entries."""

    def __init__(self) -> None:
        self.arrays: list[tuple[str, np.ndarray]] = []
        self.tables: list[tuple[str, pa.Table]] = []

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (str, bool)):
            return value
        if isinstance(value, int):
            # |value| < 2**bits <= 10**MAX_INT_DIGITS: the reader accepts every integer saved
            if value.bit_length() > int(MAX_INT_DIGITS * _LOG2_10):
                raise SerializationError(
                    f"{where} is an integer of more than {MAX_INT_DIGITS} digits, which a file cannot hold; "
                    "save it as a string."
                )
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {_FLOAT_TAG: repr(value)}
        if isinstance(value, np.generic):
            return self.encode(value.item(), where)
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, pa.Table):
            name = f"tables/{len(self.tables)}.arrow"
            self.tables.append((name, value))
            return {_TABLE_TAG: name}
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SerializationError(f"{where} has the key {key!r}; saved mappings need string keys.")
                if key in _TAGS:
                    raise SerializationError(f"{where} uses the reserved key {key!r}.")
                out[key] = self.encode(item, f"{where}[{key!r}]")
            return out
        if isinstance(value, tuple):
            return {_TUPLE_TAG: [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        raise SerializationError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__} ({value!r:.80}); only JSON values, "
            "numpy arrays and Arrow tables can be saved. Python functions and other objects cannot be stored "
            "safely; replace them with plain values."
        )

    def _array(self, value: np.ndarray, where: str) -> dict[str, Any]:
        if value.dtype.hasobject:  # text: stored as an Arrow string column, never pickled
            try:
                column = pa.array(value.reshape(-1), type=pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise SerializationError(
                    f"{where} is an object array that does not hold only strings; it cannot be saved without "
                    "pickling. Convert it to a numeric or string dtype."
                ) from None
            name = f"tables/{len(self.tables)}.arrow"
            self.tables.append((name, pa.table({"values": column})))
            return {_TABLE_TAG: name, _SHAPE_KEY: list(value.shape)}
        if not _npy_dtype_allowed(value.dtype):
            raise SerializationError(
                f"{where} is an array of dtype {value.dtype}; only boolean, integer, float, complex, datetime and "
                "fixed-width string arrays can be saved. Store the fields of a structured array separately."
            )
        name = f"arrays/{len(self.arrays)}.npy"
        self.arrays.append((name, value))
        return {_ARRAY_TAG: name}


class _Decoder:
    """Inverse of :class:`_Encoder` for one JSON entry, reading binary entries from an open container.

    Every tagged value is checked: a tag stands alone in its object (a table reference may add
    ``object_array_shape``), holds a value of its form, and a reference names an entry of its kind
    that the manifest lists, used only once. Locations are kept as ``(parent, key)`` links and
    spelled out only for a message.
    """

    def __init__(self, reader: _Reader, member: str) -> None:
        self.reader = reader
        self.member = member

    def decode(self, value: Any, where: Any = None) -> Any:
        if isinstance(value, list):
            return [self.decode(item, (where, index)) for index, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        if _TAG_SET.isdisjoint(value):
            return {key: self.decode(item, (where, key)) for key, item in value.items()}
        return self._tagged(value, where)

    def fail(self, where: Any, what: str) -> SerializationError:
        keys = []
        while where is not None:
            where, key = where
            keys.append(key)
        location = self.member.removesuffix(".json") + "".join(f"[{_short(key)}]" for key in reversed(keys))
        return self.reader.fail(f"the entry {self.member!r} is malformed at {location}: {what}.")

    def _tagged(self, value: dict[str, Any], where: Any) -> Any:
        tags = sorted(_TAG_SET.intersection(value))
        if len(tags) > 1:
            raise self.fail(where, f"it combines the tags {tags}")
        tag = tags[0]
        extra = value.keys() - {tag, _SHAPE_KEY} if tag == _TABLE_TAG else value.keys() - {tag}
        if extra:
            raise self.fail(where, f"the tag {tag!r} has the extra keys {_short(sorted(extra))}")
        payload = value[tag]
        if tag == _FLOAT_TAG:
            if not isinstance(payload, str) or payload not in _NON_FINITE:
                raise self.fail(where, f"the float tag holds {_short(payload)}, not 'nan', 'inf' or '-inf'")
            return _NON_FINITE[payload]
        if tag == _TUPLE_TAG:
            if not isinstance(payload, list):
                raise self.fail(where, f"the tuple tag holds {_short(payload)}, not a list")
            return tuple(self.decode(item, (where, index)) for index, item in enumerate(payload))
        name = self._reference(tag, payload, where)
        if tag == _ARRAY_TAG:
            array = self.reader.array(name)
            self.reader.entry = self.member
            return array
        table = self.reader.table(name)
        self.reader.entry = self.member
        if _SHAPE_KEY not in value:
            return table
        return self._text_array(table, value[_SHAPE_KEY], name, where)

    def _reference(self, tag: str, payload: Any, where: Any) -> str:
        pattern, form = (_ARRAY_ENTRY, "arrays/<n>.npy") if tag == _ARRAY_TAG else (_TABLE_ENTRY, "tables/<n>.arrow")
        if not isinstance(payload, str) or not pattern.fullmatch(payload):
            raise self.fail(where, f"the tag {tag!r} holds {_short(payload)}, not an entry name {form!r}")
        if payload not in self.reader.entries:
            raise self.fail(where, f"it refers to {payload!r}, which manifest.json does not list")
        if payload in self.reader.referenced:
            raise self.fail(where, f"it refers to {payload!r} a second time; each entry holds one value")
        self.reader.referenced.add(payload)
        return payload

    def _text_array(self, table: pa.Table, shape: Any, name: str, where: Any) -> np.ndarray:
        if (
            not isinstance(shape, list)
            or len(shape) > _MAX_NDIM
            or not all(type(n) is int and 0 <= n <= _MAX_DIM for n in shape)
        ):
            raise self.fail(
                where, f"{_SHAPE_KEY} is {_short(shape)}, not a list of at most {_MAX_NDIM} non-negative integers"
            )
        if math.prod(shape) != table.num_rows:
            raise self.fail(
                where, f"{_SHAPE_KEY} {shape} holds {math.prod(shape)} values but {name!r} has {table.num_rows} rows"
            )
        column_type = table.schema.field(0).type if table.num_columns == 1 else None
        if table.column_names != ["values"] or not (
            pa.types.is_string(column_type) or pa.types.is_large_string(column_type)
        ):
            raise self.fail(where, f"the text array {name!r} is not one string column 'values'")
        try:
            return table.column("values").to_numpy(zero_copy_only=False).reshape(tuple(shape))
        except (ValueError, TypeError, pa.ArrowException) as exc:
            raise self.fail(where, f"the text array {name!r} cannot be rebuilt ({exc})") from None


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _write_npy(out: Any, value: np.ndarray) -> None:
    """Write ``value`` in the ``.npy`` format (header 1.0, or 2.0 when it is long), without copying its data."""
    array = np.asanyarray(value)
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    header = np.lib.format.header_data_from_array_1_0(array)
    text = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(text, header)
    except ValueError:  # a header over 65,535 bytes (a very long shape or dtype): format 2.0
        text = io.BytesIO()
        np.lib.format.write_array_header_2_0(text, header)
    out.write(text.getvalue())
    data = array.T if header["fortran_order"] else array  # the C-order view of a Fortran array's memory
    if data.size:
        out.write(np.ascontiguousarray(data).reshape(-1).view(np.uint8))


def _write_ipc(out: Any, table: pa.Table) -> None:
    """Write ``table`` as one Arrow IPC stream (record batch bodies uncompressed)."""
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table)


def write_container(
    filepath: str | Path,
    *,
    kind: str,
    cls: type | str,
    config: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save an object's config and state as ``<name>.<kind>.mml``, atomically.

    Args:
        filepath: Where to save; the name is completed to ``<name>.<kind>.mml``.
        kind: The file kind (``"fs"`` for a FeatureSet; see :data:`FILE_KINDS`).
        cls: The object's class (or ``"module:QualName"``), recorded for loading.
        config: Constructor configuration: JSON values, numpy arrays, Arrow tables.
        state: Runtime state, same value types.
        overwrite: Replace an existing file. Defaults to False.

    Returns:
        Path: The path actually written.

    Raises:
        FileCollisionError: If the file exists and ``overwrite`` is False.
        SerializationError: If config or state hold a value that cannot be saved (or that
            :func:`read_container` would refuse: an integer of more than :data:`MAX_INT_DIGITS`
            digits, nesting deeper than :data:`MAX_JSON_DEPTH`), or ``cls`` has no import path
            (a class defined inside a function).
        FileWriteError: If the file cannot be written (a full disk, no permission); nothing is left
            behind and an existing file is unchanged.
    """
    path = container_path(filepath, kind)
    if path.is_dir():
        raise InvalidArgumentError(f"{str(path)!r} is a folder; give a file name to save to.")
    if path.exists() and not overwrite:
        raise FileCollisionError(f"{str(path)!r} already exists; pass overwrite=True to replace it.")
    class_path = cls if isinstance(cls, str) else f"{cls.__module__}:{cls.__qualname__}"
    if not _is_class_path(class_path):
        raise SerializationError(
            f"Cannot save to {str(path)!r}: the class {class_path!r} has no import path 'module:QualName' (a class "
            "defined inside a function cannot be found again when loading)."
        )
    encoder = _Encoder()
    config_json = json.dumps(encoder.encode(dict(config), "config"), allow_nan=False).encode()
    state_json = json.dumps(encoder.encode(dict(state or {}), "state"), allow_nan=False).encode()
    for part, text in (("config", config_json), ("state", state_json)):
        if _nests_deeper_than(text, MAX_JSON_DEPTH):
            raise SerializationError(
                f"{part} is nested too deeply to be saved: its JSON form (where a tuple, array or table adds "
                f"levels) is more than {MAX_JSON_DEPTH} levels deep, which read_container refuses."
            )
    entries = [CONFIG, STATE, *(n for n, _ in encoder.arrays), *(n for n, _ in encoder.tables)]
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "object": FILE_KINDS[kind],
        "class": class_path,
        "modularml_version": __version__,
        "entries": entries,
        # filled in once the entries are written; the placeholders have the final length
        "checksums": dict.fromkeys(entries, format_checksum(0)),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        error = FileWriteError(f"Cannot write {str(path)!r}: its folder cannot be created ({exc}).")
        error.errno = exc.errno
        raise error from exc
    checksums = manifest["checksums"]
    with atomic_write(path) as handle:
        writer = AlignedZipWriter(handle)
        placeholder = json.dumps(manifest, indent=1).encode()
        writer.add_bytes(MANIFEST, placeholder)
        checksums[CONFIG] = writer.add_bytes(CONFIG, config_json)
        checksums[STATE] = writer.add_bytes(STATE, state_json)
        for name, array in encoder.arrays:
            checksums[name] = writer.add_stream(name, lambda out, array=array: _write_npy(out, array))
        for name, table in encoder.tables:
            checksums[name] = writer.add_stream(name, lambda out, table=table: _write_ipc(out, table))
        writer.replace(MANIFEST, json.dumps(manifest, indent=1).encode())
        writer.finish()
    logger.debug("saved %s (%s, %d entries)", path, class_path, len(entries))
    return path


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
class _JSONLimitError(ValueError):
    """A JSON entry is well-formed but exceeds a limit, or holds what the writer never writes."""


def _nests_deeper_than(data: bytes, limit: int) -> bool:
    """Whether the JSON text ``data`` nests arrays and objects more than ``limit`` deep, without parsing it.

    Escapes are neutralised first (``\\\\`` pairs left to right, then ``\\"``), so that the quotes
    left delimit the strings; the strings are dropped, the brackets kept and their depth summed
    in chunks. Where the text is not valid JSON the count may be off, but only past the point at
    which the JSON parser stops, so the parser never nests deeper than this finds.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    text = data.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    skeleton = memoryview(_JSON_STRING.sub(b"", text).translate(None, _NOT_BRACKETS))
    depth = 0
    for start in range(0, len(skeleton), _READ_CHUNK):
        codes = np.frombuffer(skeleton[start : start + _READ_CHUNK], dtype=np.uint8)
        running = depth + np.cumsum(np.where((codes == ord("[")) | (codes == ord("{")), 1, -1))
        if int(running.max()) > limit:
            return True
        depth = int(running[-1])
    return False


def _parse_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise _JSONLimitError(f"holds an integer of {digits:,} digits (at most {MAX_INT_DIGITS:,} are allowed)")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JSONLimitError(f"holds the number {text[:40]}, too large for a float")
    return value


def _refuse_constant(name: str) -> Any:
    raise _JSONLimitError(f"holds the literal {name}, which is not JSON (ModularML writes non-finite floats as tags)")


def _load_json(data: bytes) -> Any:
    """Parse a JSON entry within :data:`MAX_JSON_DEPTH` and :data:`MAX_INT_DIGITS`.

    Raises:
        _JSONLimitError: If it nests too deeply, holds too long an integer, NaN or Infinity.
        ValueError: If it is not UTF-8 or not JSON.
    """
    text = data.decode("utf-8")
    if _nests_deeper_than(data, MAX_JSON_DEPTH):
        raise _JSONLimitError(f"nests lists and objects more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
    except RecursionError:  # only if the caller's own stack is already deep
        raise _JSONLimitError("nests lists and objects too deeply to be parsed here") from None


def _ipc_body_compressed(meta: bytes) -> bool:
    """Whether an Arrow IPC message (its flatbuffer ``Message`` metadata) declares a compressed body.

    Arrow allocates the uncompressed length a compressed buffer declares before inflating it, so
    a few bytes could claim any amount of memory; ModularML never compresses table bodies. This
    follows ``Message.header`` to the ``RecordBatch`` (directly, or through a ``DictionaryBatch``)
    and looks for its ``compression`` field.

    Raises:
        ValueError: If an offset points outside the metadata.
    """

    def read(fmt: str, pos: int) -> int:
        if not 0 <= pos <= len(meta) - struct.calcsize(fmt):
            raise ValueError("its message metadata is malformed")
        return struct.unpack_from(fmt, meta, pos)[0]

    def field_at(table: int, index: int) -> int | None:
        vtable = table - read("<i", table)
        slot = 4 + 2 * index
        offset = read("<H", vtable + slot) if slot + 2 <= read("<H", vtable) else 0
        return table + offset if offset else None

    def child(table: int, index: int) -> int | None:
        pos = field_at(table, index)
        return None if pos is None else pos + read("<I", pos)

    message = read("<I", 0)
    type_pos = field_at(message, 1)
    header_type = read("<B", type_pos) if type_pos is not None else 0
    if header_type not in (_IPC_DICTIONARY_BATCH, _IPC_RECORD_BATCH):
        return False
    batch = child(message, 2)
    if batch is not None and header_type == _IPC_DICTIONARY_BATCH:
        batch = child(batch, 1)
    return batch is not None and field_at(batch, 3) is not None


def _check_ipc_stream(buffer: pa.Buffer) -> None:
    """Refuse an Arrow IPC stream with compressed bodies or bytes after its end.

    Raises:
        ValueError: Saying what is wrong (pyarrow's own errors propagate).
    """
    source = pa.BufferReader(buffer)
    for message in pa.ipc.MessageReader.open_stream(source):
        if _ipc_body_compressed(message.metadata.to_pybytes()):
            raise ValueError("its record batches are compressed, which ModularML never writes")
    if source.tell() != buffer.size:
        raise ValueError(f"{buffer.size - source.tell():,} bytes follow the end of the stream")


class _Reader:
    """Reads and checks the entries of an open container, each within its size limit.

    Attributes:
        members: The zip's entries by name (checked by :meth:`check_members`).
        entries: The entries the manifest lists.
        referenced: The entries a tag has referred to so far.
        entry: The entry being read, for the message of an unexpected failure.
    """

    def __init__(
        self, path: Path, archive: zipfile.ZipFile, handle: Any, *, max_member_bytes: int, max_json_bytes: int
    ) -> None:
        self.path = path
        self.archive = archive
        self.handle = handle
        self.max_member_bytes = max_member_bytes
        self.max_json_bytes = max_json_bytes
        self.members: dict[str, zipfile.ZipInfo] = {}
        self.entries: frozenset[str] = frozenset()
        self.referenced: set[str] = set()
        self.entry: str | None = None
        #: entry -> XXH3-64 digest the manifest records (format version 2); None for version 1
        self.checksums: dict[str, int] | None = None
        #: the file mapped read-only (``read_container(mmap=True)``), or None to read entries into memory
        self.mapping: _mmap.mmap | None = None
        self._ends: dict[str, int] = {}

    def fail(self, what: str) -> SerializationError:
        return SerializationError(f"Cannot load {str(self.path)!r}: {what}")

    # ------------------------------------------------------------------ the zip structure
    def check_members(self) -> None:
        """Refuse repeated names, unknown compression, encryption, sizes over the limits, overlaps."""
        infos = self.archive.infolist()
        for info in infos:
            name = info.filename
            if name in self.members:
                raise self.fail(
                    f"the entry {name!r} appears twice; a ModularML file holds each entry once, so this one was "
                    "tampered with or written by other software."
                )
            self.members[name] = info
            if info.compress_type not in _COMPRESSION_METHODS:
                raise self.fail(
                    f"the entry {name!r} uses the zip compression method {info.compress_type}; ModularML files are "
                    "stored uncompressed, and only stored or deflated entries are read."
                )
            if info.flag_bits & 0x1:
                raise self.fail(f"the entry {name!r} is encrypted; ModularML files never are.")
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise self.fail(
                    f"the entry {name!r} is stored uncompressed but declares {info.file_size:,} bytes in "
                    f"{info.compress_size:,}; the file is corrupt."
                )
            self._check_size(info)
        self._check_layout(infos)

    def _check_size(self, info: zipfile.ZipInfo) -> None:
        name = info.filename
        if name in _JSON_ENTRIES:
            limit, keyword = self.max_json_bytes, "max_json_bytes"
        else:
            limit, keyword = self.max_member_bytes, "max_member_bytes"
        if info.file_size > limit:
            raise self.fail(
                f"the entry {name!r} declares {info.file_size:,} bytes, more than the {limit:,} allowed "
                f"({keyword}); if you trust the file, load it with a higher {keyword}."
            )
        if (
            info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size + _INFLATE_SLACK
        ):
            raise self.fail(
                f"the entry {name!r} would inflate {info.compress_size:,} compressed bytes to {info.file_size:,}, "
                f"a compression ratio over {MAX_COMPRESSION_RATIO} (plus 1 MiB); it looks like a decompression bomb."
            )

    def _check_layout(self, infos: list[zipfile.ZipInfo]) -> None:
        # Entries whose data overlap (one zip bomb) would read the same bytes many times over.
        ordered = sorted(infos, key=lambda info: info.header_offset)
        ends = [*(info.header_offset for info in ordered[1:]), self.archive.start_dir]
        for info, end in zip(ordered, ends, strict=True):
            self._ends[info.filename] = end
            if info.header_offset + zipfile.sizeFileHeader + info.compress_size > end:
                raise self.fail(
                    f"the entry {info.filename!r} overlaps the next entry or the zip directory; the file is corrupt "
                    "or built to inflate itself."
                )
        deflated = [info for info in infos if info.compress_type == zipfile.ZIP_DEFLATED]
        packed, inflated = sum(i.compress_size for i in deflated), sum(i.file_size for i in deflated)
        if inflated > MAX_COMPRESSION_RATIO * packed + _INFLATE_SLACK:
            worst = max(deflated, key=lambda info: info.file_size / max(info.compress_size, 1))
            raise self.fail(
                f"its deflated entries (such as {worst.filename!r}) would inflate {packed:,} compressed bytes to "
                f"{inflated:,}, a compression ratio over {MAX_COMPRESSION_RATIO}; it looks like a decompression bomb."
            )

    # ------------------------------------------------------------------ entries
    def raw(self, name: str) -> bytes | np.ndarray:
        """The bytes of entry ``name``: exactly its declared size, which :meth:`check_members` bounded.

        In a version-2 file the bytes are checked against the manifest's XXH3-64 digest before
        they are returned: a stored entry is read straight from the file into a read-only,
        aligned buffer (a ``uint8`` array), hashed chunk by chunk as it arrives; a deflated one
        (as other zip tools may rewrite it) is inflated by :mod:`zipfile` and then hashed. A
        version-1 file has no digests; :mod:`zipfile` checks its CRC-32 instead.
        """
        self.entry = name
        info = self.members.get(name)
        if info is None:
            raise self.fail(f"the entry {name!r} is missing; the file is incomplete or damaged.")
        if self.checksums is None:
            return self._zip_read(info)
        if info.compress_type == zipfile.ZIP_STORED:
            return self._direct_read(info)
        data = self._zip_read(info)
        self._verify(name, xxhash.xxh3_64_intdigest(data))
        return data

    def _verify(self, name: str, digest: int) -> None:
        expected = self.checksums[name]  # the manifest lists a digest for every entry it lists
        if digest != expected:
            raise self.fail(
                f"the entry {name!r} is damaged: its XXH3-64 checksum is {digest:016x}, but manifest.json records "
                f"{expected:016x}; the file is truncated or corrupt."
            )

    def _direct_read(self, info: zipfile.ZipInfo) -> np.ndarray:
        """A stored entry read from the file into an aligned, read-only buffer, checked against its digest."""
        name, size = info.filename, info.file_size
        self.handle.seek(info.header_offset)
        header = self.handle.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size:
            raise self.fail(f"the entry {name!r} is truncated (its local header is incomplete).")
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        if signature != b"PK\x03\x04" or self.handle.read(name_length) != info.orig_filename.encode():
            raise self.fail(
                f"the local header of the entry {name!r} does not match the zip directory; the file is corrupt."
            )
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        if start + size > self._ends[name]:
            raise self.fail(
                f"the entry {name!r} ({size:,} bytes from byte {start:,}) runs into the next entry or the zip "
                "directory; the file is corrupt."
            )
        if self.mapping is not None and start % _BUFFER_ALIGNMENT == 0 and start + size <= len(self.mapping):
            mapped = np.asarray(memoryview(self.mapping)[start : start + size])  # read-only: a read-only map
            self._verify(name, xxhash.xxh3_64_intdigest(mapped))
            return mapped
        try:
            backing = np.empty(size + _BUFFER_ALIGNMENT, dtype=np.uint8)
        except MemoryError:
            raise self.fail(f"the entry {name!r} ({size:,} bytes) does not fit in memory.") from None
        shift = -backing.ctypes.data % _BUFFER_ALIGNMENT
        buffer = backing[shift : shift + size]
        view = memoryview(buffer)
        digest = xxhash.xxh3_64()
        self.handle.seek(start)
        done = 0
        while done < size:
            got = self.handle.readinto(view[done : done + _READ_CHUNK])
            if not got:
                raise self.fail(
                    f"the entry {name!r} declares {size:,} bytes but the file ends after {done:,}; it is truncated."
                )
            digest.update(view[done : done + got])
            done += got
        self._verify(name, digest.intdigest())
        # through a read-only view: no array made from it can be set writeable again
        return np.asarray(memoryview(buffer).toreadonly())

    def _zip_read(self, info: zipfile.ZipInfo) -> bytes:
        """The entry's bytes through :mod:`zipfile` (CRC-32 checked), never inflating past its declared size."""
        name, size = info.filename, info.file_size
        try:
            with self.archive.open(info) as stream:
                if info.compress_type == zipfile.ZIP_STORED:
                    data = stream.read(size)  # one read, no copy; zipfile stops at the stored size
                    over = bool(stream.read(1))
                else:
                    chunks, total = [], 0
                    while chunk := stream.read(min(_READ_CHUNK, size - total + 1)):
                        chunks.append(chunk)
                        total += len(chunk)
                        if total > size:
                            break  # never inflate past the declared (and checked) size
                    data, over = b"".join(chunks), total > size
        except MemoryError:
            raise self.fail(f"the entry {name!r} ({size:,} bytes) does not fit in memory.") from None
        except Exception as exc:
            raise self.fail(f"the entry {name!r} is damaged ({exc}); the file is truncated or corrupt.") from None
        if over or len(data) != size:
            held = "more" if over else f"{len(data):,}"
            raise self.fail(f"the entry {name!r} declares {size:,} bytes but holds {held}; the file is corrupt.")
        return data

    def json(self, name: str) -> Any:
        """Entry ``name`` parsed as JSON, within the depth and integer limits."""
        data = self.raw(name)
        try:
            return _load_json(bytes(data))
        except _JSONLimitError as exc:
            raise self.fail(f"the entry {name!r} {exc}; ModularML never writes that, so the file is corrupt.") from None
        except ValueError as exc:  # also UnicodeDecodeError, JSONDecodeError
            raise self.fail(f"the entry {name!r} is not valid JSON ({exc}); the file is corrupt.") from None

    def array(self, name: str) -> np.ndarray:
        """Entry ``name`` as a read-only array viewing its bytes, after checking its ``.npy`` header."""
        data = self.raw(name)
        stream = io.BytesIO(bytes(memoryview(data)[:_NPY_PREFIX]))  # numpy reads headers of at most 10,000 bytes
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise ValueError(f"its format version {version} is not one ModularML writes")
        except Exception as exc:  # numpy raises ValueError; anything else is as malformed
            raise self.fail(f"the entry {name!r} is not a valid .npy array: {exc}.") from None
        if dtype.hasobject:
            raise self.fail(f"the entry {name!r} holds Python objects, which would need unpickling; it is refused.")
        if not _npy_dtype_allowed(dtype):
            raise self.fail(f"the entry {name!r} has the dtype {dtype}, which ModularML files never hold.")
        if len(shape) > _MAX_NDIM or not all(type(n) is int and n >= 0 for n in shape):
            raise self.fail(f"the entry {name!r} declares the shape {_short(shape)}, not non-negative integers.")
        declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        held = len(data) - stream.tell()
        if declared != held:
            raise self.fail(
                f"the entry {name!r} declares {_short(shape)} values of {dtype} ({declared:,} bytes) but holds "
                f"{held:,} bytes of data; the file is corrupt."
            )
        try:
            array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=stream.tell())
            return array.reshape(shape, order="F" if fortran else "C")
        except (ValueError, OverflowError, TypeError) as exc:
            raise self.fail(f"the entry {name!r} is not a valid .npy array: {exc}.") from None

    def table(self, name: str) -> pa.Table:
        """Entry ``name`` as an Arrow table, fully validated; no compressed bodies or trailing bytes."""
        data = self.raw(name)
        buffer = pa.py_buffer(data)
        try:
            _check_ipc_stream(buffer)
            table = pa.ipc.open_stream(buffer).read_all()
            table.validate(full=True)
        except MemoryError:
            raise self.fail(f"the entry {name!r} does not fit in memory.") from None
        except Exception as exc:  # pyarrow raises ArrowException subclasses, also OSError, ValueError
            raise self.fail(f"the entry {name!r} is not a valid Arrow IPC stream: {exc}.") from None
        return table

    # ------------------------------------------------------------------ the file
    def manifest(self, kind: str | None) -> dict[str, Any]:
        """The checked manifest; sets :attr:`entries`."""
        if MANIFEST not in self.members:
            raise self.fail("it has no manifest.json, so it is not a ModularML file.")
        manifest = self.json(MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise self.fail("its manifest.json does not describe a ModularML file; it was written by other software.")
        version = manifest.get("format_version")
        if type(version) is not int or version < 1:
            raise self.fail(f"its manifest.json has an invalid format_version {_short(version)}.")
        if version > FORMAT_VERSION:
            raise self.fail(
                f"its manifest.json says it was written in format version {version} by modularml "
                f"{_short(manifest.get('modularml_version'))}; "
                f"this modularml ({__version__}) reads up to version {FORMAT_VERSION}. Upgrade modularml to load it."
            )
        file_kind = manifest.get("kind")
        if not isinstance(file_kind, str) or file_kind not in FILE_KINDS:
            raise self.fail(f"its manifest.json names an unknown kind {_short(file_kind)}.")
        if not _is_class_path(manifest.get("class")):
            raise self.fail(
                f"its manifest.json names the class {_short(manifest.get('class'))}, not a 'module:QualName' of "
                "dotted identifiers."
            )
        if kind is not None and file_kind != kind:
            raise self.fail(f"it holds a {FILE_KINDS[file_kind]} ('{file_kind}'), not a {FILE_KINDS[kind]} ('{kind}').")
        self.entries = self._entries(manifest.get("entries"))
        if version >= 2:
            self.checksums = self._checksums(manifest.get("checksums"))
        elif "checksums" in manifest:
            raise self.fail("its manifest.json says format version 1 but records checksums, which version 1 never has.")
        return manifest

    def _checksums(self, checksums: Any) -> dict[str, int]:
        if not isinstance(checksums, dict):
            raise self.fail(
                f"its manifest.json records the checksums {_short(checksums)}, not an object of the entries' "
                "XXH3-64 digests; the file is corrupt."
            )
        if checksums.keys() != self.entries:
            differ = sorted(set(checksums).symmetric_difference(self.entries))
            raise self.fail(
                f"its manifest.json records checksums for other entries than it lists (differing: {_short(differ)}); "
                "the file is corrupt."
            )
        digests = {}
        for name, text in checksums.items():
            match = _CHECKSUM.fullmatch(text) if isinstance(text, str) else None
            if match is None:
                raise self.fail(
                    f"its manifest.json records the checksum {_short(text)} for {name!r}, not 'xxh3_64:' and 16 "
                    "hexadecimal digits; the file is corrupt."
                )
            digests[name] = int(match[1], 16)
        return digests

    def _entries(self, entries: Any) -> frozenset[str]:
        if not isinstance(entries, list):
            raise self.fail("its manifest.json lists no entries.")
        listed: set[str] = set()
        for name in entries:
            if not isinstance(name, str) or name == MANIFEST or not _SAFE_ENTRY.fullmatch(name):
                raise self.fail(
                    f"its manifest.json lists the entry {_short(name)}, which is not a plain relative name such as "
                    "'arrays/0.npy' (no absolute paths, no '..')."
                )
            if name in listed:
                raise self.fail(f"its manifest.json lists the entry {name!r} twice.")
            listed.add(name)
        missing = [name for name in entries if name not in self.members]
        if missing:
            raise self.fail(
                f"the entries {_short(missing)} that manifest.json lists are missing; the file is incomplete."
            )
        unlisted = sorted(set(self.members) - listed - {MANIFEST})
        if unlisted:
            raise self.fail(
                f"it holds the entries {_short(unlisted)}, which manifest.json does not list; the file was tampered "
                "with or written by other software."
            )
        return frozenset(listed)

    def document(self, name: str) -> dict[str, Any]:
        """The JSON object of ``config.json`` or ``state.json``, decoded."""
        value = self.json(name)
        if not isinstance(value, dict) or not _TAG_SET.isdisjoint(value):
            raise self.fail(f"the entry {name!r} must hold a JSON object of named values.")
        return _Decoder(self, name).decode(value)

    def load(self, kind: str | None) -> Container:
        """Check the zip, read and check the manifest, decode config and state."""
        self.check_members()
        manifest = self.manifest(kind)
        config = self.document(CONFIG)
        state = self.document(STATE)
        return Container(path=self.path, manifest=manifest, config=config, state=state)


@dataclass
class Container:
    """What :func:`read_container` returns.

    Attributes:
        path: The file read.
        manifest: The manifest (format, version, kind, class, ...).
        config: The decoded configuration.
        state: The decoded state (numpy arrays and Arrow tables in place).
    """

    path: Path
    manifest: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The file kind (``"fs"``, ...)."""
        return self.manifest["kind"]

    @property
    def class_path(self) -> str:
        """The saved object's class, as ``"module:QualName"``."""
        return self.manifest["class"]

    def require_class(self, expected: str | type) -> None:
        """Check that the file holds an object of the class ``expected``.

        Only the recorded name is compared; nothing is imported.

        Args:
            expected: The class, or its ``"module:QualName"``.

        Raises:
            SerializationError: If the manifest names another class (the message names the file).
        """
        name = expected if isinstance(expected, str) else f"{expected.__module__}:{expected.__qualname__}"
        if self.class_path != name:
            raise SerializationError(
                f"Cannot load {str(self.path)!r}: it holds a {self.class_path!r} (the class manifest.json names), "
                f"not a {name!r}."
            )


def _limit(value: int | None, default: int, keyword: str) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(f"{keyword} must be a positive number of bytes, not {value!r}.")
    return value


def read_container(
    filepath: str | Path,
    *,
    kind: str | None = None,
    max_member_bytes: int | None = None,
    max_json_bytes: int | None = None,
    mmap: bool = False,
) -> Container:
    """Read a ModularML file, checking its format, version, kind and every entry.

    The file is treated as untrusted: each entry is read within a size limit, JSON within a
    nesting depth (:data:`MAX_JSON_DEPTH`) and integer length (:data:`MAX_INT_DIGITS`), and
    anything ModularML would not have written (an unlisted or repeated entry, an unknown
    compression, a malformed tag or array header) is refused. In a version-2 file every entry's
    bytes are checked against the XXH3-64 digest the manifest records before any of them is
    decoded (verify-on-load; nothing is skipped); a version-1 file's entries are checked against
    their zip CRC-32.

    Arrays and tables are views of the bytes read, never copies of them, and read-only. By
    default the bytes are read into memory that belongs to the result: later changes to the
    file (overwritten, truncated, deleted) cannot reach it. With ``mmap=True`` they are views of
    the file mapped read-only, which saves the copy (and the memory: the pages are the page
    cache's) but keeps the file's data in use for as long as an array or table lives:
    ModularML's own saves replace a file by renaming a new one over it, and a deleted file stays
    readable while it is mapped, so both are safe; but a program that rewrites the file *in
    place* (``cp`` onto it, truncating it) changes what the arrays hold, or makes reading them
    crash the process (SIGBUS). Use ``mmap=True`` only for files nothing rewrites in place.

    Args:
        filepath: The file.
        kind: The expected kind (``"fs"``); ``None`` accepts any.
        max_member_bytes: Most bytes an array or table entry may hold; ``None`` (the default)
            uses :data:`MAX_MEMBER_BYTES` (16 GiB).
        max_json_bytes: Most bytes ``manifest.json``, ``config.json`` or ``state.json`` may hold;
            ``None`` (the default) uses :data:`MAX_JSON_BYTES` (256 MiB).
        mmap: Map the file instead of reading it (see above). Defaults to False. Entries of
            version-1 files, and entries that other zip tools compressed or left unaligned,
            are read into memory all the same.

    Returns:
        Container: Manifest, config and state.

    Raises:
        FileNotFoundError: If the file does not exist.
        SerializationError: If the path is a folder, or the file is truncated, corrupt, hostile, not
            a ModularML file, of a newer format version, or of another kind. The message names the
            file, the entry and what is wrong.
        InvalidArgumentError: If a limit is not a positive integer.
    """
    limits = {
        "max_member_bytes": _limit(max_member_bytes, MAX_MEMBER_BYTES, "max_member_bytes"),
        "max_json_bytes": _limit(max_json_bytes, MAX_JSON_BYTES, "max_json_bytes"),
    }
    path = Path(filepath)
    if not path.is_file() and kind is not None:
        try:
            completed = container_path(path, kind)  # "cells" -> "cells.fs.mml", as save() names it
        except InvalidArgumentError:
            completed = path
        path = completed if completed.is_file() else path
    if path.is_dir():
        raise SerializationError(f"Cannot load {str(path)!r}: it is a folder, not a ModularML file.")
    if not path.is_file():
        raise FileNotFoundError(f"No ModularML file at {str(path)!r}.")
    handle = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below on every path
    try:
        archive = zipfile.ZipFile(handle)
    except Exception as exc:  # BadZipFile, OSError, and whatever a malformed directory raises
        handle.close()
        raise SerializationError(
            f"Cannot load {str(path)!r}: it is not a ModularML file (not a readable zip archive: {exc}). It may be "
            "truncated, corrupt, or a file of another format."
        ) from None
    with handle, archive:
        reader = _Reader(path, archive, handle, **limits)
        if mmap:
            try:
                reader.mapping = _mmap.mmap(handle.fileno(), 0, access=_mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                raise reader.fail(f"it cannot be memory-mapped ({exc}); load it with mmap=False.") from None
        try:
            return reader.load(kind)
        except SerializationError:
            raise
        except MemoryError:
            raise reader.fail(f"the entry {reader.entry!r} does not fit in memory.") from None
        except Exception as exc:  # anything else a malformed file provokes is still a damaged file
            where = f"the entry {reader.entry!r}" if reader.entry else "its zip directory"
            raise reader.fail(
                f"{where} is malformed ({type(exc).__name__}: {exc}); the file is corrupt or was not written by "
                "ModularML."
            ) from exc
