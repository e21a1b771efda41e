"""Object-created notices, in the shapes they reach the scan queue, turned into `Upload`s.

Three shapes arrive: an S3 event notification (keys URL-encoded, `+` for a space), the same wrapped
in an SNS envelope, and an EventBridge "Object Created" event (keys not encoded). Test events and
anything else that names no object give no uploads, rather than an error that would be retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from hashcheck.objects import ObjectRef
from hashcheck.response.review import QUARANTINE_REQUEST


@dataclass(frozen=True)
class Upload:
    obj: ObjectRef
    uploader: dict = field(default_factory=dict)  # principal and source IP, as the event gives them
    event_time: str | None = None


def confirmed_case_in(body: str | dict) -> str | None:
    """The case id of a reviewer's request to quarantine a confirmed review hold, if that is what the
    message is (`{"hashcheck": "quarantine confirmed case", "case_id": ...}`)."""
    message = json.loads(body) if isinstance(body, str) else body
    if isinstance(message, dict) and message.get("hashcheck") == QUARANTINE_REQUEST:
        case_id = message.get("case_id")
        return case_id if isinstance(case_id, str) and case_id else None
    return None


def uploads_from_body(body: str | dict) -> list[Upload]:
    """The uploads one queue message announces."""
    message = json.loads(body) if isinstance(body, str) else body
    if not isinstance(message, dict):
        return []
    if message.get("Type") == "Notification" and isinstance(message.get("Message"), str):
        return uploads_from_body(message["Message"])  # S3 -> SNS -> SQS
    if message.get("detail-type") == "Object Created":
        return [_from_eventbridge(message)]
    return [_from_s3_record(r) for r in message.get("Records", []) if _is_object_created(r)]


def _is_object_created(record: dict) -> bool:
    return record.get("eventSource") == "aws:s3" and str(record.get("eventName", "")).startswith("ObjectCreated")


def _version(value: str | None) -> str | None:
    return None if value in (None, "", "null") else value  # "null" is what unversioned buckets report


def _from_s3_record(record: dict) -> Upload:
    s3, obj = record["s3"], record["s3"]["object"]
    return Upload(
        ObjectRef(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(obj["key"]),
            version_id=_version(obj.get("versionId")),
            etag=obj.get("eTag"),
            size=obj.get("size"),
        ),
        uploader={
            "principal": record.get("userIdentity", {}).get("principalId"),
            "source_ip": record.get("requestParameters", {}).get("sourceIPAddress"),
        },
        event_time=record.get("eventTime"),
    )


def _from_eventbridge(event: dict) -> Upload:
    detail, obj = event["detail"], event["detail"]["object"]
    return Upload(
        ObjectRef(
            bucket=detail["bucket"]["name"],
            key=obj["key"],
            version_id=_version(obj.get("version-id")),
            etag=obj.get("etag") or obj.get("eTag"),  # AWS spells it etag here; moto as S3 notifications do
            size=obj.get("size"),
        ),
        uploader={"principal": detail.get("requester"), "source_ip": detail.get("source-ip-address")},
        event_time=event.get("time"),
    )
