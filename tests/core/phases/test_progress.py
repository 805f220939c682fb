"""What training shows: a line per epoch that stays, a run summary, bars only where they can be drawn."""

from __future__ import annotations

import logging
import re
from typing import ClassVar

import pytest

import modularml as mml
from modularml.callbacks import EarlyStopping, Evaluation
from modularml.phases import EvalPhase, TrainPhase
from modularml.phases import progress as progress_module
from modularml.phases.progress import PhaseSummary, TrainingDisplay, default_log_interval, format_duration

LINE = re.compile(r"^train  epoch +(\d+)/(\d+)  train_loss (\S+) *(?:val_loss (\S+))?  \d+\.\d\ds$")


def _sampler() -> mml.SimpleSampler:
    return mml.SimpleSampler(batch_size=8, shuffle=True, seed=0, show_progress=False)


def _phase(s, n_epochs: int, callbacks=()) -> TrainPhase:
    return TrainPhase.from_split(
        "train", split="train", sampler=_sampler(), losses=[s.loss], n_epochs=n_epochs, callbacks=list(callbacks)
    )


def _run(phase: TrainPhase, **flags):
    return phase.execute(show_sampler_progress=False, **flags)


def test_every_epoch_leaves_one_plain_line_with_the_epoch_means(linear_setup, capsys) -> None:
    s = linear_setup()
    phase = _phase(s, 3, [Evaluation.from_split("val", split="val", losses=[s.loss])])
    results = _run(phase)
    lines = capsys.readouterr().err.splitlines()
    epoch_lines = [LINE.match(line) for line in lines[:3]]
    assert all(epoch_lines), lines
    metrics = results.metrics()
    for epoch, match in enumerate(epoch_lines):
        assert match.group(1, 2) == (str(epoch + 1), "3")  # counted from 1, like the bar
        assert match.group(3) == f"{metrics.get('train_loss', epoch):.4g}"  # the epoch mean, not the last batch
        assert match.group(4) == f"{metrics.get('val_loss', epoch):.4g}"
    batch_mean = sum(metrics.batch_values("train_loss", 2).values()) / len(metrics.batch_values("train_loss", 2))
    assert metrics.get("train_loss", 2) == pytest.approx(batch_mean)
    assert re.fullmatch(r"train: 3/3 epochs in \d+\.\d\ds, ran all epochs", lines[3])
    assert lines[4] == f"  final (last epoch 3): train_loss {metrics.get('train_loss', 2):.4g}  val_loss " + (
        f"{metrics.get('val_loss', 2):.4g}"
    )
    assert len(lines) == 5
    assert phase.last_summary.epochs_run == 3
    assert phase.last_summary.final_epoch == 2


def test_early_stopping_and_the_restored_epoch_are_in_the_summary_and_the_log(linear_setup, capsys, caplog) -> None:
    s = linear_setup()
    stopper = EarlyStopping(mode="max", patience=2, restore_best=True)  # val_loss falls: epoch 1 stays the best
    phase = _phase(s, 20, [Evaluation.from_split("val", split="val", losses=[s.loss]), stopper])
    with caplog.at_level(logging.INFO, logger="modularml.callbacks.early_stopping"):
        results = _run(phase)
    lines = capsys.readouterr().err.splitlines()
    assert [LINE.match(line).group(1) for line in lines[:3]] == ["1", "2", "3"]
    assert re.fullmatch(r"train: 3/20 epochs in \d+\.\d\ds, stopped early", lines[3])
    best = results.metrics().get("val_loss", 0)
    assert lines[4] == (
        "  EarlyStopping: stopped after epoch 3: val_loss did not improve for 2 epochs; "
        f"restored the best epoch 1 (val_loss {best:.4g})"
    )
    assert lines[5].startswith("  final (restored epoch 1): train_loss ")
    assert lines[5].endswith(f"val_loss {best:.4g}")
    messages = [r.getMessage() for r in caplog.records if r.name == "modularml.callbacks.early_stopping"]
    assert messages[0].startswith("EarlyStopping: phase 'train' stops after epoch 3: val_loss did not improve for 2")
    assert messages[1].startswith("EarlyStopping: phase 'train' restored the state of its best epoch 1 (val_loss")
    summary = phase.last_summary
    assert (summary.stopped_early, summary.restored_epoch, summary.final_epoch) == (True, 0, 0)
    assert summary.stop_reason() == "stopped early by EarlyStopping"


def test_long_runs_write_a_line_every_few_epochs_and_the_last(linear_setup, capsys) -> None:
    s = linear_setup()
    _run(_phase(s, 10), log_every_n_epochs=4)
    epochs = [m.group(1) for line in capsys.readouterr().err.splitlines() if (m := LINE.match(line))]
    assert epochs == ["1", "4", "8", "10"]
    _run(_phase(s, 3), log_every_n_epochs=0)
    err = capsys.readouterr().err
    assert not any(LINE.match(line) for line in err.splitlines())
    assert "train: 3/3 epochs" in err  # the summary still comes
    assert [default_log_interval(n) for n in (1, 100, 101, 1000)] == [1, 1, 2, 10]


def test_show_training_progress_false_silences_lines_and_summary(linear_setup, capsys) -> None:
    s = linear_setup()
    phase = _phase(s, 2)
    _run(phase, show_training_progress=False)
    assert capsys.readouterr().err == ""
    assert phase.last_summary.epochs_run == 2  # kept all the same


def test_the_experiment_ends_with_a_summary_of_its_phases(linear_setup, capsys) -> None:
    s = linear_setup()
    experiment = mml.Experiment.from_active_context("exp")
    experiment.execution_plan.add_phase(_phase(s, 2)).add_phase(
        EvalPhase.from_split("val", split="val", losses=[s.loss])
    )
    results = experiment.run(show_sampler_progress=False)
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"Experiment 'exp': 2 phases in \d+\.\d\ds", lines[-3])
    train = results.get_train_result("train").metrics().get("train_loss", 1)
    assert lines[-2] == f"  train: 2/2 epochs, ran all 2 epochs; train_loss {train:.4g}"
    val = results.get_eval_result("val").metrics().get("eval_loss", 0)
    assert lines[-1] == f"  val: eval_loss {val:.4g} on {len(s.fs['val'])} samples"
    experiment.run(show_sampler_progress=False, show_training_progress=False)
    assert capsys.readouterr().err == ""


class _RecordingBar:
    """Stands in for tqdm: records what a bar was asked to show."""

    made: ClassVar[list[_RecordingBar]] = []

    def __init__(self, *, total, desc, leave, unit, **kwargs) -> None:
        self.total, self.desc, self.leave, self.unit = total, desc, leave, unit
        self.n = 0
        self.postfixes: list[str] = []
        self.descriptions = [desc]
        self.closed = False
        _RecordingBar.made.append(self)

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfixes.append(text)

    def set_description_str(self, text: str, refresh: bool = True) -> None:
        self.descriptions.append(text)

    def reset(self, total=None) -> None:
        self.n, self.total = 0, total

    def close(self) -> None:
        self.closed = True

    @staticmethod
    def write(text: str, file=None) -> None:
        file.write(text + "\n")


@pytest.fixture
def terminal(monkeypatch):
    """Pretend the display stream is a terminal and record the bars drawn on it."""
    import tqdm.auto

    _RecordingBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", _RecordingBar)
    monkeypatch.setattr(progress_module, "bars_allowed", lambda stream=None: True)
    return _RecordingBar.made


def test_in_a_terminal_one_batch_bar_is_reused_and_shows_the_running_mean(terminal, capsys) -> None:
    display = TrainingDisplay("train", 2)
    with display:
        for epoch, losses in enumerate([(4.0, 2.0, 0.0), (1.0, 3.0, 2.0)]):
            with display.epoch(epoch, len(losses)):
                for loss in losses:
                    display.step(loss, "train_loss")
            display.end_epoch(epoch, {"train_loss": sum(losses) / 3}, last=epoch == 1)
    epochs, batches = terminal
    assert (epochs.desc, epochs.total, epochs.unit, epochs.n, epochs.closed) == ("train", 2, "epoch", 2, True)
    assert len(terminal) == 2, "one batch bar for every epoch"
    assert batches.descriptions == ["epoch 1/2", "epoch 2/2"]  # the same numbers as the epoch bar
    means = [p for p in batches.postfixes if p]
    assert means == ["train_loss=4", "train_loss=3", "train_loss=2", "train_loss=1", "train_loss=2", "train_loss=2"]
    assert epochs.postfixes == ["train_loss=2", "train_loss=2"]
    assert batches.closed
    assert capsys.readouterr().err.splitlines()[0].startswith("train  epoch 1/2  train_loss 2 ")


def test_persist_epoch_progress_leaves_one_batch_bar_per_epoch(terminal) -> None:
    display = TrainingDisplay("train", 2, persist=True, persist_epochs=True)
    with display:
        for epoch in range(2):
            with display.epoch(epoch, 2):
                display.step(1.0, "train_loss")
                display.step(1.0, "train_loss")
            display.end_epoch(epoch, {}, last=epoch == 1)
    assert [(bar.desc, bar.leave) for bar in terminal] == [("train", True), ("epoch 1/2", True), ("epoch 2/2", True)]


def test_in_a_notebook_a_phase_has_one_bar(terminal, monkeypatch) -> None:
    monkeypatch.setattr(progress_module, "IN_NOTEBOOK", True)
    display = TrainingDisplay("train", 2)
    with display:
        for epoch in range(2):
            with display.epoch(epoch, 3):
                for _ in range(3):
                    display.step(1.0, "train_loss")
            display.end_epoch(epoch, {"train_loss": 1.0}, last=epoch == 1)
    (bar,) = terminal
    assert bar.n == 2
    assert "batch 3/3, train_loss=1" in bar.postfixes


def test_no_bar_is_drawn_where_the_stream_is_not_a_terminal(linear_setup, capsys, monkeypatch) -> None:
    import tqdm.auto

    def refuse(*args, **kwargs):
        raise AssertionError("no tqdm bar may be made for a stream that is not a terminal")

    monkeypatch.setattr(tqdm.auto, "tqdm", refuse)
    s = linear_setup()
    _run(_phase(s, 2), persist_progress=True, persist_epoch_progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "\x1b" not in err
    assert len(err.splitlines()) == 4


def test_summaries_of_evaluations_and_fits() -> None:
    summary = PhaseSummary("test", "eval", 0.5, final_metrics={"eval_loss": 0.0123456}, n_samples=30)
    assert summary.lines() == ["test: eval_loss 0.01235 on 30 samples (0.50s)"]
    assert PhaseSummary("fit", "fit", 2.0, n_samples=140).one_line() == "fit: fitted on 140 samples"
    assert [format_duration(s) for s in (0.314, 42.0, 65.0, 7384.0)] == ["0.31s", "42.0s", "1m 05s", "2h 03m"]
