"""Entry-point module of the scikit-learn backend. Imports nothing from scikit-learn.

Scalers and models are registered as import paths, so scikit-learn is imported only when one is
used (``mml.Scaler("StandardScaler")``), not when ModularML builds its registries.
"""

from __future__ import annotations

from modularml.plugins import BackendRegistrar, Registrar, hookimpl
from modularml.plugins.known import KNOWN_COMPONENTS

#: The scikit-learn transformers offered as ModularML scalers, by name (``sklearn.preprocessing`` classes).
#: The core lists them (:data:`modularml.plugins.known.KNOWN_COMPONENTS`), to tell a user without
#: this plugin what to install; the plugin registers that same list.
SCALERS: tuple[str, ...] = tuple(
    name for (kind, name), extra in KNOWN_COMPONENTS.items() if kind == "scalers" and extra == "sklearn"
)

#: The models of this backend, by name (in ``modularml_sklearn.models``).
MODELS: tuple[str, ...] = ("ScikitModelWrapper",)


@hookimpl
def register_backends(register: BackendRegistrar) -> None:
    register(
        "scikit",
        "modularml_sklearn.backend:ScikitBackend",
        aliases=("sklearn", "scikit-learn", "scikit_learn"),
        framework_module="sklearn",
        description="scikit-learn estimators on numpy arrays (CPU)",
    )


@hookimpl
def register_scalers(register: Registrar) -> None:
    for name in SCALERS:
        register(name, f"sklearn.preprocessing:{name}")


@hookimpl
def register_models(register: Registrar) -> None:
    for name in MODELS:
        register(name, f"modularml_sklearn.models:{name}", backend="scikit")
