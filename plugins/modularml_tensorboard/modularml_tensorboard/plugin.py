"""Hook implementations of the TensorBoard plugin (the module its entry point names)."""

from __future__ import annotations

from modularml import hookimpl
from modularml.plugins import Registrar


@hookimpl
def register_callbacks(register: Registrar) -> None:
    register("TensorBoardLogger", "modularml_tensorboard.logger:TensorBoardLogger")
