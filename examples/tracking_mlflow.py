"""Track a training run with MLflow: parameters, per-epoch losses, the model file, and plots.

Trains a torch MLP on the synthetic battery curves (split by cell) with an ``MLflowLogger`` on the
TrainPhase. The run goes to a local sqlite tracking store (``--tracking-uri`` for a server such as
``http://127.0.0.1:5000``); afterwards the script reads the run back with ``MlflowClient``, logs
the loss curves and the predicted-vs-true plot as artifacts, and prints where to look:

    python examples/tracking_mlflow.py --out runs/mlflow
    mlflow ui --backend-store-uri sqlite:///runs/mlflow/mlflow.db

Needs ``pip install "modularml[torch,mlflow,plot]"``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

import modularml as mml


def main(
    out: str | Path = "runs/mlflow",
    *,
    tracking_uri: str | None = None,
    n_samples: int = 240,
    epochs: int = 20,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train with an MLflowLogger and return what the tracking store holds (for the tests)."""
    with mml.ExperimentContext(registration_policy="error").activate():
        return run(Path(out), tracking_uri, n_samples=n_samples, epochs=epochs, seed=seed, verbose=verbose)


def artifact_paths(client: Any, run_id: str, folder: str | None = None) -> list[str]:
    """Every file of an MLflow run, as paths within the run's artifacts."""
    paths = []
    for item in client.list_artifacts(run_id, folder):
        paths += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return paths


def run(out: Path, tracking_uri: str | None, *, n_samples: int, epochs: int, seed: int, verbose: bool) -> dict:
    from mlflow import MlflowClient

    from modularml.callbacks import Evaluation
    from modularml.datasets import make_featureset
    from modularml.phases import EvalPhase, TrainPhase
    from modularml_mlflow import MLflowLogger
    from modularml_torch import SequentialMLP

    out.mkdir(parents=True, exist_ok=True)
    tracking_uri = tracking_uri or f"sqlite:///{(out / 'mlflow.db').resolve()}"
    fs = make_featureset("cells", n_samples=n_samples, n_points=32, seed=seed)
    fs.split_random({"train": 0.7, "val": 0.3}, group_by="cell_id", seed=seed + 1)
    for curve in ("voltage", "current"):
        fs.fit_transform("PerSampleMinMaxScaler", domain="features", keys=curve)
    fs.fit_transform("Negate", domain="targets")

    mml.get_backend("torch").seed(seed)
    experiment = mml.Experiment.from_active_context("soh-mlflow")
    node = mml.ModelNode("soh_mlp", SequentialMLP(output_shape=(1,), hidden_dim=32), fs)
    mml.ModelGraph([node], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 3e-3}, backend="torch"))
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    sampler = mml.SimpleSampler(batch_size=32, shuffle=True, seed=seed, show_progress=False)
    train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[loss], n_epochs=epochs)
    train.add_callback(Evaluation.from_split("val", split="val", losses=[loss]))
    logger = MLflowLogger(
        tracking_uri=tracking_uri,
        experiment_name="soh",
        log_model=True,
        artifact_location=(out / "artifacts").resolve().as_uri(),
    )
    train.add_callback(logger)
    experiment.execution_plan.add_phase(train).add_phase(EvalPhase.from_split("validate", split="val", losses=[loss]))
    results = experiment.run(show_sampler_progress=False, show_training_progress=False)

    # Plots are figures without pyplot: save them, and log them with the run.
    figures = {
        "losses.png": results.get_train_result("train").plot_losses(log_scale=True),
        "predictions.png": results.get_eval_result("validate").plot_predictions(node),
        "splits.png": fs.plot_splits(group_by="cell_id"),
    }
    for name, figure in figures.items():
        figure.savefig(out / name)
        logger.log_artifact(out / name)  # the run is finished; MLflow still takes files for it

    client = MlflowClient(tracking_uri=tracking_uri)
    stored = client.get_run(logger.run_id)
    val_loss = {m.step: m.value for m in client.get_metric_history(logger.run_id, "val_loss")}
    artifacts = sorted(artifact_paths(client, logger.run_id))
    predictions = results.get_eval_result("validate").stacked_tensors(node, "outputs", fmt="pandas", unscale=True)
    rmse = float(np.sqrt(np.mean((predictions["outputs.soh"] - predictions["targets.soh"]) ** 2)))
    if verbose:
        print(f"MLflow run {logger.run_id} in {tracking_uri}")
        print(f"  {len(stored.data.params)} parameters, val_loss per epoch: {[round(v, 4) for v in val_loss.values()]}")
        print(f"  artifacts: {artifacts}")
        print(f"  validation RMSE (raw units): {rmse:.4f}")
        print(f"  look at it: mlflow ui --backend-store-uri {tracking_uri}")
    return {
        "run_id": logger.run_id,
        "status": stored.info.status,
        "n_params": len(stored.data.params),
        "val_loss": val_loss,
        "logged_val_loss": results.get_train_result("train").metrics().epoch_values("val_loss"),
        "artifacts": artifacts,
        "rmse": rmse,
        "predictions": predictions,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/mlflow", help="Folder of the store, artifacts and plots.")
    parser.add_argument("--tracking-uri", default=None, help="A tracking store or server; sqlite in --out by default.")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    main(args.out, tracking_uri=args.tracking_uri, epochs=args.epochs)
