from __future__ import annotations

import pytest

pytest.importorskip(
    "modularml_numpy", reason="these tests train with the numpy backend plugin (plugins/modularml_numpy)"
)
