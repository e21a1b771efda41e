"""Deltas: the references a sync made live, handed to the re-match as one list file per published version.

In the artifacts bucket::

    deltas/v00000042.jsonl   the references that became live in version 42 (hashcheck list v1 rows)

The sync collects them with ``DeltaWriter`` (``ReferenceTable.apply_rows``'s ``on_added`` hook) and publishes
the file before it bumps the version; the file's creation (S3 -> EventBridge) invokes RematchFunction,
which may also be invoked directly with ``{"version": 42}``.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hashcheck.lists import listformat
from hashcheck.lists.listformat import Reference, Rejected

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

DELTA_PREFIX = "deltas/"


def delta_key(version: int) -> str:
    return f"{DELTA_PREFIX}v{version:08d}.jsonl"


class DeltaWriter:
    """The references that became live during one sync, spooled to a temporary file (a full list's
    first import can add millions) and published as ``deltas/v<version>.jsonl``.

    Use as ``apply_rows(..., on_added=writer.add)``; after every source is applied and before the
    version is bumped: ``writer.publish(s3, bucket, new_version)``."""

    def __init__(self):
        self._spool = tempfile.TemporaryFile("w+b")  # noqa: SIM115 - closed by close()
        self.count = 0

    def add(self, ref: Reference) -> None:
        if not ref.deleted:
            self._spool.write((listformat.to_json(ref) + "\n").encode())
            self.count += 1

    def publish(self, s3: S3Client, bucket: str, version: int) -> str | None:
        """Write the delta for `version` (None, and nothing written, when nothing was added).

        The spool itself is the body: reading it into memory first held the delta twice (str and bytes,
        ~280 B per reference; bench/sync.py measured 28 MB at 100k rows)."""
        if not self.count:
            return None
        self._spool.flush()
        self._spool.seek(0)
        key = delta_key(version)
        s3.put_object(Bucket=bucket, Key=key, Body=self._spool, ContentType="application/x-ndjson")
        log.info("delta published", extra={"version": version, "references": self.count})
        return key

    def close(self) -> None:
        self._spool.close()


def write_delta(s3: S3Client, bucket: str, version: int, refs: Iterable[Reference]) -> str | None:
    writer = DeltaWriter()
    try:
        for ref in refs:
            writer.add(ref)
        return writer.publish(s3, bucket, version)
    finally:
        writer.close()


def read_delta(s3: S3Client, bucket: str, key: str) -> list[Reference]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    rows = []
    for row in listformat.read(io.StringIO(body)):
        if isinstance(row, Rejected):  # we wrote the file: a bad row is a bug, not data to skip
            raise ValueError(f"delta {key} line {row.line} does not read back")
        if not row.deleted:
            rows.append(row)
    return rows


def version_of(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    if key.startswith(DELTA_PREFIX) and name.startswith("v") and name.endswith(".jsonl"):
        digits = name[1 : -len(".jsonl")]
        return int(digits) if digits.isdigit() else None
    return None
