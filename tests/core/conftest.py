from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from modularml.plugins import PluginManager, use_plugin_manager

FakeDistribution = Callable[..., Path]


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDistribution:
    """Write an installed-looking distribution (dist-info + modules) and put it on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created_modules: list[str] = []

    def make(name: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0") -> Path:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[modularml]\n{lines}\n")
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            created_modules.append(module)
        importlib.invalidate_caches()
        return site

    yield make
    for module in created_modules:
        sys.modules.pop(module, None)


@pytest.fixture
def manager() -> PluginManager:
    """A fresh plugin manager (entry points discovered on first use), active for the test."""
    fresh = PluginManager()
    with use_plugin_manager(fresh):
        yield fresh
