"""Pictures inside other pictures (caption bands, screenshots, insets) and pictures cut or covered at the
edges (crops, stickers): the candidate regions found on the query side, the centre crops both sides carry,
and the matches they let through (benign photos, pretend-listed)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hashcheck.fingerprinting.fingerprint import fingerprint, listing_fingerprint
from hashcheck.fingerprinting.imaging import decode, picture_regions, small_colour
from hashcheck.lists.build import references_for
from hashcheck.matching.matcher import match
from hashcheck.matching.stores.memory import MemoryStore
from hashcheck.tools import samples
from tests.helpers import PHOTOS


def photo(n: int = 0) -> Image.Image:
    return Image.open(PHOTOS[n]).convert("RGB")


def jpeg(im: Image.Image) -> bytes:
    """As it is (a grey picture stays grey, unlike `samples.jpeg`), at quality 85."""
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
    shot, where = inset(photo(0))
    assert any(near(box, where, slack=2) for box in picture_regions(shot.convert("L")))  # sides refined


def same_grey_other_colour(im: Image.Image) -> Image.Image:
    """The picture at 60% of a background of its own edges' mean grey (with a little noise: not a
    uniform border), in a hue far from theirs."""
    pixels = np.asarray(im.convert("YCbCr"), dtype=np.float64)
    edges = np.concatenate([pixels[:4].reshape(-1, 3), pixels[-4:].reshape(-1, 3)])
    y, cb, cr = edges.mean(axis=0)
    w, h = round(im.width / 0.6), round(im.height / 0.6)
    rng = np.random.default_rng(7)
    background = np.empty((h, w, 3))
    background[..., 0] = y + rng.normal(0, 6, (h, w))
    background[..., 1], background[..., 2] = 128 - 50 * np.sign(cb - 128 or 1), 128 - 50 * np.sign(cr - 128 or 1)
    out = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8), "YCbCr").convert("RGB")
    out.paste(im, (out.width // 5, out.height // 5))
    return out


def test_a_picture_whose_sides_match_the_background_in_grey_is_found_in_colour():
    """A green picture on a violet background of the same grey has its edges only in colour: the frame's
    colour copy finds it, and the upload matches a hash-only list through that region."""
    im = photo(8)
    shot = same_grey_other_colour(im)
    where = (shot.width // 5, shot.height // 5, shot.width // 5 + im.width, shot.height // 5 + im.height)
    grey = shot.convert("L")
    assert not any(near(box, where, slack=12) for box in picture_regions(grey))
    assert any(near(box, where, slack=12) for box in picture_regions(grey, small_colour(shot)))
    listed = MemoryStore(references_for(fingerprint(jpeg(im)), "hotline", "ref-1"))
    result = match(fingerprint(samples.png(shot)), listed)
    assert result.verdict == "match" and {m.variant for m in result.matches} & {"region1", "region2", "region3"}


def test_a_thin_frame_around_an_inset_is_left_out_of_its_region():
    """A 3-pixel white line around a picture shown in a corner of another moved its pHash by 8-12 bits
    when hashed with it: the region's sides are moved onto the picture itself."""
    im = photo(6)
    scene = Image.fromarray(np.full((im.height * 2, im.width * 2, 3), (90, 140, 60), dtype=np.uint8))
    x, y = im.width - 37, im.height - 29
    ImageDraw.Draw(scene).rectangle((x - 3, y - 3, x + im.width + 2, y + im.height + 2), fill=(255, 255, 255))
    scene.paste(im, (x, y))
    (box, *_) = picture_regions(scene.convert("L"), small_colour(scene))
    assert near(box, (x, y, x + im.width, y + im.height), slack=1)


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


def test_a_crop_between_two_centre_crops_matches_a_list_built_with_the_rungs_between():
    """Cut by 6% on the left and top and 4% on the right and bottom, a picture is 90% of each side: between
    itself and its centre84 (107%), far from both. A list we build carries rungs at 92% and 76% too
    (`listing_fingerprint`), and the crop is found; without them it is not."""
    im = photo(0)
    w, h = im.size
    cropped = fingerprint(jpeg(im.crop((round(w * 0.06), round(h * 0.06), w - round(w * 0.04), h - round(h * 0.04)))))
    rows = references_for(listing_fingerprint(jpeg(im)), "own", "ref-9")
    assert len([r for r in rows if r.algorithm == "pdq"]) == 5  # the picture and four centre crops
    assert match(cropped, MemoryStore(rows)).verdict == "match"
    assert match(cropped, MemoryStore(references_for(fingerprint(jpeg(im)), "own", "ref-9"))).verdict != "match"


def test_a_colour_jpeg_gives_the_same_grey_and_a_small_colour_copy():
    """Decoding a colour JPEG to YCbCr for the regions' colour copy must not move any hash: its Y is
    exactly the luma decoding to grey gives, at the same reduced size."""
    data = PHOTOS[4].read_bytes()
    frame = decode(data).frames[0]
    plain = Image.open(io.BytesIO(data))
    plain.draft("L", frame.grey.size)
    assert plain.size == frame.grey.size and plain.tobytes() == frame.grey.tobytes()
    assert frame.colour is not None and frame.colour.mode == "YCbCr" and max(frame.colour.size) <= 256
    assert decode(jpeg(photo(4).convert("L"))).frames[0].colour is None  # a grey picture has none


def test_an_rgb_coded_jpeg_is_still_decoded_to_its_grey():
    """A JPEG stored as RGB, not YCbCr (an Adobe marker with transform 0: Pillow's `keep_rgb`), cannot be
    decoded to YCbCr: asking for it failed the decode, and a benign photo was blocked as unscannable.
    It is decoded to luma, exactly as before, without a colour copy."""
    out = io.BytesIO()
    photo(4).save(out, "JPEG", quality=90, keep_rgb=True)
    data = out.getvalue()
    fp = fingerprint(data)
    assert fp.status == "image" and not fp.partial
    frame = decode(data).frames[0]
    plain = Image.open(io.BytesIO(data))
    plain.draft("L", frame.grey.size)
    assert plain.tobytes() == frame.grey.tobytes() and frame.colour is None


def test_the_colour_copy_is_turned_like_the_grey():
    """A phone photo stored sideways (EXIF orientation 6): the colour copy is turned as the grey is, so a
    region found in colour lies where the picture is."""
    im = Image.new("RGB", (400, 200), (40, 40, 200))
    ImageDraw.Draw(im).rectangle((0, 0, 99, 199), fill=(230, 200, 30))  # yellow on the left: the top once turned
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=exif)
    frame = decode(out.getvalue()).frames[0]
    assert frame.grey.size == (200, 400) and frame.colour is not None and frame.colour.size == (100, 200)  # <= 256
    grey = np.asarray(frame.grey.reduce(2), dtype=float)
    luma = np.asarray(frame.colour.getchannel(0), dtype=float)
    assert grey[:45].mean() > grey[-100:].mean() + 50 and np.abs(grey - luma).mean() < 2
