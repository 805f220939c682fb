"""What runs inside a Ray worker around each work item: its thread counts, and private copies of its data.

Nothing here imports Ray, so it runs (and is tested) in any process.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["THREAD_ENV_VARS", "limit_threads", "run_item", "thread_count", "writable"]

logger = logging.getLogger("modularml.ray")

#: Environment variables that size the thread pools of OpenMP, MKL, OpenBLAS and TensorFlow.
#: They are read when a library loads (TensorFlow: when its runtime initialises), so a
#: framework that a work item imports after they are set starts with that many threads.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def thread_count(num_cpus: float) -> int:
    """Threads a work item with a share of ``num_cpus`` CPUs may use: its whole CPUs, at least one.

    This is the rule Ray itself applies to ``OMP_NUM_THREADS`` (``0.5`` CPU -> 1, ``2.5`` -> 2).
    """
    return max(1, math.floor(num_cpus))


def limit_threads(threads: int) -> None:
    """Size every framework's thread pools in this process to ``threads`` (no oversubscription).

    - the environment variables in :data:`THREAD_ENV_VARS`, for libraries loaded from now on
      (PyTorch reads ``OMP_NUM_THREADS`` when imported, TensorFlow its two variables when its
      runtime initialises);
    - the BLAS and OpenMP pools already loaded (numpy's OpenBLAS, a loaded PyTorch's OpenMP),
      through threadpoolctl;
    - ``torch.set_num_threads`` when PyTorch is already imported, and TensorFlow's
      ``tf.config.threading`` setters when TensorFlow is imported but not yet initialised (once
      initialised it keeps its counts: then only a fresh worker takes the new ones).

    A framework that is not imported is not imported here.
    """
    value = str(threads)
    for name in THREAD_ENV_VARS:
        os.environ[name] = value
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(threads)
    tf = sys.modules.get("tensorflow")
    threading_config = getattr(getattr(tf, "config", None), "threading", None)
    if threading_config is not None:
        try:
            threading_config.set_intra_op_parallelism_threads(threads)
            threading_config.set_inter_op_parallelism_threads(threads)
        except RuntimeError as exc:  # TensorFlow already initialised in this worker
            logger.debug("TensorFlow keeps its thread counts in this worker: %s", exc)


def writable(value: Any) -> Any:
    """``value`` with every read-only numpy array inside dicts, lists and tuples replaced by a copy.

    Ray hands arrays over as read-only views of its object store; a copy makes them behave as
    they do in-process (writable, and not pinning the store).
    """
    if isinstance(value, np.ndarray):
        return value if value.flags.writeable else value.copy()
    if type(value) is dict:
        return {key: writable(item) for key, item in value.items()}
    if type(value) is list:
        return [writable(item) for item in value]
    if type(value) is tuple:
        return tuple(writable(item) for item in value)
    return value


def run_item(fn: Callable[[Any], Any], item: Any, num_cpus: float) -> Any:
    """The body of one Ray task: limit the threads to the item's CPU share, then ``fn(item)``."""
    limit_threads(thread_count(num_cpus))
    return fn(writable(item))
