"""Two frameworks in one model graph: a PyTorch encoder of voltage curves and a Keras head.

The synthetic battery cells of :mod:`modularml.datasets` give each sample a voltage curve and two
scalar features (the cell temperature and the mean discharge current). The graph mixes backends:

    voltage curve ----------------> "curve_encoder" (torch SequentialCNN) --\\
                                                                           ConcatNode --> "soh_head" (Keras MLP)
    temperature, mean current ------------------------------------------/

The torch encoder learns an estimate of the state of health from the curve alone; the Keras head
combines that estimate with the scalar features. One TrainPhase trains both: each node steps its
own framework's optimizer on its own loss (a gradient never crosses frameworks; the torch outputs
are converted to TensorFlow tensors at the head). An EvalPhase then predicts unseen cells, and the
test RMSE of the head, in raw units, is printed next to the encoder's and to predicting the mean.

Needs the torch, TensorFlow and scikit-learn backends (``pip install "modularml[torch,tf,sklearn]"``).
Run it with ``python examples/torch_encoder_keras_head.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import modularml as mml
from modularml.phases import EvalPhase, TrainPhase


def build_featureset(*, n_samples: int, n_cells: int, seed: int) -> mml.FeatureSet:
    """The cells dataset with features ``voltage`` (a curve), ``temperature`` and ``mean_current``, target ``soh``.

    Whole cells go to ``train`` (70%) or ``test`` (30%); every feature and the target are scaled
    with scikit-learn's StandardScaler, fitted on ``train``.
    """
    from modularml.datasets import make_curves

    data = make_curves(n_samples, n_groups=n_cells, seed=seed)
    data["mean_current"] = data["current"].mean(axis=1)
    fs = mml.FeatureSet.from_dict(
        "cells", data, ["voltage", "temperature", "mean_current"], ["soh"], tag_keys=["cell_id", "protocol"]
    )
    fs.split_random({"train": 0.7, "test": 0.3}, group_by="cell_id", seed=seed)
    fs.fit_transform("StandardScaler", domain="features", keys="voltage", fit_to_split="train")
    fs.fit_transform("StandardScaler", domain="features", keys=["temperature", "mean_current"], fit_to_split="train")
    fs.fit_transform("StandardScaler", domain="targets", fit_to_split="train")
    return fs


def rmse(predicted: Any, true: np.ndarray) -> float:
    """Root mean squared error of two arrays of the same number of values."""
    return float(np.sqrt(np.mean((np.reshape(np.asarray(predicted), -1) - np.reshape(true, -1)) ** 2)))


def main(
    *,
    n_samples: int = 600,
    n_cells: int = 16,
    epochs: int = 40,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, Any]:
    """Build, train and evaluate the torch + Keras graph in a fresh ExperimentContext.

    Args:
        n_samples: Number of synthetic samples.
        n_cells: Number of cells (splits hold whole cells).
        epochs: Training epochs.
        batch_size: Samples per training batch.
        lr: Learning rate of both Adam optimizers.
        seed: Seed of the data, the split, the sampler, torch and TensorFlow.
        verbose: Print a short summary.

    Returns:
        dict[str, Any]: ``head_rmse`` (the Keras head), ``encoder_rmse`` (the torch encoder's own
        estimate) and ``baseline_rmse`` (predicting the training mean), in raw soh units on the test
        cells; ``first_epoch_losses`` and ``last_epoch_losses`` (mean training loss per loss label,
        scaled units); ``head_input_shape``; ``n_train`` and ``n_test``.
    """
    from modularml_tf import SequentialMLP as KerasMLP
    from modularml_torch import SequentialCNN

    mml.get_backend("torch").seed(seed)
    mml.get_backend("tensorflow").seed(seed)
    with mml.ExperimentContext(registration_policy="error").activate() as ctx:
        experiment = mml.Experiment("torch_encoder_keras_head", ctx=ctx)
        fs = build_featureset(n_samples=n_samples, n_cells=n_cells, seed=seed)

        encoder = mml.ModelNode(
            "curve_encoder",
            SequentialCNN(output_shape=(1,), n_layers=2, hidden_channels=8, kernel_size=5),
            fs.reference(features="voltage", rep="transformed"),
            mml.Optimizer("adam", opt_kwargs={"lr": lr}, backend="torch"),
        )
        joined = mml.ConcatNode(
            "joined",
            [encoder, fs.reference(features=["temperature", "mean_current"], rep="transformed")],
            concat_axis=0,
            concat_axis_targets="first",
            concat_axis_tags="first",
        )
        head = mml.ModelNode(
            "soh_head",
            KerasMLP(output_shape=(1,), n_layers=3, hidden_dim=32),
            joined,
            mml.Optimizer("adam", opt_kwargs={"lr": lr}, backend="tensorflow"),
        )
        graph = mml.ModelGraph([encoder, joined, head])
        losses = [
            mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=encoder, inputs=["outputs", "targets"]),
            mml.AppliedLoss(mml.Loss("mse", backend="tensorflow"), on=head, inputs=["outputs", "targets"]),
        ]
        sampler = mml.SimpleSampler(batch_size=batch_size, shuffle=True, seed=seed, show_progress=False)
        train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=losses, n_epochs=epochs)
        train_results = experiment.run_phase(train, show_sampler_progress=False, show_training_progress=False)
        test_results = experiment.run_phase(EvalPhase.from_split("test", split="test", losses=losses))

        true = fs["test"].get_targets("numpy", rep="raw")
        train_mean = float(fs["train"].get_targets("numpy", rep="raw").mean())
        first, last = {}, {}
        for node, loss in zip((encoder, head), losses, strict=True):
            per_epoch = train_results.losses(node).where(loss=loss.label).collapse("batch", "mean").values
            first[loss.label], last[loss.label] = float(per_epoch[0]), float(per_epoch[-1])
        summary = {
            "head_rmse": rmse(test_results.stacked_tensors(head, "outputs", fmt="numpy", unscale=True), true),
            "encoder_rmse": rmse(test_results.stacked_tensors(encoder, "outputs", fmt="numpy", unscale=True), true),
            "baseline_rmse": rmse(np.full_like(true, train_mean), true),
            "first_epoch_losses": first,
            "last_epoch_losses": last,
            "head_input_shape": tuple(head.input_shape or ()),
            "n_train": len(fs["train"]),
            "n_test": len(fs["test"]),
        }
        if verbose:
            print(graph.visualize())
            print(
                f"\ntorch encoder + Keras head, {epochs} epochs on {summary['n_train']} samples "
                f"(head input {summary['head_input_shape']})\n"
                + "".join(f"  {k}: {first[k]:.4f} -> {last[k]:.4f} (training loss, scaled)\n" for k in first)
                + f"test RMSE of soh on {summary['n_test']} samples of unseen cells: Keras head "
                f"{summary['head_rmse']:.4f}, torch encoder alone {summary['encoder_rmse']:.4f}, "
                f"predicting the training mean {summary['baseline_rmse']:.4f}"
            )
        return summary


if __name__ == "__main__":
    main()
