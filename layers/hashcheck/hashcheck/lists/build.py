"""Building a list from images: the rows that describe one image (`hashcheck list build`)."""

from __future__ import annotations

from hashcheck.fingerprinting.fingerprint import Fingerprint
from hashcheck.fingerprinting.vpdq import to_signal
from hashcheck.lists.listformat import Reference
from hashcheck.status import FingerprintStatus

# Besides the picture's own hashes: the picture inside its uniform border, and its centre crops (an upload
# cropped by up to ~14% a side, or with stickers over its corners, is near one of these; the rungs at 92%
# and 76% are in a fingerprint made by `listing_fingerprint`)
LISTED_VARIANTS = ("trimmed", "centre92", "centre84", "centre76", "centre72")


def references_for(fp: Fingerprint, list_id: str, ref_id: str, category: str | None = None) -> list[Reference]:
    """The list rows that describe one image or video: its exact hashes and, if it decoded, PDQ and pHash
    (a video: its vPDQ signal), also of its centre crops and, for an image with uniform borders, of the
    picture inside them. An upload of that picture with other borders, or none, cropped or with
    stickers over its corners, is then found from both sides (docs/accuracy.md)."""
    pairs: list[tuple[str, str | None]] = list(fp.exact().items())
    if fp.status == FingerprintStatus.VIDEO:
        pairs.append(("vpdq", to_signal(fp.video)))
    if fp.status == FingerprintStatus.IMAGE:
        pairs += [("pdq", fp.pdq), ("phash", fp.phash)]
        pairs += [(h.algorithm, h.hash) for h in fp.near if h.variant in LISTED_VARIANTS and h.frame == 0]
    return [Reference(alg, value, list_id, ref_id, category) for alg, value in pairs if value]
