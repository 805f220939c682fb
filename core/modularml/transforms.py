"""The core's built-in scalers, also importable as ``from modularml.transforms import ...``.

This module re-exports :mod:`modularml.scalers`, where they live.
"""

from modularml.scalers import (
    Absolute,
    Negate,
    PerSampleMinMaxScaler,
    PerSampleZeroStart,
    Scaler,
    SegmentedScaler,
    supported_scalers,
)

__all__ = [
    "Absolute",
    "Negate",
    "PerSampleMinMaxScaler",
    "PerSampleZeroStart",
    "Scaler",
    "SegmentedScaler",
    "supported_scalers",
]
