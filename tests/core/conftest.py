from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from modularml.plugins import PluginManager, hookimpl, use_plugin_manager

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


@pytest.fixture
def register_test_scalers() -> Callable[..., None]:
    """Register scaler classes defined in a test through a plugin, as a real package would.

    Only classes from registered (or modularml's own) packages are rebuilt from saved files.
    """
    fresh = PluginManager()
    count = 0

    def register(*classes: type) -> None:
        nonlocal count
        count += 1

        def register_scalers(register):
            for cls in classes:
                register(cls.__name__, cls)

        plugin = type("TestScalers", (), {"register_scalers": staticmethod(hookimpl(register_scalers))})()
        fresh.register(plugin, name=f"test-scalers-{count}")

    with use_plugin_manager(fresh):
        yield register
