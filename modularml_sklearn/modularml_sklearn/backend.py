"""The scikit-learn backend: numpy arrays as native values, CPU only."""

from __future__ import annotations

import sys
from typing import Any

import sklearn

from modularml.backends import NumpyTensorOps
from modularml.errors import InvalidTypeError
from modularml.models import BaseModel

__all__ = ["ScikitBackend"]


class ScikitBackend(NumpyTensorOps):
    """Backend for scikit-learn estimators.

    Native values are numpy arrays; estimators are fitted, not trained by gradient steps
    (``trainable`` is ``False``), and many can be fitted incrementally with ``partial_fit``.
    Estimator instances given to a :class:`~modularml.ModelNode` are wrapped in a
    :class:`~modularml_sklearn.models.ScikitModelWrapper`.
    """

    name = "scikit"
    trainable = False
    supports_partial_fit = True
    zero_copy_from_numpy = True
    framework_version = sklearn.__version__

    # -- models ------------------------------------------------------------------------------
    def claims_model(self, obj: Any) -> bool:
        """Whether ``obj`` is a scikit-learn estimator instance (not already a ``BaseModel``); imports nothing."""
        base = sys.modules.get("sklearn.base")
        if base is None or isinstance(obj, (BaseModel, type)):
            return False
        return isinstance(obj, base.BaseEstimator)

    def wrap_model(self, obj: Any) -> BaseModel:
        """Wrap an estimator in a :class:`~modularml_sklearn.models.ScikitModelWrapper`; scikit models pass through.

        Raises:
            InvalidTypeError: If ``obj`` is neither an estimator nor a scikit ``BaseModel``.
        """
        if isinstance(obj, BaseModel):
            if obj.backend == self.name:
                return obj
            raise InvalidTypeError(f"{type(obj).__name__} is a {str(obj.backend)!r} model, not a scikit-learn model.")
        if not self.claims_model(obj):
            raise InvalidTypeError(
                f"The scikit backend wraps scikit-learn estimators (sklearn.base.BaseEstimator instances); got "
                f"{type(obj).__name__}. Pass an estimator instance such as PCA(n_components=4)."
            )
        from modularml_sklearn.models import ScikitModelWrapper

        return ScikitModelWrapper(obj)
