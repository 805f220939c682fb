"""Optimizers of the TensorFlow backend: ``keras.optimizers`` by name, torch's argument spellings, state as arrays.

The short names (:data:`OPTIMIZER_NAMES`: ``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``,
``adadelta``, ``adamax``, ``nadam``) are registered through the plugin's hook; every other
``keras.optimizers`` class is found by its own name (``"Lion"``, ``"Ftrl"``). Arguments may use
torch's spellings: ``lr`` for ``learning_rate``, ``eps`` for ``epsilon``, ``betas=(b1, b2)`` for
``beta_1``/``beta_2`` and, for RMSprop, ``alpha`` for ``rho``.

An optimizer's state is its variables (``iterations``, the learning rate, the slots), in order, as
numpy arrays: :func:`optimizer_state_to_numpy` and :func:`optimizer_state_from_numpy` round-trip
them exactly, so training continues bit for bit after a restore.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from modularml.errors import InvalidArgumentError
from modularml_tf.plugin import OPTIMIZER_NAMES

__all__ = [
    "OPTIMIZER_NAMES",
    "framework_optimizers",
    "optimizer_kwargs",
    "optimizer_state_from_numpy",
    "optimizer_state_to_numpy",
]

_NOT_STANDALONE = frozenset({"Optimizer", "LossScaleOptimizer", "MultiOptimizer", "OptimizerMap"})


def framework_optimizers() -> dict[str, type]:
    """Every optimizer class of ``keras.optimizers`` that stands alone, by class name (``"Adam"``)."""
    found = {}
    for name in dir(keras.optimizers):
        obj = getattr(keras.optimizers, name)
        if inspect.isclass(obj) and issubclass(obj, keras.optimizers.Optimizer) and name not in _NOT_STANDALONE:
            found[name] = obj
    return found


def optimizer_kwargs(spec: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with torch's spellings (``lr``, ``eps``, ``betas``, RMSprop's ``alpha``) in Keras' names.

    Raises:
        InvalidArgumentError: If an argument is given under both names, or ``betas`` is not a pair.
    """
    options = dict(kwargs)
    aliases = {"lr": "learning_rate", "eps": "epsilon"}
    if inspect.isclass(spec) and issubclass(spec, keras.optimizers.RMSprop):
        aliases["alpha"] = "rho"
    for torch_name, keras_name in aliases.items():
        if torch_name in options:
            if keras_name in options:
                raise InvalidArgumentError(
                    f"Optimizer arguments give both {torch_name!r} and {keras_name!r}; {torch_name!r} is another "
                    f"spelling of {keras_name!r}, so give one of them."
                )
            options[keras_name] = options.pop(torch_name)
    if "betas" in options:
        betas = options.pop("betas")
        if not (isinstance(betas, tuple | list) and len(betas) == 2):
            raise InvalidArgumentError(f"betas is a pair (beta_1, beta_2); got {betas!r}.")
        if "beta_1" in options or "beta_2" in options:
            raise InvalidArgumentError("Optimizer arguments give both 'betas' and 'beta_1'/'beta_2'; give one.")
        options["beta_1"], options["beta_2"] = float(betas[0]), float(betas[1])
    return options


def optimizer_state_to_numpy(optimizer: keras.optimizers.Optimizer) -> dict[str, Any]:
    """The optimizer's class name, and every variable of it (in order) as a numpy copy.

    An optimizer not built yet has no variables: ``"variables"`` is then empty.
    """
    variables = list(optimizer.variables) if optimizer.built else []
    return {
        "class": type(optimizer).__name__,
        "variables": [np.array(v.numpy(), copy=True) for v in variables],
    }


def optimizer_state_from_numpy(optimizer: keras.optimizers.Optimizer, state: Mapping[str, Any]) -> None:
    """Assign what :func:`optimizer_state_to_numpy` returned to a built optimizer over like-shaped variables.

    Nothing changes unless every array fits.

    Raises:
        InvalidArgumentError: If ``state`` is malformed, is another optimizer's, or does not fit.
    """
    name = type(optimizer).__name__
    if not isinstance(state, Mapping) or not isinstance(state.get("variables"), list | tuple):
        raise InvalidArgumentError(
            f"A TensorFlow optimizer state has 'class' and 'variables' (a list of arrays); got {state!r:.200}."
        )
    if state.get("class") not in (None, name):
        raise InvalidArgumentError(f"The optimizer state is of a {state['class']}, not of this {name}.")
    arrays = [np.asarray(a) for a in state["variables"]]
    if not arrays:
        return
    if not optimizer.built:
        raise InvalidArgumentError(
            f"This {name} is not built over any variables yet, so it has no state to restore into; build it over "
            "the model's variables first."
        )
    variables = list(optimizer.variables)
    if len(arrays) != len(variables):
        raise InvalidArgumentError(
            f"The optimizer state has {len(arrays)} variables but this {name} has {len(variables)}; it was saved "
            "for another model."
        )
    for i, (variable, array) in enumerate(zip(variables, arrays, strict=True)):
        if tuple(array.shape) != tuple(variable.shape):
            raise InvalidArgumentError(
                f"The optimizer state's variable {i} ({variable.path}) has shape {array.shape}, but this {name}'s has "
                f"{tuple(variable.shape)}; it was saved for another model."
            )
    for variable, array in zip(variables, arrays, strict=True):
        variable.assign(array.astype(variable.dtype, copy=False))
