"""A TrainPhase's Checkpointing: saving the graph state at lifecycle hooks, in memory and on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import Callback, EarlyStopping, Evaluation
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.phases import Checkpointing, TrainPhase

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


def _sampler() -> mml.SimpleSampler:
    return mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)


def _phase(s, checkpointing: Checkpointing | None, n_epochs: int = 3, **kwargs) -> TrainPhase:
    return TrainPhase.from_split(
        "train",
        split="train",
        sampler=_sampler(),
        losses=[s.loss],
        n_epochs=n_epochs,
        checkpointing=checkpointing,
        **kwargs,
    )


def _weights(graph: mml.ModelGraph) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in graph.nodes[next(iter(graph.nodes))].model.get_weights().items()}


class WeightsAtEpochEnd(Callback):
    """Records the head's weights at every epoch end (what an epoch_end checkpoint must hold)."""

    def __init__(self, graph: mml.ModelGraph) -> None:
        super().__init__()
        self.graph, self.seen = graph, {}

    def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
        self.seen[exec_ctx.epoch_idx] = _weights(self.graph)


def test_memory_checkpoints_hold_the_state_of_each_epoch_end(linear_setup) -> None:
    s = linear_setup()
    ckpt = Checkpointing()
    phase = _phase(s, ckpt)
    watcher = WeightsAtEpochEnd(s.graph)
    phase.add_callback(watcher)
    phase.execute(**QUIET)
    assert ckpt.saved_keys == [0, 1, 2]
    for epoch, weights in watcher.seen.items():
        saved = ckpt.get_state(epoch)["nodes"][s.head.node_id]["model"]["weights"]
        for name, value in weights.items():
            np.testing.assert_array_equal(saved[name], value)
    assert not np.array_equal(watcher.seen[0]["weight"], watcher.seen[2]["weight"]), "snapshots are copies"


def test_every_n_and_other_hooks(linear_setup) -> None:
    s = linear_setup()
    ckpt = Checkpointing(save_on=["epoch_end", "phase_start", "batch_end"], every_n=2)
    _phase(s, ckpt, n_epochs=4).execute(**QUIET)
    keys = ckpt.saved_keys
    assert [k for k in keys if isinstance(k, int)] == [1, 3]  # every second epoch end
    assert "phase_start" not in keys  # the first phase_start is occurrence 1 of 2
    assert sum(isinstance(k, str) and k.startswith("batch_end:") for k in keys) == (4 * 3) // 2  # 3 batches/epoch
    assert ckpt.name_template == "{phase}_epoch{epoch:04d}_batch{batch:06d}"


def test_disk_checkpoints_are_files_and_max_to_keep_removes_the_oldest(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    ckpt = Checkpointing(mode="disk", directory=tmp_path / "ck", max_to_keep=2)
    _phase(s, ckpt, n_epochs=4).execute(**QUIET)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "train_epoch0002.ckpt.mml",
        "train_epoch0003.ckpt.mml",
    ]
    assert ckpt.saved_keys == [2, 3]
    final = _weights(s.graph)
    _phase(s, None, n_epochs=1).execute(**QUIET)  # train on
    s.graph.restore_checkpoint(ckpt.get_path(3))
    for name, value in _weights(s.graph).items():
        np.testing.assert_array_equal(value, final[name])


def test_disk_checkpoints_need_a_directory(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    phase = _phase(s, Checkpointing(mode="disk"))
    with pytest.raises(InvalidArgumentError, match=r"has no directory.*set_checkpoint_dir"):
        phase.execute(**QUIET)
    experiment = mml.Experiment.from_active_context("exp")
    experiment.set_checkpoint_dir(tmp_path / "runs")
    experiment.run_phase(phase, **QUIET)
    assert sorted(p.name for p in (tmp_path / "runs" / "train").iterdir()) == [
        f"train_epoch{e:04d}.ckpt.mml" for e in range(3)
    ]
    assert sorted(experiment.available_checkpoints) == [f"train/train_epoch{e:04d}" for e in range(3)]


def test_experiment_lists_and_restores_checkpoints(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    experiment = mml.Experiment.from_active_context("exp")
    experiment.set_checkpoint_dir(tmp_path)
    phase = _phase(s, Checkpointing(mode="disk", save_on="phase_end", name_template="{phase}_done"))
    experiment.run_phase(phase, **QUIET)
    trained = _weights(s.graph)
    experiment.run_phase(_phase(s, None, n_epochs=2), **QUIET)
    assert not np.array_equal(_weights(s.graph)["weight"], trained["weight"])
    experiment.restore_checkpoint("train/train_done")
    np.testing.assert_array_equal(_weights(s.graph)["weight"], trained["weight"])
    experiment.restore_checkpoint(tmp_path / "train" / "train_done.ckpt.mml")  # a path works too
    with pytest.raises(InvalidArgumentError, match=r"No checkpoint 'nope'.*train/train_done"):
        experiment.restore_checkpoint("nope")
    with pytest.raises(InvalidArgumentError, match="is a file"):
        experiment.set_checkpoint_dir(tmp_path / "train" / "train_done.ckpt.mml")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        experiment.set_checkpoint_dir(tmp_path / "missing", create=False)


def test_disabled_and_preview_runs_write_no_checkpoint(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    experiment = mml.Experiment.from_active_context("exp")
    phase = _phase(s, Checkpointing(mode="disk", directory=tmp_path / "ck"))
    with experiment.disable_checkpointing():
        assert experiment.checkpointing_suppressed
        experiment.run_phase(phase, **QUIET)
    assert not experiment.checkpointing_suppressed
    experiment.preview_phase(phase, **QUIET)
    assert not (tmp_path / "ck").exists()
    experiment.run_phase(phase, **QUIET)
    assert len(list((tmp_path / "ck").iterdir())) == 3


def test_hooks_and_placeholders_are_checked(linear_setup) -> None:
    s = linear_setup()
    with pytest.raises(InvalidArgumentError, match="group_end"):
        _phase(s, Checkpointing(save_on="group_end"))
    with pytest.raises(InvalidArgumentError, match="label"):
        _phase(s, Checkpointing(name_template="{label}_{epoch}"))
    with pytest.raises(InvalidTypeError, match="Checkpointing"):
        _phase(s, {"mode": "memory"})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"epoch_end.*not available for Experiment 'e'"):
        mml.Experiment("e", checkpointing=Checkpointing(mode="disk"))  # save_on defaults to a TrainPhase hook
    with pytest.raises(InvalidArgumentError, match="epoch"):
        mml.Experiment("e", checkpointing=Checkpointing(mode="disk", save_on="phase_end", name_template="{epoch}"))


def test_the_config_keeps_the_checkpointing(linear_setup) -> None:
    s = linear_setup()
    phase = _phase(s, Checkpointing(save_on=["epoch_end"], every_n=2, max_to_keep=3))
    config = phase.get_config()
    rebuilt = TrainPhase.from_config(config)
    assert rebuilt.checkpointing.get_config() == phase.checkpointing.get_config()
    assert rebuilt.get_config() == config


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_early_stopping_restores_the_best_epoch_from_the_checkpoints(linear_setup, tmp_path: Path, mode: str) -> None:
    s = linear_setup(lr=0.5)  # a large step: the validation loss gets worse after a while
    ckpt = Checkpointing(mode=mode, directory=tmp_path / "ck" if mode == "disk" else None)
    phase = _phase(s, ckpt, n_epochs=12)
    phase.add_callback(Evaluation.from_split("val", split="val", losses=[s.loss]))
    stopper = EarlyStopping(patience=2, restore_best=True)
    phase.add_callback(stopper)
    watcher = WeightsAtEpochEnd(s.graph)
    phase.add_callback(watcher)
    calls = {"get_state": 0}
    real_get_state = s.graph.get_state

    def counting_get_state():
        calls["get_state"] += 1
        return real_get_state()

    s.graph.get_state = counting_get_state  # one call per checkpoint; EarlyStopping's snapshots would add more
    results = phase.execute(**QUIET)
    best = results.callbacks("early_stopping")[0].best_epoch
    assert results.callbacks("early_stopping")[0].restored
    assert best < max(watcher.seen), "the test needs a run that got worse after its best epoch"
    # one per epoch checkpoint, one for the all-or-nothing restore; EarlyStopping took no snapshot of its own
    assert calls["get_state"] == len(watcher.seen) + 1
    np.testing.assert_array_equal(_weights(s.graph)["weight"], watcher.seen[best]["weight"])
    assert phase.active_checkpointing is None  # only while the phase runs


def test_default_names_tell_the_hooks_apart(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    ckpt = Checkpointing(
        mode="disk", directory=tmp_path, save_on=["phase_start", "epoch_start", "epoch_end", "phase_end"]
    )
    _phase(s, ckpt, n_epochs=2).execute(**QUIET)
    assert sorted(p.name.removesuffix(".ckpt.mml") for p in tmp_path.iterdir()) == [
        "train_end",
        "train_epoch0000",
        "train_epoch0000_start",
        "train_epoch0001",
        "train_epoch0001_start",
        "train_start",
    ]
    assert ckpt.saved_keys == [0, 1, "epoch_start:0", "epoch_start:1", "phase_end", "phase_start"]


def test_a_rolling_name_keeps_only_the_latest_key(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    ckpt = Checkpointing(mode="disk", directory=tmp_path, name_template="{phase}_latest")
    watcher = WeightsAtEpochEnd(s.graph)
    phase = _phase(s, ckpt)
    phase.add_callback(watcher)
    phase.execute(**QUIET)
    assert [p.name for p in tmp_path.iterdir()] == ["train_latest.ckpt.mml"]
    assert ckpt.saved_keys == [2], "the earlier epochs' keys do not claim the file that now holds epoch 2"
    _phase(s, None, n_epochs=1).execute(**QUIET)
    s.graph.restore_checkpoint(ckpt.get_path(2))
    np.testing.assert_array_equal(_weights(s.graph)["weight"], watcher.seen[2]["weight"])


def test_early_stopping_keeps_its_own_snapshot_when_checkpoints_may_be_replaced(linear_setup, tmp_path: Path) -> None:
    s = linear_setup(lr=0.5)
    ckpt = Checkpointing(mode="disk", directory=tmp_path, name_template="{phase}_latest")
    phase = _phase(s, ckpt, n_epochs=12)
    phase.add_callback(Evaluation.from_split("val", split="val", losses=[s.loss]))
    phase.add_callback(EarlyStopping(patience=2, restore_best=True))
    watcher = WeightsAtEpochEnd(s.graph)
    phase.add_callback(watcher)
    results = phase.execute(**QUIET)
    summary = results.callbacks("early_stopping")[0]
    assert summary.restored
    assert summary.best_epoch < max(watcher.seen)
    np.testing.assert_array_equal(_weights(s.graph)["weight"], watcher.seen[summary.best_epoch]["weight"])
