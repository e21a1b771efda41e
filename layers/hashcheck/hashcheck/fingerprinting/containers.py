"""Containers opened as an unpacker would, within limits that fail closed.

ZIP (stored or deflated, ZIP64, nested; office files, ODF and EPUB are ZIPs too), tar (plain, gzip,
bzip2, xz) and single gzip / bzip2 / xz files, all with the standard library; 7z (py7zr); PDF (the
images its pages show, inline ones too, with pypdf) and SVG / HTML (images embedded as `data:` URIs).
Each entry comes out with its path inside the container and its bytes, one at a time (nothing is
extracted to disk).

Everything here assumes hostile input. Over a limit (depth, entries, decompressed bytes, ratio, time), or
corrupt, a container raises `Refused`: the caller records the object `unscannable`, never clean. An
encrypted archive raises `Encrypted`: nobody can check it, the caller records it `opaque`.
RAR is not opened: the only decoders are non-free (unrar's licence) or external binaries; a RAR file
is exact-hashed like any other file.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import gzip
import io
import logging
import lzma
import re
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hashcheck.handover import Handover

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
    # looking inside one object: well within FingerprintFunction's 100 s, so that a slow container is
    # recorded unscannable with this reason instead of timing out (and retried) with none
    max_seconds: float = 60.0


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
        self.deadline = time.monotonic() + limits.max_seconds

    def in_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise Refused(f"looking inside took longer than {self.limits.max_seconds:g} s")

    def entry(self) -> None:
        self.in_time()
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise Refused(f"more than {self.limits.max_entries} entries inside")

    def picture(self) -> None:
        self.in_time()
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
        self.budget.in_time()
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
    if b"%PDF-" in data[:1024]:  # readers accept junk before the header, so an evasion would too
        return "pdf"
    if _is_markup(data[:4096]):
        return "markup"
    if data[:2] == b"\x1f\x8b":
        return "gzip"
    if data[:3] == b"BZh":
        return "bzip2"
    if data[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if data[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
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
        elif which == "7z":
            yield from _hostile(_sevenzip_entries(data, budget), "7z")
        elif which == "pdf":
            yield from _hostile(_pdf_entries(data, budget), "pdf")
        elif which == "markup":
            yield from _markup_entries(data, budget)
    except (Refused, Encrypted):
        raise
    except CORRUPT as exc:
        raise Refused(f"{which} is corrupt ({type(exc).__name__})") from exc


def _hostile(found: Iterator[Entry], which: str) -> Iterator[Entry]:
    """A pure-Python parser's entries, any error it raises on damaged input being a corrupt container."""
    try:
        yield from found
    except (Refused, Encrypted):
        raise
    except Exception as exc:  # noqa: BLE001 - every failure of the parser on hostile bytes
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


# --- 7z ----------------------------------------------------------------------------------------------


def _sevenzip_entries(data: bytes, budget: Budget) -> Iterator[Entry]:
    """A 7z archive's files. py7zr only pushes (it writes each file into an object it asks a factory
    for), so it runs in a thread and hands the bytes over a small queue (`_pulled`): one chunk at a
    time in memory, whatever the archive holds. Its declared sizes bound what it writes, and are checked
    against the budget and the ratio before anything is unpacked."""
    import py7zr  # only when a 7z arrives

    try:
        archive = py7zr.SevenZipFile(io.BytesIO(data))
    except py7zr.PasswordRequired as exc:  # the file list itself is encrypted
        raise Encrypted("the 7z archive is encrypted") from exc
    with archive:
        if archive.needs_password():
            raise Encrypted("the 7z archive is encrypted")
        declared = sum(f.uncompressed for f in archive.list() if not f.is_directory)
        if budget.bytes + declared > budget.limits.max_total_bytes:
            raise Refused(f"more than {budget.limits.max_total_bytes} bytes once unpacked")
        if declared > budget.limits.max_ratio * len(data) + CHUNK:
            raise Refused(f"the 7z archive expands over {budget.limits.max_ratio}x (a zip bomb)")
        for path, stream in _pulled(lambda factory: archive.extract(factory=factory)):
            budget.entry()
            yield Entry(path, Metered(stream, budget, len(data)))


class _Stopped(Exception):
    """The consumer stopped reading: the pushing unpacker's thread ends."""


def _pulled(extract: Callable[[Any], None]) -> Iterator[tuple[str, Any]]:
    """(path, stream) pairs from an unpacker that pushes: `extract(factory)` runs in a thread and
    writes into the writers `factory.create(path)` returns; the writers hand their chunks over a
    queue of a few chunks, so the thread waits while an entry is being read. Stopping early (a limit,
    an error) stops the thread at its next write."""
    import threading

    from py7zr.io import Py7zIO, WriterFactory

    handoff = Handover(maxsize=4)

    def put(item: tuple[str, Any]) -> None:
        if not handoff.put(item):
            raise _Stopped

    class Writer(Py7zIO):
        def __init__(self, path: str):
            put(("entry", path))

        def write(self, s: bytes | bytearray) -> int:
            put(("data", bytes(s)))
            return len(s)

        def close(self) -> None:
            put(("end", None))

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            pass

        def size(self) -> int:
            return 0

    class Factory(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            return Writer(filename)

    def run() -> None:
        try:
            extract(Factory())
            put(("done", None))
        except _Stopped:
            pass
        except Exception as exc:  # noqa: BLE001 - handed to the reader, who decides what it means
            with contextlib.suppress(_Stopped):
                put(("error", exc))

    thread = threading.Thread(target=run, name="unpacker", daemon=True)
    thread.start()
    reader = _Handoff(handoff)
    try:
        while (path := reader.next_entry()) is not None:
            yield path, reader
            reader.skip_rest()  # what the consumer did not read of this entry
    finally:
        handoff.stop()
        thread.join(timeout=5)


class _Handoff:
    """The reading end of `_pulled`'s queue: the current entry's chunks, then the next entry."""

    def __init__(self, handoff: Handover):
        self.handoff = handoff
        self.in_entry = False

    def _get(self) -> tuple[str, Any]:
        kind, value = self.handoff.get()
        if kind == "error":
            if type(value).__name__ == "PasswordRequired":
                raise Encrypted("the 7z archive is encrypted") from value
            raise Refused(f"7z is corrupt ({type(value).__name__})") from value
        return kind, value

    def next_entry(self) -> str | None:
        kind, value = self._get()
        if kind == "done":
            return None
        if kind != "entry":  # the unpacker's calls out of order: nothing we can trust
            raise Refused("7z is corrupt (unexpected order)")
        self.in_entry = True
        return value

    def read(self, n: int = -1) -> bytes:
        if not self.in_entry:
            return b""
        kind, value = self._get()
        if kind == "end":
            self.in_entry = False
            return b""
        return value

    def skip_rest(self) -> None:
        while self.read():
            pass


# --- documents -------------------------------------------------------------------------------------

MAX_PDF_IMAGE_PIXELS = 50_000_000  # an image a page declares, checked before pypdf decodes it


def _pdf_entries(data: bytes, budget: Budget) -> Iterator[Entry]:
    """Every image a page shows (its image XObjects, in forms too, and its inline images), as the image
    file it holds: a JPEG stream as is, other encodings as PNG. Path: `page=3/Im1`, `page=3/inline=1`."""
    import pypdf  # only when a PDF arrives: the layer ships it, the import is not free

    # pypdf's warnings about damaged files quote the file's bytes: a customer's content, not for our logs
    logging.getLogger("pypdf").setLevel(logging.CRITICAL + 1)
    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not _opens_without_password(reader):
        raise Encrypted("the PDF is password-protected")
    for number, page in enumerate(reader.pages, 1):
        for name, image in _page_images(page.get("/Resources"), depth=0):
            budget.entry()
            width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
            if width * height > MAX_PDF_IMAGE_PIXELS:
                raise Refused(f"page {number} holds an image of {width}x{height} pixels, over the limit")
            encoded = _image_file(image)
            budget.bytes += len(encoded)
            if budget.bytes > budget.limits.max_total_bytes:
                raise Refused(f"more than {budget.limits.max_total_bytes} bytes once unpacked")
            yield Entry(f"page={number}/{name.lstrip('/')}", io.BytesIO(encoded))
        for name, encoded in _inline_images(page, number):
            budget.entry()
            budget.bytes += len(encoded)
            if budget.bytes > budget.limits.max_total_bytes:
                raise Refused(f"more than {budget.limits.max_total_bytes} bytes once unpacked")
            yield Entry(f"page={number}/{name}", io.BytesIO(encoded))


# An inline image (BI ... ID <data> EI) sits in the page's drawing operators. Parsing those is slow in
# pure Python, so only a page whose operators hold one pays for it.
_INLINE_IMAGE = re.compile(rb"(?:^|\s)BI\s.*?\sID\s", re.DOTALL)


def _inline_images(page: Any, number: int) -> Iterator[tuple[str, bytes]]:
    """A page's inline images as image files (`inline=1`, ...), their declared pixels checked before
    pypdf decodes them."""
    contents = page.get_contents()
    if contents is None or not _INLINE_IMAGE.search(contents.get_data()):
        return
    for operands, operator in contents.operations:
        if operator == b"INLINE IMAGE":
            settings = operands["settings"]
            width = int(settings.get("/W", settings.get("/Width", 0)))
            height = int(settings.get("/H", settings.get("/Height", 0)))
            if width * height > MAX_PDF_IMAGE_PIXELS:
                raise Refused(f"page {number} holds an image of {width}x{height} pixels, over the limit")
    inline = (image for image in page.images if image.is_inline)
    for count, image in enumerate(inline, 1):
        yield f"inline={count}", _as_file(image)


def _as_file(image: Any) -> bytes:
    if image.name.endswith(".jpg"):
        return bytes(image.data)  # the inline data is a JPEG file
    out = io.BytesIO()
    image.image.save(out, "PNG")
    return out.getvalue()


def _opens_without_password(reader: Any) -> bool:
    """Many PDFs are encrypted with an empty user password (only printing or copying is restricted):
    every viewer opens them, so must we."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - an unknown cipher is as closed to us as a password
        return False


def _page_images(resources: Any, depth: int) -> Iterator[tuple[str, Any]]:
    if resources is None or depth > 3:
        return
    objects = resources.get_object().get("/XObject")
    if objects is None:
        return
    for name, reference in objects.get_object().items():
        obj = reference.get_object()
        if obj.get("/Subtype") == "/Image":
            yield name, obj
        elif obj.get("/Subtype") == "/Form":  # a form can draw images of its own
            yield from _page_images(obj.get("/Resources"), depth + 1)


def _image_file(image: Any) -> bytes:
    filters = image.get("/Filter")
    names = [str(f) for f in filters] if isinstance(filters, list) else [str(filters)]
    if names == ["/DCTDecode"]:
        return bytes(image._data)  # the stream is a JPEG file
    out = io.BytesIO()
    image.decode_as_image().save(out, "PNG")
    return out.getvalue()


# An image embedded in SVG or HTML as a data: URI is shown like any other picture.
_DATA_URI = re.compile(rb"data:image/[a-z0-9.+-]+;base64,([A-Za-z0-9+/=\s]+)", re.IGNORECASE)


def _is_markup(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<svg", b"<!doctype html", b"<html")):
        return True
    return text.startswith(b"<?xml") and b"<svg" in text


def _markup_entries(data: bytes, budget: Budget) -> Iterator[Entry]:
    for number, found in enumerate(_DATA_URI.finditer(data), 1):
        budget.entry()
        try:
            decoded = base64.b64decode(re.sub(rb"\s+", b"", found.group(1)))
        except binascii.Error as exc:
            raise Refused(f"data: URI {number} is not valid base64") from exc
        budget.bytes += len(decoded)
        if budget.bytes > budget.limits.max_total_bytes:
            raise Refused(f"more than {budget.limits.max_total_bytes} bytes once unpacked")
        yield Entry(f"data-uri={number}", io.BytesIO(decoded))
