"""Transfer learning: pretrain an encoder and head on one group of cells, freeze the encoder, fit a new head.

The synthetic cells of :mod:`modularml.datasets` are divided by ``cell_id`` into a source group
and a target group, and by protocol: the source cells are discharged with protocols A and D
(currents 1.0 and 0.5), the target cells with protocol C (current 3.0, which tilts the voltage
curve further than anything seen in pretraining, so the pretrained model extrapolates). Three splits of one FeatureSet:

* ``source``: source cells, protocols A and D; pretraining data;
* ``target_train``: a few target cells, protocol C; fine-tuning data;
* ``target_test``: the other target cells, protocol C; held out.

Stage 1 trains ``encoder -> source_head`` end to end on ``source``. Stage 2 freezes the encoder,
adds ``target_head`` (a linear layer on the encoder's output) to the graph and trains only it
(``active_nodes=[target_head]``) on ``target_train``. Every phase runs through one
``mml.Experiment``. The example then checks that the frozen encoder's weights did not change,
and compares on ``target_test`` (RMSE of soh in raw units): the new head, the pretrained model
applied as is, and predicting the mean of ``target_train``.

Needs the torch (or TensorFlow) and scikit-learn backends. Run it with ``python examples/transfer_learning.py``
(``--backend tensorflow`` for Keras models).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import modularml as mml
from modularml.datasets import make_featureset
from modularml.errors import InvalidArgumentError
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


def split_cells(fs: mml.FeatureSet, *, seed: int) -> dict[str, list[str]]:
    """Shuffle the cells and give half to the source group and a quarter each to target_train and target_test.

    Raises:
        ValueError: If there are fewer than 4 cells.
    """
    cells = np.unique(np.asarray(fs.get_tags("numpy", keys="cell_id")).astype(str))
    if len(cells) < 4:
        raise InvalidArgumentError(
            f"Transfer learning needs at least 4 cells (n_cells); got {len(cells)}: {list(cells)}."
        )
    cells = np.random.default_rng(seed).permutation(cells)
    n_source = len(cells) // 2
    n_target_train = max((len(cells) - n_source) // 2, 1)
    return {
        "source": sorted(cells[:n_source].tolist()),
        "target_train": sorted(cells[n_source : n_source + n_target_train].tolist()),
        "target_test": sorted(cells[n_source + n_target_train :].tolist()),
    }


def rmse(predicted: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error of two arrays of the same number of values."""
    return float(np.sqrt(np.mean((np.reshape(predicted, -1) - np.reshape(true, -1)) ** 2)))


def weights_of(node: mml.ModelNode) -> dict[str, np.ndarray]:
    """A copy of the node's model weights (name -> numpy array)."""
    return {name: np.array(value, copy=True) for name, value in node.model.get_weights().items()}


def max_change(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> float:
    """The largest absolute change of any weight between two snapshots of one model."""
    return max(float(np.max(np.abs(after[name] - value))) for name, value in before.items())


def main(
    *,
    n_samples: int = 900,
    n_cells: int = 12,
    pretrain_epochs: int = 40,
    finetune_epochs: int = 40,
    batch_size: int = 32,
    finetune_batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    verbose: bool = True,
    backend: str = "torch",
) -> dict[str, Any]:
    """Pretrain, freeze the encoder, fit a new head, in a fresh ExperimentContext.

    Args:
        n_samples (int): Number of synthetic samples (all protocols, all cells). Defaults to 900.
        n_cells (int): Number of cells, at least 4. Defaults to 12.
        pretrain_epochs (int): Epochs of stage 1 (encoder and source head). Defaults to 40.
        finetune_epochs (int): Epochs of stage 2 (the new head only). Defaults to 40.
        batch_size (int): Samples per pretraining batch. Defaults to 32.
        finetune_batch_size (int): Samples per fine-tuning batch (there are few). Defaults to 8.
        lr (float): Learning rate of the global Adam optimizer. Defaults to 3e-3.
        seed (int): Seed of the data, the cell groups, the samplers and the model weights. Defaults to 0.
        verbose (bool): Print a short summary. Defaults to True.
        backend (str): The framework of the models and the optimizer, ``"torch"`` or
            ``"tensorflow"`` (the command line's ``--backend``). Defaults to ``"torch"``.

    Returns:
        dict[str, Any]: RMSEs of soh on ``target_test`` in raw units: ``target_head_rmse`` (new
        head on the frozen encoder), ``source_model_rmse`` (pretrained model as is) and
        ``baseline_rmse`` (mean of ``target_train``); ``source_rmse`` (pretrained model on its
        own training split); ``encoder_max_change`` (largest change of an encoder weight during
        stage 2; 0 when frozen), ``target_head_max_change`` (same for the new head);
        ``encoder_frozen``; ``split_sizes``.
    """
    models = backend_models(backend)
    SequentialMLP = models.SequentialMLP

    with mml.ExperimentContext(registration_policy="error").activate() as ctx:
        experiment = mml.Experiment("transfer_learning", ctx=ctx)
        mml.get_backend(backend).seed(seed)
        fs = make_featureset("cells", n_samples=n_samples, n_groups=n_cells, protocols=("A", "C", "D"), seed=seed)
        cells = split_cells(fs, seed=seed)
        fs.split_by_condition(
            source={"cell_id": cells["source"], "protocol": ["A", "D"]},
            target_train={"cell_id": cells["target_train"], "protocol": "C"},
            target_test={"cell_id": cells["target_test"], "protocol": "C"},
        )
        fs.fit_transform("StandardScaler", domain="features", keys="voltage", fit_to_split="source")
        fs.fit_transform("StandardScaler", domain="targets", fit_to_split="source")
        source_input = fs.reference(features="voltage", rep="transformed")

        encoder = mml.ModelNode("encoder", SequentialMLP(output_shape=(16,), n_layers=3, hidden_dim=32), source_input)
        source_head = mml.ModelNode("source_head", SequentialMLP(output_shape=(1,), n_layers=1), encoder)
        graph = mml.ModelGraph(
            [encoder, source_head], optimizer=mml.Optimizer("adam", opt_kwargs={"lr": lr}, backend=backend)
        )
        mse = mml.Loss("mse", backend=backend)
        source_loss = mml.AppliedLoss(mse, on=source_head, inputs=["outputs", "targets"])

        # Stage 1: encoder and source head, end to end, on the source cells.
        sampler = mml.SimpleSampler(batch_size=batch_size, shuffle=True, seed=seed, show_progress=False)
        pretrain = TrainPhase.from_split(
            "pretrain", split="source", sampler=sampler, losses=[source_loss], n_epochs=pretrain_epochs
        )
        experiment.run_phase(pretrain, show_sampler_progress=False, show_training_progress=False)
        source_eval = experiment.run_phase(EvalPhase.from_split("source_fit", split="source"))

        # Stage 2: freeze the encoder; a new head on its output learns the target cells.
        graph.freeze([encoder])
        target_head = mml.ModelNode("target_head", SequentialMLP(output_shape=(1,), n_layers=1), encoder)
        graph.add_node(target_head)
        graph.build()
        encoder_before, head_before = weights_of(encoder), weights_of(target_head)
        target_loss = mml.AppliedLoss(mse, on=target_head, inputs=["outputs", "targets"])
        finetune = TrainPhase.from_split(
            "finetune",
            split="target_train",
            sampler=mml.SimpleSampler(batch_size=finetune_batch_size, shuffle=True, seed=seed, show_progress=False),
            losses=[target_loss],
            n_epochs=finetune_epochs,
            active_nodes=[target_head],
        )
        experiment.run_phase(finetune, show_sampler_progress=False, show_training_progress=False)

        # Both heads on the held-out target cells, in one evaluation pass.
        test = experiment.run_phase(EvalPhase.from_split("target_test", split="target_test"))
        true = fs["target_test"].get_targets("numpy", rep="raw")
        baseline = float(fs["target_train"].get_targets("numpy", rep="raw").mean())
        summary = {
            "target_head_rmse": rmse(test.stacked_tensors(target_head, "outputs", unscale=True), true),
            "source_model_rmse": rmse(test.stacked_tensors(source_head, "outputs", unscale=True), true),
            "baseline_rmse": rmse(np.full_like(true, baseline), true),
            "source_rmse": rmse(
                source_eval.stacked_tensors(source_head, "outputs", unscale=True),
                fs["source"].get_targets("numpy", rep="raw"),
            ),
            "encoder_max_change": max_change(encoder_before, weights_of(encoder)),
            "target_head_max_change": max_change(head_before, weights_of(target_head)),
            "encoder_frozen": encoder.is_frozen,
            "split_sizes": {name: len(fs[name]) for name in ("source", "target_train", "target_test")},
        }
        if verbose:
            sizes = summary["split_sizes"]
            print(
                f"Pretrained encoder + source head on {sizes['source']} samples of {len(cells['source'])} cells "
                f"(protocols A, D): RMSE {summary['source_rmse']:.4f}\n"
                f"Froze the encoder; trained a new head on {sizes['target_train']} samples of "
                f"{len(cells['target_train'])} other cells (protocol C).\n"
                f"Largest change of a frozen encoder weight: {summary['encoder_max_change']:.1e}; "
                f"of a new-head weight: {summary['target_head_max_change']:.3f}\n"
                f"RMSE of soh on {sizes['target_test']} samples of {len(cells['target_test'])} held-out target cells:\n"
                f"  new head on the frozen encoder  {summary['target_head_rmse']:.4f}\n"
                f"  pretrained model as is          {summary['source_model_rmse']:.4f}\n"
                f"  predicting the target mean      {summary['baseline_rmse']:.4f}"
            )
        return summary


if __name__ == "__main__":
    main(backend=parse_backend())
