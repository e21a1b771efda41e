"""What the Lambda functions run: `scanner` (an upload: fingerprint, match, act), `reader` (reading and
parsing an upload, in FingerprintFunction on AWS), `sync` (the scheduled list sync), `rematch` (new
references against stored fingerprints), `backfill` (objects stored before the stack), `deadletter`
(what every scan attempt failed on gets a status), `sweep` (objects whose event never arrived are
queued), and `s3events` (the notices that name the objects)."""

from hashcheck.jobs.backfill import BackfillSummary, process_items
from hashcheck.jobs.rematch import Rematcher, RematchReport
from hashcheck.jobs.s3events import Upload, uploads_from_body
from hashcheck.jobs.scanner import Outcome, ScanConfig, Scanner, build_scanner, from_environment
from hashcheck.jobs.sync import SyncConfig, SyncReport, run_sync

__all__ = [
    "BackfillSummary",
    "Outcome",
    "RematchReport",
    "Rematcher",
    "ScanConfig",
    "Scanner",
    "SyncConfig",
    "SyncReport",
    "Upload",
    "build_scanner",
    "from_environment",
    "process_items",
    "run_sync",
    "uploads_from_body",
]
