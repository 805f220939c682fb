"""Hook implementations of the example plugin (the module its entry point names)."""

from __future__ import annotations

from modularml import hookimpl
from modularml.plugins import Registrar


@hookimpl
def register_scalers(register: Registrar) -> None:
    from modularml_example.scalers import Log1pScaler

    register("Log1pScaler", Log1pScaler)
