"""The per-stack allowlist: exact bytes a reviewer released as a false positive, never quarantined again.

Where: allow items in the ReferenceTable (``pk = "allow#sha256#<lowercase hex>"``, written and read by
`ReferenceTable.add_allowance` / `allowance`). The table is where the scanner already looks things up,
and the sync never reads or writes those items. Reviewers get write access to ``allow#*`` keys only
(IAM ``dynamodb:LeadingKeys``), never to the lists.

What is allowed: the exact bytes, by SHA-256 (and size). Not MD5 or SHA-1: colliding MD5 pairs are
cheap to make, so an MD5 allowlist would let someone craft a file that collides with a released
benign picture and slip past the list. Not near-duplicates: a released false positive says nothing
about an edited copy of it, whose own PDQ/pHash may sit closer to the listed image. An edited copy
that matches again gets its own case and its own review.

Which references: the item records the references (list, id) that fired when the bytes were
released (``allowed_refs``) and the cases that released them (``case_ids``). `Allowlist.check`
lets the same bytes through only when every reference that fires now was among them. If a list
later adds a new reference for these very bytes (a new fact a reviewer has not seen), the upload is
quarantined again and a person decides. Both sets grow with string-set ADD, so adding the same
release twice (a retry) changes nothing.

Nothing here logs a hash value; the item's key holds one, as the lists' items do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from hashcheck.objects import ObjectRef, get_status
from hashcheck.status import ObjectStatus
from hashcheck.tables.reference_table import ReferenceTable, ref_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


class Fired(Protocol):
    """What fired: a reference, by list and id (e.g. `matcher.Match`)."""

    @property
    def list(self) -> str: ...

    @property
    def ref_id(self) -> str: ...


@dataclass(frozen=True)
class Allowance:
    """Why an upload that matched is let through."""

    case_ids: tuple[str, ...]

    @property
    def reason(self) -> str:
        """For the status reason tag and the logs: case ids (not content hashes), never a hash value."""
        first = self.case_ids[0][:16] if self.case_ids else "?"
        more = f" +{len(self.case_ids) - 1}" if len(self.case_ids) > 1 else ""
        return f"released false positive (case {first}{more})"


class Allowlist:
    def __init__(self, references: ReferenceTable):
        self.references = references

    def add(
        self, sha256: str, size: int | None, refs: Iterable[tuple[str, str]], case_id: str, who: str, at: str
    ) -> None:
        """Allow these bytes for these references (list, id); idempotent."""
        if not sha256:
            raise ValueError("an allowlist entry needs the object's SHA-256")
        self.references.add_allowance(sha256, size, refs, case_id, who, at)
        logger.info("allowlisted the exact bytes of case %s", case_id)

    def entry(self, sha256: str | None) -> dict | None:
        """``{refs, case_ids, size}`` for these bytes, or None when they were never released."""
        return self.references.allowance(sha256) if sha256 else None

    def check(self, sha256: str | None, matches: Iterable[Fired], size: int | None = None) -> Allowance | None:
        """An Allowance when these exact bytes were released for every reference in `matches`; None otherwise.

        Called by the scanner only when something matched, so a clean upload costs nothing."""
        entry = self.entry(sha256)
        if entry is None:
            return None
        if size is not None and entry["size"] is not None and size != entry["size"]:
            return None
        fired = {ref_key(m.list, m.ref_id) for m in matches}
        if not fired <= entry["refs"]:
            logger.warning(
                "released bytes matched %d reference(s) not seen at release: not allowed", len(fired - entry["refs"])
            )
            return None
        return Allowance(entry["case_ids"])


def status_for(s3: S3Client, obj: ObjectRef) -> ObjectStatus:
    """The status an allowed object gets: `released` for the restored object itself (release tags it
    so at birth), `clean` for any other upload of the same bytes."""
    return ObjectStatus.RELEASED if get_status(s3, obj) == ObjectStatus.RELEASED else ObjectStatus.CLEAN
