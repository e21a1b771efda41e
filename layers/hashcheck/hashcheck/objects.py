"""One stored object version, and its hashcheck status tag.

The status (`hashcheck.status.ObjectStatus`) lives in the object's own tag `hashcheck-status` so that the
bucket policy can act on it at once (deny reads of anything not `clean`), with no lookup elsewhere.

S3 allows 10 tags per object, and the customer's tags are theirs. `set_status` merges ours into
theirs with one rule: our status tag is always set. When there is no room:
1. our reason tag is dropped first (it only explains the status);
2. if the customer's own tags already fill all 10 slots, the customer tags last in key order are
   displaced to make room for the status (blocking the object matters more than one tag), and
   `set_status` returns them so the caller can keep them in the case record; nothing is dropped
   silently. A displaced tag's key (never its value) is logged.
GetObjectTagging + PutObjectTagging is not atomic (S3 has no conditional tagging): a customer tag
written between the two calls can be lost. The window is milliseconds, right after an upload.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hashcheck.aws import is_gone, precondition_failed
from hashcheck.status import READABLE, ObjectStatus

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

STATUS_TAG = "hashcheck-status"
REASON_TAG = "hashcheck-reason"
OUR_TAGS = (STATUS_TAG, REASON_TAG)

MAX_TAGS = 10
MAX_TAG_VALUE = 256
# S3 tag values: Unicode letters, digits, spaces and + - = . _ : / @ (S3 API reference, Tag). Tabs and
# newlines are not spaces there, so they are replaced too.
_NOT_ALLOWED_IN_TAG = re.compile(r"[^\w +\-=.:/@]")


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    def __post_init__(self):
        # S3 events give the ETag bare, HeadObject gives it in quotes: one form, so one identity.
        if self.etag is not None:
            object.__setattr__(self, "etag", self.etag.strip('"'))

    def identity(self) -> str:
        """Stable id of this exact object version: the case id and the idempotency key."""
        canonical = json.dumps(
            {"bucket": self.bucket, "key": self.key, "version_id": self.version_id, "etag": self.etag},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def version_args(self) -> dict[str, Any]:
        """Bucket/Key(/VersionId) for an S3 call on exactly this version."""
        args = {"Bucket": self.bucket, "Key": self.key}
        if self.version_id:
            args["VersionId"] = self.version_id
        return args


def tag_value(text: str) -> str:
    """`text` as a valid S3 tag value: disallowed characters become '_', at most 256 characters."""
    return _NOT_ALLOWED_IN_TAG.sub("_", text)[:MAX_TAG_VALUE]


class ContentChanged(Exception):
    """An unversioned key holds other content than the one judged: the verdict is not its to carry."""


def set_status(
    s3: S3Client,
    obj: ObjectRef,
    status: ObjectStatus,
    reason: str | None = None,
    tag_clean: bool = True,
    untagged: bool = False,
) -> dict[str, str]:
    """Tag this object version with `status` (and `reason`), keeping the customer's tags.

    With `tag_clean` False (the deny-list read mode's default), `clean` is written only over a status of
    ours: an untagged object is readable in that mode already, and its verdict is in the FingerprintTable,
    so a clean upload costs a GetObjectTagging instead of a PutObjectTagging too (a PUT-class request,
    $5 per million). With `untagged` (the version carried no tags at all when it was read, as nearly
    every fresh upload), there is no status of ours to write over and not even the lookup is made. A
    status of ours set between that read and now can only come from another scan of the same version
    (the same verdict) or from the dead-letter path, which tags `error` after every attempt ended: it
    stays, and the object stays blocked, never the other way round.

    Returns the customer tags that had to be displaced to fit the status (normally none). A version
    that no longer exists has nothing left to block: that is logged, not raised, so a redelivery
    after the quarantine deleted the source can go on to finish the case.

    An unversioned key can be overwritten at any moment and S3 has no conditional tagging, so its
    content is checked (the ETag judged) before and after tagging: ContentChanged if it differs
    before; if it differs after, our tag may sit on the new content, so a readable status is turned
    into `pending` (blocked until the new content's own scan) before ContentChanged is raised.
    """
    if status not in set(ObjectStatus):
        raise ValueError(f"unknown status {status!r}; expected one of {[str(s) for s in ObjectStatus]}")
    guarded = obj.version_id is None and obj.etag is not None
    try:
        if guarded:
            _require_content(s3, obj)
        if status == ObjectStatus.CLEAN and not tag_clean and untagged:
            return {}  # nothing of ours on it to replace, and untagged it is readable in this mode
        displaced = _merge_status(s3, obj, status, reason, tag_clean)
        if guarded:
            _require_content_after(s3, obj, status)
        return displaced
    except ClientError as error:
        if not is_gone(error):
            raise
        logger.info("object version gone; status %s not set", status)
        return {}


def _require_content(s3: S3Client, obj: ObjectRef) -> None:
    try:
        s3.head_object(Bucket=obj.bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')
    except ClientError as error:
        if precondition_failed(error):
            raise ContentChanged(f"{obj.key} was overwritten") from None
        raise


def _require_content_after(s3: S3Client, obj: ObjectRef, status: ObjectStatus) -> None:
    try:
        _require_content(s3, obj)
    except ContentChanged:
        if status in READABLE:
            _merge_status(s3, ObjectRef(obj.bucket, obj.key), ObjectStatus.PENDING, "overwritten while being tagged")
        raise


def _merge_status(
    s3: S3Client, obj: ObjectRef, status: ObjectStatus, reason: str | None, tag_clean: bool = True
) -> dict[str, str]:
    existing = get_tags(s3, obj)
    if status == ObjectStatus.CLEAN and not tag_clean and STATUS_TAG not in existing:
        return {}
    ours = {STATUS_TAG: str(status)}
    if reason:
        ours[REASON_TAG] = tag_value(reason)
    tags, displaced = merge_tags(existing, ours)
    if displaced:
        logger.warning("tag limit: displaced customer tags %s to set %s", sorted(displaced), STATUS_TAG)
    tag_set: list[Any] = [{"Key": k, "Value": v} for k, v in tags.items()]
    s3.put_object_tagging(**obj.version_args(), Tagging={"TagSet": tag_set})
    return displaced


def merge_tags(existing: dict[str, str], ours: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The tag set to write (customer tags first, then ours) and the customer tags displaced."""
    customer = {k: v for k, v in existing.items() if k not in OUR_TAGS}
    ours = dict(ours)
    if len(customer) + len(ours) > MAX_TAGS:
        ours.pop(REASON_TAG, None)
    room = MAX_TAGS - len(ours)
    kept_keys = sorted(customer)[:room]
    kept = {k: v for k, v in customer.items() if k in kept_keys}
    displaced = {k: v for k, v in customer.items() if k not in kept_keys}
    return {**kept, **ours}, displaced


def get_tags(s3: S3Client, obj: ObjectRef) -> dict[str, str]:
    response = s3.get_object_tagging(**obj.version_args())
    return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}


def get_status(s3: S3Client, obj: ObjectRef) -> str | None:
    """The object's hashcheck status, or None when it has none (not scanned yet)."""
    return get_tags(s3, obj).get(STATUS_TAG)
