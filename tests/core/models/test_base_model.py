"""BaseModel: backend normalisation, init-arg caching, config, state and file round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modularml as mml
from modularml.errors import BackendNotSupportedError, FileCollisionError, InvalidArgumentError, SerializationError
from modularml.models import BaseModel
from modularml_numpy.models import LinearModel


class ScaleModel(BaseModel):
    """The smallest complete model: ``y = x * scale``, one weight per input element."""

    def __init__(self, backend: str = "numpy", *, width: int | None = None, label: str = "scale") -> None:
        super().__init__(backend, width=width, label=label)
        self._width = width
        self.scale: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return None if self._width is None else (self._width,)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        return self.input_shape

    def build(self, input_shape=None, output_shape=None, *, force: bool = False) -> None:
        if self._built and not force:
            return
        if input_shape is not None:
            self._width = int(input_shape[0])
        self.scale = np.ones(self._width, dtype="float32")
        self._built = True

    def forward(self, x: Any, **kwargs: Any) -> Any:
        return x * self.scale

    def get_weights(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale.copy()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        self.scale = np.asarray(weights["scale"], dtype="float32").copy()


def test_base_model_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        BaseModel("numpy")

    class Partial(BaseModel):
        def build(self, input_shape=None, output_shape=None, *, force=False):
            pass

    with pytest.raises(TypeError, match="get_weights"):
        Partial("numpy")


def test_backend_is_normalised() -> None:
    model = ScaleModel("NP")
    assert model.backend == "numpy"
    assert isinstance(model.backend, mml.Backend)
    assert model.backend is mml.Backend(model.backend)
    with pytest.raises(BackendNotSupportedError, match="no_such_backend"):
        ScaleModel("no_such_backend")


def test_init_args_are_cached_and_copied() -> None:
    model = ScaleModel(width=3, label="a")
    args = model.get_init_args()
    assert args == {"width": 3, "label": "a"}
    args["width"] = 99
    assert model.get_init_args()["width"] == 3


def test_config_round_trip_on_the_subclass() -> None:
    model = ScaleModel(width=4, label="b")
    config = model.get_config()
    assert config == {
        "class": f"{ScaleModel.__module__}:ScaleModel",
        "backend": "numpy",
        "init_args": {"width": 4, "label": "b"},
        "is_built": False,
        "input_shape": (4,),
        "output_shape": (4,),
    }
    rebuilt = ScaleModel.from_config(config)
    assert type(rebuilt) is ScaleModel
    assert rebuilt.get_config() == config
    assert not rebuilt.is_built


def test_from_config_on_base_model_imports_only_plugin_classes() -> None:
    model = LinearModel(input_shape=3, output_shape=(2,), bias=False)
    rebuilt = BaseModel.from_config(model.get_config())
    assert type(rebuilt) is LinearModel
    assert rebuilt.get_init_args() == {"input_shape": 3, "output_shape": (2,), "bias": False, "dtype": "float32"}
    foreign = {**model.get_config(), "class": "collections:OrderedDict"}
    with pytest.raises(SerializationError, match="Refusing"):
        BaseModel.from_config(foreign)
    with pytest.raises(InvalidArgumentError, match="get_config"):
        BaseModel.from_config({"init_args": "nope"})


def test_from_config_with_packaged_code(user_module) -> None:
    name = user_module(
        "user_models_cfg",
        """
        from modularml_numpy.models import LinearModel

        class MyLinear(LinearModel):
            pass
        """,
    )
    config = {**LinearModel(input_shape=2, output_shape=1).get_config(), "class": f"{name}:MyLinear"}
    with pytest.raises(SerializationError, match="allow_packaged_code=True"):
        BaseModel.from_config(config)
    assert type(BaseModel.from_config(config, allow_packaged_code=True)).__name__ == "MyLinear"
    with pytest.raises(SerializationError, match=r"class modularml\.losses\.loss\.Loss, not a subclass of .*BaseModel"):
        BaseModel.from_config({**config, "class": "modularml.losses.loss:Loss"})


def test_state_round_trip_builds_a_fresh_model(numpy_backend) -> None:
    model = LinearModel(output_shape=2)
    assert model.get_state() == {"is_built": False, "input_shape": None, "output_shape": (2,), "weights": {}}
    model.build(input_shape=(3,))
    model.set_weights({"weight": np.arange(6, dtype="float32").reshape(3, 2), "bias": np.ones(2)})
    state = model.get_state()
    fresh = LinearModel.from_config(model.get_config())
    assert not fresh.is_built
    fresh.set_state(state)
    assert fresh.is_built
    assert fresh.input_shape == (3,)
    for key, value in model.get_weights().items():
        np.testing.assert_array_equal(fresh.get_weights()[key], value)
    x = numpy_backend.from_numpy(np.ones((5, 3), dtype="float32"))
    np.testing.assert_array_equal(fresh(x).data, model(x).data)


def test_set_state_validates_and_skips_unbuilt_states() -> None:
    model = LinearModel(output_shape=1)
    model.set_state({"is_built": False, "weights": {}})
    assert not model.is_built
    with pytest.raises(InvalidArgumentError, match="get_state"):
        model.set_state({"weight": np.zeros(3)})


def test_save_and_load_round_trip(tmp_path: Path, numpy_backend) -> None:
    model = LinearModel(output_shape=(1,))
    model.build(input_shape=(2, 2))
    path = model.save(tmp_path / "linear")
    assert path.name == "linear.md.mml"
    loaded = BaseModel.load(path)
    assert type(loaded) is LinearModel
    assert loaded.is_built
    assert (loaded.input_shape, loaded.output_shape) == ((2, 2), (1,))
    for key, value in model.get_weights().items():
        np.testing.assert_array_equal(loaded.get_weights()[key], value)
    assert type(LinearModel.load(tmp_path / "linear")) is LinearModel
    with pytest.raises(FileCollisionError, match="overwrite=True"):
        model.save(path)
    assert model.save(path, overwrite=True) == path


def test_unbuilt_model_round_trips_unbuilt(tmp_path: Path) -> None:
    path = LinearModel(output_shape=3).save(tmp_path / "fresh")
    loaded = BaseModel.load(path)
    assert not loaded.is_built
    assert loaded.output_shape == (3,)


def test_load_refuses_the_wrong_class_and_foreign_code(tmp_path: Path, user_module) -> None:
    path = LinearModel(input_shape=2, output_shape=1).save(tmp_path / "m")
    with pytest.raises(SerializationError, match=r"LinearModel, not a subclass of .*ScaleModel"):
        ScaleModel.load(path)
    name = user_module(
        "user_models_file",
        """
        from modularml_numpy.models import LinearModel

        class MyLinear(LinearModel):
            pass
        """,
    )
    import importlib

    mine = importlib.import_module(name).MyLinear(input_shape=2, output_shape=1)
    mine.build()
    saved = mine.save(tmp_path / "mine")
    with pytest.raises(SerializationError, match="Refusing"):
        BaseModel.load(saved)
    assert type(BaseModel.load(saved, allow_packaged_code=True)).__name__ == "MyLinear"


def test_load_reports_damaged_state(tmp_path: Path) -> None:
    from modularml.io import write_container

    model = LinearModel(input_shape=2, output_shape=1)
    model.build()
    state = {**model.get_state(), "weights": {"weight": np.zeros((5, 1), dtype="float32"), "bias": np.zeros(1)}}
    path = write_container(tmp_path / "bad", kind="md", cls=LinearModel, config=model.get_config(), state=state)
    with pytest.raises(SerializationError, match=r"bad\.md\.mml.*cannot be rebuilt.*shape"):
        BaseModel.load(path)


def test_forward_must_be_implemented_and_repr() -> None:
    class NoForward(ScaleModel):
        forward = BaseModel.forward

    with pytest.raises(NotImplementedError, match="NoForward does not implement forward"):
        NoForward(width=2).forward(np.zeros(2))
    model = LinearModel(input_shape=2, output_shape=1)
    assert repr(model) == "LinearModel(backend='numpy', built=False)"
    model.build()
    assert repr(model) == "LinearModel(backend='numpy', built=True, input_shape=(2,), output_shape=(1,))"


def test_exported_from_the_top_level() -> None:
    assert mml.BaseModel is BaseModel
    assert "BaseModel" in mml.__all__
