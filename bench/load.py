"""Load: N uploads through the local pipeline, every one to a final status.

    python bench/load.py [--objects N] [--images SHARE] [--listed SHARE] [--chunk C] [--seed S]

template.yaml deployed into an in-process moto (hashcheck.tools.sandbox): S3 -> EventBridge -> ScanQueue ->
the real scan handler, in this process, batches of 10 as the event source mapping hands them. Most
bodies are tiny (16-512 bytes of text), a share are real generated JPEGs (256x192 to 1024x768) and a
share of those are near copies of a listed picture (quarantined: copied to evidence, deleted).

Uploads go in chunks of `--chunk`, each chunk is then drained (a steady trickle rather than one burst,
so "queue wait" measures the pipeline, not the size of the backlog we chose). Per object:
  upload -> enqueued   PutObject sent -> SQS SentTimestamp (S3 -> EventBridge -> SQS, synchronous in moto)
  queue wait           SentTimestamp -> the batch's handler call
  scan                 Scanner.scan() for that object (read, fingerprint, lookup, tag/quarantine, record)
At the end every uploaded version is checked: `lost` = neither in the upload bucket nor in evidence;
`stuck` = still in the upload bucket without a final status tag, or a message left in the queue/DLQ.
Last line: `objects=… lost=0 stuck=0 objects_per_s=… scan_ms_p50=… scan_ms_p99=…`. moto is slow and
single-threaded: read the rates as a floor for the code, not as Lambda's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # one INFO line per object would dominate the timing
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # and so would one metrics document per batch

FINAL = {"clean", "quarantined", "unscannable", "review", "error"}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def make_bodies(n: int, image_share: float, listed_share: float, seed: int) -> list[tuple[str, str, bytes]]:
    """(key, kind, body) for n objects; kind is tiny / image / listed."""
    from hashcheck.tools import samples

    rng = random.Random(seed)
    pool = [
        samples.jpeg(samples.picture(100 + i, size=rng.choice([(256, 192), (640, 480), (1024, 768)])))
        for i in range(24)
    ]
    listed = [samples.EDITS[e](samples.picture(1)) for e in ("jpeg-q50", "resized-50", "mirrored", "brighter")]
    out = []
    for i in range(n):
        roll = rng.random()
        if roll < image_share * listed_share:
            out.append((f"load/{i:06d}/listed.jpg", "listed", rng.choice(listed)))
        elif roll < image_share:
            out.append((f"load/{i:06d}/photo.jpg", "image", rng.choice(pool)))
        else:
            text = f"object {i} " + "x" * rng.randint(0, 500)
            out.append((f"load/{i:06d}/note.txt", "tiny", text.encode()[: rng.randint(16, 512)]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--images", type=float, default=0.1, help="share of real JPEGs (default 0.1)")
    parser.add_argument("--listed", type=float, default=0.05, help="share of the images that are listed")
    parser.add_argument("--chunk", type=int, default=50, help="uploads between two drains of the queue")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from moto import mock_aws

    from hashcheck.fingerprinting.fingerprint import fingerprint
    from hashcheck.lists.build import references_for
    from hashcheck.tables.reference_table import ReferenceTable
    from hashcheck.tools import samples, sandbox

    bodies = make_bodies(args.objects, args.images, args.listed, args.seed)
    sandbox.fake_credentials()
    with mock_aws():
        # the same listed picture in many uploads: the per-reference breaker (bench/poison.py) set aside
        stack = sandbox.deploy({"ReferenceBreakerObjects": "5000"})
        references = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
        references.apply_rows(references_for(fingerprint(samples.jpeg(samples.picture(1))), "load", "r1"))
        references.bump_version(references.get_version().version)
        scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        s3, sqs = stack.client("s3"), stack.client("sqs")
        bucket, queue = stack.outputs["UploadBucketName"], stack.outputs["ScanQueueUrl"]

        scan_ms: dict[tuple[str, str | None], float] = {}
        queue_wait: list[float] = []
        original_scan = scan.scanner.scan

        def timed_scan(upload):
            started = time.perf_counter()
            try:
                return original_scan(upload)
            finally:
                scan_ms[(upload.obj.key, upload.obj.version_id)] = (time.perf_counter() - started) * 1000

        scan.scanner.scan = timed_scan  # measure, same code path

        put_at: dict[tuple[str, str], float] = {}
        enqueued: list[float] = []

        def handler(event, context):
            now_ms = time.time() * 1000
            for record in event["Records"]:
                sent = int(record["attributes"]["SentTimestamp"])
                queue_wait.append(now_ms - sent)
                obj = json.loads(record["body"])["detail"]["object"]
                if (obj["key"], obj.get("version-id")) in put_at:
                    enqueued.append(max(0.0, sent - put_at.pop((obj["key"], obj.get("version-id")))))
            return scan.handler(event, context)

        uploaded: dict[tuple[str, str], str] = {}
        started = time.perf_counter()
        last_report = started
        for start in range(0, len(bodies), args.chunk):
            for key, kind, body in bodies[start : start + args.chunk]:
                t0 = time.time() * 1000
                version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
                uploaded[(key, version)] = kind
                put_at[(key, version)] = t0
            sandbox.deliver(stack, queue, handler, "ScanFunction", max_batches=10**6)
            if time.perf_counter() - last_report > 30:
                last_report = time.perf_counter()
                done = len(scan_ms)
                print(
                    f"  ... {done} scanned, {done / (last_report - started):.1f} objects/s", file=sys.stderr, flush=True
                )
        elapsed = time.perf_counter() - started

        final = _final_states(stack, uploaded)
        left = int(
            sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        dlq = sqs.receive_message(QueueUrl=stack.outputs["ScanDeadLetterQueueUrl"], MaxNumberOfMessages=10).get(
            "Messages", []
        )

    lost = sum(1 for state in final.values() if state == "lost")
    stuck = sum(1 for state in final.values() if state == "stuck") + left + len(dlq)
    kinds: dict[str, dict[str, int]] = {}
    for ident, kind in uploaded.items():
        kinds.setdefault(kind, {}).setdefault(final[ident], 0)
        kinds[kind][final[ident]] += 1
    scans = list(scan_ms.values())
    by_kind = {k: [scan_ms[i] for i, kind in uploaded.items() if kind == k and i in scan_ms] for k in kinds}

    print(f"{len(uploaded)} objects in {elapsed:.1f} s on an in-process moto ({args.chunk} per chunk)")
    print(f"{'kind':8} {'objects':>8} {'final states':40} {'scan p50':>9} {'scan p99':>9}")
    for kind, states in sorted(kinds.items()):
        values = by_kind[kind]
        print(
            f"{kind:8} {sum(states.values()):8d} {json.dumps(states, sort_keys=True):40} "
            f"{percentile(values, 50):8.1f}m {percentile(values, 99):8.1f}m"
        )
    print(f"{'stage':22} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for name, values in (("upload -> enqueued", enqueued), ("queue wait", queue_wait), ("scan", scans)):
        print(f"{name:22} {percentile(values, 50):9.1f} {percentile(values, 99):9.1f} {max(values, default=0):9.1f}")
    print(f"messages left in queue: {left}, in DLQ: {len(dlq)}")
    print(
        f"objects={len(uploaded)} lost={lost} stuck={stuck} objects_per_s={len(uploaded) / elapsed:.1f} "
        f"scan_ms_p50={percentile(scans, 50):.1f} scan_ms_p99={percentile(scans, 99):.1f}"
    )
    return 0 if lost == 0 and stuck == 0 else 1


def _final_states(stack, uploaded: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """(key, version) -> final status tag, `moved` (quarantined into evidence), `lost` or `stuck`."""
    s3 = stack.client("s3")
    bucket, evidence = stack.outputs["UploadBucketName"], stack.outputs["QuarantineBucketName"]
    live = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="load/"):
        live |= {(v["Key"], v["VersionId"]) for v in page.get("Versions", [])}
    moved = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=evidence, Prefix="evidence/"):
        for v in page.get("Versions", []):
            meta = s3.head_object(Bucket=evidence, Key=v["Key"], VersionId=v["VersionId"])["Metadata"]
            moved.add((v["Key"].split("/", 2)[2], meta.get("hashcheck-source-version-id")))
    out = {}
    for ident in uploaded:
        if ident in live:
            tags = s3.get_object_tagging(Bucket=bucket, Key=ident[0], VersionId=ident[1])["TagSet"]
            status = {t["Key"]: t["Value"] for t in tags}.get("hashcheck-status")
            out[ident] = status if status in FINAL else "stuck"
        else:
            out[ident] = "moved" if ident in moved else "lost"
    return out


if __name__ == "__main__":
    sys.exit(main())
