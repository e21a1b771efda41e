"""SweepFunction (scheduled): objects of the watched buckets that never got a scan -> the scan queue.

hashcheck.jobs.sweep: the current versions modified between SWEEP_LOOKBACK_HOURS and
SWEEP_AFTER_MINUTES ago that have no FingerprintTable record are queued as "Object Created" events.
`ObjectsFoundUnscanned` counts them (alarmed: each one is an event that never arrived). Environment:
SWEEP_BUCKETS (comma-separated), SCAN_QUEUE_URL, FINGERPRINT_TABLE.
"""

import os
from datetime import UTC, datetime, timedelta

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from hashcheck.jobs import sweep
from hashcheck.tables.fingerprint_table import FingerprintTable

logger, metrics, tracer = Logger(), Metrics(), Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"hashcheck"})
s3, sqs = boto3.client("s3"), boto3.client("sqs")
fingerprints = FingerprintTable(boto3.client("dynamodb"), os.environ["FINGERPRINT_TABLE"])
BUCKETS = [b for b in os.environ["SWEEP_BUCKETS"].split(",") if b]
GRACE = timedelta(minutes=int(os.environ.get("SWEEP_AFTER_MINUTES", "30")))
LOOKBACK = timedelta(hours=int(os.environ.get("SWEEP_LOOKBACK_HOURS", "48")))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event, context):
    window = sweep.Window(datetime.now(UTC), GRACE, LOOKBACK)
    summary = sweep.sweep(s3, fingerprints, sqs, os.environ["SCAN_QUEUE_URL"], BUCKETS, window)
    metrics.add_metric(name="ObjectsFoundUnscanned", unit=MetricUnit.Count, value=summary.queued)
    return summary.as_dict()
