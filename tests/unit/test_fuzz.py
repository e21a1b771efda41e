"""A fast subset of bench/fuzz.py (which runs 10,000+ cases), plus regression tests for what it found.

Every input, however hostile, gets a status (image / not_image / unscannable), the exact hashes of its
bytes, a reason when rejected, and finishes in bounded time and memory. The bench generates its cases
deterministically from (seed, case number): a crash there is reproduced here by its number.
"""

from __future__ import annotations

import importlib.util
import io
import time
import tracemalloc
from pathlib import Path

import pytest
from PIL import Image

from hashcheck.fingerprinting.fingerprint import fingerprint

_spec = importlib.util.spec_from_file_location(
    "hashcheck_bench_fuzz", Path(__file__).resolve().parents[2] / "bench" / "fuzz.py"
)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

CORPUS = fuzz.Corpus(seed=0)
SUBSET = 400  # every crafted header, then mutated seeds of every format: a few seconds on 2 shared cores
SLOW_MS = 5_000  # generous: the machine is shared; a hang is caught by the bench's 20 s alarm


CONTAINER_SEEDS = {
    "zip",
    "zip-nested",
    "zip-stored",
    "tar.gz",
    "tar.xz",
    "gz",
    "bz2",
    "pdf",
    "pdf-deflate",
    "pdf-inline",
    "7z",
    "html",
}


def test_every_seed_format_decodes_as_an_image():
    """The mutations start from real images of every family (a seed that fails to decode fuzzes nothing),
    and from containers whose pictures all decode."""
    for name, data in CORPUS.seeds.items():
        fp = fingerprint(data)
        if name in CONTAINER_SEEDS:
            assert fp.status == "not_image" and fp.members, name
            assert all(m.fingerprint.status in ("image", "not_image") for m in fp.members), name
            assert any(m.fingerprint.status == "image" for m in fp.members), name
        else:
            assert fp.status == "image", (name, fp.error)


@pytest.mark.parametrize("name", sorted(CORPUS.crafted))
def test_crafted_headers_get_an_outcome_quickly(name):
    data = CORPUS.crafted[name]
    started = time.perf_counter()
    fp = fingerprint(data)
    assert fuzz.check_case(data, fp) is None, (fp.status, fp.error)
    assert (time.perf_counter() - started) * 1000 < SLOW_MS
    if "huge" in name or "65535" in name or "60000" in name or "2^31" in name or "20000" in name:
        assert fp.status == "unscannable", (name, fp.error)


def test_fast_subset_of_the_fuzz_corpus():
    problems, slowest = [], 0.0
    for k in range(SUBSET):
        family, data = CORPUS.case(k)
        started = time.perf_counter()
        try:
            fp = fingerprint(data)
        except Exception as exc:  # noqa: BLE001 - the finding
            problems.append((k, family, repr(exc)))
            continue
        slowest = max(slowest, (time.perf_counter() - started) * 1000)
        problem = fuzz.check_case(data, fp)
        if problem:
            problems.append((k, family, problem))
    assert problems == []
    assert slowest < SLOW_MS


def test_mutations_are_deterministic_so_a_case_number_reproduces_a_crash():
    assert fuzz.Corpus(seed=0).case(1234) == CORPUS.case(1234)
    assert fuzz.Corpus(seed=1).case(1234) != CORPUS.case(1234)


def _flat_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height)).save(out, "PNG")
    return out.getvalue()


def test_an_extreme_aspect_ratio_costs_no_more_memory_than_a_square_image():
    """Found by bench/fuzz.py (an animated WebP mutated to a 524320x24 canvas): PDQ's downsampling
    operator is built dense over the whole long side. 150000x24 (3.6 MP) already peaks at ~480 MB of
    numpy temporaries where a square 3.6 MP image needs ~10 MB; in a 2 GB Lambda the 524320-wide one
    kills the process on every attempt, so the object is never tagged at all (not even `error`)."""
    data = _flat_png(150_000, 24)  # 3.5 KB
    tracemalloc.start()
    try:
        fp = fingerprint(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fp.status in ("image", "unscannable")
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.0f} MB of traced allocations"


def _video_corpus():
    target, fuzz.TARGET = fuzz.TARGET, "videos"
    try:
        return fuzz.Corpus(seed=0)
    finally:
        fuzz.TARGET = target


# Videos the fuzzer damaged midway: the reason was formatted from a Fraction and raised instead
VIDEO_FINDINGS = (9356, 9389, 9454, 9485, 9494, 9516, 9654)


def test_videos_damaged_midway_get_a_reason_not_an_exception():
    corpus = _video_corpus()
    for k in (*VIDEO_FINDINGS, *range(40)):
        family, data = corpus.case(k)
        fp = fingerprint(data)
        assert fuzz.check_case(data, fp) is None, (k, family, fp.status, fp.error)
