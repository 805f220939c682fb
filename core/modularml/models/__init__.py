"""Models: the backend-neutral :class:`BaseModel` that every backend's models subclass."""

from modularml.models.base import BaseModel, normalize_shape, resolve_build_shapes

__all__ = ["BaseModel", "normalize_shape", "resolve_build_shapes"]
