"""TensorBoardLogger: event files written with tensorboardX, read back with tensorboard's own event reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.context import fold_scope
from modularml.errors import InvalidArgumentError, InvalidTypeError

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

from modularml_tensorboard import TensorBoardLogger  # noqa: E402

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


def _read(folder: Path):
    reader = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    reader.Reload()
    return reader


def test_scalars_per_epoch_and_batch_and_the_params(regression, tmp_path: Path) -> None:
    s = regression()
    phase = s.train_phase(n_epochs=3)
    logger = TensorBoardLogger(tmp_path / "tb", log_batches=True)
    phase.add_callback(logger)
    results = phase.execute(**QUIET)
    assert logger.run_dir == tmp_path / "tb" / "train"
    reader = _read(logger.run_dir)
    assert set(reader.Tags()["scalars"]) == {"train_loss", "val_loss", "batch/train_loss"}
    for name in ("train_loss", "val_loss"):
        expected = results.metrics().epoch_values(name)
        events = reader.Scalars(name)
        assert [e.step for e in events] == sorted(expected)
        np.testing.assert_allclose([e.value for e in events], [expected[k] for k in sorted(expected)], rtol=1e-6)
    batches = results.metrics().batch_values("train_loss")
    events = reader.Scalars("batch/train_loss")
    assert [e.step for e in events] == list(range(len(batches)))  # one step per batch of the run
    np.testing.assert_allclose([e.value for e in events], [batches[k] for k in sorted(batches)], rtol=1e-6)
    text = reader.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\n"))["n_epochs"] == 3


def test_folds_runs_artifacts_and_config(regression, tmp_path: Path) -> None:
    s = regression()
    phase = s.train_phase(n_epochs=2)
    logger = TensorBoardLogger(tmp_path)
    phase.add_callback(logger)
    for fold in ("fold_0", "fold_1"):
        with fold_scope(fold):
            results = phase.execute(**QUIET)
    assert logger.run_dir == tmp_path / "fold_1" / "train"
    reader = _read(tmp_path / "fold_1" / "train")
    assert reader.Tags()["scalars"] == ["train_loss", "val_loss"]  # no batch values unless asked
    assert [e.value for e in reader.Scalars("train_loss")] == pytest.approx(
        list(results.metrics().epoch_values("train_loss").values()), rel=1e-6
    )
    assert (tmp_path / "fold_0" / "train").is_dir()
    note = tmp_path / "note.txt"
    note.write_text("hello")
    logger.log_artifact(note)
    assert (logger.run_dir / "note.txt").read_text() == "hello"
    with pytest.raises(FileNotFoundError, match="nope"):
        logger.log_artifact(tmp_path / "nope")
    with pytest.raises(InvalidArgumentError, match="outside a run"):
        logger.log_metrics({"x": 1.0}, phase="p", epoch=0, batch=None)
    with pytest.raises(InvalidTypeError, match="log_dir"):
        TensorBoardLogger("")
    rebuilt = TensorBoardLogger.from_config(logger.get_config())
    assert rebuilt.get_config() == logger.get_config()
    assert mml.get_plugin_manager().registry("callbacks").get("TensorBoardLogger") is TensorBoardLogger
