"""The hashes of stored objects, for the re-match: which stored objects carry, or lie near, a new reference?

Every exact hash and every rotation/mirror/frame variant of every fingerprint is kept in a
log-structured ``StoredIndex``: immutable segments under ``fpindex/`` in the artifacts bucket, each
written from one batch of the FingerprintTable's stream and merged when there are too many. A warm
function keeps the loaded segments and only reads new ones; new references are searched in each
segment: perceptual ones in its ``HammingIndex`` (~1 ms per query per million rows), exact ones in
its sorted rows (a binary search). Exact hashes here rather than in three indexes of the table:
each index cost a write unit on every object scanned (bench/cost.py), and the near re-match already
rests on this index. Stale rows (an object since quarantined or deleted) are harmless: the re-match
reads every candidate's record before it acts.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from hashcheck.algorithms import ALGORITHMS, EXACT, PERCEPTUAL
from hashcheck.matching.index import HammingIndex, hex_to_array, row_keys
from hashcheck.matching.matcher import DEFAULT_POLICY, Policy
from hashcheck.status import REMATCHABLE
from hashcheck.tables.fingerprint_table import near_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

SEGMENT_PREFIX = "fpindex/"
STORED = (*PERCEPTUAL, *EXACT)  # what a segment holds, per algorithm
MAX_SEGMENTS = 8  # more than this and the small ones are merged


@dataclass
class _Segment:
    key: str
    objects: list[str]  # object ids
    hashes: dict[str, np.ndarray]  # algorithm -> (n, nbytes) uint8
    owners: dict[str, np.ndarray]  # algorithm -> (n,) uint32 index into objects
    indexes: dict[str, HammingIndex] = field(default_factory=dict)
    sorted_rows: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(len(h) for h in self.hashes.values())

    def index(self, algorithm: str) -> HammingIndex | None:
        if algorithm not in self.indexes and len(self.hashes.get(algorithm, ())):
            self.indexes[algorithm] = HammingIndex(self.hashes[algorithm])
        return self.indexes.get(algorithm)

    def owners_of(self, algorithm: str, wanted: np.ndarray) -> set[str]:
        """The objects holding any of these exact hashes (`row_keys` of them): a binary search in the
        segment's rows, sorted once."""
        rows = self.hashes.get(algorithm)
        if rows is None or not len(rows) or not len(wanted):
            return set()
        if algorithm not in self.sorted_rows:
            keys = row_keys(rows)
            order = np.argsort(keys, kind="stable")
            self.sorted_rows[algorithm] = (keys[order], self.owners[algorithm][order])
        keys, owners = self.sorted_rows[algorithm]
        first, last = np.searchsorted(keys, wanted, "left"), np.searchsorted(keys, wanted, "right")
        return {self.objects[int(o)] for a, b in zip(first, last, strict=True) for o in owners[a:b]}


def _segment_bytes(objects: list[str], hashes: dict[str, list[bytes]], owners: dict[str, list[int]]) -> bytes:
    # object ids as rows of 32 bytes: numpy's fixed-width bytes ("S32") would drop an id's trailing zero
    # bytes (1 id in 256), and that object would never be found again
    ids = np.frombuffer(b"".join(bytes.fromhex(o) for o in objects), dtype=np.uint8).reshape(-1, 32)
    arrays: dict[str, Any] = {"objects": ids}
    for alg in STORED:
        nbytes = ALGORITHMS[alg].hex_length // 2
        arrays[f"{alg}_hashes"] = np.frombuffer(b"".join(hashes.get(alg, [])), dtype=np.uint8).reshape(-1, nbytes)
        arrays[f"{alg}_owners"] = np.array(owners.get(alg, []), dtype=np.uint32)
    out = io.BytesIO()
    np.savez_compressed(out, allow_pickle=False, **arrays)
    return out.getvalue()


def _segment_from_bytes(key: str, data: bytes) -> _Segment:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        stored = z["objects"]
        if stored.dtype.kind == "S":  # segments written before ids were stored as bytes rows
            objects = [o.ljust(32, b"\0").hex() for o in stored]
        else:
            objects = [row.tobytes().hex() for row in stored]
        present = [alg for alg in STORED if f"{alg}_hashes" in z]  # segments written before hold no exact hashes
        hashes = {alg: np.ascontiguousarray(z[f"{alg}_hashes"]) for alg in present}
        owners = {alg: z[f"{alg}_owners"] for alg in present}
    return _Segment(key, objects, hashes, owners)


def _hashes_of(record: Mapping[str, Any], policy: Policy) -> Iterator[tuple[str, str]]:
    """(algorithm, hex) of the record's exact hashes and its near variants the matcher would use, each once."""
    for algorithm in EXACT:
        if record.get(algorithm):
            yield algorithm, record[algorithm]
    seen = set()
    for h in near_of(record):
        if h.algorithm not in PERCEPTUAL or (h.algorithm, h.hash) in seen:
            continue
        if h.algorithm == "pdq" and (h.quality or 0) < policy.pdq_min_quality:
            continue  # the matcher never uses it for a near match
        seen.add((h.algorithm, h.hash))
        yield h.algorithm, h.hash


class StoredIndex:
    """The perceptual hashes of stored fingerprints, as immutable segments in S3 (``fpindex/``).

    ``add(records)`` writes one segment (from one batch of the FingerprintTable's stream);
    ``candidates`` searches every segment; ``compact`` merges the small ones. Stale rows (an object
    since quarantined or deleted) are harmless: every candidate's record is read before it acts."""

    def __init__(self, s3: S3Client, bucket: str, prefix: str = SEGMENT_PREFIX):
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self._loaded: dict[str, _Segment] = {}  # warm cache: segments never change once written

    def add(self, records: Iterable[Mapping[str, Any]], policy: Policy = DEFAULT_POLICY) -> str | None:
        """A segment for the records' exact and near hashes (rematchable statuses only); its key, or None."""
        objects: list[str] = []
        hashes: dict[str, list[bytes]] = {alg: [] for alg in STORED}
        owners: dict[str, list[int]] = {alg: [] for alg in STORED}
        for record in records:
            if record.get("status") not in REMATCHABLE:
                continue
            for algorithm, value in _hashes_of(record, policy):
                if not objects or objects[-1] != record["object_id"]:
                    objects.append(record["object_id"])
                hashes[algorithm].append(bytes.fromhex(value))
                owners[algorithm].append(len(objects) - 1)
        if not objects:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        key = f"{self.prefix}seg-{stamp}-{uuid.uuid4().hex[:12]}.npz"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=_segment_bytes(objects, hashes, owners))
        return key

    def keys(self) -> list[str]:
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            found += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".npz")]
        return sorted(found)

    def load(self) -> list[_Segment]:
        """Every current segment; only segments not seen before are read."""
        keys = self.keys()
        for key in set(self._loaded) - set(keys):
            del self._loaded[key]  # merged away
        for key in keys:
            if key not in self._loaded:
                data = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                self._loaded[key] = _segment_from_bytes(key, data)
        return [self._loaded[k] for k in keys]

    def holders(self, algorithm: str, hashes: Sequence[str]) -> set[str]:
        """Object ids whose exact `algorithm` hash is one of `hashes`."""
        if not hashes:
            return set()
        wanted = row_keys(hex_to_array(list(hashes)))  # validated hex, one length per algorithm
        found: set[str] = set()
        for segment in self.load():
            found |= segment.owners_of(algorithm, wanted)
        return found

    def candidates(self, algorithm: str, hashes: Sequence[str], max_distance: int) -> set[str]:
        """Object ids with a stored `algorithm` variant within `max_distance` of any of `hashes`."""
        if not hashes:
            return set()
        found: set[str] = set()
        for segment in self.load():
            index = segment.index(algorithm)
            if index is None:
                continue
            for _, row, _ in index.search_hex(list(hashes), max_distance):
                found.add(segment.objects[int(segment.owners[algorithm][row])])
        return found

    def compact(self, max_segments: int = MAX_SEGMENTS) -> str | None:
        """Merge all but the largest segment into one when there are more than `max_segments`
        (a single writer: the rematch run). Returns the new segment's key, or None."""
        segments = self.load()
        if len(segments) <= max_segments:
            return None
        merge = sorted(segments, key=lambda s: s.rows)[:-1]
        objects: list[str] = []
        hashes: dict[str, list[bytes]] = {alg: [] for alg in STORED}
        owners: dict[str, list[int]] = {alg: [] for alg in STORED}
        for segment in merge:
            base = len(objects)
            objects += segment.objects
            for alg in segment.hashes:
                hashes[alg] += [row.tobytes() for row in segment.hashes[alg]]
                owners[alg] += [base + int(o) for o in segment.owners[alg]]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        key = f"{self.prefix}seg-{stamp}-{uuid.uuid4().hex[:12]}.npz"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=_segment_bytes(objects, hashes, owners))
        doomed: list[Any] = [{"Key": s.key} for s in merge]
        for start in range(0, len(doomed), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True})
        log.info("stored index compacted", extra={"merged_segments": len(merge)})
        return key
