"""The FingerprintTable record's `near` codec: binary, a PDQ transpose derived from its bits, every
variant read back; records written as text before are still read."""

from __future__ import annotations

import base64

import numpy as np
from PIL import ImageOps

from hashcheck.fingerprinting import pdq
from hashcheck.fingerprinting.fingerprint import NearHash, fingerprint
from hashcheck.objects import ObjectRef
from hashcheck.tables.dynamo import from_item, to_item
from hashcheck.tables.fingerprint_table import (
    NOT_STORED,
    _record,
    decode_near,
    encode_near,
    fingerprint_of,
    records_from_stream,
)
from hashcheck.tools import samples


def test_a_transposed_pdq_is_a_permutation_of_the_hash_bits():
    rng = np.random.default_rng(3)
    for shape in ((300, 200), (64, 97), (512, 512)):
        luma = rng.integers(0, 255, shape).astype(np.float32)
        hashed = pdq.compute(luma)
        assert pdq.transposed_hash(hashed.hash) == hashed.transposed() == pdq.compute(np.ascontiguousarray(luma.T)).hash


def test_every_variant_reads_back_and_a_photo_record_takes_one_write_unit():
    for picture in (samples.picture(5), ImageOps.expand(samples.picture(6), 40, fill="white")):
        fp = fingerprint(samples.jpeg(picture))
        encoded = encode_near(fp.near)
        assert isinstance(encoded, bytes) and sorted(map(repr, decode_near(encoded))) == sorted(map(repr, fp.near))
    fp = fingerprint(samples.jpeg(samples.picture(5)))
    obj = ObjectRef("hashcheck-uploads-123456789012", "customers/42/2024/holiday/IMG_1234.jpg", "v" * 32, "e" * 32)
    item = to_item(_record(obj, "clean", "clean", fp, 12, None))
    # DynamoDB counts names and values; a string or binary by its length
    size = sum(len(k) + len(next(iter(v.values()))) for k, v in item.items() if "S" in v or "B" in v) + 64
    assert size < 1024  # one write unit (the text form took two)
    back = fingerprint_of(from_item(item))
    assert back is not None and (back.pdq, back.pdq_quality, back.phash) == (fp.pdq, fp.pdq_quality, fp.phash)
    stored = [h for h in fp.near if h.variant not in NOT_STORED]  # what a list update can need of it
    assert back.near == decode_near(encode_near(stored)) and len(back.near) == len(stored) == len(fp.near) - 2


def test_a_stream_event_gives_the_binary_as_base64_and_text_records_are_still_read():
    fp = fingerprint(samples.jpeg(samples.picture(7)))
    item = to_item(_record(ObjectRef("b", "k", "v", "e"), "clean", "clean", fp, 1, None))
    image = {k: {"B": base64.b64encode(v["B"]).decode()} if "B" in v else v for k, v in item.items()}
    event = {"Records": [{"eventName": "INSERT", "dynamodb": {"NewImage": image}}]}  # as Lambda hands it over
    (record,) = records_from_stream(event)
    back = fingerprint_of(record)
    stored = [h for h in fp.near if h.variant not in NOT_STORED]
    assert back is not None and sorted(map(repr, back.near)) == sorted(map(repr, stored))
    text = f"pdq:{'ab' * 32}:90:trimmed:rotate90:0;phash:{'cd' * 8}::tilt-2:1"
    assert decode_near(text) == [
        NearHash("pdq", "ab" * 32, 90, "trimmed:rotate90", 0),
        NearHash("phash", "cd" * 8, None, "tilt-2", 1),
    ]
    frames = [NearHash("phash", "cd" * 8, None, "original", 300)]  # past what the binary form holds
    assert decode_near(encode_near(frames)) == frames
