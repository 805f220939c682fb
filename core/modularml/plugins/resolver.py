"""The one resolver for every class or callable that a file or a configuration names.

Files and configs name classes and callables as strings: a registered name (``"StandardScaler"``)
or an import path (``"package.module:QualName"``). Everything that turns such a string into an
object goes through :func:`resolve`, under these rules:

1. A **registered name** resolves to the entry of that name in the given registry (scalers,
   models, losses, optimizers, samplers, splitters, callbacks, executors).
2. An **import path** of a registered entry (the path a plugin registered, or the path of the
   object it registered) resolves to that entry.
3. Any other import path resolves only to an object **defined** where the path says: the module
   is imported by its own name, each part of the qualified name is looked up in the ``__dict__``
   of the module or class before it (no ``getattr``: no module ``__getattr__`` hooks, no
   descriptors), every part is a class (never a module, never a builtin), and the object's own
   ``__module__`` and ``__qualname__`` equal the path. A class re-exported or imported into a
   module (``modularml.io.container:io.FileIO``, ``some.module:subprocess.Popen``) is refused.
4. Unless packaged code is allowed, the module must belong to an **allowed distribution**: the
   ``modularml`` package, the packages of loaded ModularML plugins, the packages their registered
   components come from, and the frameworks of installed backends (``torch``, ``sklearn``...).
   With ``allow_packaged_code=True`` a user's own modules may be imported.
5. What is found must be of the **expected kind**, checked before anything is called: a class
   must be a subclass of ``base`` (or pass it, when ``base`` is a predicate); where the caller
   gives ``recognized``, an unregistered class from an allowed distribution must also pass it (a
   loss class the backend knows by its name, say). A plain function is accepted only where the
   caller allows functions, and then only when it is registered, or packaged code is allowed.

Every refusal is a :class:`~modularml.errors.SerializationError` that names the file being
loaded (see :func:`loading`), the entry of the file, and the name.

Loaders wrap their work in :func:`loading`, which sets the file and the ``allow_packaged_code``
choice for everything resolved inside (a nested config resolves under its file's rules), and
turns any other failure into a ``SerializationError`` that names the file.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import re
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modularml.errors import (
    NodeCollisionError,
    NodeNotFoundError,
    NotRegisteredError,
    PluginError,
    SerializationError,
)
from modularml.plugins.allowed import allowed_packages

__all__ = ["allowed_packages", "loading", "packaged_code_allowed", "resolve"]

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(
    rf"^(?P<module>{_IDENTIFIER}(?:\.{_IDENTIFIER})*):(?P<qualname>{_IDENTIFIER}(?:\.{_IDENTIFIER})*)$"
)


@dataclass(frozen=True)
class _Rules:
    allow_packaged_code: bool = False
    source: str | None = None
    packaged: tuple[tuple[str, str], ...] = ()  # (module name, source) stored in the file


_rules: contextvars.ContextVar[_Rules] = contextvars.ContextVar(
    "modularml_resolution_rules",
    default=_Rules(),  # noqa: B039 - a frozen dataclass: immutable
)


def packaged_code_allowed() -> bool:
    """Whether the file or config being restored now may import user code (``allow_packaged_code``)."""
    return _rules.get().allow_packaged_code


@contextlib.contextmanager
def loading(
    source: str | Path | None = None,
    *,
    allow_packaged_code: bool = False,
    what: str = "object",
    packaged: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Restore one file or config: resolve names under its rules, and report every failure as its own.

    Inside the block, :func:`resolve` uses ``allow_packaged_code`` (or the allowance of an outer
    ``loading`` block: a file whose loader allows packaged code allows it for its parts) and names
    ``source`` (or the outer block's file) in its errors. When there is a file, any other exception
    (a ``KeyError`` of a malformed config, a framework's ``RuntimeError`` on mismatched weights) is
    raised as a ``SerializationError`` naming it, and a ``SerializationError`` that does not name it
    yet is prefixed with it; errors about the active context (a node collision, a FeatureSet that is
    not registered) pass unchanged. Without a file, exceptions pass unchanged.

    Args:
        source: The file being loaded (``None`` for a config from memory).
        allow_packaged_code: Allow importing classes and functions from any module.
        what: What is rebuilt, for messages (``"scaler"``).
        packaged: The user modules' source the file carries (:mod:`modularml.plugins.packaging`),
            by module name: a name in one of them resolves in that source, run in a namespace of
            its own, and only with ``allow_packaged_code``; without it the refusal names the class,
            its module and the flag. Inherited from an outer block when None.

    Raises:
        SerializationError: For any failure inside the block that concerns the file.
    """
    outer = _rules.get()
    name = str(source) if source is not None else outer.source
    stored = outer.packaged if packaged is None else tuple(sorted(dict(packaged).items()))
    token = _rules.set(_Rules(allow_packaged_code or outer.allow_packaged_code, name, stored))
    try:
        yield
    except SerializationError as exc:
        if name is not None and name not in str(exc):
            raise SerializationError(f"Cannot load {name!r}: {exc}") from exc
        raise
    except (NodeCollisionError, NodeNotFoundError):
        raise  # about the active context, not the file: the caller can act on them as they are
    except Exception as exc:  # malformed content must not escape as a bare built-in error
        if name is None:
            raise
        raise SerializationError(
            f"Cannot load {name!r}: its {what} cannot be rebuilt: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        _rules.reset(token)


def resolve(
    name: object,
    *,
    what: str,
    entry: str | None = None,
    kind: str | None = None,
    backend: str | None = None,
    base: type | tuple[type, ...] | Callable[[type], bool] | None = None,
    recognized: Callable[[Any], bool] | None = None,
    functions: bool = False,
    allow_packaged_code: bool | None = None,
) -> Any:
    """The class (or function) that a file or config names, under the rules of this module.

    Args:
        name: A registered name, or ``"module:QualName"``.
        what: What the object is, for messages (``"scaler class"``).
        entry: Where in the file the name stands (``"config['scaler']"``), for messages.
        kind: The registry that may hold it (``"scalers"``); registered names and their import
            paths are always allowed.
        backend: The backend of a backend-scoped registry (models, losses, optimizers).
        base: The class it must derive from, or a predicate on the class; checked before use.
        recognized: For an unregistered class from an allowed distribution: a further check it
            must pass without ``allow_packaged_code`` (for example, "the backend knows it by name").
        functions: Whether a plain function may be named (it must then be registered, or packaged
            code allowed). Classes are always acceptable kinds.
        allow_packaged_code: Allow any module; ``None`` takes the choice of the enclosing
            :func:`loading` block (``False`` outside one).

    Returns:
        The resolved class or function.

    Raises:
        SerializationError: If the name is malformed, not allowed, not available, or of the wrong kind.
    """
    rules = _rules.get()
    allow = rules.allow_packaged_code if allow_packaged_code is None else bool(allow_packaged_code)

    def refuse(reason: str) -> SerializationError:
        where = f"Cannot load {rules.source!r}: " if rules.source else ""
        if entry:
            return SerializationError(f"{where}{entry} names {name!r:.200} as the {what}, but {reason}")
        return SerializationError(f"{where}{name!r:.200} cannot be used as the {what}: {reason}")

    if not isinstance(name, str) or not name:
        raise refuse("a name is a registered name or 'module:QualName'.")
    registry = _registry(kind)
    if ":" not in name:
        if registry is None:
            raise refuse("it is not of the form 'module:QualName'.")
        try:
            found = registry.entry(name, backend=backend)
        except (NotRegisteredError, ValueError) as exc:
            raise refuse(f"it is not registered: {exc}") from None
        return _check_kind(_load_entry(found, refuse), base, refuse)
    match = _IMPORT_PATH.match(name)
    if match is None or any(part.startswith("__") for part in re.split(r"[.:]", name)):
        raise refuse("it is not a valid import path 'package.module:QualName' (dunder names are refused).")
    module_name, qualname = match["module"], match["qualname"]

    registered = _registered_by_path(registry, name, backend)
    if registered is not None:
        return _check_kind(_load_entry(registered, refuse), base, refuse)
    stored = dict(rules.packaged).get(module_name)
    if stored is not None:
        if not allow:
            where = f"Cannot load {rules.source!r}: " if rules.source else ""
            raise SerializationError(
                f"{where}{entry + ' names' if entry else 'It names'} {name!r} (the {what}): {qualname} is defined in "
                f"module {module_name!r}, whose source is packaged in the file. Loading it runs that code, which "
                "happens only with allow_packaged_code=True; pass it if you trust the file "
                "(mml.inspect_packaged_code(path) shows the code)."
            )
        from modularml.plugins.packaging import packaged_module

        module = packaged_module(module_name, stored)
        obj = _lookup(module, module_name, qualname, functions=functions, refuse=refuse)
        return obj if isinstance(obj, types.FunctionType) else _check_kind(obj, base, refuse)
    if not allow and module_name.split(".")[0] not in allowed_packages():
        where = f"Cannot load {rules.source!r}: " if rules.source else ""
        raise SerializationError(
            f"{where}Refusing to import {name!r} (the {what}{f', named by {entry}' if entry else ''}): only "
            "modularml, installed ModularML plugins and the frameworks of installed backends are imported when a "
            "file or configuration is restored. Register it through a plugin, install the plugin that provides it, "
            "or, if you trust the file, pass allow_packaged_code=True."
        )
    obj = _defined_object(module_name, qualname, functions=functions, refuse=refuse)
    is_registered = registry is not None and registry.name_of(obj, backend=backend) is not None
    if isinstance(obj, types.FunctionType):
        if not (is_registered or allow):
            raise refuse(
                "a function named in a file runs only when it is registered through a plugin, or with "
                "allow_packaged_code=True (if you trust the file)."
            )
        return obj
    obj = _check_kind(obj, base, refuse)
    if recognized is not None and not (is_registered or allow or recognized(obj)):
        raise refuse(
            "it is neither registered nor recognized by its backend. Register it through a plugin, or, if you "
            "trust the file, pass allow_packaged_code=True."
        )
    return obj


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _registry(kind: str | None) -> Any:
    if kind is None:
        return None
    from modularml.plugins.manager import get_plugin_manager

    return get_plugin_manager().registry(kind)


def _load_entry(found: Any, refuse: Callable[[str], SerializationError]) -> Any:
    try:
        return found.load()
    except PluginError as exc:
        raise refuse(str(exc)) from None


def _registered_by_path(registry: Any, path: str, backend: str | None) -> Any:
    """The entry registered as the string ``path``, or whose object's import path is ``path``."""
    if registry is None:
        return None
    for found in registry.entries():
        if backend is not None and found.backend not in (None, backend):
            continue
        if isinstance(found.obj, str):
            if found.obj == path:
                return found
        elif _own_path(found.obj) == path:
            return found
    return None


def _own_path(obj: Any) -> str | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}:{qualname}" if isinstance(module, str) and isinstance(qualname, str) else None


def _defined_object(module_name: str, qualname: str, *, functions: bool, refuse: Callable[[str], Any]) -> Any:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise refuse(f"its module cannot be imported here: {exc}. Install the distribution that provides it.") from None
    except Exception as exc:  # a module that fails while importing: report it, do not crash the load
        raise refuse(f"importing its module failed: {type(exc).__name__}: {exc}.") from None
    return _lookup(module, module_name, qualname, functions=functions, refuse=refuse)


def _lookup(
    module: types.ModuleType, module_name: str, qualname: str, *, functions: bool, refuse: Callable[[str], Any]
) -> Any:
    """``qualname`` as ``module`` defines it: each part from the ``__dict__`` before it, classes all the way."""
    obj: Any = module
    parts = qualname.split(".")
    for index, part in enumerate(parts):
        namespace = vars(obj) if isinstance(obj, (types.ModuleType, type)) else {}
        if part not in namespace:
            raise refuse(f"{'.'.join([module_name, *parts[: index + 1]])} is not defined there.")
        obj = namespace[part]
        last = index == len(parts) - 1
        if isinstance(obj, type):
            continue
        if last and functions and isinstance(obj, types.FunctionType):
            continue
        kind = "a module" if isinstance(obj, types.ModuleType) else f"a {type(obj).__name__}"
        allowed = "a class or a function" if functions else "a class"
        raise refuse(f"{'.'.join([module_name, *parts[: index + 1]])} is {kind}, not {allowed}.")
    if getattr(obj, "__module__", None) != module_name or getattr(obj, "__qualname__", None) != qualname:
        raise refuse(
            f"it is not defined there (it is {_own_path(obj)}); a name resolves only to what its own module defines."
        )
    return obj


def _check_kind(
    obj: Any,
    base: type | tuple[type, ...] | Callable[[type], bool] | None,
    refuse: Callable[[str], SerializationError],
) -> Any:
    if base is None:
        return obj
    if isinstance(base, (type, tuple)):
        if not (isinstance(obj, type) and issubclass(obj, base)):
            expected = " or ".join(
                f"{b.__module__}.{b.__qualname__}" for b in (base if isinstance(base, tuple) else (base,))
            )
            raise refuse(f"it is {_describe(obj)}, not a subclass of {expected}.")
        return obj
    if not (isinstance(obj, type) and base(obj)):
        raise refuse(f"it is {_describe(obj)}, which fails the check {getattr(base, '__name__', repr(base))}.")
    return obj


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    return f"a {type(obj).__name__}"
