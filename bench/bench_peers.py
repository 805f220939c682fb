"""Benchmark: the training workload through ModularML and through its peers, against a hand-written torch loop.

Usage: ``python bench/bench_peers.py REPORT.md`` appends a section to the report (``nox -s bench-peers``
installs the peers and runs it).

Workload (``bench_torch_training.py``'s): 100,000 x 32 float32 samples, the target the tanh of the first
four features' sum plus noise, an MLP 32 -> 64 -> 64 -> 1 (ReLU), Adam 1e-3, batch 256 shuffled each
epoch, MSE loss, ``BENCH_EPOCHS`` epochs per run (default 3), ``torch.set_num_threads(1)`` for everyone.

- Baseline: the hand-written PyTorch loop (``torch.randperm`` per epoch, indexing the float32 tensors,
  forward, ``MSELoss``, ``zero_grad`` / ``backward`` / ``step``, ``torch.optim.Adam``'s defaults).
- ModularML: one ``TrainPhase`` (``SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64)`` on a
  node with its optimizer, ``SimpleSampler(batch_size=256, shuffle=True)``, ``ResultRecording.none``,
  no progress bars).
- PyTorch Lightning: a ``LightningModule`` holding the same ``torch.nn`` layers, a ``DataLoader`` over a
  ``TensorDataset`` (``shuffle=True``, the default collate, no workers), a fresh ``Trainer`` per run
  (CPU, one device, ``max_epochs``, no logger, checkpointing, progress bar or model summary).
- Keras 3 ``fit`` on the torch backend (``KERAS_BACKEND=torch``, set before keras is imported): the same
  layers as ``keras.Sequential``, ``compile`` with ``Adam(1e-3)`` and ``"mse"``, ``fit`` on the numpy
  arrays with ``shuffle=True``, ``verbose=0``.
- skorch: ``NeuralNetRegressor`` over the same ``torch.nn`` layers (``MSELoss``, ``torch.optim.Adam``,
  ``train_split=None``, shuffled training iterator, ``verbose=0``), ``partial_fit`` per run.

A peer that cannot be imported is skipped, and the section says which and why. Every model keeps
training across runs (each run continues from the last); each run of a peer includes what one call of
its training entry point costs (building the Lightning ``Trainer``, Keras' and skorch's data handling).

Environment: ``BENCH_RUNS`` (timed rounds, default 3), ``BENCH_EPOCHS`` (epochs per run, default 3),
``BENCH_LABEL`` (added to the section title). Each variant and the baseline alternate in rounds in one
process, after one warm-up run each; reported are the fastest run's seconds per epoch and the median over
rounds of each round's ratio to the hand-written run of the same round (other work on a shared machine
slows neighbouring runs alike). Measured, never asserted.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

# Keras reads its backend once, when it is first imported.
os.environ["KERAS_BACKEND"] = "torch"

import numpy as np
import torch
from _report import append_section, run

import modularml as mml
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.phases import InputBinding, TrainPhase
from modularml.samplers import SimpleSampler
from modularml_torch import SequentialMLP

N, D, BATCH, LR = 100_000, 32, 256, 1e-3
EPOCHS = int(os.environ.get("BENCH_EPOCHS", "3"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
THREADS = 1
BASELINE = "hand-written PyTorch loop"
MODULARML = "ModularML `TrainPhase` (ResultRecording.none)"


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = (np.tanh(x[:, :4].sum(axis=1)) + 0.1 * rng.normal(size=N)).astype(np.float32)
    return x, y


def _mlp() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(D, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    )


def _torch_loop(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """One call = EPOCHS epochs of the hand-written loop; returns the last loss."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.MSELoss()
    gen = torch.Generator().manual_seed(0)

    def run() -> float:
        model.train()
        last = torch.tensor(float("nan"))
        for _ in range(EPOCHS):
            order = torch.randperm(N, generator=gen)
            for start in range(0, N, BATCH):
                idx = order[start : start + BATCH]
                loss = loss_fn(model(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                last = loss
        return float(last.detach())

    return run


def _train_phase(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """One call = one TrainPhase of EPOCHS epochs (node optimizer, x as one column, no recording)."""
    context = ExperimentContext(registration_policy="error")
    with context.activate():
        fs = FeatureSet.from_dict("bench_peers", {"x": x, "y": y}, "x", "y")
        optimizer = mml.Optimizer("adam", opt_kwargs={"lr": LR}, backend="torch")
        node = mml.ModelNode("mlp", SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64), fs, optimizer)
        graph = mml.ModelGraph([node], label="graph")
        loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
        sampler = SimpleSampler(batch_size=BATCH, shuffle=True, seed=0, show_progress=False)
        binding = InputBinding.for_training(node=node, sampler=sampler, upstream=fs)
        phase = TrainPhase("train", input_sources=[binding], losses=[loss], n_epochs=EPOCHS, result_recording="none")

    def run() -> float:
        with context.activate():
            results = phase.execute(graph=graph, show_sampler_progress=False, show_training_progress=False)
        return float(results.metrics().last("train_loss"))

    return run


def _lightning() -> tuple[object, str]:
    """The Lightning package (``lightning.pytorch`` or the older ``pytorch_lightning``) and its version."""
    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl
    return pl, f"lightning {pl.__version__}"


def _lightning_loop(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """One call = a fresh Trainer fitting the same LightningModule for EPOCHS epochs; returns the last loss."""
    pl, _ = _lightning()
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "GPU available: False", tips about workers

    class Regressor(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _mlp()
            self.loss_fn = torch.nn.MSELoss()
            self.last = float("nan")

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            xb, yb = batch
            loss = self.loss_fn(self.net(xb), yb)
            self.last = loss.detach()
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=LR)

    module = Regressor()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0)
    )

    def run() -> float:
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=EPOCHS,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the DataLoader "does not have many workers" advice
            trainer.fit(module, train_dataloaders=loader)
        return float(module.last)

    return run


def _keras() -> tuple[object, str]:
    """Keras 3 on the torch backend, and its version; ImportError when only another Keras is there."""
    import keras

    if not keras.__version__.startswith("3.") or keras.backend.backend() != "torch":
        raise ImportError(f"keras {keras.__version__} on backend {keras.backend.backend()!r}, not Keras 3 on torch")
    return keras, f"keras {keras.__version__}"


def _keras_loop(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """One call = one ``model.fit`` of EPOCHS epochs; returns the last epoch's loss."""
    keras, _ = _keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((D,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LR), loss="mse")
    target = y.reshape(-1, 1)

    def run() -> float:
        history = model.fit(x, target, batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0)
        return float(history.history["loss"][-1])

    return run


def _skorch() -> tuple[object, str]:
    import skorch

    return skorch, f"skorch {skorch.__version__}"


def _skorch_loop(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """One call = one ``partial_fit`` of EPOCHS epochs; returns the last epoch's training loss."""
    skorch, _ = _skorch()
    net = skorch.NeuralNetRegressor(
        module=_mlp(),
        criterion=torch.nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=LR,
        batch_size=BATCH,
        max_epochs=EPOCHS,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
        device="cpu",
    )
    net.initialize()
    target = y.reshape(-1, 1)

    def run() -> float:
        net.partial_fit(x, target)
        return float(net.history[-1, "train_loss"])

    return run


# Each peer: its label, how to import it (returns the module and its version), how to build its run.
PEERS: list[tuple[str, Callable[[], tuple[object, str]], Callable[[np.ndarray, np.ndarray], Callable[[], float]]]] = [
    ("PyTorch Lightning `Trainer.fit` + `DataLoader`", _lightning, _lightning_loop),
    ("Keras 3 `fit`, torch backend", _keras, _keras_loop),
    ("skorch `NeuralNetRegressor.partial_fit`", _skorch, _skorch_loop),
]


def _measure(pairs: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Seconds per epoch of each callable in every round; a round runs each once, in turn, after one warm-up each."""
    for name, fn in pairs.items():
        fn()
        _check_threads(name)
    times: dict[str, list[float]] = {name: [] for name in pairs}
    for _ in range(runs):
        for name, fn in pairs.items():
            start = time.perf_counter()
            last = fn()
            times[name].append((time.perf_counter() - start) / EPOCHS)
            _check_threads(name)
            if not np.isfinite(last):
                raise RuntimeError(f"{name}: the last training loss is {last}, not a finite number")
    return times


def _check_threads(name: str) -> None:
    """Everyone must train with THREADS torch threads: stop when a run changed the setting."""
    if torch.get_num_threads() != THREADS:
        raise RuntimeError(
            f"{name} changed torch's intra-op threads from {THREADS} to {torch.get_num_threads()}; "
            "the comparison would not be fair"
        )


def main(report: Path) -> None:
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    mml.get_backend("torch").seed(0)
    x, y = _data()
    variants = {BASELINE: _torch_loop(x, y), MODULARML: _train_phase(x, y)}
    versions = {BASELINE: f"torch {torch.__version__}", MODULARML: f"modularml {_version('modularml')}"}
    skipped: list[str] = []
    for label, load, build in PEERS:
        try:
            _, version = load()
        except ImportError as exc:
            skipped.append(f"{label} ({exc})")
            continue
        variants[label] = build(x, y)
        versions[label] = version
    times = _measure(variants, RUNS)
    hand = times[BASELINE]
    title = "## Peers: the training workload through ModularML, PyTorch Lightning, Keras 3 and skorch"
    label = os.environ.get("BENCH_LABEL")
    lines = [
        title + (f" — {label}" if label else ""),
        "",
        f"Python {sys.version.split()[0]}, torch {torch.__version__}, numpy {np.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch.set_num_threads({THREADS}) for everyone. "
        f"{N:,} x {D} float32 samples, MLP {D}->64->64->1 (ReLU), Adam {LR}, batch {BATCH} shuffled each epoch, "
        f"MSE; {RUNS} rounds after a warm-up; a round runs every variant once "
        f"({EPOCHS} epoch{'s' if EPOCHS != 1 else ''}), in turn, in one process. "
        "Ratio: the median over rounds of each round's ratio to the hand-written loop of that round. "
        "Each peer run includes its entry point's own cost (a fresh Lightning `Trainer`, the `DataLoader` with "
        "the default collate; Keras' and skorch's data handling).",
        "",
        "| what | version | s / epoch (fastest) | samples / s | ratio to the hand-written loop, median of rounds |",
        "|---|---|---|---|---|",
    ]
    for name, values in times.items():
        fastest = min(values)
        paired = statistics.median(v / h for v, h in zip(values, hand, strict=True))
        lines.append(f"| {name} | {versions[name]} | {fastest:.3f} | {N / fastest:,.0f} | {paired:.2f}x |")
    lines.append("")
    if skipped:
        lines += ["Not measured, not importable here (`nox -s bench-peers` installs them): " + "; ".join(skipped), ""]
    append_section(report, lines)


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


if __name__ == "__main__":
    run(main, __file__)
