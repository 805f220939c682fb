"""The core's own components, registered through the same hooks as any plugin's."""

from __future__ import annotations

from modularml.plugins.hookspecs import hookimpl
from modularml.plugins.registry import Registrar


@hookimpl
def register_executors(register: Registrar) -> None:
    from modularml.executors import LocalExecutor

    register("local", LocalExecutor)


@hookimpl
def register_splitters(register: Registrar) -> None:
    from modularml.splitters import ConditionSplitter, RandomSplitter

    register("RandomSplitter", RandomSplitter)
    register("ConditionSplitter", ConditionSplitter)
