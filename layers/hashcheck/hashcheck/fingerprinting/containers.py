"""Containers opened as an unpacker would, within limits that fail closed.

ZIP (stored or deflated, ZIP64, nested; office files, ODF and EPUB are ZIPs too), tar (plain, gzip,
bzip2, xz) and single gzip / bzip2 / xz files, all with the standard library. Each entry comes out
with its path inside the container and its bytes, one at a time (nothing is extracted to disk).

Everything here assumes hostile input. Over a limit (depth, entries, decompressed bytes, ratio), or
corrupt, a container raises `Refused`: the caller records the object `unscannable`, never clean. An
encrypted archive raises `Encrypted`: nobody can check it, the caller records it `opaque`.
RAR is not opened: the only decoders are non-free (unrar's licence) or external binaries; a RAR file
is exact-hashed like any other file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

CHUNK = 1 << 20


@dataclass(frozen=True)
class ContainerLimits:
    max_depth: int = 5  # containers inside containers
    max_entries: int = 10_000  # entries of one object, all levels together
    max_total_bytes: int = 1 << 30  # decompressed bytes of one object, all levels together
    max_ratio: int = 1_000  # decompressed / compressed size of one entry (a zip bomb's is far higher)
    # pictures fingerprinted in one object: each is ~3 KB of hashes, and the whole fingerprint must fit
    # in a Lambda response (6 MB) on its way from FingerprintFunction
    max_pictures: int = 2_000


DEFAULT_CONTAINER_LIMITS = ContainerLimits()


# What the standard library's readers raise on damaged data, or on a method they cannot read (Deflate64,
# PPMd, a version from the future, a password asked for): all of it is a container we cannot open.
CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


class Refused(Exception):
    """The container is over a limit or corrupt; the reason says which."""


class Encrypted(Exception):
    """The container is encrypted: its entries cannot be read by anyone without the key."""


@dataclass
class Entry:
    path: str
    stream: Any  # a readable (`read(n)`); read it before asking for the next entry


class Budget:
    """What one object may still unpack, shared by every level of nesting."""

    def __init__(self, limits: ContainerLimits):
        self.limits = limits
        self.entries = 0
        self.bytes = 0
        self.pictures = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise Refused(f"more than {self.limits.max_entries} entries inside")

    def picture(self) -> None:
        self.pictures += 1
        if self.pictures > self.limits.max_pictures:
            raise Refused(f"more than {self.limits.max_pictures} pictures inside")


class Metered:
    """An entry's stream, stopped as soon as it passes the object's byte budget or its own ratio: a
    bomb's declared sizes can lie, the bytes it actually produces are what count."""

    def __init__(self, stream, budget: Budget, compressed: int):
        self.stream, self.budget = stream, budget
        self.allowed = budget.limits.max_ratio * compressed + CHUNK  # a tiny entry still gets a chunk
        self.produced = 0

    def read(self, n: int = -1) -> bytes:
        try:
            chunk = self.stream.read(n if n and n > 0 else CHUNK)
        except CORRUPT as exc:  # the data behind a valid header may be anything
            raise Refused(f"an entry is corrupt ({type(exc).__name__})") from exc
        self.produced += len(chunk)
        self.budget.bytes += len(chunk)
        if self.budget.bytes > self.budget.limits.max_total_bytes:
            raise Refused(f"more than {self.budget.limits.max_total_bytes} bytes once unpacked")
        if self.produced > self.allowed:
            raise Refused(f"an entry expands over {self.budget.limits.max_ratio}x (a zip bomb)")
        return chunk


def kind(data: bytes) -> str | None:
    """Which container `data` is, by its own bytes (never by a file name), or None."""
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:3] == b"BZh":
        return "bzip2"
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if len(data) > 262 and data[257:262] == b"ustar":
        return "tar"
    return None


def entries(data: bytes, budget: Budget) -> Iterator[Entry]:
    """The entries of the container `data` is (one level), as metered streams."""
    which = kind(data)
    try:
        if which == "zip":
            yield from _zip_entries(data, budget)
        elif which in _OPENERS:
            yield from _compressed_entries(data, which, budget)
        elif which == "tar":
            yield from _tar_entries(io.BytesIO(data), budget)
    except (Refused, Encrypted):
        raise
    except CORRUPT as exc:
        raise Refused(f"{which} is corrupt ({type(exc).__name__})") from exc


def _zip_entries(data: bytes, budget: Budget) -> Iterator[Entry]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise Encrypted("the ZIP is encrypted")
            budget.entry()
            with archive.open(info) as stream:
                yield Entry(info.filename, Metered(stream, budget, info.compress_size))


_OPENERS: dict[str, Callable[[io.BytesIO], Any]] = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
SINGLE = "content"  # the path of a single compressed file's content (gzip keeps no reliable name)


def _compressed_entries(data: bytes, which: str, budget: Budget) -> Iterator[Entry]:
    opener = _OPENERS[which]
    with opener(io.BytesIO(data)) as peek:
        head = peek.read(512)
    if len(head) > 262 and head[257:262] == b"ustar":
        # .tar.gz and friends: the tar's entries, read through the decompressor as they come
        with opener(io.BytesIO(data)) as stream:
            yield from _tar_entries(Metered(stream, budget, len(data)), budget, streaming=True)
        return
    budget.entry()
    with opener(io.BytesIO(data)) as stream:
        yield Entry(SINGLE, Metered(stream, budget, len(data)))


def _tar_entries(stream, budget: Budget, streaming: bool = False) -> Iterator[Entry]:
    with tarfile.open(fileobj=stream, mode="r|" if streaming else "r:") as archive:
        for info in archive:
            if not info.isfile():
                continue  # links, devices and directories carry no bytes of their own
            budget.entry()
            member = archive.extractfile(info)
            if member is not None:
                # the tar's own bytes are metered already when it came out of a decompressor
                yield Entry(info.name, member if streaming else Metered(member, budget, max(info.size, 1)))
