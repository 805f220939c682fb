"""Benchmark: where a ModularML training step spends its time beyond a hand-written PyTorch step.

Usage: ``python bench/bench_torch_step_breakdown.py REPORT.md`` appends a section to the report.

The same workload as ``bench_torch_training.py`` (100,000 x 32 float32, SequentialMLP 32 -> 64 -> 64 -> 1,
Adam, batch 256, MSE), one torch thread. Each row replaces one more part of a hand-written step by
the framework's own, so the difference between two rows is what that part costs *inside* the
training loop (where cache effects count, unlike timing a part alone):

1. hand-written: ``x.take`` / ``y.take`` of the batch rows, ``torch.from_numpy``, model, ``MSELoss``,
   ``zero_grad`` / ``backward`` / ``step``;
2. + ``BatchView.materialize_batch`` (sample UUIDs, weights, masks, batch containers);
3. + ``ModelNode.forward`` (model wrapper, output containers);
4. + ``AppliedLoss.compute`` (in an ``ExecutionContext``);
5. + the backend's ``apply_gradients``;
6. ``ModelGraph.train_step`` (graph and node bookkeeping, set training modes).

Each row runs 40 steps, all rows alternate, and the fastest of ``BENCH_RUNS`` (default 30) rounds
is reported, the least disturbed by other work on a shared machine.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _report import append_section, run

import modularml as mml
from modularml.batches import ExecutionContext
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.samplers import SimpleSampler
from modularml_torch import SequentialMLP

N, D, BATCH, LR, STEPS = 100_000, 32, 256, 1e-3, 40
RUNS = int(os.environ.get("BENCH_RUNS", "30"))


def _rows(x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], None]]:
    fs = FeatureSet.from_dict("breakdown", {"x": x, "y": y}, "x", "y")
    optimizer = mml.Optimizer("adam", opt_kwargs={"lr": LR}, backend="torch")
    node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64), fs, optimizer)
    graph = mml.ModelGraph([node], label="breakdown_graph")
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    sampler = SimpleSampler(batch_size=BATCH, shuffle=True, seed=0, source=fs, show_progress=False)
    sampler.materialize_batches()
    views = list(sampler.get_batches(epoch=0))[:STEPS]
    ref = fs.reference()
    graph.train_step(ExecutionContext("train", inputs={(node.node_id, ref): views[0]}), [loss])  # builds everything
    model, opt = node.model, node.optimizer.instance
    params = list(model.parameters())
    impl = mml.get_backend("torch")
    fmt = node._gather_format
    mse = torch.nn.MSELoss()

    def step(features: torch.Tensor, targets: torch.Tensor) -> None:
        value = mse(model.layers(features), targets.reshape(-1, 1))
        opt.zero_grad()
        value.backward()
        opt.step()

    def hand() -> None:
        for view in views:
            rows = view.role_indices["default"]
            step(torch.from_numpy(x.take(rows, axis=0)), torch.from_numpy(y.take(rows)))

    def materialize() -> None:
        for view in views:
            batch = view.materialize_batch(fmt)
            step(batch.features, batch.targets)

    def node_forward() -> None:
        for view in views:
            out = node.forward(view.materialize_batch(fmt))
            value = mse(out.outputs, out.targets.reshape(-1, 1))
            opt.zero_grad()
            value.backward()
            opt.step()

    def applied_loss() -> None:
        for view in views:
            ctx = ExecutionContext("train")
            ctx.set_output(node.node_id, node.forward(view.materialize_batch(fmt)))
            value = loss.compute(ctx)
            opt.zero_grad()
            value.backward()
            opt.step()

    def apply_gradients() -> None:
        for view in views:
            ctx = ExecutionContext("train")
            ctx.set_output(node.node_id, node.forward(view.materialize_batch(fmt)))
            impl.apply_gradients(loss.compute(ctx), opt, params, None)

    def train_step() -> None:
        for view in views:
            graph.train_step(ExecutionContext("train", inputs={(node.node_id, ref): view}), [loss])

    return {
        "hand-written step (numpy take + from_numpy)": hand,
        "+ BatchView.materialize_batch": materialize,
        "+ ModelNode.forward": node_forward,
        "+ AppliedLoss.compute": applied_loss,
        "+ backend.apply_gradients": apply_gradients,
        "ModelGraph.train_step (everything)": train_step,
    }


def main(report: Path) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = (np.tanh(x[:, :4].sum(axis=1)) + 0.1 * rng.normal(size=N)).astype(np.float32)
    mml.get_backend("torch").seed(0)
    with ExperimentContext(registration_policy="error").activate():
        rows = _rows(x, y)
        for fn in rows.values():
            fn()
        best = dict.fromkeys(rows, float("inf"))
        for _ in range(RUNS):
            for name, fn in rows.items():
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], (time.perf_counter() - start) / STEPS)
    base = best["hand-written step (numpy take + from_numpy)"]
    lines = [
        "## Torch training step breakdown",
        "",
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, {platform.machine()}, one torch thread; "
        f"fastest of {RUNS} alternating rounds of {STEPS} steps. Each row adds one framework part to the one above.",
        "",
        "| step | µs / step | over hand-written | over the row above |",
        "|---|---|---|---|",
    ]
    previous = base
    for name, seconds in best.items():
        lines.append(
            f"| {name} | {seconds * 1e6:.0f} | {(seconds - base) * 1e6:+.0f} | {(seconds - previous) * 1e6:+.0f} |"
        )
        previous = seconds
    lines.append("")
    append_section(report, lines)


if __name__ == "__main__":
    run(main, __file__)
