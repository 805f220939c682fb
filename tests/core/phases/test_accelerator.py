"""Accelerators on phases and nodes: precedence, placement once per step, errors and configs (CPU only)."""

from __future__ import annotations

import numpy as np
import pytest

import modularml as mml
from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.phases import EvalPhase, FitPhase, TrainPhase


def _sampler(batch_size: int = 8) -> mml.SimpleSampler:
    return mml.SimpleSampler(batch_size=batch_size, shuffle=True, seed=0, show_progress=False)


def _quiet() -> dict:
    return {"show_sampler_progress": False, "show_training_progress": False}


@pytest.fixture
def fake_mps(monkeypatch: pytest.MonkeyPatch):
    """The numpy backend pretending to have an ``"mps"`` device: records placements and moves."""
    impl = mml.get_backend("numpy")
    record = {"placed": [], "moves": 0, "repeat_moves": 0, "on_device": set(), "models": {}, "host": 0}
    from_numpy = impl.from_numpy

    def check(device):
        canonical = mml.backends.normalize_device(device)
        if canonical not in ("cpu", "mps"):
            raise mml.DeviceError(f"Device {canonical!r} is not available; available devices: ['cpu', 'mps'].")
        return canonical

    def to_device(value, device, *, pin_memory=False):
        device = check(device)
        if device == "mps":
            if id(value) in record["on_device"]:
                record["repeat_moves"] += 1  # asked again for a value already there: no copy
            else:
                record["moves"] += 1
                record["on_device"].add(id(value))
        return value

    def to_native(array, *, dtype=None, device=None):
        value = from_numpy(array, dtype=dtype)
        if check(device) == "mps":
            record["moves"] += 1
            record["on_device"].add(id(value))
        else:
            record["host"] += 1
        return value

    def place_model(model, device):
        record["placed"].append(check(device))
        record["models"][id(model)] = check(device)

    monkeypatch.setattr(impl, "_check_device", check)
    monkeypatch.setattr(impl, "to_device", to_device)
    monkeypatch.setattr(impl, "from_numpy", to_native)
    monkeypatch.setattr(impl, "place_model", place_model)
    monkeypatch.setattr(impl, "model_device", lambda model: record["models"].get(id(model), "cpu"))
    return record


def test_a_phase_places_its_nodes_once_and_each_batch_moves_once_per_step(linear_setup, fake_mps) -> None:
    s = linear_setup()
    phase = TrainPhase.from_split(
        "train", split="train", sampler=_sampler(), losses=[s.loss], n_epochs=2, accelerator="mps"
    )
    results = phase.execute(**_quiet())
    steps = len(results.execution_contexts())
    assert steps == 12  # 48 rows in batches of 8, two epochs
    assert fake_mps["placed"] == ["mps"]  # placed at the phase's start, not per step
    # every array of every step reached the device when it was gathered (a window of steps at a time), and
    # nothing was copied there again by the forward pass or the loss, nor made on the host
    assert 0 < fake_mps["moves"] <= 4 * steps
    assert fake_mps["repeat_moves"] == 0
    assert fake_mps["host"] == 0
    moved = fake_mps["moves"]
    # a second phase finds the model on the device already: nothing placed again, batches follow the model
    EvalPhase.from_split("val", split="val", losses=[s.loss]).execute()
    assert fake_mps["placed"] == ["mps"]
    assert fake_mps["moves"] > moved
    assert fake_mps["host"] == 0


def test_the_nodes_accelerator_wins_and_an_unavailable_device_is_refused(linear_setup, fake_mps) -> None:
    s = linear_setup()
    s.head.accelerator = "cpu"
    phase = TrainPhase.from_split("t", split="train", sampler=_sampler(), losses=[s.loss], accelerator="mps")
    phase.execute(**_quiet())
    assert fake_mps["placed"] == []  # the node's CPU wins: its model never moves
    assert fake_mps["moves"] == 0
    s.head.accelerator = None
    bad = TrainPhase.from_split("t2", split="train", sampler=_sampler(), losses=[s.loss], accelerator="cuda:3")
    with pytest.raises(mml.DeviceError, match=r"'head'.*'cuda:3'.*available devices: \['cpu', 'mps'\]"):
        bad.execute(**_quiet())


def test_the_numpy_backend_refuses_a_gpu_and_says_what_to_do(linear_setup) -> None:
    s = linear_setup()
    phase = TrainPhase.from_split("t", split="train", sampler=_sampler(), losses=[s.loss], accelerator="gpu")
    with pytest.raises(mml.DeviceError, match=r"'head'.*'cuda:0'.*available devices: \['cpu'\].*accelerator='cpu'"):
        phase.execute(**_quiet())


@pytest.mark.parametrize("bad", ["tpu", "gpu:x", "cuda:", "mps:1"])
def test_malformed_device_strings(bad: str) -> None:
    with pytest.raises(mml.DeviceError, match=repr(bad).replace("(", r"\(")):
        mml.Accelerator(bad)


def test_accelerator_values() -> None:
    acc = mml.Accelerator("GPU:2", pin_memory=True)
    assert (acc.device, acc.pin_memory, acc.pins) == ("cuda:2", True, True)
    assert mml.Accelerator("mps", pin_memory=True).pins is False
    assert mml.Accelerator() == mml.Accelerator("cpu")
    assert mml.Accelerator.from_config(acc.get_config()) == acc
    with pytest.raises(InvalidTypeError):
        mml.Accelerator("cpu", pin_memory="yes")
    with pytest.raises(InvalidTypeError):
        mml.Accelerator(0)
    with pytest.raises(InvalidArgumentError, match="speed"):
        mml.Accelerator.from_config({"device": "cpu", "speed": 3})


def test_phase_and_node_configs_round_trip_the_accelerator(linear_setup) -> None:
    s = linear_setup()
    acc = mml.Accelerator("cuda:1", pin_memory=True)
    train = TrainPhase.from_split("t", split="train", sampler=_sampler(), losses=[s.loss], accelerator=acc)
    evaluation = EvalPhase.from_split("e", split="val", accelerator="mps")
    fit = FitPhase.from_split("f", split="train", accelerator="cpu")
    for phase, expected in ((train, acc), (evaluation, mml.Accelerator("mps")), (fit, mml.Accelerator("cpu"))):
        config = phase.get_config()
        assert config["accelerator"] == expected.get_config()
        assert type(phase).from_config(config).accelerator == expected
    assert EvalPhase.from_config(EvalPhase.from_split("e2", split="val").get_config()).accelerator is None
    s.head.accelerator = acc
    config = s.head.get_config()
    assert config["accelerator"] == {"device": "cuda:1", "pin_memory": True}
    rebuilt = mml.ModelNode.from_config(config, register=False)
    assert rebuilt.accelerator == acc
    np.testing.assert_array_equal(rebuilt.get_config()["accelerator"]["device"], "cuda:1")
