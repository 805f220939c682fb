"""What every benchmark script shares: appending its section to the report, and its command line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def append_section(report: Path, lines: list[str]) -> None:
    """Append ``lines`` (a Markdown section) to ``report`` and print them."""
    text = "\n".join(lines)
    with report.open("a") as out:
        out.write(text + "\n")
    print(text)


def run(main: Callable[[Path], None], script: str) -> None:
    """``main(REPORT.md)`` from ``python bench/<script> REPORT.md``; a usage message otherwise."""
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: python bench/{Path(script).name} REPORT.md")
    main(Path(sys.argv[1]))
