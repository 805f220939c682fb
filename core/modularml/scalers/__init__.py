"""Scalers: reversible transforms of FeatureSet columns, wrapped by :class:`Scaler`.

- :class:`Scaler`: wraps a registered scaler (by name), a scaler class, or any scikit-learn-like
  instance; fit, transform, invert, save and load it.
- The core's scalers: :class:`Absolute`, :class:`Negate`, :class:`PerSampleMinMaxScaler`,
  :class:`PerSampleZeroStart`, :class:`SegmentedScaler`. The scikit-learn plugin
  (``pip install "modularml[sklearn]"``) adds ``StandardScaler``, ``MinMaxScaler``,
  ``MaxAbsScaler``, ``RobustScaler``, ``Normalizer``, ``QuantileTransformer`` and
  ``PowerTransformer``. Plugins add more through the ``register_scalers`` hook.
- :data:`supported_scalers`: every registered name, live.
- A scaler applied to FeatureSet columns is kept as a :class:`modularml.data.records.ScalerRecord`.
"""

from modularml.scalers.absolute import Absolute
from modularml.scalers.base import BaseScaler, PerSampleScaler
from modularml.scalers.negate import Negate
from modularml.scalers.per_sample_min_max import PerSampleMinMaxScaler
from modularml.scalers.per_sample_zero import PerSampleZeroStart
from modularml.scalers.registry import LazyClass, supported_scalers
from modularml.scalers.scaler import Scaler
from modularml.scalers.segmented_scaler import SegmentedScaler

__all__ = [
    "Absolute",
    "BaseScaler",
    "LazyClass",
    "Negate",
    "PerSampleMinMaxScaler",
    "PerSampleScaler",
    "PerSampleZeroStart",
    "Scaler",
    "SegmentedScaler",
    "supported_scalers",
]
