"""Benign generated pictures for the demo: smooth colour fields with shapes, no data files needed.

They stand in for "known" images: the demo *pretends* some of them are on a list. Each seed gives
the same picture on every machine (numpy's seeded generator and Pillow's drawing are deterministic).
"""

from __future__ import annotations

import functools
import io
from fractions import Fraction

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps


def picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 2 * np.pi)
        channels.append(127 + 90 * np.sin(fx * x * np.pi + phase) * np.cos(fy * y * np.pi))
    image = Image.fromarray(np.clip(np.dstack(channels), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(40, w // 2)), y0 + int(rng.integers(40, h // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    return image


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


EDITS = {
    "jpeg-q50": lambda im: jpeg(im, 50),
    "resized-50": lambda im: jpeg(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)),
    "mirrored": lambda im: jpeg(ImageOps.mirror(im)),
    "brighter": lambda im: jpeg(ImageEnhance.Brightness(im).enhance(1.2)),
    "png": png,
}


# --- videos -------------------------------------------------------------------------------------------


@functools.cache
def _still(seed: int) -> Image.Image:
    return picture(seed)


def video_frame(i: int, fps: float, size: tuple[int, int], seed: int) -> Image.Image:
    """Frame `i` of a benign video: a slow pan over a generated picture, a new picture every 4 seconds."""
    still = _still(seed + int(i / fps) // 4)
    x = int(200 * ((i / fps) % 4) / 4)
    return still.crop((x, 60, x + 560, 480)).resize(size)


def video(
    seconds: float,
    fps: float = 25,
    seed: int = 1,
    size: tuple[int, int] = (320, 240),
    crf: int = 18,
    start: int = 0,
    edit=None,
    show: tuple[Image.Image, float, float] | None = None,
    format: str = "mp4",
    codec: str = "libx264",
    options: dict[str, str] | None = None,
) -> bytes:
    """A video (PyAV; H.264 in MP4 unless `codec`, its `options` and `format` say otherwise) of
    `video_frame`s from frame `start` on; `edit` changes each frame's picture (an edit a re-uploader
    would make: brighter, mirrored, letterboxed); `show` = (picture, from, to) shows a picture between
    those seconds, fitted inside the frame with black bars as a video shows a photo."""
    import av  # only for videos: tests and benches

    out = io.BytesIO()
    with av.open(out, "w", format=format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = dict(options) if options is not None else {"crf": str(crf)}
        for i in range(start, start + int(seconds * fps)):
            frame = video_frame(i, fps, size, seed)
            if show is not None and show[1] <= i / fps < show[2]:
                frame = ImageOps.pad(show[0].convert("RGB"), size, color="black")
            if edit is not None:
                frame = edit(frame).resize(size)
            for packet in stream.encode(av.VideoFrame.from_image(frame.convert("RGB"))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()
