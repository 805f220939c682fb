"""Atomic file writes: write a temporary file in the target folder, then rename it into place."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]

logger = logging.getLogger("modularml.io.atomic")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary binary file next to ``path``; on success it replaces ``path`` in one rename.

    If the block raises (or the process dies), the temporary file is removed (or left under its
    hidden temporary name) and ``path`` is untouched: a reader never sees half a file under the
    real name.

    Args:
        path: The final file location.
        durable: ``fsync`` the file before the rename, so that after a power loss the real name
            holds either the old file or the complete new one. Defaults to True.

    Yields:
        BinaryIO: The temporary file, open for writing.
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    handle = open(temp, "xb")  # noqa: SIM115 - closed below on every path
    try:
        yield handle
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
        handle.close()
        os.replace(temp, target)
    except BaseException:
        handle.close()
        with contextlib.suppress(OSError):
            temp.unlink()
        logger.debug("write of %s abandoned; temporary file removed", target)
        raise
