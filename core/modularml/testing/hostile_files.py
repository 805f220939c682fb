"""Hostile and damaged ModularML files, for testing that a loader refuses them cleanly.

A loader must either load a file or raise :class:`~modularml.errors.SerializationError`, and
must never run code named by the file. These helpers build the files to check that with:
:func:`rewrite_member` changes one member of a saved file (a crafted manifest, config or state),
and :func:`damaged_variants` derives a bounded, seeded corpus of damaged copies (truncations,
bit flips, swapped and dropped members, crafted JSON values) from a good file.

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

__all__ = ["damaged_variants", "members", "pack", "rewrite_member"]


def members(path: str | Path) -> dict[str, bytes]:
    """The members of a zip file, in order, as ``name -> bytes``."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def pack(entries: dict[str, bytes] | list[tuple[str, bytes]]) -> bytes:
    """A zip archive (members stored, as ModularML writes them) of ``entries``, as bytes.

    A list of pairs may repeat a name (a duplicate member).
    """
    pairs = list(entries.items()) if isinstance(entries, dict) else list(entries)
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


def _json_mutations(value: Any, rng: random.Random) -> Any:
    """One crafted change somewhere in a JSON tree: a value replaced by a hostile or wrong-typed one."""
    hostile = [
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
        {"__mml_object__": "modularml.io.atomic:os.system", "params": {"command": "true"}},
        {"__mml_object__": "subprocess:Popen", "params": {"args": ["true"]}},
        "modularml.testing.conformance:subprocess.Popen",
        "modularml.io.container:io.FileIO",
        "os:system",
        [[[[[[[[[[]]]]]]]]]],
    ]
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


def damaged_variants(path: str | Path, *, seed: int = 0, count: int = 40) -> Iterator[tuple[str, bytes]]:
    """A bounded, seeded corpus of damaged copies of a good file: ``(label, bytes)`` pairs.

    The same ``seed`` and ``count`` always give the same variants. They include truncations,
    single-bit flips, crafted JSON values in the manifest, config and state (hostile import paths,
    malformed tags, wrong types, dropped keys), dropped, duplicated and swapped members, and an
    empty file.

    Args:
        path: A good ModularML file.
        seed: Seed of the random choices.
        count: How many variants of the random kinds (truncation, bit flip, JSON change); the
            structural variants (dropped, duplicated, swapped members; empty file) come on top.
    """
    rng = random.Random(seed)
    data = Path(path).read_bytes()
    entries = members(path)
    names = list(entries)
    yield "empty file", b""
    for name in names:
        yield f"without {name}", pack({n: b for n, b in entries.items() if n != name})
        yield f"{name} twice", pack([*entries.items(), (name, entries[name])])
    json_names = [n for n in names if n.endswith(".json")]
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
            changed[name] = json.dumps(_json_mutations(json.loads(entries[name]), rng)).encode()
            yield f"crafted value in {name} (variant {index})", pack(changed)
