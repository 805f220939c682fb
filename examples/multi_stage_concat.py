"""A multi-stage model graph: two encoders joined by a ConcatNode, then a regression head.

The synthetic battery cells of :mod:`modularml.datasets` become a FeatureSet with a voltage
curve and two scalar features per sample (the cell temperature and the mean discharge current,
which the protocol sets). Two head nodes read different columns of that one FeatureSet:

    voltage curve ----------------> SequentialCNN encoder --\\
                                                            ConcatNode --> SequentialMLP head --> soh
    temperature, mean current ----> SequentialMLP encoder --/

The graph trains end to end with one global optimizer (every loss of a step summed, one
backward pass through the head, the ConcatNode and both encoders), through a TrainPhase and an
EvalPhase run by an ``mml.Experiment``. The test RMSE of the state of health, in raw units, is
printed next to that of predicting the training mean.

Needs the torch (or TensorFlow) and scikit-learn backends (``pip install "modularml[torch,sklearn]"``).
Run it with ``python examples/multi_stage_concat.py`` (``--backend tensorflow`` for Keras models).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import modularml as mml
from modularml.datasets import make_curves
from modularml.phases import EvalPhase, TrainPhase

BACKENDS = ("torch", "tensorflow")


def backend_models(backend: str) -> Any:
    """The distribution whose built-in models the example uses: ``modularml_torch`` or ``modularml_tf``.

    Both offer ``SequentialMLP``, ``SequentialCNN`` and ``SequentialRNN`` with the same arguments.

    Raises:
        ValueError: For a backend other than ``"torch"`` and ``"tensorflow"``.
    """
    if backend == "torch":
        import modularml_torch

        return modularml_torch
    if backend == "tensorflow":
        import modularml_tf

        return modularml_tf
    raise ValueError(f"backend is one of {BACKENDS}; got {backend!r}.")


def parse_backend() -> str:
    """The ``--backend`` of the command line (``torch`` unless given)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="the framework of the models")
    return parser.parse_args().backend


def build_featureset(*, n_samples: int, n_cells: int, seed: int) -> mml.FeatureSet:
    """The cells dataset with features ``voltage`` (a curve), ``temperature`` and ``mean_current`` (scalars).

    Splits whole cells into ``train`` (60%), ``val`` (20%) and ``test`` (20%); scales every
    feature and the ``soh`` target with scikit-learn's StandardScaler, fitted on ``train``.
    """
    data = make_curves(n_samples, n_groups=n_cells, seed=seed)
    data["mean_current"] = data["current"].mean(axis=1)
    fs = mml.FeatureSet.from_dict(
        "cells",
        data,
        feature_keys=["voltage", "temperature", "mean_current"],
        target_keys=["soh"],
        tag_keys=["cell_id", "protocol"],
    )
    fs.split_random({"train": 0.6, "val": 0.2, "test": 0.2}, group_by="cell_id", seed=seed)
    fs.fit_transform("StandardScaler", domain="features", keys="voltage", fit_to_split="train")
    fs.fit_transform("StandardScaler", domain="features", keys=["temperature", "mean_current"], fit_to_split="train")
    fs.fit_transform("StandardScaler", domain="targets", fit_to_split="train")
    return fs


def rmse(predicted: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error of two arrays of the same number of values."""
    return float(np.sqrt(np.mean((np.reshape(predicted, -1) - np.reshape(true, -1)) ** 2)))


def main(
    *,
    n_samples: int = 600,
    n_cells: int = 16,
    epochs: int = 60,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    verbose: bool = True,
    backend: str = "torch",
) -> dict[str, Any]:
    """Build, train and evaluate the two-branch graph in a fresh ExperimentContext.

    Args:
        n_samples (int): Number of synthetic samples. Defaults to 600.
        n_cells (int): Number of cells (``cell_id`` groups; splits hold whole cells). Defaults to 16.
        epochs (int): Training epochs. Defaults to 60.
        batch_size (int): Samples per training batch. Defaults to 32.
        lr (float): Learning rate of the global Adam optimizer. Defaults to 3e-3.
        seed (int): Seed of the data, the split, the sampler and the model weights. Defaults to 0.
        verbose (bool): Print a short summary. Defaults to True.
        backend (str): The framework of the models and the optimizer, ``"torch"`` or
            ``"tensorflow"`` (the command line's ``--backend``). Defaults to ``"torch"``.

    Returns:
        dict[str, Any]: ``test_rmse`` and ``baseline_rmse`` (predicting the training mean), both
        in raw soh units; ``first_epoch_loss`` and ``last_epoch_loss`` (mean training loss of the
        first and last epoch, scaled units); ``concat_shape`` (per-sample shape out of the
        ConcatNode); ``n_train`` and ``n_test``.
    """
    models = backend_models(backend)
    SequentialCNN = models.SequentialCNN
    SequentialMLP = models.SequentialMLP

    with mml.ExperimentContext(registration_policy="error").activate() as ctx:
        experiment = mml.Experiment("multi_stage_concat", ctx=ctx)
        mml.get_backend(backend).seed(seed)
        fs = build_featureset(n_samples=n_samples, n_cells=n_cells, seed=seed)

        curve_encoder = mml.ModelNode(
            "curve_encoder",
            SequentialCNN(output_shape=(8,), n_layers=2, hidden_channels=8, kernel_size=5),
            fs.reference(features="voltage", rep="transformed"),
        )
        scalar_encoder = mml.ModelNode(
            "scalar_encoder",
            SequentialMLP(output_shape=(4,), n_layers=2, hidden_dim=16),
            fs.reference(features=["temperature", "mean_current"], rep="transformed"),
        )
        # Both branches carry the same soh target: keep one copy instead of concatenating them.
        joined = mml.ConcatNode(
            "joined",
            [curve_encoder, scalar_encoder],
            concat_axis=0,
            concat_axis_targets="first",
            concat_axis_tags="first",
        )
        head = mml.ModelNode("soh_head", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=32), joined)
        graph = mml.ModelGraph(
            [curve_encoder, scalar_encoder, joined, head],
            optimizer=mml.Optimizer("adam", opt_kwargs={"lr": lr}, backend=backend),
        )
        loss = mml.AppliedLoss(mml.Loss("mse", backend=backend), on=head, inputs=["outputs", "targets"])

        sampler = mml.SimpleSampler(batch_size=batch_size, shuffle=True, seed=seed, show_progress=False)
        train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[loss], n_epochs=epochs)
        train_results = experiment.run_phase(train, show_sampler_progress=False, show_training_progress=False)
        test_results = experiment.run_phase(EvalPhase.from_split("test", split="test", losses=[loss]))

        predicted = test_results.stacked_tensors(head, "outputs", fmt="numpy", unscale=True)
        true = fs["test"].get_targets("numpy", rep="raw")
        train_mean = float(fs["train"].get_targets("numpy", rep="raw").mean())
        epoch_losses = train_results.metrics().epoch_values("train_loss")
        summary = {
            "test_rmse": rmse(predicted, true),
            "baseline_rmse": rmse(np.full_like(true, train_mean), true),
            "first_epoch_loss": float(epoch_losses[min(epoch_losses)]),
            "last_epoch_loss": float(epoch_losses[max(epoch_losses)]),
            "concat_shape": tuple(joined.output_shape or ()),
            "n_train": len(fs["train"]),
            "n_test": len(fs["test"]),
        }
        if verbose:
            print(graph.visualize())
            print(
                f"\n{len(graph.nodes)} nodes trained end to end for {epochs} epochs on {summary['n_train']} samples; "
                f"encoders concatenated to {summary['concat_shape']}.\n"
                f"training loss (scaled) {summary['first_epoch_loss']:.4f} -> {summary['last_epoch_loss']:.4f}\n"
                f"test RMSE of soh on {summary['n_test']} samples of unseen cells: {summary['test_rmse']:.4f} "
                f"(predicting the training mean: {summary['baseline_rmse']:.4f})"
            )
        return summary


if __name__ == "__main__":
    main(backend=parse_backend())
