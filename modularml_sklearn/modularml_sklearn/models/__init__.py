"""Models of the scikit-learn backend: the estimator wrapper."""

from modularml_sklearn.models.wrapper import METHODS, ScikitModelWrapper

__all__ = ["METHODS", "ScikitModelWrapper"]
