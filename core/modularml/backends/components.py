"""Finding backend components (losses, optimizers) by name, by object and by import path.

Shared by :class:`~modularml.Loss`, :class:`~modularml.Optimizer`, :class:`~modularml.BaseModel`
and by backends implementing :class:`~modularml.backends.TrainableBackendProtocol`, so that every
backend matches names the same way. Names in files resolve through :mod:`modularml.plugins.resolver`.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from modularml.errors import InvalidArgumentError, InvalidTypeError, NotRegisteredError

__all__ = [
    "component_key",
    "construct_optimizer",
    "find_component",
    "import_path",
    "infer_backend",
    "registered_components",
]


def component_key(name: str, strip_suffix: str | None = None) -> str:
    """The form names are compared in: lower case, no underscores, no trailing ``strip_suffix``.

    ``component_key("MSELoss", "loss") == component_key("mse_loss", "loss") == "mse"``.
    """
    key = name.lower().replace("_", "")
    if strip_suffix and key.endswith(strip_suffix) and len(key) > len(strip_suffix):
        key = key[: -len(strip_suffix)]
    return key


def construct_optimizer(
    spec: Any,
    kwargs: Mapping[str, Any],
    parameters: Sequence[Any] | None,
    *,
    backend: str,
    errors: tuple[type[Exception], ...] = (TypeError, ValueError),
) -> Any:
    """``spec(parameters, **kwargs)``: the optimizer construction shared by backends whose optimizers
    take their parameters up front (``torch.optim`` style), with the same checks and messages.

    Args:
        spec: An optimizer class or a factory.
        kwargs: Constructor keyword arguments.
        parameters: The parameters it updates (at least one).
        backend: The backend's name, for messages.
        errors: Exceptions of the constructor that mean "these arguments do not fit".

    Raises:
        InvalidTypeError: If ``spec`` is not callable.
        InvalidArgumentError: If there are no parameters, or ``kwargs`` do not fit.
    """
    if not callable(spec):
        raise InvalidTypeError(f"A {backend} optimizer is a class or a factory; got {spec!r}.")
    params = list(parameters) if parameters is not None else []
    if not params:
        raise InvalidArgumentError(
            f"{backend} optimizers are built over the parameters they update; pass parameters= (for a model: "
            "backend.model_parameters(model)). Got none."
        )
    try:
        return spec(params, **dict(kwargs))
    except errors as exc:
        name = getattr(spec, "__name__", repr(spec))
        raise InvalidArgumentError(f"Cannot construct the optimizer {name} with {dict(kwargs)}: {exc}") from exc


def registered_components(kind: str, backend: str) -> dict[str, Any]:
    """Name -> object of the entries that plugins registered for ``backend`` in registry ``kind``.

    Objects registered as ``"module:attribute"`` paths are returned as those strings; load them
    with :func:`modularml.plugins.registry.load_object` (:func:`find_component` does).
    """
    from modularml.plugins import get_plugin_manager

    registry = get_plugin_manager().registry(kind)
    return {entry.name: entry.obj for entry in registry.entries() if entry.backend == backend}


def find_component(
    name: str,
    *sources: Mapping[str, Any],
    what: str,
    backend: str,
    strip_suffix: str | None = None,
) -> Any:
    """Look ``name`` up in ``sources``, in order, exactly first and then by :func:`component_key`.

    Args:
        name: The name asked for (``"mse"``, ``"MSELoss"``, ``"Adam"``).
        *sources: Name -> object mappings in priority order (the plugin registry first, then the
            framework's own classes).
        what: What is looked for, for the error message (``"loss"``).
        backend: The backend looked in, for the error message.
        strip_suffix: A suffix ignored when comparing (``"loss"``).

    Returns:
        The object found; an ``"module:attribute"`` string is imported first.

    Raises:
        NotRegisteredError: If no source has the name; the message lists every available name.
        InvalidArgumentError: If one source has several names that match equally well.
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(f"A {what} name is a non-empty string; got {name!r}.")
    key = component_key(name, strip_suffix)
    for source in sources:
        if name in source:
            return _load(source[name])
        matches = [n for n in source if component_key(n, strip_suffix) == key]
        if len(matches) > 1:
            same_case = [n for n in matches if n.lower() == name.lower()]
            matches = same_case if len(same_case) == 1 else matches
        if len(matches) == 1:
            return _load(source[matches[0]])
        if matches:
            raise InvalidArgumentError(
                f"The {what} name {name!r} matches several names of backend {backend!r}: {sorted(matches)}. "
                "Use one of these exact names."
            )
    available = sorted({n for source in sources for n in source}, key=str.lower)
    by_key = {component_key(n, strip_suffix): n for n in available}
    close = [by_key[k] for k in difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)]
    hint = f" Close matches: {close}." if close else ""
    raise NotRegisteredError(
        f"No {what} named {name!r} for backend {backend!r}.{hint} Available: {available or 'none'}. Names match "
        f"ignoring case and underscores{f' and a trailing {strip_suffix!r}' if strip_suffix else ''}; "
        f"a {what} class or callable can be passed directly instead."
    )


def _load(obj: Any) -> Any:
    if isinstance(obj, str):
        from modularml.plugins.registry import load_object

        return load_object(obj)
    return obj


def infer_backend(obj: Any, kind: str) -> str | None:
    """The canonical name of the installed backend that ``obj`` (a class or callable) belongs to.

    Asks, in order: which backend registered ``obj`` in registry ``kind``; whose framework module
    (``"torch"``) ``obj`` comes from; whose plugin package (``"modularml_numpy"``) defines it; which
    one backend registered components of ``kind`` from ``obj``'s top-level package (``"keras"``,
    whose losses the tensorflow backend registers). Nothing is imported.

    Returns:
        The backend name, or ``None`` when no installed backend claims ``obj``.
    """
    from modularml.plugins import get_plugin_manager

    manager = get_plugin_manager()
    path = import_path(obj)
    for entry in manager.registry(kind).entries():
        if entry.backend is not None and (entry.obj is obj or (path is not None and entry.obj == path)):
            return entry.backend
    module = getattr(obj, "__module__", None) or ""
    top = module.split(".")[0]
    if not top:
        return None
    backends = manager.backends()
    for name, info in backends.items():
        if info.framework_module and top == info.framework_module.split(".")[0]:
            return name
    plugin_packages = {r.name: r.module.split(":")[0].split(".")[0] for r in manager.plugins() if r.module}
    for name, info in backends.items():
        if plugin_packages.get(info.plugin) == top and top != "modularml":
            return name
    # The package one backend alone registered components of this kind from ("keras" for tensorflow).
    owners = {
        entry.backend
        for entry in manager.registry(kind).entries()
        if entry.backend is not None and _top_package(entry.obj) == top
    }
    if len(owners) == 1 and top != "modularml":
        return owners.pop()
    return None


def _top_package(obj: Any) -> str:
    """The top-level package of a registered object or ``"module:attribute"`` path."""
    module = obj.partition(":")[0] if isinstance(obj, str) else getattr(obj, "__module__", None) or ""
    return module.split(".")[0]


def import_path(obj: Any) -> str | None:
    """``"module:QualName"`` of a module-level class or function, or ``None`` if it has none.

    Lambdas, local functions, bound methods and instances have no import path that leads back
    to the same object, so they cannot be named in a file.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    from modularml.plugins.packaging import executed_module

    for found in (sys.modules.get(module), executed_module(module)):  # a class run from packaged source too
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is obj:
            return f"{module}:{qualname}"
    return None
