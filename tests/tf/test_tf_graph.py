"""Keras models inside a ModelGraph: node-wise and global training, evaluation, freezing, traces, seeds, phases."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import modularml as mml
from modularml.batches import BatchView, ExecutionContext
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.errors import OptimizerNotSetError
from modularml_numpy.models import LinearModel  # the numpy test backend: installed in every backend session
from modularml_tf import SequentialCNN, SequentialMLP, SequentialRNN, TensorflowModelWrapper

TRAIN, VAL = np.arange(0, 96), np.arange(96, 128)


@pytest.fixture(autouse=True)
def fresh_context():
    with ExperimentContext(registration_policy="error").activate() as ctx:
        mml.get_backend("numpy").seed(0)
        mml.get_backend("tensorflow").seed(0)
        yield ctx


def _regression_fs(n: int = 128) -> FeatureSet:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (np.tanh(x @ np.array([1.0, -2.0, 0.5])) + 0.3).astype(np.float32)
    return FeatureSet.from_dict("data", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}, ["a", "b", "c"], ["y"])


def _curves_fs(n: int = 128, length: int = 16) -> FeatureSet:
    rng = np.random.default_rng(1)
    amplitude = rng.uniform(0.5, 2.0, size=n).astype("float32")
    t = np.linspace(0, 2 * np.pi, length, dtype="float32")
    x = (amplitude[:, None] * np.sin(t) + 0.05 * rng.standard_normal((n, length))).astype("float32")
    return FeatureSet.from_dict("curves", {"x": x, "y": amplitude}, "x", "y")


def _adam(lr: float = 1e-2) -> mml.Optimizer:
    return mml.Optimizer("adam", opt_kwargs={"lr": lr}, backend="tensorflow")


def _mse(node) -> mml.AppliedLoss:
    return mml.AppliedLoss(mml.Loss("mse", backend="tensorflow"), on=node, inputs=["outputs", "targets"])


def _train(graph, fs, head, loss, steps: int, rows: np.ndarray = TRAIN) -> list[float]:
    values = []
    for _ in range(steps):
        ctx = ExecutionContext("train", inputs={(head.node_id, fs.reference()): BatchView(fs, rows)})
        graph.train_step(ctx, [loss])
        values.append(float(mml.get_backend("tensorflow").to_numpy(ctx.losses[loss.label])))
    return values


def _evaluate(graph, fs, head, loss, rows: np.ndarray = VAL) -> float:
    ctx = ExecutionContext("eval", inputs={(head.node_id, fs.reference()): BatchView(fs, rows)})
    graph.eval_step(ctx, [loss])
    return float(mml.get_backend("tensorflow").to_numpy(ctx.losses[loss.label]))


def _outputs(graph, fs, head, node, rows: np.ndarray = VAL) -> np.ndarray:
    ctx = ExecutionContext("eval", inputs={(head.node_id, fs.reference()): BatchView(fs, rows)})
    graph.eval_step(ctx)
    return mml.get_backend("tensorflow").to_numpy(ctx.get_output(node.node_id).outputs).copy()


_MODELS = {
    "mlp": (_regression_fs, lambda: SequentialMLP(output_shape=(1,), hidden_dim=32)),
    "raw_keras": (
        _regression_fs,
        lambda: keras.Sequential([keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(1)]),
    ),
    "cnn": (_curves_fs, lambda: SequentialCNN(output_shape=(1,), hidden_channels=8, kernel_size=5)),
    "rnn": (_curves_fs, lambda: SequentialRNN(output_shape=(1,), cell="gru", hidden_dim=8)),
}


@pytest.mark.parametrize("name", sorted(_MODELS))
def test_node_training_lowers_the_validation_loss(name: str) -> None:
    make_fs, make_model = _MODELS[name]
    fs = make_fs()
    node = mml.ModelNode("model", make_model(), fs, _adam())
    if name == "raw_keras":
        assert isinstance(node.model, TensorflowModelWrapper)
    graph = mml.ModelGraph([node])
    loss = _mse(node)
    graph.build()
    before = _evaluate(graph, fs, node, loss)
    _train(graph, fs, node, loss, 120)
    after = _evaluate(graph, fs, node, loss)
    assert after < 0.25 * before, (before, after)


def test_each_compiled_function_is_traced_once_per_signature() -> None:
    fs = _regression_fs()
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,)), fs, _adam())
    graph = mml.ModelGraph([node])
    loss = _mse(node)
    _train(graph, fs, node, loss, 5)
    _train(graph, fs, node, loss, 5, rows=np.arange(40))  # another batch size: the batch axis is open
    for _ in range(3):
        _evaluate(graph, fs, node, loss)
    impl = mml.get_backend("tensorflow")
    # Each training step is one compiled function (forward, loss, gradients, update), traced once per
    # batch size; the model's own compiled forward pass serves evaluation, traced once.
    assert impl.step_trace_count(node.optimizer.instance) == 2
    assert node.model.trace_count == 1
    assert impl.update_trace_count(node.optimizer.instance) == 0  # no separate update: it is inside the step


def test_global_optimizer_trains_end_to_end_and_skips_frozen_nodes() -> None:
    fs = _regression_fs()
    encoder = mml.ModelNode("enc", SequentialMLP(output_shape=(8,), n_layers=2), fs)
    head = mml.ModelNode("head", SequentialMLP(output_shape=(1,), n_layers=2), encoder)
    graph = mml.ModelGraph([encoder, head], optimizer=_adam())
    loss = _mse(head)
    graph.build()
    params = graph.get_optimizer_parameters()
    assert params["backend"] == "tensorflow"
    assert params["contributing_nodes"] == {encoder.node_id, head.node_id}
    assert len(params["variables"]) == 8
    assert "parameters" not in params
    encoder_before = encoder.model.get_weights()
    values = _train(graph, fs, encoder, loss, 120)
    assert values[-1] < 0.1 * values[0]
    assert any(not np.array_equal(encoder.model.get_weights()[k], v) for k, v in encoder_before.items())

    encoder.freeze()
    frozen = encoder.model.get_weights()
    head_before = head.model.get_weights()
    _train(graph, fs, encoder, loss, 5)
    assert graph.get_optimizer_parameters()["contributing_nodes"] == {head.node_id}
    for key, value in frozen.items():
        np.testing.assert_array_equal(encoder.model.get_weights()[key], value)
    assert any(not np.array_equal(head.model.get_weights()[k], v) for k, v in head_before.items())


def test_stage_wise_training_after_a_numpy_node() -> None:
    fs = _regression_fs()
    encoder = mml.ModelNode(
        "enc", LinearModel(output_shape=(4,)), fs, mml.Optimizer("sgd", opt_kwargs={"lr": 0.05}, backend="numpy")
    )
    head = mml.ModelNode("head", SequentialMLP(output_shape=(1,)), encoder, _adam())
    graph = mml.ModelGraph([encoder, head])
    loss = _mse(head)
    values = _train(graph, fs, encoder, loss, 120)
    assert values[-1] < 0.2 * values[0]


def test_evaluation_and_frozen_nodes_run_in_inference_mode() -> None:
    fs = _regression_fs()
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), hidden_dim=64, dropout=0.5), fs, _adam())
    graph = mml.ModelGraph([node])
    graph.build()
    first, second = _outputs(graph, fs, node, node), _outputs(graph, fs, node, node)
    np.testing.assert_array_equal(first, second)  # dropout is off in evaluation
    assert node.model.training is False
    loss = _mse(node)
    _train(graph, fs, node, loss, 1)
    assert node.model.training is True
    node.freeze()
    weights = node.model.get_weights()
    with pytest.raises(OptimizerNotSetError, match="frozen"):
        node.train_step(
            ExecutionContext("train", inputs={(node.node_id, fs.reference()): BatchView(fs, TRAIN)}), [loss]
        )
    ctx = ExecutionContext("train", inputs={(node.node_id, fs.reference()): BatchView(fs, TRAIN)})
    graph.train_step(ctx, [loss])  # a frozen node is forwarded, in inference mode, and not updated
    assert node.model.training is False
    for key, value in weights.items():
        np.testing.assert_array_equal(node.model.get_weights()[key], value)


def test_eval_step_records_no_gradients() -> None:
    import tensorflow as tf

    fs = _regression_fs()
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,)), fs, _adam())
    graph = mml.ModelGraph([node])
    loss = _mse(node)
    graph.build()
    variables = mml.get_backend("tensorflow").model_parameters(node.model)
    with tf.GradientTape() as tape:
        ctx = ExecutionContext("eval", inputs={(node.node_id, fs.reference()): BatchView(fs, VAL)})
        graph.eval_step(ctx, [loss])
    assert all(g is None for g in tape.gradient(ctx.losses[loss.label], variables))


def test_the_same_seed_trains_the_same_weights() -> None:
    def run(label: str) -> dict[str, np.ndarray]:
        mml.get_backend("tensorflow").seed(42)
        with ExperimentContext(registration_policy="error").activate():
            fs = _regression_fs()
            node = mml.ModelNode(label, SequentialMLP(output_shape=(1,), dropout=0.2), fs, _adam())
            graph = mml.ModelGraph([node])
            _train(graph, fs, node, _mse(node), 10)
            return node.model.get_weights()

    first, second = run("a"), run("b")
    for key, value in first.items():
        np.testing.assert_array_equal(second[key], value, err_msg=key)


def test_a_train_phase_trains_a_keras_node() -> None:
    from modularml.phases import InputBinding, TrainPhase
    from modularml.samplers import SimpleSampler

    fs = _regression_fs()
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), hidden_dim=32), fs, _adam())
    graph = mml.ModelGraph([node])
    loss = _mse(node)
    sampler = SimpleSampler(batch_size=32, shuffle=True, seed=0, show_progress=False)
    binding = InputBinding.for_training(node=node, sampler=sampler, upstream=fs)
    phase = TrainPhase("train", input_sources=[binding], losses=[loss], n_epochs=20)
    results = phase.execute(graph=graph, show_sampler_progress=False, show_training_progress=False)
    losses = results.metrics().epoch_values("train_loss")
    assert losses[max(losses)] < 0.2 * losses[min(losses)]
    assert mml.get_backend("tensorflow").step_trace_count(node.optimizer.instance) == 1  # 20 epochs, 80 steps


def _three_steps(label: str, *, eager: bool, weights: np.ndarray | None = None) -> tuple[dict, int]:
    import tensorflow as tf

    mml.get_backend("tensorflow").seed(7)
    tf.config.run_functions_eagerly(eager)
    try:
        with ExperimentContext(registration_policy="error").activate():
            fs = _regression_fs()
            node = mml.ModelNode(label, SequentialMLP(output_shape=(1,), hidden_dim=8), fs, _adam())
            graph = mml.ModelGraph([node])
            loss = _mse(node)
            for _ in range(3):
                view = (
                    BatchView(fs, TRAIN) if weights is None else BatchView(fs, {"default": TRAIN}, {"default": weights})
                )
                graph.train_step(ExecutionContext("train", inputs={(node.node_id, fs.reference()): view}), [loss])
            traces = mml.get_backend("tensorflow").step_trace_count(node.optimizer.instance)
            return node.model.get_weights(), traces
    finally:
        tf.config.run_functions_eagerly(False)


def test_a_compiled_step_computes_what_the_eager_step_computes() -> None:
    compiled, traces = _three_steps("compiled", eager=False)
    eager, _ = _three_steps("eager", eager=True)
    assert traces == 1
    for key, value in compiled.items():
        np.testing.assert_allclose(value, eager[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_weighted_batches_train_through_the_tape_and_agree() -> None:
    weights = np.linspace(0.5, 1.5, len(TRAIN)).astype("float32")
    weighted, traces = _three_steps("weighted", eager=False, weights=weights)
    assert traces == 0  # a weighted batch is not a plain one: the step runs under gradient_scope
    reference, _ = _three_steps("reference", eager=True, weights=weights)
    for key, value in weighted.items():
        np.testing.assert_allclose(value, reference[key], rtol=1e-5, atol=1e-6, err_msg=key)


def _global_steps(label: str, *, eager: bool) -> tuple[dict, int]:
    import tensorflow as tf

    mml.get_backend("tensorflow").seed(11)
    tf.config.run_functions_eagerly(eager)
    try:
        with ExperimentContext(registration_policy="error").activate():
            fs = _regression_fs()
            encoder = mml.ModelNode(f"{label}_enc", SequentialMLP(output_shape=(4,), hidden_dim=8), fs)
            head = mml.ModelNode(f"{label}_head", SequentialMLP(output_shape=(1,), n_layers=1), encoder)
            graph = mml.ModelGraph([encoder, head], optimizer=_adam())
            loss = _mse(head)
            _train(graph, fs, encoder, loss, 3)
            ctx = ExecutionContext("train", inputs={(encoder.node_id, fs.reference()): BatchView(fs, TRAIN)})
            graph.train_step(ctx, [loss])
            out = ctx.get_output(head.node_id)
            np.testing.assert_array_equal(out.role_data["default"].sample_uuids, fs.get_sample_uuids()[TRAIN])
            traces = mml.get_backend("tensorflow").step_trace_count(graph.optimizer.instance)
            weights = {f"encoder/{k}": v for k, v in encoder.model.get_weights().items()}
            weights.update({f"head/{k}": v for k, v in head.model.get_weights().items()})
            return weights, traces
    finally:
        tf.config.run_functions_eagerly(False)


def test_a_compiled_graph_step_computes_what_the_eager_step_computes() -> None:
    compiled, traces = _global_steps("compiled", eager=False)
    eager, _ = _global_steps("eager", eager=True)
    assert traces == 1  # one function for the whole chain: both forwards, the loss, the update
    for key, value in compiled.items():
        np.testing.assert_allclose(value, eager[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_a_loss_of_another_backend_on_a_keras_node_is_refused_as_before() -> None:
    from modularml.errors import InvalidArgumentError

    fs = _regression_fs()
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,)), fs, _adam())
    graph = mml.ModelGraph([node])
    numpy_loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=node, inputs=["outputs", "targets"])
    ctx = ExecutionContext("train", inputs={(node.node_id, fs.reference()): BatchView(fs, TRAIN)})
    with pytest.raises(InvalidArgumentError, match="one-element"):
        graph.train_step(ctx, [numpy_loss])  # a numpy-backend value is no TensorFlow loss to differentiate
    assert mml.get_backend("tensorflow").step_trace_count(node.optimizer.instance) == 0
