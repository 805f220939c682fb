"""The scripts in examples/, each run on small data through its main(); the returned numbers are checked.

Each example builds its own ExperimentContext, so they run one after another in one process
without label collisions and leave the active context as it was.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import modularml as mml

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """The example models are tiny on small data: one intra-op thread is faster and immune to busy machines."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _context_left_as_it_was() -> Iterator[None]:
    """Every example runs in its own ExperimentContext: the active one and its nodes are untouched."""
    active = mml.ExperimentContext.get_active()
    nodes = dict(active.available_nodes)
    yield
    assert mml.ExperimentContext.get_active() is active
    assert dict(active.available_nodes) == nodes


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by its path (examples/ is not a package)."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"modularml_example_{name}", path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


@pytest.fixture(params=["torch", "tensorflow"])
def backend(request) -> str:
    """The framework of an example's models: each example with a ``--backend`` runs with both."""
    if request.param == "tensorflow":
        pytest.importorskip("modularml_tf")
        pytest.importorskip("tensorflow")
    return request.param


def finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def test_multi_stage_concat_trains_end_to_end_and_beats_the_mean(backend: str) -> None:
    result = load_example("multi_stage_concat").main(
        n_samples=160, n_cells=8, epochs=12, verbose=False, backend=backend
    )
    assert finite(result["test_rmse"], result["baseline_rmse"], result["first_epoch_loss"], result["last_epoch_loss"])
    assert result["concat_shape"] == (12,)  # 8 from the CNN encoder + 4 from the scalar MLP
    assert result["n_train"] > 0
    assert result["n_test"] > 0
    assert result["last_epoch_loss"] < 0.1 * result["first_epoch_loss"]
    assert result["test_rmse"] < 0.5 * result["baseline_rmse"]


def test_multi_stage_concat_is_reproducible_from_its_seed() -> None:
    module = load_example("multi_stage_concat")
    first = module.main(n_samples=80, n_cells=6, epochs=2, seed=3, verbose=False)
    second = module.main(n_samples=80, n_cells=6, epochs=2, seed=3, verbose=False)
    assert first == second


def test_two_featuresets_two_heads_trains_both_heads(backend: str) -> None:
    result = load_example("two_featuresets_two_heads").main(
        n_samples=120, n_cells=6, epochs=12, verbose=False, backend=backend
    )
    assert result["same_samples"]
    assert finite(result["soh_rmse"], result["soh_baseline_rmse"], result["rate_rmse"], result["rate_baseline_rmse"])
    assert set(result["first_epoch_losses"]) == set(result["last_epoch_losses"]) == {"soh_mse", "rate_mse"}
    for label, first in result["first_epoch_losses"].items():
        assert result["last_epoch_losses"][label] < 0.2 * first, label
    assert result["soh_rmse"] < 0.5 * result["soh_baseline_rmse"]
    assert result["rate_rmse"] < 0.2 * result["rate_baseline_rmse"]


def test_two_featuresets_need_at_least_one_cell_per_split() -> None:
    module = load_example("two_featuresets_two_heads")
    with pytest.raises(ValueError, match="at least 3 cells"):
        module.cell_splits(np.array(["cell_00", "cell_01", "cell_00"]), seed=0)


def test_triplet_training_pulls_same_protocol_embeddings_together(backend: str) -> None:
    result = load_example("triplet_contrastive").main(
        n_samples=120, n_cells=8, epochs=6, verbose=False, backend=backend
    )
    keys = ("same_before", "different_before", "same_after", "different_after")
    assert finite(*(result[k] for k in keys))
    assert result["n_triplets"] > 0
    assert result["n_test"] > 0
    assert result["last_epoch_loss"] < 0.5 * result["first_epoch_loss"]
    # after training: same-protocol pairs are much closer than different-protocol pairs ...
    assert result["same_after"] < 0.5 * result["different_after"]
    # ... and far more separated than before training
    ratio_before = result["different_before"] / result["same_before"]
    assert result["different_after"] / result["same_after"] > 2 * ratio_before
    assert result["accuracy_after"] >= 0.9
    assert result["accuracy_after"] > result["majority_accuracy"] + 0.3


def test_group_distances_are_means_over_same_and_different_pairs() -> None:
    module = load_example("triplet_contrastive")
    embeddings = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 4.0]])
    same, different = module.group_distances(embeddings, np.array(["a", "a", "b", "b"]))
    assert same == pytest.approx((1.0 + 4.0) / 2)
    assert different == pytest.approx(np.mean([3.0, 5.0, np.sqrt(10.0), np.sqrt(18.0)]))
    with pytest.raises(ValueError, match="within one group"):
        module.group_distances(embeddings[:2], np.array(["a", "b"]))


def test_transfer_learning_keeps_the_frozen_encoder_and_the_new_head_learns(backend: str) -> None:
    result = load_example("transfer_learning").main(
        n_samples=300, n_cells=8, pretrain_epochs=15, finetune_epochs=15, verbose=False, backend=backend
    )
    assert result["encoder_frozen"]
    assert result["encoder_max_change"] == 0.0
    assert result["target_head_max_change"] > 1e-3
    assert all(size > 0 for size in result["split_sizes"].values())
    rmses = ("target_head_rmse", "source_model_rmse", "baseline_rmse", "source_rmse")
    assert finite(*(result[k] for k in rmses))
    assert result["target_head_rmse"] < 0.5 * result["baseline_rmse"]
    assert result["target_head_rmse"] < result["source_model_rmse"]  # the new head adapted to the shift


def test_transfer_learning_needs_four_cells() -> None:
    module = load_example("transfer_learning")
    with mml.ExperimentContext().activate():
        fs = module.make_featureset("cells", n_samples=20, n_groups=3, seed=0)
        with pytest.raises(ValueError, match="at least 4 cells"):
            module.split_cells(fs, seed=0)


def test_the_config_file_example_runs_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    from modularml.cli import main

    config = EXAMPLES / "configs" / "soh_mlp.toml"
    monkeypatch.chdir(tmp_path)  # the CSVLogger's folder is relative to where the command runs
    assert main(["run", str(config), "--dry-run"]) == 0
    assert main(["run", str(config), "-q", "-o", str(tmp_path / "out")]) == 0
    with (tmp_path / "out" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    val = {int(r["epoch"]): float(r["value"]) for r in rows if r["name"] == "val_loss" and r["phase"] == "train"}
    assert sorted(val) == list(range(20))
    assert val[19] < 0.5 * val[0]
    with (tmp_path / "soh-mlp-logs" / "train.csv").open() as handle:
        logged = [r for r in csv.DictReader(handle) if r["name"] == "val_loss"]
    assert [float(r["value"]) for r in logged] == [val[e] for e in range(20)]  # the phase's CSVLogger agrees


def test_the_tracking_example_logs_to_mlflow(tmp_path: Path) -> None:
    pytest.importorskip("modularml_mlflow")
    pytest.importorskip("matplotlib")
    result = load_example("tracking_mlflow").main(tmp_path, n_samples=120, epochs=6, verbose=False)
    assert result["status"] == "FINISHED"
    assert result["n_params"] > 20
    assert result["val_loss"] == pytest.approx(result["logged_val_loss"])
    assert sorted(result["val_loss"]) == list(range(6))
    assert {"model/model-graph.mg.mml", "losses.png", "predictions.png", "splits.png"} <= set(result["artifacts"])
    frame = result["predictions"]
    assert list(frame.columns[:3]) == ["epoch", "batch", "sample_uuids"]
    assert finite(result["rmse"])
    assert (tmp_path / "losses.png").stat().st_size > 5_000


def test_the_cross_validation_example_beats_its_baseline_in_every_fold() -> None:
    result = load_example("cross_validation").main(n_samples=160, epochs=15, n_folds=3)
    table = result["table"]
    assert [row["fold"] for row in table] == ["CV_fold0", "CV_fold1", "CV_fold2"]
    assert all(row["rmse"] < row["baseline_rmse"] for row in table)
    assert sum(row["val_samples"] for row in table) > 0
    assert result["mean_rmse"] == pytest.approx(np.mean([row["rmse"] for row in table]))


def test_torch_encoder_and_keras_head_train_in_one_phase() -> None:
    pytest.importorskip("modularml_tf")
    result = load_example("torch_encoder_keras_head").main(n_samples=200, n_cells=8, epochs=10, verbose=False)
    assert result["head_input_shape"] == (3,)  # the encoder's estimate and the two scalar features
    assert finite(result["head_rmse"], result["encoder_rmse"], result["baseline_rmse"])
    assert set(result["first_epoch_losses"]) == {"curve_encoder_mse", "soh_head_mse"}
    for label, first in result["first_epoch_losses"].items():
        assert result["last_epoch_losses"][label] < 0.2 * first, label
    assert result["head_rmse"] < 0.5 * result["baseline_rmse"]
    assert result["encoder_rmse"] < 0.5 * result["baseline_rmse"]


def test_examples_refuse_an_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend is one of"):
        load_example("multi_stage_concat").main(n_samples=40, n_cells=4, epochs=1, verbose=False, backend="jax")
