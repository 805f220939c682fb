"""What the scikit-learn backend implements of the trainable protocol: the model hooks.

:class:`ScikitTraining` claims and wraps estimators (``claims_model``, ``wrap_model`` of
:class:`~modularml.backends.TrainableBackendProtocol`); :class:`~modularml_sklearn.backend.ScikitBackend`
inherits it. Estimators learn with ``fit`` and ``partial_fit``
(:class:`~modularml_sklearn.models.ScikitModelWrapper`), never by gradient steps, so the backend
is not ``trainable``: it has no losses, optimizers or gradient steps.
"""

from __future__ import annotations

import sys
from typing import Any

from modularml.errors import InvalidTypeError
from modularml.models import BaseModel

__all__ = ["ScikitTraining"]


class ScikitTraining:
    """The model hooks of the scikit-learn backend: estimator instances become ``ScikitModelWrapper`` models.

    A mixin of :class:`~modularml_sklearn.backend.ScikitBackend`, whose ``name`` it uses.
    """

    name: str

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
