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


def test_readme_resume_and_files_example_runs_after_the_checkpoint_example(tmp_path, monkeypatch, capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    (example,) = [b for b in blocks if "experiment.run()" in b]
    (checkpoints,) = [b for b in blocks if "mml.Checkpointing(" in b and "resume_from" not in b]
    (files,) = [b for b in blocks if "resume_from" in b]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}

    def run() -> dict:
        exec(compile(example, "README.md", "exec"), namespace)
        exec(compile(checkpoints, "README.md", "exec"), namespace)
        experiment = namespace["experiment"]
        experiment.restore_checkpoint("more/more_epoch0019")
        ended = {
            k: np.array(v)
            for k, v in experiment.model_graph.nodes[namespace["head"].node_id].model.get_weights().items()
        }
        capsys.readouterr()
        exec(compile(files, "README.md", "exec"), namespace)
        return ended

    ended = contextvars.copy_context().run(run)
    printed = capsys.readouterr().out.splitlines()
    assert printed[-2:] == [
        "['soh', 'more', 'more']",
        "['more/more_epoch0009', 'more/more_epoch0014', 'more/more_epoch0019']",
    ]
    resumed = namespace["experiment"].model_graph.nodes[namespace["head"].node_id].model.get_weights()
    for name, value in ended.items():
        np.testing.assert_array_equal(np.asarray(resumed[name]), value)  # the resumed run ends bit for bit alike
    assert (tmp_path / "runs" / "soh" / "experiment.exp.mml").is_file()
    assert sorted(p.name for p in (tmp_path / "runs" / "copy" / "more").iterdir()) == [
        "more_epoch0009.ckpt.mml",
        "more_epoch0014.ckpt.mml",
        "more_epoch0019.ckpt.mml",
    ]
