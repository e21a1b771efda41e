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
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
sys.path.insert(0, str(ROOT / "bench"))
from match import make_workload, timed  # noqa: E402

from hashcheck.matching.index import HammingIndex  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1.4,10", help="reference counts in millions")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(float(s) * 1e6) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        rows.append(reference_index(n, args.queries, args.seed))
        gc.collect()
    print_index(rows)
    at10 = next((r for r in rows if r["n"] == 10_000_000), rows[-1])
    best = min(cold_load(f, PARALLEL_MBPS) for f in at10["formats"].values())
    print(f"load_s_10m={best:.1f} query_ms_10m={at10['query_ms_median']:.2f}")


if __name__ == "__main__":
    main()
