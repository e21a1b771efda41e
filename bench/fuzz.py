"""Fuzz the fingerprint path: every hostile input must get a status, in bounded time and memory.

    python bench/fuzz.py [--cases N] [--seed S] [--timeout SEC] [--max-rss-mb MB] [--save DIR]
                         [--target images|videos]

`--target videos` fuzzes videos through the same path: seeds are small benign videos (MP4/H.264, MKV,
WebM/VP9, AVI/MPEG-4, MPEG-TS, MOV/MJPEG); "image" counts videos hashed (status `video`), "unscan"
videos rejected or read only in part, with a reason.

Inputs are generated deterministically from (seed, case number), so a crash is reproduced by its
number alone (`--only K`). Families: mutations (bit flips, interesting integers in the header,
truncation, insertion, deletion, duplicated and spliced ranges) of benign generated JPEG (baseline,
progressive, EXIF), PNG (RGB, palette, 16-bit, interlaced), GIF (animated), WebP (still, animated),
TIFF, BMP, HEIC and AVIF (ftyp boxes) and of containers holding them (ZIP, nested ZIP, stored ZIP,
tar.gz, tar.xz, gzip, bzip2, 7z) and documents (PDF with image XObjects or an inline image, HTML with a
data: URI), plus crafted inputs: huge declared dimensions, zlib bombs that fit the
declared-size check, endless animations, zip bombs, too deep nesting, too many entries, truncated
streams and signature + random tail.

Each case runs `hashcheck.fingerprinting.fingerprint.fingerprint` in a child process (a segfault or an abort is
caught and recorded as a crash with its case number, then the run resumes), checked for:
  - no exception escapes; status is image / not_image / unscannable / opaque; a rejection says why;
  - the exact hashes are hashlib's over the input bytes;
  - wall time under --timeout (a SIGALRM stops a hung decode; recorded as a crash);
  - peak RSS growth (ru_maxrss over the child's warmed-up baseline) under --max-rss-mb.
Prints a table per family and, last, `cases=… crashes=0 max_ms=… peak_mb=…`.
"""

from __future__ import annotations

import argparse
import base64
import bz2
import gzip
import hashlib
import io
import json
import os
import random
import resource
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from hashcheck.tools.wrappers import pdf_inline, sevenzipped, tarred, zipped  # noqa: E402

STATUSES = ("image", "video", "not_image", "unscannable", "opaque")
TARGET = "images"  # or "videos": mutated videos as seeds
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)

# --- seeds: small benign generated pictures --------------------------------------------------------


def _scene(width: int = 64, height: int = 48, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.dstack([(x * 4 + seed) % 256, (y * 5) % 256, ((x + y) * 3) % 256]).astype(np.uint8)
    image = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        draw.ellipse((x0, y0, x0 + 12, y0 + 9), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _frames(count: int) -> list[Image.Image]:
    return [_scene(32, 24, seed=i) for i in range(count)]


def seeds() -> dict[str, bytes]:
    """Benign seed files per format family (formats this Pillow cannot write are left out)."""
    scene = _scene()
    exif = Image.Exif()
    exif[0x0112] = 6
    grey16 = Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16))
    out = {
        "jpeg": _save(scene, "JPEG", quality=85),
        "jpeg-progressive": _save(scene, "JPEG", quality=80, progressive=True),
        "jpeg-exif": _save(scene, "JPEG", quality=80, exif=exif),
        "png": _save(scene, "PNG"),
        "png-palette": _save(scene.convert("P"), "PNG"),
        "png-16bit": _save(grey16, "PNG"),
        "png-interlaced": _save(scene, "PNG", interlace=1),
        "gif-animated": _save(_frames(1)[0], "GIF", save_all=True, append_images=_frames(4)[1:], loop=0),
        "webp": _save(scene, "WEBP", quality=70),
        "webp-animated": _save(_frames(1)[0], "WEBP", save_all=True, append_images=_frames(3)[1:]),
        "tiff": _save(scene, "TIFF"),
        "tiff-deflate": _save(scene, "TIFF", compression="tiff_adobe_deflate"),
        "bmp": _save(scene, "BMP"),
    }
    # containers: what is inside is fingerprinted too, within the container limits
    out["zip"] = zipped({"a.jpg": out["jpeg"], "b.png": out["png"], "c.txt": b"notes\n" * 40})
    out["zip-nested"] = zipped({"inner.zip": zipped({"a.jpg": out["jpeg"]}), "b.gif": out["gif-animated"]})
    out["zip-stored"] = zipped({"a.jpg": out["jpeg"]}, zipfile.ZIP_STORED)
    out["tar.gz"] = tarred({"a.jpg": out["jpeg"], "b.webp": out["webp"]}, "w:gz")
    out["tar.xz"] = tarred({"a.png": out["png"]}, "w:xz")
    out["gz"] = gzip.compress(out["jpeg"])
    out["bz2"] = bz2.compress(out["png"])
    out["pdf"] = _save(scene, "PDF")  # a page showing a JPEG stream
    out["pdf-deflate"] = _save(scene.convert("L"), "PDF")
    out["pdf-inline"] = pdf_inline(scene)
    out["7z"] = sevenzipped({"a.jpg": out["jpeg"], "b.png": out["png"], "c.txt": b"notes\n" * 40})
    out["html"] = b"<!DOCTYPE html><img src='data:image/png;base64," + base64.b64encode(out["png"]) + b"'>"
    for name, fmt in (("heic", "HEIF"), ("avif", "AVIF")):
        try:
            out[name] = _save(scene, fmt, quality=60)
        except Exception:  # no encoder in this build: a hand-made ftyp box still exercises the path
            out[name] = _ftyp(b"heic" if name == "heic" else b"avif")
    return out


def _ftyp(brand: bytes) -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftyp" + brand + struct.pack(">I", 0) + b"mif1" + brand
    meta = struct.pack(">I", 40) + b"meta" + bytes(4) + struct.pack(">I", 28) + b"hdlr" + bytes(8) + b"pict" + bytes(8)
    return ftyp + meta + struct.pack(">I", 16) + b"mdat" + bytes(8)


# --- crafted headers -----------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, idat: bytes = b"", bit_depth: int = 8, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr) + (_png_chunk(b"IDAT", idat) if idat else b"")
    return b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b"")


def png_bomb(side: int) -> bytes:
    """A grey PNG of side x side zero pixels: kilobytes on disk, side^2 bytes decoded."""
    raw = zlib.compressobj(9)
    row = bytes(side + 1)
    data = b"".join(raw.compress(row) for _ in range(side)) + raw.flush()
    return png_declaring(side, side, data)


def jpeg_declaring(base: bytes, width: int, height: int) -> bytes:
    data = bytearray(base)
    i = 2
    while i + 9 < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
            break
        i += 2 + length
    return bytes(data)


def gif_endless(count: int, side: int = 8) -> bytes:
    """An animated GIF of `count` 1x1-pixel frames, built by hand (cheap to make, costly to seek)."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for i in range(count):
        pixel = i % 2
        out += b"\x21\xf9\x04\x04\x00\x00\x00\x00"
        out += b"\x2c" + struct.pack("<HHHHB", i % side, (i // side) % side, 1, 1, 0)
        out += b"\x02\x02" + bytes([0x44 | pixel << 3, 0x01]) + b"\x00"
    return bytes(out + b"\x3b")


def gif_declaring(width: int, height: int) -> bytes:
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0, 0, 0)
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00\x3b"
    )


def bmp_declaring(width: int, height: int, bpp: int = 24) -> bytes:
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 54) + header + bytes(64)


def tiff_declaring(width: int, height: int) -> bytes:
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (273, 4, 1, 8 + 2 + 12 * 8 + 4),
        (277, 3, 1, 1),
        (279, 4, 1, 16),
        (278, 4, 1, height),
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + bytes(4)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + bytes(16)


def webp_declaring(width: int, height: int) -> bytes:
    vp8x = struct.pack("<B3x", 0) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def crafted(base: dict[str, bytes]) -> dict[str, bytes]:
    """Hand-made hostile headers, each a fixed input."""
    return {
        "png-60000x60000": png_declaring(60000, 60000),
        "png-2^31x1": png_declaring(2**31 - 1, 1),
        "png-0x0": png_declaring(0, 0),
        "png-bomb-7000": png_bomb(7000),  # 49 MP: just under max_pixels, decodes within the limits
        "png-bomb-8000": png_bomb(8000),  # 64 MP: over max_pixels
        "png-16bit-rgba-huge": png_declaring(20000, 20000, bit_depth=16, colour=6),
        "jpeg-65535x65535": jpeg_declaring(base["jpeg"], 65535, 65535),
        "jpeg-progressive-20000x20000": jpeg_declaring(base["jpeg-progressive"], 20000, 20000),
        "jpeg-0x0": jpeg_declaring(base["jpeg"], 0, 0),
        "gif-65535x65535": gif_declaring(65535, 65535),
        "gif-5000-frames": gif_endless(5000),
        "gif-50000-frames": gif_endless(50000),
        "bmp-huge": bmp_declaring(100000, 100000),
        "bmp-negative": bmp_declaring(-5, -(2**31)),
        "bmp-32bpp-huge": bmp_declaring(30000, -30000, 32),
        "tiff-huge": tiff_declaring(100000, 100000),
        "webp-16383x16383": webp_declaring(16384, 16384),
        "heic-ftyp-only": _ftyp(b"heic"),
        "avif-ftyp-only": _ftyp(b"avif"),
        "empty": b"",
        "zip-bomb": zipped({"zeros.bin": bytes(64 * 1024 * 1024)}),  # 64 MB of zeros in ~64 KB
        "zip-nested-6": _nestedzipped(6),
        "zip-10001-entries": zipped({f"{i}.txt": b"" for i in range(10_001)}),
        "gz-of-zeros": gzip.compress(bytes(256 * 1024 * 1024)),
    }


def _nestedzipped(depth: int) -> bytes:
    data = b"deep\n"
    for level in range(depth):
        data = zipped({f"level{level}": data})
    return data


# --- mutations -----------------------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random, donors: list[bytes]) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        size = len(out)
        pos = rng.randrange(0, 64) if rng.random() < 0.5 or size == 0 else rng.randrange(0, max(size, 1))
        kind = rng.choice(("flip", "set", "int", "truncate", "insert", "delete", "dup", "splice"))
        if kind == "flip" and pos < size:
            out[pos] ^= 1 << rng.randrange(8)
        elif kind == "set" and pos < size:
            out[pos] = rng.choice((0x00, 0x7F, 0x80, 0xFF))
        elif kind == "int" and pos + 4 <= size:
            value = rng.choice(INTERESTING)
            width, order = rng.choice((2, 4)), rng.choice(("big", "little"))
            out[pos : pos + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, order)
        elif kind == "truncate":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = rng.randbytes(rng.randint(1, 64))
        elif kind == "delete":
            del out[pos : pos + rng.randint(1, 64)]
        elif kind == "dup" and size:
            start = rng.randrange(size)
            out[pos:pos] = out[start : start + rng.randint(1, 256)]
        elif kind == "splice":
            donor = rng.choice(donors)
            if donor:
                start = rng.randrange(len(donor))
                out[pos : pos + rng.randint(0, 128)] = donor[start : start + rng.randint(1, 512)]
    return bytes(out)


class Corpus:
    """Case k -> (family, bytes), deterministic in (seed, k)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.seeds = seeds() if TARGET == "images" else video_seeds()
        self.crafted = crafted(self.seeds) if TARGET == "images" else {}
        self.crafted_names = sorted(self.crafted)
        self.seed_names = sorted(self.seeds)

    def case(self, k: int) -> tuple[str, bytes]:
        if k < len(self.crafted_names):  # every crafted header once, first
            name = self.crafted_names[k]
            return f"crafted:{name}", self.crafted[name]
        rng = random.Random(self.seed * 1_000_003 + k)
        roll = rng.random()
        if roll < 0.04 and self.crafted_names:
            name = rng.choice(self.crafted_names)
            return f"crafted-mut:{name.split('-')[0]}", mutate(self.crafted[name], rng, list(self.seeds.values()))
        if roll < 0.10:
            base = self.seeds[rng.choice(self.seed_names)]
            return "truncated", base[: rng.randrange(0, len(base))]
        if roll < 0.14:
            prefix = rng.choice(
                (
                    b"\xff\xd8\xff",
                    b"\x89PNG\r\n\x1a\n",
                    b"GIF89a",
                    b"BM",
                    b"II*\x00",
                    b"MM\x00*",
                    b"RIFF\x00\x00\x00\x00WEBP",
                )
            )
            return "signature+random", prefix + rng.randbytes(rng.randint(0, 2048))
        name = rng.choice(self.seed_names)
        return f"mutated:{name}", mutate(self.seeds[name], rng, list(self.seeds.values()))


# --- one case ------------------------------------------------------------------------------------


class Hung(BaseException):
    """Raised by SIGALRM; a BaseException so that no `except Exception` in the code under test eats it."""


def _alarm(*_):
    raise Hung()


def check_case(data: bytes, fp) -> str | None:
    """What is wrong with this fingerprint of `data`, or None."""
    if fp.status not in STATUSES:
        return f"bad status {fp.status!r}"
    if (fp.size, fp.md5, fp.sha1, fp.sha256) != (
        len(data),
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    ):
        return "exact hashes differ from hashlib's"
    if fp.status == "image":
        if not (fp.pdq and len(fp.pdq) == 64 and fp.phash and len(fp.phash) == 16 and fp.near):
            return "image without perceptual hashes"
    elif fp.status == "video":
        if fp.frames != len(fp.video) or any(not m.fingerprint.near for m in fp.members):
            return "video whose frames or scenes lack hashes"
        if fp.partial != bool(fp.error):
            return "video read in part without a reason, or with one when whole"
    elif not (fp.error and fp.pdq is None and fp.phash is None):
        return "rejection without a reason, or with hashes"
    return None


def video_seeds() -> dict[str, bytes]:
    """Small benign videos in the containers and codecs uploads come in (those this PyAV can write)."""
    import av

    out = {}
    for name, (fmt, codec) in {
        "mp4": ("mp4", "libx264"),
        "mkv": ("matroska", "libx264"),
        "webm": ("webm", "libvpx-vp9"),
        "avi": ("avi", "mpeg4"),
        "ts": ("mpegts", "mpeg2video"),
        "mov": ("mov", "mjpeg"),
    }.items():
        data = io.BytesIO()
        try:
            with av.open(data, "w", format=fmt) as container:
                stream = container.add_stream(codec, rate=10)
                stream.width, stream.height = 96, 64
                stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
                for i in range(20):
                    frame = av.VideoFrame.from_image(_scene(96, 64, seed=i // 8))
                    container.mux(stream.encode(frame))
                container.mux(stream.encode())
        except Exception:  # noqa: BLE001 - an encoder this build lacks: that seed is left out
            continue
        out[name] = data.getvalue()
    return out


def run_one(data: bytes, timeout: float) -> dict:
    from hashcheck.fingerprinting.fingerprint import fingerprint

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    signal.setitimer(signal.ITIMER_REAL, timeout)
    started = time.perf_counter()
    try:
        fp = fingerprint(data)
        problem = check_case(data, fp)
        status, error = ("unscannable" if fp.status == "video" and fp.partial else fp.status), fp.error
    except Hung:
        status, error, problem = "hung", None, f"no outcome within {timeout} s"
    except BaseException as exc:  # noqa: BLE001 - anything escaping is the finding
        status, error, problem = "exception", None, f"{type(exc).__name__}: {exc}"[:300]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    ms = (time.perf_counter() - started) * 1000
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {"status": status, "error": (error or "")[:80], "ms": round(ms, 2), "rss_kb": grown_kb, "problem": problem}


def worker(args) -> None:
    """Child: run cases [start, end), one JSON line before ("start") and after ("done") each."""
    from hashcheck.fingerprinting.fingerprint import fingerprint

    signal.signal(signal.SIGALRM, _alarm)
    corpus = Corpus(args.seed)
    for warm in corpus.seeds.values():  # load decoders and numpy before measuring the baseline
        fingerprint(warm)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"baseline_kb": baseline}), flush=True)
    for k in range(args.start, args.end):
        family, data = corpus.case(k)
        print(json.dumps({"start": k}), flush=True)
        result = run_one(data, args.timeout)
        result.update(case=k, family=family, size=len(data), peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        print(json.dumps({"done": result}), flush=True)


def supervise(args) -> list[dict]:
    """Run the cases in child processes; a child that dies names its case as a crash; resume after it."""
    results: list[dict] = []
    k, baseline = args.start, None
    while k < args.end:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            "--seed",
            str(args.seed),
            "--start",
            str(k),
            "--end",
            str(args.end),
            "--timeout",
            str(args.timeout),
            "--target",
            TARGET,
        ]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        current = None
        for line in child.stdout:
            message = json.loads(line)
            if "baseline_kb" in message:
                baseline = message["baseline_kb"] if baseline is None else min(baseline, message["baseline_kb"])
            elif "start" in message:
                current = message["start"]
            else:
                done = message["done"]
                done["peak_mb"] = max(0.0, (done.pop("peak_kb") - (baseline or 0)) / 1024)
                if done["rss_kb"] / 1024 > args.max_rss_mb and not done["problem"]:
                    done["problem"] = f"RSS grew {done['rss_kb'] / 1024:.0f} MB"
                results.append(done)
                current = None
                k = done["case"] + 1
                if len(results) % 1000 == 0:
                    print(f"  ... {len(results)} cases", file=sys.stderr, flush=True)
        code = child.wait()
        if current is not None:  # the child died inside a case: a crash (segfault, abort, OOM kill)
            family, data = Corpus(args.seed).case(current)
            results.append(
                {
                    "case": current,
                    "family": family,
                    "size": len(data),
                    "status": "died",
                    "error": "",
                    "ms": 0.0,
                    "rss_kb": 0,
                    "peak_mb": 0.0,
                    "problem": f"process died (exit {code})",
                }
            )
            k = current + 1
        elif code != 0 and k < args.end:
            raise SystemExit(f"worker failed outside a case (exit {code})")
    return results


def report(results: list[dict], save: Path | None, seed: int) -> int:
    families: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        families[r["family"].split(":")[0] + ":" + r["family"].split(":")[-1].split("-")[0]].append(r)
    print(
        f"{'family':34} {'cases':>6} {'image':>6} {'not_img':>7} {'unscan':>6} {'crash':>5} {'p99_ms':>7} {'max_ms':>8}"
    )
    for name in sorted(families):
        rows = families[name]
        ms = sorted(r["ms"] for r in rows)
        count = defaultdict(int)
        for r in rows:
            count["image" if r["status"] == "video" else r["status"]] += 1
        crashes = sum(1 for r in rows if r["problem"])
        print(
            f"{name:34} {len(rows):6d} {count['image']:6d} {count['not_image']:7d} {count['unscannable']:6d} "
            f"{crashes:5d} {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:7.1f} {ms[-1]:8.1f}"
        )
    slowest = sorted(results, key=lambda r: -r["ms"])[:5]
    print("slowest:", ", ".join(f"#{r['case']} {r['family']} {r['ms']:.0f} ms ({r['status']})" for r in slowest))
    crashes = [r for r in results if r["problem"]]
    for r in crashes:
        print(f"CRASH case {r['case']} ({r['family']}, {r['size']} bytes): {r['problem']}")
        if save:
            save.mkdir(parents=True, exist_ok=True)
            (save / f"seed{seed}-case{r['case']}.bin").write_bytes(Corpus(seed).case(r["case"])[1])
    max_ms = max((r["ms"] for r in results), default=0.0)
    peak = max((r["peak_mb"] for r in results), default=0.0)
    print(f"cases={len(results)} crashes={len(crashes)} max_ms={max_ms:.0f} peak_mb={peak:.0f}")
    return 1 if crashes else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as hung")
    parser.add_argument("--max-rss-mb", type=float, default=1024.0, help="RSS growth of one case that is a finding")
    parser.add_argument("--save", type=Path, default=None, help="write crashing inputs here")
    parser.add_argument("--only", type=int, default=None, help="run just case K")
    parser.add_argument("--target", choices=("images", "videos"), default="images", help="what to fuzz")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--end", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global TARGET
    TARGET = args.target
    if args.only is not None:
        args.start, args.end = args.only, args.only + 1
    elif args.end is None:
        args.end = args.start + args.cases
    if args.worker:
        worker(args)
        return 0
    started = time.perf_counter()
    results = supervise(args)
    print(f"{len(results)} cases in {time.perf_counter() - started:.0f} s (seed {args.seed})")
    return report(results, args.save, args.seed)


if __name__ == "__main__":
    sys.exit(main())
