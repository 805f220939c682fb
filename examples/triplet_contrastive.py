"""Contrastive training with a TripletSampler: an encoder learns to group discharge curves by protocol.

Every training sample is a triplet drawn by :class:`modularml.samplers.TripletSampler`: an
anchor, a positive (another sample of the same ``protocol`` tag) and a negative (a sample of
another protocol). A SequentialMLP encoder maps each voltage curve to an 8-d embedding and is
trained with torch's triplet margin loss on the three roles' outputs
(``outputs.anchor``, ``outputs.positive``, ``outputs.negative``).

The protocol sets the discharge current, which tilts the voltage curve only slightly next to the
effect of the cell's state of health, so the raw curves do not separate the protocols well. The
example evaluates the encoder on cells it never saw, before and after training, and reports:

* the mean embedding distance between samples of the same protocol and of different protocols;
* the accuracy of a nearest-centroid classifier of the protocol (centroids from the training
  embeddings), next to that of always predicting the most frequent protocol.

Needs the torch (or TensorFlow) and scikit-learn backends. Run it with ``python examples/triplet_contrastive.py``
(``--backend tensorflow`` for Keras models).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import modularml as mml
from modularml.datasets import make_featureset
from modularml.errors import InvalidArgumentError
from modularml.phases import EvalPhase, TrainPhase
from modularml.samplers import TripletSampler

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


def group_distances(embeddings: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """Mean Euclidean distance between pairs of distinct samples of the same group, and of different groups.

    Raises:
        ValueError: If there is no pair of one of the two kinds.
    """
    distances = np.linalg.norm(embeddings[:, None, :] - embeddings[None, :, :], axis=-1)
    same = groups[:, None] == groups[None, :]
    distinct = ~np.eye(len(groups), dtype=bool)
    if not (same & distinct).any() or not (~same).any():
        raise InvalidArgumentError(
            f"Need pairs within one group and across groups; got {len(groups)} samples in groups {sorted(set(groups))}."
        )
    return float(distances[same & distinct].mean()), float(distances[~same].mean())


def nearest_centroid_accuracy(
    train_embeddings: np.ndarray, train_groups: np.ndarray, embeddings: np.ndarray, groups: np.ndarray
) -> float:
    """Share of ``embeddings`` whose nearest training-group centroid is their own group's."""
    names = np.unique(train_groups)
    centroids = np.stack([train_embeddings[train_groups == name].mean(axis=0) for name in names])
    nearest = names[np.argmin(np.linalg.norm(embeddings[:, None, :] - centroids[None], axis=-1), axis=1)]
    return float(np.mean(nearest == groups))


def main(
    *,
    n_samples: int = 480,
    n_cells: int = 12,
    epochs: int = 20,
    batch_size: int = 32,
    margin: float = 1.0,
    lr: float = 3e-3,
    group_tag: str = "protocol",
    seed: int = 0,
    verbose: bool = True,
    backend: str = "torch",
) -> dict[str, Any]:
    """Train the encoder on triplets in a fresh ExperimentContext; measure its embeddings before and after.

    Args:
        n_samples (int): Number of synthetic samples. Defaults to 480.
        n_cells (int): Number of cells (splits hold whole cells). Defaults to 12.
        epochs (int): Training epochs. Defaults to 20.
        batch_size (int): Triplets per training batch. Defaults to 32.
        margin (float): Margin of the triplet loss. Defaults to 1.0.
        lr (float): Learning rate of the Adam optimizer. Defaults to 3e-3.
        group_tag (str): Tag defining positives (same value) and negatives (another value).
            Defaults to ``"protocol"``.
        seed (int): Seed of the data, the split, the sampler and the model weights. Defaults to 0.
        verbose (bool): Print a short summary. Defaults to True.
        backend (str): The framework of the models and the optimizer, ``"torch"`` or
            ``"tensorflow"`` (the command line's ``--backend``). Defaults to ``"torch"``.

    Returns:
        dict[str, Any]: On the test cells, before and after training: ``same_before``,
        ``different_before``, ``same_after``, ``different_after`` (mean embedding distances)
        and ``accuracy_before``, ``accuracy_after`` (nearest-centroid accuracy of ``group_tag``);
        ``majority_accuracy`` (always predicting the most frequent training group);
        ``first_epoch_loss``, ``last_epoch_loss``; ``n_triplets`` (per epoch) and ``n_test``.
    """
    models = backend_models(backend)
    SequentialMLP = models.SequentialMLP

    with mml.ExperimentContext(registration_policy="error").activate() as ctx:
        experiment = mml.Experiment("triplet_contrastive", ctx=ctx)
        mml.get_backend(backend).seed(seed)
        fs = make_featureset("cells", n_samples=n_samples, n_groups=n_cells, seed=seed)
        fs.split_random({"train": 0.7, "test": 0.3}, group_by="cell_id", seed=seed)
        fs.fit_transform("StandardScaler", domain="features", keys="voltage", fit_to_split="train")

        encoder = mml.ModelNode(
            "encoder",
            SequentialMLP(output_shape=(8,), n_layers=3, hidden_dim=32),
            fs.reference(features="voltage", rep="transformed"),
        )
        mml.ModelGraph([encoder], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": lr}, backend=backend))
        loss = mml.AppliedLoss(
            mml.Loss("triplet_margin", loss_kwargs={"margin": margin}, backend=backend),
            on=encoder,
            inputs=["outputs.anchor", "outputs.positive", "outputs.negative"],
        )
        sampler = TripletSampler(
            pos_conditions={group_tag: mml.SimilarityCondition(mode="similar")},
            neg_conditions={group_tag: mml.SimilarityCondition(mode="dissimilar")},
            max_samples_per_anchor=2,
            batch_size=batch_size,
            shuffle=True,
            seed=seed,
            show_progress=False,
        )

        def embeddings(split: str) -> tuple[np.ndarray, np.ndarray]:
            results = experiment.run_phase(EvalPhase.from_split(f"embed_{split}", split=split))
            values = np.asarray(results.stacked_tensors(encoder, "outputs", fmt="numpy"))
            uuids = np.asarray(results.stacked_tensors(encoder, "sample_uuids", fmt="numpy"))
            groups = fs.take_sample_uuids(uuids).get_tags("numpy", keys=group_tag)
            return values, np.asarray(groups).astype(str)

        def measure() -> tuple[float, float, float]:
            train_values, train_groups = embeddings("train")
            test_values, test_groups = embeddings("test")
            same, different = group_distances(test_values, test_groups)
            return same, different, nearest_centroid_accuracy(train_values, train_groups, test_values, test_groups)

        same_before, different_before, accuracy_before = measure()
        train = TrainPhase.from_split("train", split="train", sampler=sampler, losses=[loss], n_epochs=epochs)
        train_results = experiment.run_phase(train, show_sampler_progress=False, show_training_progress=False)
        same_after, different_after, accuracy_after = measure()

        train_groups = np.asarray(fs["train"].get_tags("numpy", keys=group_tag)).astype(str)
        _, counts = np.unique(train_groups, return_counts=True)
        test_groups = np.asarray(fs["test"].get_tags("numpy", keys=group_tag)).astype(str)
        majority = np.unique(train_groups)[np.argmax(counts)]
        epoch_losses = train_results.metrics().epoch_values("train_loss")
        summary = {
            "same_before": same_before,
            "different_before": different_before,
            "same_after": same_after,
            "different_after": different_after,
            "accuracy_before": accuracy_before,
            "accuracy_after": accuracy_after,
            "majority_accuracy": float(np.mean(test_groups == majority)),
            "first_epoch_loss": float(epoch_losses[min(epoch_losses)]),
            "last_epoch_loss": float(epoch_losses[max(epoch_losses)]),
            "n_triplets": int(sum(batch.n_samples for batch in sampler.get_batches())),
            "n_test": len(fs["test"]),
        }
        if verbose:
            print(
                f"Triplets by {group_tag!r}: {summary['n_triplets']} per epoch, {epochs} epochs; triplet loss "
                f"{summary['first_epoch_loss']:.4f} -> {summary['last_epoch_loss']:.4f}\n"
                f"On {summary['n_test']} samples of unseen cells, mean embedding distance "
                f"same {group_tag} / different {group_tag}:\n"
                f"  before training {same_before:.3f} / {different_before:.3f} "
                f"(ratio {different_before / same_before:.2f})\n"
                f"  after training  {same_after:.3f} / {different_after:.3f} "
                f"(ratio {different_after / same_after:.2f})\n"
                f"Nearest-centroid accuracy of {group_tag}: {accuracy_before:.2f} before, {accuracy_after:.2f} after "
                f"(predicting the most frequent: {summary['majority_accuracy']:.2f})"
            )
        return summary


if __name__ == "__main__":
    main(backend=parse_backend())
