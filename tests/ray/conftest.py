"""The Ray executor plugin's tests (``nox -s ray``): a local Ray, and a head started with ``ray start``.

Ray reads its settings from the environment once, when it is imported, so they are set here first:
every Ray process of these tests binds to the loopback address only, and accepts only a token that
these tests make up (nothing is written to ``~/.ray``).
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from types import ModuleType

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # on Linux too: the node IP is 127.0.0.1
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

pytest.importorskip("ray", reason="the Ray executor tests need ray (nox -s ray installs it)")
pytest.importorskip("modularml_ray", reason="the Ray executor plugin (plugins/modularml_ray) is not installed")

#: The folder of the module whose functions the tests run in Ray workers. Workers import it by
#: name, as they would a user's installed module: the runtime environment puts it on their path.
WORKER_MODULES = Path(__file__).parent / "worker_modules"
RUNTIME_ENV = {"env_vars": {"PYTHONPATH": str(WORKER_MODULES)}}
#: ray.init options of the local Rays: 2 CPUs, no dashboard, a small object store.
LOCAL_RAY = {"num_cpus": 2, "include_dashboard": False, "object_store_memory": 100 * 1024**2}


@pytest.fixture(scope="session")
def runtime_env() -> dict:
    """The runtime environment that lets workers import :data:`WORKER_MODULES`."""
    return RUNTIME_ENV


@pytest.fixture(scope="session")
def local_ray() -> dict:
    """``init_kwargs`` of a local Ray for these tests."""
    return LOCAL_RAY


@pytest.fixture(scope="session")
def tasks() -> ModuleType:
    """The module of worker functions, imported here by the same name the workers use."""
    if str(WORKER_MODULES) not in sys.path:
        sys.path.insert(0, str(WORKER_MODULES))
    import ray_test_tasks

    return ray_test_tasks
