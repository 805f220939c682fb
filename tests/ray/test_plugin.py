"""The Ray plugin without a running Ray: registration, light import, arguments, thread limits in-process."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import ray

from modularml.errors import InvalidArgumentError, InvalidTypeError
from modularml.plugins import PluginManager
from modularml_ray import RayExecutor, thread_count
from modularml_ray.worker import THREAD_ENV_VARS, limit_threads, writable


def test_entry_point_registers_the_executor_as_ray() -> None:
    manager = PluginManager()
    entry = manager.registry("executors").entry("ray")
    assert entry.obj == "modularml_ray.executor:RayExecutor", "registered by import path: Ray loads on first use"
    assert entry.distribution == "modularml-ray"
    assert manager.registry("executors").get("ray") is RayExecutor
    record = next(r for r in manager.plugins() if r.name == "modularml_ray")
    assert record.status == "loaded"
    assert record.contributions == {"executors": ["ray"]}


def test_importing_the_plugin_or_building_an_executor_does_not_import_ray() -> None:
    script = (
        "import sys, modularml as mml\n"
        "cls = mml.get_plugin_manager().registry('executors').get('ray')\n"
        "cls(num_cpus_per_item=2).get_config()\n"
        "print('ray' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="0 or more, got -1"):
        RayExecutor(num_cpus_per_item=-1)
    with pytest.raises(InvalidTypeError, match="number of CPUs or GPUs, got True"):
        RayExecutor(num_gpus_per_item=True)
    with pytest.raises(InvalidTypeError, match="address"):
        RayExecutor(address="")
    with pytest.raises(InvalidArgumentError, match=r"names \['address'\]"):
        RayExecutor(init_kwargs={"address": "auto", "num_cpus": 2})
    with pytest.raises(InvalidTypeError, match="runtime_env"):
        RayExecutor(runtime_env=["pip"])
    with pytest.raises(InvalidTypeError, match="show_progress"):
        RayExecutor(show_progress="yes")


def test_get_config_rebuilds_the_executor() -> None:
    executor = RayExecutor(
        address="127.0.0.1:6379",
        num_cpus_per_item=2,
        num_gpus_per_item=0.5,
        runtime_env={"env_vars": {"A": "1"}},
        init_kwargs={"num_cpus": 4},
        show_progress=True,
    )
    config = executor.get_config()
    assert config == {
        "address": "127.0.0.1:6379",
        "num_cpus_per_item": 2.0,
        "num_gpus_per_item": 0.5,
        "runtime_env": {"env_vars": {"A": "1"}},
        "init_kwargs": {"num_cpus": 4},
        "show_progress": True,
    }
    assert RayExecutor(**config).get_config() == config
    assert "num_gpus_per_item=0.5" in repr(executor)


def test_no_items_need_no_ray() -> None:
    assert not ray.is_initialized()
    assert RayExecutor().map(len, []) == []
    assert not ray.is_initialized()


@pytest.mark.parametrize(("cpus", "threads"), [(0, 1), (0.5, 1), (1, 1), (2.5, 2), (8, 8)])
def test_thread_count_is_the_whole_cpus_at_least_one(cpus: float, threads: int) -> None:
    assert thread_count(cpus) == threads


def test_limit_threads_sets_env_loaded_pools_and_an_imported_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    for name in THREAD_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    torch = None
    if importlib.util.find_spec("torch") is not None:
        import torch
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=None):  # restores this process's pools afterwards
        try:
            limit_threads(1)
            assert {name: os.environ[name] for name in THREAD_ENV_VARS} == dict.fromkeys(THREAD_ENV_VARS, "1")
            assert {pool["num_threads"] for pool in threadpool_info()} == {1}
            if torch is not None:
                assert torch.get_num_threads() == 1
        finally:
            if torch is not None:
                torch.set_num_threads(before)


def test_writable_copies_read_only_arrays_only() -> None:
    import numpy as np

    frozen = np.arange(3.0)
    frozen.flags.writeable = False
    free = np.zeros(2)
    value = {"a": [frozen, (free, "s")], "n": 1}
    out = writable(value)
    assert out["a"][0].flags.writeable
    assert out["a"][0] is not frozen
    np.testing.assert_array_equal(out["a"][0], frozen)
    assert out["a"][1][0] is free, "a writable array is not copied"
    assert out["a"][1][1] == "s"
    assert out["n"] == 1
