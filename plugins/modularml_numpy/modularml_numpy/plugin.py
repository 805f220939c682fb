"""Entry-point module of the numpy backend: hook implementations, importing nothing heavy."""

from __future__ import annotations

from modularml.plugins import BackendRegistrar, Registrar, hookimpl

BACKEND = "numpy"


@hookimpl
def register_backends(register: BackendRegistrar) -> None:
    register(
        BACKEND,
        "modularml_numpy.backend:NumpyBackend",
        aliases=("np", "numpy_autograd"),
        formats=("numpy_autograd",),
        framework_module="modularml_numpy.autograd",
        description="numpy arrays with a small autograd; trains without any ML framework",
    )


@hookimpl
def register_models(register: Registrar) -> None:
    register("LinearModel", "modularml_numpy.models:LinearModel", backend=BACKEND)


@hookimpl
def register_losses(register: Registrar) -> None:
    register("mse", "modularml_numpy.losses:MSELoss", backend=BACKEND)
    register("mae", "modularml_numpy.losses:MAELoss", backend=BACKEND)


@hookimpl
def register_optimizers(register: Registrar) -> None:
    register("sgd", "modularml_numpy.optimizers:SGD", backend=BACKEND)
    register("adam", "modularml_numpy.optimizers:Adam", backend=BACKEND)
