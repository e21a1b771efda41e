"""Scale: the reference index at 1.4M / 10M / 50M references, and the re-match over millions of stored objects.

    python bench/scale.py [--sizes 1.4,10] [--stored 1,10] [--new 1000] [--queries 300]

**Reference index** (what a scan function loads at cold start), per size: random PDQ references with
planted near duplicates (`bench/match.py`'s workload), and two snapshot formats:

- *arrays*: the index's arrays as held in memory (`HammingIndex.to_bytes`, ~112 bytes per reference);
  loading is a download, a SHA-256 and a CRC32 over the bytes, and zero-copy views (`from_bytes`);
- *hashes*: the 32-byte hashes only; loading is a download, a SHA-256, and building the tables.

The download is modelled from the bytes (a Lambda function cannot be measured here): at
`SINGLE_STREAM_MBPS`, one GetObject stream (a published measurement of a 1 GB object read by a Lambda
function: 16.5 s), and at `PARALLEL_MBPS`, the loader's parallel 16 MB ranged GETs (S3's performance
guide recommends 8-16 MB byte ranges on concurrent connections; we assume 4 streams' worth, a share a
1-2 vCPU function's network reaches; scale the figure for your own measurement). Then the query time:
median and p99 wall-clock per query (8 variants, one planted within 31 bits: recall must be 1.0), and
the bytes per reference in memory.

**Re-match over stored objects** (`hashcheck.matching.stored`): N million stored photos, each with the
rows a real photo's record gives the stored index (`ROWS_PER_OBJECT`: 12 PDQ and 12 pHash variants,
3 exact hashes), written as segments of `SEGMENT_OBJECTS` objects to an S3 bucket (moto, in process),
then one worker re-matches `--new` new references (PDQ, pHash and SHA-256, some planted on stored
objects) shard by shard: seconds (download modelled as above, compute measured), peak memory of the
search (tracemalloc, numpy's allocations included), and whether every planted object was found. The
projection to 1 billion stored objects: shards, workers of a Distributed Map, wall time and cost
(Lambda arm64 GB-seconds and requests, S3 GETs: docs/prices.json).

Last line:
`load_s_10m=… query_ms_10m=… rematch_s_per_10m_stored=… rematch_peak_mb_ratio_10x=… usd_per_rematch_1b=…`
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: one thread, as in a function

import argparse  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
sys.path.insert(0, str(ROOT / "bench"))
from match import make_workload, timed  # noqa: E402

from hashcheck import aws  # noqa: E402
from hashcheck.algorithms import ALGORITHMS  # noqa: E402
from hashcheck.matching.index import HammingIndex  # noqa: E402
from hashcheck.matching.stored import SEGMENT_BYTES, StoredIndex, Wanted  # noqa: E402
from hashcheck.tools import sandbox  # noqa: E402

SINGLE_STREAM_MBPS = 62.0  # 1,024 MB in 16.5 s, one stream into a Lambda function
PARALLEL_MBPS = 250.0  # the loader's concurrent ranged GETs (assumed; see the docstring)


def seconds(function, *args):
    started = time.perf_counter()
    out = function(*args)
    return out, time.perf_counter() - started


def reference_index(n: int, queries: int, seed: int) -> dict:
    """Build, snapshot sizes, cold load per format, and query times at n PDQ references."""
    work = make_workload("pdq", n, queries, seed)
    index, build_s = seconds(HammingIndex, work.refs)
    data = index.to_bytes()
    _, sha_arrays = seconds(lambda b: hashlib.sha256(b).digest(), data)
    _, views_s = seconds(lambda b: HammingIndex.from_bytes(b, check=True), data)
    hashes = work.refs.tobytes()
    _, sha_hashes = seconds(lambda b: hashlib.sha256(b).digest(), hashes)
    del data
    gc.collect()
    timing, results = timed(lambda q: index.search(q, work.threshold), work.queries)
    found = sum(any(row == r and ref == f for r, f, _ in results[i]) for i, row, ref, _ in work.planted)
    return {
        "n": n,
        "build_s": build_s,
        "bytes_per_ref": index.memory_bytes / n,
        "formats": {
            "arrays": {"bytes": index.memory_bytes + 64, "verify_s": sha_arrays + views_s},
            "hashes": {"bytes": len(hashes), "verify_s": sha_hashes + build_s},
        },
        "query_ms_median": timing.ms("wall", 50),
        "query_ms_p99": timing.ms("wall", 99),
        "recall": found / len(work.planted),
    }


def cold_load(fmt: dict, mbps: float) -> float:
    return fmt["bytes"] / (mbps * 1e6) + fmt["verify_s"]


def print_index(rows: list[dict]) -> None:
    print("reference index (PDQ, one thread)")
    head = f"{'refs':>8} {'build s':>8} {'B/ref':>6} {'format':>7} {'MB':>7} {'verify/build s':>15}"
    print(f"{head} {'cold @62 MB/s':>14} {'@250 MB/s':>10} {'query ms p50':>13} {'p99':>6} {'recall':>7}")
    for r in rows:
        for name, fmt in r["formats"].items():
            print(
                f"{r['n'] / 1e6:>7.1f}M {r['build_s']:>8.1f} {r['bytes_per_ref']:>6.1f} {name:>7} "
                f"{fmt['bytes'] / 1e6:>7.0f} {fmt['verify_s']:>15.2f} {cold_load(fmt, SINGLE_STREAM_MBPS):>14.1f} "
                f"{cold_load(fmt, PARALLEL_MBPS):>10.1f} {r['query_ms_median']:>13.2f} {r['query_ms_p99']:>6.2f} "
                f"{r['recall']:>7.3f}"
            )


# --- re-match over stored objects ----------------------------------------------------------------------

ROWS_PER_OBJECT = {"pdq": 12, "phash": 12, "md5": 1, "sha1": 1, "sha256": 1}  # a photo's, as stored
NEW_MIX = {"pdq": 0.8, "phash": 0.15, "sha256": 0.05}  # the new references' algorithms
PLANTED = {"pdq": 20, "phash": 10, "sha256": 10}  # of them, placed on stored objects (near or equal)
THRESHOLD = {"pdq": 31, "phash": 8, "sha256": 0}


def object_bytes() -> int:
    """A stored photo's bytes in a segment: its id, and per row the hash and its owner."""
    return 32 + sum(rows * (ALGORITHMS[alg].hex_length // 2 + 4) for alg, rows in ROWS_PER_OBJECT.items())


def flip_row(row: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    unpacked = np.unpackbits(row)
    unpacked[rng.choice(len(unpacked), bits, replace=False)] ^= 1
    return np.packbits(unpacked)


def new_references(count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        alg: rng.integers(0, 256, (max(PLANTED[alg], int(count * share)), ALGORITHMS[alg].hex_length // 2), np.uint8)
        for alg, share in NEW_MIX.items()
    }


def write_stored(stored: StoredIndex, objects: int, new: dict[str, np.ndarray], rng: np.random.Generator) -> set[str]:
    """Segments of random stored photos, the planted ones carrying a new reference's hash (near or equal);
    the planted objects' ids."""
    per_segment = SEGMENT_BYTES // object_bytes()
    segments = -(-objects // per_segment)
    plants = [(alg, i, int(rng.integers(0, segments))) for alg, n in PLANTED.items() for i in range(n)]
    expected = set()
    for number in range(segments):
        n = min(per_segment, objects - number * per_segment)
        ids = rng.integers(0, 256, (n, 32), np.uint8)
        hashes = {
            alg: rng.integers(0, 256, (n * rows, ALGORITHMS[alg].hex_length // 2), np.uint8)
            for alg, rows in ROWS_PER_OBJECT.items()
        }
        owners = {alg: np.repeat(np.arange(n, dtype=np.uint32), rows) for alg, rows in ROWS_PER_OBJECT.items()}
        for alg, i, segment in plants:
            if segment == number:
                owner = int(rng.integers(0, n))
                row = owner * ROWS_PER_OBJECT[alg] + int(rng.integers(0, ROWS_PER_OBJECT[alg]))
                hashes[alg][row] = flip_row(new[alg][i], int(rng.integers(0, THRESHOLD[alg] + 1)), rng)
                expected.add(ids[owner].tobytes().hex())
        stored.write(ids, hashes, owners)
    return expected


def rematch(objects: int, new_count: int, seed: int) -> dict:
    """One worker's re-match over `objects` stored photos: compute per segment (measured), download
    (modelled), peak memory of the search (tracemalloc)."""
    rng = np.random.default_rng(seed)
    new = new_references(new_count, rng)
    import boto3
    from moto import mock_aws

    sandbox.fake_credentials()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        stored = StoredIndex(s3, "artifacts")
        expected = write_stored(stored, objects, new, rng)
        sizes = stored._sizes()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        wanted = Wanted.of({alg: [row.tobytes().hex() for row in rows] for alg, rows in new.items()})
        found: set[str] = set()
        compute, loaded = [], time.perf_counter() - started
        for segment in stored.segments():
            began = time.perf_counter()
            exact, near = segment.search(wanted)
            compute.append(time.perf_counter() - began)
            found |= exact | near
        wall = time.perf_counter() - started
        peak = (tracemalloc.get_traced_memory()[1] - base) / 1e6
        tracemalloc.stop()
    download = [size / (PARALLEL_MBPS * 1e6) for size in sizes.values()]
    modelled = download[0] + sum(max(c, d) for c, d in zip(compute, [*download[1:], 0.0], strict=True))
    return {
        "objects": objects,
        "segments": len(sizes),
        "bytes": sum(sizes.values()),
        "compute_s": sum(compute) + loaded,
        "wall_here_s": wall,
        "modelled_s": modelled,
        "peak_mb": peak,
        "recall": len(expected & found) / len(expected),
        "new": sum(len(rows) for rows in new.values()),
    }


def print_rematch(rows: list[dict]) -> None:
    print(f"\nre-match of {rows[0]['new']} new references, one worker (stored photos: {ROWS_PER_OBJECT} rows each)")
    head = f"{'stored':>8} {'segments':>8} {'GB':>6} {'compute s':>10} {'here s':>7} {'modelled s':>11}"
    print(f"{head} {'peak MB':>8} {'recall':>7}")
    for r in rows:
        print(
            f"{r['objects'] / 1e6:>7.4g}M {r['segments']:>8} {r['bytes'] / 1e9:>6.2f} {r['compute_s']:>10.1f} "
            f"{r['wall_here_s']:>7.1f} {r['modelled_s']:>11.1f} {r['peak_mb']:>8.0f} {r['recall']:>7.3f}"
        )


# --- the snapshot build (the sync's reserve) -----------------------------------------------------------


def scan_parse_us(items: int = 9000) -> float:
    """Receiving one live hash from the table's scan: botocore's own parser over a 1 MB Scan page of
    projected items (algorithm, hash), then our loop into the index buffer, microseconds per hash."""
    import botocore.parsers
    import botocore.session

    shape = botocore.session.get_session().get_service_model("dynamodb").operation_model("Scan").output_shape
    rng = np.random.default_rng(0)
    page = [{"algorithm": {"S": "pdq"}, "hash": {"S": rng.bytes(32).hex()}} for _ in range(items)]
    body = json.dumps({"Items": page, "Count": items, "ScannedCount": 4 * items}).encode()
    parser = botocore.parsers.create_parser("json")
    started = time.perf_counter()
    for _ in range(5):
        parsed = parser.parse({"body": body, "headers": {}, "status_code": 200}, shape)
        buffer = bytearray()
        for raw in parsed["Items"]:
            buffer += bytes.fromhex(raw["hash"]["S"])
    return (time.perf_counter() - started) / 5 / items * 1e6


def snapshot_build(index_rows: list[dict]) -> dict:
    """Per live hash: receive and parse (measured), index (the build measured above), upload (its
    bytes at one stream); what 1.4M and 10M listed images (a PDQ and a pHash each) take, against the
    sync's `finish_reserve`."""
    from hashcheck.jobs.sync import finish_reserve

    largest = index_rows[-1]
    parse = scan_parse_us()
    index = largest["build_s"] / largest["n"] * 1e6
    upload = largest["bytes_per_ref"] / (SINGLE_STREAM_MBPS * 1e6) * 1e6
    per_hash = parse + index + upload
    print(f"\nsnapshot build, per live hash: scan parse {parse:.1f} us + index {index:.2f} us + upload {upload:.2f} us")
    out = {"per_hash_us": per_hash}
    for images in (1_400_000, 10_000_000):
        hashes = 2 * images
        print(
            f"  {images / 1e6:g}M listed images ({hashes / 1e6:g}M hashes): ~{hashes * per_hash / 1e6:.0f} s; "
            f"the sync keeps {finish_reserve(hashes):.0f} s for it"
        )
    return out


def projection(per_10m: float, cost: dict) -> dict:
    """A re-match over 1 billion stored photos on a Distributed Map: 100 workers of one vCPU (1,769 MB),
    each given ~10M photos' segments, taking `per_10m` seconds; priced from docs/prices.json (Lambda
    GB-seconds and requests, the ranged GETs, three state transitions per worker)."""
    workers = 100
    segments = 1e9 / (SEGMENT_BYTES // object_bytes())
    gets = segments * -(-SEGMENT_BYTES // aws.RANGE_BYTES)
    usd = workers * (per_10m * 1.769 * cost["lambda_gb_second_arm"] + cost["lambda_request"])
    usd += gets * cost["s3_get_class_request"] + 3 * workers * cost["stepfunctions_transition"]
    return {"workers": workers, "wall_s": per_10m, "usd": usd}


def prices() -> dict:
    return json.loads((ROOT / "docs" / "prices.json").read_text())["regions"]["eu-west-1"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1.4,10", help="reference counts in millions")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--stored", default="1,10", help="stored photos in millions, for the re-match")
    parser.add_argument("--new", type=int, default=1000, help="new references in the list update")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    for n in [int(float(s) * 1e6) for s in args.sizes.split(",") if s]:
        rows.append(reference_index(n, args.queries, args.seed))
        gc.collect()
    print_index(rows)
    build = snapshot_build(rows)
    matches = []
    for n in [int(float(s) * 1e6) for s in args.stored.split(",") if s]:
        matches.append(rematch(n, args.new, args.seed))
        gc.collect()
    print_rematch(matches)
    at10 = next((r for r in rows if r["n"] == 10_000_000), rows[-1])
    best = min(cold_load(f, PARALLEL_MBPS) for f in at10["formats"].values())
    largest = matches[-1]
    per_10m = largest["modelled_s"] * 10_000_000 / largest["objects"]
    ratio = largest["peak_mb"] / matches[0]["peak_mb"]
    plan = projection(per_10m, prices())
    print(
        f"\n1 billion stored photos: {plan['workers']} workers of a Distributed Map, ~{plan['wall_s']:.0f} s each "
        f"(run in parallel), ${plan['usd']:.2f} of Lambda and S3 requests per re-match"
    )
    print(
        f"load_s_10m={best:.1f} query_ms_10m={at10['query_ms_median']:.2f} rematch_s_per_10m_stored={per_10m:.1f} "
        f"rematch_peak_mb_ratio_10x={ratio:.2f} usd_per_rematch_1b={plan['usd']:.2f} "
        f"snapshot_us_per_hash={build['per_hash_us']:.1f}"
    )


if __name__ == "__main__":
    main()
