"""Backfill: scan the objects stored before the stack, with the upload path's own ``Scanner.scan``.

In AWS a Step Functions Distributed Map (``statemachine/backfill.asl.json``) lists the bucket and hands
batches of keys to BackfillFunction (``process_items``); locally ``run`` streams the listing itself
(``hashcheck backfill BUCKET [--prefix P] --stack NAME``). Either way:

- resumable and idempotent: an object whose FingerprintTable record has the same ETag and was judged
  against the current list version (or a newer one) is skipped, with one BatchGetItem per 100 keys and
  no read of the object; a rerun, or a redriven Map, scans only what is left;
- streaming: one listing page at a time, never the whole key list;
- one object failing does not stop the batch: it is counted (and, in the Lambda, the batch is failed
  at the end so the Map retries it; the retry skips what is done).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hashcheck.aws import Clients, is_gone
from hashcheck.jobs.s3events import Upload
from hashcheck.jobs.scanner import ScanConfig, Scanner, build_scanner
from hashcheck.objects import ObjectRef
from hashcheck.status import FINAL, Absence, ObjectStatus
from hashcheck.tables.fingerprint_table import FingerprintTable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

BATCH = 100  # keys per skip check (BatchGetItem's limit) and per progress report


@dataclass
class BackfillSummary:
    listed: int = 0
    scanned: int = 0
    skipped: int = 0  # already scanned against the current list version
    matched: int = 0  # quarantined
    review: int = 0
    unscannable: int = 0
    gone: int = 0  # deleted or overwritten between the listing and the scan
    errors: int = 0
    failed_keys: list[str] = field(default_factory=list)  # the first few, for the operator
    seconds: float = 0.0

    def merge(self, other: BackfillSummary) -> None:
        for name in ("listed", "scanned", "skipped", "matched", "review", "unscannable", "gone", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed_keys = (self.failed_keys + other.failed_keys)[:20]

    def to_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def process_items(
    scanner: Scanner, bucket: str, items: Iterable[Mapping[str, Any]], current_version: int | None = None
) -> BackfillSummary:
    """Scan a batch of listed objects (``{"Key", "ETag"?, "VersionId"?, "Size"?}``, as S3 listings and
    the Map's ItemReader give them) unless already scanned against the current list version."""
    started = time.monotonic()
    if current_version is None:
        current_version = scanner.tables.references.get_version().version
    summary = BackfillSummary()
    objects = []
    for item in items:
        summary.listed += 1
        obj = _object(scanner.s3, bucket, item, summary)
        if obj is not None:
            objects.append(obj)
    done = _already_scanned(scanner.tables.fingerprints, objects, current_version)
    for obj in objects:
        if obj.identity() in done:
            summary.skipped += 1
            continue
        try:
            outcome = scanner.scan(Upload(obj, {"principal": "hashcheck-backfill"}))
        except Exception as exc:  # counted; the Lambda fails the batch afterwards so the Map retries it
            summary.errors += 1
            if len(summary.failed_keys) < 20:
                summary.failed_keys.append(obj.key)
            log.error("backfill scan failed", extra={"key": obj.key, "error": type(exc).__name__})
            continue
        summary.scanned += 1
        status = outcome.status
        if status == ObjectStatus.QUARANTINED:
            summary.matched += 1
        elif status in (ObjectStatus.REVIEW, ObjectStatus.UNSCANNABLE):
            setattr(summary, status, getattr(summary, status) + 1)
        elif status in (Absence.DELETED, Absence.SUPERSEDED):
            summary.gone += 1
    summary.seconds = time.monotonic() - started
    return summary


def _object(s3: S3Client, bucket: str, item: Mapping[str, Any], summary: BackfillSummary) -> ObjectRef | None:
    """The exact version to scan: from a version listing as is; from a plain listing (no version id)
    the current version, by HeadObject."""
    key = item["Key"]
    if "VersionId" in item:
        version = None if item["VersionId"] in (None, "", "null") else item["VersionId"]
        return ObjectRef(bucket, key, version, item.get("ETag"), item.get("Size"))
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_gone(exc):
            summary.gone += 1
            return None
        raise
    version = head.get("VersionId")
    version = None if version in (None, "null") else version
    return ObjectRef(bucket, key, version, head.get("ETag"), head.get("ContentLength"))


def _already_scanned(table: FingerprintTable, objects: list[ObjectRef], current_version: int) -> set[str]:
    """Identities whose record is final, has the object's ETag and a list version >= the current one."""
    wanted = {obj.identity(): obj for obj in objects}
    done = set()
    for record in table.records(list(wanted)):
        obj = wanted[record["object_id"]]
        version = record.get("list_version")
        if (
            record.get("status") in FINAL
            and (obj.etag is None or record.get("etag") == obj.etag)
            and version not in (None, "")
            and int(version) >= current_version
        ):
            done.add(record["object_id"])
    return done


def list_latest(s3: S3Client, bucket: str, prefix: str = "", page_size: int = 1000) -> Iterator[list[dict]]:
    """Pages of the current object versions under `prefix` (delete markers and older versions left
    out), one page at a time: the listing is never held whole."""
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}):
        latest = [
            {"Key": v["Key"], "VersionId": v.get("VersionId"), "ETag": v.get("ETag"), "Size": v.get("Size")}
            for v in page.get("Versions", [])
            if v.get("IsLatest")
        ]
        if latest:
            yield latest


def run(
    target: Scanner | ScanConfig | Mapping[str, str],
    bucket: str,
    prefix: str = "",
    on_progress: Callable[[BackfillSummary], None] | None = None,
    clients: Clients | None = None,
    batch: int = BATCH,
) -> BackfillSummary:
    """Backfill `bucket` (under `prefix`) from this machine: `target` is a ready ``Scanner``, a
    ``ScanConfig``, or the stack's outputs (a dict of OutputKey -> value). `on_progress` gets the running
    summary after every batch. `clients` may supply ready boto3 clients (tests)."""
    started = time.monotonic()
    if isinstance(target, Scanner):
        scanner = target
    else:
        config = target if isinstance(target, ScanConfig) else ScanConfig.from_outputs(target)
        scanner = build_scanner(config, clients or Clients())
    version = scanner.tables.references.get_version().version
    summary = BackfillSummary()
    for page in list_latest(scanner.s3, bucket, prefix):
        for start in range(0, len(page), batch):
            summary.merge(process_items(scanner, bucket, page[start : start + batch], version))
            summary.seconds = time.monotonic() - started
            if on_progress:
                on_progress(summary)
    summary.seconds = time.monotonic() - started
    log.info(
        "backfill finished", extra={"backfill": {k: v for k, v in summary.to_dict().items() if k != "failed_keys"}}
    )
    return summary
