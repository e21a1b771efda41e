"""The list sync at scale (issue #3): an N-row delta through the real sync, end to end, on moto.

    python bench/sync.py [--rows N] [--small N] [--source https|s3] [--page-size P] [--seed S]
                         [--no-baseline] [--no-tracemalloc] [--ddb-ms MS]

Target: a 100k-row delta syncs within one Lambda run (900 s) with bounded memory (rows stream; the
feed is never held whole as Python objects).

What runs. A delta of N rows in hashcheck list v1 (JSON Lines) is generated row by row into a temp
file: images of 1-5 hashes each (md5 always, sha1 70%, sha256 30%, pdq 80%, phash 50%; random but
valid hex; a category on most), ~0.5% tombstones (most withdraw a ref listed a little earlier in the
same delta, some name a ref never listed) and ~0.2% malformed rows of six kinds (short hash, not hex,
no id, not JSON, another list's id, a bad ``deleted`` flag), so rejection is exercised but stays under
``max_bad_share``. It is served the way a real source serves it:

- ``--source https`` (default; a hotline's delta feed): a local HTTP server (another process) speaks
  the feed protocol of ``hashcheck/lists/sources/https.py`` from the file: pages of ``--page-size`` rows,
  ``X-Next-Cursor`` / ``X-Cursor``, ``ETag`` and a per-page ``X-Content-SHA256``. The sync runs through
  ``sync_sources`` with ``HttpsSource(..., allow_insecure_loopback=True)``, as the tests do: that is
  all ``run_sync`` does after ``make_source``, which (rightly) refuses a plain-http loopback URL.
- ``--source s3`` (a full list file in the artifacts bucket): ``run_sync`` itself, with an s3 source
  spec, exactly as the SyncFunction handler calls it (the list-wide withdrawal scan runs too; the
  table starts empty, so it withdraws nothing).

Either way the real code runs: fetch, validate and spool to /tmp, apply in batches of 25
(``ReferenceTable.apply_rows``), snapshot build and publish, delta publish, version bump, checkpoint.
The result is then checked: every count in the report matches what the generator wrote, the snapshot
indexes exactly the live pdq/phash hashes, the version is 1 and the checkpoint is stored.

Why moto runs as a server in another process (``ThreadedMotoServer``, one fresh one per measurement)
rather than in-process ``mock_aws``: (1) memory: in-process, moto's copy of the table lives in our
heap and grows with every row, so neither tracemalloc nor RSS could tell the sync's memory from the
mock's; in a separate process our figures are the sync's alone. (2) throughput: every call goes
through botocore's whole stack and real HTTP, as against DynamoDB, and the time splits into our
process's CPU time (parsing, validating, spooling, serialising: what Lambda would spend) and the
rest (waiting on moto and the feed server). Both sides pay the same per-call HTTP cost, including
the baseline. moto is the slow side, and gets slower as its table grows: its Scan sorts the whole
table for every 1 MB page, so the snapshot build is quadratic here (linear on DynamoDB), and a
``projected_100k_s`` scaled up from a smaller ``--rows`` underestimates: run 100k for the verdict.

Baseline (named ``batch_writer``), same run: the items the sync ends up writing for these rows
(one hash item per added row, one image item per image) written blind with boto3's
``Table.batch_writer()`` into a fresh table on a fresh moto server: how fast moto accepts writes at
all. ``ratio_vs_batch_writer`` = sync seconds / batch_writer seconds (> 1: the sync takes longer;
it also reads every touched item first, validates, spools, rebuilds the snapshot and publishes);
the details also give the apply phase alone against it.

Phases and memory. Without changing the library, the bench wraps the phase functions of the sync
(``_spool_valid_rows``, ``ReferenceTable.apply_rows``, ``snapshot.build`` / ``publish``,
``DeltaWriter.publish``, ...) to time them and to take, per phase, the peak of the Python heap
(tracemalloc, reset at each phase boundary) and of the RSS (VmHWM, reset through
/proc/self/clear_refs) above their level at the phase's start. tracemalloc slows our Python code
~4x, so there are two passes in one process, after an untimed warm-up that pays the imports: pass 1
without it (all timings, RSS, the baseline), pass 2 the same deltas again with it (heap peaks only).
Each pass syncs ``--small`` and then ``--rows`` rows, each into a fresh table on a fresh server.
``peak_ratio_vs_small`` is the whole sync's heap peak at N over at the small size;
``apply_peak_ratio`` that ratio for the streaming part (fetch+validate+spool and apply): bounded
means near 1, not near N/small. What grows is read off the per-phase ratios: the snapshot of the
list necessarily grows with the list (here the list is just the delta; ~115 B per PDQ hash in the
index, and its scan holds up to two parsed 1 MB pages, ~35 MB when every item of a page matches,
which moto's pk-sorted table does once an algorithm has more items than a page, so the scan's part
saturates between 10k and 100k rows), and anything that holds the delta whole shows ~N/small.

Figures (2-vCPU VM shared with another CPU-heavy job; 100k vs 10k rows; ~23 min per source):
https: 100k rows synced in 454 s on moto (apply 124 s, snapshot build 327 s of moto scans), our CPU
56 s; batch_writer 95 s (sync 4.8x, apply alone 1.3x); ~12k AWS calls. Heap: fetch+spool+apply 0.6
MB at both sizes (1.03x); sync 21 -> 54 MB (2.6x): the snapshot build (20 -> 54 MB, page-bound, see
above) and ``DeltaWriter.publish`` (2.8 -> 27.9 MB, 10.0x: it reads the whole delta spool into one
str and one bytes to upload it). s3: 504 s (apply 149 s); the same, except that fetch+spool grows
1.2 -> 9.9 MB (8.5x): the full list's key set (``sync._KeySet``, ~95 B per row, by design), which
makes ``apply_peak_ratio`` 8.5 for that source.

Last line: ``rows=… source=… sync_s=… rows_per_s=… cpu_s=… ratio_vs_batch_writer=… peak_mb=…
rss_peak_mb=… peak_ratio_vs_small=… apply_peak_ratio=… rss_ratio_vs_small=… projected_100k_s=…
break_even_ms_per_call=… within_15min=… ok=…``: ``peak_mb`` is the sync's Python heap peak above its
start at N rows (``rss_peak_mb`` the same for RSS); ``projected_100k_s`` is sync_s scaled linearly
to 100,000 rows and ``within_15min`` says it is under 900 s, measured on moto; ``ok``: every check
passed. Derived, not measured: ``break_even_ms_per_call``, the mean AWS call latency up to which our
CPU time (here) plus the sync's calls still fit in 900 s at 100k rows, and ``est_real_s`` in the
details (our CPU plus every call at ``--ddb-ms``).
Never prints a hash: counts only.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: pin BLAS/OpenMP pools to one thread

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "hashcheck"))

LIST_ID = "bench"
TARGET_ROWS, TARGET_S = 100_000, 900.0
# (algorithm, hex digits, share of images that carry it)
MIX = (("md5", 32, 1.0), ("sha1", 40, 0.7), ("sha256", 64, 0.3), ("pdq", 64, 0.8), ("phash", 16, 0.5))
CATEGORIES = ("A1", "A2", "B1", "B2", None)
BAD_KINDS = ("short hash", "not hex", "no id", "not JSON", "another list", "bad deleted flag")
RECENT = 2000  # listed refs a tombstone may withdraw (bounded: the generator holds no whole list)
MB = 2**20


# --- the delta ------------------------------------------------------------------------------------------


@dataclass
class Feed:
    """What the generator wrote (counts only), i.e. what the sync's report must say."""

    lines: int = 0
    rows: int = 0  # valid rows: additions and tombstones (the report's `rows`)
    added: int = 0
    tombstones: int = 0
    withdrawn: int = 0  # tombstones of refs listed earlier in the delta (the report's `removed`)
    malformed: int = 0  # the report's `rejected`
    images: int = 0
    bytes: int = 0
    live: Counter = field(default_factory=Counter)  # live hashes per algorithm after the sync


def _image_rows(rng: random.Random, number: int) -> list[dict]:
    category = rng.choice(CATEGORIES)
    rows = []
    for algorithm, digits, share in MIX:
        if rng.random() < share:
            row = {"algorithm": algorithm, "hash": rng.randbytes(digits // 2).hex(), "list": LIST_ID}
            row["id"] = f"img-{number:08d}"
            if category:
                row["category"] = category
            rows.append(row)
    return rows


def _bad_line(rng: random.Random, number: int) -> str:
    kind = BAD_KINDS[number % len(BAD_KINDS)]
    row = {"algorithm": "md5", "hash": rng.randbytes(16).hex(), "list": LIST_ID, "id": f"bad-{number}"}
    if kind == "short hash":
        row.update(algorithm="pdq", hash=rng.randbytes(31).hex())
    elif kind == "not hex":
        row["hash"] = "zz" + row["hash"][2:]
    elif kind == "no id":
        row["id"] = ""
    elif kind == "not JSON":
        return json.dumps(row)[:30]
    elif kind == "another list":
        row["list"] = "someone-else"
    else:
        row["deleted"] = "maybe"
    return json.dumps(row)


def write_feed(path: Path, clean_path: Path, n: int, seed: int, bad_share: float, tombstone_share: float) -> Feed:
    """Write n lines of list v1 to `path`, one at a time, and the valid additions to `clean_path` (tab
    separated, for the baseline). Holds at most RECENT refs and one image's rows."""
    rng = random.Random(seed)
    feed = Feed()
    recent: list[tuple[str, str, str]] = []
    pending: list[dict] = []
    with open(path, "w", encoding="utf-8") as out, open(clean_path, "w", encoding="utf-8") as clean:
        while feed.lines < n:
            roll = rng.random()
            if roll < bad_share:
                line = _bad_line(rng, feed.malformed)
                feed.malformed += 1
            elif roll < bad_share + tombstone_share:
                if recent and rng.random() < 0.8:  # withdraw a ref listed earlier in this delta
                    i = rng.randrange(len(recent))
                    recent[i], recent[-1] = recent[-1], recent[i]
                    algorithm, hash_value, ref_id = recent.pop()
                    feed.withdrawn += 1
                    feed.live[algorithm] -= 1
                else:  # a ref never listed: changes nothing
                    algorithm, hash_value, ref_id = "md5", rng.randbytes(16).hex(), f"gone-{feed.tombstones}"
                row = {"algorithm": algorithm, "hash": hash_value, "list": LIST_ID, "id": ref_id, "deleted": True}
                line = json.dumps(row)
                feed.tombstones += 1
                feed.rows += 1
            else:
                if not pending:
                    pending = _image_rows(rng, feed.images)
                    feed.images += 1
                row = pending.pop(0)
                line = json.dumps(row)
                feed.added += 1
                feed.rows += 1
                feed.live[row["algorithm"]] += 1
                recent.append((row["algorithm"], row["hash"], row["id"]))
                if len(recent) > RECENT:
                    i = rng.randrange(len(recent))
                    recent[i], recent[-1] = recent[-1], recent[i]
                    recent.pop()
                clean.write(f"{row['algorithm']}\t{row['hash']}\t{row['id']}\t{row.get('category', '')}\n")
            out.write(line + "\n")
            feed.lines += 1
            feed.bytes += len(line) + 1
    return feed


# --- servers in other processes -------------------------------------------------------------------------


def _moto_main(conn) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    conn.send(server.get_host_and_port()[1])
    with contextlib.suppress(EOFError):
        conn.recv()
    server.stop()


def _feed_main(conn, path: str, page_size: int) -> None:
    """The hashcheck feed v1 over plain HTTP on 127.0.0.1, paging through the file by byte offsets."""
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    pages: list[tuple[int, int, str]] = []  # (start, end, sha256) per page
    with open(path, "rb") as stream:
        start = end = count = 0
        digest = hashlib.sha256()
        for line in stream:
            digest.update(line)
            end, count = end + len(line), count + 1
            if count == page_size:
                pages.append((start, end, digest.hexdigest()))
                start, count, digest = end, 0, hashlib.sha256()
        if count or not pages:
            pages.append((start, end, digest.hexdigest()))
    etag = f'"{len(pages)}-{end}"'

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 (http.server's naming)
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if "cursor" not in query and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            page = int(query.get("cursor", 0))
            first, last, digest = pages[page] if page < len(pages) else (0, 0, hashlib.sha256().hexdigest())
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Content-Length", str(last - first))
            self.send_header("X-Content-SHA256", digest)
            if page == 0:
                self.send_header("ETag", etag)
            if page + 1 < len(pages):
                self.send_header("X-Next-Cursor", str(page + 1))
            else:
                self.send_header("X-Cursor", str(len(pages)))
            self.end_headers()
            with open(path, "rb") as body:
                body.seek(first)
                left = last - first
                while left:
                    chunk = body.read(min(left, 1 << 16))
                    self.wfile.write(chunk)
                    left -= len(chunk)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    conn.send(server.server_address[1])
    with contextlib.suppress(EOFError):
        conn.recv()
    server.shutdown()


@contextlib.contextmanager
def child(target, *args):
    """Run `target(conn, *args)` in a fresh (spawned) process; yields (port it reports, pid)."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(theirs, *args), daemon=True)
    proc.start()
    try:
        if not ours.poll(120):
            raise RuntimeError(f"{target.__name__} did not start")
        yield ours.recv(), proc.pid
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


def _status_kb(pid: int | str = "self") -> dict[str, int]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: int(re.search(rf"^{k}:\s+(\d+)", text, re.M).group(1)) for k in ("VmRSS", "VmHWM")}


# --- phases ------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    seconds: float = 0.0
    calls: int = 0
    heap_peak: int = 0  # bytes above the heap at the phase's start (tracemalloc)
    rss_peak: int = 0  # kB above the RSS at the phase's start (VmHWM)


class Recorder:
    """Times named phases and takes the heap and RSS peak within each, and over the whole run."""

    def __init__(self):
        self.phases: dict[str, Phase] = {}
        self.hwm_resettable = True

    def _heap(self) -> tuple[int, int]:
        return tracemalloc.get_traced_memory() if tracemalloc.is_tracing() else (0, 0)

    def _reset(self) -> None:
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()
        if self.hwm_resettable:
            try:
                Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            except OSError:
                self.hwm_resettable = False

    def _fold(self) -> None:
        self.outer_heap = max(self.outer_heap, self._heap()[1])
        self.outer_rss = max(self.outer_rss, _status_kb()["VmHWM"])

    def begin(self) -> None:
        gc.collect()
        self.heap0, self.rss0 = self._heap()[0], _status_kb()["VmRSS"]
        self.outer_heap, self.outer_rss = self.heap0, self.rss0
        self._reset()

    def end(self) -> tuple[int, int]:
        """(heap peak bytes, RSS peak kB) above the start, over the whole run."""
        self._fold()
        return self.outer_heap - self.heap0, self.outer_rss - self.rss0

    @contextlib.contextmanager
    def phase(self, name: str):
        self._fold()
        heap0, rss0 = self._heap()[0], _status_kb()["VmRSS"]
        self._reset()
        started = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - started
            heap, rss = self._heap()[1], _status_kb()["VmHWM"]
            self.outer_heap, self.outer_rss = max(self.outer_heap, heap), max(self.outer_rss, rss)
            entry = self.phases.setdefault(name, Phase())
            entry.seconds += seconds
            entry.calls += 1
            entry.heap_peak = max(entry.heap_peak, heap - heap0)
            entry.rss_peak = max(entry.rss_peak, rss - rss0)
            self._reset()


RECORDER: Recorder | None = None


def instrument() -> None:
    """Wrap the sync's phase functions (looked up at call time by the sync) with the recorder."""
    from hashcheck.jobs import sync
    from hashcheck.lists.deltas import DeltaWriter
    from hashcheck.matching import snapshot
    from hashcheck.tables.reference_table import ReferenceTable

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if RECORDER is None:
                return fn(*args, **kwargs)
            with RECORDER.phase(name):
                return fn(*args, **kwargs)

        return wrapper

    for owner, attribute, name in (
        (sync, "_spool_valid_rows", "fetch+validate+spool"),
        (sync._Run, "_withdrawals", "withdrawal scan"),
        (ReferenceTable, "apply_rows", "apply"),
        (snapshot, "build", "snapshot build"),
        (snapshot, "publish", "snapshot publish"),
        (DeltaWriter, "publish", "delta publish"),
        (ReferenceTable, "bump_version", "version bump"),
        (snapshot, "prune", "prune"),
        (ReferenceTable, "store_checkpoint", "checkpoint"),
    ):
        setattr(owner, attribute, timed(name, getattr(owner, attribute)))


class Calls:
    """AWS API calls by operation, and the items/keys in the batch calls."""

    def __init__(self, *clients):
        self.counts: Counter = Counter()
        for client in clients:
            client.meta.events.register("before-parameter-build", self._hook)

    def _hook(self, params, model, **_):
        self.counts[model.name] += 1
        if model.name == "BatchWriteItem":
            self.counts["(items written)"] += sum(len(v) for v in params["RequestItems"].values())
        elif model.name == "BatchGetItem":
            self.counts["(keys read)"] += sum(len(v["Keys"]) for v in params["RequestItems"].values())

    @property
    def api_calls(self) -> int:
        return sum(v for k, v in self.counts.items() if not k.startswith("("))


# --- one measurement -----------------------------------------------------------------------------------------


@dataclass
class Result:
    rows: int
    feed: Feed
    seconds: float
    cpu: float
    heap_peak: int = 0
    rss_peak_kb: int = 0
    moto_hwm_kb: int = 0
    phases: dict[str, Phase] = field(default_factory=dict)
    calls: Counter = field(default_factory=Counter)
    api_calls: int = 0
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


def aws_clients(port: int):
    import boto3

    url = f"http://127.0.0.1:{port}"
    session = boto3.session.Session(region_name="us-east-1")
    return session.client("dynamodb", endpoint_url=url), session.client("s3", endpoint_url=url), session, url


def run_sync_once(n: int, args, workdir: Path, tag: str, record: bool) -> Result:
    global RECORDER
    from hashcheck.aws import Clients
    from hashcheck.jobs.sync import SyncConfig, run_sync, sync_sources
    from hashcheck.lists.sources import SourceSpec
    from hashcheck.lists.sources.https import HttpsSource
    from hashcheck.tables.reference_table import ReferenceTable

    path, clean = workdir / f"delta-{tag}.jsonl", workdir / f"clean-{tag}.tsv"
    feed = write_feed(path, clean, n, args.seed + n, args.bad_share, args.tombstone_share)
    table, bucket = f"refs-{tag}", f"artifacts-{tag}"
    with child(_moto_main) as (port, moto_pid), contextlib.ExitStack() as stack:
        ddb, s3, _, _ = aws_clients(port)
        ddb.create_table(**ReferenceTable.definition(table))
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        clients = Clients(dynamodb=ddb, s3=s3)
        if args.source == "https":
            feed_port, _ = stack.enter_context(child(_feed_main, str(path), args.page_size))
            url = f"http://127.0.0.1:{feed_port}/feed"
            source = HttpsSource("hotline", url, allow_insecure_loopback=True)
            spec = SourceSpec("hotline", "https", LIST_ID)

            def go():
                return sync_sources([(source, spec)], ReferenceTable(ddb, table), bucket, s3)
        else:
            s3.upload_file(str(path), bucket, "lists/bench.jsonl")
            spec = SourceSpec("compliance", "s3", LIST_ID, options={"key": "lists/bench.jsonl"})

            def go():
                return run_sync(SyncConfig(table, bucket, (spec,)), clients)

        calls = Calls(ddb, s3)
        recorder = Recorder()
        RECORDER = recorder if record else None
        recorder.begin()
        cpu0, started = time.process_time(), time.perf_counter()
        report = go()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
        heap_peak, rss_peak = recorder.end()
        RECORDER = None
        moto_hwm = _status_kb(moto_pid)["VmHWM"]
        result = Result(n, feed, seconds, cpu, heap_peak, rss_peak, moto_hwm, recorder.phases, calls.counts)
        result.api_calls = calls.api_calls
        (src,) = report.sources
        perceptual = {alg: feed.live[alg] for alg in ("pdq", "phash") if feed.live[alg]}
        result.checks = {
            "status applied": src.status == "applied",
            "rows": src.rows == feed.rows,
            "rejected": src.rejected == feed.malformed,
            "added": src.added == feed.added,
            "removed": src.removed == feed.withdrawn,
            "index size": report.index_size == perceptual,
            "version 1": report.version == 1 and bool(report.snapshot_key),
            "delta published": bool(report.delta_key),
            "checkpoint stored": bool(ReferenceTable(ddb, table).checkpoint(spec.name)),
        }
    path.unlink()
    return result


def run_baseline(n: int, args, workdir: Path, tag: str) -> tuple[float, float, int]:
    """(seconds, cpu seconds, items): the sync's final items for the delta's additions, written blind."""
    from hashcheck.tables import reference_table as keys
    from hashcheck.tables.reference_table import ReferenceTable

    clean = workdir / f"clean-{tag}.tsv"
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    items = 0
    with child(_moto_main) as (port, _):
        ddb, _, session, url = aws_clients(port)
        ddb.create_table(**ReferenceTable.definition(f"baseline-{tag}"))
        table = session.resource("dynamodb", endpoint_url=url).Table(f"baseline-{tag}")
        cpu0, started = time.process_time(), time.perf_counter()
        with table.batch_writer(overwrite_by_pkeys=["pk"]) as writer, open(clean, encoding="utf-8") as rows:
            image, hashes = None, {}
            for line in rows:
                algorithm, hash_value, ref_id, category = line.rstrip("\n").split("\t")
                if image is not None and ref_id != image["id"]:
                    writer.put_item(Item={**image, "hashes": hashes, "live": len(hashes)})
                    items += 1
                    image, hashes = None, {}
                if image is None:
                    image = {"pk": keys.image_pk(LIST_ID, ref_id), "list": LIST_ID, "id": ref_id}
                entry = {"list": LIST_ID, "id": ref_id, "added": now, "deleted": False}
                if category:
                    entry["category"] = category
                hash_pk = keys.hash_pk(algorithm, hash_value)
                item = {"pk": hash_pk, "algorithm": algorithm, "hash": hash_value, "live": 1}
                writer.put_item(Item={**item, "refs": {keys.ref_key(LIST_ID, ref_id): entry}})
                items += 1
                hashes[hash_pk] = {"algorithm": algorithm, "hash": hash_value, "deleted": False}
            if image is not None:
                writer.put_item(Item={**image, "hashes": hashes, "live": len(hashes)})
                items += 1
        return time.perf_counter() - started, time.process_time() - cpu0, items


# --- reporting ----------------------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def projected_calls_and_cpu(r: Result) -> tuple[float, float]:
    scale = TARGET_ROWS / r.rows
    return r.api_calls * scale, r.cpu * scale


def show(label: str, timed: Result, traced: Result | None, ddb_ms: float) -> None:
    """One size: the untraced run's times and RSS, the traced run's heap peaks, per phase."""
    f, r = timed.feed, timed
    print(f"\n=== {label}: {r.rows:,} lines, {f.bytes / MB:.1f} MB of list v1, {f.images:,} images")
    print(
        f"  generated: {f.rows:,} valid rows ({f.added:,} additions, {f.tombstones:,} tombstones of which "
        f"{f.withdrawn:,} withdraw a listed ref), {f.malformed:,} malformed"
    )
    print(
        f"  sync: {r.seconds:.1f} s wall, {r.rows / r.seconds:.0f} rows/s; our CPU {r.cpu:.1f} s "
        f"({r.cpu / r.seconds:.0%} of wall; the rest is waiting on moto and the feed server)"
    )
    heap = f"Python heap peak {traced.heap_peak / MB:.1f} MB (tracemalloc run), " if traced else ""
    print(
        f"  memory above the sync's start: {heap}RSS peak {r.rss_peak_kb / 1024:.1f} MB "
        f"(moto server process peak RSS {r.moto_hwm_kb / 1024:.0f} MB, not ours)"
    )
    print(f"  {'phase':<22}{'s':>8}{'share':>8}{'calls':>7}{'RSS peak MB':>13}{'heap peak MB':>14}")
    accounted = 0.0
    for name, p in r.phases.items():
        accounted += p.seconds
        heap_mb = f"{traced.phases[name].heap_peak / MB:.2f}" if traced and name in traced.phases else "-"
        print(
            f"  {name:<22}{p.seconds:>8.1f}{p.seconds / r.seconds:>8.1%}{p.calls:>7}"
            f"{p.rss_peak / 1024:>13.1f}{heap_mb:>14}"
        )
    other = r.seconds - accounted
    print(f"  {'other':<22}{other:>8.1f}{other / r.seconds:>8.1%}")
    calls = ", ".join(f"{k} {v:,}" for k, v in sorted(r.calls.items()))
    print(f"  AWS calls: {r.api_calls:,} ({r.api_calls / r.rows:.3f} per line): {calls}")
    print(
        f"  est_real_s (derived, not measured: our CPU + {r.api_calls:,} calls x {ddb_ms:g} ms): "
        f"{r.cpu + r.api_calls * ddb_ms / 1000:.0f} s"
    )
    if traced:
        print(f"  (the tracemalloc run took {traced.seconds:.1f} s, our CPU {traced.cpu:.1f} s: not used for timing)")
    for name, run in (("timed", timed), ("tracemalloc", traced)):
        if run is not None:
            failed = [k for k, v in run.checks.items() if not v]
            verdict = "all passed" if not failed else "FAILED: " + ", ".join(failed)
            print(f"  checks ({name} run): {verdict} ({len(run.checks)})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=TARGET_ROWS, help="lines in the delta (default 100,000)")
    parser.add_argument("--small", type=int, default=10_000, help="the smaller size for the memory ratio (0: skip)")
    parser.add_argument("--source", choices=("https", "s3"), default="https")
    parser.add_argument("--page-size", type=int, default=1000, help="rows per feed page (https)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bad-share", type=float, default=0.002, help="share of malformed lines")
    parser.add_argument("--tombstone-share", type=float, default=0.005)
    parser.add_argument("--warmup", type=int, default=500, help="rows of the untimed warm-up sync")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the heap pass (RSS only, half the time)")
    parser.add_argument("--ddb-ms", type=float, default=10.0, help="assumed ms per AWS call for est_real_s")
    args = parser.parse_args(argv)

    from hashcheck.tools import sandbox

    sandbox.fake_credentials()  # signing only: every client here has a 127.0.0.1 endpoint
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("hashcheck.jobs.sync").setLevel(logging.ERROR)  # the first 20 rejected rows, by line number
    instrument()
    started = time.perf_counter()
    sizes = [("small", args.small)] if args.small else []
    sizes.append(("N", args.rows))
    print(
        f"source={args.source} rows={args.rows:,} small={args.small:,} page_size={args.page_size} "
        f"heap pass={'off' if args.no_tracemalloc else 'on'} python={sys.version.split()[0]}"
    )
    timed: dict[str, Result] = {}
    traced: dict[str, Result] = {}
    base_s = base_cpu = 0.0
    with tempfile.TemporaryDirectory(prefix="hashcheck-syncbench-") as tmp:
        workdir = Path(tmp)
        run_sync_once(args.warmup, args, workdir, "warmup", record=False)
        # Pass 1, timing and RSS: tracemalloc slows our Python several-fold, so it is off here.
        for label, n in sizes:
            timed[label] = run_sync_once(n, args, workdir, label, record=True)
            print(f"timed {label}: {timed[label].seconds:.1f} s", flush=True)
        if not args.no_baseline:
            base_s, base_cpu, base_items = run_baseline(args.rows, args, workdir, "N")
        # Pass 2, the Python heap: the same deltas again with tracemalloc on.
        if not args.no_tracemalloc:
            tracemalloc.start()
            for label, n in sizes:
                traced[label] = run_sync_once(n, args, workdir, label, record=True)
                print(f"traced {label}: {traced[label].seconds:.1f} s", flush=True)
            tracemalloc.stop()

    for label, _n in sizes:
        show(f"{label} ({args.source})", timed[label], traced.get(label), args.ddb_ms)
    big, big_h = timed["N"], traced.get("N")
    if base_s:
        print(
            f"\n=== baseline batch_writer: {base_items:,} items ({big.feed.added:,} hash items + the images) "
            f"in {base_s:.1f} s, {args.rows / base_s:.0f} lines/s, {base_items / base_s:.0f} items/s, "
            f"our CPU {base_cpu:.1f} s; the sync wrote {big.calls['(items written)']:,} items and read "
            f"{big.calls['(keys read)']:,} keys"
        )
        print(
            f"  sync / batch_writer: {ratio(big.seconds, base_s):.2f}x the time "
            f"(apply phase alone: {ratio(big.phases['apply'].seconds, base_s):.2f}x)"
        )

    def streaming(r: Result, attr: str) -> int:
        return max(getattr(r.phases[p], attr) for p in ("fetch+validate+spool", "apply") if p in r.phases)

    peak_ratio = apply_ratio = rss_ratio = float("nan")
    if args.small:
        small, small_h = timed["small"], traced.get("small")
        rss_ratio = ratio(big.rss_peak_kb, small.rss_peak_kb)
        if big_h and small_h:
            peak_ratio = ratio(big_h.heap_peak, small_h.heap_peak)
            apply_ratio = ratio(streaming(big_h, "heap_peak"), streaming(small_h, "heap_peak"))
        print(
            f"\nmemory N/small ({args.rows:,}/{args.small:,} = {args.rows / args.small:.0f}x the rows): "
            f"sync heap peak {peak_ratio:.2f}x, fetch+spool+apply heap peak {apply_ratio:.2f}x, "
            f"sync RSS peak {rss_ratio:.2f}x"
        )
        for name in big.phases:
            heap = ratio(big_h.phases[name].heap_peak, small_h.phases[name].heap_peak) if big_h and small_h else 0
            rss = f"{big.phases[name].rss_peak / 1024:.1f}/{small.phases[name].rss_peak / 1024:.1f} MB"
            print(f"  {name:<22} heap peak {heap:>6.2f}x   RSS peak {rss}")
    projected = big.seconds * TARGET_ROWS / args.rows
    calls_100k, cpu_100k = projected_calls_and_cpu(big)
    break_even = (TARGET_S - cpu_100k) / calls_100k * 1000
    print(
        f"\nat 100,000 rows: {projected:.0f} s on moto (measured at {args.rows:,}, scaled linearly); against real "
        f"AWS the sync would make ~{calls_100k:,.0f} calls and spend ~{cpu_100k:.0f} s of CPU here, so it fits in "
        f"{TARGET_S:.0f} s while the mean call takes under {break_even:.0f} ms (derived, not measured)"
    )
    ok = all(r.ok for r in (*timed.values(), *traced.values()))
    print(f"bench wall time {time.perf_counter() - started:.0f} s")
    heap_mb = big_h.heap_peak / MB if big_h else float("nan")
    print(
        f"rows={args.rows} source={args.source} sync_s={big.seconds:.1f} rows_per_s={args.rows / big.seconds:.0f} "
        f"cpu_s={big.cpu:.1f} ratio_vs_batch_writer={ratio(big.seconds, base_s):.2f} "
        f"peak_mb={heap_mb:.1f} rss_peak_mb={big.rss_peak_kb / 1024:.1f} peak_ratio_vs_small={peak_ratio:.2f} "
        f"apply_peak_ratio={apply_ratio:.2f} rss_ratio_vs_small={rss_ratio:.2f} projected_100k_s={projected:.0f} "
        f"break_even_ms_per_call={break_even:.0f} within_15min={projected <= TARGET_S} ok={ok}"
    )


if __name__ == "__main__":
    main()
