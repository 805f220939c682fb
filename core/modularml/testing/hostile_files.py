"""Hostile and damaged ModularML files, for testing that a loader refuses them cleanly.

A loader must either load a file or raise :class:`~modularml.errors.SerializationError`, and
must never run code named by the file. These helpers build the files to check that with:
:func:`rewrite_member` changes one member of a saved file (a crafted manifest, config or state;
the manifest's checksums are recomputed, see :func:`seal`), and :func:`damaged_variants` derives
a bounded, seeded corpus of damaged copies (truncations, bit flips, swapped and dropped
members, crafted JSON values) from a good file.

Example:
    >>> for label, data in damaged_variants(path, seed=0, count=50):
    ...     bad = tmp_path / f"bad.{kind}.mml"
    ...     bad.write_bytes(data)
    ...     try:
    ...         Scaler.load(bad)
    ...     except SerializationError:
    ...         pass
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modularml.io.zipwrite import checksum

__all__ = ["damaged_variants", "members", "pack", "rewrite_member", "seal"]


def members(path: str | Path) -> dict[str, bytes]:
    """The members of a zip file, in order, as ``name -> bytes``."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def seal(entries: dict[str, bytes] | list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``entries`` with the manifest's checksums recomputed for the members they hold.

    A ModularML file (format version 2) records an XXH3-64 digest of every member in its
    manifest, so a member changed by hand is refused as damaged before anything reads it. A
    deliberate attacker recomputes the digests; this does the same, so that a crafted member
    reaches the checks behind the digest (its JSON limits, tags, ``.npy`` header, Arrow
    validation). A manifest that is not a JSON object with a ``checksums`` object is left as it
    is, and so is a checksum whose member is absent. A repeated name is sealed with its first data.
    """
    pairs = list(entries.items()) if isinstance(entries, dict) else list(entries)
    index = next((i for i, (name, _) in enumerate(pairs) if name == "manifest.json"), None)
    if index is None:
        return pairs
    try:
        manifest = json.loads(pairs[index][1])
    except (ValueError, RecursionError):  # a crafted manifest: nothing to seal
        return pairs
    checksums = manifest.get("checksums") if isinstance(manifest, dict) else None
    if not isinstance(checksums, dict):
        return pairs
    data = {}
    for name, member in pairs:
        data.setdefault(name, member)
    for name in checksums:
        if name in data:
            checksums[name] = checksum(data[name])
    pairs[index] = ("manifest.json", json.dumps(manifest, indent=1).encode())
    return pairs


def pack(entries: dict[str, bytes] | list[tuple[str, bytes]], *, sealed: bool = True) -> bytes:
    """A zip archive (members stored, as ModularML writes them) of ``entries``, as bytes.

    A list of pairs may repeat a name (a duplicate member). With ``sealed`` (the default) the
    manifest's checksums are recomputed first (:func:`seal`), as an attacker would.
    """
    pairs = seal(entries) if sealed else (list(entries.items()) if isinstance(entries, dict) else list(entries))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in pairs:
            if name in archive.NameToInfo:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # zipfile warns about the duplicate we want
                    archive.writestr(name, data)
            else:
                archive.writestr(name, data)
    return buffer.getvalue()


def rewrite_member(
    path: str | Path, member: str, change: Callable[[Any], Any], *, target: str | Path | None = None
) -> Path:
    """Rewrite one member of a saved file; returns the file written (``path`` itself by default).

    Args:
        path: A ModularML file.
        member: The member (``"config.json"``, ``"state.json"``, ``"manifest.json"``, ``"arrays/0.npy"``).
        change: For a ``.json`` member, a function of the parsed JSON returning the new JSON value
            (it may change its argument in place and return it); for any other member, a function
            of the bytes returning the new bytes.
        target: Where to write the result; defaults to ``path``.

    Raises:
        KeyError: If the file has no such member.
    """
    entries = members(path)
    if member not in entries:
        raise KeyError(f"{str(path)!r} has no member {member!r}; it has {sorted(entries)}.")
    if member.endswith(".json"):
        entries[member] = json.dumps(change(json.loads(entries[member]))).encode()
    else:
        entries[member] = change(entries[member])
    out = Path(target) if target is not None else Path(path)
    out.write_bytes(pack(entries))
    return out


def _hostile_values(sentinel: Path) -> list[Any]:
    """Values a crafted file might hold: wrong types, malformed tags, and names that would create ``sentinel``."""
    touch = {"args": ["touch", str(sentinel)], "command": f"touch {sentinel}", "file": str(sentinel), "mode": "w"}
    return [
        None,
        5,
        -1,
        10**30,
        "x" * 1000,
        [],
        {},
        {"__mml_float__": "abc"},
        {"__mml_tuple__": 5},
        {"__mml_array__": "arrays/999.npy"},
        {"__mml_array__": "../../etc/passwd"},
        {"__mml_table__": 3},
        {"__mml_object__": "modularml.io.atomic:os.system", "params": {"command": touch["command"]}},
        {"__mml_object__": "modularml.testing.conformance:subprocess.Popen", "params": {"args": touch["args"]}},
        {"__mml_object__": "modularml.io.container:io.FileIO", "params": {"file": touch["file"], "mode": "w"}},
        {"__mml_object__": "subprocess:Popen", "params": {"args": touch["args"]}},
        "modularml.testing.conformance:subprocess.Popen",
        "modularml.io.container:io.FileIO",
        "modularml.io.atomic:os.system",
        "os:system",
        touch,
        [[[[[[[[[[]]]]]]]]]],
    ]


def _json_mutation(value: Any, rng: random.Random, hostile: list[Any]) -> Any:
    """One crafted change somewhere in a JSON tree: a value replaced by a hostile or wrong-typed one, or dropped."""
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in list(node):
                paths.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                paths.append((node, index))
                walk(node[index])

    walk(value)
    if not paths:
        return rng.choice(hostile)
    parent, key = rng.choice(paths)
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[key]
    else:
        parent[key] = rng.choice(hostile)
    return value


def _crafted_json() -> list[tuple[str, bytes]]:
    """JSON documents that strain a parser: deep nesting, a huge integer, non-standard constants."""
    return [
        ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000),
        ("a 100,000-digit integer", b'{"a": ' + b"7" * 100_000 + b"}"),
        ("a NaN literal", b'{"a": NaN}'),
        ("not UTF-8", b'{"a": "\xff\xfe"}'),
        ("a list instead of an object", b"[1, 2, 3]"),
    ]


def _npy(header: dict[str, Any], body: bytes) -> bytes:
    text = repr(header).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + body


def _crafted_npy(good: bytes) -> list[tuple[str, bytes]]:
    """``.npy`` members with lying headers: a huge shape, negative dimensions, trailing or missing bytes, objects."""
    return [
        ("shape (2**40, 2**40)", _npy({"descr": "<f8", "fortran_order": False, "shape": (2**40, 2**40)}, b"")),
        ("a negative dimension", _npy({"descr": "<f8", "fortran_order": False, "shape": (-1, 4)}, b"\0" * 32)),
        ("trailing bytes", good + b"\0" * 8),
        ("missing bytes", good[:-1]),
        ("an object dtype", _npy({"descr": "|O", "fortran_order": False, "shape": (1,)}, b"\0" * 8)),
        ("a structured dtype", _npy({"descr": [("a", "<f8")], "fortran_order": False, "shape": (1,)}, b"\0" * 8)),
    ]


def _with_compression_method(entries: dict[str, bytes], name: str, method: int) -> bytes:
    """The archive of ``entries`` with member ``name`` marked as compressed with ``method`` (in both headers)."""
    data = bytearray(pack(entries))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(name)
        local = info.header_offset
    data[local + 8 : local + 10] = method.to_bytes(2, "little")  # local file header: compression method
    encoded = name.encode()
    start = 0
    while (start := data.find(b"PK\x01\x02", start)) != -1:  # central directory entries
        name_length = int.from_bytes(data[start + 28 : start + 30], "little")
        if bytes(data[start + 46 : start + 46 + name_length]) == encoded:
            data[start + 10 : start + 12] = method.to_bytes(2, "little")
        start += 4
    return bytes(data)


def damaged_variants(
    path: str | Path, *, seed: int = 0, count: int = 40, sentinel: str | Path | None = None
) -> Iterator[tuple[str, bytes]]:
    """A bounded, seeded corpus of damaged copies of a good file: ``(label, bytes)`` pairs.

    The same ``seed`` and ``count`` always give the same variants. They include truncations,
    single-bit flips, crafted JSON values in the manifest, config and state (hostile import paths,
    malformed tags, wrong types, dropped keys), dropped, duplicated and swapped members, JSON
    members that strain the parser (deep nesting, a 100,000-digit integer), ``.npy`` members with
    lying headers, members of an unknown compression method, and an empty file.

    Args:
        path: A good ModularML file.
        seed: Seed of the random choices.
        count: How many variants of the random kinds (truncation, bit flip, JSON change); the
            structural variants (dropped, duplicated, swapped members; empty file) come on top.
        sentinel: A file that the crafted values would create (or open for writing) if a loader
            ran what they name; check afterwards that it does not exist. Defaults to a name in
            the file's folder.
    """
    rng = random.Random(seed)
    hostile = _hostile_values(Path(sentinel) if sentinel is not None else Path(path).with_name("SENTINEL"))
    data = Path(path).read_bytes()
    entries = members(path)
    names = list(entries)
    yield "empty file", b""
    for name in names:
        yield f"without {name}", pack({n: b for n, b in entries.items() if n != name})
        yield f"{name} twice", pack([*entries.items(), (name, entries[name])])
    json_names = [n for n in names if n.endswith(".json")]
    for name in json_names:
        for what, crafted in _crafted_json():
            yield f"{name}: {what}", pack({**entries, name: crafted})
    for name in (n for n in names if n.endswith(".npy")):
        for what, crafted in _crafted_npy(entries[name]):
            yield f"{name}: {what}", pack({**entries, name: crafted})
    for name in names:
        yield f"{name} stored with an unknown compression method", _with_compression_method(entries, name, 99)
    if len(json_names) >= 2:
        a, b = json_names[0], json_names[1]
        yield f"{a} and {b} swapped", pack({n: entries[b if n == a else a if n == b else n] for n in names})
    for index in range(count):
        choice = index % 3
        if choice == 0:
            cut = rng.randrange(1, len(data))
            yield f"truncated at byte {cut}", data[:cut]
        elif choice == 1:
            position = rng.randrange(len(data))
            flipped = bytearray(data)
            flipped[position] ^= 1 << rng.randrange(8)
            yield f"bit flipped at byte {position}", bytes(flipped)
        else:
            name = rng.choice(json_names)
            changed = dict(entries)
            changed[name] = json.dumps(_json_mutation(json.loads(entries[name]), rng, hostile)).encode()
            yield f"crafted value in {name} (variant {index})", pack(changed)
