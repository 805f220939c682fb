"""``RayExecutor``: runs each work item as a Ray task, on this machine or on a cluster.

Ray is imported when the executor first connects, not when this module loads.
"""

from __future__ import annotations

import logging
import numbers
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from modularml.errors import InvalidArgumentError, InvalidTypeError, ModularMLWarning
from modularml.executors import work_item_error
from modularml_ray.worker import run_item, writable

__all__ = ["RayExecutor"]

logger = logging.getLogger("modularml.ray")

_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")

#: How long a failed map waits for the cancelled items to stop (it raises either way).
CANCEL_TIMEOUT_S = 10.0

T = TypeVar("T")
R = TypeVar("R")


def _resource(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"RayExecutor({name}=...) takes a number of CPUs or GPUs, got {value!r}")
    if not value >= 0:
        raise InvalidArgumentError(f"RayExecutor({name}=...) must be 0 or more, got {value!r}")
    return float(value)


def _options(name: str, value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidTypeError(f"RayExecutor({name}=...) takes a dict with string keys, got {value!r}")
    return dict(value)


class RayExecutor:
    """Runs work items as Ray tasks, one task per item, and returns the results in input order.

    The same code runs on a laptop and on a cluster: with ``address=None`` the executor connects to
    the Ray instance that ``ray.init()`` finds (a cluster started with ``ray start`` on this machine,
    or ``RAY_ADDRESS``) or starts a local one; with an address it connects there.

    Ray is started or connected lazily, on the first :meth:`map` (or :meth:`start`, or entering a
    ``with`` block). The executor shuts down only what it started: if Ray was already initialised
    in this process it uses that connection and leaves it running; if it called ``ray.init`` itself,
    :meth:`close` (or leaving the ``with`` block) calls ``ray.shutdown()``, which stops a local Ray
    it started or disconnects from a cluster (the cluster keeps running). A Ray it started and
    never closed is shut down by Ray when the interpreter exits.

    Each task reserves ``num_cpus_per_item`` CPUs and ``num_gpus_per_item`` GPUs, so Ray runs as
    many items at once as the cluster has room for, and before calling ``fn`` it sizes the
    thread pools of OpenMP, MKL, OpenBLAS, PyTorch and TensorFlow to its whole CPUs (at least
    one; see :func:`modularml_ray.worker.limit_threads`). Ray sets ``CUDA_VISIBLE_DEVICES`` to a
    task's GPUs.

    ``fn`` must be importable in the workers (a module-level function of a module installed there;
    ``runtime_env={"py_modules": [...]}`` ships local modules to a cluster) and the items plain data
    (dicts of JSON values and numpy arrays). ``fn`` receives, and the caller gets back, private
    writable copies of the arrays, as with the in-process executor.

    Args:
        address: Where Ray runs: ``None`` (what ``ray.init()`` finds, else a new local Ray),
            ``"local"`` (always a new local Ray), ``"auto"`` (a running cluster on this machine),
            ``"HOST:PORT"`` (a head node's GCS, ``ray start --head`` prints it) or
            ``"ray://HOST:10001"`` (Ray Client).
        num_cpus_per_item: CPUs each task reserves (fractions allowed; threads get the whole part,
            at least one).
        num_gpus_per_item: GPUs each task reserves (fractions share a GPU).
        runtime_env: Ray runtime environment (``env_vars``, ``pip``, ``py_modules``...), passed to
            ``ray.init``; when Ray was already initialised, set on each task instead.
        init_kwargs: Further keyword arguments of ``ray.init`` (``num_cpus``, ``include_dashboard``,
            ``object_store_memory``...), used only when this executor initialises Ray.
        show_progress: Default for :meth:`map`'s progress bar.

    Raises:
        InvalidTypeError: An argument has the wrong type.
        InvalidArgumentError: A negative resource, or ``init_kwargs`` naming ``address`` or
            ``runtime_env`` (use the arguments of those names).

    Example:
        >>> with RayExecutor(address="127.0.0.1:6379") as executor:  # doctest: +SKIP
        ...     losses = executor.map(train_fold, folds)
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus_per_item: float = 1,
        num_gpus_per_item: float = 0,
        runtime_env: Mapping[str, Any] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        show_progress: bool = False,
    ) -> None:
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise InvalidTypeError(
                f"RayExecutor(address=...) takes None or an address such as '127.0.0.1:6379', 'auto' or "
                f"'ray://host:10001', got {address!r}"
            )
        self.address = address
        self.num_cpus_per_item = _resource("num_cpus_per_item", num_cpus_per_item)
        self.num_gpus_per_item = _resource("num_gpus_per_item", num_gpus_per_item)
        self.runtime_env = _options("runtime_env", runtime_env)
        self.init_kwargs = _options("init_kwargs", init_kwargs) or {}
        clashing = sorted({"address", "runtime_env"} & set(self.init_kwargs))
        if clashing:
            raise InvalidArgumentError(
                f"RayExecutor(init_kwargs=...) names {clashing}: pass them as RayExecutor's own arguments"
            )
        if not isinstance(show_progress, bool):
            raise InvalidTypeError(f"RayExecutor(show_progress=...) takes True or False, got {show_progress!r}")
        self.show_progress = show_progress
        self._owns_ray = False

    # -- connection ---------------------------------------------------------------------------

    @property
    def owns_ray(self) -> bool:
        """Whether this executor initialised Ray in this process (and :meth:`close` shuts it down)."""
        if not self._owns_ray:
            return False
        import ray

        return ray.is_initialized()

    def start(self) -> RayExecutor:
        """Connect to Ray, or start a local Ray, unless Ray is initialised in this process already.

        Returns:
            This executor.
        """
        import ray

        if ray.is_initialized():
            if not self._owns_ray:
                self._warn_if_elsewhere()
            return self
        kwargs = dict(self.init_kwargs)
        if self.runtime_env is not None:
            kwargs["runtime_env"] = self.runtime_env
        ray.init(address=self.address, **kwargs)
        self._owns_ray = True
        logger.info("RayExecutor initialised Ray (address=%r): %s", self.address, ray.cluster_resources())
        return self

    def _warn_if_elsewhere(self) -> None:
        if self.address is None or self.address in ("auto", "local") or "://" in self.address:
            return
        import ray

        current = ray.get_runtime_context().gcs_address
        wanted = self.address.replace("localhost", "127.0.0.1")
        if current != wanted:
            warnings.warn(
                f"RayExecutor(address={self.address!r}): Ray is already initialised in this process, connected "
                f"to {current}; the executor uses that connection. Call ray.shutdown() first to connect elsewhere.",
                ModularMLWarning,
                stacklevel=3,
            )

    def close(self) -> None:
        """Shut Ray down if this executor initialised it; otherwise leave it as it is. Safe to repeat."""
        if not self._owns_ray:
            return
        import ray

        if ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

    def __enter__(self) -> RayExecutor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- work ---------------------------------------------------------------------------------

    def map(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        show_progress: bool | None = None,
        description: str | None = None,
    ) -> list[R]:
        """Run ``fn(item)`` for every item as one Ray task each; return the results in input order.

        Args:
            fn: Function of one item, importable in the workers.
            items: The work items (plain data).
            show_progress: Show a tqdm progress bar over finished items; defaults to the executor's
                setting.
            description: Label of the progress bar.

        Returns:
            ``[fn(item) for item in items]``, as the in-process executor returns it.

        Raises:
            ExecutionError: An item failed (``fn`` raised, or its worker died). The message names
                the item's index (and its ``"label"``); the ``__cause__`` is the exception ``fn``
                raised, of its own type, with the worker's traceback as a note. The items still
                pending are cancelled first (running ones stop at once: their workers exit).
        """
        items = list(items)
        if not items:
            return []
        import ray
        from ray.exceptions import RayError, RayTaskError

        self.start()
        options: dict[str, Any] = {"num_cpus": self.num_cpus_per_item, "num_gpus": self.num_gpus_per_item}
        if self.runtime_env is not None and not self._owns_ray:
            options["runtime_env"] = self.runtime_env
        task = ray.remote(run_item).options(**options)
        fn_ref = ray.put(fn)
        results: list[Any] = [None] * len(items)
        show = self.show_progress if show_progress is None else show_progress
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc=description)
        index_of: dict[Any, int] = {}
        pending: list[Any] = []  # submitted and not yet collected
        try:
            for index, item in enumerate(items):
                ref = task.remote(fn_ref, item, self.num_cpus_per_item)
                index_of[ref] = index
                pending.append(ref)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    index = index_of[ref]
                    try:
                        results[index] = writable(ray.get(ref))
                    except RayTaskError as err:
                        cause = _user_exception(err)
                        raise work_item_error(index, items[index], cause) from cause
                    except RayError as err:  # the worker died, the object was lost...
                        raise work_item_error(index, items[index], err) from err
                    if bar is not None:
                        bar.update(1)
        except BaseException:  # a failed item, or the caller interrupted: stop the rest now
            _cancel(ray, pending, sorted(index_of[ref] for ref in pending))
            raise
        finally:
            if bar is not None:
                bar.close()
        return results

    def get_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this executor."""
        return {
            "address": self.address,
            "num_cpus_per_item": self.num_cpus_per_item,
            "num_gpus_per_item": self.num_gpus_per_item,
            "runtime_env": None if self.runtime_env is None else dict(self.runtime_env),
            "init_kwargs": dict(self.init_kwargs) or None,
            "show_progress": self.show_progress,
        }

    def __repr__(self) -> str:
        return (
            f"RayExecutor(address={self.address!r}, num_cpus_per_item={self.num_cpus_per_item:g}, "
            f"num_gpus_per_item={self.num_gpus_per_item:g})"
        )


def _cancel(ray: Any, pending: list[Any], indices: list[int]) -> None:
    """Cancel the tasks of ``pending`` and wait (at most ``CANCEL_TIMEOUT_S``) until each has stopped.

    ``force=True``: a running item stops at once (its worker process exits), even inside C code,
    which the ``KeyboardInterrupt`` of a gentle cancel reaches only once back in Python. A task
    that was being handed to a worker as the cancel arrived can miss it, so the cancel is repeated
    until every task has ended.
    """
    if not pending:
        return
    deadline = time.monotonic() + CANCEL_TIMEOUT_S
    while pending:
        for ref in pending:
            ray.cancel(ref, force=True)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=min(1.0, left), fetch_local=False)
    if pending:
        logger.warning("RayExecutor: %d cancelled item(s) had not stopped after %s s", len(pending), CANCEL_TIMEOUT_S)
    else:
        logger.info("RayExecutor cancelled the pending items %s", indices)


def _user_exception(err: BaseException) -> BaseException:
    """The exception the user's function raised in the worker, with the worker's traceback as a note."""
    cause = getattr(err, "cause", None)
    if not isinstance(cause, BaseException):
        return err
    # A RayTaskError prints as the worker's traceback, headed by the task, its pid and node (in colour).
    cause.add_note("Raised in a Ray worker:\n" + _ANSI_COLOUR.sub("", str(err)))
    return cause
