from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import modularml as mml

pytest.importorskip(
    "modularml_numpy", reason="these tests train with the numpy backend plugin (plugins/modularml_numpy)"
)


@pytest.fixture
def numpy_backend():
    """The numpy backend plugin's implementation, seeded."""
    impl = mml.get_backend("numpy")
    impl.seed(0)
    return impl


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """Write an importable module of the user's own (not modularml, not a plugin); returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)
