"""Accelerators with the torch backend: on the CPU here, on CUDA where a GPU is visible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import modularml as mml
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.phases import EvalPhase, TrainPhase
from modularml_torch import SequentialMLP

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def fresh_context():
    with ExperimentContext(registration_policy="error").activate() as ctx:
        mml.get_backend("torch").seed(0)
        yield ctx


def _setup(node_accelerator=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], dtype=np.float32)).astype(np.float32)
    fs = FeatureSet.from_dict("data", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}, ["a", "b", "c"], ["y"])
    fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
    opt = mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch")
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,)), fs, opt, accelerator=node_accelerator)
    graph = mml.ModelGraph([node])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    return fs, node, graph, loss


def _train(loss, accelerator=None, n_epochs: int = 3) -> list[float]:
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    phase = TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=[loss], n_epochs=n_epochs, accelerator=accelerator
    )
    results = phase.execute(show_sampler_progress=False, show_training_progress=False)
    return [results.epoch_losses()[e] for e in range(n_epochs)]


def _eval_outputs(node, accelerator=None) -> object:
    results = EvalPhase.from_split("val", split="val", accelerator=accelerator).execute()
    return results.stacked_tensors(node, domain="outputs", fmt="numpy")


def test_cpu_accelerator_trains_exactly_like_no_accelerator() -> None:
    _, _, _, loss = _setup()
    plain = _train(loss)
    with ExperimentContext(registration_policy="error").activate():
        mml.get_backend("torch").seed(0)
        _, node, _, loss2 = _setup()
        placed = _train(loss2, accelerator=mml.Accelerator("cpu"))
        assert node.model.device == "cpu"
    assert placed == plain
    assert placed[-1] < placed[0]


def test_the_nodes_accelerator_wins_over_the_phases() -> None:
    _, node, _, loss = _setup(node_accelerator="cpu")
    values = _train(loss, accelerator="cuda:7")  # the phase's device is never used: the node's is the CPU
    assert values[-1] < values[0]
    assert node.model.device == "cpu"


def test_an_unavailable_device_names_itself_the_devices_here_and_what_to_do() -> None:
    _, node, _, loss = _setup()
    available = mml.get_backend("torch").available_devices()
    with pytest.raises(mml.DeviceError, match=r"'cuda:7'") as info:
        _train(loss, accelerator="cuda:7", n_epochs=1)
    message = str(info.value)
    assert "mlp" in message
    assert "phase's accelerator" in message
    assert str(available) in message
    assert "accelerator='cpu'" in message
    assert node.model.device == "cpu"  # left where it was
    with ExperimentContext(registration_policy="error").activate():
        _, _, _, other_loss = _setup(node_accelerator="gpu:7")
        with pytest.raises(mml.DeviceError, match=r"'cuda:7'.*its own accelerator"):
            _train(other_loss, n_epochs=1)


@pytest.mark.parametrize("bad", ["tpu", "gpu:x", "cuda:-1", "cpu:1"])
def test_a_malformed_device_string_is_refused_where_it_is_given(bad: str) -> None:
    fs, _, _, loss = _setup()
    with pytest.raises(mml.DeviceError, match="cpu"):
        mml.Accelerator(bad)
    with pytest.raises(mml.DeviceError):
        mml.ModelNode("other", SequentialMLP(output_shape=(1,)), fs, accelerator=bad)
    sampler = mml.SimpleSampler(batch_size=16, show_progress=False)
    with pytest.raises(mml.DeviceError):
        TrainPhase.from_split("t", split="train", sampler=sampler, losses=[loss], accelerator=bad)


def test_eval_outputs_are_numpy_on_the_cpu_and_match_the_model() -> None:
    _, node, _, loss = _setup()
    _train(loss, accelerator="cpu", n_epochs=1)
    outputs = _eval_outputs(node, accelerator="cpu")
    assert isinstance(outputs, np.ndarray)
    assert outputs.shape == (24, 1)
    assert outputs.dtype == np.float32
    native = EvalPhase.from_split("val2", split="val").execute().stacked_tensors(node, domain="outputs")
    np.testing.assert_array_equal(mml.get_backend("torch").to_numpy(native), outputs)


@needs_cuda
def test_training_on_cuda_moves_inputs_and_targets_and_reads_back_on_the_cpu() -> None:
    _, node, _, loss = _setup()
    values = _train(loss, accelerator="cuda:0")
    assert values[-1] < values[0]
    assert node.model.device == "cuda:0"
    outputs = _eval_outputs(node)  # no accelerator: batches follow the model onto cuda:0
    assert isinstance(outputs, np.ndarray)
    assert outputs.shape == (24, 1)


@needs_cuda
def test_a_model_moved_to_cuda_by_hand_trains_without_an_accelerator() -> None:
    _, node, _, loss = _setup()
    node.model.to_device("cuda:0")
    values = _train(loss)  # targets used to stay on the CPU here
    assert values[-1] < values[0]


@needs_cuda
def test_pinned_batches_train_like_unpinned_ones() -> None:
    _, _, _, loss = _setup()
    pinned = _train(loss, accelerator=mml.Accelerator("cuda:0", pin_memory=True))
    with ExperimentContext(registration_policy="error").activate():
        mml.get_backend("torch").seed(0)
        _, _, _, loss2 = _setup()
        plain = _train(loss2, accelerator="cuda:0")
    np.testing.assert_allclose(pinned, plain, rtol=1e-5)


@needs_cuda
def test_a_built_optimizers_state_moves_with_the_model() -> None:
    _, node, _, loss = _setup()
    _train(loss, accelerator="cpu", n_epochs=1)
    values = _train(loss, accelerator="cuda:0", n_epochs=2)
    state = node.optimizer.instance.state
    assert all(t.device.type == "cuda" for s in state.values() for t in s.values() if torch.is_tensor(t) and t.dim())
    assert np.isfinite(values).all()
