"""Every distribution installed together."""

from __future__ import annotations

import contextvars
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modularml as mml

ROOT = Path(__file__).resolve().parents[2]


def test_all_project_backends_are_installed() -> None:
    assert {"scikit", "tensorflow", "torch"} <= {str(b) for b in mml.Backend.installed()}
    plugins = {r.name: r for r in mml.get_plugin_manager().plugins()}
    assert {"modularml", "modularml_torch", "modularml_tf", "modularml_sklearn", "modularml_example"} <= set(plugins)
    assert all(r.status == "loaded" for r in plugins.values())


def test_quickstart_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    backends = [str(b) for b in mml.Backend.installed()]
    assert f"Tensor round trip through {len(backends)} backend(s)" in result.stdout
    for backend in backends:
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(backend))
        assert line.endswith("ok"), line
    assert "modularml_example  (modularml-example 2.0.0)" in result.stdout
    assert "Torch SequentialMLP, 30 epochs: validation RMSE" in result.stdout
    assert "Validation loss (scaled) during training: epoch 9: " in result.stdout


@pytest.mark.parametrize(("source", "target"), [("torch", "tf"), ("tf", "sklearn"), ("sklearn", "torch")])
def test_values_cross_backends_through_numpy(source: str, target: str) -> None:
    data = np.linspace(-1, 1, 12, dtype="float32").reshape(3, 4)
    src, dst = mml.get_backend(source), mml.get_backend(target)
    native = src.from_numpy(data)
    assert mml.backend_of(native) in (None, mml.Backend(source))
    moved = dst.from_numpy(src.to_numpy(native))
    assert dst.is_native(moved)
    np.testing.assert_array_equal(dst.to_numpy(moved), data)


def test_readme_experiment_example_runs_and_stops_early() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (example,) = [b for b in blocks if "experiment.run()" in b]
    namespace: dict = {}
    code = compile(example, "README.md", "exec")
    # mml.Experiment("soh") activates a new context: keep that inside a copy of the contextvars.
    contextvars.copy_context().run(exec, code, namespace)
    results = namespace["results"]
    assert results.labels == ["train", "test"]
    train = results.get_train_result("train")
    assert 1 <= train.n_epochs <= 100
    val = train.metrics().epoch_values("val_loss")
    assert len(val) == train.n_epochs
    assert namespace["predictions"].shape == (len(namespace["fs"]["test"]), 1)


def test_readme_checkpoint_example_runs_after_the_experiment_example(tmp_path, monkeypatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (example,) = [b for b in blocks if "experiment.run()" in b]
    (checkpoints,) = [b for b in blocks if "mml.Checkpointing(" in b]
    monkeypatch.chdir(tmp_path)  # the example writes under runs/soh/
    namespace: dict = {}

    def run() -> None:
        exec(compile(example, "README.md", "exec"), namespace)
        exec(compile(checkpoints, "README.md", "exec"), namespace)

    contextvars.copy_context().run(run)
    experiment = namespace["experiment"]
    assert sorted(experiment.available_checkpoints) == [
        "more/more_epoch0009",
        "more/more_epoch0014",
        "more/more_epoch0019",
    ]
    assert sorted(p.name for p in (tmp_path / "runs" / "soh" / "more").iterdir()) == [
        "more_epoch0009.ckpt.mml",
        "more_epoch0014.ckpt.mml",
        "more_epoch0019.ckpt.mml",
    ]
