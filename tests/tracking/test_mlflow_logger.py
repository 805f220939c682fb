"""MLflowLogger against real MLflow tracking stores: a local sqlite store, and an ``mlflow server`` on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.callbacks.loggers import flatten_params
from modularml.context import fold_scope
from modularml.errors import InvalidArgumentError, InvalidTypeError

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402

from modularml_mlflow import MLflowLogger  # noqa: E402

QUIET = {"show_sampler_progress": False, "show_training_progress": False}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # MLflow's defaults (artifacts) stay in the test's folder
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _epoch_metrics(client: MlflowClient, run_id: str, name: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, name)}


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return found


def _check_run(client: MlflowClient, run_id: str, results, *, experiment=None) -> None:
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    for name in ("train_loss", "val_loss"):
        expected = results.metrics().epoch_values(name)
        logged = _epoch_metrics(client, run_id, name)
        assert sorted(logged) == sorted(expected)
        np.testing.assert_allclose([logged[e] for e in sorted(logged)], [expected[e] for e in sorted(expected)])
    params = run.data.params
    assert params["label"] == results.label
    if experiment is not None:
        flat = flatten_params({"experiment": experiment.get_config()})
        assert {k: params[k] for k in flat} == {k: "None" if v is None else str(v) for k, v in flat.items()}


def test_an_experiment_run_with_params_metrics_and_files(regression, store: str, tmp_path: Path) -> None:
    s = regression()
    experiment = mml.Experiment.from_active_context("soh")
    phase = s.train_phase(n_epochs=3)
    logger = MLflowLogger(tracking_uri=store, log_model=True, log_batches=True)
    phase.add_callback(logger)
    experiment.execution_plan.add_phase(phase)
    results = experiment.run(**QUIET).get_train_result()
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(logger.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "soh"  # the experiment's label by default
    assert run.info.run_name == "train"
    assert run.data.tags["modularml.phase"] == "train"
    _check_run(client, logger.run_id, results, experiment=experiment)
    batches = results.metrics().batch_values("train_loss")
    logged = _epoch_metrics(client, logger.run_id, "train_loss_batch")
    assert sorted(logged) == list(range(len(batches)))
    np.testing.assert_allclose([logged[i] for i in sorted(logged)], [batches[k] for k in sorted(batches)])
    files = _artifacts(client, logger.run_id)
    assert "model/model-graph.mg.mml" in files
    model_file = Path(client.download_artifacts(logger.run_id, "model/model-graph.mg.mml", str(tmp_path)))
    weights = mml.ModelGraph.load(model_file, overwrite=True).get_state()["nodes"]
    assert weights.keys() == s.graph.get_state()["nodes"].keys()
    if hasattr(experiment, "save"):  # the experiment file, where this version has Experiment.save
        assert any(f.endswith(".exp.mml") for f in files)
    else:
        assert not any(f.endswith(".exp.mml") for f in files)


def test_folds_are_nested_runs_of_one_parent(regression, store: str) -> None:
    s = regression()
    phase = s.train_phase(n_epochs=2)
    logger = MLflowLogger(tracking_uri=store, experiment_name="cv", run_name="cv-run")
    phase.add_callback(logger)
    children = {}
    for fold in ("fold_0", "fold_1", "fold_2"):
        with fold_scope(fold):
            results = phase.execute(**QUIET)
        children[fold] = (logger.run_id, results)
    client = MlflowClient(tracking_uri=store)
    parent = client.get_run(logger.parent_run_id)
    assert parent.info.run_name == "cv-run"
    assert parent.info.status == "FINISHED"
    for fold, (run_id, results) in children.items():
        run = client.get_run(run_id)
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["modularml.fold"] == fold
        assert run.info.run_name == f"{fold}/train"
        _check_run(client, run_id, results)
    experiment_id = parent.info.experiment_id
    found = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert {r.info.run_id for r in found} == {run_id for run_id, _ in children.values()}
    with fold_scope("fold_0"):  # a fold seen again: a new cross-validation, a new parent
        phase.execute(**QUIET)
    assert logger.parent_run_id != parent.info.run_id
    phase.execute(**QUIET)  # outside cross-validation: a run of its own
    assert "mlflow.parentRunId" not in client.get_run(logger.run_id).data.tags


def test_a_failing_phase_keeps_its_metrics_and_fails_the_run(regression, store: str) -> None:
    s = regression()
    phase = s.train_phase(n_epochs=4)

    class Boom(mml.Callback):
        def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
            if exec_ctx.epoch_idx == 1:
                raise RuntimeError("boom")

    logger = MLflowLogger(tracking_uri=store, experiment_name="failing")
    phase.add_callback(logger)
    phase.add_callback(Boom(execution_order=200))
    with pytest.raises(RuntimeError, match="boom"):
        phase.execute(**QUIET)
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(logger.run_id).info.status == "FAILED"
    assert sorted(_epoch_metrics(client, logger.run_id, "train_loss")) == [0, 1]


def test_arguments_config_and_registration(store: str) -> None:
    with pytest.raises(InvalidTypeError, match="tracking_uri"):
        MLflowLogger(tracking_uri="")
    logger = MLflowLogger(store, "exp", "run", True, log_batches=True)
    with pytest.raises(InvalidArgumentError, match="before a run started"):
        logger.log_metrics({"x": 1.0}, phase="p", epoch=0, batch=None)
    assert MLflowLogger.from_config(logger.get_config()).get_config() == logger.get_config()
    assert mml.get_plugin_manager().registry("callbacks").get("MLflowLogger") is MLflowLogger


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 (its own sqlite store and artifact folder), stopped afterwards."""
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited with {server.returncode}:\n{(tmp_path / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer in 120 s:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server's own process group (its workers too)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.slow
def test_against_a_real_mlflow_server(regression, mlflow_server: str, tmp_path: Path) -> None:
    s = regression()
    phase = s.train_phase(n_epochs=2)
    logger = MLflowLogger(tracking_uri=mlflow_server, experiment_name="served", log_model=True)
    phase.add_callback(logger)
    results = phase.execute(**QUIET)
    client = MlflowClient(tracking_uri=mlflow_server)
    _check_run(client, logger.run_id, results)
    assert "model/model-graph.mg.mml" in _artifacts(client, logger.run_id)
    assert list((tmp_path / "server-artifacts").rglob("model-graph.mg.mml"))  # stored by the server
