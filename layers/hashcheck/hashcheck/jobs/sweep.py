"""The sweep: objects that never got a scan are found and queued, so every object is judged.

An object-created event can fail to arrive: EventBridge notifications switched off on a protected
bucket, a rule or queue misconfigured, an event older than EventBridge's retry window. Every run
lists the current versions of the watched buckets and takes those last modified between `lookback`
and `grace` ago (older ones were looked at by earlier runs; younger ones may still be on their
way); any of them without a FingerprintTable record (one BatchGetItem per 100, no read of the
object) is sent to the scan queue as an "Object Created" event, where the scan function judges it
like any upload. The listing costs one request per 1,000 objects; nothing else is read.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hashcheck.objects import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

    from hashcheck.tables.fingerprint_table import FingerprintTable

logger = logging.getLogger(__name__)

CHECK_BATCH = 100  # keys per BatchGetItem
SEND_BATCH = 10  # messages per SendMessageBatch
SWEEP_SOURCE = "hashcheck.sweep"


@dataclass
class SweepSummary:
    listed: int = 0
    due: int = 0  # modified inside the window
    queued: int = 0  # no record: sent to the scan queue

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Window:
    """Objects last modified in [now - lookback, now - grace] are due."""

    now: datetime
    grace: timedelta = timedelta(minutes=30)
    lookback: timedelta = timedelta(days=2)

    def __contains__(self, modified: datetime) -> bool:
        return self.now - self.lookback <= modified <= self.now - self.grace


def sweep(
    s3: S3Client,
    fingerprints: FingerprintTable,
    sqs: SQSClient,
    queue_url: str,
    buckets: Sequence[str],
    window: Window,
) -> SweepSummary:
    summary = SweepSummary()
    for bucket in buckets:
        for batch in _batches(_due(s3, bucket, window, summary), CHECK_BATCH):
            known = {r["object_id"] for r in fingerprints.records([obj.identity() for obj in batch])}
            unjudged = [obj for obj in batch if obj.identity() not in known]
            _queue(sqs, queue_url, unjudged, window.now)
            summary.queued += len(unjudged)
    logger.info("sweep finished", extra={"sweep": summary.as_dict()})
    return summary


def _due(s3: S3Client, bucket: str, window: Window, summary: SweepSummary) -> Iterator[ObjectRef]:
    """The current versions of `bucket` modified inside the window, one listing page at a time."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            if not version.get("IsLatest"):
                continue
            summary.listed += 1
            if version["LastModified"] in window:
                summary.due += 1
                version_id = version.get("VersionId")
                yield ObjectRef(
                    bucket,
                    version["Key"],
                    None if version_id in (None, "null") else version_id,
                    version.get("ETag"),
                    version.get("Size"),
                )


def _batches(objects: Iterable[ObjectRef], size: int) -> Iterator[list[ObjectRef]]:
    batch: list[ObjectRef] = []
    for obj in objects:
        batch.append(obj)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def object_created(obj: ObjectRef, now: datetime) -> dict:
    """An EventBridge "Object Created" event for `obj`, as the scan queue receives them from S3."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": SWEEP_SOURCE,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {
            "bucket": {"name": obj.bucket},
            "object": {"key": obj.key, "version-id": obj.version_id, "etag": obj.etag, "size": obj.size},
            "reason": "found by the sweep: no scan on record",
        },
    }


def _queue(sqs: SQSClient, queue_url: str, objects: list[ObjectRef], now: datetime) -> None:
    for start in range(0, len(objects), SEND_BATCH):
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(n), "MessageBody": json.dumps(object_created(obj, now))}
            for n, obj in enumerate(objects[start : start + SEND_BATCH])
        ]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        if failed:  # the next run would find them again; failing now makes the miss visible at once
            raise RuntimeError(f"{len(failed)} of {len(entries)} sweep messages were refused")
