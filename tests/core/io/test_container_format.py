from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from modularml.errors import FileCollisionError, InvalidArgumentError, SerializationError
from modularml.io import container as container_module
from modularml.io import container_path, read_container, write_container
from modularml.testing.hostile_files import seal


class Thing:
    pass


def _write(path: Path, **kwargs) -> Path:
    state = {
        "array": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
        "table": pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}),
        "nested": {"tuple": (1, 2.5, None), "list": [True, "s"], "nan": float("nan"), "inf": float("-inf")},
        "strings": np.array(["u1", "u2"], dtype=object),
        "grid": np.array([["a", "b"], ["c", "d"]], dtype=object),
    }
    return write_container(path, kind="fs", cls=Thing, config={"label": "thing"}, state=state, **kwargs)


def test_round_trip_of_every_value_type(tmp_path: Path) -> None:
    path = _write(tmp_path / "thing")
    assert path == tmp_path / "thing.fs.mml"
    loaded = read_container(path, kind="fs")
    assert loaded.kind == "fs"
    assert loaded.class_path == f"{Thing.__module__}:Thing"
    assert loaded.manifest["format"] == "modularml"
    assert loaded.manifest["format_version"] == 2
    assert set(loaded.manifest["checksums"]) == set(loaded.manifest["entries"])
    state = loaded.state
    assert state["array"].dtype == np.float32
    assert state["array"].tolist() == np.arange(12).reshape(3, 4).tolist()
    assert state["fortran"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert state["table"].equals(pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
    assert state["nested"]["tuple"] == (1, 2.5, None)
    assert state["nested"]["list"] == [True, "s"]
    assert np.isnan(state["nested"]["nan"])
    assert state["nested"]["inf"] == float("-inf")
    assert state["strings"].dtype == object
    assert state["strings"].tolist() == ["u1", "u2"]
    assert loaded.config == {"label": "thing"}


def test_file_names_follow_the_kind_schema(tmp_path: Path) -> None:
    assert container_path(tmp_path / "a", "fs").name == "a.fs.mml"
    assert container_path(tmp_path / "a.mml", "fs").name == "a.fs.mml"
    assert container_path(tmp_path / "a.fs.mml", "fs").name == "a.fs.mml"
    assert container_path(tmp_path / "run.v2", "mg").name == "run.v2.mg.mml"
    with pytest.raises(InvalidArgumentError, match="file name of a ModelGraph"):
        container_path(tmp_path / "a.mg.mml", "fs")
    with pytest.raises(InvalidArgumentError, match="Unknown file kind"):
        container_path(tmp_path / "a", "zz")


def test_overwrite_rules(tmp_path: Path) -> None:
    path = _write(tmp_path / "t")
    with pytest.raises(FileCollisionError, match="overwrite=True"):
        _write(tmp_path / "t")
    assert isinstance(FileCollisionError("x"), FileExistsError)
    assert _write(tmp_path / "t", overwrite=True) == path


def test_values_that_cannot_be_saved_are_named(tmp_path: Path) -> None:
    with pytest.raises(SerializationError, match=r"state\['f'\] is a builtins.function"):
        write_container(tmp_path / "x", kind="fs", cls=Thing, config={}, state={"f": lambda: 1})
    with pytest.raises(SerializationError, match="object array"):
        write_container(tmp_path / "x", kind="fs", cls=Thing, config={}, state={"o": np.array([{}, 1], dtype=object)})
    with pytest.raises(SerializationError, match="string keys"):
        write_container(tmp_path / "x", kind="fs", cls=Thing, config={1: "a"})
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_a_crash_mid_write_leaves_no_file_under_the_real_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pa.ipc, "new_stream", crash)
    with pytest.raises(OSError, match="disk full"):
        _write(tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


def test_a_crash_mid_overwrite_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "t")
    before = path.read_bytes()
    monkeypatch.setattr(pa.ipc, "new_stream", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path / "t", overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_missing_file_and_bare_names(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No ModularML file"):
        read_container(tmp_path / "nothing.fs.mml")
    with pytest.raises(FileNotFoundError):
        read_container(tmp_path / "nothing.mg.mml", kind="fs")
    _write(tmp_path / "named")
    assert read_container(tmp_path / "named", kind="fs").path == tmp_path / "named.fs.mml"


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_files_raise_serialization_error(tmp_path: Path, keep: float) -> None:
    path = _write(tmp_path / "t")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SerializationError, match=str(path.name)):
        read_container(path)


def _payload(path: Path, name: str) -> tuple[int, int]:
    """Offset and size of an entry's stored bytes, from its local header."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    header = path.read_bytes()[info.header_offset : info.header_offset + 30]
    name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_length + extra_length, info.compress_size


def test_corrupted_payload_is_detected(tmp_path: Path) -> None:
    path = _write(tmp_path / "t")
    data = bytearray(path.read_bytes())
    start, _ = _payload(path, "arrays/0.npy")
    data[start + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SerializationError, match=r"'arrays/0.npy' is damaged.*truncated or corrupt"):
        read_container(path)


def test_every_single_byte_flip_in_the_table_is_detected(tmp_path: Path) -> None:
    path = _write(tmp_path / "t")
    clean = path.read_bytes()
    start, size = _payload(path, "tables/0.arrow")
    for offset in range(start, start + size, 7):
        damaged = bytearray(clean)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        with pytest.raises(SerializationError):
            read_container(path)


def _rewrite(path: Path, replace: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    for name, data in replace.items():
        if data is None:
            entries.pop(name)
        else:
            entries[name] = data
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in seal(entries):  # the checksums recomputed: the crafted entry meets its own check
            archive.writestr(name, data)


def _manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("manifest.json"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: {"manifest.json": None}, "no manifest.json"),
        (lambda m: {"manifest.json": b"{not json"}, "not valid JSON"),
        (lambda m: {"manifest.json": json.dumps({**m, "format": "other"}).encode()}, "written by other software"),
        (lambda m: {"manifest.json": json.dumps({**m, "format_version": 99}).encode()}, "format version 99.*Upgrade"),
        (lambda m: {"manifest.json": json.dumps({**m, "kind": "mg"}).encode()}, r"holds a ModelGraph \('mg'\)"),
        (lambda m: {"tables/0.arrow": None}, "missing"),
        (lambda m: {"tables/0.arrow": b"ARROW1 but not really"}, "not a valid Arrow IPC stream"),
        (lambda m: {"arrays/0.npy": b"\x93NUMPY garbage"}, "not a valid .npy array"),
    ],
)
def test_foreign_or_damaged_containers(tmp_path: Path, change, message: str) -> None:
    path = _write(tmp_path / "t")
    _rewrite(path, change(_manifest(path)))
    with pytest.raises(SerializationError, match=message):
        read_container(path, kind="fs")


def test_files_of_other_formats(tmp_path: Path) -> None:
    text = tmp_path / "notes.fs.mml"
    text.write_text("hello")
    with pytest.raises(SerializationError, match="not a ModularML file"):
        read_container(text)
    npy = tmp_path / "array.fs.mml"
    with open(npy, "wb") as handle:
        np.save(handle, np.arange(3))
    with pytest.raises(SerializationError, match="not a ModularML file"):
        read_container(npy)
    other_zip = tmp_path / "other.fs.mml"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("data.csv", "a,b\n1,2\n")
    with pytest.raises(SerializationError, match=r"no manifest.json"):
        read_container(other_zip)


def test_pickled_arrays_are_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path / "t")
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    _rewrite(path, {"arrays/0.npy": buffer.getvalue()})
    import pickle

    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(SerializationError, match="unpickling"):
        read_container(path)


def test_writes_are_durable_and_leave_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    _write(tmp_path / "t")
    assert synced
    assert [p.name for p in tmp_path.iterdir()] == ["t.fs.mml"]
    assert container_module.FORMAT_VERSION == 2
