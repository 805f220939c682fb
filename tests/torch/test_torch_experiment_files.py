"""Experiment files with torch: a run killed mid-way and resumed in fresh processes ends bit for bit as the
uninterrupted run (dropout included), and classes of the user's own module travel as packaged code."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.errors import SerializationError

JOB = '''
import os

import numpy as np
import torch
from torch import nn

import modularml as mml
from modularml.callbacks import EarlyStopping, Evaluation
from modularml_torch import TorchModelWrapper


class Net(nn.Module):
    """A user's own model, with dropout (so the resumed run must get torch's RNG back)."""

    def __init__(self, n_in=8, hidden=16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.body(x)


class KillAt(mml.Callback):
    """Ends the process (no clean-up at all) at the end of epoch $KILL_AT, after its checkpoint."""

    def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
        if os.environ.get("KILL_AT") == str(exec_ctx.epoch_idx):
            os._exit(3)


def build(n_epochs=5):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype("float32")
    y = (x[:, :1] * 2 - x[:, 1:2] + 0.1 * rng.standard_normal((256, 1))).astype("float32")
    fs = mml.FeatureSet.from_dict("data", {"x": x, "y": y}, feature_keys=["x"], target_keys=["y"])
    fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
    model = TorchModelWrapper(model_class=Net, model_kwargs={"n_in": 8})
    head = mml.ModelNode("head", model, fs, mml.Optimizer("adam", opt_kwargs={"lr": 1e-2}, backend="torch"))
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="torch"), on=head, inputs=["outputs", "targets"])
    exp = mml.Experiment.from_active_context("job")
    sampler = mml.SimpleSampler(batch_size=16, shuffle=True, seed=3, show_progress=False)
    train = mml.TrainPhase.from_split(
        "train", split="train", sampler=sampler, losses=[loss], n_epochs=n_epochs,
        checkpointing=mml.Checkpointing(mode="disk"),
    )
    train.add_callback(Evaluation(mml.EvalPhase.from_split("val", split="val", losses=[loss])))
    train.add_callback(EarlyStopping(patience=50))
    train.add_callback(KillAt())
    exp.execution_plan.add_phase(train)
    return exp


def weights(exp):
    state = exp.model_graph.get_state()["nodes"]
    return {k: np.asarray(v) for s in state.values() for k, v in s["model"]["weights"].items()}
'''

QUIET = "show_sampler_progress=False, show_training_progress=False"


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


@pytest.fixture
def job(tmp_path: Path) -> Path:
    (tmp_path / "torch_job.py").write_text(JOB)
    return tmp_path


def test_a_killed_run_resumed_in_a_fresh_process_is_bit_identical(job: Path) -> None:
    straight = _python(
        f"""
        import numpy as np
        from torch_job import build, weights
        exp = build()
        exp.set_checkpoint_dir("ck_straight")
        exp.run({QUIET})
        np.savez("straight.npz", **weights(exp))
        """,
        job,
    )
    assert straight.returncode == 0, straight.stderr
    killed = _python(
        f"""
        from torch_job import build
        exp = build()
        exp.set_checkpoint_dir("ck")
        exp.save("job")
        exp.run({QUIET})
        """,
        job,
        KILL_AT="2",
    )
    assert killed.returncode == 3, killed.stderr  # os._exit at the end of epoch 2, after its checkpoint
    assert sorted(p.name for p in (job / "ck" / "train").iterdir()) == [f"train_epoch000{i}.ckpt.mml" for i in range(3)]
    resumed = _python(
        f"""
        import numpy as np
        import modularml as mml
        import sys
        sys.path.remove("") if "" in sys.path else None  # the job's module is not importable: packaged code runs
        exp = mml.Experiment.load("job.exp.mml", allow_packaged_code=True)
        exp.set_checkpoint_dir("ck")
        results = exp.run(resume_from="train/train_epoch0002", {QUIET})
        assert results.get_train_result().n_epochs == 5, results.get_train_result().n_epochs
        nodes = exp.model_graph.get_state()["nodes"].values()
        np.savez("resumed.npz", **{{k: np.asarray(v) for s in nodes for k, v in s["model"]["weights"].items()}})
        print(sorted(m for m in sys.modules if m.startswith("torch_job")))
        """,
        job,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "[]"  # the user's module was never imported: its packaged source ran
    want, got = np.load(job / "straight.npz"), np.load(job / "resumed.npz")
    assert sorted(want.files) == sorted(got.files)
    for name in want.files:
        np.testing.assert_array_equal(got[name], want[name])  # bit for bit


def test_packaged_code_runs_only_when_allowed(job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(job))
    import torch_job

    with mml.ExperimentContext().activate():
        exp = torch_job.build(n_epochs=1)
        path = exp.save(tmp_path / "packaged")
    code = mml.inspect_packaged_code(path)
    assert list(code) == ["torch_job"]
    assert "class Net(nn.Module)" in code["torch_job"]
    assert "class KillAt(mml.Callback)" in code["torch_job"]
    elsewhere = tmp_path / "elsewhere"  # torch_job is not importable from here
    elsewhere.mkdir()
    refused = _python(
        f"""
        import modularml as mml, sys
        from modularml.errors import SerializationError
        try:
            mml.Experiment.load({str(path)!r})
        except SerializationError as exc:
            print(exc)
        print("imported:", sorted(m for m in sys.modules if m.startswith("torch_job")))
        """,
        elsewhere,
    )
    assert refused.returncode == 0, refused.stderr
    message, imported = refused.stdout.strip().splitlines()
    assert "torch_job" in message
    assert "allow_packaged_code=True" in message
    assert "Net" in message or "KillAt" in message
    assert imported == "imported: []"
    sys.modules.pop("torch_job", None)


def test_a_class_of_main_cannot_be_packaged(tmp_path: Path) -> None:
    done = _python(
        """
        import numpy as np, modularml as mml
        from torch import nn
        from modularml.errors import SerializationError
        from modularml_torch import TorchModelWrapper

        class Local(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(2, 1)
            def forward(self, x):
                return self.lin(x)

        fs = mml.FeatureSet.from_dict("d", {"x": np.ones((8, 2), "float32"), "y": np.ones((8, 1), "float32")},
                                      feature_keys=["x"], target_keys=["y"])
        head = mml.ModelNode("head", TorchModelWrapper(model_class=Local), fs)
        mml.ModelGraph([head])
        exp = mml.Experiment.from_active_context("main")
        try:
            exp.save("x")
        except SerializationError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "__main__" in done.stdout
    assert "Move the class into a module" in done.stdout
    assert not (tmp_path / "x.exp.mml").exists()


def test_serialization_error_type_is_public() -> None:
    assert issubclass(SerializationError, mml.ModularMLError)
