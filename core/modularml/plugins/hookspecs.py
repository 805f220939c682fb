"""The ModularML hook specifications: the one module a plugin author needs to read.

A plugin is a module (or any object) with functions named like the hooks below and
decorated with :data:`hookimpl`. It is found through an entry point in the group
``modularml`` of its distribution's metadata::

    [project.entry-points.modularml]
    my_plugin = "my_package.plugin"

Every hook receives one argument, ``register``: a registrar that validates what is added,
records which plugin added it, and reports clashes naming both distributions. A hook
returns nothing. Implement only the hooks you need; a hook may take no argument at all.

Hooks are called once, lazily, the first time ModularML needs the registry they feed.
Keep the module that holds them light: do not import a heavy framework at module level;
register import paths (``"my_package.backend:MyBackend"``) or import inside the hook.

Backend-scoped registries (models, losses, optimizers) are keyed by ``(backend, name)``,
so two backends may each contribute a ``SequentialMLP``; pass ``backend=`` when
registering into them. All other registries are keyed by name alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from modularml.plugins.registry import BackendRegistrar, Registrar

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

#: The pluggy project name, and the entry-point group plugins are discovered in.
PROJECT_NAME = "modularml"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorate your plugin's hook functions with this marker.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_backends(register: BackendRegistrar) -> None:
    """Contribute execution backends (tensor ops, models, training for one framework).

    Call ``register(name, loader, *, aliases=(), formats=(), framework_module=None,
    description="")`` once per backend:

    - ``name``: canonical backend name (``"torch"``), what ``mml.Backend("torch")`` resolves to.
    - ``loader``: ``"module:attribute"`` or a zero-argument callable returning an object that
      implements :class:`modularml.backends.BackendProtocol`. It is called the first time the
      backend is used, so the framework is imported then and not at start-up.
    - ``aliases``: further names accepted for the backend (``"pytorch"``).
    - ``formats``: data-format names that select this backend's tensors (``fmt="torch"``).
    - ``framework_module``: the top-level module of the framework (``"torch"``). ModularML asks
      this backend whether a value is one of its tensors only once that module is in
      ``sys.modules``, so asking never imports the framework.
    """


@hookspec
def register_models(register: Registrar) -> None:
    """Contribute model classes, keyed by ``(backend, name)``.

    Call ``register(name, model_class, backend="torch")``. The class should be a
    :class:`modularml.BaseModel` subclass; users then build it by name for that backend.
    ``model_class`` may be an import path (``"my_package.models:MyNet"``), imported on first use.
    """


@hookspec
def register_losses(register: Registrar) -> None:
    """Contribute loss functions or classes, keyed by ``(backend, name)``.

    Call ``register(name, loss, backend="torch")`` where ``loss`` is a class or a callable
    returning per-sample losses, or its import path (``"my_package.losses:Huber"``, imported on
    first use). ``mml.Loss(name, backend=...)`` looks names up here, through the backend's
    ``resolve_loss``: ignoring case, underscores and a trailing ``"loss"``.
    """


@hookspec
def register_optimizers(register: Registrar) -> None:
    """Contribute optimizer classes or factories, keyed by ``(backend, name)``.

    Call ``register(name, optimizer, backend="torch")``; ``optimizer`` may be an import path,
    imported on first use. ``mml.Optimizer(name, backend=...)`` looks names up here, through the
    backend's ``resolve_optimizer`` (case-insensitive).
    """


@hookspec
def register_scalers(register: Registrar) -> None:
    """Contribute scalers by name.

    Call ``register(name, scaler_class)``. A scaler class follows the scikit-learn
    transformer shape: ``fit(X)``, ``transform(X)`` and, if it can be inverted,
    ``inverse_transform(X)``, on 2-D numpy arrays. ``mml.Scaler(name)`` looks names up here.
    ``scaler_class`` may be an import path (``"sklearn.preprocessing:StandardScaler"``): the
    module is then imported only when the scaler is used. Its fitted state is saved as the
    attributes that ``fit`` sets (numpy arrays and JSON values, never pickled); a class that
    keeps anything else provides ``get_state()`` and ``set_state(state)``.
    """


@hookspec
def register_samplers(register: Registrar) -> None:
    """Contribute batch samplers by name.

    Call ``register(name, sampler_class)`` with a ``modularml.samplers.BaseSampler``
    subclass.
    """


@hookspec
def register_splitters(register: Registrar) -> None:
    """Contribute FeatureSet splitters by name.

    Call ``register(name, splitter_class)``. A splitter turns a FeatureSet or view into
    named, disjoint index arrays.
    """


@hookspec
def register_callbacks(register: Registrar) -> None:
    """Contribute phase or experiment callbacks by name.

    Call ``register(name, callback_class)`` so configs that name the callback can be
    rebuilt on load.
    """


@hookspec
def register_executors(register: Registrar) -> None:
    """Contribute executors: objects that run independent work items.

    Call ``register(name, executor_class)``. An executor class is constructed with keyword
    options and provides ``map(fn, items, *, show_progress=False, description=None)``
    returning the results in input order. The core registers ``"local"`` (in-process).
    """
