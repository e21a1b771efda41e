"""Decoding untrusted image bytes into the grey pixels the perceptual hashes need, within limits.

Everything here assumes hostile input: only a fixed set of Pillow decoders is allowed, pixel counts
are checked before decoding, and every failure becomes an `ImageRejected` with a reason that the
caller records. JPEGs are decoded at reduced size in the DCT domain (`Image.draft`), straight to
luma (a colour one to YCbCr, whose Y is that same luma: candidate regions look at colour too): 5-20x
faster than a full RGB decode, and close enough to it for PDQ (docs/accuracy.md).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps

from hashcheck.status import FingerprintStatus

UNSCANNABLE, NOT_IMAGE = FingerprintStatus.UNSCANNABLE, FingerprintStatus.NOT_IMAGE

# Decoders we trust with hostile bytes. Deliberately absent: EPS/PS (runs Ghostscript), PDF, and
# formats with no signature (TGA) that would make any random blob "an image".
SAFE_FORMATS = ["JPEG", "MPO", "PNG", "GIF", "WEBP", "TIFF", "BMP", "DIB", "ICO", "PPM"]

try:  # HEIC/HEIF: a dependency (the layer ships it); without it a phone photo is unscannable, never clean
    from pillow_heif import register_heif_opener

    register_heif_opener()
    SAFE_FORMATS += ["HEIF"]
except ImportError:  # pragma: no cover - depends on the environment
    pass
SAFE_FORMATS += ["AVIF"]  # Pillow >= 11.2 decodes AVIF itself
Image.init()  # load every plugin now, so the allow-list below names only formats Pillow really has
SAFE_FORMATS = [name for name in SAFE_FORMATS if name in Image.OPEN]

# Leading bytes of image formats: a file that starts like an image but fails to decode is
# "unscannable" (corrupt, truncated, unsupported), anything else that fails is "not_image".
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*")
_BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)
# ISO base media brands of pictures (HEIF/HEIC, AVIF); every other ISO brand is a movie's (fingerprinting.video)
IMAGE_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


def looks_like_image(head: bytes) -> bool:
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    if head[:2] == b"BM" and len(head) >= 18:
        return int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
    return head[4:8] == b"ftyp" and head[8:12] in IMAGE_BRANDS


@dataclass(frozen=True)
class Limits:
    max_decode_bytes: int = 100 * 2**20  # larger images are exact-hashed only
    max_pixels: int = 50_000_000  # pixels actually decoded per frame (after JPEG reduction)
    max_declared_pixels: int = 150_000_000  # a baseline JPEG may declare more: it is decoded reduced
    max_frames: int = 5  # frames hashed in an animation: the first plus evenly spaced others
    max_frame_scan: int = 300  # an animation's frames considered (seeking a GIF decodes the ones before)
    max_total_pixels: int = 200_000_000  # decoding budget over all frames of one object
    decode_long_side: int = 1024  # JPEG reduced decoding keeps at least this many pixels on the long side
    # PDQ's downsampling works along each side: its memory grows with the longest side, not the pixel
    # count (a 3.5 KB 150000x24 PNG would cost ~0.5 GB, found by bench/fuzz.py).
    max_side: int = 30_000
    # A truncated or partly corrupt image is decoded as far as its data goes, as viewers show it; it is
    # hashed when at least this share of its rows is present (below, too little is left to hash).
    min_present: float = 0.5


DEFAULT_LIMITS = Limits()


class ImageRejected(Exception):
    """The bytes could not be turned into pixels; `status` is `not_image` or `unscannable`."""

    def __init__(self, status: FingerprintStatus, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Frame:
    index: int
    grey: Image.Image  # mode "L", EXIF orientation applied
    colour: Image.Image | None = None  # a small YCbCr copy, alike (a still picture in colour only)


@dataclass
class Decoded:
    format: str
    width: int  # declared size of the image as stored
    height: int
    frame_count: int
    frames: list[Frame]
    problem: str | None = None  # a later frame failed, or the data ended early; the frames listed still count
    partial: bool = False  # decoded only as far as its data went (truncated or partly corrupt)


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Decoded:
    """Open and decode an image's frames to grey, or raise ImageRejected saying why not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bombs are checked below; palette warnings are noise
        image = _open(data)
        try:
            return _decode_opened(image, limits)
        except ImageRejected:
            raise
        except MemoryError as exc:
            raise ImageRejected(UNSCANNABLE, "image needs more memory than allowed") from exc
        except Exception as exc:  # any decoder failure on hostile input is a recorded outcome, not a crash
            failure = f"image is corrupt or truncated ({type(exc).__name__})"
            return _decode_partially(data, limits, failure)


def _decode_partially(data: bytes, limits: Limits, failure: str) -> Decoded:
    """Decode as far as the data goes, as a browser shows a truncated file (the rows present of a
    baseline JPEG, the scans present of a progressive one), if enough of the image is there."""
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # Pillow's switch is global; the scan is single-threaded
    try:
        decoded = _decode_opened(_open(data), limits)
    except ImageRejected:
        raise
    except Exception as exc:
        raise ImageRejected(UNSCANNABLE, failure) from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    present = _present_share(decoded.frames[0].grey)
    if present < limits.min_present:
        raise ImageRejected(UNSCANNABLE, f"{failure}: only {present:.0%} of the image is present")
    decoded.partial = True
    decoded.problem = f"{failure}: hashed as far as its data goes ({present:.0%} of the rows)"
    return decoded


def _present_share(grey: Image.Image) -> float:
    """The share of rows that are not the decoder's flat fill after the data ended (bottom, or after
    EXIF rotation any side: the longest flat run from an edge counts)."""
    pixels = np.asarray(grey, dtype=np.float32)
    flat = [_flat_run(pixels), _flat_run(pixels[::-1]), _flat_run(pixels.T), _flat_run(pixels.T[::-1])]
    sides = [pixels.shape[0], pixels.shape[0], pixels.shape[1], pixels.shape[1]]
    return min(1 - run / side for run, side in zip(flat, sides, strict=True))


def _flat_run(pixels: np.ndarray) -> int:
    """How many lines from the end are one flat grey (the fill), without looping per line in Python."""
    spread = pixels.max(axis=1) - pixels.min(axis=1)
    varied = np.nonzero(spread[::-1] > 2)[0]
    return int(varied[0]) if varied.size else pixels.shape[0]


def _open(data: bytes) -> Image.Image:
    """Pillow's reading of the header. Bytes that fail here are an image only if they look like one."""
    try:
        return Image.open(io.BytesIO(data), formats=SAFE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(UNSCANNABLE, "declared pixel count is a decompression bomb") from exc
    except Exception as exc:
        if looks_like_image(data[:32]):
            raise ImageRejected(UNSCANNABLE, "image format not recognised or header corrupt") from exc
        raise ImageRejected(NOT_IMAGE, "not an image format hashcheck decodes") from exc


def _decode_opened(image: Image.Image, limits: Limits) -> Decoded:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageRejected(UNSCANNABLE, "image has no pixels")
    declared = width * height
    reducible = image.format in ("JPEG", "MPO")
    if declared > (limits.max_declared_pixels if reducible else limits.max_pixels):
        raise ImageRejected(UNSCANNABLE, f"image declares {width}x{height} pixels, over the limit")
    if image.format == "JPEG" and image.info.get("progressive") and declared > limits.max_pixels:
        # libjpeg buffers a progressive file's coefficients at full size, reduced decoding or not.
        raise ImageRejected(
            FingerprintStatus.UNSCANNABLE, f"progressive JPEG declares {width}x{height} pixels, over the limit"
        )
    frame_count = getattr(image, "n_frames", 1) if getattr(image, "is_animated", False) else 1
    if frame_count == 1:
        grey, colour = _pixels(image, limits, colour=True)
        return Decoded(image.format or "", width, height, 1, [Frame(0, grey, colour)])
    runs: list[_Run] = []
    problem = None
    try:
        _scan_frames(image, frame_count, limits, runs)
    except Exception as exc:
        if not runs:
            raise
        # A broken later frame must not hide the frames that decoded (appending junk would otherwise
        # turn a listed image into "unscannable"): keep them and say what was lost.
        problem = f"frame unreadable ({type(exc).__name__})"
    frames = [Frame(run.index, run.grey) for run in _choose(runs, limits.max_frames)]
    return Decoded(image.format or "", width, height, frame_count, frames, problem)


# Animations: frames are chosen by how long they are shown, not by their index. A listed picture shown
# for a minute at frame 1 of a 300-frame GIF must be hashed whatever the other frames do.
DEFAULT_FRAME_MS = 100.0  # what a browser shows a frame with no (or a zero) duration for
_SAME_PICTURE = 2.0  # mean grey difference of 16x16 thumbnails under which consecutive frames are one picture
_NOTICEABLE = 2.0  # a picture shown this many times longer than the median frame is always hashed
_KEPT_SIDE = 512  # frames are kept for hashing at most this long (PDQ and pHash look at 64 and 32 pixels)


@dataclass
class _Run:
    """Consecutive frames that show one picture: where it starts, for how long it is shown."""

    index: int
    shown_ms: float
    thumb: np.ndarray
    grey: Image.Image


def _scan_frames(image: Image.Image, frame_count: int, limits: Limits, runs: list[_Run]) -> None:
    """Every frame of the first `max_frame_scan`, within the pixel budget, merged into runs."""
    budget = limits.max_total_pixels
    for index in range(min(frame_count, limits.max_frame_scan)):
        # Seeking decodes every frame (GIF disposal), so every frame counts against the budget.
        budget -= image.width * image.height
        if index and budget < 0:
            return
        if index:
            image.seek(index)
        shown = float(image.info.get("duration") or DEFAULT_FRAME_MS)
        grey = _grey(image, limits)
        thumb = np.asarray(grey.resize((16, 16), Image.Resampling.BOX), dtype=np.float32)
        if runs and float(np.abs(runs[-1].thumb - thumb).mean()) < _SAME_PICTURE:
            runs[-1].shown_ms += shown
            continue
        if max(grey.size) > _KEPT_SIDE:
            grey.thumbnail((_KEPT_SIDE, _KEPT_SIDE), Image.Resampling.BOX)
        runs.append(_Run(index, shown, thumb, grey))


def _choose(runs: list[_Run], max_frames: int) -> list[_Run]:
    """The first picture always; then every picture shown noticeably longer than the others, longest
    first; then pictures evenly spaced over the rest, the last one included, up to `max_frames`."""
    first, rest = runs[0], runs[1:]
    slots = max(max_frames, 1) - 1
    if not rest or slots == 0:
        return [first]
    typical = float(np.median([run.shown_ms for run in runs]))
    long_shown = sorted((r for r in rest if r.shown_ms >= _NOTICEABLE * typical), key=lambda r: -r.shown_ms)
    picked = {run.index: run for run in long_shown[:slots]}
    spread = slots - len(picked)
    for i in range(spread):
        run = rest[round((i + 1) * len(rest) / spread) - 1]
        picked.setdefault(run.index, run)
    return [first, *sorted(picked.values(), key=lambda run: run.index)]


def _grey(image: Image.Image, limits: Limits) -> Image.Image:
    """One frame as 8-bit luma, EXIF-oriented. Alpha is dropped, as the reference hashers do."""
    return _pixels(image, limits, colour=False)[0]


def _pixels(image: Image.Image, limits: Limits, colour: bool) -> tuple[Image.Image, Image.Image | None]:
    """`_grey`, and with `colour` a small YCbCr copy of the frame (None for a grey one), oriented alike.
    A colour JPEG is then decoded to YCbCr, whose Y is exactly what decoding to luma gives."""
    if image.format in ("JPEG", "MPO") and image.tell() == 0:
        ycbcr = colour and _stored_in_ycbcr(image)  # libjpeg turns no RGB-coded JPEG into YCbCr
        image.draft("YCbCr" if ycbcr else "L", _draft_size(image.size, limits.decode_long_side))
    if image.size[0] * image.size[1] > limits.max_pixels:
        raise ImageRejected(UNSCANNABLE, "image is too large to decode even at reduced size")
    if max(image.size) > limits.max_side:
        raise ImageRejected(UNSCANNABLE, f"image side of {max(image.size)} pixels is over the limit")
    image.load()
    small = small_colour(image) if colour else None
    if image.mode == "YCbCr" and image.format in ("JPEG", "MPO"):
        grey = image.getchannel(0)
        grey.info = dict(image.info)
    else:
        grey = _to_luma(image)
    if image.tell() != 0:
        return grey, small
    if small is not None:
        small.info = dict(grey.info)  # the same EXIF orientation
        small = ImageOps.exif_transpose(small)
    return ImageOps.exif_transpose(grey), small


def _stored_in_ycbcr(jpeg: Image.Image) -> bool:
    """Whether a JPEG's three components are YCbCr, by libjpeg's own rule (jdapimin.c): a JFIF marker
    says so, an Adobe marker's transform 0 says RGB, and without either, components named R, G, B are
    RGB. An RGB-coded one (Pillow's `keep_rgb`) cannot be decoded to YCbCr, only to luma as before."""
    components = getattr(jpeg, "layer", [])
    if len(components) != 3:
        return False
    if "jfif" in jpeg.info:
        return True
    if "adobe_transform" in jpeg.info:
        return jpeg.info["adobe_transform"] != 0
    return [component[0] for component in components] != [ord("R"), ord("G"), ord("B")]


def reduction(size: tuple[int, int], side: int) -> int:
    """The whole factor that box-reduces `size` to at most `side` pixels on its long side."""
    return max(1, -(-max(size) // side))


def reduced(image: Image.Image, side: int) -> Image.Image:
    """`image` box-reduced by a whole factor (cheap) to at most `side` pixels on its long side."""
    factor = reduction(image.size, side)
    return image.reduce(factor) if factor > 1 else image


_COLOUR_MODES = {"RGB", "RGBA", "RGBX", "YCbCr", "CMYK", "P", "PA"}


def small_colour(image: Image.Image) -> Image.Image | None:
    """A YCbCr copy of at most REGION_SIDE pixels a side (box-reduced), for edges in colour; None for a
    picture without colour."""
    if image.mode not in _COLOUR_MODES:
        return None
    source = image.convert("RGB") if image.mode in ("P", "PA", "RGBX") else image
    small = reduced(source, REGION_SIDE)
    return small.copy() if small.mode == "YCbCr" else small.convert("RGB").convert("YCbCr")


# Uniform borders (padding, letterboxing, a frame) change every global hash completely, so the
# fingerprint also hashes the picture inside them. Tolerances allow for JPEG noise along a flat border.
_BORDER_TOLERANCE = 12  # grey levels a border pixel may differ from the border's median
_BORDER_SHARE = 0.98  # share of a line's pixels within tolerance for the line to count as border
_BORDER_MIN = 0.02  # a border thinner than this share of its side moves the hashes too little to matter
_BORDER_MAX = 0.45  # a side is never trimmed by more than this share (something must remain)
_BORDER_CHUNK = 16  # lines checked at a time


def uniform_border(grey: Image.Image | np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (left, top, right, bottom) inside uniform borders, or None when there is none worth trimming.

    Each side is trimmed on its own, line by line, while the line stays within a tolerance of that
    side's outermost line. A photo whose edges are not flat costs one check of its four outer lines.
    """
    pixels = np.asarray(grey)
    if pixels.ndim != 2 or min(pixels.shape) < 16:
        return None
    rows, cols = pixels.shape
    top = _border_depth(pixels, rows)
    bottom = _border_depth(pixels[::-1], rows)
    left = _border_depth(pixels.T, cols)
    right = _border_depth(pixels.T[::-1], cols)
    if max(top / rows, bottom / rows, left / cols, right / cols) < _BORDER_MIN:
        return None
    return left, top, cols - right, rows - bottom


def _border_depth(lines: np.ndarray, side: int) -> int:
    """How many leading lines (rows of `lines`) are uniform with the first one. Read in chunks, so a
    thin border costs a few lines, not a pass over the image."""
    value = np.median(lines[0])
    limit = int(side * _BORDER_MAX)
    depth = 0
    while depth < limit:
        flat = _uniform(lines[depth : min(depth + _BORDER_CHUNK, limit)], value)
        if not flat.all():
            return depth + int(flat.argmin())
        depth += len(flat)
    return limit


def _uniform(lines: np.ndarray, value: float) -> np.ndarray:
    close = np.abs(lines[:, ::2].astype(np.int16) - int(round(value))) <= _BORDER_TOLERANCE
    return close.mean(axis=1) >= _BORDER_SHARE


def _draft_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """The size to ask `draft` for: the largest JPEG reduction (1/2, 1/4, 1/8) keeping `long_side`."""
    scale = 1
    while scale < 8 and max(size) // (scale * 2) >= long_side:
        scale *= 2
    return size[0] // scale, size[1] // scale


_CONVERTS_TO_L = {"RGB", "RGBA", "RGBX", "LA", "P", "1"}


def _to_luma(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image.copy()  # the decoder reuses its image for the next frame
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and 32-bit grey: scale to 8 bits (Pillow's convert would clip everything above 255).
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" or pixels.max(initial=0) > 255 else 255.0
        grey = Image.fromarray(np.clip(pixels * (255.0 / top), 0, 255).astype(np.uint8), "L")
        grey.info = dict(image.info)  # keeps the EXIF orientation
        return grey
    if image.mode in _CONVERTS_TO_L:
        return image.convert("L")
    return image.convert("RGB").convert("L")  # CMYK, YCbCr, LAB, PA...: through RGB, as the references do


# Pictures inside other pictures. A meme caption band, a screenshot's bars and margins, a picture shown
# in a corner of another: each puts the picture inside straight edges that run across much of the frame,
# while a photo's own edges rarely run straight and sharp across it. Three kinds of candidates, found
# on a small copy (the edges run across the frame: detail does not matter):
# - insets: a rectangle with a sharp edge on all four sides (a picture on a screenshot, a picture in a
#   picture): rows that change over much of the width, then, between each two, the columns that change
#   over most of that band, the rows then moved in to where both sides run;
# - captions: bands of one colour with text on them, the uniform border's rule with room for the text;
# - bands: between the sharpest whole-width lines in the outer parts of the frame (a phone's bars).
# An ordinary photo rarely has any (docs/accuracy.md): it is hashed as it is, as before.
REGION_SIDE = 256  # the long side looked at (also of the colour copy)
_EDGE_STEP = 24  # grey levels between neighbours for a sharp change
_FAINT_STEP = 12  # for an inset's sides, found between two rows that already bound it
_BAND_SHARE = 0.7  # share of the frame's width (height) a band's line must change over
_BAND_REACH = 0.4  # a band's line lies in the outer 40% of the frame
_ROW_SHARE = 0.4  # share of the width a row must change over to bound an inset
_COLUMN_SHARE = 0.6  # share of a band's height a column must change over to bound an inset
_MIN_SIDE = 0.15  # a candidate keeps at least this share of each side of the frame (a photo on a phone's chat: 19%)
_MIN_AREA = 0.1
_MAX_AREA = 0.9  # more, and it is the frame itself
_MAX_LINES = 8  # the sharpest lines kept per direction
_CAPTION_SHARE = 0.45  # a caption band's line: this share of it within the border tolerance (text aside)
MAX_REGIONS = 3
# Cb and Cr span about half of grey's range for the same colours: their steps count double. A picture
# of green leaves on a violet background of the same grey has its edges only there.
_CHROMA_WEIGHT = 2

Box = tuple[int, int, int, int]


def picture_regions(
    grey: Image.Image, colour: Image.Image | None = None, small_grey: Image.Image | None = None
) -> list[Box]:
    """Boxes (left, top, right, bottom) that likely hold a picture inside the frame, in `grey`'s pixels:
    the picture under a caption first, then insets, then bands; at most MAX_REGIONS, none nearly the
    same as another.
    `colour`, a YCbCr copy of the frame (any size), lets an edge show in colour where the greys agree;
    `small_grey`, `reduced(grey, REGION_SIDE)` when the caller has it already."""
    factor = reduction(grey.size, REGION_SIDE)
    small = np.asarray(reduced(grey, REGION_SIDE) if small_grey is None else small_grey, dtype=np.int16)
    if min(small.shape) < 16:
        return []
    chroma = None
    if colour is not None:
        if colour.size != small.shape[::-1]:
            colour = colour.resize(small.shape[::-1], Image.Resampling.BOX)
        chroma = np.asarray(colour, dtype=np.int16)[..., 1:]
    across = _steps(small, chroma, axis=0) > _EDGE_STEP  # (rows - 1, cols): row i changes into row i + 1
    sideways = _steps(small, chroma, axis=1)  # (rows, cols - 1)
    along = sideways > _EDGE_STEP
    faint = sideways > _FAINT_STEP  # an inset's side against a background much like it
    row_strength, column_strength = across.mean(axis=1), along.mean(axis=0)
    candidates = [
        _captioned(small, row_strength, column_strength),
        *_insets(across, faint),
        _band(row_strength, small.shape, vertical=False),
        _band(column_strength, small.shape, vertical=True),
    ]
    boxes: list[Box] = []
    for box in candidates:
        if box is not None and _fits(box, small.shape) and all(_overlap(box, kept) < 0.8 for kept in boxes):
            boxes.append(box)
    if not boxes:
        return []
    pixels = np.asarray(grey, dtype=np.int16)
    scaled = [(left * factor, top * factor, right * factor, bottom * factor) for left, top, right, bottom in boxes]
    return [_refined(pixels, box, factor) for box in scaled[:MAX_REGIONS]]


# A box found on the small copy is off by up to its reduction factor on each side, and a thin frame
# around an inset (a white line, a shadow) would be hashed with it: 3 pixels of white on a 460-pixel
# picture moved its pHash by 8-12 bits. So each side is moved, on the full pixels, to the innermost sharp
# line near it, then past a thin run of uniform lines inside that if a sharp line ends it (a frame).
_REFINE_SHARP = 0.5  # a line this sharp, relative to the sharpest near the side, can be the picture's edge
_FRAME_MAX = 0.02  # at most this share of a side is peeled as a frame


def _refined(pixels: np.ndarray, box: Box, factor: int) -> Box:
    left, top, right, bottom = box
    height, width = pixels.shape
    reach = factor + 2
    top = _side(pixels, top, left, right, reach, inward=1)
    bottom = _side(pixels, min(bottom, height), left, right, reach, inward=-1)
    left = _side(pixels.T, left, top, bottom, reach, inward=1)
    right = _side(pixels.T, min(right, width), top, bottom, reach, inward=-1)
    return left, top, right, bottom


def _side(lines: np.ndarray, at: int, start: int, end: int, reach: int, inward: int) -> int:
    """Where the picture starts (inward=1: its first line) or ends (inward=-1: one past its last) near
    line `at`, judged over the middle of the side (`start`..`end`, corners left out)."""
    margin = (end - start) // 10
    span = slice(start + margin, max(start + margin + 1, end - margin))
    low, high = max(1, at - reach), min(len(lines) - 1, at + reach)
    if high <= low or at <= reach or at >= len(lines) - reach:  # the frame's own side stays
        return at
    window = lines[low - 1 : high + 1, span]
    steps = np.abs(np.diff(window, axis=0)).mean(axis=1)  # steps[i]: between lines low-1+i and low+i
    if steps.max() < _FAINT_STEP:  # an edge in colour only: where the small copy found it
        return at
    sharp = np.flatnonzero(steps >= _REFINE_SHARP * steps.max())
    edge = low + int(sharp[-1] if inward > 0 else sharp[0])  # innermost: the first line past the edge
    first = edge if inward > 0 else edge - 1  # the picture's outermost line on this side
    return edge + inward * _frame_depth(lines[:, span], first, inward, max(2, int((end - start) * _FRAME_MAX)))


def _frame_depth(lines: np.ndarray, first: int, inward: int, limit: int) -> int:
    """How many uniform lines from `first` inward form a frame: a run of them ending in a sharp line (a
    sky's or a fog's uniform lines fade into the picture instead)."""
    depth = 0
    while depth < limit and 0 <= first + inward * depth < len(lines) and _thin_uniform(lines[first + inward * depth]):
        depth += 1
    after = first + inward * depth
    if not depth or not 0 <= after < len(lines):
        return 0
    return depth if np.abs(lines[after] - lines[after - inward]).mean() >= _FAINT_STEP else 0


def _steps(small: np.ndarray, chroma: np.ndarray | None, axis: int) -> np.ndarray:
    """How much each pixel differs from the next along `axis`: in grey, or in colour (weighted to grey's
    scale) where that is more."""
    steps = np.abs(np.diff(small, axis=axis))
    if chroma is not None:
        cb, cr = (np.abs(np.diff(chroma[..., i], axis=axis)) for i in (0, 1))
        steps = np.maximum(steps, np.maximum(cb, cr) * _CHROMA_WEIGHT)
    return steps


def _thin_uniform(line: np.ndarray) -> bool:
    return bool((np.abs(line - np.median(line)) <= _BORDER_TOLERANCE).mean() >= _BORDER_SHARE)


def _captioned(small: np.ndarray, row_strength: np.ndarray, column_strength: np.ndarray) -> Box | None:
    """Inside bands of one colour with text on them (a meme's caption, a bar of an app): the uniform
    border's rule with room for the text, each band ending in a sharp line (a sky fading into the
    picture is not a band)."""
    rows, cols = small.shape
    top = _mostly_uniform(small, rows, row_strength)
    bottom = _mostly_uniform(small[::-1], rows, row_strength[::-1])
    left = _mostly_uniform(small.T, cols, column_strength)
    right = _mostly_uniform(small.T[::-1], cols, column_strength[::-1])
    if max(top / rows, bottom / rows, left / cols, right / cols) < _BORDER_MIN:
        return None
    return left, top, cols - right, rows - bottom


def _mostly_uniform(lines: np.ndarray, side: int, strength: np.ndarray) -> int:
    """How many leading lines keep _CAPTION_SHARE of their pixels near the first line's median, when a
    sharp line (half the width changing) ends them; else 0."""
    value = np.median(lines[0])
    depth, limit = 0, int(side * _BORDER_MAX)
    while depth < limit and (np.abs(lines[depth] - value) <= _BORDER_TOLERANCE).mean() >= _CAPTION_SHARE:
        depth += 1
    sharp = depth and strength[max(0, depth - 3) : depth + 2].max() >= 0.5
    return depth if sharp else 0


def _band(strength: np.ndarray, shape: tuple[int, int], vertical: bool) -> Box | None:
    """Between the sharpest whole-width line in the first and in the last _BAND_REACH of the frame (or
    the frame's side where there is none); None when neither side has one."""
    n = len(strength) + 1
    reach = int(n * _BAND_REACH)
    first = _sharpest(strength[:reach], _BAND_SHARE)
    last = _sharpest(strength[n - 1 - reach :], _BAND_SHARE)
    if first is None and last is None:
        return None
    start = 0 if first is None else first + 1
    end = n if last is None else n - reach + last
    rows, cols = shape
    return (start, 0, end, rows) if vertical else (0, start, cols, end)


def _insets(across: np.ndarray, along: np.ndarray) -> list[Box]:
    """Rectangles with a sharp edge on every side, the most sharply edged first."""
    rows, cols = along.shape[0], across.shape[1]
    below = np.vstack([np.zeros((1, cols - 1), dtype=np.int32), np.cumsum(along, axis=0, dtype=np.int32)])
    lines = _strongest(across.mean(axis=1), _ROW_SHARE)
    found: list[tuple[float, Box]] = []
    for i, (top, top_strength) in enumerate(lines):
        for bottom, bottom_strength in lines[i + 1 :]:
            if bottom - top < _MIN_SIDE * rows:
                continue
            band = (below[bottom + 1] - below[top + 1]) / (bottom - top)  # per column, over the band's rows
            columns = _strongest(band, _COLUMN_SHARE)
            for j, (left, left_strength) in enumerate(columns):
                for right, right_strength in columns[j + 1 :]:
                    if right - left >= _MIN_SIDE * cols:
                        edged = (top_strength + bottom_strength + left_strength + right_strength) / 4
                        found.append((edged, _tightened(along, left, top, right, bottom)))
    return [box for _, box in sorted(found, key=lambda f: -f[0])]


def _tightened(along: np.ndarray, left: int, top: int, right: int, bottom: int) -> Box:
    """The box between these lines, its top and bottom moved in to where both side edges run: a row line
    above the inset (an app's bar) can bound the band its sides were found in."""
    both = np.flatnonzero(along[top + 1 : bottom + 1, left] & along[top + 1 : bottom + 1, right])
    if len(both) >= 2:
        top, bottom = top + int(both[0]), top + int(both[-1]) + 1
    return left + 1, top + 1, right + 1, bottom + 1


def _fits(box: Box, shape: tuple[int, int]) -> bool:
    rows, cols = shape
    width, height = box[2] - box[0], box[3] - box[1]
    area = width * height / (rows * cols)
    return width >= _MIN_SIDE * cols and height >= _MIN_SIDE * rows and _MIN_AREA <= area <= _MAX_AREA


def _sharpest(strength: np.ndarray, share: float) -> int | None:
    """The position of the sharpest line at or over `share`, or None."""
    if not len(strength) or strength.max() < share:
        return None
    return int(strength.argmax())


def _strongest(strength: np.ndarray, share: float) -> list[tuple[int, float]]:
    """(position, strength) of the local maxima at or over `share`, the strongest _MAX_LINES, in order."""
    peaks = [(i, float(s)) for i, s in enumerate(strength) if s >= share and s >= strength[max(0, i - 2) : i + 3].max()]
    return sorted(sorted(peaks, key=lambda p: -p[1])[:_MAX_LINES])


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0
