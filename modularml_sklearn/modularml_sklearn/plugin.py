"""Entry-point module of the scikit-learn backend. Imports nothing from scikit-learn."""

from __future__ import annotations

from modularml.plugins import BackendRegistrar, hookimpl


@hookimpl
def register_backends(register: BackendRegistrar) -> None:
    register(
        "scikit",
        "modularml_sklearn.backend:ScikitBackend",
        aliases=("sklearn", "scikit-learn", "scikit_learn"),
        framework_module="sklearn",
        description="scikit-learn estimators on numpy arrays (CPU)",
    )
