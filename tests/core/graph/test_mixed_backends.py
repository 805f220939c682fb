"""A graph whose nodes use two backends: a second numpy backend ("numpy2") registered by a test plugin."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import modularml as mml
from modularml.batches import BatchView, ExecutionContext
from modularml.errors import BackendMismatchError
from modularml.plugins import PluginManager, hookimpl, use_plugin_manager
from modularml_numpy.backend import NumpyBackend
from modularml_numpy.models import LinearModel


class RawNet:
    """A "framework model" that only the second backend knows how to wrap."""

    def __init__(self, n_out: int) -> None:
        self.n_out = n_out


class SecondNumpyBackend(NumpyBackend):
    name = "numpy2"

    def claims_model(self, obj) -> bool:
        return isinstance(obj, RawNet)

    def wrap_model(self, obj):
        if isinstance(obj, RawNet):
            return SecondLinearModel(output_shape=(obj.n_out,))
        return super().wrap_model(obj)


class SecondLinearModel(LinearModel):
    """The numpy LinearModel, owned by the second backend."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._backend = mml.Backend("numpy2")


class SecondBackendPlugin:
    @staticmethod
    @hookimpl
    def register_backends(register) -> None:
        register("numpy2", SecondNumpyBackend, description="a second numpy backend, for mixed-backend tests")

    @staticmethod
    @hookimpl
    def register_losses(register) -> None:
        register("mse", "modularml_numpy.losses:MSELoss", backend="numpy2")

    @staticmethod
    @hookimpl
    def register_optimizers(register) -> None:
        register("sgd", "modularml_numpy.optimizers:SGD", backend="numpy2")


@pytest.fixture(autouse=True)
def second_backend() -> Iterator[PluginManager]:
    manager = PluginManager()
    manager.register(SecondBackendPlugin(), name="numpy2-test", distribution="numpy2-test-dist")
    with use_plugin_manager(manager):
        yield manager


def _sgd(backend: str, lr: float = 0.05) -> mml.Optimizer:
    return mml.Optimizer("sgd", opt_kwargs={"lr": lr}, backend=backend)


def _graph(fs, *, optimizer=None, node_optimizers=True):
    enc = mml.ModelNode("enc", LinearModel(output_shape=(1,)), fs, _sgd("numpy") if node_optimizers else None)
    head = mml.ModelNode("head", SecondLinearModel(output_shape=(1,)), enc, _sgd("numpy2") if node_optimizers else None)
    return enc, head, mml.ModelGraph([enc, head], optimizer=optimizer)


def _losses(enc, head):
    return [
        mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=enc, inputs=["outputs", "targets"]),
        mml.AppliedLoss(mml.Loss("mse", backend="numpy2"), on=head, inputs=["outputs", "targets"]),
    ]


def test_inputs_cross_backends_at_node_boundaries(regression_fs) -> None:
    fs = regression_fs()
    enc, head, graph = _graph(fs)
    assert head.backend == "numpy2"
    assert enc.backend == "numpy"
    assert graph.backend is None
    graph.build()
    ctx = ExecutionContext("train", inputs={(enc.node_id, fs.reference()): BatchView(fs, np.arange(len(fs)))})
    graph.train_step(ctx, _losses(enc, head))
    assert set(ctx.outputs) == {enc.node_id, head.node_id}
    assert set(ctx.losses) == {loss.label for loss in _losses(enc, head)}

    outputs = graph.forward({(enc.node_id, fs.reference()): BatchView(fs, np.arange(4))})
    assert set(outputs) == {enc.node_id, head.node_id}


def test_each_node_trains_with_its_own_optimizer(regression_fs) -> None:
    fs = regression_fs()
    enc, head, graph = _graph(fs)
    losses = _losses(enc, head)
    first = last = None
    for _ in range(60):
        ctx = ExecutionContext("train", inputs={(enc.node_id, fs.reference()): BatchView(fs, np.arange(len(fs)))})
        graph.train_step(ctx, losses)
        values = [float(np.asarray(ctx.losses[loss.label].data)) for loss in losses]
        first = first or values
        last = values
    assert last[0] < 0.1 * first[0]
    assert last[1] < 0.1 * first[1]


def test_head_gradient_does_not_reach_the_other_backend(regression_fs) -> None:
    fs = regression_fs()
    enc, head, graph = _graph(fs, node_optimizers=False)
    graph.build()
    with mml.get_backend("numpy2").gradient_scope():
        ctx = ExecutionContext("x", inputs={(enc.node_id, fs.reference()): BatchView(fs, np.arange(8))})
        enc.forward_from_context(ctx)
        head.forward_from_context(ctx)
    ctx.outputs[head.node_id].outputs.sum().backward()
    assert all(p.grad is None for p in enc.parameters())
    assert all(p.grad is not None for p in head.parameters())

    # within one backend, the same path keeps the gradient link
    same = mml.ModelNode("same", LinearModel(output_shape=(1,)), enc)
    mml.ModelGraph([enc, same], register=False).build()
    with mml.get_backend("numpy").gradient_scope():
        ctx = ExecutionContext("y", inputs={(enc.node_id, fs.reference()): BatchView(fs, np.arange(8))})
        enc.forward_from_context(ctx)
        same.forward_from_context(ctx)
    ctx.outputs[same.node_id].outputs.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_global_optimizer_over_mixed_backends_is_refused(regression_fs) -> None:
    fs = regression_fs()
    with pytest.raises(BackendMismatchError, match=r"backends \['numpy', 'numpy2'\]"):
        _graph(fs, optimizer=_sgd("numpy"), node_optimizers=False)
    enc = mml.ModelNode("solo", LinearModel(output_shape=(1,)), fs)
    graph = mml.ModelGraph([enc], optimizer=_sgd("numpy"), register=False)
    other = mml.ModelNode("other", SecondLinearModel(output_shape=(1,)), enc)
    with pytest.raises(RuntimeError, match="global optimizer"):
        graph.add_node(other)
    assert other.node_id not in graph.nodes


def test_raw_model_is_wrapped_by_the_backend_that_claims_it(regression_fs) -> None:
    fs = regression_fs()
    node = mml.ModelNode("raw", RawNet(2), fs)
    assert isinstance(node.model, SecondLinearModel)
    assert node.backend == "numpy2"
    mml.ModelGraph([node], register=False).build()
    assert node.output_shape == (2,)
