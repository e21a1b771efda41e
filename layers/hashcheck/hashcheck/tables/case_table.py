"""The CaseTable: one record per case, and every DynamoDB call on it.

One case per object version: ``case_id`` is `ObjectRef.identity()` and the record is created with a
conditional PutItem, so a duplicate delivery or a retry finds the case instead of filing a second.
The record is evidence: it holds the object's hashes. What leaves it for alerts and logs is chosen
field by field elsewhere (`hashcheck.response.cases.alert_detail`).

``history`` is append-only (only ever ``list_append``): every change of a case adds {at, what, who}
(+ ``why`` for a person's decision, + ``detail``). No entry holds a hash value, so the history can be
exported (`audit_lines`) and handed to an auditor. Every change that must happen once is a conditional
update, so a retry of the same step changes nothing.

Hotline reporting is recorded beside the status: ``report`` (idempotency key, attempts), a lease
(``report_lease_until``), ``reported_at``, ``report_id``. Alerts: ``notifications.<channel>`` once a
channel is published, ``notified`` once all are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hashcheck.aws import condition_failed
from hashcheck.status import Decision
from hashcheck.tables.dynamo import from_item, put_if_absent, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["CaseNotFound", "CaseTable", "DecisionConflict", "ReportInProgress", "audit_lines", "history_entry"]

KEY = "case_id"
# The outcome as a string makes recording the same result again (a retry) a no-op: no second history entry.
NEW_OUTCOME_ONLY = (
    "attribute_exists(case_id) AND (attribute_not_exists(quarantine_outcome) OR quarantine_outcome <> :o)"
)


class CaseNotFound(Exception):
    pass


class DecisionConflict(Exception):
    """The case already carries the other decision (a confirmed case is never released, and back)."""


class ReportInProgress(Exception):
    """Another worker holds the case's report lease: try again once it has expired."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def history_entry(at: str, what: str, who: str, why: str | None = None, detail: Mapping | None = None) -> dict:
    entry: dict[str, Any] = {"at": at, "what": what, "who": who}
    if why:
        entry["why"] = why
    if detail:
        entry["detail"] = dict(detail)
    return entry


def audit_lines(case: Mapping[str, Any]) -> Iterator[str]:
    """The case's history as JSON Lines, oldest first: {case_id, seq, at, what, who, why?, detail?}.
    History entries never hold hash values; nothing else of the case is exported."""
    for seq, entry in enumerate(case.get("history", [])):
        record = {"case_id": case["case_id"], "seq": seq, **entry}
        yield json.dumps(record, ensure_ascii=False, sort_keys=True)


class CaseTable:
    def __init__(self, client: DynamoDBClient, name: str, clock: Callable[[], str] = _now, who: str | None = None):
        self.client = client
        self.name = name
        self.clock = clock
        self.who = who or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "hashcheck")

    def __repr__(self) -> str:
        return f"CaseTable({self.name!r})"

    def acting_as(self, who: str) -> CaseTable:
        """The same table, writing `who` into the history entries it adds by itself."""
        return CaseTable(self.client, self.name, self.clock, who)

    @staticmethod
    def definition(name: str) -> dict:
        """CreateTable arguments (the template declares the same)."""
        return {
            "TableName": name,
            "KeySchema": [{"AttributeName": KEY, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": KEY, "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }

    def entry(self, what: str, **extra: Any) -> dict:
        """A history entry for now, by this table's `who`."""
        return history_entry(self.clock(), what, extra.pop("who", None) or self.who, **extra)

    # -- reading --------------------------------------------------------------------------------------

    def get(self, case_id: str) -> dict | None:
        response = self.client.get_item(TableName=self.name, Key=to_item({KEY: case_id}), ConsistentRead=True)
        return from_item(response["Item"]) if "Item" in response else None

    def existing(self, case_id: str) -> dict:
        case = self.get(case_id)
        if case is None:
            raise CaseNotFound(case_id)
        return case

    def scan_all(self) -> Iterator[dict]:
        """Every case (a paginated Scan: the CaseTable holds cases only)."""
        for page in self.client.get_paginator("scan").paginate(TableName=self.name, ConsistentRead=True):
            for item in page.get("Items", []):
                yield from_item(item)

    # -- filing and the quarantine outcome --------------------------------------------------------------

    def put_new(self, case: Mapping[str, Any]) -> dict:
        """File `case`, or return the one already filed under its id."""
        if not put_if_absent(self.client, self.name, case, KEY):
            return self.existing(case[KEY])
        return dict(case)

    def record_quarantine(self, case_id: str, outcome: Mapping[str, Any], status: str, mode: str) -> dict:
        """Record the quarantine outcome once; recording the same outcome again changes nothing."""
        case, _updated = self._update_once(
            case_id,
            "SET quarantine = :q, quarantine_outcome = :o, #status = :s, updated_at = :at, "
            "history = list_append(history, :h)",
            NEW_OUTCOME_ONLY,
            {"#status": "status"},
            {
                ":q": dict(outcome),
                ":o": json.dumps(outcome, sort_keys=True),
                ":s": status,
                ":at": self.clock(),
                ":h": [self.entry(f"quarantine {mode}: {status}")],
            },
        )
        return case

    # -- review decisions -------------------------------------------------------------------------------

    def decide(self, case_id: str, decision: Decision, who: str, why: str, **extra: Any) -> tuple[dict, bool]:
        """Record a reviewer's decision once: (the case, True) the first time; (the case, False) when the
        same decision is already recorded (a retry). DecisionConflict if the other decision is."""
        what = "confirmed" if decision == Decision.CONFIRMED else "release started"
        now = self.clock()
        sets = ["decision = :d", "decided_by = :who", "decided_at = :at", "decision_reason = :why", "updated_at = :at"]
        values = {":d": decision, ":who": who, ":at": now, ":why": why, ":h": [history_entry(now, what, who, why)]}
        names: dict[str, str] = {}
        for n, (name, value) in enumerate(extra.items()):
            names[f"#x{n}"] = name
            sets.append(f"#x{n} = :x{n}")
            values[f":x{n}"] = value
        expression = "SET " + ", ".join(sets) + ", history = list_append(history, :h)"
        case, updated = self._update_once(
            case_id, expression, "attribute_exists(case_id) AND attribute_not_exists(decision)", names, values
        )
        if updated:
            return case, True
        if case.get("decision") != decision:
            raise DecisionConflict(f"case {case_id} is already {case.get('decision')}") from None
        return case, False

    def note(
        self,
        case_id: str,
        what: str,
        who: str | None = None,
        marker: str | None = None,
        detail: Mapping | None = None,
        **fields: Any,
    ) -> dict:
        """Set `fields` and append one history entry. With `marker`, only once: the entry and fields are
        written only if the attribute `marker` is not set yet (it is set to the time), so a retry of
        the same step adds nothing."""
        now = self.clock()
        sets = ["updated_at = :at", "history = list_append(history, :h)"]
        values: dict[str, Any] = {":at": now, ":h": [history_entry(now, what, who or self.who, detail=detail)]}
        condition = "attribute_exists(case_id)"
        names: dict[str, str] = {}
        if marker:
            names["#marker"] = marker
            sets.append("#marker = :at")
            condition += " AND attribute_not_exists(#marker)"
        for n, (name, value) in enumerate(fields.items()):
            names[f"#f{n}"] = name
            sets.append(f"#f{n} = :f{n}")
            values[f":f{n}"] = value
        case, _updated = self._update_once(case_id, "SET " + ", ".join(sets), condition, names, values)
        return case

    # -- hotline report -----------------------------------------------------------------------------------

    def claim_report(self, case_id: str, idempotency_key: str, lease_seconds: int, now_epoch: int) -> dict:
        """Take the report lease (one worker posts at a time) and count the attempt; the case after.

        ReportInProgress when another worker holds an unexpired lease. A case already reported is
        returned unchanged (the caller sees `reported_at`)."""
        self._update_if(  # the report record, once: its idempotency key never changes afterwards
            case_id,
            "SET #report = :init",
            "attribute_exists(case_id) AND attribute_not_exists(#report)",
            {"#report": "report"},
            {":init": {"idempotency_key": idempotency_key, "attempts": 0}},
        )
        case = self._update_if(
            case_id,
            "SET report_lease_until = :until, #report.attempts = #report.attempts + :one, "
            "#report.last_attempt_at = :at",
            "attribute_exists(case_id) AND attribute_not_exists(reported_at) AND "
            "(attribute_not_exists(report_lease_until) OR report_lease_until < :now)",
            {"#report": "report"},
            {":until": now_epoch + lease_seconds, ":now": now_epoch, ":one": 1, ":at": self.clock()},
        )
        if case is not None:
            return case
        case = self.existing(case_id)
        if case.get("reported_at"):
            return case
        raise ReportInProgress(case_id)

    def record_report(self, case_id: str, report_id: str | None, endpoint_host: str) -> tuple[dict, bool]:
        """Record the hotline's acceptance once: (case, True) if this call recorded it."""
        now = self.clock()
        detail = {"endpoint": endpoint_host, "report_id": report_id}
        return self._update_once(
            case_id,
            "SET reported_at = :at, report_id = :rid, report_endpoint = :host, updated_at = :at, "
            "history = list_append(history, :h) REMOVE report_lease_until",
            "attribute_exists(case_id) AND attribute_not_exists(reported_at)",
            {},
            {
                ":at": now,
                ":rid": report_id,
                ":host": endpoint_host,
                ":h": [history_entry(now, "reported", self.who, detail=detail)],
            },
        )

    def record_report_failure(self, case_id: str, failure: str) -> None:
        """Note a failed report attempt (the message goes back to the queue) and free the lease; nothing
        when the case was reported meanwhile."""
        now = self.clock()
        self._update_if(
            case_id,
            "SET updated_at = :at, history = list_append(history, :h) REMOVE report_lease_until",
            "attribute_exists(case_id) AND attribute_not_exists(reported_at)",
            {},
            {":at": now, ":h": [history_entry(now, "report failed", self.who, detail={"failure": failure})]},
        )

    # -- alerts ----------------------------------------------------------------------------------------------

    def mark_channel(self, case_id: str, channel: str) -> None:
        self.client.update_item(
            TableName=self.name,
            Key=to_item({KEY: case_id}),
            UpdateExpression="SET notifications.#channel = :at",
            ExpressionAttributeNames={"#channel": channel},
            ExpressionAttributeValues=to_item({":at": self.clock()}),
        )

    def mark_notified(self, case_id: str) -> None:
        """Once: a concurrent attempt that marked it first leaves nothing to do."""
        values = {":true": True, ":false": False, ":at": self.clock(), ":h": [self.entry("notified")]}
        self._update_if(
            case_id,
            "SET notified = :true, notified_at = :at, history = list_append(history, :h)",
            "notified = :false",
            {},
            values,
        )

    def _update_once(
        self, case_id: str, expression: str, condition: str, names: Mapping[str, str], values: Mapping[str, Any]
    ) -> tuple[dict, bool]:
        """Apply an update whose condition makes it happen once: (the case after it, True), or (the case
        as it stands, False) when the condition no longer holds."""
        case = self._update_if(case_id, expression, condition, names, values)
        return (case, True) if case is not None else (self.existing(case_id), False)

    def _update_if(
        self, case_id: str, expression: str, condition: str, names: Mapping[str, str], values: Mapping[str, Any]
    ) -> dict | None:
        """Apply a conditional update: the case after it, or None when the condition does not hold."""
        args: dict[str, Any] = {"ExpressionAttributeNames": dict(names)} if names else {}
        try:
            response = self.client.update_item(
                TableName=self.name,
                Key=to_item({KEY: case_id}),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_item(values),
                ReturnValues="ALL_NEW",
                **args,
            )
        except ClientError as error:
            if not condition_failed(error):
                raise
            return None
        return from_item(response["Attributes"])
