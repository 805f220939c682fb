"""Crafted files must not run code, and every failure to load is a SerializationError naming the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modularml as mml
from modularml.errors import SerializationError
from modularml.plugins.resolver import loading, resolve
from modularml.scalers import Scaler
from modularml.testing.hostile_files import rewrite_member
from modularml_numpy.models import LinearModel

# Names that reach os/subprocess/io through an allowed module's attributes: each must be refused.
ATTRIBUTE_WALKS = [
    "modularml.testing.conformance:subprocess.Popen",
    "modularml.io.atomic:os.system",
    "modularml.io.container:io.FileIO",
]


class Center:
    """A duck-typed scikit-learn-like scaler (learned state restored from plain attributes)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"offset": self.offset}

    def fit(self, X: np.ndarray, y: Any = None) -> Center:
        self.mean_ = X.mean(axis=0) + self.offset
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X - self.mean_

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return X + self.mean_


@pytest.fixture
def sentinel(tmp_path: Path) -> dict[str, Path]:
    """A file that must not appear, and one whose content must not change."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    return {"created": tmp_path / "pwned", "victim": victim}


def _payloads(sentinel: dict[str, Path]) -> list[dict[str, Any]]:
    """Nested-object entries that, if instantiated, create or empty a file."""
    return [
        {"__mml_object__": ATTRIBUTE_WALKS[0], "params": {"args": ["touch", str(sentinel["created"])]}},
        {"__mml_object__": ATTRIBUTE_WALKS[1], "params": {"command": f"touch {sentinel['created']}"}},
        {"__mml_object__": ATTRIBUTE_WALKS[2], "params": {"file": str(sentinel["victim"]), "mode": "w"}},
        {"__mml_object__": "subprocess:Popen", "params": {"args": ["touch", str(sentinel["created"])]}},
    ]


def _untouched(sentinel: dict[str, Path]) -> None:
    assert not sentinel["created"].exists(), "a crafted file ran a command"
    assert sentinel["victim"].read_text() == "keep me", "a crafted file opened a file for writing"


# -- the resolver --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ATTRIBUTE_WALKS)
def test_an_attribute_walk_through_an_allowed_module_is_refused(name: str) -> None:
    with pytest.raises(SerializationError, match="is a module, not a class"):
        resolve(name, what="scaler class")
    with pytest.raises(SerializationError, match="is a module, not a class"):
        resolve(name, what="scaler class", allow_packaged_code=True)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("modularml.io.container:Path", r"not defined there \(it is pathlib:Path\)"),
        ("modularml.data:FeatureSet", "not defined there"),  # a re-export: the class lives in data.featureset
        ("modularml.data.featureset:FeatureSet.__init__", "dunder"),
        ("modularml:__builtins__", "dunder"),
        ("modularml.io.container:read_container", "is a function, not a class"),
        ("modularml.data.featureset:FeatureSet.load", "is a classmethod, not a class"),
        ("modularml.io.container:FORMAT_VERSION", "is a int, not a class"),
        ("modularml.nope:Thing", "cannot be imported"),
        ("modularml.data.featureset:Nope", "is not defined there"),
        ("no_colon_here", "not of the form 'module:QualName'"),
        ("a:b:c", "not a valid import path"),
        ("os.path:join", "Refusing to import 'os.path:join'"),
        ("subprocess:Popen", "Refusing to import 'subprocess:Popen'"),
    ],
)
def test_the_resolver_refuses_what_is_not_a_class_defined_where_its_path_says(name: str, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        resolve(name, what="class")


def test_builtins_are_refused_even_with_packaged_code() -> None:
    for name in ("builtins:eval", "os:system", "posix:system"):
        with pytest.raises(SerializationError, match="not a class"):
            resolve(name, what="class", functions=True, allow_packaged_code=True)


def test_the_resolver_checks_the_kind_before_anything_is_called() -> None:
    assert resolve("modularml.data.featureset:FeatureSet", what="c") is mml.FeatureSet
    with pytest.raises(SerializationError, match=r"FeatureSet, not a subclass of modularml\.models\.base\.BaseModel"):
        resolve("modularml.data.featureset:FeatureSet", what="model class", base=mml.BaseModel)
    with pytest.raises(SerializationError, match="not a subclass"):
        resolve("subprocess:Popen", what="model class", base=mml.BaseModel, allow_packaged_code=True)


def test_registered_names_and_their_paths_resolve() -> None:
    assert resolve("SimpleSampler", what="sampler", kind="samplers") is mml.SimpleSampler
    path = f"{mml.SimpleSampler.__module__}:{mml.SimpleSampler.__qualname__}"
    assert resolve(path, what="sampler", kind="samplers", base=mml.SimpleSampler) is mml.SimpleSampler
    with pytest.raises(SerializationError, match="not registered"):
        resolve("NoSuchSampler", what="sampler", kind="samplers")


def test_functions_need_registration_or_packaged_code() -> None:
    name = "modularml.io.container:read_container"
    with pytest.raises(SerializationError, match="registered through a plugin, or with allow_packaged_code=True"):
        resolve(name, what="loss callable", functions=True)
    from modularml.io.container import read_container

    assert resolve(name, what="loss callable", functions=True, allow_packaged_code=True) is read_container


def test_refusals_name_the_file_and_the_entry(tmp_path: Path) -> None:
    with loading(tmp_path / "x.sc.mml"), pytest.raises(SerializationError) as info:
        resolve("modularml.io.atomic:os.system", what="scaler class", entry="config['scaler']")
    message = str(info.value)
    assert "x.sc.mml" in message
    assert "config['scaler']" in message
    assert "'modularml.io.atomic:os.system'" in message


def test_loading_turns_bare_errors_into_serialization_errors(tmp_path: Path) -> None:
    malformed: dict = {}
    with (
        pytest.raises(SerializationError, match=r"f\.ls\.mml.*its loss cannot be rebuilt: KeyError"),
        loading(tmp_path / "f.ls.mml", what="loss"),
    ):
        malformed["node_id"]
    with pytest.raises(KeyError), loading(what="loss"):  # without a file, errors pass unchanged
        malformed["node_id"]


def test_packaged_code_allowance_is_inherited_by_nested_configs() -> None:
    from modularml.plugins.resolver import packaged_code_allowed

    assert not packaged_code_allowed()
    with loading(allow_packaged_code=True), loading(allow_packaged_code=False):
        assert packaged_code_allowed()
    assert not packaged_code_allowed()


# -- loaders: nothing named by a file runs ----------------------------------------------------------------
def test_scaler_state_cannot_instantiate_a_named_type(tmp_path: Path, sentinel, register_test_scalers) -> None:
    register_test_scalers(Center)
    good = Scaler("Center").fit(np.arange(6.0).reshape(3, 2)).save(tmp_path / "center")
    for index, payload in enumerate(_payloads(sentinel)):
        bad = rewrite_member(
            good, "state.json", lambda s, p=payload: {**s, "helper_": p}, target=tmp_path / f"b{index}.sc.mml"
        )
        with pytest.raises(SerializationError, match=rf"b{index}\.sc\.mml.*helper_"):
            Scaler.load(bad)
        _untouched(sentinel)
    loaded = Scaler.load(good)
    np.testing.assert_array_equal(loaded.scaler.mean_, [2.0, 3.0])


def test_scaler_config_cannot_name_a_walked_class(tmp_path: Path, sentinel, register_test_scalers) -> None:
    register_test_scalers(Center)
    good = Scaler("Center").save(tmp_path / "center")
    for index, name in enumerate(ATTRIBUTE_WALKS):
        bad = rewrite_member(
            good,
            "config.json",
            lambda c, n=name: {"scaler": n, "scaler_kwargs": {"args": ["touch", str(sentinel["created"])]}},
            target=tmp_path / f"c{index}.sc.mml",
        )
        with pytest.raises(SerializationError, match=r"config\['scaler'\].*is a module"):
            Scaler.load(bad)
        _untouched(sentinel)


def test_featureset_scaler_records_cannot_instantiate_a_named_type(
    tmp_path: Path, sentinel, register_test_scalers
) -> None:
    register_test_scalers(Center)
    fs = mml.FeatureSet.from_dict(
        "cells", {"x": np.arange(8.0), "y": np.arange(8.0) * 2}, feature_keys=["x"], target_keys=["y"]
    )
    fs.fit_transform("Center", domain="features")
    good = fs.save(tmp_path / "cells")

    def inject(state: dict, payload: dict) -> dict:
        record = state["scaler_records"][0]
        record["scaler"]["state"]["helper_"] = payload
        return state

    for index, payload in enumerate(_payloads(sentinel)):
        bad = rewrite_member(
            good, "state.json", lambda s, p=payload: inject(s, p), target=tmp_path / f"f{index}.fs.mml"
        )
        with pytest.raises(SerializationError, match=rf"f{index}\.fs\.mml"):
            mml.FeatureSet.load(bad)
        _untouched(sentinel)


@pytest.mark.parametrize("source", ["factory", "callable", "class"])
def test_loss_and_optimizer_files_cannot_name_a_walked_callable(tmp_path: Path, sentinel, source: str) -> None:
    loss = mml.Loss("mse", backend="numpy").save(tmp_path / "loss")
    opt = mml.Optimizer("sgd", backend="numpy").save(tmp_path / "opt")
    for name in ATTRIBUTE_WALKS:
        bad_loss = rewrite_member(loss, "config.json", lambda c, n=name: {**c, "loss": n, "source": source})
        with pytest.raises(SerializationError, match=r"loss\.ls\.mml.*config\['loss'\]"):
            mml.Loss.load(bad_loss)
        if source != "callable":
            bad_opt = rewrite_member(opt, "config.json", lambda c, n=name: {**c, "opt": n, "source": source})
            with pytest.raises(SerializationError, match=r"opt\.op\.mml.*config\['opt'\]"):
                mml.Optimizer.load(bad_opt)
    _untouched(sentinel)


def test_a_module_level_function_of_modularml_is_not_a_loss(tmp_path: Path) -> None:
    """Any function of an allowed distribution is not enough: it must be registered (or packaged code allowed)."""
    path = mml.Loss("mse", backend="numpy").save(tmp_path / "loss")
    rewrite_member(
        path, "config.json", lambda c: {**c, "loss": "modularml.io.atomic:atomic_write", "source": "callable"}
    )
    with pytest.raises(SerializationError, match="registered through a plugin"):
        mml.Loss.load(path)


def test_a_model_file_cannot_name_a_class_that_is_not_a_model(tmp_path: Path) -> None:
    path = LinearModel(input_shape=2, output_shape=1).save(tmp_path / "m")
    for name in [*ATTRIBUTE_WALKS, "modularml.data.featureset:FeatureSet"]:
        rewrite_member(path, "manifest.json", lambda m, n=name: {**m, "class": n})
        with pytest.raises(SerializationError, match=r"m\.md\.mml"):
            mml.BaseModel.load(path)


# -- manifests: every loader checks the class ------------------------------------------------------------
def _saved_files(tmp_path: Path) -> dict[str, Path]:
    fs = mml.FeatureSet.from_dict(
        "cells", {"x": np.arange(4.0), "y": np.arange(4.0)}, feature_keys=["x"], target_keys=["y"]
    )
    node = mml.ModelNode("m", LinearModel(output_shape=(1,)), fs.reference(features=["x"]))
    graph = mml.ModelGraph([node], optimizer=mml.Optimizer("sgd", backend="numpy"))
    graph.build()
    return {
        "fs": fs.save(tmp_path / "f"),
        "sc": Scaler("PerSampleMinMaxScaler").save(tmp_path / "s"),
        "ls": mml.Loss("mse", backend="numpy").save(tmp_path / "l"),
        "op": mml.Optimizer("sgd", backend="numpy").save(tmp_path / "o"),
        "md": LinearModel(input_shape=2, output_shape=1).save(tmp_path / "m"),
        "mg": graph.save(tmp_path / "g"),
        "sm": mml.SimpleSampler(batch_size=2).save(tmp_path / "p"),
        "ckpt": graph.save_checkpoint(tmp_path / "c"),
    }


def test_every_loader_checks_the_manifest_class(tmp_path: Path) -> None:
    files = _saved_files(tmp_path)
    graph = mml.ExperimentContext.get_active().model_graph
    loaders = {
        "fs": mml.FeatureSet.load,
        "sc": Scaler.load,
        "ls": mml.Loss.load,
        "op": mml.Optimizer.load,
        "md": mml.BaseModel.load,
        "mg": mml.ModelGraph.load,
        "sm": mml.SimpleSampler.load,
        "ckpt": graph.restore_checkpoint,
    }
    for kind, path in files.items():
        other = "modularml.losses.loss:Loss" if kind != "ls" else "modularml.scalers.scaler:Scaler"
        rewrite_member(path, "manifest.json", lambda m, o=other: {**m, "class": o})
        with pytest.raises(SerializationError, match=re.escape(path.name)):
            loaders[kind](path)


# -- malformed content is a SerializationError, and a failing restore changes nothing --------------------
def test_a_graph_node_without_node_id_is_a_serialization_error(tmp_path: Path) -> None:
    files = _saved_files(tmp_path)
    rewrite_member(
        files["mg"],
        "config.json",
        lambda c: {**c, "nodes": [{k: v for k, v in c["nodes"][0].items() if k != "node_id"}]},
    )
    with pytest.raises(SerializationError, match=r"g\.mg\.mml.*node_id"):
        mml.ModelGraph.load(files["mg"])


def test_a_failing_restore_checkpoint_leaves_the_graph_as_it_was(tmp_path: Path) -> None:
    files = _saved_files(tmp_path)
    graph = mml.ExperimentContext.get_active().model_graph
    node_id = next(iter(graph.nodes))

    def damage(state: dict) -> dict:
        weights = state["nodes"][node_id]["model"]["weights"]
        for key in weights:  # new weights that would load...
            weights[key] = {"__mml_array__": weights[key]["__mml_array__"]}
        state["optimizer"] = {"is_built": True, "backend_state": {"bogus": 1}}  # ...and an optimizer state that cannot
        return state

    model = graph.nodes[node_id].model
    before = {k: np.array(v) for k, v in model.get_weights().items()}
    for key, value in model.get_weights().items():  # make the saved weights differ from the live ones
        model.set_weights({**model.get_weights(), key: np.asarray(value) + 1.0})
    live = {k: np.array(v) for k, v in model.get_weights().items()}
    assert any(not np.array_equal(live[k], before[k]) for k in live)
    rewrite_member(files["ckpt"], "state.json", damage)
    with pytest.raises(SerializationError, match=r"c\.ckpt\.mml"):
        graph.restore_checkpoint(files["ckpt"])
    for key, value in model.get_weights().items():
        np.testing.assert_array_equal(value, live[key])
