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

from botocore.exceptions import ClientError

from hashcheck.jobs.rematch import plain_record
from hashcheck.jobs.s3events import Upload
from hashcheck.objects import ObjectRef, is_gone
from hashcheck.tables import reference_table as references

log = logging.getLogger(__name__)

BATCH = 100  # keys per skip check (BatchGetItem's limit) and per progress report
DONE = ("clean", "quarantined", "unscannable", "review", "released")


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
    scanner, bucket: str, items: Iterable[Mapping], current_version: int | None = None
) -> BackfillSummary:
    """Scan a batch of listed objects (``{"Key", "ETag"?, "VersionId"?, "Size"?}``, as S3 listings and
    the Map's ItemReader give them) unless already scanned against the current list version."""
    started = time.monotonic()
    config = scanner.config
    if current_version is None:
        current_version = references.get_version(config.reference_table, client=scanner.ddb).version
    summary = BackfillSummary()
    objects = []
    for item in items:
        summary.listed += 1
        obj = _object(scanner.s3, bucket, item, summary)
        if obj is not None:
            objects.append(obj)
    done = _already_scanned(scanner.ddb, config.fingerprint_table, objects, current_version)
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
        if status == "quarantined":
            summary.matched += 1
        elif status in ("review", "unscannable"):
            setattr(summary, status, getattr(summary, status) + 1)
        elif status in ("deleted", "superseded"):
            summary.gone += 1
    summary.seconds = time.monotonic() - started
    return summary


def _object(s3, bucket: str, item: Mapping, summary: BackfillSummary) -> ObjectRef | None:
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


def _already_scanned(ddb, table: str, objects: list[ObjectRef], current_version: int) -> set[str]:
    """Identities whose record is final, has the object's ETag and a list version >= the current one."""
    wanted = {obj.identity(): obj for obj in objects}
    ids = list(wanted)
    done = set()
    for start in range(0, len(ids), references.KEYS_PER_GET):
        request = {
            table: {"Keys": [{"object_id": {"S": i}} for i in ids[start : start + references.KEYS_PER_GET]]},
        }
        request[table]["ConsistentRead"] = True
        while request:
            response = ddb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                record = plain_record(item)
                obj = wanted[record["object_id"]]
                version = record.get("list_version")
                if (
                    record.get("status") in DONE
                    and (obj.etag is None or record.get("etag") == obj.etag)
                    and version not in (None, "")
                    and int(version) >= current_version
                ):
                    done.add(record["object_id"])
            request = response.get("UnprocessedKeys") or {}
    return done


def list_latest(s3, bucket: str, prefix: str = "", page_size: int = 1000) -> Iterator[list[dict]]:
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
    target,
    bucket: str,
    prefix: str = "",
    on_progress: Callable[[BackfillSummary], None] | None = None,
    clients: Mapping | None = None,
    batch: int = BATCH,
) -> BackfillSummary:
    """Backfill `bucket` (under `prefix`) from this machine: `target` is the stack's outputs (a dict of
    OutputKey -> value), a ``ScanConfig``, or a ready ``Scanner``. `on_progress` gets the running
    summary after every batch. `clients` may supply boto3 clients by service name (tests)."""
    started = time.monotonic()
    scanner = _scanner(target, clients or {})
    version = references.get_version(scanner.config.reference_table, client=scanner.ddb).version
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


def config_from_outputs(outputs: Mapping[str, str]):
    """A ScanConfig from the stack's outputs (the scan function's defaults for the rest)."""
    from hashcheck.jobs.scanner import ScanConfig

    return ScanConfig(
        reference_table=outputs["ReferenceTableName"],
        fingerprint_table=outputs["FingerprintTableName"],
        case_table=outputs["CaseTableName"],
        quarantine_bucket=outputs["QuarantineBucketName"],
        artifacts_bucket=outputs["ArtifactsBucketName"],
        alert_topic_arn=outputs.get("AlertTopicArn"),
        evidence_kms_key=outputs.get("EvidenceKeyArn"),
        quarantine_mode=outputs.get("QuarantineMode", "move"),
        ignored_buckets=frozenset({outputs["QuarantineBucketName"], outputs["ArtifactsBucketName"]}),
    )


def _scanner(target, clients: Mapping):
    from hashcheck.jobs.scanner import ScanConfig, Scanner, build_store

    if hasattr(target, "scan") and hasattr(target, "config"):
        return target
    config = target if isinstance(target, ScanConfig) else config_from_outputs(target)

    def client(name: str):
        if name not in clients:
            import boto3

            return boto3.client(name)
        return clients[name]

    s3, ddb = client("s3"), client("dynamodb")
    store, list_version = build_store(
        config, s3, ddb, client("secretsmanager") if config.remote_lookup_secret else None
    )
    return Scanner(config, store, s3, ddb, client("sns"), client("events"), list_version)
