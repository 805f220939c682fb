"""The Keras models: built-ins train, shapes are inferred, weights round trip, modes, traces and devices."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from modularml.backends import get_backend
from modularml.errors import DeviceError, InvalidArgumentError, InvalidTypeError, NotRegisteredError
from modularml_tf import SequentialCNN, SequentialMLP, SequentialRNN, TensorflowBaseModel, TensorflowModelWrapper


@pytest.fixture
def impl():
    return get_backend("tensorflow")


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


def _dense_widths(model: TensorflowBaseModel) -> list[tuple[int, int]]:
    return [tuple(layer.kernel.shape) for layer in model.layers() if isinstance(layer, keras.layers.Dense)]


# -- architecture -----------------------------------------------------------------------------------------
def test_mlp_n_layers_counts_the_dense_layers() -> None:
    model = SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64)
    model.build(input_shape=(32,))
    assert _dense_widths(model) == [(32, 64), (64, 64), (64, 1)]
    assert model.count_params() == 6_337
    linear = SequentialMLP(input_shape=5, output_shape=2, n_layers=1)
    linear.build()
    assert _dense_widths(linear) == [(5, 2)]


def test_built_ins_take_the_torch_models_arguments_and_defaults() -> None:
    import inspect

    torch_models = pytest.importorskip("modularml_torch.models")
    for name in ("SequentialMLP", "SequentialCNN", "SequentialRNN"):
        ours = inspect.signature(globals()[name])
        theirs = inspect.signature(getattr(torch_models, name))
        assert [(p.name, p.default) for p in ours.parameters.values()] == [
            (p.name, p.default) for p in theirs.parameters.values()
        ], name


def test_mlp_and_cnn_layers_follow_the_arguments() -> None:
    mlp = SequentialMLP(input_shape=(4, 2), output_shape=(2, 3), n_layers=3, dropout=0.1, batch_norm=True)
    mlp.build()
    kinds = [type(layer).__name__ for layer in mlp.layers()]
    assert kinds.count("Dense") == 3
    assert kinds.count("BatchNormalization") == 2
    assert kinds.count("Dropout") == 2
    assert tuple(mlp(np.ones((5, 4, 2), dtype="float32")).shape) == (5, 2, 3)
    cnn = SequentialCNN(input_shape=(3, 16), output_shape=(2, 2), pooling="avg", batch_norm=True)
    cnn.build()
    kinds = [type(layer).__name__ for layer in cnn.layers()]
    assert kinds.count("Conv1D") == 2
    assert kinds.count("AveragePooling1D") == 2
    assert tuple(cnn(np.zeros((5, 3, 16), dtype="float32")).shape) == (5, 2, 2)


# -- built-in models learn ---------------------------------------------------------------------------------
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


def test_sequential_cnn_learns_curve_amplitudes(impl) -> None:
    impl.seed(0)
    x, amplitude = _curves()
    model = SequentialCNN(output_shape=(1,), n_layers=2, hidden_channels=8, kernel_size=5)
    assert _train(impl, model, x, amplitude, steps=200) < 0.01
    assert model.input_shape == (32,)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_sequential_rnn_learns_a_sequence_mean(impl, cell: str) -> None:
    impl.seed(0)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(128, 10, 2)).astype("float32")
    y = x.mean(axis=(1, 2))[:, None].astype("float32")
    model = SequentialRNN(output_shape=1, cell=cell, hidden_dim=16)
    assert _train(impl, model, x, y, steps=200) < 0.005


def test_bidirectional_stacked_rnn_builds_and_runs() -> None:
    model = SequentialRNN(input_shape=(6,), output_shape=(2,), n_layers=2, bidirectional=True, dropout=0.2)
    model.build()
    kinds = [type(layer).__name__ for layer in model.layers()]
    assert kinds.count("Bidirectional") == 2
    assert kinds.count("Dropout") == 1
    assert tuple(model(np.zeros((3, 6), dtype="float32")).shape) == (3, 2)


# -- shapes and arguments ------------------------------------------------------------------------------------
def test_mlp_builds_from_its_first_batch_and_refuses_conflicts() -> None:
    model = SequentialMLP(output_shape=(2, 3))
    assert not model.is_built
    out = model(np.ones((5, 4, 2), dtype="float32"))
    assert model.is_built
    assert model.input_shape == (4, 2)
    assert tuple(out.shape) == (5, 2, 3)
    with pytest.raises(InvalidArgumentError, match="output_shape"):
        SequentialMLP().build(input_shape=(3,))
    declared = SequentialMLP(input_shape=3, output_shape=1)
    with pytest.raises(InvalidArgumentError, match="declared"):
        declared.build(input_shape=(4,))
    declared.build()
    with pytest.raises(InvalidArgumentError, match="force=True"):
        declared.build(input_shape=(5,))
    with pytest.raises(InvalidArgumentError, match="per-sample shape"):
        declared(np.zeros((2, 4), dtype="float32"))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="n_layers >= 1"):
        SequentialMLP(n_layers=0)
    with pytest.raises(NotRegisteredError, match="no_such_activation"):
        SequentialMLP(activation="no_such_activation")
    with pytest.raises(InvalidArgumentError, match="odd"):
        SequentialCNN(kernel_size=4)
    with pytest.raises(InvalidArgumentError, match="lstm"):
        SequentialRNN(cell="transformer")
    with pytest.raises(InvalidArgumentError, match="channels, length"):
        SequentialCNN(input_shape=(2, 3, 4), output_shape=1).build()


def test_activation_names_match_leniently_with_torch_defaults() -> None:
    from modularml_tf.models.layers import make_activation

    x = tf.constant([-2.0, 3.0])
    np.testing.assert_allclose(make_activation("LeakyReLU")(x).numpy(), [-0.02, 3.0], rtol=1e-6)
    np.testing.assert_allclose(make_activation("none")(x).numpy(), [-2.0, 3.0])
    assert make_activation("GELU") is keras.activations.gelu


# -- the wrapper ----------------------------------------------------------------------------------------------
def test_backend_claims_and_wraps_keras_models_only(impl) -> None:
    raw = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(1)])
    assert impl.claims_model(raw)
    assert impl.claims_model(keras.layers.Dense(2))
    mlp = SequentialMLP(output_shape=1)
    assert impl.claims_model(mlp) is False
    assert impl.wrap_model(mlp) is mlp
    wrapped = impl.wrap_model(raw)
    assert isinstance(wrapped, TensorflowModelWrapper)
    assert wrapped.model is raw
    with pytest.raises(InvalidTypeError):
        impl.wrap_model(object())
    torch = pytest.importorskip("torch")
    assert impl.claims_model(torch.nn.Linear(2, 2)) is False


def test_wrapper_builds_an_unbuilt_instance_and_infers_the_output_shape() -> None:
    raw = keras.Sequential([keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(3)])
    wrapper = TensorflowModelWrapper(raw)
    assert not wrapper.is_built
    out = wrapper(np.ones((2, 5), dtype="float32"))
    assert wrapper.input_shape == (5,)
    assert wrapper.output_shape == (3,)
    assert tuple(out.shape) == (2, 3)
    functional = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    assert TensorflowModelWrapper(functional).input_shape == (6,)  # a built instance knows its shapes


def _head(input_shape, width: int = 4, output_shape=None):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(width), keras.layers.Dense(1)])


def test_wrapper_builds_a_factory_lazily_with_the_inferred_shapes() -> None:
    wrapper = TensorflowModelWrapper(model_class=_head, model_kwargs={"width": 7})
    assert wrapper.model is None
    wrapper.build(input_shape=(5,))
    assert _dense_widths(wrapper) == [(5, 7), (7, 1)]
    assert wrapper.output_shape == (1,)
    assert wrapper.get_init_args()["model_class"] == f"{__name__}:_head"
    with pytest.raises(InvalidArgumentError, match="either model"):
        TensorflowModelWrapper()
    with pytest.raises(InvalidTypeError, match="Keras model"):
        TensorflowModelWrapper(SequentialMLP(output_shape=1))


def test_wrapper_keeps_integer_inputs_for_embeddings() -> None:
    raw = keras.Sequential([keras.layers.Embedding(10, 3), keras.layers.Flatten(), keras.layers.Dense(1)])
    wrapper = TensorflowModelWrapper(raw)
    out = wrapper(np.array([[1, 2], [3, 9]], dtype="int64"))
    assert tuple(out.shape) == (2, 1)


# -- weights ---------------------------------------------------------------------------------------------------
def test_weights_round_trip_exactly_between_instances(impl) -> None:
    impl.seed(1)
    first = SequentialMLP(input_shape=3, output_shape=2, batch_norm=True)
    first.build()
    weights = first.get_weights()
    assert all(isinstance(v, np.ndarray) for v in weights.values())
    assert "dense_0/kernel" in weights
    assert any("moving_mean" in k for k in weights)
    second = SequentialMLP(input_shape=3, output_shape=2, batch_norm=True)
    second.build()
    assert any(not np.array_equal(second.get_weights()[k], v) for k, v in weights.items())
    second.set_weights(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(second.get_weights()[key], value)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    first.eval(), second.eval()
    np.testing.assert_array_equal(first(x).numpy(), second(x).numpy())


def test_weights_of_auto_named_keras_models_match_in_order() -> None:
    def make():
        return TensorflowModelWrapper(
            keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1)])
        )

    a, b = make(), make()
    assert list(a.get_weights()) != list(b.get_weights())  # Keras numbered the second model's layers
    b.set_weights(a.get_weights())
    for (ka, va), (kb, vb) in zip(a.get_weights().items(), b.get_weights().items(), strict=True):
        np.testing.assert_array_equal(va, vb, err_msg=f"{ka} / {kb}")


def test_set_weights_refuses_what_does_not_fit_and_changes_nothing() -> None:
    model = SequentialMLP(input_shape=3, output_shape=1, hidden_dim=4)
    model.build()
    before = model.get_weights()
    bad = dict(before)
    bad["output/kernel"] = np.zeros((5, 1), dtype="float32")
    bad["dense_0/bias"] = np.full((4,), 9.0, dtype="float32")
    with pytest.raises(InvalidArgumentError, match="shape"):
        model.set_weights(bad)
    for key, value in before.items():
        np.testing.assert_array_equal(model.get_weights()[key], value)
    with pytest.raises(InvalidArgumentError, match="missing"):
        model.set_weights({"dense_0/kernel": before["dense_0/kernel"]})
    with pytest.raises(InvalidArgumentError, match="not built"):
        SequentialMLP(output_shape=1).set_weights(before)


# -- modes, compiled calls, devices ----------------------------------------------------------------------------
def test_dropout_runs_in_training_mode_only() -> None:
    model = SequentialMLP(input_shape=8, output_shape=4, hidden_dim=64, dropout=0.5)
    model.build()
    x = np.ones((16, 8), dtype="float32")
    model.set_training(False)
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    model.set_training(True)
    assert not np.array_equal(model(x).numpy(), model(x).numpy())


def test_forward_is_traced_once_per_signature_and_mode() -> None:
    model = SequentialMLP(input_shape=3, output_shape=1)
    model.build()
    model.train()
    for batch in (32, 32, 7, 1, 32):  # the batch axis is open: a smaller last batch does not retrace
        model(np.ones((batch, 3), dtype="float32"))
    assert model.trace_count == 1
    model.eval()
    model(np.ones((4, 3), dtype="float32"))
    model(np.ones((9, 3), dtype="float32"))
    assert model.trace_count == 2
    model(np.ones((4, 3), dtype="float64"))  # cast to the model's float32: the same signature
    assert model.trace_count == 2


def test_models_live_on_the_cpu_by_default_and_refuse_unknown_devices(impl) -> None:
    model = SequentialMLP(input_shape=3, output_shape=1)
    model.build()
    assert model.device == "cpu"
    assert all(impl.device_of(v) == "cpu" for v in model.parameters())
    with pytest.raises(DeviceError):
        model.to_device("tpu:7")
    if "cuda:0" not in impl.available_devices():
        with pytest.raises(DeviceError, match="not available"):
            model.to_device("cuda:0")


def test_a_built_model_moves_to_another_device_with_its_weights(impl) -> None:
    if "cuda:0" not in impl.available_devices():
        pytest.skip("needs a GPU")
    model = SequentialMLP(input_shape=3, output_shape=1)
    model.build()
    weights = model.get_weights()
    model.to_device("cuda:0")
    assert model.device == "cuda:0"
    assert all(impl.device_of(v) == "cuda:0" for v in model.parameters())
    for key, value in weights.items():
        np.testing.assert_array_equal(model.get_weights()[key], value)
    out = model(np.ones((2, 3), dtype="float32"))
    assert impl.device_of(out) == "cuda:0"
    later = SequentialMLP(output_shape=1).to_device("cuda:0")
    later(np.ones((2, 3), dtype="float32"))
    assert later.device == "cuda:0"


def test_model_parameters_needs_a_built_tensorflow_model(impl) -> None:
    with pytest.raises(InvalidArgumentError, match="not built"):
        impl.model_parameters(SequentialMLP(output_shape=1))
    with pytest.raises(TypeError):
        impl.model_parameters(keras.layers.Dense(2))
    model = SequentialMLP(input_shape=3, output_shape=1, batch_norm=True)
    model.build()
    params = impl.model_parameters(model)
    assert all(isinstance(p, tf.Variable) and p.trainable for p in params)
    assert len(params) == len(model.model.trainable_variables) < len(model.get_weights())
