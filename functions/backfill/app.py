"""BackfillFunction: one batch of the backfill Distributed Map -> hashcheck.jobs.backfill.process_items.

Event (ItemBatcher): ``{"Items": [{"Key", "ETag", "Size", ...}], "BatchInput": {"bucket": "..."}}``.
Objects already scanned against the current list version are skipped. If any object of the batch
failed, the batch raises after the others are done, so the Map retries it (the retry skips the rest)
and, past the tolerated share, the execution fails visibly.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from hashcheck.jobs import backfill
from hashcheck.jobs.scanner import from_environment

logger, metrics, tracer = Logger(), Metrics(), Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"hashcheck"})
scanner = from_environment()
s3, ddb, store = scanner.s3, scanner.tables.references.client, scanner.store  # for the handler and tests


class BatchIncomplete(Exception):
    """Some objects of the batch failed; the Map retries the batch."""


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event, context):
    bucket = event["BatchInput"]["bucket"]
    summary = backfill.process_items(scanner, bucket, event.get("Items", []))
    for name in ("scanned", "skipped", "matched", "errors"):
        metrics.add_metric(name=f"Backfill{name.title()}", unit=MetricUnit.Count, value=getattr(summary, name))
    logger.info("backfill batch", extra={"backfill": summary.to_dict()})
    if summary.errors:
        raise BatchIncomplete(f"{summary.errors} of {summary.listed} objects failed")
    return summary.to_dict()
