"""RayExecutor against a Ray head that the test starts with ``ray start --head`` (the cluster recipe).

The head runs in a session of its own, and the test stops exactly that session's processes
afterwards, also when the test fails. Not ``ray stop``: it ends every Ray process on the machine,
by name, including other users' clusters and test runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import ray

from modularml.executors import LocalExecutor
from modularml_ray import RayExecutor


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _session_processes(session: int) -> list[int]:
    """Live (not zombie) processes of a session id, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if state != "Z":
            found.append(int(entry.name))
    return found


def _stop_session(session: int, grace_s: float = 3.0) -> None:
    """SIGTERM the process group the head was started in; SIGKILL what is left after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(session, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while _session_processes(session) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not _session_processes(session):
            return


@pytest.fixture
def ray_head() -> Iterator[str]:
    """``ray start --head`` on 127.0.0.1 with 2 CPUs; yields its address; stops it afterwards."""
    if sys.platform != "linux":
        pytest.skip("the head is stopped through its Linux session")
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="mmlray-")  # short: Ray's socket paths must fit in 107 bytes
    command = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--object-store-memory=100000000",
        f"--temp-dir={temp_dir}",  # its address file stays here: no other ray.init() finds this head
    ]
    head = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = head.communicate(timeout=180)
        if head.returncode != 0:
            pytest.fail(f"ray start failed ({head.returncode}):\n{output}")
        yield f"127.0.0.1:{port}"
    finally:
        head.kill()  # only if `ray start` itself is still running (a timeout)
        _stop_session(head.pid)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not _session_processes(head.pid), "the head's processes are gone"


@pytest.mark.slow
def test_executor_connects_to_a_head_started_with_ray_start(
    ray_head: str, tasks: ModuleType, runtime_env: dict
) -> None:
    assert not ray.is_initialized(), "another test left Ray initialised in this process"
    rng = np.random.default_rng(3)
    items = [{"label": f"fold-{i}", "seed": i, "x": rng.normal(size=(40, 3))} for i in range(4)]
    expected = LocalExecutor().map(tasks.project, items)

    executor = RayExecutor(address=ray_head, runtime_env=runtime_env)
    try:
        results = executor.map(tasks.project, items)
        assert executor.owns_ray, "it connected, so it disconnects"
        assert ray.get_runtime_context().gcs_address == ray_head
        assert ray.cluster_resources()["CPU"] == 2
    finally:
        executor.close()
    assert not ray.is_initialized()
    for got, want in zip(results, expected, strict=True):
        assert got["label"] == want["label"]
        np.testing.assert_array_equal(got["y"], want["y"])

    # close() only disconnected: the cluster is still there for the next driver.
    with RayExecutor(address=ray_head, runtime_env=runtime_env, num_cpus_per_item=2) as again:
        seen = again.map(tasks.threads_seen, [{}])
        assert seen[0]["env"]["OMP_NUM_THREADS"] == "2"
    assert not ray.is_initialized()
