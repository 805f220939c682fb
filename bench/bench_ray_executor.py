"""Benchmark: independent work items on the in-process executor against the Ray executor, on this machine.

Usage: ``python bench/bench_ray_executor.py REPORT.md`` appends a section to the report.

Workload: 4 items of a CPU-bound pure-numpy function (sort random vectors and sum them, about
1.5 s an item; calibrated at start so that it takes that long here). numpy's sorts and element-wise
functions run on one thread, so the in-process run uses one core at a time, as a fold of a small
model does; Ray runs the items as tasks of one CPU each on a local Ray with all of this machine's
CPUs (``RayExecutor(address="local", init_kwargs={"num_cpus": os.cpu_count()})``).

Reported: Ray's start-up, paid once per process and so reported apart: ``ray.init`` of a new local
Ray, and a first map of one small item per CPU (the worker processes import numpy and the plugin).
Then the in-process and the Ray runs alternate, ``BENCH_RUNS`` rounds: the fastest of each, and the
median over rounds of each round's ratio (a Ray run against the in-process run of the same round,
which other work on a shared machine slows alike); the verdict uses the latter. Target: at most
0.6x the in-process time on 2 CPUs. The results of both executors are checked to be equal.

Environment: ``BENCH_ITEM_S`` (seconds an item should take, default 1.5), ``BENCH_RUNS`` (rounds,
default 3), ``BENCH_LABEL`` (added to the section title).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _report import append_section

from modularml.executors import LocalExecutor

ITEMS = 4
TARGET_RATIO = 0.6
VECTOR = 200_000


def cpu_bound_item(item: dict) -> dict:
    """The work of one item: ``rounds`` times, sort a random vector and add up its square roots.

    Defined in the script, so Ray ships it to the workers by value (cloudpickle pickles functions
    of ``__main__`` whole); a fold function of an installed module travels by reference instead.
    """
    rng = np.random.default_rng(item["seed"])
    total = 0.0
    for _ in range(item["rounds"]):
        values = rng.random(VECTOR)
        values.sort()
        total += float(np.cumsum(np.sqrt(values))[-1])
    return {"label": item["label"], "total": total}


def _rounds_for(seconds: float) -> int:
    """How many rounds of :func:`cpu_bound_item` take ``seconds`` on this machine."""
    rounds = 10
    while True:
        start = time.perf_counter()
        cpu_bound_item({"label": "calibrate", "seed": 0, "rounds": rounds})
        elapsed = time.perf_counter() - start
        if elapsed > 0.3:
            return max(1, round(rounds * seconds / elapsed))
        rounds *= 2


def _timed(run) -> tuple[float, list]:
    start = time.perf_counter()
    results = run()
    return time.perf_counter() - start, results


def main(report: Path) -> None:
    # Before Ray is imported (the executor imports it when it starts): no usage statistics leave the
    # machine, and the local Ray listens on the loopback address only (on Linux Ray would otherwise
    # use the machine's network address).
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from modularml_ray import RayExecutor

    item_s = float(os.environ.get("BENCH_ITEM_S", "1.5"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    cpus = os.cpu_count() or 1
    rounds = _rounds_for(item_s)
    items = [{"label": f"item-{i}", "seed": i, "rounds": rounds} for i in range(ITEMS)]
    expected = LocalExecutor().map(cpu_bound_item, items)

    executor = RayExecutor(address="local", init_kwargs={"num_cpus": cpus, "include_dashboard": False})
    init_s, _ = _timed(executor.start)
    tiny = [{"label": f"warm-{i}", "seed": i, "rounds": 1} for i in range(cpus)]
    warm_up_s, _ = _timed(lambda: executor.map(cpu_bound_item, tiny))
    local_times, ray_times = [], []
    try:
        for _ in range(runs):
            local_s, local = _timed(lambda: LocalExecutor().map(cpu_bound_item, items))
            ray_s, remote = _timed(lambda: executor.map(cpu_bound_item, items))
            if local != expected or remote != expected:
                raise SystemExit(f"the executors' results differ: {remote} != {local}")
            local_times.append(local_s)
            ray_times.append(ray_s)
    finally:
        executor.close()

    ratio = statistics.median(r / loc for r, loc in zip(ray_times, local_times, strict=True))
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    label = os.environ.get("BENCH_LABEL", "")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    import ray

    lines = [
        f"## Ray executor: {ITEMS} items, in-process against Ray{f' ({label})' if label else ''}",
        "",
        f"{ITEMS} items of a CPU-bound numpy function ({rounds} rounds, about {item_s:g} s an item), "
        f"{cpus} CPUs, ray {ray.__version__}, Python {sys.version.split()[0]}, {runs} rounds; "
        f"load average after the runs {load}.",
        "",
        "| run | seconds (fastest) | vs in-process |",
        "|---|---|---|",
        f"| Ray start-up: `ray.init` of a new local Ray (once per process) | {init_s:.2f} | |",
        f"| Ray start-up: first map, {cpus} one-round items (workers import their modules) | {warm_up_s:.2f} | |",
        f"| `LocalExecutor` (in-process, one item after another) | {min(local_times):.2f} | 1.00x |",
        f"| `RayExecutor` (one task of 1 CPU per item) | {min(ray_times):.2f} | "
        f"{min(ray_times) / min(local_times):.2f}x (median of rounds {ratio:.2f}x) |",
        "",
        f"Ray {verdict} the {TARGET_RATIO}x target (median of rounds, start-up excluded); the results are equal.",
        "",
    ]
    append_section(report, lines)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/report.md"))
