"""What reaches the scan dead-letter queue is judged too: no object is left without a status.

A message lands there when its scan failed on every attempt, including the failures the scan
function cannot answer itself: a timeout or an out-of-memory kill on the last attempt (the handler
never reaches its own `error` tagging), or EventBridge failing to deliver the object-created event at
all (the rule's dead-letter target is the same queue). Each object such a message names is tagged
`error` (blocked like `quarantined`) and recorded with the reason, unless it already has a final
status: a match whose move failed stays `quarantined`, a scan that did finish keeps its verdict (a
clean one is known by its FingerprintTable record: clean objects may be left untagged).

This runs in its own function that never reads object content: it tags and records, nothing more.
An `error` object is scanned again by the backfill (`error` is not a final status).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from hashcheck.aws import is_gone
from hashcheck.jobs.s3events import confirmed_case_in, uploads_from_body
from hashcheck.objects import ContentChanged, ObjectRef, get_status, set_status
from hashcheck.status import FINAL, Absence, ObjectStatus
from hashcheck.tables.case_table import CaseNotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from hashcheck.tables.case_table import CaseTable
    from hashcheck.tables.fingerprint_table import FingerprintTable

logger = logging.getLogger(__name__)

DEAD_LETTERED = "every scan attempt failed (dead-lettered)"


@dataclass
class Judged:
    """What one dead-lettered message came to; counts only (no keys in metrics)."""

    blocked: int = 0  # tagged error now
    already_judged: int = 0  # had a final status: left as it was
    gone: int = 0  # deleted (or overwritten) before we got here
    cases: list[str] = field(default_factory=list)  # reviewer requests to quarantine that failed


def block_as_error(s3: S3Client, fingerprints: FingerprintTable, obj: ObjectRef, reason: str) -> None:
    """Tag the object `error` (the bucket policy blocks it) and record why: never left unknown."""
    set_status(s3, obj, ObjectStatus.ERROR, reason)
    fingerprints.record(obj, ObjectStatus.ERROR, None, reason=reason)


def _recorded_clean(fingerprints: FingerprintTable, obj: ObjectRef) -> bool:
    """Whether a scan of this very version finished clean: the default read mode leaves a clean object
    untagged, its verdict in the FingerprintTable."""
    record = fingerprints.get(obj)
    return record is not None and record.get("status") == ObjectStatus.CLEAN


def judge(s3: S3Client, fingerprints: FingerprintTable, cases: CaseTable, body: str) -> Judged:
    """Judge the objects one dead-lettered message names; raises on a failure, so the message stays."""
    judged = Judged()
    case_id = confirmed_case_in(body)
    if case_id:  # the object is still tagged `review`, which is blocked: a person must act
        try:
            cases.note(
                case_id, "the quarantine a reviewer asked for failed on every attempt", marker="dead_lettered_at"
            )
        except CaseNotFound:
            logger.warning("dead-lettered request names no case: %s", case_id)
            return judged
        judged.cases.append(case_id)
        return judged
    for upload in uploads_from_body(body):
        obj = upload.obj
        try:
            status = get_status(s3, obj)
        except ClientError as error:
            if not is_gone(error):
                raise
            fingerprints.record(obj, Absence.DELETED, None, reason="gone before its scan could finish")
            judged.gone += 1
            continue
        if status in FINAL or _recorded_clean(fingerprints, obj):
            judged.already_judged += 1
            continue
        try:
            block_as_error(s3, fingerprints, obj, DEAD_LETTERED)
        except ContentChanged:  # an unversioned key overwritten: its new content has its own event
            fingerprints.record(obj, Absence.SUPERSEDED, None, reason="overwritten before its scan could finish")
            judged.gone += 1
            continue
        judged.blocked += 1
    logger.info(
        "dead letter judged",
        extra={"blocked": judged.blocked, "already_judged": judged.already_judged, "gone": judged.gone},
    )
    return judged
