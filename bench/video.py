"""Video: our vPDQ against Meta's reference `vpdq`, speed and matching of edited copies.

    python bench/video.py [--videos N] [--seconds S] [--size WxH] [--long MINUTES]

Generates N benign videos (slow pans over generated pictures, a new picture every 4 seconds; H.264,
25 fps) and, of each, edited copies a re-uploader makes: re-encoded at a low quality, resized to half,
brightened, mirrored, letterboxed (black bars above and below), the first 60% only. Each video is
hashed with ours (`hashcheck.fingerprinting.video.vpdq_features`, PyAV + our PDQ) and, when it is
installed, with the reference (`vpdq.computeHash`, Meta's C++; it builds from source once FFmpeg's
development packages are installed: apt-get install libavcodec-dev libavformat-dev libavutil-dev
libswscale-dev libavdevice-dev libavfilter-dev pkg-config, then pip install vpdq).

Prints, per edit, whether our rule (`hashcheck.matching.videomatch`, defaults) matches the copy to its
listed original, with the frames' variants (mirrored, inside bars) and without them ("plain"), and
whether the same rule on the reference's hashes does; false matches between
unrelated videos; the share of sampled frames whose hash is within 10 bits of the reference's (same
frames); seconds of hashing per minute of video, ours and the reference's, one core. Then the scan
path (`fingerprint`: the vPDQ plus every scene fingerprinted as a picture): its CPU seconds per
video-minute, and whether a listed photo shown for 3 s in a 15 s clip is a match naming its time
range. `--long M` also fingerprints one generated M-minute 720p video as FingerprintFunction would
(wall and CPU seconds, scenes, the gzipped answer's size, peak memory; generating 10 minutes takes
about 10 minutes).
Last line: `video_s_per_minute=… ratio_vs_reference=… frames_within_10_bits=… recall=… false_matches=…`
(the reference's figures `nan` when it is not installed).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

from hashcheck.algorithms import hamming  # noqa: E402
from hashcheck.fingerprinting.fingerprint import fingerprint  # noqa: E402
from hashcheck.fingerprinting.video import vpdq_features  # noqa: E402
from hashcheck.fingerprinting.vpdq import Feature  # noqa: E402
from hashcheck.jobs.reader import _pack  # noqa: E402
from hashcheck.lists.build import references_for  # noqa: E402
from hashcheck.matching.matcher import match  # noqa: E402
from hashcheck.matching.stores.memory import MemoryStore  # noqa: E402
from hashcheck.matching.videomatch import compare  # noqa: E402
from hashcheck.tools import samples  # noqa: E402


def letterboxed(frame: Image.Image) -> Image.Image:
    w, h = frame.size
    canvas = Image.new("RGB", (w, h))
    canvas.paste(frame.resize((w, h * 3 // 4)), (0, h // 8))
    return canvas


EDITS = {
    "re-encoded crf 38": {"crf": 38},
    "half size": {"size": "half"},
    "brighter": {"edit": lambda im: ImageEnhance.Brightness(im).enhance(1.2)},
    "mirrored": {"edit": ImageOps.mirror},
    "letterboxed": {"edit": letterboxed},
    "first 60%": {"fraction": 0.6},
}


def make(seconds: float, seed: int, size: tuple[int, int], edit: dict | None = None) -> bytes:
    edit = dict(edit or {})
    if edit.pop("size", None) == "half":
        size = (size[0] // 2 // 2 * 2, size[1] // 2 // 2 * 2)
    seconds *= edit.pop("fraction", 1.0)
    return samples.video(seconds, seed=seed, size=size, **edit)


def reference():
    try:
        import vpdq
    except ImportError:
        return None
    return vpdq


def reference_features(vpdq, data: bytes) -> list[Feature]:
    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        file.write(data)
        file.flush()
        return [Feature(f.hex, f.quality, f.timestamp) for f in vpdq.computeHash(file.name, seconds_per_hash=1.0)]


def timed(function, *args):
    started = time.process_time()
    out = function(*args)
    return out, time.process_time() - started


def scan_path(listed: dict[int, bytes], seconds: float, size: tuple[int, int]) -> None:
    """The scan path's cost per video-minute, and a listed photo shown for 3 s found by its scenes."""
    cpu = sum(timed(fingerprint, io.BytesIO(data))[1] for data in listed.values())
    per_minute = cpu / (len(listed) * seconds / 60)
    print(f"\nscan path (vPDQ + scenes fingerprinted as pictures): {per_minute:.2f} CPU s per video-minute")
    photo = samples.picture(501)
    images = MemoryStore(
        r for r in references_for(fingerprint(samples.jpeg(photo)), "l", "photo") if r.algorithm in ("pdq", "phash")
    )
    clip = samples.video(15, size=size, show=(photo, 6.0, 9.0))
    result = match(fingerprint(io.BytesIO(clip)), images)
    print(
        f"a listed photo shown 6-9 s in a 15 s clip: {result.verdict}, at {sorted({m.member for m in result.matches})}"
    )


def long_video(minutes: float) -> None:
    """One long 720p video fingerprinted whole, as FingerprintFunction reads it (a stream, spooled)."""
    import resource

    started = time.perf_counter()
    data = samples.video(minutes * 60, size=(1280, 720), crf=23)
    print(f"\n{minutes:g} min of 720p generated in {time.perf_counter() - started:.0f} s ({len(data) / 1e6:.1f} MB)")
    wall, cpu = time.perf_counter(), time.process_time()
    fp = fingerprint(io.BytesIO(data))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"fingerprinted: {fp.status}{' (partial: ' + str(fp.error) + ')' if fp.partial else ''}, {fp.frames} frames "
        f"sampled, {len(fp.members)} scenes; {wall:.1f} s wall, {cpu:.1f} s CPU; answer {len(_pack(fp)) / 1e6:.2f} MB "
        f"gzipped; peak memory {peak:.0f} MB (the whole process)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--long", type=float, default=0.0, help="minutes of 720p video to fingerprint whole")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    vpdq = reference()
    seeds = [100 + 10 * n for n in range(args.videos)]
    listed = {seed: make(args.seconds, seed, size) for seed in seeds}

    ours_s = ref_s = 0.0
    within = compared = 0
    ours_of, ref_of = {}, {}
    for seed, data in listed.items():
        ours_of[seed], seconds = timed(vpdq_features, io.BytesIO(data))
        ours_s += seconds
        if vpdq:
            ref_of[seed], seconds = timed(reference_features, vpdq, data)
            ref_s += seconds
            pairs = list(zip(ours_of[seed], ref_of[seed], strict=False))
            within += sum(hamming(a.pdq, b.pdq) <= 10 for a, b in pairs)
            compared += len(pairs)

    print(f"{len(seeds)} listed videos of {args.seconds:g} s at {size[0]}x{size[1]}, 25 fps; reference: {bool(vpdq)}\n")
    print(f"{'edit':<20}{'ours':>8}{'ours plain':>12}{'reference':>11}")
    hits = total = ref_hits = 0
    missed_where_reference_matched = 0
    for name, edit in EDITS.items():
        ours_row = ref_row = plain_row = 0
        for seed in seeds:
            copy = make(args.seconds, seed, size, edit)
            features = vpdq_features(io.BytesIO(copy))
            ours = compare(features, ours_of[seed]) is not None
            ours_row += ours
            plain_row += compare([Feature(f.pdq, f.quality, f.timestamp) for f in features], ours_of[seed]) is not None
            if vpdq:
                theirs = compare(reference_features(vpdq, copy), ref_of[seed]) is not None
                ref_row += theirs
                missed_where_reference_matched += theirs and not ours
        hits, total, ref_hits = hits + ours_row, total + len(seeds), ref_hits + ref_row
        ref_text = f"{ref_row}/{len(seeds)}" if vpdq else "-"
        print(f"{name:<20}{f'{ours_row}/{len(seeds)}':>8}{f'{plain_row}/{len(seeds)}':>12}{ref_text:>11}")

    scan_path(listed, args.seconds, size)
    if args.long:
        long_video(args.long)

    false = sum(compare(ours_of[a], ours_of[b]) is not None for a in seeds for b in seeds if a != b)
    minutes = len(seeds) * args.seconds / 60
    ours_rate = ours_s / minutes
    ref_rate = ref_s / minutes if vpdq else float("nan")
    share = within / compared if compared else float("nan")
    print(f"\nfalse matches between unrelated videos: {false} of {len(seeds) * (len(seeds) - 1)} pairs")
    print(f"edited copies the reference matched and we did not: {missed_where_reference_matched}")
    print(f"frames within 10 bits of the reference's: {share:.3f} ({within}/{compared})")
    print(f"hashing, CPU seconds per video-minute: ours {ours_rate:.2f}, reference {ref_rate:.2f}")
    print(
        f"video_s_per_minute={ours_rate:.2f} ratio_vs_reference={ref_rate / ours_rate:.2f} "
        f"frames_within_10_bits={share:.3f} recall={hits / total:.3f} false_matches={false}"
    )


if __name__ == "__main__":
    main()
