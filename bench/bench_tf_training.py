"""Benchmark: training a Keras model through ModularML against a hand-written tf.function loop in the same run.

Usage: ``python bench/bench_tf_training.py REPORT.md`` appends a section to the report.

Workload (the torch benchmark's): 100,000 x 32 float32 samples, SequentialMLP 32 -> 64 -> 64 -> 1 (ReLU),
Adam 1e-3, batch 256 (shuffled each epoch), 5 epochs, MSE loss.

- ModularML: ``FeatureSet.from_dict`` -> one ``TrainPhase`` (``SimpleSampler(batch_size=256,
  shuffle=True, seed=0)``, node optimizer, ``ResultRecording.none``); and the same steps driven through
  ``ModelGraph.train_step`` directly (one ``ExecutionContext`` per step), with the optimizer on the node
  and on the graph.
  Either way each step is one compiled function (the backend's ``compile_train_step``).
- Baseline: the same layers built directly with ``keras.Sequential``, ``keras.optimizers.Adam`` and
  ``keras.losses.MeanSquaredError``; per epoch a ``tf.random.shuffle`` of the row indices, then for each
  batch ``tf.gather`` of the float32 tensors and one ``tf.function``-compiled step (forward, loss,
  ``tf.GradientTape`` gradients, ``optimizer.apply``), traced once.

Environment: ``BENCH_RUNS`` (timed rounds, default 3), ``BENCH_LABEL`` (added to the section title).
Each variant and the baseline alternate in rounds in one process; reported are the fastest run's seconds
per epoch, its ratio to the fastest hand-written run, and the median over rounds of each round's ratio
(a variant against the hand-written run of the same round). Target: ModularML within 1.15x of the
hand-written loop (reported, not asserted).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from _report import append_section, run

import modularml as mml
from modularml.batches import ExecutionContext
from modularml.context import ExperimentContext
from modularml.data import FeatureSet
from modularml.samplers import SimpleSampler
from modularml_tf import SequentialMLP

N, D, BATCH, EPOCHS, LR = 100_000, 32, 256, 5, 1e-3
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TARGET = 1.15


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = (np.tanh(x[:, :4].sum(axis=1)) + 0.1 * rng.normal(size=N)).astype(np.float32)
    return x, y


def _keras_loop(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """One call = EPOCHS epochs of the hand-written loop; returns the last loss."""
    xt, yt = tf.constant(x), tf.constant(y.reshape(-1, 1))
    model = keras.Sequential(
        [
            keras.Input((D,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    optimizer = keras.optimizers.Adam(learning_rate=LR)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.MeanSquaredError()

    @tf.function
    def step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    def run() -> float:
        last = tf.constant(0.0)
        for _ in range(EPOCHS):
            order = tf.random.shuffle(tf.range(N))
            for start in range(0, N, BATCH):
                idx = order[start : start + BATCH]
                last = step(tf.gather(xt, idx), tf.gather(yt, idx))
        return float(last)

    return run


def _framework_loop(x: np.ndarray, y: np.ndarray, *, global_optimizer: bool) -> Callable[[], float]:
    """One call = EPOCHS epochs through ModelGraph.train_step; returns the last loss."""
    tag = int(global_optimizer)
    context = ExperimentContext(registration_policy="error")
    with context.activate():
        fs = FeatureSet.from_dict(f"bench{tag}", {"x": x, "y": y}, "x", "y")
        optimizer = mml.Optimizer("adam", opt_kwargs={"lr": LR}, backend="tensorflow")
        model = SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64)
        if global_optimizer:
            node = mml.ModelNode(f"mlp{tag}", model, fs)
            graph = mml.ModelGraph([node], optimizer=optimizer, label=f"graph{tag}")
        else:
            node = mml.ModelNode(f"mlp{tag}", model, fs, optimizer)
            graph = mml.ModelGraph([node], label=f"graph{tag}")
        loss = mml.AppliedLoss(mml.Loss("mse", backend="tensorflow"), on=node, inputs=["outputs", "targets"])
        sampler = SimpleSampler(batch_size=BATCH, shuffle=True, seed=0, source=fs, show_progress=False)
        sampler.materialize_batches()
        ref = fs.reference()
    epochs = iter(range(10**9))

    def run() -> float:
        with context.activate():
            ctx = None
            for _ in range(EPOCHS):
                epoch = next(epochs)
                for batch_idx, view in enumerate(sampler.get_batches(epoch=epoch)):
                    ctx = ExecutionContext(
                        "train", epoch_idx=epoch, batch_idx=batch_idx, inputs={(node.node_id, ref): view}
                    )
                    graph.train_step(ctx, [loss])
            return float(mml.get_backend("tensorflow").to_numpy(ctx.losses[loss.label]))

    return run


def _train_phase_loop(x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """One call = one TrainPhase of EPOCHS epochs (node optimizer, no recording)."""
    from modularml.phases import InputBinding, TrainPhase

    context = ExperimentContext(registration_policy="error")
    with context.activate():
        fs = FeatureSet.from_dict("bench_phase", {"x": x, "y": y}, "x", "y")
        optimizer = mml.Optimizer("adam", opt_kwargs={"lr": LR}, backend="tensorflow")
        node = mml.ModelNode("mlp_phase", SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64), fs, optimizer)
        graph = mml.ModelGraph([node], label="graph_phase")
        loss = mml.AppliedLoss(mml.Loss("mse", backend="tensorflow"), on=node, inputs=["outputs", "targets"])
        sampler = SimpleSampler(batch_size=BATCH, shuffle=True, seed=0, show_progress=False)
        binding = InputBinding.for_training(node=node, sampler=sampler, upstream=fs)
        phase = TrainPhase("train", input_sources=[binding], losses=[loss], n_epochs=EPOCHS, result_recording="none")

    def run() -> float:
        with context.activate():
            results = phase.execute(graph=graph, show_sampler_progress=False, show_training_progress=False)
        return float(results.metrics().last("train_loss"))

    return run


def _measure(pairs: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Seconds per epoch of each callable in every round; a round runs each once, in turn, after one warm-up each."""
    for fn in pairs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in pairs}
    for _ in range(runs):
        for name, fn in pairs.items():
            start = time.perf_counter()
            last = fn()
            times[name].append((time.perf_counter() - start) / EPOCHS)
            assert np.isfinite(last), (name, last)
    return times


def main(report: Path) -> None:
    keras.utils.set_random_seed(0)
    x, y = _data()
    variants = {
        "hand-written tf.function + GradientTape loop": _keras_loop(x, y),
        "ModularML TrainPhase (node optimizer, ResultRecording.none)": _train_phase_loop(x, y),
        "ModularML, node optimizer (ModelGraph.train_step)": _framework_loop(x, y, global_optimizer=False),
        "ModularML, graph (global) optimizer (ModelGraph.train_step)": _framework_loop(x, y, global_optimizer=True),
    }
    times = _measure(variants, RUNS)
    hand = times["hand-written tf.function + GradientTape loop"]
    label = os.environ.get("BENCH_LABEL")
    devices = [d.name for d in tf.config.list_logical_devices()]
    lines = [
        "## TensorFlow training (Keras 3)" + (f" — {label}" if label else ""),
        "",
        f"Python {sys.version.split()[0]}, TensorFlow {tf.__version__}, Keras {keras.__version__}, numpy "
        f"{np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, devices {devices}. {N:,} x {D} float32 "
        f"samples, SequentialMLP {D}->64->64->1, Adam {LR}, batch {BATCH}, MSE; {RUNS} rounds after a warm-up; a "
        f"round runs every variant once ({EPOCHS} epochs), in turn, in one process. The verdict uses the median "
        "over rounds of each round's ratio to the hand-written loop, whose whole step is one traced "
        "`tf.function`. ModularML compiles each step the same way (forward, loss, gradients and update in "
        "one `tf.function`, through the backend's `compile_train_step`), with the optimizer on the node and "
        "on the graph alike.",
        "",
        "| what | s / epoch (fastest) | samples / s | ratio, fastest runs | ratio, median of rounds | target "
        "| verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, values in times.items():
        fastest = min(values)
        paired = statistics.median(v / h for v, h in zip(values, hand, strict=True))
        verdict = "" if name.startswith("hand-written") else ("meets" if paired <= TARGET else "MISSES")
        lines.append(
            f"| {name} | {fastest:.3f} | {N / fastest:,.0f} | {fastest / min(hand):.2f}x | {paired:.2f}x | "
            f"{'' if not verdict else f'<= {TARGET:.2f}x'} | {verdict} |"
        )
    lines.append("")
    append_section(report, lines)


if __name__ == "__main__":
    run(main, __file__)
