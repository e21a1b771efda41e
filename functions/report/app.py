"""ReportFunction: case ids from the ReportQueue -> hashcheck.response.report.Reporter, one report per case.

A message body is an EventBridge event (`HashCheck Case Confirmed`, or `HashCheck Match` when
HOTLINE_REPORT_MODE=all) or a bare `{"case_id": ...}`. A case already reported is skipped without a
request; a failed report goes back to the queue alone (partial batch response) and, after the
queue's maxReceiveCount, to the ReportDLQ (alarmed). Environment: CASE_TABLE, HOTLINE_REPORT_URL,
HOTLINE_REPORT_MODE, HOTLINE_REPORT_SECRET, HOTLINE_REPORTER (JSON).
"""

import json

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from hashcheck.response.report import REPORTED, ReportConfig, Reporter
from hashcheck.tables.case_table import CaseTable

logger, metrics, tracer = Logger(), Metrics(), Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"hashcheck"})
config = ReportConfig.from_env()
cases = CaseTable(boto3.client("dynamodb"), config.case_table)
reporter = Reporter(config, cases, boto3.client("secretsmanager") if config.secret_id else None)
processor = BatchProcessor(event_type=EventType.SQS)


def case_id_of(body: str) -> str:
    message = json.loads(body)
    return (message.get("detail") or message)["case_id"]


def report_record(record: SQSRecord) -> None:
    outcome = reporter.report(case_id_of(record.body))
    logger.info("report", extra=outcome.as_dict())
    if outcome.result == REPORTED:
        metrics.add_metric(name="HotlineReports", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event, context):
    return process_partial_response(event=event, record_handler=report_record, processor=processor, context=context)
