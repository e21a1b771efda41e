"""Re-match: references a sync just added, checked against the fingerprints already stored, without
reading any object again. A hit goes through the scanner's own quarantine / review path.

Hand-off from the sync (one file per published list version, in the artifacts bucket)::

    deltas/v00000042.jsonl   the references that became live in version 42 (hashcheck list v1 rows)

The sync collects them with ``DeltaWriter`` (``apply_rows``'s ``on_added`` hook) and publishes the
file before it bumps the version; the file's creation (S3 -> EventBridge) invokes RematchFunction,
which may also be invoked directly with ``{"version": 42}``.

Finding candidates costs in proportion to the delta, not to the stored set:

- exact (MD5, SHA-1, SHA-256): one Query per new reference on the FingerprintTable's GSI of that
  algorithm (``md5-index``, ``sha1-index``, ``sha256-index``, KEYS_ONLY);
- near (PDQ, pHash): stored perceptual hashes, every rotation/mirror/frame variant of every
  fingerprint, are kept in a log-structured ``StoredIndex``: immutable segments under ``fpindex/``,
  each written from one batch of the FingerprintTable's stream and merged when there are too many.
  A warm function keeps the loaded segments and only reads new ones; the new references are
  searched in each segment's ``HammingIndex`` (~1 ms per query per million rows).

Every candidate's record is read (consistently), turned back into a ``Fingerprint`` and decided by
``matcher.match`` against the scanner's full store plus the delta, so the decision rule is exactly a
scan's. A quarantined, released or deleted object is not touched again. Nothing here logs a hash.
"""

from __future__ import annotations

import io
import logging
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
from boto3.dynamodb.types import TypeDeserializer

from hashcheck.algorithms import ALGORITHMS
from hashcheck.fingerprinting.fingerprint import NOT_IMAGE, Fingerprint, NearHash
from hashcheck.jobs.s3events import Upload
from hashcheck.lists import listformat
from hashcheck.lists.listformat import Reference, Rejected
from hashcheck.matching.index import HammingIndex
from hashcheck.matching.matcher import DEFAULT_POLICY, MATCH, REVIEW, Policy, Result, match
from hashcheck.matching.stores.composite import CompositeStore
from hashcheck.matching.stores.dynamodb import DynamoStore
from hashcheck.objects import ObjectRef
from hashcheck.tables import reference_table as references

log = logging.getLogger(__name__)

DELTA_PREFIX = "deltas/"
SEGMENT_PREFIX = "fpindex/"
EXACT = ("md5", "sha1", "sha256")
NEAR = ("pdq", "phash")
# The GSI on the FingerprintTable that finds stored objects by each exact hash (template.yaml).
EXACT_INDEXES = {alg: f"{alg}-index" for alg in EXACT}
# Statuses a new reference can still change. quarantined: done; released: a person cleared it (the
# allowlist decides); deleted / superseded / error: no fingerprint, or already blocked.
REMATCHABLE = ("clean", "review", "unscannable")
MAX_SEGMENTS = 8  # more than this and the small ones are merged
_DESER = TypeDeserializer()


# --- the near hashes of a fingerprint record ------------------------------------------------------


def encode_near(near: Sequence[NearHash]) -> str:
    """A fingerprint's near variants as one compact string for its FingerprintTable record
    (``near``): ``alg:hash:quality:variant:frame`` joined by ``;`` (~80 bytes per variant)."""
    return ";".join(
        f"{h.algorithm}:{h.hash}:{'' if h.quality is None else h.quality}:{h.variant}:{h.frame}" for h in near
    )


def decode_near(text: str | None) -> list[NearHash]:
    out = []
    for part in filter(None, (text or "").split(";")):
        algorithm, hash_value, quality, variant, frame = part.split(":")
        out.append(NearHash(algorithm, hash_value, int(quality) if quality else None, variant, int(frame)))
    return out


def plain_record(item: dict) -> dict:
    """A low-level FingerprintTable item (or a stream image) as plain values; numbers as ints."""
    return {name: _plain(_DESER.deserialize(value)) for name, value in item.items()}


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return int(value) if type(value).__name__ == "Decimal" else value


def near_of(record: dict) -> list[NearHash]:
    """Every near variant the record carries; records written before ``near`` existed give their
    original-orientation PDQ and pHash."""
    near = decode_near(record.get("near"))
    if near:
        return near
    out = []
    if record.get("pdq"):
        out.append(NearHash("pdq", record["pdq"], _int(record.get("pdq_quality"))))
    if record.get("phash"):
        out.append(NearHash("phash", record["phash"]))
    return out


def fingerprint_of(record: dict) -> Fingerprint | None:
    """The Fingerprint a record was written from (no pixels needed to match it); None without hashes."""
    if not all(record.get(alg) for alg in EXACT):
        return None
    return Fingerprint(
        size=_int(record.get("size")) or 0,
        md5=record["md5"],
        sha1=record["sha1"],
        sha256=record["sha256"],
        status=record.get("image_status") or NOT_IMAGE,
        pdq=record.get("pdq"),
        pdq_quality=_int(record.get("pdq_quality")),
        phash=record.get("phash"),
        near=near_of(record),
    )


def _int(value) -> int | None:
    return None if value in (None, "") else int(value)


# --- the delta hand-off ---------------------------------------------------------------------------


def delta_key(version: int) -> str:
    return f"{DELTA_PREFIX}v{version:08d}.jsonl"


class DeltaWriter:
    """The references that became live during one sync, spooled to a temporary file (a full list's
    first import can add millions) and published as ``deltas/v<version>.jsonl``.

    Use as ``apply_rows(..., on_added=writer.add)``; after every source is applied and before the
    version is bumped: ``writer.publish(s3, bucket, new_version)``."""

    def __init__(self):
        self._spool = tempfile.TemporaryFile("w+b")  # noqa: SIM115 - closed by close()
        self.count = 0

    def add(self, ref: Reference) -> None:
        if not ref.deleted:
            self._spool.write((listformat.to_json(ref) + "\n").encode())
            self.count += 1

    def publish(self, s3, bucket: str, version: int) -> str | None:
        """Write the delta for `version` (None, and nothing written, when nothing was added).

        The spool itself is the body: reading it into memory first held the delta twice (str and bytes,
        ~280 B per reference; bench/sync.py measured 28 MB at 100k rows)."""
        if not self.count:
            return None
        self._spool.flush()
        self._spool.seek(0)
        key = delta_key(version)
        s3.put_object(Bucket=bucket, Key=key, Body=self._spool, ContentType="application/x-ndjson")
        log.info("delta published", extra={"version": version, "references": self.count})
        return key

    def close(self) -> None:
        self._spool.close()


def write_delta(s3, bucket: str, version: int, refs: Iterable[Reference]) -> str | None:
    writer = DeltaWriter()
    try:
        for ref in refs:
            writer.add(ref)
        return writer.publish(s3, bucket, version)
    finally:
        writer.close()


def read_delta(s3, bucket: str, key: str) -> list[Reference]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    rows = []
    for row in listformat.read(io.StringIO(body)):
        if isinstance(row, Rejected):  # we wrote the file: a bad row is a bug, not data to skip
            raise ValueError(f"delta {key} line {row.line} does not read back")
        if not row.deleted:
            rows.append(row)
    return rows


def version_of(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    if key.startswith(DELTA_PREFIX) and name.startswith("v") and name.endswith(".jsonl"):
        digits = name[1 : -len(".jsonl")]
        return int(digits) if digits.isdigit() else None
    return None


# --- the stored perceptual hashes -----------------------------------------------------------------


@dataclass
class _Segment:
    key: str
    objects: list[str]  # object ids
    hashes: dict[str, np.ndarray]  # algorithm -> (n, nbytes) uint8
    owners: dict[str, np.ndarray]  # algorithm -> (n,) uint32 index into objects
    indexes: dict[str, HammingIndex] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(len(h) for h in self.hashes.values())

    def index(self, algorithm: str) -> HammingIndex | None:
        if algorithm not in self.indexes and len(self.hashes.get(algorithm, ())):
            self.indexes[algorithm] = HammingIndex(self.hashes[algorithm])
        return self.indexes.get(algorithm)


def _segment_bytes(objects: list[str], hashes: dict[str, list[bytes]], owners: dict[str, list[int]]) -> bytes:
    arrays = {"objects": np.array([bytes.fromhex(o) for o in objects], dtype="S32")}
    for alg in NEAR:
        nbytes = ALGORITHMS[alg].hex_length // 2
        arrays[f"{alg}_hashes"] = np.frombuffer(b"".join(hashes.get(alg, [])), dtype=np.uint8).reshape(-1, nbytes)
        arrays[f"{alg}_owners"] = np.array(owners.get(alg, []), dtype=np.uint32)
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def _segment_from_bytes(key: str, data: bytes) -> _Segment:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        objects = [o.hex() for o in z["objects"]]
        hashes = {alg: np.ascontiguousarray(z[f"{alg}_hashes"]) for alg in NEAR}
        owners = {alg: z[f"{alg}_owners"] for alg in NEAR}
    return _Segment(key, objects, hashes, owners)


class StoredIndex:
    """The perceptual hashes of stored fingerprints, as immutable segments in S3 (``fpindex/``).

    ``add(records)`` writes one segment (from one batch of the FingerprintTable's stream);
    ``candidates`` searches every segment; ``compact`` merges the small ones. Stale rows (an object
    since quarantined or deleted) are harmless: every candidate's record is read before it acts."""

    def __init__(self, s3, bucket: str, prefix: str = SEGMENT_PREFIX):
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self._loaded: dict[str, _Segment] = {}  # warm cache: segments never change once written

    def add(self, records: Iterable[dict], policy: Policy = DEFAULT_POLICY) -> str | None:
        """A segment for the records' near hashes (rematchable statuses only); its key, or None."""
        objects: list[str] = []
        hashes: dict[str, list[bytes]] = {alg: [] for alg in NEAR}
        owners: dict[str, list[int]] = {alg: [] for alg in NEAR}
        for record in records:
            if record.get("status") not in REMATCHABLE:
                continue
            seen = set()
            for h in near_of(record):
                if h.algorithm not in NEAR or (h.algorithm, h.hash) in seen:
                    continue
                if h.algorithm == "pdq" and (h.quality or 0) < policy.pdq_min_quality:
                    continue  # the matcher never uses it for a near match
                seen.add((h.algorithm, h.hash))
                if not objects or objects[-1] != record["object_id"]:
                    objects.append(record["object_id"])
                hashes[h.algorithm].append(bytes.fromhex(h.hash))
                owners[h.algorithm].append(len(objects) - 1)
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
        hashes: dict[str, list[bytes]] = {alg: [] for alg in NEAR}
        owners: dict[str, list[int]] = {alg: [] for alg in NEAR}
        for segment in merge:
            base = len(objects)
            objects += segment.objects
            for alg in NEAR:
                hashes[alg] += [row.tobytes() for row in segment.hashes[alg]]
                owners[alg] += [base + int(o) for o in segment.owners[alg]]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        key = f"{self.prefix}seg-{stamp}-{uuid.uuid4().hex[:12]}.npz"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=_segment_bytes(objects, hashes, owners))
        doomed = [{"Key": s.key} for s in merge]
        for start in range(0, len(doomed), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True})
        log.info("stored index compacted", extra={"merged_segments": len(merge)})
        return key


def records_from_stream(event: dict) -> Iterator[dict]:
    """The new images of a DynamoDB stream batch (INSERT / MODIFY) as plain records."""
    for record in event.get("Records", []):
        image = record.get("dynamodb", {}).get("NewImage")
        if record.get("eventName") in ("INSERT", "MODIFY") and image:
            yield plain_record(image)


# --- the re-match ---------------------------------------------------------------------------------


@dataclass
class RematchReport:
    version: int | None
    references: int = 0  # live references in the delta
    exact_candidates: int = 0
    near_candidates: int = 0
    checked: int = 0  # candidate records decided by the matcher
    matched: int = 0  # quarantined (or blocked) by this run
    review: int = 0  # held for review by this run
    gone: int = 0  # matched, but the object version no longer existed (recorded; case source_missing)
    skipped: int = 0  # candidates already quarantined, released, deleted, or without a fingerprint
    errors: int = 0
    outcomes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Rematcher:
    """Checks a delta against the stored fingerprints and hands hits to `scanner`
    (a ``hashcheck.jobs.scanner.Scanner``: its config names the tables and buckets)."""

    def __init__(self, scanner, stored: StoredIndex | None = None):
        self.scanner = scanner
        self.config = scanner.config
        self.s3, self.ddb = scanner.s3, scanner.ddb
        self.stored = stored or StoredIndex(self.s3, self.config.artifacts_bucket)

    def run_version(self, version: int) -> RematchReport:
        return self.run(delta_key(version))

    def run(self, key: str) -> RematchReport:
        refs = read_delta(self.s3, self.config.artifacts_bucket, key)
        report = RematchReport(version_of(key), references=len(refs))
        exact = self._exact_candidates(refs)
        near = self._near_candidates(refs) - exact
        report.exact_candidates, report.near_candidates = len(exact), len(near)
        store = CompositeStore(self.scanner.store, _delta_store(self.config.reference_table, self.ddb, refs))
        for record in self._records(sorted(exact | near)):
            self._check(record, store, report)
        try:
            self.stored.compact()
        except Exception as exc:  # costs speed, not correctness: never fail a re-match on it
            log.warning("stored index not compacted", extra={"error": type(exc).__name__})
        log.info("rematch finished", extra={"rematch": {k: v for k, v in report.to_dict().items() if k != "outcomes"}})
        return report

    def _exact_candidates(self, refs: list[Reference]) -> set[str]:
        found: set[str] = set()
        for ref in refs:
            if ref.algorithm not in EXACT_INDEXES:
                continue
            pages = self.ddb.get_paginator("query").paginate(
                TableName=self.config.fingerprint_table,
                IndexName=EXACT_INDEXES[ref.algorithm],
                KeyConditionExpression="#h = :h",
                ExpressionAttributeNames={"#h": ref.algorithm},
                ExpressionAttributeValues={":h": {"S": ref.hash}},
            )
            for page in pages:
                found.update(item["object_id"]["S"] for item in page.get("Items", []))
        return found

    def _near_candidates(self, refs: list[Reference]) -> set[str]:
        found: set[str] = set()
        policy = self.config.policy
        for alg in NEAR:
            hashes = sorted({r.hash for r in refs if r.algorithm == alg})
            found |= self.stored.candidates(alg, hashes, policy.search_radius(alg))
        return found

    def _records(self, object_ids: list[str]) -> Iterator[dict]:
        table = self.config.fingerprint_table
        for start in range(0, len(object_ids), references.KEYS_PER_GET):
            chunk = object_ids[start : start + references.KEYS_PER_GET]
            request = {table: {"Keys": [{"object_id": {"S": o}} for o in chunk], "ConsistentRead": True}}
            while request:
                response = self.ddb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(table, []):
                    yield plain_record(item)
                request = response.get("UnprocessedKeys") or {}

    def _check(self, record: dict, store, report: RematchReport) -> None:
        fp = fingerprint_of(record)
        if record.get("status") not in REMATCHABLE or fp is None:
            report.skipped += 1
            return
        report.checked += 1
        result = match(fp, store, self.config.policy)
        if result.verdict != MATCH and not (result.verdict == REVIEW and record.get("status") != "review"):
            return
        obj = ObjectRef(record["bucket"], record["key"], record.get("version_id"), record.get("etag"), fp.size)
        try:
            outcome = act(self.scanner, Upload(obj, {"principal": "hashcheck-rematch"}), fp, result)
        except Exception as exc:  # one object must not stop the others; its case (if filed) resumes next time
            report.errors += 1
            log.error("rematch could not act", extra={"key": obj.key, "error": type(exc).__name__})
            return
        if result.verdict == MATCH and outcome.location is None:
            report.gone += 1
            _record_gone(self.scanner, obj, fp, outcome)
            outcome.status = "deleted"
        elif result.verdict == MATCH:
            report.matched += 1
        else:
            report.review += 1
        report.outcomes.append(outcome.as_dict())
        log.info("rematched", extra=outcome.as_dict())


def act(scanner, upload: Upload, fp: Fingerprint, result: Result):
    """The scanner's own path for a verdict reached without reading the object."""
    public = getattr(scanner, "act", None)
    if public is not None:
        return public(upload, fp, result)
    # Until the lead adds Scanner.act (see the hand-off notes): the same private steps it wraps.
    if result.verdict == MATCH:
        return scanner._quarantine(upload, fp, result)
    return scanner._hold_for_review(upload, fp, result)


def _record_gone(scanner, obj: ObjectRef, fp: Fingerprint, outcome) -> None:
    """The matched version no longer existed: its case is `source_missing`; the record says deleted."""
    from hashcheck.tables import fingerprint_table as fingerprints

    reason = "matched a list update after the object was deleted; no evidence copy"
    fingerprints.record(
        scanner.ddb, scanner.config.fingerprint_table, obj, "deleted", MATCH, fp, scanner.list_version(), reason
    )
    outcome.reason = reason


def _delta_store(table: str, ddb, refs: list[Reference]) -> DynamoStore:
    """A store whose near index holds just the delta's hashes (confirmed in the table like any
    other), so a re-match decides right even before a scanner has loaded the new snapshot."""
    by_alg: dict[str, list[str]] = {}
    for ref in refs:
        if ref.algorithm in NEAR:
            by_alg.setdefault(ref.algorithm, []).append(ref.hash)

    def loader(algorithm: str):
        hashes = sorted(set(by_alg.get(algorithm, [])))
        return (HammingIndex.from_hex(hashes), hashes) if hashes else None

    return DynamoStore(table, client=ddb, index_loader=loader)
