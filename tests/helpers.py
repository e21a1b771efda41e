"""What several test modules share: paths to the test data, moto with fake credentials, the stack
deployed into moto with one listed picture, reading the queues it sends to, a benign fingerprint."""

import contextlib
import hashlib
import json
import random
from pathlib import Path

import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PHOTOS = sorted((DATA / "photos").glob("*.jpg"))


# --- template.yaml, read as CloudFormation ----------------------------------------------------------------


def _load_template() -> dict:
    from hashcheck.tools.sandbox import load_template

    return load_template()


TEMPLATE = _load_template()
RESOURCES = TEMPLATE["Resources"]


def statements():
    """Every policy statement in the template: function policies, bucket/queue/key policies."""
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        docs = [p for p in props.get("Policies", []) if isinstance(p, dict)]
        docs += [props[k] for k in ("PolicyDocument", "KeyPolicy") if k in props]
        for doc in docs:
            for statement in doc.get("Statement", []):
                if isinstance(statement, dict) and "Fn::If" in statement:
                    statement = statement["Fn::If"][1]
                if isinstance(statement, dict) and "Effect" in statement:
                    yield name, statement


def actions(statement) -> list[str]:
    value = statement.get("Action", [])
    return [value] if isinstance(value, str) else value


@contextlib.contextmanager
def mocked_aws(region: str = "us-east-1"):
    """moto's mock with fake credentials for its duration, so no test can reach real AWS."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.setenv(name, "testing")
        env.setenv("AWS_DEFAULT_REGION", region)
        env.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            yield


@contextlib.contextmanager
def listed_stack(listed: bytes, ref_id: str = "ref-1", parameters: dict[str, str] | None = None):
    """template.yaml deployed into moto (hashcheck.tools.sandbox) with `parameters`, with the picture
    `listed` on the list "test-list" as `ref_id` and a published version, as a sync would leave it."""
    from hashcheck.fingerprinting.fingerprint import fingerprint
    from hashcheck.lists.build import references_for
    from hashcheck.tables.reference_table import ReferenceTable
    from hashcheck.tools import sandbox

    sandbox.fake_credentials()
    with mock_aws():
        stack = sandbox.deploy(parameters)
        references = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
        references.apply_rows(references_for(fingerprint(listed), "test-list", ref_id))
        references.bump_version(references.get_version().version)
        yield stack


def alerts_inbox(stack, name: str = "alerts-inbox") -> str:
    """A queue subscribed to the stack's alert topic, so tests can read the alerts sent."""
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.client("sns").subscribe(TopicArn=stack.outputs["AlertTopicArn"], Protocol="sqs", Endpoint=arn)
    return url


def drain(stack, url: str, visibility_timeout: int | None = None) -> list[dict]:
    """Every message waiting in the queue, received and deleted (raw SQS messages, oldest first)."""
    sqs, out = stack.client("sqs"), []
    extra = {} if visibility_timeout is None else {"VisibilityTimeout": visibility_timeout}
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **extra).get("Messages", []):
        for m in batch:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def drain_bodies(stack, url: str) -> list[dict]:
    """The JSON bodies of every message waiting in the queue (see `drain`)."""
    return [json.loads(m["Body"]) for m in drain(stack, url)]


def benign_fingerprint(seed: str):
    """A Fingerprint of `seed`'s random bytes, with PDQ/pHash derived from them: stands for a listed
    image where no real decoding is needed (cases, reports)."""
    from hashcheck.fingerprinting.fingerprint import Fingerprint

    data = random.Random(seed).randbytes(1000)
    return Fingerprint(
        size=len(data),
        md5=hashlib.md5(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        status="image",
        pdq=hashlib.sha256(b"pdq" + data).hexdigest(),
        pdq_quality=90,
        phash=hashlib.sha256(b"phash" + data).hexdigest()[:16],
    )


class LambdaDied(BaseException):  # noqa: N818 - not an error the function could handle: the process is gone
    """The function's process ends here (timeout, OOM, crash). BaseException: nothing in the handler catches it."""


class Died(Exception):
    """What the event source mapping sees of a dead invocation: the batch returns to the queue."""
