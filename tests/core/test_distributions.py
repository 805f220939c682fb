"""The project's distributions move in lockstep, on a version above the unrelated ``modularml`` 1.0.0 of the index.

An older single-package project called ``modularml`` has released 0.1.0 to 1.0.0 on the package
index; a wheelhouse of this project must win over it when a user installs ``modularml[torch]``,
so every distribution is 2.0.0 or later and they all carry the same version.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

import modularml

ROOT = Path(__file__).resolve().parents[2]
#: Folder -> (distribution, package): every distribution of the repository.
DISTRIBUTIONS = {
    "core": ("modularml", "modularml"),
    "modularml_torch": ("modularml-torch", "modularml_torch"),
    "modularml_tf": ("modularml-tf", "modularml_tf"),
    "modularml_sklearn": ("modularml-sklearn", "modularml_sklearn"),
    "plugins/modularml_example": ("modularml-example", "modularml_example"),
    "plugins/modularml_numpy": ("modularml-numpy", "modularml_numpy"),
    "plugins/modularml_mlflow": ("modularml-mlflow", "modularml_mlflow"),
    "plugins/modularml_tensorboard": ("modularml-tensorboard", "modularml_tensorboard"),
    "plugins/modularml_ray": ("modularml-ray", "modularml_ray"),
}
#: The newest release of the unrelated project of the same name on the package index.
INDEX_RELEASE = (1, 0, 0)


def _project(folder: str) -> dict:
    return tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]


def _package_version(folder: str, package: str) -> str:
    """``__version__`` as written in the package (read, not imported: the backends may not be installed)."""
    init = ROOT / folder / package / ("_version.py" if package == "modularml" else "__init__.py")
    found = re.search(r'^__version__ = "([^"]+)"$', init.read_text(), flags=re.M)
    assert found is not None, f"{init} declares no __version__"
    return found.group(1)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_the_version_is_above_the_unrelated_index_release() -> None:
    assert _release(modularml.__version__) > INDEX_RELEASE
    assert _release(modularml.__version__)[0] == 2  # the plugin-based major line


def test_every_distribution_declares_the_core_version() -> None:
    found = {folder: (_project(folder)["name"], _project(folder)["version"]) for folder in DISTRIBUTIONS}
    assert found == {folder: (dist, modularml.__version__) for folder, (dist, _) in DISTRIBUTIONS.items()}
    for folder, (_, package) in DISTRIBUTIONS.items():
        assert _package_version(folder, package) == modularml.__version__, folder


def test_every_pin_between_distributions_names_the_same_version() -> None:
    pins = []
    for folder in DISTRIBUTIONS:
        project = _project(folder)
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        pins += [(folder, r) for r in requirements if re.match(r"modularml\b", r)]
    assert pins, "no distribution depends on another"
    for folder, requirement in pins:
        found = re.fullmatch(r"modularml(-[a-z]+)?(\[[a-z,]+\])?(==|>=)([0-9.]+)", requirement)
        assert found is not None, f"{folder}: unexpected requirement {requirement!r}"
        assert found.group(4) == modularml.__version__, f"{folder}: {requirement!r}"
        if found.group(1) is not None:  # a backend named by the core's extras: exactly this release
            assert found.group(3) == "==", f"{folder}: {requirement!r}"


def test_the_core_extras_name_each_backend_distribution() -> None:
    extras = _project("core")["optional-dependencies"]
    version = modularml.__version__
    assert extras["torch"] == [f"modularml-torch=={version}"]
    assert extras["tf"] == [f"modularml-tf[cpu]=={version}"]
    assert extras["sklearn"] == [f"modularml-sklearn=={version}"]
    assert sorted(extras["all"]) == sorted(extras["torch"] + extras["tf"] + extras["sklearn"])


@pytest.mark.parametrize(("distribution", "package"), DISTRIBUTIONS.values())
def test_installed_metadata_matches_the_source(distribution: str, package: str) -> None:
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed in this session")
    assert installed == modularml.__version__


@pytest.mark.parametrize("folder", DISTRIBUTIONS)
def test_every_distribution_ships_py_typed(folder: str) -> None:
    package = DISTRIBUTIONS[folder][1]
    marker = ROOT / folder / package / "py.typed"
    assert marker.is_file(), f"{folder} does not ship {package}/py.typed"
    # hatchling packs every file of the package: nothing in pyproject.toml leaves it out.
    wheel = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == [package]
    assert "exclude" not in wheel
