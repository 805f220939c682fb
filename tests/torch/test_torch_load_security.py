"""PyTorch files: a model class named by a file is an nn.Module class, resolved before anything is called."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from modularml.errors import SerializationError
from modularml.models import BaseModel
from modularml.testing.hostile_files import rewrite_member
from modularml_torch.models import TorchModelWrapper


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("modularml.testing.conformance:subprocess.Popen", "is a module"),
        ("modularml.io.atomic:os.system", "is a module"),
        ("modularml.io.container:io.FileIO", "is a module"),
        ("torch.serialization:save", "registered through a plugin"),  # a torch function, not a module class
        ("torch.hub:load", "registered through a plugin"),
        ("modularml.data.featureset:FeatureSet", "not a subclass of torch.nn.modules.module.Module"),
        ("torch.nn:Linear", "not defined there"),  # torch.nn re-exports it from torch.nn.modules.linear
    ],
)
def test_model_class_of_a_file_is_checked_before_it_is_called(tmp_path: Path, name: str, message: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    good = TorchModelWrapper(model_class=nn.Linear, model_kwargs={"in_features": 2, "out_features": 1})
    path = good.save(tmp_path / "linear")

    def change(config: dict) -> dict:
        config["init_args"]["model_class"] = name
        config["init_args"]["model_kwargs"] = {"file": str(victim), "mode": "w", "args": ["touch", str(tmp_path / "x")]}
        return config

    rewrite_member(path, "config.json", change)
    with pytest.raises(SerializationError, match=rf"linear\.md\.mml.*model_class.*{message}"):
        BaseModel.load(path)
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "x").exists()


def test_a_torch_module_class_defined_where_its_path_says_loads(tmp_path: Path) -> None:
    path = TorchModelWrapper(model_class=nn.Linear, model_kwargs={"in_features": 2, "out_features": 1}).save(
        tmp_path / "linear"
    )
    loaded = BaseModel.load(path)
    assert isinstance(loaded, TorchModelWrapper)
