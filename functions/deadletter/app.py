"""DeadLetterFunction: the scan dead-letter queue -> hashcheck.jobs.deadletter, so no object stays unjudged.

Every object a dead-lettered message names gets a status: `error` (blocked) unless it already has a
final one. It never reads object content. A message it cannot finish stays in the queue and is tried
again (the queue's age is alarmed); the count of objects blocked this way is the `ObjectsDeadLettered`
metric, alarmed too.
"""

import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from hashcheck.jobs import deadletter
from hashcheck.tables.case_table import CaseTable
from hashcheck.tables.fingerprint_table import FingerprintTable

logger, metrics, tracer = Logger(), Metrics(), Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"hashcheck"})
s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
fingerprints = FingerprintTable(ddb, os.environ["FINGERPRINT_TABLE"])
cases = CaseTable(ddb, os.environ["CASE_TABLE"])
processor = BatchProcessor(event_type=EventType.SQS)


def judge_record(record: SQSRecord) -> None:
    judged = deadletter.judge(s3, fingerprints, cases, record.body)
    metrics.add_metric(name="ObjectsDeadLettered", unit=MetricUnit.Count, value=judged.blocked + len(judged.cases))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event, context):
    return process_partial_response(event=event, record_handler=judge_record, processor=processor, context=context)
