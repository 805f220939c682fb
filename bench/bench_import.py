"""Benchmark: how long ``import modularml`` takes (core only: no framework is imported).

Usage: ``python bench/bench_import.py REPORT.md`` appends a section to the report.
Target: under 0.3 s (median of fresh interpreters).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from _report import append_section

RUNS = 7
TARGET_S = 0.3


def _time(statement: str) -> float:
    script = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def main(report: Path) -> None:
    for _ in range(2):  # warm the file-system cache
        _time("import modularml")
    core = statistics.median(_time("import modularml") for _ in range(RUNS))
    numpy = statistics.median(_time("import numpy") for _ in range(RUNS))
    lookup = statistics.median(
        _time("import modularml as mml; mml.get_plugin_manager().plugins(); mml.Backend('torch')") for _ in range(RUNS)
    )
    verdict = "meets" if core < TARGET_S else "MISSES"
    lines = [
        "## import modularml",
        "",
        f"Median of {RUNS} fresh interpreters ({sys.version.split()[0]}).",
        "",
        "| what | seconds |",
        "|---|---|",
        f"| `import numpy` (baseline) | {numpy:.3f} |",
        f"| `import modularml` | {core:.3f} |",
        f"| import + discover all plugins + resolve a backend | {lookup:.3f} |",
        "",
        f"`import modularml` {verdict} the {TARGET_S} s target.",
        "",
    ]
    append_section(report, lines)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/report.md"))
