"""Fingerprint + reference store -> verdict. The decision rule lives here and only here.

Tiers (README, "Decision rule"):
- an exact hash (MD5, SHA-1, SHA-256) on a list acts: `match`;
- PDQ within its threshold (31 of 256 bits), from a query hash of quality >= 50, acts: `match`;
- pHash within its threshold (8 of 64 bits) acts only when the same listed image's PDQ agrees within
  a wider bound (64), from the same view of the upload (the PDQ of the pixels whose pHash hit: turned,
  trimmed, a region... alike). The second signal is what lets crops act: they move PDQ by 40-70 bits
  and pHash by less than 8, while unrelated photos sit ~128 PDQ bits apart. A hit whose PDQ is a little farther
  (up to 70), or whose listed image has no PDQ to compare, becomes `review`: a person looks, nothing
  moves. A 64-bit hit alone is chance ~10 times per upload against 1.4M references (docs/accuracy.md),
  so one whose PDQ is farther still is dropped: a review queue flooded with noise protects nobody.
Rotated, mirrored, tilted (turned back a few degrees), trimmed (inside a uniform border) and
further-frame variants of the upload are searched like the original. A video's scenes are members,
matched like pictures; the video itself acts when a listed video matches it by the vPDQ rule
(`matching.videomatch`: frames within 31 bits, 80% of the listed video's frames found in it).

Known-benign lists (`Policy.benign_lists`: CMS default images, stock assets) are lists like any other,
but never act: a member (or the object itself) that matches one has its other matches set aside
(`Result.skipped`), so a wrong reference to a well-known benign file cannot act on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from hashcheck import algorithms
from hashcheck.fingerprinting.fingerprint import Fingerprint, NearHash
from hashcheck.fingerprinting.vpdq import Feature, from_signal, time_range
from hashcheck.lists.listformat import Reference
from hashcheck.matching.stores.base import NearHit, ReferenceStore
from hashcheck.matching.videomatch import VideoRule, compare, usable
from hashcheck.status import FingerprintStatus, Verdict


@dataclass(frozen=True)
class Policy:
    pdq_threshold: int = algorithms.ALGORITHMS["pdq"].threshold
    pdq_min_quality: int = algorithms.ALGORITHMS["pdq"].min_quality
    phash_threshold: int = algorithms.ALGORITHMS["phash"].threshold
    # A pHash hit acts when the listed image's PDQ is this close too. Unrelated photos sit near 128
    # bits apart (sd ~8, tail fit ~10); at 64, bench/accuracy.py's fit gives ~1e-5 false actions per
    # query against 1.4M references (target < 1e-4) while crops of 5% act 81% of the time (52: 61%).
    phash_confirm_pdq: int = 64
    # Up to this far, an unconfirmed pHash hit is still shown to a person (`review`); beyond it, it is
    # dropped. At 70, ~3e-4 false reviews per upload against 1.4M references (fitted); with no PDQ bound
    # it would be ~10 (docs/accuracy.md).
    phash_review_pdq: int = 70
    # Per-list thresholds, e.g. {"nl-police": {"pdq": 24}}: a list known for near-duplicates of
    # stock images can be held tighter than the default without touching the others.
    per_list: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Lists of files that must never act (the hoster names them: KnownBenignLists).
    benign_lists: frozenset[str] = frozenset()
    # A video against a listed video (vPDQ); per list, "vpdq" (frame distance) and "vpdq_listed_percent"
    video: VideoRule = VideoRule()

    def threshold(self, algorithm: str, list_id: str | None = None) -> int:
        default = {"pdq": self.pdq_threshold, "vpdq": self.video.distance}.get(algorithm, self.phash_threshold)
        return self.per_list.get(list_id, {}).get(algorithm, default) if list_id else default

    def video_rule(self, list_id: str) -> VideoRule:
        own = self.per_list.get(list_id, {})
        return replace(
            self.video,
            distance=own.get("vpdq", self.video.distance),
            listed_share=own.get("vpdq_listed_percent", self.video.listed_share * 100) / 100,
        )

    def search_radius(self, algorithm: str) -> int:
        """The widest threshold any list has: the index is searched once with it, then each hit is
        held to its own list's threshold."""
        return max([self.threshold(algorithm), *(t[algorithm] for t in self.per_list.values() if algorithm in t)])


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
    member: str = ""  # where inside the object: "inner.zip!deep/c.jpg"; empty for the object itself

    def as_dict(self) -> dict:
        return {
            "algorithm": self.algorithm,
            "distance": self.distance,
            "list": self.list,
            "ref_id": self.ref_id,
            "variant": self.variant,
            "member": self.member,
        }


@dataclass
class Result:
    verdict: Verdict
    matches: list[Match] = field(default_factory=list)
    # matches set aside because the same member is on a known-benign list, and those benign matches
    skipped: list[Match] = field(default_factory=list)
    benign: list[Match] = field(default_factory=list)


# The worse verdict wins: an object is as bad as its worst member.
_SEVERITY = [Verdict.CLEAN, Verdict.OPAQUE, Verdict.UNSCANNABLE, Verdict.REVIEW, Verdict.MATCH]


def match(fp: Fingerprint, store: ReferenceStore, policy: Policy = DEFAULT_POLICY) -> Result:
    """The object and every member it holds, looked up together (one round of store calls)."""
    subjects = [("", fp), *((m.path, m.fingerprint) for m in fp.members)]
    found = _exact_matches(subjects, store) + _pdq_matches(subjects, store, policy)
    found = _best_per_reference(
        found + _phash_matches(subjects, store, policy) + _video_matches(subjects, store, policy)
    )
    benign = [m for m in found if m.list in policy.benign_lists]
    vouched = {m.member for m in benign}
    skipped = [m for m in found if m.list not in policy.benign_lists and m.member in vouched]
    found = [m for m in found if m.list not in policy.benign_lists and m.member not in vouched]
    return _verdict(subjects, found, skipped, benign)


def without(fp: Fingerprint, result: Result, dropped: Callable[[Match], bool]) -> Result:
    """The result as if the `dropped` matches' references were not listed (references in shadow)."""
    subjects = [("", fp), *((m.path, m.fingerprint) for m in fp.members)]
    kept = [m for m in result.matches if not dropped(m)]
    return _verdict(subjects, kept, result.skipped, result.benign)


def _verdict(subjects: Subjects, found: list[Match], skipped: list[Match], benign: list[Match]) -> Result:
    if any(m.acts for m in found):
        return Result(Verdict.MATCH, found, skipped, benign)
    if found:
        return Result(Verdict.REVIEW, found, skipped, benign)
    return Result(max((_unmatched(f) for _, f in subjects), key=_SEVERITY.index), found, skipped, benign)


def _unmatched(fp: Fingerprint) -> Verdict:
    """What matching nothing means for one fingerprint."""
    if fp.status == FingerprintStatus.NOT_IMAGE:
        return Verdict.CLEAN
    if fp.status in (FingerprintStatus.IMAGE, FingerprintStatus.VIDEO) and not fp.partial:
        return Verdict.CLEAN
    if fp.status == FingerprintStatus.OPAQUE:
        return Verdict.OPAQUE
    # nothing could be hashed, or only part of a truncated image or video was: the part shown matched
    # nothing, but the rest could be a listed picture's, so it is not clean
    return Verdict.UNSCANNABLE


Subjects = list[tuple[str, Fingerprint]]


def _exact_matches(subjects: Subjects, store: ReferenceStore) -> list[Match]:
    hits = store.exact({key for _, fp in subjects for key in fp.exact().items()})
    return [
        _as_match(ref, 0, True, member=path)
        for path, fp in subjects
        for key in fp.exact().items()
        for ref in hits.get(key, [])
    ]


def _queries(subjects: Subjects, algorithm: str, min_quality: int = 0) -> list[tuple[str, NearHash]]:
    return [
        (path, h)
        for path, fp in subjects
        for h in fp.near
        if h.algorithm == algorithm and (algorithm != "pdq" or (h.quality or 0) >= min_quality)
    ]


def _pdq_matches(subjects: Subjects, store: ReferenceStore, policy: Policy) -> list[Match]:
    queries = _queries(subjects, "pdq", policy.pdq_min_quality)
    hits = store.near("pdq", [h.hash for _, h in queries], policy.search_radius("pdq"))
    return [
        _as_match(hit.reference, hit.distance, True, queries[hit.query][1], queries[hit.query][0])
        for hit in hits
        if hit.distance <= policy.threshold("pdq", hit.reference.list)
    ]


def _phash_matches(subjects: Subjects, store: ReferenceStore, policy: Policy) -> list[Match]:
    queries = _queries(subjects, "phash")
    hits = store.near("phash", [h.hash for _, h in queries], policy.search_radius("phash"))
    pdq_views = {path: _pdq_views(fp) for path, fp in subjects}
    # Several query variants (orientations, tilts) often hit the same listed image: keep the closest hit
    # per image and member, so its PDQ siblings are looked up once (a store round trip each), not once
    # per variant; and every view (a variant of a frame) whose pHash hit it, for the confirmation.
    closest: dict[tuple[str, str, str], NearHit] = {}
    views: dict[tuple[str, str, str], set[View]] = {}
    for hit in hits:
        if hit.distance > policy.threshold("phash", hit.reference.list):
            continue
        path, query = queries[hit.query]
        key = (path, hit.reference.list, hit.reference.id)
        views.setdefault(key, set()).add((query.frame, query.variant))
        if key not in closest or hit.distance < closest[key].distance:
            closest[key] = hit
    siblings: dict[tuple[str, str], list[Reference]] = {}
    matches = []
    for key, hit in closest.items():
        path, list_id, ref_id = key
        if (list_id, ref_id) not in siblings:
            siblings[(list_id, ref_id)] = store.siblings(hit.reference)
        pdq_gap = _pdq_distance(_confirming(pdq_views[path], views[key]), siblings[(list_id, ref_id)])
        if pdq_gap is not None and pdq_gap > policy.phash_review_pdq:
            continue
        confirmed = pdq_gap is not None and pdq_gap <= policy.phash_confirm_pdq
        matches.append(_as_match(hit.reference, hit.distance, confirmed, queries[hit.query][1], path))
    return matches


View = tuple[int, str]  # (frame, variant): one way of looking at the upload


def _pdq_views(fp: Fingerprint) -> dict[View, str]:
    return {(h.frame, h.variant): h.hash for h in fp.near if h.algorithm == "pdq"}


def _confirming(pdq_views: dict[View, str], hit: set[View]) -> list[str]:
    """The PDQ hashes that may confirm a pHash hit: those of the views whose pHash hit, the same pixels.
    Any view's PDQ would give each listed image 25 times the chances of a coincidence (docs/accuracy.md).
    A view whose PDQ was dropped as a repeat of another's (a symmetric picture) counts every PDQ of its
    frame."""
    out = []
    for frame, variant in hit:
        if (frame, variant) in pdq_views:
            out.append(pdq_views[(frame, variant)])
        else:
            out += [h for (f, _), h in pdq_views.items() if f == frame]
    return out


def _video_matches(subjects: Subjects, store: ReferenceStore, policy: Policy) -> list[Match]:
    """Each video (the object, or one inside it) against the listed videos that share a frame with it,
    held to the vPDQ rule of the video's list; the match names the time range it covers."""
    matches = []
    for path, fp in subjects:
        if not fp.video:
            continue
        queries = [h for f in usable(fp.video, policy.video.quality) for h in (f.pdq, *f.variants)]
        hits = store.near("vpdq", queries, policy.search_radius("vpdq"))
        closest: dict[Reference, int] = {}
        for hit in hits:
            closest[hit.reference] = min(hit.distance, closest.get(hit.reference, hit.distance))
        for ref, distance in closest.items():
            found = compare(fp.video, from_signal(ref.hash), policy.video_rule(ref.list))
            if found is not None:
                span = time_range(found.start, found.end + _seconds_per_hash(fp.video))
                matches.append(_as_match(ref, distance, True, member=f"{path}!{span}" if path else span))
    return matches


def _seconds_per_hash(features: list[Feature]) -> float:
    """The video's sampling interval (so that a time range covers its last frame's second too)."""
    return features[1].timestamp - features[0].timestamp if len(features) > 1 else 1.0


def _pdq_distance(ours: list[str], siblings: list[Reference]) -> int | None:
    """Closest PDQ distance between any variant of the upload and the listed image's PDQ hashes; None
    when there is nothing to compare (a pHash-only listing, or its PDQ withdrawn)."""
    theirs = [s.hash for s in siblings if s.algorithm == "pdq"]
    return min((algorithms.hamming(a, b) for a in ours for b in theirs), default=None)


def _as_match(ref: Reference, distance: int, acts: bool, query: NearHash | None = None, member: str = "") -> Match:
    variant = query.variant if query else "original"
    if query and query.frame:
        variant = f"frame{query.frame}:{variant}"
    return Match(ref.algorithm, distance, ref.list, ref.id, acts, variant, ref.category, member)


def _best_per_reference(matches: list[Match]) -> list[Match]:
    """One line per (member, list, reference, algorithm): the strongest, closest hit; strongest first."""
    best: dict[tuple[str, str, str, str], Match] = {}
    for m in sorted(matches, key=lambda m: (not m.acts, m.distance)):
        best.setdefault((m.member, m.list, m.ref_id, m.algorithm), m)
    return list(best.values())
