"""Cross-validation by cell: 5 group folds of the shipped battery dataset, every scaler refit per fold.

The synthetic cells of :mod:`modularml.datasets` become a FeatureSet (two curves per sample, the
state of health as target), split by cell into a pool (``train`` + ``val``) and a held-out
``test`` split. A :class:`~modularml.experiment.CrossValidation` cuts the pool into 5 folds of
whole cells; in each fold the training split is four parts and the validation split the fifth,
the StandardScalers are refit on that fold's training rows only (a scaler fitted on the whole
pool would leak validation data), and an MLP trains from the same initial weights. The table
printed at the end gives each fold's validation RMSE in raw units (state of health) next to that
of predicting the fold's training mean, with the mean and standard deviation across folds.

Run it with ``python examples/cross_validation.py`` (folds one after another in this process), or
``python examples/cross_validation.py --executor ray`` to run the folds on Ray
(``pip install "modularml[ray]"``; a local Ray is started, or set ``RAY_ADDRESS`` to use a cluster).
Needs the torch and scikit-learn backends.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import numpy as np

import modularml as mml
from modularml.callbacks import Evaluation
from modularml.datasets import make_featureset
from modularml.experiment import CrossValidation, CVBinding
from modularml.phases import TrainPhase


def build(*, n_samples: int, epochs: int, seed: int = 0) -> tuple[mml.Experiment, mml.FeatureSet, mml.ModelNode]:
    """The experiment: the cells FeatureSet (scaled on ``train``), an MLP head and a TrainPhase with validation."""
    from modularml_torch import SequentialMLP

    mml.get_backend("torch").seed(seed)
    experiment = mml.Experiment.from_active_context("cv_cells")
    fs = make_featureset("cells", n_samples=n_samples, seed=seed)
    fs.split_random({"train": 0.7, "val": 0.1, "test": 0.2}, group_by="cell_id", seed=seed)
    for curve in ("voltage", "current"):
        fs.fit_transform("StandardScaler", domain="features", keys=curve, fit_to_split="train")
    fs.fit_transform("StandardScaler", domain="targets", fit_to_split="train")
    head = mml.ModelNode("soh_mlp", SequentialMLP(output_shape=(1,), hidden_dim=32), fs)
    mml.ModelGraph([head], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 3e-3}, backend="torch"))
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
    train = TrainPhase.from_split(
        "train",
        split="train",
        sampler=mml.SimpleSampler(batch_size=32, shuffle=True, seed=seed),
        losses=[loss],
        n_epochs=epochs,
        callbacks=[Evaluation.from_split("val", split="val", losses=[loss], every_n_epochs=epochs)],
    )
    experiment.execution_plan.add_phase(train)
    return experiment, fs, head


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)))


def fold_table(results: mml.CVResults, fs: mml.FeatureSet, head: mml.ModelNode) -> list[dict[str, Any]]:
    """Per fold: validation RMSE of the model and of the fold's training-mean baseline, in raw units."""
    raw = fs.collection.to_numpy("targets.soh.raw").reshape(len(fs), -1)
    rows = []
    for index, (label, fold) in enumerate(results):
        evaluation = fold.get_train_result("train").validation_results().last()
        predicted = evaluation.stacked_tensors(head, "outputs")
        uuids = evaluation.stacked_tensors(head, "sample_uuids")
        row_of = {u: i for i, u in enumerate(fs.collection.sample_uuid_strings())}
        val_rows = np.array([row_of[str(u)] for u in uuids])
        train_rows = results.fold_rows[index]["cells"]["train"]
        # the fold's target scaler was fit on its own training rows: undo it with their mean and std
        mean, std = raw[train_rows].mean(), raw[train_rows].std()
        model = _rmse(np.asarray(predicted).reshape(-1) * std + mean, raw[val_rows].reshape(-1))
        baseline = _rmse(np.full(len(val_rows), raw[train_rows].mean()), raw[val_rows].reshape(-1))
        rows.append({"fold": label, "val_samples": len(val_rows), "rmse": model, "baseline_rmse": baseline})
    return rows


def main(*, n_samples: int = 400, epochs: int = 40, n_folds: int = 5, executor: str = "local") -> dict[str, Any]:
    """Run the cross-validation in a fresh ExperimentContext; print and return the table and its summary."""
    with mml.ExperimentContext().activate():
        experiment, fs, head = build(n_samples=n_samples, epochs=epochs)
        cv = CrossValidation(
            bindings=CVBinding(fs, ["train", "val"], group_by="cell_id"), n_folds=n_folds, seed=7, experiment=experiment
        )
        results = cv.run(
            executor=executor, show_fold_progress=False, show_training_progress=False, show_sampler_progress=False
        )
        table = fold_table(results, fs, head)
    print(f"{'fold':<10} {'val samples':>11} {'RMSE':>8} {'baseline':>9}")
    for row in table:
        print(f"{row['fold']:<10} {row['val_samples']:>11} {row['rmse']:>8.4f} {row['baseline_rmse']:>9.4f}")
    rmse = [row["rmse"] for row in table]
    summary = {"mean_rmse": statistics.fmean(rmse), "std_rmse": statistics.stdev(rmse)}
    baseline = statistics.fmean(row["baseline_rmse"] for row in table)
    spread = f"{summary['mean_rmse']:>8.4f} ± {summary['std_rmse']:.4f}"
    print(f"{'mean ± std':<10} {'':>11} {spread} (baseline {baseline:.4f})")
    return {"table": table, **summary, "baseline_rmse": baseline}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", default="local", help="'local' (default) or 'ray'")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    main(n_folds=args.folds, executor=args.executor)
