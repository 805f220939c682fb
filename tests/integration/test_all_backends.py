"""Every distribution installed together."""

from __future__ import annotations

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
