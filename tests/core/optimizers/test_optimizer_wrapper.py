"""Optimizer: definitions, lazy builds over parameters, pending state, steps, config and files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.backends import NumpyTensorOps
from modularml.errors import (
    BackendNotSupportedError,
    InvalidArgumentError,
    InvalidTypeError,
    NotRegisteredError,
    OptimizerNotSetError,
    SerializationError,
)
from modularml.optimizers import Optimizer
from modularml.plugins import PluginManager, hookimpl
from modularml_numpy.autograd import Tensor
from modularml_numpy.models import LinearModel
from modularml_numpy.optimizers import SGD, Adam


def momentum_sgd(params, lr=0.1):
    """A module-level factory: ``factory(parameters, **opt_kwargs)``."""
    return SGD(params, lr=lr, momentum=0.9)


def _model(numpy_backend) -> LinearModel:
    model = LinearModel(input_shape=3, output_shape=1)
    model.build()
    return model


def _train(numpy_backend, model: LinearModel, optimizer: Optimizer, steps: int = 3) -> None:
    rng = np.random.default_rng(5)
    x = numpy_backend.from_numpy(rng.standard_normal((16, 3)).astype("float32"))
    y = numpy_backend.from_numpy(rng.standard_normal((16, 1)).astype("float32"))
    loss = mml.Loss("mse", backend="numpy")
    for _ in range(steps):
        with numpy_backend.gradient_scope() as scope:
            value = numpy_backend.mean(loss(model(x), y))
        numpy_backend.apply_gradients(value, optimizer.instance, optimizer.parameters, scope)


def test_by_name_builds_lazily(numpy_backend) -> None:
    opt = Optimizer("Adam", opt_kwargs={"lr": 0.01}, backend="numpy")
    assert (opt.name, opt.cls, opt.kwargs, opt.backend) == ("adam", Adam, {"lr": 0.01}, "numpy")
    assert not opt.is_built
    assert opt.instance is None
    model = _model(numpy_backend)
    opt.build(parameters=iter(numpy_backend.model_parameters(model)))
    assert opt.is_built
    assert isinstance(opt.instance, Adam)
    assert opt.parameters == [model.weight, model.bias]
    assert opt.instance.lr == 0.01


def test_definition_errors() -> None:
    with pytest.raises(InvalidArgumentError, match=r"Optimizer\('sgd'\) names an optimizer.*backend="):
        Optimizer("sgd")
    with pytest.raises(InvalidArgumentError, match="not both"):
        Optimizer("sgd", factory=momentum_sgd, backend="numpy")
    with pytest.raises(InvalidArgumentError, match="needs an optimizer"):
        Optimizer()
    with pytest.raises(InvalidTypeError, match=r"name or class.*factory="):
        Optimizer(momentum_sgd, backend="numpy")
    with pytest.raises(InvalidTypeError, match="opt_kwargs"):
        Optimizer("sgd", backend="numpy", opt_kwargs=[("lr", 1)])
    with pytest.raises(InvalidArgumentError, match="from_factory"):
        Optimizer(factory=momentum_sgd)
    with pytest.raises(NotRegisteredError, match=r"'rmsprop'.*\['adam', 'sgd'\]"):
        Optimizer("rmsprop", backend="numpy")

    class Foreign:
        pass

    with pytest.raises(InvalidArgumentError, match="Cannot infer the backend"):
        Optimizer(Foreign)


def test_class_infers_its_backend() -> None:
    opt = Optimizer(SGD, opt_kwargs={"lr": 0.5})
    assert opt.backend == "numpy"
    assert opt.name == "sgd"


def test_factory(numpy_backend) -> None:
    opt = Optimizer.from_factory(momentum_sgd, backend="numpy")
    assert opt.factory is momentum_sgd
    model = _model(numpy_backend)
    opt.build(parameters=numpy_backend.model_parameters(model))
    assert isinstance(opt.instance, SGD)
    assert opt.instance.momentum == 0.9


def test_step_before_build_and_rebuild_rules(numpy_backend) -> None:
    opt = Optimizer("sgd", opt_kwargs={"lr": 1.0}, backend="numpy")
    with pytest.raises(OptimizerNotSetError, match=r"not built yet; call build\(parameters=...\) before step"):
        opt.step()
    with pytest.raises(InvalidArgumentError, match="parameters="):
        opt.build()
    assert not opt.is_built
    with pytest.raises(InvalidArgumentError, match="belongs to backend 'numpy', not 'torch'"):
        opt.build(parameters=[], backend="torch")
    model = _model(numpy_backend)
    opt.build(parameters=numpy_backend.model_parameters(model))
    with pytest.raises(OptimizerNotSetError, match="already built; pass force_rebuild=True"):
        opt.build(parameters=numpy_backend.model_parameters(model))
    first = opt.instance
    opt.build(force_rebuild=True)  # reuses the parameters
    assert opt.instance is not first
    assert opt.parameters == [model.weight, model.bias]


def test_step_uses_the_gradients_on_the_parameters(numpy_backend) -> None:
    param = Tensor(np.ones(2, dtype="float32"), requires_grad=True)
    opt = Optimizer("sgd", opt_kwargs={"lr": 0.5}, backend="numpy")
    opt.build(parameters=[param])
    (param * param).sum().backward()
    opt.step()
    np.testing.assert_allclose(param.data, [0.0, 0.0])
    opt.step(grads=[np.ones(2)])
    np.testing.assert_allclose(param.data, [-0.5, -0.5])


def test_pending_state_is_applied_after_build(numpy_backend) -> None:
    model = _model(numpy_backend)
    trained = Optimizer("adam", opt_kwargs={"lr": 0.01}, backend="numpy")
    trained.build(parameters=numpy_backend.model_parameters(model))
    _train(numpy_backend, model, trained)
    state = trained.get_state()
    assert state["is_built"] is True
    assert state["backend_state"]["step"] == 3

    fresh = Optimizer("adam", opt_kwargs={"lr": 0.01}, backend="numpy")
    assert fresh.get_state() == {"is_built": False, "backend_state": None}
    fresh.set_state(state)
    assert fresh._pending_state is not None
    assert fresh.get_state()["backend_state"]["step"] == 3, "an unbuilt optimizer reports its pending state"
    twin = LinearModel.from_config(model.get_config())
    twin.set_state(model.get_state())
    fresh.build(parameters=numpy_backend.model_parameters(twin))
    assert fresh._pending_state is None
    assert fresh.instance.step_count == 3
    for a, b in zip(fresh.instance.state["exp_avg"], trained.instance.state["exp_avg"], strict=True):
        np.testing.assert_array_equal(a, b)
    _train(numpy_backend, model, trained, steps=1)
    _train(numpy_backend, twin, fresh, steps=1)
    np.testing.assert_allclose(twin.get_weights()["weight"], model.get_weights()["weight"], rtol=1e-6)


def test_state_set_on_a_built_optimizer_applies_at_once(numpy_backend) -> None:
    model = _model(numpy_backend)
    opt = Optimizer("sgd", opt_kwargs={"lr": 0.1, "momentum": 0.5}, backend="numpy")
    opt.build(parameters=numpy_backend.model_parameters(model))
    opt.set_state({"is_built": True, "backend_state": {"step": 7, "momentum_buffer": [None, None]}})
    assert opt.instance.step_count == 7
    with pytest.raises(InvalidArgumentError, match="get_state"):
        opt.set_state({"step": 1})
    with pytest.raises(InvalidArgumentError, match="buffers but the optimizer has 2"):
        opt.set_state({"is_built": True, "backend_state": {"step": 1, "momentum_buffer": [None]}})


def test_pending_state_that_does_not_fit_keeps_the_optimizer_unbuilt(numpy_backend) -> None:
    opt = Optimizer("sgd", opt_kwargs={"lr": 0.1, "momentum": 0.5}, backend="numpy")
    opt.set_state({"is_built": True, "backend_state": {"step": 2, "momentum_buffer": [np.zeros((9, 9)), None]}})
    with pytest.raises(InvalidArgumentError, match=r"shape \(9, 9\)"):
        opt.build(parameters=numpy_backend.model_parameters(_model(numpy_backend)))
    assert not opt.is_built
    assert opt._pending_state is not None


def test_backend_that_does_not_train(manager: PluginManager) -> None:
    class PlainBackend(NumpyTensorOps):
        name = "plainnp2"

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("plainnp2", PlainBackend)

    manager.register(Plugin(), name="plain-plugin-2")
    with pytest.raises(BackendNotSupportedError, match="'plainnp2' backend does not train"):
        Optimizer("sgd", backend="plainnp2")


# -- config and files ---------------------------------------------------------------------------
def test_config_round_trips() -> None:
    by_name = Optimizer("SGD", opt_kwargs={"lr": 0.2}, backend="numpy")
    config = by_name.get_config()
    assert config == {"opt": "SGD", "source": "name", "opt_kwargs": {"lr": 0.2}, "backend": "numpy"}
    assert Optimizer.from_config(config).get_config() == config
    assert Optimizer(Adam).get_config()["opt"] == "Adam"
    factory_config = Optimizer.from_factory(momentum_sgd, backend="numpy").get_config()
    assert factory_config["source"] == "factory"
    assert factory_config["opt"].endswith(":momentum_sgd")
    with pytest.raises(SerializationError, match="allow_packaged_code=True"):
        Optimizer.from_config(factory_config)
    assert Optimizer.from_config(factory_config, allow_packaged_code=True).factory is not None
    with pytest.raises(InvalidArgumentError, match="get_config"):
        Optimizer.from_config({"opt": "sgd"})


def test_save_and_load_restore_state_on_build(tmp_path: Path, numpy_backend) -> None:
    model = _model(numpy_backend)
    opt = Optimizer("sgd", opt_kwargs={"lr": 0.05, "momentum": 0.9}, backend="numpy")
    opt.build(parameters=numpy_backend.model_parameters(model))
    _train(numpy_backend, model, opt)
    path = opt.save(tmp_path / "opt")
    assert path.name == "opt.op.mml"
    loaded = Optimizer.load(path)
    assert not loaded.is_built
    assert loaded.get_config() == opt.get_config()
    loaded.build(parameters=numpy_backend.model_parameters(_model(numpy_backend)))
    assert loaded.instance.step_count == 3
    for a, b in zip(loaded.instance.state["momentum_buffer"], opt.instance.state["momentum_buffer"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_unbuilt_optimizer_round_trips(tmp_path: Path) -> None:
    loaded = Optimizer.load(Optimizer("adam", backend="numpy").save(tmp_path / "fresh"))
    assert loaded.get_state() == {"is_built": False, "backend_state": None}


def test_lambda_factories_cannot_be_saved(tmp_path: Path) -> None:
    opt = Optimizer.from_factory(lambda params: SGD(params), backend="numpy")
    with pytest.raises(SerializationError, match="no import path"):
        opt.save(tmp_path / "lam")


def test_repr_and_export() -> None:
    opt = Optimizer("sgd", opt_kwargs={"lr": 0.1}, backend="numpy")
    assert repr(opt) == "Optimizer('sgd', backend='numpy', opt_kwargs={'lr': 0.1}, built=False)"
    assert mml.Optimizer is Optimizer
