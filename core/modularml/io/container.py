"""The ModularML file format: one zip container for every saved object.

A file ``<name>.<kind>.mml`` is an uncompressed zip holding:

- ``manifest.json``: ``{"format": "modularml", "format_version": 1, "kind": "fs", "class":
  "modularml.data.featureset:FeatureSet", "modularml_version": ..., "entries": [...]}``;
- ``config.json``: the object's configuration (how to construct it);
- ``state.json``: its runtime state, where every numpy array is replaced by a reference to an
  ``arrays/<n>.npy`` entry and every Arrow table by a reference to a ``tables/<n>.arrow`` entry
  (Arrow IPC stream format).

Loading never unpickles and never runs code from the file: arrays are read with pickling
disabled, tables with Arrow's validating reader, and classes are resolved only from installed
distributions (:func:`resolve_class`). Any damage (truncation, bad checksums, a foreign or newer
file) raises :class:`~modularml.errors.SerializationError` naming the file and the problem. Writes
are atomic (:func:`~modularml.io.atomic.atomic_write`).
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import math
import re
import zipfile
import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from modularml._version import __version__
from modularml.errors import FileCollisionError, InvalidArgumentError, SerializationError
from modularml.io.atomic import atomic_write

__all__ = [
    "FILE_KINDS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Container",
    "container_path",
    "read_container",
    "resolve_class",
    "resolve_import_path",
    "write_container",
]

logger = logging.getLogger("modularml.io.container")

FORMAT_NAME = "modularml"
FORMAT_VERSION = 1
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

MANIFEST = "manifest.json"
CONFIG = "config.json"
STATE = "state.json"
_ARRAY_TAG = "__mml_array__"
_TABLE_TAG = "__mml_table__"
_TUPLE_TAG = "__mml_tuple__"
_FLOAT_TAG = "__mml_float__"
_TAGS = (_ARRAY_TAG, _TABLE_TAG, _TUPLE_TAG, _FLOAT_TAG)
_KIND_SUFFIX = re.compile(r"^(?P<stem>.+)\.(?P<kind>[a-z]+)\.mml$")


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


# ---------------------------------------------------------------------------------------------
# encoding of config/state trees
# ---------------------------------------------------------------------------------------------
class _Encoder:
    """Turns a tree of JSON values, numpy arrays and Arrow tables into JSON plus binary entries."""

    def __init__(self) -> None:
        self.arrays: list[tuple[str, np.ndarray]] = []
        self.tables: list[tuple[str, pa.Table]] = []

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (str, bool, int)):
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
            return {_TABLE_TAG: name, "object_array_shape": list(value.shape)}
        name = f"arrays/{len(self.arrays)}.npy"
        self.arrays.append((name, value))
        return {_ARRAY_TAG: name}


class _Decoder:
    """Inverse of :class:`_Encoder`, reading binary entries from an open container."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if _ARRAY_TAG in value:
            return self.reader.array(value[_ARRAY_TAG])
        if _TABLE_TAG in value:
            table = self.reader.table(value[_TABLE_TAG])
            if "object_array_shape" not in value:
                return table
            try:
                values = table.column("values").to_numpy(zero_copy_only=False)
                return values.reshape(tuple(value["object_array_shape"]))
            except (KeyError, ValueError, TypeError) as exc:
                raise self.reader.fail(f"the text array {value[_TABLE_TAG]!r} is malformed: {exc}.") from None
        if _TUPLE_TAG in value:
            return tuple(self.decode(v) for v in value[_TUPLE_TAG])
        if _FLOAT_TAG in value:
            return float(value[_FLOAT_TAG])
        return {k: self.decode(v) for k, v in value.items()}


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
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
        SerializationError: If config or state hold a value that cannot be saved.
    """
    path = container_path(filepath, kind)
    if path.is_dir():
        raise InvalidArgumentError(f"{str(path)!r} is a folder; give a file name to save to.")
    if path.exists() and not overwrite:
        raise FileCollisionError(f"{str(path)!r} already exists; pass overwrite=True to replace it.")
    encoder = _Encoder()
    config_json = json.dumps(encoder.encode(dict(config), "config"), allow_nan=False).encode()
    state_json = json.dumps(encoder.encode(dict(state or {}), "state"), allow_nan=False).encode()
    class_path = cls if isinstance(cls, str) else f"{cls.__module__}:{cls.__qualname__}"
    entries = [CONFIG, STATE, *(n for n, _ in encoder.arrays), *(n for n, _ in encoder.tables)]
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "object": FILE_KINDS[kind],
        "class": class_path,
        "modularml_version": __version__,
        "entries": entries,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
        archive.writestr(CONFIG, config_json)
        archive.writestr(STATE, state_json)
        for name, array in encoder.arrays:
            with archive.open(name, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(array), allow_pickle=False)
        for name, table in encoder.tables:
            with archive.open(name, "w", force_zip64=True) as out, pa.ipc.new_stream(out, table.schema) as writer:
                writer.write_table(table)
    logger.debug("saved %s (%s, %d entries)", path, class_path, len(entries))
    return path


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
class _Reader:
    """Reads and checks entries of an open container."""

    def __init__(self, path: Path, archive: zipfile.ZipFile) -> None:
        self.path = path
        self.archive = archive

    def fail(self, what: str) -> SerializationError:
        return SerializationError(f"Cannot load {str(self.path)!r}: {what}")

    def raw(self, name: str) -> bytes:
        try:
            return self.archive.read(name)
        except KeyError:
            raise self.fail(f"the entry {name!r} is missing; the file is incomplete or damaged.") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise self.fail(f"the entry {name!r} is damaged ({exc}); the file is truncated or corrupt.") from None

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.raw(name))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.fail(f"{name} is not valid JSON ({exc}); the file is corrupt.") from None

    def array(self, name: str) -> np.ndarray:
        data = self.raw(name)
        try:
            stream = io.BytesIO(data)
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            if dtype.hasobject:
                raise ValueError("it holds Python objects, which would need unpickling")
            count = math.prod(shape)
            array = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
            return array.reshape(shape, order="F" if fortran else "C")
        except ValueError as exc:
            raise self.fail(f"the array {name!r} is not a valid .npy array: {exc}.") from None

    def table(self, name: str) -> pa.Table:
        data = self.raw(name)
        try:
            table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
            table.validate(full=True)
        except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
            raise self.fail(f"the table {name!r} is not a valid Arrow IPC stream: {exc}.") from None
        return table


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


def read_container(filepath: str | Path, *, kind: str | None = None) -> Container:
    """Read a ModularML file, checking its format, version, kind and every entry.

    Args:
        filepath: The file.
        kind: The expected kind (``"fs"``); ``None`` accepts any.

    Returns:
        Container: Manifest, config and state.

    Raises:
        FileNotFoundError: If the file does not exist.
        SerializationError: If the file is truncated, corrupt, not a ModularML file, of a newer
            format version, or of another kind.
    """
    path = Path(filepath)
    if not path.is_file() and kind is not None:
        try:
            completed = container_path(path, kind)  # "cells" -> "cells.fs.mml", as save() names it
        except InvalidArgumentError:
            completed = path
        path = completed if completed.is_file() else path
    if not path.is_file():
        raise FileNotFoundError(f"No ModularML file at {str(path)!r}.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise SerializationError(
            f"Cannot load {str(path)!r}: it is not a ModularML file (not a readable zip archive: {exc}). It may be "
            "truncated, corrupt, or a file of another format."
        ) from None
    with archive:
        reader = _Reader(path, archive)
        if MANIFEST not in archive.namelist():
            raise reader.fail("it has no manifest.json, so it is not a ModularML file.")
        manifest = reader.json(MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise reader.fail("its manifest does not describe a ModularML file; it was written by other software.")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise reader.fail(f"its manifest has an invalid format_version {version!r}.")
        if version > FORMAT_VERSION:
            raise reader.fail(
                f"it was written in format version {version} by modularml {manifest.get('modularml_version')}; this "
                f"modularml ({__version__}) reads up to version {FORMAT_VERSION}. Upgrade modularml to load it."
            )
        file_kind = manifest.get("kind")
        if file_kind not in FILE_KINDS or not isinstance(manifest.get("class"), str):
            raise reader.fail(f"its manifest names an unknown kind {file_kind!r} or no class.")
        if kind is not None and file_kind != kind:
            raise reader.fail(
                f"it holds a {FILE_KINDS[file_kind]} ('{file_kind}'), not a {FILE_KINDS[kind]} ('{kind}')."
            )
        entries = manifest.get("entries")
        if not isinstance(entries, list):
            raise reader.fail("its manifest lists no entries.")
        missing = [e for e in entries if e not in archive.namelist()]
        if missing:
            raise reader.fail(f"entries {missing} are missing; the file is incomplete.")
        decoder = _Decoder(reader)
        config = decoder.decode(reader.json(CONFIG))
        state = decoder.decode(reader.json(STATE))
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise SerializationError(f"Cannot load {str(path)!r}: config.json and state.json must hold JSON objects.")
    return Container(path=path, manifest=manifest, config=config, state=state)


def resolve_class(class_path: str) -> type:
    """Import the class named ``"module:QualName"``, but only from modularml or an installed plugin.

    Loading a file imports nothing else: a module outside ``modularml`` and the packages of the
    distributions that declare ``modularml`` entry points is refused.

    Raises:
        SerializationError: If the path is malformed, not allowed, or names nothing importable.
    """
    obj = resolve_import_path(class_path, what="class")
    if not isinstance(obj, type):
        raise SerializationError(f"{class_path!r} is not a class.")
    return obj


def resolve_import_path(
    path: str, *, what: str, allow_packaged_code: bool = False, trusted_packages: Collection[str] = ()
) -> Any:
    """Import the object ``"module:QualName"`` names, under the one rule for restoring files and configs.

    Objects of modularml and of installed, loaded ModularML plugins are always allowed, and so are
    those of ``trusted_packages``. Any other module (a user's own, or an already imported one such as
    ``subprocess``) is imported only with ``allow_packaged_code=True``.

    Args:
        path: ``"module:QualName"``.
        what: What the object is, for messages (``"loss function"``).
        allow_packaged_code: Allow any module.
        trusted_packages: Further top-level packages to allow.

    Raises:
        SerializationError: If the path is malformed, not allowed, or names nothing importable.
    """
    module_name, sep, qualname = path.partition(":") if isinstance(path, str) else ("", "", "")
    if not sep or not module_name or not qualname:
        raise SerializationError(f"Invalid import path {path!r} for a {what}; expected 'module:QualName'.")
    top = module_name.split(".")[0]
    if not allow_packaged_code and top not in {*trusted_packages, *_allowed_packages()}:
        raise SerializationError(
            f"Refusing to import {path!r} (a {what}): only modularml and installed ModularML plugins are imported "
            "when restoring a file or configuration. Install the plugin that provides it, or, if you trust its "
            "source, pass allow_packaged_code=True where that is offered."
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise SerializationError(f"The {what} {path!r} is not available here: {exc}.") from None
    return obj


def _allowed_packages() -> set[str]:
    from modularml.plugins import get_plugin_manager

    allowed = {"modularml"}
    for record in get_plugin_manager().plugins():
        if record.status == "loaded" and record.module:
            allowed.add(record.module.split(":")[0].split(".")[0])
    return allowed
