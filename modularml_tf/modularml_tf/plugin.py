"""Entry-point module of the TensorFlow backend. Imports nothing from TensorFlow or Keras.

Models, losses and optimizers are registered as ``"module:attribute"`` import paths, so that
building the registries never imports TensorFlow; they are imported when first looked up.
"""

from __future__ import annotations

from modularml.plugins import BackendRegistrar, Registrar, hookimpl

BACKEND = "tensorflow"

#: The torch backend's short loss names -> the TensorFlow class of the same meaning (import paths).
#: Other ``keras.losses`` classes are found by class name.
LOSS_NAMES = {
    "mse": "keras.losses:MeanSquaredError",
    "mae": "keras.losses:MeanAbsoluteError",
    "l1": "keras.losses:MeanAbsoluteError",
    "huber": "keras.losses:Huber",
    "smooth_l1": "modularml_tf.losses:SmoothL1Loss",
    "cross_entropy": "modularml_tf.losses:CrossEntropyLoss",
    "bce": "modularml_tf.losses:BCELoss",
    "bce_with_logits": "modularml_tf.losses:BCEWithLogitsLoss",
    "nll": "modularml_tf.losses:NLLLoss",
    "kl_div": "modularml_tf.losses:KLDivLoss",
    "cosine_embedding": "modularml_tf.losses:CosineEmbeddingLoss",
    "triplet_margin": "modularml_tf.losses:TripletMarginLoss",
    "margin_ranking": "modularml_tf.losses:MarginRankingLoss",
}

#: The torch backend's short optimizer names -> ``keras.optimizers`` class names (Keras has no RAdam);
#: other ``keras.optimizers`` classes are found by class name.
OPTIMIZER_NAMES = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "Nadam",
}

_MODELS = ("SequentialMLP", "SequentialCNN", "SequentialRNN", "TensorflowModelWrapper")


@hookimpl
def register_backends(register: BackendRegistrar) -> None:
    register(
        BACKEND,
        "modularml_tf.backend:TensorflowBackend",
        aliases=("tf", "keras"),
        formats=("tf", "tensorflow"),
        framework_module="tensorflow",
        description="TensorFlow tensors and Keras 3 models (CPU, CUDA GPUs)",
    )


@hookimpl
def register_models(register: Registrar) -> None:
    for name in _MODELS:
        register(name, f"modularml_tf.models:{name}", backend=BACKEND)


@hookimpl
def register_losses(register: Registrar) -> None:
    for name, path in LOSS_NAMES.items():
        register(name, path, backend=BACKEND)


@hookimpl
def register_optimizers(register: Registrar) -> None:
    for name, cls in OPTIMIZER_NAMES.items():
        register(name, f"keras.optimizers:{cls}", backend=BACKEND)
