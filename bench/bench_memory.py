"""Benchmark: peak memory of training runs, and the 10k -> 10M scaling curve.

Usage: ``python bench/bench_memory.py REPORT.md`` appends a section to the report.

Every measurement runs in a child process of its own (``python bench/bench_memory.py --child ...``)
whose peak resident set size is read with ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` in the child,
so sizes and runs do not contaminate each other.

1. A 100,000 x 32 float32 ``TrainPhase`` (SequentialMLP 32-64-64-1, Adam, batch 256) against the
   hand-written torch loop on the same data (both processes import torch; ModularML's also imports
   itself). Target: peak RSS within 1.3x. Flat over epochs: the framework run with 1 and with 4
   epochs, ``ResultRecording`` ``none`` and ``last``; target: the 4-epoch peak within 5% of the
   1-epoch one.
2. The curve at ``BENCH_MEMORY_SIZES`` samples (default ``10000,100000,1000000,10000000``) of 32
   float32 features and a target: ``FeatureSet.from_dict``, ``split_random`` 80/20,
   ``fit_transform`` (scikit-learn's ``StandardScaler`` fit to the training split), one sampler
   epoch (every batch of 1,024 gathered), one ``TrainPhase`` epoch (batch 1,024,
   ``ResultRecording.none``). Reported: seconds and peak RSS after each stage, and time per
   sample against the 100,000 run. Target: 10M within 2.5 GB peak, time per sample within 1.2x.
   On the 2-CPU machine the 10M child takes a minute or two; leave it out with
   ``BENCH_MEMORY_SIZES=10000,100000,1000000``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

N, D = 100_000, 32
SIZES = [int(n) for n in os.environ.get("BENCH_MEMORY_SIZES", "10000,100000,1000000,10000000").split(",") if n]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _data(n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, D), dtype=np.float32)  # no float64 temporary: it would set the peak
    y = np.tanh(x[:, :4].sum(axis=1)) + np.float32(0.1) * rng.standard_normal(n, dtype=np.float32)
    return x, y


def _child_hand(epochs: int) -> dict:
    import torch

    torch.set_num_threads(1)
    x, y = _data(N)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1)
    model = torch.nn.Sequential(
        torch.nn.Linear(D, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    loss_fn = torch.nn.MSELoss()
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(N, generator=gen)
        for first in range(0, N, 256):
            idx = order[first : first + 256]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return {"seconds": time.perf_counter() - start, "peak_mb": _peak_mb()}


def _framework(n: int, batch: int, epochs: int, recording: str, *, stages: bool) -> dict:
    import torch

    import modularml as mml
    from modularml.context import ExperimentContext
    from modularml_torch import SequentialMLP

    torch.set_num_threads(1)
    out: dict = {"stages": []}

    def stage(name: str, began: float) -> None:
        out["stages"].append({"stage": name, "seconds": time.perf_counter() - began, "peak_mb": _peak_mb()})

    x, y = _data(n)
    out["data_mb"] = (x.nbytes + y.nbytes) / 2**20
    out["baseline_peak_mb"] = _peak_mb()  # interpreter, imports and the numpy input arrays
    with ExperimentContext(registration_policy="error").activate():
        began = time.perf_counter()
        fs = mml.FeatureSet.from_dict("data", {"x": x, "y": y}, feature_keys=["x"], target_keys=["y"])
        del x, y
        stage("from_dict", began)
        began = time.perf_counter()
        fs.split_random({"train": 0.8, "val": 0.2}, seed=0)
        stage("split", began)
        if stages:
            began = time.perf_counter()
            fs.fit_transform("StandardScaler", domain="features", fit_to_split="train")
            stage("scale", began)
            began = time.perf_counter()
            sampler = mml.SimpleSampler(batch_size=batch, shuffle=True, seed=0, source=fs["train"], show_progress=False)
            for view in sampler.get_batches(epoch=0):
                view.materialize_batch()
            stage("sampler epoch", began)
        opt = mml.Optimizer("adam", opt_kwargs={"lr": 1e-3}, backend="torch")
        node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=64), fs, opt)
        mml.ModelGraph([node])
        loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
        sampler = mml.SimpleSampler(batch_size=batch, shuffle=True, seed=0, show_progress=False)
        phase = mml.TrainPhase.from_split(
            "train", split="train", sampler=sampler, losses=[loss], n_epochs=epochs, result_recording=recording
        )
        began = time.perf_counter()
        phase.execute(show_sampler_progress=False, show_training_progress=False)
        stage(f"train {epochs} epoch(s)", began)
    out["peak_mb"] = _peak_mb()
    return out


def _child(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "hand":
        result = _child_hand(int(argv[1]))
    elif kind == "phase":  # epochs, recording
        result = _framework(N, 256, int(argv[1]), argv[2], stages=False)
    else:  # curve n
        result = _framework(int(argv[1]), 1024, 1, "none", stages=True)
    print(json.dumps(result))


def _run_child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False, timeout=3600
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(report: Path) -> None:
    from _report import append_section

    lines = [
        "## Memory (peak RSS of a child process per run)",
        "",
        f"Python {sys.version.split()[0]}, {platform.machine()}, {os.cpu_count()} CPUs; each row is its own "
        "process (peak RSS by `resource.getrusage` in the child; it includes the interpreter and the imports, "
        "torch's about 300 MB). One torch thread.",
        "",
        "| run | peak RSS | against hand-written | target | verdict |",
        "|---|---|---|---|---|",
    ]
    hand = _run_child("hand", "1")
    lines.append(f"| hand-written torch loop, {N:,} x {D}, 1 epoch | {hand['peak_mb']:.0f} MB | 1.00x | - | - |")
    peaks = {}
    for recording in ("none", "last"):
        for epochs in (1, 4):
            result = _run_child("phase", str(epochs), recording)
            peaks[recording, epochs] = result["peak_mb"]
            ratio = result["peak_mb"] / hand["peak_mb"]
            verdict = "meets" if ratio <= 1.3 else "MISSES"
            lines.append(
                f"| TrainPhase, {epochs} epoch(s), recording {recording} | {result['peak_mb']:.0f} MB | "
                f"{ratio:.2f}x | <= 1.3x | {verdict} |"
            )
    lines += [
        "",
        "| recording | peak after 1 epoch | after 4 epochs | growth | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for recording in ("none", "last"):
        growth = peaks[recording, 4] / peaks[recording, 1] - 1
        verdict = "flat" if growth <= 0.05 else "GROWS"
        lines.append(
            f"| {recording} | {peaks[recording, 1]:.0f} MB | {peaks[recording, 4]:.0f} MB | {growth:+.1%} | "
            f"<= +5% | {verdict} |"
        )
    lines += [
        "",
        f"Scaling curve ({D} float32 features + a target; batch 1,024; sizes `BENCH_MEMORY_SIZES`): seconds / peak "
        "RSS after each stage.",
        "",
    ]
    curve = {n: _run_child("curve", str(n)) for n in SIZES}
    names = [s["stage"] for s in next(iter(curve.values()))["stages"]]
    lines += [
        "| samples | data | " + " | ".join(names) + " | peak | train s/sample vs 100k |",
        "|---" * (len(names) + 4) + "|",
    ]
    per_sample = {n: result["stages"][-1]["seconds"] / n for n, result in curve.items()}
    for n, result in curve.items():
        cells = " | ".join(f"{s['seconds']:.2f} s / {s['peak_mb']:.0f} MB" for s in result["stages"])
        relative = f"{per_sample[n] / per_sample[100_000]:.2f}x" if 100_000 in per_sample else "-"
        lines.append(f"| {n:,} | {result['data_mb']:.0f} MB | {cells} | {result['peak_mb']:.0f} MB | {relative} |")
    if 10_000_000 in curve:
        peak = curve[10_000_000]["peak_mb"]
        lines += [
            "",
            f"10M peak {peak / 1024:.2f} GB against the 2.5 GB target: {'meets' if peak <= 2560 else 'MISSES'}.",
        ]
    lines.append("")
    append_section(report, lines)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
    else:
        from _report import run

        run(main, __file__)
