"""The numpy backend's model, losses, optimizers and registration."""

from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.plugins import get_plugin_manager
from modularml_numpy.autograd import Tensor, as_tensor
from modularml_numpy.losses import MAELoss, MSELoss
from modularml_numpy.models import LinearModel
from modularml_numpy.optimizers import SGD, Adam


@pytest.fixture
def backend():
    impl = mml.get_backend("numpy")
    impl.seed(0)
    return impl


def _regression(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 2, 3)).astype("float32")
    w = rng.standard_normal((6, 2)).astype("float32")
    y = (x.reshape(n, -1) @ w + np.array([0.5, -1.0], dtype="float32")).reshape(n, 2, 1)
    return x, y


# -- registration -------------------------------------------------------------------------------
def test_backend_is_registered_with_its_components() -> None:
    assert mml.Backend("numpy") == "numpy"
    assert mml.Backend("NP") == "numpy"
    assert "numpy" in mml.Backend.installed()
    record = next(r for r in get_plugin_manager().plugins() if r.name == "modularml_numpy")
    assert record.distribution == "modularml-numpy"
    assert record.contributions == {
        "backends": ["numpy"],
        "models": ["numpy:LinearModel"],
        "losses": ["numpy:mse", "numpy:mae"],
        "optimizers": ["numpy:sgd", "numpy:adam"],
    }


def test_backend_of_a_tensor(backend) -> None:
    assert mml.backend_of(backend.from_numpy(np.zeros(2))) == "numpy"
    assert mml.backend_of(np.zeros(2)) is None


def test_backend_ops_carry_gradients(backend) -> None:
    a = backend.parameter_from_numpy(np.ones((2, 3)))
    b = backend.parameter_from_numpy(np.ones((2, 3)))
    assert a.dtype == np.float64
    joined = backend.concat([a, b * 2.0], axis=1)
    padded = backend.pad(backend.stack([joined, joined], axis=0), [(0, 0), (0, 0), (1, 1)], mode="replicate")
    backend.sum(backend.reshape(padded, (-1,))).backward()
    np.testing.assert_allclose(a.grad, [[4, 2, 2]] * 2)  # the first column is replicated once on each copy
    np.testing.assert_allclose(b.grad, [[4, 4, 8]] * 2)


def test_from_numpy_shares_memory_and_to_numpy_unwraps(backend) -> None:
    array = np.arange(4.0)
    tensor = backend.from_numpy(array)
    assert backend.to_numpy(tensor) is array
    assert not tensor.requires_grad
    assert backend.parameter_from_numpy(np.arange(3)).dtype == np.float32


def test_wrap_model(backend) -> None:
    model = LinearModel(output_shape=1)
    assert backend.wrap_model(model) is model
    assert backend.claims_model(model) is False
    with pytest.raises(InvalidTypeError, match="no raw models"):
        backend.wrap_model(object())


def test_model_parameters(backend) -> None:
    model = LinearModel(output_shape=2)
    with pytest.raises(InvalidArgumentError, match="not built"):
        backend.model_parameters(model)
    model.build(input_shape=(3,))
    assert backend.model_parameters(model) == [model.weight, model.bias]
    assert all(p.requires_grad for p in model.parameters())


# -- LinearModel --------------------------------------------------------------------------------
def test_linear_model_shapes_from_constructor_or_build(backend) -> None:
    declared = LinearModel(input_shape=(2, 3), output_shape=(2, 1))
    declared.build()
    assert declared.is_built
    assert declared.input_shape == (2, 3)
    assert declared.output_shape == (2, 1)
    assert declared.get_weights()["weight"].shape == (6, 2)
    inferred = LinearModel(output_shape=4)
    assert inferred.input_shape is None
    inferred.build(input_shape=5)
    assert (inferred.input_shape, inferred.output_shape) == ((5,), (4,))


def test_linear_model_build_errors(backend) -> None:
    with pytest.raises(InvalidArgumentError, match="output_shape"):
        LinearModel().build(input_shape=(3,))
    with pytest.raises(InvalidArgumentError, match=r"declared with input_shape=\(3,\).*\(4,\)"):
        LinearModel(input_shape=3, output_shape=1).build(input_shape=(4,))
    with pytest.raises(InvalidArgumentError, match="floating"):
        LinearModel(dtype="int32")
    with pytest.raises(InvalidArgumentError, match="int or a sequence of ints"):
        LinearModel(output_shape="wide")


def test_linear_model_rebuild(backend) -> None:
    model = LinearModel(output_shape=1)
    model.build(input_shape=(3,))
    weights = model.get_weights()
    model.build(input_shape=(3,))  # a no-op
    np.testing.assert_array_equal(model.get_weights()["weight"], weights["weight"])
    with pytest.raises(InvalidArgumentError, match="force=True"):
        model.build(input_shape=(4,))
    model.build(input_shape=(4,), force=True)
    assert model.get_weights()["weight"].shape == (4, 1)


def test_linear_model_forward(backend) -> None:
    x, _ = _regression(8)
    model = LinearModel(output_shape=(2, 1))
    out = model(backend.from_numpy(x))  # built from the input on first use
    assert model.input_shape == (2, 3)
    assert isinstance(out, Tensor)
    assert out.shape == (8, 2, 1)
    weights = model.get_weights()
    expected = (x.reshape(8, -1) @ weights["weight"] + weights["bias"]).reshape(8, 2, 1)
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match=r"per-sample shape \(2, 3\).*\(8, 5\)"):
        model(np.zeros((8, 5), dtype="float32"))


def test_linear_model_set_weights_in_place(backend) -> None:
    model = LinearModel(input_shape=3, output_shape=1)
    with pytest.raises(InvalidArgumentError, match="not built"):
        model.set_weights({"weight": np.zeros((3, 1)), "bias": np.zeros(1)})
    model.build()
    weight = model.weight
    model.set_weights({"weight": np.ones((3, 1)), "bias": np.full(1, 2.0)})
    assert model.weight is weight
    np.testing.assert_array_equal(weight.data, np.ones((3, 1), dtype="float32"))
    with pytest.raises(InvalidArgumentError, match=r"'weight' has shape \(3, 1\); got \(2, 1\)"):
        model.set_weights({"weight": np.ones((2, 1)), "bias": np.ones(1)})
    with pytest.raises(InvalidArgumentError, match="get_weights"):
        model.set_weights({"weight": np.ones((3, 1))})


def test_linear_model_without_bias(backend) -> None:
    model = LinearModel(input_shape=2, output_shape=1, bias=False)
    model.build()
    assert list(model.get_weights()) == ["weight"]
    assert len(model.parameters()) == 1


@pytest.mark.parametrize(
    ("opt", "kwargs", "steps"), [("sgd", {"lr": 0.1, "momentum": 0.9}, 150), ("Adam", {"lr": 0.05}, 400)]
)
def test_linear_model_trains_with_the_core_wrappers(backend, opt: str, kwargs: dict, steps: int) -> None:
    x, y = _regression()
    model = LinearModel(output_shape=(2, 1))
    model.build(input_shape=(2, 3))
    loss = mml.Loss("mse", backend="numpy")
    optimizer = mml.Optimizer(opt, opt_kwargs=kwargs, backend="numpy")
    optimizer.build(parameters=backend.model_parameters(model))
    xs, ys = backend.from_numpy(x), backend.from_numpy(y)
    history = []
    for _ in range(steps):
        with backend.gradient_scope() as scope:
            value = backend.mean(loss(model(xs), ys))
        backend.apply_gradients(value, optimizer.instance, optimizer.parameters, scope)
        history.append(float(value))
    assert history[-1] < 1e-3 < history[0]


# -- losses -------------------------------------------------------------------------------------
def test_losses_are_per_sample() -> None:
    outputs = np.array([[1.0, 3.0], [0.0, 0.0]])
    targets = np.array([[0.0, 1.0], [1.0, -1.0]])
    np.testing.assert_allclose(MSELoss()(outputs, targets).data, [2.5, 1.0])
    np.testing.assert_allclose(MAELoss()(outputs, targets).data, [1.5, 1.0])
    np.testing.assert_allclose(MSELoss("mean")(outputs, targets).data, 1.75)
    np.testing.assert_allclose(MAELoss("sum")(outputs, targets).data, 2.5)


def test_loss_reshapes_targets_of_the_same_size_and_refuses_others() -> None:
    outputs = np.array([[1.0], [2.0], [3.0]])
    np.testing.assert_allclose(MSELoss()(outputs, np.array([1.0, 2.0, 5.0])).data, [0.0, 0.0, 4.0])
    with pytest.raises(InvalidArgumentError, match=r"\(3, 1\).*\(2,\)"):
        MSELoss()(outputs, np.array([1.0, 2.0]))
    with pytest.raises(InvalidArgumentError, match="reduction 'avg'"):
        MSELoss("avg")


def test_build_loss_binds_reduction_and_kwargs(backend) -> None:
    assert backend.build_loss(MSELoss, {}, "sum").reduction == "sum"

    def weighted(outputs, targets, scale=1.0):
        return (as_tensor(outputs) - targets).square() * scale

    bound = backend.build_loss(weighted, {"scale": 3.0}, "none")
    np.testing.assert_allclose(bound(np.ones(2), np.zeros(2)).data, [3.0, 3.0])
    with pytest.raises(InvalidArgumentError, match="weight"):
        backend.build_loss(MSELoss, {"weight": 2.0}, "none")


# -- optimizers ---------------------------------------------------------------------------------
def _params() -> list[Tensor]:
    return [Tensor(np.ones((2, 2), dtype="float32"), requires_grad=True), Tensor(np.zeros(2), requires_grad=True)]


def test_sgd_matches_the_update_rule() -> None:
    params = _params()
    opt = SGD(params, lr=0.1, momentum=0.5)
    for _ in range(2):
        for p in params:
            p.grad = np.ones_like(p.data)
        opt.step()
    # buffer: 1, then 0.5 * 1 + 1 = 1.5; total step 0.1 * (1 + 1.5)
    np.testing.assert_allclose(params[0].data, np.full((2, 2), 1 - 0.25), rtol=1e-6)
    assert params[0].data.dtype == np.float32


def test_adam_first_step_moves_by_lr() -> None:
    params = _params()
    opt = Adam(params, lr=0.01)
    params[0].grad = np.full((2, 2), 3.0)
    opt.step()  # params[1] has no gradient: unchanged
    np.testing.assert_allclose(params[0].data, np.full((2, 2), 0.99), rtol=1e-5)
    np.testing.assert_array_equal(params[1].data, np.zeros(2))


def test_optimizer_state_refuses_other_models() -> None:
    opt = Adam(_params())
    state = opt.get_state()
    assert state == {"step": 0, "exp_avg": [None, None], "exp_avg_sq": [None, None]}
    with pytest.raises(InvalidArgumentError, match="2 'exp_avg' buffers but the optimizer has 1"):
        Adam(_params()[:1]).set_state(state)
    opt.params[0].grad = np.ones((2, 2))
    opt.step()
    bigger = Adam([Tensor(np.ones((3, 2)), requires_grad=True), Tensor(np.zeros(2), requires_grad=True)])
    with pytest.raises(InvalidArgumentError, match=r"shape \(2, 2\).*\(3, 2\)"):
        bigger.set_state(opt.get_state())


def test_optimizer_argument_errors(backend) -> None:
    with pytest.raises(InvalidArgumentError, match="at least one parameter"):
        SGD([])
    with pytest.raises(InvalidTypeError, match="parameter 0"):
        SGD([np.zeros(2)])
    with pytest.raises(InvalidArgumentError, match="lr > 0"):
        SGD(_params(), lr=0)
    with pytest.raises(InvalidArgumentError, match="parameters="):
        backend.build_optimizer(SGD, {"lr": 0.1}, None)
    with pytest.raises(InvalidArgumentError, match="betas_typo"):
        backend.build_optimizer(Adam, {"betas_typo": 1}, _params())


def test_optimizer_step_with_given_gradients(backend) -> None:
    params = _params()
    opt = backend.build_optimizer(SGD, {"lr": 1.0}, params)
    backend.optimizer_step(opt, [np.ones((2, 2)), np.ones(2)], params)
    np.testing.assert_array_equal(params[1].data, [-1.0, -1.0])
    with pytest.raises(InvalidArgumentError, match="variables"):
        backend.optimizer_step(opt, [np.ones((2, 2)), np.ones(2)], _params())
