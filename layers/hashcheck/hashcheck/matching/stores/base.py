"""The interface every reference store offers the matcher."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hashcheck.lists.listformat import Reference


@dataclass(frozen=True)
class NearHit:
    query: int  # index into the queried hashes
    reference: Reference
    distance: int


class ReferenceStore(Protocol):
    def exact(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Reference]]:
        """Live references for each (algorithm, hash) asked for; absent keys have none."""

    def near(self, algorithm: str, hashes: Sequence[str], max_distance: int) -> list[NearHit]:
        """Every live reference of `algorithm` within `max_distance` of any of `hashes`; for "vpdq", every
        listed video with a frame within `max_distance` of one of `hashes` (frames' PDQ hashes)."""

    def siblings(self, reference: Reference) -> list[Reference]:
        """The other live hashes listed for the same image (same list and reference id)."""
