"""Move a matched object version into the locked evidence bucket, losing nothing on the way.

Order (each step safe to repeat, so a retry after a crash at any point finishes the job):
1. (tag-only mode: the `quarantined` status tag is the whole quarantine; the bucket policy blocks it.)
2. copy that exact source version to `evidence/{case_id}/{key}`; the case id is the version's
   identity, so one source version has exactly one evidence key and a retry finds the copy it made;
3. verify the copy (below); a copy that does not verify raises, the source stays where it is,
   still tagged `quarantined` (blocked), and the caller's retry copies again;
4. legal hold ON on the evidence version;
5. (move mode) delete the source *version* by VersionId: never a bare delete, which on a versioned
   bucket only adds a delete marker and leaves the data behind it.

Verification: the evidence version's SHA-256 must equal the SHA-256 of the source content the
scanner fingerprinted (`expected_sha256`; when the caller has none, the source is streamed once
to get it). The copy asks S3 for a SHA-256 checksum (`ChecksumAlgorithm`), so for a single-part
copy S3 reports the full-object SHA-256 it computed from the bytes it stored, and verifying costs a
HeadObject. Comparing ETags would not do: with SSE-KMS an ETag is not the MD5 of the content.
When S3 has no full-object SHA-256 (multipart copies get a composite checksum of their parts) the
evidence is streamed and hashed. The expected SHA-256 is also written into the evidence metadata,
so a retry can verify the evidence after the source is gone.

Objects over 5 GB (CopyObject's limit) are copied with UploadPartCopy and verified by streaming,
which reads the whole object once more: the function's timeout bounds the size this can finish.
An incomplete multipart upload left by a crash is aborted by the evidence bucket's lifecycle rule.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
from dataclasses import asdict, dataclass
from urllib.parse import quote, urlencode

from botocore.exceptions import ClientError

from hashcheck.objects import ObjectRef, get_status, get_tags, is_gone, set_status

logger = logging.getLogger(__name__)

MODES = ("move", "tag-only", "copy-only")
EVIDENCE_PREFIX = "evidence"
MAX_SINGLE_COPY = 5 * 1024**3  # CopyObject's limit
PART_SIZE = 512 * 1024**2
MAX_PARTS = 10_000
MAX_METADATA_BYTES = 2048  # S3's limit on user metadata, keys + values in UTF-8
CHUNK = 1 << 20

# Our provenance metadata on the evidence, most important first (see `evidence_metadata`).
META_CASE_ID = "hashcheck-case-id"
META_SHA256 = "hashcheck-sha256"
META_SOURCE_VERSION = "hashcheck-source-version-id"
META_SOURCE_ETAG = "hashcheck-source-etag"
META_SOURCE_BUCKET = "hashcheck-source-bucket"
META_SOURCE_KEY = "hashcheck-source-key"  # percent-encoded: metadata travels in HTTP headers

# Headers that MetadataDirective=REPLACE would otherwise drop from the copy.
CONTENT_HEADERS = ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl")


class CopyNotVerified(Exception):
    """The evidence copy does not match the source; retry (the source is untouched and blocked)."""


@dataclass
class QuarantineResult:
    mode: str
    evidence_bucket: str | None
    evidence_key: str | None
    evidence_version_id: str | None
    checksum_verified: bool
    source_deleted: bool
    source_missing: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


class Quarantine:
    def __init__(
        self,
        s3,
        evidence_bucket: str,
        mode: str = "move",
        legal_hold: bool = True,
        kms_key_id: str | None = None,
        *,
        multipart_threshold: int = MAX_SINGLE_COPY,
        part_size: int = PART_SIZE,
    ):
        if mode not in MODES:
            raise ValueError(f"unknown quarantine mode {mode!r}; expected one of {MODES}")
        self.s3 = s3
        self.evidence_bucket = evidence_bucket
        self.mode = mode
        self.legal_hold = legal_hold
        self.kms_key_id = kms_key_id
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size

    def evidence_key(self, obj: ObjectRef, case_id: str) -> str:
        return f"{EVIDENCE_PREFIX}/{case_id}/{obj.key}"

    def quarantine(self, obj: ObjectRef, case_id: str, expected_sha256: str | None = None) -> QuarantineResult:
        """Quarantine this object version; idempotent. Pass the fingerprint's SHA-256 as `expected_sha256`."""
        source = self._head_source(obj)
        if self.mode == "tag-only":
            return self._tag_only(obj, source)
        key = self.evidence_key(obj, case_id)
        evidence = self._verified_evidence(obj, source, key, case_id, expected_sha256)
        if evidence is None:
            return self._missing(key)
        if self.legal_hold:
            self._hold(key, evidence["VersionId"])
        if self.mode == "move" and source is not None:
            self._delete_source(obj, source)
        # In move mode a source already gone (deleted by our earlier attempt) counts as deleted: that is the end state.
        deleted = self.mode == "move"
        return QuarantineResult(self.mode, self.evidence_bucket, key, evidence["VersionId"], True, deleted)

    def _verified_evidence(
        self, obj: ObjectRef, source: dict | None, key: str, case_id: str, expected_sha256: str | None
    ) -> dict | None:
        """The evidence version matching the source: one an earlier attempt made, or a new copy.

        None when the source is gone and no verified evidence exists; raises CopyNotVerified when a
        new copy does not match.
        """
        existing = self._head_evidence(key)
        expected = expected_sha256 or _recorded_sha256(existing) or (source and self._source_sha256(obj, source))
        if existing and self._verifies(key, existing, expected):
            return existing
        if source is None:
            logger.warning("source version gone before quarantine and no verified evidence: case %s", case_id)
            return None
        evidence = self._copy(obj, source, key, case_id, expected)
        if not self._verifies(key, evidence, expected):
            raise CopyNotVerified(f"evidence {key} version {evidence['VersionId']} does not match the source")
        return evidence

    # -- source --------------------------------------------------------------------------------

    def _head_source(self, obj: ObjectRef) -> dict | None:
        """HeadObject of exactly the scanned version, or None when it is gone or its content changed."""
        try:
            head = self.s3.head_object(**obj.version_args())
        except ClientError as error:
            if is_gone(error):
                return None
            raise
        if obj.etag and head["ETag"].strip('"') != obj.etag:
            # Unversioned bucket, key overwritten since the scan: the matched content is gone.
            logger.warning("source content changed since the scan (ETag differs); treating it as gone")
            return None
        return head

    def _source_sha256(self, obj: ObjectRef, source: dict) -> str:
        return self._stream_sha256(obj.bucket, obj.key, source.get("VersionId"))

    def _delete_source(self, obj: ObjectRef, source: dict) -> None:
        version = source.get("VersionId")
        if version:
            self.s3.delete_object(Bucket=obj.bucket, Key=obj.key, VersionId=version)
        else:  # an unversioned bucket: a delete removes the data itself, no delete marker exists
            self.s3.delete_object(Bucket=obj.bucket, Key=obj.key)

    def _tag_only(self, obj: ObjectRef, source: dict | None) -> QuarantineResult:
        if source is None:
            return QuarantineResult("tag-only", None, None, None, False, False, source_missing=True)
        pinned = _pinned(obj, source)
        if get_status(self.s3, pinned) != "quarantined":
            set_status(self.s3, pinned, "quarantined")
        return QuarantineResult("tag-only", None, None, None, False, False)

    # -- evidence --------------------------------------------------------------------------------

    def _head_evidence(self, key: str, version_id: str | None = None) -> dict | None:
        args = {"Bucket": self.evidence_bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id:
            args["VersionId"] = version_id
        try:
            return self.s3.head_object(**args)
        except ClientError as error:
            if is_gone(error):
                return None
            raise

    def _copy(self, obj: ObjectRef, source: dict, key: str, case_id: str, expected: str) -> dict:
        """Copy the source version with its metadata, content headers and tags; the new evidence's head."""
        provenance = {
            META_CASE_ID: case_id,
            META_SHA256: expected,
            META_SOURCE_VERSION: source.get("VersionId") or "",
            META_SOURCE_ETAG: source["ETag"].strip('"'),
            META_SOURCE_BUCKET: obj.bucket,
            META_SOURCE_KEY: quote(obj.key, safe="/"),
        }
        target = {
            "Bucket": self.evidence_bucket,
            "Key": key,
            "Metadata": evidence_metadata(source.get("Metadata", {}), provenance),
            "Tagging": urlencode(get_tags(self.s3, _pinned(obj, source))),
            **{name: source[name] for name in CONTENT_HEADERS if source.get(name)},
            **self._encryption(),
        }
        copy_source = {"Bucket": obj.bucket, "Key": obj.key}
        if source.get("VersionId"):
            copy_source["VersionId"] = source["VersionId"]
        if source["ContentLength"] > self.multipart_threshold:
            version = self._multipart_copy(copy_source, source, target)
        else:
            version = self._single_copy(copy_source, source, target)
        return self._head_evidence(key, version)

    def _single_copy(self, copy_source: dict, source: dict, target: dict) -> str:
        response = self.s3.copy_object(
            CopySource=copy_source,
            CopySourceIfMatch=source["ETag"],
            MetadataDirective="REPLACE",
            TaggingDirective="REPLACE",
            ChecksumAlgorithm="SHA256",
            **target,
        )
        return response["VersionId"]

    def _multipart_copy(self, copy_source: dict, source: dict, target: dict) -> str:
        upload = self.s3.create_multipart_upload(ChecksumAlgorithm="SHA256", **target)
        where = {"Bucket": target["Bucket"], "Key": target["Key"], "UploadId": upload["UploadId"]}
        try:
            parts = [
                self._copy_part(where, copy_source, source["ETag"], number, first, last)
                for number, (first, last) in enumerate(part_ranges(source["ContentLength"], self.part_size), 1)
            ]
            done = self.s3.complete_multipart_upload(**where, MultipartUpload={"Parts": parts})
        except Exception:
            self.s3.abort_multipart_upload(**where)
            raise
        return done["VersionId"]

    def _copy_part(self, where: dict, copy_source: dict, etag: str, number: int, first: int, last: int) -> dict:
        response = self.s3.upload_part_copy(
            **where,
            PartNumber=number,
            CopySource=copy_source,
            CopySourceIfMatch=etag,
            CopySourceRange=f"bytes={first}-{last}",
        )
        result = response["CopyPartResult"]
        part = {"PartNumber": number, "ETag": result["ETag"]}
        if result.get("ChecksumSHA256"):
            part["ChecksumSHA256"] = result["ChecksumSHA256"]
        return part

    def _encryption(self) -> dict:
        if not self.kms_key_id:
            return {}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    def _verifies(self, key: str, evidence: dict, expected_sha256: str | None) -> bool:
        if not expected_sha256:
            return False  # nothing to compare with: never call unverified evidence verified
        stored = _full_object_sha256(evidence)
        actual = stored or self._stream_sha256(self.evidence_bucket, key, evidence["VersionId"])
        return actual == expected_sha256

    def _hold(self, key: str, version_id: str) -> None:
        # PutObjectLegalHold is idempotent: setting it again on every attempt covers a crash right after the copy.
        self.s3.put_object_legal_hold(
            Bucket=self.evidence_bucket, Key=key, VersionId=version_id, LegalHold={"Status": "ON"}
        )

    def _missing(self, key: str) -> QuarantineResult:
        """The source is gone: say so, pointing at any unverified evidence an earlier attempt left."""
        existing = self._head_evidence(key)
        if existing is None:
            return QuarantineResult(self.mode, None, None, None, False, False, source_missing=True)
        version = existing["VersionId"]
        return QuarantineResult(self.mode, self.evidence_bucket, key, version, False, False, source_missing=True)

    def _stream_sha256(self, bucket: str, key: str, version_id: str | None) -> str:
        args = {"Bucket": bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        digest = hashlib.sha256()
        for chunk in self.s3.get_object(**args)["Body"].iter_chunks(CHUNK):
            digest.update(chunk)
        return digest.hexdigest()


def evidence_metadata(original: dict[str, str], provenance: dict[str, str]) -> dict[str, str]:
    """The source's own metadata, all of it, plus as much of our provenance as fits in S3's 2 KB.

    The customer's metadata is evidence and is kept whole. Provenance entries are added in order of
    importance while they fit; the case record holds all of them anyway (bucket, key, version, ETag).
    """
    metadata = dict(original)
    used = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    for name, value in provenance.items():
        size = len(name.encode()) + len(value.encode())
        if used + size <= MAX_METADATA_BYTES:
            metadata[name] = value
            used += size
    return metadata


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges covering `size`, at most 10,000 parts (S3's limit)."""
    part_size = max(part_size, math.ceil(size / MAX_PARTS))
    return [(first, min(first + part_size, size) - 1) for first in range(0, size, part_size)]


def _full_object_sha256(head: dict) -> str | None:
    """S3's SHA-256 of the whole object as hex, or None if it has none (or only a composite of parts).

    A multipart object's SHA-256 is a hash of its parts' hashes, not of the content; its ETag ends in
    `-<parts>`, which tells it apart even where the response omits ChecksumType.
    """
    value = head.get("ChecksumSHA256")
    multipart = "-" in head.get("ETag", "") or "-" in (value or "") or head.get("ChecksumType") == "COMPOSITE"
    if not value or multipart:
        return None
    return base64.b64decode(value).hex()


def _recorded_sha256(evidence: dict | None) -> str | None:
    return (evidence or {}).get("Metadata", {}).get(META_SHA256)


def _pinned(obj: ObjectRef, source: dict) -> ObjectRef:
    """`obj` pinned to the version HeadObject resolved (an event may lack the version id)."""
    return ObjectRef(obj.bucket, obj.key, source.get("VersionId") or obj.version_id, obj.etag, obj.size)
