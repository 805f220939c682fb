"""The scikit-learn backend: numpy arrays as native values, CPU only."""

from __future__ import annotations

import sklearn

from modularml.backends import NumpyTensorOps

__all__ = ["ScikitBackend"]


class ScikitBackend(NumpyTensorOps):
    """Backend for scikit-learn estimators.

    Native values are numpy arrays; estimators are fitted, not trained by gradient steps
    (``trainable`` is ``False``), and many can be fitted incrementally with ``partial_fit``.
    """

    name = "scikit"
    trainable = False
    supports_partial_fit = True
    zero_copy_from_numpy = True
    framework_version = sklearn.__version__
