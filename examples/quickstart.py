"""The end-to-end example that the README's first command runs.

It lists the installed plugins, builds a FeatureSet from the shipped synthetic dataset, splits
it by cell (whole cells per split), and sends the training features through every installed
backend's tensor operations (numpy -> native tensor -> pad, concat, mean -> numpy), checking the
result against numpy. With torch installed it then trains an MLP in a ModelGraph: an
``mml.Experiment`` runs its execution plan (a TrainPhase that evaluates the validation split every
10 epochs, then an EvalPhase) and the predictions are unscaled to raw units. Everything runs in
its own ExperimentContext.
"""

from __future__ import annotations

import numpy as np

import modularml as mml
from modularml.cli import format_plugins


def round_trip(backend: mml.Backend, batch: np.ndarray) -> np.ndarray:
    """Reflect-pad the last axis, join two copies on the batch axis, average the last axis."""
    ops = backend.implementation
    native = ops.from_numpy(batch, dtype="float32")
    padded = ops.pad(native, [(0, 0), (0, 0), (2, 2)], mode="reflect")
    joined = ops.concat([padded, ops.detach(padded)], axis=0)
    with ops.no_grad():
        averaged = ops.mean(joined, axis=-1)
    return ops.to_numpy(averaged)


def main() -> int:
    """Run the example in a fresh ExperimentContext; return the process exit status (0: every check passed)."""
    with mml.ExperimentContext(registration_policy="error").activate():
        return run_checks()


def run_checks() -> int:
    """Build, split, scale and sample the dataset, check the backends, then train (with torch installed)."""
    print(f"ModularML {mml.__version__}\n\nInstalled plugins:")
    print(format_plugins(mml.get_plugin_manager().plugins()))

    from modularml.datasets import make_featureset

    fs = make_featureset("cells", n_samples=240, seed=0)
    fs.split_random({"train": 0.7, "val": 0.15, "test": 0.15}, group_by="cell_id", seed=13)
    # Scale, fitted on the training rows only: each curve point and the target standardised (with the
    # sklearn plugin), else per-sample min-max curves and a sign flip (core scalers).
    sklearn = mml.Backend.SCIKIT.is_installed
    for curve in ("voltage", "current"):
        if sklearn:
            fs.fit_transform("StandardScaler", domain="features", keys=curve, fit_to_split="train")
        else:
            fs.fit_transform("PerSampleMinMaxScaler", domain="features", keys=curve)
    fs.fit_transform("StandardScaler" if sklearn else "Negate", domain="targets", fit_to_split="train")
    print(f"\n{fs.summary()}")
    # Sample: shuffled batches of 32 from the training split, reproducible from the seed.
    sampler = mml.SimpleSampler(batch_size=32, shuffle=True, seed=0, source=fs["train"])
    sampler.materialize_batches(show_progress=False)
    first = sampler.get_batches()[0].materialize_batch(fmt="numpy")
    print(f"\nSimpleSampler: {sampler.num_batches} batches; first batch features {first.features.shape}")
    raw_soh = fs["train"].get_targets("numpy", rep="raw")
    restored = fs.unscale_data_for_cols(
        data=fs["train"].get_targets("numpy", rep="transformed"), domain="targets", columns="soh"
    )
    if not np.allclose(restored, raw_soh, atol=1e-5):
        print("unscaling the targets did not give back the raw values")
        return 1
    if not (fs["train"].is_disjoint_with(fs["val"]) and fs["train"].is_disjoint_with(fs["test"])):
        print("splits overlap")
        return 1
    batch = fs["train"].get_features("numpy")[:32]  # 32 samples x 2 curves x 100 points
    padded = np.pad(batch, [(0, 0), (0, 0), (2, 2)], mode="reflect")
    expected = np.concatenate([padded, padded]).mean(axis=-1)

    backends = mml.Backend.installed()
    print(f"\nTensor round trip through {len(backends)} backend(s):")
    for backend in backends:
        fmt = backend.info.formats[0] if backend.info.formats else str(backend)
        if not backend.implementation.is_native(fs["train"].get_features(fmt)):
            print(f"  {backend}: get_features(fmt={fmt!r}) did not give {backend} tensors")
            return 1
        result = round_trip(backend, batch)
        error = float(np.abs(result - expected).max())
        status = "ok" if result.shape == expected.shape and error < 1e-5 else "MISMATCH"
        device = backend.implementation.available_devices()
        print(f"  {backend:<11} shape {result.shape}  max |error| {error:.1e}  devices {device}  {status}")
        if status != "ok":
            return 1
    if mml.Backend.TORCH.is_installed:
        return train_torch_model(fs, sampler)
    return 0


def train_torch_model(fs: mml.FeatureSet, sampler: mml.SimpleSampler, epochs: int = 30) -> int:
    """Train an MLP on the scaled curves to predict the state of health; report validation RMSE in raw units.

    The experiment's execution plan holds a TrainPhase (with an Evaluation callback that logs the
    validation loss every 10 epochs) and an EvalPhase; ``experiment.run()`` executes both.
    """
    from modularml.callbacks import Evaluation
    from modularml.phases import EvalPhase, TrainPhase
    from modularml_torch import SequentialMLP

    mml.get_backend("torch").seed(0)
    experiment = mml.Experiment.from_active_context("quickstart")
    node = mml.ModelNode("soh_mlp", SequentialMLP(output_shape=(1,), n_layers=3, hidden_dim=64), fs)
    mml.ModelGraph([node], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": 3e-3}, backend="torch"))
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=node, inputs=["outputs", "targets"])
    validation = Evaluation.from_split("val", split="val", losses=[loss], every_n_epochs=10)
    train = TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=[loss], n_epochs=epochs, callbacks=[validation]
    )
    experiment.execution_plan.add_phase(train).add_phase(EvalPhase.from_split("validate", split="val", losses=[loss]))
    results = experiment.run(show_sampler_progress=False, show_training_progress=False)

    val_losses = results.get_train_result("train").metrics().epoch_values("val_loss")
    print(
        f"\nValidation loss (scaled) during training: {', '.join(f'epoch {e}: {v:.4f}' for e, v in val_losses.items())}"
    )
    evaluation = results.get_eval_result("validate")
    predicted = np.asarray(evaluation.stacked_tensors(node, "outputs", fmt="numpy", unscale=True)).reshape(-1)
    true = fs["val"].get_targets("numpy", rep="raw")
    rmse = float(np.sqrt(np.mean((predicted - true) ** 2)))
    baseline = float(np.sqrt(np.mean((fs["train"].get_targets("numpy", rep="raw").mean() - true) ** 2)))
    print(f"Torch SequentialMLP, {epochs} epochs: validation RMSE {rmse:.4f} (predicting the mean: {baseline:.4f})")
    return 0 if rmse < baseline and len(val_losses) == epochs // 10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
