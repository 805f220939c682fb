"""Benchmark: saving and loading a whole experiment against ``torch.save``/``torch.load`` of the same data.

Usage: ``python bench/bench_experiment_files.py REPORT.md`` appends a section to the report.

Workload (issue 15, "Size and speed"): a FeatureSet of 100,000 samples x 32 float32 features and a
target, split 80/20; SequentialMLP 32 -> 64 -> 64 -> 1 with Adam, trained one epoch by a TrainPhase
(``result_recording="none"``) inside an Experiment.

- ModularML: ``Experiment.save(path, overwrite=True)`` (one ``.exp.mml``: the FeatureSet's Arrow
  table with its splits, the graph's config, weights and Adam state, the plan, the history; fsync
  and atomic rename) and ``Experiment.load(path)`` into a new ExperimentContext (every entry
  validated and checksummed, the graph rebuilt).
- Baseline: ``torch.save({"x": x, "y": y, "splits": ..., "model": state_dict, "optimizer":
  state_dict}, path)`` of the same tensors (``torch.from_numpy``, no copy) and ``torch.load(path)``
  (``weights_only=True``); no fsync, no rename, nothing rebuilt.

Paired rounds alternate the two in one process; reported: each side's median seconds, the median of
the per-round ratios and the file sizes. Target: within 2x of torch on both.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _report import append_section, run

import modularml as mml
from modularml.context import ExperimentContext
from modularml_torch import SequentialMLP

N, D = 100_000, 32
ROUNDS = int(os.environ.get("BENCH_RUNS", "7"))


def _experiment() -> tuple[mml.Experiment, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = (np.tanh(x[:, :4].sum(axis=1, keepdims=True)) + 0.1 * rng.normal(size=(N, 1))).astype(np.float32)
    fs = mml.FeatureSet.from_dict("data", {"x": x, "y": y}, feature_keys=["x"], target_keys=["y"])
    fs.split_random({"train": 0.8, "val": 0.2}, seed=0)
    opt = mml.Optimizer("adam", opt_kwargs={"lr": 1e-3}, backend="torch")
    head = mml.ModelNode("head", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=64), fs, opt)
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
    exp = mml.Experiment.from_active_context("bench")
    sampler = mml.SimpleSampler(batch_size=256, shuffle=True, seed=0, show_progress=False)
    phase = mml.TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=[loss], n_epochs=1, result_recording="none"
    )
    exp.run_phase(phase, show_sampler_progress=False, show_training_progress=False)
    return exp, x, y


def _torch_payload(exp: mml.Experiment, x: np.ndarray, y: np.ndarray) -> dict:
    node = next(iter(exp.model_graph.nodes.values()))
    fs = ExperimentContext.get_active().get_node(label="data")
    return {
        "x": torch.from_numpy(x),
        "y": torch.from_numpy(y),
        "splits": {name: torch.from_numpy(np.asarray(fs.get_split(name).indices)) for name in fs.available_splits},
        "model": node.model.state_dict(),  # a TorchBaseModel is an nn.Module
        "optimizer": node.optimizer.instance.state_dict(),
    }


def main(report: Path) -> None:
    torch.set_num_threads(1)
    with ExperimentContext().activate():
        exp, x, y = _experiment()
        payload = _torch_payload(exp, x, y)
        with tempfile.TemporaryDirectory() as tmp:
            mml_path, torch_path = Path(tmp) / "bench.exp.mml", Path(tmp) / "bench.pt"
            exp.save(mml_path)
            torch.save(payload, torch_path)
            rows = {"save": [], "load": []}
            for _ in range(ROUNDS):
                start = time.perf_counter()
                exp.save(mml_path, overwrite=True)
                ours = time.perf_counter() - start
                start = time.perf_counter()
                torch.save(payload, torch_path)
                theirs = time.perf_counter() - start
                rows["save"].append((ours, theirs))
                start = time.perf_counter()
                with ExperimentContext().activate():
                    mml.Experiment.load(mml_path)
                ours = time.perf_counter() - start
                start = time.perf_counter()
                torch.load(torch_path, weights_only=True)
                theirs = time.perf_counter() - start
                rows["load"].append((ours, theirs))
            sizes = (mml_path.stat().st_size, torch_path.stat().st_size)
    lines = [
        "",
        "## Experiment files (100,000 x 32 float32 samples, SequentialMLP, Adam)",
        "",
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {ROUNDS} paired rounds. File sizes: .exp.mml {sizes[0] / 1e6:.1f} MB, "
        f"torch.save {sizes[1] / 1e6:.1f} MB.",
        "",
        "| operation | ModularML (s) | torch (s) | ratio (median of rounds) | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name, pairs in rows.items():
        ratio = statistics.median(a / b for a, b in pairs)
        ours, theirs = statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)
        verdict = "met" if ratio <= 2.0 else "missed"
        lines.append(f"| {name} | {ours:.4f} | {theirs:.4f} | {ratio:.2f}x | <= 2x | {verdict} |")
    append_section(report, lines)


if __name__ == "__main__":
    run(main, __file__)
