"""Fingerprint + reference store -> verdict. The decision rule lives here and only here.

Tiers (README, "Decision rule"):
- an exact hash (MD5, SHA-1, SHA-256) on a list acts: `match`;
- PDQ within its threshold (31 of 256 bits), from a query hash of quality >= 50, acts: `match`;
- pHash within its threshold (8 of 64 bits) acts only when the same listed image's PDQ agrees within
  a wider bound; a 64-bit hit alone is too likely to be chance against millions of references
  (about one false candidate per query at 1.4M), so it becomes `review`: a person looks, nothing moves.
Rotated, mirrored and further-frame variants of the upload are searched like the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hashcheck import algorithms
from hashcheck.fingerprint import IMAGE, NOT_IMAGE, Fingerprint, NearHash
from hashcheck.reflist import Reference
from hashcheck.stores.base import ReferenceStore

MATCH, REVIEW, CLEAN, UNSCANNABLE = "match", "review", "clean", "unscannable"


@dataclass(frozen=True)
class Policy:
    pdq_threshold: int = algorithms.ALGORITHMS["pdq"].threshold
    pdq_min_quality: int = algorithms.ALGORITHMS["pdq"].min_quality
    phash_threshold: int = algorithms.ALGORITHMS["phash"].threshold
    # A pHash hit acts when the listed image's PDQ is this close too. Unrelated photos sit near 128
    # bits apart; the bound is set from measured impostor distances (bench/accuracy.py).
    phash_confirm_pdq: int = 52


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Match:
    algorithm: str
    distance: int
    list: str
    ref_id: str
    acts: bool  # False: a weak hit, for review only
    variant: str = "original"
    category: str | None = None

    def as_dict(self) -> dict:
        return {
            "algorithm": self.algorithm,
            "distance": self.distance,
            "list": self.list,
            "ref_id": self.ref_id,
            "variant": self.variant,
        }


@dataclass
class Result:
    verdict: str
    matches: list[Match] = field(default_factory=list)


def match(fp: Fingerprint, store: ReferenceStore, policy: Policy = DEFAULT_POLICY) -> Result:
    found = _exact_matches(fp, store) + _pdq_matches(fp, store, policy) + _phash_matches(fp, store, policy)
    found = _best_per_reference(found)
    if any(m.acts for m in found):
        verdict = MATCH
    elif found:
        verdict = REVIEW
    else:
        verdict = CLEAN if fp.status in (IMAGE, NOT_IMAGE) else UNSCANNABLE
    return Result(verdict, found)


def _exact_matches(fp: Fingerprint, store: ReferenceStore) -> list[Match]:
    hits = store.exact(fp.exact().items())
    return [_as_match(ref, 0, True) for refs in hits.values() for ref in refs]


def _pdq_matches(fp: Fingerprint, store: ReferenceStore, policy: Policy) -> list[Match]:
    queries = [h for h in fp.near if h.algorithm == "pdq" and (h.quality or 0) >= policy.pdq_min_quality]
    hits = store.near("pdq", [h.hash for h in queries], policy.pdq_threshold)
    return [_as_match(hit.reference, hit.distance, True, queries[hit.query]) for hit in hits]


def _phash_matches(fp: Fingerprint, store: ReferenceStore, policy: Policy) -> list[Match]:
    queries = [h for h in fp.near if h.algorithm == "phash"]
    hits = store.near("phash", [h.hash for h in queries], policy.phash_threshold)
    our_pdq = [h.hash for h in fp.near if h.algorithm == "pdq"]
    matches = []
    for hit in hits:
        confirmed = _pdq_distance(our_pdq, store.siblings(hit.reference)) <= policy.phash_confirm_pdq
        matches.append(_as_match(hit.reference, hit.distance, confirmed, queries[hit.query]))
    return matches


def _pdq_distance(ours: list[str], siblings: list[Reference]) -> int:
    """Closest PDQ distance between any variant of the upload and the listed image's PDQ hashes."""
    theirs = [s.hash for s in siblings if s.algorithm == "pdq"]
    return min((algorithms.hamming(a, b) for a in ours for b in theirs), default=256)


def _as_match(ref: Reference, distance: int, acts: bool, query: NearHash | None = None) -> Match:
    variant = query.variant if query else "original"
    if query and query.frame:
        variant = f"frame{query.frame}:{variant}"
    return Match(ref.algorithm, distance, ref.list, ref.id, acts, variant, ref.category)


def _best_per_reference(matches: list[Match]) -> list[Match]:
    """One line per (list, reference, algorithm): the strongest, closest hit; strongest first."""
    best: dict[tuple[str, str, str], Match] = {}
    for m in sorted(matches, key=lambda m: (not m.acts, m.distance)):
        best.setdefault((m.list, m.ref_id, m.algorithm), m)
    return list(best.values())
