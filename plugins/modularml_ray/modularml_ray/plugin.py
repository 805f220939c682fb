"""Hook implementations of the Ray plugin (the module its entry point names).

Registration only, by import path: neither Ray nor the executor module is imported until an
executor named ``"ray"`` is looked up.
"""

from __future__ import annotations

from modularml import hookimpl
from modularml.plugins import Registrar


@hookimpl
def register_executors(register: Registrar) -> None:
    register("ray", "modularml_ray.executor:RayExecutor")
