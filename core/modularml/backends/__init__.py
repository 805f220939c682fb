"""Backends: the :class:`Backend` name type, the protocol every backend implements, and shared helpers."""

from modularml.backends.backend import Backend, backend_for_format, backend_of, get_backend, trainable_backends
from modularml.backends.devices import Accelerator, as_accelerator, normalize_device
from modularml.backends.numpy_ops import NumpyTensorOps
from modularml.backends.padding import PAD_MODES, PadWidth, check_pad_mode, normalize_pad_width, pad_index_map
from modularml.backends.protocol import BackendProtocol, TrainableBackendProtocol
from modularml.backends.seeding import seed_everything

__all__ = [
    "PAD_MODES",
    "Accelerator",
    "Backend",
    "BackendProtocol",
    "NumpyTensorOps",
    "PadWidth",
    "TrainableBackendProtocol",
    "backend_for_format",
    "as_accelerator",
    "backend_of",
    "check_pad_mode",
    "get_backend",
    "normalize_device",
    "normalize_pad_width",
    "pad_index_map",
    "seed_everything",
    "trainable_backends",
]
