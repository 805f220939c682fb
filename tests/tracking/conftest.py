"""The tracking plugins' tests (``nox -s tracking``): a small regression trained with the numpy backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import numpy as np
import pytest

import modularml as mml

pytest.importorskip(
    "modularml_numpy", reason="the phases train with the numpy backend plugin (plugins/modularml_numpy)"
)


@pytest.fixture(autouse=True)
def _own_context() -> Iterator[object]:
    from modularml.context import ExperimentContext

    ctx = ExperimentContext(registration_policy="error")
    with ctx.activate():
        mml.get_backend("numpy").seed(0)
        yield ctx


@pytest.fixture
def regression() -> Callable[..., SimpleNamespace]:
    """A split regression FeatureSet, a linear head, its loss, and a TrainPhase maker (with a validation callback)."""
    from modularml_numpy.models import LinearModel

    def make(n: int = 48) -> SimpleNamespace:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n, 3)).astype(np.float32)
        y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(np.float32)
        data = {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y, "g": np.arange(n) % 4}
        fs = mml.FeatureSet.from_dict("data", data, ["a", "b", "c"], ["y"], ["g"])
        fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
        opt = mml.Optimizer("sgd", opt_kwargs={"lr": 0.05}, backend="numpy")
        head = mml.ModelNode("head", LinearModel(output_shape=(1,)), fs, opt)
        graph = mml.ModelGraph([head])
        loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])

        def train_phase(n_epochs: int = 3, label: str = "train") -> mml.TrainPhase:
            sampler = mml.SimpleSampler(batch_size=12, shuffle=True, seed=0, show_progress=False)
            phase = mml.TrainPhase.from_split(label, split="train", sampler=sampler, losses=[loss], n_epochs=n_epochs)
            phase.add_callback(mml.Evaluation.from_split("val", split="val", losses=[loss]))
            return phase

        return SimpleNamespace(fs=fs, head=head, graph=graph, loss=loss, train_phase=train_phase)

    return make
