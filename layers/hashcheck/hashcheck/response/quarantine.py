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

Verification (`hashcheck.response.copy`): the evidence version's SHA-256 must equal the SHA-256 of the
source content the scanner fingerprinted (`expected_sha256`; when the caller has none, the source is
streamed once to get it). The expected SHA-256 is also written into the evidence metadata, so a retry
can verify the evidence after the source is gone. Objects over 5 GB are copied in parts and verified by
streaming, which reads the whole object once more: the function's timeout bounds the size this can finish.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from botocore.exceptions import ClientError

from hashcheck.aws import is_gone, precondition_failed
from hashcheck.objects import ContentChanged, ObjectRef, get_status, get_tags, set_status
from hashcheck.response.copy import CONTENT_HEADERS, MAX_SINGLE_COPY, PART_SIZE, copy_version, sha256_of, stream_sha256
from hashcheck.status import ObjectStatus

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

MODES = ("move", "tag-only", "copy-only")
EVIDENCE_PREFIX = "evidence"
MAX_METADATA_BYTES = 2048  # S3's limit on user metadata, keys + values in UTF-8
MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8

# Our provenance metadata on the evidence, most important first (see `evidence_metadata`).
META_CASE_ID = "hashcheck-case-id"
META_SHA256 = "hashcheck-sha256"
META_SOURCE_VERSION = "hashcheck-source-version-id"
META_SOURCE_ETAG = "hashcheck-source-etag"
META_SOURCE_BUCKET = "hashcheck-source-bucket"
META_SOURCE_KEY = "hashcheck-source-key"  # percent-encoded: metadata travels in HTTP headers
PROVENANCE = (META_CASE_ID, META_SHA256, META_SOURCE_VERSION, META_SOURCE_ETAG, META_SOURCE_BUCKET, META_SOURCE_KEY)


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
    legal_hold: bool = False  # whether the evidence version is under legal hold (what reports say)

    def as_dict(self) -> dict:
        return asdict(self)


class Quarantine:
    def __init__(
        self,
        s3: S3Client,
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
        return evidence_key(obj.key, case_id)

    def quarantine(self, obj: ObjectRef, case_id: str, expected_sha256: str | None = None) -> QuarantineResult:
        """Quarantine this object version; idempotent. Pass the fingerprint's SHA-256 as `expected_sha256`."""
        source = self._head_source(obj)
        if self.mode == "tag-only":
            return self._tag_only(obj, source)
        key = self.evidence_key(obj, case_id)
        evidence = self._verified_evidence(obj, source, key, case_id, expected_sha256)
        if evidence is None:
            return self._missing(key)
        held = self._hold(key, evidence["VersionId"])
        if self.mode == "move" and source is not None:
            self._delete_source(obj, source)
        # In move mode a source already gone (deleted by our earlier attempt) counts as deleted: that is the end state.
        deleted = self.mode == "move"
        return QuarantineResult(
            self.mode, self.evidence_bucket, key, evidence["VersionId"], True, deleted, legal_hold=held
        )

    def _verified_evidence(
        self, obj: ObjectRef, source: dict | None, key: str, case_id: str, expected_sha256: str | None
    ) -> dict | None:
        """The evidence version matching the source: one an earlier attempt made, or a new copy.

        None when the source is gone and no verified evidence exists; raises CopyNotVerified when a
        new copy does not match.
        """
        existing = self._head_evidence(key)
        expected = expected_sha256 or _recorded_sha256(existing)
        if not expected and source is not None:
            expected = self._source_sha256(obj, source)
        if existing and self._verifies(key, existing, expected):
            return existing
        if source is None:
            logger.warning("source version gone before quarantine and no verified evidence: case %s", case_id)
            return None
        assert expected is not None  # the source exists, so its own SHA-256 was read above
        evidence = self._copy(obj, source, key, case_id, expected)
        if evidence is None or not self._verifies(key, evidence, expected):
            raise CopyNotVerified(f"evidence {key} does not match the source")
        return evidence

    # -- source --------------------------------------------------------------------------------

    def _head_source(self, obj: ObjectRef) -> dict | None:
        """HeadObject of exactly the scanned version, or None when it is gone or its content changed."""
        try:
            head: dict[str, Any] = dict(self.s3.head_object(**obj.version_args()))
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
        return stream_sha256(self.s3, obj.bucket, obj.key, source.get("VersionId"))

    def _delete_source(self, obj: ObjectRef, source: dict) -> None:
        version = source.get("VersionId")
        if version:
            self.s3.delete_object(Bucket=obj.bucket, Key=obj.key, VersionId=version)
        else:  # an unversioned bucket: a delete removes the data itself, so only the content we copied
            try:
                self.s3.delete_object(Bucket=obj.bucket, Key=obj.key, IfMatch=source["ETag"])
            except ClientError as error:
                if not precondition_failed(error):
                    raise
                logger.warning("source overwritten after the evidence copy: the new content is left alone")

    def _tag_only(self, obj: ObjectRef, source: dict | None) -> QuarantineResult:
        if source is None:
            return QuarantineResult("tag-only", None, None, None, False, False, source_missing=True)
        pinned = _pinned(obj, source)
        if get_status(self.s3, pinned) != ObjectStatus.QUARANTINED:
            try:
                set_status(self.s3, pinned, ObjectStatus.QUARANTINED)
            except ContentChanged:  # overwritten (unversioned): the matched content is gone
                return QuarantineResult("tag-only", None, None, None, False, False, source_missing=True)
        return QuarantineResult("tag-only", None, None, None, False, False)

    # -- evidence --------------------------------------------------------------------------------

    def _head_evidence(self, key: str, version_id: str | None = None) -> dict | None:
        args: dict[str, Any] = {"Bucket": self.evidence_bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id:
            args["VersionId"] = version_id
        try:
            return dict(self.s3.head_object(**args))
        except ClientError as error:
            if is_gone(error):
                return None
            raise

    def _copy(self, obj: ObjectRef, source: dict, key: str, case_id: str, expected: str) -> dict | None:
        """Copy the source version with its metadata, content headers and tags; the new evidence's head."""
        provenance = {
            META_CASE_ID: case_id,
            META_SHA256: expected,
            META_SOURCE_VERSION: source.get("VersionId") or "",
            META_SOURCE_ETAG: source["ETag"].strip('"'),
            META_SOURCE_BUCKET: obj.bucket,
            META_SOURCE_KEY: quote(obj.key, safe="/"),
        }
        pinned = _pinned(obj, source)
        target = {
            "Bucket": self.evidence_bucket,
            "Key": key,
            "Metadata": evidence_metadata(source.get("Metadata", {}), provenance),
            "Tagging": urlencode(get_tags(self.s3, pinned)),
            **{name: source[name] for name in CONTENT_HEADERS if source.get(name)},
            **self._encryption(),
        }
        version = copy_version(
            self.s3,
            pinned,
            source["ContentLength"],
            target,
            if_match=source["ETag"],
            multipart_threshold=self.multipart_threshold,
            part_size=self.part_size,
        )
        return self._head_evidence(key, version)

    def _encryption(self) -> dict:
        if not self.kms_key_id:
            return {}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    def _verifies(self, key: str, evidence: dict, expected_sha256: str | None) -> bool:
        if not expected_sha256:
            return False  # nothing to compare with: never call unverified evidence verified
        return sha256_of(self.s3, self.evidence_bucket, key, evidence["VersionId"], head=evidence) == expected_sha256

    def _hold(self, key: str, version_id: str) -> bool:
        """Legal hold ON (when configured); whether the version is held.

        PutObjectLegalHold is idempotent: setting it again on every attempt covers a crash right after the copy."""
        if not self.legal_hold:
            return False
        self.s3.put_object_legal_hold(
            Bucket=self.evidence_bucket, Key=key, VersionId=version_id, LegalHold={"Status": "ON"}
        )
        return True

    def _missing(self, key: str) -> QuarantineResult:
        """The source is gone: say so, pointing at any unverified evidence an earlier attempt left.

        That copy is all that is left of the object, so it is held like verified evidence."""
        existing = self._head_evidence(key)
        if existing is None:
            return QuarantineResult(self.mode, None, None, None, False, False, source_missing=True)
        version = existing["VersionId"]
        held = self._hold(key, version)
        return QuarantineResult(
            self.mode, self.evidence_bucket, key, version, False, False, source_missing=True, legal_hold=held
        )


def evidence_key(source_key: str, case_id: str) -> str:
    """`evidence/{case_id}/{source key}`; of a key too long for that, as much of its end as fits.

    The case id names one object version, so the key stays unique and a retry finds the same one;
    the full source key is in the case record (and in the provenance metadata when it fits)."""
    prefix = f"{EVIDENCE_PREFIX}/{case_id}/"
    room = MAX_KEY_BYTES - len(prefix.encode())
    tail = source_key.encode()[-room:].decode(errors="ignore")  # drops a character cut in two
    return prefix + tail


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


def _recorded_sha256(evidence: dict | None) -> str | None:
    return (evidence or {}).get("Metadata", {}).get(META_SHA256)


def _pinned(obj: ObjectRef, source: dict) -> ObjectRef:
    """`obj` pinned to the version HeadObject resolved (an event may lack the version id)."""
    return ObjectRef(obj.bucket, obj.key, source.get("VersionId") or obj.version_id, obj.etag, obj.size)
