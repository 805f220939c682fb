"""Every Python block of the README and of the documentation site runs, and prints what the page says.

See ``markdown_blocks.py``: a page's blocks run in order in a fresh process (seeded by the pages
themselves, small data); what a block prints must match the ``text`` block after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from markdown_blocks import blocks, same_output  # noqa: E402

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES_WITH_CODE = [p for p in PAGES if blocks(p.read_text())]


def test_the_readme_and_the_tutorials_have_code_to_run() -> None:
    names = {str(p.relative_to(ROOT)) for p in PAGES_WITH_CODE}
    assert "README.md" in names
    assert any(name.startswith("docs/tutorials/") for name in names), names


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_runs_and_prints_what_the_page_shows(page: Path, tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "markdown_blocks.py"), str(page)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # pages that write files write them here
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    results = json.loads(ran.stdout)
    page_blocks = blocks(page.read_text())
    for block, result in zip(page_blocks, results, strict=False):
        where = f"{page.relative_to(ROOT)}:{block.line}"
        assert result["error"] is None, f"{where} raised:\n{result['error']}"
        if block.expected is None:
            assert result["output"] == "", f"{where} prints, but the page shows no output after it:\n{result['output']}"
        else:
            assert same_output(result["output"], block.expected), (
                f"{where} printed\n{result['output']}\nbut the page shows\n{block.expected}"
            )
    assert len(results) == len(page_blocks)


def test_outputs_are_compared_to_three_digits_and_times_are_not() -> None:
    assert same_output("loss 0.012345  1.52s\n", "loss 0.01234  0.03s")
    assert same_output("took 1m 05s", "took 12.0s")
    assert not same_output("loss 0.0125", "loss 0.0124")
    assert not same_output("epoch 3/10", "epoch 4/10")
    assert not same_output("train: 12/100 epochs", "train: 12/100 epochs, stopped early")
