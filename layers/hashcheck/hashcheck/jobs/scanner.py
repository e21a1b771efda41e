"""Scan one uploaded object: get that exact version's fingerprint, match it, act.

The fingerprint comes from a reader (`hashcheck.jobs.reader`): on AWS, FingerprintFunction, where
the bytes are read once and parsed by a role that can do nothing else; the scanner never parses.

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

The scanner receives what it works on (the reference store, the tables, the clients): `build_scanner`
makes them from a `ScanConfig`, `from_environment` from the environment template.yaml gives the three
functions that scan (ScanFunction, RematchFunction, BackfillFunction).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from hashcheck.aws import Clients
from hashcheck.fingerprinting.fingerprint import Fingerprint, problem
from hashcheck.jobs.deadletter import block_as_error
from hashcheck.jobs.reader import FingerprintFunction, Here, Prefetched, Reader
from hashcheck.matching.allowlist import Allowlist, status_for
from hashcheck.matching.matcher import Policy, Result, match, without
from hashcheck.matching.snapshot import S3IndexLoader
from hashcheck.matching.stores.base import ReferenceStore
from hashcheck.matching.stores.composite import CompositeStore
from hashcheck.matching.stores.remote import RemoteLookupStore
from hashcheck.objects import ContentChanged, ObjectRef, set_status
from hashcheck.response.breaker import Breaker, BreakerLimits
from hashcheck.response.cases import CONFIRMED_EVENT, Cases, decision_detail
from hashcheck.response.events import EventPublisher
from hashcheck.response.notices import DEFAULT_APPEAL, Notices
from hashcheck.response.quarantine import Quarantine
from hashcheck.status import Absence, CaseStatus, Decision, FingerprintStatus, ObjectStatus, Verdict
from hashcheck.tables import Tables
from hashcheck.tenancy import TenantRule, Tenants

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from hashcheck.jobs.s3events import Upload


logger = logging.getLogger(__name__)


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
    fingerprint_function: str | None = None  # where object bytes are parsed; None: in this process
    breaker: BreakerLimits = BreakerLimits()  # how far one reference, or one list update, may act
    tenant_rule: TenantRule = TenantRule("none")  # whose an object is (hashcheck.tenancy)
    appeal: str = DEFAULT_APPEAL  # how a tenant appeals, as the notices say it
    # Tag clean objects `clean` (the fail-closed read mode needs it); otherwise a clean object stays
    # untagged unless it carried a status of ours, its verdict in the FingerprintTable (TagCleanObjects).
    tag_clean: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ScanConfig:
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
                benign_lists=frozenset(filter(None, env.get("KNOWN_BENIGN_LISTS", "").split(","))),
            ),
            remote_lookup_url=env.get("REMOTE_LOOKUP_URL") or None,
            remote_lookup_secret=env.get("REMOTE_LOOKUP_SECRET") or None,
            fingerprint_function=env.get("FINGERPRINT_FUNCTION") or None,
            breaker=BreakerLimits.from_env(env),
            tenant_rule=TenantRule.parse(env.get("TENANT_RULE", "none")),
            appeal=env.get("TENANT_APPEAL") or DEFAULT_APPEAL,
            tag_clean=env.get("TAG_CLEAN_OBJECTS", "true") != "false",
        )

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, str]) -> ScanConfig:
        """From the stack's outputs (the scan function's defaults for the rest): the CLI's backfill."""
        return cls(
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


def from_environment(env: Mapping[str, str] = os.environ) -> Scanner:
    """The scanner a Lambda handler builds at cold start."""
    return build_scanner(ScanConfig.from_env(env), Clients())


def build_scanner(config: ScanConfig, clients: Clients) -> Scanner:
    tables = Tables.named(clients.dynamodb, config.reference_table, config.fingerprint_table, config.case_table)
    store, list_version = build_store(config, clients, tables)
    cases = Cases(tables.cases, clients.sns, config.alert_topic_arn, EventPublisher(clients.events, config.event_bus))
    read = None
    if config.fingerprint_function:  # on AWS: parsed in FingerprintFunction, a batch's objects at once
        read = Prefetched(FingerprintFunction(clients.lambda_, config.fingerprint_function))
    return Scanner(config, store, clients.s3, tables, cases, list_version, read)


def build_store(
    config: ScanConfig, clients: Clients, tables: Tables
) -> tuple[ReferenceStore, Callable[[], int | None]]:
    """The references a scan consults, and the list version they stand at.

    The ReferenceTable with its near-match index loaded from the sync's S3 snapshot and reloaded
    when the table's version changes (checked at most every 30 s), plus a remote lookup service if
    configured. Any store failing fails the lookup: never "clean" because one source did not answer.
    """
    table = S3IndexLoader(clients.s3, config.artifacts_bucket, tables.references).store()
    store: ReferenceStore = table
    if config.remote_lookup_url:
        secrets = clients.secretsmanager if config.remote_lookup_secret else None
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
    status: str  # the object's hashcheck-status (ObjectStatus), or an Absence
    verdict: str | None = None
    case_id: str | None = None
    reason: str | None = None
    location: str | None = None  # where the object is now: s3://bucket/key
    size: int | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Scanner:
    def __init__(
        self,
        config: ScanConfig,
        store: ReferenceStore,
        s3: S3Client,
        tables: Tables,
        cases: Cases,
        list_version: Callable[[], int | None] | None = None,
        read: Reader | None = None,
    ):
        self.config = config
        self.read = read or Here(s3)  # where the bytes are parsed (hashcheck.jobs.reader)
        self.store = store
        self.s3 = s3
        self.tables = tables
        self.cases = cases
        self.list_version = list_version or (lambda: None)
        self.quarantine = Quarantine(
            s3, config.quarantine_bucket, mode=config.quarantine_mode, kms_key_id=config.evidence_kms_key
        )
        self.allowlist = Allowlist(tables.references)
        self.breaker = Breaker(tables.references, config.breaker, cases.announce)
        self.tenants = Tenants(config.tenant_rule, s3)
        self.notices = Notices(cases.events, config.appeal)

    def prefetch(self, uploads: Iterable[Upload]) -> None:
        """Start reading these objects' fingerprints at once (a batch), where the reader can."""
        if isinstance(self.read, Prefetched):
            self.read.forget()
            self.read.start(upload.obj for upload in uploads)

    def scan(self, upload: Upload) -> Outcome:
        try:
            return self._scan(upload)
        except ContentChanged:  # an unversioned key overwritten while judged: its new content has its own event
            return self._record_gone(upload.obj, Absence.SUPERSEDED, "overwritten while being judged")

    def _scan(self, upload: Upload) -> Outcome:
        obj = upload.obj
        if obj.bucket in self.config.ignored_buckets:
            return Outcome(obj.bucket, obj.key, obj.version_id, Absence.IGNORED, reason="hashcheck's own bucket")
        fp = self._fingerprint(obj)
        if isinstance(fp, Outcome):
            return fp
        result = self.screen(fp, match(fp, self.store, self.config.policy))
        if result.skipped:  # every skip is on record: the log here, the object's record's reason if clean
            skipped, benign = ([(m.member, m.list, m.ref_id) for m in ms] for ms in (result.skipped, result.benign))
            logger.warning(
                "matches set aside: known-benign", extra={"key": obj.key, "skipped": skipped, "benign": benign}
            )
        if result.verdict in (Verdict.MATCH, Verdict.REVIEW):
            allowed = self.allowlist.check(fp.sha256, result.matches, size=fp.size)
            if allowed:  # these exact bytes were reviewed and released: a false positive stays released
                status = status_for(self.s3, obj)
                return self._finish(obj, fp, Result(Verdict.CLEAN, result.matches), status, allowed.reason)
        if result.verdict == Verdict.MATCH:
            return self._act_on_match(upload, fp, result)
        if result.verdict == Verdict.REVIEW:
            return self._hold_for_review(upload, fp, result)
        if result.verdict == Verdict.CLEAN:
            reason = _benign_reason(result) or (None if fp.status == FingerprintStatus.IMAGE else fp.status)
            return self._finish(obj, fp, result, ObjectStatus.CLEAN, reason)
        if result.verdict == Verdict.OPAQUE:  # an encrypted archive, here or inside: nobody can look in
            return self._finish(obj, fp, result, ObjectStatus.OPAQUE, problem(fp, FingerprintStatus.OPAQUE))
        return self._finish(obj, fp, result, ObjectStatus.UNSCANNABLE, problem(fp, FingerprintStatus.UNSCANNABLE))

    def screen(self, fp: Fingerprint, result: Result) -> Result:
        """The result without the matches of references in shadow rollout (each counts what it would
        have done; `hashcheck list holds` shows the counts)."""
        if result.verdict not in (Verdict.MATCH, Verdict.REVIEW):
            return result
        shadow = self.breaker.in_shadow(result)
        if not shadow:
            return result
        logger.info("matches of references in shadow counted, not acted on", extra={"references": sorted(shadow)})
        return without(fp, result, lambda m: (m.list, m.ref_id) in shadow)

    def act(self, upload: Upload, fp: Fingerprint, result: Result, hold: str | None = None) -> Outcome:
        """Act on a verdict reached without reading the object (re-match): the same steps as a scan.
        With `hold` (why), a match is held for review instead (a list update's breaker tripped)."""
        if result.verdict not in (Verdict.MATCH, Verdict.REVIEW):
            raise ValueError(f"nothing to act on for verdict {result.verdict!r}")
        try:
            if result.verdict == Verdict.MATCH and hold:
                return self._hold_for_review(upload, fp, result, hold)
            if result.verdict == Verdict.MATCH:
                return self._act_on_match(upload, fp, result)
            return self._hold_for_review(upload, fp, result)
        except ContentChanged:  # an unversioned key overwritten since its scan: the verdict was not about it
            return self._record_gone(upload.obj, Absence.SUPERSEDED, "overwritten since its scan")

    def quarantine_confirmed(self, case_id: str) -> Outcome | None:
        """Quarantine a review hold a reviewer confirmed (they ask; the scan path holds the power to move),
        then announce the confirmation for the hotline report. Idempotent; None for a case that is not a
        confirmed, open review hold (a stray or repeated request changes nothing)."""
        case = self.cases.get(case_id)
        if case is None or case.get("decision") != Decision.CONFIRMED:
            logger.warning("quarantine request for case %s ignored: not a confirmed case", case_id)
            return None
        obj = ObjectRef(case["bucket"], case["key"], case.get("version_id"), case.get("etag"))
        if case.get("status") == CaseStatus.OPEN:
            self._block(obj, "confirmed by a reviewer")
            expected = (case.get("hashes") or {}).get("sha256")
            case = self.cases.record_quarantine(case_id, self.quarantine.quarantine(obj, case_id, expected))
        if self.cases.events and not case.get("confirm_announced_at"):
            self.cases.events.put(CONFIRMED_EVENT, decision_detail(case))
            self.cases.table.note(case_id, "queued for the hotline report", marker="confirm_announced_at")
        return Outcome(obj.bucket, obj.key, obj.version_id, ObjectStatus.QUARANTINED, Verdict.MATCH, case_id)

    def fail(self, upload: Upload, reason: str) -> Outcome:
        """The last attempt failed: block the object (`error`) and record it; never leave it unknown."""
        obj = upload.obj
        block_as_error(self.s3, self.tables.fingerprints, obj, reason)
        return Outcome(obj.bucket, obj.key, obj.version_id, ObjectStatus.ERROR, reason=reason, location=_url(obj))

    def record_gone(self, obj: ObjectRef, fp: Fingerprint, result: Result, reason: str) -> None:
        """A verdict reached after the object version was deleted (re-match): recorded, nothing to tag."""
        self.tables.fingerprints.record(obj, Absence.DELETED, result.verdict, fp, self.list_version(), reason)

    def _fingerprint(self, obj: ObjectRef) -> Fingerprint | Outcome:
        """That exact version's fingerprint (from the reader); a vanished object is recorded, not retried.
        A match found before the object vanished still gets its case finished."""
        result = self.read(obj)
        if result == Absence.DELETED:
            return self._resume_case(obj) or self._record_gone(obj, Absence.DELETED, "deleted before the scan")
        if result == Absence.SUPERSEDED:
            return self._resume_case(obj) or self._record_gone(
                obj, Absence.SUPERSEDED, "overwritten before the scan; the new object has its own event"
            )
        assert isinstance(result, Fingerprint)
        return result

    def _resume_case(self, obj: ObjectRef) -> Outcome | None:
        """A crash after the original was moved leaves its case unfinished; the retry finishes it
        (the evidence copy carries the checksum it is verified against)."""
        case = self.cases.get(obj.identity())
        if case is None or case.get("verdict") != Verdict.MATCH:
            return None
        if case.get("status") == CaseStatus.OPEN:
            case = self.cases.record_quarantine(case["case_id"], self.quarantine.quarantine(obj, case["case_id"]))
        if not case.get("notified"):
            self.cases.notify(case)
        return Outcome(
            obj.bucket, obj.key, obj.version_id, ObjectStatus.QUARANTINED, Verdict.MATCH, case["case_id"], "resumed"
        )

    def _record_gone(self, obj: ObjectRef, status: Absence, reason: str) -> Outcome:
        self.tables.fingerprints.record(obj, status, None, reason=reason)
        return Outcome(obj.bucket, obj.key, obj.version_id, status, reason=reason)

    def _finish(
        self, obj: ObjectRef, fp: Fingerprint, result: Result, status: ObjectStatus, reason: str | None
    ) -> Outcome:
        set_status(self.s3, obj, status, reason, tag_clean=self.config.tag_clean, untagged=fp.tags == 0)
        tenant = self.tenants.of(obj)
        self.tables.fingerprints.record(obj, status, result.verdict, fp, self.list_version(), reason, tenant)
        if status == ObjectStatus.UNSCANNABLE:
            self.notices.tell(obj, tenant, status)
        return Outcome(
            obj.bucket, obj.key, obj.version_id, status, result.verdict, reason=reason, location=_url(obj), size=fp.size
        )

    def _act_on_match(self, upload: Upload, fp: Fingerprint, result: Result) -> Outcome:
        """Quarantine, unless a reference of the match has acted on too many objects already."""
        held = self.breaker.held(upload.obj, result, self.tenants.of(upload.obj))
        if held:
            return self._hold_for_review(upload, fp, result, self.breaker.reason(held))
        return self._quarantine(upload, fp, result)

    def _hold_for_review(
        self, upload: Upload, fp: Fingerprint, result: Result, why: str = "weak near match: held for review"
    ) -> Outcome:
        """Tag `review` (blocked, nothing moved) and file the case for a person. A weak hit is alerted;
        a match a circuit breaker stopped is not, one by one (the breaker's one alert stands for all)."""
        held = Result(Verdict.REVIEW, result.matches)
        outcome = self._finish(upload.obj, fp, held, ObjectStatus.REVIEW, why)
        case = self._open_case(upload, fp, held)
        if result.verdict == Verdict.REVIEW:
            self.cases.notify(case)
        outcome.case_id = case["case_id"]
        self.notices.tell(upload.obj, self.tenants.of(upload.obj), ObjectStatus.REVIEW, outcome.case_id)
        return outcome

    def _quarantine(self, upload: Upload, fp: Fingerprint, result: Result) -> Outcome:
        obj = upload.obj
        self._block(obj)  # blocked from here on, whatever happens next
        case = self._open_case(upload, fp, result)
        try:
            moved = self.quarantine.quarantine(obj, case["case_id"], expected_sha256=fp.sha256)
        except Exception:
            self._alert_unsecured(case)
            raise  # the retry secures the evidence; the object stays blocked meanwhile
        case = self.cases.record_quarantine(case["case_id"], moved)
        tenant = self.tenants.of(obj)
        self.tables.fingerprints.record(
            obj, ObjectStatus.QUARANTINED, Verdict.MATCH, fp, self.list_version(), None, tenant
        )
        self.cases.notify(case)
        self.notices.tell(obj, tenant, ObjectStatus.QUARANTINED, case["case_id"])
        location = f"s3://{moved.evidence_bucket}/{moved.evidence_key}" if moved.evidence_key else _url(obj)
        return Outcome(
            obj.bucket,
            obj.key,
            obj.version_id,
            ObjectStatus.QUARANTINED,
            Verdict.MATCH,
            case["case_id"],
            location=None if moved.source_missing else location,
            size=fp.size,
        )

    def _block(self, obj: ObjectRef, reason: str | None = None) -> None:
        """Tag a match `quarantined`. Overwritten meanwhile (unversioned), the matched content is gone:
        the case is still filed, and the quarantine records it as missing."""
        try:
            set_status(self.s3, obj, ObjectStatus.QUARANTINED, reason)
        except ContentChanged:
            logger.warning("matched object overwritten before it could be blocked")

    def _alert_unsecured(self, case: dict) -> None:
        """A match is announced even while its evidence cannot be secured (case status `open`).

        A failing alert must not hide why the quarantine failed: it is logged, and the retry sends it."""
        try:
            self.cases.notify(case)
        except Exception:
            logger.exception("alert for case %s failed as well", case["case_id"])

    def _open_case(self, upload: Upload, fp: Fingerprint, result: Result) -> dict:
        detected = datetime.now(UTC).isoformat(timespec="seconds")
        return self.cases.open_case(
            upload.obj,
            fp,
            result,
            self.list_version(),
            upload.uploader,
            detected,
            uploaded_at=upload.event_time,
            tenant=self.tenants.of(upload.obj),
        )


def _benign_reason(result: Result) -> str | None:
    """What a known-benign list set aside, for the record (lists and reference ids, never hashes)."""
    if not result.skipped:
        return None
    skipped = ", ".join(sorted({f"{m.ref_id} of list {m.list}" for m in result.skipped}))
    benign = ", ".join(sorted({f"{m.ref_id} of list {m.list}" for m in result.benign}))
    return f"matched {skipped}, set aside: known-benign ({benign})"


def _url(obj: ObjectRef) -> str:
    return f"s3://{obj.bucket}/{obj.key}"
