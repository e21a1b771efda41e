"""SyncFunction: the scheduled list sync (EventBridge Scheduler) -> hashcheck.jobs.sync.run_sync.

Environment: REFERENCE_TABLE, ARTIFACTS_BUCKET, and LIST_SOURCES (JSON) or LIST_SOURCES_PARAMETER (an
SSM parameter holding it). The schedule's payload is ignored: every run syncs every configured source.
A source that fails or whose delta is rejected is reported (metrics SourcesFailed / SourcesRejected)
and retried on the next run; one whose delta did not fit in the invocation is applied in part,
published, and resumed on the next run (SourcesPartial). Each source also gets ``SourceSynced`` (1 or
0) under its own ``source`` dimension, watched per source by ListSourceAlarm. Only a run that cannot complete
(configuration, table, snapshot) raises.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from hashcheck.aws import Clients
from hashcheck.jobs import sync

logger, metrics, tracer = Logger(), Metrics(), Tracer()
copy_config_to_registered_loggers(source_logger=logger, include={"hashcheck"})  # the library's logs, as JSON
clients = Clients()


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event, context):
    config = sync.SyncConfig.from_env(clients=clients)
    # A delta too large for one invocation is applied in parts: stop in time, resume next run.
    report = sync.run_sync(config, clients, remaining=lambda: context.get_remaining_time_in_millis() / 1000)
    for name, value, unit in report.metrics():
        metrics.add_metric(name=name, unit=unit, value=value)
    for source, name, value in report.source_metrics():  # one per source, under its name (and the service)
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=metrics.namespace) as metric:
            metric.add_dimension(name="source", value=source)
    return report.to_dict()
