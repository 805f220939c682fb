"""Writing the zip of a ModularML file: stored (uncompressed) members whose data is aligned.

:class:`AlignedZipWriter` writes a standard zip (readable by :mod:`zipfile`, ``unzip`` and any
other zip tool) whose members are all stored, never compressed, and whose data starts at a
multiple of :data:`ALIGNMENT` bytes in the file. The alignment comes from padding in each local
header's extra field (the ``0xD935`` alignment field that Android's ``zipalign`` also writes),
so that a member's bytes can be viewed in place (numpy arrays, Arrow buffers) once read into an
aligned buffer or mapped from the file.

Every member's bytes pass once through the checksums as they are written, in chunks that are
still in the CPU cache: the CRC-32 that the zip format requires (ISA-L's, when the ``isal``
package is installed, otherwise :mod:`zlib`'s) and the xxHash XXH3-64 digest that the ModularML
manifest records (:func:`checksum`).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import xxhash

try:  # ISA-L's CRC-32 runs at memory speed; zlib's is several times slower
    from isal.isal_zlib import crc32
except ImportError:  # pragma: no cover - isal is a dependency where it has wheels
    from zlib import crc32

__all__ = ["ALIGNMENT", "CHECKSUM_ALGORITHM", "AlignedZipWriter", "checksum", "format_checksum"]

#: Member data starts at a multiple of this many bytes (a cache line; more than any dtype needs).
ALIGNMENT = 64
#: The checksum the manifest records for each member: xxHash's XXH3, 64 bits.
CHECKSUM_ALGORITHM = "xxh3_64"

_CHUNK = 1 << 20  # checksums and writes go through 1 MiB at a time, while it is in the cache
_MARK = 0xFFFFFFFF  # a 32-bit field that says "see the zip64 extra field / record"
_COUNT_MARK = 0xFFFF
_ZIP64_LIMIT = _MARK  # sizes and offsets from here on need zip64 (a test may lower it)
_ZIP64_COUNT_LIMIT = _COUNT_MARK
_VERSION_ZIP64 = 45
_VERSION_DEFAULT = 20
_ALIGN_EXTRA_ID = 0xD935
_ZIP64_EXTRA_ID = 0x0001
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")


def format_checksum(digest: int) -> str:
    """The manifest's text for an XXH3-64 digest: ``"xxh3_64:<16 hex digits>"``."""
    return f"{CHECKSUM_ALGORITHM}:{digest:016x}"


def checksum(data: bytes | memoryview) -> str:
    """The manifest's checksum text of ``data`` (see :func:`format_checksum`)."""
    return format_checksum(xxhash.xxh3_64_intdigest(data))


@dataclass
class _Member:
    name: bytes
    header_offset: int
    data_offset: int
    crc: int = 0
    size: int = 0


class _MemberSink:
    """The file-like object a member's data is written through: it checksums and counts what passes."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.crc = 0
        self.digest = xxhash.xxh3_64()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        for start in range(0, size, _CHUNK):
            chunk = view[start : start + _CHUNK]
            self.crc = crc32(chunk, self.crc)
            self.digest.update(chunk)
            self.handle.write(chunk)
        self.size += size
        return size

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        """Nothing to do: the writes go straight to the file."""

    def close(self) -> None:
        self.closed = True


class AlignedZipWriter:
    """Writes stored, aligned members to an open binary file, then the zip's central directory.

    Args:
        handle: The file, open for writing at its start (e.g. from :func:`~modularml.io.atomic_write`).

    Example:
        >>> writer = AlignedZipWriter(handle)
        >>> digest = writer.add_bytes("config.json", b"{}")
        >>> digest = writer.add_stream("arrays/0.npy", lambda out: out.write(npy_bytes))
        >>> writer.finish()
    """

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.offset = 0
        self.members: dict[str, _Member] = {}
        now = time.localtime()
        self._time = (now.tm_hour << 11) | (now.tm_min << 5) | (now.tm_sec // 2)
        self._date = (max(now.tm_year, 1980) - 1980) << 9 | (now.tm_mon << 5) | now.tm_mday

    def _local_header(self, name: bytes, crc: int, size: int, *, zip64: bool) -> bytes:
        extra = struct.pack("<HHQQ", _ZIP64_EXTRA_ID, 16, size, size) if zip64 else b""
        start = self.offset + _LOCAL.size + len(name) + len(extra) + 6  # 6: the padding field's own header
        padding = -start % ALIGNMENT
        extra += struct.pack("<HHH", _ALIGN_EXTRA_ID, 2 + padding, ALIGNMENT) + bytes(padding)
        shown = _MARK if zip64 else size
        version = _VERSION_ZIP64 if zip64 else _VERSION_DEFAULT
        fields = (b"PK\x03\x04", version, 0, 0, self._time, self._date, crc, shown, shown, len(name), len(extra))
        return _LOCAL.pack(*fields) + name + extra

    def _begin(self, name: str, crc: int, size: int, *, zip64: bool) -> _Member:
        if name in self.members:
            raise ValueError(f"the member {name!r} is written twice")
        encoded = name.encode("ascii")
        header = self._local_header(encoded, crc, size, zip64=zip64)
        member = _Member(encoded, self.offset, self.offset + len(header), crc, size)
        self.handle.write(header)
        self.offset = member.data_offset
        self.members[name] = member
        return member

    def add_bytes(self, name: str, data: bytes) -> str:
        """Write a member whose bytes are at hand; returns its checksum text."""
        self._begin(name, crc32(data), len(data), zip64=False)
        self.handle.write(data)
        self.offset += len(data)
        return checksum(data)

    def add_stream(self, name: str, produce: Callable[[_MemberSink], object]) -> str:
        """Write a member of unknown size: ``produce(out)`` writes its bytes to ``out``; returns its checksum text.

        The local header is written first with a zip64 size field and completed afterwards.
        """
        member = self._begin(name, 0, 0, zip64=True)
        sink = _MemberSink(self.handle)
        produce(sink)
        member.crc, member.size = sink.crc, sink.size
        self.offset += sink.size
        self.handle.seek(member.header_offset + 14)  # crc-32, then the two (zip64) sizes
        self.handle.write(struct.pack("<I", member.crc))
        self.handle.seek(member.header_offset + _LOCAL.size + len(member.name) + 4)
        self.handle.write(struct.pack("<QQ", member.size, member.size))
        self.handle.seek(self.offset)
        return format_checksum(sink.digest.intdigest())

    def replace(self, name: str, data: bytes) -> None:
        """Overwrite the bytes of member ``name`` (written by :meth:`add_bytes`) with as many other bytes."""
        member = self.members[name]
        if len(data) != member.size:
            raise ValueError(f"the member {name!r} holds {member.size} bytes, not {len(data)}")
        member.crc = crc32(data)
        self.handle.seek(member.header_offset + 14)
        self.handle.write(struct.pack("<I", member.crc))
        self.handle.seek(member.data_offset)
        self.handle.write(data)
        self.handle.seek(self.offset)

    def finish(self) -> None:
        """Write the central directory and its end records (zip64 ones where the sizes need them)."""
        directory = bytearray()
        for member in self.members.values():
            zip64 = [value for value in (member.size, member.size) if value >= _ZIP64_LIMIT]
            offset = member.header_offset
            if offset >= _ZIP64_LIMIT:
                zip64.append(offset)
            extra = struct.pack(f"<HH{len(zip64)}Q", _ZIP64_EXTRA_ID, 8 * len(zip64), *zip64) if zip64 else b""
            size = _MARK if member.size >= _ZIP64_LIMIT else member.size
            version = _VERSION_ZIP64 if zip64 else _VERSION_DEFAULT
            directory += _CENTRAL.pack(
                b"PK\x01\x02",
                version,
                version,
                0,
                0,
                self._time,
                self._date,
                member.crc,
                size,
                size,
                len(member.name),
                len(extra),
                0,
                0,
                0,
                0,
                _MARK if offset >= _ZIP64_LIMIT else offset,
            )
            directory += member.name + extra
        start, count = self.offset, len(self.members)
        if start >= _ZIP64_LIMIT or len(directory) >= _ZIP64_LIMIT or count >= _ZIP64_COUNT_LIMIT:
            end64 = start + len(directory)
            fields64 = (_END64.size - 12, _VERSION_ZIP64, _VERSION_ZIP64, 0, 0, count, count, end64 - start, start)
            directory += _END64.pack(b"PK\x06\x06", *fields64)
            directory += _LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1)
            size_field = _MARK if end64 - start >= _ZIP64_LIMIT else end64 - start
            limits = (_COUNT_MARK, _COUNT_MARK, size_field, _MARK)
            directory += _END.pack(b"PK\x05\x06", 0, 0, *limits, 0)
        else:
            directory += _END.pack(b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0)
        self.handle.write(directory)
        self.offset += len(directory)
