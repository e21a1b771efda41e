"""A list file in S3 (e.g. the compliance team's extra list, dropped into the artifacts bucket).

Configuration keys (beside the common ones): ``key`` (required), ``bucket`` (default: the artifacts
bucket), ``max_removed_share`` (default 0.5), and ``list_id``, which is required: the file is a full
list of that list id, and the source owns it.

Checkpoint: ``{"etag", "version_id"}`` of the object applied last. The same ETag again means unchanged:
nothing is downloaded. A new object is read with ``IfMatch`` on the ETag just seen, so the rows and
the checkpoint describe the same object even if it is replaced meanwhile.

Full list, not a delta: a reference the previous file carried and this one does not is withdrawn. The
sync (``full_list = True``) derives what to withdraw from the table itself, not from a stored copy of
the previous file: the live references of ``list_id`` that the new file does not list. Why: the table
is already the source of truth, so there is no second state to keep consistent with it, a crash
between the two cannot leave them disagreeing, and a rerun recomputes the same answer. Why the list
must be owned: otherwise a file would withdraw another source's references. Fail closed: a file that
would withdraw more than ``max_removed_share`` of the list (an empty or truncated upload) is rejected
whole; to withdraw everything on purpose, set it to 1. A missing object changes nothing.
"""

from __future__ import annotations

import logging

from botocore.exceptions import ClientError

from hashcheck.aws import error_code, is_gone
from hashcheck.lists import listformat
from hashcheck.lists.sources import ConfigError, DigestedText, SourceError, SourceSpec
from hashcheck.lists.sources.base import Checkpoint, Delta

log = logging.getLogger(__name__)

DEFAULT_MAX_REMOVED_SHARE = 0.5


class S3Source:
    full_list = True

    def __init__(
        self,
        name: str,
        s3,
        bucket: str,
        key: str,
        list_id: str,
        max_removed_share: float = DEFAULT_MAX_REMOVED_SHARE,
    ):
        self.name = name
        self.list_id = list_id
        self.max_removed_share = max_removed_share
        self._s3 = s3
        self._bucket = bucket
        self._key = key

    @classmethod
    def from_spec(cls, spec: SourceSpec, clients, default_bucket: str | None) -> S3Source:
        options = dict(spec.options)
        bucket, key = options.get("bucket") or default_bucket, options.get("key")
        if not isinstance(key, str) or not key or not isinstance(bucket, str) or not bucket:
            raise ConfigError(f"source {spec.name}: key (and a bucket, or ARTIFACTS_BUCKET) are required")
        if not spec.list_id:
            raise ConfigError(f"source {spec.name}: an s3 source needs a list_id (it owns that list)")
        share = options.get("max_removed_share", DEFAULT_MAX_REMOVED_SHARE)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ConfigError(f"source {spec.name}: max_removed_share must be a number from 0 to 1")
        return cls(spec.name, clients.s3, bucket, key, spec.list_id, float(share))

    def fetch(self, checkpoint: Checkpoint | None) -> Delta:
        current = self._head()
        if current is None:
            log.warning("list file is missing; nothing changes", extra={"source": self.name})
            return Delta(iter(()), dict(checkpoint or {}), unchanged=True, details={"missing": True})
        if checkpoint and checkpoint.get("etag") == current["etag"]:
            return Delta(iter(()), dict(checkpoint), unchanged=True)
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=self._key, IfMatch=current["etag"])
        except ClientError as exc:
            raise SourceError(f"source {self.name}: cannot read the list file ({_code(exc)})") from None
        body = DigestedText(response["Body"].read)
        return Delta(_rows(body, response["Body"]), current, details={"size": response.get("ContentLength")})

    def _head(self) -> dict | None:
        try:
            head = self._s3.head_object(Bucket=self._bucket, Key=self._key)
        except ClientError as exc:
            if is_gone(exc):
                return None
            raise SourceError(f"source {self.name}: cannot look at the list file ({_code(exc)})") from None
        checkpoint = {"etag": head["ETag"]}
        if head.get("VersionId"):
            checkpoint["version_id"] = head["VersionId"]
        return checkpoint


def _rows(body: DigestedText, stream):
    try:
        yield from listformat.read(body.text)
    except (UnicodeDecodeError, listformat.ListFormatError) as exc:
        raise SourceError(f"the list file is unreadable ({exc.__class__.__name__})") from None
    finally:
        stream.close()


def _code(exc: ClientError) -> str:
    return error_code(exc) or "error"
