"""Models of the numpy backend: the linear model."""

from modularml_numpy.models.linear import LinearModel

__all__ = ["LinearModel"]
