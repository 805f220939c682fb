"""Packaged user code: the source of your own modules, stored in a file next to the objects that need it.

A model, loss, scaler or callback class defined in one of your own modules (a ``.py`` file that
belongs to no installed distribution) is named in a file by its import path, ``"mymodule:MyModel"``.
So that the file can be loaded where ``mymodule`` is not importable, :func:`package_code` stores
the module's source in the file. Loading never runs it unless the caller passes
``allow_packaged_code=True``: without it the resolver refuses, naming the class, its module and the
flag, before anything runs; with it the stored source is executed in a module object of its own
(never put into ``sys.modules``, so it shadows nothing) and the class is looked up there under the
resolver's usual rules. :func:`inspect_packaged_code` shows what a file would run.

A class defined in ``__main__`` (a script, a notebook cell) cannot be packaged: its "module" is
the running program. Saving refuses and says to move it into a module.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import re
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from modularml.errors import SerializationError

__all__ = ["PACKAGED_CODE_KEY", "inspect_packaged_code", "package_code", "packaged_module"]

#: Where a file's state keeps its packaged code: ``{module name: source}``.
PACKAGED_CODE_KEY = "packaged_code"

_PATH = re.compile(r"^(?P<module>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*):(?P<qualname>[A-Za-z_][\w.]*)$")
#: Modules executed from packaged source, by (name, sha256 of the source).
_EXECUTED: dict[tuple[str, str], types.ModuleType] = {}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size < 64:
        yield from (str(v) for v in value.reshape(-1))


@functools.lru_cache(maxsize=1)
def _installed_top_levels() -> frozenset[str]:
    """Top-level names of installed distributions (read once: scanning them takes a while)."""
    return frozenset(importlib.metadata.packages_distributions())


def _source_of(module_name: str) -> str | None:
    """The source of a user module: the loaded module's file, or the packaged source it was run from."""
    module = sys.modules.get(module_name)
    if module is not None:
        try:
            return inspect.getsource(module)
        except (OSError, TypeError):
            pass
    for (name, _), executed in _EXECUTED.items():
        if name == module_name:
            return executed.__dict__.get("__mml_source__")
    return None


def _defines(module_name: str, qualname: str) -> bool:
    """Whether ``module_name`` (loaded, or run from packaged source) defines a class or function ``qualname``."""
    candidates = [sys.modules.get(module_name)]
    candidates += [m for (name, _), m in _EXECUTED.items() if name == module_name]
    for module in candidates:
        obj: Any = module
        for part in qualname.split("."):
            obj = vars(obj).get(part) if isinstance(obj, (types.ModuleType, type)) else None
        if isinstance(obj, (type, types.FunctionType)) and getattr(obj, "__module__", None) == module_name:
            return True
    return False


def package_code(tree: Any, *, what: str) -> dict[str, str]:
    """The source of every user module whose classes or functions ``tree`` names, by module name.

    Every ``"module:QualName"`` string of ``tree`` (a config or state) whose module belongs to
    no installed distribution and to none of the packages files may import anyway (modularml,
    plugins, backend frameworks) and defines ``QualName`` is packaged.

    Args:
        tree: The config or state being saved.
        what: What is being saved, for messages (``"experiment 'exp'"``).

    Raises:
        SerializationError: If a name points into ``__main__``, or a module's source cannot be read.
    """
    from modularml.plugins.allowed import allowed_packages

    skip = allowed_packages() | set(sys.stdlib_module_names)
    out: dict[str, str] = {}
    for text in set(_strings(tree)):
        match = _PATH.match(text)
        if match is None:
            continue
        module_name, qualname = match["module"], match["qualname"]
        if module_name == "__main__":
            raise SerializationError(
                f"Cannot save {what}: it names {text!r}, defined in __main__ (your script or notebook), which cannot "
                "be stored with its source. Move the class into a module (a .py file next to your script) and import "
                "it from there."
            )
        top = module_name.split(".")[0]
        if module_name in out or top in skip or not _defines(module_name, qualname):
            continue
        if top in _installed_top_levels():  # an installed distribution: loading imports it (with the flag)
            continue
        source = _source_of(module_name)
        if source is None:
            raise SerializationError(
                f"Cannot save {what}: it names {text!r}, but the source of module {module_name!r} cannot be read, "
                "so it cannot be stored with the file. Define the class in a module with a .py file."
            )
        out[module_name] = source
    return out


def packaged_module(module_name: str, source: str) -> types.ModuleType:
    """Run packaged ``source`` as module ``module_name`` in a namespace of its own (once per source).

    The module is not put into ``sys.modules``. Only the resolver calls this, and only when the
    caller allowed packaged code.

    Raises:
        SerializationError: If the source fails to run (the error names the module).
    """
    digest = hashlib.sha256(source.encode()).hexdigest()
    key = (module_name, digest)
    if key in _EXECUTED:
        return _EXECUTED[key]
    module = types.ModuleType(module_name)
    module.__dict__["__mml_source__"] = source
    module.__file__ = f"<packaged {module_name} {digest[:12]}>"
    try:
        code = compile(source, module.__file__, "exec")
        exec(code, module.__dict__)  # packaged code runs only with allow_packaged_code=True
    except Exception as exc:
        raise SerializationError(
            f"The packaged source of module {module_name!r} failed to run: {type(exc).__name__}: {exc}"
        ) from exc
    _EXECUTED[key] = module
    return module


def executed_module(module_name: str) -> types.ModuleType | None:
    """The most recent module run from packaged source under ``module_name`` (for naming its classes again)."""
    found = [m for (name, _), m in _EXECUTED.items() if name == module_name]
    return found[-1] if found else None


def inspect_packaged_code(filepath: str | Path) -> dict[str, str]:
    """The user code a ModularML file carries, by module name: what loading it with ``allow_packaged_code=True`` runs.

    Nothing is executed. A file without packaged code gives ``{}``.

    Example:
        >>> for module, source in mml.inspect_packaged_code("run.exp.mml").items():
        ...     print(f"# --- {module}\\n{source}")

    Raises:
        SerializationError: If the file is damaged or not a ModularML file.
    """
    from modularml.io import read_container

    container = read_container(filepath)
    packaged = container.state.get(PACKAGED_CODE_KEY) or {}
    if not isinstance(packaged, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in packaged.items()
    ):
        raise SerializationError(
            f"Cannot read {str(container.path)!r}: its packaged code is not module -> source text."
        )
    return dict(packaged)
