"""The torch models: built-ins train, shapes are inferred, freezing, files and fresh-process predictions."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import modularml as mml
from modularml.backends import get_backend
from modularml.backends.components import find_component, registered_components
from modularml.errors import DeviceError, InvalidArgumentError, InvalidTypeError, SerializationError
from modularml.models import BaseModel
from modularml_torch import SequentialCNN, SequentialMLP, SequentialRNN, TorchBaseModel, TorchModelWrapper


@pytest.fixture
def impl():
    return get_backend("torch")


def _train(impl, model, x: np.ndarray, y: np.ndarray, *, steps: int, lr: float = 1e-2, loss: str = "mse") -> float:
    """Full-batch training through the protocol's gradient_scope/apply_gradients; returns the last loss."""
    xt, yt = impl.from_numpy(x), impl.from_numpy(y)
    model.build(input_shape=x.shape[1:])
    params = impl.model_parameters(model)
    optimizer = impl.build_optimizer(impl.resolve_optimizer("adam"), {"lr": lr}, params)
    loss_fn = impl.build_loss(impl.resolve_loss(loss), {}, "none")
    model.train()
    for _ in range(steps):
        with impl.gradient_scope() as scope:
            value = impl.mean(loss_fn(model(xt), yt))
        impl.apply_gradients(value, optimizer, params, scope)
    model.eval()
    with impl.no_grad():
        return float(impl.mean(loss_fn(model(xt), yt)))


def _curves(n: int = 128, length: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    amplitude = rng.uniform(0.5, 2.0, size=(n, 1)).astype("float32")
    t = np.linspace(0, 2 * np.pi, length, dtype="float32")
    x = (amplitude * np.sin(t) + 0.05 * rng.standard_normal((n, length))).astype("float32")
    return x, amplitude


# -- built-in models learn ---------------------------------------------------------------------------
def test_sequential_mlp_learns_a_nonlinear_regression(impl) -> None:
    impl.seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(256, 4)).astype("float32")
    y = (np.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3] - 0.5 * x[:, 3:4]).astype("float32")
    model = SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=32)
    initial = float(((y - y.mean()) ** 2).mean())
    final = _train(impl, model, x, y, steps=300)
    assert final < 0.01 < initial


def test_sequential_mlp_with_batch_norm_and_dropout_learns(impl) -> None:
    impl.seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 6)).astype("float32")
    y = (x @ rng.standard_normal((6, 2))).astype("float32")
    model = SequentialMLP(output_shape=2, hidden_dim=32, activation="gelu", dropout=0.05, batch_norm=True)
    assert _train(impl, model, x, y, steps=300) < 0.1
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    assert any(isinstance(m, nn.Dropout) for m in model.modules())


def test_sequential_cnn_learns_curve_amplitudes(impl) -> None:
    impl.seed(0)
    x, amplitude = _curves()
    model = SequentialCNN(output_shape=(1,), n_layers=2, hidden_channels=8, kernel_size=5)
    assert _train(impl, model, x, amplitude, steps=200) < 0.01
    assert model.input_shape == (32,)


def test_sequential_cnn_takes_channels_first_curves(impl) -> None:
    model = SequentialCNN(input_shape=(3, 16), output_shape=(2, 2), pooling="avg", batch_norm=True)
    model.build()
    assert model(np.zeros((5, 3, 16), dtype="float32")).shape == (5, 2, 2)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sequential_rnn_learns_a_sequence_mean(impl, cell: str) -> None:
    impl.seed(0)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(128, 10, 2)).astype("float32")
    y = x.mean(axis=(1, 2))[:, None].astype("float32")
    model = SequentialRNN(output_shape=1, cell=cell, hidden_dim=16)
    assert _train(impl, model, x, y, steps=200) < 0.005


def test_mlp_n_layers_counts_the_linear_layers() -> None:
    # The older ModularML's meaning, which users' configs carry: n_layers=3 on 32 inputs is 32 -> 64 -> 64 -> 1.
    model = SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64)
    model.build(input_shape=(32,))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 64), (64, 64), (64, 1)]
    assert sum(p.numel() for p in model.parameters()) == 6_337
    linear = SequentialMLP(input_shape=5, output_shape=2, n_layers=1)
    linear.build()
    assert [type(m) for m in linear.layers] == [nn.Linear]


# -- shapes --------------------------------------------------------------------------------------------
def test_mlp_flattens_and_reshapes_to_the_output_shape() -> None:
    model = SequentialMLP(output_shape=(2, 3))
    assert not model.is_built
    out = model(np.ones((5, 4, 2), dtype="float32"))
    assert model.is_built
    assert model.input_shape == (4, 2)
    assert tuple(out.shape) == (5, 2, 3)


def test_build_needs_an_output_shape_and_refuses_conflicts() -> None:
    with pytest.raises(InvalidArgumentError, match="output_shape"):
        SequentialMLP().build(input_shape=(3,))
    model = SequentialMLP(input_shape=3, output_shape=1)
    with pytest.raises(InvalidArgumentError, match="declared"):
        model.build(input_shape=(4,))
    model.build()
    model.build(input_shape=(3,))  # same shape: nothing changes
    with pytest.raises(InvalidArgumentError, match="force=True"):
        model.build(input_shape=(5,))
    with pytest.raises(InvalidArgumentError, match="per-sample shape"):
        model(np.zeros((2, 4), dtype="float32"))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        SequentialMLP(n_layers=0)
    with pytest.raises(mml.errors.NotRegisteredError, match="no_such_activation"):
        SequentialMLP(activation="no_such_activation")
    with pytest.raises(InvalidArgumentError, match="odd"):
        SequentialCNN(kernel_size=4)
    with pytest.raises(InvalidArgumentError, match="lstm"):
        SequentialRNN(cell="transformer")


def test_inputs_are_cast_to_the_model_dtype(impl) -> None:
    model = SequentialMLP(output_shape=1)
    out = model(np.ones((2, 3), dtype="float64"))
    assert out.dtype == torch.float32
    assert model(np.ones((2, 3), dtype="int64")).dtype == torch.float32


# -- registry and the protocol's model methods ---------------------------------------------------------
def test_models_are_registered_by_name_for_torch() -> None:
    models = registered_components("models", "torch")
    for name, cls in {
        "SequentialMLP": SequentialMLP,
        "SequentialCNN": SequentialCNN,
        "SequentialRNN": SequentialRNN,
    }.items():
        assert find_component(name.lower(), models, what="model", backend="torch") is cls
    assert find_component("TorchModelWrapper", models, what="model", backend="torch") is TorchModelWrapper


def test_torch_models_are_base_models_and_modules() -> None:
    model = SequentialMLP(output_shape=1)
    assert isinstance(model, BaseModel)
    assert isinstance(model, nn.Module)
    assert isinstance(model, TorchBaseModel)
    assert model.backend == "torch"


def test_claims_and_wraps_raw_modules_only(impl) -> None:
    raw = nn.Linear(3, 1)
    assert impl.claims_model(raw) is True
    assert impl.claims_model(SequentialMLP(output_shape=1)) is False
    wrapped = impl.wrap_model(raw)
    assert isinstance(wrapped, TorchModelWrapper)
    assert wrapped.model is raw
    mlp = SequentialMLP(output_shape=1)
    assert impl.wrap_model(mlp) is mlp
    with pytest.raises(InvalidTypeError):
        impl.wrap_model(object())


def test_model_parameters_needs_a_built_torch_model(impl) -> None:
    with pytest.raises(InvalidArgumentError, match="not built"):
        impl.model_parameters(SequentialMLP(output_shape=1))
    with pytest.raises(TypeError):
        impl.model_parameters(nn.Linear(2, 2))


def test_frozen_parameters_are_left_out_and_do_not_change(impl) -> None:
    impl.seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True).astype("float32")
    model = SequentialMLP(input_shape=4, output_shape=1, hidden_dim=8)
    model.build()
    first = model.layers[0]
    first.requires_grad_(False)
    frozen = {k: v.copy() for k, v in model.get_weights().items() if k.startswith("layers.0.")}
    params = impl.model_parameters(model)
    assert all(p is not first.weight and p is not first.bias for p in params)
    assert len(params) == len(list(model.parameters())) - 2
    before_head = model.layers[-1].weight.detach().clone()
    _train(impl, model, x, y, steps=20)
    after = model.get_weights()
    for key, value in frozen.items():
        np.testing.assert_array_equal(after[key], value)
    assert not torch.equal(before_head, model.layers[-1].weight)


def test_apply_gradients_updates_only_the_given_parameters(impl) -> None:
    upstream, downstream = nn.Linear(3, 3), nn.Linear(3, 1)
    x = torch.randn(8, 3)
    params = list(downstream.parameters())
    optimizer = impl.build_optimizer(impl.resolve_optimizer("sgd"), {"lr": 0.1}, params)
    before = upstream.weight.detach().clone()
    with impl.gradient_scope() as scope:
        loss = impl.mean(downstream(upstream(x)) ** 2)
    impl.apply_gradients(loss, optimizer, params, scope)
    assert upstream.weight.grad is None
    assert torch.equal(before, upstream.weight)
    assert downstream.weight.grad is not None


def test_apply_gradients_clears_stale_gradients_of_the_optimizer_and_honours_its_own_zero_grad(impl) -> None:
    model = nn.Linear(3, 1)
    x = torch.randn(8, 3)
    weight, bias = model.weight, model.bias
    optimizer = impl.build_optimizer(impl.resolve_optimizer("sgd"), {"lr": 0.1}, [weight, bias])
    bias.grad = torch.full_like(bias, 100.0)  # stale, and bias is not among the parameters trained now
    bias_before = bias.detach().clone()
    with impl.gradient_scope() as scope:
        loss = impl.mean(model(x) ** 2)
    impl.apply_gradients(loss, optimizer, [weight], scope)
    assert bias.grad is None
    assert torch.equal(bias, bias_before)  # the stale gradient was not applied

    calls = []

    class CountingSGD(torch.optim.SGD):
        def zero_grad(self, set_to_none: bool = True) -> None:
            calls.append(set_to_none)
            super().zero_grad(set_to_none=set_to_none)

    counting = CountingSGD([weight, bias], lr=0.1)
    with impl.gradient_scope() as scope:
        loss = impl.mean(model(x) ** 2)
    impl.apply_gradients(loss, counting, [weight, bias], scope)
    assert calls == [True]


# -- weights, files and fresh processes ------------------------------------------------------------------
_FACTORIES = {
    "mlp": lambda: SequentialMLP(output_shape=(2,), batch_norm=True, dropout=0.1),
    "cnn": lambda: SequentialCNN(output_shape=1, batch_norm=True),
    "rnn": lambda: SequentialRNN(output_shape=1, cell="gru"),
}


def test_state_round_trips_through_files_and_a_fresh_process(impl, tmp_path) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 12)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    expected, paths = {}, {}
    for name, factory in _FACTORIES.items():
        impl.seed(3)
        model = factory()
        _train(impl, model, x, rng.standard_normal((16, *model._declared_output)).astype("float32"), steps=5)
        with impl.no_grad():
            expected[name] = impl.to_numpy(model(x))
        paths[name] = str(model.save(tmp_path / name))
        assert paths[name].endswith(".md.mml")
        loaded = BaseModel.load(paths[name])
        assert type(loaded) is type(model)
        assert loaded.input_shape == model.input_shape
        assert loaded.output_shape == model.output_shape
        loaded.eval()
        with impl.no_grad():
            np.testing.assert_array_equal(impl.to_numpy(loaded(x)), expected[name], err_msg=name)

    script = textwrap.dedent(
        f"""
        import numpy as np, torch
        from modularml.models import BaseModel
        torch.set_num_threads(1)
        x = torch.from_numpy(np.load({str(tmp_path / "x.npy")!r}))
        for name, path in {paths!r}.items():
            model = BaseModel.load(path)
            model.eval()
            with torch.no_grad():
                np.save({str(tmp_path)!r} + f"/{{name}}.npy", model(x).numpy())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    for name, values in expected.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), values, err_msg=name)


def test_set_weights_is_in_place_and_checks_names_and_shapes() -> None:
    model = SequentialMLP(input_shape=3, output_shape=1, hidden_dim=4)
    model.build()
    weight = model.layers[0].weight
    weights = {k: np.zeros_like(v) for k, v in model.get_weights().items()}
    model.set_weights(weights)
    assert model.layers[0].weight is weight
    assert float(weight.detach().abs().sum()) == 0.0
    with pytest.raises(InvalidArgumentError, match="missing"):
        model.set_weights({})
    bad = dict(weights, **{"layers.0.weight": np.zeros((2, 2), dtype="float32")})
    with pytest.raises(InvalidArgumentError, match="shape"):
        model.set_weights(bad)
    with pytest.raises(InvalidArgumentError, match="not built"):
        SequentialMLP(output_shape=1).set_weights(weights)


# -- the wrapper -------------------------------------------------------------------------------------------
class UserNet(nn.Module):
    """A user's module whose input width is only known when the data is."""

    def __init__(self, input_shape: tuple[int, ...], width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(input_shape[0], width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _regression(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")


def test_wrapped_module_instance_trains(impl) -> None:
    impl.seed(0)
    x, y = _regression()
    wrapper = TorchModelWrapper(nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1)))
    assert _train(impl, wrapper, x, y, steps=200) < 0.01
    assert wrapper.input_shape == (3,)
    assert wrapper.output_shape == (1,)


def test_wrapped_class_is_built_lazily_with_the_inferred_shape(impl, tmp_path) -> None:
    impl.seed(0)
    x, y = _regression()
    wrapper = TorchModelWrapper(model_class=UserNet, model_kwargs={"width": 8})
    assert wrapper.model is None
    assert _train(impl, wrapper, x, y, steps=200) < 0.01
    assert isinstance(wrapper.model, UserNet)
    assert wrapper.output_shape == (1,)
    with pytest.raises(SerializationError, match="allow_packaged_code"):
        BaseModel.load(wrapper.save(tmp_path / "wrapped"))
    loaded = TorchModelWrapper.load(tmp_path / "wrapped.md.mml", allow_packaged_code=True)
    with impl.no_grad():
        np.testing.assert_array_equal(impl.to_numpy(loaded(x)), impl.to_numpy(wrapper(x)))


def test_wrapper_arguments_are_checked(tmp_path) -> None:
    with pytest.raises(InvalidArgumentError, match="either"):
        TorchModelWrapper()
    with pytest.raises(InvalidArgumentError, match="either"):
        TorchModelWrapper(nn.Linear(1, 1), model_class=nn.Linear)
    with pytest.raises(InvalidTypeError):
        TorchModelWrapper(SequentialMLP(output_shape=1))
    with pytest.raises(SerializationError, match="instance"):
        TorchModelWrapper(nn.Linear(2, 1)).save(tmp_path / "instance")


# -- devices and laziness ------------------------------------------------------------------------------------
def test_models_live_on_the_cpu_by_default_and_refuse_unavailable_devices() -> None:
    model = SequentialMLP(input_shape=3, output_shape=1)
    model.build()
    assert model.device == "cpu"
    with pytest.raises(DeviceError, match="cuda:97"):
        model.to_device("cuda:97")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_model_trains_on_cuda(impl) -> None:
    impl.seed(0)
    x, y = _regression()
    model = SequentialMLP(output_shape=1).to_device("cuda:0")
    xt, yt = impl.from_numpy(x, device="cuda:0"), impl.from_numpy(y, device="cuda:0")
    model.build(input_shape=(3,))
    assert model.device == "cuda:0"
    params = impl.model_parameters(model)
    optimizer = impl.build_optimizer(impl.resolve_optimizer("adam"), {"lr": 1e-2}, params)
    loss_fn = impl.build_loss(impl.resolve_loss("mse"), {}, "none")
    for _ in range(200):
        with impl.gradient_scope() as scope:
            loss = impl.mean(loss_fn(model(xt), yt))
        impl.apply_gradients(loss, optimizer, params, scope)
    assert impl.device_of(loss) == "cuda:0"
    assert float(impl.to_numpy(loss)) < 0.01
    state = impl.get_optimizer_state(optimizer)
    twin = impl.build_optimizer(impl.resolve_optimizer("adam"), {"lr": 1e-2}, params)
    impl.set_optimizer_state(twin, state)
    assert impl.device_of(twin.state[params[0]]["exp_avg"]) == "cuda:0"


def test_package_import_does_not_import_torch() -> None:
    script = (
        "import sys, modularml_torch as mt\n"
        "from modularml.backends.components import registered_components\n"
        "for kind in ('models', 'losses', 'optimizers'):\n"
        "    assert registered_components(kind, 'torch'), kind\n"
        "assert 'torch' not in sys.modules, 'import modularml_torch or its registrations imported torch'\n"
        "assert mt.SequentialMLP.__name__ == 'SequentialMLP'\n"
        "assert 'torch' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr


def test_claims_model_does_not_look_at_torch_unless_imported(impl, monkeypatch) -> None:
    module = nn.Linear(1, 1)
    monkeypatch.delitem(sys.modules, "torch")
    assert impl.claims_model(module) is False


def test_seeding_makes_initial_weights_reproducible(impl) -> None:
    weights = []
    for _ in range(2):
        impl.seed(11)
        model = SequentialCNN(input_shape=(8,), output_shape=1)
        model.build()
        weights.append(model.get_weights())
    for key, value in weights[0].items():
        np.testing.assert_array_equal(weights[1][key], value)


def test_contiguous_float32_batches_are_not_copied_and_eval_records_nothing(impl) -> None:
    model = SequentialMLP(input_shape=3, output_shape=1)
    model.build()
    batch = np.ones((4, 3), dtype="float32")
    assert np.shares_memory(model._prepare_input(batch).numpy(), batch)
    with impl.no_grad():
        assert not model(batch).requires_grad
    assert model(batch).requires_grad


def test_set_training_switches_dropout_and_batch_norm() -> None:
    model = SequentialMLP(input_shape=3, output_shape=1, dropout=0.5, batch_norm=True)
    model.build()
    assert model.set_training(False) is model
    assert not any(m.training for m in model.modules())
    model.set_training(True)
    assert all(m.training for m in model.modules())


class UserModel(TorchBaseModel):
    """A user's TorchBaseModel that creates its layers in __init__, as plain nn.Module code does."""

    def __init__(self, width: int = 4) -> None:
        super().__init__(width=width)
        self.linear = nn.Linear(3, width)

    def forward(self, x, **kwargs):
        return self.linear(self._prepare_input(x))


def test_user_subclass_with_layers_in_init_infers_its_output_shape(impl, tmp_path) -> None:
    model = UserModel(width=5)
    model.build(input_shape=(3,))
    assert model.output_shape == (5,)
    assert impl.model_parameters(model) == [model.linear.weight, model.linear.bias]
    model.device = "cpu"
    assert model.device == "cpu"
    loaded = BaseModel.load(model.save(tmp_path / "user"), allow_packaged_code=True)
    np.testing.assert_array_equal(loaded.get_weights()["linear.weight"], model.get_weights()["linear.weight"])


def test_set_training_restores_a_submodule_switched_by_hand() -> None:
    model = SequentialMLP(output_shape=(1,), dropout=0.5)
    model.build(input_shape=(4,))
    model.set_training(True)
    model.set_training(True)  # already in training mode: nothing to do
    assert all(m.training for m in model.modules())
    model.layers[0].eval()
    model.set_training(True)
    assert all(m.training for m in model.modules())
    model.set_training(False)
    assert not any(m.training for m in model.modules())


def test_inputs_follow_the_model_dtype_after_a_conversion_and_a_rebuild() -> None:
    model = SequentialMLP(output_shape=(2,), n_layers=2, hidden_dim=4)
    model.build(input_shape=(3,))
    x = np.ones((5, 3), dtype=np.float32)
    assert model(x).dtype == torch.float32
    model.double()  # the cached reference parameter must be dropped
    out = model(x)
    assert out.dtype == torch.float64
    assert out.shape == (5, 2)
    model.build(input_shape=(3,), force=True)  # new float32 layers
    assert model(x).dtype == torch.float32
