"""Benchmark ``HammingIndex`` against numpy brute force and faiss ``IndexBinaryMultiHash``.

    python bench/match.py [--refs N] [--queries Q] [--seed S] [--also-10m]

Builds N random PDQ (256-bit) and N random pHash (64-bit) references, plants near-duplicate references
(small clusters) and near-duplicate queries, and reports per algorithm: snapshot build time, snapshot
size, ``from_bytes`` load time, memory per reference, and median / p99 time per query (one query = 8
variants: 7 random hashes and one planted within the threshold of a reference) for our index (default
and ``compact``), a numpy brute force and faiss, plus recall on the planted pairs (must be 100%) and
agreement with brute force. Everything runs on one thread. The last line is machine-readable:

    query_ms_median=... query_ms_p99=... ratio_vs_faiss=... ratio_vs_bruteforce=... load_s=...
    bytes_per_ref=...  (all on that one line)

for the PDQ run (ratios > 1: we are faster). Median and p99 there are wall-clock per query; the ratios
compare per-query thread CPU time medians (all methods run on one thread), because on a shared machine
preemption inflates the wall time of long baseline queries more than ours. Both are printed in the
tables. ``--also-10m`` adds 10M PDQ references (memory and query time).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: pin BLAS/OpenMP pools to one thread

import argparse  # noqa: E402
import gc  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "hashcheck"))
from hashcheck.algorithms import ALGORITHMS  # noqa: E402
from hashcheck.matching.index import HammingIndex  # noqa: E402

try:
    import faiss  # noqa: E402
except ImportError:  # faiss is a baseline only, never a dependency
    faiss = None

VARIANTS = 8


@dataclass
class Workload:
    name: str
    threshold: int
    refs: np.ndarray  # (n, nbytes) uint8
    queries: list[np.ndarray]  # each (8, nbytes)
    planted: list[tuple[int, int, int, int]]  # (query, variant row, ref row, distance)


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def ms(self, which: str = "wall", pct: float = 50) -> float:
        return float(np.percentile(getattr(self, which), pct) * 1e3)


def flip_bits(rows: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row with exactly counts[i] distinct random bits flipped."""
    bits = np.unpackbits(rows, axis=1)
    for i, k in enumerate(counts):
        bits[i, rng.choice(bits.shape[1], int(k), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def make_workload(name: str, n: int, nqueries: int, seed: int) -> Workload:
    algorithm = ALGORITHMS[name]
    nbytes, t = algorithm.hex_length // 2, algorithm.threshold
    rng = np.random.default_rng(seed)
    refs = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    targets = rng.choice(n, nqueries, replace=False)
    # Near-duplicate references: a fifth of the targets get 3 listed variants (distance <= t / 3).
    clustered = targets[: nqueries // 5]
    slots = rng.choice(np.setdiff1d(np.arange(n), targets), 3 * len(clustered), replace=False)
    centres = np.repeat(clustered, 3)
    refs[slots] = flip_bits(refs[centres], rng.integers(0, t // 3 + 1, len(slots)), rng)
    # Queries: 7 random variants + 1 planted within t of its target, at a random position.
    dists = rng.integers(0, t + 1, nqueries)
    near = flip_bits(refs[targets], dists, rng)
    queries, planted = [], []
    for i in range(nqueries):
        q = rng.integers(0, 256, (VARIANTS, nbytes), dtype=np.uint8)
        row = int(rng.integers(0, VARIANTS))
        q[row] = near[i]
        queries.append(q)
        planted.append((i, row, int(targets[i]), int(dists[i])))
    return Workload(name, t, refs, queries, planted)


def timed(fn, queries: list[np.ndarray], warmup: int = 3) -> tuple[Timing, list]:
    for q in queries[:warmup]:
        fn(q)
    timing, results = Timing(), []
    gc.disable()
    try:
        for q in queries:
            w, c = time.perf_counter(), time.thread_time()
            results.append(fn(q))
            timing.cpu.append(time.thread_time() - c)
            timing.wall.append(time.perf_counter() - w)
    finally:
        gc.enable()
    return timing, results


class BruteForce:
    """numpy baseline: per variant, XOR + np.bitwise_count over every reference, 64-bit word by word on
    contiguous column copies (the fastest plain-numpy form we found), then the distance filter."""

    def __init__(self, refs: np.ndarray):
        words = refs.view("<u8")
        self.columns = [np.ascontiguousarray(words[:, w]) for w in range(words.shape[1])]
        n = len(refs)
        self.acc, self.tmp, self.pc = np.empty(n, np.uint16), np.empty(n, np.uint64), np.empty(n, np.uint8)

    def search(self, queries: np.ndarray, t: int) -> list[tuple[int, int, int]]:
        out = []
        for i, q in enumerate(queries.view("<u8")):
            self.acc[:] = 0
            for col, word in zip(self.columns, q, strict=True):
                np.bitwise_xor(col, word, out=self.tmp)
                np.bitwise_count(self.tmp, out=self.pc)
                self.acc += self.pc
            hits = np.flatnonzero(self.acc <= t)
            out.extend((i, int(j), int(self.acc[j])) for j in hits)
        return out


def faiss_search(index, t: int):
    def run(q: np.ndarray) -> list[tuple[int, int, int]]:
        lims, dist, ids = index.range_search(q, t + 1)  # faiss keeps distances < radius
        pairs = ((i, j) for i in range(len(q)) for j in range(lims[i], lims[i + 1]))
        return sorted((i, int(ids[j]), int(dist[j])) for i, j in pairs)

    return run


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for j, r in enumerate(cells):
        padded = [c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))]
        print("  " + "  ".join(padded))
        if j == 0:
            print("  " + "  ".join("-" * w for w in widths))


def bench_algorithm(work: Workload, args) -> dict:
    n, t, nbytes = len(work.refs), work.threshold, work.refs.shape[1]
    print(f"\n=== {work.name}: {n:,} references x {nbytes * 8} bits, threshold {t}")
    rows, stats = [], {}

    # Our index, default and compact.
    for compact in (False, True):
        label = "HammingIndex" + (" compact" if compact else "")
        gc.collect()
        start = time.perf_counter()
        built = HammingIndex(work.refs, compact=compact)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        snapshot = built.to_bytes()
        snapshot_s = time.perf_counter() - start
        del built
        loads = []
        for _ in range(5):
            start = time.perf_counter()
            index = HammingIndex.from_bytes(snapshot)
            loads.append(time.perf_counter() - start)
        timing, results = timed(lambda q, index=index: index.search(q, t), work.queries)
        found = {(i, r, ref, d) for i, res in enumerate(results) for r, ref, d in res}
        recall = sum(p in found for p in work.planted) / len(work.planted)
        load_s, mem = float(np.median(loads)), index.memory_bytes / n
        stats[label] = dict(timing=timing, results=results, recall=recall, load=load_s, mem=mem)
        rows.append(
            [
                label,
                f"{build_s + snapshot_s:.2f}",
                f"{len(snapshot) / 2**20:.1f}",
                f"{load_s:.3f}",
                f"{mem:.1f}",
                timing.ms(),
                timing.ms(pct=99),
                timing.ms("cpu"),
                timing.ms("cpu", 99),
                f"{recall:.1%}",
            ]
        )
        del index, snapshot

    # numpy brute force, on the first queries (slow).
    brute = BruteForce(work.refs)
    subset = work.queries[: args.brute_queries]
    timing, brute_results = timed(lambda q, brute=brute: brute.search(q, t), subset, warmup=1)
    stats["brute"] = dict(timing=timing)
    rows.append(["numpy brute force", "-", "-", "-", f"{nbytes:.1f}", timing.ms(), timing.ms(pct=99)])
    rows[-1] += [timing.ms("cpu"), timing.ms("cpu", 99), "-"]
    ours, compact = stats["HammingIndex"]["results"], stats["HammingIndex compact"]["results"]
    agree = all(sorted(b) == ours[i] for i, b in enumerate(brute_results))
    agree_compact = all(sorted(b) == compact[i] for i, b in enumerate(brute_results))
    del brute

    # faiss IndexBinaryMultiHash: b-bit substrings, nflip flips: exact at radius t when
    # nhash * (nflip + 1) >= t + 1 and nhash * b covers every bit.
    faiss_agree = None
    if faiss is None:
        print("  (faiss is not importable: faiss rows skipped)")
    else:
        faiss.omp_set_num_threads(1)
        nbits = nbytes * 8
        configs = [(nbits // 16, 16), (nbits // 32, 32)] if nbits >= 128 else [(nbits // 16, 16)]
        for nhash, b in configs:
            nflip = -(-(t + 1) // nhash) - 1
            gc.collect()
            rss0 = rss_mb()
            index = faiss.IndexBinaryMultiHash(nbits, nhash, b)
            index.nflip = nflip
            start = time.perf_counter()
            index.add(work.refs)
            add_s = time.perf_counter() - start
            rss = (rss_mb() - rss0) * 2**20 / n  # first config only: later ones reuse freed memory
            mem = f"{len(faiss.serialize_index_binary(index)) / n:.0f}" + (f" ({rss:.0f})" if rss > 1 else "")
            subset = work.queries[: args.faiss_queries]
            timing, results = timed(faiss_search(index, t), subset)
            ours = stats["HammingIndex"]["results"]
            ok = all(r == ours[i] for i, r in enumerate(results))
            faiss_agree = ok if faiss_agree is None else faiss_agree and ok
            label = f"faiss MultiHash {nhash}x{b} nflip={nflip}"
            stats[label] = dict(timing=timing)
            rows.append([label, f"{add_s:.2f}", "-", "-", mem, timing.ms(), timing.ms(pct=99)])
            rows[-1] += [timing.ms("cpu"), timing.ms("cpu", 99), "-"]
            del index

    header = ["method", "build s", "snapshot MB", "load s", "B/ref", "ms median", "ms p99"]
    header += ["cpu ms med", "cpu ms p99", "recall"]
    table(f"{work.name}: one query = {VARIANTS} variants, threshold {t}", header, rows)
    print(f"  agreement with brute force on {len(brute_results)} queries: {agree} (compact: {agree_compact})")
    if faiss is not None:
        print("  faiss B/ref: serialized size (RSS growth during add, when measurable, in parentheses)")
    if faiss_agree is not None:
        print(f"  faiss agreement with HammingIndex on {args.faiss_queries} queries: {faiss_agree}")
    ratios = {}
    for which in ("wall", "cpu"):
        ours = stats["HammingIndex"]["timing"].ms(which)
        faiss_ms = [v["timing"].ms(which) for k, v in stats.items() if k.startswith("faiss")]
        ratios[which] = (
            stats["brute"]["timing"].ms(which) / ours,
            min(faiss_ms) / ours if faiss_ms else float("nan"),
        )
        print(f"  speed-up ({which} median): {ratios[which][0]:.0f}x vs brute force", end="")
        print(f", {ratios[which][1]:.1f}x vs the best faiss" if faiss_ms else ", faiss n/a")
    if not (agree and agree_compact and stats["HammingIndex"]["recall"] == 1.0 and faiss_agree is not False):
        print("  !!! MISMATCH: see above")
    return dict(
        median=stats["HammingIndex"]["timing"].ms(),
        p99=stats["HammingIndex"]["timing"].ms(pct=99),
        ratio_brute=ratios["cpu"][0],
        ratio_faiss=ratios["cpu"][1],
        load=stats["HammingIndex"]["load"],
        mem=stats["HammingIndex"]["mem"],
    )


def bench_10m(args) -> None:
    n = 10_000_000
    print(f"\n=== pdq: {n:,} references (memory and query time only)")
    work = make_workload("pdq", n, min(args.queries, 200), args.seed + 10)
    gc.collect()
    rss0 = rss_mb()
    start = time.perf_counter()
    index = HammingIndex(work.refs)
    build_s = time.perf_counter() - start
    rss1 = rss_mb()
    timing, results = timed(lambda q: index.search(q, work.threshold), work.queries)
    found = {(i, r, ref, d) for i, res in enumerate(results) for r, ref, d in res}
    recall = sum(p in found for p in work.planted) / len(work.planted)
    rows = [
        [
            "HammingIndex",
            f"{build_s:.1f}",
            f"{index.memory_bytes / n:.1f}",
            f"{index.memory_bytes / 2**30:.2f}",
            f"{(rss1 - rss0) / 1024:.2f}",
            timing.ms(),
            timing.ms(pct=99),
            timing.ms("cpu"),
            timing.ms("cpu", 99),
            f"{recall:.1%}",
        ]
    ]
    header = ["method", "build s", "B/ref", "index GiB", "RSS +GiB", "ms median", "ms p99", "cpu ms med"]
    header += ["cpu ms p99", "recall"]
    table(f"pdq 10M: {len(work.queries)} queries", header, rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"  process peak RSS so far: {peak:.2f} GiB (includes the 0.3 GiB input array)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refs", type=int, default=1_400_000)
    parser.add_argument("--queries", type=int, default=500, help="queries (8 variants each) per algorithm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--brute-queries", type=int, default=20, help="queries timed for brute force")
    parser.add_argument("--faiss-queries", type=int, default=200, help="queries timed for faiss")
    parser.add_argument("--also-10m", action="store_true", help="also 10M PDQ references")
    args = parser.parse_args(argv)
    args.queries = min(args.queries, args.refs)
    args.brute_queries = min(args.brute_queries, args.queries)
    args.faiss_queries = min(args.faiss_queries, args.queries)
    if faiss is None:
        threads = "faiss not importable"
    else:
        faiss.omp_set_num_threads(1)
        threads = f"faiss {faiss.__version__}, omp threads {faiss.omp_get_max_threads()}"
    print(f"numpy {np.__version__} (OMP/OPENBLAS/MKL_NUM_THREADS=1; ufuncs are single-threaded); {threads}")
    print(f"refs {args.refs:,}, queries {args.queries}, seed {args.seed}")

    pdq = bench_algorithm(make_workload("pdq", args.refs, args.queries, args.seed), args)
    bench_algorithm(make_workload("phash", args.refs, args.queries, args.seed + 1), args)
    if args.also_10m:
        bench_10m(args)
    print()
    print(
        f"query_ms_median={pdq['median']:.3f} query_ms_p99={pdq['p99']:.3f} "
        f"ratio_vs_faiss={pdq['ratio_faiss']:.1f} ratio_vs_bruteforce={pdq['ratio_brute']:.1f} "
        f"load_s={pdq['load']:.3f} bytes_per_ref={pdq['mem']:.1f}"
    )


if __name__ == "__main__":
    main()
