"""A TensorFlow run interrupted after an epoch and resumed from its checkpoint ends bit for bit as the uninterrupted
run, dropout included (TensorFlow's and Keras' generators, and each Dropout layer's SeedGenerator, are restored)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.context import ExperimentContext

pytest.importorskip("modularml_tf")

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


class Crash(mml.Callback):
    """Interrupts the run at the end of epoch $KILL_AT (after its checkpoint was written)."""

    def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
        if os.environ.get("KILL_AT") == str(exec_ctx.epoch_idx):
            raise KeyboardInterrupt("killed")


def _build(directory: Path | None) -> tuple[mml.Experiment, mml.TrainPhase]:
    from modularml_tf import SequentialMLP

    mml.seed_everything(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 6)).astype("float32")
    y = (x[:, :1] - 2 * x[:, 1:2]).astype("float32")
    fs = mml.FeatureSet.from_dict("data", {"x": x, "y": y}, feature_keys=["x"], target_keys=["y"])
    fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
    model = SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=16, dropout=0.3)
    head = mml.ModelNode("head", model, fs, mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="tensorflow"))
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="tensorflow"), on=head, inputs=["outputs", "targets"])
    exp = mml.Experiment.from_active_context("tf")
    train = mml.TrainPhase.from_split(
        "train",
        split="train",
        sampler=mml.SimpleSampler(batch_size=16, shuffle=True, seed=2, show_progress=False),
        losses=[loss],
        n_epochs=4,
        checkpointing=None if directory is None else mml.Checkpointing(mode="disk"),
    )
    if directory is not None:
        exp.set_checkpoint_dir(directory)
    return exp, train


def _weights(exp: mml.Experiment) -> dict[str, np.ndarray]:
    (node,) = exp.model_graph.nodes.values()
    return {k: np.asarray(v) for k, v in node.model.get_state()["weights"].items()}


def test_a_resumed_keras_run_with_dropout_is_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ExperimentContext().activate():
        exp, train = _build(tmp_path / "straight")
        train.add_callback(Crash())  # the same callbacks (it does nothing without KILL_AT)
        exp.run_phase(train, **QUIET)
        want = list(_weights(exp).values())
    with ExperimentContext().activate():
        exp, train = _build(tmp_path / "resumed")
        exp.execution_plan.add_phase(train)
        train.add_callback(Crash())
        saved = exp.save(tmp_path / "job")
        monkeypatch.setenv("KILL_AT", "1")
        with pytest.raises(KeyboardInterrupt):
            exp.run_phase(train, **QUIET)
        monkeypatch.delenv("KILL_AT")
    checkpoint = tmp_path / "resumed" / "train" / "train_epoch0001.ckpt.mml"
    with ExperimentContext().activate():  # as in a new process: new Keras objects, other seeds
        mml.seed_everything(123)
        loaded = mml.Experiment.load(saved, allow_packaged_code=True)  # Crash is this module's own class
        loaded.run_phase(loaded.execution_plan.get_phase("train"), resume_from=checkpoint, **QUIET)
        got = list(_weights(loaded).values())
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_seed_states_of_dropout_layers_are_part_of_the_model_state() -> None:
    from modularml_tf import SequentialMLP

    model = SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=4, dropout=0.5)
    model.build((3,))
    state = model.get_state()
    assert len(state["seed_states"]) == 1  # the one Dropout layer's SeedGenerator
    assert not set(state["seed_states"]) & set(state["weights"])
    (variable,) = model._seed_variables()
    saved = state["seed_states"][variable.path].copy()
    variable.assign(saved + 7)
    model.set_state(state)
    np.testing.assert_array_equal(variable.numpy(), saved)
