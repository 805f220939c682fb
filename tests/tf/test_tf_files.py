"""TensorFlow models, graphs and optimizers through ModularML files, and predictions in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest

import modularml as mml
from modularml.batches import BatchView, ExecutionContext
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.errors import SerializationError
from modularml.models import BaseModel
from modularml_tf import SequentialCNN, SequentialMLP, SequentialRNN, TensorflowModelWrapper


@pytest.fixture
def impl():
    return mml.get_backend("tensorflow")


def _train(impl, model, x: np.ndarray, y: np.ndarray, steps: int) -> None:
    model.build(input_shape=x.shape[1:])
    params = impl.model_parameters(model)
    optimizer = impl.build_optimizer(impl.resolve_optimizer("adam"), {"lr": 1e-2}, params)
    loss_fn = impl.build_loss(impl.resolve_loss("mse"), {}, "none")
    model.train()
    xt, yt = impl.from_numpy(x), impl.from_numpy(y)
    for _ in range(steps):
        with impl.gradient_scope() as scope:
            value = impl.mean(loss_fn(model(xt), yt))
        impl.apply_gradients(value, optimizer, params, scope)
    model.eval()


def keras_head(input_shape, width: int = 6):
    """A module-level factory, so that a wrapper of it can be saved."""
    return keras.Sequential(
        [keras.Input(input_shape), keras.layers.Dense(width, activation="relu"), keras.layers.Dense(2)]
    )


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]  # the repository: tests.tf.test_tf_files imports

_FACTORIES = {
    "mlp": lambda: SequentialMLP(output_shape=(2,), batch_norm=True, dropout=0.1),
    "cnn": lambda: SequentialCNN(output_shape=2, batch_norm=True),
    "rnn": lambda: SequentialRNN(output_shape=2, cell="gru"),
    "wrapper": lambda: TensorflowModelWrapper(model_class=keras_head, model_kwargs={"width": 5}),
}


def test_models_round_trip_through_files_and_predict_identically_in_a_fresh_process(impl, tmp_path) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 12)).astype("float32")
    y = rng.standard_normal((16, 2)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    expected, paths = {}, {}
    for name, factory in _FACTORIES.items():
        impl.seed(3)
        model = factory()
        _train(impl, model, x, y, steps=5)
        expected[name] = impl.to_numpy(model(x))
        paths[name] = str(model.save(tmp_path / name))
        with zipfile.ZipFile(paths[name]) as archive:  # weights as arrays: no Keras archive, no pickle
            names = archive.namelist()
        assert not any(n.endswith((".keras", ".h5", ".pkl", ".pickle")) for n in names), names
        loaded = BaseModel.load(paths[name], allow_packaged_code=name == "wrapper")
        assert type(loaded) is type(model)
        assert (loaded.input_shape, loaded.output_shape) == (model.input_shape, model.output_shape)
        loaded.eval()
        np.testing.assert_array_equal(impl.to_numpy(loaded(x)), expected[name], err_msg=name)

    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from modularml.models import BaseModel
        x = np.load({str(tmp_path / "x.npy")!r})
        for name, path in {paths!r}.items():
            model = BaseModel.load(path, allow_packaged_code=name == "wrapper")
            model.eval()
            np.save({str(tmp_path)!r} + f"/{{name}}.npy", np.asarray(model(x)))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for name, values in expected.items():
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}.npy"), values, err_msg=name)


def test_a_wrapped_instance_cannot_be_saved_as_code(tmp_path) -> None:
    wrapper = TensorflowModelWrapper(keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]))
    with pytest.raises(SerializationError, match="instance"):
        wrapper.save(tmp_path / "instance")


def test_a_graph_with_keras_nodes_round_trips_with_its_optimizer_state(impl, tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5])).astype(np.float32)

    def step(graph, node, fs, loss) -> None:
        ref = node.upstream_refs[0]
        ctx = ExecutionContext("train", inputs={(node.node_id, ref): BatchView(fs, np.arange(64))})
        graph.train_step(ctx, [loss])

    with ExperimentContext(registration_policy="error").activate():
        impl.seed(0)
        fs = FeatureSet.from_dict("data", {"x": x, "y": y}, "x", "y")
        fs_path = fs.save(tmp_path / "data")
        node = mml.ModelNode(
            "mlp", SequentialMLP(output_shape=(1,)), fs, mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="tf")
        )
        graph = mml.ModelGraph([node], label="graph")
        loss = mml.AppliedLoss(mml.Loss("mse", backend="tensorflow"), on=node, inputs=["outputs", "targets"])
        for _ in range(3):
            step(graph, node, fs, loss)
        path = graph.save(tmp_path / "graph")
        for _ in range(2):
            step(graph, node, fs, loss)
        expected = node.model.get_weights()

    with ExperimentContext(registration_policy="error").activate():
        fs2 = FeatureSet.load(fs_path)
        graph2 = mml.ModelGraph.load(path)
        node2 = next(iter(graph2.nodes.values()))
        loss2 = mml.AppliedLoss(mml.Loss("mse", backend="tensorflow"), on=node2, inputs=["outputs", "targets"])
        for _ in range(2):
            step(graph2, node2, fs2, loss2)
        for key, value in expected.items():  # the optimizer state came back: training continued bit for bit
            np.testing.assert_array_equal(node2.model.get_weights()[key], value, err_msg=key)
