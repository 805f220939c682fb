from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.datasets import make_featureset
from modularml.errors import FileCollisionError, NodeCollisionError, SerializationError


@pytest.fixture
def fs() -> FeatureSet:
    fs = make_featureset("cells", n_samples=80, n_points=12, seed=3)
    fs.split_random({"train": 0.75, "test": 0.25}, group_by="cell_id", seed=2)
    fs["train"].split_random({"fit": 0.8, "val": 0.2}, stratify_by="protocol", seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fs.split_by_condition(hot={"temperature": lambda t: t > 30}, protocol_a={"protocol": ["A"]})
    fs.add_split(fs.take([0, 5, 7], label="picked"))
    return fs


def test_save_returns_the_path_actually_written(fs: FeatureSet, tmp_path: Path) -> None:
    path = fs.save(tmp_path / "cells")
    assert path == tmp_path / "cells.fs.mml"
    assert path.is_file()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert names[:3] == ["manifest.json", "config.json", "state.json"]
    assert "tables/0.arrow" in names
    with pytest.raises(FileCollisionError):
        fs.save(path)
    assert fs.save(path, overwrite=True) == path


def test_round_trip_is_bit_for_bit(fs: FeatureSet, tmp_path: Path, fresh_context: ExperimentContext) -> None:
    path = fs.save(tmp_path / "cells")
    with ExperimentContext().activate():
        loaded = FeatureSet.load(path)
        assert loaded.label == "cells"
        assert loaded.collection.table.equals(fs.collection.table, check_metadata=True)
        assert loaded.collection.table.schema.metadata == fs.collection.table.schema.metadata
        assert loaded.get_sample_uuids().tolist() == fs.get_sample_uuids().tolist()
        assert loaded.available_splits == fs.available_splits
        for name in fs.available_splits:
            assert loaded[name].indices.tolist() == fs[name].indices.tolist()
        assert loaded._split_parents == fs._split_parents
        assert [r.split_names for r in loaded.split_records] == [r.split_names for r in fs.split_records]
        assert [r.applied_to for r in loaded.split_records] == [r.applied_to for r in fs.split_records]
        assert loaded.split_records[0].splitter == fs.split_records[0].splitter
        assert loaded.split_records[2].splitter is None  # predicates are not saved; the splits are
        for key in fs.get_all_keys():
            assert np.array_equal(loaded.collection.to_numpy(key), fs.collection.to_numpy(key))


def test_loaded_records_restore_splits_on_a_copy(fs: FeatureSet, tmp_path: Path) -> None:
    path = fs.save(tmp_path / "cells")
    with ExperimentContext().activate():
        loaded = FeatureSet.load(path)
        copy = loaded.copy(label="again", restore_splits=True, register=True)
        for name in fs.available_splits:
            assert copy[name].indices.tolist() == fs[name].indices.tolist()


def test_load_without_overwrite_assigns_a_new_node_id(fs: FeatureSet, tmp_path: Path) -> None:
    path = fs.save(tmp_path / "cells")
    with pytest.raises(NodeCollisionError, match="pass overwrite=True"):
        FeatureSet.load(path)  # label taken under the 'error' policy
    ctx = ExperimentContext.get_active()
    assert ctx.get_node(label="cells") is fs
    with ExperimentContext(registration_policy="overwrite_warn").activate() as other:
        first = FeatureSet.load(path)
        assert first.node_id != fs.node_id
        assert other.get_node(label="cells") is first


def test_load_with_overwrite_replaces_the_registered_node(fs: FeatureSet, tmp_path: Path) -> None:
    path = fs.save(tmp_path / "cells")
    ctx = ExperimentContext.get_active()
    loaded = FeatureSet.load(path, overwrite=True)
    assert loaded.node_id == fs.node_id
    assert ctx.get_node(node_id=fs.node_id) is loaded
    assert ctx.get_node(label="cells") is loaded


def test_damaged_files_leave_the_context_alone(fs: FeatureSet, tmp_path: Path) -> None:
    path = fs.save(tmp_path / "cells")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ctx = ExperimentContext.get_active()
    with pytest.raises(SerializationError, match=r"cells.fs.mml"):
        FeatureSet.load(path, overwrite=True)
    assert ctx.get_node(label="cells") is fs


def test_loading_another_kind_of_file_fails_clearly(tmp_path: Path) -> None:
    from modularml.io import write_container

    path = write_container(tmp_path / "graph", kind="mg", cls=FeatureSet, config={"label": "g"})
    with pytest.raises(SerializationError, match=r"holds a ModelGraph \('mg'\), not a FeatureSet"):
        FeatureSet.load(path)


def test_invalid_state_in_a_well_formed_file(fs: FeatureSet, tmp_path: Path) -> None:
    from modularml.io import write_container

    state = fs.get_state()
    state["splits"] = {"train": np.array([10_000])}
    path = write_container(tmp_path / "bad", kind="fs", cls=FeatureSet, config=fs.get_config(), state=state)
    with pytest.raises(SerializationError, match=r"FeatureSet data cannot be rebuilt.*beyond"):
        FeatureSet.load(path, overwrite=True)


def test_loading_never_unpickles(fs: FeatureSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = fs.save(tmp_path / "cells")
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with ExperimentContext().activate():
        assert len(FeatureSet.load(path, allow_packaged_code=True)) == 80


def test_featureset_without_splits_or_with_empty_columns(tmp_path: Path) -> None:
    small = FeatureSet.from_dict(
        "small", {"x": np.ones((3, 2, 2), dtype=np.float16), "t": [True, False, True]}, "x", "t"
    )
    path = small.save(tmp_path / "small.mml")
    assert path.name == "small.fs.mml"
    with ExperimentContext().activate():
        loaded = mml.FeatureSet.load(path)
        assert loaded.get_features("np").dtype == np.float16
        assert loaded.get_features("np").shape == (3, 2, 2)
        assert loaded.get_targets("np").tolist() == [True, False, True]
        assert loaded.n_splits == 0
