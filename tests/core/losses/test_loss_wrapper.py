"""Loss: definitions by name, class, callable and factory; lazy builds; config and file round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.backends import NumpyTensorOps
from modularml.errors import BackendNotSupportedError, LossError, NotRegisteredError, SerializationError
from modularml.losses import Loss
from modularml.plugins import PluginManager, hookimpl
from modularml_numpy.autograd import Tensor, as_tensor
from modularml_numpy.losses import MAELoss, MSELoss

OUTPUTS = np.array([[1.0, 3.0], [0.0, 0.0]], dtype="float32")
TARGETS = np.array([[0.0, 1.0], [1.0, -1.0]], dtype="float32")


def squared_error(outputs, targets, scale: float = 1.0):
    """A user's loss function (module level, so it has an import path)."""
    return (as_tensor(outputs) - targets).square().mean(axis=1) * scale


def test_by_name_is_lazy_and_per_sample() -> None:
    loss = Loss("mse", backend="numpy")
    assert (loss.name, loss.cls, loss.fn, loss.reduction) == ("mse", MSELoss, None, "none")
    assert loss.backend == "numpy"
    assert not loss.is_built
    loss.build()
    assert loss.is_built
    result = loss(OUTPUTS, TARGETS)
    assert isinstance(result, Tensor)
    np.testing.assert_allclose(result.data, [2.5, 1.0])


@pytest.mark.parametrize("name", ["MSE", "MSELoss", "mse_loss", "Mse"])
def test_names_match_leniently(name: str) -> None:
    loss = Loss(name, backend="np")
    assert loss.cls is MSELoss
    assert loss.name == name.lower()
    assert loss.backend == "numpy"


def test_unknown_name_lists_the_options() -> None:
    with pytest.raises(NotRegisteredError, match=r"'huber'.*'numpy'.*\['mae', 'mse'\]"):
        Loss("huber", backend="numpy")


def test_definition_errors() -> None:
    with pytest.raises(LossError, match=r"Loss\('mse'\) names a loss.*backend=") as info:
        Loss("mse")
    assert isinstance(info.value, ValueError)
    with pytest.raises(LossError, match="not both"):
        Loss("mse", backend="numpy", factory=MSELoss)
    with pytest.raises(LossError, match="needs a loss"):
        Loss()
    with pytest.raises(LossError, match="name, a class or a callable"):
        Loss(3)
    with pytest.raises(LossError, match=r"factory.*needs backend="):
        Loss(factory=MSELoss)
    with pytest.raises(LossError, match="loss_kwargs"):
        Loss("mse", backend="numpy", loss_kwargs=[1])


def test_class_infers_its_backend() -> None:
    loss = Loss(MAELoss)
    assert loss.backend == "numpy"
    assert loss.name == "maeloss"
    np.testing.assert_allclose(loss(OUTPUTS, TARGETS).data, [1.5, 1.0])

    class Foreign:
        pass

    with pytest.raises(LossError, match=r"Cannot infer the backend.*backend="):
        Loss(Foreign)


def test_plain_callable_needs_no_backend() -> None:
    loss = Loss(squared_error, loss_kwargs={"scale": 2.0})
    with pytest.raises(LossError, match="no backend yet"):
        _ = loss.backend
    np.testing.assert_allclose(loss(OUTPUTS, TARGETS).data, [5.0, 2.0])
    assert loss.allowed_keywords == ["outputs", "targets", "scale"]


def test_callable_with_a_backend_goes_through_it() -> None:
    loss = Loss(squared_error, backend="numpy")
    loss.build(scale=3.0)  # build kwargs are for this build only
    np.testing.assert_allclose(loss(OUTPUTS, TARGETS).data, [7.5, 3.0])
    assert loss.kwargs == {}


def test_factory_receives_the_kwargs() -> None:
    loss = Loss(factory=MSELoss, backend="numpy", loss_kwargs={"reduction": "mean"})
    np.testing.assert_allclose(loss(OUTPUTS, TARGETS).data, 1.75)
    broken = Loss(factory=lambda: 42, backend="numpy")
    with pytest.raises(LossError, match="returned 42, which is not callable"):
        broken.build()


def test_reduction_is_forwarded() -> None:
    loss = Loss("mae", backend="numpy", reduction="sum")
    np.testing.assert_allclose(loss(OUTPUTS, TARGETS).data, 2.5)


def test_build_rules() -> None:
    loss = Loss("mse", backend="numpy")
    with pytest.raises(LossError, match="not built yet") as info:
        _ = loss.allowed_keywords
    assert isinstance(info.value, RuntimeError)
    loss.build()
    assert loss.allowed_keywords == ["outputs", "targets"]
    with pytest.raises(LossError, match="already built; pass force_rebuild=True"):
        loss.build()
    loss.build(force_rebuild=True, reduction="mean")
    assert loss(OUTPUTS, TARGETS).size == 1
    with pytest.raises(LossError, match="belongs to backend 'numpy', not 'torch'"):
        loss.build(backend="torch", force_rebuild=True)
    unbound = Loss(squared_error)
    unbound.build(backend="numpy")
    assert unbound.backend == "numpy"


def test_backend_that_does_not_train(manager: PluginManager) -> None:
    class PlainBackend(NumpyTensorOps):
        name = "plainnp"

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("plainnp", PlainBackend)

    manager.register(Plugin(), name="plain-plugin")
    with pytest.raises(BackendNotSupportedError, match="'plainnp' backend does not train"):
        Loss("mse", backend="plainnp")


# -- config and files ---------------------------------------------------------------------------
def test_config_round_trips() -> None:
    by_name = Loss("MSELoss", backend="numpy", loss_kwargs={}, reduction="mean")
    config = by_name.get_config()
    assert config == {"loss": "MSELoss", "source": "name", "loss_kwargs": {}, "backend": "numpy", "reduction": "mean"}
    assert Loss.from_config(config).get_config() == config
    by_class = Loss(MAELoss).get_config()
    assert (by_class["loss"], by_class["source"]) == ("MAELoss", "name"), "a backend class is recorded by name"
    by_factory = Loss(factory=MSELoss, backend="numpy").get_config()
    assert (by_factory["loss"], by_factory["source"]) == ("modularml_numpy.losses:MSELoss", "factory")
    assert Loss.from_config(by_factory).factory is MSELoss


def test_config_of_a_lambda_works_in_memory_only(tmp_path: Path) -> None:
    loss = Loss(lambda outputs, targets: (as_tensor(outputs) - targets).abs(), backend="numpy")
    config = loss.get_config()
    assert callable(config["loss"])
    np.testing.assert_allclose(Loss.from_config(config)(OUTPUTS, TARGETS).data, np.abs(OUTPUTS - TARGETS))
    with pytest.raises(SerializationError, match="lambda or local function has no import path"):
        loss.save(tmp_path / "lam")


def test_user_functions_need_allow_packaged_code(user_module, tmp_path: Path) -> None:
    import importlib

    name = user_module(
        "user_losses",
        """
        from modularml_numpy.autograd import as_tensor

        def cube_error(outputs, targets):
            return ((as_tensor(outputs) - targets) ** 3).mean(axis=1)
        """,
    )
    loss = Loss(importlib.import_module(name).cube_error, backend="numpy")
    assert loss.get_config()["loss"] == "user_losses:cube_error"
    with pytest.raises(SerializationError, match="allow_packaged_code=True"):
        Loss.from_config(loss.get_config())
    path = loss.save(tmp_path / "cube")
    with pytest.raises(SerializationError, match="Refusing"):
        Loss.load(path)
    loaded = Loss.load(path, allow_packaged_code=True)
    np.testing.assert_allclose(loaded(OUTPUTS, TARGETS).data, ((OUTPUTS - TARGETS) ** 3).mean(axis=1))


def test_save_and_load(tmp_path: Path) -> None:
    loss = Loss("mae", backend="numpy", loss_kwargs={}, reduction="mean")
    path = loss.save(tmp_path / "criterion")
    assert path.name == "criterion.ls.mml"
    loaded = Loss.load(tmp_path / "criterion")
    assert loaded.get_config() == loss.get_config()
    assert not loaded.is_built
    np.testing.assert_allclose(loaded(OUTPUTS, TARGETS).data, 1.25)
    optimizer_file = mml.Optimizer("sgd", backend="numpy").save(tmp_path / "opt")
    with pytest.raises(SerializationError, match="not a Loss"):
        Loss.load(optimizer_file)


def test_load_reports_a_bad_config(tmp_path: Path) -> None:
    from modularml.io import write_container

    path = write_container(tmp_path / "bad", kind="ls", cls=Loss, config={"loss": "mse", "source": "name"})
    with pytest.raises(SerializationError, match=r"bad\.ls\.mml.*cannot be rebuilt.*backend="):
        Loss.load(path)


def test_repr_and_export() -> None:
    assert repr(Loss("mse", backend="numpy")) == "Loss('mse', backend='numpy', reduction='none', built=False)"
    assert "factory=modularml_numpy.losses:MSELoss" in repr(Loss(factory=MSELoss, backend="numpy"))
    assert mml.Loss is Loss
