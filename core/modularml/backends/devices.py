"""Device strings shared by every backend.

Canonical forms: ``"cpu"``, ``"cuda:<i>"`` and ``"mps"``. ``"gpu"`` and ``"gpu:<i>"`` are
accepted as aliases of ``"cuda:<i>"``; ``"cuda"`` means ``"cuda:0"``. Case is ignored.
"""

from __future__ import annotations

import re

from modularml.errors import DeviceError

__all__ = ["DEVICE_KINDS", "normalize_device"]

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
            f"Unknown device {device!r}: use 'cpu', 'cuda', 'cuda:<index>', 'gpu', 'gpu:<index>' or 'mps'."
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
