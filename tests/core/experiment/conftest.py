from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest

import modularml as mml
from modularml.context import ExperimentContext

pytest.importorskip("modularml_numpy", reason="phases train with the numpy backend plugin (plugins/modularml_numpy)")


@pytest.fixture(autouse=True)
def fresh_context() -> Iterator[ExperimentContext]:
    """Each test registers its FeatureSets, nodes and graph in its own context (policy ``error``)."""
    ctx = ExperimentContext(registration_policy="error")
    with ctx.activate():
        mml.get_backend("numpy").seed(0)
        yield ctx


@pytest.fixture
def linear_setup(regression_fs) -> Callable[..., SimpleNamespace]:
    """A split regression FeatureSet, one linear head node with SGD, its graph and an MSE loss."""
    from modularml_numpy.models import LinearModel

    def make(n: int = 64, lr: float = 0.05, scale_targets: str | None = None, extra_heads: int = 0) -> SimpleNamespace:
        fs = regression_fs(n=n)
        fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
        if scale_targets is not None:
            fs.fit_transform(scale_targets, domain="targets", fit_to_split="train")
        opt = mml.Optimizer("sgd", opt_kwargs={"lr": lr}, backend="numpy")
        head = mml.ModelNode("head", LinearModel(output_shape=(1,)), fs, opt)
        extra = [
            mml.ModelNode(f"head{i}", LinearModel(output_shape=(1,)), fs, opt.__class__.from_config(opt.get_config()))
            for i in range(1, extra_heads + 1)
        ]
        graph = mml.ModelGraph([head, *extra])
        mse = mml.Loss("mse", backend="numpy")
        loss = mml.AppliedLoss(mse, on=head, inputs=["outputs", "targets"])
        extra_losses = [mml.AppliedLoss(mse, on=node, inputs=["outputs", "targets"]) for node in extra]
        return SimpleNamespace(fs=fs, head=head, graph=graph, loss=loss, extra=extra, extra_losses=extra_losses)

    return make
