"""Videos: frames sampled as Meta's reference vPDQ samples them, each hashed with PDQ.

The reference (vpdq 0.2.5) hashes every `step`-th decoded frame, step = int(seconds per hash x the
stream's average frame rate), at least 1; a frame's timestamp is its index / that rate (not its
presentation time); the frame is taken in RGB at its own size, its luma 0.299 R + 0.587 G + 0.114 B
hashed with PDQ. We sample and hash the same way, so a listed video's vPDQ and ours line up frame for
frame: PyAV's RGB frames hashed by `pdq` (or `pdqhash`) measured 0 bits from the reference's.

Decoding uses PyAV (FFmpeg in its wheels), imported when a video arrives. Limits fail closed: over
them, or undecodable, a video is `VideoRejected` with the reason (the caller: `unscannable`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

import numpy as np

from hashcheck.fingerprinting import pdq
from hashcheck.fingerprinting.imaging import uniform_border
from hashcheck.fingerprinting.vpdq import Feature

# ISO base media brands of video files (MP4, MOV, 3GP, M4V); HEIC and AVIF are ISO files too, but pictures
_VIDEO_BRANDS = {
    b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"M4VP", b"qt  ",
    b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"dash", b"MSNV", b"XAVC", b"f4v ",
}  # fmt: skip


def looks_like_video(head: bytes) -> bool:
    """Whether these leading bytes are a video container's (by content, never by file name)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return head[8:12] in _VIDEO_BRANDS
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, WebM
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):  # MPEG program stream, MPEG-1/2 video
        return True
    return len(head) >= 377 and head[0] == head[188] == head[376] == 0x47  # MPEG transport stream


@dataclass(frozen=True)
class VideoLimits:
    max_frames_hashed: int = 3_600  # an hour at one frame per second
    max_frames_decoded: int = 200_000  # every frame is decoded, sampled or not
    max_frame_pixels: int = 3840 * 2160
    seconds_per_hash: float = 1.0


DEFAULT_VIDEO_LIMITS = VideoLimits()


class VideoRejected(Exception):
    """Not decodable, or over a limit; the message says which."""


def vpdq_features(source: str | BinaryIO, limits: VideoLimits = DEFAULT_VIDEO_LIMITS) -> list[Feature]:
    """The video's vPDQ: one feature per sampled frame, in order."""
    return [_feature(rgb, timestamp) for timestamp, rgb in sampled_frames(source, limits)]


def _declared_size(stream: Any) -> tuple[int, int]:
    """The frame size the stream's header declares (0 x 0 when it declares none)."""
    context = getattr(stream, "codec_context", None)
    return int(getattr(context, "width", 0) or 0), int(getattr(context, "height", 0) or 0)


def _feature(rgb: np.ndarray, timestamp: float) -> Feature:
    """The frame's PDQ (the reference's), and as variants its mirror's and, inside letterbox or pillarbox
    bars, the picture's own and its mirror's: the edits that defeat plain vPDQ (bench/video.py)."""
    luma = pdq.luma_from_rgb(rgb)
    hashed, mirrored = pdq.compute_with_mirror(luma)
    variants = [mirrored.hash]
    box = uniform_border(rgb[..., 1])  # bars are flat in every channel: green, without converting, will do
    if box is not None:
        left, top, right, bottom = box
        inside = pdq.compute_with_mirror(luma[top:bottom, left:right])
        variants += [h.hash for h in inside]
    return Feature(hashed.hash, hashed.quality, timestamp, tuple(variants))


def sampled_frames(source: str | BinaryIO, limits: VideoLimits = DEFAULT_VIDEO_LIMITS) -> Iterator[tuple[float, Any]]:
    """(timestamp, RGB array) of the frames the reference would hash, decoded one at a time."""
    import av  # only when a video arrives

    try:
        with av.open(source, mode="r") as container:
            if not container.streams.video:
                raise VideoRejected("no video stream")
            stream = container.streams.video[0]
            width, height = _declared_size(stream)
            if width * height > limits.max_frame_pixels:  # as declared, before anything is decoded
                raise VideoRejected(f"frames of {width}x{height} pixels, over the limit")
            rate = Fraction(stream.average_rate or stream.guessed_rate or 0)
            if rate <= 0:
                raise VideoRejected("the video declares no frame rate")
            step = max(1, int(limits.seconds_per_hash * rate))
            hashed = 0
            for index, frame in enumerate(container.decode(stream)):
                if index >= limits.max_frames_decoded:
                    raise VideoRejected(f"more than {limits.max_frames_decoded} frames")
                if index % step:
                    continue
                if frame.width * frame.height > limits.max_frame_pixels:
                    raise VideoRejected(f"frames of {frame.width}x{frame.height} pixels, over the limit")
                hashed += 1
                if hashed > limits.max_frames_hashed:
                    raise VideoRejected(f"more than {limits.max_frames_hashed} frames to hash")
                yield float(index / rate), frame.to_ndarray(format="rgb24")
    except VideoRejected:
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise VideoRejected(f"not decodable ({type(exc).__name__})") from exc
