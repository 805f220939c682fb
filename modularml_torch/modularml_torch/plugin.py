"""Entry-point module of the PyTorch backend. Imports nothing from torch.

Models, losses and optimizers are registered as ``"module:attribute"`` import paths, so that
building the registries never imports torch; they are imported when first looked up.
"""

from __future__ import annotations

from modularml.plugins import BackendRegistrar, Registrar, hookimpl

BACKEND = "torch"

#: Short loss name -> ``torch.nn`` class name; other ``torch.nn`` losses are found by class name.
LOSS_NAMES = {
    "mse": "MSELoss",
    "mae": "L1Loss",
    "l1": "L1Loss",
    "huber": "HuberLoss",
    "smooth_l1": "SmoothL1Loss",
    "cross_entropy": "CrossEntropyLoss",
    "bce": "BCELoss",
    "bce_with_logits": "BCEWithLogitsLoss",
    "nll": "NLLLoss",
    "kl_div": "KLDivLoss",
    "cosine_embedding": "CosineEmbeddingLoss",
    "triplet_margin": "TripletMarginLoss",
    "margin_ranking": "MarginRankingLoss",
}

#: Short optimizer name -> ``torch.optim`` class name; other ``torch.optim`` classes are found by class name.
OPTIMIZER_NAMES = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "NAdam",
    "radam": "RAdam",
}

_MODELS = ("SequentialMLP", "SequentialCNN", "SequentialRNN", "TorchModelWrapper")


@hookimpl
def register_backends(register: BackendRegistrar) -> None:
    register(
        BACKEND,
        "modularml_torch.backend:TorchBackend",
        aliases=("pytorch", "pt"),
        formats=("torch",),
        framework_module="torch",
        description="PyTorch tensors on CPU, CUDA or MPS",
    )


@hookimpl
def register_models(register: Registrar) -> None:
    for name in _MODELS:
        register(name, f"modularml_torch.models:{name}", backend=BACKEND)


@hookimpl
def register_losses(register: Registrar) -> None:
    for name, cls in LOSS_NAMES.items():
        register(name, f"torch.nn:{cls}", backend=BACKEND)


@hookimpl
def register_optimizers(register: Registrar) -> None:
    for name, cls in OPTIMIZER_NAMES.items():
        register(name, f"torch.optim:{cls}", backend=BACKEND)
