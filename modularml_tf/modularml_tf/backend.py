"""The TensorFlow backend: ``tf.Tensor`` and ``tf.Variable`` as native values, on the CPU or GPUs.

TensorFlow names GPUs ``/GPU:<i>``; ModularML reports them as ``"cuda:<i>"`` (see
:mod:`modularml.backends.devices`). Importing this module imports TensorFlow; the plugin
registers it by path, so that happens on first use of the backend only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from modularml.backends.common import require_device
from modularml.backends.padding import PadWidth, check_pad_mode, normalize_pad_width, pad_index_map
from modularml.errors import DeviceError, InvalidArgumentError, InvalidTypeError
from modularml_tf.training import TensorflowTraining

# TensorFlow reads this when its C++ runtime loads: hide its INFO and WARNING lines unless the
# user asked for them. (The oneDNN notice printed before absl logging starts ignores it.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

__all__ = ["TensorflowBackend"]

logger = logging.getLogger("modularml_tf")

try:  # TF >= 2.13: stops recording on every active tape (and forward accumulator) of this thread.
    from tensorflow.python.eager.record import stop_recording as _stop_recording
except ImportError:  # pragma: no cover - depends on the TensorFlow version
    try:  # older TensorFlow kept it in the tape module
        from tensorflow.python.eager.tape import stop_recording as _stop_recording  # type: ignore[no-redef]
    except ImportError:
        _stop_recording = None  # type: ignore[assignment]

_TF_DEVICE_RE = re.compile(r"device:(?P<kind>[A-Za-z_]+):(?P<index>\d+)$")


def _tf_dtype(dtype: DTypeLike) -> tf.DType:
    """The TensorFlow dtype of a numpy dtype, its name, or a ``tf.DType``."""
    if isinstance(dtype, tf.DType):
        return dtype
    try:
        return tf.as_dtype(np.dtype(dtype))
    except TypeError:  # names numpy does not know, such as "bfloat16"
        return tf.as_dtype(dtype)


class TensorflowBackend(TensorflowTraining):
    """Backend for TensorFlow tensors and Keras 3 models.

    Native values are ``tf.Tensor`` and ``tf.Variable``. Models learn by gradient steps
    (``trainable``; it passes :class:`~modularml.testing.TrainableBackendConformance`), not by
    ``partial_fit``. The whole :class:`~modularml.backends.TrainableBackendProtocol` is implemented
    (:class:`~modularml_tf.training.TensorflowTraining`): Keras models are wrapped in
    :class:`~modularml_tf.models.TensorflowModelWrapper`, losses and optimizers are found among the
    registered short names and then ``keras.losses``/``keras.optimizers``.
    :meth:`from_numpy` always copies: ``tf.convert_to_tensor`` never shares a numpy array's memory.
    """

    name = "tensorflow"
    trainable = True
    supports_partial_fit = False
    zero_copy_from_numpy = False
    framework_version = tf.__version__

    def __init__(self) -> None:
        self._devices: list[str] | None = None

    # -- devices and randomness ---------------------------------------------------------
    def available_devices(self) -> list[str]:
        """``"cpu"``, then ``"cuda:<i>"`` for each logical GPU TensorFlow sees."""
        if self._devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            self._devices = ["cpu", *(f"cuda:{i}" for i in range(len(gpus)))]
        return list(self._devices)

    def canonical_device(self, device: str | None) -> str:
        """The canonical ModularML name of an available device (``None`` is the CPU).

        Raises:
            DeviceError: If the device is unknown or not available here.
        """
        return require_device(device, self.available_devices, backend=self.name)

    def tf_device(self, device: str | None) -> str:
        """TensorFlow's name (``"/GPU:0"``) of an available device (``"cuda:0"``); ``None`` is the CPU.

        Raises:
            DeviceError: If the device is unknown or not available here (TensorFlow would
                silently place the value on the CPU instead).
        """
        canonical = self.canonical_device(device)
        if canonical == "cpu":
            return "/CPU:0"
        return f"/GPU:{canonical.split(':')[1]}"

    def _placement(self, device: str | None) -> contextlib.AbstractContextManager[Any]:
        """A ``tf.device`` scope for ``device``; ``None`` leaves placement to TensorFlow."""
        if device is None:
            return contextlib.nullcontext()
        return tf.device(self.tf_device(device))

    def device_of(self, value: Any) -> str:
        """Canonical device of a tensor or variable (``"/.../device:GPU:1"`` gives ``"cuda:1"``).

        Raises:
            DeviceError: If the value has no device (a symbolic tensor) or one ModularML does
                not know (a TPU).
        """
        raw = value.device
        match = _TF_DEVICE_RE.search(raw or "")
        if match is None:
            raise DeviceError(f"Cannot tell the device of a TensorFlow value placed on {raw!r}.")
        kind, index = match["kind"].upper(), int(match["index"])
        if kind == "CPU":
            return "cpu"
        if kind == "GPU":
            return f"cuda:{index}"
        raise DeviceError(f"TensorFlow device {raw!r} has no ModularML name; ModularML knows CPUs and GPUs.")

    def to_device(self, value: Any, device: str, *, pin_memory: bool = False) -> Any:
        """``value`` on ``device`` (itself when it is there already): a copy made inside ``tf.device``.

        ``pin_memory`` is ignored: TensorFlow stages host copies itself.

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
        """
        target = self.canonical_device(device)
        if self.device_of(value) == target:
            return value
        with self._placement(target):
            return tf.identity(value)

    def model_device(self, model: Any) -> str:
        """The device of a TensorFlow model's variables (where they will be created, before it is built)."""
        return str(getattr(model, "device", None) or "cpu")

    def place_model(self, model: Any, device: str) -> None:
        """Put a TensorFlow model (a :class:`~modularml_tf.models.TensorflowBaseModel`) on ``device``.

        A built model is rebuilt there with its weights (variables cannot move).

        Raises:
            DeviceError: If ``device`` is unknown or not available here.
            InvalidTypeError: If ``model`` is not a ModularML TensorFlow model.
        """
        to_device = getattr(model, "to_device", None)
        if not callable(to_device):
            raise InvalidTypeError(
                f"The tensorflow backend places ModularML TensorFlow models (TensorflowBaseModel); got "
                f"{type(model).__name__}."
            )
        to_device(self.canonical_device(device))

    def seed(self, seed: int) -> None:
        """Seed TensorFlow's global seed, Keras' global ``SeedGenerator``, numpy's and Python's global generators.

        Uses ``keras.utils.set_random_seed`` when Keras runs on TensorFlow, then
        ``tf.random.set_seed(seed)``. Explicit ``tf.random.Generator`` objects are not reseeded.
        """
        if keras.backend.backend() == "tensorflow":
            keras.utils.set_random_seed(seed % 2**32)
        else:  # Keras runs on another framework: seed what set_random_seed would, minus Keras.
            random.seed(seed)
            np.random.seed(seed % 2**32)
        tf.random.set_seed(seed)
        tf.random.set_global_generator(tf.random.Generator.from_seed(seed))

    def get_rng_state(self) -> dict[str, Any]:
        """TensorFlow's global ``tf.random.Generator`` and Keras' global ``SeedGenerator`` (as arrays).

        A Keras layer that draws (``Dropout``) keeps its own ``SeedGenerator``; its state is a
        variable of the model, saved with the model's state (``TensorflowBaseModel.get_state``).
        """
        generator = tf.random.get_global_generator()
        state: dict[str, Any] = {"tf_generator": np.array(generator.state.numpy(), copy=True)}
        keras_seed = _keras_global_seed_generator()
        if keras_seed is not None:
            state["keras_seed_generator"] = np.array(keras_seed.state.numpy(), copy=True)
        return state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_rng_state` output."""
        if not isinstance(state, dict) or not isinstance(state.get("tf_generator"), np.ndarray):
            raise InvalidArgumentError(f"Not an RNG state of the tensorflow backend: {state!r:.120}.")
        generator = tf.random.get_global_generator()
        saved = np.asarray(state["tf_generator"])
        if saved.shape != tuple(generator.state.shape):
            raise InvalidArgumentError(
                f"The saved TensorFlow generator state has shape {saved.shape}; this generator's has "
                f"{tuple(generator.state.shape)}."
            )
        generator.state.assign(saved.astype(generator.state.dtype.as_numpy_dtype))
        keras_seed = _keras_global_seed_generator()
        if keras_seed is not None and "keras_seed_generator" in state:
            keras_seed.state.assign(np.asarray(state["keras_seed_generator"]).astype(keras_seed.state.dtype))

    def random_normal(self, shape: Sequence[int], *, dtype: DTypeLike = "float32", device: str | None = None) -> Any:
        """Standard normal draws from TensorFlow's global ``tf.random.Generator`` (see :meth:`get_rng_state`)."""
        with self._placement(device):
            return tf.random.get_global_generator().normal(tuple(shape), dtype=_tf_dtype(dtype))

    # -- conversion -------------------------------------------------------------------------
    def is_native(self, value: Any) -> bool:
        """Whether ``value`` is a ``tf.Tensor`` or a ``tf.Variable``."""
        return isinstance(value, (tf.Tensor, tf.Variable))

    def from_numpy(self, array: np.ndarray, *, dtype: DTypeLike | None = None, device: str | None = None) -> Any:
        """Copy a numpy array into a tensor on ``device``, cast to ``dtype`` first (as numpy casts)."""
        array = np.asarray(array)
        if dtype is not None:
            array = array.astype(_tf_dtype(dtype).as_numpy_dtype, copy=False)
        with self._placement(device):
            return tf.convert_to_tensor(array)

    def to_numpy(self, value: Any) -> np.ndarray:
        """A numpy copy of a tensor or variable (bfloat16 becomes float32); numpy arrays pass as-is."""
        if isinstance(value, np.ndarray):
            return value
        if self.is_native(value):
            if value.dtype == tf.bfloat16:
                value = tf.cast(value, tf.float32)
            value = value.numpy()
        return np.asarray(value)

    # -- tensor ops -------------------------------------------------------------------------
    def concat(self, values: Sequence[Any], axis: int = 0) -> Any:
        """Join tensors along an existing axis (``tf.concat``)."""
        return tf.concat(list(values), axis=axis)

    def stack(self, values: Sequence[Any], axis: int = 0) -> Any:
        """Join tensors along a new axis (``tf.stack``)."""
        return tf.stack(list(values), axis=axis)

    def pad(self, value: Any, pad_width: PadWidth, *, mode: str = "constant", constant_value: float = 0.0) -> Any:
        """Pad like ``np.pad``: ``tf.pad`` for constants, a ``tf.gather`` per axis otherwise.

        The constant is cast to the tensor's dtype as numpy casts it. Every mode is
        differentiable; the gather modes need static axis lengths.
        """
        check_pad_mode(mode)
        tensor = tf.convert_to_tensor(value)
        widths = normalize_pad_width(pad_width, tensor.shape.rank)
        if mode == "constant":
            fill = np.asarray(constant_value).astype(tensor.dtype.as_numpy_dtype)
            paddings = np.asarray(widths, dtype=np.int64).reshape(-1, 2)
            return tf.pad(tensor, paddings, constant_values=tf.constant(fill, dtype=tensor.dtype))
        for axis, (before, after) in enumerate(widths):
            if before or after:
                index = pad_index_map(tensor.shape[axis], before, after, mode)
                tensor = tf.gather(tensor, index, axis=axis)
        return tensor

    def mean(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
        """Arithmetic mean (``tf.reduce_mean``).

        Floating and complex tensors keep their dtype; integer and bool tensors are cast to
        Keras' default float (``keras.backend.floatx()``, float32 unless configured) first, as
        the torch backend uses torch's default dtype (``tf.reduce_mean`` alone would divide
        integers).
        """
        tensor = tf.convert_to_tensor(value)
        if not (tensor.dtype.is_floating or tensor.dtype.is_complex):
            tensor = tf.cast(tensor, keras.backend.floatx())
        if isinstance(axis, Sequence):
            axis = list(axis)
        return tf.reduce_mean(tensor, axis=axis, keepdims=keepdims)

    def sum(self, value: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Any:
        """Sum over the given axes (all axes when ``None``), like ``np.sum`` (``tf.reduce_sum``)."""
        tensor = tf.convert_to_tensor(value)
        if isinstance(axis, Sequence):
            axis = list(axis)
        return tf.reduce_sum(tensor, axis=axis, keepdims=keepdims)

    def reshape(self, value: Any, shape: Sequence[int]) -> Any:
        """The same values in a new shape (``tf.reshape``)."""
        return tf.reshape(value, [int(s) for s in shape])

    def detach(self, value: Any) -> Any:
        """The same values, cut from the gradient tape (``tf.stop_gradient``)."""
        return tf.stop_gradient(value)

    @contextlib.contextmanager
    def no_grad(self) -> Iterator[None]:
        """A scope whose operations no active ``tf.GradientTape`` (or forward accumulator) records.

        Uses TensorFlow's internal ``stop_recording``, which pauses every tape of the current
        thread and nests. Without it (a TensorFlow that moved it) the scope changes nothing.
        """
        if _stop_recording is None:
            logger.debug("tensorflow.python.eager.record.stop_recording is missing; no_grad() records as usual.")
            yield
            return
        with _stop_recording():
            yield


def _keras_global_seed_generator() -> Any:
    """Keras' global SeedGenerator (what ``keras.random`` draws from without a seed), or None if it has none yet."""
    try:
        from keras.src.random import seed_generator
    except ImportError:  # a Keras without that module: nothing to save
        return None
    return getattr(seed_generator, "global_seed_generator", lambda: None)()
