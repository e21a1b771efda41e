"""The one verified S3 copy, used to quarantine (upload -> evidence) and to release (evidence -> upload).

`copy_version` copies exactly one pinned version: one CopyObject up to 5 GB (its limit), UploadPartCopy in
parts above it; an incomplete multipart upload is aborted (and a crash's leftover is removed by the bucket's
lifecycle rule). With `if_match` every request carries the source's ETag, so a source overwritten
meanwhile (an unversioned bucket) fails the copy instead of copying other bytes.

`sha256_of` is what a copy is verified against. A copy asks S3 for a SHA-256 checksum, so for a
single-part copy S3 reports the full-object SHA-256 it computed from the bytes it stored, and verifying
costs a HeadObject. A multipart copy has only a composite checksum (a hash of the parts' hashes), so it
is streamed and hashed, which reads it once more. Comparing ETags would not do: with SSE-KMS an ETag is
not the MD5 of the content.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hashcheck.objects import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_SINGLE_COPY = 5 * 1024**3  # CopyObject's limit
PART_SIZE = 512 * 1024**2
MAX_PARTS = 10_000
CHUNK = 1 << 20
# Headers that MetadataDirective=REPLACE would otherwise drop from the copy.
CONTENT_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl")


def copy_version(
    s3: S3Client,
    source: ObjectRef,
    size: int,
    target: Mapping[str, Any],
    *,
    if_match: str | None = None,
    multipart_threshold: int = MAX_SINGLE_COPY,
    part_size: int = PART_SIZE,
) -> str | None:
    """Copy `source` (its `version_id` pinned when it has one) to `target` (the CopyObject target arguments:
    Bucket, Key, Metadata, Tagging, content headers, encryption); the new version's id (None when the target
    bucket is unversioned). Metadata and tags are those of `target`, never the source's."""
    copy_source = {"Bucket": source.bucket, "Key": source.key}
    if source.version_id:
        copy_source["VersionId"] = source.version_id
    condition: dict[str, Any] = {"CopySourceIfMatch": if_match} if if_match else {}
    if size > multipart_threshold:
        return _multipart_copy(s3, copy_source, size, target, condition, part_size)
    response = s3.copy_object(
        CopySource=copy_source,  # type: ignore[arg-type]
        MetadataDirective="REPLACE",
        TaggingDirective="REPLACE",
        ChecksumAlgorithm="SHA256",
        **condition,
        **target,
    )
    return response.get("VersionId")


def _multipart_copy(
    s3: S3Client, copy_source: dict, size: int, target: Mapping[str, Any], condition: dict, part_size: int
) -> str | None:
    upload = s3.create_multipart_upload(ChecksumAlgorithm="SHA256", **target)
    where = {"Bucket": target["Bucket"], "Key": target["Key"], "UploadId": upload["UploadId"]}
    try:
        parts = []
        for number, (first, last) in enumerate(part_ranges(size, part_size), 1):
            result = s3.upload_part_copy(
                **where,
                PartNumber=number,
                CopySource=copy_source,  # type: ignore[arg-type]
                CopySourceRange=f"bytes={first}-{last}",
                **condition,
            )["CopyPartResult"]
            part = {"PartNumber": number, "ETag": result["ETag"]}
            if result.get("ChecksumSHA256"):
                part["ChecksumSHA256"] = result["ChecksumSHA256"]
            parts.append(part)
        done = s3.complete_multipart_upload(**where, MultipartUpload={"Parts": parts})  # type: ignore[typeddict-item]
    except Exception:
        s3.abort_multipart_upload(**where)
        raise
    return done.get("VersionId")


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges covering `size`, at most 10,000 parts (S3's limit)."""
    part_size = max(part_size, math.ceil(size / MAX_PARTS))
    return [(first, min(first + part_size, size) - 1) for first in range(0, size, part_size)]


def sha256_of(
    s3: S3Client, bucket: str, key: str, version_id: str | None = None, head: Mapping[str, Any] | None = None
) -> str:
    """The object version's SHA-256 as hex: S3's full-object checksum when it has one (from `head`, a
    HeadObject made with ChecksumMode=ENABLED, or a new one), else streamed."""
    args: dict[str, Any] = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    if head is None:
        head = s3.head_object(**args, ChecksumMode="ENABLED")
    return full_object_sha256(head) or stream_sha256(s3, bucket, key, version_id)


def stream_sha256(s3: S3Client, bucket: str, key: str, version_id: str | None = None) -> str:
    args: dict[str, Any] = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    digest = hashlib.sha256()
    for chunk in s3.get_object(**args)["Body"].iter_chunks(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def full_object_sha256(head: Mapping[str, Any]) -> str | None:
    """S3's SHA-256 of the whole object as hex, or None if it has none (or only a composite of parts).

    A multipart object's SHA-256 is a hash of its parts' hashes, not of the content; its ETag ends in
    `-<parts>`, which tells it apart even where the response omits ChecksumType.
    """
    value = head.get("ChecksumSHA256")
    multipart = "-" in head.get("ETag", "") or "-" in (value or "") or head.get("ChecksumType") == "COMPOSITE"
    if not value or multipart:
        return None
    return base64.b64decode(value).hex()
