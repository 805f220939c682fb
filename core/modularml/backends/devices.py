"""Device strings shared by every backend, and :class:`Accelerator`, where a phase or a node runs.

Canonical forms: ``"cpu"``, ``"cuda:<i>"`` and ``"mps"``. ``"gpu"`` and ``"gpu:<i>"`` are
accepted as aliases of ``"cuda:<i>"``; ``"cuda"`` means ``"cuda:0"``. Case is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from modularml.errors import DeviceError, InvalidArgumentError, InvalidTypeError

__all__ = ["DEVICE_KINDS", "Accelerator", "as_accelerator", "normalize_device"]

DEVICE_KINDS = ("cpu", "cuda", "mps")
_DEVICE_RE = re.compile(r"^(?P<kind>cpu|cuda|gpu|mps)(?::(?P<index>\d+))?$")


def normalize_device(device: str | None) -> str:
    """Return the canonical form of a device string (``None`` means ``"cpu"``).

    Raises:
        DeviceError: If the string is not a device ModularML knows.
    """
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        device = str(device)
    match = _DEVICE_RE.match(device.strip().lower())
    if match is None:
        raise DeviceError(
            f"Unknown device {device!r}: write 'cpu', 'cuda', 'cuda:<index>', 'gpu', 'gpu:<index>' or 'mps' "
            "(the index a whole number, e.g. 'cuda:0')."
        )
    kind, index = match["kind"], match["index"]
    if kind == "gpu":
        kind = "cuda"
    if kind == "cpu":
        if index not in (None, "0"):
            raise DeviceError(f"Device {device!r}: there is only one CPU device; use 'cpu'.")
        return "cpu"
    if kind == "mps":
        if index not in (None, "0"):
            raise DeviceError(f"Device {device!r}: there is only one MPS device; use 'mps'.")
        return "mps"
    return f"cuda:{int(index or 0)}"


class Accelerator:
    """Where a phase or a model node runs: a device, and how batches get there.

    Give one to a phase (``TrainPhase(..., accelerator=...)``, ``EvalPhase``, ``FitPhase``) or to
    a :class:`~modularml.ModelNode` (``accelerator=``); a node's own accelerator wins over the
    phase's. When a phase starts, each model it runs is placed on its device (an optimizer's
    state moves with it); every step then gathers the node's batch (features, targets, weights
    and masks) straight onto that device, once. Results read as numpy come back to the CPU.
    Without any accelerator, batches go to the device the model already is on.

    The device string is checked here; whether the device exists is checked against the node's
    backend when a phase places the model there (so a config naming ``"cuda:0"`` still loads on
    a machine without one, and fails only when run).

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:<i>"``, ``"gpu"``, ``"gpu:<i>"`` (aliases of
            ``"cuda:<i>"``) or ``"mps"``; case is ignored.
        pin_memory: Stage host batches in page-locked memory and copy them to the device
            asynchronously (CUDA devices of backends that support it; ignored elsewhere).

    Raises:
        DeviceError: If ``device`` is not a device string ModularML knows (``"tpu"``, ``"gpu:x"``).
        InvalidTypeError: If ``pin_memory`` is not a bool.

    Example:
        >>> Accelerator("gpu:1")
        Accelerator('cuda:1', pin_memory=False)
    """

    __slots__ = ("_device", "_pin_memory")

    def __init__(self, device: str = "cpu", pin_memory: bool = False) -> None:
        if not isinstance(device, str):
            raise InvalidTypeError(
                f"Accelerator takes a device string such as 'cpu', 'cuda:0' or 'mps'; got {type(device).__name__} "
                f"{device!r}."
            )
        if not isinstance(pin_memory, bool):
            raise InvalidTypeError(f"Accelerator pin_memory is True or False; got {pin_memory!r}.")
        self._device = normalize_device(device)
        self._pin_memory = pin_memory

    @property
    def device(self) -> str:
        """The canonical device name (``"cpu"``, ``"cuda:<i>"``, ``"mps"``)."""
        return self._device

    @property
    def pin_memory(self) -> bool:
        """Whether host batches are pinned and copied asynchronously."""
        return self._pin_memory

    @property
    def pins(self) -> bool:
        """Whether pinning applies: ``pin_memory`` and a CUDA device."""
        return self._pin_memory and self._device.startswith("cuda")

    def get_config(self) -> dict[str, Any]:
        """Plain data for :meth:`from_config` (phase, node and experiment configs hold it)."""
        return {"device": self._device, "pin_memory": self._pin_memory}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Accelerator:
        """Rebuild an accelerator from :meth:`get_config` output.

        Raises:
            InvalidArgumentError: If ``config`` is not such a mapping.
        """
        if not isinstance(config, Mapping) or not isinstance(config.get("device"), str):
            raise InvalidArgumentError(
                f"An Accelerator config is a mapping with 'device' (and 'pin_memory'); got {config!r:.200}."
            )
        unknown = set(config) - {"device", "pin_memory"}
        if unknown:
            raise InvalidArgumentError(
                f"An Accelerator config has only 'device' and 'pin_memory'; got {sorted(unknown)}."
            )
        return cls(config["device"], pin_memory=config.get("pin_memory", False))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Accelerator):
            return NotImplemented
        return (self._device, self._pin_memory) == (other._device, other._pin_memory)

    def __hash__(self) -> int:
        return hash((Accelerator, self._device, self._pin_memory))

    def __repr__(self) -> str:
        return f"Accelerator({self._device!r}, pin_memory={self._pin_memory})"


def as_accelerator(
    value: Accelerator | str | Mapping[str, Any] | None, *, what: str = "accelerator"
) -> Accelerator | None:
    """``value`` as an :class:`Accelerator`: one as is, a device string, a config mapping, or ``None``.

    Raises:
        DeviceError: If a device string is malformed.
        InvalidTypeError: If ``value`` is none of these.
    """
    if value is None or isinstance(value, Accelerator):
        return value
    if isinstance(value, str):
        return Accelerator(value)
    if isinstance(value, Mapping):
        return Accelerator.from_config(value)
    raise InvalidTypeError(
        f"{what} is an Accelerator (e.g. Accelerator('cuda:0')), a device string or None; got {type(value).__name__}."
    )
