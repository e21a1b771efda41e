"""Re-match: references a sync just added, checked against the fingerprints already stored, without
reading any object again. A hit goes through the scanner's own quarantine / review path.

The sync publishes the references it made live as a delta (`hashcheck.lists.deltas`); its creation
starts RematchStateMachine (statemachine/rematch.asl.json), which runs this in two steps:

1. **Search** (`search_shards`), on a Distributed Map over the stored index's segments
   (`hashcheck.matching.stored`, fed by the FingerprintTable's stream; segments of at most 160 MB),
   a batch of segments per worker: the delta's exact hashes by binary search, its perceptual ones
   streamed against (`FewHashesIndex`). A worker's memory is two segments whatever the number of
   stored objects; it writes the candidates it found under ``rematch/v<version>/candidates/`` (named by
   its segments, so a retried batch writes the same object) and each failed batch is retried by the
   state machine, whose failure raises RematchFailedAlarm: a shard is never skipped silently.
2. **Decide** (`run_gathered`): the candidates of every batch, each decided as below, then the small
   segments are merged.

A direct invocation (``{"version": 42}``, an operator's or a small store's) does both in one run
(`run`). Every candidate's record is read (consistently), turned back into a ``Fingerprint`` and
decided by ``matcher.match`` against the scanner's full store plus the delta, so the decision rule is
exactly a scan's. A candidate that is a member record (an archive's entry, a document's picture) is
decided as its object holding that member, and the object is what is acted on. A quarantined,
released or deleted object is not touched again. Nothing here logs a hash (the candidate files hold
object ids only).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hashcheck.algorithms import PERCEPTUAL
from hashcheck.aws import delete_keys, listed
from hashcheck.fingerprinting.fingerprint import Fingerprint, Member
from hashcheck.jobs.s3events import Upload
from hashcheck.jobs.scanner import Scanner
from hashcheck.lists.deltas import delta_key, read_delta, version_of
from hashcheck.lists.listformat import Reference
from hashcheck.matching.index import HammingIndex
from hashcheck.matching.matcher import Result, match
from hashcheck.matching.stored import StoredIndex, Wanted
from hashcheck.matching.stores.base import ReferenceStore
from hashcheck.matching.stores.composite import CompositeStore
from hashcheck.matching.stores.dynamodb import DynamoStore
from hashcheck.objects import ObjectRef
from hashcheck.status import REMATCHABLE, Absence, ObjectStatus, Verdict
from hashcheck.tables.fingerprint_table import fingerprint_of
from hashcheck.tables.reference_table import ReferenceTable

log = logging.getLogger(__name__)

CANDIDATES_PREFIX = "rematch/"


class RematchIncomplete(Exception):
    """Some matched objects could not be acted on (each is logged); the run is failed so that it is
    retried (acting is idempotent) and, when every retry fails, RematchFailedAlarm says so."""


def candidates_prefix(delta: str) -> str:
    """Where step 1's workers leave the candidates they found for this delta."""
    return f"{CANDIDATES_PREFIX}v{version_of(delta) or 0:08d}/candidates/"


@dataclass
class RematchReport:
    version: int | None
    references: int = 0  # live references in the delta
    exact_candidates: int = 0
    near_candidates: int = 0
    checked: int = 0  # candidate records decided by the matcher
    matched: int = 0  # quarantined (or blocked) by this run
    review: int = 0  # held for review by this run (weak hits)
    held: int = 0  # matches held for review by a circuit breaker (of a reference, or of this update)
    update_held: str | None = None  # why the whole update was held, if it was
    gone: int = 0  # matched, but the object version no longer existed (recorded; case source_missing)
    skipped: int = 0  # candidates already quarantined, released, deleted, or without a fingerprint
    errors: int = 0
    outcomes: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Rematcher:
    """Checks a delta against the stored fingerprints and hands hits to `scanner`."""

    def __init__(self, scanner: Scanner, stored: StoredIndex | None = None):
        self.scanner = scanner
        self.config = scanner.config
        self.fingerprints = scanner.tables.fingerprints
        self.stored = stored or StoredIndex(scanner.s3, self.config.artifacts_bucket)

    def run_version(self, version: int) -> RematchReport:
        return self.run(delta_key(version))

    def search_shards(self, key: str, segments: list[str]) -> dict:
        """Step 1 on one worker: the delta against these segments; the candidates written for step 2."""
        refs = read_delta(self.scanner.s3, self.config.artifacts_bucket, key)
        exact, near = self._candidates(refs, segments)
        name = hashlib.sha256("\n".join(sorted(segments)).encode()).hexdigest()[:24]
        body = json.dumps({"segments": sorted(segments), "exact": sorted(exact), "near": sorted(near)})
        self.scanner.s3.put_object(
            Bucket=self.config.artifacts_bucket, Key=f"{candidates_prefix(key)}{name}.json", Body=body.encode()
        )
        return {"segments": len(segments), "exact_candidates": len(exact), "near_candidates": len(near)}

    def run_gathered(self, key: str) -> RematchReport:
        """Step 2: the candidates every worker of step 1 wrote, decided and acted on; then their files go
        (unless an object could not be acted on: the retry needs them)."""
        s3, bucket = self.scanner.s3, self.config.artifacts_bucket
        files = [o["Key"] for o in listed(s3, bucket, candidates_prefix(key))]
        exact: set[str] = set()
        near: set[str] = set()
        for name in files:
            found = json.loads(s3.get_object(Bucket=bucket, Key=name)["Body"].read())
            exact.update(found["exact"])
            near.update(found["near"])
        report = self.run(key, (exact, near - exact))
        if report.errors:  # kept for the retry (RematchIncomplete)
            return report
        delete_keys(s3, bucket, files)
        return report

    def run(self, key: str, candidates: tuple[set[str], set[str]] | None = None) -> RematchReport:
        """Decide and act on the delta's candidates (exact, near): those given, or all found here."""
        refs = read_delta(self.scanner.s3, self.config.artifacts_bucket, key)
        report = RematchReport(version_of(key), references=len(refs))
        exact, near = candidates if candidates is not None else self._candidates(refs)
        report.exact_candidates, report.near_candidates = len(exact), len(near)
        store = CompositeStore(self.scanner.store, _delta_store(self.scanner.tables.references, refs))
        subjects = self._subjects(list(self.fingerprints.records(sorted(exact | near))))
        decided = []
        for record, fp in subjects:
            result = self._decide(record, fp, store, report)
            if fp is not None and result is not None:
                decided.append((record, fp, result))
        report.update_held = self._hold_whole_update(report, decided)
        for record, fp, result in decided:
            self._act(record, fp, result, report)
        try:
            self.stored.compact()
        except Exception as exc:  # costs speed, not correctness: never fail a re-match on it
            log.warning("stored index not compacted", extra={"error": type(exc).__name__})
        log.info("rematch finished", extra={"rematch": {k: v for k, v in report.to_dict().items() if k != "outcomes"}})
        return report

    def _candidates(self, refs: list[Reference], segments: list[str] | None = None) -> tuple[set[str], set[str]]:
        """The stored objects that hold one of the update's exact hashes, and those (others) that lie
        near one of its perceptual ones: one pass over the stored index (or over these segments)."""
        hashes: dict[str, set[str]] = {}
        for ref in refs:
            hashes.setdefault(ref.algorithm, set()).add(ref.hash)
        exact, near = self.stored.search(Wanted.of(hashes, self.config.policy), segments)
        return exact, near - exact

    def _subjects(self, candidates: list[dict]) -> Iterator[tuple[dict, Fingerprint | None]]:
        """Each candidate object's record and fingerprint; member candidates join their object's
        fingerprint as its members (read from the object's own record)."""
        members: dict[str, list[Member]] = {}
        for record in candidates:
            if "parent" in record:
                member_fp = fingerprint_of(record)
                if member_fp is not None:
                    members.setdefault(record["parent"], []).append(Member(record["member"], member_fp))
        objects = {r["object_id"]: r for r in candidates if "parent" not in r}
        missing = sorted(set(members) - set(objects))
        objects.update({r["object_id"]: r for r in self.fingerprints.records(missing)})
        for object_id, record in objects.items():
            fp = fingerprint_of(record)
            if fp is not None:
                fp.members = members.get(object_id, [])
            yield record, fp

    def _decide(
        self, record: Mapping[str, Any], fp: Fingerprint | None, store: ReferenceStore, report: RematchReport
    ) -> Result | None:
        """The verdict to act on for this candidate, or None (nothing new to do)."""
        if record.get("status") not in REMATCHABLE or fp is None:
            report.skipped += 1
            return None
        report.checked += 1
        result = self.scanner.screen(fp, match(fp, store, self.config.policy))
        new_review = result.verdict == Verdict.REVIEW and record.get("status") != ObjectStatus.REVIEW
        return result if result.verdict == Verdict.MATCH or new_review else None

    def _hold_whole_update(self, report: RematchReport, decided: list) -> str | None:
        """The update's circuit breaker (`Breaker.hold_update`): why every match is held, or None."""
        acting = [result for _, _, result in decided if result.verdict == Verdict.MATCH]
        return self.scanner.breaker.hold_update(report.version, acting, self.fingerprints.approximate_count())

    def _act(self, record: Mapping[str, Any], fp: Fingerprint, result: Result, report: RematchReport) -> None:
        obj = ObjectRef(record["bucket"], record["key"], record.get("version_id"), record.get("etag"), fp.size)
        upload = Upload(obj, {"principal": "hashcheck-rematch"})
        try:
            outcome = self.scanner.act(upload, fp, result, hold=report.update_held)
        except Exception as exc:  # one object must not stop the others; its case (if filed) resumes next time
            report.errors += 1
            log.error("rematch could not act", extra={"key": obj.key, "error": type(exc).__name__})
            return
        if result.verdict == Verdict.MATCH and outcome.status == ObjectStatus.REVIEW:
            report.held += 1
        elif result.verdict == Verdict.MATCH and outcome.location is None:
            report.gone += 1
            outcome.reason = "matched a list update after the object was deleted; no evidence copy"
            self.scanner.record_gone(obj, fp, result, outcome.reason)
            outcome.status = Absence.DELETED
        elif result.verdict == Verdict.MATCH:
            report.matched += 1
        else:
            report.review += 1
        report.outcomes.append(outcome.as_dict())
        log.info("rematched", extra=outcome.as_dict())


def _delta_store(table: ReferenceTable, refs: Iterable[Reference]) -> DynamoStore:
    """A store whose near index holds just the delta's hashes (confirmed in the table like any
    other), so a re-match decides right even before a scanner has loaded the new snapshot."""
    by_alg: dict[str, list[str]] = {}
    for ref in refs:
        if ref.algorithm in PERCEPTUAL:
            by_alg.setdefault(ref.algorithm, []).append(ref.hash)

    def loader(algorithm: str) -> tuple[HammingIndex, list[str]] | None:
        hashes = sorted(set(by_alg.get(algorithm, [])))
        return (HammingIndex.from_hex(hashes), hashes) if hashes else None

    return DynamoStore(table, index_loader=loader)
