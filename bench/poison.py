"""Poison: a list update that wrongly lists a picture many customers store, and what it does.

    python bench/poison.py [--copies N] [--tenants T] [--others M] [--limit K]

template.yaml deployed into an in-process moto (hashcheck.tools.sandbox). A stored population: the
same benign picture (standing for a CMS default image) in N objects across T tenants'
prefixes (`customers/<t>/...`; half byte-identical, half re-encoded), and M other pictures. All are
scanned clean. Then a list update wrongly lists the picture, and the re-match checks it against what
is stored; afterwards 10 more customers upload the picture (the scan path). Run four ways:

  no breakers        (baseline) both breakers set out of reach: what a wrong list does unchecked
  reference breaker  each reference acts on at most K objects; its tenant cap and the update breaker
                     out of reach
  update breaker     the update breaker on; the reference breaker out of reach
  both (default)     the stack as deployed: K = ReferenceBreakerObjects, 3 tenants, the update breaker

Per run: objects acted on (quarantined), held (review: blocked, nothing moved or reported), moved
out of the customers' buckets, breaker alerts (`HashCheck Reference Held` / `List Update Held`) and
per-match alerts, and the tenants told (TenantRule `prefix:customers/{tenant}/`: a `HashCheck Tenant
Notice` per action, quarantine or hold).
Last line (the default run, the reference breaker alone, the baseline): `objects_acted=… objects_held=…
objects_moved=… alerts=… tenants_notified=… reference_breaker_objects_acted=… reference_breaker_alerts=…
baseline_objects_moved=…`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"  # the breakers' warnings are the point, not the output
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"

from moto import mock_aws  # noqa: E402

from hashcheck.fingerprinting.fingerprint import fingerprint  # noqa: E402
from hashcheck.lists import deltas  # noqa: E402
from hashcheck.lists.build import references_for  # noqa: E402
from hashcheck.response.breaker import HELD_EVENT, UPDATE_HELD_EVENT  # noqa: E402
from hashcheck.response.notices import TENANT_NOTICE_EVENT  # noqa: E402
from hashcheck.tables.reference_table import ReferenceTable  # noqa: E402
from hashcheck.tools import samples, sandbox  # noqa: E402

OUT_OF_REACH = {
    "ReferenceBreakerObjects": "5000",
    "ReferenceBreakerTenants": "5000",
    "ListUpdateBreakerObjects": "100000",
    "ListUpdateBreakerPercent": "100",
}
LATER_UPLOADS = 10


def population(copies: int, tenants: int, others: int) -> list[tuple[str, bytes, bool]]:
    """(key, body, is the wrongly listed picture) for every stored object."""
    picture = samples.picture(31).resize((320, 240))
    identical, reencoded = samples.jpeg(picture), samples.jpeg(picture.resize((300, 225)))
    out = [
        (f"customers/{n % tenants}/site{n}/wp-content/default.jpg", identical if n % 2 else reencoded, True)
        for n in range(copies)
    ]
    for n in range(others):
        body = samples.jpeg(samples.picture(1000 + n).resize((160, 120)))
        out.append((f"customers/{n % tenants}/photos/{n}.jpg", body, False))
    return out


def run(name: str, parameters: dict[str, str], objects: list[tuple[str, bytes, bool]]) -> dict:
    sandbox.fake_credentials()
    # the handlers print their metrics documents (EMF) on stdout, as Lambda wants: not into the table
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        stack = sandbox.deploy({"TenantRule": "prefix:customers/{tenant}/", **parameters})
        s3, sqs, ddb = stack.client("s3"), stack.client("sqs"), stack.client("dynamodb")
        bucket, queue = stack.outputs["UploadBucketName"], stack.outputs["ScanQueueUrl"]
        inbox, notices = _inbox(stack), _notice_queue(stack)
        scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        rematch = sandbox.load_handler(stack, "RematchFunction", "rematch")
        for key, body, _ in objects:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
        sandbox.deliver(stack, queue, scan.handler, "ScanFunction")
        _stream(stack, rematch)

        started = time.perf_counter()
        version = _wrong_list_update(stack, objects)
        report = rematch.handler({"version": version}, sandbox.LambdaContext(stack.functions["RematchFunction"]))
        listed = next(body for _, body, wrong in objects if wrong)
        for n in range(LATER_UPLOADS):
            s3.put_object(Bucket=bucket, Key=f"customers/new{n}/default.jpg", Body=listed)
        sandbox.deliver(stack, queue, scan.handler, "ScanFunction")
        seconds = time.perf_counter() - started

        statuses = _statuses(ddb, stack.outputs["FingerprintTableName"])
        stored = {
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
        }
        events = [_event(m) for m in _drain(sqs, inbox)]
        told = [json.loads(m["Body"])["detail"] for m in _drain(sqs, notices)]
        wrong = [key for key, _, w in objects if w] + [f"customers/new{n}/default.jpg" for n in range(LATER_UPLOADS)]
        return {
            "run": name,
            "objects_acted": sum(statuses.get(k) == "quarantined" for k in wrong),
            "objects_held": sum(statuses.get(k) == "review" for k in wrong),
            "objects_moved": sum(k not in stored for k in wrong),
            "others_touched": sum(statuses.get(k) != "clean" for k, _, w in objects if not w),
            "neither": sorted(str(statuses.get(k)) for k in wrong if statuses.get(k) not in ("quarantined", "review")),
            "breaker_alerts": sum(e in (HELD_EVENT, UPDATE_HELD_EVENT) for e in events),
            "match_alerts": sum(e not in (HELD_EVENT, UPDATE_HELD_EVENT) for e in events),
            "tenants_notified": len({n["tenant"] for n in told}),
            "notices": len(told),
            "update_held": bool(report.get("update_held")),
            "seconds": seconds,
        }


def _notice_queue(stack) -> str:
    """A queue the tenant notices reach, as a hoster's rule would route them to its customers."""
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="poison-notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="notices", EventPattern=json.dumps({"detail-type": [TENANT_NOTICE_EVENT]}))
    events.put_targets(Rule="notices", Targets=[{"Id": "q", "Arn": arn}])
    return url


def _inbox(stack) -> str:
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName="poison-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.client("sns").subscribe(TopicArn=stack.outputs["AlertTopicArn"], Protocol="sqs", Endpoint=arn)
    return url


def _drain(sqs, url: str) -> list[dict]:
    out = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in batch:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def _event(message: dict) -> str:
    return json.loads(message["Body"])["MessageAttributes"]["event"]["Value"]


def _stream(stack, rematch) -> None:
    """What the FingerprintTable's stream hands RematchFunction."""
    records = sandbox.stream_records(stack)
    rematch.handler({"Records": records}, sandbox.LambdaContext(stack.functions["RematchFunction"]))


def _wrong_list_update(stack, objects) -> int:
    """The sync's part: the picture listed by mistake goes live, its delta is published."""
    table = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
    picture = next(body for _, body, wrong in objects if wrong)
    rows = references_for(fingerprint(picture), "shared-feed", "wrong-1")
    table.apply_rows(rows)
    current = table.get_version().version
    deltas.write_delta(stack.client("s3"), stack.outputs["ArtifactsBucketName"], current + 1, rows)
    table.bump_version(current)
    return current + 1


def _statuses(ddb, table: str) -> dict[str, str]:
    pages = ddb.get_paginator("scan").paginate(TableName=table)
    return {i["key"]["S"]: i["status"]["S"] for page in pages for i in page["Items"] if "parent" not in i}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=200, help="stored objects holding the wrongly listed picture")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--others", type=int, default=100, help="other stored pictures")
    parser.add_argument("--limit", type=int, default=5, help="ReferenceBreakerObjects")
    args = parser.parse_args()
    objects = population(args.copies, args.tenants, args.others)
    limit = str(args.limit)
    runs = [
        run("no breakers", OUT_OF_REACH, objects),
        run("reference breaker", {**OUT_OF_REACH, "ReferenceBreakerObjects": limit}, objects),
        run("update breaker", {k: v for k, v in OUT_OF_REACH.items() if k.startswith("ReferenceBreaker")}, objects),
        run("both (default)", {"ReferenceBreakerObjects": limit}, objects),
    ]
    wrong = args.copies + LATER_UPLOADS
    print(f"{args.copies} stored copies of a wrongly listed picture across {args.tenants} tenants, {args.others} other")
    print(f"pictures, then {LATER_UPLOADS} new uploads of it: {wrong} objects the wrong reference hits\n")
    header = f"{'run':<20}{'acted':>7}{'held':>7}{'moved':>7}{'others':>8}{'breaker':>9}{'match':>7}{'tenants':>9}"
    print(header + "  update held   s")
    for r in runs:
        print(
            f"{r['run']:<20}{r['objects_acted']:>7}{r['objects_held']:>7}{r['objects_moved']:>7}{r['others_touched']:>8}"
            f"{r['breaker_alerts']:>9}{r['match_alerts']:>7}{r['tenants_notified']:>9}"
            f"  {str(r['update_held']):<11}{r['seconds']:>5.1f}"
        )
    for r in runs:
        if r["neither"]:
            print(f"{r['run']}: {len(r['neither'])} hit objects neither acted on nor held: {r['neither']}")
    print("(acted = quarantined; held = review, blocked, nothing moved or reported; others = other objects not clean;")
    print(" breaker / match = alerts sent; tenants = customers told what happened to their files)\n")
    baseline, reference, deployed = runs[0], runs[1], runs[3]
    print(
        f"objects_acted={deployed['objects_acted']} objects_held={deployed['objects_held']} "
        f"objects_moved={deployed['objects_moved']} alerts={deployed['breaker_alerts']} "
        f"tenants_notified={deployed['tenants_notified']} "
        f"reference_breaker_objects_acted={reference['objects_acted']} reference_breaker_alerts="
        f"{reference['breaker_alerts']} baseline_objects_moved={baseline['objects_moved']}"
    )


if __name__ == "__main__":
    main()
