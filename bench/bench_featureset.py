"""Benchmark: building, saving, loading and viewing FeatureSets, against plain pandas/numpy baselines.

Usage: ``python bench/bench_featureset.py REPORT.md`` appends a section to the report.

Measured (median of several runs, each baseline in the same run):

- ``FeatureSet.from_pandas`` with ``group_by`` on 1,000,000 shuffled long-format rows in 5,000
  groups (2 feature columns, a target, ``sort_by`` a time column) against pandas
  ``sort_values`` -> ``groupby`` -> numpy reshape. Target: within 1.5x of the baseline.
- ``FeatureSet.from_dict`` of 100,000 samples x 32 float32 feature columns. Target: under 20 ms.
- ``save`` / ``load`` of FeatureSets of 100,000 and 10,000,000 samples x 32 float32 features
  (17 MB and 1.7 GB files; ``BENCH_FILE_SIZES`` picks the sizes) against ``np.save`` / ``np.load``
  of the same feature data as one (n, 32) array, in paired rounds. Targets: save within 1.5x
  (fsync included), load within 2x. The FeatureSet file also holds the sample UUIDs, checksums
  every entry, and ``save`` fsyncs before its atomic rename; the floor row writes as many bytes
  durably without any serialisation, to show what the disk itself costs.
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


def _paired(ours: Callable[[], object], baseline: Callable[[], object], rounds: int) -> tuple[float, float, float]:
    """Median seconds of each, and the median of the per-round ratios; the two alternate in each round."""
    ours()
    baseline()  # warm up (imports, caches, page cache)
    pairs = []
    for _ in range(rounds):
        start = time.perf_counter()
        ours()
        middle = time.perf_counter()
        baseline()
        pairs.append((middle - start, time.perf_counter() - middle))
    return (
        statistics.median(a for a, _ in pairs),
        statistics.median(b for _, b in pairs),
        statistics.median(a / b for a, b in pairs),
    )


def _durable_write(path: Path, data: memoryview) -> None:
    """The floor of a durable save: the same number of bytes written, fsynced and renamed into place."""
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


#: Sizes of the save/load benchmark (samples of 32 float32 features and a target): ``BENCH_FILE_SIZES``,
#: comma-separated. 100,000 samples make a 17 MB file, 10,000,000 a 1.7 GB one (1.28 GB of features;
#: about 6 GB of memory and 3 GB of disk while it runs, a minute or two).
FILE_SIZES = [int(n) for n in os.environ.get("BENCH_FILE_SIZES", "100000,10000000").split(",") if n]


def bench_from_dict(rows: list[tuple]) -> None:
    rng = np.random.default_rng(0)
    keys = [f"f{i:02d}" for i in range(32)]
    data = {k: rng.random(100_000, dtype=np.float32) for k in keys}
    data["y"] = rng.random(100_000, dtype=np.float32)
    build = _median_seconds(lambda: FeatureSet.from_dict("wide", data, keys, "y"), 7)
    rows.append(("`from_dict`, 100,000 x 32 float32", build, "target", 0.020, None))


def bench_save_load(rows: list[tuple], folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    keys = [f"f{i:02d}" for i in range(32)]
    stacked = rng.random((n, 32), dtype=np.float32)
    data = {k: stacked[:, i].copy() for i, k in enumerate(keys)}
    data["y"] = rng.random(n, dtype=np.float32)
    fs = FeatureSet.from_dict("wide", data, keys, "y")
    del data
    rounds = 9 if n <= 1_000_000 else 3
    target, npy, floor = folder / "wide", folder / "wide.npy", folder / "floor.bin"
    saved = fs.save(target, overwrite=True)
    size_mb = saved.stat().st_size / 1e6
    label = f"{n:,} x 32 ({size_mb:,.0f} MB file)"
    mine, base, ratio = _paired(lambda: fs.save(target, overwrite=True), lambda: np.save(npy, stacked), rounds)
    rows.append((f"`save`, {label}", mine, "`np.save` of the features", base, 1.5, ratio))
    # what stands in the way: writing the file's bytes durably at all (no serialisation, no checksums)
    raw = memoryview(np.zeros(saved.stat().st_size, dtype=np.uint8))
    mine, base, ratio = _paired(lambda: _durable_write(floor, raw), lambda: np.save(npy, stacked), rounds)
    rows.append((f"floor: write + fsync + rename of {size_mb:,.0f} MB", mine, "`np.save`", base, None, ratio))
    floor.unlink()
    raw = None
    real_fsync = os.fsync
    os.fsync = lambda fd: None  # np.save does not fsync: show what the durability costs
    try:
        mine, base, ratio = _paired(lambda: fs.save(target, overwrite=True), lambda: np.save(npy, stacked), rounds)
    finally:
        os.fsync = real_fsync
    rows.append(("`save` with fsync disabled (comparison)", mine, "`np.save`", base, None, ratio))
    loaded = FeatureSet.load(saved)
    assert loaded.collection.table.equals(fs.collection.table)
    loaded = fs = None  # (memory: the 10M FeatureSet is 1.7 GB)
    mine, base, ratio = _paired(lambda: FeatureSet.load(saved), lambda: np.load(npy), rounds)
    rows.append((f"`load`, {label}", mine, "`np.load`", base, 2.0, ratio))
    mine, base, ratio = _paired(lambda: FeatureSet.load(saved, mmap=True), lambda: np.load(npy), rounds)
    rows.append(("`load(mmap=True)`", mine, "`np.load`", base, 2.0, ratio))
    saved.unlink()
    npy.unlink()


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
    for what, mine, baseline_name, baseline, target, *paired in rows:
        if target is None and not paired:  # absolute target
            verdict = "meets" if mine <= baseline else "MISSES"
            lines.append(
                f"| {what} | {mine * 1e3:.1f} ms | {baseline_name} | {baseline * 1e3:.0f} ms | - | "
                f"< {baseline * 1e3:.0f} ms | {verdict} |"
            )
            continue
        ratio = paired[0] if paired else mine / baseline
        verdict = "-" if target is None else ("meets" if ratio <= target else "MISSES")
        goal = "-" if target is None else f"<= {target}x"
        lines.append(
            f"| {what} | {mine * 1e3:.1f} ms | {baseline_name} | {baseline * 1e3:.1f} ms | {ratio:.2f}x | "
            f"{goal} | {verdict} |"
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
        bench_from_dict(rows)
        folder = Path(tempfile.mkdtemp(prefix=".bench-", dir=report.resolve().parent))
        try:
            for n in FILE_SIZES:
                bench_save_load(rows, folder, n)
        finally:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()
        lines += [
            *_format(rows),
            "",
            "Save and load rows are paired rounds (ModularML, then the baseline, in each round; median of the "
            "per-round ratios). `save` includes the fsync before the atomic rename; `np.save` does not sync. "
            "`load` reads every byte into memory and checks it against the XXH3-64 digest in the manifest, "
            "validates the Arrow table and the sample UUIDs' uniqueness; `load(mmap=True)` maps the file instead "
            "of copying it. The file holds 36-byte sample UUIDs besides the features (about 30% more bytes than "
            "the `.npy`). Sizes: `BENCH_FILE_SIZES` (default `100000,10000000`).",
            "",
        ]
        bench_view_memory(lines)
    append_section(report, lines)


if __name__ == "__main__":
    run(main, __file__)
