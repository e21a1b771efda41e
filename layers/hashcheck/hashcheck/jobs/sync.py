"""The scheduled list sync: fetch each source's delta, validate, apply, rebuild the snapshot, bump.

For each configured source, in order:

1. read its checkpoint (``ReferenceTable.checkpoint``: item ``meta#checkpoint#<name>``);
2. fetch the delta since it, and spool its valid rows to a temporary file while counting rejected
   rows (logged by line number and reason only, never a hash). Spooling is what lets a delta be
   rejected whole after its last byte (a checksum over the body, the share of bad rows) while memory
   stays bounded: rows stream from the network to /tmp and from /tmp to DynamoDB;
3. reject the whole delta (nothing applied, checkpoint kept) when it is implausible: a checksum
   mismatch, more than ``max_bad_share`` malformed rows, rows of a list the source does not own, or a
   full list that would withdraw more than ``max_removed_share`` of its list;
4. apply the rows with ``ReferenceTable.apply_rows`` (25 per batch, retries); for a full-list source
   (``full_list = True``, the s3 files) also withdraw its list's live references the file lacks.

Then, if any rows reached the table: rebuild and publish the snapshot,
bump the version (conditional write), and only then store each applied source's new checkpoint.
Crash-safety: a checkpoint moves only after its delta is committed and the snapshot published; a
crash anywhere leaves the old checkpoint, the rerun fetches the same delta again, and since applying
is idempotent it reaches the table one clean run would. A failing source does not stop the others;
it is reported (``status = "failed"``) and retried on the next run.

Deltas larger than one invocation (a first import of a list of millions: ~2 ms per row against DynamoDB,
so ~400k rows fit in 15 minutes). Given the time left (``remaining``), the sync stops applying when
what is left is what rebuilding the snapshot of the hashes then live takes (``finish_reserve``),
records how far it got (``meta#progress#<source>``: the checkpoint
the delta was fetched from, a row count, a SHA-256 of those spooled rows, and the version it is about to
publish; ``ReferenceTable.store_progress``) and publishes what it applied (snapshot, delta, version:
those references act at once). The checkpoint stays, so the next run fetches the same delta and skips
the rows already applied *if* they are byte for byte the same and that version came out; otherwise it
applies them again, which is merely slower and announces them to the re-match. It goes on (``status =
"partial"``) until the last run, which stores the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hashcheck.aws import Clients, error_code
from hashcheck.lists import listformat
from hashcheck.lists.deltas import DeltaWriter, delta_key, read_delta
from hashcheck.lists.listformat import Reference, Rejected
from hashcheck.lists.sources import ChecksumMismatch, SourceError, SourceSpec, load_specs, make_source
from hashcheck.lists.sources.base import Checkpoint, Delta, ListSource
from hashcheck.matching import snapshot
from hashcheck.tables.dynamo import DEFAULT_RETRY, RetriesExhausted, Retry
from hashcheck.tables.reference_table import ApplyStats, ReferenceTable, Version, VersionConflict, table_hash

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# Seconds kept for the snapshot build, the publish and the bump once applying stops, from the live
# hashes the snapshot will index (bench/scale.py, "snapshot build"): each costs ~11 us to receive and
# parse from the table's scan, ~1 us to index and ~2 us to upload; twice that, plus a fixed part for
# the delta, the bump and the checkpoint. 1.4M listed images (~2.8M PDQ and pHash): 144 s; 10M: 660 s,
# about as many as one 15-minute invocation can rebuild (README, "Scale").
RESERVE_FIXED_S = 60.0
RESERVE_PER_HASH_S = 30e-6


def finish_reserve(indexed_hashes: int) -> float:
    return RESERVE_FIXED_S + RESERVE_PER_HASH_S * indexed_hashes


FINISH_RESERVE_S = finish_reserve(0)  # before any snapshot: the fixed part
LOGGED_REJECTIONS = 20  # per source: enough to fix a feed, without flooding the logs
PROGRESS_EVERY = 1000  # rows between on_rows calls


# --- configuration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncConfig:
    table_name: str
    bucket: str
    sources: tuple[SourceSpec, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, clients: Clients | None = None) -> SyncConfig:
        """``REFERENCE_TABLE``, ``ARTIFACTS_BUCKET``, and ``LIST_SOURCES`` or ``LIST_SOURCES_PARAMETER``."""
        env = os.environ if env is None else env
        missing = [name for name in ("REFERENCE_TABLE", "ARTIFACTS_BUCKET") if not env.get(name)]
        if missing:
            raise ValueError(f"missing environment variables: {', '.join(missing)}")
        ssm = clients.ssm if clients is not None and env.get("LIST_SOURCES_PARAMETER") else None
        specs = load_specs(env, ssm)
        return cls(env["REFERENCE_TABLE"], env["ARTIFACTS_BUCKET"], tuple(specs))


# --- reports ------------------------------------------------------------------------------------------------


@dataclass
class SourceReport:
    name: str
    status: str = "pending"  # applied | partial (resumes next run) | unchanged | rejected | failed
    rows: int = 0  # valid rows received (additions and tombstones)
    rejected: int = 0  # malformed rows (or rows of a list the source does not own)
    added: int = 0
    removed: int = 0  # tombstones that took effect, and full-list withdrawals
    updated: int = 0
    resumed_after: int = 0  # rows an earlier, stopped run had applied and this one skipped
    reason: str | None = None  # why rejected, failed or partial (never row contents)
    # why rows were rejected, each reason with its count, and the first lines (never row contents)
    rejections: dict[str, int] = field(default_factory=dict)
    rejected_lines: list[int] = field(default_factory=list)


@dataclass
class SyncReport:
    sources: list[SourceReport] = field(default_factory=list)
    version: int = 0
    snapshot_key: str | None = None
    delta_key: str | None = None  # the references this run added, for the re-match
    index_size: dict[str, int] = field(default_factory=dict)  # live hashes per perceptual algorithm
    duration_seconds: float = 0.0

    def total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sources)

    @property
    def rows_per_second(self) -> float:
        return self.total("rows") / self.duration_seconds if self.duration_seconds else 0.0

    @property
    def ok(self) -> bool:
        return all(s.status in ("applied", "partial", "unchanged") for s in self.sources)

    def metrics(self) -> list[tuple[str, float, str]]:
        """(name, value, CloudWatch unit) for the handler to emit."""
        counts = [
            ("RowsAdded", self.total("added")),
            ("RowsRemoved", self.total("removed")),
            ("RowsRejected", self.total("rejected")),
            ("SourcesRejected", sum(s.status == "rejected" for s in self.sources)),
            ("SourcesFailed", sum(s.status == "failed" for s in self.sources)),
            ("SourcesPartial", sum(s.status == "partial" for s in self.sources)),
            ("IndexedHashes", sum(self.index_size.values())),
        ]
        return [(name, value, "Count") for name, value in counts] + [
            ("SyncDuration", round(self.duration_seconds, 3), "Seconds")
        ]

    def source_metrics(self) -> list[tuple[str, str, float]]:
        """(source name, metric, value) for each source of this run: ``SourceSynced`` 1 when its delta was
        applied (whole or in part) or there was none, 0 when it failed or was rejected. ListSourceAlarm
        watches it per source (a source that keeps failing is named; a checkpoint left behind is not
        silent)."""
        return [(s.name, "SourceSynced", float(s.status in ("applied", "partial", "unchanged"))) for s in self.sources]

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "rows_per_second": round(self.rows_per_second, 1)}


# --- entry points -------------------------------------------------------------------------------------------


def run_sync(
    config: SyncConfig,
    clients: Clients,
    now: Callable[[], datetime] | None = None,
    on_rows: Callable[[int], None] | None = None,
    retry: Retry = DEFAULT_RETRY,
    remaining: Callable[[], float] | None = None,
) -> SyncReport:
    """Sync every configured source (see the module docstring). Raises on a configuration error.
    `remaining()`: seconds left in this invocation (the Lambda context's), None for no limit."""
    jobs = [(make_source(spec, clients, config.bucket), spec) for spec in config.sources]
    table = ReferenceTable(clients.dynamodb, config.table_name, retry)
    return sync_sources(jobs, table, config.bucket, clients.s3, now=now, on_rows=on_rows, remaining=remaining)


def import_file(
    path: str,
    table: ReferenceTable,
    bucket: str,
    s3: S3Client,
    list_id: str | None = None,
    on_rows: Callable[[int], None] | None = None,
    now: Callable[[], datetime] | None = None,
) -> SyncReport:
    """Apply a local list file once (additions and explicit tombstones; no checkpoint), then rebuild
    the snapshot and bump the version. With `list_id`, rows of any other list are rejected."""
    spec = SourceSpec(name="import", type="file", list_id=list_id)
    jobs = [(_FileSource(path), spec)]
    return sync_sources(jobs, table, bucket, s3, now=now, on_rows=on_rows, checkpoints=False)


def sync_sources(
    jobs: Sequence[tuple[ListSource, SourceSpec]],
    table: ReferenceTable,
    bucket: str,
    s3: S3Client,
    now: Callable[[], datetime] | None = None,
    on_rows: Callable[[int], None] | None = None,
    checkpoints: bool = True,
    remaining: Callable[[], float] | None = None,
) -> SyncReport:
    """The sync over ready-made sources, each with the spec whose policy applies to it."""
    started = time.monotonic()
    now = now or _utcnow
    start = table.get_version()
    # Live rows added after the last published version were never announced (a run died first); before
    # any version, no row was.
    since = start.updated if start.version else ""
    run = _Run(table, now, on_rows, added_since=since, remaining=remaining, indexed=_indexed(s3, bucket, start))
    report, pending = SyncReport(), []
    promoted = _out_of_shadow(run, s3, bucket)
    for source, spec in jobs:
        previous = table.checkpoint(spec.name) if checkpoints else None
        saved = _load_progress(table, spec.name, previous, start.version) if checkpoints else None
        source_report, checkpoint, progress = run.source(source, spec, previous, saved)
        report.sources.append(source_report)
        if progress is not None and checkpoints:
            # Stored before publishing, so that a publish slower than the reserve cannot make every run
            # start over; it counts only once this run's version is out (_load_progress).
            _store_progress(table, spec.name, previous, progress, start.version + 1)
        elif checkpoints and checkpoint is not None and dict(checkpoint) != (previous or {}):
            pending.append((spec.name, checkpoint))
    try:
        _publish(report, run, s3, bucket, rebuild=run.touched_table)
    finally:
        run.delta.close()
    _register_shadow(table, run, report, promoted)
    for name, checkpoint in pending:  # only now: the deltas are committed and the snapshot is live
        table.store_checkpoint(name, checkpoint, now().isoformat(timespec="seconds"))
        table.clear_progress(name)
    report.duration_seconds = time.monotonic() - started
    log.info("sync finished", extra={"sync": {k: v for k, v in report.to_dict().items() if k != "sources"}})
    return report


def _out_of_shadow(run: _Run, s3: S3Client, bucket: str) -> list[str]:
    """The shadow batches whose period is over: their references go into this run's delta (the re-match
    then acts on the stored objects they match, breakers and all). Returns the batches handed over."""
    now = run.now().isoformat(timespec="seconds")
    due = {name: batch for name, batch in run.table.shadow_batches().items() if batch["until"] <= now}
    for name, batch in due.items():
        version = int(name.rsplit("#", 1)[1])
        for ref in read_delta(s3, bucket, delta_key(version)):
            if ref.list == batch["list_id"]:
                run.delta.add(ref)
        run.touched_table = True  # a new version carries the delta to the re-match
        log.info("references out of shadow", extra={"batch": name, "list": batch["list_id"]})
    return sorted(due)


def _register_shadow(table: ReferenceTable, run: _Run, report: SyncReport, promoted: list[str]) -> None:
    """Note this run's shadow batches (sources in shadow rollout that made references live, by the
    version whose delta lists them) and forget the ones handed over, once that version is out."""
    new = {f"{name}#{report.version}": batch for name, batch in run.shadowed.items()} if report.delta_key else {}
    if not new and not promoted:
        return
    batches = {k: v for k, v in table.shadow_batches().items() if k not in promoted}
    table.store_shadow_batches({**batches, **new})


def _publish(report: SyncReport, run: _Run, s3: S3Client, bucket: str, rebuild: bool) -> None:
    current = run.table.get_version()
    # Also rebuild when the version was bumped without a snapshot (written by other tools).
    if not rebuild and (current.snapshot_key or current.version == 0):
        report.version, report.snapshot_key = current.version, current.snapshot_key
        if current.snapshot_key:
            manifest = snapshot.read_manifest(s3, bucket, current.snapshot_key)
            report.index_size = {alg: entry["count"] for alg, entry in manifest["algorithms"].items()}
        return
    built = snapshot.build(run.table)
    key = snapshot.publish(s3, bucket, current.version + 1, built, run.now)
    # The new references go to the re-match (stored objects) before the version announces them.
    report.delta_key = run.delta.publish(s3, bucket, current.version + 1)
    bumped = run.table.bump_version(current.version, snapshot_key=key)
    report.version, report.snapshot_key = bumped.version, key
    report.index_size = {alg: len(rows) for alg, (_, rows) in built.items()}
    try:
        snapshot.prune(s3, bucket, keep_from_version=bumped.version - 1)
    except Exception as exc:  # old snapshots cost storage, not correctness: never fail the sync on them
        log.warning("could not prune old snapshots", extra={"error": exc.__class__.__name__})


# --- progress of a delta applied in parts ----------------------------------------------------------------------


def _load_progress(table: ReferenceTable, source: str, previous: Checkpoint | None, version: int) -> dict | None:
    """How far a stopped run got into the delta fetched from `previous`, if that run also published
    (the table's `version` reached the one it was about to publish); else None. Rows applied by a run
    that died before publishing are applied again: only then are they announced to the re-match."""
    saved = table.progress(source)
    if not saved or saved.get("from") != _canonical(previous) or int(saved.get("publishes", 0)) > version:
        return None
    return saved


def _store_progress(
    table: ReferenceTable, source: str, previous: Checkpoint | None, progress: _Prefix, publishes: int
) -> None:
    item = {"from": _canonical(previous), "rows": progress.rows}
    table.store_progress(source, {**item, "sha256": progress.digest.hexdigest(), "publishes": publishes})


def _canonical(checkpoint: Checkpoint | None) -> str:
    return json.dumps({str(k): str(v) for k, v in (checkpoint or {}).items()}, sort_keys=True)


# --- one source -------------------------------------------------------------------------------------------------


@dataclass
class _Run:
    table: ReferenceTable
    now: Callable[[], datetime]
    on_rows: Callable[[int], None] | None
    touched_table: bool = False  # some rows reached apply_rows (even if a source failed after)
    added_since: str | None = None  # when the last version was published
    delta: DeltaWriter = field(default_factory=DeltaWriter)  # references that became live in this run
    remaining: Callable[[], float] | None = None  # seconds left in the invocation; None: no limit
    indexed: int = 0  # hashes the last snapshot indexed: what its rebuild will take at least
    made_live: set[tuple[str, str]] = field(default_factory=set)  # (list, id) the current source made live
    shadowed: dict[str, dict[str, str]] = field(default_factory=dict)  # source -> {list_id, until} in shadow

    def source(self, source: ListSource, spec: SourceSpec, previous: Checkpoint | None, saved: dict | None):
        """(report, checkpoint to store once committed or None, progress to store if it stopped early)."""
        report = SourceReport(spec.name)
        self.made_live = set()
        try:
            return self._fetch_and_apply(source, spec, previous, saved, report)
        finally:  # whatever took effect, even of a failed run: the day's counts, and its shadow
            self._note_changes(spec, report)
            self._shadow(spec)

    def _fetch_and_apply(self, source, spec: SourceSpec, previous: Checkpoint | None, saved: dict | None, report):
        try:
            delta = source.fetch(previous)
            if delta.unchanged:
                report.status = "unchanged"
                return report, None, None
            progress = self._validate_and_apply(source, spec, delta, report, saved)
        except ChecksumMismatch as exc:
            return self._reject(report, f"checksum mismatch: {exc}"), None, None
        except _Implausible as exc:
            return self._reject(report, str(exc)), None, None
        except Exception as exc:  # one broken source must not stop the others; it is retried next run
            report.status, report.reason = "failed", _describe(exc)
            log.error("source failed; nothing more of it applied", extra={"source": spec.name, "reason": report.reason})
            return report, None, None
        if progress is not None:
            report.status = "partial"
            report.reason = f"stopped after {progress.rows} of {report.rows} rows to finish in time; resumes next run"
            log.warning("source partly applied", extra={"source": spec.name, "applied_rows": progress.rows})
            return report, None, progress
        report.status = "applied"
        log.info("source applied", extra={"source": spec.name, **_counts(report)})
        return report, delta.checkpoint, None

    def _shadow(self, spec: SourceSpec) -> None:
        """A source in shadow rollout: what it made live acts on nothing until the period ends. Marked
        right after they are applied, before the index snapshot and the re-match see them."""
        if spec.shadow_days and self.made_live:
            until = (self.now() + timedelta(days=spec.shadow_days)).isoformat(timespec="seconds")
            self.table.put_in_shadow(sorted(self.made_live), until, f"new on a list in shadow rollout ({spec.name})")
            self.shadowed[spec.name] = {"list_id": spec.list_id or "", "until": until}

    def _added(self, ref: Reference) -> None:
        self.delta.add(ref)
        self.made_live.add((ref.list, ref.id))

    def _note_changes(self, spec: SourceSpec, report: SourceReport) -> None:
        if report.added or report.removed:
            self.table.note_changes(spec.name, self._day(), report.added, report.removed)

    def _day(self) -> str:
        return self.now().date().isoformat()

    def _check_caps(self, spec: SourceSpec, added: int, removed: int) -> None:
        """The source's caps on what one run, and one day, may change; over one, nothing is applied."""
        caps, today = spec.caps, self.table.changes_on(spec.name, self._day())
        for kind, rows, done in (("added", added, today["added"]), ("removed", removed, today["removed"])):
            verb = "add" if kind == "added" else "withdraw"
            if rows > caps[f"max_{kind}"]:
                raise _Implausible(
                    f"the delta would {verb} {rows} references, more than max_{kind} {caps[f'max_{kind}']}"
                )
            if done + rows > caps[f"max_{kind}_per_day"]:
                raise _Implausible(
                    f"the delta would {verb} {rows} references after {done} today, more than "
                    f"max_{kind}_per_day {caps[f'max_{kind}_per_day']}"
                )

    def _validate_and_apply(
        self, source, spec: SourceSpec, delta: Delta, report: SourceReport, saved: dict | None
    ) -> _Prefix | None:
        """Apply the delta; if time runs out first, how far it got (else None)."""
        full_list = getattr(source, "full_list", False)
        listed = _KeySet() if full_list else None
        with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
            additions, tombstones = _spool_valid_rows(delta.rows, spool, spec, report, listed)
            _check_bad_share(spec, report)
            withdrawals = self._withdrawals(source, listed) if listed is not None else []
            spool.seek(0)
            applied = _resume(spool, saved)
            report.resumed_after = applied.rows
            # rows an earlier, stopped run applied were counted that day already
            self._check_caps(spec, max(0, additions - applied.rows), tombstones + len(withdrawals))
            if self._apply(_spooled_rows(spool, applied), report):
                return applied
        if withdrawals and self._apply(iter(withdrawals), report):
            return applied  # every row is in; the next run skips them all and withdraws again
        return None

    def _withdrawals(self, source, listed: _KeySet) -> list[Reference]:
        """Tombstones for the live references of the source's list that the full list lacks."""
        live = 0
        withdrawals = []
        for ref in self.table.live_references_of_list(source.list_id):
            live += 1
            if not listed.has(ref):
                withdrawals.append(Reference(ref.algorithm, ref.hash, ref.list, ref.id, deleted=True))
        if live and len(withdrawals) / live > source.max_removed_share:
            raise _Implausible(
                f"the file would withdraw {len(withdrawals)} of {live} live references "
                f"(more than max_removed_share {source.max_removed_share:g})"
            )
        return withdrawals

    def _apply(self, rows: Iterator[Reference], report: SourceReport) -> bool:
        """Apply `rows` until they end (False) or the invocation nears its end (True: stopped early)."""
        clock = _Deadline(self.remaining, self.indexed)
        rows = _with_progress(self._noting_writes(clock.until_late(rows)), self.on_rows)
        stats: ApplyStats = self.table.apply_rows(
            rows,
            now=self._stamp,
            on_added=self._added,
            added_since=self.added_since,
        )
        report.added += stats.added
        report.removed += stats.removed
        report.updated += stats.updated
        return clock.stopped

    def _noting_writes(self, rows: Iterator[Reference]) -> Iterator[Reference]:
        for row in rows:
            self.touched_table = True  # from here on the table may have changed: the snapshot is rebuilt
            yield row

    def _stamp(self) -> str:
        return self.now().isoformat(timespec="seconds")

    def _reject(self, report: SourceReport, reason: str) -> SourceReport:
        report.status, report.reason = "rejected", reason
        log.error("delta rejected; nothing applied", extra={"source": report.name, "reason": reason, **_counts(report)})
        return report


class _Implausible(Exception):
    """The delta as a whole is not believable; none of it is applied."""


def _spool_valid_rows(rows, spool, spec: SourceSpec, report: SourceReport, listed: _KeySet | None) -> tuple[int, int]:
    """Spool the valid rows; count, name and log the rejected. Returns (additions, tombstones)."""
    additions = tombstones = 0
    for position, row in enumerate(rows, start=1):
        if isinstance(row, Reference) and spec.list_id and row.list != spec.list_id:
            row = Rejected(position, "the row's list id is not this source's list_id")
        if isinstance(row, Rejected):
            _note_rejection(spec, report, row)
            continue
        report.rows += 1
        spool.write(listformat.to_json(row) + "\n")
        tombstones += row.deleted
        additions += not row.deleted
        if listed is not None and not row.deleted:
            listed.add(row)
    return additions, tombstones


def _note_rejection(spec: SourceSpec, report: SourceReport, row: Rejected) -> None:
    report.rejected += 1
    # a reason names what is wrong, never a value (listformat's contract), so it can be counted by name
    reason = re.sub(r"\d+", "N", row.reason)
    report.rejections[reason] = report.rejections.get(reason, 0) + 1
    if report.rejected <= LOGGED_REJECTIONS:
        report.rejected_lines.append(row.line)
        log.warning("row rejected", extra={"source": spec.name, "line": row.line, "reason": row.reason})


def _check_bad_share(spec: SourceSpec, report: SourceReport) -> None:
    seen = report.rows + report.rejected
    if seen and report.rejected / seen > spec.max_bad_share:
        raise _Implausible(
            f"{report.rejected} of {seen} rows are malformed (more than max_bad_share {spec.max_bad_share:g})"
        )


@dataclass
class _Prefix:
    """The spooled rows handed to apply so far: how many, and a SHA-256 of their lines."""

    rows: int = 0
    digest: Any = field(default_factory=hashlib.sha256)  # a hashlib SHA-256

    def note(self, line: str) -> None:
        self.rows += 1
        self.digest.update(line.encode())


def _resume(spool, saved: dict | None) -> _Prefix:
    """Skip the spool's first ``saved["rows"]`` lines if they are exactly those a stopped run applied;
    otherwise rewind: applying again is idempotent, skipping rows that were not applied is not."""
    if saved:
        prefix, wanted = _Prefix(), int(saved.get("rows", 0))
        while prefix.rows < wanted and (line := spool.readline()):
            prefix.note(line)
        if prefix.rows == wanted and prefix.digest.hexdigest() == saved.get("sha256"):
            return prefix
        spool.seek(0)
    return _Prefix()


def _spooled_rows(spool, prefix: _Prefix) -> Iterator[Reference]:
    while line := spool.readline():
        prefix.note(line)  # before it is handed out: every noted row is applied once apply_rows returns
        try:
            yield listformat.parse_row(json.loads(line))
        except ValueError as exc:  # we wrote these rows ourselves: a failure here is a bug
            raise RuntimeError(f"spooled row {prefix.rows} does not read back") from exc


def _indexed(s3: S3Client, bucket: str, version: Version) -> int:
    """How many hashes the current snapshot indexes (its manifest's counts); 0 before the first."""
    if not version.snapshot_key:
        return 0
    manifest = snapshot.read_manifest(s3, bucket, version.snapshot_key)
    return sum(int(entry.get("count", 0)) for entry in manifest["algorithms"].values())


class _Deadline:
    """Hands rows on while the invocation has more seconds left than rebuilding the snapshot of
    `indexed` hashes, plus one for each row handed on (at most one more each), takes."""

    def __init__(self, remaining: Callable[[], float] | None, indexed: int = 0):
        self.remaining, self.indexed, self.stopped = remaining, indexed, False

    def until_late(self, rows: Iterator[Reference]) -> Iterator[Reference]:
        rows = iter(rows)
        handed = 0
        while True:
            if self.remaining is not None and self.remaining() < finish_reserve(self.indexed + handed):
                self.stopped = True  # checked before the next row is taken, so no row is half handed out
                return
            row = next(rows, None)
            if row is None:
                return
            handed += 1
            yield row


def _with_progress(rows: Iterable[Reference], on_rows: Callable[[int], None] | None) -> Iterator[Reference]:
    """`rows`, calling on_rows(count of rows since the last call) every PROGRESS_EVERY rows and at the end."""
    pending = 0
    for row in rows:
        yield row
        pending += 1
        if on_rows and pending == PROGRESS_EVERY:
            on_rows(pending)
            pending = 0
    if on_rows and pending:
        on_rows(pending)


class _KeySet:
    """The (algorithm, hash, list, id) keys of a full list as 16-byte digests: ~5x smaller than tuples of
    strings, so a large full list fits in a Lambda's memory."""

    def __init__(self):
        self._keys: set[bytes] = set()

    @staticmethod
    def _digest(ref: Reference) -> bytes:
        text = "\0".join((ref.algorithm, table_hash(ref.algorithm, ref.hash), ref.list, ref.id))
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    def add(self, ref: Reference) -> None:
        self._keys.add(self._digest(ref))

    def has(self, ref: Reference) -> bool:
        return self._digest(ref) in self._keys


class _FileSource:
    """A local list file, applied once (the CLI's ``hashcheck list import``)."""

    name = "import"

    def __init__(self, path: str):
        self.path = path

    def fetch(self, checkpoint: Checkpoint | None) -> Delta:
        if not os.path.isfile(self.path):
            raise SourceError("the list file does not exist or is not a file")
        return Delta(listformat.read_path(self.path), {})


def _counts(report: SourceReport) -> dict:
    return {k: getattr(report, k) for k in ("rows", "rejected", "added", "removed", "updated")}


def _describe(exc: BaseException) -> str:
    """What went wrong, for logs and the report. Our own errors carry no row contents; for others only
    the class and AWS error code are kept, in case a message echoes a request."""
    if isinstance(exc, SourceError | RetriesExhausted | VersionConflict):
        return str(exc)
    code = error_code(exc)
    return f"{exc.__class__.__name__}{f' ({code})' if code else ''}"


def _utcnow() -> datetime:
    return datetime.now(UTC)
