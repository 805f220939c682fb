"""The core knows no ML framework (DESIGN.md section 1)."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

FRAMEWORKS = ("torch", "tensorflow", "keras", "sklearn", "ray")
CORE = Path(__file__).resolve().parents[2] / "core"


def _framework_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        found += [f"{path.relative_to(CORE)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in FRAMEWORKS]
    return found


def test_no_file_under_core_imports_a_framework() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    offending = [hit for path in files for hit in _framework_imports(path)]
    assert not offending, "the core must reach frameworks only through plugins:\n" + "\n".join(offending)


def test_the_checker_sees_every_import_form(tmp_path: Path) -> None:
    sample = CORE / "_purity_probe_example.py"
    source = (
        "import torch.nn\nfrom sklearn import svm\nimport importlib\nimportlib.import_module('keras')\nimport numpy\n"
    )
    try:
        sample.write_text(source)
        hits = _framework_imports(sample)
    finally:
        sample.unlink()
    assert [h.split(": ")[1] for h in hits] == ["torch.nn", "sklearn", "keras"]


def test_import_modularml_imports_no_framework() -> None:
    script = (
        "import sys, modularml as mml\n"
        "mml.Backend('torch'); mml.Backend('tf'); mml.Backend('sklearn')\n"
        "mml.get_plugin_manager().plugins()\n"
        f"print(','.join(m for m in {FRAMEWORKS + ('pandas',)!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.skipif(os.environ.get("MODULARML_CORE_ONLY") != "1", reason="only in the core-only nox session")
def test_core_session_has_no_framework_installed() -> None:
    importable = [name for name in ("torch", "tensorflow", "sklearn") if importlib.util.find_spec(name) is not None]
    assert importable == []
