"""Run the Python blocks of a Markdown file, in order, and check what they print.

Every ```` ```python ```` block of a page runs, top to bottom, in one namespace (a page reads as
one script), in a fresh process whose working directory is a scratch folder. What a block
prints (stdout and stderr together, as a reader would see it in a terminal whose output is not
a terminal: no bars, plain lines) must equal the ```` ```text ```` block right after it; a block
that prints nothing needs none. Durations (``1.52s``, ``1m 05s``) are not compared, and numbers
are compared to 3 significant digits relative (a last digit may differ between machines).

Run ``python tests/integration/markdown_blocks.py --update FILE...`` to rewrite the ``text``
blocks from a fresh run (then read the diff).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import math
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.S | re.M)
DURATION = re.compile(r"\b(\d+h \d\dm|\d+m \d\ds|\d+(\.\d+)?s)\b")
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+e[-+]?\d+")


@dataclass
class Block:
    """One Python block of a page, and the expected output after it (None when there is none)."""

    code: str
    line: int
    expected: str | None
    expected_span: tuple[int, int] | None


def blocks(text: str) -> list[Block]:
    """The Python blocks of a Markdown page, each with the ``text`` block that follows it directly."""
    found = list(FENCE.finditer(text))
    out = []
    for i, match in enumerate(found):
        if match.group(1) != "python":
            continue
        following = found[i + 1] if i + 1 < len(found) else None
        expected = None
        span = None
        if following is not None and following.group(1) == "text" and not text[match.end() : following.start()].strip():
            expected, span = following.group(2), (following.start(2), following.end(2))
        out.append(Block(match.group(2), text.count("\n", 0, match.start()) + 2, expected, span))
    return out


def normalise(output: str) -> str:
    """Output with durations replaced and trailing spaces dropped, for comparison."""
    lines = [DURATION.sub("<t>", line).rstrip() for line in output.strip("\n").splitlines()]
    return "\n".join(lines)


def same_output(actual: str, expected: str) -> bool:
    """Whether two outputs agree: the same text once numbers are masked, numbers within 1e-3 relative."""
    a, e = normalise(actual), normalise(expected)
    if NUMBER.sub("<n>", a) != NUMBER.sub("<n>", e):
        return False
    return all(
        math.isclose(float(x), float(y), rel_tol=1e-3, abs_tol=1e-9)
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(e), strict=True)
    )


def run_page(path: Path) -> list[dict]:
    """Run every Python block of ``path`` in order; what each printed, and the error that stopped the page."""
    namespace: dict = {"__name__": "__main__"}
    results = []

    def run_all() -> None:
        for block in blocks(path.read_text()):
            buffer = io.StringIO()
            error = None
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                try:
                    exec(compile(block.code, f"{path}:{block.line}", "exec"), namespace)
                except BaseException:
                    error = traceback.format_exc()
            results.append({"line": block.line, "output": buffer.getvalue(), "error": error})
            if error is not None:
                return

    contextvars.copy_context().run(run_all)
    return results


def update(path: Path) -> None:
    """Rewrite the expected-output blocks of ``path`` from a fresh run (adds one where a block prints)."""
    text = path.read_text()
    results = run_page(path)
    pieces = []
    position = 0
    for block, result in zip(blocks(text), results, strict=False):
        if result["error"] is not None:
            raise SystemExit(f"{path}:{block.line} failed:\n{result['error']}")
        output = result["output"]
        if block.expected_span is not None:
            start, end = block.expected_span
            pieces += [text[position:start], output if output.endswith("\n") else output + "\n"]
            position = end
        elif output:
            marker = text.index(block.code) + len(block.code)
            marker = text.index("```", marker) + 3
            pieces += [
                text[position:marker],
                "\n\n```text\n" + output + ("" if output.endswith("\n") else "\n") + "```",
            ]
            position = marker
    pieces.append(text[position:])
    path.write_text("".join(pieces))


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--update":
        for name in argv[1:]:
            update(Path(name).resolve())
        return 0
    (name,) = argv
    print(json.dumps(run_page(Path(name).resolve())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
