"""Every object ends with a status, whatever happens to its scan (a deployed stack on moto).

- an invocation killed mid-batch on every attempt (a timeout, out of memory): the batch's messages
  reach the dead-letter queue and DeadLetterFunction tags what has no status `error`;
- a record is not started with too little of the invocation left: it goes back to the queue untouched;
- an object whose event never arrived: the sweep finds it and queues it, and the scan judges it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from hashcheck.jobs import sweep
from hashcheck.jobs.deadletter import DEAD_LETTERED
from hashcheck.objects import ObjectRef, get_status
from hashcheck.tables.fingerprint_table import FingerprintTable
from hashcheck.tools import samples, sandbox
from tests.helpers import Died, LambdaDied, drain

HUGE = "judged/huge.png"  # stands for the picture whose decoding outlives the function


@pytest.fixture()
def stack() -> Any:
    sandbox.fake_credentials()
    with mock_aws():
        yield sandbox.deploy()


def put(stack, key: str, body: bytes) -> ObjectRef:
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return ObjectRef(bucket, key, response["VersionId"], response["ETag"])


def status(stack, obj: ObjectRef) -> str | None:
    """The object's judgement: its status tag, or the record of a clean object left untagged (the
    default read mode tags only what it blocks)."""
    return get_status(stack.client("s3"), obj) or (record(stack, obj) or {}).get("status")


def record(stack, obj: ObjectRef) -> dict | None:
    return FingerprintTable(stack.client("dynamodb"), stack.outputs["FingerprintTableName"]).get(obj)


def killed_at(stack, scan, key: str):
    """The scan handler, whose invocation dies whenever `key` is read (by the fingerprint function it
    waits for: a decoder that outlives the scan's time kills the scan's invocation too)."""

    def die(params, **_):
        if params.get("Key") == key:
            raise LambdaDied(f"killed while reading {key}")

    parser = sandbox.invoked(stack, "FingerprintFunction")
    parser.s3.meta.events.register("before-parameter-build.s3.GetObject", die, unique_id="killed-at")

    def handler(event, context):
        try:
            return scan.handler(event, context)
        except LambdaDied as death:
            raise Died(str(death)) from None

    return handler


def test_an_invocation_killed_mid_batch_on_every_attempt_leaves_no_object_without_a_status(stack):
    first = put(stack, "judged/first.jpg", samples.jpeg(samples.picture(401)))
    huge = put(stack, HUGE, samples.png(samples.picture(402)))
    after = put(stack, "judged/after.jpg", samples.jpeg(samples.picture(403)))  # never reached: the kill comes first
    scan = sandbox.load_handler(stack, "ScanFunction", "scan")
    handler = killed_at(stack, scan, HUGE)
    responses = []
    while batch := sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], handler, "ScanFunction", max_batches=1):
        responses += batch
    assert [r.get("functionError") for r in responses] == ["Died"] * 5, responses  # maxReceiveCount
    assert status(stack, first) == "clean"
    assert status(stack, huge) is None and status(stack, after) is None  # the gap the dead-letter function closes

    deadletter = sandbox.load_handler(stack, "DeadLetterFunction", "deadletter")
    sandbox.deliver(stack, stack.outputs["ScanDeadLetterQueueUrl"], deadletter.handler, "DeadLetterFunction")
    assert (status(stack, first), status(stack, huge), status(stack, after)) == ("clean", "error", "error")
    for obj in (huge, after):
        judged = record(stack, obj)
        assert judged is not None and (judged["status"], judged["reason"]) == ("error", DEAD_LETTERED)
    assert drain(stack, stack.outputs["ScanDeadLetterQueueUrl"]) == []


def test_an_undeliverable_event_in_the_dead_letter_queue_is_judged_too(stack):
    """EventBridge's dead-letter target is the same queue: the event itself, never scanned, gets `error`."""
    obj = put(stack, "judged/undelivered.jpg", samples.jpeg(samples.picture(404)))
    drain(stack, stack.outputs["ScanQueueUrl"])  # the event never reached the scan queue...
    event = sweep.object_created(obj, datetime.now(UTC))
    stack.client("sqs").send_message(QueueUrl=stack.outputs["ScanDeadLetterQueueUrl"], MessageBody=json.dumps(event))
    deadletter = sandbox.load_handler(stack, "DeadLetterFunction", "deadletter")
    sandbox.deliver(stack, stack.outputs["ScanDeadLetterQueueUrl"], deadletter.handler, "DeadLetterFunction")
    assert status(stack, obj) == "error"


def test_the_dead_letter_function_keeps_a_final_status_and_records_what_is_gone(stack):
    scan = sandbox.load_handler(stack, "ScanFunction", "scan")
    done = put(stack, "judged/done.jpg", samples.jpeg(samples.picture(405)))
    sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], scan.handler, "ScanFunction")
    gone = put(stack, "judged/gone.jpg", samples.jpeg(samples.picture(406)))
    stack.client("s3").delete_object(Bucket=gone.bucket, Key=gone.key, VersionId=gone.version_id)
    sqs, dlq = stack.client("sqs"), stack.outputs["ScanDeadLetterQueueUrl"]
    for obj in (done, gone):  # late duplicates of a finished scan, and of an object deleted since
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(sweep.object_created(obj, datetime.now(UTC))))
    deadletter = sandbox.load_handler(stack, "DeadLetterFunction", "deadletter")
    sandbox.deliver(stack, dlq, deadletter.handler, "DeadLetterFunction")
    assert status(stack, done) == "clean"
    assert (record(stack, gone) or {}).get("status") == "deleted"


def test_records_are_not_started_with_too_little_time_left(stack):
    obj = put(stack, "judged/later.jpg", samples.jpeg(samples.picture(407)))
    scan = sandbox.load_handler(stack, "ScanFunction", "scan")
    url = stack.outputs["ScanQueueUrl"]
    (response,) = sandbox.deliver(stack, url, scan.handler, "ScanFunction", max_batches=1, timeout_seconds=20)
    assert len(response["batchItemFailures"]) == 1  # returned to the queue, not half-done
    assert status(stack, obj) is None and record(stack, obj) is None
    sandbox.deliver(stack, url, scan.handler, "ScanFunction")  # the next invocation, with its full time
    assert status(stack, obj) == "clean"


def test_the_sweep_queues_what_never_got_an_event_and_the_scan_judges_it(stack):
    url = stack.outputs["ScanQueueUrl"]
    scan = sandbox.load_handler(stack, "ScanFunction", "scan")
    scanned = put(stack, "judged/scanned.jpg", samples.jpeg(samples.picture(408)))
    sandbox.deliver(stack, url, scan.handler, "ScanFunction")
    lost = put(stack, "judged/lost.jpg", samples.jpeg(samples.picture(409)))
    drain(stack, url)  # its event never arrives
    s3, sqs = stack.client("s3"), stack.client("sqs")
    table = FingerprintTable(stack.client("dynamodb"), stack.outputs["FingerprintTableName"])
    buckets = [stack.outputs["UploadBucketName"]]

    now = datetime.now(UTC)
    too_soon = sweep.sweep(s3, table, sqs, url, buckets, sweep.Window(now))  # its event may still be on its way
    assert (too_soon.listed, too_soon.due, too_soon.queued) == (2, 0, 0)
    later = sweep.sweep(s3, table, sqs, url, buckets, sweep.Window(now + timedelta(hours=1)))
    assert (later.due, later.queued) == (2, 1)  # the scanned one has its record
    past = sweep.sweep(s3, table, sqs, url, buckets, sweep.Window(now + timedelta(days=3)))
    assert past.due == 0  # older than the lookback: earlier sweeps looked at it

    sandbox.deliver(stack, url, scan.handler, "ScanFunction")
    assert status(stack, lost) == "clean" and status(stack, scanned) == "clean"
    assert sweep.sweep(s3, table, sqs, url, buckets, sweep.Window(now + timedelta(hours=1))).queued == 0


def test_on_an_unversioned_bucket_the_sweep_queues_the_content_that_replaced_a_judged_object(stack):
    """An overwrite before the scan leaves the old event superseded; the new content is found by its ETag."""
    s3, sqs, url = stack.client("s3"), stack.client("sqs"), stack.outputs["ScanQueueUrl"]
    s3.create_bucket(Bucket="plain-uploads", CreateBucketConfiguration={"LocationConstraint": sandbox.REGION})
    s3.put_object(Bucket="plain-uploads", Key="a.jpg", Body=samples.jpeg(samples.picture(410)))
    table = FingerprintTable(stack.client("dynamodb"), stack.outputs["FingerprintTableName"])
    later = sweep.Window(datetime.now(UTC) + timedelta(hours=1))
    assert sweep.sweep(s3, table, sqs, url, ["plain-uploads"], later).queued == 1
    (first,) = [json.loads(m["Body"]) for m in drain(stack, url)]
    scan = sandbox.load_handler(stack, "ScanFunction", "scan")
    newer = s3.put_object(Bucket="plain-uploads", Key="a.jpg", Body=samples.jpeg(samples.picture(411)))["ETag"]
    drain(stack, url)  # (this sandbox bucket sends no events at all)
    stack.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(first))  # the old content's event, late
    sandbox.deliver(stack, url, scan.handler, "ScanFunction")
    assert (record(stack, ObjectRef("plain-uploads", "a.jpg", None, first["detail"]["object"]["etag"])) or {}).get(
        "status"
    ) == "superseded"
    assert get_status(s3, ObjectRef("plain-uploads", "a.jpg")) is None  # the verdict on the old content is not its
    assert sweep.sweep(s3, table, sqs, url, ["plain-uploads"], later).queued == 1
    (second,) = [json.loads(m["Body"]) for m in drain(stack, url)]
    assert second["detail"]["object"]["etag"] == newer.strip('"')
