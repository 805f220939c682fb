"""Benchmark: a 4-fold cross-validation of the torch training workload, folds in this process against folds on Ray.

Usage: ``python bench/bench_cross_validation.py REPORT.md`` appends a section to the report.

Workload (issue 16): the torch benchmark's data, 100,000 x 32 float32 samples (a target from a tanh
of four features), pooled and cut into 4 folds of 75,000 training and 25,000 validation rows; in
each fold SequentialMLP 32 -> 64 -> 64 -> 1 (ReLU), Adam 1e-3, batch 256, ``BENCH_CV_EPOCHS``
epochs (default 5, as the torch benchmark), ``result_recording="none"``, validation at the end.
``CrossValidation.run`` with ``executor="local"`` (one fold after another, torch with one thread)
against a ``RayExecutor`` on a local Ray with all CPUs (one CPU per fold; the executor sets each
fold's torch threads to 1).

Reported: Ray's start-up apart (``ray.init`` and a first small run), then the fastest local and Ray
runs of ``BENCH_RUNS`` alternating rounds (default 2) and the median of the per-round ratios, with
the target of at most 0.6x on 2 CPUs (start-up excluded). Each fold ships as plain data (the
experiment's state, about 17 MB here, and its rows); the fold validation losses of both executors
are checked to agree (to 1e-5).
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _report import append_section, run

import modularml as mml
from modularml.context import ExperimentContext
from modularml.experiment import CrossValidation, CVBinding
from modularml_torch import SequentialMLP

N, D, FOLDS = 100_000, 32, 4
EPOCHS = int(os.environ.get("BENCH_CV_EPOCHS", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
TARGET = 0.6
QUIET = {"show_fold_progress": False, "show_training_progress": False, "show_sampler_progress": False}


def _cv() -> CrossValidation:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = (np.tanh(x[:, :4].sum(axis=1, keepdims=True)) + 0.1 * rng.normal(size=(N, 1))).astype(np.float32)
    fs = mml.FeatureSet.from_dict("data", {"x": x, "y": y}, feature_keys=["x"], target_keys=["y"])
    fs.split_random({"train": 0.75, "val": 0.25}, seed=0)
    head = mml.ModelNode("head", SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64), fs)
    mml.ModelGraph([head], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 1e-3}, backend="torch"))
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
    exp = mml.Experiment.from_active_context("bench-cv")
    train = mml.TrainPhase.from_split(
        "train",
        split="train",
        sampler=mml.SimpleSampler(batch_size=256, shuffle=True, seed=0, show_progress=False),
        losses=[loss],
        n_epochs=EPOCHS,
        result_recording="none",
        callbacks=[mml.Evaluation.from_split("val", split="val", losses=[loss], every_n_epochs=EPOCHS)],
    )
    exp.execution_plan.add_phase(train)
    return CrossValidation(bindings=CVBinding(fs, ["train", "val"]), n_folds=FOLDS, seed=1)


def _val_losses(results: mml.CVResults) -> list[float]:
    return [r.get_train_result("train").metrics().epoch_values("val_loss")[EPOCHS - 1] for _, r in results]


def main(report: Path) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from modularml_ray import RayExecutor

    torch.set_num_threads(1)
    cpus = os.cpu_count() or 1
    executor = RayExecutor(address="local", init_kwargs={"num_cpus": cpus, "include_dashboard": False})
    start = time.perf_counter()
    executor.start()
    init_s = time.perf_counter() - start
    local_times, ray_times = [], []
    try:
        with ExperimentContext().activate():
            cv = _cv()
            start = time.perf_counter()
            CrossValidation(bindings=cv.bindings, n_folds=2, seed=1).run(executor=executor, **QUIET)  # warm workers
            warm_s = time.perf_counter() - start
            for _ in range(RUNS):
                start = time.perf_counter()
                local = cv.run(**QUIET)
                local_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                remote = cv.run(executor=executor, **QUIET)
                ray_times.append(time.perf_counter() - start)
                if not np.allclose(_val_losses(local), _val_losses(remote), rtol=0, atol=1e-5):
                    raise SystemExit(f"fold losses differ: {_val_losses(local)} != {_val_losses(remote)}")
    finally:
        executor.close()
    ratio = statistics.median(r / loc for r, loc in zip(ray_times, local_times, strict=True))
    lines = [
        "",
        f"## Cross-validation: {FOLDS} folds of the torch workload, in-process against Ray",
        "",
        f"100,000 x 32 samples, SequentialMLP 32-64-64-1, Adam, batch 256, {EPOCHS} epochs per fold; {cpus} CPUs, "
        f"torch {torch.__version__}, {RUNS} rounds. Ray start-up (not counted): ray.init {init_s:.2f} s, first "
        f"2-fold run {warm_s:.2f} s.",
        "",
        "| executor | seconds (fastest) | vs local | target | verdict |",
        "|---|---|---|---|---|",
        f"| local | {min(local_times):.2f} | 1.00x | | |",
        f"| ray | {min(ray_times):.2f} | {ratio:.2f}x (median of rounds) | <= {TARGET}x | "
        f"{'met' if ratio <= TARGET else 'missed'} |",
        "",
        f"Fold validation losses agree to 1e-5 (last round: {', '.join(f'{v:.5f}' for v in _val_losses(remote))}).",
    ]
    append_section(report, lines)


if __name__ == "__main__":
    run(main, __file__)
