"""Padding rules shared by every backend.

Every mode except ``"constant"`` is an index map along each axis: padding is a gather. Backends
build the map here (with numpy) and apply it with their own gather, so all backends pad alike,
in any number of dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PAD_MODES", "PadWidth", "check_pad_mode", "normalize_pad_width", "pad_index_map"]

#: Supported modes and the numpy ``np.pad`` mode each corresponds to.
PAD_MODES: dict[str, str] = {
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}

PadWidth = int | Sequence[int] | Sequence[Sequence[int]]


def check_pad_mode(mode: str) -> str:
    """Return ``mode`` if supported, else raise ``ValueError`` listing the modes."""
    if mode not in PAD_MODES:
        raise ValueError(f"Unknown padding mode {mode!r}; expected one of {list(PAD_MODES)}.")
    return mode


def normalize_pad_width(pad_width: PadWidth, ndim: int) -> tuple[tuple[int, int], ...]:
    """Expand ``pad_width`` to one ``(before, after)`` pair per axis, as ``np.pad`` does.

    Accepts an int (all axes, both sides), one pair (all axes), or one pair per axis.

    Raises:
        ValueError: If the widths are negative, not integers, or do not match ``ndim``.
    """
    arr = np.asarray(pad_width)
    if arr.dtype.kind not in "iu" and not (arr.size == 0 and ndim == 0):
        raise ValueError(f"pad_width must hold integers, got {pad_width!r}.")
    if arr.ndim == 0:
        pairs = np.full((ndim, 2), int(arr))
    elif arr.shape == (2,):
        pairs = np.tile(arr, (ndim, 1))
    elif arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] in (1, ndim):
        pairs = np.broadcast_to(arr, (ndim, 2))
    else:
        raise ValueError(
            f"pad_width {pad_width!r} does not fit a {ndim}-D value: give an int, one (before, after) "
            f"pair, or {ndim} pairs."
        )
    if (pairs < 0).any():
        raise ValueError(f"pad_width must be non-negative, got {pad_width!r}.")
    return tuple((int(b), int(a)) for b, a in pairs)


def pad_index_map(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """Indices into an axis of length ``size`` that produce its padded version.

    Args:
        size: Length of the axis.
        before: Elements added at the start.
        after: Elements added at the end.
        mode: ``"reflect"``, ``"replicate"`` or ``"circular"`` (``"constant"`` is no gather).

    Raises:
        ValueError: For ``"constant"``, an unknown mode, or padding an empty axis.
    """
    check_pad_mode(mode)
    if mode == "constant":
        raise ValueError("Constant padding is not an index map; pad with the constant value instead.")
    if size == 0 and (before or after):
        raise ValueError(f"Cannot pad an empty axis in {mode!r} mode: there is nothing to copy from.")
    return np.pad(np.arange(size, dtype=np.int64), (before, after), mode=PAD_MODES[mode])
