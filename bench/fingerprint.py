"""Benchmark `hashcheck.fingerprinting.fingerprint.fingerprint` against a naive baseline and the bare JPEG decode.

    python bench/fingerprint.py [IMAGE ...] [--runs N] [--cpu K]

Without arguments it generates a ~12 MP and a ~2 MP JPEG (smooth random fields plus noise, so they
compress like photos); give camera photos to measure those. A ~2 MP PNG (made from the first image) and
a ~2 MP JPEG (made by downscaling the largest) are added when no such image is among the inputs.

For every image, the median over --runs timed runs (after one warm-up, methods interleaved) of:

* ``ours``: ``fingerprint(bytes)``: MD5/SHA-1/SHA-256, reduced-size decode to luma, PDQ with its
  quality, pHash, and the dihedral variants of both.
* ``naive``: full ``Image.open(...).convert("RGB")``, the three digests with hashlib,
  ``pdqhash.compute`` on the RGB array and ``imagehash.phash``: what one would write without care.
* ``decode``: the bare decode to the pixels our code needs, as plainly as possible: open, ``draft``
  to the size hashcheck picks (JPEG only), load, convert to RGB if the decoder did not give RGB.
  ``decode_L`` is the same in mode "L", which is what hashcheck decodes to.

Then a breakdown of ``ours`` for the largest JPEG (by pixels), timed piece by piece with the library's
internals (fastest run of each piece), and the drift of our PDQ/pHash from the references computed on the
full RGB decode (the way a hotline computes the hashes on its list), so that speed is never bought with drift.
Everything runs on one thread. The last line is machine-readable, for the largest JPEG:

    ms_per_image=<ours ms> ratio_vs_naive=<naive/ours> ratio_vs_decode=<ours/decode>
"""

from __future__ import annotations

import os

# One thread for numpy's BLAS (PDQ's matrix products): must be set before numpy is imported.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import hashlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "hashcheck"))

import imagehash
import numpy as np
import pdqhash
from PIL import Image

from hashcheck import algorithms
from hashcheck.fingerprinting import pdq, phash
from hashcheck.fingerprinting.fingerprint import _chunks, _frame_hashes, fingerprint  # internals: timed one by one
from hashcheck.fingerprinting.imaging import DEFAULT_LIMITS, _draft_size, decode

REPO = Path(__file__).resolve().parents[1]
TWO_MP = 2_000_000
JPEG_FORMATS = ("JPEG", "MPO")
METHODS = ("ours", "naive", "decode", "decode_L")


@dataclass
class Sample:
    name: str
    data: bytes
    format: str = ""
    size: tuple[int, int] = (0, 0)
    times: dict[str, list[float]] = field(default_factory=dict)
    problem: str | None = None  # set when `fingerprint` did not hash it as an image
    reference: dict = field(default_factory=dict)  # what `naive` computed: the reference hashes

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


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def timed(fn: Callable[[], object]) -> float:
    start = clock()
    fn()
    return clock() - start


def pin_one_thread(cpu: int | None) -> str:
    """Say how the run is kept on one thread; with `cpu`, also bind the process to that CPU."""
    note = "one thread: OMP/OPENBLAS/MKL_NUM_THREADS=1 (numpy); Pillow decoding and hashlib run on the caller"
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
        note += f"; process bound to CPU {cpu}"
    return note


# ------------------------------------------------------------------------------------------- inputs


def synthetic_photo(width: int, height: int, seed: int) -> Image.Image:
    """Smooth random colour fields at two scales plus luma noise: compresses like a photo."""
    rng = np.random.default_rng(seed)
    out = np.zeros((height, width, 3), dtype=np.float32)
    for cell, weight in ((max(width, height) // 6, 0.7), (48, 0.3)):
        grid = rng.integers(0, 256, (height // cell + 2, width // cell + 2, 3), dtype=np.uint8)
        smooth = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
        out += weight * np.asarray(smooth, dtype=np.float32)
    out += rng.integers(-10, 11, (height, width, 1), dtype=np.int8)
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


# ------------------------------------------------------------------------------------------ methods


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
        "pdq": f"{int(''.join(map(str, bits)), 2):064x}",  # first bit of the vector most significant
        "pdq_quality": int(quality),
        "phash": str(imagehash.phash(rgb)),
    }


def bench(sample: Sample, runs: int) -> None:
    size = draft_size(sample)
    methods: dict[str, Callable[[], object]] = {
        "ours": lambda: fingerprint(sample.data),
        "naive": lambda: naive(sample.data),
        "decode": lambda: bare_decode(sample.data, "RGB", size),
        "decode_L": lambda: bare_decode(sample.data, "L", size),
    }
    for name, fn in methods.items():  # warm-up: imports, caches (PDQ operators, scipy in imagehash)
        result = fn()
        if name == "naive":
            sample.reference = result
    fp = fingerprint(sample.data)
    if fp.status != "image":  # timing a rejection would flatter `ours`: say so loudly
        sample.problem = f"fingerprint gave status={fp.status!r}, error={fp.error!r}"
    sample.times = {name: [] for name in methods}
    for _ in range(runs):  # interleaved, so a slow spell of the machine hits every method alike
        for name, fn in methods.items():
            sample.times[name].append(timed(fn))


def breakdown(sample: Sample, runs: int) -> dict[str, float]:
    """Fastest ms of `fingerprint` and of each of its pieces, timed with the library's internals.

    The pieces run interleaved with the whole call, and each keeps its fastest run rather than the median:
    noise only ever adds time, and on a shared machine medians of pieces this short do not add up.
    """
    data = sample.data
    grey = decode(data).frames[0].grey
    pdq_hash = pdq.compute(np.asarray(grey, dtype=np.float32))
    pixels32 = phash.grey32(grey)

    def exact() -> None:
        digests = [hashlib.md5(), hashlib.sha1(), hashlib.sha256()]
        for chunk in _chunks(data):
            for digest in digests:
                digest.update(chunk)
        [d.hexdigest() for d in digests]

    pieces: dict[str, Callable[[], object]] = {
        "fingerprint": lambda: fingerprint(data),
        "exact": exact,
        "decode": lambda: decode(data),
        "frame": lambda: _frame_hashes(grey, 0),
        "pdq": lambda: pdq.compute(np.asarray(grey, dtype=np.float32)),
        "pdq_dihedral": pdq_hash.dihedral,
        "phash_resize": lambda: phash.grey32(grey),
        "phash_dihedral": lambda: phash.dihedral(pixels32),
    }
    for fn in pieces.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(max(runs, 5)):
        for name, fn in pieces.items():
            times[name].append(timed(fn))
    return {name: min(t) * 1000 for name, t in times.items()}


# ------------------------------------------------------------------------------------------- report


def print_table(samples: list[Sample]) -> None:
    header = (
        f"{'image':<22} {'fmt':<4} {'pixels':>16} {'decoded':>10} {'bytes':>10} {'ours ms':>8} "
        f"{'naive ms':>9} {'decode ms':>9} {'decode_L ms':>11} {'ours/decode':>11} {'naive/ours':>10}"
    )
    print(header)
    print("-" * len(header))
    for s in samples:
        decoded = bare_decode(s.data, "L", draft_size(s)).size
        pixels = f"{s.size[0]}x{s.size[1]} {s.pixels / 1e6:4.1f}MP"
        print(
            f"{s.name:<22} {s.format:<4} {pixels:>16} {f'{decoded[0]}x{decoded[1]}':>10} {len(s.data):>10,} "
            f"{s.ms('ours'):>8.1f} {s.ms('naive'):>9.1f} {s.ms('decode'):>9.1f} {s.ms('decode_L'):>11.1f} "
            f"{s.ms('ours') / s.ms('decode'):>11.2f} {s.ms('naive') / s.ms('ours'):>10.1f}"
        )
        if s.problem:
            print(f"  WARNING: {s.problem}: its `ours` time is not that of a real fingerprint")
            continue
        ours_size = decode(s.data).frames[0].grey.size
        if ours_size not in (decoded, decoded[::-1]):  # EXIF rotation may swap the sides
            print(f"  WARNING: hashcheck decoded {ours_size} pixels, the bare decode {decoded}")
    print(
        f"decoded = pixels the decode produces (JPEG: reduced in the DCT domain, long side kept "
        f">= {DEFAULT_LIMITS.decode_long_side})"
    )


def print_drift(samples: list[Sample]) -> None:
    print("Drift of ours from the references on the FULL RGB decode (pdqhash.compute, imagehash.phash):")
    print(f"{'image':<22} {'PDQ dist /256':>13} {'quality ours/ref':>16} {'pHash dist /64':>14} {'exact':>6}")
    for s in samples:
        if s.problem:
            print(f"{s.name:<22} no perceptual hashes: {s.problem}")
            continue
        fp, ref = fingerprint(s.data), s.reference
        quality = f"{fp.pdq_quality}/{ref['pdq_quality']}"
        exact = "ok" if [fp.md5, fp.sha1, fp.sha256] == ref["exact"] else "DIFF"
        pdq_dist = algorithms.hamming(fp.pdq, ref["pdq"])
        phash_dist = algorithms.hamming(fp.phash, ref["phash"])
        print(f"{s.name:<22} {pdq_dist:>13} {quality:>16} {phash_dist:>14} {exact:>6}")
    thresholds = {name: algorithms.ALGORITHMS[name].threshold for name in ("pdq", "phash")}
    print(f"(near-match thresholds: PDQ <= {thresholds['pdq']}/256, pHash <= {thresholds['phash']}/64)")


def print_breakdown(sample: Sample, runs: int) -> None:
    ms = breakdown(sample, runs)
    whole = ms["fingerprint"]
    in_frame = ms["pdq"] + ms["pdq_dihedral"] + ms["phash_resize"] + ms["phash_dihedral"]
    rows = [
        ("fingerprint(bytes), whole", whole),
        ("exact hashes: md5+sha1+sha256 (hashlib)", ms["exact"]),
        ("decode: open, draft to L, load, EXIF (imaging.decode)", ms["decode"]),
        ("perceptual: PDQ + pHash + variants (_frame_hashes)", ms["frame"]),
        ("  PDQ: to float32, blur+decimate, DCT (pdq.compute)", ms["pdq"]),
        ("  PDQ: 8 dihedral hashes from the DCT (Pdq.dihedral)", ms["pdq_dihedral"]),
        ("  pHash: LANCZOS resize to 32x32 (phash.grey32)", ms["phash_resize"]),
        ("  pHash: DCT + 8 dihedral hashes (phash.dihedral)", ms["phash_dihedral"]),
        ("  rest: NearHash objects", ms["frame"] - in_frame),
        ("other: bookkeeping, dedup, noise", whole - ms["exact"] - ms["decode"] - ms["frame"]),
    ]
    fastest = f"fastest of {max(runs, 5)} runs each"
    print(f"Where `ours` spends its time on the largest JPEG, {sample.name} ({fastest}):")
    for name, value in rows:
        print(f"  {name:<56} {value:7.2f} ms {100 * value / whole:5.1f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="*", help="image files (default: two generated JPEGs)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per method (median reported)")
    parser.add_argument("--cpu", type=int, help="also bind the process to this CPU (sched_setaffinity)")
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="wall time (default), or the process's CPU time: steadier when other work shares the machine",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    global clock
    clock = CLOCKS[args.clock]
    started = time.perf_counter()
    threads = pin_one_thread(args.cpu)
    samples = load_samples(args.images)
    if not any(s.is_jpeg for s in samples):
        parser.error("at least one JPEG is needed")
    print(f"hashcheck fingerprint benchmark: median {args.clock} time of {args.runs} runs after 1 warm-up")
    print(threads)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, Pillow {Image.__version__}")
    print()
    for sample in samples:
        bench(sample, args.runs)
    print_table(samples)
    print()
    print_drift(samples)
    print()
    largest = max((s for s in samples if s.is_jpeg), key=lambda s: (s.pixels, len(s.data)))
    print_breakdown(largest, args.runs)
    if any(s.problem for s in samples):
        print("\nWARNING: some images were not fingerprinted as images (see above)")
    print(f"\ntotal benchmark time {time.perf_counter() - started:.1f} s")
    ours, naive_ms, decode_ms = largest.ms("ours"), largest.ms("naive"), largest.ms("decode")
    ratios = f"ratio_vs_naive={naive_ms / ours:.2f} ratio_vs_decode={ours / decode_ms:.2f}"
    print(f"ms_per_image={ours:.1f} {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
