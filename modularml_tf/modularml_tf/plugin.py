"""Entry-point module of the TensorFlow backend. Imports nothing from TensorFlow."""

from __future__ import annotations

from modularml.plugins import BackendRegistrar, hookimpl


@hookimpl
def register_backends(register: BackendRegistrar) -> None:
    register(
        "tensorflow",
        "modularml_tf.backend:TensorflowBackend",
        aliases=("tf", "keras"),
        formats=("tf", "tensorflow"),
        framework_module="tensorflow",
        description="TensorFlow tensors and Keras 3 models (CPU, CUDA GPUs)",
    )
