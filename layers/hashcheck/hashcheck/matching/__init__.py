"""Fingerprint + references -> verdict.

`matcher` holds the decision rule; `stores` are where references are looked up (memory, the
ReferenceTable, a remote lookup service, several at once); `index` is the exact Hamming-radius index
behind every near lookup; `snapshot` builds and loads it for the scanners; `stored` indexes the
perceptual hashes of stored objects for the re-match; `allowlist` lets released bytes through.
"""

from hashcheck.matching.allowlist import Allowance, Allowlist
from hashcheck.matching.index import HammingIndex
from hashcheck.matching.matcher import DEFAULT_POLICY, Match, Policy, Result, match
from hashcheck.matching.snapshot import S3IndexLoader, SnapshotError, WatchedStore
from hashcheck.matching.stored import StoredIndex

__all__ = [
    "DEFAULT_POLICY",
    "Allowance",
    "Allowlist",
    "HammingIndex",
    "Match",
    "Policy",
    "Result",
    "S3IndexLoader",
    "SnapshotError",
    "StoredIndex",
    "WatchedStore",
    "match",
]
