"""Experiment config files: to_file / from_file (TOML and JSON), the round trip to the same metrics, and refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks import CSVLogger, EarlyStopping, Evaluation
from modularml.context import ExperimentContext
from modularml.errors import FileCollisionError, SerializationError
from modularml.experiment.config_file import (
    FORMAT,
    describe_experiment,
    read_config_file,
    run_experiment,
    write_metrics_csv,
)
from modularml.phases import EvalPhase, PhaseGroup, TrainPhase

QUIET = {"show_sampler_progress": False, "show_training_progress": False}
SEED = 7


def _experiment(s, tmp_path: Path) -> mml.Experiment:
    """An experiment of the Python API: train (validation, early stopping, a CSV logger), then a group with an eval."""
    experiment = mml.Experiment.from_active_context("roundtrip")
    sampler = mml.SimpleSampler(batch_size=12, shuffle=True, seed=3, show_progress=False)
    train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[s.loss], n_epochs=4)
    train.add_callback(Evaluation.from_split("val", split="val", losses=[s.loss]))
    train.add_callback(EarlyStopping(monitor="val_loss", patience=10))
    train.add_callback(CSVLogger(tmp_path / "csv"))
    experiment.execution_plan.add_phase(train).add_group(
        PhaseGroup("final", [EvalPhase.from_split("test", split="val", losses=[s.loss])])
    )
    return experiment


def _metrics(results) -> dict[tuple[str, str, int, int | None], float]:
    return {
        (phase, e.name, e.epoch_idx, e.batch_idx): e.value
        for phase, result in results.flatten().items()
        for e in result.metrics().entries()
    }


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_config_round_trip_gives_the_metrics_of_the_python_api(linear_setup, tmp_path: Path, suffix: str) -> None:
    s = linear_setup(scale_targets="Negate")
    experiment = _experiment(s, tmp_path)
    path = experiment.to_file(tmp_path / "run" / f"experiment{suffix}", seed=SEED)
    assert path == tmp_path / "run" / f"experiment{suffix}"
    assert (tmp_path / "run" / "data.fs.mml").is_file()  # the FeatureSet next to it, by relative path
    config = read_config_file(path)
    assert config["format"] == FORMAT
    assert config["featuresets"] == [{"label": "data", "file": "data.fs.mml"}]
    assert config["execution_plan"]["items"][0]["callbacks"][2]["class"] == "CSVLogger"
    mml.get_backend("numpy").seed(SEED)
    expected = _metrics(experiment.run(**QUIET))
    before = ExperimentContext.get_active()
    rebuilt = mml.Experiment.from_file(path)
    assert rebuilt.ctx is not before
    assert ExperimentContext.get_active() is rebuilt.ctx  # the new context is the active one
    assert rebuilt.get_config() == experiment.get_config()
    assert [type(c).__name__ for c in rebuilt.execution_plan.get_phase("train").callbacks] == [
        "Evaluation",
        "EarlyStopping",
        "CSVLogger",
    ]
    results = rebuilt.run(**QUIET)
    got = _metrics(results)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    # the data went through the file: the scaler record is there, and unscaling works on the rebuilt experiment
    outputs = results.get_eval_result("test").stacked_tensors("head", "targets", unscale=True, fmt="np")
    raw = dict(zip(s.fs.get_sample_uuids(), s.fs.get_targets(fmt="np", rep="raw"), strict=True))
    uuids = results.get_eval_result("test").stacked_tensors("head", "sample_uuids")
    np.testing.assert_allclose(outputs, [raw[u] for u in uuids], rtol=1e-6)


def test_a_config_from_a_dataset_with_splits_and_scalers(tmp_path: Path) -> None:
    config = {
        "format": FORMAT,
        "version": 1,
        "label": "curves",
        "seed": 0,
        "featuresets": [
            {
                "dataset": "synthetic_curves",
                "label": "cells",
                "node_id": "cells",
                "args": {"n_samples": 60, "n_points": 6, "n_groups": 5, "seed": 1},
                "splits": [
                    {"splitter": "RandomSplitter", "config": {"ratios": {"train": 0.6, "val": 0.4}, "seed": 2}},
                ],
                "scalers": [{"scaler": "Negate", "domain": "targets", "fit_to_split": "train"}],
            }
        ],
        "model_graph": {
            "label": "graph",
            "nodes": [
                {
                    "class": "ModelNode",
                    "label": "head",
                    "node_id": "head",
                    "upstream_refs": [{"kind": "featureset", "node_label": "cells", "node_id": "cells"}],
                    "model": {"class": "LinearModel", "backend": "numpy", "init_args": {"output_shape": [1]}},
                    "optimizer": {"opt": "sgd", "source": "name", "opt_kwargs": {"lr": 0.01}, "backend": "numpy"},
                }
            ],
        },
        "execution_plan": {"kind": "phase_group", "label": "curves", "items": []},
    }
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(config))
    with pytest.raises(SerializationError, match=r"model graph|class|ModelNode") as error:
        mml.Experiment.from_file(path)  # hand-written configs name classes by registered name or import path
    assert "curves.json" in str(error.value)
    config["model_graph"]["nodes"][0]["class"] = "modularml.nodes.model_node:ModelNode"
    config["model_graph"]["nodes"][0]["model"]["class"] = "modularml_numpy.models.linear:LinearModel"
    path.write_text(json.dumps(config))
    experiment = mml.Experiment.from_file(path)
    fs = experiment.ctx.get_node("cells")
    assert fs.node_id == "cells"
    assert fs.available_splits == ["train", "val"]
    assert len(fs.get_split("train")) == 36
    np.testing.assert_allclose(fs.get_targets(fmt="np", rep="transformed"), -fs.get_targets(fmt="np", rep="raw"))
    assert "FeatureSet 'cells': 60 samples; splits: train (36), val (24)" in describe_experiment(experiment)


def test_refusals_change_nothing(linear_setup, tmp_path: Path, user_module) -> None:
    s = linear_setup()
    experiment = _experiment(s, tmp_path)
    path = experiment.to_file(tmp_path / "exp.json")
    with pytest.raises(FileCollisionError, match="overwrite=True"):
        experiment.to_file(tmp_path / "exp.json")
    assert experiment.to_file(tmp_path / "exp.json", overwrite=True) == path
    with pytest.raises(ValueError, match=r"\.toml or \.json"):
        experiment.to_file(tmp_path / "exp.yaml")
    config = json.loads(path.read_text())
    module = user_module("my_callbacks", "import modularml as mml\nclass Mine(mml.Callback):\n    pass\n")
    config["execution_plan"]["items"][0]["callbacks"].append({"class": f"{module}:Mine", "label": "mine"})
    path.write_text(json.dumps(config))
    active, nodes = ExperimentContext.get_active(), dict(ExperimentContext.get_active().available_nodes)
    with pytest.raises(SerializationError, match=r"allow_packaged_code|allowed"):
        mml.Experiment.from_file(path)
    assert ExperimentContext.get_active() is active
    assert dict(active.available_nodes) == nodes
    rebuilt = mml.Experiment.from_file(path, allow_packaged_code=True)
    assert "mine" in [c.label for c in rebuilt.execution_plan.get_phase("train").callbacks]
    bad = tmp_path / "bad.toml"
    bad.write_text("format = 'something-else'\nversion = 1\n")
    with pytest.raises(SerializationError, match="not a ModularML experiment config"):
        mml.Experiment.from_file(bad)
    bad.write_text("this is = = not toml")
    with pytest.raises(SerializationError, match="not valid TOML"):
        mml.Experiment.from_file(bad)
    with pytest.raises(FileNotFoundError):
        mml.Experiment.from_file(tmp_path / "missing.toml")


def test_running_a_file_writes_the_metrics_csv(linear_setup, tmp_path: Path) -> None:
    s = linear_setup()
    path = _experiment(s, tmp_path).to_file(tmp_path / "exp.toml", seed=SEED)
    experiment = mml.Experiment.from_file(path)
    results, written = run_experiment(experiment, tmp_path / "out", **QUIET)
    assert written[0] == tmp_path / "out" / "metrics.csv"
    with written[0].open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["phase", "fold", "epoch", "batch", "name", "value"]
    assert {r["phase"] for r in rows} == {"train", "final/test"}
    assert len(rows) == sum(len(r.metrics()) for r in results.flatten().values())
    train = results.get_train_result("train").metrics()
    for row in rows:
        if row["phase"] == "train":
            batch = None if row["batch"] == "" else int(row["batch"])
            assert float(row["value"]) == train.get(row["name"], int(row["epoch"]), batch)
    assert (tmp_path / "csv" / "train.csv").is_file()  # the phase's CSVLogger ran
    assert (tmp_path / "out" / f"{experiment.label}.exp.mml").is_file() == hasattr(experiment, "save")
    with pytest.raises(FileCollisionError, match="overwrite"):
        run_experiment(experiment, tmp_path / "out", **QUIET)
    write_metrics_csv(results, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text() == written[0].read_text()


def test_the_run_command(linear_setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modularml.cli import main

    s = linear_setup()
    path = _experiment(s, tmp_path).to_file(tmp_path / "exp.json", seed=SEED)
    assert main(["run", str(path), "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "TrainPhase 'train' on ['train'], 4 epochs" in shown
    assert "callback CSVLogger(" in shown
    assert "group 'final'" in shown
    assert "dry run" in shown
    assert not (tmp_path / "exp-results").exists()
    assert main(["run", str(path), "-q"]) == 0
    assert (tmp_path / "exp-results" / "metrics.csv").is_file()  # next to the config by default
    assert "metrics.csv" in capsys.readouterr().out
    assert main(["run", str(path), "-q"]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert main(["run", str(path), "-q", "--overwrite", "-o", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "metrics.csv").is_file()
    assert main(["run", str(tmp_path / "missing.toml")]) == 1
    assert "No experiment config file" in capsys.readouterr().err
