"""BackfillFunction: one batch of the backfill Distributed Map -> hashcheck.backfill.process_items.

Event (ItemBatcher): ``{"Items": [{"Key", "ETag", "Size", ...}], "BatchInput": {"bucket": "..."}}``.
Objects already scanned against the current list version are skipped. If any object of the batch
failed, the batch raises after the others are done, so the Map retries it (the retry skips the rest)
and, past the tolerated share, the execution fails visibly.
"""

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from hashcheck import backfill
from hashcheck.scanner import ScanConfig, Scanner, build_store

logger, metrics, tracer = Logger(), Metrics(), Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"hashcheck"})
config = ScanConfig.from_env()
s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
secrets = boto3.client("secretsmanager") if config.remote_lookup_secret else None
store, list_version = build_store(config, s3, ddb, secrets)
scanner = Scanner(config, store, s3, ddb, boto3.client("sns"), boto3.client("events"), list_version)


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
