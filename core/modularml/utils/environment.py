"""Facts about the environment ModularML runs in, detected without importing optional packages."""

from __future__ import annotations

import sys
from typing import IO, Any

__all__ = ["IN_NOTEBOOK", "bars_allowed", "display_stream", "in_notebook"]


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


def display_stream() -> IO[str]:
    """Where progress bars, epoch lines and run summaries go: stdout in a notebook, stderr elsewhere."""
    return sys.stdout if IN_NOTEBOOK else sys.stderr


def bars_allowed(stream: Any = None) -> bool:
    """Whether progress bars may be drawn on ``stream`` (the display stream by default).

    A notebook draws widgets; a terminal takes tqdm's control codes. A stream that is neither
    (output redirected to a file or a pipe, CI logs) gets no bar, only plain lines.
    """
    if IN_NOTEBOOK:
        return True
    stream = display_stream() if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (ValueError, OSError):  # a closed or detached stream
        return False
