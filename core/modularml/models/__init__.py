"""Models: the backend-neutral :class:`BaseModel` that every backend's models subclass, and shared model helpers."""

from modularml.models.base import BaseModel, ShapedModel, check_model_of, normalize_shape, resolve_build_shapes

__all__ = ["BaseModel", "ShapedModel", "check_model_of", "normalize_shape", "resolve_build_shapes"]
