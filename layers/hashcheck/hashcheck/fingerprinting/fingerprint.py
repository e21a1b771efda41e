"""One read of an object in, its fingerprint out: exact hashes always, perceptual hashes for images.

The exact hashes (MD5, SHA-1, SHA-256) are what hotlines' lists mostly carry and they never depend
on decoding, so they are computed for every object, including ones that are not images or that
fail to decode. The perceptual hashes (PDQ with its quality, pHash) come from one decode of the
image, and for near matching we also keep their 8 rotated/mirrored variants and further frames of an
animation (`near`). pHash's variants come from its DCT (microseconds); PDQ's from the pixels' mirrors
and their transposes, because PDQ derived from one DCT drifts by up to 100 bits (see `TRANSPOSED`). An
image with uniform borders (padding, a frame, letterboxing) is also hashed inside them (variants "trimmed",
"trimmed:rotate90", ...): a border changes every global hash completely, and only the images that have
one pay for a second set of hashes (docs/accuracy.md). Small tilts (a photo turned by a few degrees on
its own canvas) are undone by trying a few turns back (variants "tilt-2", "tilt+4", ...; `_TILTS`).
A picture inside another (a caption band, a screenshot, an inset) is hashed by the candidate regions
`imaging.picture_regions` finds ("region1".."region3"), and every picture by its centre ("centre84",
"centre72": crops and stickers over corners, against lists we build, which list these too, and with
`listing_fingerprint` two more rungs, "centre92" and "centre76").
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO, Protocol, cast

import numpy as np
from PIL import Image

from hashcheck.algorithms import EXACT
from hashcheck.fingerprinting import pdq, phash
from hashcheck.fingerprinting.containers import (
    CORRUPT,
    DEFAULT_CONTAINER_LIMITS,
    Budget,
    ContainerLimits,
    Encrypted,
    Refused,
    entries,
    kind,
)
from hashcheck.fingerprinting.imaging import (
    DEFAULT_LIMITS,
    REGION_SIDE,
    ImageRejected,
    Limits,
    decode,
    looks_like_image,
    picture_regions,
    reduced,
    small_colour,
    uniform_border,
)
from hashcheck.fingerprinting.video import (
    DEFAULT_VIDEO_LIMITS,
    NoPictures,
    Scene,
    Video,
    VideoLimits,
    VideoRejected,
    looks_like_video,
)
from hashcheck.fingerprinting.vpdq import Feature, to_signal
from hashcheck.status import FingerprintStatus

CHUNK = 1 << 20


@dataclass(frozen=True)
class NearHash:
    """A perceptual hash to search for: of which frame, under which rotation/mirror, trimmed or not."""

    algorithm: str
    hash: str
    quality: int | None = None  # PDQ's own quality (0-100); None for pHash
    variant: str = "original"
    frame: int = 0


@dataclass
class Member:
    path: str
    fingerprint: Fingerprint


@dataclass
class Fingerprint:
    size: int
    md5: str
    sha1: str
    sha256: str
    status: FingerprintStatus
    error: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    phash: str | None = None
    partial: bool = False  # decoded only as far as its data went (truncated or partly corrupt)
    # a video's vPDQ: one feature per sampled frame (`hashcheck fingerprint --json`: the signal `vpdq`)
    video: list[Feature] = field(default_factory=list, repr=False)
    near: list[NearHash] = field(default_factory=list, repr=False)
    # What a container holds, every level flattened: each entry's own fingerprint under its path
    # ("inner.zip!deep/c.jpg"). The object's verdict is its worst member's.
    members: list[Member] = field(default_factory=list, repr=False)
    # How many tags the object version carried when it was read (S3's TagCount); None when it was not
    # read from S3. Not part of what was fingerprinted: it spares a clean verdict a tag lookup.
    tags: int | None = None

    def exact(self) -> dict[str, str]:
        """The exact hashes it has (a video's scene, pixels and no file, has none)."""
        return {name: getattr(self, name) for name in EXACT if getattr(self, name)}

    def as_dict(self) -> dict:
        """What `hashcheck fingerprint --json` prints (README, "The command line"); `error` only if there is one."""
        out = {
            "status": self.status,
            "size": self.size,
            **{name: getattr(self, name) for name in EXACT},
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            "phash": self.phash,
        }
        if self.status in (FingerprintStatus.IMAGE, FingerprintStatus.VIDEO):
            out.update(format=self.format, width=self.width, height=self.height, frames=self.frames)
        if self.status == FingerprintStatus.VIDEO:
            out["vpdq"] = to_signal(self.video)
        if self.partial:
            out["partial"] = True
        if self.error:
            out["error"] = self.error
        return out


def problem(fp: Fingerprint, status: FingerprintStatus) -> str | None:
    """Why the object, or the first member that has `status`, has it (a member's reason names it)."""
    if fp.status == status and fp.error:
        return fp.error
    for member in fp.members:
        if member.fingerprint.status == status or (
            status == FingerprintStatus.UNSCANNABLE and member.fingerprint.partial
        ):
            return f"{member.path}: {member.fingerprint.error}"
    return fp.error


def to_message(fp: Fingerprint) -> dict:
    """All of `fp`, near hashes included, as JSON-ready data (what FingerprintFunction returns)."""
    return asdict(fp)


def from_message(message: dict) -> Fingerprint:
    fields = dict(message)
    near = [NearHash(**n) for n in fields.pop("near", [])]
    members = [Member(m["path"], from_message(m["fingerprint"])) for m in fields.pop("members", [])]
    video = [Feature(**{**f, "variants": tuple(f["variants"])}) for f in fields.pop("video", [])]
    status = FingerprintStatus(fields.pop("status"))
    return Fingerprint(**fields, status=status, near=near, members=members, video=video)


class Readable(Protocol):
    """A stream fingerprint reads from: a file, or an S3 body (botocore's StreamingBody)."""

    def read(self, amt: int | None = ..., /) -> bytes: ...


Source = bytes | bytearray | memoryview | BinaryIO | Readable


def fingerprint(
    source: Source,
    limits: Limits = DEFAULT_LIMITS,
    containers: ContainerLimits = DEFAULT_CONTAINER_LIMITS,
    videos: VideoLimits = DEFAULT_VIDEO_LIMITS,
) -> Fingerprint:
    """Fingerprint bytes or a readable stream (an S3 body), reading it exactly once; a container that
    is not itself an image (an archive, a compressed file) is opened and every entry fingerprinted; a
    video's scenes become its members."""
    deadline = time.monotonic() + videos.max_seconds
    result, data = _fingerprint_one(source, limits, videos, deadline)
    if data is not None and result.status != FingerprintStatus.IMAGE and kind(data):
        _open_container(result, data, limits, containers, videos)
    return result


def _open_container(
    result: Fingerprint, data: bytes, limits: Limits, containers: ContainerLimits, videos: VideoLimits
) -> None:
    """Every entry's fingerprint into `result.members`; over a limit or corrupt anywhere, the object is
    unscannable (never clean); encrypted, the object (or that nested member) is opaque."""
    try:
        _walk(result, data, "", 1, Budget(containers), limits, videos)
    except Encrypted as exc:
        result.status, result.error = FingerprintStatus.OPAQUE, str(exc)
    except Refused as exc:
        result.status, result.error = FingerprintStatus.UNSCANNABLE, f"not opened: {exc}"


def _walk(
    result: Fingerprint, data: bytes, prefix: str, depth: int, budget: Budget, limits: Limits, videos: VideoLimits
) -> None:
    if depth > budget.limits.max_depth:
        raise Refused(f"containers nested deeper than {budget.limits.max_depth}")
    for entry in entries(data, budget):
        path = prefix + entry.path
        try:
            member, inner = _fingerprint_one(entry.stream, limits, videos, budget.deadline)
        except CORRUPT as exc:  # a tar entry's stream, read through a damaged decompressor
            raise Refused(f"{path} is corrupt ({type(exc).__name__})") from exc
        if member.near:
            budget.picture()
        scenes, member.members = member.members, []  # a video's scenes, one level down: "clip.mp4!t=3.0-5.0s"
        result.members.append(Member(path, member))
        for scene in scenes:
            budget.picture()
            result.members.append(Member(f"{path}!{scene.path}", scene.fingerprint))
        if inner is not None and member.status != FingerprintStatus.IMAGE and kind(inner):
            try:
                _walk(result, inner, path + "!", depth + 1, budget, limits, videos)
            except Encrypted as exc:
                member.status, member.error = FingerprintStatus.OPAQUE, str(exc)


HEAD = 512  # leading bytes kept to tell an image or a container by (a tar's mark is at 257)


def _fingerprint_one(
    source: Source, limits: Limits, videos: VideoLimits, deadline: float
) -> tuple[Fingerprint, bytes | None]:
    """The object's own fingerprint, and its bytes when they fit in memory (to decode or open); a video's
    bytes go to a temporary file instead, and its scenes into the fingerprint's members."""
    in_memory = isinstance(source, bytes | bytearray | memoryview)
    digests = {name: hashlib.new(name) for name in EXACT}  # hashlib's names are ours
    size, head = 0, b""
    with _Kept(limits, videos, in_memory) as kept:
        for chunk in _chunks(source):
            for digest in digests.values():
                digest.update(chunk)
            if len(head) < HEAD:  # a stream may hand out a few bytes at a time
                head += bytes(chunk[: HEAD - len(head)])
            size += len(chunk)
            kept.add(chunk, head)
        exact: dict[str, Any] = {name: digest.hexdigest() for name, digest in digests.items()}
        result = Fingerprint(size, **exact, status=FingerprintStatus.NOT_IMAGE)
        if size == 0:
            result.error = "empty object"
            return result, None
        if not kept.fits:
            # an image, a container or a video too large to look inside is not clean: what it hides is unknown
            unknown = looks_like_image(head[:32]) or kind(head) is not None or looks_like_video(head)
            result.status = FingerprintStatus.UNSCANNABLE if unknown else FingerprintStatus.NOT_IMAGE
            result.error = f"larger than the {kept.limit} bytes decoded or opened at most"
            return result, None
        whole = source if isinstance(source, bytes | bytearray | memoryview) else kept.memory
        if looks_like_video(head):
            _add_video(result, kept.file or io.BytesIO(memoryview(whole).cast("B")), videos, deadline)
            return result, None
        data = bytes(memoryview(whole).cast("B"))
    _add_perceptual(result, data, limits)
    return result, data


class _Kept:
    """An object's bytes kept while they are hashed, to be looked at after: in memory up to the decode
    limit, or for a video (known by its first bytes) in a temporary file up to the video limit, so that
    a video of gigabytes never sits in memory. Bytes handed over whole (`in_memory`) are not copied."""

    def __init__(self, limits: Limits, videos: VideoLimits, in_memory: bool):
        self.memory, self.file = bytearray(), cast(BinaryIO | None, None)
        self.in_memory, self.decided = in_memory, False
        self.limit, self.video_limit = limits.max_decode_bytes, videos.max_bytes
        self.size, self.fits = 0, True

    def add(self, chunk: bytes | memoryview, head: bytes) -> None:
        self.size += len(chunk)
        if not self.decided and len(head) >= HEAD:
            self.decided = True
            if looks_like_video(head):  # a video's own limit; a stream's bytes go to a file
                self.limit = self.video_limit
                if not self.in_memory:
                    self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed on exit
                    self.file.write(self.memory)
                    self.memory = bytearray()
        self.fits = self.fits and self.size <= self.limit
        if not self.fits or self.in_memory:
            self.memory = bytearray()  # too large to keep (only hashed), or the caller's bytes already
        elif self.file is not None:
            self.file.write(chunk)
        else:
            self.memory += chunk

    def __enter__(self) -> _Kept:
        return self

    def __exit__(self, *_) -> None:
        if self.file is not None:
            self.file.close()


def _chunks(source) -> Iterator[bytes | memoryview]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")  # count bytes, whatever the item size
        for start in range(0, len(view), CHUNK):
            yield view[start : start + CHUNK]
        return
    while chunk := source.read(CHUNK):
        yield chunk


def _add_video(result: Fingerprint, file: BinaryIO, limits: VideoLimits, deadline: float) -> None:
    """The video's vPDQ, and its scenes as members, each hashed as a picture (all variants, borders
    trimmed) so that a listed photo shown in the video is found with its time range. Unreadable, or read
    only in part, the video is unscannable: its exact hashes and the scenes read so far still count."""
    file.seek(0)
    video = Video(file, limits, deadline)
    try:
        scenes = [Member(scene.member, _scene_fingerprint(scene)) for scene in video.scenes()]
    except NoPictures as exc:  # sound only: nothing in it can be a listed picture
        result.error = str(exc)
        return
    except VideoRejected as exc:
        result.status, result.error = FingerprintStatus.UNSCANNABLE, str(exc)
        return
    result.status, result.format, result.width, result.height = (
        FingerprintStatus.VIDEO,
        video.format,
        video.width,
        video.height,
    )
    result.frames, result.video, result.members = len(video.features), video.features, scenes
    if video.problem:
        result.partial, result.error = True, video.problem


def _scene_fingerprint(scene: Scene) -> Fingerprint:
    """A scene's clearest frame fingerprinted as a picture; no exact hashes (its pixels are no file)."""
    rgb = Image.fromarray(scene.frame)
    grey = rgb.convert("L")
    fp = Fingerprint(0, "", "", "", FingerprintStatus.IMAGE)
    _fill_image(fp, "frame", grey.width, grey.height, 1, _frame_hashes(grey, 0, small_colour(rgb)), partial=False)
    return fp


def _add_perceptual(result: Fingerprint, data: bytes, limits: Limits) -> None:
    try:
        decoded = decode(data, limits)
        near = [h for frame in decoded.frames for h in _frame_hashes(frame.grey, frame.index, frame.colour)]
    except ImageRejected as rejected:
        result.status, result.error = rejected.status, rejected.reason
        return
    except Exception as exc:  # a hashing failure must be a recorded outcome, never a crash or "clean"
        result.status, result.error = FingerprintStatus.UNSCANNABLE, f"hashing failed ({type(exc).__name__})"
        return
    _fill_image(result, decoded.format, decoded.width, decoded.height, decoded.frame_count, near, decoded.partial)
    result.error = decoded.problem


def originals(near: Iterable[NearHash]) -> dict[str, NearHash]:
    """Each algorithm's hash of the picture itself: its variant "original" of frame 0."""
    out: dict[str, NearHash] = {}
    for h in near:
        if h.frame == 0 and h.variant == "original":
            out.setdefault(h.algorithm, h)
    return out


def _fill_image(
    result: Fingerprint, fmt: str | None, width: int, height: int, frames: int, near: list[NearHash], partial: bool
) -> None:
    first = originals(near)
    result.status = FingerprintStatus.IMAGE
    result.format, result.width, result.height, result.frames = fmt, width, height, frames
    result.pdq, result.pdq_quality = first["pdq"].hash, first["pdq"].quality
    result.phash = first["phash"].hash
    result.partial = partial
    result.near = _unique(near)


def _frame_hashes(grey, frame: int, colour: Image.Image | None = None) -> list[NearHash]:
    """PDQ and pHash of a frame in its 8 orientations and turned back by each of `_TILTS`; if it has
    uniform borders (padding, a frame, letterboxing), the orientations again for the picture inside them,
    as variants "trimmed", "trimmed:rotate90"..."""
    small = reduced(grey, REGION_SIDE)  # for the centre crops and the candidate regions alike
    hashes = _oriented_hashes(grey, frame, "", exact=True) + _tilted_hashes(grey, frame) + _centre_hashes(small, frame)
    box = uniform_border(grey)
    if box is not None:  # rarer, so cheaper: PDQ's orientations derived from one DCT (a few bits off)
        hashes += _oriented_hashes(grey.crop(box), frame, "trimmed", exact=False)
    for number, region in enumerate(picture_regions(grey, colour, small), 1):  # a caption band, a screenshot, an inset
        hashes += _as_is_hashes(grey.crop(region), frame, f"region{number}")
    return hashes


def _as_is_hashes(grey, frame: int, name: str) -> list[NearHash]:
    """PDQ and pHash of a part of the picture (a candidate region, a centre crop), as it is: no turns,
    as each hash is one more chance of a false match (docs/accuracy.md)."""
    computed = pdq.compute(np.asarray(grey))
    return [
        NearHash("pdq", computed.hash, computed.quality, name, frame),
        NearHash("phash", phash.phash(grey), None, name, frame),
    ]


def _oriented_hashes(grey, frame: int, prefix: str, exact: bool) -> list[NearHash]:
    pixels = np.asarray(grey)  # uint8: PDQ converts band by band, faster than one float32 copy when mirrored
    pdq_variants = _pdq_oriented(pixels) if exact else _pdq_derived(pixels)
    phash_variants = phash.dihedral(phash.grey32(grey))
    return [
        *(NearHash("pdq", h, quality, _variant(prefix, name), frame) for name, (h, quality) in pdq_variants),
        *(NearHash("phash", h, None, _variant(prefix, name), frame) for name, h in phash_variants.items()),
    ]


# PDQ hashes of the orientations, as hashing the turned upload would give them. Deriving all 8 from one
# DCT (Pdq.dihedral) is exact only for a transpose: PDQ's sampling is not mirror symmetric, and on our
# corpus a derived mirror differed from the mirrored pixels' hash by a median 6-12 bits and up to 104 on
# fine textures (docs/accuracy.md), more than the 31-bit threshold. So the pixels' three mirrors are
# hashed too (pdq.compute_mirrors: two passes over the pixels for all four), and each hash gives two
# exact orientations: itself and its transpose.
TRANSPOSED = {
    "original": "transpose",
    "flip_x": "rotate90",  # np.rot90(x) == np.fliplr(x).T
    "flip_y": "rotate270",  # np.rot90(x, 3) == np.flipud(x).T
    "rotate180": "transverse",  # np.rot90(x, 2).T
}


def _pdq_oriented(pixels: np.ndarray) -> list[tuple[str, tuple[str, int]]]:
    out = []
    for name, computed in pdq.compute_mirrors(pixels).items():
        transposed = computed.transposed()
        out += [(name, (computed.hash, computed.quality)), (TRANSPOSED[name], (transposed, computed.quality))]
    return out


def _pdq_derived(pixels: np.ndarray) -> list[tuple[str, tuple[str, int]]]:
    computed = pdq.compute(pixels)
    return [(name, (h, computed.quality)) for name, h in computed.dihedral().items()]


# Small tilts. A photo turned by 3 degrees on its own canvas is 40-80 PDQ bits and often more than 8 pHash
# bits from the original: less from the turn itself than from the four dark corners it leaves and the
# four corners it cuts off. So the upload is turned back by each angle in _TILTS (degrees, counter-
# clockwise), and every pixel the turn cannot account for (corners outside the turned canvas) is filled
# with the picture's mean grey, which moves the low frequencies both hashes keep far less than black.
# On 80 photos turned by 1-5 degrees either way (docs/accuracy.md), the rule then catches 88/83/79/67%
# at 2/3/4/5 degrees instead of 60/32/10/4%. Each angle covers about +-1 degree around it; +-2 and +-4
# together do about as well as adding +-3 too (+1 point). The turns are taken on a copy of at most
# _TILT_SIDE pixels (about 1.5 ms per angle): the hashes downsample to 64 (PDQ) and 32 (pHash) pixels
# anyway, and 256 or 512 px gained 1-3 points for 2-4x the time.
_TILTS = (-4.0, -2.0, 2.0, 4.0)
_TILT_SIDE = 128


def _tilted_hashes(grey: Image.Image, frame: int) -> list[NearHash]:
    small = reduced(grey, _TILT_SIDE)
    withcanvas = small.convert("LA")  # the alpha band tracks which pixels the turn brings in from outside
    out = []
    for angle in _TILTS:
        turned = _turned_back(withcanvas, angle)
        computed = pdq.compute(turned, exact_rounding=False)
        name = f"tilt{angle:+g}"
        pixels = Image.fromarray(np.clip(turned + 0.5, 0, 255).astype(np.uint8))
        out += [
            NearHash("pdq", computed.hash, computed.quality, name, frame),
            NearHash("phash", phash.phash(pixels), None, name, frame),
        ]
    return out


# Centre crops. A listed picture cropped by 8% a side, or with stickers over its corners, is far from
# its own hashes. So every picture is also hashed by its centre: 84% of each side (an upload cropped by
# up to ~8% a side is then near a listed picture's "centre84"), and 72% (corners covered by stickers of
# up to ~14% of the side are left out on both sides). Taken, like the tilts, on a small copy.
_CENTRES = (0.84, 0.72)
# A list we build carries more of them, a rung every ~8% (`listing_fingerprint`): a crop between two
# rungs is then within ~4% of the scale of one, where a crop of 5% a side otherwise fell between the
# picture (at 90%) and its centre84 (at 107%) and was found 40% of the time (100% with the rungs, on
# bench/accuracy.py's 10 photos). Only lists carry these: a query hash more would be one more chance of a
# false match against every list, a listed one only against the list that holds it.
_LISTED_CENTRES = (0.92, 0.76)


def listing_fingerprint(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Fingerprint:
    """`fingerprint`, and for a picture the centre crops only a list we build carries (`list build`)."""
    fp = fingerprint(data, limits)
    if fp.status == FingerprintStatus.IMAGE:
        grey = decode(data, limits).frames[0].grey
        fp.near = _unique(fp.near + _centre_hashes(reduced(grey, REGION_SIDE), 0, _LISTED_CENTRES))
    return fp


def _centre_hashes(small: Image.Image, frame: int, shares: tuple[float, ...] = _CENTRES) -> list[NearHash]:
    """The centre crops of a frame, from its copy of at most REGION_SIDE pixels a side."""
    w, h = small.size
    out = []
    for share in shares:
        dx, dy = round(w * (1 - share) / 2), round(h * (1 - share) / 2)
        out += _as_is_hashes(small.crop((dx, dy, w - dx, h - dy)), frame, f"centre{round(share * 100)}")
    return out


def _turned_back(withcanvas: Image.Image, angle: float) -> np.ndarray:
    """The luma turned by `angle` about its centre, the corners it leaves filled with its mean (float32)."""
    band = np.asarray(withcanvas.rotate(angle, Image.Resampling.BILINEAR), dtype=np.float32)
    luma, inside = band[..., 0], band[..., 1] / 255  # bilinear edges: luma is already weighted by `inside`
    whole = inside > 0.99
    mean = float(luma[whole].mean()) if whole.any() else float(luma.mean())
    return luma + mean * (1 - inside)


def _variant(prefix: str, orientation: str) -> str:
    if not prefix:
        return orientation
    return prefix if orientation == "original" else f"{prefix}:{orientation}"


def _unique(near: list[NearHash]) -> list[NearHash]:
    """Drop repeated (algorithm, hash) pairs (symmetric images, still animations), keeping the first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for h in near:
        if (h.algorithm, h.hash) not in seen:
            seen.add((h.algorithm, h.hash))
            out.append(h)
    return out
