"""Cases: filed for every match and review hold, and the alerts they raise (SNS + EventBridge `HashCheck Match`).

The record itself, and every change to it, is the CaseTable's (`hashcheck.tables.case_table`). Here: what a
case holds when it is filed (`new_case`), the status a quarantine outcome gives it, and the alerts. The
record is evidence: it holds the object's hashes. Alerts and logs never do (the lists are sensitive):
they are built from an allowlist of fields (`alert_detail`), documented in docs/events.md.

Case status (`hashcheck.status.CaseStatus`): `open` (filed) -> `quarantined` (evidence secured),
`blocked` (tag-only mode: blocked in place) or `source_missing` (gone before we could copy it: a person
follows up) -> `released` (a reviewer found it a false positive: restored, allowlisted; the evidence
stays under its hold). A reviewer's decision (`confirmed` or `released`) is final: the other one is refused.

Notification is at-least-once. Each channel (SNS, EventBridge) is marked in the case right after it
is published, and `notified` once all are: a crash between publishing and marking makes the retry
publish that one channel again, with the same case id, which consumers use to drop the duplicate.
Marking before publishing would turn that crash into an alert never sent, the worse failure here.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hashcheck.algorithms import EXACT, PERCEPTUAL
from hashcheck.matching.matcher import Match, Result
from hashcheck.objects import ObjectRef
from hashcheck.response.events import EventPublisher
from hashcheck.response.quarantine import QuarantineResult
from hashcheck.status import CaseStatus
from hashcheck.tables.case_table import CaseNotFound, CaseTable, DecisionConflict, ReportInProgress, audit_lines

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from hashcheck.fingerprinting.fingerprint import Fingerprint

__all__ = [
    "EVENT_DETAIL_TYPE",
    "CaseNotFound",
    "Cases",
    "DecisionConflict",
    "ReportInProgress",
    "alert_detail",
    "audit_lines",
    "new_case",
]

EVENT_DETAIL_TYPE = "HashCheck Match"
CONFIRMED_EVENT, RELEASED_EVENT = "HashCheck Case Confirmed", "HashCheck Case Released"
SCHEMA_VERSION = "1"
# The fingerprint's hashes a case keeps as evidence: every algorithm's, and PDQ's quality beside it.
HASH_FIELDS = (*EXACT, *PERCEPTUAL, "pdq_quality")
MAX_SUBJECT = 100  # SNS limit


class Cases:
    def __init__(
        self,
        table: CaseTable,
        sns: SNSClient | None = None,
        topic_arn: str | None = None,
        events: EventPublisher | None = None,
    ):
        self.table = table
        self.sns = sns
        self.topic_arn = topic_arn
        self.events = events

    def get(self, case_id: str) -> dict | None:
        return self.table.get(case_id)

    def open_case(
        self,
        obj: ObjectRef,
        fingerprint: Fingerprint,
        result: Result,
        list_version: int | None,
        uploader: Mapping[str, Any],
        detected_at: str,
        displaced_tags: Mapping[str, str] | None = None,
        uploaded_at: str | None = None,
        tenant: str | None = None,
    ) -> dict:
        """File the case for this object version, or return the one already filed.

        `uploaded_at`: the S3 event's time (the upload time a hotline report carries)."""
        case = new_case(obj, fingerprint, result, list_version, uploader, detected_at, self.table.entry("opened"))
        if uploaded_at:
            case["uploaded_at"] = uploaded_at
        if tenant:  # whose file it is (hashcheck.tenancy): for notices, appeals and the figures
            case["tenant"] = tenant
        if displaced_tags:  # customer tags `set_status` had to drop to fit the status tag
            case["displaced_tags"] = dict(displaced_tags)
        return self.table.put_new(case)

    def record_quarantine(self, case_id: str, result: QuarantineResult) -> dict:
        """Record the quarantine outcome once; recording the same outcome again changes nothing."""
        return self.table.record_quarantine(case_id, result.as_dict(), case_status_after(result), result.mode)

    def notify(self, case: Mapping[str, Any]) -> None:
        """Alert on SNS and EventBridge (whichever are configured), at least once per case."""
        case_id = case["case_id"]
        latest = self.table.get(case_id) or case  # the caller's copy may predate the quarantine outcome
        if latest.get("notified"):
            return
        detail = alert_detail(latest)
        sent = latest.get("notifications") or {}
        if self.sns and self.topic_arn and "sns" not in sent:
            self._publish_sns(detail)
            self.table.mark_channel(case_id, "sns")
        if self.events and "events" not in sent:
            self.events.put(EVENT_DETAIL_TYPE, detail)
            self.table.mark_channel(case_id, "events")
        self.table.mark_notified(case_id)

    def announce(self, event: str, detail: dict) -> None:
        """An alert that is not about one case (a reference held by its breaker): SNS and EventBridge.
        `detail` names lists and references, never a hash value."""
        detail = {"schema_version": SCHEMA_VERSION, **detail}
        if self.sns and self.topic_arn:
            args: dict[str, Any] = {
                "TopicArn": self.topic_arn,
                "Subject": f"hashcheck: {event}"[:MAX_SUBJECT],
                "Message": json.dumps(detail, ensure_ascii=False),
                "MessageAttributes": {"event": {"DataType": "String", "StringValue": event}},
            }
            if self.topic_arn.endswith(".fifo"):
                same = hashlib.sha256(json.dumps(detail, sort_keys=True).encode()).hexdigest()
                args.update(MessageGroupId="hashcheck", MessageDeduplicationId=same)
            self.sns.publish(**args)
        if self.events:
            self.events.put(event, detail)

    def _publish_sns(self, detail: dict) -> None:
        assert self.sns is not None and self.topic_arn is not None
        args: dict[str, Any] = {
            "TopicArn": self.topic_arn,
            "Subject": alert_subject(detail),
            "Message": json.dumps(detail, ensure_ascii=False),
            "MessageAttributes": {
                "event": {"DataType": "String", "StringValue": EVENT_DETAIL_TYPE},
                "bucket": {"DataType": "String", "StringValue": detail["bucket"]},
            },
        }
        if self.topic_arn.endswith(".fifo"):  # a FIFO topic drops a re-sent alert within 5 minutes
            args.update(MessageGroupId=detail["bucket"], MessageDeduplicationId=detail["case_id"])
        self.sns.publish(**args)


def new_case(
    obj: ObjectRef,
    fingerprint: Fingerprint,
    result: Result,
    list_version: int | None,
    uploader: Mapping[str, Any],
    detected_at: str,
    opened: dict,
) -> dict:
    matches = [_match_record(m) for m in result.matches]
    return {
        "case_id": obj.identity(),
        "bucket": obj.bucket,
        "key": obj.key,
        "version_id": obj.version_id,
        "etag": obj.etag,
        "size": obj.size if obj.size is not None else fingerprint.size,
        "uploader": _uploader(uploader or {}),
        "detected_at": detected_at,
        "verdict": result.verdict,
        "matches": matches,
        "lists": sorted({m["list"] for m in matches}),
        "hashes": {name: getattr(fingerprint, name) for name in HASH_FIELDS if getattr(fingerprint, name) is not None},
        "list_version": list_version,
        "status": CaseStatus.OPEN,
        "notified": False,
        "notifications": {},
        "history": [opened],
    }


def case_status_after(result: QuarantineResult) -> CaseStatus:
    if result.source_missing:
        return CaseStatus.SOURCE_MISSING
    return CaseStatus.BLOCKED if result.mode == "tag-only" else CaseStatus.QUARANTINED


def alert_detail(case: Mapping[str, Any]) -> dict:
    """The SNS message and EventBridge detail (docs/events.md). Built field by field: no hash values."""
    quarantine = case.get("quarantine")
    return {
        "schema_version": SCHEMA_VERSION,
        "case_id": case["case_id"],
        "case_status": case.get("status"),
        "bucket": case["bucket"],
        "key": case["key"],
        "version_id": case.get("version_id"),
        "size": case.get("size"),
        "verdict": case.get("verdict"),
        "detected_at": case.get("detected_at"),
        "list_version": case.get("list_version"),
        "match_count": len(case.get("matches", [])),
        "lists": _list_summary(case.get("matches", [])),
        "uploader": case.get("uploader", {}),
        "quarantine": _quarantine_summary(quarantine) if quarantine else None,
    }


def decision_detail(case: Mapping[str, Any]) -> dict:
    """The detail of `HashCheck Case Confirmed` / `Released` (docs/events.md): no hash values."""
    return {
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


def alert_subject(detail: dict) -> str:
    """An ASCII, one-line subject (SNS rejects others); the key stays in the body."""
    subject = f"hashcheck: {detail['verdict']} in {detail['bucket']} ({detail['case_status']})"
    return subject.encode("ascii", "replace").decode()[:MAX_SUBJECT]


def _list_summary(matches: list[dict]) -> list[dict]:
    per_list: dict[str, dict[str, Any]] = defaultdict(lambda: {"matches": 0, "algorithms": set(), "members": set()})
    for m in matches:
        per_list[m["list"]]["matches"] += 1
        per_list[m["list"]]["algorithms"].add(m["algorithm"])
        per_list[m["list"]]["members"].add(m.get("member", ""))
    return [
        {"list": name, "matches": s["matches"], "algorithms": sorted(s["algorithms"]), "members": sorted(s["members"])}
        for name, s in sorted(per_list.items())
    ]


def _quarantine_summary(quarantine: Mapping[str, Any]) -> dict:
    fields = ("mode", "evidence_bucket", "evidence_key", "evidence_version_id", "checksum_verified")
    return {name: quarantine.get(name) for name in (*fields, "legal_hold", "source_deleted", "source_missing")}


def _match_record(match: Match) -> dict:
    record = match.as_dict()
    record.update(acts=match.acts, category=match.category)
    return record


def _uploader(uploader: Mapping[str, Any]) -> dict:
    """Principal and source IP, accepting our names or the S3 event's."""
    principal = uploader.get("principal") or uploader.get("principal_id") or uploader.get("principalId")
    source_ip = uploader.get("source_ip") or uploader.get("sourceIPAddress")
    return {"principal": principal, "source_ip": source_ip}
