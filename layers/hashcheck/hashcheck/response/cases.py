"""Case records in the CaseTable, and the alerts they raise (SNS + EventBridge `HashCheck Match`).

One case per object version: the case id is `ObjectRef.identity()` and the record is created with a
conditional PutItem, so a duplicate delivery or a retry finds the case instead of filing a second.
The record is evidence: it holds the object's hashes. Alerts and logs never do (the lists are
sensitive): they are built from an allowlist of fields (`alert_detail`), documented in docs/events.md.

Case status: `open` (filed) -> `quarantined` (evidence secured), `blocked` (tag-only mode: blocked
in place) or `source_missing` (gone before we could copy it: a person follows up) -> `released` (a
reviewer found it a false positive: restored, allowlisted; the evidence stays under its hold).
A reviewer's `decision` (`confirmed` or `released`) is final: the other one is refused.
Hotline reporting is recorded beside the status: `report` (idempotency key, attempts, lease),
`reported_at`, `report_id`.

`history` is append-only (only ever `list_append`): every change of a case adds {at, what, who}
(+ `why` for a person's decision, + `detail`): opened, quarantine <mode>: <status>, notified,
confirmed, release started, allowlisted, restored, released, report failed, reported. No entry
holds a hash value, so the history can be exported (`audit_lines`) and handed to an auditor.

Notification is at-least-once. Each channel (SNS, EventBridge) is marked in the case right after it
is published, and `notified` once all are: a crash between publishing and marking makes the retry
publish that one channel again, with the same case id, which consumers use to drop the duplicate.
Marking before publishing would turn that crash into an alert never sent, the worse failure here.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from hashcheck.objects import ObjectRef
from hashcheck.response.quarantine import QuarantineResult

EVENT_DETAIL_TYPE = "HashCheck Match"
SCHEMA_VERSION = "1"
CHANNELS = ("sns", "events")
OPEN, QUARANTINED, BLOCKED, SOURCE_MISSING = "open", "quarantined", "blocked", "source_missing"
RELEASED, CONFIRMED = "released", "confirmed"  # `released` is a status and a decision; `confirmed` a decision
HASH_FIELDS = ("md5", "sha1", "sha256", "pdq", "pdq_quality", "phash")
MAX_SUBJECT = 100  # SNS limit
# The outcome as a string makes recording the same result again (a retry) a no-op: no second history entry.
NEW_OUTCOME_ONLY = (
    "attribute_exists(case_id) AND (attribute_not_exists(quarantine_outcome) OR quarantine_outcome <> :o)"
)

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


class CaseNotFound(Exception):
    pass


class DecisionConflict(Exception):
    """The case already carries the other decision (a confirmed case is never released, and back)."""


class ReportInProgress(Exception):
    """Another worker holds the case's report lease: try again once it has expired."""


def case_table_definition(name: str) -> dict:
    """CreateTable arguments for the CaseTable (the template declares the same)."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "case_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "case_id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Cases:
    def __init__(
        self,
        ddb,
        table_name: str,
        sns=None,
        topic_arn: str | None = None,
        events=None,
        bus_name: str = "default",
        source: str = "hashcheck",
        clock: Callable[[], str] = _now,
    ):
        self.ddb = ddb
        self.table_name = table_name
        self.sns = sns
        self.topic_arn = topic_arn
        self.events = events
        self.bus_name = bus_name
        self.source = source
        self.clock = clock
        self.who = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", source)

    # -- records ----------------------------------------------------------------------------------

    def open_case(
        self,
        obj: ObjectRef,
        fingerprint,
        result,
        list_version: int | None,
        uploader: dict,
        detected_at: str,
        displaced_tags: dict[str, str] | None = None,
        uploaded_at: str | None = None,
    ) -> dict:
        """File the case for this object version, or return the one already filed.

        `uploaded_at`: the S3 event's time (the upload time a hotline report carries)."""
        case = new_case(obj, fingerprint, result, list_version, uploader, detected_at, self._entry("opened"))
        if uploaded_at:
            case["uploaded_at"] = uploaded_at
        if displaced_tags:  # customer tags `set_status` had to drop to fit the status tag
            case["displaced_tags"] = dict(displaced_tags)
        try:
            self.ddb.put_item(
                TableName=self.table_name,
                Item=_to_item(case),
                ConditionExpression="attribute_not_exists(case_id)",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            return self.get(case["case_id"])
        return case

    def record_quarantine(self, case_id: str, result: QuarantineResult) -> dict:
        """Record the quarantine outcome once; recording the same outcome again changes nothing."""
        outcome = json.dumps(result.as_dict(), sort_keys=True)
        status = case_status_after(result)
        try:
            response = self.ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"case_id": case_id}),
                UpdateExpression=(
                    "SET quarantine = :q, quarantine_outcome = :o, #status = :s, updated_at = :at, "
                    "history = list_append(history, :h)"
                ),
                ConditionExpression=NEW_OUTCOME_ONLY,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_to_item(
                    {
                        ":q": result.as_dict(),
                        ":o": outcome,
                        ":s": status,
                        ":at": self.clock(),
                        ":h": [self._entry(f"quarantine {result.mode}: {status}")],
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            return self._existing(case_id)
        return _from_item(response["Attributes"])

    def get(self, case_id: str) -> dict | None:
        response = self.ddb.get_item(TableName=self.table_name, Key=_to_item({"case_id": case_id}), ConsistentRead=True)
        item = response.get("Item")
        return _from_item(item) if item else None

    # -- review decisions ---------------------------------------------------------------------------

    def decide(self, case_id: str, decision: str, who: str, why: str, **extra) -> tuple[dict, bool]:
        """Record a reviewer's decision once: (the case, True) the first time; (the case, False) when the
        same decision is already recorded (a retry). DecisionConflict if the other decision is."""
        if decision not in (CONFIRMED, RELEASED):
            raise ValueError(f"unknown decision {decision!r}")
        what = "confirmed" if decision == CONFIRMED else "release started"
        now = self.clock()
        sets = ["decision = :d", "decided_by = :who", "decided_at = :at", "decision_reason = :why", "updated_at = :at"]
        values = {":d": decision, ":who": who, ":at": now, ":why": why, ":h": [_entry(now, what, who, why)]}
        names = {}
        for n, (name, value) in enumerate(extra.items()):
            names[f"#x{n}"] = name
            sets.append(f"#x{n} = :x{n}")
            values[f":x{n}"] = value
        try:
            response = self.ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"case_id": case_id}),
                UpdateExpression="SET " + ", ".join(sets) + ", history = list_append(history, :h)",
                ConditionExpression="attribute_exists(case_id) AND attribute_not_exists(decision)",
                ExpressionAttributeValues=_to_item(values),
                ReturnValues="ALL_NEW",
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            case = self._existing(case_id)
            if case.get("decision") != decision:
                raise DecisionConflict(f"case {case_id} is already {case.get('decision')}") from None
            return case, False
        return _from_item(response["Attributes"]), True

    def note(
        self,
        case_id: str,
        what: str,
        who: str | None = None,
        marker: str | None = None,
        detail: dict | None = None,
        **fields,
    ) -> dict:
        """Set `fields` and append one history entry. With `marker`, only once: the entry and fields are
        written only if the attribute `marker` is not set yet (it is set to the time), so a retry of
        the same step adds nothing."""
        now = self.clock()
        sets = ["updated_at = :at", "history = list_append(history, :h)"]
        values = {":at": now, ":h": [_entry(now, what, who or self.who, detail=detail)]}
        condition = "attribute_exists(case_id)"
        names = {}
        if marker:
            names["#marker"] = marker
            sets.append("#marker = :at")
            condition += " AND attribute_not_exists(#marker)"
        for n, (name, value) in enumerate(fields.items()):
            names[f"#f{n}"] = name
            sets.append(f"#f{n} = :f{n}")
            values[f":f{n}"] = value
        args = {"ExpressionAttributeNames": names} if names else {}
        try:
            response = self.ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"case_id": case_id}),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeValues=_to_item(values),
                ReturnValues="ALL_NEW",
                **args,
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            return self._existing(case_id)
        return _from_item(response["Attributes"])

    # -- hotline report -----------------------------------------------------------------------------

    def claim_report(self, case_id: str, idempotency_key: str, lease_seconds: int, now_epoch: int) -> dict:
        """Take the report lease (one worker posts at a time) and count the attempt; the case after.

        ReportInProgress when another worker holds an unexpired lease. A case already reported is
        returned unchanged (the caller sees `reported_at`)."""
        try:  # the report record, once: its idempotency key never changes afterwards
            self.ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"case_id": case_id}),
                UpdateExpression="SET #report = :init",
                ConditionExpression="attribute_exists(case_id) AND attribute_not_exists(#report)",
                ExpressionAttributeNames={"#report": "report"},
                ExpressionAttributeValues=_to_item({":init": {"idempotency_key": idempotency_key, "attempts": 0}}),
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
        try:
            response = self.ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"case_id": case_id}),
                UpdateExpression=(
                    "SET report_lease_until = :until, #report.attempts = #report.attempts + :one, "
                    "#report.last_attempt_at = :at"
                ),
                ConditionExpression=(
                    "attribute_exists(case_id) AND attribute_not_exists(reported_at) AND "
                    "(attribute_not_exists(report_lease_until) OR report_lease_until < :now)"
                ),
                ExpressionAttributeNames={"#report": "report"},
                ExpressionAttributeValues=_to_item(
                    {":until": now_epoch + lease_seconds, ":now": now_epoch, ":one": 1, ":at": self.clock()}
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            case = self._existing(case_id)
            if case.get("reported_at"):
                return case
            raise ReportInProgress(case_id) from None
        return _from_item(response["Attributes"])

    def record_report(self, case_id: str, report_id: str | None, endpoint_host: str) -> tuple[dict, bool]:
        """Record the hotline's acceptance once: (case, True) if this call recorded it."""
        now = self.clock()
        try:
            response = self.ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"case_id": case_id}),
                UpdateExpression=(
                    "SET reported_at = :at, report_id = :rid, report_endpoint = :host, updated_at = :at, "
                    "history = list_append(history, :h) REMOVE report_lease_until"
                ),
                ConditionExpression="attribute_exists(case_id) AND attribute_not_exists(reported_at)",
                ExpressionAttributeValues=_to_item(
                    {
                        ":at": now,
                        ":rid": report_id,
                        ":host": endpoint_host,
                        ":h": [
                            _entry(
                                now, "reported", self.who, detail={"endpoint": endpoint_host, "report_id": report_id}
                            )
                        ],
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            return self._existing(case_id), False
        return _from_item(response["Attributes"]), True

    def record_report_failure(self, case_id: str, failure: str) -> None:
        """Note a failed report attempt (the message goes back to the queue) and free the lease."""
        now = self.clock()
        try:
            self.ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"case_id": case_id}),
                UpdateExpression="SET updated_at = :at, history = list_append(history, :h) REMOVE report_lease_until",
                ConditionExpression="attribute_exists(case_id) AND attribute_not_exists(reported_at)",
                ExpressionAttributeValues=_to_item(
                    {":at": now, ":h": [_entry(now, "report failed", self.who, detail={"failure": failure})]}
                ),
            )
        except ClientError as error:
            if not _condition_failed(error):  # reported meanwhile: nothing to note
                raise

    # -- listing ------------------------------------------------------------------------------------

    def scan_all(self):
        """Every case (a paginated Scan: the CaseTable holds cases only)."""
        for page in self.ddb.get_paginator("scan").paginate(TableName=self.table_name, ConsistentRead=True):
            for item in page.get("Items", []):
                yield _from_item(item)

    # -- alerts -----------------------------------------------------------------------------------

    def notify(self, case: dict) -> None:
        """Alert on SNS and EventBridge (whichever are configured), at least once per case."""
        case_id = case["case_id"]
        latest = self.get(case_id) or case  # the caller's copy may predate the quarantine outcome
        if latest.get("notified"):
            return
        detail = alert_detail(latest)
        sent = latest.get("notifications") or {}
        if self.sns and self.topic_arn and "sns" not in sent:
            self._publish_sns(detail)
            self._mark_channel(case_id, "sns")
        if self.events and "events" not in sent:
            self._put_event(detail)
            self._mark_channel(case_id, "events")
        self._mark_notified(case_id)

    def _publish_sns(self, detail: dict) -> None:
        args = {
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

    def _put_event(self, detail: dict) -> None:
        entry = {
            "Source": self.source,
            "DetailType": EVENT_DETAIL_TYPE,
            "Detail": json.dumps(detail, ensure_ascii=False),
            "EventBusName": self.bus_name,
        }
        response = self.events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            failure = response["Entries"][0]
            reason = f"{failure.get('ErrorCode')} {failure.get('ErrorMessage')}"
            raise RuntimeError(f"EventBridge refused the event: {reason}")

    def _mark_channel(self, case_id: str, channel: str) -> None:
        self.ddb.update_item(
            TableName=self.table_name,
            Key=_to_item({"case_id": case_id}),
            UpdateExpression="SET notifications.#channel = :at",
            ExpressionAttributeNames={"#channel": channel},
            ExpressionAttributeValues=_to_item({":at": self.clock()}),
        )

    def _mark_notified(self, case_id: str) -> None:
        try:
            self.ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"case_id": case_id}),
                UpdateExpression="SET notified = :true, notified_at = :at, history = list_append(history, :h)",
                ConditionExpression="notified = :false",
                ExpressionAttributeValues=_to_item(
                    {":true": True, ":false": False, ":at": self.clock(), ":h": [self._entry("notified")]}
                ),
            )
        except ClientError as error:
            if not _condition_failed(error):  # already marked by a concurrent attempt: nothing to do
                raise

    def _existing(self, case_id: str) -> dict:
        case = self.get(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        return case

    def _entry(self, what: str) -> dict:
        return _entry(self.clock(), what, self.who)


def _entry(at: str, what: str, who: str, why: str | None = None, detail: dict | None = None) -> dict:
    entry = {"at": at, "what": what, "who": who}
    if why:
        entry["why"] = why
    if detail:
        entry["detail"] = detail
    return entry


def audit_lines(case: dict):
    """The case's history as JSON Lines, oldest first: {case_id, seq, at, what, who, why?, detail?}.
    History entries never hold hash values; nothing else of the case is exported."""
    for seq, entry in enumerate(case.get("history", [])):
        record = {"case_id": case["case_id"], "seq": seq, **entry}
        yield json.dumps(record, ensure_ascii=False, sort_keys=True)


def new_case(obj: ObjectRef, fingerprint, result, list_version, uploader: dict, detected_at: str, opened: dict) -> dict:
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
        "status": OPEN,
        "notified": False,
        "notifications": {},
        "history": [opened],
    }


def case_status_after(result: QuarantineResult) -> str:
    if result.source_missing:
        return SOURCE_MISSING
    return BLOCKED if result.mode == "tag-only" else QUARANTINED


def alert_detail(case: dict) -> dict:
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


def alert_subject(detail: dict) -> str:
    """An ASCII, one-line subject (SNS rejects others); the key stays in the body."""
    subject = f"hashcheck: {detail['verdict']} in {detail['bucket']} ({detail['case_status']})"
    return subject.encode("ascii", "replace").decode()[:MAX_SUBJECT]


def _list_summary(matches: list[dict]) -> list[dict]:
    per_list: dict[str, dict] = defaultdict(lambda: {"matches": 0, "algorithms": set()})
    for m in matches:
        per_list[m["list"]]["matches"] += 1
        per_list[m["list"]]["algorithms"].add(m["algorithm"])
    return [
        {"list": name, "matches": s["matches"], "algorithms": sorted(s["algorithms"])}
        for name, s in sorted(per_list.items())
    ]


def _quarantine_summary(quarantine: dict) -> dict:
    fields = ("mode", "evidence_bucket", "evidence_key", "evidence_version_id", "checksum_verified")
    return {name: quarantine.get(name) for name in (*fields, "source_deleted", "source_missing")}


def _match_record(match) -> dict:
    record = match.as_dict()
    record.update(acts=match.acts, category=match.category)
    return record


def _uploader(uploader: dict) -> dict:
    """Principal and source IP, accepting our names or the S3 event's."""
    principal = uploader.get("principal") or uploader.get("principal_id") or uploader.get("principalId")
    source_ip = uploader.get("source_ip") or uploader.get("sourceIPAddress")
    return {"principal": principal, "source_ip": source_ip}


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _to_item(values: dict) -> dict:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _from_item(item: dict) -> dict:
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def _plain(value):
    """DynamoDB numbers come back as Decimal: give ints back as ints."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
