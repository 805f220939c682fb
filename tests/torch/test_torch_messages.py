"""What a new user is told when a raw torch model does not fit its input, and seeding torch through mml."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

import modularml as mml
from modularml.context import ExperimentContext
from modularml.datasets import make_featureset
from modularml.errors import LossError, ModelForwardError
from modularml.phases import TrainPhase


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[ExperimentContext]:
    with ExperimentContext(registration_policy="error").activate() as ctx:
        yield ctx


def _train_raw(module: nn.Module) -> None:
    fs = make_featureset("cells", n_samples=40, seed=0)  # features voltage and current: (N, 2, 100)
    fs.split_random({"train": 0.8, "val": 0.2}, seed=1)
    head = mml.ModelNode("lin", module, fs)
    mml.ModelGraph([head], optimizer=mml.Optimizer("adam", backend="torch"))
    mse = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
    phase = TrainPhase.from_split("t", split="train", sampler=mml.SimpleSampler(batch_size=8), losses=[mse])
    phase.execute(show_training_progress=False, show_sampler_progress=False)


def test_a_raw_module_that_cannot_take_the_input_names_the_node_and_the_shapes() -> None:
    with pytest.raises(ModelForwardError) as info:
        _train_raw(nn.Linear(200, 1))
    message = str(info.value)
    assert message.startswith(
        "ModelNode 'lin' (Linear, backend 'torch') failed on a batch of shape (8, 2, 100) (per sample (2, 100)): "
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied"
    )
    assert "Make the model accept per-sample inputs of shape (2, 100)" in message
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_raw_module_with_outputs_of_the_wrong_size_names_the_node_and_both_shapes() -> None:
    with pytest.raises(LossError) as info:
        _train_raw(nn.Linear(100, 1))  # runs per curve: (8, 2, 1) outputs for (8,) targets
    message = str(info.value)
    assert "on node 'lin': outputs of shape (8, 2, 1) and targets of shape (8,) do not match" in message
    assert "per-sample element counts differ: 2 and 1" in message


def test_seed_everything_seeds_torch() -> None:
    assert "torch" in [str(b) for b in mml.seed_everything(3)]
    first = torch.rand(4)
    mml.seed_everything(3)
    assert torch.equal(torch.rand(4), first)
