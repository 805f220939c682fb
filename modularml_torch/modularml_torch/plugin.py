"""Entry-point module of the PyTorch backend. Imports nothing from torch."""

from __future__ import annotations

from modularml.plugins import BackendRegistrar, hookimpl


@hookimpl
def register_backends(register: BackendRegistrar) -> None:
    register(
        "torch",
        "modularml_torch.backend:TorchBackend",
        aliases=("pytorch", "pt"),
        formats=("torch",),
        framework_module="torch",
        description="PyTorch tensors on CPU, CUDA or MPS",
    )
