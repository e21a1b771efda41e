"""Scan one uploaded object: read that exact version once, fingerprint it, match it, act.

    clean        -> tag `clean`, record the fingerprint
    unscannable  -> tag `unscannable` (with the reason), record; its exact hashes were still checked
    review       -> tag `review`, open a case for a person; nothing moves
    match        -> tag `quarantined` first (the bucket policy then denies reads at once), open the
                    case, copy the version to the evidence bucket under legal hold, verify, delete
                    that version, record where the evidence is, alert

Every step is idempotent, so a retry after a crash anywhere finishes the same work and files no
second case. A failure raises: the queue retries, and after the last attempt the handler tags the
object `error`, which the bucket policy blocks like `quarantined`. Nothing is ever called clean
because a step failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from hashcheck.fingerprinting.fingerprint import Fingerprint, fingerprint
from hashcheck.jobs.s3events import Upload
from hashcheck.matching import allowlist
from hashcheck.matching.matcher import MATCH, REVIEW, Policy, Result, match
from hashcheck.matching.snapshot import S3IndexLoader
from hashcheck.matching.stores.base import ReferenceStore
from hashcheck.matching.stores.composite import CompositeStore
from hashcheck.matching.stores.remote import RemoteLookupStore
from hashcheck.objects import ObjectRef, set_status
from hashcheck.response.cases import OPEN, Cases
from hashcheck.response.quarantine import Quarantine
from hashcheck.tables import fingerprint_table as fingerprints

CLEAN, QUARANTINED, UNSCANNABLE, REVIEW_STATUS, ERROR = "clean", "quarantined", "unscannable", "review", "error"
GONE = ("NoSuchKey", "NoSuchVersion", "404")


@dataclass(frozen=True)
class ScanConfig:
    reference_table: str
    fingerprint_table: str
    case_table: str
    quarantine_bucket: str
    artifacts_bucket: str
    quarantine_mode: str = "move"
    evidence_kms_key: str | None = None
    alert_topic_arn: str | None = None
    event_bus: str = "default"
    ignored_buckets: frozenset[str] = field(default_factory=frozenset)
    policy: Policy = Policy()
    remote_lookup_url: str | None = None  # a hotline's lookup service, consulted beside the table
    remote_lookup_secret: str | None = None  # Secrets Manager id of its auth header value

    @classmethod
    def from_env(cls, env=os.environ) -> ScanConfig:
        return cls(
            reference_table=env["REFERENCE_TABLE"],
            fingerprint_table=env["FINGERPRINT_TABLE"],
            case_table=env["CASE_TABLE"],
            quarantine_bucket=env["QUARANTINE_BUCKET"],
            artifacts_bucket=env["ARTIFACTS_BUCKET"],
            quarantine_mode=env.get("QUARANTINE_MODE", "move"),
            evidence_kms_key=env.get("EVIDENCE_KMS_KEY") or None,
            alert_topic_arn=env.get("ALERT_TOPIC_ARN") or None,
            event_bus=env.get("EVENT_BUS_NAME", "default"),
            ignored_buckets=frozenset(filter(None, env.get("IGNORED_BUCKETS", "").split(","))),
            policy=Policy(
                pdq_threshold=int(env.get("PDQ_THRESHOLD", Policy.pdq_threshold)),
                phash_threshold=int(env.get("PHASH_THRESHOLD", Policy.phash_threshold)),
                per_list=json.loads(env.get("LIST_THRESHOLDS") or "{}"),
            ),
            remote_lookup_url=env.get("REMOTE_LOOKUP_URL") or None,
            remote_lookup_secret=env.get("REMOTE_LOOKUP_SECRET") or None,
        )


def from_environment(env=os.environ) -> Scanner:
    """The scanner a Lambda handler builds at cold start, from the environment template.yaml gives
    the scan path (ScanFunction, RematchFunction, BackfillFunction)."""
    import boto3

    config = ScanConfig.from_env(env)
    s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
    secrets = boto3.client("secretsmanager") if config.remote_lookup_secret else None
    store, list_version = build_store(config, s3, ddb, secrets)
    return Scanner(config, store, s3, ddb, boto3.client("sns"), boto3.client("events"), list_version)


def build_store(config: ScanConfig, s3, ddb, secrets=None) -> tuple[ReferenceStore, Callable[[], int | None]]:
    """The references a scan consults, and the list version they stand at.

    The ReferenceTable with its near-match index loaded from the sync's S3 snapshot and reloaded
    when the table's version changes (checked at most every 30 s), plus a remote lookup service if
    configured. Any store failing fails the lookup: never "clean" because one source did not answer.
    """
    table = S3IndexLoader(s3, config.artifacts_bucket, config.reference_table, ddb).store()
    store: ReferenceStore = table
    if config.remote_lookup_url:
        remote = RemoteLookupStore(
            config.remote_lookup_url, secret_id=config.remote_lookup_secret, secrets_client=secrets
        )
        store = CompositeStore(table, remote)
    return store, lambda: table.version


@dataclass
class Outcome:
    """What happened to one object; logged and returned (no hash values: those stay in the tables)."""

    bucket: str
    key: str
    version_id: str | None
    status: str  # the object's hashcheck-status, or "deleted"/"superseded"/"ignored"
    verdict: str | None = None
    case_id: str | None = None
    reason: str | None = None
    location: str | None = None  # where the object is now: s3://bucket/key
    size: int | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Scanner:
    def __init__(self, config: ScanConfig, store: ReferenceStore, s3, ddb, sns=None, events=None, list_version=None):
        self.config = config
        self.store = store
        self.s3 = s3
        self.ddb = ddb
        self.list_version = list_version or (lambda: None)
        self.cases = Cases(ddb, config.case_table, sns, config.alert_topic_arn, events, config.event_bus)
        self.quarantine = Quarantine(
            s3, config.quarantine_bucket, mode=config.quarantine_mode, kms_key_id=config.evidence_kms_key
        )
        self.allowlist = allowlist.Allowlist(ddb, config.reference_table)

    def scan(self, upload: Upload) -> Outcome:
        obj = upload.obj
        if obj.bucket in self.config.ignored_buckets:
            return Outcome(obj.bucket, obj.key, obj.version_id, "ignored", reason="hashcheck's own bucket")
        fp = self._fingerprint(obj)
        if isinstance(fp, Outcome):
            return fp
        result = match(fp, self.store, self.config.policy)
        if result.verdict in (MATCH, REVIEW):
            allowed = self.allowlist.check(fp.sha256, result.matches, size=fp.size)
            if allowed:  # these exact bytes were reviewed and released: a false positive stays released
                status = allowlist.status_for(self.s3, obj)
                return self._finish(obj, fp, Result(CLEAN, result.matches), status, allowed.reason)
        if result.verdict == MATCH:
            return self._quarantine(upload, fp, result)
        if result.verdict == REVIEW:
            return self._hold_for_review(upload, fp, result)
        status = CLEAN if result.verdict == CLEAN else UNSCANNABLE
        reason = fp.error if status == UNSCANNABLE else (None if fp.status == "image" else fp.status)
        return self._finish(obj, fp, result, status, reason)

    def act(self, upload: Upload, fp: Fingerprint, result: Result) -> Outcome:
        """Act on a verdict reached without reading the object (re-match): the same steps as a scan."""
        if result.verdict == MATCH:
            return self._quarantine(upload, fp, result)
        if result.verdict == REVIEW:
            return self._hold_for_review(upload, fp, result)
        raise ValueError(f"nothing to act on for verdict {result.verdict!r}")

    def fail(self, upload: Upload, reason: str) -> Outcome:
        """The last attempt failed: block the object (`error`) and record it; never leave it unknown."""
        obj = upload.obj
        set_status(self.s3, obj, ERROR, reason)
        fingerprints.record(self.ddb, self.config.fingerprint_table, obj, ERROR, None, reason=reason)
        return Outcome(obj.bucket, obj.key, obj.version_id, ERROR, reason=reason, location=_url(obj))

    def _fingerprint(self, obj: ObjectRef) -> Fingerprint | Outcome:
        """Stream that exact version through the fingerprint; a vanished object is recorded, not retried."""
        request = {"Bucket": obj.bucket, "Key": obj.key}
        if obj.version_id:
            request["VersionId"] = obj.version_id
        elif obj.etag:
            request["IfMatch"] = obj.etag  # unversioned bucket: make sure we read the object the event named
        try:
            body = self.s3.get_object(**request)["Body"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in GONE:
                return self._resume_case(obj) or self._record_gone(obj, "deleted", "deleted before the scan")
            if code in ("PreconditionFailed", "412"):
                return self._record_gone(
                    obj, "superseded", "overwritten before the scan; the new object has its own event"
                )
            raise
        with body:
            return fingerprint(body)

    def _resume_case(self, obj: ObjectRef) -> Outcome | None:
        """A crash after the original was moved leaves its case unfinished; the retry finishes it
        (the evidence copy carries the checksum it is verified against)."""
        case = self.cases.get(obj.identity())
        if case is None or case.get("verdict") != MATCH:
            return None
        if case.get("status") == OPEN:
            case = self.cases.record_quarantine(case["case_id"], self.quarantine.quarantine(obj, case["case_id"]))
        if not case.get("notified"):
            self.cases.notify(case)
        return Outcome(obj.bucket, obj.key, obj.version_id, QUARANTINED, MATCH, case["case_id"], reason="resumed")

    def _record_gone(self, obj: ObjectRef, status: str, reason: str) -> Outcome:
        fingerprints.record(self.ddb, self.config.fingerprint_table, obj, status, None, reason=reason)
        return Outcome(obj.bucket, obj.key, obj.version_id, status, reason=reason)

    def _finish(self, obj: ObjectRef, fp: Fingerprint, result: Result, status: str, reason: str | None) -> Outcome:
        set_status(self.s3, obj, status, reason)
        fingerprints.record(
            self.ddb, self.config.fingerprint_table, obj, status, result.verdict, fp, self.list_version(), reason
        )
        return Outcome(
            obj.bucket, obj.key, obj.version_id, status, result.verdict, reason=reason, location=_url(obj), size=fp.size
        )

    def _hold_for_review(self, upload: Upload, fp: Fingerprint, result: Result) -> Outcome:
        outcome = self._finish(upload.obj, fp, result, REVIEW_STATUS, "weak near match: held for review")
        case = self._open_case(upload, fp, result)
        self.cases.notify(case)
        outcome.case_id = case["case_id"]
        return outcome

    def _quarantine(self, upload: Upload, fp: Fingerprint, result: Result) -> Outcome:
        obj = upload.obj
        set_status(self.s3, obj, QUARANTINED)  # blocked from here on, whatever happens next
        case = self._open_case(upload, fp, result)
        moved = self.quarantine.quarantine(obj, case["case_id"], expected_sha256=fp.sha256)
        case = self.cases.record_quarantine(case["case_id"], moved)
        fingerprints.record(self.ddb, self.config.fingerprint_table, obj, QUARANTINED, MATCH, fp, self.list_version())
        self.cases.notify(case)
        location = f"s3://{moved.evidence_bucket}/{moved.evidence_key}" if moved.evidence_key else _url(obj)
        if moved.source_missing:
            location = None
        return Outcome(
            obj.bucket, obj.key, obj.version_id, QUARANTINED, MATCH, case["case_id"], location=location, size=fp.size
        )

    def _open_case(self, upload: Upload, fp: Fingerprint, result: Result) -> dict:
        detected = datetime.now(UTC).isoformat(timespec="seconds")
        return self.cases.open_case(
            upload.obj, fp, result, self.list_version(), upload.uploader, detected, uploaded_at=upload.event_time
        )


def _url(obj: ObjectRef) -> str:
    return f"s3://{obj.bucket}/{obj.key}"
