"""What people upload every day is judged, never left `unscannable` (which the read policy blocks).

Phone photos (HEIC, AVIF) decode inside the library, as do the common web and camera formats; files that
are not pictures are `not_image` (their exact hashes are still checked). Everything here is generated
from benign pictures.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from hashcheck.algorithms import hamming
from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.tools import samples
from hashcheck.tools.wrappers import pdf_without_pictures
from tests.helpers import PHOTOS

PICTURE = Image.open(PHOTOS[0]).convert("RGB")  # an ordinary photo


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 on display
    return saved(PICTURE, "JPEG", exif=exif)


def animated(fmt: str, **options) -> bytes:
    frames = [samples.picture(41 + i, (320, 240)) for i in range(3)]
    return saved(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **options)


def a_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("notes.txt", "hello")
    return out.getvalue()


PICTURES = {
    "jpeg": lambda: saved(PICTURE, "JPEG", quality=85),
    "jpeg progressive": lambda: saved(PICTURE, "JPEG", progressive=True),
    "jpeg cmyk": lambda: saved(PICTURE.convert("CMYK"), "JPEG"),
    "jpeg exif-rotated": exif_rotated,
    "png rgba": lambda: saved(PICTURE.convert("RGBA"), "PNG"),
    "png palette": lambda: saved(PICTURE.convert("P"), "PNG"),
    "png 16-bit grey": lambda: saved(Image.fromarray(np.asarray(PICTURE.convert("L"), np.uint16) * 257), "PNG"),
    "gif animated": lambda: animated("GIF"),
    "webp lossy": lambda: saved(PICTURE, "WEBP", quality=80),
    "webp lossless": lambda: saved(PICTURE, "WEBP", lossless=True),
    "webp animated": lambda: animated("WEBP"),
    "heic": lambda: saved(PICTURE, "HEIF", quality=85),
    "avif": lambda: saved(PICTURE, "AVIF", quality=85),
    "tiff": lambda: saved(PICTURE, "TIFF"),
    "bmp": lambda: saved(PICTURE, "BMP"),
    "ico": lambda: saved(PICTURE.resize((64, 48)), "ICO"),
}


OTHER_FILES = {
    "text": lambda: b"shopping list: bread, milk\n",
    "json": lambda: b'{"a": 1}',
    "pdf": lambda: pdf_without_pictures(300, 200),  # a real document: opened, no picture on its page
    "zip (an office file too)": a_zip,
    "empty": lambda: b"",
}


@pytest.mark.parametrize("name", PICTURES)
def test_common_pictures_are_images(name):
    fp = fingerprint(PICTURES[name]())
    assert fp.status == "image", fp.error
    assert fp.pdq and fp.phash


@pytest.mark.parametrize("name", OTHER_FILES)
def test_other_common_files_are_not_images_and_never_unscannable(name):
    assert fingerprint(OTHER_FILES[name]()).status == "not_image"


@pytest.mark.parametrize("name", ["heic", "avif"])
def test_phone_photos_hash_within_10_bits_of_the_same_picture_as_png(name):
    reference = fingerprint(saved(PICTURE, "PNG")).pdq
    phone = fingerprint(PICTURES[name]()).pdq
    assert hamming(reference, phone) <= 10
