"""Saving and loading: the one container format every ModularML object is written in.

Objects implement ``get_config()`` / ``get_state()`` and call :func:`write_container`; their
``load`` calls :func:`read_container`. See :mod:`modularml.io.container` for the layout.
"""

from modularml.io.atomic import atomic_write
from modularml.io.container import (
    FILE_KINDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    Container,
    container_path,
    read_container,
    write_container,
)

__all__ = [
    "FILE_KINDS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Container",
    "atomic_write",
    "container_path",
    "read_container",
    "write_container",
]
