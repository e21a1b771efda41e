"""The one status vocabulary: what an object, a fingerprint, a verdict and a case can be.

Each is a `StrEnum`, so a member is its string everywhere it travels (tags, DynamoDB items, JSON) and
compares equal to it: `ObjectStatus.CLEAN == "clean"`.
"""

from __future__ import annotations

from enum import StrEnum


class ObjectStatus(StrEnum):
    """The `hashcheck-status` tag of an object version, and the status of its FingerprintTable record."""

    PENDING = "pending"  # announced, not judged yet
    CLEAN = "clean"
    QUARANTINED = "quarantined"  # a match: blocked at once, moved to the evidence bucket
    UNSCANNABLE = "unscannable"  # looks like an image but cannot be decoded; its exact hashes were checked
    REVIEW = "review"  # a weak near hit held for a person; nothing moved
    ERROR = "error"  # every attempt failed: blocked like quarantined
    RELEASED = "released"  # a false positive, reviewed and restored
    # Holds an encrypted archive nobody can look inside: readable unless the hoster blocks it
    # (BlockOpaqueObjects), because customers' encrypted backups are common.
    OPAQUE = "opaque"


class Absence(StrEnum):
    """What a scan outcome or a FingerprintTable record says when there was no object version to tag."""

    DELETED = "deleted"  # gone before the scan, or matched after it was deleted
    SUPERSEDED = "superseded"  # overwritten before the scan (unversioned bucket); the new object has its own event
    IGNORED = "ignored"  # in one of hashcheck's own buckets


# What the bucket policies do with a status: every status but clean and released keeps an object
# unreadable (opaque: as the hoster chooses); an object without a status is readable in the default
# (deny-list) mode until its scan tags it, and unreadable in the fail-closed mode.
READABLE = (ObjectStatus.CLEAN, ObjectStatus.RELEASED)
BLOCKED = (
    ObjectStatus.QUARANTINED,
    ObjectStatus.ERROR,
    ObjectStatus.UNSCANNABLE,
    ObjectStatus.REVIEW,
    ObjectStatus.PENDING,
)

# A status a new reference can still change (the re-match): quarantined is done, released is for the
# allowlist to decide, error and the absences have no fingerprint to match or are already blocked.
REMATCHABLE = frozenset({ObjectStatus.CLEAN, ObjectStatus.REVIEW, ObjectStatus.UNSCANNABLE, ObjectStatus.OPAQUE})
# A status that ends a scan: the backfill skips an object recorded with one against the current list.
FINAL = frozenset(
    {
        ObjectStatus.CLEAN,
        ObjectStatus.QUARANTINED,
        ObjectStatus.UNSCANNABLE,
        ObjectStatus.REVIEW,
        ObjectStatus.RELEASED,
        ObjectStatus.OPAQUE,
    }
)


class BreakerState(StrEnum):
    """A reference's circuit breaker (`hashcheck.response.breaker`); no state: it acts, counted."""

    HELD = "held"  # its hits are held for review, nothing acts, until a person releases it
    RELEASED = "released"  # a person vouched for it: it acts, no longer counted
    SHADOW = "shadow"  # new on a list in shadow rollout: until `until`, its hits only count what it would do


class FingerprintStatus(StrEnum):
    """What the fingerprint could make of the bytes (`hashcheck fingerprint`'s `status`)."""

    IMAGE = "image"
    VIDEO = "video"  # frames sampled once a second: its vPDQ, its scenes as members
    NOT_IMAGE = "not_image"
    UNSCANNABLE = "unscannable"
    OPAQUE = "opaque"  # an encrypted archive: nobody without the key can look inside


class Verdict(StrEnum):
    """The matcher's decision about one fingerprint."""

    MATCH = "match"  # acts: quarantine
    REVIEW = "review"  # a weak near hit for a person
    CLEAN = "clean"
    UNSCANNABLE = "unscannable"
    OPAQUE = "opaque"  # nothing listed found, but an encrypted part could not be looked at


class CaseStatus(StrEnum):
    OPEN = "open"  # filed; the quarantine is under way
    QUARANTINED = "quarantined"  # evidence secured
    BLOCKED = "blocked"  # tag-only mode: blocked in place
    SOURCE_MISSING = "source_missing"  # gone before it could be copied: a person follows up
    RELEASED = "released"  # a reviewer found it a false positive


class Decision(StrEnum):
    """A reviewer's decision on a case; final once recorded."""

    CONFIRMED = "confirmed"
    RELEASED = "released"
