"""Targets of any per-sample shape train: multi-output regression, sequences, 2-D maps (issue #8, item 9)."""

from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import Evaluation
from modularml.phases import EvalPhase, TrainPhase
from modularml_numpy.models import LinearModel


def _setup(target_shape: tuple[int, ...], *, n: int = 80, lr: float = 0.05):
    """A FeatureSet whose target (per-sample shape ``target_shape``) is linear in 3 features, and a linear head."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    w = rng.normal(size=(3, int(np.prod(target_shape)))).astype(np.float32)
    y = (x @ w + 0.1).reshape(n, *target_shape).astype(np.float32)
    fs = mml.FeatureSet.from_dict("d", {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}, ["a", "b", "c"], ["y"], [])
    fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
    opt = mml.Optimizer("sgd", opt_kwargs={"lr": lr}, backend="numpy")
    head = mml.ModelNode("head", LinearModel(output_shape=target_shape), fs, opt)
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])
    return fs, head, loss


def _train(loss, n_epochs: int, callbacks=()) -> mml.TrainResults:
    sampler = mml.SimpleSampler(batch_size=10, shuffle=True, seed=0, show_progress=False)
    phase = TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=[loss], n_epochs=n_epochs, callbacks=list(callbacks)
    )
    return phase.execute(show_sampler_progress=False, show_training_progress=False)


@pytest.mark.parametrize(
    "target_shape",
    [pytest.param((3,), id="3-output"), pytest.param((12,), id="sequence-T12"), pytest.param((4, 2), id="map-4x2")],
)
def test_targets_of_any_shape_train_and_evaluate(target_shape) -> None:
    # the per-sample loss averages over the target's elements, so each element's gradient shrinks
    # with their number: scale the learning rate to compare like with like
    fs, head, loss = _setup(target_shape, lr=0.05 * np.prod(target_shape) / 3)
    evaluation = Evaluation.from_split("val", split="val", losses=[loss], run_on_start=True)
    results = _train(loss, 30, [evaluation])
    before = results.callbacks(kind="evaluation")[0].metrics["val_loss"]
    val = results.metrics().epoch_values("val_loss")
    assert val[29] < 0.01 * before  # the evaluation loss drops
    assert all(b <= a * 1.001 for a, b in zip(list(val.values())[5:-1], list(val.values())[6:], strict=True))
    final = EvalPhase.from_split("final", split="val", losses=[loss]).execute()
    outputs = final.stacked_tensors(head, "outputs", fmt="np")
    targets = final.stacked_tensors(head, "targets", fmt="np")
    assert outputs.shape == (20, *target_shape)
    assert targets.reshape(outputs.shape).shape == (20, *target_shape)
    np.testing.assert_allclose(targets.reshape(outputs.shape), fs["val"].get_targets(fmt="np").reshape(outputs.shape))
    np.testing.assert_allclose(outputs, targets.reshape(outputs.shape), atol=0.1)


@pytest.mark.parametrize("target_shape", [(3,), (12,), (4, 2)])
def test_per_sample_loss_is_the_mean_over_all_non_batch_dims(target_shape) -> None:
    _, head, loss = _setup(target_shape)
    _train(loss, 1)
    results = EvalPhase.from_split("val", split="val", losses=[loss], batch_size=5).execute()
    for ctx in results.execution_contexts():
        batch = ctx.outputs[head.node_id]
        out = np.asarray(batch.outputs, dtype=np.float64)
        tgt = np.asarray(batch.targets, dtype=np.float64).reshape(out.shape)
        per_sample = ((out - tgt) ** 2).reshape(len(out), -1).mean(axis=1)
        value = float(results.losses(head).at(loss=loss.label, epoch=0, batch=ctx.batch_idx))
        assert value == pytest.approx(per_sample.mean(), rel=1e-5)
        if np.prod(target_shape) > 1:  # a sum over the per-sample elements would be larger
            assert value < ((out - tgt) ** 2).reshape(len(out), -1).sum(axis=1).mean()
