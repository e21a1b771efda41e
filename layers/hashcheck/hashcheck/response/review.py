"""A person's review of cases: list, show, confirm, release, and the audit export.

`hashcheck cases list|show|release|confirm|audit` call these with a `Target` (clients + the stack's
names, `Target.from_outputs`). Every state change goes into the case's append-only `history` with
who, when and why.

Release (a false positive), each step safe to repeat, in this order:
1. the decision `released` is recorded (refused if the case was confirmed; a case whose quarantine is
   still running is refused too: try again when the scan has finished);
2. the exact bytes are allowlisted (`hashcheck.matching.allowlist`: SHA-256 + the references that fired),
   BEFORE anything is restored: restoring creates an object, its scan comes within seconds and must
   find the allowlist entry;
3. the object is restored to its original bucket and key: copied back from the evidence version,
   byte for byte (checked against the case's SHA-256), with its metadata (our provenance entries
   dropped), content headers and the customer's tags, tagged `released`. The copy is a new version
   of the key; the evidence stays where it is, under its legal hold. When the original was never
   moved (tag-only, copy-only, a review hold) it is re-tagged `released` in place. A retry finds
   the version an earlier attempt restored (status `released`, reason naming the case) and reuses it;
4. the case's status becomes `released`; an EventBridge `HashCheck Case Released` event follows
   (for automation, e.g. lifting an account suspension).

Confirm (a true match): the decision `confirmed` is recorded and `HashCheck Case Confirmed` is put on
the bus, which routes it to the hotline report queue (template: ConfirmedToReportRule). A review
case (a weak near hit left in place) must be quarantined first; a reviewer holds no power to delete,
hold or move objects, so the confirmation asks the scan path for it: a message on the scan queue
(`{"hashcheck": "quarantine confirmed case", "case_id": ...}`), and the scanner quarantines the case
exactly as it quarantines a match, then announces the confirmation.

Nothing here logs a hash value. `show_case` hides them unless asked (terminal scrollback is a log too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from hashcheck.aws import is_gone
from hashcheck.matching.allowlist import Allowlist
from hashcheck.objects import (
    REASON_TAG,
    STATUS_TAG,
    ContentChanged,
    ObjectRef,
    get_tags,
    merge_tags,
    set_status,
    tag_value,
)
from hashcheck.response.cases import CONFIRMED_EVENT, RELEASED_EVENT, decision_detail
from hashcheck.response.copy import CONTENT_HEADERS, copy_version, sha256_of
from hashcheck.response.events import EventPublisher
from hashcheck.response.quarantine import PROVENANCE
from hashcheck.status import CaseStatus, Decision, ObjectStatus, Verdict
from hashcheck.tables.case_table import CaseNotFound, CaseTable, DecisionConflict, audit_lines
from hashcheck.tables.reference_table import ReferenceTable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "CaseNotFound",
    "DecisionConflict",
    "NotReady",
    "RestoreNotVerified",
    "Target",
    "confirm_case",
    "export_audit",
    "list_cases",
    "release_case",
    "show_case",
]

logger = logging.getLogger(__name__)

HIDDEN = "(hidden; show with hashes)"
SUMMARY_FIELDS = (
    "case_id",
    "status",
    "decision",
    "verdict",
    "bucket",
    "key",
    "detected_at",
    "lists",
    "reported_at",
    "tenant",
    "appeal",
)


class NotReady(Exception):
    """The case cannot take this step yet (its quarantine is still running)."""


class RestoreNotVerified(Exception):
    """The restored object's content differs from the evidence; the wrong version was removed."""


QUARANTINE_REQUEST = "quarantine confirmed case"


class ScanQueue:
    """Where a reviewer asks the scan path to quarantine a confirmed review hold."""

    def __init__(self, sqs: Any, url: str):
        self.sqs, self.url = sqs, url

    def request_quarantine(self, case_id: str) -> None:
        self.sqs.send_message(
            QueueUrl=self.url, MessageBody=json.dumps({"hashcheck": QUARANTINE_REQUEST, "case_id": case_id})
        )


@dataclass
class Target:
    """One deployed stack, as a reviewer works on it: its tables, bucket, scan queue and event bus."""

    s3: S3Client
    cases: CaseTable
    references: ReferenceTable
    scan_queue: ScanQueue | None = None  # where a confirmed review hold is sent to be quarantined
    events: EventPublisher | None = None

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, str], session: Any = None) -> Target:
        """From the stack's outputs (CaseTableName, ReferenceTableName, QuarantineBucketName, ...)."""
        import boto3

        client = session.client if session is not None else boto3.client  # the default session's clients
        ddb, queue = client("dynamodb"), outputs.get("ScanQueueUrl")
        return cls(
            s3=client("s3"),
            cases=CaseTable(ddb, outputs["CaseTableName"]),
            references=ReferenceTable(ddb, outputs["ReferenceTableName"]),
            scan_queue=ScanQueue(client("sqs"), queue) if queue else None,
            events=EventPublisher(client("events")),
        )


# -- reading --------------------------------------------------------------------------------------


def list_cases(
    target: Target, status: str | None = None, decision: str | None = None, reported: bool | None = None
) -> list[dict]:
    """One summary per case (no hashes), oldest first; filtered by status, decision (`none` for
    undecided) and whether it was reported."""
    rows = []
    for case in target.cases.scan_all():
        if status and case.get("status") != status:
            continue
        if decision and (case.get("decision") or "none") != decision:
            continue
        if reported is not None and bool(case.get("reported_at")) != reported:
            continue
        rows.append({name: case.get(name) for name in SUMMARY_FIELDS})
    return sorted(rows, key=lambda r: (r.get("detected_at") or "", r["case_id"]))


def show_case(target: Target, case_id: str, include_hashes: bool = False) -> dict:
    """The whole case record. Hash values are replaced by a placeholder unless `include_hashes`."""
    case = target.cases.existing(case_id)
    if not include_hashes:
        case["hashes"] = dict.fromkeys(case.get("hashes", {}), HIDDEN)
    return case


def export_audit(target: Target, case_ids: Iterable[str] | None = None) -> Iterator[str]:
    """Every history entry of the cases (all, or those named) as JSON Lines (no newline at the end of
    each): {case_id, seq, at, what, who, why?, detail?}; cases oldest first, entries in order."""
    if case_ids is None:
        chosen = sorted(target.cases.scan_all(), key=lambda c: (c.get("detected_at") or "", c["case_id"]))
    else:
        chosen = [target.cases.existing(case_id) for case_id in case_ids]
    for case in chosen:
        yield from audit_lines(case)


# -- decisions ------------------------------------------------------------------------------------


def confirm_case(target: Target, case_id: str, who: str, why: str) -> dict:
    """A reviewer confirms the match: recorded, announced for the hotline report. Idempotent."""
    _require(who, why)
    cases = target.cases.acting_as(who)
    case = cases.existing(case_id)
    if case.get("decision") == Decision.RELEASED:
        raise DecisionConflict(f"case {case_id} was released")
    hold = case.get("status") == CaseStatus.OPEN and case.get("verdict") == Verdict.REVIEW
    if case.get("status") == CaseStatus.OPEN and not hold:
        raise NotReady(f"case {case_id}: its quarantine is not recorded yet; try again shortly")
    case, _first = cases.decide(case_id, Decision.CONFIRMED, who, why)
    if hold:  # the scan path quarantines it, then announces the confirmation (the report needs the evidence)
        if target.scan_queue is None:
            raise ValueError("confirming a review hold needs the stack's scan queue")
        target.scan_queue.request_quarantine(case_id)
        return cases.note(case_id, "quarantine requested", who)
    if target.events and not case.get("confirm_announced_at"):
        target.events.put(CONFIRMED_EVENT, decision_detail(case))
        case = cases.note(case_id, "queued for the hotline report", who, marker="confirm_announced_at")
    logger.info("case %s confirmed", case_id)
    return case


def release_case(target: Target, case_id: str, who: str, why: str) -> dict:
    """A reviewer releases a false positive: allowlisted, restored, recorded. Idempotent (a retry
    after a crash at any step finishes the release)."""
    _require(who, why)
    cases = target.cases.acting_as(who)
    case = cases.existing(case_id)
    if case.get("decision") == Decision.CONFIRMED:
        raise DecisionConflict(f"case {case_id} was confirmed")
    if case.get("status") == CaseStatus.OPEN and case.get("verdict") == Verdict.MATCH:
        raise NotReady(f"case {case_id}: its quarantine is not recorded yet; try again shortly")
    sha256 = (case.get("hashes") or {}).get("sha256")
    if not sha256:
        raise ValueError(f"case {case_id} has no SHA-256: its bytes cannot be allowlisted")
    case, _first = cases.decide(case_id, Decision.RELEASED, who, why)

    refs = sorted({(m["list"], m["ref_id"]) for m in case.get("matches", [])})
    Allowlist(target.references).add(sha256, case.get("size"), refs, case_id, who, cases.clock())
    detail = {"by": "sha256", "references": [{"list": lst, "ref_id": ref} for lst, ref in refs]}
    case = cases.note(case_id, "allowlisted", who, marker="allowlisted_at", detail=detail)

    if not case.get("restored_at"):
        restored = _restore(target.s3, case)
        case = cases.note(case_id, "restored", who, marker="restored_at", detail=restored, restored=restored)
    case = cases.note(case_id, "released", who, marker="released_at", status=CaseStatus.RELEASED)
    if target.events and not case.get("release_announced_at"):
        target.events.put(RELEASED_EVENT, decision_detail(case))
        case = cases.note(case_id, "release announced", who, marker="release_announced_at")
    logger.info("case %s released", case_id)
    return case


def appeal_case(target: Target, case_id: str, who: str, why: str) -> dict:
    """A customer's appeal, passed on by the hoster: recorded on the case (`appeal`, and in its history)
    for a reviewer, who then releases or confirms it as any case. A decided case takes no appeal."""
    _require(who, why)
    cases = target.cases.acting_as(who)
    case = cases.existing(case_id)
    if case.get("decision"):
        raise DecisionConflict(f"case {case_id} is already {case['decision']}")
    appeal = {"why": why, "who": who, "at": cases.clock()}
    logger.info("case %s appealed", case_id)
    return cases.note(case_id, "appealed", who, detail={"why": why}, appeal=appeal)


def _require(who: str, why: str) -> None:
    if not (who or "").strip() or not (why or "").strip():
        raise ValueError("a decision needs who made it and why")


# -- restoring ------------------------------------------------------------------------------------


def _restore(s3: S3Client, case: Mapping[str, Any]) -> dict:
    """Put the object back where it was; where it is now (bucket, key, version_id, how)."""
    q = case.get("quarantine") or {}
    reason = f"released: case {case['case_id'][:16]}"
    original = ObjectRef(case["bucket"], case["key"], case.get("version_id"), case.get("etag"))
    has_evidence = bool(q.get("evidence_key") and q.get("evidence_version_id"))
    if not q.get("source_deleted") and not q.get("source_missing") and _exists(s3, original):
        try:
            set_status(s3, original, ObjectStatus.RELEASED, reason)
        except ContentChanged:  # unversioned and overwritten since: the key is the customer's new content
            return _where(None, None, None, "not restored: the key holds newer content")
        return _where(original.bucket, original.key, original.version_id, "re-tagged in place")
    if not has_evidence:
        return _where(None, None, None, "nothing to restore: neither the original nor evidence exists")
    return _copy_back(s3, case, q, reason)


def _where(bucket: str | None, key: str | None, version_id: str | None, how: str) -> dict:
    return {"bucket": bucket, "key": key, "version_id": version_id, "how": how}


def _exists(s3: S3Client, obj: ObjectRef) -> bool:
    try:
        s3.head_object(**obj.version_args())
    except ClientError as error:
        if is_gone(error):
            return False
        raise
    return True


def _copy_back(s3: S3Client, case: Mapping[str, Any], q: Mapping[str, Any], reason: str) -> dict:
    bucket, key, sha256 = case["bucket"], case["key"], case["hashes"]["sha256"]
    done = _restored_earlier(s3, bucket, key, reason, sha256)
    if done:
        return _where(bucket, key, done, "copied back from the evidence (found after a retry)")
    evidence = ObjectRef(q["evidence_bucket"], q["evidence_key"], q["evidence_version_id"])
    head: dict[str, Any] = dict(s3.head_object(**evidence.version_args()))
    tags, _displaced = merge_tags(
        get_tags(s3, evidence), {STATUS_TAG: ObjectStatus.RELEASED, REASON_TAG: tag_value(reason)}
    )
    target = {
        "Bucket": bucket,
        "Key": key,
        "Metadata": {k: v for k, v in head.get("Metadata", {}).items() if k not in PROVENANCE},
        "Tagging": urlencode(tags),
        **{name: head[name] for name in CONTENT_HEADERS if head.get(name)},
    }
    version = copy_version(s3, evidence, head["ContentLength"], target)
    if sha256_of(s3, bucket, key, version) != sha256:
        s3.delete_object(**ObjectRef(bucket, key, version).version_args())
        raise RestoreNotVerified(f"restored {key} did not match the evidence; removed it")
    return _where(bucket, key, version, "copied back from the evidence")


def _restored_earlier(s3: S3Client, bucket: str, key: str, reason: str, sha256: str) -> str | None:
    """The version id an earlier attempt restored (the key's latest version, tagged released for this
    case, with the right content), or None."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if is_gone(error):
            return None
        raise
    version = head.get("VersionId")
    tags = get_tags(s3, ObjectRef(bucket, key, version))
    if tags.get(STATUS_TAG) != ObjectStatus.RELEASED or tags.get(REASON_TAG) != tag_value(reason):
        return None
    return version if sha256_of(s3, bucket, key, version) == sha256 else None
