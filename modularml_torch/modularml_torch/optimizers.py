"""Optimizers of the torch backend: ``torch.optim`` by name, and their state as numpy arrays and JSON.

:func:`optimizer_state_to_numpy` walks ``optimizer.state_dict()`` and turns every tensor into a
numpy array (integer keys into strings); :func:`optimizer_state_from_numpy` undoes that and loads
the result, so optimizer state is saved in ModularML files without pickling.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from modularml.errors import InvalidArgumentError
from modularml_torch.plugin import OPTIMIZER_NAMES

__all__ = [
    "OPTIMIZER_NAMES",
    "framework_optimizers",
    "optimizer_state_from_numpy",
    "optimizer_state_to_numpy",
]

#: Per-parameter buffers that have the parameter's shape, checked when state is restored.
_PARAMETER_SHAPED = frozenset(
    {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "grad_avg", "sum", "acc_delta"}
)


def framework_optimizers() -> dict[str, type]:
    """Every optimizer class of ``torch.optim``, by class name (``"Adam"`` -> ``torch.optim.Adam``)."""
    found = {}
    for name, obj in vars(torch.optim).items():
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer:
            found[name] = obj
    return found


def _to_plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_to_plain(v) for v in value)
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InvalidArgumentError(
        f"Optimizer state holds a {type(value).__name__} ({value!r:.80}), which cannot be stored as JSON or numpy."
    )


def _to_torch(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)):
        return torch.tensor(np.asarray(value))
    if isinstance(value, Mapping):
        return {k: _to_torch(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_to_torch(v) for v in value)
    if isinstance(value, list):
        return [_to_torch(v) for v in value]
    return value


def optimizer_state_to_numpy(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer.state_dict()`` with tensors as numpy arrays (copies) and parameter indices as strings."""
    return _to_plain(optimizer.state_dict())


def optimizer_state_from_numpy(optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """Load what :func:`optimizer_state_to_numpy` returned into ``optimizer`` (built over like-shaped parameters).

    Raises:
        InvalidArgumentError: If ``state`` is malformed or was saved for other parameters.
    """
    if not isinstance(state, Mapping) or "state" not in state or "param_groups" not in state:
        raise InvalidArgumentError(
            f"A torch optimizer state has the keys 'state' and 'param_groups'; got {state!r:.200}."
        )
    groups = state["param_groups"]
    current_groups = optimizer.param_groups
    if not isinstance(groups, (list, tuple)) or len(groups) != len(current_groups):
        raise InvalidArgumentError(
            f"The optimizer state has {len(groups) if isinstance(groups, (list, tuple)) else groups!r} parameter "
            f"groups but {type(optimizer).__name__} has {len(current_groups)}; it was saved for another model."
        )
    params: dict[int, torch.Tensor] = {}
    restored_groups = []
    for group, current in zip(groups, current_groups, strict=True):
        indices = [int(i) for i in group.get("params", [])]
        if len(indices) != len(current["params"]):
            raise InvalidArgumentError(
                f"The optimizer state has a group of {len(indices)} parameters where {type(optimizer).__name__} has "
                f"{len(current['params'])}; it was saved for another model."
            )
        params.update(zip(indices, current["params"], strict=True))
        restored = {}
        for key, value in group.items():
            value = _to_torch(value)
            if key == "params":
                value = indices
            elif isinstance(current.get(key), tuple) and isinstance(value, list):
                value = tuple(value)
            restored[key] = value
        restored_groups.append(restored)
    per_param: dict[int, dict[str, Any]] = {}
    for key, entry in dict(state["state"]).items():
        index = int(key)
        if index not in params or not isinstance(entry, Mapping):
            raise InvalidArgumentError(
                f"The optimizer state has an entry for parameter {key!r}, which {type(optimizer).__name__} does not "
                "have; it was saved for another model."
            )
        shape = tuple(params[index].shape)
        for name, value in entry.items():
            if name in _PARAMETER_SHAPED and isinstance(value, np.ndarray) and value.shape != shape:
                raise InvalidArgumentError(
                    f"The optimizer state's {name!r} buffer of parameter {index} has shape {value.shape}, but the "
                    f"parameter has shape {shape}; it was saved for another model."
                )
        per_param[index] = _to_torch(dict(entry))
    try:
        optimizer.load_state_dict({"state": per_param, "param_groups": restored_groups})
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(f"Cannot restore the {type(optimizer).__name__} state: {exc}") from exc
