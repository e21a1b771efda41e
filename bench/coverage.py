"""Coverage: listed pictures wrapped the ways people upload them, found or not.

    python bench/coverage.py [PHOTO_DIR] [--listed N]

Half of the photos (tests/data/photos by default) are put on a list by their PDQ and pHash only (a
wrapper changes every exact hash), the other half stay unlisted. Each photo is then wrapped: cut
short (truncated), put in archives, put in documents, shown inside long animations; every wrapper
is fingerprinted and matched like an upload. Prints recall per wrapper and per group for the listed
photos, and false matches for the unlisted ones (any match of an unlisted photo's wrapper is one).
Baseline, in the same run: the bare photos, which must all match (listed) and none falsely.

Last line: coverage_recall=… truncated=… archives=… documents=… animations=… false_matches=…
baseline_recall=… ms_per_mb=…
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import lzma
import os
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # numpy's BLAS on one thread, as every bench here
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from hashcheck.fingerprinting.fingerprint import fingerprint  # noqa: E402
from hashcheck.lists.build import references_for  # noqa: E402
from hashcheck.matching.matcher import match  # noqa: E402
from hashcheck.matching.stores.memory import MemoryStore  # noqa: E402
from hashcheck.tools.wrappers import html_with, pdf_inline, pdf_page, sevenzipped, svg_with, tarred, zipped  # noqa: E402


def jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def long_gif(image: Image.Image, frames: int = 300) -> bytes:
    """The picture at frame 1 for a minute, among `frames` 100 ms frames of noise."""
    small = image.convert("L").resize((240, 180))
    rng = np.random.default_rng(5)
    noise = [Image.fromarray(rng.integers(0, 256, (6, 8), dtype=np.uint8)).resize(small.size) for _ in range(frames)]
    pictures = [noise[0], small, *noise[2:]]
    durations = [100, 60_000] + [100] * (frames - 2)
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    return out.getvalue()


def webp_late(image: Image.Image) -> bytes:
    """An animated WebP showing the picture at its third frame for ten seconds."""
    small = image.convert("RGB").resize((240, 180))
    rng = np.random.default_rng(6)
    noise = [Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(small.size) for _ in range(6)]
    pictures = [noise[0], noise[1], small, *noise[3:]]
    out = io.BytesIO()
    pictures[0].save(
        out, "WEBP", save_all=True, append_images=pictures[1:], duration=[100, 100, 10_000, 100, 100, 100], quality=85
    )
    return out.getvalue()


def cut(fraction: float, progressive: bool = False) -> Callable[[Image.Image], bytes]:
    def wrap(image: Image.Image) -> bytes:
        whole = jpeg(image, progressive=progressive)
        return whole[:-2] if fraction == 0 else whole[: int(len(whole) * (1 - fraction))]

    return wrap


WRAPPERS: dict[str, dict[str, Callable[[Image.Image], bytes]]] = {
    "truncated": {
        "jpeg -2 bytes": cut(0),
        "jpeg -1%": cut(0.01),
        "jpeg -5%": cut(0.05),
        "progressive -10%": cut(0.10, progressive=True),
        "progressive -25%": cut(0.25, progressive=True),
    },
    "archives": {
        "zip": lambda im: zipped({"photos/a.jpg": jpeg(im)}),
        "zip stored": lambda im: zipped({"a.jpg": jpeg(im)}, zipfile.ZIP_STORED),
        "zip in zip": lambda im: zipped({"inner.zip": zipped({"a.jpg": jpeg(im)})}),
        "tar.gz": lambda im: tarred({"a.jpg": jpeg(im)}, "w:gz"),
        "tar.xz": lambda im: tarred({"a.jpg": jpeg(im)}, "w:xz"),
        "gz": lambda im: gzip.compress(jpeg(im)),
        "bz2": lambda im: bz2.compress(jpeg(im)),
        "xz": lambda im: lzma.compress(jpeg(im)),
        "docx": lambda im: zipped({"[Content_Types].xml": b"<Types/>", "word/media/image1.jpeg": jpeg(im)}),
        "7z": lambda im: sevenzipped({"photos/a.jpg": jpeg(im)}),
        "7z in tar.gz": lambda im: tarred({"backup.7z": sevenzipped({"a.jpg": jpeg(im)})}, "w:gz"),
    },
    "documents": {
        "pdf page (jpeg)": lambda im: pdf_page(im.convert("RGB")),
        "pdf page (deflated)": lambda im: pdf_page(im.convert("L")),
        "pdf inline image": pdf_inline,
        "svg data: URI": lambda im: svg_with(jpeg(im)),
        "html data: URI": lambda im: html_with(jpeg(im)),
    },
    "animations": {
        "gif frame 1 of 300, 60 s": long_gif,
        "webp frame 2 of 6, 10 s": webp_late,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="?", default=str(ROOT / "tests" / "data" / "photos"))
    parser.add_argument("--listed", type=int, default=None, help="how many photos are listed (default: half)")
    args = parser.parse_args()
    paths = sorted(Path(args.photos).glob("*.jpg"))
    images = [Image.open(p).convert("RGB") for p in paths]
    n_listed = args.listed if args.listed is not None else len(images) // 2
    listed, unlisted = images[:n_listed], images[n_listed:]
    store = MemoryStore(
        [
            r
            for i, im in enumerate(listed)
            for r in references_for(fingerprint(jpeg(im)), "bench", f"photo{i}")
            if r.algorithm in ("pdq", "phash")
        ]
    )
    baseline = sum(match(fingerprint(jpeg(im)), store).verdict == "match" for im in listed) / max(len(listed), 1)
    false_baseline = sum(match(fingerprint(jpeg(im)), store).verdict == "match" for im in unlisted)

    found: dict[str, list[bool]] = defaultdict(list)
    groups: dict[str, list[bool]] = defaultdict(list)
    false_matches, seconds, megabytes = 0, 0.0, 0.0
    print(f"{len(listed)} listed, {len(unlisted)} unlisted photos from {args.photos}\n")
    print(f"{'group':<11} {'wrapper':<26} {'recall':>7}  verdicts of the listed")
    for group, wrappers in WRAPPERS.items():
        for name, wrap in wrappers.items():
            verdicts = []
            for im in listed + unlisted:
                data = wrap(im)
                started = time.perf_counter()
                result = match(fingerprint(data), store)
                seconds += time.perf_counter() - started
                megabytes += len(data) / 1e6
                if im in unlisted:
                    false_matches += result.verdict == "match"
                    continue
                verdicts.append(str(result.verdict))
                found[name].append(result.verdict == "match")
                groups[group].append(result.verdict == "match")
            counts = ", ".join(f"{v} {verdicts.count(v)}" for v in sorted(set(verdicts)))
            print(f"{group:<11} {name:<26} {np.mean(found[name]):>7.2f}  {counts}")
    overall = np.mean([hit for hits in groups.values() for hit in hits])
    print(f"\nbaseline (bare photos): recall {baseline:.2f}, false matches {false_baseline}")
    print(
        f"coverage_recall={overall:.3f} "
        + " ".join(f"{group}={np.mean(hits):.3f}" for group, hits in groups.items())
        + f" false_matches={false_matches + false_baseline} baseline_recall={baseline:.3f}"
        + f" ms_per_mb={1000 * seconds / max(megabytes, 1e-9):.1f}"
    )


if __name__ == "__main__":
    main()
