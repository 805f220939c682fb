"""Issue user-facing warnings that point at the user's code rather than at ModularML's."""

from __future__ import annotations

import os
import sys
import warnings

from modularml.errors import ModularMLWarning

__all__ = ["warn"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def warn(message: str, category: type[Warning] = ModularMLWarning) -> None:
    """Issue ``message`` as a warning attributed to the first caller outside the ``modularml`` package.

    Args:
        message: What the user should know, and what to do about it.
        category: The warning class. Defaults to :class:`~modularml.errors.ModularMLWarning`.
    """
    frame = sys._getframe(1)
    stacklevel = 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        stacklevel += 1
    warnings.warn(message, category, stacklevel=stacklevel)
