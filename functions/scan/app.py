"""ScanFunction: S3 object-created notices from the scan queue -> hashcheck.jobs.scanner, one per object.

Partial batch failures: a failed object goes back to the queue alone. On its last attempt it is
tagged `error` (blocked by the bucket policy) before the message moves to the dead-letter queue; an
attempt killed before that (timeout, out of memory) leaves it to DeadLetterFunction, which tags it.
A record is not started with less than SCAN_RESERVE_SECONDS of the invocation left: it goes back to
the queue untouched rather than die half-way with the invocation.
A duplicate delivery (rare: SQS and EventBridge deliver at least once) is scanned again and ends the
same: every step of a scan is idempotent and safe against a racing duplicate (tests/stack/test_faults.py),
so no idempotency table stands in front of it (its put and update were two write units per object).
The batch's fingerprints are asked for at once (`Scanner.prefetch`): the function waits for the
slowest object of the batch, not for their sum.
"""

import contextlib
import os
import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from hashcheck.jobs.s3events import Upload, confirmed_case_in, uploads_from_body
from hashcheck.jobs.scanner import from_environment

logger, metrics, tracer = Logger(), Metrics(), Tracer()
scanner = from_environment()
s3, ddb, store = scanner.s3, scanner.tables.references.client, scanner.store  # for tests
MAX_RECEIVES = int(os.environ.get("MAX_RECEIVES", "5"))  # the queue's maxReceiveCount
RESERVE_MS = 1000 * int(os.environ.get("SCAN_RESERVE_SECONDS", "30"))  # what one large object may take
processor = BatchProcessor(event_type=EventType.SQS)


class OutOfTime(Exception):
    """Too little of the invocation is left to start this record; the queue delivers it again."""


def scan_record(record: SQSRecord, lambda_context) -> None:
    if lambda_context.get_remaining_time_in_millis() < RESERVE_MS:
        raise OutOfTime("not started: too little time left in this invocation")
    last_attempt = int(record.attributes.approximate_receive_count or 1) >= MAX_RECEIVES
    case_id = confirmed_case_in(record.body)
    if case_id:  # a reviewer confirmed a review hold: quarantine it as a match
        outcome = scanner.quarantine_confirmed(case_id)
        logger.info("confirmed case quarantined", extra=outcome.as_dict() if outcome else {"case_id": case_id})
        return
    for upload in uploads_from_body(record.body):
        started = time.perf_counter()
        try:
            outcome = scanner.scan(upload).as_dict()
        except Exception as exc:
            if last_attempt:
                scanner.fail(upload, f"scan failed on every attempt ({type(exc).__name__})")
            raise
        # a clean outcome is in the FingerprintTable already; the log keeps what an operator acts on
        (logger.debug if outcome["status"] == "clean" else logger.info)("scanned", extra=outcome)
        metrics.add_metric(name="ObjectsScanned", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name="ScanLatency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
        )
        metrics.add_metric(name="BytesScanned", unit=MetricUnit.Bytes, value=outcome.get("size", 0))
        metric = {
            "quarantined": "Matches",
            "unscannable": "Unscannable",
            "review": "HeldForReview",
            "opaque": "Opaque",
        }.get(outcome["status"])
        if metric:
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event, context):
    scanner.prefetch(announced(event))  # every object's FingerprintFunction call at once
    return process_partial_response(event=event, record_handler=scan_record, processor=processor, context=context)


def announced(event) -> list[Upload]:
    """The uploads the batch announces; a body that cannot be read is left to its own record's failure."""
    uploads: list[Upload] = []
    for record in event.get("Records", []):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            uploads += uploads_from_body(record["body"])
    return uploads
