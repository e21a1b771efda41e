"""FingerprintFunction: one object version -> its fingerprint (hashcheck.jobs.reader.answer).

Invoked by ScanFunction and BackfillFunction with an object's bucket, key, version id and ETag. This
is where uploads are parsed; its role can read objects and nothing else. It logs no hash values.
"""

import boto3
from aws_lambda_powertools import Logger, Tracer

from hashcheck.jobs import reader

logger, tracer = Logger(), Tracer()
s3 = boto3.client("s3")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event, context):
    return reader.answer(s3, event)
