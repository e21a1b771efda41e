import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from hashcheck import algorithms
from hashcheck.fingerprinting import phash
from hashcheck.fingerprinting.fingerprint import fingerprint
from tests.helpers import DATA, PHOTOS

REFERENCE_PDQ = {row["file"]: row for row in map(json.loads, (DATA / "pdq-reference.jsonl").read_text().splitlines())}


def test_exact_hashes_equal_hashlib_and_contract_fields(photos):
    data = photos[0].read_bytes()
    row = fingerprint(io.BytesIO(data)).as_dict()
    assert row["md5"] == hashlib.md5(data).hexdigest()
    assert row["sha1"] == hashlib.sha1(data).hexdigest()
    assert row["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["size"] == len(data) and row["status"] == "image"
    assert len(row["pdq"]) == 64 and len(row["phash"]) == 16 and 0 <= row["pdq_quality"] <= 100
    assert "error" not in row


def test_stream_read_once_in_chunks_matches_bytes(photos):
    class OneReadStream(io.BytesIO):
        def seek(self, *args):  # a second pass over the stream would need this
            raise AssertionError("the stream was read twice")

    data = photos[1].read_bytes() * 3  # > 1 chunk, so several reads
    from_stream = fingerprint(OneReadStream(data))
    assert from_stream.as_dict() == fingerprint(data).as_dict()


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.name)
def test_pdq_of_our_reduced_decode_matches_the_reference_list(photo):
    """A list hashed by Meta's reference on the full decode still matches our fingerprint closely."""
    expected = REFERENCE_PDQ[photo.name]
    fp = fingerprint(photo.read_bytes())
    assert algorithms.hamming(fp.pdq, expected["pdq"]) <= 10
    assert abs(fp.pdq_quality - expected["quality"]) <= 5


@pytest.mark.parametrize("photo", PHOTOS[:5], ids=lambda p: p.name)
def test_phash_is_imagehash_bit_for_bit(photo):
    imagehash = pytest.importorskip("imagehash")
    image = Image.open(photo)
    assert phash.phash(image) == str(imagehash.phash(image))


def test_phash_dihedral_variants_match_hashing_the_turned_image(photos):
    imagehash = pytest.importorskip("imagehash")
    image = Image.open(photos[2]).convert("L")
    variants = phash.dihedral(phash.grey32(image))
    turned = {
        "flip_x": ImageOps.mirror(image),
        "flip_y": ImageOps.flip(image),
        "rotate90": image.transpose(Image.Transpose.ROTATE_90),
        "rotate270": image.transpose(Image.Transpose.ROTATE_270),
        "rotate180": image.transpose(Image.Transpose.ROTATE_180),
    }
    for name, im in turned.items():
        assert imagehash.hex_to_hash(variants[name]) - imagehash.phash(im) <= 4, name


def test_mirrored_upload_has_a_variant_equal_to_the_original(photos):
    original = fingerprint(photos[3].read_bytes())
    buf = io.BytesIO()
    ImageOps.mirror(Image.open(photos[3])).save(buf, "PNG")
    mirrored = fingerprint(buf.getvalue())
    best = min(algorithms.hamming(original.pdq, h.hash) for h in mirrored.near if h.algorithm == "pdq")
    assert algorithms.hamming(original.pdq, mirrored.pdq) > 64  # the plain hash misses it
    assert best <= 8


def test_large_jpeg_is_decoded_reduced_but_stays_close_to_full_decode():
    image = Image.fromarray(
        np.random.default_rng(1).integers(0, 255, (64, 48, 3), dtype=np.uint8).repeat(50, 0).repeat(50, 1)
    )  # 2400x3200 blocks: big enough for a 1/2 JPEG reduction
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    fp = fingerprint(buf.getvalue())
    pdqhash = pytest.importorskip("pdqhash")
    bits, _quality = pdqhash.compute(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    reference = f"{int(''.join(map(str, bits)), 2):064x}"
    assert (fp.width, fp.height) == (2400, 3200)
    assert algorithms.hamming(fp.pdq, reference) <= 10


def test_a_fingerprint_crosses_from_the_fingerprint_function_whole():
    """What FingerprintFunction returns (JSON) is the fingerprint the scan would have made itself."""
    from hashcheck.fingerprinting.fingerprint import from_message, to_message

    image = Image.open(PHOTOS[0])
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG")
    made = fingerprint(buffer.getvalue())
    crossed = from_message(json.loads(json.dumps(to_message(made))))
    assert crossed == made and len(crossed.near) > 1
    broken = fingerprint(buffer.getvalue()[:-200])
    assert from_message(json.loads(json.dumps(to_message(broken)))) == broken
