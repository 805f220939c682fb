"""Every test here runs in its own ExperimentContext (``fresh_context`` in tests/core/conftest.py)."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "modularml_numpy", reason="these tests train with the numpy backend plugin (plugins/modularml_numpy)"
)


@pytest.fixture(autouse=True)
def _own_context(fresh_context):
    return fresh_context
