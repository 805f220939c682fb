"""The sklearn-then-torch example runs end to end: a fitted, frozen PCA stage feeds a trained torch MLP."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import modularml as mml

pytest.importorskip("modularml_sklearn")
pytest.importorskip("modularml_torch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sklearn_torch_hybrid.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sklearn_torch_hybrid_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_the_example_beats_the_mean_and_leaves_the_fitted_pca_alone(example, monkeypatch, capsys) -> None:
    import torch

    from modularml_sklearn.models import ScikitModelWrapper

    fits: list[tuple[int, ...]] = []
    forwards: list[int] = []
    original_fit, original_forward = ScikitModelWrapper.fit, ScikitModelWrapper.forward

    def counting_fit(self, x, y=None, **kwargs):
        fits.append(tuple(np.shape(x)))
        return original_fit(self, x, y, **kwargs)

    def counting_forward(self, x, **kwargs):
        out = original_forward(self, x, **kwargs)
        assert isinstance(out, np.ndarray)
        assert out.dtype == np.float32
        forwards.append(len(out))
        return out

    active = mml.ExperimentContext.get_active()
    nodes = dict(active.available_nodes)
    monkeypatch.setattr(ScikitModelWrapper, "fit", counting_fit)
    monkeypatch.setattr(ScikitModelWrapper, "forward", counting_forward)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = example.main(n_cells=6, samples_per_cell=20, n_points=20, n_components=4, epochs=12, verbose=True)
    finally:
        torch.set_num_threads(threads)

    assert mml.ExperimentContext.get_active() is active  # the example ran in its own context
    assert dict(active.available_nodes) == nodes
    assert summary["test_rmse"] < 0.75 * summary["baseline_rmse"]
    assert summary["last_epoch_loss"] < 0.5 * summary["first_epoch_loss"]
    assert summary["pca_max_change"] == 0.0  # frozen after the FitPhase: training never touched it
    assert 0.0 < summary["explained_variance"] <= 1.0
    # fitted exactly once, on every training row (2 curves x 20 points each), then only forwarded
    assert fits == [(int(summary["n_train"]), 2, 20)]
    assert sum(forwards) > summary["n_train"] + summary["n_test"]
    printed = capsys.readouterr().out
    assert "Test RMSE" in printed
    assert "predicting the training mean" in printed


def test_main_is_reproducible_from_its_seed(example) -> None:
    kwargs = {"n_cells": 4, "samples_per_cell": 10, "n_points": 10, "n_components": 3, "epochs": 3, "verbose": False}
    first, second = example.main(**kwargs), example.main(**kwargs)
    assert first == second
    assert example.main(**{**kwargs, "seed": 1})["test_rmse"] != first["test_rmse"]


def test_each_backend_claims_only_its_own_models() -> None:
    from sklearn.decomposition import PCA
    from torch import nn

    from modularml.errors import InvalidTypeError
    from modularml_sklearn.models import ScikitModelWrapper
    from modularml_torch import SequentialMLP, TorchModelWrapper

    scikit, torch_impl = mml.get_backend("scikit"), mml.get_backend("torch")
    module = nn.Linear(3, 1)
    for foreign in (module, SequentialMLP(output_shape=(1,))):
        assert scikit.claims_model(foreign) is False
    assert torch_impl.claims_model(PCA()) is False
    with pytest.raises(InvalidTypeError, match="got Linear"):
        scikit.wrap_model(module)
    with mml.ExperimentContext(registration_policy="error").activate():
        fs = mml.FeatureSet.from_dict("xy", {"a": np.zeros(4, np.float32), "y": np.zeros(4, np.float32)}, ["a"], ["y"])
        assert isinstance(mml.ModelNode("linear", module, fs).model, TorchModelWrapper)
        assert isinstance(mml.ModelNode("pca", PCA(n_components=1), fs).model, ScikitModelWrapper)


def test_a_torch_node_after_an_unfitted_regressor_waits_for_the_fit_then_trains() -> None:
    from sklearn.linear_model import Ridge

    from modularml.phases import FitPhase, TrainPhase
    from modularml_torch import SequentialMLP

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -1.0, 0.5])).astype(np.float32)
    with mml.ExperimentContext(registration_policy="error").activate():
        fs = mml.FeatureSet.from_dict("ridge_data", {"x": x, "y": y}, "x", "y")
        fs.split_random({"train": 0.75, "val": 0.25}, seed=0)
        ridge = mml.ModelNode("ridge", Ridge(alpha=0.1), fs)
        opt = mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch")
        mlp = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=8), ridge, opt)
        graph = mml.ModelGraph([ridge, mlp])
        graph.build()  # Ridge's output width is unknown before its fit: the MLP waits
        assert not mlp.is_built
        FitPhase.from_split("fit", split="train").execute(graph=graph)
        loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=mlp, inputs=["outputs", "targets"])
        sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
        train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[loss], n_epochs=20)
        results = train.execute(graph=graph, show_sampler_progress=False, show_training_progress=False)
        assert mlp.model.input_shape == (1,)
        epoch_losses = results.metrics().epoch_values("train_loss")
        assert epoch_losses[19] < 0.5 * epoch_losses[0]
