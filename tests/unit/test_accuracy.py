"""A quick accuracy regression: bench/accuracy.py on the 10 test photos and a few modifications.

The full benchmark (docs/accuracy.md) runs on 115 images and 38 modifications; this keeps the decision
rule honest on the cases it must never lose: re-encoding, resizing, mirrors, quarter turns and padding,
with no false match between different photos; on small tilts, which need the turned-back variants; and
on the second round's screenshots, captions, insets, crops and stickers.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest
from PIL import Image

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.fingerprinting.imaging import uniform_border
from hashcheck.lists.build import references_for
from hashcheck.matching.matcher import match
from hashcheck.matching.stores.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]
PHOTOS = REPO / "tests" / "data" / "photos"
MUST_FIND = ("jpeg_q50", "resize25", "mirror", "rotate90", "border10", "border20", "rotate90+border10")
# The second round: pictures inside frames (found by candidate regions, for any list) and pictures cut or
# covered at the edges (found by the centre crops a list we build carries)
ROUND2_ANY_LIST = ("caption_top", "screenshot_phone", "screenshot_browser", "screenshot_light", "picture_in_picture")
ROUND2_OUR_LISTS = ("crop8side", "stickers", "crop10")


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_accuracy", REPO / "bench" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and the worker processes look the module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_result():
    bench = _load_bench()
    mods = [*MUST_FIND, "crop5", "rotate3", *ROUND2_ANY_LIST, *ROUND2_OUR_LISTS]
    return bench.run([str(PHOTOS)], mods, workers=2, policy=bench.matcher.DEFAULT_POLICY, log=lambda *_: None)


def test_the_rule_finds_every_easy_copy(bench_result):
    summary = bench_result["summary"]
    assert len(bench_result["originals"]) == 10
    for rule in ("rule (ours list)", "rule (ref list)"):
        for mod in MUST_FIND:
            assert summary.recall[rule][mod] == 1.0, (rule, mod)


def test_no_false_match_between_different_photos(bench_result):
    summary = bench_result["summary"]
    assert summary.false_matches["rule (ours list)"] == 0
    assert summary.false_matches["rule (ref list)"] == 0


def test_the_rule_beats_every_single_hash(bench_result):
    summary = bench_result["summary"]
    best_single = max(summary.overall[m] for m in ("PDQ", "PDQ+dihedral", "pHash", "pHash+dihedral"))
    assert summary.overall["rule (ours list)"] > best_single


def test_small_tilts_are_caught_through_the_turned_back_variants(bench_result):
    recall = bench_result["summary"].recall
    assert recall["rule (ours list)"]["rotate3"] >= 0.7
    assert recall["rule (ref list)"]["rotate3"] >= 0.7
    # Without turning back, no single hash gets there (PDQ ~0%, pHash ~40% on the full corpus).
    assert recall["rule (ours list)"]["rotate3"] > max(recall[m]["rotate3"] for m in ("PDQ+dihedral", "pHash+dihedral"))


def test_pictures_inside_frames_and_cut_at_the_edges_are_found(bench_result):
    """All of these were found on the 10 photos when measured (docs/accuracy.md, "Round 2"); one miss
    each is allowed, none of them was found before."""
    recall = bench_result["summary"].recall
    for mod in ROUND2_ANY_LIST:
        assert recall["rule (ours list)"][mod] >= 0.9 and recall["rule (ref list)"][mod] >= 0.9, mod
        assert max(recall[m][mod] for m in ("PDQ+dihedral", "pHash+dihedral")) == 0, mod
    for mod in ROUND2_OUR_LISTS:
        assert recall["rule (ours list)"][mod] >= 0.9, mod


@pytest.mark.parametrize("degrees", [3, -3])
def test_a_tilted_upload_is_turned_back_the_other_way(degrees):
    photo = PHOTOS / "wall-0270.jpg"
    listed = fingerprint(photo.read_bytes())
    with Image.open(photo) as im:
        tilted = im.convert("RGB").rotate(degrees, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    tilted.save(buffer, "JPEG", quality=90)
    upload = fingerprint(buffer.getvalue())

    def pdq_distance(variant: str) -> int:
        ours = next(h.hash for h in upload.near if h.algorithm == "pdq" and h.variant == variant)
        return bin(int(ours, 16) ^ int(listed.pdq, 16)).count("1")

    back, away = ("tilt-2", "tilt+2") if degrees > 0 else ("tilt+2", "tilt-2")
    assert pdq_distance(back) <= 31 < pdq_distance("original")  # PDQ alone would miss it
    assert pdq_distance(away) > pdq_distance("original")  # turning it further does not help


def _padded_jpeg(path: Path, fraction: float, colour: tuple[int, int, int]) -> bytes:
    with Image.open(path) as im:
        im = im.convert("RGB")
        bx, by = round(im.width * fraction), round(im.height * fraction)
        out = Image.new("RGB", (im.width + 2 * bx, im.height + 2 * by), colour)
        out.paste(im, (bx, by))
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_padded_upload_is_also_hashed_inside_its_border():
    photo = PHOTOS / "wall-0257.jpg"
    plain = fingerprint(photo.read_bytes())
    padded = fingerprint(_padded_jpeg(photo, 0.15, (255, 255, 255)))
    assert not any(h.variant.startswith("trimmed") for h in plain.near)
    trimmed = {h.variant for h in padded.near if h.variant.startswith("trimmed")}
    assert {"trimmed", "trimmed:rotate90", "trimmed:flip_x"} <= trimmed
    # The fingerprint's own hashes stay those of the upload as it is.
    assert padded.pdq == next(h.hash for h in padded.near if h.algorithm == "pdq" and h.variant == "original")


def test_a_listed_picture_with_a_border_is_found_without_it():
    """`list build` also lists the picture inside a listed image's border, so the picture uploaded
    without that border (cropped out, or re-framed) is found from the list's side."""
    photo = PHOTOS / "wall-0257.jpg"
    listed = fingerprint(_padded_jpeg(photo, 0.2, (0, 0, 0)))
    rows = references_for(listed, "l", "framed")
    assert {r.algorithm for r in rows} == {"md5", "sha1", "sha256", "pdq", "phash"}
    assert sum(r.algorithm == "pdq" for r in rows) == 4  # as listed, inside its border, its two centres
    result = match(fingerprint(photo.read_bytes()), MemoryStore(rows))
    assert result.verdict == "match"
    assert any(m.algorithm == "pdq" and m.distance <= 31 for m in result.matches)


def test_uniform_border_box():
    grey = Image.new("L", (200, 100), 0)
    grey.paste(Image.effect_noise((160, 60), 60), (20, 30))
    assert uniform_border(grey) == (20, 30, 180, 90)
    assert uniform_border(Image.effect_noise((200, 100), 60)) is None
