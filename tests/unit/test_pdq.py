"""hashcheck.fingerprinting.pdq against Meta's reference PDQ.

The reference hashes in tests/data/pdq-reference.jsonl were made by pdqhash 0.2.8 (the binding of Meta's
C++) from ``np.asarray(Image.open(f).convert("RGB"))``; those tests run without pdqhash. Tests that call
pdqhash directly are skipped when it is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from hashcheck.fingerprinting import pdq

DATA = Path(__file__).resolve().parents[1] / "data"
PHOTOS = DATA / "photos"
REFERENCE = [json.loads(line) for line in (DATA / "pdq-reference.jsonl").read_text().splitlines() if line]

# Float rounding may flip a DCT value that sits at the median; on all photos we have seen it is 0 bits.
MAX_BITS = 2

# Each dihedral key, the numpy transform of the luma it stands for, and its index in the list returned by
# pdqhash.compute_dihedral (whose C++ names are Original, Rotate90, Rotate180, Rotate270, FlipX, FlipY,
# FlipPlus1, FlipMinus1).
TRANSFORMS = {
    "original": (lambda x: x, 0),
    "rotate90": (np.rot90, 1),
    "rotate180": (lambda x: np.rot90(x, 2), 2),
    "rotate270": (lambda x: np.rot90(x, 3), 3),
    "flip_x": (np.fliplr, 5),
    "flip_y": (np.flipud, 4),
    "transpose": (lambda x: x.swapaxes(0, 1), 6),
    "transverse": (lambda x: np.rot90(x, 2).swapaxes(0, 1), 7),
}


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def bits_to_hex(vector) -> str:
    """python-threatexchange / pdqhash convention: the first bit of the vector is the most significant."""
    return f"{int(''.join(str(int(b)) for b in vector), 2):064x}"


def rgb_of(name: str) -> np.ndarray:
    with Image.open(PHOTOS / name) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def decoded() -> dict[str, np.ndarray]:
    return {row["file"]: rgb_of(row["file"]) for row in REFERENCE}


def noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def gradient(rows: int, cols: int, kind: str) -> np.ndarray:
    y, x = np.mgrid[:rows, :cols]
    y, x = y / rows, x / cols
    if kind == "linear":
        g = 0.6 * x + 0.4 * y
    elif kind == "curved":
        g = 0.5 * x**1.7 + 0.5 * np.sin(3 * y + x) ** 2
    else:  # "waves"
        g = np.clip(np.cos(5 * x * y + 2 * x), 0, 1)
    return np.repeat((255 * g).astype(np.uint8)[..., None], 3, axis=2)


def text(rows: int, cols: int) -> np.ndarray:
    im = Image.new("RGB", (cols, rows), "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=max(10, rows // 12))
    for k in range(8):
        draw.text((5 + 9 * k, 5 + k * rows // 9), f"hashcheck PDQ {k}", fill=(30 * k, 0, 255 - 30 * k), font=font)
    return np.asarray(im)


# ---------------------------------------------------------------- reference list (no pdqhash needed)


@pytest.mark.parametrize("row", REFERENCE, ids=[r["file"] for r in REFERENCE])
def test_matches_reference_list(row, decoded):
    p = pdq.compute(pdq.luma_from_rgb(decoded[row["file"]]))
    assert len(p.hash) == 64 and p.hash == p.hash.lower()
    assert hamming(p.hash, row["pdq"]) <= MAX_BITS
    assert abs(p.quality - row["quality"]) <= 1


def test_the_fast_dct_differs_from_the_exact_one_by_rounding_only(decoded):
    for rgb in decoded.values():
        luma = pdq.luma_from_rgb(rgb)
        exact, fast = pdq.compute(luma), pdq.compute(luma, exact_rounding=False)
        assert np.allclose(fast.dct, exact.dct, rtol=0, atol=1e-3 * np.abs(exact.dct).max())
        assert hamming(fast.hash, exact.hash) <= 2 and fast.quality == exact.quality


def test_reference_list_is_not_trivially_matched(decoded):
    """The tolerance above means something: distinct photos are ~128 bits apart, a flipped one too."""
    first, second = REFERENCE[0], REFERENCE[1]
    luma = pdq.luma_from_rgb(decoded[first["file"]])
    assert hamming(pdq.compute(luma).hash, second["pdq"]) > 64
    assert hamming(pdq.compute(np.fliplr(luma)).hash, first["pdq"]) > 64


def test_bit_order_first_vector_bit_is_most_significant():
    # Hash bit 16 i + j comes from dct[i, j]; bit 255 (dct[15, 15]) is the first hex digit's top bit.
    dct = np.arange(256, dtype=np.float32).reshape(16, 16)  # values above the median: bits 128..255
    assert pdq.Pdq("", 0, dct).dihedral()["original"] == "f" * 32 + "0" * 32
    dct = -dct  # now bits 0..127 are set: the low half
    assert pdq.Pdq("", 0, dct).dihedral()["original"] == "0" * 32 + "f" * 32


@pytest.mark.parametrize("ones", [100, 128, 129])
def test_median_is_lower_median_and_bits_strictly_greater(ones):
    # With at most 128 ones the 128th smallest value is 0 and exactly the ones are set; with 129 ones the
    # median is 1 and nothing is strictly greater.
    dct = np.zeros((16, 16), dtype=np.float32)
    dct.flat[:ones] = 1.0
    bits = int(pdq.Pdq("", 0, dct).dihedral()["original"], 16).bit_count()
    assert bits == (ones if ones <= 128 else 0)


def pattern(rows: int, cols: int) -> np.ndarray:
    i, j = np.mgrid[:rows, :cols]
    return np.repeat(((i * i * 31 + j * 17 + i * j * 7) % 256).astype(np.uint8)[..., None], 3, axis=2)


# pdqhash 0.2.8 output for images of at most 128 pixels per side. There the reference's blur is the
# identity and our DCT repeats its float32 arithmetic, so even degenerate images, whose DCT values are
# mostly rounding noise around zero (flat, linear), must hash identically.
PINNED = {
    "flat-100x80": (
        lambda: np.full((100, 80, 3), 77, np.uint8),
        "00002c4b2c4b0000000000008200017e0000cc530000554b13a0554b585e1706",
        0,
    ),
    "linear-5x7": (
        lambda: gradient(5, 7, "linear"),
        "c7636e7138dc918e392c907ac56b6b853ad06e71c7636e7138dc918e312e947a",
        55,
    ),
    "linear-100x128": (
        lambda: gradient(100, 128, "linear"),
        "103a71f0af3531e08a2217e1b7a679e1d55f24699bdd346277fd0271fba20271",
        18,
    ),
    "pattern-61x128": (
        lambda: pattern(61, 128),
        "356e1aec58d6514c5e0a0fcf9b455e3e6bf8e67f32511d22b69f3dd142244860",
        100,
    ),
}


@pytest.mark.parametrize("name", PINNED)
def test_small_images_match_pinned_reference_exactly(name):
    make, expected_hash, expected_quality = PINNED[name]
    p = pdq.compute(pdq.luma_from_rgb(make()))
    assert (p.hash, p.quality) == (expected_hash, expected_quality)


@pytest.mark.parametrize(
    ("step", "edges", "quality"),
    [(255, 1, 71), (127, 1, 34), (255, 3, 100), (0, 0, 0)],
)
def test_quality_of_known_64x64_images(step, edges, quality):
    # A 64x64 image is hashed without blur. One vertical edge of height 255 contributes 64 gradients of
    # trunc(255 * 100 / 255) = 100, and 6400 // 90 = 71; a step of 127 gives trunc(49.8) = 49 -> 3136 // 90
    # = 34 (truncation, not rounding); three edges exceed 100 and are clipped.
    luma = np.zeros((64, 64), dtype=np.uint8)
    for k in range(edges):
        luma[:, 16 * (k + 1) :] = step * ((k + 1) % 2)
    assert pdq.compute(luma).quality == quality


# ---------------------------------------------------------------- independent float64 model of the reference


def _box(a: np.ndarray, axis: int) -> np.ndarray:
    """One reference box pass: window ceil(n/128), (w+2)//2 - 1 pixels after, the rest before, truncated."""
    n = a.shape[axis]
    w = (n + 127) // 128
    after = (w + 2) // 2 - 1
    before = w - 1 - after
    a = np.moveaxis(a, axis, 0)
    out = np.stack([a[max(0, k - before) : k + after + 1].mean(axis=0) for k in range(n)])
    return np.moveaxis(out, 0, axis)


def _model(luma: np.ndarray) -> tuple[np.ndarray, int]:
    a = luma.astype(np.float64)
    for _ in range(2):
        a = _box(_box(a, 1), 0)
    rows = ((np.arange(64) + 0.5) * a.shape[0] / 64).astype(int)
    cols = ((np.arange(64) + 0.5) * a.shape[1] / 64).astype(int)
    small = a[np.ix_(rows, cols)]
    grad = sum(np.abs(np.trunc(d * 100 / 255)).sum() for d in (np.diff(small, axis=0), np.diff(small, axis=1)))
    freq, pos = np.arange(1, 17)[:, None], np.arange(64)[None, :]
    d = np.sqrt(2 / 64) * np.cos(np.pi * freq * (2 * pos + 1) / 128)
    return d @ small @ d.T, min(int(grad) // 90, 100)


@pytest.mark.parametrize("shape", [(1000, 777), (300, 129), (129, 300), (64, 64), (5, 200), (257, 1030)])
def test_matches_float64_model_of_the_reference(shape):
    # Sizes with even and odd windows (1000 -> 8, 777 -> 7, 129 -> 2, 1030 -> 9), and no blur at all.
    soft = Image.fromarray(noise(shape, seed=shape[0])).filter(ImageFilter.GaussianBlur(1.5))
    luma = np.asarray(soft, dtype=np.float32)
    dct, quality = _model(luma)
    p = pdq.compute(luma)
    np.testing.assert_allclose(p.dct, dct, rtol=0, atol=2e-3 * np.abs(dct).max())
    expected = dct.ravel() > np.sort(dct.ravel())[127]
    assert hamming(p.hash, bits_to_hex(expected[::-1])) <= MAX_BITS
    assert abs(p.quality - quality) <= 1


# ---------------------------------------------------------------- against pdqhash itself


@pytest.fixture(scope="module")
def pdqhash():
    return pytest.importorskip("pdqhash")


def reference(pdqhash, rgb: np.ndarray) -> tuple[str, int]:
    vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return bits_to_hex(vector), quality


def test_repo_photos_match_pdqhash(pdqhash, decoded):
    for name, rgb in decoded.items():
        h, q = reference(pdqhash, rgb)
        p = pdq.compute(pdq.luma_from_rgb(rgb))
        assert hamming(p.hash, h) <= MAX_BITS, name
        assert abs(p.quality - q) <= 1, name


GENERATED = {
    "noise-700x500": lambda: noise((700, 500, 3), 1),
    "noise-93x1501": lambda: noise((93, 1501, 3), 2),
    "curved-517x911": lambda: gradient(517, 911, "curved"),
    "curved-1500x1100": lambda: gradient(1500, 1100, "curved"),
    "waves-1000x999": lambda: gradient(1000, 999, "waves"),
    "waves-37x1200": lambda: gradient(37, 1200, "waves"),
    "text-200x300": lambda: text(200, 300),
    "text-480x640": lambda: text(480, 640),
    "text-91x517": lambda: text(91, 517),
}


@pytest.mark.parametrize("name", GENERATED)
def test_generated_images_match_pdqhash(pdqhash, name):
    rgb = GENERATED[name]()
    h, q = reference(pdqhash, rgb)
    p = pdq.compute(pdq.luma_from_rgb(rgb))
    assert hamming(p.hash, h) <= MAX_BITS
    assert abs(p.quality - q) <= 1


SMALL = {
    # As for PINNED: at most 128 pixels per side, so bit-identical.
    "noise-5x5": lambda: noise((5, 5, 3), 3),
    "noise-63x5": lambda: noise((63, 5, 3), 4),
    "noise-5x63": lambda: noise((5, 63, 3), 5),
    "noise-128x97": lambda: noise((128, 97, 3), 6),
    "linear-64x64": lambda: gradient(64, 64, "linear"),
    "waves-128x77": lambda: gradient(128, 77, "waves"),
    "text-120x128": lambda: text(120, 128),
    **{name: make for name, (make, _, _) in PINNED.items()},
}


@pytest.mark.parametrize("name", SMALL)
def test_small_images_match_pdqhash_exactly(pdqhash, name):
    rgb = SMALL[name]()
    h, q = reference(pdqhash, rgb)
    p = pdq.compute(pdq.luma_from_rgb(rgb))
    assert (p.hash, p.quality) == (h, q)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (4, 4), (4, 100), (100, 4)])
def test_too_small_images_match_pdqhash(pdqhash, shape):
    rgb = noise(shape + (3,))
    assert (pdq.compute(pdq.luma_from_rgb(rgb)).hash, 0) == reference(pdqhash, rgb) == ("0" * 64, 0)


def test_dct_matches_pdqhash_compute_float(pdqhash, decoded):
    rgb = decoded[REFERENCE[0]["file"]]
    values, _ = pdqhash.compute_float(np.ascontiguousarray(rgb))
    ref = np.asarray(values, dtype=np.float32)[::-1].reshape(16, 16)  # pdqhash reverses the flat order
    p = pdq.compute(pdq.luma_from_rgb(rgb))
    np.testing.assert_allclose(p.dct, ref, rtol=0, atol=1e-2)


def test_luma_is_what_pdqhash_hashes(pdqhash):
    rgb = noise((301, 257, 3), 7)
    naive = (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(np.float32)
    np.testing.assert_array_equal(pdq.luma_from_rgb(rgb), naive)


# ---------------------------------------------------------------- dihedral variants


@pytest.mark.parametrize("name", [REFERENCE[0]["file"], REFERENCE[5]["file"]])
def test_dihedral_matches_pdqhash_compute_dihedral(pdqhash, decoded, name):
    rgb = decoded[name]
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    p = pdq.compute(pdq.luma_from_rgb(rgb))
    ours = p.dihedral()
    assert list(ours) == list(pdq.DIHEDRAL_KEYS)
    assert ours["original"] == p.hash
    for key, (_, index) in TRANSFORMS.items():
        assert hamming(ours[key], bits_to_hex(vectors[index])) <= MAX_BITS, key
    assert abs(p.quality - quality) <= 1


def _symmetric_luma(decoded) -> np.ndarray:
    # 576 = 9 * 64 and 832 = 13 * 64 rows/columns: decimation samples and (odd, 5 and 7) box windows are
    # mirror-symmetric, so a transformed image's hash is exactly the sign-flipped DCT's hash.
    return pdq.luma_from_rgb(decoded[REFERENCE[0]["file"]][:576, :832])


@pytest.mark.parametrize("key", list(TRANSFORMS))
def test_dihedral_equals_hash_of_transformed_pixels(decoded, key):
    luma = _symmetric_luma(decoded)
    transform, _ = TRANSFORMS[key]
    assert hamming(pdq.compute(luma).dihedral()[key], pdq.compute(transform(luma)).hash) <= MAX_BITS


def test_dihedral_names_are_not_interchangeable(decoded):
    luma = _symmetric_luma(decoded)
    d = pdq.compute(luma).dihedral()
    assert len(set(d.values())) == 8
    assert hamming(d["flip_x"], pdq.compute(np.flipud(luma)).hash) > 64
    assert hamming(d["rotate90"], pdq.compute(np.rot90(luma, 3)).hash) > 64


def test_transpose_is_exact_for_any_size(decoded):
    luma = pdq.luma_from_rgb(decoded[REFERENCE[-1]["file"]])  # 819 x 1024: not mirror-symmetric
    assert hamming(pdq.compute(luma).dihedral()["transpose"], pdq.compute(luma.T).hash) <= MAX_BITS


def test_dihedral_of_transformed_image_contains_original(decoded):
    luma = pdq.luma_from_rgb(decoded[REFERENCE[0]["file"]][:576, :832])
    original = pdq.compute(luma).hash
    inverse = {"rotate90": "rotate270", "rotate270": "rotate90"}
    for key, (transform, _) in TRANSFORMS.items():
        variants = pdq.compute(np.ascontiguousarray(transform(luma))).dihedral()
        assert hamming(variants[inverse.get(key, key)], original) <= MAX_BITS, key


# ---------------------------------------------------------------- odd inputs


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2), (4, 4), (4, 1000), (1000, 1)])
def test_too_small_gives_zero_hash_and_quality(shape):
    p = pdq.compute(noise(shape))
    assert p.hash == "0" * 64 and p.quality == 0
    assert set(p.dihedral().values()) == {"0" * 64}


@pytest.mark.parametrize("shape", [(5, 5), (63, 5), (5, 63), (7, 3000), (2500, 6), (129, 65)])
def test_odd_shapes(shape):
    p = pdq.compute(noise(shape, seed=sum(shape)))
    assert len(p.hash) == 64 and int(p.hash, 16).bit_count() == 128  # noise: no ties at the median
    assert 0 <= p.quality <= 100
    assert p.dct.shape == (16, 16)
    assert len(set(p.dihedral().values())) == 8


@pytest.mark.parametrize("shape", [(5, 5), (100, 80), (700, 300), (1200, 1600)])
def test_flat_images_have_quality_zero(shape):
    p = pdq.compute(np.full(shape, 128, dtype=np.uint8))
    assert p.quality == 0
    assert len(p.hash) == 64


def test_input_dtypes_and_layouts_agree():
    luma8 = noise((333, 517))
    expected = pdq.compute(luma8)
    for variant in (luma8.astype(np.float32), luma8.astype(np.float64), luma8.astype(np.int64)):
        assert pdq.compute(variant) == expected
    assert pdq.compute(np.asfortranarray(luma8)) == expected
    big = np.zeros((333, 1034), dtype=np.uint8)
    big[:, ::2] = luma8[:, ::-1]
    assert pdq.compute(big[:, ::2][:, ::-1]) == expected  # strided, negative-stride view
    assert pdq.compute(luma8.tolist()) == expected


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 0)),
        np.zeros((0, 10)),
        np.zeros((10, 0)),
        np.zeros(10),
        np.zeros((10, 10, 3)),
        np.float32(3.0),
        np.array([["a"] * 10] * 10),
        np.full((10, 10), np.nan),
        [],
    ],
    ids=["0x0", "0x10", "10x0", "1-d", "3-d", "scalar", "strings", "nan", "empty-list"],
)
def test_bad_input_raises_value_error(bad):
    with pytest.raises(ValueError):
        pdq.compute(bad)


def test_luma_from_rgb():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[1] = 255
    luma = pdq.luma_from_rgb(rgb)
    assert luma.dtype == np.float32 and luma.shape == (2, 3)
    np.testing.assert_allclose(luma[0], [0.299 * 255, 0.587 * 255, 0.114 * 255], rtol=1e-6)
    np.testing.assert_allclose(luma[1], 255, rtol=1e-6)
    big = noise((97, 2049, 3), 8)  # several strips, the last one partial
    naive = (big[..., 0] * 0.299 + big[..., 1] * 0.587 + big[..., 2] * 0.114).astype(np.float32)
    np.testing.assert_array_equal(pdq.luma_from_rgb(big), naive)
    for bad in (np.zeros((4, 4)), np.zeros((4, 4, 4)), np.zeros((4, 4, 3, 1))):
        with pytest.raises(ValueError):
            pdq.luma_from_rgb(bad)


def test_pdq_value_semantics():
    p = pdq.compute(noise((80, 90)))
    with pytest.raises(AttributeError):
        p.hash = "0" * 64
    with pytest.raises(ValueError):
        p.dct[0, 0] = 1.0  # read-only: dihedral() must keep describing this hash
    assert p == pdq.compute(noise((80, 90)))
    assert "dct" not in repr(p)


@pytest.mark.parametrize("shape", [(1000, 777), (129, 300), (64, 64), (4, 100)])
def test_mirrors_from_shared_passes_equal_hashing_the_mirrored_pixels(shape):
    luma = noise(shape, seed=3)
    mirrors = pdq.compute_mirrors(luma)
    for name, mirrored in (("original", luma), ("flip_x", np.fliplr(luma)), ("flip_y", np.flipud(luma))):
        assert mirrors[name] == pdq.compute(mirrored), name  # hash and quality (the DCT is not compared)
    assert mirrors["rotate180"] == pdq.compute(np.rot90(luma, 2))  # the half turn is exact too
    for computed in mirrors.values():
        assert computed.transposed() == computed.dihedral()["transpose"]
