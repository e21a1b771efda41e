"""What people upload wrapped: archives, compressed files, office files. Benign generated pictures
stand for listed ones; every wrapper is built here with the standard library."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import zipfile

import pytest
from PIL import Image

from hashcheck.fingerprinting.containers import ContainerLimits
from hashcheck.fingerprinting.fingerprint import fingerprint, from_message, to_message
from hashcheck.fingerprinting.imaging import Limits
from hashcheck.lists.build import references_for
from hashcheck.matching.matcher import match
from hashcheck.matching.stores.memory import MemoryStore
from hashcheck.tools import samples
from hashcheck.tools.wrappers import html_with, pdf_inline, pdf_page, sevenzipped, svg_with, tarred, zipped

LISTED = samples.jpeg(samples.picture(501))
OTHER = samples.jpeg(samples.picture(502))
LISTED_FILE = b"a listed file that is not a picture\n" * 20  # lists carry exact hashes of any file


def perceptual_list() -> MemoryStore:
    """The listed picture by its PDQ and pHash only: a wrapper changes every exact hash anyway."""
    return MemoryStore([r for r in references_for(fingerprint(LISTED), "l", "pic") if r.algorithm in ("pdq", "phash")])


WRAPPERS = {
    "zip": lambda pic: zipped({"photos/a.jpg": OTHER, "photos/b.jpg": pic}),
    "zip-stored": lambda pic: zipped({"b.jpg": pic}, zipfile.ZIP_STORED),
    "zip-in-zip": lambda pic: zipped({"inner.zip": zipped({"deep/b.jpg": pic})}),
    "tar": lambda pic: tarred({"b.jpg": pic}),
    "tar.gz": lambda pic: tarred({"b.jpg": pic}, "w:gz"),
    "tar.bz2": lambda pic: tarred({"b.jpg": pic}, "w:bz2"),
    "tar.xz": lambda pic: tarred({"b.jpg": pic}, "w:xz"),
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "docx": lambda pic: zipped({"[Content_Types].xml": b"<Types/>", "word/media/image1.jpeg": pic}),
    "zip-in-tar.gz": lambda pic: tarred({"backup/photos.zip": zipped({"b.jpg": pic})}, "w:gz"),
    "7z": lambda pic: sevenzipped({"notes.txt": b"hello", "photos/b.jpg": pic, "c.jpg": OTHER}),
    "7z-in-zip": lambda pic: zipped({"backup.7z": sevenzipped({"b.jpg": pic})}),
}
WHERE = {
    "zip": "photos/b.jpg",
    "zip-stored": "b.jpg",
    "zip-in-zip": "inner.zip!deep/b.jpg",
    "tar": "b.jpg",
    "tar.gz": "b.jpg",
    "tar.bz2": "b.jpg",
    "tar.xz": "b.jpg",
    "gz": "content",
    "bz2": "content",
    "xz": "content",
    "docx": "word/media/image1.jpeg",
    "zip-in-tar.gz": "backup/photos.zip!b.jpg",
    "7z": "photos/b.jpg",
    "7z-in-zip": "backup.7z!b.jpg",
}


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_a_listed_picture_inside_is_found_and_named_by_its_member_path(wrapper):
    wrapped = WRAPPERS[wrapper](LISTED)
    result = match(fingerprint(wrapped), perceptual_list())
    assert result.verdict == "match"
    assert {m.member for m in result.matches} == {WHERE[wrapper]}


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_the_same_wrapper_around_an_unlisted_picture_is_clean(wrapper):
    assert match(fingerprint(WRAPPERS[wrapper](OTHER)), perceptual_list()).verdict == "clean"


def test_a_listed_file_that_is_no_picture_is_found_by_its_exact_hash_inside():
    store = MemoryStore(references_for(fingerprint(LISTED_FILE), "l", "file"))
    result = match(fingerprint(zipped({"notes/readme.txt": LISTED_FILE})), store)
    assert result.verdict == "match" and {m.member for m in result.matches} == {"notes/readme.txt"}
    assert {m.algorithm for m in result.matches} == {"md5", "sha1", "sha256"}


def test_a_picture_inside_that_cannot_be_decoded_makes_the_object_unscannable():
    fp = fingerprint(zipped({"a.jpg": OTHER, "cut.jpg": OTHER[: len(OTHER) // 5]}))
    assert [m.fingerprint.status for m in fp.members] == ["image", "unscannable"]
    assert match(fp, perceptual_list()).verdict == "unscannable"


def test_a_zip_bomb_is_unscannable_and_says_why():
    """An entry expanding past the ratio (zeros deflate ~1,000:1; limit lowered to keep the test fast)."""
    bomb = zipped({"zeros.bin": bytes(10 * 1024 * 1024)})
    fp = fingerprint(bomb, containers=ContainerLimits(max_ratio=100))
    assert fp.status == "unscannable" and "zip bomb" in fp.error
    assert match(fp, perceptual_list()).verdict == "unscannable"


def test_a_nested_bomb_stops_at_the_byte_budget_whatever_its_entries_declare():
    """42.zip's shape: each level holds many copies of the level below; 16 x 16 x 4 MB = 1 GB unpacked,
    stopped at the object's budget (lowered to 64 MB to keep the test fast)."""
    layer = zipped({"zeros.bin": bytes(4 * 1024 * 1024)})
    for _ in range(2):
        layer = zipped({f"copy{i}.zip": layer for i in range(16)})
    fp = fingerprint(layer, containers=ContainerLimits(max_total_bytes=64 * 1024 * 1024))
    assert fp.status == "unscannable" and "bytes once unpacked" in fp.error


def test_nesting_deeper_than_the_limit_is_unscannable():
    data = LISTED
    for level in range(6):
        data = zipped({f"level{level}.zip" if level else "b.jpg": data})
    fp = fingerprint(data)
    assert fp.status == "unscannable" and "nested deeper than 5" in fp.error


def test_too_many_entries_or_bytes_is_unscannable():
    many = zipped({f"f{i}.txt": b"x" for i in range(30)})
    fp = fingerprint(many, containers=ContainerLimits(max_entries=20))
    assert fp.status == "unscannable" and "more than 20 entries" in fp.error
    fp = fingerprint(many, containers=ContainerLimits(max_total_bytes=10))
    assert fp.status == "unscannable" and "bytes once unpacked" in fp.error


def test_a_container_too_large_to_open_is_unscannable_not_clean():
    fp = fingerprint(zipped({"b.jpg": OTHER}), Limits(max_decode_bytes=1000))
    assert fp.status == "unscannable" and "opened at most" in fp.error


def test_a_corrupt_archive_is_unscannable():
    archive = zipped({"b.jpg": OTHER})
    fp = fingerprint(archive[: len(archive) // 2])  # cut short: no central directory to read
    assert fp.status == "unscannable" and fp.error.startswith("not opened")


def encrypted(archive: bytes) -> bytes:
    """The same ZIP with its entries marked encrypted (the flag bit every unzipper honours):
    the standard library cannot write encrypted ZIPs, and the bytes behind the flag do not matter."""
    data = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start != -1:
            data[start + offset] |= 0x01
            start = data.find(signature, start + 4)
    return bytes(data)


def test_an_encrypted_zip_is_opaque_and_says_so():
    fp = fingerprint(encrypted(zipped({"b.jpg": LISTED})))
    assert fp.status == "opaque" and "encrypted" in fp.error
    assert match(fp, perceptual_list()).verdict == "opaque"


def test_an_encrypted_zip_inside_makes_the_object_opaque_but_a_match_beside_it_still_acts():
    inner = encrypted(zipped({"secret.jpg": OTHER}))
    fp = fingerprint(zipped({"vault.zip": inner, "b.jpg": OTHER}))
    assert {m.path: m.fingerprint.status for m in fp.members}["vault.zip"] == "opaque"
    assert match(fp, perceptual_list()).verdict == "opaque"
    beside = fingerprint(zipped({"vault.zip": inner, "b.jpg": LISTED}))
    assert match(beside, perceptual_list()).verdict == "match"


def test_an_archive_crosses_from_the_fingerprint_function_whole():
    fp = fingerprint(WRAPPERS["zip-in-zip"](LISTED))
    assert from_message(json.loads(json.dumps(to_message(fp)))) == fp and fp.members


def test_a_picture_is_not_opened_as_a_container():
    """An image's own bytes are what viewers show; it is hashed as one, its members never looked for."""
    fp = fingerprint(LISTED)
    assert fp.status == "image" and fp.members == []


def test_too_many_pictures_inside_is_unscannable():
    """Each picture's hashes travel back from the fingerprint function; past the limit, not clean."""
    many = zipped({f"p{i}.jpg": OTHER for i in range(4)})
    fp = fingerprint(many, containers=ContainerLimits(max_pictures=3))
    assert fp.status == "unscannable" and "more than 3 pictures" in fp.error


def test_looking_inside_longer_than_the_time_budget_is_unscannable():
    many = zipped({f"p{i}.jpg": OTHER for i in range(6)})
    assert fingerprint(many, containers=ContainerLimits(max_seconds=30)).status == "not_image"
    fp = fingerprint(many, containers=ContainerLimits(max_seconds=0.001))  # each picture takes longer
    assert fp.status == "unscannable" and "took longer than 0.001 s" in fp.error


def test_a_compression_method_we_cannot_read_is_unscannable():
    """Deflate64 (method 9), which the standard library does not read: not opened, so not clean."""
    data = bytearray(zipped({"b.jpg": LISTED}))
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = data.find(signature)
        data[start + offset] = 9
    fp = fingerprint(bytes(data))
    assert fp.status == "unscannable" and fp.error.startswith("not opened")


def test_an_encrypted_7z_is_opaque_whether_its_file_list_is_encrypted_or_not():
    for header_encryption in (False, True):
        fp = fingerprint(sevenzipped({"b.jpg": LISTED}, "secret", header_encryption))
        assert fp.status == "opaque" and "encrypted" in fp.error


def test_a_7z_bomb_is_refused_before_anything_is_unpacked():
    """The sizes a 7z declares bound what py7zr writes, so they are checked first: 64 MiB of zeros
    pack to a few KB, far over the 1,000:1 ratio."""
    fp = fingerprint(sevenzipped({"zeros.bin": bytes(64 << 20)}))
    assert fp.status == "unscannable" and "1000x" in fp.error and fp.members == []


def test_a_corrupt_7z_is_unscannable():
    data = bytearray(sevenzipped({"b.jpg": OTHER, "c.jpg": LISTED}))
    data[40:80] = bytes(40)  # inside the packed stream
    fp = fingerprint(bytes(data))
    assert fp.status == "unscannable" and fp.error.startswith("not opened: 7z is corrupt")


def test_a_7z_over_the_entry_limit_stops_its_unpacking_thread():
    import threading

    before = threading.active_count()
    fp = fingerprint(sevenzipped({f"f{i}.txt": b"x" * i for i in range(40)}), containers=ContainerLimits(max_entries=5))
    assert fp.status == "unscannable" and "more than 5 entries" in fp.error
    assert not any(t.name == "unpacker" for t in threading.enumerate()) and threading.active_count() == before


# --- documents ---------------------------------------------------------------------------------------


def pdf_of(picture: bytes, mode: str = "RGB") -> bytes:
    return pdf_page(Image.open(io.BytesIO(picture)).convert(mode))


def pdf_encrypted(document: bytes, password: str) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(document)))
    writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


DOCUMENTS = {
    "pdf (jpeg stream)": (lambda pic: pdf_of(pic), "page=1/image"),
    "pdf (deflated grey)": (lambda pic: pdf_of(pic, "L"), "page=1/image"),
    "pdf, empty user password": (lambda pic: pdf_encrypted(pdf_of(pic), ""), "page=1/image"),
    "html data: URI": (html_with, "data-uri=1"),
    "svg data: URI": (svg_with, "data-uri=1"),
    "pdf inline image (jpeg)": (lambda pic: pdf_inline(Image.open(io.BytesIO(pic))), "page=1/inline=1"),
    "pdf inline image (raw)": (lambda pic: pdf_inline(Image.open(io.BytesIO(pic)), jpeg=False), "page=1/inline=1"),
}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_listed_picture_in_a_document_is_found(document):
    make, where = DOCUMENTS[document]
    result = match(fingerprint(make(LISTED)), perceptual_list())
    assert result.verdict == "match" and {m.member for m in result.matches} == {where}
    assert match(fingerprint(make(OTHER)), perceptual_list()).verdict == "clean"


def test_a_password_protected_pdf_is_opaque():
    fp = fingerprint(pdf_encrypted(pdf_of(LISTED), "secret"))
    assert fp.status == "opaque" and "password" in fp.error


def test_a_corrupt_pdf_is_unscannable():
    document = pdf_of(OTHER)
    fp = fingerprint(document[: len(document) // 3])
    assert fp.status == "unscannable" and fp.error.startswith("not opened")


def test_an_inline_pdf_image_declaring_too_many_pixels_is_unscannable():
    document = pdf_inline(samples.picture(502).resize((64, 48)), jpeg=False).replace(
        b"/W 64 /H 48", b"/W 99999 /H 99999"
    )
    fp = fingerprint(document)
    assert fp.status == "unscannable" and "over the limit" in fp.error


def test_a_pdf_image_declaring_too_many_pixels_is_unscannable():
    document = pdf_of(OTHER).replace(b"/Width 800", b"/Width 99999").replace(b"/Height 600", b"/Height 99999")
    fp = fingerprint(document)
    assert fp.status == "unscannable" and "over the limit" in fp.error
