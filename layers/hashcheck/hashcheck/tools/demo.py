"""`hashcheck demo`: the whole pipeline on an in-process moto, with no AWS account and no network.

It deploys template.yaml into moto (hashcheck.tools.sandbox), puts three generated pictures on a reference
list, uploads edited copies of them, a video clip that shows one of them, unrelated pictures, a broken
JPEG and a text file to the upload bucket, lets S3 -> EventBridge -> the scan queue deliver the events
to the real scan handler, and says where each object ended up, which cases were filed and which
alerts went out.

Nothing here is abusive: the pictures are generated (hashcheck.tools.samples) and the demo only
*pretends* that some of them are on a hotline's list.
"""

from __future__ import annotations

import json
import os
import sys

from hashcheck.fingerprinting.fingerprint import listing_fingerprint
from hashcheck.lists import listformat
from hashcheck.lists.build import references_for
from hashcheck.status import ObjectStatus, Verdict
from hashcheck.tables.case_table import CaseTable
from hashcheck.tables.fingerprint_table import FingerprintTable
from hashcheck.tools import samples

LISTED = (1, 2, 3)
UNRELATED = (11, 12, 13, 14)
LISTED_LATER = 12  # uploaded and found clean, then added to the list: the re-match finds it
RELEASED = "listed 2 png"  # a reviewer judges this match a false positive and releases it
LIST_ID = "demo-list"
LIST_KEY = f"lists/{LIST_ID}.jsonl"
# The compliance team's list file in the artifacts bucket, synced by the scheduled SyncFunction.
LIST_SOURCES = json.dumps([{"name": LIST_ID, "type": "s3", "key": LIST_KEY, "list_id": LIST_ID}])


def uploads() -> list[tuple[str, str, bytes]]:
    """(key, what the demo means it to be, bytes) for every object the demo uploads."""
    objects: list[tuple[str, str, bytes]] = []
    for seed, edit in zip(LISTED * 2, samples.EDITS, strict=False):
        suffix = "png" if edit == "png" else "jpg"
        objects.append(
            (f"customers/7/listed {seed} {edit}.{suffix}", Verdict.MATCH, samples.EDITS[edit](samples.picture(seed)))
        )
    for seed in UNRELATED:
        expected = Verdict.MATCH if seed == LISTED_LATER else Verdict.CLEAN
        objects.append((f"customers/7/holiday-{seed}.jpg", expected, samples.jpeg(samples.picture(seed))))
    whole = samples.jpeg(samples.picture(99))
    objects.append(("customers/8/broken.jpg", Verdict.UNSCANNABLE, whole[: len(whole) // 3]))
    objects.append(("customers/8/notes.txt", Verdict.CLEAN, b"shopping list: bread, milk\n"))
    # a clip that shows listed picture 3 for three seconds: found among the video's scenes
    clip = samples.video(8, size=(320, 240), show=(samples.picture(3), 2.0, 5.0))
    objects.append(("customers/9/beach clip.mp4", Verdict.MATCH, clip))
    return objects


def reference_rows(seeds=LISTED):
    rows = []
    for seed in seeds:
        rows += references_for(listing_fingerprint(samples.jpeg(samples.picture(seed))), LIST_ID, f"ref-{seed}")
    return rows


def run(json_summary: bool = False, out=None, plot: str | None = None) -> int:
    from moto import mock_aws

    from hashcheck.tools import sandbox

    out = out or sys.stdout
    sandbox.fake_credentials()
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the summary below says what the logs would
    with mock_aws():
        stack = sandbox.deploy({"ListSources": LIST_SOURCES, "TenantRule": "prefix:customers/{tenant}/"})
        print(f"deployed template.yaml into an in-process moto: {len(stack.outputs)} outputs", file=out)
        print(f"  (moto does not create, and the sandbox does not enforce: {', '.join(stack.skipped)})", file=out)
        synced = _sync_reference_list(stack, reference_rows())
        added, version = synced["sources"][0]["added"], synced["version"]
        print(f"list sync: {LIST_ID}, {len(LISTED)} pictures -> {added} hashes, list version {version}", file=out)
        inbox = _subscribe_inbox(stack)
        put = _upload_all(stack)
        scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], scan.handler, "ScanFunction")
        print(f"uploaded {len(put)} objects; the scan queue delivered them to the scan function", file=out)
        _retro_match(stack, out)
        _release_false_positive(stack, out)
        summary = [_where_is(stack, key, expected, version) for key, expected, version in put]
        cases = sum(1 for _ in CaseTable(stack.client("dynamodb"), stack.outputs["CaseTableName"]).scan_all())
        alerts = _drain(stack, inbox)
        _transparency(stack, out, plot)
    _print_summary(summary, cases, alerts, out)
    if json_summary:
        print(json.dumps({"objects": summary, "cases": cases, "alerts": len(alerts)}), file=out)
    return 0 if all(s["verdict"] == s["expected"] for s in summary) else 1


def _transparency(stack, out, plot: str | None) -> None:
    """The figures a hoster publishes (`hashcheck stats`), from the stack's own records."""
    from hashcheck.tools import stats

    ddb = stack.client("dynamodb")
    records = FingerprintTable(ddb, stack.outputs["FingerprintTableName"]).scan_all()
    found = stats.figures(records, CaseTable(ddb, stack.outputs["CaseTableName"]).scan_all())
    print("\ntransparency figures (hashcheck stats):\n" + stats.as_text(found), file=out)
    if plot:
        stats.plot(found, plot)
        print(f"plot written to {plot}", file=out)


def _retro_match(stack, out) -> None:
    """The hotline lists a picture that was uploaded earlier and found clean: the next sync publishes
    the new references and the re-match quarantines the stored copy without downloading it again."""
    from hashcheck.tools import sandbox

    rematch = sandbox.load_handler(stack, "RematchFunction", "rematch")
    context = sandbox.LambdaContext(stack.functions["RematchFunction"])
    # what the FingerprintTable's stream hands RematchFunction as objects are scanned: every record,
    # into the stored index the re-match searches
    rematch.handler({"Records": sandbox.stream_records(stack)}, context)
    synced = _sync_reference_list(stack, reference_rows((*LISTED, LISTED_LATER)))
    report = rematch.handler({"version": synced["version"]}, context)
    print(
        f"list update: +1 picture, list version {synced['version']}; re-match of stored objects: "
        f"{report['matched']} quarantined without a new download",
        file=out,
    )


def _release_false_positive(stack, out) -> None:
    from hashcheck.response import review

    target = review.Target.from_outputs(stack.outputs)
    (case,) = [c for c in review.list_cases(target) if RELEASED in c["key"]]
    review.release_case(target, case["case_id"], "demo reviewer", "judged a false positive")
    print(f"review: case {case['case_id'][:12]}... released: object restored, its bytes allowlisted", file=out)


def _sync_reference_list(stack, rows) -> dict:
    """Drop the list file where the compliance team would, then run the real SyncFunction handler
    with the schedule's event, as EventBridge Scheduler would."""
    from hashcheck.tools import sandbox

    text = "".join(listformat.to_json(row) + "\n" for row in rows)
    stack.client("s3").put_object(Bucket=stack.outputs["ArtifactsBucketName"], Key=LIST_KEY, Body=text.encode())
    sync = sandbox.load_handler(stack, "SyncFunction", "sync")
    event = json.loads((sandbox.ROOT / "events" / "schedule.json").read_text())
    return sync.handler(event, sandbox.LambdaContext(stack.functions["SyncFunction"]))


def _subscribe_inbox(stack) -> str:
    """An SQS queue subscribed to the alert topic, standing in for the operator's mailbox."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName="demo-operator-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.outputs["AlertTopicArn"], Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
    )
    return url


def _upload_all(stack) -> list[tuple[str, str, str]]:
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    put = []
    for key, expected, data in uploads():
        response = s3.put_object(Bucket=bucket, Key=key, Body=data)
        put.append((key, expected, response.get("VersionId")))
    return put


def _where_is(stack, key: str, expected: str, version: str | None) -> dict:
    from hashcheck.objects import ObjectRef, get_status

    s3, upload_bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    head = _head(s3, upload_bucket, key, version)
    if head is None and (head := _head(s3, upload_bucket, key, None)):
        version = None  # the uploaded version was moved out; what is at the key now was restored on release
    obj = ObjectRef(
        upload_bucket, key, head.get("VersionId") if head else None, head["ETag"].strip('"') if head else None
    )
    record = _record_for(stack, key, version or obj.version_id) or {}
    location: str | None
    if head:
        # a clean object stays untagged in the default read mode: its status is its record's
        location, status = f"s3://{upload_bucket}/{key}", get_status(s3, obj) or record.get("status")
    else:
        location, status = _evidence_location(stack, key), record.get("status", "unknown")
    verdict = record.get("verdict") or (Verdict.MATCH if status == ObjectStatus.RELEASED else status)
    return {"key": key, "expected": expected, "verdict": verdict, "status": status, "location": location}


def _head(s3, bucket: str, key: str, version: str | None) -> dict | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
    except s3.exceptions.ClientError:
        return None


def _record_for(stack, key: str, version: str | None) -> dict | None:
    records = FingerprintTable(stack.client("dynamodb"), stack.outputs["FingerprintTableName"]).scan_all()
    return next((r for r in records if r["key"] == key and r.get("version_id") == version), None)


def _evidence_location(stack, key: str) -> str | None:
    s3, bucket = stack.client("s3"), stack.outputs["QuarantineBucketName"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="evidence/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/" + key):
                return f"s3://{bucket}/{item['Key']}"
    return None


def _drain(stack, queue_url: str) -> list[dict]:
    sqs, alerts = stack.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            alerts.append(json.loads(m["Body"]) if m["Body"].startswith("{") else {"text": m["Body"]})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return alerts


def _print_summary(summary: list[dict], cases: int, alerts: list[dict], out) -> None:
    print("\nobject                                       verdict      status       now at", file=out)
    for s in summary:
        print(f"  {s['key']:<42} {s['verdict']:<12} {s['status']:<12} {s['location']}", file=out)
    wrong = [s["key"] for s in summary if s["verdict"] != s["expected"]]
    print(f"\n{len(summary)} objects, {cases} cases filed, {len(alerts)} alerts sent", file=out)
    print("every object as expected" if not wrong else f"NOT as expected: {', '.join(wrong)}", file=out)
