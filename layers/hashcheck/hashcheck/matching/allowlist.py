"""The per-stack allowlist: exact bytes a reviewer released as a false positive, never quarantined again.

Where: items in the ReferenceTable, ``pk = "allow#sha256#<lowercase hex>"``. The table is where the
scanner already looks things up (it holds GetItem there), the key namespace cannot collide with a
hash item (one ``#``), an image item (``image#``) or the version item, and the sync never reads or
writes it: `references.iter_live` selects items by their ``algorithm``/``live`` attributes, which an
allow item does not have. Reviewers get write access to ``allow#*`` keys only (IAM
``dynamodb:LeadingKeys``), never to the lists.

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

from hashcheck.objects import ObjectRef, get_status
from hashcheck.tables.reference_table import ref_key

logger = logging.getLogger(__name__)

PREFIX = "allow#sha256#"
RELEASED, CLEAN = "released", "clean"


def allow_pk(sha256: str) -> str:
    return PREFIX + sha256.strip().lower()


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
    def __init__(self, ddb, table_name: str):
        self.ddb = ddb
        self.table_name = table_name

    def add(
        self, sha256: str, size: int | None, refs: Iterable[tuple[str, str]], case_id: str, who: str, at: str
    ) -> None:
        """Allow these bytes for these references (list, id); idempotent."""
        if not sha256:
            raise ValueError("an allowlist entry needs the object's SHA-256")
        names = {"#refs": "allowed_refs", "#cases": "case_ids"}
        values = {
            ":refs": {"SS": sorted({ref_key(list_id, ref_id) for list_id, ref_id in refs} or {"*none*"})},
            ":cases": {"SS": [case_id]},
            ":at": {"S": at},
            ":who": {"S": who},
            ":kind": {"S": "allow"},
        }
        expression = (
            "ADD #refs :refs, #cases :cases SET kind = :kind, added_at = if_not_exists(added_at, :at), "
            "added_by = if_not_exists(added_by, :who), updated_at = :at"
        )
        if size is not None:
            expression += ", size_bytes = :size"
            values[":size"] = {"N": str(int(size))}
        self.ddb.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": allow_pk(sha256)}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        logger.info("allowlisted the exact bytes of case %s", case_id)

    def entry(self, sha256: str | None) -> dict | None:
        if not sha256:
            return None
        response = self.ddb.get_item(
            TableName=self.table_name, Key={"pk": {"S": allow_pk(sha256)}}, ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        return {
            "refs": set(item.get("allowed_refs", {}).get("SS", [])),
            "case_ids": tuple(sorted(item.get("case_ids", {}).get("SS", []))),
            "size": int(item["size_bytes"]["N"]) if "size_bytes" in item else None,
        }

    def check(self, sha256: str | None, matches: Iterable, size: int | None = None) -> Allowance | None:
        """An Allowance when these exact bytes were released for every reference in `matches`
        (objects with ``list`` and ``ref_id``, e.g. `matcher.Match`); None otherwise.

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


def status_for(s3, obj: ObjectRef) -> str:
    """The status an allowed object gets: `released` for the restored object itself (release tags it
    so at birth), `clean` for any other upload of the same bytes."""
    return RELEASED if get_status(s3, obj) == RELEASED else CLEAN
