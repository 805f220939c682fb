"""Experiment files, experiment state and experiment checkpoints (numpy test backend)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import modularml as mml
from modularml.context import ExperimentContext
from modularml.errors import ModularMLWarning, SerializationError
from modularml.phases import Checkpointing

QUIET = {"show_sampler_progress": False, "show_training_progress": False}

#: Builds the same experiment in any process (the numpy backend seeded first).
BUILD = """
import numpy as np
import modularml as mml
from modularml.callbacks import EarlyStopping, Evaluation
from modularml_numpy.models import LinearModel


def build(n_epochs=3, label="exp"):
    mml.get_backend("numpy").seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 3)).astype("float32")
    y = (x @ np.array([[1.0], [2.0], [-1.0]], dtype="float32") + 0.1 * rng.standard_normal((96, 1))).astype("float32")
    fs = mml.FeatureSet.from_dict("data", {"x": x, "y": y}, feature_keys=["x"], target_keys=["y"])
    fs.split_random({"train": 0.75, "val": 0.25}, seed=1)
    fs.fit_transform("PerSampleMinMaxScaler", domain="features")  # a core scaler: no scikit-learn here
    opt = mml.Optimizer("sgd", opt_kwargs={"lr": 0.05, "momentum": 0.9}, backend="numpy")
    head = mml.ModelNode("head", LinearModel(output_shape=(1,)), fs, opt)
    mml.ModelGraph([head])
    loss = mml.AppliedLoss(mml.Loss("mse", backend="numpy"), on=head, inputs=["outputs", "targets"])
    exp = mml.Experiment.from_active_context(label)
    sampler = mml.SimpleSampler(batch_size=8, shuffle=True, seed=0, show_progress=False)
    train = mml.TrainPhase.from_split("train", split="train", sampler=sampler, losses=[loss], n_epochs=n_epochs)
    train.add_callback(Evaluation(mml.EvalPhase.from_split("val", split="val", losses=[loss])))
    train.add_callback(EarlyStopping(patience=10, restore_best=True))
    exp.execution_plan.add_phase(train)
    exp.execution_plan.add_phase(mml.EvalPhase.from_split("test", split="val", losses=[loss]))
    return exp, head, loss


def predict(exp):
    head = exp.model_graph.nodes[next(iter(exp.model_graph.nodes))]
    loss = exp.execution_plan.get_phase("test").losses[0]
    phase = mml.EvalPhase.from_split("check", split="val", losses=[loss])
    return exp.preview_phase(phase).stacked_tensors(head, domain="outputs")
"""

pytest.importorskip("modularml_numpy", reason="the experiments train with the numpy backend plugin")


@pytest.fixture
def builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The module BUILD as ``exp_builder`` (importable here and in subprocesses run from ``tmp_path``)."""
    (tmp_path / "exp_builder.py").write_text(BUILD)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("exp_builder")
    yield module
    sys.modules.pop("exp_builder", None)


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _weights(exp: mml.Experiment) -> dict[str, np.ndarray]:
    """The graph's weights by node label (ids differ between two builds)."""
    graph = exp.model_graph
    return {
        f"{graph.nodes[nid].label}.{k}": np.array(v)
        for nid, s in graph.get_state()["nodes"].items()
        for k, v in s["model"]["weights"].items()
    }


def test_save_and_load_in_a_fresh_process_predicts_identically(builder, tmp_path: Path) -> None:
    exp, _head, _loss = builder.build()
    exp.run(**QUIET)
    path = exp.save(tmp_path / "run")
    assert path.name == "run.exp.mml"
    np.save(tmp_path / "pred.npy", builder.predict(exp))
    train = exp.history[0].results.get_train_result()
    (tmp_path / "losses.json").write_text(json.dumps(train.epoch_losses()))
    done = _run_python(
        """
        import json, numpy as np, modularml as mml
        from exp_builder import predict
        exp = mml.Experiment.load("run.exp.mml")
        assert np.array_equal(predict(exp), np.load("pred.npy")), "predictions differ"
        train = exp.history[0].results.get_train_result()
        saved = {int(k): v for k, v in json.load(open("losses.json")).items()}
        assert train.epoch_losses() == saved, (train.epoch_losses(), saved)
        assert [p.label for p in exp.execution_plan.flatten()] == ["train", "test"]
        kinds = [type(c).__name__ for c in exp.execution_plan.get_phase("train").callbacks]
        assert kinds == ["Evaluation", "EarlyStopping"], kinds
        fs = mml.ExperimentContext.get_active().get_node(label="data")
        assert fs.available_splits == ["train", "val"]
        rerun = exp.run(show_sampler_progress=False, show_training_progress=False)
        assert rerun.get_train_result().n_epochs == 3
        print("ok")
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_file_stores_each_featureset_once(builder, tmp_path: Path) -> None:
    exp, _, _ = builder.build()
    exp.run(**QUIET)
    exp.run(**QUIET)  # two runs, each with train, evaluation and test results over the same FeatureSet
    path = exp.save(tmp_path / "run")
    with zipfile.ZipFile(path) as archive:
        tables = [n for n in archive.namelist() if n.startswith("tables/")]
        sizes = {n: archive.getinfo(n).file_size for n in archive.namelist()}
    fs = ExperimentContext.get_active().get_node(label="data")
    # the FeatureSet's table is stored once; results point into it (their inputs are row indices)
    assert sum(1 for n in tables if sizes[n] >= fs.collection.table.nbytes) == 1
    assert len(exp.history) == 2


def test_get_state_and_set_state_restore_everything_or_nothing(builder) -> None:
    exp, _, _ = builder.build()
    exp.run(**QUIET)
    state = exp.get_state()
    before = _weights(exp)
    exp.run(**QUIET)
    assert len(exp.history) == 2
    assert any(not np.array_equal(before[k], v) for k, v in _weights(exp).items())
    exp.set_state(state)
    assert len(exp.history) == 1
    for key, value in _weights(exp).items():
        np.testing.assert_array_equal(value, before[key])
    after_restore = _weights(exp)
    broken = {**state, "history": [{"label": "x", "results": {"type": "nonsense"}}]}
    with pytest.raises(SerializationError, match="results state"):
        exp.set_state(broken)
    assert len(exp.history) == 1  # unchanged
    for key, value in _weights(exp).items():
        np.testing.assert_array_equal(value, after_restore[key])


def test_experiment_checkpoints_at_phase_ends_and_restore(builder, tmp_path: Path) -> None:
    exp, _, _ = builder.build()
    exp.set_checkpoint_dir(tmp_path / "ck")
    exp.set_checkpointing(Checkpointing(mode="disk", save_on=["phase_end", "group_end"]))
    exp.run(**QUIET)
    available = exp.available_checkpoints
    assert {"train_end", "test_end", "group_exp_end"} <= set(available)
    trained = _weights(exp)
    exp.run(**QUIET)
    exp.restore_checkpoint("train_end")  # after the second run's train phase: that run's partial history
    assert len(exp.history) == 2
    assert exp.history[-1].meta == {"partial": True}
    assert exp.history[-1].results.labels == ["train"]
    exp.restore_checkpoint(available["group_exp_end"])  # a path works too
    assert len(exp.history) == 2
    assert exp.history[-1].meta == {"partial": True}
    assert exp.history[-1].results.labels == ["train", "test"]
    path = exp.save_checkpoint("manual", meta={"note": "by hand"})
    assert path == tmp_path / "ck" / "manual.ckpt.mml"
    with pytest.raises(FileExistsError):
        exp.save_checkpoint("manual")
    exp.save_checkpoint("manual", overwrite=True)
    with pytest.raises(ValueError, match="not a name of available_checkpoints"):
        exp.restore_checkpoint("nope")
    assert trained  # the weights were checkpointed with every file


def test_experiment_checkpointing_needs_a_directory(builder) -> None:
    exp, _, _ = builder.build()
    exp.set_checkpointing(Checkpointing(mode="disk", save_on="phase_end"))
    with pytest.raises(ValueError, match="set_checkpoint_dir"):
        exp.run(**QUIET)
    with pytest.raises(ValueError, match="set_checkpoint_dir"):
        exp.save_checkpoint("x")
    with exp.disable_checkpointing():
        exp.run(**QUIET)  # suppressed: no directory needed


def test_load_extracts_phase_checkpoints_or_warns(builder, tmp_path: Path) -> None:
    exp, _, _ = builder.build()
    exp.set_checkpoint_dir(tmp_path / "ck")
    exp.execution_plan.get_phase("train").set_checkpointing(Checkpointing(mode="disk"))
    exp.run(**QUIET)
    names = sorted(exp.available_checkpoints)
    assert names == ["train/train_epoch0000", "train/train_epoch0001", "train/train_epoch0002"]
    path = exp.save(tmp_path / "run")
    with ExperimentContext().activate(), pytest.warns(ModularMLWarning, match="3 checkpoint file"):
        mml.Experiment.load(path)
    with ExperimentContext().activate():
        loaded = mml.Experiment.load(path, checkpoint_dir=tmp_path / "restored")
        assert sorted(loaded.available_checkpoints) == names
        assert loaded.checkpoint_dir == tmp_path / "restored"
        loaded.restore_checkpoint("train/train_epoch0001")


def test_a_failed_load_leaves_the_context_unchanged(builder, tmp_path: Path) -> None:
    from modularml.testing.hostile_files import rewrite_member

    exp, _, _ = builder.build()
    exp.run(**QUIET)
    path = exp.save(tmp_path / "run")

    def hostile(state):
        state["history"][0]["results"]["results"][0]["class"] = "os:system"
        return state

    bad = rewrite_member(path, "state.json", hostile, target=tmp_path / "bad.exp.mml")
    with ExperimentContext().activate() as ctx:
        with pytest.raises(SerializationError, match=r"bad\.exp\.mml.*os:system"):
            mml.Experiment.load(bad)
        assert ctx.available_nodes == {}
        assert ctx.model_graph is None
        assert ctx.get_experiment() is None


def test_saving_is_atomic(builder, tmp_path: Path) -> None:
    exp, _, _ = builder.build()
    exp.run(**QUIET)
    path = exp.save(tmp_path / "run")
    before = path.read_bytes()
    exp.history[0].results.get_train_result().add_callback_result(mml.CallbackResult("x", "x", 0, None, object()))
    with pytest.raises(SerializationError, match="cannot be saved"):
        exp.save(path, overwrite=True)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp_builder.py", "run.exp.mml"]


def test_a_file_of_another_kind_is_refused(builder, tmp_path: Path) -> None:
    exp, _, _ = builder.build()
    graph_file = exp.model_graph.save(tmp_path / "g")
    with pytest.raises(SerializationError, match="mg"):
        mml.Experiment.load(graph_file)


# ---------------------------------------------------------------------------------------------
# resume
# ---------------------------------------------------------------------------------------------
class Crash(mml.Callback):
    """Fails once, at the end of ``epoch`` (after that epoch's checkpoint was written), or after a batch."""

    def __init__(self, epoch: int, batch: int | None = None) -> None:
        super().__init__(execution_order=5)
        self.epoch, self.batch, self.fired = epoch, batch, False

    def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
        if self.batch is None and exec_ctx.epoch_idx == self.epoch and not self.fired:
            self.fired = True
            raise KeyboardInterrupt("killed")

    def on_batch_end(self, *, experiment, phase, exec_ctx, results=None):
        at = (exec_ctx.epoch_idx, exec_ctx.batch_idx) == (self.epoch, self.batch)
        if self.batch is not None and at and not self.fired:
            self.fired = True
            raise KeyboardInterrupt("killed")


@pytest.mark.parametrize(
    ("save_on", "crash", "resume_from"),
    [
        ("epoch_end", Crash(2), "train/train_epoch0002"),
        ("batch_end", Crash(1, batch=4), "train/train_epoch0001_batch000003"),  # batch 4 failed before its checkpoint
    ],
)
def test_resume_ends_exactly_as_the_uninterrupted_run(builder, tmp_path: Path, save_on, crash, resume_from) -> None:
    with ExperimentContext().activate():
        exp, _, _ = builder.build(n_epochs=5)
        straight = exp.run_phase(exp.execution_plan.get_phase("train"), **QUIET)
        want = _weights(exp)
        want_losses = straight.epoch_losses()
        want_val = straight.metrics().epoch_values("val_loss")
    with ExperimentContext().activate():
        exp, _head, _ = builder.build(n_epochs=5)
        exp.set_checkpoint_dir(tmp_path / f"ck_{save_on}")
        train = exp.execution_plan.get_phase("train")
        train.set_checkpointing(Checkpointing(mode="disk", save_on=save_on))
        train.add_callback(crash)
        with pytest.raises(KeyboardInterrupt):
            exp.run_phase(train, **QUIET)
        assert resume_from in exp.available_checkpoints
        resumed = exp.run_phase(train, resume_from=resume_from, **QUIET)
        got = _weights(exp)
        assert got.keys() == want.keys()
        for key, value in want.items():
            np.testing.assert_array_equal(got[key], value)  # bit for bit
        assert resumed.epoch_losses() == want_losses
        assert resumed.metrics().epoch_values("val_loss") == want_val
        assert resumed.n_epochs == 5


def test_resume_refuses_what_it_cannot_continue(builder, tmp_path: Path) -> None:
    exp, _, _ = builder.build(n_epochs=2)
    exp.set_checkpoint_dir(tmp_path / "ck")
    train = exp.execution_plan.get_phase("train")
    train.set_checkpointing(Checkpointing(mode="disk", save_on=["epoch_end", "phase_end"]))
    exp.run_phase(train, **QUIET)
    with pytest.raises(ValueError, match="not a TrainPhase's disk checkpoint saved at an epoch or batch end"):
        exp.run_phase(train, resume_from="train/train_end")
    other = mml.TrainPhase.from_split(
        "other",
        split="train",
        sampler=mml.SimpleSampler(batch_size=8, seed=0, show_progress=False),
        losses=train.losses,
        n_epochs=2,
    )
    with pytest.raises(ValueError, match="saved by phase 'train', not by TrainPhase 'other'"):
        exp.run_phase(other, resume_from="train/train_epoch0000")
    train.add_callback(Crash(5))
    with pytest.raises(ValueError, match="Resume with the callbacks the run had"):
        exp.run_phase(train, resume_from="train/train_epoch0000")
    with pytest.raises(ValueError, match="not a name of available_checkpoints"):
        exp.run_phase(train, resume_from="missing")


def test_run_resumes_the_plan_from_a_phase_checkpoint(builder, tmp_path: Path) -> None:
    exp, _, _ = builder.build(n_epochs=4)
    exp.set_checkpoint_dir(tmp_path / "ck")
    train = exp.execution_plan.get_phase("train")
    train.set_checkpointing(Checkpointing(mode="disk"))
    train.add_callback(Crash(1))
    with pytest.raises(KeyboardInterrupt):
        exp.run(**QUIET)
    results = exp.run(resume_from="train/train_epoch0001", **QUIET)
    assert results.labels == ["train", "test"]
    assert results.get_train_result().n_epochs == 4
    assert exp.history[-1].kind == "plan"


# ---------------------------------------------------------------------------------------------
# packaged user code
# ---------------------------------------------------------------------------------------------
def test_a_users_callback_class_travels_as_packaged_code(builder, user_module, tmp_path: Path) -> None:
    name = user_module(
        "my_callbacks",
        """
        import modularml as mml

        class CountEpochs(mml.Callback):
            def __init__(self, label=None, execution_order=0):
                super().__init__(label, execution_order=execution_order)
                self.seen = 0

            def on_epoch_end(self, *, experiment, phase, exec_ctx, results=None):
                self.seen += 1
        """,
    )
    import importlib

    module = importlib.import_module(name)
    exp, _, _ = builder.build(n_epochs=1)
    exp.execution_plan.get_phase("train").add_callback(module.CountEpochs())
    path = exp.save(tmp_path / "run")
    assert mml.inspect_packaged_code(path) == {name: Path(module.__file__).read_text()}
    assert mml.inspect_packaged_code(exp.model_graph.save(tmp_path / "g")) == {}
    with ExperimentContext().activate() as ctx:
        with pytest.raises(
            SerializationError, match=r"CountEpochs is defined in module 'my_callbacks'.*allow_packaged_code=True"
        ):
            mml.Experiment.load(path)
        assert ctx.available_nodes == {}
        loaded = mml.Experiment.load(path, allow_packaged_code=True)
        (callback,) = [c for c in loaded.execution_plan.get_phase("train").callbacks if c.label == "CountEpochs"]
        assert type(callback).__name__ == "CountEpochs"
        assert type(callback) is not module.CountEpochs  # the file's source ran in a namespace of its own
        assert sys.modules[name] is module  # and shadowed nothing
        loaded.run(**QUIET)
        assert callback.seen == 1
        again = loaded.save(tmp_path / "again")  # a class run from packaged source is packaged again
        assert mml.inspect_packaged_code(again) == {name: Path(module.__file__).read_text()}


@pytest.mark.slow
def test_a_sigkill_during_saves_leaves_a_loadable_file(builder, tmp_path: Path) -> None:
    """Kill a process that keeps overwriting an experiment file, at several moments: the file always loads."""
    import signal
    import time

    exp, _, _ = builder.build(n_epochs=1)
    exp.run(**QUIET)
    exp.save(tmp_path / "run")
    for delay in (0.05, 0.2, 0.4, 0.7, 1.0):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from exp_builder import build\n"
                "exp, _, _ = build(n_epochs=1)\n"
                "exp.run(show_sampler_progress=False, show_training_progress=False)\n"
                "while True:\n"
                "    exp.save('run', overwrite=True)\n",
            ],
            cwd=tmp_path,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with ExperimentContext().activate():
            loaded = mml.Experiment.load(tmp_path / "run.exp.mml")
            assert loaded.history[0].results.get_train_result().n_epochs == 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in {"exp_builder.py", "run.exp.mml", "__pycache__"}]
    assert all(name.startswith(".") or name.endswith(".tmp") for name in leftovers), leftovers


def test_accelerators_of_phases_and_nodes_travel_in_experiment_files(builder, tmp_path: Path) -> None:
    exp, head, _ = builder.build(n_epochs=1)
    exp.execution_plan.get_phase("train").accelerator = mml.Accelerator("cpu")
    head.accelerator = mml.Accelerator("cpu", pin_memory=True)
    path = exp.save(tmp_path / "run")
    with ExperimentContext().activate():
        loaded = mml.Experiment.load(path)
        assert loaded.execution_plan.get_phase("train").accelerator == mml.Accelerator("cpu")
        (node,) = loaded.model_graph.nodes.values()
        assert node.accelerator == mml.Accelerator("cpu", pin_memory=True)
        loaded.run(**QUIET)
