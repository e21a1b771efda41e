"""Detection accuracy: recall per modification and false matches, single hashes vs our decision rule.

    python bench/accuracy.py [PHOTO_DIR ...] [--out DIR] [--mods a,b] [--workers N]

Without a folder it takes the 10 photos this repository ships (tests/data/photos).

Every photo in the folders is an "original": a pretend listed image (benign photos only). Each one is
modified in the ways listed in `MODIFICATIONS` (re-encoding, resizing, crops, turns, colour changes,
padding, and pairs of these), and every copy is fingerprinted with `hashcheck.fingerprinting.fingerprint` and scanned
against two lists of the originals:

* ``ours``: built as `hashcheck list build` does (`references_for(listing_fingerprint(bytes))`);
* ``ref``: what a hotline sends: exact hashes plus PDQ by Meta's reference (`pdqhash`) and pHash by
  `imagehash`, both on the full RGB decode of the original file.

A copy is *recalled* by a method when it matches its own original; a *false match* is any (copy, other
original) pair that matches. Single hashes are scored from the Hamming distances (PDQ at 31 with quality
>= 50, pHash at 8; with and without the 8 rotations/mirrors of the query); our rule is scored by
running `hashcheck.matching.matcher.match` itself: only the `match` verdict counts (`review` moves nothing).
Originals that are near-duplicates of an earlier one (PDQ <= 31 in some orientation, or the same
bytes) are dropped first: the same picture twice would be counted as a false match.

Writes `accuracy.md` (tables), `accuracy.png` (recall per modification per method, and the genuine vs
impostor distance distributions) and `pairs.npz` (distances, for docs/accuracy.md's tail fit) to
--out (default bench/out/). The last line is:

    recall_all=… recall_no_crop10=… false_matches=… best_single_recall_all=… recall_round2=… captions=…
    screenshots=… crop8=… stickers=… recall_every_modification=… false_actions_per_upload_1_4m=…

`recall_all` and `recall_no_crop10` are the first round's modifications only, so that runs stay
comparable; the second round (`ROUND2`: caption bands, screenshots of chat apps and of a browser,
picture-in-picture, stickers over corners, crops of 3% and 8% a side) is reported on its own, as a
whole and per group; `recall_every_modification` is the mean over both rounds' modifications.
`false_actions_per_upload_1_4m` is the rule's expected false actions per upload against 1.4M listed
pictures (the worse of a hotline's list and one we build, which carries more rows per picture), every
kind of query variant held to the heaviest impostor tail any kind shows against such a list's rows.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the workers are the parallelism; keep BLAS to one thread
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import hashlib
import io
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "hashcheck"))

from hashcheck.fingerprinting import pdq  # noqa: E402
from hashcheck.fingerprinting.fingerprint import Fingerprint, fingerprint, listing_fingerprint  # noqa: E402
from hashcheck.lists.build import references_for  # noqa: E402
from hashcheck.lists.listformat import Reference  # noqa: E402
from hashcheck.matching import matcher  # noqa: E402
from hashcheck.matching.stores.memory import MemoryStore  # noqa: E402

Image.MAX_IMAGE_PIXELS = 200_000_000  # our own benign photos; the library applies its own limits
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
LIST_ID = "bench"
PDQ_THRESHOLD, PHASH_THRESHOLD, PDQ_MIN_QUALITY = 31, 8, 50
DIHEDRAL = set(pdq.DIHEDRAL_KEYS)

# ---------------------------------------------------------------------------------------------------
# Modifications: RGB image in, (image, format, quality) out. Deterministic, so runs are comparable.

Modified = tuple[Image.Image, str, int]


def _jpeg(q: int) -> Callable[[Image.Image], Modified]:
    return lambda im: (im, "JPEG", q)


def _resize(scale: float) -> Callable[[Image.Image], Modified]:
    def resize(im):
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        return im.resize(size, Image.Resampling.LANCZOS), "JPEG", 90

    return resize


def _crop(fraction: float) -> Callable[[Image.Image], Modified]:
    """Remove `fraction` of the width and of the height, 60% of it from the left/top, 40% right/bottom:
    off-centre on purpose, as a person cropping by hand would."""

    def crop(im):
        dx, dy = im.width * fraction, im.height * fraction
        box = (round(dx * 0.6), round(dy * 0.6), im.width - round(dx * 0.4), im.height - round(dy * 0.4))
        return im.crop(box), "JPEG", 90

    return crop


def _pad(fraction: float, colour: tuple[int, int, int]) -> Callable[[Image.Image], Modified]:
    """Add a uniform border of `fraction` of the width (left/right) and height (top/bottom) on each side."""

    def pad(im):
        bx, by = round(im.width * fraction), round(im.height * fraction)
        out = Image.new("RGB", (im.width + 2 * bx, im.height + 2 * by), colour)
        out.paste(im, (bx, by))
        return out, "JPEG", 90

    return pad


def _enhance(kind, factor: float) -> Callable[[Image.Image], Modified]:
    return lambda im: (kind(im).enhance(factor), "JPEG", 90)


def _gamma(im):
    table = [round(255 * (v / 255) ** 0.6) for v in range(256)] * 3
    return im.point(table), "JPEG", 90


def _noise(im):
    rng = np.random.default_rng(zlib_seed(im))
    pixels = np.asarray(im, dtype=np.float32) + rng.normal(0, 12, (im.height, im.width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "JPEG", 90


def zlib_seed(im: Image.Image) -> int:
    return int.from_bytes(hashlib.sha1(im.tobytes()[:4096]).digest()[:4], "little")


def _watermark(im):
    out = im.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=max(12, im.height // 8))
    draw.text((im.width * 0.08, im.height * 0.42), "SAMPLE (c) 2026", font=font, fill=(255, 255, 255, 150))
    return Image.alpha_composite(out, layer).convert("RGB"), "JPEG", 90


SINGLE: dict[str, Callable[[Image.Image], Modified]] = {
    "jpeg_q50": _jpeg(50),
    "jpeg_q80": _jpeg(80),
    "webp": lambda im: (im, "WEBP", 80),
    "png": lambda im: (im, "PNG", 0),
    "resize50": _resize(0.5),
    "resize25": _resize(0.25),
    "crop5": _crop(0.05),
    "crop10": _crop(0.10),
    "rotate3": lambda im: (im.rotate(3, Image.Resampling.BICUBIC, expand=False), "JPEG", 90),
    "mirror": lambda im: (ImageOps.mirror(im), "JPEG", 90),
    "rotate90": lambda im: (im.transpose(Image.Transpose.ROTATE_90), "JPEG", 90),
    "brightness": _enhance(ImageEnhance.Brightness, 1.3),
    "contrast": _enhance(ImageEnhance.Contrast, 1.5),
    "grayscale": lambda im: (im.convert("L").convert("RGB"), "JPEG", 90),
    "gamma": _gamma,
    "blur": lambda im: (im.filter(ImageFilter.GaussianBlur(2)), "JPEG", 90),
    "noise": _noise,
    "watermark": _watermark,
    "border10": _pad(0.10, (255, 255, 255)),
    "border20": _pad(0.20, (0, 0, 0)),
}
COMBINATIONS = (
    ("resize50", "jpeg_q50"),
    ("mirror", "crop5"),
    ("rotate90", "border10"),
    ("watermark", "jpeg_q50"),
    ("brightness", "crop5"),
    ("grayscale", "rotate3"),
    ("mirror", "border20"),
    ("contrast", "resize25"),
)


def _combined(first: str, second: str) -> Callable[[Image.Image], Modified]:
    """`first`'s pixels, then `second` (which also decides the encoding: re-encodings come second)."""
    return lambda im: SINGLE[second](SINGLE[first](im)[0])


# Round 2: how pictures really travel. Reported on their own (recall_round2 and a figure per group), so
# that the first round's figures stay comparable from run to run.


def _font(size: int):
    return ImageFont.load_default(size=max(10, size))


def _text_lines(draw, box: tuple[int, int, int, int], lines: Sequence[str], fill, size: int) -> None:
    x, y = box[0], box[1]
    for line in lines:
        draw.text((x, y), line, font=_font(size), fill=fill)
        y += round(size * 1.3)


def _caption(top: float, bottom: float, band: tuple[int, int, int], ink: tuple[int, int, int]):
    """A meme caption: bands of `top` and `bottom` (shares of the height) above and below, with text."""

    def caption(im):
        t, b = round(im.height * top), round(im.height * bottom)
        out = Image.new("RGB", (im.width, im.height + t + b), band)
        out.paste(im, (0, t))
        draw = ImageDraw.Draw(out)
        size = max(12, min(t or b, b or t) // 3)
        if t:
            _text_lines(draw, (im.width // 12, t // 4), ["WHEN THE WEEKEND", "FINALLY ARRIVES"], ink, size)
        if b:
            _text_lines(draw, (im.width // 10, im.height + t + b // 4), ["and nobody calls you"], ink, size)
        return out, "JPEG", 85

    return caption


def _gradient(size: tuple[int, int], seed: int) -> Image.Image:
    """A non-uniform background: a smooth two-colour gradient with a little noise (no photo in it)."""
    rng = np.random.default_rng(seed)
    w, h = size
    a, b = rng.integers(150, 250, 3), rng.integers(100, 230, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    pixels = a * (1 - ramp) + b * ramp + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(np.broadcast_to(pixels, (h, w, 3)), 0, 255).astype(np.uint8))


def _screenshot_phone(im):
    """A chat app on a phone: status bar, header, the picture across the width, messages, a keyboard bar."""
    w = im.width
    h = round(w * 2.1)
    out = _gradient((w, h), zlib_seed(im) + 1)
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, w, h * 0.035), fill=(20, 20, 20))
    draw.rectangle((0, h * 0.035, w, h * 0.1), fill=(236, 236, 240))
    _text_lines(draw, (round(w * 0.18), round(h * 0.05)), ["Sam", "online"], (30, 30, 30), round(h * 0.018))
    draw.ellipse((w * 0.03, h * 0.045, w * 0.13, h * 0.09), fill=(120, 160, 210))
    top = round(h * 0.22)
    shown = im.resize((round(w * 0.86), round(im.height * 0.86)))
    out.paste(shown, (round(w * 0.1), top))
    y = top + shown.height + round(h * 0.02)
    draw.rounded_rectangle((w * 0.05, y, w * 0.7, y + h * 0.06), radius=12, fill=(255, 255, 255))
    _text_lines(draw, (round(w * 0.08), y + round(h * 0.012)), ["look at this one"], (40, 40, 40), round(h * 0.02))
    draw.rectangle((0, h * 0.92, w, h), fill=(210, 212, 216))
    return out, "PNG", 0


def _screenshot_chat(background, bar, bubble, ink):
    """A chat app in a plain light or dark theme: a received picture at 70% of the width, right of a
    bubble of text, on a background of one colour (a uniform border it is not: bars and bubbles)."""

    def chat(im):
        w = im.width
        h = round(w * 2.1)
        out = Image.new("RGB", (w, h), background)
        draw = ImageDraw.Draw(out)
        draw.rectangle((0, 0, w, h * 0.035), fill=(0, 0, 0))
        draw.rectangle((0, h * 0.035, w, h * 0.1), fill=bar)
        _text_lines(draw, (round(w * 0.18), round(h * 0.05)), ["Sam", "online"], ink, round(h * 0.018))
        y = round(h * 0.14)
        draw.rounded_rectangle((w * 0.05, y, w * 0.6, y + h * 0.05), radius=14, fill=bubble)
        _text_lines(draw, (round(w * 0.08), y + round(h * 0.012)), ["hey, check this"], ink, round(h * 0.02))
        top = round(h * 0.22)
        shown = im.resize((round(w * 0.7), round(im.height * 0.7)))
        out.paste(shown, (round(w * 0.27), top))
        y = top + shown.height + round(h * 0.02)
        draw.rounded_rectangle((w * 0.3, y, w * 0.95, y + h * 0.06), radius=14, fill=bubble)
        draw.rectangle((0, h * 0.92, w, h), fill=bar)
        return out, "PNG", 0

    return chat


def _screenshot_browser(im):
    """A browser window: tabs and address bar above, a sidebar of text, the picture left of centre."""
    w = round(im.width / 0.55)
    h = round(max(im.height * 1.5, w * 0.62))
    out = _gradient((w, h), zlib_seed(im) + 2)
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, 0, w, h * 0.06), fill=(222, 225, 230))
    for i in range(3):
        draw.rounded_rectangle((w * (0.02 + 0.16 * i), h * 0.012, w * (0.16 + 0.16 * i), h * 0.06), radius=6,
                               fill=(245, 245, 248) if i == 0 else (205, 208, 214))  # fmt: skip
    draw.rectangle((0, h * 0.06, w, h * 0.11), fill=(245, 246, 248))
    draw.rounded_rectangle((w * 0.1, h * 0.07, w * 0.8, h * 0.1), radius=10, fill=(255, 255, 255))
    _text_lines(draw, (round(w * 0.12), round(h * 0.075)), ["https://pictures.example/album/2041"], (60, 60, 60),
                round(h * 0.018))  # fmt: skip
    left, top = round(w * 0.06), round(h * 0.18)
    out.paste(im, (left, top))
    _text_lines(draw, (left + im.width + round(w * 0.04), top), ["Album", "42 photos", "Shared with 3", "Download"],
                (50, 50, 50), round(h * 0.025))  # fmt: skip
    return out, "PNG", 0


def _picture_in_picture(im):
    """The picture at 45% size in a corner of another scene (generated, so it matches no original)."""
    out = _gradient((im.width, im.height), zlib_seed(im) + 3)
    draw = ImageDraw.Draw(out)
    rng = np.random.default_rng(zlib_seed(im) + 4)
    for _ in range(12):
        x, y = rng.integers(0, im.width), rng.integers(0, im.height)
        r = int(rng.integers(im.width // 20, im.width // 6))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    small = im.resize((round(im.width * 0.45), round(im.height * 0.45)))
    x, y = im.width - small.width - im.width // 25, im.height - small.height - im.height // 25
    draw.rectangle((x - 3, y - 3, x + small.width + 2, y + small.height + 2), fill=(255, 255, 255))
    out.paste(small, (x, y))
    return out, "JPEG", 90


def _stickers(im):
    """Three emoji-like stickers over corners, each about 14% of the shorter side."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    r = round(min(im.size) * 0.07)
    for cx, cy in ((r * 1.4, r * 1.4), (im.width - r * 1.4, r * 1.4), (im.width - r * 1.4, im.height - r * 1.4)):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 204, 0), outline=(120, 80, 0), width=max(1, r // 10))
        for ex in (-0.35, 0.35):
            draw.ellipse((cx + ex * r - r * 0.1, cy - r * 0.35, cx + ex * r + r * 0.1, cy - r * 0.1), fill=(60, 40, 0))
        draw.arc(
            (cx - r * 0.5, cy - r * 0.3, cx + r * 0.5, cy + r * 0.55), 20, 160, fill=(60, 40, 0), width=max(1, r // 8)
        )
    return out, "JPEG", 90


ROUND2: dict[str, Callable[[Image.Image], Modified]] = {
    "caption_top": _caption(0.18, 0.0, (255, 255, 255), (0, 0, 0)),
    "caption_both": _caption(0.14, 0.12, (0, 0, 0), (255, 255, 255)),
    "screenshot_phone": _screenshot_phone,
    "screenshot_browser": _screenshot_browser,
    "screenshot_light": _screenshot_chat((255, 255, 255), (246, 246, 246), (230, 232, 236), (20, 20, 20)),
    "screenshot_dark": _screenshot_chat((0, 0, 0), (28, 28, 30), (50, 50, 55), (230, 230, 230)),
    "picture_in_picture": _picture_in_picture,
    "stickers": _stickers,
    "crop3side": _crop(0.06),  # 3% off each side on average (60/40, as `_crop` cuts)
    "crop8side": _crop(0.16),
    "caption_top+jpeg_q50": lambda im: SINGLE["jpeg_q50"](_caption(0.18, 0.0, (255, 255, 255), (0, 0, 0))(im)[0]),
    "stickers+resize50": lambda im: SINGLE["resize50"](_stickers(im)[0]),
}
# The round's groups, as its "Done when" reads them
ROUND2_GROUPS = {
    "captions": ("caption_top", "caption_both", "caption_top+jpeg_q50"),
    "screenshots": ("screenshot_phone", "screenshot_browser", "screenshot_light", "screenshot_dark"),
    "crop8": ("crop8side",),
    "stickers": ("stickers", "stickers+resize50"),
}

MODIFICATIONS: dict[str, Callable[[Image.Image], Modified]] = {
    **SINGLE,
    **{f"{a}+{b}": _combined(a, b) for a, b in COMBINATIONS},
    **ROUND2,
}
CROP10 = {name for name in MODIFICATIONS if "crop10" in name}


def encode(im: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    im.save(out, fmt, **kwargs)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------
# Fingerprinting (in worker processes)


@dataclass
class Original:
    name: str
    path: Path
    fp: Fingerprint
    ref_pdq: str = ""  # pdqhash on the full RGB decode, as a hotline would list it
    ref_pdq_quality: int = 0
    ref_phash: str = ""  # imagehash on the full decode


def find_photos(folders: Sequence[str]) -> list[Path]:
    paths = []
    for folder in folders:
        root = Path(folder)
        found = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += found
    return paths


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def _fingerprint_original(path: Path) -> Original:
    import imagehash
    import pdqhash

    data = path.read_bytes()
    rgb = _rgb(path)
    vector, quality = pdqhash.compute(np.asarray(rgb))
    ref_pdq = int("".join(str(int(b)) for b in vector), 2)  # first bit most significant (list format)
    return Original(
        path.stem, path, listing_fingerprint(data), f"{ref_pdq:064x}", int(quality), str(imagehash.phash(rgb))
    )


_CACHE: dict[Path, Image.Image] = {}


def _fingerprint_copy(task: tuple[int, Path, str]) -> tuple[int, str, Fingerprint]:
    index, path, mod = task
    if path not in _CACHE:  # tasks arrive grouped by original: decode each once per worker
        _CACHE.clear()
        _CACHE[path] = _rgb(path)
    data = encode(*MODIFICATIONS[mod](_CACHE[path]))
    return index, mod, fingerprint(data)


# ---------------------------------------------------------------------------------------------------
# Distances


def hex_rows(hashes: Sequence[str], nbytes: int) -> np.ndarray:
    return np.array([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in hashes]).reshape(-1, nbytes)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


def hamming_matrix(queries: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between rows of two uint8 arrays."""
    return _POPCOUNT[queries[:, None, :] ^ refs[None, :, :]].sum(axis=2)


def min_distances(
    fp: Fingerprint, algorithm: str, refs: np.ndarray, variants: set[str] | None, min_quality: int = PDQ_MIN_QUALITY
) -> np.ndarray:
    """For one copy, the closest distance to each original over the query hashes allowed (frame 0)."""
    chosen = [
        h.hash
        for h in fp.near
        if h.algorithm == algorithm
        and h.frame == 0
        and (variants is None or h.variant in variants)
        and (algorithm != "pdq" or (h.quality or 0) >= min_quality)
    ]
    if not chosen:
        return np.full(len(refs), 10_000, dtype=np.int64)
    return hamming_matrix(hex_rows(chosen, refs.shape[1]), refs).min(axis=0).astype(np.int64)


# ---------------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Copy:
    original: int
    mod: str
    fp: Fingerprint


SINGLE_METHODS = {  # name: (algorithm, query variants, threshold)
    "PDQ": ("pdq", {"original"}, PDQ_THRESHOLD),
    "PDQ+dihedral": ("pdq", DIHEDRAL, PDQ_THRESHOLD),
    "pHash": ("phash", {"original"}, PHASH_THRESHOLD),
    "pHash+dihedral": ("phash", DIHEDRAL, PHASH_THRESHOLD),
}


def score_single(copies: list[Copy], ref_rows: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Per method, a boolean (copies x originals) "matches" matrix; plus the raw distance matrices."""
    hits, distances = {}, {}
    for name, (algorithm, variants, threshold) in SINGLE_METHODS.items():
        d = np.array([min_distances(c.fp, algorithm, ref_rows[algorithm], variants) for c in copies])
        distances[name] = d
        hits[name] = d <= threshold
    # Every query variant (incl. trimmed), as the rule sees them: for the distributions and the sweep.
    for algorithm in ("pdq", "phash"):
        distances[f"{algorithm}_all"] = np.array(
            [min_distances(c.fp, algorithm, ref_rows[algorithm], None) for c in copies]
        )
    # The pHash tier's confirmation compares every PDQ variant of the upload, whatever its quality.
    distances["pdq_confirm"] = np.array([min_distances(c.fp, "pdq", ref_rows["pdq"], None, 0) for c in copies])
    return hits, distances


def score_rule(copies: list[Copy], store: MemoryStore, names: list[str], policy: matcher.Policy) -> tuple:
    """(acts, reviews): boolean (copies x originals) matrices from `matcher.match` itself."""
    column = {name: i for i, name in enumerate(names)}
    acts = np.zeros((len(copies), len(names)), dtype=bool)
    reviews = np.zeros_like(acts)
    for row, c in enumerate(copies):
        result = matcher.match(c.fp, store, policy)
        for m in result.matches:
            (acts if m.acts else reviews)[row, column[m.ref_id]] = True
    return acts, reviews


def reference_store(originals: list[Original], kind: str) -> MemoryStore:
    refs: list[Reference] = []
    for o in originals:
        if kind == "ours":
            refs += references_for(o.fp, LIST_ID, o.name)
        else:
            refs += [Reference(a, h, LIST_ID, o.name) for a, h in o.fp.exact().items()]
            refs += [Reference("pdq", o.ref_pdq, LIST_ID, o.name), Reference("phash", o.ref_phash, LIST_ID, o.name)]
    return MemoryStore(refs)


@dataclass
class Summary:
    recall: dict[str, dict[str, float]]  # method -> modification -> recall
    overall: dict[str, float]
    overall_no_crop10: dict[str, float]
    false_matches: dict[str, int]
    reviews: dict[str, tuple[float, int]]  # rule methods: (genuine copies reviewed only, impostor reviews)


def summarise(copies: list[Copy], methods: dict[str, np.ndarray], reviews: dict[str, np.ndarray]) -> Summary:
    own = np.array([c.original for c in copies])
    mods = list(dict.fromkeys(c.mod for c in copies))
    rows = np.arange(len(copies))
    recall, overall, no_crop10, false = {}, {}, {}, {}
    first = np.array([c.mod not in ROUND2 for c in copies])  # "all" stays the first round's, run to run
    keep = first & np.array([c.mod not in CROP10 for c in copies])
    for name, hit in methods.items():
        genuine = hit[rows, own]
        impostor = hit.copy()
        impostor[rows, own] = False
        recall[name] = {m: float(genuine[[c.mod == m for c in copies]].mean()) for m in mods}
        overall[name] = float(genuine[first].mean()) if first.any() else math.nan
        no_crop10[name] = float(genuine[keep].mean()) if keep.any() else math.nan
        false[name] = int(impostor.sum())
    review_stats = {}
    for name, rev in reviews.items():
        genuine_review_only = rev[rows, own] & ~methods[name][rows, own]
        impostor = rev.copy()
        impostor[rows, own] = False
        review_stats[name] = (float(genuine_review_only.mean()), int(impostor.sum()))
    return Summary(recall, overall, no_crop10, false, review_stats)


# ---------------------------------------------------------------------------------------------------
# Output


def markdown(summary: Summary, n_originals: int, n_copies: int, dropped: list[str]) -> str:
    methods = list(summary.recall)
    lines = [
        f"{n_originals} originals, {n_copies} copies, {n_copies * (n_originals - 1)} impostor (copy, other "
        f"original) pairs per method." + (f" Near-duplicate originals dropped: {len(dropped)}." if dropped else ""),
        "",
        "| modification | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for mod in summary.recall[methods[0]]:
        lines.append(f"| {mod} | " + " | ".join(f"{summary.recall[m][mod]:.0%}" for m in methods) + " |")
    lines.append("| **all (first round)** | " + " | ".join(f"**{summary.overall[m]:.1%}**" for m in methods) + " |")
    lines.append("| all but crop10 | " + " | ".join(f"{summary.overall_no_crop10[m]:.1%}" for m in methods) + " |")
    lines.append("| false matches | " + " | ".join(str(summary.false_matches[m]) for m in methods) + " |")
    if summary.reviews:
        lines += ["", "| rule | genuine copies only reviewed | impostor reviews |", "|---|---|---|"]
        for name, (genuine, impostor) in summary.reviews.items():
            lines.append(f"| {name} | {genuine:.1%} | {impostor} |")
    return "\n".join(lines) + "\n"


def distribution_table(distances: dict[str, np.ndarray], own: np.ndarray) -> str:
    lines = ["| distances | genuine median | genuine p90 | impostor min | impostor p0.1 | impostor mean | sd |"]
    lines.append("|---|---|---|---|---|---|---|")
    rows = np.arange(len(own))
    for name in ("PDQ", "PDQ+dihedral", "pdq_all", "pHash", "pHash+dihedral", "phash_all"):
        d = distances[name]
        genuine = d[rows, own]
        mask = np.ones(d.shape, dtype=bool)
        mask[rows, own] = False
        impostor = d[mask]
        impostor = impostor[impostor < 10_000]  # copies whose PDQ quality was too low to be compared
        lines.append(
            f"| {name} | {np.median(genuine):.0f} | {np.percentile(genuine, 90):.0f} | {impostor.min()} | "
            f"{np.percentile(impostor, 0.1):.0f} | {impostor.mean():.1f} | {impostor.std():.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(summary: Summary, distances: dict[str, np.ndarray], own: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(summary.recall)
    mods = list(summary.recall[methods[0]])
    fig, axes = plt.subplots(2, 1, figsize=(16, 10), gridspec_kw={"height_ratios": [3, 2]})
    width = 0.8 / len(methods)
    x = np.arange(len(mods))
    for i, m in enumerate(methods):
        axes[0].bar(x + i * width, [summary.recall[m][mod] * 100 for mod in mods], width, label=m)
    axes[0].set_xticks(x + 0.4 - width / 2, mods, rotation=60, ha="right", fontsize=8)
    axes[0].set_ylabel("recall %")
    axes[0].set_ylim(0, 125)  # room for the legend above the bars
    axes[0].set_title("Recall per modification (single hashes at their thresholds vs the decision rule)")
    axes[0].legend(fontsize=8, ncol=len(methods), loc="upper center")
    rows = np.arange(len(own))
    for name, colour, bits in (("pdq_all", "tab:blue", 256), ("phash_all", "tab:orange", 64)):
        d = distances[name].astype(float)
        genuine = d[rows, own]
        mask = np.ones(d.shape, dtype=bool)
        mask[rows, own] = False
        impostor = d[mask]
        label = name.split("_")[0]
        bins = np.arange(0, bits + 2) / bits
        axes[1].hist(genuine[genuine < 10_000] / bits, bins, histtype="step", color=colour, label=f"{label} genuine")
        axes[1].hist(
            impostor[impostor < 10_000] / bits, bins, histtype="stepfilled", alpha=0.3, color=colour,
            label=f"{label} impostor",
        )  # fmt: skip
    axes[1].set_yscale("log")
    axes[1].set_xlim(0, 0.7)
    axes[1].set_xlabel("Hamming distance / bits (closest over all query variants)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------
# The pHash tier's PDQ bound, and what a 1.4M list does to the false-match rate

LIST_SIZE = 1_400_000
CONFIRM_BOUNDS = (52, 60, 64, 70, 76, 80, 90)


def impostors(d: np.ndarray, own: np.ndarray) -> np.ndarray:
    mask = np.ones(d.shape, dtype=bool)
    mask[np.arange(len(own)), own] = False
    values = d[mask]
    return values[values < 10_000]  # 10_000: no query hash of usable quality


def impostor_correlation(a: np.ndarray, b: np.ndarray, own: np.ndarray) -> float:
    """Pearson correlation of two distances over the same impostor pairs (both measured)."""
    mask = np.ones(a.shape, dtype=bool)
    mask[np.arange(len(own)), own] = False
    mask &= (a < 10_000) & (b < 10_000)
    return float(np.corrcoef(a[mask], b[mask])[0, 1])


def rule_hits(distances: dict[str, np.ndarray], confirm: int) -> np.ndarray:
    """The decision rule from distances alone (PDQ tier, or pHash confirmed by PDQ), for sweeping its bound."""
    pdq_tier = distances["pdq_all"] <= PDQ_THRESHOLD
    return pdq_tier | ((distances["phash_all"] <= PHASH_THRESHOLD) & (distances["pdq_confirm"] <= confirm))


def confirm_sweep(distances: dict[str, np.ndarray], own: np.ndarray, mods: np.ndarray) -> str:
    rows = np.arange(len(own))
    keep = ~np.isin(mods, list(CROP10))
    lines = [
        "| phash_confirm_pdq | recall all but crop10 | crop5 | rotate3 | impostor pairs acting |",
        "|---|---|---|---|---|",
    ]
    for bound in CONFIRM_BOUNDS:
        hit = rule_hits(distances, bound)
        genuine = hit[rows, own]
        false = int(hit.sum() - genuine.sum())
        crop5, rotate3 = genuine[mods == "crop5"].mean(), genuine[mods == "rotate3"].mean()
        lines.append(f"| {bound} | {genuine[keep].mean():.1%} | {crop5:.0%} | {rotate3:.0%} | {false} |")
    return "\n".join(lines) + "\n"


@dataclass
class TailFit:
    """A normal for the lower tail of impostor distances, the most cautious of three at the threshold
    that matters (`at`): the bulk's mean and sd, and normals matched to two quantiles, at 0.1% and 1%
    and as deep as the sample resolves (20 values below the lower one, at most 0.01% and 0.1%). How the
    tail bends differs by hash (PDQ's grows heavier the deeper one looks, pHash's lighter), so no one of
    them is cautious for both. Distances are integers: each is spread over its unit (seeded jitter)
    first, or a fit would jump with the ties (a 6 or an 8 between two quantiles is an sd of 7.9 or 10.5)."""

    mean: float
    sd: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray, at: float) -> TailFit:
        from scipy.stats import norm

        n = len(values)
        spread = values + np.random.default_rng(0).uniform(-0.5, 0.5, n)
        fits = [cls(float(values.mean()), float(values.std()), n)]
        deep = max(1e-4, 20 / n)
        for low, high in ((1e-3, 1e-2), (deep, min(10 * deep, 0.5))):
            q_low, q_high = np.percentile(spread, [low * 100, high * 100])
            sd = (q_high - q_low) / (norm.ppf(high) - norm.ppf(low))
            if sd > 0:
                fits.append(cls(float(q_high - norm.ppf(high) * sd), float(sd), n))
        return max(fits, key=lambda fit: fit.z(at))

    def z(self, threshold: float) -> float:
        return (threshold + 0.5 - self.mean) / self.sd  # + 0.5: distances are integers

    def p_at_most(self, threshold: float) -> float:
        from scipy.stats import norm

        return float(norm.cdf(self.z(threshold)))


def bivariate_lower_tail(a: float, b: float, rho: float) -> float:
    """P(X <= a, Y <= b) for standard normals with correlation rho, accurate far into the tail
    (scipy's multivariate_normal.cdf has an absolute error of 1e-5, useless at 1e-12)."""
    from scipy.integrate import quad
    from scipy.stats import norm

    spread = math.sqrt(1 - rho * rho)
    value, _ = quad(lambda y: norm.pdf(y) * norm.cdf((a - rho * y) / spread), b - 12, b, epsabs=0, epsrel=1e-8)
    return float(value)


QUERY_HASHES = 25  # per algorithm and frame, at most: 8 orientations, 4 tilts, 8 more of the picture inside a
# border, one for each of up to 3 candidate regions (a caption band, a screenshot, an inset), 2 centre crops


def false_match_estimate(
    distances: dict[str, np.ndarray], own: np.ndarray, rho: float, confirm: int, review_bound: int
) -> str:
    """Markdown: expected false candidates per query against LIST_SIZE references, per hash and threshold,
    and the decision rule's expected false actions per query for the upload's own hashes' fit.

    Fitted on one query hash vs one reference (the upload as it is vs another original), then multiplied
    by the QUERY_HASHES an upload searches with (a union bound: orientations are far from independent)."""
    lines = [
        f"Per query against {LIST_SIZE:,} references, an upload searching with {QUERY_HASHES} hashes per "
        "algorithm. 'observed': impostor (copy, other original) pairs within the threshold, for one query "
        "hash and for the closest of all query hashes.",
        "",
        "| hash | threshold | observed, one hash | observed, all query hashes | fitted P(d <= t), one hash | "
        "expected false candidates per query |",
        "|---|---|---|---|---|---|",
    ]
    fits = {}
    for label, key, all_key, thresholds in (
        ("PDQ", "PDQ", "pdq_all", (31, 52, 64, 70, 76)),
        ("pHash", "pHash", "phash_all", (4, 6, 8, 10)),
    ):
        one, every = impostors(distances[key], own), impostors(distances[all_key], own)
        fits[key] = fit = TailFit.of(one, confirm if key == "PDQ" else PHASH_THRESHOLD)
        lines.append(f"| {label}: {len(one):,} pairs, mean {one.mean():.1f}, sd {one.std():.2f}, tail-fit sd "
                     f"{fit.sd:.2f} | | | | | |")  # fmt: skip
        for t in thresholds:
            p = fit.p_at_most(t)
            lines.append(
                f"| {label} | {t} | {(one <= t).sum()} | {(every <= t).sum()} | {p:.1e} | "
                f"{p * QUERY_HASHES * LIST_SIZE:.1e} |"
            )
    pdq_fit, phash_fit = fits["PDQ"], fits["pHash"]
    # pHash tier: some view of the upload with its pHash within the threshold AND its PDQ within
    # `confirm` of the same reference (matcher: the same view confirms): union bound over the views.
    joint_one = bivariate_lower_tail(pdq_fit.z(confirm), phash_fit.z(PHASH_THRESHOLD), rho)
    phash_tier = joint_one * QUERY_HASHES
    pdq_tier = pdq_fit.p_at_most(PDQ_THRESHOLD) * QUERY_HASHES
    per_query = (pdq_tier + phash_tier) * LIST_SIZE
    # Reviews: a pHash hit whose PDQ is not within `confirm` but within the review bound.
    joint_review = bivariate_lower_tail(pdq_fit.z(review_bound), phash_fit.z(PHASH_THRESHOLD), rho)
    reviews = max(joint_review - joint_one, 0.0) * QUERY_HASHES * LIST_SIZE
    unbounded_reviews = phash_fit.p_at_most(PHASH_THRESHOLD) * QUERY_HASHES * LIST_SIZE
    lines += [
        "",
        f"Decision rule (PDQ <= {PDQ_THRESHOLD} acts; pHash <= {PHASH_THRESHOLD} acts when the same reference's "
        f"PDQ <= {confirm}), per reference: PDQ tier {pdq_tier:.1e}; pHash tier {phash_tier:.1e} (bivariate "
        f"normal, tail-fitted margins, impostor correlation rho = {rho:.2f}, times {QUERY_HASHES} "
        f"views of the upload). **Expected false actions per query at {LIST_SIZE:,} references: {per_query:.1e}.** "
        f"Expected false reviews per query (pHash hit, PDQ within {review_bound} but not {confirm}): {reviews:.1e}; "
        f"without a PDQ bound on reviews they would be {unbounded_reviews:.1e}.",
    ]
    return "\n".join(lines) + "\n"


# Each kind of query variant against every row of a list we build (the picture, its centre crops and
# rungs, inside its border): their own impostor tails. A centre crop or a candidate region shows less of
# the picture than the whole, and could be nearer to unrelated pictures than the upload as it is.
FAMILIES: dict[str, Callable[[str], bool]] = {
    "as uploaded": lambda v: v == "original",
    "orientations": lambda v: v in DIHEDRAL and v != "original",
    "tilts": lambda v: v.startswith("tilt"),
    "trimmed": lambda v: v.startswith("trimmed"),
    "regions": lambda v: v.startswith("region"),
    "centre crops": lambda v: v.startswith("centre"),
}
FAMILY_HASHES = {"as uploaded": 1, "orientations": 7, "tilts": 4, "trimmed": 8, "regions": 3, "centre crops": 2}
SAMPLED_COPIES = 800


def variant_tails(copies: list[Copy], originals: list[Original]) -> tuple[dict[tuple[str, str], np.ndarray], float]:
    """Per (family, algorithm): the distances of every query hash of that family to every listed row
    (ours list) of the other originals, over up to SAMPLED_COPIES copies; and the PDQ rows such a list
    holds per picture."""
    rows, owner = {}, {}
    for algorithm, nbytes in (("pdq", 32), ("phash", 8)):
        listed = [
            [r.hash for r in references_for(o.fp, LIST_ID, o.name) if r.algorithm == algorithm] for o in originals
        ]
        rows[algorithm] = hex_rows([h for hashes in listed for h in hashes], nbytes)
        owner[algorithm] = np.repeat(np.arange(len(originals)), [len(hashes) for hashes in listed])
    chosen = np.random.default_rng(0).permutation(len(copies))[:SAMPLED_COPIES]
    found: dict[tuple[str, str], list[np.ndarray]] = {}
    for i in chosen:
        c = copies[i]
        for algorithm in ("pdq", "phash"):
            others = rows[algorithm][owner[algorithm] != c.original]
            for family, belongs in FAMILIES.items():
                hashes = [h.hash for h in c.fp.near if h.algorithm == algorithm and h.frame == 0 and belongs(h.variant)]
                if hashes:
                    d = hamming_matrix(hex_rows(hashes, others.shape[1]), others)
                    found.setdefault((family, algorithm), []).append(d.ravel())
    tails = {key: np.concatenate(parts).astype(np.int64) for key, parts in found.items()}
    return tails, len(rows["pdq"]) / len(originals)


def variant_estimate(
    tails: dict[tuple[str, str], np.ndarray], rows_per_picture: float, rho: float, confirm: int
) -> str:
    """Markdown: each family's impostor tail, and the rule's expected false actions per upload at
    LIST_SIZE pictures listed by a hotline (one row each) and by us (`rows_per_picture`), every family
    held to the heaviest tail any of them has (a union bound again)."""
    lines = [
        "| query variants | hashes at most | PDQ pairs | PDQ min | PDQ mean | PDQ tail sd | P(PDQ <= 31) "
        "| P(PDQ <= 64) | pHash pairs | pHash min | pHash mean | pHash tail sd | P(pHash <= 8) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fits: dict[tuple[str, str], TailFit] = {}
    for family in FAMILIES:
        cells = [family, str(FAMILY_HASHES[family])]
        for algorithm, bounds in (("pdq", (PDQ_THRESHOLD, confirm)), ("phash", (PHASH_THRESHOLD,))):
            values = tails.get((family, algorithm))
            if values is None or not len(values):
                cells += ["0", "", "", ""] + [""] * len(bounds)
                continue
            fits[(family, algorithm)] = fit = TailFit.of(values, bounds[-1])
            cells += [f"{len(values):,}", str(values.min()), f"{values.mean():.1f}", f"{fit.sd:.2f}"]
            cells += [f"{fit.p_at_most(b):.1e}" for b in bounds]
        lines.append("| " + " | ".join(cells) + " |")
    heaviest = {
        algorithm: max((f for (_, a), f in fits.items() if a == algorithm), key=lambda f: f.p_at_most(bound))
        for algorithm, bound in (("pdq", confirm), ("phash", PHASH_THRESHOLD))
    }
    hashes = sum(FAMILY_HASHES.values())
    out = {}
    for name, rows in (
        ("a hotline's list (1 row per picture)", 1.0),
        (f"a list we build ({rows_per_picture:.1f} rows per picture)", rows_per_picture),
    ):
        pdq_tier = heaviest["pdq"].p_at_most(PDQ_THRESHOLD) * hashes * rows
        # a view's pHash near one of the picture's rows and the same view's PDQ near one of its rows
        joint = bivariate_lower_tail(heaviest["pdq"].z(confirm), heaviest["phash"].z(PHASH_THRESHOLD), rho)
        out[name] = (pdq_tier + joint * hashes * rows * rows) * LIST_SIZE
    lines += [
        "",
        f"Every family held to the heaviest tail among them (PDQ sd {heaviest['pdq'].sd:.2f} around "
        f"{heaviest['pdq'].mean:.1f}, pHash sd {heaviest['phash'].sd:.2f} around {heaviest['phash'].mean:.1f}), "
        f"{hashes} query hashes per algorithm, impostor correlation rho = {rho:.2f}: **expected false actions "
        f"per upload at {LIST_SIZE:,} listed pictures: "
        + "; ".join(f"{name} {value:.1e}" for name, value in out.items())
        + ".**",
    ]
    return "\n".join(lines) + "\n", max(out.values())


def drop_near_duplicates(originals: list[Original]) -> tuple[list[Original], list[str]]:
    """Keep the first of any originals that are the same picture (same bytes, or PDQ <= 31 in some turn)."""
    kept, dropped, seen = [], [], set()
    for o in originals:
        if o.fp.status != "image" or o.fp.sha256 in seen:
            dropped.append(o.name)
            continue
        if kept:
            rows = hex_rows([k.fp.pdq for k in kept], 32)
            if (min_distances(o.fp, "pdq", rows, DIHEDRAL) <= PDQ_THRESHOLD).any():
                dropped.append(o.name)
                continue
        seen.add(o.fp.sha256)
        kept.append(o)
    return kept, dropped


def run(folders: Sequence[str], mods: Sequence[str], workers: int, policy: matcher.Policy, log=print) -> dict:
    """Everything but the output files: originals, copies, per-method summaries and distances."""
    started = time.perf_counter()
    paths = find_photos(folders)
    with Pool(workers) as pool:
        originals = pool.map(_fingerprint_original, paths)
        originals, dropped = drop_near_duplicates(originals)
        tasks = [(i, o.path, mod) for i, o in enumerate(originals) for mod in mods]
        copies = [Copy(i, mod, fp) for i, mod, fp in pool.imap(_fingerprint_copy, tasks, chunksize=len(mods))]
    log(f"fingerprinted {len(originals)} originals and {len(copies)} copies in {time.perf_counter() - started:.0f} s")
    names = [o.name for o in originals]
    ref_rows = {
        "pdq": hex_rows([o.fp.pdq for o in originals], 32),
        "phash": hex_rows([o.fp.phash for o in originals], 8),
    }
    hits, distances = score_single(copies, ref_rows)
    acts, reviews = {}, {}
    for kind in ("ours", "ref"):
        acts[f"rule ({kind} list)"], reviews[f"rule ({kind} list)"] = score_rule(
            copies, reference_store(originals, kind), names, policy
        )
    summary = summarise(copies, {**hits, **acts}, reviews)
    return {
        "originals": originals,
        "copies": copies,
        "dropped": dropped,
        "summary": summary,
        "distances": distances,
        "own": np.array([c.original for c in copies]),
    }


def round2_figures(recall: dict[str, float]) -> dict[str, float]:
    """recall_round2 (every round-2 modification run) and one figure per group, each a mean over its
    modifications; NaN for what was not run."""

    def mean(names) -> float:
        ran = [recall[n] for n in names if n in recall]
        return float(np.mean(ran)) if ran else math.nan

    return {
        "recall_round2": mean(ROUND2),
        **{group: mean(names) for group, names in ROUND2_GROUPS.items()},
        "recall_every_modification": mean(MODIFICATIONS),  # both rounds, each modification weighing the same
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folders",
        nargs="*",
        default=[str(REPO / "tests" / "data" / "photos")],
        help="folders (or files) of benign photos (default: tests/data/photos)",
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "out"), help="output folder (default bench/out/)")
    parser.add_argument("--mods", help="comma-separated modifications (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--confirm-pdq", type=int, default=matcher.DEFAULT_POLICY.phash_confirm_pdq)
    args = parser.parse_args(argv)
    mods = args.mods.split(",") if args.mods else list(MODIFICATIONS)
    unknown = [m for m in mods if m not in MODIFICATIONS]
    if unknown:
        parser.error(f"unknown modifications: {', '.join(unknown)}")
    policy = matcher.Policy(phash_confirm_pdq=args.confirm_pdq)
    result = run(args.folders, mods, args.workers, policy)
    summary, distances, own = result["summary"], result["distances"], result["own"]
    text = markdown(summary, len(result["originals"]), len(result["copies"]), result["dropped"])
    mods_array = np.array([c.mod for c in result["copies"]])
    text += "\n" + distribution_table(distances, own)
    text += "\n" + confirm_sweep(distances, own, mods_array)
    rho = impostor_correlation(distances["PDQ"], distances["pHash"], own)
    text += "\n" + false_match_estimate(distances, own, rho, policy.phash_confirm_pdq, policy.phash_review_pdq)
    tails, rows_per_picture = variant_tails(result["copies"], result["originals"])
    by_variant, variant_per_query = variant_estimate(tails, rows_per_picture, rho, policy.phash_confirm_pdq)
    text += "\n" + by_variant
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.md").write_text(text)
    np.savez_compressed(
        out / "pairs.npz",
        own=own,
        mods=np.array([c.mod for c in result["copies"]]),
        names=np.array([o.name for o in result["originals"]]),
        **distances,
    )  # fmt: skip
    try:
        plot(summary, distances, own, out / "accuracy.png")
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
    rule = "rule (ours list)"
    singles = [m for m in SINGLE_METHODS if summary.false_matches[m] == 0] or list(SINGLE_METHODS)
    best_single = max(summary.overall[m] for m in singles)
    round2 = round2_figures(summary.recall[rule])
    print("\nround 2 (ours list): " + ", ".join(f"{k} {v:.1%}" for k, v in round2.items()))
    print(
        f"recall_all={summary.overall[rule]:.4f} recall_no_crop10={summary.overall_no_crop10[rule]:.4f} "
        f"false_matches={summary.false_matches[rule]} best_single_recall_all={best_single:.4f} "
        + " ".join(f"{k}={v:.4f}" for k, v in round2.items())
        + f" false_actions_per_upload_1_4m={variant_per_query:.1e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
