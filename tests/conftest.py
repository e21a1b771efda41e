"""Shared fixtures. The package is installed with `pip install -e .[dev]`; the path line below also
lets the tests run from a bare checkout."""

import contextlib
import hashlib
import json
import os
import random
import sys
from pathlib import Path

import pytest
from moto import mock_aws

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))

DATA = Path(__file__).resolve().parent / "data"
PHOTOS = sorted((DATA / "photos").glob("*.jpg"))


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """Ordinary wallpaper photos (Debian packages) that the tests pretend are on a list."""
    return PHOTOS


@pytest.fixture(autouse=True)
def _environment_restored():
    """The sandbox sets a function's environment the way Lambda would (os.environ); no test may leak
    it into the next."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


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
def listed_stack(listed: bytes, ref_id: str = "ref-1"):
    """template.yaml deployed into moto (hashcheck.tools.sandbox), with the picture `listed` on the list
    "test-list" as `ref_id` and a published version, as a sync would leave it."""
    from hashcheck.fingerprinting.fingerprint import fingerprint
    from hashcheck.lists.build import references_for
    from hashcheck.tables.reference_table import ReferenceTable
    from hashcheck.tools import sandbox

    sandbox.fake_credentials()
    with mock_aws():
        stack = sandbox.deploy()
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
