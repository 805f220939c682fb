"""Atomic file writes: write a temporary file in the target folder, then rename it into place."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from modularml.errors import FileWriteError, ModularMLError

__all__ = ["atomic_write"]

logger = logging.getLogger("modularml.io.atomic")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary binary file next to ``path``; on success it replaces ``path`` in one rename.

    If the block raises (or the process dies), the temporary file is removed (or left under its
    hidden temporary name) and ``path`` is untouched: a reader never sees half a file under the
    real name.

    An ``OSError`` while writing (in the block, or when flushing, syncing, closing or renaming the
    file: a full disk, a lost permission) is raised as :class:`~modularml.errors.FileWriteError`,
    which names ``path``, keeps the ``errno`` and is itself an ``OSError``. Any other exception
    (including ``KeyboardInterrupt``) is re-raised as it is, after the same cleanup.

    Args:
        path: The final file location.
        durable: ``fsync`` the file before the rename, so that after a power loss the real name
            holds either the old file or the complete new one. Defaults to True.

    Yields:
        BinaryIO: The temporary file, open for writing.

    Raises:
        FileWriteError: If the file cannot be created, written, synced, closed or renamed.
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        handle = open(temp, "xb")  # noqa: SIM115 - closed below on every path
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        yield handle
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
        handle.close()
        os.replace(temp, target)
    except BaseException as exc:
        _discard(handle, temp)
        logger.debug("write of %s abandoned; temporary file removed", target)
        if isinstance(exc, OSError) and not isinstance(exc, ModularMLError):
            raise _write_error(target, exc) from exc
        raise


def _discard(handle: BinaryIO, temp: Path) -> None:
    """Close ``handle`` and delete ``temp``, whatever either raises: the write failed already."""
    # Closing flushes what is still buffered; on a full disk that raises again, but the file is
    # closed all the same. Nothing written there is wanted any more.
    with contextlib.suppress(Exception):
        handle.close()
    with contextlib.suppress(OSError):
        temp.unlink()


def _write_error(target: Path, exc: OSError) -> FileWriteError:
    """The :class:`FileWriteError` for a failed write of ``target``, carrying the cause's errno."""
    outcome = "the existing file is unchanged" if os.path.exists(target) else "no file was created"
    error = FileWriteError(f"Cannot write {str(target)!r}: {exc}. Nothing was saved; {outcome}.")
    error.errno = exc.errno
    return error
