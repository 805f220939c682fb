"""Two FeatureSets feeding two head nodes, merged into one model and trained with a loss on each.

The same discharges are recorded as two FeatureSets, as if by two instruments (two feature groups
of one dataset): ``voltage`` holds the voltage curve and the state of health ``soh`` as target;
``current`` holds the current curve and the discharge rate ``c_rate`` (the mean current) as
target. Both keep the samples' UUIDs, which is how ModularML knows that row ``i`` of one is
row ``i`` of the other. The graph:

    voltage FeatureSet --> voltage_encoder (MLP, 8-d) ---------------\\
                                                                    ConcatNode --> soh_head (MLP) --> soh
    current FeatureSet --> rate_head (MLP) --> estimated c_rate ----/

``rate_head`` is trained on the current FeatureSet's target (an auxiliary loss), ``soh_head`` on
the voltage FeatureSet's target; a global optimizer sums both losses, so the rate estimate is
also shaped by what helps to predict soh (the rate tilts the voltage curve). The TrainPhase binds
one head node to each FeatureSet; both bindings get equal samplers (same seed, same split
indices), so every step feeds the two heads the same samples, which the ConcatNode checks by
their UUIDs.

Evaluation: one EvalPhase reads the test rows of both FeatureSets (allowed because they hold the
same samples in the same order) and unscales both heads' predictions through their FeatureSets.

Needs the torch (or TensorFlow) and scikit-learn backends. Run it with ``python examples/two_featuresets_two_heads.py``
(``--backend tensorflow`` for Keras models).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import modularml as mml
from modularml.datasets import make_curves
from modularml.errors import InvalidArgumentError
from modularml.phases import EvalPhase, TrainPhase

SPLITS = {"train": 0.6, "val": 0.2, "test": 0.2}


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


def cell_splits(cell_ids: np.ndarray, *, seed: int) -> dict[str, list[str]]:
    """Whole cells per split, shuffled with ``seed``, in the proportions of :data:`SPLITS`.

    Raises:
        ValueError: If there are fewer cells than splits.
    """
    cells = np.random.default_rng(seed).permutation(np.unique(cell_ids.astype(str)))
    if len(cells) < len(SPLITS):
        raise InvalidArgumentError(f"Need at least {len(SPLITS)} cells (n_cells), one per split; got {len(cells)}.")
    counts = [max(round(ratio * len(cells)), 1) for ratio in SPLITS.values()]
    counts[0] = len(cells) - sum(counts[1:])
    bounds = np.cumsum([0, *counts])
    return {name: sorted(cells[bounds[i] : bounds[i + 1]].tolist()) for i, name in enumerate(SPLITS)}


def build_featuresets(*, n_samples: int, n_cells: int, seed: int) -> tuple[mml.FeatureSet, mml.FeatureSet]:
    """The ``voltage`` and ``current`` FeatureSets: same samples (same UUIDs), same splits, each scaled on ``train``."""
    data = make_curves(n_samples, n_groups=n_cells, seed=seed)
    data["c_rate"] = data["current"].mean(axis=1)
    recording = mml.FeatureSet.from_dict(
        "recording", data, ["voltage", "current"], ["soh", "c_rate"], ["cell_id", "protocol"]
    )
    tags = ["cell_id", "protocol"]
    voltage_fs = recording.select(features="voltage", targets="soh", tags=tags).to_featureset("voltage")
    current_fs = recording.select(features="current", targets="c_rate", tags=tags).to_featureset("current")
    cells = cell_splits(np.asarray(data["cell_id"]), seed=seed)
    for fs in (voltage_fs, current_fs):
        fs.split_by_condition({name: {"cell_id": members} for name, members in cells.items()})
        fs.fit_transform("StandardScaler", domain="features", fit_to_split="train")
        fs.fit_transform("StandardScaler", domain="targets", fit_to_split="train")
    return voltage_fs, current_fs


def rmse(predicted: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error of two arrays of the same number of values."""
    return float(np.sqrt(np.mean((np.reshape(predicted, -1) - np.reshape(true, -1)) ** 2)))


def main(
    *,
    n_samples: int = 600,
    n_cells: int = 15,
    epochs: int = 60,
    batch_size: int = 32,
    lr: float = 3e-3,
    rate_loss_weight: float = 0.5,
    seed: int = 0,
    verbose: bool = True,
    backend: str = "torch",
) -> dict[str, Any]:
    """Build both FeatureSets and the merged model in a fresh ExperimentContext; train and evaluate it.

    Args:
        n_samples (int): Number of synthetic samples. Defaults to 600.
        n_cells (int): Number of cells (splits hold whole cells), at least 3. Defaults to 15.
        epochs (int): Training epochs. Defaults to 60.
        batch_size (int): Samples per training batch. Defaults to 32.
        lr (float): Learning rate of the global Adam optimizer. Defaults to 3e-3.
        rate_loss_weight (float): Weight of the auxiliary loss on ``rate_head``. Defaults to 0.5.
        seed (int): Seed of the data, the splits, the samplers and the model weights. Defaults to 0.
        verbose (bool): Print a short summary. Defaults to True.
        backend (str): The framework of the models and the optimizer, ``"torch"`` or
            ``"tensorflow"`` (the command line's ``--backend``). Defaults to ``"torch"``.

    Returns:
        dict[str, Any]: On the test cells, in raw units: ``soh_rmse`` and ``soh_baseline_rmse``
        (predicting the training mean), ``rate_rmse`` and ``rate_baseline_rmse``; per-epoch
        training losses of both heads, ``first_epoch_losses`` and ``last_epoch_losses`` (loss
        label -> value, scaled units); ``same_samples`` (the two FeatureSets' test rows hold the
        same sample UUIDs); ``n_train`` and ``n_test``.
    """
    models = backend_models(backend)
    SequentialMLP = models.SequentialMLP

    with mml.ExperimentContext(registration_policy="error").activate() as ctx:
        experiment = mml.Experiment("two_featuresets_two_heads", ctx=ctx)
        mml.get_backend(backend).seed(seed)
        voltage_fs, current_fs = build_featuresets(n_samples=n_samples, n_cells=n_cells, seed=seed)

        voltage_encoder = mml.ModelNode(
            "voltage_encoder", SequentialMLP(output_shape=(8,), n_layers=2, hidden_dim=32), voltage_fs
        )
        rate_head = mml.ModelNode("rate_head", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=16), current_fs)
        # soh is the target of the merged branch: take the targets of the voltage side.
        fused = mml.ConcatNode(
            "fused", [voltage_encoder, rate_head], concat_axis_targets=voltage_encoder, concat_axis_tags="first"
        )
        soh_head = mml.ModelNode("soh_head", SequentialMLP(output_shape=(1,), n_layers=2, hidden_dim=32), fused)
        mml.ModelGraph(  # registered in the context; the phases find it there
            [voltage_encoder, rate_head, fused, soh_head],
            optimizer=mml.Optimizer("adam", opt_kwargs={"lr": lr}, backend=backend),
        )
        mse = mml.Loss("mse", backend=backend)
        soh_loss = mml.AppliedLoss(mse, on=soh_head, inputs=["outputs", "targets"], label="soh_mse")
        rate_loss = mml.AppliedLoss(
            mse, on=rate_head, inputs=["outputs", "targets"], weight=rate_loss_weight, label="rate_mse"
        )

        sampler = mml.SimpleSampler(batch_size=batch_size, shuffle=True, seed=seed, show_progress=False)
        train = TrainPhase.from_split(
            "train", split="train", sampler=sampler, losses=[soh_loss, rate_loss], n_epochs=epochs
        )
        train_results = experiment.run_phase(train, show_sampler_progress=False, show_training_progress=False)

        # One EvalPhase over the test rows of both FeatureSets (they hold the same samples, in the same order).
        test = experiment.run_phase(EvalPhase.from_split("test", split="test", losses=[soh_loss, rate_loss]))
        rate_true = current_fs["test"].get_targets("numpy", rep="raw")
        rate_pred = test.stacked_tensors(rate_head, "outputs", unscale=True)
        # soh_head reads both FeatureSets, so say which one its targets (and their scaling) come from.
        soh_scaled = test.stacked_tensors(soh_head, "outputs")
        soh_pred = voltage_fs.unscale_data_for_cols(data=soh_scaled, domain="targets", columns="soh")
        soh_true = voltage_fs["test"].get_targets("numpy", rep="raw")

        soh_mean = float(voltage_fs["train"].get_targets("numpy", rep="raw").mean())
        rate_mean = float(current_fs["train"].get_targets("numpy", rep="raw").mean())
        losses = train_results.aggregated_losses
        summary = {
            "soh_rmse": rmse(soh_pred, soh_true),
            "soh_baseline_rmse": rmse(np.full_like(soh_true, soh_mean), soh_true),
            "rate_rmse": rmse(rate_pred, rate_true),
            "rate_baseline_rmse": rmse(np.full_like(rate_true, rate_mean), rate_true),
            "first_epoch_losses": {**losses(soh_head, epoch=0), **losses(rate_head, epoch=0)},
            "last_epoch_losses": {**losses(soh_head, epoch=epochs - 1), **losses(rate_head, epoch=epochs - 1)},
            "same_samples": bool(
                np.array_equal(voltage_fs["test"].get_sample_uuids(), current_fs["test"].get_sample_uuids())
            ),
            "n_train": len(voltage_fs["train"]),
            "n_test": len(voltage_fs["test"]),
        }
        if verbose:
            first, last = summary["first_epoch_losses"], summary["last_epoch_losses"]
            print(
                f"FeatureSets 'voltage' and 'current' ({summary['n_train']} training samples each) feed heads "
                f"'voltage_encoder' and 'rate_head', merged by ConcatNode 'fused' into 'soh_head'.\n"
                f"Training losses over {epochs} epochs (scaled): soh {first['soh_mse']:.4f} -> {last['soh_mse']:.4f}, "
                f"rate {first['rate_mse']:.4f} -> {last['rate_mse']:.4f}\n"
                f"On {summary['n_test']} samples of unseen cells (raw units):\n"
                f"  soh RMSE     {summary['soh_rmse']:.4f}  (predicting the training mean: "
                f"{summary['soh_baseline_rmse']:.4f})\n"
                f"  c_rate RMSE  {summary['rate_rmse']:.4f}  (predicting the training mean: "
                f"{summary['rate_baseline_rmse']:.4f})"
            )
        return summary


if __name__ == "__main__":
    main(backend=parse_backend())
