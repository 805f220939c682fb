"""RayExecutor on a local Ray of 2 CPUs, shared by the tests of this module (Ray's start-up is the slow part)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import ray

from modularml.errors import ExecutionError, ModularMLError, ModularMLWarning
from modularml.executors import LocalExecutor
from modularml_ray import RayExecutor

CPUS = 2


@pytest.fixture(scope="module")
def executor(runtime_env: dict, local_ray: dict) -> Iterator[RayExecutor]:
    """An executor that starts the module's local Ray itself, and shuts it down at the end."""
    assert not ray.is_initialized(), "another test left Ray initialised in this process"
    started = RayExecutor(address="local", runtime_env=runtime_env, init_kwargs=local_ray).start()
    assert started.owns_ray
    assert ray.cluster_resources()["CPU"] == CPUS
    yield started
    started.close()
    assert not ray.is_initialized(), "close() shuts down the Ray the executor started"


def _items(n: int = 4) -> list[dict]:
    rng = np.random.default_rng(7)
    return [{"label": f"fold-{i}", "seed": i, "x": rng.normal(size=(50 + i, 3))} for i in range(n)]


def _wait_for_idle_cpus(timeout: float) -> float:
    """Seconds until all CPUs of the local Ray are free again (fails after ``timeout``)."""
    start = time.monotonic()
    while ray.available_resources().get("CPU", 0.0) < CPUS:
        assert time.monotonic() - start < timeout, f"CPUs still busy after {timeout} s: {ray.available_resources()}"
        time.sleep(0.1)
    return time.monotonic() - start


def test_results_equal_the_local_executors(executor: RayExecutor, tasks: ModuleType) -> None:
    items = _items()
    expected = LocalExecutor().map(tasks.project, items)
    results = executor.map(tasks.project, items)
    assert [r["label"] for r in results] == ["fold-0", "fold-1", "fold-2", "fold-3"]
    for got, want in zip(results, expected, strict=True):
        assert got.keys() == want.keys()
        np.testing.assert_array_equal(got["y"], want["y"])
        assert got["mean"] == want["mean"]
        assert got["rows"] == want["rows"]
        assert got["y"].flags.writeable, "results are private writable arrays, as in-process"


def test_results_come_back_in_input_order_not_finishing_order(executor: RayExecutor, tasks: ModuleType) -> None:
    items = [{"index": i, "delay": 1.2 if i == 0 else 0.0} for i in range(5)]
    results = executor.map(tasks.delayed_index, items)
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert results[0]["finished_at"] > max(r["finished_at"] for r in results[1:]), "item 0 finished last"


def test_items_run_in_parallel_within_their_cpu_share(executor: RayExecutor, tasks: ModuleType) -> None:
    items = [{"seconds": 0.8}, {"seconds": 0.8}]
    (a0, a1), (b0, b1) = executor.map(tasks.busy_interval, items)
    assert a0 < b1, "one CPU each: the two items overlap"
    assert b0 < a1, "one CPU each: the two items overlap"
    whole = RayExecutor(num_cpus_per_item=CPUS)  # every item needs the whole machine: one at a time
    (a0, a1), (b0, b1) = whole.map(tasks.busy_interval, items)
    assert a1 <= b0 or b1 <= a0, "two CPUs each on a 2-CPU Ray: the items do not overlap"


def test_each_task_sizes_its_thread_pools_from_its_cpu_share(executor: RayExecutor, tasks: ModuleType) -> None:
    for cpus, threads in ((2, 2), (1, 1), (0.5, 1)):
        seen = RayExecutor(num_cpus_per_item=cpus).map(tasks.threads_seen, [{}, {}])
        for task in seen:
            assert set(task["env"].values()) == {str(threads)}, (cpus, task["env"])
            assert task["pools"], "numpy's BLAS is loaded in the worker"
            assert set(task["pools"].values()) == {threads}, (cpus, task["pools"])
            if task["torch"] is not None:  # PyTorch installed: imported by the task after the limits were set
                assert task["torch"] == threads, (cpus, task)


def test_items_arrive_writable(executor: RayExecutor, tasks: ModuleType) -> None:
    items = [{"x": np.zeros(3)}, {"x": np.arange(200_000.0)}]  # inline, and through the object store
    results = executor.map(tasks.add_one_in_place, items)
    np.testing.assert_array_equal(results[0], np.ones(3))
    np.testing.assert_array_equal(results[1], np.arange(200_000.0) + 1)
    np.testing.assert_array_equal(items[0]["x"], np.zeros(3))  # the caller's item is not changed


def test_a_failing_item_names_itself_and_cancels_the_rest(
    executor: RayExecutor, tasks: ModuleType, tmp_path: Path
) -> None:
    items = [{"index": 0, "label": "fold-0", "fail": True, "delay": 0.5, "folder": str(tmp_path)}]
    items += [{"index": i, "label": f"fold-{i}", "wait": 30.0, "folder": str(tmp_path)} for i in range(1, 5)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        future = pool.submit(executor.map, tasks.fail_or_wait, items)
        with pytest.raises(ExecutionError) as caught:
            future.result(timeout=60)
        raised_after = time.monotonic() - started
    assert raised_after < 20, f"the failure surfaced after {raised_after:.1f} s, not at once"
    error = caught.value
    assert isinstance(error, ModularMLError)
    assert str(error) == "work item 0 ('fold-0') failed: ItemError: item 0 is broken"
    assert (error.index, error.label) == (0, "fold-0")
    cause = error.__cause__
    assert type(cause) is tasks.ItemError, "the user's own exception type, not Ray's wrapper"
    assert str(cause) == "item 0 is broken"
    (note,) = cause.__notes__
    assert note.startswith("Raised in a Ray worker:\nray::run_item() (pid=")
    assert "in fail_or_wait\n    raise ItemError(f\"item {item['index']} is broken\")" in note
    # The running items were stopped (each would hold a CPU for 30 s) and the queued ones never ran.
    _wait_for_idle_cpus(timeout=15)
    time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0.0) == CPUS, "no cancelled item started afterwards"
    assert not list(tmp_path.glob("finished-*"))
    started_items = sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("started-*"))
    assert 0 in started_items
    assert 3 not in started_items, started_items
    assert 4 not in started_items, started_items
    # The executor is still usable after a failure.
    assert [r["index"] for r in executor.map(tasks.delayed_index, [{"index": 7, "delay": 0.0}])] == [7]


def test_local_and_ray_executors_fail_alike(executor: RayExecutor, tasks: ModuleType, tmp_path: Path) -> None:
    items = [
        {"index": 0, "wait": 0.0, "folder": str(tmp_path)},
        {"index": 1, "fail": True, "folder": str(tmp_path)},  # no label: only the index is named
    ]
    errors = []
    for each in (LocalExecutor(), executor):
        with pytest.raises(ExecutionError) as caught:
            each.map(tasks.fail_or_wait, items)
        errors.append(caught.value)
    local, remote = errors
    assert str(local) == str(remote) == "work item 1 failed: ItemError: item 1 is broken"
    assert (local.index, local.label) == (remote.index, remote.label) == (1, None)
    assert type(local.__cause__) is type(remote.__cause__) is tasks.ItemError


def test_progress_bar_counts_finished_items(
    executor: RayExecutor, tasks: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [{"index": i, "delay": 0.0} for i in range(3)]
    executor.map(tasks.delayed_index, items, show_progress=True, description="folds")
    err = capsys.readouterr().err
    assert "folds" in err
    assert "3/3" in err
    RayExecutor(show_progress=False).map(tasks.delayed_index, items)
    assert "3/3" not in capsys.readouterr().err


def test_an_executor_that_found_ray_running_leaves_it_running(executor: RayExecutor, tasks: ModuleType) -> None:
    guest = RayExecutor()
    assert guest.map(tasks.delayed_index, [{"index": 1, "delay": 0.0}])[0]["index"] == 1
    assert not guest.owns_ray
    guest.close()
    with RayExecutor() as other:
        assert not other.owns_ray
    assert ray.is_initialized(), "only the executor that started Ray shuts it down"
    with pytest.warns(ModularMLWarning, match="already initialised"):
        RayExecutor(address="127.0.0.1:1").start()
    assert ray.is_initialized()
