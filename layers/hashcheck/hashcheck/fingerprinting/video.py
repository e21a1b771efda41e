"""Videos: frames sampled as Meta's reference vPDQ samples them, each hashed with PDQ.

The reference (vpdq 0.2.5) hashes every `step`-th decoded frame, step = int(seconds per hash x the
stream's average frame rate), at least 1; a frame's timestamp is its index / that rate (not its
presentation time); the frame is taken in RGB at its own size, its luma 0.299 R + 0.587 G + 0.114 B
hashed with PDQ. We sample and hash the same way, so a listed video's vPDQ and ours line up frame for
frame: PyAV's RGB frames hashed by `pdq` (or `pdqhash`) measured 0 bits from the reference's.

Decoding uses PyAV (FFmpeg in its wheels), imported when a video arrives, one frame at a time. Limits
fail closed: undecodable, or over a limit its header declares, a video is `VideoRejected`; over a limit
while decoding (frames, pixels, time) or damaged midway, `Video.problem` says why and the frames read
so far are kept (they are still matched). The caller records either as `unscannable`, never clean.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, BinaryIO

import numpy as np

from hashcheck.algorithms import hamming
from hashcheck.fingerprinting import pdq
from hashcheck.fingerprinting.imaging import IMAGE_BRANDS, uniform_border
from hashcheck.fingerprinting.vpdq import Feature, time_range

_ASF = b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"  # the ASF header object's GUID: WMV, ASF
_MPEG_STARTS = (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3", b"\x00\x00\x01\xb0")  # program stream, MPEG-1/2, MPEG-4


def looks_like_video(head: bytes) -> bool:
    """Whether these leading bytes could be a video's (by content, never by file name). Generous on
    purpose: re-muxing into another container, or writing a brand of one's own into an MP4, is one step,
    and what is tried as a video and holds none is `not_image`, what cannot be opened `unscannable`."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return head[8:12] not in IMAGE_BRANDS  # MP4, MOV, 3GP, M4V, F4V... whatever brand it claims
    if head[:4] in (b"\x1a\x45\xdf\xa3", b"OggS") or head[:3] == b"FLV" or head[:8] == _ASF:  # MKV/WebM, Ogg
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[:4] in _MPEG_STARTS:
        return True
    if head[:4] == b"\x00\x00\x00\x01" and len(head) > 4 and head[4] < 0x80:  # a raw H.264 / H.265 stream
        return True
    return len(head) >= 377 and head[0] == head[188] == head[376] == 0x47  # MPEG transport stream


@dataclass(frozen=True)
class VideoLimits:
    max_frames_hashed: int = 3_600  # an hour at one frame per second
    max_frames_decoded: int = 200_000  # every frame is decoded, sampled or not
    max_frame_pixels: int = 3840 * 2160
    seconds_per_hash: float = 1.0
    # The largest video fingerprinted (spooled to FingerprintFunction's /tmp of 4 GB); larger: unscannable
    max_bytes: int = 3 * 2**30
    # Decoding and hashing one video; FingerprintFunction's timeout is 100 s, and a video over this is
    # recorded unscannable (its frames so far still matched) instead of timing out with no reason.
    max_seconds: float = 75.0
    # Consecutive sampled frames whose PDQ stays within this many bits of a scene's first frame are one
    # scene: one member, hashed as a picture once (a still shown for 3 s is one member `t=12.0-15.0s`).
    scene_bits: int = 16


DEFAULT_VIDEO_LIMITS = VideoLimits()


class VideoRejected(Exception):
    """Not decodable, or over a limit before anything was decoded; the message says which."""


class NoPictures(Exception):
    """A container of sound only (no video stream): nothing in it can be a listed picture."""


@dataclass
class Scene:
    """Consecutive sampled frames that show the same picture: when, and its clearest frame (RGB)."""

    start: float
    end: float  # the last frame's timestamp + the sampling interval
    frame: np.ndarray
    quality: int
    first_pdq: str

    @property
    def member(self) -> str:
        return time_range(self.start, self.end)


@dataclass
class Video:
    """What reading a video found. `scenes()` decodes it once, handing out each scene as it ends; the
    vPDQ features and any problem (decoded only in part: over a limit, damaged) are here after that."""

    source: str | BinaryIO
    limits: VideoLimits = DEFAULT_VIDEO_LIMITS
    deadline: float | None = None  # time.monotonic() by which to stop (a container's budget); else max_seconds
    format: str = ""
    width: int = 0
    height: int = 0
    features: list[Feature] = field(default_factory=list)
    problem: str | None = None

    def scenes(self) -> Iterator[Scene]:
        current: Scene | None = None
        for timestamp, rgb in self.sampled_frames():
            feature = _feature(rgb, timestamp)
            self.features.append(feature)
            end = timestamp + self.limits.seconds_per_hash
            if current is not None and hamming(feature.pdq, current.first_pdq) <= self.limits.scene_bits:
                current.end = end
                if feature.quality > current.quality:
                    current.frame, current.quality = rgb, feature.quality
                continue
            if current is not None:
                yield current
            current = Scene(timestamp, end, rgb, feature.quality, feature.pdq)
        if current is not None:
            yield current

    def sampled_frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(timestamp, RGB) of the frames the reference would hash, decoded one at a time."""
        import av  # only when a video arrives

        errors = (av.FFmpegError, ValueError, OSError, EOFError)
        deadline = self.deadline or time.monotonic() + self.limits.max_seconds
        places = self._presentation_places(av, errors, deadline)
        try:
            container = av.open(self.source, mode="r")
        except errors as exc:
            raise VideoRejected(f"not decodable ({type(exc).__name__})") from exc
        with container:
            stream, rate = self._open(container)
            step = max(1, int(self.limits.seconds_per_hash * rate))
            hashed, index = 0, -1
            frames = _decoded(container, stream, places, step)
            while True:
                try:
                    decoded = next(frames, None)
                except errors as exc:
                    self.problem = f"damaged after {float((index + 1) / rate):.1f} s ({type(exc).__name__})"
                    return
                if decoded is None:
                    self.problem = self.problem or self._short(container, float((index + 1) / rate))
                    return
                index, frame = decoded
                if (problem := self._over(index, deadline)) is not None:
                    self.problem = problem
                    return
                if index % step:
                    continue
                if hashed >= self.limits.max_frames_hashed:
                    self.problem = f"more than {self.limits.max_frames_hashed} frames to hash"
                    return
                if frame.width * frame.height > self.limits.max_frame_pixels:
                    self.problem = f"frames of {frame.width}x{frame.height} pixels, over the limit"
                    return
                hashed += 1
                yield float(index / rate), frame.to_ndarray(format="rgb24")

    def _presentation_places(self, av: Any, errors: tuple, deadline: float) -> dict[int, int] | None:
        """Each frame's place in presentation order, by its packet's time, read from the container without
        decoding anything; None (frames are then counted as they are decoded) when a packet carries no
        time of its own or shares one, or there are too many to list. Knowing the places beforehand lets
        the decoder skip the frames that no later frame is decoded from and that are not sampled."""
        rewind = self.source.tell() if not isinstance(self.source, str) else None
        times: list[int] = []
        try:
            with av.open(self.source, mode="r") as container:
                if not container.streams.video:
                    return None
                for packet in container.demux(container.streams.video[0]):
                    if packet.size == 0:  # the demuxer's closing empty packet
                        continue
                    if packet.pts is None or len(times) >= self.limits.max_frames_decoded:
                        return None
                    if len(times) % 1024 == 0 and time.monotonic() > deadline:
                        return None
                    times.append(packet.pts)
        except errors:
            return None  # what is wrong with it, the decoding that follows finds and records
        finally:
            if rewind is not None and not isinstance(self.source, str):
                self.source.seek(rewind)
        places = {pts: place for place, pts in enumerate(sorted(times))}
        return places if len(places) == len(times) else None

    def _open(self, container: Any) -> tuple[Any, Fraction]:
        if not container.streams.video:
            raise NoPictures("no video stream")
        stream = container.streams.video[0]
        # One thread: FFmpeg's frame and slice threads cost a third more CPU on this work, and a
        # function of 2 GB has little more than one vCPU to run them on.
        stream.thread_type, stream.thread_count = "NONE", 1
        self.format = str(container.format.name).split(",")[0]
        self.width, self.height = _declared_size(stream)
        if self.width * self.height > self.limits.max_frame_pixels:  # as declared, before any decoding
            raise VideoRejected(f"frames of {self.width}x{self.height} pixels, over the limit")
        rate = Fraction(stream.average_rate or stream.guessed_rate or 0)
        if rate <= 0:
            raise VideoRejected("the video declares no frame rate")
        return stream, rate

    def _over(self, index: int, deadline: float) -> str | None:
        if index >= self.limits.max_frames_decoded:
            return f"more than {self.limits.max_frames_decoded} frames"
        if time.monotonic() > deadline:
            return "took longer to decode than one invocation allows"
        return None

    @staticmethod
    def _short(container: Any, decoded: float) -> str | None:
        """Why frames ended well before the duration the container declares (truncated), or None."""
        declared = (container.duration or 0) / 1_000_000
        if declared and decoded < declared * 0.95 - 2:
            return f"frames end at {decoded:.1f} s of the {declared:.1f} s it declares"
        return None


def sampled_frames(
    source: str | BinaryIO, limits: VideoLimits = DEFAULT_VIDEO_LIMITS
) -> Iterator[tuple[float, np.ndarray]]:
    """(timestamp, RGB) of the frames the reference would hash."""
    return Video(source, limits).sampled_frames()


def vpdq_features(source: str | BinaryIO, limits: VideoLimits = DEFAULT_VIDEO_LIMITS) -> list[Feature]:
    """The video's vPDQ, one feature per sampled frame in order (a listed video's, so whole: VideoRejected
    when it is unreadable or could be read only in part)."""
    video = Video(source, limits)
    for _ in video.scenes():
        pass
    if video.problem:
        raise VideoRejected(video.problem)
    return video.features


def _decoded(container: Any, stream: Any, places: dict[int, int] | None, step: int) -> Iterator[tuple[int, Any]]:
    """(index in presentation order, frame) of each frame decoded. With the frames' places known, a
    packet whose frame is not sampled is decoded with FFmpeg's `skip_frame` NONREF: a frame that no
    other is predicted from is then not decoded at all (B-frames, about half of a typical H.264 stream's),
    while every reference frame, and every sampled frame, is decoded exactly as before. A frame whose
    time is not among the packets' is counted on from the one before."""
    context, index = stream.codec_context, -1
    if places is None or context is None:  # no times to go by, or no decoder (decode() then says why)
        yield from enumerate(container.decode(stream))
        return
    for packet in container.demux(stream):
        if packet.pts in places:
            context.skip_frame = "NONREF" if places[packet.pts] % step else "DEFAULT"
        for frame in context.decode(packet):
            index = places.get(frame.pts, index + 1)
            yield index, frame


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
