"""Fuzzing every loader with a bounded, seeded corpus of damaged and crafted files.

For each file kind, a good file is saved and :func:`~modularml.testing.hostile_files.damaged_variants`
derives truncations, bit flips, dropped/duplicated/swapped members and crafted JSON values (hostile
import paths, malformed tags, wrong types) from it. Each variant must either raise a
``SerializationError`` that names the file, or load: damaged bytes to exactly what the good file
loads to, a crafted value to whatever valid object it describes. No variant may have a side effect:
the sentinel file its payloads would create stays absent, and a failed load registers nothing in
the active ExperimentContext. About 350 variants per kind run in a
second or two.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import modularml as mml
from modularml.context import ExperimentContext
from modularml.errors import SerializationError
from modularml.scalers import Scaler
from modularml.testing.hostile_files import damaged_variants
from modularml_numpy.models import LinearModel

KINDS = ["fs", "sc", "ls", "op", "md", "mg", "sm", "ckpt"]


def _same(a: Any, b: Any) -> bool:
    """Deep equality of configs and states (numpy arrays by value and dtype, Arrow tables by content)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a_arr, b_arr = np.asarray(a), np.asarray(b)
        if a_arr.dtype != b_arr.dtype or a_arr.shape != b_arr.shape:
            return False
        return bool(np.array_equal(a_arr, b_arr, equal_nan=a_arr.dtype.kind in "fc"))
    if isinstance(a, pa.Table) or isinstance(b, pa.Table):
        return isinstance(a, pa.Table) and isinstance(b, pa.Table) and a.equals(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _snapshot(obj: Any) -> tuple[Any, Any]:
    state = obj.get_state() if hasattr(obj, "get_state") else None
    config = obj.get_config()
    if isinstance(config, dict):  # node ids are fresh when a graph is loaded beside the original
        config = {k: v for k, v in config.items() if k != "node_id"}
    return config, state


def _good_files(folder: Path) -> tuple[dict[str, Path], Any]:
    fs = mml.FeatureSet.from_dict(
        "cells",
        {"x": np.linspace(0.0, 1.0, 12), "y": np.linspace(1.0, 2.0, 12), "cell": ["a", "b", "c"] * 4},
        feature_keys=["x"],
        target_keys=["y"],
        tag_keys=["cell"],
    )
    fs.split_random({"train": 0.75, "val": 0.25}, seed=0)
    fs.fit_transform("PerSampleMinMaxScaler", domain="features")
    node = mml.ModelNode("m", LinearModel(output_shape=(1,)), fs.reference(features=["x"]))
    graph = mml.ModelGraph([node], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 0.1}, backend="numpy"))
    graph.build()
    files = {
        "fs": fs.save(folder / "data"),
        "sc": Scaler("PerSampleMinMaxScaler", scaler_kwargs={"feature_range": (-1, 1)})
        .fit(np.arange(6.0).reshape(3, 2))
        .save(folder / "scaler"),
        "ls": mml.Loss("mae", backend="numpy", reduction="mean").save(folder / "loss"),
        "op": mml.Optimizer("sgd", opt_kwargs={"lr": 0.05}, backend="numpy").save(folder / "opt"),
        "md": LinearModel(input_shape=2, output_shape=1).save(folder / "model"),
        "mg": graph.save(folder / "graph"),
        "sm": mml.SimpleSampler(batch_size=3, shuffle=True, seed=1).save(folder / "sampler"),
        "ckpt": graph.save_checkpoint(folder / "step", meta={"epoch": 1}),
    }
    return files, graph


def _loader(kind: str, graph: Any) -> Callable[[Path], Any]:
    return {
        "fs": lambda p: mml.FeatureSet.load(p),
        "sc": Scaler.load,
        "ls": mml.Loss.load,
        "op": mml.Optimizer.load,
        "md": mml.BaseModel.load,
        "mg": lambda p: mml.ModelGraph.load(p),
        "sm": mml.SimpleSampler.load,
        "ckpt": lambda p: graph.restore_checkpoint(p),
    }[kind]


def _fuzz(kind: str, tmp_path: Path, count: int) -> None:
    files, graph = _good_files(tmp_path)
    load = _loader(kind, graph)

    def target_context() -> ExperimentContext:
        """Where a variant is loaded: a context of its own (holding the FeatureSet a graph reads)."""
        ctx = ExperimentContext(registration_policy="error")
        if kind == "mg":
            with ctx.activate():
                mml.FeatureSet.load(files["fs"], overwrite=True)
        return ctx

    if kind == "ckpt":
        expected = _snapshot(graph)
    else:
        with target_context().activate():  # the good load, for comparison
            expected = _snapshot(load(files[kind]))
    sentinel = tmp_path / "SENTINEL"
    refused: list[str] = []
    for label, data in damaged_variants(files[kind], seed=KINDS.index(kind), count=count, sentinel=sentinel):
        bad = tmp_path / f"variant.{kind}.mml"
        bad.write_bytes(data)
        ctx = target_context()
        nodes_before = set(ctx.get_state()["nodes"])
        graph_before = graph.get_state() if kind == "ckpt" else None
        error: Exception | None = None
        try:
            with ctx.activate():
                loaded = load(bad)
                got = _snapshot(graph if kind == "ckpt" else loaded)
        except Exception as exc:  # the point of the test: only a SerializationError may come out
            error = exc
        assert not sentinel.exists(), f"{kind} {label}: a crafted file ran a command"
        if error is not None:
            assert isinstance(error, SerializationError), f"{kind} {label}: {type(error).__name__} escaped: {error}"
            assert bad.name in str(error), f"{kind} {label}: the error does not name the file: {error}"
            assert set(ctx.get_state()["nodes"]) == nodes_before, f"{kind} {label}: a failed load registered nodes"
            if kind == "ckpt":
                assert _same(graph.get_state(), graph_before), f"{kind} {label}: a failed restore changed the graph"
            refused.append(label)
        elif not label.startswith("crafted value"):  # damaged bytes: either refused, or the very same object
            assert _same(got, expected), f"{kind} {label}: loaded, but not to what the good file holds"
        # (a crafted value may be another valid file: it loads, to something else, and runs nothing)
        if kind == "ckpt":
            graph.set_state(expected[1])
    assert len(refused) > count // 3, f"only {len(refused)} variants refused; the corpus is too harmless"


@pytest.mark.parametrize("kind", KINDS)
def test_every_loader_refuses_or_reproduces_a_damaged_file(kind: str, tmp_path: Path) -> None:
    _fuzz(kind, tmp_path, count=300)
