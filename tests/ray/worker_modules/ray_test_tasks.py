"""Functions the Ray executor tests run as work items; Ray workers import this module by name."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


class ItemError(Exception):
    """A user-defined error, to check that the caller gets this type back (not Ray's wrapper)."""


def project(item: dict[str, Any]) -> dict[str, Any]:
    """A deterministic numpy computation of one item: a random projection seeded by the item."""
    weights = np.random.default_rng(item["seed"]).normal(size=(item["x"].shape[1], 2))
    y = np.tanh(item["x"] @ weights)
    return {"label": item["label"], "y": y, "mean": float(y.mean()), "rows": int(y.shape[0])}


def delayed_index(item: dict[str, Any]) -> dict[str, Any]:
    """Sleep ``item["delay"]`` seconds, then say which item this was and when it finished."""
    time.sleep(item["delay"])
    return {"index": item["index"], "finished_at": time.monotonic(), "pid": os.getpid()}


def busy_interval(item: dict[str, Any]) -> tuple[float, float]:
    """Occupy the task for ``item["seconds"]``; return its (start, end) on the machine's monotonic clock."""
    start = time.monotonic()
    time.sleep(item["seconds"])
    return start, time.monotonic()


def fail_or_wait(item: dict[str, Any]) -> int:
    """Leave a ``started-i`` marker; then fail (``item["fail"]``) or wait and leave ``finished-i``."""
    folder = Path(item["folder"])
    (folder / f"started-{item['index']}").touch()
    if item.get("fail"):
        time.sleep(item.get("delay", 0.0))
        raise ItemError(f"item {item['index']} is broken")
    time.sleep(item["wait"])
    (folder / f"finished-{item['index']}").touch()
    return item["index"]


def threads_seen(item: dict[str, Any]) -> dict[str, Any]:
    """The thread settings this task runs with: environment, loaded thread pools, and PyTorch's."""
    torch_threads = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch_threads = torch.get_num_threads()
    from threadpoolctl import threadpool_info

    pools = {f"{pool['internal_api']}:{pool['filepath']}": pool["num_threads"] for pool in threadpool_info()}
    return {
        "env": {name: os.environ.get(name) for name in THREAD_ENV_VARS},
        "pools": pools,
        "torch": torch_threads,
        "pid": os.getpid(),
    }


def add_one_in_place(item: dict[str, Any]) -> np.ndarray:
    """Change the item's array in place (as a fold function may) and return it."""
    item["x"] += 1.0
    return item["x"]
