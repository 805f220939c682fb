"""The scikit-learn backend: numpy arrays as native values, CPU only."""

from __future__ import annotations

import sklearn

from modularml.backends import NumpyTensorOps
from modularml_sklearn.training import ScikitTraining

__all__ = ["ScikitBackend"]


class ScikitBackend(ScikitTraining, NumpyTensorOps):
    """Backend for scikit-learn estimators.

    Native values are numpy arrays; estimators are fitted, not trained by gradient steps
    (``trainable`` is ``False``), and many can be fitted incrementally with ``partial_fit``.
    Estimator instances given to a :class:`~modularml.ModelNode` are wrapped in a
    :class:`~modularml_sklearn.models.ScikitModelWrapper`
    (:class:`~modularml_sklearn.training.ScikitTraining`).
    """

    name = "scikit"
    trainable = False
    supports_partial_fit = True
    zero_copy_from_numpy = True
    framework_version = sklearn.__version__
