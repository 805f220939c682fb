"""Losses and optimizers of the TensorFlow backend: names, semantics, reductions, state and files."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import modularml as mml
from modularml.backends import get_backend
from modularml.errors import InvalidArgumentError, LossError, NotRegisteredError
from modularml_tf import SequentialMLP
from modularml_tf.plugin import LOSS_NAMES, OPTIMIZER_NAMES


@pytest.fixture
def impl():
    return get_backend("tensorflow")


def _loss(name: str, **kwargs):
    return mml.Loss(name, backend="tensorflow", loss_kwargs=kwargs or None)


def _values(loss, *arrays) -> np.ndarray:
    return np.asarray(loss(*(tf.constant(a) for a in arrays)))


RNG = np.random.default_rng(0)
OUT = RNG.standard_normal((6, 4)).astype("float32")
TGT = RNG.standard_normal((6, 4)).astype("float32")


# -- losses ------------------------------------------------------------------------------------------------
def test_loss_short_names_are_the_torch_backends() -> None:
    torch_plugin = pytest.importorskip("modularml_torch.plugin")
    assert set(LOSS_NAMES) == set(torch_plugin.LOSS_NAMES)


def test_every_short_name_resolves(impl) -> None:
    for name in LOSS_NAMES:
        assert impl.resolve_loss(name) is impl.resolve_loss(name.upper()), name


def test_regression_losses_give_per_sample_values(impl) -> None:
    diff = OUT - TGT
    expected = {
        "mse": (diff**2).mean(axis=1),
        "mae": np.abs(diff).mean(axis=1),
        "l1": np.abs(diff).mean(axis=1),
        "huber": np.where(np.abs(diff) < 1, 0.5 * diff**2, np.abs(diff) - 0.5).mean(axis=1),
    }
    for name, want in expected.items():
        values = _values(_loss(name), OUT, TGT)
        assert values.shape[0] == 6, name
        np.testing.assert_allclose(values.reshape(6, -1).mean(axis=1), want, rtol=1e-5, err_msg=name)
    smooth = _values(_loss("smooth_l1", beta=0.5), OUT, TGT)
    np.testing.assert_allclose(
        smooth, np.where(np.abs(diff) < 0.5, 0.5 * diff**2 / 0.5, np.abs(diff) - 0.25), rtol=1e-5
    )


def test_classification_losses_follow_torch_semantics() -> None:
    logits = RNG.standard_normal((5, 3)).astype("float32")
    labels = np.array([0, 2, 1, 1, 0])
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    picked = -log_softmax[np.arange(5), labels]
    np.testing.assert_allclose(_values(_loss("cross_entropy"), logits, labels), picked, rtol=1e-5)
    np.testing.assert_allclose(_values(_loss("nll"), log_softmax, labels), picked, rtol=1e-5)
    probs = 1 / (1 + np.exp(-logits))
    bits = (RNG.random((5, 3)) > 0.5).astype("float32")
    bce = -(bits * np.log(probs) + (1 - bits) * np.log(1 - probs))
    np.testing.assert_allclose(_values(_loss("bce"), probs, bits), bce, rtol=1e-4)
    np.testing.assert_allclose(_values(_loss("bce_with_logits"), logits, bits), bce, rtol=1e-4)
    target = np.exp(log_softmax[::-1].copy())
    kl = target * (np.log(target) - log_softmax)
    np.testing.assert_allclose(_values(_loss("kl_div"), log_softmax, target), kl, rtol=1e-5, atol=1e-7)


def test_embedding_and_ranking_losses_follow_torch_semantics() -> None:
    a, b, c = (RNG.standard_normal((4, 3)).astype("float32") for _ in range(3))
    y = np.array([1.0, -1.0, 1.0, -1.0], dtype="float32")
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    want = np.where(y > 0, 1 - cos, np.maximum(0, cos - 0.1))
    np.testing.assert_allclose(_values(_loss("cosine_embedding", margin=0.1), a, b, y), want, rtol=1e-5)
    d_pos = np.linalg.norm(a - b + 1e-6, axis=1)
    d_neg = np.linalg.norm(a - c + 1e-6, axis=1)
    np.testing.assert_allclose(_values(_loss("triplet_margin"), a, b, c), np.maximum(d_pos - d_neg + 1.0, 0), rtol=1e-5)
    x1, x2 = a[:, 0], b[:, 0]
    np.testing.assert_allclose(
        _values(_loss("margin_ranking", margin=0.2), x1, x2, y), np.maximum(0, -y * (x1 - x2) + 0.2), rtol=1e-5
    )


def test_keras_losses_take_the_predictions_first() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    onehot = np.array([[1, 0, 0], [0, 1, 0]], dtype="float32")
    keras_loss = keras.losses.CategoricalCrossentropy(reduction=None)
    loss = _loss("CategoricalCrossentropy")
    np.testing.assert_allclose(_values(loss, probs, onehot), keras_loss(onehot, probs).numpy(), rtol=1e-6)
    loss.build(force_rebuild=True)
    by_keyword = loss(y_pred=tf.constant(probs), y_true=tf.constant(onehot))
    np.testing.assert_allclose(by_keyword.numpy(), keras_loss(onehot, probs).numpy(), rtol=1e-6)
    assert "outputs" in loss.allowed_keywords
    assert "y_true" in loss.allowed_keywords


def test_any_keras_loss_class_resolves_by_name_and_by_class() -> None:
    assert _loss("log_cosh").cls is keras.losses.LogCosh
    by_class = mml.Loss(keras.losses.Huber)  # the backend is inferred from the package the backend registers
    assert by_class.backend == "tensorflow"
    assert by_class.get_config()["source"] == "name"
    np.testing.assert_allclose(_values(by_class, OUT, TGT), _values(_loss("huber"), OUT, TGT))


def test_unknown_loss_names_list_the_available_ones() -> None:
    with pytest.raises(NotRegisteredError, match=r"no_such_loss.*Available.*MeanSquaredError.*mse"):
        _loss("no_such_loss")
    with pytest.raises(NotRegisteredError, match=r"Close matches: \['(?i:huber)'\]"):
        _loss("hubber")
    with pytest.raises(NotRegisteredError, match=r"Close matches: \[.*'adamw'"):
        mml.Optimizer("adamww", backend="tensorflow")


def test_fused_mean_is_compiled_and_equals_the_mean_of_the_values(impl) -> None:
    mean = impl.build_mean_loss(impl.resolve_loss("mse"), {})
    assert isinstance(mean, tf.types.experimental.PolymorphicFunction)
    np.testing.assert_allclose(float(mean(tf.constant(OUT), tf.constant(TGT))), ((OUT - TGT) ** 2).mean(), rtol=1e-6)
    assert impl.build_mean_loss(impl.resolve_loss("cross_entropy"), {}) is None
    assert impl.build_mean_loss(impl.resolve_loss("mse"), {"reduction": "sum"}) is None


def test_applied_loss_weights_samples() -> None:
    from modularml.batches import BatchView, ExecutionContext
    from modularml.context import ExperimentContext
    from modularml.data import FeatureSet

    with ExperimentContext(registration_policy="error").activate():
        x = RNG.standard_normal((8, 2)).astype("float32")
        fs = FeatureSet.from_dict("fs", {"x": x, "y": x.sum(axis=1)}, "x", "y")
        node = mml.ModelNode("m", SequentialMLP(output_shape=(1,)), fs)
        graph = mml.ModelGraph([node])
        applied = mml.AppliedLoss(_loss("mse"), on=node, inputs=["outputs", "targets"])
        weights = np.linspace(0.0, 1.0, 8, dtype="float32")
        view = BatchView(fs, {"default": np.arange(8)}, {"default": weights})
        ctx = ExecutionContext("eval", inputs={(node.node_id, fs.reference()): view})
        graph.eval_step(ctx, [applied])
        out = np.asarray(ctx.get_output(node.node_id).outputs)[:, 0]
        per_sample = (out - x.sum(axis=1)) ** 2
        np.testing.assert_allclose(float(ctx.losses[applied.label]), (per_sample * weights).sum() / 8, rtol=1e-5)


def test_loss_files_round_trip(tmp_path) -> None:
    loss = _loss("smooth_l1", beta=0.25)
    loaded = mml.Loss.load(loss.save(tmp_path / "loss"))
    assert loaded.backend == "tensorflow"
    np.testing.assert_allclose(_values(loaded, OUT, TGT), _values(loss, OUT, TGT))


# -- optimizers --------------------------------------------------------------------------------------------
def test_optimizer_short_names_are_the_torch_backends() -> None:
    torch_plugin = pytest.importorskip("modularml_torch.plugin")
    assert set(OPTIMIZER_NAMES) == set(torch_plugin.OPTIMIZER_NAMES) - {"radam"}  # Keras has no RAdam


def test_optimizer_short_names_and_torch_spellings(impl) -> None:
    for name, cls in OPTIMIZER_NAMES.items():
        assert impl.resolve_optimizer(name) is getattr(keras.optimizers, cls)
    variables = [tf.Variable(np.zeros((3,), dtype="float32"))]
    adam = impl.build_optimizer(
        impl.resolve_optimizer("adam"), {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6}, variables
    )
    assert isinstance(adam, keras.optimizers.Adam)
    assert (float(adam.learning_rate), adam.beta_1, adam.beta_2, adam.epsilon) == pytest.approx((0.01, 0.8, 0.9, 1e-6))
    rms = impl.build_optimizer(impl.resolve_optimizer("RMSprop"), {"alpha": 0.5}, variables)
    assert rms.rho == 0.5
    assert isinstance(impl.resolve_optimizer("lion")(), keras.optimizers.Lion)  # any Keras class by name
    with pytest.raises(InvalidArgumentError, match="both 'lr' and 'learning_rate'"):
        impl.build_optimizer(impl.resolve_optimizer("sgd"), {"lr": 0.1, "learning_rate": 0.2}, variables)
    with pytest.raises(NotRegisteredError, match=r"radam.*Available.*adam"):
        mml.Optimizer("radam", backend="tensorflow")
    with pytest.raises(InvalidArgumentError, match="Cannot construct"):
        mml.Optimizer("sgd", opt_kwargs={"no_such_argument": 1}, backend="tensorflow").build(parameters=variables)


def _fit_steps(impl, model, optimizer, x, y, steps: int) -> None:
    params = impl.model_parameters(model)
    loss_fn = impl.build_loss(impl.resolve_loss("mse"), {}, "none")
    for _ in range(steps):
        with impl.gradient_scope() as scope:
            value = impl.mean(loss_fn(model(x), y))
        impl.apply_gradients(value, optimizer, params, scope)


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop"])
def test_optimizer_state_round_trip_continues_bit_for_bit(impl, name: str, tmp_path) -> None:
    impl.seed(0)
    x = tf.constant(RNG.standard_normal((32, 3)).astype("float32"))
    y = tf.constant(RNG.standard_normal((32, 1)).astype("float32"))
    kwargs = {"lr": 0.01, "momentum": 0.9} if name != "adam" else {"lr": 0.01}
    model = SequentialMLP(input_shape=3, output_shape=1)
    model.build()
    optimizer = mml.Optimizer(name, opt_kwargs=kwargs, backend="tensorflow")
    optimizer.build(parameters=impl.model_parameters(model))
    _fit_steps(impl, model, optimizer.instance, x, y, 3)
    saved_weights = model.get_weights()
    path = optimizer.save(tmp_path / name)

    twin = SequentialMLP(input_shape=3, output_shape=1)
    twin.build()
    twin.set_weights(saved_weights)
    loaded = mml.Optimizer.load(path)
    loaded.build(parameters=impl.model_parameters(twin))  # the saved state is restored into the new optimizer
    assert int(loaded.instance.iterations) == 3
    _fit_steps(impl, model, optimizer.instance, x, y, 4)
    _fit_steps(impl, twin, loaded.instance, x, y, 4)
    for key, value in model.get_weights().items():
        np.testing.assert_array_equal(twin.get_weights()[key], value, err_msg=key)


def test_optimizer_state_of_another_model_is_refused(impl) -> None:
    small = [tf.Variable(np.zeros((2,), dtype="float32"))]
    large = [tf.Variable(np.zeros((3,), dtype="float32"))]
    a = impl.build_optimizer(impl.resolve_optimizer("adam"), {}, small)
    b = impl.build_optimizer(impl.resolve_optimizer("adam"), {}, large)
    before = [v.numpy().copy() for v in b.variables]
    with pytest.raises(InvalidArgumentError, match="shape"):
        impl.set_optimizer_state(b, impl.get_optimizer_state(a))
    for variable, value in zip(b.variables, before, strict=True):
        np.testing.assert_array_equal(variable.numpy(), value)
    sgd = impl.build_optimizer(impl.resolve_optimizer("sgd"), {}, small)
    with pytest.raises(InvalidArgumentError, match="not of this SGD"):
        impl.set_optimizer_state(sgd, impl.get_optimizer_state(a))


def test_optimizer_step_applies_given_gradients(impl) -> None:
    variable = tf.Variable(np.ones((2,), dtype="float32"))
    optimizer = mml.Optimizer("sgd", opt_kwargs={"lr": 0.5}, backend="tensorflow")
    optimizer.build(parameters=[variable])
    optimizer.step([tf.constant([1.0, -2.0])], [variable])
    np.testing.assert_allclose(variable.numpy(), [0.5, 2.0])
    with pytest.raises(ValueError, match="grads and variables"):
        optimizer.step()
    with pytest.raises(ValueError, match="paired"):
        optimizer.step([tf.constant([1.0, 1.0])], [variable, variable])


def test_compiled_update_is_traced_once_per_set_of_variables(impl) -> None:
    model = SequentialMLP(input_shape=3, output_shape=1)
    model.build()
    optimizer = impl.build_optimizer(impl.resolve_optimizer("adam"), {}, impl.model_parameters(model))
    x, y = tf.ones((8, 3)), tf.zeros((8, 1))
    _fit_steps(impl, model, optimizer, x, y, 5)
    _fit_steps(impl, model, optimizer, tf.ones((3, 3)), tf.zeros((3, 1)), 2)
    assert impl.update_trace_count(optimizer) == 1
    assert model.trace_count == 1


def test_a_loss_without_a_backend_cannot_name_one() -> None:
    with pytest.raises(LossError, match="backend="):
        mml.Loss("mse")
