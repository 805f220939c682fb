"""Benchmark: building, saving, loading and viewing FeatureSets, against plain pandas/numpy baselines.

Usage: ``python bench/bench_featureset.py REPORT.md`` appends a section to the report.

Measured (median of several runs, each baseline in the same run):

- ``FeatureSet.from_pandas`` with ``group_by`` on 1,000,000 shuffled long-format rows in 5,000
  groups (2 feature columns, a target, ``sort_by`` a time column) against pandas
  ``sort_values`` -> ``groupby`` -> numpy reshape. Target: within 1.5x of the baseline.
- ``FeatureSet.from_dict`` of 100,000 samples x 32 float32 feature columns. Target: under 20 ms.
- ``save`` / ``load`` of that FeatureSet against ``np.save`` / ``np.load`` of the same feature
  data as one (100,000, 32) array. Target: within 2x of numpy. The FeatureSet file also holds
  the sample UUIDs, checksums every entry, and ``save`` fsyncs before its atomic rename.
- Memory allocated by a view (``to_view()``) and a split (half the rows) of a 1,000,000-row
  FeatureSet, measured with tracemalloc. Target: no feature data (only int64 indices).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from _report import append_section, run

from modularml.context import ExperimentContext
from modularml.data import FeatureSet


def _median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm up (imports, caches, page cache)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _long_frame(n_groups: int = 5_000, rows_per_group: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_groups * rows_per_group
    frame = pd.DataFrame(
        {
            "cell": np.repeat(np.arange(n_groups) // 50, rows_per_group),
            "cycle": np.repeat(np.arange(n_groups) % 50, rows_per_group),
            "time": np.tile(np.arange(rows_per_group, dtype=np.float64), n_groups),
            "voltage": rng.random(n, dtype=np.float32),
            "current": rng.random(n, dtype=np.float32),
            "soh": np.repeat(rng.random(n_groups), rows_per_group),
        }
    )
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _pandas_baseline(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ordered = frame.sort_values(["cell", "cycle", "time"], kind="stable")
    grouped = ordered.groupby(["cell", "cycle"], sort=True)
    length = int(grouped.size().iloc[0])
    voltage = ordered["voltage"].to_numpy().reshape(-1, length)
    current = ordered["current"].to_numpy().reshape(-1, length)
    soh = grouped["soh"].first().to_numpy()
    return voltage, current, soh


def bench_from_pandas(rows: list[tuple]) -> None:
    frame = _long_frame()

    def ours() -> FeatureSet:
        return FeatureSet.from_pandas(
            "grouped", frame, ["voltage", "current"], "soh", group_by=["cell", "cycle"], sort_by="time"
        )

    fs = ours()
    voltage, _, soh = _pandas_baseline(frame)
    assert np.array_equal(fs.get_features(keys="voltage")["voltage"], voltage)
    assert np.array_equal(fs.get_targets("numpy"), soh)
    baseline = _median_seconds(lambda: _pandas_baseline(frame), 3)
    mine = _median_seconds(ours, 3)
    rows.append(("`from_pandas`, group_by, 1M rows / 5,000 groups", mine, "pandas groupby -> numpy", baseline, 1.5))


def bench_from_dict_save_load(rows: list[tuple], folder: Path) -> None:
    rng = np.random.default_rng(0)
    keys = [f"f{i:02d}" for i in range(32)]
    data = {k: rng.random(100_000, dtype=np.float32) for k in keys}
    data["y"] = rng.random(100_000, dtype=np.float32)
    build = _median_seconds(lambda: FeatureSet.from_dict("wide", data, keys, "y"), 7)
    rows.append(("`from_dict`, 100,000 x 32 float32", build, "target", 0.020, None))

    fs = FeatureSet.from_dict("wide", data, keys, "y")
    stacked = np.stack([data[k] for k in keys], axis=1)
    target = folder / "wide"
    npy = folder / "wide.npy"
    saved = fs.save(target, overwrite=True)
    save = _median_seconds(lambda: fs.save(target, overwrite=True), 7)
    np_save = _median_seconds(lambda: np.save(npy, stacked), 7)
    load = _median_seconds(lambda: FeatureSet.load(saved), 7)
    np_load = _median_seconds(lambda: np.load(npy), 7)
    loaded = FeatureSet.load(saved)
    assert loaded.collection.table.equals(fs.collection.table)
    size_mb = saved.stat().st_size / 1e6
    rows.append((f"`save` ({size_mb:.1f} MB file)", save, "`np.save` (100,000, 32)", np_save, 2.0))
    real_fsync = os.fsync
    os.fsync = lambda fd: None  # np.save does not fsync: show what the durability costs
    try:
        save_no_sync = _median_seconds(lambda: fs.save(target, overwrite=True), 7)
    finally:
        os.fsync = real_fsync
    rows.append(("`save` with fsync disabled (comparison only)", save_no_sync, "`np.save`", np_save, 2.0))
    rows.append(("`load`", load, "`np.load`", np_load, 2.0))


def bench_view_memory(lines: list[str]) -> None:
    n = 1_000_000
    fs = FeatureSet.from_dict("big", {"x": np.zeros((n, 32), dtype=np.float32)}, "x", [])
    feature_bytes = fs.collection.table.column("features.x.raw").nbytes
    results = []
    for label, make in (
        ("`fs.to_view()`", fs.to_view),
        ("`fs.take(every other row)`", lambda: fs.take(np.arange(0, n, 2))),
        ("`fs.select(features='x')`", lambda: fs.select(features="x")),
    ):
        tracemalloc.start()
        view = make()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results.append((label, len(view), peak))
    lines += [
        f"Memory of views over a {n:,}-row FeatureSet holding {feature_bytes / 1e6:.0f} MB of features "
        "(peak bytes allocated while creating the view, tracemalloc):",
        "",
        "| view | rows | peak allocated | per row | share of feature data |",
        "|---|---|---|---|---|",
    ]
    for label, rows_in_view, peak in results:
        lines.append(
            f"| {label} | {rows_in_view:,} | {peak / 1e6:.1f} MB | {peak / rows_in_view:.1f} B | "
            f"{peak / feature_bytes:.1%} |"
        )
    verdict = all(peak <= 3 * 8 * n for _, _, peak in results)
    lines += [
        "",
        f"A view {'allocates only int64 row indices (no feature data)' if verdict else 'ALLOCATES MORE THAN INDICES'}.",
        "",
    ]


def _format(rows: list[tuple]) -> list[str]:
    lines = [
        "| what | ModularML | baseline | baseline time | ratio | target | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for what, mine, baseline_name, baseline, target in rows:
        if target is None:  # absolute target
            verdict = "meets" if mine <= baseline else "MISSES"
            lines.append(
                f"| {what} | {mine * 1e3:.1f} ms | {baseline_name} | {baseline * 1e3:.0f} ms | - | "
                f"< {baseline * 1e3:.0f} ms | {verdict} |"
            )
        else:
            ratio = mine / baseline
            verdict = "meets" if ratio <= target else "MISSES"
            lines.append(
                f"| {what} | {mine * 1e3:.1f} ms | {baseline_name} | {baseline * 1e3:.1f} ms | {ratio:.2f}x | "
                f"<= {target}x | {verdict} |"
            )
    return lines


def main(report: Path) -> None:
    rows: list[tuple] = []
    lines = [
        "## FeatureSet",
        "",
        f"Python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs. Median of 3-7 runs after a warm-up.",
        "",
    ]
    with ExperimentContext(registration_policy="no_register").activate():
        bench_from_pandas(rows)
        folder = Path(tempfile.mkdtemp(prefix=".bench-", dir=report.resolve().parent))
        try:
            bench_from_dict_save_load(rows, folder)
        finally:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
        lines += [*_format(rows), ""]
        bench_view_memory(lines)
    append_section(report, lines)


if __name__ == "__main__":
    run(main, __file__)
