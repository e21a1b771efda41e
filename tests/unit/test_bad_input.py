"""Malformed, hostile and awkward uploads: every one gets a clear outcome and never an exception.

The corpus is generated here (no binary fixtures). Whatever the status, the exact hashes must be
hashlib's over the original bytes; a non-image or unscannable object must say why; an image must
carry a 64-hex PDQ and a 16-hex pHash. Decompression bombs are small on disk and rejected from
their headers, so those tests finish in milliseconds rather than allocating gigapixels.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from hashcheck.fingerprinting.fingerprint import Fingerprint, fingerprint
from hashcheck.fingerprinting.imaging import SAFE_FORMATS, Limits
from hashcheck.tools.wrappers import pdf_without_pictures

STATUSES = {"image", "not_image", "unscannable"}
HEX64 = re.compile(r"[0-9a-f]{64}")
HEX16 = re.compile(r"[0-9a-f]{16}")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- helpers -----------------------------------------------------------------------------------


def check(data: bytes, status: str, limits: Limits | None = None, source=None) -> Fingerprint:
    """Fingerprint `data` (or `source`, a stream over it) and assert the outcome every object owes us."""
    fp = fingerprint(data if source is None else source, **({"limits": limits} if limits else {}))
    assert_exact(fp, data)
    assert fp.status == status, (fp.status, fp.error)
    assert_consistent(fp)
    return fp


def assert_exact(fp: Fingerprint, data: bytes) -> None:
    assert fp.size == len(data)
    assert fp.md5 == hashlib.md5(data).hexdigest()
    assert fp.sha1 == hashlib.sha1(data).hexdigest()
    assert fp.sha256 == hashlib.sha256(data).hexdigest()


def assert_consistent(fp: Fingerprint) -> None:
    """The fields that must go with a status."""
    assert fp.status in STATUSES
    if fp.status == "image":
        assert fp.error is None or fp.error.startswith("frame unreadable") or fp.partial, fp.error
        assert HEX64.fullmatch(fp.pdq) and HEX16.fullmatch(fp.phash), (fp.pdq, fp.phash)
        assert 0 <= fp.pdq_quality <= 100
        assert fp.frames >= 1 and fp.width >= 1 and fp.height >= 1
        assert fp.near and all(h.frame < fp.frames for h in fp.near)
    else:
        assert isinstance(fp.error, str) and fp.error.strip(), "a rejected object must say why"
        assert fp.pdq is None and fp.phash is None and fp.pdq_quality is None and not fp.near


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def scene(width: int = 256, height: int = 192) -> Image.Image:
    """A smooth, asymmetric RGB picture with enough structure for a high PDQ quality."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    red = 128 + 100 * np.sin(7 * x + 3 * y)
    green = 128 + 100 * np.cos(5 * y - 2 * x * x)
    blue = 255.0 * ((x - 0.3) ** 2 + (y - 0.4) ** 2 < 0.05)
    image = Image.fromarray(np.dstack([red, green, blue]).clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for i in range(6):
        left, top = (37 * i * width // 256) % width, (53 * i * height // 192 + 10) % height
        colour = ((60 * i) % 256, 255 - 40 * i, (90 * i) % 256)
        draw.rectangle((left, top, left + width // 6, top + height // 8), fill=colour)
    return image


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def frame_pdqs(fp: Fingerprint) -> dict[int, str]:
    """The un-rotated PDQ of every frame that was hashed (duplicates are dropped by the library)."""
    return {h.frame: h.hash for h in fp.near if h.algorithm == "pdq" and h.variant == "original"}


def hashed_frames(fp: Fingerprint) -> set[int]:
    return {h.frame for h in fp.near}


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_from_scratch(pixels: np.ndarray, bit_depth: int, colour_type: int) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB): filter 0 on every row."""
    height, width = pixels.shape[:2]
    samples = pixels.astype(">u2" if bit_depth == 16 else "u1").reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in samples)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")


def png_with_size(data: bytes, width: int, height: int) -> bytes:
    """Patch IHDR's width/height and recompute its CRC, so only the declared size is a lie."""
    patched = bytearray(data)
    assert patched[12:16] == b"IHDR"
    patched[16:24] = struct.pack(">II", width, height)
    patched[29:33] = struct.pack(">I", zlib.crc32(bytes(patched[12:29])))
    return bytes(patched)


def jpeg_segments(data: bytes):
    """(marker, offset) of each JPEG header segment up to and including SOS."""
    pos = 2
    while pos + 4 <= len(data):
        assert data[pos] == 0xFF, "not at a marker"
        marker = data[pos + 1]
        yield marker, pos
        if marker == 0xDA:
            return
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """Patch the SOF segment's declared height/width."""
    patched = bytearray(data)
    offset = next(pos for marker, pos in jpeg_segments(data) if marker in (0xC0, 0xC1, 0xC2))
    patched[offset + 5 : offset + 9] = struct.pack(">HH", height, width)
    return bytes(patched)


def jpeg_entropy_start(data: bytes) -> int:
    marker, pos = list(jpeg_segments(data))[-1]
    assert marker == 0xDA
    return pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]


def many_frame_gif(count: int, side: int = 8) -> bytes:
    """An animated GIF of `count` 1x1-pixel frames, built by hand so 2000 frames cost nothing to make.

    Each frame paints one pixel (disposal "leave in place"), black or white in alternate sweeps,
    so the composed frames differ. LZW with minimum code size 2: clear (4), the pixel, end (5), all
    3-bit codes, which pack into the two bytes 0x44 | pixel << 3, 0x01.
    """
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for i in range(count):
        pixel = 1 - (i // (side * side)) % 2
        x, y = i % side, (i // side) % side
        out += b"\x21\xf9\x04\x04\x02\x00\x00\x00"  # graphic control: disposal 1, 20 ms, no transparency
        out += b"\x2c" + struct.pack("<HHHHB", x, y, 1, 1, 0)
        out += b"\x02\x02" + bytes([0x44 | pixel << 3, 0x01]) + b"\x00"
    return bytes(out + b"\x3b")


class ShortReads:
    """A readable stream that returns at most `step` bytes per read, like a slow socket."""

    def __init__(self, data: bytes, step: int):
        self._data, self._pos, self._step = data, 0, step

    def read(self, size: int = -1) -> bytes:
        size = self._step if size is None or size < 0 else min(size, self._step)
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk


SCENE = scene()
SMALL = scene(48, 32)
JPEG = encode(SCENE, "JPEG", quality=90)
PNG = encode(SCENE, "PNG")
GIF = encode(SCENE, "GIF")
WEBP = encode(SCENE, "WEBP", quality=80)


# --- things that are not images ------------------------------------------------------------------


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "hello " * 200)
        archive.writestr("photo.png", PNG)  # an image inside an archive is not decoded
    return out.getvalue()


NOT_IMAGES = {
    "zero-bytes": b"",
    "one-byte": b"\x00",
    "one-byte-ff": b"\xff",
    "jpeg-soi-only": b"\xff\xd8",
    "png-signature-prefix": PNG_SIGNATURE[:4],
    "text": ("Hello, world. Plain text with ümlauts.\n" * 50).encode(),
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10"/></svg>',
    "pdf": pdf_without_pictures(),  # a real PDF with no picture on its page
    "zip": _zip(),
    "gzip": zlib.compress(b"x" * 1000, wbits=31),
    "random": np.random.default_rng(1).bytes(4096),
    "elf": b"\x7fELF\x02\x01\x01\x00" + bytes(8) + struct.pack("<HHI", 2, 62, 1) + bytes(200),
    "riff-wave": b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + bytes(40),
}


@pytest.mark.parametrize("data", NOT_IMAGES.values(), ids=NOT_IMAGES.keys())
def test_non_images_are_not_image_with_a_reason(data):
    check(data, "not_image")


# --- broken images -------------------------------------------------------------------------------


TRUNCATIONS = {
    "jpeg": (JPEG, [3, 20, 200, len(JPEG) // 2, len(JPEG) - 40]),
    "png": (PNG, [8, 20, 40, len(PNG) // 2, len(PNG) - 40]),
    "gif": (GIF, [6, 13, 40, len(GIF) // 2, len(GIF) - 40]),
    "webp": (WEBP, [12, 20, 40, len(WEBP) // 2, len(WEBP) - 40]),
}


@pytest.mark.parametrize("name", TRUNCATIONS)
def test_truncated_images_are_hashed_as_far_as_they_go_or_unscannable(name):
    """Never a whole, clean-looking image: hashed as far as the data goes and flagged `partial`, or,
    with too little left, unscannable."""
    data, cuts = TRUNCATIONS[name]
    assert not check(data, "image").partial  # the whole file decodes: the cut, not the file, is what fails
    for cut in cuts:
        fp = fingerprint(data[:cut])
        assert fp.status == "unscannable" or (fp.status == "image" and fp.partial), (cut, fp.status, fp.error)
        assert_consistent(fp)


def _bits(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_a_truncated_photo_hashes_like_the_whole_as_a_viewer_shows_it(progressive):
    """Pillow refuses a JPEG missing its last bytes; a browser shows it whole (baseline: all rows
    present; progressive: the scans present show every row). Hashed as far as its data goes, its PDQ
    is the whole photo's within a few bits, so a list entry still matches it."""
    from hashcheck.tools import samples

    whole = encode(samples.picture(7).convert("RGB"), "JPEG", quality=90, progressive=progressive)
    cut = whole[:-2] if not progressive else whole[: len(whole) * 3 // 4]
    assert check(whole, "image").partial is False
    fp = check(cut, "image")
    assert fp.partial and "as far as its data goes" in fp.error
    assert _bits(fp.pdq, fingerprint(whole).pdq) <= 4


def test_too_little_of_a_truncated_photo_is_unscannable_and_says_how_much():
    from hashcheck.tools import samples

    whole = encode(samples.picture(7).convert("RGB"), "JPEG", quality=90)
    fp = check(whole[: len(whole) // 4], "unscannable")
    assert re.search(r"only \d+% of the image is present", fp.error), fp.error


def test_a_partial_image_that_matches_nothing_is_not_clean():
    """What a viewer shows matched nothing, but the missing part could be a listed picture's."""
    from hashcheck.matching.matcher import match
    from hashcheck.matching.stores.memory import MemoryStore

    partial = fingerprint(JPEG[: len(JPEG) * 9 // 10])
    assert partial.status == "image" and partial.partial
    assert match(partial, MemoryStore([])).verdict == "unscannable"
    assert match(fingerprint(JPEG), MemoryStore([])).verdict == "clean"


def test_jpeg_with_corrupted_entropy_data_still_hashes():
    """libjpeg conceals damaged entropy-coded data (the picture still shows), so it is still an image."""
    start = jpeg_entropy_start(JPEG)
    middle = (start + len(JPEG)) // 2
    for offset in (middle - 200, middle, middle + 200):
        damaged = bytearray(JPEG)
        for i in range(offset, offset + 16):
            damaged[i] ^= 0x5A
        fp = check(bytes(damaged), "image")
        assert fp.format == "JPEG" and (fp.width, fp.height) == SCENE.size


def test_png_with_bad_ihdr_crc_is_unscannable():
    damaged = bytearray(PNG)
    damaged[29] ^= 0xFF  # IHDR's CRC
    check(bytes(damaged), "unscannable")


def test_png_with_bad_idat_crc_still_hashes_the_same_pixels():
    """Pillow does not verify IDAT's CRC (zlib's Adler-32 still guards the pixels): same picture, same hash."""
    damaged = bytearray(PNG)
    idat = PNG.index(b"IDAT")
    length = struct.unpack(">I", PNG[idat - 4 : idat])[0]
    damaged[idat + 4 + length] ^= 0xFF
    assert check(bytes(damaged), "image").pdq == check(PNG, "image").pdq


def test_jpeg_header_followed_by_garbage_is_unscannable():
    garbage = np.random.default_rng(7).bytes(5000)
    check(JPEG[:120] + garbage, "unscannable")
    check(b"\xff\xd8\xff" + garbage, "unscannable")


def test_png_signature_followed_by_garbage_is_unscannable():
    check(PNG_SIGNATURE + np.random.default_rng(8).bytes(5000), "unscannable")


# --- the file name never matters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "status", "fmt"),
    [
        ("photo.jpg", PNG, "image", "PNG"),
        ("photo.png", JPEG, "image", "JPEG"),
        ("notes.txt", GIF, "image", "GIF"),
        ("photo.jpg", NOT_IMAGES["text"], "not_image", None),
        ("photo.png", NOT_IMAGES["pdf"], "not_image", None),
    ],
)
def test_wrong_extension_does_not_matter(tmp_path, name, data, status, fmt):
    path = tmp_path / name
    path.write_bytes(data)
    with path.open("rb") as stream:
        fp = check(data, status, source=stream)
    assert fp.format == fmt
    assert fp == fingerprint(data)


# --- decompression bombs and limits -------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(60000, 60000), (10000, 10000), (1, 2**31 - 1), (2**31 - 1, 1)])
def test_png_declaring_a_huge_size_is_unscannable_without_decoding(width, height):
    small = encode(Image.new("L", (8, 8)), "PNG")
    bomb = png_with_size(small, width, height)
    assert len(bomb) < 100
    check(bomb, "unscannable")


def test_png_declaring_zero_size_is_unscannable():
    check(png_with_size(encode(Image.new("L", (8, 8)), "PNG"), 0, 0), "unscannable")


def test_gif_with_a_huge_logical_screen_is_unscannable():
    bomb = bytearray(encode(Image.new("L", (8, 8)), "GIF"))
    bomb[6:10] = struct.pack("<HH", 65535, 65535)
    check(bytes(bomb), "unscannable")


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_jpeg_declaring_a_huge_size_is_unscannable(progressive):
    small = encode(Image.new("RGB", (16, 16), (10, 200, 30)), "JPEG", progressive=progressive)
    check(jpeg_with_size(small, 65535, 65535), "unscannable")


def test_real_png_over_max_pixels_is_unscannable():
    big = encode(Image.new("L", (2000, 1000), 40), "PNG")  # 2 MP that compress to a few KB
    assert len(big) < 20_000
    check(big, "unscannable", Limits(max_pixels=1_000_000))
    assert check(big, "image", Limits(max_pixels=2_000_000)).width == 2000


def test_jpeg_limits_declared_and_reduced_pixels():
    big = encode(scene(2048, 1536), "JPEG", quality=70)
    check(big, "unscannable", Limits(max_declared_pixels=1_000_000))
    # Reduced decoding keeps a 1024 px long side, 1024x768 = 786k pixels: over a 100k budget.
    check(big, "unscannable", Limits(max_pixels=100_000, decode_long_side=1024))
    fp = check(big, "image", Limits(max_pixels=1_000_000, decode_long_side=1024))
    assert (fp.width, fp.height) == (2048, 1536)  # the declared size, not the reduced one


def test_image_over_max_decode_bytes_is_unscannable_with_exact_hashes():
    limits = Limits(max_decode_bytes=len(PNG) - 1)
    check(PNG, "unscannable", limits)
    check(PNG, "unscannable", limits, source=io.BytesIO(PNG))
    check(PNG, "image", Limits(max_decode_bytes=len(PNG)))  # the limit itself still decodes


def test_non_image_over_max_decode_bytes_is_not_image():
    data = NOT_IMAGES["random"] * 4
    check(data, "not_image", Limits(max_decode_bytes=1000))
    check(data, "not_image", Limits(max_decode_bytes=1000), source=io.BytesIO(data))


def test_image_over_max_decode_bytes_from_a_short_read_stream_is_still_unscannable():
    """Whether an over-limit object looks like an image must not depend on how the stream chunks it."""
    limits = Limits(max_decode_bytes=1000)
    for step in (1, 3, 15):
        check(PNG, "unscannable", limits, source=ShortReads(PNG, step))
        check(JPEG, "unscannable", limits, source=ShortReads(JPEG, step))


# --- every decoder and pixel mode ---------------------------------------------------------------


def _grey16(content: np.ndarray) -> np.ndarray:
    """16-bit samples whose top byte is `content`, with noise in the low byte."""
    noise = np.random.default_rng(3).integers(0, 256, content.shape)
    return content.astype(np.uint16) * 256 + noise.astype(np.uint16)


def _can_save(fmt: str) -> bool:
    try:
        encode(Image.new("RGB", (8, 8)), fmt)
    except Exception:
        return False
    return True


def _with_alpha(image: Image.Image) -> Image.Image:
    """`image` with a real (never fully transparent) alpha ramp, so encoders keep the alpha channel."""
    ramp = np.linspace(64, 255, image.width, dtype=np.uint8)
    alpha = Image.fromarray(np.broadcast_to(ramp, (image.height, image.width)).copy(), "L")
    out = image.copy()
    out.putalpha(alpha)
    return out


class Case(NamedTuple):
    make: Callable[[], bytes]
    format: str
    mode: str  # the mode Pillow opens it in: the case is what its name says
    reference: Callable[[], Image.Image]  # the picture it shows, hashed from a plain PNG to compare
    tolerance: int  # PDQ bits: lossy codecs move some; a clipped or garbled decode moves ~128


LOSSY = 24
GREY = SCENE.convert("L")
GREY16 = _grey16(np.asarray(GREY))
ICON = SCENE.resize((64, 48), Image.Resampling.LANCZOS)

MODES = {
    "cmyk-jpeg": Case(lambda: encode(SCENE.convert("CMYK"), "JPEG"), "JPEG", "CMYK", lambda: SCENE, LOSSY),
    "grey-jpeg": Case(lambda: encode(GREY, "JPEG"), "JPEG", "L", lambda: GREY, LOSSY),
    "progressive-jpeg": Case(lambda: encode(SCENE, "JPEG", progressive=True), "JPEG", "RGB", lambda: SCENE, LOSSY),
    "grey16-png": Case(lambda: encode(Image.fromarray(GREY16), "PNG"), "PNG", "I;16", lambda: GREY, 4),
    "rgb16-png": Case(lambda: png_from_scratch(_grey16(np.asarray(SCENE)), 16, 2), "PNG", "RGB", lambda: SCENE, 4),
    "palette-transparency-png": Case(
        lambda: encode(SCENE.convert("P"), "PNG", transparency=0), "PNG", "P", lambda: SCENE.convert("P"), 2
    ),
    "la-png": Case(lambda: encode(_with_alpha(GREY), "PNG"), "PNG", "LA", lambda: GREY, 2),
    "rgba-png": Case(lambda: encode(_with_alpha(SCENE), "PNG"), "PNG", "RGBA", lambda: SCENE, 2),
    "1bit-png": Case(lambda: encode(SCENE.convert("1"), "PNG"), "PNG", "1", lambda: SCENE.convert("1"), 2),
    "tiff": Case(lambda: encode(SCENE, "TIFF"), "TIFF", "RGB", lambda: SCENE, 2),
    "tiff-grey16": Case(lambda: encode(Image.fromarray(GREY16), "TIFF"), "TIFF", "I;16", lambda: GREY, 4),
    "bmp": Case(lambda: encode(SCENE, "BMP"), "BMP", "RGB", lambda: SCENE, 2),
    "ppm": Case(lambda: encode(SCENE, "PPM"), "PPM", "RGB", lambda: SCENE, 2),
    "webp-lossy": Case(lambda: encode(SCENE, "WEBP"), "WEBP", "RGB", lambda: SCENE, LOSSY),
    "webp-lossless-alpha": Case(
        lambda: encode(_with_alpha(SCENE), "WEBP", lossless=True), "WEBP", "RGBA", lambda: SCENE, 2
    ),
    "ico": Case(lambda: encode(ICON, "ICO", sizes=[ICON.size]), "ICO", "RGB", lambda: ICON, 2),
    "gif": Case(lambda: GIF, "GIF", "P", lambda: Image.open(io.BytesIO(GIF)).convert("RGB"), 2),
}
OPTIONAL = {
    # Only where this Pillow (or pillow-heif) can write them and hashcheck allows them.
    "avif": Case(lambda: encode(SCENE, "AVIF"), "AVIF", "RGB", lambda: SCENE, LOSSY),
    "heif": Case(lambda: encode(SCENE, "HEIF"), "HEIF", "RGB", lambda: SCENE, LOSSY),
}


@pytest.mark.parametrize("name", [*MODES, *OPTIONAL])
def test_every_format_and_mode_is_hashed(name):
    case = MODES.get(name) or OPTIONAL[name]
    if name in OPTIONAL and (case.format not in SAFE_FORMATS or not _can_save(case.format)):
        pytest.skip(f"{case.format} cannot be written or is not decoded here")
    data = case.make()
    assert Image.open(io.BytesIO(data)).mode == case.mode
    fp = check(data, "image")
    assert fp.format == case.format and fp.frames == 1
    assert fp.pdq_quality >= 50  # real content, not a blank decode
    reference = check(encode(case.reference().convert("RGB"), "PNG"), "image")
    assert hamming(fp.pdq, reference.pdq) <= case.tolerance


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_grey_is_scaled_not_clipped(fmt):
    grey8 = np.asarray(SCENE.convert("L"))
    eight = check(encode(Image.fromarray(grey8), fmt), "image")
    sixteen = check(encode(Image.fromarray(_grey16(grey8)), fmt), "image")
    assert hamming(eight.pdq, sixteen.pdq) <= 4
    assert abs(eight.pdq_quality - sixteen.pdq_quality) <= 5  # clipping to white would give quality 0


def test_16_bit_rgb_matches_8_bit_rgb():
    rgb8 = np.asarray(SCENE)
    eight = check(png_from_scratch(rgb8, 8, 2), "image")
    sixteen = check(png_from_scratch(_grey16(rgb8), 16, 2), "image")
    assert hamming(eight.pdq, sixteen.pdq) <= 4 and eight.phash == sixteen.phash


# --- EXIF orientation ---------------------------------------------------------------------------

# The stored picture for each EXIF orientation, so that applying the orientation shows SCENE upright.
STORED_FOR = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize("orientation", STORED_FOR)
def test_exif_oriented_jpeg_hashes_like_the_upright_image(orientation):
    stored = SCENE.transpose(STORED_FOR[orientation])
    upright = check(encode(SCENE, "JPEG", quality=95), "image")
    oriented = check(encode(stored, "JPEG", quality=95, exif=_exif(orientation)), "image")
    sideways = check(encode(stored, "JPEG", quality=95), "image")  # the same pixels without the tag
    assert hamming(upright.pdq, oriented.pdq) <= 16
    assert hamming(upright.pdq, sideways.pdq) > 64  # the test can tell orientation applied from not


def test_exif_oriented_png_hashes_like_the_upright_image():
    oriented = encode(SCENE.transpose(Image.Transpose.ROTATE_90), "PNG", exif=_exif(6))
    assert hamming(check(oriented, "image").pdq, check(PNG, "image").pdq) <= 2


def test_exif_oriented_16_bit_png_hashes_like_the_upright_image():
    grey = SCENE.convert("L")
    upright = check(encode(grey, "PNG"), "image")
    stored = np.asarray(grey.transpose(Image.Transpose.ROTATE_90))
    oriented = check(encode(Image.fromarray(_grey16(stored)), "PNG", exif=_exif(6)), "image")
    assert hamming(upright.pdq, oriented.pdq) <= 4


# --- animations ---------------------------------------------------------------------------------

FRAME_COUNT = 8


def _frames(mode: str) -> list[Image.Image]:
    """Distinct blocky frames (blocks survive GIF palettes and lossless codecs exactly)."""
    rng = np.random.default_rng(11)
    blocks = [rng.integers(0, 256, (6, 8), dtype=np.uint8) for _ in range(FRAME_COUNT)]
    return [Image.fromarray(b).resize((64, 48), Image.Resampling.NEAREST).convert(mode) for b in blocks]


ANIMATIONS = {
    "gif": ("GIF", "L", {}),
    "webp": ("WEBP", "RGB", {"lossless": True}),
    "apng-rgb": ("PNG", "RGB", {}),
    "apng-grey": ("PNG", "L", {}),
    "tiff-multipage-grey": ("TIFF", "L", {}),
}


def _animation(name: str) -> tuple[bytes, list[str]]:
    fmt, mode, options = ANIMATIONS[name]
    frames = _frames(mode)
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)
    solo = [check(encode(frame, "PNG"), "image").pdq for frame in frames]
    return data, solo


@pytest.mark.parametrize("name", ANIMATIONS)
def test_animation_hashes_spread_frames_within_max_frames(name):
    data, solo = _animation(name)
    fp = check(data, "image")
    assert fp.frames == FRAME_COUNT
    assert fp.pdq == solo[0]
    pdqs = frame_pdqs(fp)
    assert max(pdqs) == FRAME_COUNT - 1  # the last frame is among the evenly spaced ones
    assert len(hashed_frames(fp)) == Limits().max_frames
    # Each hashed frame is that frame's picture, not another frame's.
    assert {index: hamming(pdq, solo[index]) for index, pdq in pdqs.items()} == dict.fromkeys(pdqs, 0)


@pytest.mark.parametrize("max_frames", [1, 2, 3])
def test_animation_respects_max_frames(max_frames):
    data, solo = _animation("gif")
    fp = check(data, "image", Limits(max_frames=max_frames))
    assert fp.frames == FRAME_COUNT
    frames = hashed_frames(fp)
    assert len(frames) == max_frames and 0 in frames
    assert max_frames == 1 or FRAME_COUNT - 1 in frames


def test_animation_respects_the_total_pixel_budget():
    data, _ = _animation("gif")
    fp = check(data, "image", Limits(max_total_pixels=64 * 48))  # one frame's worth
    assert fp.frames == FRAME_COUNT and hashed_frames(fp) == {0}


def _long_gif(listed: Image.Image, at: int, shown_ms: int, frames: int = 300, repeat: int = 1) -> bytes:
    """`frames` distinct noise frames of 100 ms, with `listed` at frame `at` shown for `shown_ms`
    (as one frame, or as `repeat` identical frames sharing that time)."""
    rng = np.random.default_rng(5)
    size = listed.size
    noise = [Image.fromarray(rng.integers(0, 256, (6, 8), dtype=np.uint8)).resize(size) for _ in range(frames)]
    pictures = noise[:at] + [listed] * repeat + noise[at + 1 :]
    durations = [100] * at + [shown_ms // repeat] * repeat + [100] * (frames - at - 1)
    return encode(pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)


@pytest.mark.parametrize("repeat", [1, 600], ids=["one-frame", "600-identical-frames"])
def test_a_picture_shown_for_a_minute_in_a_long_gif_is_hashed(repeat):
    """A 300-frame GIF showing a picture at frame 1 for 60 s: frames are chosen by display time (and
    identical frames merged), so that picture is hashed, not five evenly spaced noise frames."""
    from hashcheck.tools import samples

    listed = samples.picture(9).resize((96, 72)).convert("L")
    data = _long_gif(listed, at=1, shown_ms=60_000, repeat=repeat)
    fp = check(data, "image")
    assert 1 in hashed_frames(fp) and len(hashed_frames(fp)) <= Limits().max_frames
    alone = fingerprint(encode(listed.convert("P").convert("L"), "PNG")).pdq
    assert min(hamming(h.hash, alone) for h in fp.near if h.algorithm == "pdq" and h.frame == 1) <= 8


def test_gif_with_2000_tiny_frames_hashes_at_most_max_frames_of_the_scanned_ones():
    data = many_frame_gif(2000)
    assert Image.open(io.BytesIO(data)).n_frames == 2000  # the hand-made GIF is what we think it is
    limits = Limits()
    fp = check(data, "image", limits)
    frames = hashed_frames(fp)
    assert fp.frames == 2000
    assert 1 < len(frames) <= limits.max_frames
    assert max(frames) < limits.max_frame_scan


# --- tiny and flat images -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (1, 1000), (1000, 1), (4, 4)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_tiny_images_are_images_with_zero_pdq_quality(size):
    pixels = np.random.default_rng(5).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    fp = check(encode(Image.fromarray(pixels), "PNG"), "image")
    assert (fp.width, fp.height) == size
    assert fp.pdq_quality == 0  # PDQ cannot say anything about fewer than 5 rows or columns


def test_flat_single_colour_image_has_low_pdq_quality():
    flat = check(encode(Image.new("RGB", (200, 150), (200, 30, 30)), "PNG"), "image")
    assert flat.pdq_quality <= 10
    assert check(PNG, "image").pdq_quality >= 50


# --- streams and buffer types -------------------------------------------------------------------

STREAM_CASES = {"jpeg": JPEG, "png": PNG, "truncated-png": PNG[:300], "text": NOT_IMAGES["text"], "empty": b""}


@pytest.mark.parametrize("data", STREAM_CASES.values(), ids=STREAM_CASES.keys())
def test_streams_and_buffers_give_the_same_fingerprint_as_bytes(data):
    expected = fingerprint(data)
    assert_exact(expected, data)
    assert fingerprint(io.BytesIO(data)) == expected
    assert fingerprint(io.BufferedReader(io.BytesIO(data))) == expected
    for step in (1, 7, 4096):
        assert fingerprint(ShortReads(data, step)) == expected
    assert fingerprint(bytearray(data)) == expected
    assert fingerprint(memoryview(data)) == expected


def test_memoryview_of_wider_items_counts_bytes():
    data = NOT_IMAGES["text"][:1000]
    fp = fingerprint(memoryview(data).cast("I"))
    assert fp.size == len(data) and fp.sha256 == hashlib.sha256(data).hexdigest()


# --- fuzzing ------------------------------------------------------------------------------------

SEEDS = {
    "jpeg": encode(SMALL, "JPEG", quality=85),
    "png": encode(SMALL, "PNG"),
    "gif": encode(SMALL, "GIF"),
    "webp": encode(SMALL, "WEBP", quality=70),
}
SIGNATURE_LENGTH = {"jpeg": 3, "png": 8, "gif": 6, "webp": 0}  # WebP's marks are split around a size


@st.composite
def mutations(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        # Half of the edits land in the first 64 bytes, where the headers and sizes live.
        pos = draw(st.integers(0, 63) | st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        if kind == "flip" and pos < len(data):
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "set" and pos < len(data):
            data[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 32))]
    return bytes(data)


def _fuzz_one(name: str, data: bytes) -> None:
    fp = fingerprint(data)
    assert_exact(fp, data)
    assert_consistent(fp)
    if SIGNATURE_LENGTH[name] and data[: SIGNATURE_LENGTH[name]] == SEEDS[name][: SIGNATURE_LENGTH[name]]:
        assert fp.status != "not_image"  # it starts like an image: at worst unscannable
    assert fingerprint(io.BytesIO(data)) == fp


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=mutations(SEEDS["jpeg"]))
def test_fuzz_mutated_jpeg(data):
    _fuzz_one("jpeg", data)


@FUZZ
@given(data=mutations(SEEDS["png"]))
def test_fuzz_mutated_png(data):
    _fuzz_one("png", data)


@settings(FUZZ, max_examples=100)
@given(name=st.sampled_from(["gif", "webp"]), data=st.data())
def test_fuzz_mutated_gif_and_webp(name, data):
    _fuzz_one(name, data.draw(mutations(SEEDS[name])))


@settings(FUZZ, max_examples=100)
@given(prefix=st.sampled_from([b"", b"\xff\xd8\xff", PNG_SIGNATURE, b"GIF89a", b"BM", b"II*\x00"]), tail=st.binary())
def test_fuzz_signature_then_random_bytes(prefix, tail):
    data = prefix + tail
    fp = fingerprint(data)
    assert_exact(fp, data)
    assert_consistent(fp)


def test_a_broken_later_frame_keeps_the_frames_before_it():
    """Junk appended to an animation must not turn a listed first frame into "unscannable"."""
    data, solo = _animation("gif")
    fp = check(data[:-5], "image")
    assert fp.pdq == solo[0] and fp.error.startswith("frame unreadable")


def test_max_frames_zero_still_hashes_the_first_frame():
    data, solo = _animation("gif")
    fp = check(data, "image", Limits(max_frames=0))
    assert hashed_frames(fp) == {0} and fp.pdq == solo[0]


def test_text_starting_like_a_bmp_is_not_an_image():
    fp = check(b"BMW 320d, 2011, 180000 km, one owner\n", "not_image")
    assert "not an image" in fp.error
