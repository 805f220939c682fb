"""TensorFlow nodes beside torch and scikit-learn nodes: one graph, one TrainPhase, values converted between them."""

from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.errors import BackendMismatchError, InvalidArgumentError
from modularml.phases import EvalPhase, FitPhase, TrainPhase

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sklearn.decomposition import PCA  # noqa: E402

from modularml_tf import SequentialMLP as KerasMLP  # noqa: E402
from modularml_torch import SequentialMLP as TorchMLP  # noqa: E402


def _data(n: int = 160) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (np.tanh(x[:, :3] @ np.array([1.0, -1.5, 0.5])) + 0.2).astype(np.float32)
    return x, y


def _mse(node, backend: str) -> mml.AppliedLoss:
    return mml.AppliedLoss(mml.Loss("mse", backend=backend), on=node, inputs=["outputs", "targets"])


def _train(graph, losses, epochs: int = 15):
    sampler = mml.SimpleSampler(batch_size=32, shuffle=True, seed=0, show_progress=False)
    train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=losses, n_epochs=epochs)
    return train.execute(graph=graph, show_sampler_progress=False, show_training_progress=False)


def test_torch_tensorflow_and_sklearn_nodes_train_in_one_phase() -> None:
    x, y = _data()
    mml.get_backend("torch").seed(0)
    mml.get_backend("tensorflow").seed(0)
    with mml.ExperimentContext(registration_policy="error").activate():
        fs = mml.FeatureSet.from_dict("mixed", {"x": x, "y": y}, "x", "y")
        fs.split_random({"train": 0.75, "val": 0.25}, seed=0)
        pca = mml.ModelNode("pca", PCA(n_components=4, random_state=0), fs)
        encoder = mml.ModelNode(
            "torch_enc",
            TorchMLP(output_shape=(1,), hidden_dim=16),
            pca,
            mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch"),
        )
        head = mml.ModelNode(
            "keras_head",
            KerasMLP(output_shape=(1,), hidden_dim=16),
            encoder,
            mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="tensorflow"),
        )
        graph = mml.ModelGraph([pca, encoder, head])
        FitPhase.from_split("fit", split="train").execute(graph=graph)
        components = np.array(pca.model.estimator.components_, copy=True)
        losses = [_mse(encoder, "torch"), _mse(head, "tensorflow")]
        graph.build()
        enc_before, head_before = encoder.model.get_weights(), head.model.get_weights()
        results = _train(graph, losses)
        for node, loss in zip((encoder, head), losses, strict=True):
            epochs = results.losses(node).where(loss=loss.label).collapse("batch", "mean").values
            assert len(epochs) == 15
            assert epochs[-1] < 0.5 * epochs[0], (loss.label, epochs)
        assert any(not np.array_equal(v, encoder.model.get_weights()[k]) for k, v in enc_before.items())
        assert any(not np.array_equal(v, head.model.get_weights()[k]) for k, v in head_before.items())
        np.testing.assert_array_equal(pca.model.estimator.components_, components)  # fitted once, then frozen

        evaluation = EvalPhase.from_split("val", split="val", losses=losses).execute(graph=graph)
        batch = evaluation.batches(head).values[0]
        assert tf.is_tensor(batch.role_data[batch.roles[0]].outputs)  # the torch outputs became TF inputs
        enc_batch = evaluation.batches(encoder).values[0]
        assert isinstance(enc_batch.role_data[enc_batch.roles[0]].outputs, torch.Tensor)


def test_a_global_tensorflow_optimizer_trains_the_tensorflow_nodes_after_a_fitted_stage() -> None:
    x, y = _data()
    mml.get_backend("tensorflow").seed(1)
    with mml.ExperimentContext(registration_policy="error").activate():
        fs = mml.FeatureSet.from_dict("global", {"x": x, "y": y}, "x", "y")
        fs.split_random({"train": 0.75, "val": 0.25}, seed=0)
        pca = mml.ModelNode("pca", PCA(n_components=4, random_state=0), fs)
        encoder = mml.ModelNode("enc", KerasMLP(output_shape=(8,), hidden_dim=16), pca)
        head = mml.ModelNode("head", KerasMLP(output_shape=(1,), n_layers=1), encoder)
        graph = mml.ModelGraph(
            [pca, encoder, head], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="tensorflow")
        )
        FitPhase.from_split("fit", split="train").execute(graph=graph)
        results = _train(graph, [_mse(head, "tensorflow")])
        params = graph.get_optimizer_parameters()
        assert params["contributing_nodes"] == {encoder.node_id, head.node_id}
        assert all(isinstance(v, tf.Variable) for v in params["variables"])
        values = results.metrics().epoch_values("train_loss")
        assert values[max(values)] < 0.5 * values[min(values)]


def test_keras_models_and_torch_optimizers_do_not_mix() -> None:
    x, y = _data(16)
    with mml.ExperimentContext(registration_policy="error").activate():
        fs = mml.FeatureSet.from_dict("refused", {"x": x, "y": y}, "x", "y")
        torch_adam = mml.Optimizer("adam", backend="torch")
        with pytest.raises(InvalidArgumentError, match="'tensorflow' model but its optimizer is for 'torch'"):
            mml.ModelNode("keras", KerasMLP(output_shape=(1,)), fs, torch_adam)
        keras_node = mml.ModelNode("keras", KerasMLP(output_shape=(1,)), fs)
        torch_node = mml.ModelNode("torch", TorchMLP(output_shape=(1,)), keras_node)
        with pytest.raises(BackendMismatchError, match=r"\['tensorflow', 'torch'\]"):
            mml.ModelGraph([keras_node, torch_node], optimizer=mml.Optimizer("adam", backend="torch"))
