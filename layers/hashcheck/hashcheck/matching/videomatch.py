"""Does an upload's vPDQ match a listed video's? The vPDQ rule, with an index over the listed frames.

The rule (python-threatexchange's, with per-list settings): frames of quality under `quality` are
left out and repeated hashes counted once, on both sides; a frame matches when some frame of the other
side is within `distance` bits (an upload's frame also by its variants: mirrored, inside letterbox
bars); the videos match when at least `listed_share` of the listed video's frames and `query_share` of
the upload's are matched. Defaults: 31 bits, quality 50, 80% of the listed video, 0% of the upload: a
re-encoded copy matches, and so does an upload that holds the whole listed video among other footage
(a compilation); a cut-down copy needs its list to ask less of the listed side. The listed frames go
into a `HammingIndex`, so the cost grows with the frames, not their product.
"""

from __future__ import annotations

from dataclasses import dataclass

from hashcheck.fingerprinting.vpdq import Feature, from_signal
from hashcheck.matching.index import HammingIndex


@dataclass(frozen=True)
class VideoRule:
    distance: int = 31
    quality: int = 50
    listed_share: float = 0.8
    query_share: float = 0.0


@dataclass(frozen=True)
class VideoMatch:
    listed_share: float  # of the listed video's usable frames, how many the upload holds
    query_share: float  # of the upload's usable frames, how many are in the listed video
    start: float  # the upload's first and last matched frame, in seconds
    end: float


def usable(features: list[Feature], quality: int) -> list[Feature]:
    """Frames of at least `quality`, each hash once (the first frame that has it)."""
    seen: set[str] = set()
    out = []
    for f in features:
        if f.quality >= quality and f.pdq not in seen:
            seen.add(f.pdq)
            out.append(f)
    return out


def listed_frames(signal: str) -> list[str]:
    """The frames of a listed video that a frame index holds: its usable ones (`usable`), by PDQ hash."""
    return [f.pdq for f in usable(from_signal(signal), VideoRule().quality)]


def compare(query: list[Feature], listed: list[Feature], rule: VideoRule = VideoRule()) -> VideoMatch | None:
    """The match of the upload `query` against `listed` under `rule`, or None."""
    ours, theirs = usable(query, rule.quality), usable(listed, rule.quality)
    if not ours or not theirs:
        return None  # nothing comparable on one side: no evidence either way
    # each upload frame's own hash and its variants (mirrored, inside bars), each row owned by its frame
    owner = [i for i, f in enumerate(ours) for _ in (f.pdq, *f.variants)]
    queries = [h for f in ours for h in (f.pdq, *f.variants)]
    hits = HammingIndex.from_hex([f.pdq for f in theirs]).search_hex(queries, rule.distance)
    matched_ours = sorted({owner[int(q)] for q, _, _ in hits})
    matched_theirs = {int(r) for _, r, _ in hits}
    listed_share, query_share = len(matched_theirs) / len(theirs), len(matched_ours) / len(ours)
    if not matched_ours or listed_share < rule.listed_share or query_share < rule.query_share:
        return None
    times = [ours[i].timestamp for i in matched_ours]
    return VideoMatch(listed_share, query_share, min(times), max(times))
