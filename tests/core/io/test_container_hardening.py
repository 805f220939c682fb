"""Reading hostile ModularML files, and writes that fail half-way.

Every hostile file is built by hand with :mod:`zipfile` from a good one. Each refusal must be a
``SerializationError`` whose message names the file, the entry and what is wrong; nothing else may
escape, and nothing may be inflated or allocated beyond the limits.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from modularml.errors import FileWriteError, InvalidArgumentError, ModularMLError, SerializationError
from modularml.io import atomic as atomic_module
from modularml.io import atomic_write, read_container, write_container
from modularml.io import container as container_module
from modularml.testing.hostile_files import seal

MiB = 2**20


class Thing:
    pass


# ---------------------------------------------------------------------------------------------
# building files by hand
# ---------------------------------------------------------------------------------------------
def _good(tmp_path: Path, **state) -> Path:
    state = state or {"array": np.arange(6, dtype=np.int64).reshape(2, 3), "table": pa.table({"a": [1, 2]})}
    return write_container(tmp_path / "t", kind="fs", cls=Thing, config={"label": "t"}, state=state)


def _members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def _pack(path: Path, members: list[tuple[str, bytes] | tuple[str, bytes, int]], *, sealed: bool = True) -> Path:
    """Write ``members`` (name, data[, compress_type]) as the zip at ``path``; a name may repeat.

    With ``sealed`` the manifest's checksums are recomputed (as an attacker would), so that a
    crafted member meets the check it is aimed at rather than the checksum.
    """
    if sealed:
        manifest = dict(seal([(name, data) for name, data, *_ in members])).get("manifest.json")
        members = [(n, manifest if n == "manifest.json" else d, *rest) for n, d, *rest in members]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name", on purpose
        with zipfile.ZipFile(path, "w") as archive:
            for name, data, *method in members:
                archive.writestr(name, data, compress_type=method[0] if method else zipfile.ZIP_STORED, compresslevel=9)
    return path


def _replace(path: Path, name: str, data: bytes, compress_type: int = zipfile.ZIP_STORED) -> Path:
    members = _members(path)
    assert name in {n for n, _ in members}
    return _pack(path, [(n, data, compress_type) if n == name else (n, d) for n, d in members])


def _manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


def _set_manifest(path: Path, **changes) -> Path:
    return _replace(path, "manifest.json", json.dumps({**_manifest(path), **changes}).encode())


def _set_json(path: Path, name: str, value) -> Path:
    return _replace(path, name, json.dumps(value).encode())


def _patch_headers(path: Path, name: str, *, central: int, local: int | None, fmt: str, value: int) -> Path:
    """Overwrite a field of ``name``'s central directory header (and local header) in place."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        header_offset = archive.getinfo(name).header_offset
    if local is not None:
        struct.pack_into(fmt, data, header_offset + local, value)
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        length = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46 : pos + 46 + length] == name.encode():
            struct.pack_into(fmt, data, pos + central, value)
            break
        pos = data.find(b"PK\x01\x02", pos + 4)
    else:
        raise AssertionError(f"no central header for {name}")
    path.write_bytes(bytes(data))
    return path


def _npy(descr, shape: tuple, payload: bytes, major: int = 1) -> bytes:
    """An .npy entry with any header: format 1.0 (2-byte header length) or 2.0/3.0 (4 bytes)."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    length = "<H" if major == 1 else "<I"
    prefix = 6 + 2 + struct.calcsize(length)
    header += b" " * (-(prefix + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([major, 0]) + struct.pack(length, len(header)) + header + payload


def _refused(path: Path, entry: str | None, *patterns: str, **kwargs) -> str:
    """Load ``path``; assert a SerializationError naming the file, ``entry`` and each pattern."""
    with pytest.raises(SerializationError) as info:
        read_container(path, **kwargs)
    message = str(info.value)
    assert str(path) in message, message
    if entry is not None:
        assert entry in message, message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    return message


@pytest.fixture
def no_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything starts inflating a deflated entry."""

    def refuse(*args, **kwargs):
        raise AssertionError("a deflated entry was inflated")

    monkeypatch.setattr(zlib, "decompressobj", refuse)


# ---------------------------------------------------------------------------------------------
# 1. bounded reads
# ---------------------------------------------------------------------------------------------
def _spaces_json(size: int) -> bytes:
    return b'{"a": "' + b" " * size + b'"}'


def test_a_deflate_bomb_over_the_json_limit_is_refused_before_inflating(tmp_path: Path, no_inflating) -> None:
    path = _replace(_good(tmp_path), "config.json", _spaces_json(20 * MiB), zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < MiB
    limit = r"declares 20,971,\d+ bytes, more than the 1,048,576 allowed \(max_json_bytes\)"
    _refused(path, "'config.json'", limit, max_json_bytes=MiB)


def test_the_compression_ratio_refuses_a_bomb_under_the_size_limits(tmp_path: Path, no_inflating) -> None:
    path = _replace(_good(tmp_path), "config.json", _spaces_json(20 * MiB), zipfile.ZIP_DEFLATED)
    _refused(path, "'config.json'", "compression ratio over 100", "decompression bomb")


def test_many_small_deflated_entries_are_refused_together(tmp_path: Path, no_inflating) -> None:
    path = _good(tmp_path)
    bombs = [(f"extra/{i}.bin", bytes(MiB), zipfile.ZIP_DEFLATED) for i in range(5)]  # each under 1 MiB slack
    _pack(path, [*_members(path), *bombs])
    _refused(path, "'extra/", "its deflated entries", "decompression bomb")


def test_a_header_that_understates_the_size_never_inflates_past_it(tmp_path: Path) -> None:
    path = _replace(_good(tmp_path), "config.json", _spaces_json(20 * MiB), zipfile.ZIP_DEFLATED)
    _patch_headers(path, "config.json", central=24, local=22, fmt="<I", value=512 * 1024)  # "512 KiB"
    tracemalloc.start()
    try:
        _refused(path, "'config.json'", "damaged|not valid JSON", max_json_bytes=MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, peak


def test_a_header_that_overstates_the_size_is_refused(tmp_path: Path) -> None:
    path = _replace(_good(tmp_path), "config.json", b'{"label": "t"}', zipfile.ZIP_DEFLATED)
    _patch_headers(path, "config.json", central=24, local=22, fmt="<I", value=5000)
    _refused(path, "'config.json'", "declares 5,000 bytes but holds 14")


def test_a_stored_entry_whose_sizes_disagree_is_refused(tmp_path: Path) -> None:
    path = _good(tmp_path)
    _pack(path, _members(path))  # without zip64 extras, so the sizes sit in the headers
    _patch_headers(path, "config.json", central=24, local=22, fmt="<I", value=10**6)
    _refused(path, "'config.json'", "stored uncompressed but declares 1,000,000 bytes in")


def test_an_array_over_max_member_bytes_is_refused(tmp_path: Path) -> None:
    path = _good(tmp_path, big=np.zeros(2 * MiB // 8))
    _refused(path, "'arrays/0.npy'", r"more than the 1,048,576 allowed \(max_member_bytes\)", max_member_bytes=MiB)
    assert read_container(path).state["big"].shape == (2 * MiB // 8,)


def test_the_module_limits_apply_when_no_keyword_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _good(tmp_path, big=np.zeros(2 * MiB // 8))
    monkeypatch.setattr(container_module, "MAX_MEMBER_BYTES", MiB)
    _refused(path, "'arrays/0.npy'", "max_member_bytes")
    monkeypatch.setattr(container_module, "MAX_JSON_BYTES", 10)
    _refused(path, "'manifest.json'", "max_json_bytes")


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "1"])
def test_limits_must_be_positive_integers(tmp_path: Path, value) -> None:
    path = _good(tmp_path)
    with pytest.raises(InvalidArgumentError, match="max_member_bytes must be a positive number"):
        read_container(path, max_member_bytes=value)
    with pytest.raises(InvalidArgumentError, match="max_json_bytes must be a positive number"):
        read_container(path, max_json_bytes=value)


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA, 99])
def test_entries_of_other_compression_methods_are_refused(tmp_path: Path, method: int) -> None:
    path = _good(tmp_path)
    if method == 99:  # zipfile cannot write an unknown method: patch a stored entry's headers
        _pack(path, _members(path))
        _patch_headers(path, "config.json", central=10, local=8, fmt="<H", value=99)
    else:
        _replace(path, "config.json", b'{"label": "t"}', method)
    _refused(path, "'config.json'", f"compression method {method}")


def test_a_deflated_container_still_loads(tmp_path: Path) -> None:
    path = _good(tmp_path)
    _pack(path, [(name, data, zipfile.ZIP_DEFLATED) for name, data in _members(path)])
    loaded = read_container(path)
    assert loaded.state["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert loaded.state["table"].equals(pa.table({"a": [1, 2]}))


def test_encrypted_entries_are_refused(tmp_path: Path) -> None:
    path = _good(tmp_path)
    _pack(path, _members(path))
    _patch_headers(path, "state.json", central=8, local=6, fmt="<H", value=0x1)
    _refused(path, "'state.json'", "is encrypted")


# ---------------------------------------------------------------------------------------------
# 2. JSON limits
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ["config.json", "state.json", "manifest.json"])
def test_deep_nesting_is_refused_without_recursing(tmp_path: Path, entry: str) -> None:
    path = _replace(_good(tmp_path), entry, b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    _refused(path, f"'{entry}'", "more than 200 levels deep")


def test_nesting_up_to_the_limit_and_brackets_in_strings_load(tmp_path: Path) -> None:
    nested: list = []
    for _ in range(198):  # + the root object: 200 levels
        nested = [nested]
    text = '[[{{ \\" \\\\" ]]}} ' * 300
    path = write_container(tmp_path / "deep", kind="fs", cls=Thing, config={"n": nested, "s": text})
    loaded = read_container(path)
    assert loaded.config["s"] == text
    assert loaded.config["n"] == nested
    with pytest.raises(SerializationError, match="more than 200 levels deep"):
        write_container(tmp_path / "deeper", kind="fs", cls=Thing, config={"n": [nested]})
    assert not (tmp_path / "deeper.fs.mml").exists()


@pytest.mark.parametrize("sign", ["", "-"])
def test_an_integer_of_100000_digits_is_refused(tmp_path: Path, sign: str) -> None:
    path = _replace(_good(tmp_path), "state.json", b'{"n": ' + sign.encode() + b"7" * 100_000 + b"}")
    _refused(path, "'state.json'", "an integer of 100,000 digits", "at most 4,300")


def test_an_integer_too_long_to_load_is_not_saved(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match=r"state\['n'\] is an integer of more than 4300 digits"):
        write_container(tmp_path / "t", kind="fs", cls=Thing, config={}, state={"n": 10**5000})
    path = write_container(tmp_path / "t", kind="fs", cls=Thing, config={}, state={"n": 10**4000})
    assert read_container(path).state["n"] == 10**4000


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(tmp_path: Path, literal: str) -> None:
    path = _replace(_good(tmp_path), "state.json", b'{"x": ' + literal.encode() + b"}")
    _refused(path, "'state.json'", f"the literal {literal}")


def test_a_float_literal_that_overflows_is_refused(tmp_path: Path) -> None:
    path = _replace(_good(tmp_path), "config.json", b'{"x": 1e400}')
    _refused(path, "'config.json'", "1e400, too large for a float")


def test_json_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = _replace(_good(tmp_path), "config.json", '{"label": "t"}'.encode("utf-16"))
    _refused(path, "'config.json'", "not valid JSON")


# ---------------------------------------------------------------------------------------------
# 3. tagged values
# ---------------------------------------------------------------------------------------------
def _state_with(tmp_path: Path, value) -> Path:
    path = _good(tmp_path)
    state = json.loads(dict(_members(path))["state.json"])
    return _set_json(path, "state.json", {**state, "x": value})


@pytest.mark.parametrize("payload", ["abc", "NaN", 5, None, ["nan"]])
def test_a_float_tag_must_hold_nan_or_inf(tmp_path: Path, payload) -> None:
    path = _state_with(tmp_path, {"__mml_float__": payload})
    _refused(path, "'state.json'", r"at state\['x'\]: the float tag holds", "not 'nan', 'inf' or '-inf'")


def test_float_tags_round_trip(tmp_path: Path) -> None:
    path = _good(tmp_path, values=[float("nan"), float("inf"), float("-inf")])
    values = read_container(path).state["values"]
    assert np.isnan(values[0])
    assert values[1:] == [float("inf"), float("-inf")]


@pytest.mark.parametrize("payload", [5, "ab", {"a": 1}])
def test_a_tuple_tag_must_hold_a_list(tmp_path: Path, payload) -> None:
    path = _state_with(tmp_path, {"nested": [{"__mml_tuple__": payload}]})
    _refused(path, "'state.json'", r"at state\['x'\]\['nested'\]\[0\]: the tuple tag holds", "not a list")


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ({"__mml_float__": "nan", "extra": 1}, r"the tag '__mml_float__' has the extra keys \['extra'\]"),
        ({"__mml_array__": "arrays/0.npy", "object_array_shape": [6]}, "has the extra keys"),
        ({"__mml_float__": "nan", "__mml_tuple__": []}, "combines the tags"),
    ],
)
def test_a_tag_stands_alone(tmp_path: Path, value, pattern: str) -> None:
    _refused(_state_with(tmp_path, value), "'state.json'", pattern)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        (5, "holds 5, not an entry name 'arrays/<n>.npy'"),
        ("config.json", "not an entry name 'arrays/<n>.npy'"),
        ("../arrays/0.npy", "not an entry name 'arrays/<n>.npy'"),
        ("tables/0.arrow", "not an entry name 'arrays/<n>.npy'"),
        ("arrays/9.npy", "refers to 'arrays/9.npy', which manifest.json does not list"),
        ("arrays/0.npy", "refers to 'arrays/0.npy' a second time"),
    ],
)
def test_array_references_name_a_listed_array_entry_once(tmp_path: Path, name, pattern: str) -> None:
    _refused(_state_with(tmp_path, {"__mml_array__": name}), "'state.json'", pattern)


def test_table_references_name_a_listed_table_entry(tmp_path: Path) -> None:
    _refused(
        _state_with(tmp_path, {"__mml_table__": "arrays/0.npy"}), "'state.json'", "not an entry name 'tables/<n>.arrow'"
    )


@pytest.mark.parametrize(
    ("shape", "pattern"),
    [
        ([-1, -2], "not a list of at most 64 non-negative integers"),
        ("2", "not a list of at most 64 non-negative integers"),
        ([True, 2], "not a list of at most 64 non-negative integers"),
        ([2**70], "not a list of at most 64 non-negative integers"),
        ([1] * 65, "not a list of at most 64 non-negative integers"),
        ([3], r"object_array_shape \[3\] holds 3 values but 'tables/0.arrow' has 2 rows"),
        ([2**40, 2**40], "holds 1208925819614629174706176 values"),
    ],
)
def test_object_array_shapes_are_checked(tmp_path: Path, shape, pattern: str) -> None:
    path = _good(tmp_path, text=np.array(["a", "b"], dtype=object))
    state = json.loads(dict(_members(path))["state.json"])
    state["text"]["object_array_shape"] = shape
    _refused(_set_json(path, "state.json", state), "'state.json'", r"at state\['text'\]", pattern)


def test_an_object_array_needs_one_string_column(tmp_path: Path) -> None:
    path = _good(tmp_path)
    state = json.loads(dict(_members(path))["state.json"])
    state["table"]["object_array_shape"] = [2]  # a table of ints, not text
    _refused(_set_json(path, "state.json", state), "'state.json'", "is not one string column 'values'")


def test_config_and_state_must_be_plain_objects(tmp_path: Path) -> None:
    path = _set_json(_good(tmp_path), "config.json", {"__mml_tuple__": []})
    _refused(path, "'config.json'", "must hold a JSON object")
    path = _set_json(path, "config.json", [1])
    _refused(path, "'config.json'", "must hold a JSON object")


# ---------------------------------------------------------------------------------------------
# 4. .npy headers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("descr", "shape", "payload", "pattern"),
    [
        (
            "<f8",
            (2**40, 2**40),
            bytes(8),
            r"declares \(1099511627776, 1099511627776\) values of float64 .* but holds 8",
        ),
        ("<f8", (-1, 3), bytes(24), r"declares the shape \(-1, 3\), not non-negative integers"),
        ("<i8", (3,), bytes(24 + 5), "declares .*24 bytes.* but holds 29 bytes"),
        ("<i8", (3,), bytes(16), "declares .*24 bytes.* but holds 16 bytes"),
        ("|O", (1,), bytes(8), "holds Python objects, which would need unpickling"),
        ("|V8", (1,), bytes(8), "has the dtype \\|V8, which ModularML files never hold"),
        ([("a", "<i4")], (1,), bytes(4), "has the dtype .*, which ModularML files never hold"),
    ],
)
def test_npy_headers_must_match_their_data(tmp_path: Path, descr, shape, payload, pattern: str) -> None:
    path = _replace(_good(tmp_path), "arrays/0.npy", _npy(descr, shape, payload))
    _refused(path, "'arrays/0.npy'", pattern)


def test_npy_of_other_format_versions_are_refused(tmp_path: Path) -> None:
    path = _replace(_good(tmp_path), "arrays/0.npy", _npy("<i8", (1,), bytes(8), major=3))
    _refused(path, "'arrays/0.npy'", r"format version \(3, 0\)")


def test_arrays_of_every_saved_dtype_round_trip_read_only(tmp_path: Path) -> None:
    arrays = {
        "big_endian": np.arange(4, dtype=">i4"),
        "when": np.array(["2024-01-02", "2025-03-04"], dtype="datetime64[D]"),
        "delta": np.array([1, 2], dtype="timedelta64[s]"),
        "text": np.array(["ab", "c"]),
        "raw": np.array([b"ab", b"c"]),
        "complex": np.array([1 + 2j]),
        "flags": np.array([[True], [False]], order="F"),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }
    loaded = read_container(_good(tmp_path, **arrays)).state
    for key, array in arrays.items():
        assert loaded[key].dtype == array.dtype, key
        assert np.array_equal(loaded[key], array), key
        assert not loaded[key].flags.writeable
    with pytest.raises(SerializationError, match=r"state\['records'\] is an array of dtype"):
        _good(tmp_path / "x", records=np.zeros(2, dtype=[("a", "<i4")]))


# ---------------------------------------------------------------------------------------------
# 5. Arrow tables
# ---------------------------------------------------------------------------------------------
def _ipc(table: pa.Table, **options) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(**options)) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_bytes_after_the_arrow_stream_are_refused(tmp_path: Path) -> None:
    path = _replace(_good(tmp_path), "tables/0.arrow", _ipc(pa.table({"a": [1, 2]})) + b"garbage!")
    _refused(path, "'tables/0.arrow'", "not a valid Arrow IPC stream: 8 bytes follow the end of the stream")


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_arrow_bodies_are_refused(tmp_path: Path, codec: str) -> None:
    if not pa.Codec.is_available(codec):
        pytest.skip(f"pyarrow without {codec}")
    table = pa.table({"a": [1, 2], "d": pa.array(["x", "y"]).dictionary_encode()})
    path = _replace(_good(tmp_path), "tables/0.arrow", _ipc(table, compression=codec))
    _refused(path, "'tables/0.arrow'", "record batches are compressed")


def test_an_arrow_file_instead_of_a_stream_is_refused(tmp_path: Path) -> None:
    sink = io.BytesIO()
    with pa.ipc.new_file(sink, pa.schema([("a", pa.int64())])) as writer:
        writer.write_table(pa.table({"a": [1, 2]}))
    path = _replace(_good(tmp_path), "tables/0.arrow", sink.getvalue())
    _refused(path, "'tables/0.arrow'", "not a valid Arrow IPC stream")


def test_dictionary_encoded_tables_still_load(tmp_path: Path) -> None:
    table = pa.table({"d": pa.array(["x", "y", "x"]).dictionary_encode(), "n": [1, 2, 3]})
    assert read_container(_good(tmp_path, table=table)).state["table"].equals(table)


# ---------------------------------------------------------------------------------------------
# 6. zip structure
# ---------------------------------------------------------------------------------------------
def test_a_duplicate_member_name_is_refused(tmp_path: Path) -> None:
    path = _good(tmp_path)
    _pack(path, [*_members(path), ("config.json", b'{"label": "evil"}')])
    _refused(path, "'config.json'", "appears twice")


def test_members_the_manifest_does_not_list_are_refused(tmp_path: Path) -> None:
    path = _good(tmp_path)
    _pack(path, [*_members(path), ("extra.txt", b"hello")])
    _refused(path, "'extra.txt'", "which manifest.json does not list")


@pytest.mark.parametrize(
    ("entries", "pattern"),
    [
        ("config.json", "its manifest.json lists no entries"),
        (["config.json", "state.json", "/etc/passwd"], "lists the entry '/etc/passwd', which is not a plain relative"),
        (["config.json", "state.json", "../x"], "lists the entry '../x'"),
        (["config.json", "state.json", "arrays/../x"], "lists the entry 'arrays/../x'"),
        (["config.json", "state.json", "a\\b"], "lists the entry 'a\\\\\\\\b'"),
        (["config.json", "state.json", 5], "lists the entry 5"),
        (["config.json", "state.json", "manifest.json"], "lists the entry 'manifest.json'"),
        (["config.json", "config.json", "state.json"], "lists the entry 'config.json' twice"),
    ],
)
def test_manifest_entries_are_plain_relative_names(tmp_path: Path, entries, pattern: str) -> None:
    path = _set_manifest(_good(tmp_path, x=1), entries=entries)
    _refused(path, "manifest.json", pattern)


def test_overlapping_members_are_refused(tmp_path: Path) -> None:
    path = _good(tmp_path)
    _pack(path, _members(path))
    with zipfile.ZipFile(path) as archive:
        first = archive.getinfo("config.json").header_offset
    _patch_headers(path, "state.json", central=42, local=None, fmt="<I", value=first)
    _refused(path, "'config.json'", "overlaps the next entry")


# ---------------------------------------------------------------------------------------------
# 7. manifest
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("class_path", ["os.system", "a:b:c", "1mod:X", 5, "mod:", ":X", "mod:f.<locals>.X", None])
def test_the_manifest_class_must_be_module_qualname(tmp_path: Path, class_path) -> None:
    path = _set_manifest(_good(tmp_path), **{"class": class_path})
    _refused(path, "manifest.json", "names the class .*not a 'module:QualName'")


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"kind": ["fs"]}, r"names an unknown kind \['fs'\]"),
        ({"format_version": True}, "invalid format_version True"),
        ({"format_version": 3, "modularml_version": "9" * 1000}, r"format version 3 by modularml '9{20,}\.\.\.9+'"),
    ],
)
def test_manifest_fields_of_the_wrong_type(tmp_path: Path, change, pattern: str) -> None:
    message = _refused(_set_manifest(_good(tmp_path), **change), "manifest.json", pattern)
    assert len(message) < 500


def test_require_class(tmp_path: Path) -> None:
    loaded = read_container(_good(tmp_path))
    loaded.require_class(Thing)
    loaded.require_class(f"{Thing.__module__}:Thing")
    with pytest.raises(SerializationError) as info:
        loaded.require_class(InvalidArgumentError)
    message = str(info.value)
    assert str(loaded.path) in message
    assert f"holds a '{Thing.__module__}:Thing'" in message
    assert "not a 'modularml.errors:InvalidArgumentError'" in message


def test_a_class_without_an_import_path_is_not_saved(tmp_path: Path) -> None:
    class Local:
        pass

    with pytest.raises(SerializationError, match=r"has no import path .*inside a function"):
        write_container(tmp_path / "t", kind="fs", cls=Local, config={})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# 8. paths
# ---------------------------------------------------------------------------------------------
def test_a_folder_is_not_a_modularml_file(tmp_path: Path) -> None:
    folder = tmp_path / "run.fs.mml"
    folder.mkdir()
    _refused(folder, None, "is a folder, not a ModularML file")
    bare = tmp_path / "cells"
    bare.mkdir()
    _refused(bare, None, "is a folder, not a ModularML file", kind="fs")
    _good(tmp_path)  # t.fs.mml beside a folder named t
    (tmp_path / "t").mkdir()
    assert read_container(tmp_path / "t", kind="fs").path == tmp_path / "t.fs.mml"


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nothing.fs.mml"))):
        read_container(tmp_path / "nothing.fs.mml")


# ---------------------------------------------------------------------------------------------
# 9. anything else that escapes is converted
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "pattern"),
    [
        (MemoryError(), "the entry 'arrays/0.npy' does not fit in memory"),
        (KeyError("x"), r"the entry 'arrays/0.npy' is malformed \(KeyError: 'x'\)"),
        (RecursionError("deep"), r"the entry 'arrays/0.npy' is malformed \(RecursionError: deep\)"),
    ],
)
def test_unexpected_errors_become_serialization_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, pattern: str
) -> None:
    path = _good(tmp_path)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(np, "frombuffer", fail)
    _refused(path, "'arrays/0.npy'", pattern)


def test_an_unexpected_error_while_decoding_names_that_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _good(tmp_path, text=np.array(["a", "b"], dtype=object))
    monkeypatch.setattr(container_module._Decoder, "_text_array", lambda *a: (_ for _ in ()).throw(OverflowError("x")))
    _refused(path, "'state.json'", r"is malformed \(OverflowError: x\)")


# ---------------------------------------------------------------------------------------------
# 10. writes that fail
# ---------------------------------------------------------------------------------------------
def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _assert_write_error(info: pytest.ExceptionInfo, path: Path) -> None:
    assert isinstance(info.value, ModularMLError)
    assert isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOSPC
    assert str(path) in str(info.value)
    assert "No space left on device" in str(info.value)


def test_a_full_disk_at_fsync_removes_the_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _good(tmp_path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", _full_disk)
    with pytest.raises(FileWriteError) as info:
        write_container(path, kind="fs", cls=Thing, config={"label": "new"}, overwrite=True)
    _assert_write_error(info, path)
    assert "the existing file is unchanged" in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.read_bytes() == before


class _FullDiskFile(io.FileIO):
    """A file whose ``close`` (where the buffered data is flushed) always fails, like a full disk."""

    def close(self) -> None:
        super().close()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_close_removes_the_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic_module, "open", lambda path, mode: _FullDiskFile(path, mode), raising=False)
    with pytest.raises(FileWriteError) as info:
        write_container(tmp_path / "t", kind="fs", cls=Thing, config={"label": "t"})
    _assert_write_error(info, tmp_path / "t.fs.mml")
    assert "no file was created" in str(info.value)
    assert list(tmp_path.iterdir()) == []


class _DiskFillsUpFile(io.FileIO):
    """A file that takes 1000 bytes, then fails every write."""

    def write(self, data) -> int:
        if self.tell() + len(data) > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_a_full_disk_mid_write_removes_the_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic_module, "open", lambda path, mode: _DiskFillsUpFile(path, mode), raising=False)
    with pytest.raises(FileWriteError) as info:
        _good(tmp_path, big=np.zeros(1000))
    _assert_write_error(info, tmp_path / "t.fs.mml")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_removes_the_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "replace", _full_disk)
    with pytest.raises(FileWriteError) as info, atomic_write(tmp_path / "f.bin") as handle:
        handle.write(b"data")
    _assert_write_error(info, tmp_path / "f.bin")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SerializationError("bad value")])
def test_other_exceptions_propagate_as_they_are_after_cleanup(tmp_path: Path, error: BaseException) -> None:
    def write() -> None:
        with atomic_write(tmp_path / "f.bin") as handle:
            handle.write(b"data")
            raise error

    with pytest.raises(type(error)) as info:
        write()
    assert info.value is error
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_created_is_a_write_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileWriteError, match=re.escape(str(tmp_path / "file" / "t.fs.mml"))) as info:
        write_container(tmp_path / "file" / "t", kind="fs", cls=Thing, config={})
    assert isinstance(info.value, OSError)
