"""Format version 2: stored, aligned members, XXH3-64 checksums in the manifest, zero-copy reads.

Version-1 files (``tests/core/io/data/*_v1.*.mml``, written by the version-1 writer) still load.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import xxhash

import modularml as mml
from modularml.errors import SerializationError
from modularml.io import read_container, write_container
from modularml.io import zipwrite as zipwrite_module
from modularml.io.zipwrite import ALIGNMENT, AlignedZipWriter
from modularml.testing.hostile_files import members, pack, seal

DATA = Path(__file__).parent / "data"


class Thing:
    pass


def _state() -> dict:
    return {
        "array": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
        "strided": np.arange(20, dtype=np.int16)[::3],
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 3), dtype=np.complex64),
        "table": pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}),
        "strings": np.array(["u1", "u2"], dtype=object),
        "nested": {"tuple": (1, 2.5, None), "nan": float("nan")},
    }


def _write(path: Path, **kwargs) -> Path:
    return write_container(path, kind="fs", cls=Thing, config={"label": "thing"}, state=_state(), **kwargs)


def _data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    header = path.read_bytes()[info.header_offset : info.header_offset + 30]
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _check_state(state: dict) -> None:
    expected = _state()
    for key in ("array", "fortran", "strided", "scalar", "empty"):
        assert state[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(state[key], expected[key])
    assert state["fortran"].flags.f_contiguous
    assert state["table"].equals(expected["table"])
    assert state["strings"].tolist() == ["u1", "u2"]
    assert state["nested"]["tuple"] == (1, 2.5, None)
    assert np.isnan(state["nested"]["nan"])


def test_members_are_stored_aligned_and_checksummed(tmp_path: Path) -> None:
    path = _write(tmp_path / "t")
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every zip CRC-32 is right
        infos = archive.infolist()
        manifest = json.loads(archive.read("manifest.json"))
        contents = {info.filename: archive.read(info) for info in infos}
    assert manifest["format_version"] == 2
    assert [info.filename for info in infos][:3] == ["manifest.json", "config.json", "state.json"]
    assert all(info.compress_type == zipfile.ZIP_STORED for info in infos)
    for info in infos:
        assert _data_offset(path, info) % ALIGNMENT == 0, info.filename
    assert set(manifest["checksums"]) == set(manifest["entries"]) == set(contents) - {"manifest.json"}
    for name, text in manifest["checksums"].items():
        assert text == f"xxh3_64:{xxhash.xxh3_64_intdigest(contents[name]):016x}", name
    array = np.load(__import__("io").BytesIO(contents["arrays/0.npy"]), allow_pickle=False)
    np.testing.assert_array_equal(array, _state()["array"])  # plain .npy, as numpy reads it


@pytest.mark.parametrize("use_mmap", [False, True])
def test_round_trip_views_read_only_aligned_memory(tmp_path: Path, use_mmap: bool) -> None:
    loaded = read_container(_write(tmp_path / "t"), mmap=use_mmap)
    _check_state(loaded.state)
    array = loaded.state["array"]
    assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        array[0, 0] = 1.0
    with pytest.raises(ValueError, match="WRITEABLE"):
        array.flags.writeable = True  # the memory itself is read-only, not only the flag
    assert array.ctypes.data % ALIGNMENT == 0  # the data of a saved array starts aligned
    column = loaded.state["table"].column("a").chunk(0)
    assert not column.buffers()[1].is_mutable
    assert column.buffers()[1].address % 8 == 0


@pytest.mark.parametrize("use_mmap", [False, True])
def test_loaded_data_survives_the_file_being_replaced_or_deleted(tmp_path: Path, use_mmap: bool) -> None:
    path = _write(tmp_path / "t")
    loaded = read_container(path, mmap=use_mmap)
    write_container(path, kind="fs", cls=Thing, config={}, state={"array": np.full((3, 4), -7.0)}, overwrite=True)
    _check_state(loaded.state)
    path.unlink()
    _check_state(loaded.state)


def test_a_copy_in_memory_does_not_see_the_file_rewritten_in_place(tmp_path: Path) -> None:
    path = _write(tmp_path / "t")
    loaded = read_container(path)  # the default: read into memory
    with open(path, "r+b") as handle:  # rewritten in place, as `cp` onto it would
        handle.write(bytes(path.stat().st_size))
    _check_state(loaded.state)


def test_byte_flips_all_over_the_file_are_refused_or_load_the_same(tmp_path: Path) -> None:
    """A flipped byte is refused, or is in a byte no reader uses (alignment padding, a zip timestamp)."""
    state = {"array": np.arange(6, dtype=np.int32), "table": pa.table({"b": ["x", "yz"]})}
    path = write_container(tmp_path / "t", kind="fs", cls=Thing, config={"label": "t"}, state=state)
    clean = path.read_bytes()
    bad = tmp_path / "bad.fs.mml"
    refused, same = [], 0
    for offset in range(0, len(clean), 3):
        damaged = bytearray(clean)
        damaged[offset] ^= 1 << offset % 8
        bad.write_bytes(bytes(damaged))
        try:
            loaded = read_container(bad)
        except SerializationError as exc:
            refused.append(str(exc))
            continue
        np.testing.assert_array_equal(loaded.state["array"], state["array"])
        assert loaded.state["table"].equals(state["table"])
        assert loaded.config == {"label": "t"}
        same += 1
    assert all(bad.name in message for message in refused)
    assert same < len(refused) / 3


def test_a_damaged_entry_names_the_checksum(tmp_path: Path) -> None:
    path = _write(tmp_path / "t")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("arrays/0.npy")
    data = bytearray(path.read_bytes())
    data[_data_offset(path, info) + 130] ^= 0x01  # in the array's data, past its .npy header
    path.write_bytes(bytes(data))
    with pytest.raises(SerializationError, match=r"'arrays/0.npy' is damaged: its XXH3-64 checksum is [0-9a-f]{16}"):
        read_container(path)


def _with_manifest(path: Path, change) -> Path:
    entries = members(path)
    manifest = json.loads(entries["manifest.json"])
    change(manifest)
    entries["manifest.json"] = json.dumps(manifest).encode()
    path.write_bytes(pack(entries, sealed=False))
    return path


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda m: m.pop("checksums"), "records the checksums None, not an object"),
        (lambda m: m["checksums"].pop("config.json"), r"checksums for other entries .*config\.json"),
        (lambda m: m["checksums"].update({"extra.json": "xxh3_64:" + "0" * 16}), r"other entries .*extra\.json"),
        (lambda m: m["checksums"].update({"state.json": "crc32:1234"}), r"'crc32:1234' for 'state.json'"),
        (lambda m: m["checksums"].update({"state.json": "xxh3_64:" + "A" * 16}), "not 'xxh3_64:' and 16 hex"),
        (lambda m: m.update(format_version=1), "format version 1 but records checksums"),
    ],
)
def test_manifest_checksums_are_checked(tmp_path: Path, change, pattern: str) -> None:
    path = _with_manifest(_write(tmp_path / "t"), change)
    with pytest.raises(SerializationError, match=pattern):
        read_container(path)


def test_a_wrong_checksum_in_the_manifest_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "t")
    path = _with_manifest(path, lambda m: m["checksums"].update({"tables/0.arrow": "xxh3_64:" + "0" * 16}))
    with pytest.raises(SerializationError, match=r"'tables/0.arrow' is damaged.*records 0{16}"):
        read_container(path)


def test_a_file_rewritten_by_other_zip_tools_still_loads(tmp_path: Path) -> None:
    path = _write(tmp_path / "t")
    with zipfile.ZipFile(path) as archive:
        contents = [(info.filename, archive.read(info)) for info in archive.infolist()]
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):  # deflated; or stored, but no longer aligned
        other = tmp_path / f"other{method}.fs.mml"
        with zipfile.ZipFile(other, "w", method) as archive:
            for name, data in contents:
                archive.writestr(name, data)
        with zipfile.ZipFile(other) as archive:
            offsets = [_data_offset(other, info) % ALIGNMENT for info in archive.infolist()]
        assert any(offsets)
        for use_mmap in (False, True):
            _check_state(read_container(other, mmap=use_mmap).state)


def test_seal_recomputes_only_the_members_present() -> None:
    manifest = {"format_version": 2, "checksums": {"a": "xxh3_64:" + "0" * 16, "b": "xxh3_64:" + "0" * 16}}
    sealed = dict(seal({"manifest.json": json.dumps(manifest).encode(), "a": b"data"}))
    checksums = json.loads(sealed["manifest.json"])["checksums"]
    assert checksums == {"a": f"xxh3_64:{xxhash.xxh3_64_intdigest(b'data'):016x}", "b": "xxh3_64:" + "0" * 16}
    assert seal({"manifest.json": b"[[["}) == [("manifest.json", b"[[[")]


def test_zip64_records_are_written_where_sizes_need_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lowered limits make small members take the zip64 paths that members over 4 GiB take."""
    monkeypatch.setattr(zipwrite_module, "_ZIP64_LIMIT", 200)
    monkeypatch.setattr(zipwrite_module, "_ZIP64_COUNT_LIMIT", 3)
    path = _write(tmp_path / "t")
    with open(path, "rb") as handle:
        data = handle.read()
    assert b"PK\x06\x06" in data  # the zip64 end record
    assert b"PK\x06\x07" in data  # and its locator
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    _check_state(read_container(path).state)
    if shutil.which("unzip"):
        import subprocess

        result = subprocess.run(["unzip", "-tq", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_writer_refuses_a_repeated_member_or_a_resized_replacement(tmp_path: Path) -> None:
    with open(tmp_path / "z.zip", "wb") as handle:
        writer = AlignedZipWriter(handle)
        writer.add_bytes("a", b"123")
        with pytest.raises(ValueError, match="written twice"):
            writer.add_bytes("a", b"4")
        with pytest.raises(ValueError, match="holds 3 bytes, not 2"):
            writer.replace("a", b"12")
        writer.replace("a", b"456")
        writer.finish()
    with zipfile.ZipFile(tmp_path / "z.zip") as archive:
        assert archive.read("a") == b"456"
        assert archive.testzip() is None


# ---------------------------------------------------------------------------------------------
# version 1
# ---------------------------------------------------------------------------------------------
def test_version_1_files_still_load(tmp_path: Path) -> None:
    path = shutil.copy(DATA / "values_v1.fs.mml", tmp_path / "values_v1.fs.mml")
    loaded = read_container(path)
    assert loaded.manifest["format_version"] == 1
    assert "checksums" not in loaded.manifest
    state = loaded.state
    np.testing.assert_array_equal(state["array"], np.arange(12, dtype=np.float32).reshape(3, 4))
    assert state["fortran"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert state["table"].equals(pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
    assert state["strings"].tolist() == ["u1", "u2"]
    assert state["nested"]["tuple"] == (1, 2.5, None)
    assert state["nested"]["inf"] == float("-inf")
    assert not state["array"].flags.writeable


def test_a_version_1_featureset_loads_and_resaves_as_version_2(tmp_path: Path) -> None:
    path = shutil.copy(DATA / "cells_v1.fs.mml", tmp_path / "cells.fs.mml")
    fs = mml.FeatureSet.load(path)
    assert fs.label == "cells"
    assert len(fs.get_sample_uuids()) == 12
    assert sorted(fs.available_splits) == ["train", "val"]
    assert len(fs["train"].indices) + len(fs["val"].indices) == 12
    np.testing.assert_allclose(fs.collection.to_numpy("features.x.raw"), np.linspace(0, 1, 12, dtype=np.float32))
    assert len(fs.scaler_records) == 1
    resaved = mml.FeatureSet.load(fs.save(tmp_path / "again"), overwrite=True)
    assert read_container(tmp_path / "again.fs.mml").manifest["format_version"] == 2
    assert resaved.collection.table.equals(fs.collection.table, check_metadata=True)
    assert resaved["train"].indices.tolist() == fs["train"].indices.tolist()


def test_a_flipped_byte_in_a_version_1_file_is_still_detected(tmp_path: Path) -> None:
    clean = (DATA / "values_v1.fs.mml").read_bytes()
    with zipfile.ZipFile(DATA / "values_v1.fs.mml") as archive:
        info = archive.getinfo("arrays/0.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 140
    damaged = bytearray(clean)
    damaged[start] ^= 0x01
    (tmp_path / "v1.fs.mml").write_bytes(bytes(damaged))
    with pytest.raises(SerializationError, match=r"'arrays/0.npy' is damaged"):
        read_container(tmp_path / "v1.fs.mml")
