"""`hashcheck protect BUCKET`: an existing bucket gets the stack's rules, keeps its own, and loses ours again.

(moto's GetBucketNotificationConfiguration never reports EventBridge as on, so only the warning path of
the notification check runs here.)"""

from __future__ import annotations

import json

import pytest
from moto import mock_aws

from hashcheck.tools import protect, sandbox
from hashcheck.tools.cli import main as cli
from tests.iam.evaluator import decide
from tests.iam.stack import ACCOUNT

BUCKET = "customer-photos"
OWN = {
    "Sid": "CustomersOwnRule",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:DeleteBucket",
    "Resource": f"arn:aws:s3:::{BUCKET}",
}


@pytest.fixture()
def stack():
    sandbox.fake_credentials()
    with mock_aws():
        stack = sandbox.deploy({"ProtectedBucketNames": BUCKET})
        s3 = stack.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": sandbox.REGION})
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [OWN]}))
        yield stack


def policy(stack) -> dict:
    return json.loads(stack.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])


def test_protect_merges_the_rules_and_says_when_uploads_do_not_reach_the_scanner(stack, capsys):
    assert cli(["protect", BUCKET, "--stack", sandbox.STACK]) == 1  # EventBridge notifications are off
    assert "EventBridge" in capsys.readouterr().err
    statements = policy(stack)["Statement"]
    assert statements[0] == OWN
    ours = statements[1:]
    scanners = sandbox_scanners(stack)
    reviewer, readers = f"arn:aws:iam::{ACCOUNT}:role/hashcheck-reviewer", [stack.outputs["FingerprintRoleArn"]]
    assert ours == protect.bucket_statements(BUCKET, scanners, reviewer, False, readers)

    cli(["protect", BUCKET, "--stack", sandbox.STACK])  # a rerun replaces our statements, never duplicates them
    assert policy(stack)["Statement"] == statements

    app = f"arn:aws:iam::{ACCOUNT}:role/WebApp"
    grant = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    context = {
        "aws:PrincipalArn": app,
        "aws:SecureTransport": "true",
        "s3:ExistingObjectTag/hashcheck-status": "quarantined",
    }
    resource = f"arn:aws:s3:::{BUCKET}/a.jpg"
    assert not decide(app, "s3:GetObject", resource, context, [grant], policy(stack), ACCOUNT).allowed

    assert cli(["protect", BUCKET, "--stack", sandbox.STACK, "--remove"]) == 0
    assert policy(stack)["Statement"] == [OWN]


def sandbox_scanners(stack) -> list[str]:
    return stack.outputs["ScannerRoleArns"].split(",")
