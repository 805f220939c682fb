"""A scikit-learn stage feeding a PyTorch model: fit PCA once, then train an MLP on its outputs.

The graph has two nodes of two backends:

    FeatureSet "cells" -> "pca" (scikit-learn: StandardScaler + PCA) -> "soh_mlp" (torch: SequentialMLP)

1. A FitPhase fits the PCA pipeline on all the training rows at once (``fit(X)``) and freezes it.
2. A TrainPhase trains the MLP by gradient steps on the PCA outputs; the frozen PCA stage is only
   forwarded (its numpy outputs are converted to torch tensors at the node boundary).
3. An EvalPhase predicts the test split; predictions are unscaled to state-of-health units and
   compared with always predicting the training mean.

Run it with ``python examples/sklearn_torch_hybrid.py`` (needs modularml-sklearn and modularml-torch).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import modularml as mml
from modularml.context import ExperimentContext
from modularml.datasets import make_featureset
from modularml.phases import EvalPhase, FitPhase, TrainPhase


def main(
    *,
    n_cells: int = 12,
    samples_per_cell: int = 30,
    n_points: int = 50,
    n_components: int = 8,
    epochs: int = 40,
    seed: int = 0,
    verbose: bool = True,
) -> dict[str, float]:
    """Build, fit, train and evaluate the hybrid graph; return the key numbers.

    Args:
        n_cells: Number of cells in the synthetic data (whole cells go to one split).
        samples_per_cell: Discharge curves per cell, on average.
        n_points: Points per curve (two curves per sample).
        n_components: PCA components the MLP sees.
        epochs: Training epochs of the MLP.
        seed: Seed of the data, the splits, the sampler and torch.
        verbose: Print a summary.

    Returns:
        dict[str, float]: ``test_rmse`` and ``baseline_rmse`` (predicting the training mean), both
        in raw state-of-health units; ``explained_variance`` of the PCA components;
        ``first_epoch_loss`` and ``last_epoch_loss`` of the MLP (scaled targets);
        ``pca_max_change`` (largest change of any fitted PCA number during the torch training:
        0.0 when the frozen stage was left alone); ``n_train`` and ``n_test`` samples.
    """
    from modularml_torch import SequentialMLP

    mml.get_backend("torch").seed(seed)
    ctx = ExperimentContext(registration_policy="error")
    with ctx.activate():
        experiment = mml.Experiment("sklearn_torch_hybrid", ctx=ctx)

        fs = make_featureset(
            "cells", n_samples=n_cells * samples_per_cell, n_points=n_points, n_groups=n_cells, seed=seed
        )
        fs.split_random({"train": 0.7, "test": 0.3}, group_by="cell_id", seed=seed)
        fs.fit_transform("StandardScaler", domain="targets", fit_to_split="train")

        pca = mml.ModelNode(
            "pca", make_pipeline(StandardScaler(), PCA(n_components=n_components, random_state=seed)), fs
        )
        mlp = mml.ModelNode(
            "soh_mlp",
            SequentialMLP(output_shape=(1,), hidden_dim=32, n_layers=3),
            pca,
            mml.Optimizer("adam", opt_kwargs={"lr": 3e-3}, backend="torch"),
        )
        mml.ModelGraph([pca, mlp])
        loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=mlp, inputs=["outputs", "targets"])

        # 1. Fit the scikit-learn stage on the training rows, all at once; it is frozen afterwards.
        experiment.run_phase(FitPhase.from_split("fit_pca", split="train", active_nodes=[pca], freeze_after_fit=True))
        fitted_pca = _fitted_numbers(pca)

        # 2. Train the torch stage by gradient steps on the PCA outputs.
        sampler = mml.SimpleSampler(batch_size=32, shuffle=True, seed=seed)
        train = TrainPhase.from_split("train_mlp", split="train", sampler=sampler, losses=[loss], n_epochs=epochs)
        trained = experiment.run_phase(train, show_sampler_progress=False, show_training_progress=False)
        epoch_losses = trained.epoch_losses()
        after = _fitted_numbers(pca)
        pca_max_change = max(float(np.max(np.abs(after[k] - v), initial=0.0)) for k, v in fitted_pca.items())

        # 3. Evaluate on the test cells, in raw units.
        results = experiment.run_phase(EvalPhase.from_split("test", split="test", losses=[loss]))
        predicted = np.asarray(results.stacked_tensors(mlp, "outputs", fmt="numpy", unscale=True)).reshape(-1)
        true = fs["test"].get_targets("numpy", rep="raw")
        train_mean = float(fs["train"].get_targets("numpy", rep="raw").mean())
        summary = {
            "test_rmse": float(np.sqrt(np.mean((predicted - true) ** 2))),
            "baseline_rmse": float(np.sqrt(np.mean((train_mean - true) ** 2))),
            "explained_variance": float(pca.model.estimator[-1].explained_variance_ratio_.sum()),
            "first_epoch_loss": float(epoch_losses[min(epoch_losses)]),
            "last_epoch_loss": float(epoch_losses[max(epoch_losses)]),
            "pca_max_change": pca_max_change,
            "n_train": float(len(fs["train"])),
            "n_test": float(len(fs["test"])),
        }
    if verbose:
        print(
            f"PCA ({n_components} components of {2 * n_points} features) explains "
            f"{summary['explained_variance']:.1%} of the variance; frozen after the FitPhase "
            f"(largest change during training: {summary['pca_max_change']:.1e})."
        )
        print(
            f"SequentialMLP, {epochs} epochs on {int(summary['n_train'])} samples: loss "
            f"{summary['first_epoch_loss']:.4f} -> {summary['last_epoch_loss']:.4f} (scaled targets)."
        )
        print(
            f"Test RMSE on {int(summary['n_test'])} samples: {summary['test_rmse']:.4f} state of health "
            f"(predicting the training mean: {summary['baseline_rmse']:.4f})."
        )
    return summary


def _fitted_numbers(node: mml.ModelNode) -> dict[str, np.ndarray]:
    """Copies of every learned array of the PCA pipeline's steps (``mean_``, ``components_``...)."""
    numbers = {}
    for name, step in node.model.estimator.steps:
        for attr, value in vars(step).items():
            if attr.endswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f":
                numbers[f"{name}.{attr}"] = value.copy()
    return numbers


if __name__ == "__main__":
    main()
