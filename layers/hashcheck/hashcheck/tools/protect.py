"""The read and tagging rules of a protected bucket, and `hashcheck protect BUCKET` to put them on existing ones.

One definition serves both: template.yaml's UploadBucketPolicy carries exactly `bucket_statements(...)` for
the stack's own bucket (a test renders both and compares them), and `protect` merges the same statements
into the policy of an existing bucket named in `ProtectedBucketNames`, keeping the bucket's own statements.
Our statements are told apart by their Sid prefix, so `protect` replaces them on a rerun and `unprotect`
removes exactly them.

The rules (`aws:PrincipalArn` exemptions name roles by ARN, never by a pattern):
- TLS only;
- an object whose `hashcheck-status` is not clean is unreadable (`BLOCKED`) to all but the scan path;
  with `fail_closed`, an object is readable only once it is `clean` or `released` (an allow-list, so an
  object not scanned yet is unreadable too);
- only the scan path (and reviewers, who restore released objects) sets the status tag, at upload or later;
- a copy (`x-amz-copy-source`) from another bucket is refused to all but the scan path and reviewers:
  `TaggingDirective=COPY` would otherwise bring an attacker's own `clean` tag along. A copy within the
  bucket keeps the status the same bytes already have.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hashcheck.aws import error_code
from hashcheck.objects import STATUS_TAG
from hashcheck.status import BLOCKED, READABLE, ObjectStatus

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SID_PREFIX = "Hashcheck"
EXISTING_STATUS = f"s3:ExistingObjectTag/{STATUS_TAG}"


def bucket_statements(
    bucket: str,
    scanners: Sequence[str],
    reviewer: str,
    fail_closed: bool,
    readers: Sequence[str] = (),
    block_opaque: bool = False,
) -> list[dict]:
    """The statements that protect `bucket` (its name), for the scan path's role ARNs, the reviewer role
    and the roles that only read objects to fingerprint them (`readers`: exempt from the read rules only);
    `block_opaque`: objects holding an encrypted archive are unreadable too."""
    blocked = [*BLOCKED, ObjectStatus.OPAQUE] if block_opaque else list(BLOCKED)
    readable = list(READABLE) if block_opaque else [*READABLE, ObjectStatus.OPAQUE]
    bucket_arn, objects = f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"
    scan_path = {"aws:PrincipalArn": [*scanners, *readers]}
    scan_path_and_reviewers = {"aws:PrincipalArn": [*scanners, reviewer]}
    reads = ["s3:GetObject", "s3:GetObjectVersion"]
    statements: list[dict[str, Any]] = [
        _deny("TlsOnly", "s3:*", [bucket_arn, objects], {"Bool": {"aws:SecureTransport": "false"}}),
        _deny(
            "BlockedIsUnreadable",
            reads,
            objects,
            {"StringEquals": {EXISTING_STATUS: [str(s) for s in blocked]}, "ArnNotEquals": scan_path},
        ),
        _deny(
            "OnlyTheScannerSetsTheStatusAtUpload",
            "s3:PutObject",
            objects,
            {"Null": {f"s3:RequestObjectTag/{STATUS_TAG}": "false"}, "ArnNotEquals": scan_path_and_reviewers},
        ),
        _deny(
            "NoStatusCopiedFromElsewhere",
            "s3:PutObject",
            objects,
            {
                "Null": {"s3:x-amz-copy-source": "false"},
                "StringNotLike": {"s3:x-amz-copy-source": [f"{bucket}/*", f"/{bucket}/*"]},
                "ArnNotEquals": scan_path_and_reviewers,
            },
        ),
        _deny(
            "OnlyTheScannerChangesTags",
            [
                "s3:PutObjectTagging",
                "s3:PutObjectVersionTagging",
                "s3:DeleteObjectTagging",
                "s3:DeleteObjectVersionTagging",
            ],
            objects,
            {"ArnNotEquals": scan_path_and_reviewers},
        ),
    ]
    if fail_closed:
        statements.append(
            _deny(
                "ReadableOnlyOnceClean",
                reads,
                objects,
                {"StringNotEquals": {EXISTING_STATUS: [str(s) for s in readable]}, "ArnNotEquals": scan_path},
            )
        )
    return statements


def _deny(sid: str, action: str | list[str], resource: str | list[str], condition: dict) -> dict:
    return {
        "Sid": SID_PREFIX + sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resource,
        "Condition": condition,
    }


# --- existing buckets --------------------------------------------------------------------------------------------


def merged_policy(current: dict | None, statements: Iterable[dict]) -> dict:
    """The bucket's policy with our statements in place of any earlier ones, its own statements kept."""
    policy = dict(current or {"Version": "2012-10-17"})
    kept = [s for s in policy.get("Statement", []) if not str(s.get("Sid", "")).startswith(SID_PREFIX)]
    policy["Statement"] = [*kept, *statements]
    return policy


def current_policy(s3: S3Client, bucket: str) -> dict | None:
    try:
        return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as error:
        if error_code(error) == "NoSuchBucketPolicy":
            return None
        raise


def protect(s3: S3Client, bucket: str, statements: list[dict]) -> dict:
    """Merge our statements into the bucket's policy; what a person should know (notifications, versioning)."""
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(merged_policy(current_policy(s3, bucket), statements)))
    return check(s3, bucket)


def unprotect(s3: S3Client, bucket: str) -> None:
    """Remove our statements again (a stack deleted), leaving the bucket's own."""
    policy = merged_policy(current_policy(s3, bucket), [])
    if policy["Statement"]:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    else:
        s3.delete_bucket_policy(Bucket=bucket)


def check(s3: S3Client, bucket: str) -> dict:
    """Whether uploads to `bucket` reach the scanner (EventBridge notifications) and whether the scanner
    can read exact versions (versioning): the two things a protected bucket needs besides its policy."""
    notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    return {
        "bucket": bucket,
        "eventbridge_notifications": "EventBridgeConfiguration" in notifications,
        "versioning": versioning or "Disabled",
    }
