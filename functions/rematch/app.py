"""RematchFunction: new references against the fingerprints already stored -> hashcheck.jobs.rematch.

Two kinds of events:
- a delta to re-match: S3 "Object Created" of ``deltas/v<version>.jsonl`` in the artifacts bucket (via
  EventBridge), or a direct invocation ``{"version": 42}`` / ``{"delta_key": "deltas/v00000042.jsonl"}``;
- a FingerprintTable stream batch: the new fingerprints' perceptual hashes become a StoredIndex segment.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from hashcheck.jobs import rematch
from hashcheck.jobs.scanner import from_environment
from hashcheck.lists.deltas import delta_key, version_of
from hashcheck.tables.fingerprint_table import records_from_stream

logger, metrics, tracer = Logger(), Metrics(), Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"hashcheck"})
scanner = from_environment()
s3, ddb, store = scanner.s3, scanner.tables.references.client, scanner.store  # for the handler and tests
rematcher = rematch.Rematcher(scanner)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event, context):
    if any(r.get("eventSource") == "aws:dynamodb" for r in event.get("Records", [])):
        key = rematcher.stored.add(records_from_stream(event), scanner.config.policy)
        return {"segment": key}
    key = event.get("delta_key") or event.get("detail", {}).get("object", {}).get("key")
    if not key and event.get("version") is not None:
        key = delta_key(int(event["version"]))
    if not key or version_of(key) is None:
        logger.warning("nothing to re-match in this event")
        return {"ignored": True}
    report = rematcher.run(key)
    for name, value in (
        ("RematchMatches", report.matched),
        ("RematchReview", report.review),
        ("RematchCandidates", report.exact_candidates + report.near_candidates),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return report.to_dict()
