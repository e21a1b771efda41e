"""The sample events in events/ parse into the object they name, in every shape the queue carries."""

import json

import pytest

from hashcheck.jobs.s3events import uploads_from_body
from hashcheck.tools.sandbox import ROOT

EVENTS = ROOT / "events"
KEY = "customers/42/holiday photo été.jpg"


def sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    "body",
    [
        sample("s3-put.json"),
        sample("eventbridge-object-created.json"),
        json.loads(sample("sqs-s3-put.json")["Records"][0]["body"]),
        json.loads(sample("sqs-eventbridge-object-created.json")["Records"][0]["body"]),
        {"Type": "Notification", "Message": json.dumps(sample("s3-put.json"))},
    ],
    ids=["s3", "eventbridge", "sqs-s3", "sqs-eventbridge", "sns-s3"],
)
def test_every_shape_names_the_same_object(body):
    (upload,) = uploads_from_body(json.dumps(body))
    assert upload.obj.bucket == "hashcheck-uploads-example"
    assert upload.obj.key == KEY  # URL-decoded where S3 encoded it, '+' read as a space
    assert upload.obj.version_id == "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
    assert upload.uploader["source_ip"] == "198.51.100.7"


def test_test_events_and_other_messages_name_no_object():
    assert uploads_from_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    assert (
        uploads_from_body(json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete"}]}))
        == []
    )
    assert uploads_from_body("[]") == []


def test_unversioned_bucket_null_version_is_none():
    body = sample("eventbridge-object-created.json")
    body["detail"]["object"]["version-id"] = "null"
    (upload,) = uploads_from_body(json.dumps(body))
    assert upload.obj.version_id is None
