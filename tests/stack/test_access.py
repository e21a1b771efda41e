"""Who can do what to an object in a protected bucket, by its status, in both read modes.

The matrix is evaluated (tests.iam.evaluator) against the policies rendered from template.yaml, for the
principals a hoster has: another account, the hoster's web app (broad rights on the bucket), an uploader
(PutObject only), the scan path, a reviewer, the evidence custodian and an administrator. Its tables are
README.md's ("Who can do what"): this test renders them and holds the README to them, so the README
cannot promise what the policies do not do. The upload bucket's statements are also held to
`hashcheck protect`'s, which puts the same rules on existing buckets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from hashcheck.tools import protect, sandbox
from tests.iam.evaluator import decide
from tests.iam.stack import ACCOUNT, Principal, StackPolicies

ROOT = Path(__file__).resolve().parents[2]
STATUSES = ("none", "pending", "clean", "quarantined", "unscannable", "review", "error", "released", "opaque")
OUTSIDER = Principal(
    "another account",
    "arn:aws:iam::999988887777:role/Outsider",
    [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}],
)


def app_role(bucket_arn: str) -> Principal:
    grant = {"Effect": "Allow", "Action": "s3:*", "Resource": [bucket_arn, f"{bucket_arn}/*"]}
    return Principal("hoster's app", f"arn:aws:iam::{ACCOUNT}:role/WebApp", [{"Statement": [grant]}])


def uploader(bucket_arn: str) -> Principal:
    grant = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{bucket_arn}/*"}
    return Principal("uploader", f"arn:aws:iam::{ACCOUNT}:role/Uploader", [{"Statement": [grant]}])


@pytest.fixture(scope="module", params=["deny-list", "fail-closed"])
def policies(request) -> Iterator[StackPolicies]:
    sandbox.fake_credentials()
    with mock_aws():
        stack = sandbox.deploy({"FailClosedReadPolicy": "true" if request.param == "fail-closed" else "false"})
        rendered = StackPolicies.of(stack)
        bucket = rendered.arns["UploadBucket"]
        for principal in (OUTSIDER, app_role(bucket), uploader(bucket)):
            rendered.principals[principal.name] = principal
        rendered.mode = request.param  # type: ignore[attr-defined]  # which read mode this rendering is
        rendered.scanners = stack.outputs["ScannerRoleArns"].split(",")  # type: ignore[attr-defined]
        yield rendered


PEOPLE = ("another account", "hoster's app", "uploader", "ScanFunction", "reviewer", "custodian", "admin")


def allowed(policies: StackPolicies, who: str, action: str, key: str, context: dict) -> bool:
    """Whether `who` may do `action` on the object `key` of the upload bucket."""
    return allowed_on(policies, who, action, f"{policies.arns['UploadBucket']}/{key}", context)


def allowed_on(policies: StackPolicies, who: str, action: str, resource: str, context: dict) -> bool:
    principal = policies.principals[who]
    account = principal.arn.split(":")[4]
    full = {"aws:PrincipalArn": principal.arn, "aws:PrincipalAccount": account, "aws:SecureTransport": "true"}
    full.update(context)
    decision = decide(
        principal.arn, action, resource, full, principal.policies, policies.resource_policy(resource), ACCOUNT
    )
    return decision.allowed


def status_context(status: str) -> dict:
    return {} if status == "none" else {"s3:ExistingObjectTag/hashcheck-status": status}


WRITES = {
    "PutObject": ("s3:PutObject", {}),
    "PutObject tagged clean": (
        "s3:PutObject",
        {"s3:RequestObjectTag/hashcheck-status": "clean", "s3:RequestObjectTagKeys": ["hashcheck-status"]},
    ),
    "copy from another bucket": ("s3:PutObject", {"s3:x-amz-copy-source": "attackers-bucket/listed.jpg"}),
    "copy within the bucket": ("s3:PutObject", {}),  # the copy source is filled in per bucket below
    "set or strip the status tag": ("s3:PutObjectTagging", {}),
    "delete tags": ("s3:DeleteObjectTagging", {}),
    "delete a version": ("s3:DeleteObjectVersion", {}),
}


def write_context(policies: StackPolicies, name: str) -> dict:
    action, context = WRITES[name]
    if name == "copy within the bucket":
        return {"s3:x-amz-copy-source": f"{policies.names['UploadBucket']}/other.jpg"}
    return context


def read_table(policies: StackPolicies) -> str:
    rows = ["| who | " + " | ".join(STATUSES) + " |", "|---|" + "---|" * len(STATUSES)]
    for who in PEOPLE:
        cells = [
            "read" if allowed(policies, who, "s3:GetObject", "x.jpg", status_context(s)) else "-" for s in STATUSES
        ]
        rows.append(f"| {who} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def write_table(policies: StackPolicies) -> str:
    rows = ["| who | " + " | ".join(WRITES) + " |", "|---|" + "---|" * len(WRITES)]
    for who in PEOPLE:
        cells = []
        for name, (action, _) in WRITES.items():
            results = {
                allowed(policies, who, action, "x.jpg", {**status_context(s), **write_context(policies, name)})
                for s in STATUSES
            }
            assert len(results) == 1, f"{who} {name}: depends on the status"
            cells.append("yes" if results.pop() else "-")
        rows.append(f"| {who} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


# The evidence: its copies (a version under legal hold) and the key that encrypts them.
EVIDENCE_PEOPLE = ("another account", "hoster's app", "ScanFunction", "reviewer", "custodian", "break-glass", "admin")
EVIDENCE_ACTIONS = {
    "read": ("s3:GetObjectVersion", {}),
    "hold on": ("s3:PutObjectLegalHold", {"s3:object-lock-legal-hold": "ON"}),
    "lift a hold": ("s3:PutObjectLegalHold", {"s3:object-lock-legal-hold": "OFF"}),
    "delete a version": ("s3:DeleteObjectVersion", {}),
    "bypass governance": ("s3:BypassGovernanceRetention", {}),
    "change retention": ("s3:PutObjectRetention", {}),
    "disable the key": ("kms:DisableKey", {}),
    "delete the key": ("kms:ScheduleKeyDeletion", {}),
}


def evidence_table(policies: StackPolicies) -> str:
    copy = f"{policies.arns['QuarantineBucket']}/evidence/case/x.jpg"
    rows = ["| who | " + " | ".join(EVIDENCE_ACTIONS) + " |", "|---|" + "---|" * len(EVIDENCE_ACTIONS)]
    for who in EVIDENCE_PEOPLE:
        cells = []
        for action, context in EVIDENCE_ACTIONS.values():
            resource = policies.arns["EvidenceKey"] if action.startswith("kms:") else copy
            cells.append("yes" if allowed_on(policies, who, action, resource, context) else "-")
        rows.append(f"| {who} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def readme_block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {name} -->\n(.*?)\n<!-- /{name} -->", text, re.S)
    assert match, f"README.md has no {name} block"
    return match.group(1).strip()


def test_the_readme_shows_the_reads_the_policies_allow(policies):
    assert read_table(policies) == readme_block(f"reads {policies.mode}")


def test_the_readme_shows_the_writes_the_policies_allow(policies):
    assert write_table(policies) == readme_block(f"writes {policies.mode}")


def test_nothing_but_clean_and_released_is_readable_by_people(policies):
    """(and `opaque`, an encrypted archive nobody can look inside, unless the hoster blocks it)"""
    for who in ("hoster's app", "reviewer", "admin"):
        readable = {s for s in STATUSES if allowed(policies, who, "s3:GetObject", "x.jpg", status_context(s))}
        expected = {"clean", "released", "opaque"} | ({"none"} if policies.mode == "deny-list" else set())
        assert readable == expected, who


def test_a_copy_cannot_bring_a_clean_status_from_elsewhere(policies):
    context = {"s3:x-amz-copy-source": "attackers-bucket/listed.jpg"}
    assert not allowed(policies, "hoster's app", "s3:PutObject", "x.jpg", context)
    assert not allowed(policies, "admin", "s3:PutObject", "x.jpg", context)
    assert allowed(policies, "hoster's app", "s3:PutObject", "x.jpg", {})  # an ordinary upload


def test_hashcheck_protect_puts_the_same_rules_on_an_existing_bucket(policies):
    template = policies.resource_policy(policies.arns["UploadBucket"])["Statement"]
    scan_path = ("ScanFunction", "RematchFunction", "BackfillFunction", "DeadLetterFunction")
    assert policies.scanners == [policies.principals[f].arn for f in scan_path]  # the output `protect` reads
    generated = protect.bucket_statements(
        policies.names["UploadBucket"],
        policies.scanners,
        policies.principals["reviewer"].arn,
        policies.mode == "fail-closed",
        readers=[policies.principals["FingerprintFunction"].arn],
    )
    assert template == generated


def test_the_readme_shows_who_can_touch_the_evidence(policies):
    assert evidence_table(policies) == readme_block("evidence")


def test_only_the_custodian_releases_evidence_and_only_break_glass_destroys_the_key(policies):
    """The same, as the rules it must keep whatever the README says."""
    copy = f"{policies.arns['QuarantineBucket']}/evidence/case/x.jpg"
    key = policies.arns["EvidenceKey"]
    for name in ("lift a hold", "delete a version", "bypass governance"):
        action, context = EVIDENCE_ACTIONS[name]
        may = {who for who in EVIDENCE_PEOPLE if allowed_on(policies, who, action, copy, context)}
        assert may == {"custodian"}, action
    for action in ("kms:DisableKey", "kms:ScheduleKeyDeletion"):
        assert {who for who in EVIDENCE_PEOPLE if allowed_on(policies, who, action, key, {})} == {"break-glass"}
