"""References in the DynamoDB ReferenceTable (`hashcheck.tables.reference_table`), for the scan function.

- exact: one BatchGetItem for a fingerprint's keys (100 keys per call), live refs only;
- near: an in-memory `HammingIndex` per perceptual algorithm (and one over listed videos' frames,
  "vpdq") finds candidates, and every candidate
  is confirmed against the table before it becomes a hit, so a withdrawn reference never acts even
  when the index is stale. The index comes from `index_loader(algorithm)`; by default it is built by
  scanning the table on first use (`table_index_loader`); a loader that reads the S3 snapshot plugs
  in the same way. `refresh()` reloads them when the table's version item changes;
- siblings: the image item names the listed image's other hashes; each is confirmed on its hash item.

Fail closed: a DynamoDB error, or unprocessed keys that outlast the retries, raise; no method ever
answers "no match" because a read failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from hashcheck.algorithms import ALGORITHMS, PERCEPTUAL
from hashcheck.lists.listformat import Reference
from hashcheck.matching.index import HammingIndex, row_keys
from hashcheck.matching.stores.base import NearHit
from hashcheck.matching.videomatch import listed_frames
from hashcheck.tables.reference_table import ReferenceTable, Version, hash_pk, live_refs, table_hash

# An index over the hashes of one algorithm, and the hex of what each of its rows names (the hash item).
LoadedIndex = tuple[HammingIndex, Sequence[str]]
IndexLoader = Callable[[str], LoadedIndex | None]
VIDEO = "vpdq"
INDEXED = (*PERCEPTUAL, VIDEO)


def index_rows(table: ReferenceTable, algorithm: str) -> tuple[np.ndarray, np.ndarray] | None:
    """What an algorithm's near index holds (`all_index_rows` for one algorithm); None without live hashes."""
    return all_index_rows(table, [algorithm]).get(algorithm)


def all_index_rows(
    table: ReferenceTable, algorithms: Iterable[str] = INDEXED
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What each algorithm's near index holds, sorted (a deterministic snapshot): the hashes searched and,
    row for row, what each names, as uint8 arrays; algorithms without live hashes are left out. A
    perceptual hash names itself; each usable frame of a listed video (`videomatch.listed_frames`)
    names the video by its table hash, so a frame search finds the listed videos that the vPDQ rule
    then decides. One scan of the table for all of them (`ReferenceTable.live_hashes`), streamed into
    one byte buffer per algorithm: no list of items is ever held."""
    buffers = {algorithm: bytearray() for algorithm in algorithms}
    for algorithm, hash_value in table.live_hashes(buffers):
        if algorithm != VIDEO:
            buffers[algorithm] += bytes.fromhex(hash_value)  # validated when it was written
            continue
        owner = bytes.fromhex(table_hash(algorithm, hash_value))
        for frame in listed_frames(hash_value):
            buffers[algorithm] += bytes.fromhex(frame) + owner
    found = {}
    for algorithm, buffer in buffers.items():
        if not buffer:
            continue
        width = 64 if algorithm == VIDEO else ALGORITHMS[algorithm].hex_length // 2
        rows = _sorted_rows(np.frombuffer(bytes(buffer), dtype=np.uint8).reshape(-1, width))
        if algorithm == VIDEO:
            found[algorithm] = (np.ascontiguousarray(rows[:, :32]), np.ascontiguousarray(rows[:, 32:]))
        else:
            found[algorithm] = (rows, rows)
    return found


def _sorted_rows(rows: np.ndarray) -> np.ndarray:
    """Rows in byte order, via a sort of one opaque item per row."""
    return np.sort(row_keys(rows)).view(np.uint8).reshape(-1, rows.shape[1])


def table_index_loader(table: ReferenceTable) -> IndexLoader:
    """Build an algorithm's index by scanning the table for its live hashes (no snapshot yet)."""

    def load(algorithm: str) -> LoadedIndex | None:
        found = index_rows(table, algorithm)
        if found is None:
            return None
        searched, names = found
        return HammingIndex(searched), [name.tobytes().hex() for name in names]

    return load


class DynamoStore:
    def __init__(self, table: ReferenceTable, index_loader: IndexLoader | None = None, consistent_read: bool = False):
        """`consistent_read` applies to exact lookups; near confirmations and siblings always read
        consistently (they are rare, and they decide whether a withdrawn reference could act)."""
        self.table = table
        self.consistent_read = consistent_read
        self._loader = index_loader or table_index_loader(table)
        self._indexes: dict[str, LoadedIndex | None] = {}
        self._version: Version | None = None

    def reload(self) -> None:
        """Forget the loaded indexes; the next near lookup loads them again (e.g. a new version)."""
        self._indexes.clear()

    @property
    def version(self) -> int | None:
        """The list version the loaded indexes belong to (None before the first refresh)."""
        return self._version.version if self._version else None

    def refresh(self) -> bool:
        """Reload the indexes if the table's version item changed since they were loaded (one GetItem;
        call it once per invocation). True if they will be reloaded."""
        version = self.table.get_version()
        if version == self._version:
            return False
        self._version = version
        self.reload()
        return True

    def exact(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Reference]]:
        return self.table.live(keys, consistent=self.consistent_read)

    def near(self, algorithm: str, hashes: Sequence[str], max_distance: int) -> list[NearHit]:
        if not hashes:
            return []
        loaded = self._index(algorithm)
        if loaded is None:
            return []
        index, rows = loaded
        candidates = index.search_hex(list(hashes), max_distance)
        if not candidates:
            return []
        pks = [hash_pk(algorithm, rows[row]) for _, row, _ in candidates]
        items = self.table.items(pks, consistent=True)
        return [
            NearHit(query, ref, distance)
            for (query, _, distance), pk in zip(candidates, pks, strict=True)
            for ref in (live_refs(items[pk]) if pk in items else [])
        ]

    def siblings(self, reference: Reference) -> list[Reference]:
        return self.table.siblings(reference)

    def _index(self, algorithm: str) -> LoadedIndex | None:
        if algorithm not in INDEXED:  # hashes that are only stored (photodna): no index
            return None
        if algorithm not in self._indexes:
            self._indexes[algorithm] = self._loader(algorithm)
        return self._indexes[algorithm]
