"""Benchmark: evaluating a torch model through an ``EvalPhase`` against a hand-written ``torch.no_grad()`` loop.

Usage: ``python bench/bench_evaluation.py REPORT.md`` appends a section to the report.

Workload (issue 19, item 3): 100,000 x 32 float32 samples, SequentialMLP 32 -> 64 -> 64 -> 1 (ReLU),
an MSE loss, batches of ``BENCH_EVAL_BATCH`` samples (default 1024; also the whole set at once).

- ModularML: ``EvalPhase("eval", input_sources=[InputBinding.for_evaluation(node=...)],
  losses=[mse], batch_size=B).execute()`` (outputs, targets and UUIDs of every batch recorded),
  then ``results.stacked_tensors(node, "outputs")`` (one array of all outputs).
- Baseline: the same model's ``torch.nn.Module`` under ``torch.no_grad()``, slicing the float32
  tensor in batches of B, ``MSELoss`` per batch, the outputs kept and joined with one ``torch.cat``.

Paired rounds (``BENCH_RUNS``, default 7) alternate the two with one torch thread; reported: the
median seconds of each and the median of the per-round ratios. Target: within 1.2x.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _report import append_section, run

import modularml as mml
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.phases import EvalPhase, InputBinding
from modularml_torch import SequentialMLP

N, D = 100_000, 32
ROUNDS = int(os.environ.get("BENCH_RUNS", "7"))
BATCH = int(os.environ.get("BENCH_EVAL_BATCH", "1024"))


def _setup() -> tuple[ExperimentContext, mml.ModelNode, mml.AppliedLoss, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = (np.tanh(x[:, :4].sum(axis=1)) + 0.1 * rng.normal(size=N)).astype(np.float32)
    context = ExperimentContext(registration_policy="error")
    with context.activate():
        fs = FeatureSet.from_dict("eval_bench", {"x": x, "y": y}, "x", "y")
        optimizer = mml.Optimizer("adam", opt_kwargs={"lr": 1e-3}, backend="torch")
        node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=64), fs, optimizer)
        graph = mml.ModelGraph([node], label="graph")
        graph.build()
        loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    return context, node, loss, x, y


def _framework(context: ExperimentContext, node: mml.ModelNode, loss: mml.AppliedLoss, batch: int | None):
    def evaluate() -> np.ndarray:
        with context.activate():
            phase = EvalPhase(
                "eval", input_sources=[InputBinding.for_evaluation(node=node)], losses=[loss], batch_size=batch
            )
            results = phase.execute(show_eval_progress=False)
            return results.stacked_tensors(node, "outputs", fmt="numpy")

    return evaluate


def _hand_written(module: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch: int | None) -> Callable[[], object]:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1)
    loss_fn = torch.nn.MSELoss()
    step = batch or N

    def evaluate() -> np.ndarray:
        module.eval()
        outputs, losses = [], []
        with torch.no_grad():
            for start in range(0, N, step):
                out = module(xt[start : start + step])
                losses.append(loss_fn(out, yt[start : start + step]))
                outputs.append(out)
        return torch.cat(outputs).numpy()

    return evaluate


def _paired(ours: Callable[[], object], baseline: Callable[[], object]) -> tuple[float, float, float]:
    ours()
    baseline()
    pairs = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        ours()
        middle = time.perf_counter()
        baseline()
        pairs.append((middle - start, time.perf_counter() - middle))
    return (
        statistics.median(a for a, _ in pairs),
        statistics.median(b for _, b in pairs),
        statistics.median(a / b for a, b in pairs),
    )


def main(report: Path) -> None:
    torch.set_num_threads(1)
    context, node, loss, x, y = _setup()
    module = node.model  # a torch.nn.Module: the hand-written loop calls the very same weights
    assert isinstance(module, torch.nn.Module)
    lines = [
        "## Evaluation (EvalPhase vs hand-written torch.no_grad loop)",
        "",
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch.set_num_threads(1), {ROUNDS} paired rounds, {N:,} x {D} float32 samples, SequentialMLP "
        "32-64-64-1, MSE loss. ModularML: `EvalPhase.execute()` then `stacked_tensors(node, 'outputs')`; "
        "baseline: the same torch module under `torch.no_grad()`, outputs joined by one `torch.cat`.",
        "",
        "| batch | ModularML (ms) | hand-written (ms) | ratio (median of rounds) | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for batch in (BATCH, None):
        ours, theirs = _framework(context, node, loss, batch), _hand_written(module, x, y, batch)
        np.testing.assert_allclose(ours().reshape(-1), theirs().reshape(-1), rtol=1e-5, atol=1e-6)
        mine, base, ratio = _paired(ours, theirs)
        verdict = "meets" if ratio <= 1.2 else "MISSES"
        label = f"{batch:,}" if batch else f"all {N:,} at once"
        lines.append(f"| {label} | {mine * 1e3:.1f} | {base * 1e3:.1f} | {ratio:.2f}x | <= 1.2x | {verdict} |")
    lines.append("")
    append_section(report, lines)


if __name__ == "__main__":
    run(main, __file__)
