"""RematchFunction: new references against the fingerprints already stored -> hashcheck.jobs.rematch.

Four kinds of events:
- from RematchStateMachine's Distributed Map, a batch of stored-index segments to search for a delta:
  ``{"Items": [{"Key": "fpindex/..."}, ...], "BatchInput": {"delta_key": "deltas/v00000042.jsonl"}}``;
- from its last step, ``{"decide": "deltas/v00000042.jsonl"}``: what the batches found, decided;
- a whole re-match in one run: ``{"version": 42}`` / ``{"delta_key": "deltas/v00000042.jsonl"}``;
- a FingerprintTable stream batch: the new fingerprints' hashes become a StoredIndex segment.
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
    if "Items" in event:  # one worker of the Distributed Map: search these segments
        key = event.get("BatchInput", {}).get("delta_key", "")
        if version_of(key) is None:
            raise ValueError("a batch of segments without its delta")
        return rematcher.search_shards(key, [item["Key"] for item in event["Items"]])
    key = event.get("decide") or event.get("delta_key") or event.get("detail", {}).get("object", {}).get("key")
    if not key and event.get("version") is not None:
        key = delta_key(int(event["version"]))
    if not key or version_of(key) is None:
        logger.warning("nothing to re-match in this event")
        return {"ignored": True}
    report = rematcher.run_gathered(key) if event.get("decide") else rematcher.run(key)
    for name, value in (
        ("RematchMatches", report.matched),
        ("RematchReview", report.review),
        ("RematchCandidates", report.exact_candidates + report.near_candidates),
        ("RematchErrors", report.errors),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if report.errors:  # the others were acted on; failing makes the state machine retry the rest
        raise rematch.RematchIncomplete(f"{report.errors} matched objects could not be acted on; retried")
    return report.to_dict()
