"""Benchmark `hashcheck.fingerprint.fingerprint` against a naive baseline and the bare JPEG decode.

    python bench/fingerprint.py [IMAGE ...] [--runs N]

Without arguments it uses the photos in `<repo>/../shared/data/large/*.jpg` when that folder exists,
otherwise it generates a ~12 MP and a ~2 MP JPEG (smooth random fields plus noise, so they compress
like photos). A ~2 MP PNG (made from the first image) and a ~2 MP JPEG (made by downscaling the
largest) are added when no such image is among the inputs.

For every image, the median over --runs timed runs (after one warm-up, methods interleaved) of:

* ``ours``: ``fingerprint(bytes)``: MD5/SHA-1/SHA-256, reduced-size decode to luma, PDQ with its
  quality, pHash, and the dihedral variants of both.
* ``naive``: full ``Image.open(...).convert("RGB")``, the three digests with hashlib,
  ``pdqhash.compute`` on the RGB array and ``imagehash.phash``: what one would write without care.
* ``decode``: the bare decode to the pixels our code needs, as plainly as possible: open, ``draft``
  to the size hashcheck picks (JPEG only), load, convert to RGB if needed. ``decode_L`` is the same in
  mode "L", which is what hashcheck decodes to.

Then a breakdown of ``ours`` for the largest JPEG (by pixels), timed piece by piece with the library's
internals, and the drift of our PDQ/pHash from the references computed on the full RGB decode (the
way a hotline computes the hashes on its list). Everything runs on one thread (see `pin_one_thread`).
The last line is machine-readable:

    ms_per_image=<ours, largest JPEG> ratio_vs_naive=<naive/ours> ratio_vs_decode=<ours/decode>
"""

from __future__ import annotations

import os

# One thread for numpy's BLAS (PDQ's matrix products): set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import hashlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "hashcheck"))

import imagehash
import numpy as np
import pdqhash
from PIL import Image

from hashcheck import algorithms, pdq, phash
from hashcheck import fingerprint as fingerprint_module
from hashcheck.fingerprint import fingerprint
from hashcheck.imaging import DEFAULT_LIMITS, _draft_size, decode

SHARED_LARGE = REPO.parent / "shared" / "data" / "large"
TWO_MP = 2_000_000
JPEG_FORMATS = ("JPEG", "MPO")


@dataclass
class Sample:
    name: str
    data: bytes
    format: str = ""
    size: tuple[int, int] = (0, 0)
    times: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with Image.open(io.BytesIO(self.data)) as image:
            self.format, self.size = image.format or "?", image.size

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]

    @property
    def is_jpeg(self) -> bool:
        return self.format in JPEG_FORMATS

    def ms(self, method: str) -> float:
        return statistics.median(self.times[method]) * 1000


def pin_one_thread() -> str:
    """Keep the whole process on one CPU, so no library can spread work over several cores."""
    note = "OMP/OPENBLAS/MKL_NUM_THREADS=1"
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        note += f", process pinned to CPU {cpu}"
    return note + "; Pillow decoding and hashlib ran on the calling thread"


# ----------------------------------------------------------------------------------------- inputs


def synthetic_photo(width: int, height: int, seed: int) -> Image.Image:
    """Smooth random colour fields at two scales plus sensor-like noise: compresses like a photo."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3), dtype=np.float32)
    for cell, weight in ((max(width, height) // 6, 0.7), (48, 0.3)):
        grid = rng.integers(0, 256, (height // cell + 2, width // cell + 2, 3), dtype=np.uint8)
        field_ = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
        out += weight * np.asarray(field_, dtype=np.float32)
    out += rng.integers(-10, 11, (height, width, 1), dtype=np.int8)  # luma noise
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def downscaled(data: bytes, target_pixels: int) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    scale = (target_pixels / (image.width * image.height)) ** 0.5
    size = (round(image.width * scale), round(image.height * scale))
    image.draft("RGB", size)  # JPEG: start from the DCT-reduced image, as any quick resize would
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def load_samples(paths: list[str]) -> list[Sample]:
    if paths:
        samples = [Sample(Path(p).name, Path(p).read_bytes()) for p in paths]
    elif SHARED_LARGE.is_dir() and sorted(SHARED_LARGE.glob("*.jpg")):
        samples = [Sample(p.name, p.read_bytes()) for p in sorted(SHARED_LARGE.glob("*.jpg"))]
    else:
        samples = [
            Sample("generated-12mp.jpg", encode(synthetic_photo(4000, 3000, seed=1), "JPEG")),
            Sample("generated-2mp.jpg", encode(synthetic_photo(1632, 1224, seed=2), "JPEG")),
        ]
    if not any(s.format == "PNG" for s in samples):
        small = downscaled(samples[0].data, TWO_MP)
        samples.append(Sample(f"{Path(samples[0].name).stem}-2mp.png", encode(small, "PNG")))
    if not any(s.is_jpeg and TWO_MP // 2 <= s.pixels <= TWO_MP * 3 // 2 for s in samples):
        largest = max(samples, key=lambda s: s.pixels)
        small = downscaled(largest.data, TWO_MP)
        samples.append(Sample(f"{Path(largest.name).stem}-2mp.jpg", encode(small, "JPEG")))
    return samples


# ---------------------------------------------------------------------------------------- methods


def draft_size(sample: Sample) -> tuple[int, int] | None:
    """The size hashcheck asks `draft` for (JPEG only; other formats are decoded at full size)."""
    return _draft_size(sample.size, DEFAULT_LIMITS.decode_long_side) if sample.is_jpeg else None


def bare_decode(data: bytes, mode: str, size: tuple[int, int] | None) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    if size is not None:
        image.draft(mode, size)
    image.load()
    return image if image.mode == mode else image.convert(mode)


def naive(data: bytes) -> dict:
    rgb = Image.open(io.BytesIO(data)).convert("RGB")
    exact = [hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest()]
    bits, quality = pdqhash.compute(np.asarray(rgb))
    return {
        "exact": exact,
        "pdq": f"{int(''.join(map(str, bits)), 2):064x}",
        "pdq_quality": int(quality),
        "phash": str(imagehash.phash(rgb)),
    }


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(sample: Sample, runs: int) -> None:
    size = draft_size(sample)
    methods: dict[str, Callable[[], object]] = {
        "ours": lambda: fingerprint(sample.data),
        "naive": lambda: naive(sample.data),
        "decode": lambda: bare_decode(sample.data, "RGB", size),
        "decode_L": lambda: bare_decode(sample.data, "L", size),
    }
    for fn in methods.values():  # warm-up: imports, caches (PDQ operators, scipy in imagehash)
        fn()
    sample.times = {name: [] for name in methods}
    for _ in range(runs):  # interleaved, so a slow spell of the machine hits every method alike
        for name, fn in methods.items():
            sample.times[name].append(timed(fn))


def breakdown(sample: Sample, runs: int) -> list[tuple[str, float]]:
    """Median ms of each piece of `fingerprint`, timed separately with the library's internals."""
    data = sample.data
    grey = decode(data).frames[0].grey
    luma = np.asarray(grey, dtype=np.float32)
    pdq_hash = pdq.compute(luma)
    pixels32 = phash.grey32(grey)

    def exact() -> None:
        digests = [hashlib.md5(), hashlib.sha1(), hashlib.sha256()]
        for chunk in fingerprint_module._chunks(data):
            for digest in digests:
                digest.update(chunk)
        [d.hexdigest() for d in digests]

    pieces: dict[str, Callable[[], object]] = {
        "exact hashes (md5+sha1+sha256)": exact,
        "decode (open, draft, load, luma, EXIF)": lambda: decode(data),
        "PDQ (to float32, blur+decimate, DCT)": lambda: pdq.compute(np.asarray(grey, dtype=np.float32)),
        "PDQ 8 dihedral hashes": pdq_hash.dihedral,
        "pHash resize to 32x32 (LANCZOS)": lambda: phash.grey32(grey),
        "pHash DCT + 8 dihedral hashes": lambda: phash.dihedral(pixels32),
        "whole frame hashing (_frame_hashes)": lambda: fingerprint_module._frame_hashes(grey, 0),
    }
    out = []
    for name, fn in pieces.items():
        fn()
        out.append((name, statistics.median(timed(fn) for _ in range(runs)) * 1000))
    return out


# ----------------------------------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", help="image files (default: shared/data/large/*.jpg)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per method (median reported)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    started = time.perf_counter()
    threads = pin_one_thread()
    samples = load_samples(args.images)
    if not any(s.is_jpeg for s in samples):
        parser.error("at least one JPEG is needed")
    print(f"hashcheck fingerprint benchmark: median of {args.runs} runs after 1 warm-up")
    print(f"threads: {threads}")
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, Pillow {Image.__version__}, "
        f"decode_long_side={DEFAULT_LIMITS.decode_long_side}"
    )
    print()

    results = {}
    for sample in samples:
        bench(sample, args.runs)
        results[sample.name] = naive(sample.data)

    header = (
        f"{'image':<22} {'fmt':<4} {'pixels':>16} {'decoded':>10} {'bytes':>10} {'ours ms':>8} "
        f"{'naive ms':>9} {'decode ms':>9} {'decode_L ms':>11} {'ours/decode':>11} {'naive/ours':>10}"
    )
    print(header)
    print("-" * len(header))
    for s in samples:
        size = draft_size(s) or s.size
        decoded = bare_decode(s.data, "L", draft_size(s)).size
        pixels = f"{s.size[0]}x{s.size[1]} {s.pixels / 1e6:4.1f}MP"
        print(
            f"{s.name:<22} {s.format:<4} {pixels:>16} {f'{decoded[0]}x{decoded[1]}':>10} {len(s.data):>10,} "
            f"{s.ms('ours'):>8.1f} {s.ms('naive'):>9.1f} {s.ms('decode'):>9.1f} {s.ms('decode_L'):>11.1f} "
            f"{s.ms('ours') / s.ms('decode'):>11.2f} {s.ms('naive') / s.ms('ours'):>10.1f}"
        )
        ours_size = decode(s.data).frames[0].grey.size
        if ours_size != decoded and ours_size != decoded[::-1]:  # EXIF rotation may swap the sides
            print(f"  WARNING: hashcheck decoded {ours_size}, the bare decode {decoded} (asked {size})")
    print("decoded = pixels actually decoded (JPEG: DCT-domain reduction to keep the long side >= 1024)")

    print()
    print("Drift from the references on the FULL RGB decode (pdqhash.compute, imagehash.phash):")
    print(f"{'image':<22} {'PDQ dist /256':>13} {'quality ours/ref':>16} {'pHash dist /64':>14} {'exact':>6}")
    for s in samples:
        fp, ref = fingerprint(s.data), results[s.name]
        exact_ok = "ok" if [fp.md5, fp.sha1, fp.sha256] == ref["exact"] else "DIFF"
        quality = f"{fp.pdq_quality}/{ref['pdq_quality']}"
        print(
            f"{s.name:<22} {algorithms.hamming(fp.pdq, ref['pdq']):>13} "
            f"{quality:>16} "
            f"{algorithms.hamming(fp.phash, ref['phash']):>14} {exact_ok:>6}"
        )
    print(f"(near-match thresholds: PDQ {algorithms.ALGORITHMS['pdq'].threshold}/256)")

    largest = max((s for s in samples if s.is_jpeg), key=lambda s: (s.pixels, len(s.data)))
    ours = largest.ms("ours")
    print()
    print(f"Where `ours` spends its time on the largest JPEG, {largest.name} (ours = {ours:.1f} ms):")
    pieces = breakdown(largest, args.runs)
    for name, ms in pieces:
        print(f"  {name:<40} {ms:7.2f} ms {100 * ms / ours:5.1f}%")
    accounted = sum(ms for name, ms in pieces[:2]) + pieces[-1][1]
    print(f"  {'other (bookkeeping, dedup, copies)':<40} {ours - accounted:7.2f} ms {100 * (ours - accounted) / ours:5.1f}%")
    print("  (whole frame hashing = PDQ + its dihedral + pHash resize + pHash dihedral + NearHash objects)")

    print()
    print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    naive_ms, decode_ms = largest.ms("naive"), largest.ms("decode")
    print(f"ms_per_image={ours:.1f} ratio_vs_naive={naive_ms / ours:.2f} ratio_vs_decode={ours / decode_ms:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
