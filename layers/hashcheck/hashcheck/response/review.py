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
case (a weak near hit left in place) is quarantined first, exactly as the scanner would.

Nothing here logs a hash value. `show_case` hides them unless asked (terminal scrollback is a log too).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from hashcheck.matching.allowlist import Allowlist
from hashcheck.matching.matcher import MATCH, REVIEW
from hashcheck.objects import REASON_TAG, STATUS_TAG, ObjectRef, get_tags, is_gone, merge_tags, set_status, tag_value
from hashcheck.response.cases import (
    CONFIRMED,
    OPEN,
    RELEASED,
    SCHEMA_VERSION,
    CaseNotFound,
    Cases,
    DecisionConflict,
    audit_lines,
)
from hashcheck.response.quarantine import (
    CONTENT_HEADERS,
    MAX_SINGLE_COPY,
    META_CASE_ID,
    META_SHA256,
    META_SOURCE_BUCKET,
    META_SOURCE_ETAG,
    META_SOURCE_KEY,
    META_SOURCE_VERSION,
    PART_SIZE,
    Quarantine,
    part_ranges,
)

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

PROVENANCE = {META_CASE_ID, META_SHA256, META_SOURCE_VERSION, META_SOURCE_ETAG, META_SOURCE_BUCKET, META_SOURCE_KEY}
CONFIRMED_EVENT, RELEASED_EVENT = "HashCheck Case Confirmed", "HashCheck Case Released"
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
)


class NotReady(Exception):
    """The case cannot take this step yet (its quarantine is still running)."""


class RestoreNotVerified(Exception):
    """The restored object's content differs from the evidence; the wrong version was removed."""


@dataclass
class Target:
    """Clients and names of one deployed stack."""

    s3: object
    ddb: object
    case_table: str
    reference_table: str
    quarantine_bucket: str | None = None
    events: object | None = None
    bus_name: str = "default"
    quarantine_mode: str = "move"
    evidence_kms_key: str | None = None

    @classmethod
    def from_outputs(cls, outputs: dict[str, str], session=None, **overrides) -> Target:
        """From the stack's outputs (CaseTableName, ReferenceTableName, QuarantineBucketName)."""
        import boto3

        session = session or boto3.session.Session()
        values = {
            "s3": session.client("s3"),
            "ddb": session.client("dynamodb"),
            "events": session.client("events"),
            "case_table": outputs["CaseTableName"],
            "reference_table": outputs["ReferenceTableName"],
            "quarantine_bucket": outputs.get("QuarantineBucketName"),
        }
        values.update(overrides)
        return cls(**values)

    def cases(self, who: str | None = None) -> Cases:
        cases = Cases(self.ddb, self.case_table, events=self.events, bus_name=self.bus_name)
        if who:
            cases.who = who
        return cases


# -- reading --------------------------------------------------------------------------------------


def list_cases(
    target: Target, status: str | None = None, decision: str | None = None, reported: bool | None = None
) -> list[dict]:
    """One summary per case (no hashes), oldest first; filtered by status, decision (`none` for
    undecided) and whether it was reported."""
    rows = []
    for case in target.cases().scan_all():
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
    case = target.cases().get(case_id)
    if case is None:
        raise CaseNotFound(case_id)
    if not include_hashes:
        case["hashes"] = dict.fromkeys(case.get("hashes", {}), HIDDEN)
    return case


def export_audit(target: Target, case_ids: Iterable[str] | None = None) -> Iterator[str]:
    """Every history entry of the cases (all, or those named) as JSON Lines (no newline at the end of
    each): {case_id, seq, at, what, who, why?, detail?}; cases oldest first, entries in order."""
    cases = target.cases()
    if case_ids is None:
        chosen = sorted(cases.scan_all(), key=lambda c: (c.get("detected_at") or "", c["case_id"]))
    else:
        chosen = []
        for case_id in case_ids:
            case = cases.get(case_id)
            if case is None:
                raise CaseNotFound(case_id)
            chosen.append(case)
    for case in chosen:
        yield from audit_lines(case)


# -- decisions ------------------------------------------------------------------------------------


def confirm_case(target: Target, case_id: str, who: str, why: str) -> dict:
    """A reviewer confirms the match: recorded, announced for the hotline report. Idempotent."""
    _require(who, why)
    cases = target.cases(who)
    case = cases.get(case_id)
    if case is None:
        raise CaseNotFound(case_id)
    if case.get("decision") == RELEASED:
        raise DecisionConflict(f"case {case_id} was released")
    if case.get("status") == OPEN and case.get("verdict") == REVIEW:
        case = _quarantine_review_case(target, cases, case)
    elif case.get("status") == OPEN:
        raise NotReady(f"case {case_id}: its quarantine is not recorded yet; try again shortly")
    case, _first = cases.decide(case_id, CONFIRMED, who, why)
    if target.events and not case.get("confirm_announced_at"):
        _put_event(target, CONFIRMED_EVENT, case)
        case = cases.note(case_id, "queued for the hotline report", who, marker="confirm_announced_at")
    logger.info("case %s confirmed", case_id)
    return case


def release_case(target: Target, case_id: str, who: str, why: str) -> dict:
    """A reviewer releases a false positive: allowlisted, restored, recorded. Idempotent (a retry
    after a crash at any step finishes the release)."""
    _require(who, why)
    cases = target.cases(who)
    case = cases.get(case_id)
    if case is None:
        raise CaseNotFound(case_id)
    if case.get("decision") == CONFIRMED:
        raise DecisionConflict(f"case {case_id} was confirmed")
    if case.get("status") == OPEN and case.get("verdict") == MATCH:
        raise NotReady(f"case {case_id}: its quarantine is not recorded yet; try again shortly")
    sha256 = (case.get("hashes") or {}).get("sha256")
    if not sha256:
        raise ValueError(f"case {case_id} has no SHA-256: its bytes cannot be allowlisted")
    case, _first = cases.decide(case_id, RELEASED, who, why)

    refs = sorted({(m["list"], m["ref_id"]) for m in case.get("matches", [])})
    Allowlist(target.ddb, target.reference_table).add(sha256, case.get("size"), refs, case_id, who, cases.clock())
    detail = {"by": "sha256", "references": [{"list": lst, "ref_id": ref} for lst, ref in refs]}
    case = cases.note(case_id, "allowlisted", who, marker="allowlisted_at", detail=detail)

    if not case.get("restored_at"):
        restored = _restore(target, case)
        case = cases.note(case_id, "restored", who, marker="restored_at", detail=restored, restored=restored)
    case = cases.note(case_id, "released", who, marker="released_at", status=RELEASED)
    if target.events and not case.get("release_announced_at"):
        _put_event(target, RELEASED_EVENT, case)
        case = cases.note(case_id, "release announced", who, marker="release_announced_at")
    logger.info("case %s released", case_id)
    return case


def _require(who: str, why: str) -> None:
    if not (who or "").strip() or not (why or "").strip():
        raise ValueError("a decision needs who made it and why")


def _quarantine_review_case(target: Target, cases: Cases, case: dict) -> dict:
    """A confirmed weak near hit is quarantined the way the scanner quarantines a match."""
    if not target.quarantine_bucket:
        raise ValueError("confirming a review case needs the quarantine bucket")
    obj = ObjectRef(case["bucket"], case["key"], case.get("version_id"), case.get("etag"))
    set_status(target.s3, obj, "quarantined", "confirmed by a reviewer")
    quarantine = Quarantine(
        target.s3, target.quarantine_bucket, mode=target.quarantine_mode, kms_key_id=target.evidence_kms_key
    )
    moved = quarantine.quarantine(obj, case["case_id"], expected_sha256=(case.get("hashes") or {}).get("sha256"))
    return cases.record_quarantine(case["case_id"], moved)


def _put_event(target: Target, detail_type: str, case: dict) -> None:
    detail = {
        "schema_version": SCHEMA_VERSION,
        "case_id": case["case_id"],
        "decision": case.get("decision"),
        "case_status": case.get("status"),
        "verdict": case.get("verdict"),
        "bucket": case["bucket"],
        "key": case["key"],
        "version_id": case.get("version_id"),
        "decided_at": case.get("decided_at"),
    }
    entry = {
        "Source": "hashcheck",
        "DetailType": detail_type,
        "Detail": json.dumps(detail, ensure_ascii=False),
        "EventBusName": target.bus_name,
    }
    response = target.events.put_events(Entries=[entry])
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the {detail_type} event")


# -- restoring ------------------------------------------------------------------------------------


def _restore(target: Target, case: dict) -> dict:
    """Put the object back where it was; where it is now (bucket, key, version_id, how)."""
    q = case.get("quarantine") or {}
    reason = f"released: case {case['case_id'][:16]}"
    original = ObjectRef(case["bucket"], case["key"], case.get("version_id"))
    has_evidence = bool(q.get("evidence_key") and q.get("evidence_version_id"))
    if not q.get("source_deleted") and not q.get("source_missing") and _exists(target.s3, original):
        set_status(target.s3, original, RELEASED, reason)
        return _where(original.bucket, original.key, original.version_id, "re-tagged in place")
    if not has_evidence:
        return _where(None, None, None, "nothing to restore: neither the original nor evidence exists")
    return _copy_back(target.s3, case, q, reason)


def _where(bucket, key, version_id, how: str) -> dict:
    return {"bucket": bucket, "key": key, "version_id": version_id, "how": how}


def _exists(s3, obj: ObjectRef) -> bool:
    try:
        s3.head_object(**obj.version_args())
    except ClientError as error:
        if is_gone(error):
            return False
        raise
    return True


def _copy_back(s3, case: dict, q: dict, reason: str) -> dict:
    bucket, key, sha256 = case["bucket"], case["key"], case["hashes"]["sha256"]
    done = _restored_earlier(s3, bucket, key, reason, sha256)
    if done:
        return _where(bucket, key, done, "copied back from the evidence (found after a retry)")
    evidence = ObjectRef(q["evidence_bucket"], q["evidence_key"], q["evidence_version_id"])
    head = s3.head_object(**evidence.version_args())
    tags, _displaced = merge_tags(get_tags(s3, evidence), {STATUS_TAG: RELEASED, REASON_TAG: tag_value(reason)})
    target = {
        "Bucket": bucket,
        "Key": key,
        "Metadata": {k: v for k, v in head.get("Metadata", {}).items() if k not in PROVENANCE},
        "Tagging": urlencode(tags),
        **{name: head[name] for name in CONTENT_HEADERS if head.get(name)},
    }
    source = {"Bucket": evidence.bucket, "Key": evidence.key, "VersionId": evidence.version_id}
    if head["ContentLength"] > MAX_SINGLE_COPY:
        version = _multipart_copy(s3, source, head["ContentLength"], target)
    else:
        response = s3.copy_object(
            CopySource=source,
            MetadataDirective="REPLACE",
            TaggingDirective="REPLACE",
            ChecksumAlgorithm="SHA256",
            **target,
        )
        version = response.get("VersionId")
    if _sha256(s3, bucket, key, version) != sha256:
        args = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
        s3.delete_object(**args)
        raise RestoreNotVerified(f"restored {key} did not match the evidence; removed it")
    return _where(bucket, key, version, "copied back from the evidence")


def _restored_earlier(s3, bucket: str, key: str, reason: str, sha256: str) -> str | None:
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
    if tags.get(STATUS_TAG) != RELEASED or tags.get(REASON_TAG) != tag_value(reason):
        return None
    return version if _sha256(s3, bucket, key, version) == sha256 else None


def _multipart_copy(s3, source: dict, size: int, target: dict) -> str | None:
    upload = s3.create_multipart_upload(ChecksumAlgorithm="SHA256", **target)
    where = {"Bucket": target["Bucket"], "Key": target["Key"], "UploadId": upload["UploadId"]}
    try:
        parts = []
        for number, (first, last) in enumerate(part_ranges(size, PART_SIZE), 1):
            result = s3.upload_part_copy(
                **where, PartNumber=number, CopySource=source, CopySourceRange=f"bytes={first}-{last}"
            )["CopyPartResult"]
            part = {"PartNumber": number, "ETag": result["ETag"]}
            if result.get("ChecksumSHA256"):
                part["ChecksumSHA256"] = result["ChecksumSHA256"]
            parts.append(part)
        done = s3.complete_multipart_upload(**where, MultipartUpload={"Parts": parts})
    except Exception:
        s3.abort_multipart_upload(**where)
        raise
    return done.get("VersionId")


def _sha256(s3, bucket: str, key: str, version_id: str | None) -> str:
    """The object's SHA-256: S3's full-object checksum when it has one, else streamed."""
    args = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    head = s3.head_object(**args, ChecksumMode="ENABLED")
    value = head.get("ChecksumSHA256")
    composite = "-" in head.get("ETag", "") or "-" in (value or "") or head.get("ChecksumType") == "COMPOSITE"
    if value and not composite:
        return base64.b64decode(value).hex()
    digest = hashlib.sha256()
    for chunk in s3.get_object(**args)["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()
