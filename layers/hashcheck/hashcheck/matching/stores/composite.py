"""Several reference stores behind one `ReferenceStore`, so one matcher call consults them all
(e.g. the DynamoDB table of synced lists plus a remote lookup service).

- exact: the union of every store's references per key;
- near: every store's hits (each store gets the same query hashes, so `NearHit.query` lines up);
- siblings: the union of every store's siblings.

Duplicates (the same reference from two stores) appear once. FAIL CLOSED: the stores are asked in
order and if any of them raises, the call raises; a partial answer is never returned as if complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hashcheck.lists.listformat import Reference
from hashcheck.matching.stores.base import NearHit, ReferenceStore


class CompositeStore:
    def __init__(self, *stores: ReferenceStore):
        if not stores:
            raise ValueError("CompositeStore needs at least one store")
        self.stores: tuple[ReferenceStore, ...] = stores

    def __repr__(self) -> str:
        return f"CompositeStore({', '.join(repr(s) for s in self.stores)})"

    def refresh(self) -> bool:
        """Refresh every store that can be refreshed (e.g. `DynamoStore`); True if any will reload."""
        changed = False
        for store in self.stores:
            refresh = getattr(store, "refresh", None)
            if callable(refresh) and refresh():
                changed = True
        return changed

    def exact(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Reference]]:
        wanted = list(keys)  # each store iterates the keys again
        merged: dict[tuple[str, str], list[Reference]] = {}
        for store in self.stores:
            for key, refs in store.exact(wanted).items():
                merged[key] = _union(merged.get(key, []), refs)
        return {key: refs for key, refs in merged.items() if refs}

    def near(self, algorithm: str, hashes: Sequence[str], max_distance: int) -> list[NearHit]:
        hashes = list(hashes)  # each store reads them again
        hits: list[NearHit] = []
        for store in self.stores:
            hits = _union(hits, store.near(algorithm, hashes, max_distance))
        return hits

    def siblings(self, reference: Reference) -> list[Reference]:
        found: list[Reference] = []
        for store in self.stores:
            found = _union(found, store.siblings(reference))
        return [r for r in found if r != reference]


def _union(first: list, more: Iterable) -> list:
    """`first` then the items of `more` not in it yet, in order (the items are hashable)."""
    seen = set(first)
    out = list(first)
    for item in more:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
