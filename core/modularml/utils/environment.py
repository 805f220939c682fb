"""Facts about the environment ModularML runs in, detected without importing optional packages."""

from __future__ import annotations

import sys

__all__ = ["IN_NOTEBOOK", "in_notebook"]


def in_notebook() -> bool:
    """Whether this process is a Jupyter (or Google Colab) kernel.

    IPython is never imported: if it is not already in ``sys.modules`` this is not a notebook.
    A terminal IPython session (``TerminalInteractiveShell``) does not count as a notebook.

    Returns:
        bool: ``True`` in a Jupyter/ZMQ kernel or Google Colab, ``False`` otherwise.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    if get_ipython is None:
        return False
    try:
        shell = get_ipython()
    except Exception:  # a half-initialised IPython must not break importing modularml
        return False
    if shell is None:
        return False
    shell_class = type(shell)
    return shell_class.__name__ == "ZMQInteractiveShell" or shell_class.__module__.startswith("google.colab")


#: Whether ``modularml`` was imported inside a notebook kernel (evaluated once, at import).
IN_NOTEBOOK: bool = in_notebook()
