"""Installing by name from a wheelhouse, with the package index reachable, gets this project's 2.0.0.

The package index holds an unrelated single-package ``modularml`` (up to 1.0.0). A user who built
this project's wheels and runs ``pip install --find-links wheels "modularml[torch]"`` (no
``--no-index``) must get this project's core and PyTorch backend. pip's resolver answers that
without installing anything (``--dry-run --report``); the ``wheels`` nox session installs for real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import modularml

ROOT = Path(__file__).resolve().parents[2]


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=600
    )


@pytest.mark.slow
def test_modularml_torch_by_name_resolves_to_the_wheelhouse_not_the_index(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), "./core", "./modularml_torch", cwd=ROOT)
    assert built.returncode == 0, built.stderr
    assert sorted(p.name for p in wheels.glob("*.whl")) == [
        f"modularml-{modularml.__version__}-py3-none-any.whl",
        f"modularml_torch-{modularml.__version__}-py3-none-any.whl",
    ]
    for wheel, package in (
        (f"modularml-{modularml.__version__}", "modularml"),
        (f"modularml_torch-{modularml.__version__}", "modularml_torch"),
    ):
        with zipfile.ZipFile(wheels / f"{wheel}-py3-none-any.whl") as archive:
            assert f"{package}/py.typed" in archive.namelist()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch==2.13.0\n")  # the release on this project's machines; resolving it downloads nothing
    report = tmp_path / "report.json"
    resolved = _pip(
        "install",
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        str(report),
        "--constraint",
        str(constraints),
        "--find-links",
        str(wheels),
        "modularml[torch]",
        cwd=tmp_path,
    )
    assert resolved.returncode == 0, resolved.stderr
    picked = {item["metadata"]["name"].lower(): item for item in json.loads(report.read_text())["install"]}
    for name in ("modularml", "modularml-torch"):
        assert picked[name]["metadata"]["version"] == modularml.__version__ == "2.0.0"
        assert picked[name]["download_info"]["url"].startswith(wheels.as_uri()), picked[name]["download_info"]
    assert "torch" in picked
    assert "matplotlib" not in picked  # what the index's modularml 1.0.0 would have needed
