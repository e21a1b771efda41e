"""Changes to what protects the evidence alert at once: `EvidenceProtectionChangedRule`, as deployed.

CloudTrail's events (shaped as the CloudTrail and EventBridge documentation shows them) are put on
the default bus of a deployed stack; moto matches them against the rule's own pattern. moto delivers
no rule to SNS, so a test queue takes the AlertTopic's place as the rule's target: what reaches it is
what the AlertTopic gets (that the topic's policy lets the rule publish is the permission tests' part).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto import mock_aws

from hashcheck.tools import sandbox
from tests.helpers import drain
from tests.iam.stack import ACCOUNT


@pytest.fixture(scope="module")
def watched() -> Any:
    sandbox.fake_credentials()
    with mock_aws():
        stack = sandbox.deploy()
        rules = stack.client("events").list_rules(NamePrefix=f"{sandbox.STACK}-EvidenceProtectionChangedRule")
        (rule,) = [r["Name"] for r in rules["Rules"]]
        sqs = stack.client("sqs")
        url = sqs.create_queue(QueueName="evidence-watch")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = stack.client("events")
        events.remove_targets(Rule=rule, Ids=["AlertTopic"])  # moto delivers no rule to SNS
        events.put_targets(Rule=rule, Targets=[{"Id": "watch", "Arn": arn}])
        yield stack, url


def role_session(role_arn: str) -> dict:
    name = role_arn.rsplit("/", 1)[-1]
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/session",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn, "accountId": ACCOUNT, "userName": name}},
    }


ADMIN = role_session(f"arn:aws:iam::{ACCOUNT}:role/Admin")
ROOT = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


def alerted(watched, service: str, name: str, who: dict, request: dict) -> bool:
    stack, url = watched
    detail = {
        "eventVersion": "1.09",
        "userIdentity": who,
        "eventSource": f"{service}.amazonaws.com",
        "eventName": name,
        "awsRegion": sandbox.REGION,
        "requestParameters": request,
    }
    entry = {"Source": f"aws.{service}", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(detail)}
    stack.client("events").put_events(Entries=[entry])
    return bool(drain(stack, url))


def role_arn(stack, function: str) -> str:
    return stack.client("lambda").get_function_configuration(FunctionName=stack.functions[function])["Role"]


def test_a_changed_evidence_bucket_policy_alerts_and_the_upload_buckets_does_not(watched):
    stack, _ = watched
    evidence, upload = stack.outputs["QuarantineBucketName"], stack.outputs["UploadBucketName"]
    for name in ("PutBucketPolicy", "DeleteBucketPolicy", "PutObjectLockConfiguration", "PutBucketVersioning"):
        assert alerted(watched, "s3", name, ADMIN, {"bucketName": evidence}), name
    assert not alerted(watched, "s3", "PutBucketPolicy", ADMIN, {"bucketName": upload})


def test_a_hold_lifted_by_anyone_but_the_scan_path_alerts(watched):
    stack, _ = watched
    evidence = stack.outputs["QuarantineBucketName"]
    hold = {"bucketName": evidence, "key": "evidence/c/x.jpg", "legal-hold": ""}
    scanner = role_session(role_arn(stack, "ScanFunction"))
    custodian = role_session(f"arn:aws:iam::{ACCOUNT}:role/{sandbox.STACK}-evidence-custodian")
    assert not alerted(watched, "s3", "PutObjectLegalHold", scanner, hold)  # every match: hold ON
    assert alerted(watched, "s3", "PutObjectLegalHold", custodian, hold)
    assert alerted(watched, "s3", "DeleteObject", custodian, {"bucketName": evidence, "key": "evidence/c/x.jpg"})
    assert alerted(watched, "s3", "DeleteObject", ROOT, {"bucketName": evidence, "key": "evidence/c/x.jpg"})
    assert not alerted(watched, "s3", "GetObject", custodian, {"bucketName": evidence, "key": "evidence/c/x.jpg"})


def test_the_evidence_key_scheduled_for_deletion_or_disabled_alerts_however_it_is_named(watched):
    stack, _ = watched
    key_arn = stack.outputs["EvidenceKeyArn"]
    key_id = key_arn.rsplit("/", 1)[-1]
    for name, key in (("ScheduleKeyDeletion", key_arn), ("DisableKey", key_id), ("PutKeyPolicy", "alias/evidence")):
        assert alerted(watched, "kms", name, ADMIN, {"keyId": key}), (name, key)
    other = f"arn:aws:kms:{sandbox.REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
    assert not alerted(watched, "kms", "ScheduleKeyDeletion", ADMIN, {"keyId": other})
    assert not alerted(watched, "kms", "Decrypt", ADMIN, {"keyId": key_arn})
