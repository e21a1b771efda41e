"""The near-match index snapshot: built from the ReferenceTable by the sync, loaded by the scanners.

Layout in the artifacts bucket, one folder per table version (written before the version item points
at it, so a scanner never sees a half-written snapshot)::

    snapshots/v00000042/pdq.index      HammingIndex.to_bytes()
    snapshots/v00000042/vpdq.index     listed videos' usable frames (their PDQ hashes)
    snapshots/v00000042/vpdq.rows      for each, the SHA-256 of its video's signal (its table key)
    snapshots/v00000042/manifest.json  written last

The index's row ids map back to hash items (the confirm step looks the hash up in the table): through
the hashes the index holds itself, or through ``<alg>.rows`` where a row names something else (a
video's frame names its video). Rows are sorted, so the same table gives the same bytes. The manifest::

    {"format": 2, "version": 42, "created": "2024-05-01T03:00:00+00:00",
     "algorithms": {"pdq": {"count": 1400000, "nbytes": 32,
                            "index": {"key": "...", "size": 161061184, "sha256": "..."}},
                    "vpdq": {"count": 3600, "nbytes": 32, "index": {...}, "rows": {...}}}}

An algorithm without live hashes is absent. The version item's ``snapshot_key`` names the manifest.
Format 1 snapshots (a ``rows`` object for every algorithm) still load.

Loading (``S3IndexLoader``, a ``DynamoStore`` index loader) reads a large object with concurrent
ranged GETs (``aws.read_object``: 16 MB each, 8 at once, into one buffer the index's arrays then
view: `bench/scale.py` models the cold start at 10M references from it) and verifies every object's
size and SHA-256 (and the index's own CRC32): a snapshot that fails raises ``SnapshotError``, it
never yields an empty index. Before the first sync there is no snapshot and the loader scans the
table instead.
``WatchedStore`` lets a warm scanner notice a new version: it calls ``refresh()`` on the store at most
once every ``check_seconds``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from botocore.exceptions import ClientError

from hashcheck.aws import delete_keys, is_gone, listed, read_object
from hashcheck.lists.listformat import Reference
from hashcheck.matching.index import HammingIndex
from hashcheck.matching.stores.base import NearHit
from hashcheck.matching.stores.dynamodb import INDEXED, DynamoStore, LoadedIndex, all_index_rows, table_index_loader
from hashcheck.tables.reference_table import ReferenceTable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FORMAT = 2
READABLE_FORMATS = (1, 2)
PREFIX = "snapshots/"
DEFAULT_CHECK_SECONDS = 30.0


class SnapshotError(RuntimeError):
    """A snapshot is missing a part or fails its checksums. Scanners fail closed on it."""


class HexRows(Sequence[str]):
    """The hash of each index row, as lowercase hex, backed by one (n, nbytes) uint8 array (~nbytes
    per row instead of a ~100-byte Python string)."""

    def __init__(self, rows: np.ndarray):
        self.array = rows

    @classmethod
    def from_bytes(cls, data: bytes | bytearray, nbytes: int) -> HexRows:
        if nbytes <= 0 or len(data) % nbytes:
            raise SnapshotError("snapshot rows do not divide into whole hashes")
        return cls(np.frombuffer(data, dtype=np.uint8).reshape(-1, nbytes))

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        return self.array[row].tobytes().hex()

    def to_bytes(self) -> bytes:
        return np.ascontiguousarray(self.array).tobytes()


Built = dict[str, tuple[HammingIndex, HexRows]]


# --- build and publish (the sync) ------------------------------------------------------------------


def build(table: ReferenceTable, algorithms: Iterable[str] = INDEXED) -> Built:
    """An index per perceptual algorithm over the table's live hashes, and one over listed videos'
    frames (`all_index_rows`: one scan for all); algorithms without any are left out."""
    return {
        algorithm: (HammingIndex(searched), HexRows(names))
        for algorithm, (searched, names) in all_index_rows(table, algorithms).items()
    }


def publish(s3, bucket: str, version: int, built: Built, now: Callable[[], datetime] | None = None) -> str:
    """Write the snapshot for `version` (objects first, manifest last); the manifest's key."""
    folder = f"{PREFIX}v{version:08d}/"
    entries = {}
    for algorithm, (index, rows) in sorted(built.items()):
        entries[algorithm] = {
            "count": len(rows),
            "nbytes": rows.array.shape[1],
            "index": _put(s3, bucket, f"{folder}{algorithm}.index", index.to_bytes()),
        }
        if not np.array_equal(rows.array, index.rows()):  # rows that name something else than the hash
            entries[algorithm]["rows"] = _put(s3, bucket, f"{folder}{algorithm}.rows", rows.to_bytes())
    created = (now or _utcnow)().isoformat(timespec="seconds")
    manifest = {"format": FORMAT, "version": version, "created": created, "algorithms": entries}
    key = f"{folder}manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=1).encode(), ContentType="application/json")
    return key


def _put(s3, bucket: str, key: str, data: bytes) -> dict:
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/octet-stream")
    return {"key": key, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def prune(s3, bucket: str, keep_from_version: int) -> int:
    """Delete snapshot folders older than `keep_from_version`; how many objects were deleted. The
    sync keeps the previous version too, for scanners still loading it."""
    doomed = []
    for obj in listed(s3, bucket, f"{PREFIX}v"):
        folder = obj["Key"][len(PREFIX) + 1 :].split("/", 1)[0]
        if folder.isdigit() and int(folder) < keep_from_version:
            doomed.append(obj["Key"])
    delete_keys(s3, bucket, doomed)
    return len(doomed)


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- load (the scanners) -------------------------------------------------------------------------------


class S3IndexLoader:
    """A ``DynamoStore`` index loader reading the snapshot the table's version item names.

    No snapshot yet (no version item, or one without ``snapshot_key``): the table is scanned
    (``table_index_loader``). ``check_seconds`` and ``clock`` configure the ``WatchedStore`` that
    ``store()`` builds."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        table: ReferenceTable,
        check_seconds: float = DEFAULT_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.s3, self.bucket, self.table = s3, bucket, table
        self.check_seconds, self.clock = check_seconds, clock
        self._manifest: tuple[str, dict] | None = None  # (key, manifest): both algorithms share one read

    def __call__(self, algorithm: str) -> LoadedIndex | None:
        version = self.table.get_version()
        if not version.snapshot_key:
            return table_index_loader(self.table)(algorithm)
        entry = self.manifest(version.snapshot_key)["algorithms"].get(algorithm)
        if entry is None:
            return None  # the list has no live hash of this algorithm
        try:
            index = HammingIndex.from_bytes(self._read(entry["index"]))
        except ValueError as exc:
            raise SnapshotError(f"{algorithm} index: {exc}") from None
        rows = (
            HexRows.from_bytes(self._read(entry["rows"]), entry["nbytes"]) if "rows" in entry else HexRows(index.rows())
        )
        if not len(index) == len(rows) == entry["count"]:
            raise SnapshotError(f"{algorithm} snapshot counts disagree with its manifest")
        return index, rows

    def manifest(self, key: str) -> dict:
        if self._manifest is None or self._manifest[0] != key:
            self._manifest = (key, read_manifest(self.s3, self.bucket, key))
        return self._manifest[1]

    def store(self, consistent_read: bool = False) -> WatchedStore:
        """A DynamoStore on this loader, refreshed at most every `check_seconds`."""
        store = DynamoStore(self.table, index_loader=self, consistent_read=consistent_read)
        return WatchedStore(store, self.check_seconds, self.clock)

    def _read(self, part: dict) -> bytes | bytearray:
        data = _get(self.s3, self.bucket, part["key"], part["size"])
        if len(data) != part["size"] or hashlib.sha256(data).hexdigest() != part["sha256"]:
            raise SnapshotError(f"snapshot object {part['key']} fails its checksum")
        return data


def read_manifest(s3, bucket: str, key: str) -> dict:
    try:
        manifest = json.loads(_get(s3, bucket, key))
    except ValueError:
        raise SnapshotError("snapshot manifest is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS or "algorithms" not in manifest:
        raise SnapshotError("snapshot manifest has an unknown format")
    return manifest


def _get(s3: S3Client, bucket: str, key: str, size: int | None = None) -> bytes | bytearray:
    """The object (of `size` bytes: read in ranges when large); SnapshotError when it is not there."""
    try:
        return read_object(s3, bucket, key, size) if size else s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if not is_gone(error):
            raise
        raise SnapshotError(f"snapshot object {key} is missing") from None


class WatchedStore:
    """A reference store that checks the table's version at most once every `check_seconds` (one
    GetItem), so a warm scanner picks up a new snapshot without a read per lookup. Composes any store
    with ``refresh()``; `clock` is injectable so tests need not sleep."""

    def __init__(
        self, store, check_seconds: float = DEFAULT_CHECK_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        self.store = store
        self.check_seconds = check_seconds
        self._clock = clock
        self._next_check: float | None = None

    def check(self) -> bool:
        """Refresh the store if the interval has passed; True if its indexes will be reloaded."""
        now = self._clock()
        if self._next_check is not None and now < self._next_check:
            return False
        self._next_check = now + self.check_seconds
        return self.store.refresh()

    @property
    def version(self) -> int | None:
        """The list version a verdict is made against (checked at most every `check_seconds`)."""
        self.check()
        return self.store.version

    def exact(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Reference]]:
        return self.store.exact(keys)  # reads the table directly: always current

    def near(self, algorithm: str, hashes: Sequence[str], max_distance: int) -> list[NearHit]:
        self.check()
        return self.store.near(algorithm, hashes, max_distance)

    def siblings(self, reference: Reference) -> list[Reference]:
        return self.store.siblings(reference)
