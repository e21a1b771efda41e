"""Case records and alerts (`hashcheck.response.cases`) on moto's DynamoDB, SNS, EventBridge and SQS.

Alerts are read back the way a subscriber would: SNS -> SQS subscription, EventBridge rule -> SQS.
The fingerprints are of generated benign bytes that the tests pretend are listed.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid

import boto3
import pytest
from moto import mock_aws

from hashcheck.fingerprinting.fingerprint import Fingerprint
from hashcheck.matching.matcher import Match, Result
from hashcheck.objects import ObjectRef, set_status
from hashcheck.response.cases import EVENT_DETAIL_TYPE, CaseNotFound, Cases
from hashcheck.response.events import EventPublisher
from hashcheck.response.quarantine import Quarantine, QuarantineResult
from hashcheck.tables.case_table import CaseTable
from tests.helpers import benign_fingerprint

REGION = "us-east-1"
DETECTED = "2024-05-01T12:00:00+00:00"
UPLOADER = {"principalId": "AWS:AIDAEXAMPLE", "sourceIPAddress": "198.51.100.7"}


@pytest.fixture(scope="module")
def aws():
    """One moto for the module (starting it is the slow part), with fake credentials: never real AWS."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_SESSION_TOKEN", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
        with mock_aws():
            yield {name: boto3.client(name, region_name=REGION) for name in ("dynamodb", "sns", "sqs", "events", "s3")}


@pytest.fixture
def env(aws):
    """A fresh case table, topic and event rule, each delivering into an SQS queue we can read."""
    suffix = uuid.uuid4().hex[:12]
    table = f"cases-{suffix}"
    aws["dynamodb"].create_table(**CaseTable.definition(table))
    alerts, events = _queue(aws["sqs"], f"alerts-{suffix}"), _queue(aws["sqs"], f"events-{suffix}")
    topic = aws["sns"].create_topic(Name=f"hashcheck-{suffix}")["TopicArn"]
    aws["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=alerts["arn"])
    bus = f"bus-{suffix}"
    aws["events"].create_event_bus(Name=bus)
    pattern = {"source": ["hashcheck"], "detail-type": [EVENT_DETAIL_TYPE]}
    aws["events"].put_rule(Name="matches", EventBusName=bus, EventPattern=json.dumps(pattern))
    aws["events"].put_targets(Rule="matches", EventBusName=bus, Targets=[{"Id": "q", "Arn": events["arn"]}])
    publisher = EventPublisher(aws["events"], bus)
    cases = Cases(CaseTable(aws["dynamodb"], table), sns=aws["sns"], topic_arn=topic, events=publisher)
    return {"cases": cases, "table": table, "alerts_url": alerts["url"], "events_url": events["url"], "bus": bus, **aws}


def _queue(sqs, name: str) -> dict:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"url": url, "arn": arn}


def drain(sqs, url: str) -> list[str]:
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def hash_values(fp: Fingerprint) -> list[str]:
    return [fp.md5, fp.sha1, fp.sha256, fp.pdq, fp.phash]


RESULT = Result(
    "match",
    [
        Match("sha256", 0, "hotline-a", "ref-17", True),
        Match("pdq", 12, "hotline-a", "ref-17", True, "rotate90"),
        Match("phash", 4, "hotline-b", "ref-99", True, category="A1"),
    ],
)
OBJ = ObjectRef("uploads", "users/7/photo 1.jpg", "v1", '"etag1"', 1000)
MOVED = QuarantineResult("move", "evidence", "evidence/x/users/7/photo 1.jpg", "ev1", True, True)


def open_case(env, obj: ObjectRef = OBJ, fp: Fingerprint | None = None, detected_at: str = DETECTED) -> dict:
    fp = fp or benign_fingerprint("listed")
    return env["cases"].open_case(obj, fp, RESULT, 42, UPLOADER, detected_at)


# -- records ------------------------------------------------------------------------------------


def test_open_case_records_the_evidence(env):
    fp = benign_fingerprint("listed")
    case = open_case(env, fp=fp)
    stored = env["cases"].get(OBJ.identity())
    assert stored == case
    assert stored["case_id"] == OBJ.identity()
    where = (stored["bucket"], stored["key"], stored["version_id"], stored["etag"])
    assert where == (OBJ.bucket, OBJ.key, "v1", "etag1")
    assert stored["uploader"] == {"principal": "AWS:AIDAEXAMPLE", "source_ip": "198.51.100.7"}
    assert stored["hashes"] == {
        "md5": fp.md5,
        "sha1": fp.sha1,
        "sha256": fp.sha256,
        "pdq": fp.pdq,
        "pdq_quality": 90,
        "phash": fp.phash,
    }
    assert stored["matches"][1] == {
        "algorithm": "pdq",
        "distance": 12,
        "list": "hotline-a",
        "ref_id": "ref-17",
        "variant": "rotate90",
        "member": "",  # the object itself, not something inside it
        "acts": True,
        "category": None,
    }
    assert stored["lists"] == ["hotline-a", "hotline-b"]
    assert (stored["status"], stored["notified"], stored["list_version"]) == ("open", False, 42)
    assert [entry["what"] for entry in stored["history"]] == ["opened"]


def test_a_duplicate_delivery_gets_the_same_case(env):
    first = open_case(env)
    second = open_case(env, detected_at="2024-05-01T12:05:00+00:00")  # a redelivery, minutes later
    assert second == first
    assert second["detected_at"] == DETECTED
    assert env["dynamodb"].scan(TableName=env["table"])["Count"] == 1
    other = open_case(env, obj=ObjectRef(OBJ.bucket, OBJ.key, "v2", "etag2"))  # another version: another case
    assert other["case_id"] != first["case_id"]


def test_displaced_tags_are_kept_in_the_case(env):
    obj = ObjectRef("uploads", "tagged.jpg", "v1", "e")
    case = env["cases"].open_case(obj, benign_fingerprint("x"), RESULT, 1, {}, DETECTED, displaced_tags={"t9": "9"})
    assert env["cases"].get(case["case_id"])["displaced_tags"] == {"t9": "9"}


def test_record_quarantine_once_per_outcome(env):
    case = open_case(env)
    recorded = env["cases"].record_quarantine(case["case_id"], MOVED)
    assert recorded["status"] == "quarantined"
    assert recorded["quarantine"]["evidence_version_id"] == "ev1"
    assert recorded["quarantine"]["source_deleted"] is True
    assert [entry["what"] for entry in recorded["history"]] == ["opened", "quarantine move: quarantined"]

    again = env["cases"].record_quarantine(case["case_id"], MOVED)  # a retry
    assert len(again["history"]) == 2
    assert again["quarantine"] == recorded["quarantine"]


def test_source_missing_is_recorded_for_a_person(env):
    case = open_case(env)
    missing = QuarantineResult("move", None, None, None, False, False, source_missing=True)
    recorded = env["cases"].record_quarantine(case["case_id"], missing)
    assert recorded["status"] == "source_missing"
    assert recorded["quarantine"]["source_missing"] is True


def test_record_quarantine_of_an_unknown_case_raises(env):
    with pytest.raises(CaseNotFound):
        env["cases"].record_quarantine("no-such-case", MOVED)


# -- alerts -------------------------------------------------------------------------------------


def test_notify_alerts_once_without_hash_values(env):
    fp = benign_fingerprint("listed")
    case = open_case(env, fp=fp)
    env["cases"].record_quarantine(case["case_id"], MOVED)
    env["cases"].notify(case)  # the caller's copy predates the quarantine: notify reads the latest
    env["cases"].notify(case)  # a retry: already notified

    alerts, events = drain(env["sqs"], env["alerts_url"]), drain(env["sqs"], env["events_url"])
    assert len(alerts) == 1 and len(events) == 1
    envelope = json.loads(alerts[0])
    alert, event = json.loads(envelope["Message"]), json.loads(events[0])
    assert envelope["Subject"] == "hashcheck: match in uploads (quarantined)"
    assert (event["source"], event["detail-type"]) == ("hashcheck", EVENT_DETAIL_TYPE)
    assert event["detail"] == alert
    assert alert["case_id"] == case["case_id"]
    assert (alert["bucket"], alert["key"], alert["verdict"], alert["case_status"]) == (
        "uploads",
        OBJ.key,
        "match",
        "quarantined",
    )
    assert alert["match_count"] == 3
    assert alert["lists"] == [
        {"list": "hotline-a", "matches": 2, "algorithms": ["pdq", "sha256"], "members": [""]},
        {"list": "hotline-b", "matches": 1, "algorithms": ["phash"], "members": [""]},
    ]
    assert alert["quarantine"]["evidence_key"] == MOVED.evidence_key
    for text in (alerts[0], events[0]):
        for value in hash_values(fp):
            assert value not in text
            assert value[:16] not in text  # not even a prefix
        assert "ref-17" not in text  # reference ids stay in the case record

    stored = env["cases"].get(case["case_id"])
    assert stored["notified"] is True
    assert set(stored["notifications"]) == {"sns", "events"}
    assert stored["history"][-1]["what"] == "notified"


def test_a_crash_between_channels_resends_only_the_missing_one(env):
    case = open_case(env)

    def failing_put_events(**_kwargs):
        raise RuntimeError("EventBridge throttled")

    cases = env["cases"]
    real_events = cases.events
    cases.events = EventPublisher(type("Down", (), {"put_events": staticmethod(failing_put_events)})())
    with pytest.raises(RuntimeError):
        cases.notify(case)
    assert cases.get(case["case_id"])["notified"] is False
    cases.events = real_events
    cases.notify(case)

    assert len(drain(env["sqs"], env["alerts_url"])) == 1  # SNS was marked sent before the crash
    assert len(drain(env["sqs"], env["events_url"])) == 1
    assert cases.get(case["case_id"])["notified"] is True


def test_a_refused_event_raises(env):
    case = open_case(env)
    refusing = type(
        "Refusing",
        (),
        {"put_events": staticmethod(lambda **_: {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "X"}]})},
    )()
    cases = Cases(CaseTable(env["dynamodb"], env["table"]), events=EventPublisher(refusing))
    with pytest.raises(RuntimeError, match="refused"):
        cases.notify(case)
    assert cases.get(case["case_id"])["notified"] is False


# -- the scanner's sequence, run twice ----------------------------------------------------------


def test_the_match_sequence_twice_gives_one_evidence_copy_one_case_one_alert(env):
    s3, suffix = env["s3"], uuid.uuid4().hex[:12]
    source, evidence = f"uploads-{suffix}", f"evidence-{suffix}"
    s3.create_bucket(Bucket=source)
    s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=evidence, ObjectLockEnabledForBucket=True)
    data = random.Random("listed").randbytes(1000)
    put = s3.put_object(Bucket=source, Key="pic.jpg", Body=data)
    obj = ObjectRef(source, "pic.jpg", put["VersionId"], put["ETag"], len(data))
    fp = benign_fingerprint("listed")
    fp.sha256 = hashlib.sha256(data).hexdigest()
    quarantine, cases = Quarantine(s3, evidence), env["cases"]

    for _delivery in range(2):  # SQS delivers at least once
        set_status(s3, obj, "quarantined")
        case = cases.open_case(obj, fp, RESULT, 42, UPLOADER, DETECTED)
        outcome = quarantine.quarantine(obj, case["case_id"], expected_sha256=fp.sha256)
        cases.record_quarantine(case["case_id"], outcome)
        cases.notify(case)

    assert len(s3.list_object_versions(Bucket=evidence)["Versions"]) == 1
    assert s3.list_object_versions(Bucket=source).get("Versions", []) == []
    assert env["dynamodb"].scan(TableName=env["table"])["Count"] == 1
    assert len(drain(env["sqs"], env["alerts_url"])) == 1
    assert len(drain(env["sqs"], env["events_url"])) == 1
    assert cases.get(obj.identity())["status"] == "quarantined"
