"""The hashes of stored objects, for the re-match: which stored objects carry, or lie near, a new reference?

Every exact hash and every rotation/mirror/frame variant of every fingerprint is kept in a
log-structured ``StoredIndex``: immutable segments under ``fpindex/`` in the artifacts bucket, each
written from one batch of the FingerprintTable's stream; small ones are merged into segments of at
most ``SEGMENT_BYTES``, so a segment is a shard of bounded size. A list update is searched
shard by shard (``Wanted``: its exact hashes as sorted keys, its perceptual ones in a
``FewHashesIndex`` through which each shard's rows stream; no index over the stored rows), one
segment in memory at a time and the next one downloading meanwhile: a worker's memory does not grow
with the number of stored objects (``bench/scale.py``). Exact hashes here rather than in three
indexes of the table: each index cost a write unit on every object scanned (bench/cost.py), and the
near re-match already rests on this index. Stale rows (an object since quarantined or deleted) are
harmless: the re-match reads every candidate's record before it acts.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from botocore.exceptions import ClientError

from hashcheck.algorithms import ALGORITHMS, EXACT, PERCEPTUAL
from hashcheck.aws import delete_keys, is_gone, listed, read_object
from hashcheck.matching.index import FewHashesIndex, hex_to_array, row_keys
from hashcheck.matching.matcher import DEFAULT_POLICY, Policy
from hashcheck.status import REMATCHABLE
from hashcheck.tables.fingerprint_table import near_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

SEGMENT_PREFIX = "fpindex/"
# A merged-away segment is kept here for a while: a re-match that listed the segments before the merge
# (its batches name them) still finds it; the merged one is in the listings made after.
RETIRED_PREFIX = "fpindex-retired/"
RETIRED_FOR = timedelta(days=1)  # far longer than a re-match run
STORED = (*PERCEPTUAL, *EXACT)  # what a segment holds, per algorithm
MAX_SEGMENTS = 8  # more small segments than this and they are merged
# Bytes of a merged segment (its size in S3 is its size in memory): a photo gives 27 rows (12 PDQ,
# 12 pHash, 3 exact) of about 640 bytes, so ~250,000 photos; a worker holds two (one searched, the
# next downloading).
SEGMENT_BYTES = 160 * 2**20


@dataclass
class _Segment:
    key: str
    objects: np.ndarray  # (objects, 32) uint8: the object ids, as bytes (hex only for those found)
    hashes: dict[str, np.ndarray]  # algorithm -> (n, nbytes) uint8
    owners: dict[str, np.ndarray]  # algorithm -> (n,) uint32 index into objects

    @property
    def rows(self) -> int:
        return sum(len(h) for h in self.hashes.values())

    def search(self, wanted: Wanted) -> tuple[set[str], set[str]]:
        """The objects here holding one of the wanted exact hashes, and those lying near a wanted
        perceptual one."""
        exact: set[int] = set()
        near: set[int] = set()
        for algorithm, keys in wanted.exact.items():
            exact.update(self._owners_of(algorithm, keys))
        for algorithm, index in wanted.near.items():
            rows = self.hashes.get(algorithm)
            if rows is not None and len(rows):
                near.update(int(self.owners[algorithm][row]) for row, _, _ in index.search(rows))
        return self._ids(exact), self._ids(near)

    def _ids(self, owners: set[int]) -> set[str]:
        return {self.objects[o].tobytes().hex() for o in owners}

    def _owners_of(self, algorithm: str, wanted: np.ndarray) -> set[int]:
        """Owners of any of these exact hashes (`row_keys` of them, sorted): each of the segment's rows
        looked up among them by binary search (the wanted are few, the rows many)."""
        rows = self.hashes.get(algorithm)
        if rows is None or not len(rows) or not len(wanted):
            return set()
        keys = row_keys(rows)
        at = np.searchsorted(wanted, keys)
        hit = np.flatnonzero(wanted[np.minimum(at, len(wanted) - 1)] == keys)
        return set(self.owners[algorithm][hit].tolist())


@dataclass
class Wanted:
    """What a list update asks of the stored objects: its exact hashes (sorted `row_keys` per
    algorithm) and its perceptual ones (a `FewHashesIndex` per algorithm at the policy's radius)."""

    exact: dict[str, np.ndarray] = field(default_factory=dict)
    near: dict[str, FewHashesIndex] = field(default_factory=dict)

    @classmethod
    def of(cls, hashes: Mapping[str, Iterable[str]], policy: Policy = DEFAULT_POLICY) -> Wanted:
        """From {algorithm: hex hashes} (a delta's, live and deleted alike: a stale hit costs a read)."""
        wanted = cls()
        for algorithm, values in hashes.items():
            rows = hex_to_array(sorted(set(values)))  # validated hex, one length per algorithm
            if not len(rows):
                continue
            if algorithm in EXACT:
                wanted.exact[algorithm] = np.sort(row_keys(rows))
            elif algorithm in PERCEPTUAL:
                wanted.near[algorithm] = FewHashesIndex(rows, policy.search_radius(algorithm))
        return wanted


def _segment_bytes(objects: np.ndarray, hashes: Mapping[str, np.ndarray], owners: Mapping[str, np.ndarray]) -> bytes:
    """A segment file: the object ids as (n, 32) byte rows (numpy's fixed-width bytes, "S32", would drop
    an id's trailing zero bytes, 1 id in 256, and that object would never be found again), and per
    algorithm its hash rows and each row's owner (an index into the ids)."""
    arrays: dict[str, Any] = {"objects": objects}
    for alg in STORED:
        nbytes = ALGORITHMS[alg].hex_length // 2
        arrays[f"{alg}_hashes"] = hashes.get(alg, np.zeros((0, nbytes), dtype=np.uint8))
        arrays[f"{alg}_owners"] = owners.get(alg, np.zeros(0, dtype=np.uint32)).astype(np.uint32)
    out = io.BytesIO()
    np.savez(out, allow_pickle=False, **arrays)  # hashes do not compress: inflating them only costs time
    return out.getvalue()


def _segment_from_bytes(key: str, data: bytes | bytearray) -> _Segment:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        stored = z["objects"]
        if stored.dtype.kind == "S":  # segments written before ids were stored as bytes rows
            stored = np.frombuffer(b"".join(o.ljust(32, b"\0") for o in stored), dtype=np.uint8).reshape(-1, 32)
        present = [alg for alg in STORED if f"{alg}_hashes" in z]  # segments written before hold no exact hashes
        hashes = {alg: np.ascontiguousarray(z[f"{alg}_hashes"]) for alg in present}
        owners = {alg: z[f"{alg}_owners"] for alg in present}
    return _Segment(key, stored, hashes, owners)


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
    """The perceptual and exact hashes of stored fingerprints, as immutable segments in S3 (``fpindex/``).

    ``add(records)`` writes one segment (from one batch of the FingerprintTable's stream); ``search``
    reads the segments one at a time; ``compact`` merges the small ones into segments of at most
    `segment_bytes`. Stale rows (an object since quarantined or deleted) are harmless: every
    candidate's record is read before it acts."""

    def __init__(self, s3: S3Client, bucket: str, prefix: str = SEGMENT_PREFIX, segment_bytes: int = SEGMENT_BYTES):
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.segment_bytes = segment_bytes

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
        ids = np.frombuffer(b"".join(bytes.fromhex(o) for o in objects), dtype=np.uint8).reshape(-1, 32)
        rows = {
            alg: np.frombuffer(b"".join(values), dtype=np.uint8).reshape(-1, ALGORITHMS[alg].hex_length // 2)
            for alg, values in hashes.items()
        }
        return self.write(ids, rows, {alg: np.array(values, dtype=np.uint32) for alg, values in owners.items()})

    def segment_keys(self) -> list[str]:
        return sorted(self._sizes())

    def _sizes(self) -> dict[str, int]:
        """Each segment's key and size in bytes."""
        return {o["Key"]: o["Size"] for o in listed(self.s3, self.bucket, self.prefix) if o["Key"].endswith(".npz")}

    def segments(self, keys: Sequence[str] | None = None) -> Iterator[_Segment]:
        """The segments one at a time, the next one downloading while the caller works on this one; a
        key merged away since it was listed is read from its retired copy."""
        sizes = self._sizes()
        keys = sorted(sizes) if keys is None else list(keys)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="segment") as pool:
            upcoming = pool.submit(self._load, keys[0], sizes.get(keys[0])) if keys else None
            for following in [*keys[1:], None]:
                assert upcoming is not None
                segment = upcoming.result()
                upcoming = pool.submit(self._load, following, sizes.get(following)) if following else None
                yield segment
                del segment  # before the one after next is fetched: two in memory at most

    def search(self, wanted: Wanted, keys: Sequence[str] | None = None) -> tuple[set[str], set[str]]:
        """Object ids holding a wanted exact hash, and those near a wanted perceptual one, in every
        segment (or in `keys`: one worker's shards), in one pass."""
        exact: set[str] = set()
        near: set[str] = set()
        if wanted.exact or wanted.near:
            for segment in self.segments(keys):
                found_exact, found_near = segment.search(wanted)
                exact |= found_exact
                near |= found_near
        return exact, near

    def holders(self, algorithm: str, hashes: Sequence[str]) -> set[str]:
        """Object ids whose exact `algorithm` hash is one of `hashes`."""
        return self.search(Wanted.of({algorithm: hashes}))[0]

    def candidates(self, algorithm: str, hashes: Sequence[str], max_distance: int) -> set[str]:
        """Object ids with a stored `algorithm` variant within `max_distance` of any of `hashes`."""
        rows = hex_to_array(list(hashes))
        return self.search(Wanted(near={algorithm: FewHashesIndex(rows, max_distance)}))[1] if len(rows) else set()

    def compact(self, max_segments: int = MAX_SEGMENTS, now: datetime | None = None) -> list[str]:
        """Merge the small segments (under half of `segment_bytes`) into segments of at most
        `segment_bytes` when there are more than `max_segments` of them, in order, one output segment
        in memory at a time; the merged-away ones are retired (kept a day for the re-matches that
        listed them), the retired ones past their day deleted. Two compactions at once at worst store
        some rows twice (a search returns each object once). The new segments' keys."""
        self._purge_retired(now or datetime.now(UTC))
        sizes = self._sizes()
        small = [key for key in sorted(sizes) if sizes[key] < self.segment_bytes // 2]
        if len(small) <= max_segments:
            return []
        written: list[str] = []
        merged: list[_Segment] = []
        for segment in self.segments(small):
            if merged and sum(sizes[m.key] for m in merged) + sizes[segment.key] > self.segment_bytes:
                written.append(self._merge(merged))
                merged = []
            merged.append(segment)
        if merged:
            written.append(self._merge(merged))
        log.info("stored index compacted", extra={"merged_segments": len(small), "written": len(written)})
        return written

    def _merge(self, segments: list[_Segment]) -> str:
        bases = np.cumsum([0] + [len(s.objects) for s in segments])[:-1]  # each one's first id in the merge
        present = [alg for alg in STORED if any(alg in s.hashes for s in segments)]
        key = self.write(
            np.concatenate([s.objects for s in segments]),
            {alg: np.concatenate([s.hashes[alg] for s in segments if alg in s.hashes]) for alg in present},
            {
                alg: np.concatenate(
                    [s.owners[alg] + base for s, base in zip(segments, bases, strict=True) if alg in s.hashes]
                )
                for alg in present
            },
        )
        for segment in segments:  # after the merged one is written: nothing lost
            self._retire(segment.key)
        return key

    def _retire(self, key: str) -> None:
        """Move a merged-away segment under RETIRED_PREFIX (a compaction running beside this one may have
        moved it already)."""
        try:
            self.s3.copy_object(  # no tags to carry over: REPLACE asks no tag read of the source
                Bucket=self.bucket,
                Key=self._retired(key),
                CopySource={"Bucket": self.bucket, "Key": key},
                TaggingDirective="REPLACE",
            )
        except ClientError as error:
            if not is_gone(error):
                raise
            return
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def _retired(self, key: str) -> str:
        return RETIRED_PREFIX + key.removeprefix(self.prefix)

    def _purge_retired(self, now: datetime) -> int:
        """Delete the retired segments older than RETIRED_FOR; how many."""
        doomed = [
            o["Key"] for o in listed(self.s3, self.bucket, RETIRED_PREFIX) if now - o["LastModified"] > RETIRED_FOR
        ]
        delete_keys(self.s3, self.bucket, doomed)
        return len(doomed)

    def write(self, objects: np.ndarray, hashes: Mapping[str, np.ndarray], owners: Mapping[str, np.ndarray]) -> str:
        """A new segment of these object ids ((n, 32) bytes) and, per algorithm, hash rows and their
        owners (indexes into the ids); its key."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        key = f"{self.prefix}seg-{stamp}-{uuid.uuid4().hex[:12]}.npz"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=_segment_bytes(objects, hashes, owners))
        return key

    def _load(self, key: str, size: int | None) -> _Segment:
        """A segment as listed (`size`), or one merged away since: its retired copy."""
        if size is None:
            key_read = self._retired(key)
            size = self.s3.head_object(Bucket=self.bucket, Key=key_read)["ContentLength"]
        else:
            key_read = key
        try:
            return _segment_from_bytes(key, read_object(self.s3, self.bucket, key_read, size))
        except ClientError as error:  # merged away between the listing and now
            if not is_gone(error) or key_read != key:
                raise
            return self._load(key, None)
