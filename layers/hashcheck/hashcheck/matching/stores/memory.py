"""References held in memory: a list file for the local CLI, and the store the tests reason with."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from hashcheck import algorithms
from hashcheck.lists.listformat import Reference, Rejected, read_path
from hashcheck.matching.index import HammingIndex
from hashcheck.matching.stores.base import NearHit
from hashcheck.matching.videomatch import listed_frames


class MemoryStore:
    def __init__(self, references: Iterable[Reference] = ()):
        # Rows apply in order, so a later tombstone withdraws an earlier row of the same list.
        live: dict[tuple[str, str, str, str], Reference] = {}
        for ref in references:
            row_key = (ref.algorithm, ref.hash, ref.list, ref.id)
            if ref.deleted:
                live.pop(row_key, None)
            else:
                live[row_key] = ref
        self._by_hash: dict[tuple[str, str], list[Reference]] = defaultdict(list)
        self._by_image: dict[tuple[str, str], list[Reference]] = defaultdict(list)
        for ref in live.values():
            self._by_hash[ref.key].append(ref)
            self._by_image[(ref.list, ref.id)].append(ref)
        self._indexes: dict[str, tuple[HammingIndex | None, list[str]]] = {}
        for name in algorithms.PERCEPTUAL:
            hashes = sorted(h for (alg, h) in self._by_hash if alg == name)
            self._indexes[name] = (HammingIndex.from_hex(hashes) if hashes else None, hashes)
        # a listed video is found by its frames: "vpdq" near hits are frames of listed videos, each hit
        # naming the video's reference (the matcher then holds the pair to the vPDQ rule)
        self._video_of: dict[str, list[Reference]] = defaultdict(list)
        for (alg, signal), refs in self._by_hash.items():
            if alg == "vpdq":
                for frame in listed_frames(signal):
                    self._video_of[frame] += refs
        frames = sorted(self._video_of)
        self._indexes["vpdq"] = (HammingIndex.from_hex(frames) if frames else None, frames)

    @classmethod
    def from_file(cls, path: str) -> tuple[MemoryStore, list[Rejected]]:
        rows: list[Reference] = []
        rejected: list[Rejected] = []
        for row in read_path(path):
            if isinstance(row, Rejected):
                rejected.append(row)
            else:
                rows.append(row)
        return cls(rows), rejected

    def __len__(self) -> int:
        return sum(len(refs) for refs in self._by_hash.values())

    def exact(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Reference]]:
        return {key: list(self._by_hash[key]) for key in keys if key in self._by_hash}

    def near(self, algorithm: str, hashes: Sequence[str], max_distance: int) -> list[NearHit]:
        index, rows = self._indexes.get(algorithm, (None, []))
        if index is None or not hashes:
            return []
        return [
            NearHit(query, ref, distance)
            for query, row, distance in index.search_hex(list(hashes), max_distance)
            for ref in (self._video_of[rows[row]] if algorithm == "vpdq" else self._by_hash[(algorithm, rows[row])])
        ]

    def siblings(self, reference: Reference) -> list[Reference]:
        return [r for r in self._by_image.get((reference.list, reference.id), []) if r != reference]
