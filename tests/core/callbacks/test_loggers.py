"""Metrics loggers: the MetricsLogger interface and the core's CSVLogger."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import modularml as mml
from modularml.callbacks import CSVLogger, Evaluation, MetricsLogger
from modularml.callbacks.loggers import flatten_params
from modularml.context import fold_scope
from modularml.errors import FileCollisionError, InvalidArgumentError, InvalidTypeError
from modularml.phases import TrainPhase
from modularml.results import MetricStore

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


def _train(s, n_epochs: int = 3) -> TrainPhase:
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=0, show_progress=False)
    phase = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=n_epochs)
    phase.add_callback(Evaluation.from_split("val", split="val", losses=[s.loss]))
    return phase


class Recorder(MetricsLogger):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def log_params(self, params, *, phase):
        self.calls.append(("params", phase, params["label"]))

    def log_metrics(self, metrics, *, phase, epoch, batch):
        self.calls.append(("metrics", phase, epoch, batch, dict(metrics)))

    def log_artifact(self, path):
        self.calls.append(("artifact", str(path)))

    def close(self):
        self.calls.append(("close",))


def test_the_logger_interface_gets_params_once_then_each_step(linear_setup) -> None:
    s = linear_setup()
    phase = _train(s, n_epochs=2)
    recorder = Recorder()
    phase.add_callback(recorder)
    results = phase.execute(**QUIET)
    assert recorder.calls[0] == ("params", "train", "train")
    assert recorder.calls[-1] == ("close",)
    steps = [c for c in recorder.calls if c[0] == "metrics"]
    n_batches = results.n_batches
    assert [(c[2], c[3]) for c in steps] == [
        *[(0, b) for b in range(n_batches)],
        (0, None),
        *[(1, b) for b in range(n_batches)],
        (1, None),
    ]
    epoch_end = steps[n_batches][4]
    assert set(epoch_end) == {"train_loss", "val_loss"}  # the validation loss of the same epoch is included
    assert epoch_end["val_loss"] == results.metrics().get("val_loss", 0)
    logged = sum(len(c[4]) for c in steps)
    assert logged == len(results.metrics()), "every value is logged exactly once"


def test_csv_logger_writes_rows_as_the_run_goes(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    phase = _train(s)
    seen_after_first_epoch: list[int] = []

    class Peek(mml.Callback):
        def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
            if exec_ctx.epoch_idx == 1:  # runs after the logger (order 200): epoch 0 is on disk
                seen_after_first_epoch.append(len((tmp_path / "train.csv").read_text().splitlines()))

    phase.add_callback(CSVLogger(tmp_path))
    phase.add_callback(Peek(execution_order=200))
    results = phase.execute(**QUIET)
    with (tmp_path / "train.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["phase", "epoch", "batch", "name", "value"]
    assert len(rows) == len(results.metrics())
    by_key = {
        (r["name"], int(r["epoch"]), None if r["batch"] == "" else int(r["batch"])): float(r["value"]) for r in rows
    }
    for entry in results.metrics():
        assert by_key[(entry.name, entry.epoch_idx, entry.batch_idx)] == entry.value  # exact: repr of the float
    assert len(seen_after_first_epoch) == 1
    assert seen_after_first_epoch[0] >= 1 + results.n_batches + 2  # header, epoch 0's batches, its two epoch values
    params = json.loads((tmp_path / "train.params.json").read_text())
    assert params["label"] == "train"
    assert params["n_epochs"] == 3


def test_csv_logger_arguments_artifacts_and_overwrite(linear_setup, tmp_path: Path) -> None:
    with pytest.raises(InvalidTypeError, match="directory"):
        CSVLogger(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="without folders"):
        CSVLogger(tmp_path, filename="a/b.csv")
    logger = CSVLogger(tmp_path, filename="run_{phase}.csv", overwrite=False)
    s = linear_setup()
    phase = _train(s, n_epochs=1)
    phase.add_callback(logger)
    phase.execute(**QUIET)
    assert logger.path == tmp_path / "run_train.csv"
    with pytest.raises(FileCollisionError, match="overwrite=True"):
        phase.execute(**QUIET)
    artifact = tmp_path / "model.txt"
    artifact.write_text("weights")
    logger.log_artifact(artifact)  # already in the directory: nothing to copy
    assert artifact.read_text() == "weights"
    other = CSVLogger(tmp_path / "copies")
    other.log_artifact(artifact)
    assert (tmp_path / "copies" / "model.txt").read_text() == "weights"
    with pytest.raises(FileNotFoundError, match="nope"):
        other.log_artifact(tmp_path / "nope")
    with pytest.raises(InvalidArgumentError, match=r"before a run started \(start_run\(\) starts one\)"):
        other.log_metrics({"x": 1.0}, phase="p", epoch=0, batch=None)
    assert CSVLogger.from_config(logger.get_config()).get_config() == logger.get_config()


def test_csv_logger_is_registered_through_the_hook() -> None:
    assert mml.get_plugin_manager().registry("callbacks").get("CSVLogger") is CSVLogger


def test_the_logger_reads_each_value_once(linear_setup, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[int, int]] = []
    original = MetricStore.logged_since

    def counting(self, position):
        new = original(self, position)
        reads.append((position, len(new)))
        return new

    monkeypatch.setattr(MetricStore, "logged_since", counting)
    s = linear_setup()
    phase = _train(s, n_epochs=5)
    phase.add_callback(Recorder())
    results = phase.execute(**QUIET)
    assert len(reads) == 5 + 1  # one read per epoch end, one at the phase end
    assert [p for p, _ in reads] == [sum(n for _, n in reads[:i]) for i in range(len(reads))]  # from the last cursor
    assert sum(n for _, n in reads) == results.metrics().position  # every value read exactly once


def test_a_run_in_a_fold_opens_a_run_for_the_fold(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    phase = _train(s, n_epochs=1)
    starts: list[tuple[str, str | None]] = []

    class Starts(Recorder):
        def start_run(self, *, phase, fold):
            starts.append((phase, fold))

    phase.add_callback(Starts())
    phase.add_callback(CSVLogger(tmp_path))
    phase.add_callback(CSVLogger(tmp_path, filename="{fold}-{phase}.csv", label="named"))
    for fold in ("fold_0", "fold_1"):
        with fold_scope(fold):
            phase.execute(**QUIET)
    phase.execute(**QUIET)
    assert starts == [("train", "fold_0"), ("train", "fold_1"), ("train", None)]
    for fold in ("fold_0", "fold_1"):
        assert (tmp_path / fold / "train.csv").is_file()
        assert (tmp_path / fold / "train.params.json").is_file()
        assert (tmp_path / f"{fold}-train.csv").is_file()
    assert (tmp_path / "train.csv").is_file()


def test_params_hold_the_experiment_config_and_flatten(linear_setup) -> None:
    s = linear_setup()
    experiment = mml.Experiment.from_active_context("exp")
    phase = _train(s, n_epochs=1)
    recorder = Recorder()
    seen = {}
    recorder.log_params = lambda params, *, phase: seen.update(params)  # type: ignore[method-assign]
    phase.add_callback(recorder)
    experiment.execution_plan.add_phase(phase)
    experiment.run(**QUIET)
    assert seen["label"] == "train"
    assert seen["n_epochs"] == 1
    assert seen["experiment"] == experiment.get_config()
    flat = flatten_params(seen)
    assert flat["experiment.label"] == "exp"
    assert flat["experiment.execution_plan.items.0.n_epochs"] == 1
    assert flatten_params({"a": {}, "b": [], "c": [1, {"d": None}]}) == {"a": {}, "b": [], "c.0": 1, "c.1.d": None}
