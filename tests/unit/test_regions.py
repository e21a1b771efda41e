"""Pictures inside other pictures (caption bands, screenshots, insets) and pictures cut or covered at the
edges (crops, stickers): the candidate regions found on the query side, the centre crops both sides carry,
and the matches they let through (benign photos, pretend-listed)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.fingerprinting.imaging import picture_regions
from hashcheck.lists.build import references_for
from hashcheck.matching.matcher import match
from hashcheck.matching.stores.memory import MemoryStore
from tests.helpers import PHOTOS


def photo(n: int = 0) -> Image.Image:
    return Image.open(PHOTOS[n]).convert("RGB")


def jpeg(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def captioned(im: Image.Image, band: int) -> Image.Image:
    out = Image.new("RGB", (im.width, im.height + band), (255, 255, 255))
    out.paste(im, (0, band))
    ImageDraw.Draw(out).text((40, band // 4), "WHEN IT IS FRIDAY", font=ImageFont.load_default(size=band // 3), fill=0)
    return out


def inset(im: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The picture at 60% on a gradient, bars above and below: a screenshot, and where the picture is."""
    w, h = round(im.width / 0.6), round(im.height / 0.6 * 1.3)
    ramp = np.linspace(180, 120, h)[:, None, None] * np.ones((h, w, 3))
    out = Image.fromarray(ramp.astype(np.uint8))
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, w, h // 14), fill=(30, 30, 30))
    draw.rectangle((0, h - h // 12, w, h), fill=(220, 220, 225))
    box = (w // 8, h // 5, w // 8 + im.width, h // 5 + im.height)
    out.paste(im, box[:2])
    return out, box


def near(a: tuple[int, ...], b: tuple[int, ...], slack: int) -> bool:
    return all(abs(x - y) <= slack for x, y in zip(a, b, strict=True))


def test_an_ordinary_photo_rarely_has_a_candidate_region():
    """Each candidate is two more hashes and two more chances of a false match: of the shipped photos one
    has a candidate (a sharp horizon across it), none more than one."""
    found = [picture_regions(photo(n).convert("L")) for n in range(len(PHOTOS))]
    assert sum(map(bool, found)) <= 1 and max(map(len, found)) <= 1


def test_the_picture_under_a_caption_band_is_a_candidate():
    im = photo()
    band = im.height // 5
    (box, *_) = picture_regions(captioned(im, band).convert("L"))
    assert near(box, (0, band, im.width, im.height + band), slack=8)


def test_a_picture_on_a_screenshot_is_a_candidate():
    shot, where = inset(photo(0))  # found on 6 of the 10 shipped photos (the bench measures the rate)
    assert near(picture_regions(shot.convert("L"))[0], where, slack=12)


def test_a_listed_photo_under_a_caption_or_on_a_screenshot_matches_through_its_region():
    """The rule acts on the region's hashes (our list and a plain one alike); the whole frame's do not."""
    im = photo(2)
    listed = MemoryStore(references_for(fingerprint(jpeg(im)), "hotline", "ref-1"))
    for edited in (captioned(im, im.height // 5), inset(im)[0]):
        fp = fingerprint(jpeg(edited))
        assert {h.variant for h in fp.near if h.variant.startswith("region")}
        assert match(fp, listed).verdict == "match"
        whole = [h for h in fp.near if not h.variant.startswith("region")]
        fp.near = whole
        assert match(fp, listed).verdict != "match"  # without the region, nothing


def test_region_variants_are_stored_in_the_compact_record_form():
    """A FingerprintTable record keeps region variants binary (4 bytes + the hash), so the re-match finds
    a stored screenshot when its picture is listed later."""
    from hashcheck.tables.fingerprint_table import decode_near, encode_near

    fp = fingerprint(jpeg(captioned(photo(2), photo(2).height // 5)))
    stored = encode_near(fp.near)
    assert isinstance(stored, bytes)
    key = lambda h: (h.algorithm, h.variant, h.frame)  # noqa: E731 - the codec stores transposes after their pair
    assert sorted(decode_near(stored), key=key) == sorted(fp.near, key=key)
    assert "region1" in {h.variant for h in decode_near(stored)}


def test_a_listed_photo_cropped_or_covered_by_stickers_matches_a_list_we_build():
    """Lists we build also carry the picture's centre crops (84% and 72% of each side): an upload cropped
    by 8% a side (off centre, as by hand) or with stickers over its corners is found by them."""
    im = photo(3)
    rows = references_for(fingerprint(jpeg(im)), "own", "ref-9")
    assert len([r for r in rows if r.algorithm == "pdq"]) == 3  # the picture, its two centre crops
    listed = MemoryStore(rows)
    w, h = im.size
    cropped = im.crop((round(w * 0.096), round(h * 0.096), w - round(w * 0.064), h - round(h * 0.064)))
    stickered = im.copy()
    draw = ImageDraw.Draw(stickered)
    r = min(w, h) // 14
    for cx, cy in ((r * 1.4, r * 1.4), (w - r * 1.4, r * 1.4), (w - r * 1.4, h - r * 1.4)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 204, 0))
    for edited in (cropped, stickered):
        result = match(fingerprint(jpeg(edited)), listed)
        assert result.verdict == "match" and {m.variant for m in result.matches} & {"original", "centre72"}
    plain = MemoryStore([r for r in rows if r.algorithm != "pdq" or r.hash == fingerprint(jpeg(im)).pdq])
    assert match(fingerprint(jpeg(cropped)), plain).verdict != "match"  # a hash-only list: not found
