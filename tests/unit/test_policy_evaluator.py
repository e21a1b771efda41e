"""The offline AWS policy evaluator (tests/iam/evaluator.py).

Three kinds of check: hand-written requests whose answer AWS's IAM documentation states; every case of a frozen
set of random requests (tests/data/iam-reference.json) against the verdict a reference simulator gave; and that
input the evaluator does not model is refused rather than guessed at.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.iam.evaluator import Unsupported, decide

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "iam-reference.json"

ACCT = "111122223333"
SCAN = f"arn:aws:iam::{ACCT}:role/ScanRole"
OTHER = f"arn:aws:iam::{ACCT}:role/OtherRole"
REVIEWER = f"arn:aws:iam::{ACCT}:role/hashcheck-reviewer"
EXT = "arn:aws:iam::999988887777:role/Outsider"
ROOT = f"arn:aws:iam::{ACCT}:root"
BUCKET = "arn:aws:s3:::bucket"
OBJECT = f"{BUCKET}/k"
KEY = f"arn:aws:kms:eu-west-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC = f"arn:aws:sns:eu-west-1:{ACCT}:alerts"
QUEUE = f"arn:aws:sqs:eu-west-1:{ACCT}:scan"
TABLE = "arn:aws:dynamodb:eu-west-1:1:table/t"
TARGET_ROLE = f"arn:aws:iam::{ACCT}:role/Target"
CW = "cloudwatch.amazonaws.com"
STATUS = "s3:ExistingObjectTag/hashcheck-status"
GET, PUT, PUT_TAGGING = "s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"
DECRYPT, ASSUME = "kms:Decrypt", "sts:AssumeRole"
SNS, EVENTS = "sns.amazonaws.com", "events.amazonaws.com"
TAG_KEYS, NEW_STATUS = "s3:RequestObjectTagKeys", "s3:RequestObjectTag/hashcheck-status"
LEADING, GET_ITEM = "dynamodb:LeadingKeys", "dynamodb:GetItem"
PUBLISH, SEND = "sns:Publish", "sqs:SendMessage"
ALARM_ARN = f"arn:aws:cloudwatch:eu-west-1:{ACCT}:alarm:"
OTHER_ALARM = "arn:aws:cloudwatch:eu-west-1:999988887777:alarm:x"
RULE_ARN = f"arn:aws:events:eu-west-1:{ACCT}:rule/"


def doc(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# identity policies
ID_GET = doc(allow("s3:GetObject", f"{BUCKET}/*"))
ID_S3_ALL = doc(allow(["s3:Get*", "s3:Put*", "s3:DeleteObject*"], f"{BUCKET}/*"))
ID_KMS = doc(allow(["kms:Decrypt", "kms:GenerateDataKey"], KEY))
ID_CASE = doc(allow("S3:getobject", f"{BUCKET}/lower/*"))
ID_REGEX_CHARS = doc(allow("s3:GetObject", f"{BUCKET}/a+b(c)/*"))
ID_LEADING_KEYS = doc(
    allow("dynamodb:GetItem", "*", Condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["allow#*"]}})
)
ID_SIGNATURE_AGE = doc(
    allow("s3:GetObject", f"{BUCKET}/*", Condition={"NumericLessThanIfExists": {"s3:signatureAge": "10"}})
)
ID_ANY_TWO_KEYS = doc(
    allow(
        "s3:PutObject",
        f"{BUCKET}/*",
        Condition={"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "a", "aws:TagKeys": "zzz"}},
    )
)
ID_ASSUME = doc(allow("sts:AssumeRole", TARGET_ROLE))
ID_OWN_PREFIX = doc(allow("s3:GetObject", f"{BUCKET}/${{aws:username}}/*"))
ID_OWN_PREFIX_DEFAULT = doc(allow("s3:GetObject", f"{BUCKET}/${{aws:username, 'shared'}}/*"))
ID_LITERAL_STAR = doc(allow("s3:GetObject", "*", Condition={"StringLike": {STATUS: "a${*}"}}))
ID_NULL_EITHER = doc(allow("s3:GetObject", "*", Condition={"Null": {STATUS: ["false", "true"]}}))

# bucket policies
EVERYONE = {"Principal": "*"}
BP_QUARANTINE = doc(
    deny(
        "s3:*", [BUCKET, f"{BUCKET}/*"], Sid="TlsOnly", Condition={"Bool": {"aws:SecureTransport": "false"}}, **EVERYONE
    ),
    deny(
        ["s3:GetObject", "s3:GetObjectVersion"],
        f"{BUCKET}/*",
        Sid="QuarantinedIsUnreadable",
        Condition={"StringEquals": {STATUS: ["quarantined", "error"]}, "ArnNotEquals": {"aws:PrincipalArn": [SCAN]}},
        **EVERYONE,
    ),
)
BP_TAGGERS_ONLY = doc(
    deny(
        ["s3:PutObjectTagging", "s3:DeleteObjectTagging"],
        f"{BUCKET}/*",
        Condition={"StringNotEquals": {"aws:PrincipalArn": [SCAN, REVIEWER]}},
        **EVERYONE,
    )
)
BP_TAG_KEYS = doc(
    deny(
        "s3:PutObject",
        f"{BUCKET}/*",
        Condition={
            "ForAnyValue:StringLike": {"s3:RequestObjectTagKeys": ["hashcheck-*"]},
            "ArnNotEquals": {"aws:PrincipalArn": SCAN},
        },
        **EVERYONE,
    )
)
BP_NULL = doc(
    deny(
        "s3:PutObject",
        f"{BUCKET}/*",
        Condition={
            "Null": {"s3:RequestObjectTag/hashcheck-status": "false"},
            "ArnNotEquals": {"aws:PrincipalArn": [SCAN]},
        },
        **EVERYONE,
    )
)
BP_NOT_ACTION = doc(
    {
        "Effect": "Deny",
        "Principal": "*",
        "NotAction": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": f"{BUCKET}/*",
        "Condition": {"StringNotLike": {"aws:PrincipalArn": "*:role/Scan*"}},
    }
)
BP_ALLOW_ROLE = doc(allow("s3:GetObject", f"{BUCKET}/*", Principal={"AWS": OTHER}))
BP_ALLOW_ROOT = doc(allow("s3:GetObject", f"{BUCKET}/*", Principal={"AWS": ROOT}))
BP_ALLOW_EVERYONE = doc(allow("s3:GetObject", f"{BUCKET}/*", **EVERYONE))
BP_ALLOW_EXT = doc(allow("s3:GetObject", f"{BUCKET}/*", Principal={"AWS": EXT}))
BP_NOT_PRINCIPAL = doc(
    {"Effect": "Deny", "NotPrincipal": {"AWS": [SCAN, ROOT]}, "Action": "s3:*", "Resource": f"{BUCKET}/*"}
)
BP_UNTAGGED_UNREADABLE = doc(
    deny("s3:GetObject", f"{BUCKET}/*", Condition={"StringNotLike": {STATUS: ["clean", "released"]}}, **EVERYONE)
)
BP_DENY_UNLESS_OWN_TAG = doc(
    deny("s3:GetObject", f"{BUCKET}/*", Condition={"StringNotEquals": {STATUS: "${aws:username}"}}, **EVERYONE)
)

# key, topic, queue and trust policies
KP_CW = doc(
    allow(
        ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
        "*",
        Sid="Root",
        Principal={"AWS": ROOT},
        Condition={"StringEquals": {"kms:CallerAccount": ACCT}},
    ),
    allow(["kms:Decrypt", "kms:GenerateDataKey*"], "*", Sid="CloudWatch", Principal={"Service": CW}),
    allow(
        ["kms:Decrypt", "kms:GenerateDataKey"],
        "*",
        Sid="SnsEvents",
        Principal={"Service": ["sns.amazonaws.com", "events.amazonaws.com"]},
        Condition={"StringEquals": {"aws:SourceAccount": ACCT}},
    ),
)
KP_NO_ROOT = doc(allow("kms:Decrypt", "*", Principal={"Service": CW}))
TP_SNS = doc(
    allow(
        "SNS:Publish",
        TOPIC,
        Principal={"Service": CW},
        Condition={"ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:eu-west-1:{ACCT}:alarm:*"}},
    )
)
QP_SQS = doc(
    allow(
        "sqs:SendMessage",
        QUEUE,
        Principal={"Service": "events.amazonaws.com"},
        Condition={"ArnEquals": {"aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCT}:rule/Obj"}},
    )
)
TRUST_OTHER = doc({"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sts:AssumeRole"})
TRUST_ROOT = doc({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"})
TRUST_SCAN = doc({"Effect": "Allow", "Principal": {"AWS": SCAN}, "Action": "sts:AssumeRole"})


class Case(NamedTuple):
    principal: str
    identity: list[dict]
    resource_policy: dict | None
    action: str
    resource: str
    context: dict
    allowed: bool
    owner: str = ACCT


def case(case_id, principal, identity, resource_policy, action, resource, context, allowed, owner=ACCT):
    """A request with the global keys every authenticated request carries (TLS, the principal's ARN and account)."""
    full = {"aws:SecureTransport": "true"}
    if principal.startswith("arn:"):
        full |= {"aws:PrincipalArn": principal, "aws:PrincipalAccount": principal.split(":")[4]}
    full |= context
    return pytest.param(Case(principal, identity, resource_policy, action, resource, full, allowed, owner), id=case_id)


DOCUMENTED = [
    # identity policy alone: actions are case-insensitive, resources case-sensitive and literal apart from * and ?
    case("identity-allows", SCAN, [ID_GET], None, GET, OBJECT, {}, True),
    case("identity-other-action", SCAN, [ID_GET], None, PUT, OBJECT, {}, False),
    case("identity-other-bucket", SCAN, [ID_GET], None, GET, "arn:aws:s3:::bucket2/k", {}, False),
    case("action-case-insensitive", SCAN, [ID_CASE], None, GET, f"{BUCKET}/lower/k", {}, True),
    case("s3-key-case-sensitive", SCAN, [ID_CASE], None, GET, f"{BUCKET}/LOWER/k", {}, False),
    case("regex-chars-in-key", SCAN, [ID_REGEX_CHARS], None, GET, f"{BUCKET}/a+b(c)/k", {}, True),
    # explicit deny wins; ArnNotEquals aws:PrincipalArn exempts the scanner
    case("quarantined-denies-other", OTHER, [ID_GET], BP_QUARANTINE, GET, OBJECT, {STATUS: "quarantined"}, False),
    case("clean-tag-allowed", OTHER, [ID_GET], BP_QUARANTINE, GET, OBJECT, {STATUS: "clean"}, True),
    case("untagged-allowed", OTHER, [ID_GET], BP_QUARANTINE, GET, OBJECT, {}, True),
    case("scanner-exempt", SCAN, [ID_GET], BP_QUARANTINE, GET, OBJECT, {STATUS: "error"}, True),
    case("no-tls-denied", SCAN, [ID_GET], BP_QUARANTINE, GET, OBJECT, {"aws:SecureTransport": "false"}, False),
    # StringNotEquals aws:PrincipalArn with a list
    case("other-cannot-tag", OTHER, [ID_S3_ALL], BP_TAGGERS_ONLY, PUT_TAGGING, OBJECT, {}, False),
    case("scanner-can-tag", SCAN, [ID_S3_ALL], BP_TAGGERS_ONLY, PUT_TAGGING, OBJECT, {}, True),
    # ForAnyValue is false for an absent key, ForAllValues true; several keys in one block AND together
    case("for-any-value-hit", OTHER, [ID_S3_ALL], BP_TAG_KEYS, PUT, OBJECT, {TAG_KEYS: ["a", "hashcheck-x"]}, False),
    case("for-any-value-miss", OTHER, [ID_S3_ALL], BP_TAG_KEYS, PUT, OBJECT, {TAG_KEYS: ["a", "b"]}, True),
    case("for-any-value-absent", OTHER, [ID_S3_ALL], BP_TAG_KEYS, PUT, OBJECT, {}, True),
    case("for-all-values-match", SCAN, [ID_LEADING_KEYS], None, GET_ITEM, TABLE, {LEADING: ["allow#1"]}, True),
    case(
        "for-all-one-misses", SCAN, [ID_LEADING_KEYS], None, GET_ITEM, TABLE, {LEADING: ["allow#1", "sha256#x"]}, False
    ),
    case("for-all-values-absent", SCAN, [ID_LEADING_KEYS], None, GET_ITEM, TABLE, {}, True),
    case("two-keys-and", SCAN, [ID_ANY_TWO_KEYS], None, PUT, OBJECT, {TAG_KEYS: ["a"], "aws:TagKeys": ["b"]}, False),
    # Null
    case("null-other-sets-tag", OTHER, [ID_S3_ALL], BP_NULL, PUT, OBJECT, {NEW_STATUS: "clean"}, False),
    case("null-other-no-tag", OTHER, [ID_S3_ALL], BP_NULL, PUT, OBJECT, {}, True),
    case("null-scanner-sets-tag", SCAN, [ID_S3_ALL], BP_NULL, PUT, OBJECT, {NEW_STATUS: "clean"}, True),
    case("null-values-ored", SCAN, [ID_NULL_EITHER], None, GET, OBJECT, {}, True),
    # KMS: the key policy must allow, itself or through the account plus an identity allow
    case("kms-service-decrypt", CW, [], KP_CW, DECRYPT, KEY, {}, True),
    case("kms-service-action-wildcard", CW, [], KP_CW, "kms:GenerateDataKeyWithoutPlaintext", KEY, {}, True),
    case("kms-service-other-action", CW, [], KP_CW, "kms:Encrypt", KEY, {}, False),
    case("kms-service-condition-unmet", SNS, [], KP_CW, DECRYPT, KEY, {}, False),
    case("kms-service-condition-met", SNS, [], KP_CW, DECRYPT, KEY, {"aws:SourceAccount": ACCT}, True),
    case("kms-root-and-identity", SCAN, [ID_KMS], KP_CW, DECRYPT, KEY, {"kms:CallerAccount": ACCT}, True),
    case("kms-root-without-identity", SCAN, [], KP_CW, DECRYPT, KEY, {"kms:CallerAccount": ACCT}, False),
    case("kms-identity-without-root", SCAN, [ID_KMS], KP_NO_ROOT, DECRYPT, KEY, {"kms:CallerAccount": ACCT}, False),
    # NotAction in a Deny, StringNotLike
    case("not-action-denies", OTHER, [ID_S3_ALL], BP_NOT_ACTION, PUT, OBJECT, {}, False),
    case("not-action-spares", OTHER, [ID_S3_ALL], BP_NOT_ACTION, GET, OBJECT, {}, True),
    case("string-not-like-exempts", SCAN, [ID_S3_ALL], BP_NOT_ACTION, PUT, OBJECT, {}, True),
    # same account: either policy may allow; naming only the account delegates to the identity policies
    case("resource-policy-names-role", OTHER, [], BP_ALLOW_ROLE, GET, OBJECT, {}, True),
    case("resource-policy-names-account", OTHER, [], BP_ALLOW_ROOT, GET, OBJECT, {}, False),
    case("resource-policy-everyone", OTHER, [], BP_ALLOW_EVERYONE, GET, OBJECT, {}, True),
    # cross-account: both sides must allow
    case("cross-account-identity-only", EXT, [ID_GET], None, GET, OBJECT, {}, False),
    case("cross-account-both", EXT, [ID_GET], BP_ALLOW_EXT, GET, OBJECT, {}, True),
    case("cross-account-resource-only", EXT, [], BP_ALLOW_EXT, GET, OBJECT, {}, False),
    # NotPrincipal: per AWS's NotPrincipal page, a Deny spares only a principal listed together with its account
    case("not-principal-hits-other", OTHER, [ID_S3_ALL], BP_NOT_PRINCIPAL, GET, OBJECT, {}, False),
    case("not-principal-spares-listed", SCAN, [ID_S3_ALL], BP_NOT_PRINCIPAL, GET, OBJECT, {}, True),
    # service principals on topic and queue policies
    case("service-arn-like", CW, [], TP_SNS, PUBLISH, TOPIC, {"aws:SourceArn": f"{ALARM_ARN}ScanDLQ"}, True),
    case("service-arn-like-other-account", CW, [], TP_SNS, PUBLISH, TOPIC, {"aws:SourceArn": OTHER_ALARM}, False),
    case("service-arn-equals", EVENTS, [], QP_SQS, SEND, QUEUE, {"aws:SourceArn": f"{RULE_ARN}Obj"}, True),
    case("service-arn-equals-other", EVENTS, [], QP_SQS, SEND, QUEUE, {"aws:SourceArn": f"{RULE_ARN}Other"}, False),
    # a negated operator matches an absent key, a positive one does not
    case("string-not-like-absent-key", OTHER, [ID_GET], BP_UNTAGGED_UNREADABLE, GET, OBJECT, {}, False),
    case("string-not-like-present", OTHER, [ID_GET], BP_UNTAGGED_UNREADABLE, GET, OBJECT, {STATUS: "clean"}, True),
    # IfExists
    case("if-exists-present-ok", SCAN, [ID_SIGNATURE_AGE], None, GET, OBJECT, {"s3:signatureAge": "5"}, True),
    case("if-exists-present-too-big", SCAN, [ID_SIGNATURE_AGE], None, GET, OBJECT, {"s3:signatureAge": "50"}, False),
    case("if-exists-absent", SCAN, [ID_SIGNATURE_AGE], None, GET, OBJECT, {}, True),
    # role trust policies must allow even in the same account, like key policies
    case("trust-policy-names-other", SCAN, [ID_ASSUME], TRUST_OTHER, ASSUME, TARGET_ROLE, {}, False),
    case("trust-policy-account-and-identity", SCAN, [ID_ASSUME], TRUST_ROOT, ASSUME, TARGET_ROLE, {}, True),
    case("trust-policy-account-only", SCAN, [], TRUST_ROOT, ASSUME, TARGET_ROLE, {}, False),
    case("trust-policy-names-role", SCAN, [], TRUST_SCAN, ASSUME, TARGET_ROLE, {}, True),
    # policy variables: a substituted value is literal, ${*} is a literal '*', a default stands in for a missing key
    case("variable-resolved", SCAN, [ID_OWN_PREFIX], None, GET, f"{BUCKET}/bob/k", {"aws:username": "bob"}, True),
    case("variable-unresolved", SCAN, [ID_OWN_PREFIX], None, GET, f"{BUCKET}/bob/k", {}, False),
    case("variable-is-literal", SCAN, [ID_OWN_PREFIX], None, GET, f"{BUCKET}/bob/k", {"aws:username": "*"}, False),
    case("variable-default", SCAN, [ID_OWN_PREFIX_DEFAULT], None, GET, f"{BUCKET}/shared/k", {}, True),
    case("variable-literal-star", SCAN, [ID_LITERAL_STAR], None, GET, OBJECT, {STATUS: "a*"}, True),
    case("variable-literal-star-only", SCAN, [ID_LITERAL_STAR], None, GET, OBJECT, {STATUS: "ab"}, False),
    # an unresolvable variable invalidates the statement, even under a negated operator
    case("variable-unresolved-negated", OTHER, [ID_GET], BP_DENY_UNLESS_OWN_TAG, GET, OBJECT, {STATUS: "x"}, True),
]


@pytest.mark.parametrize("c", DOCUMENTED)
def test_documented_decision(c: Case):
    decision = decide(c.principal, c.action, c.resource, c.context, c.identity, c.resource_policy, c.owner)
    assert decision.allowed is c.allowed, (decision.reason, decision.deny, decision.allow)
    assert (decision.reason == "allowed") is c.allowed


def test_decision_names_the_statements_that_matched():
    context = {"aws:SecureTransport": "true", "aws:PrincipalArn": OTHER, STATUS: "quarantined"}
    decision = decide(OTHER, GET, OBJECT, context, [ID_GET], BP_QUARANTINE, ACCT)
    assert (decision.allowed, decision.reason) == (False, "explicit-deny")
    assert decision.deny == [("resource", "QuarantinedIsUnreadable")]
    assert decision.allow == [("identity[0]", "#0")]


def test_agrees_with_the_reference_simulator():
    fixture = json.loads(REFERENCE.read_text())
    policies, cases = fixture["policies"], fixture["cases"]
    outcome = {"allowed": "Allowed", "explicit-deny": "ExplicitlyDenied", "implicit-deny": "ImplicitlyDenied"}
    assert len(cases) >= 1000 and {c["reference"] for c in cases} == set(outcome.values())
    disagreements = []
    for c in cases:
        identity = [policies[i] for i in c["identity"]]
        resource_policy = None if c["resource_policy"] is None else policies[c["resource_policy"]]
        decision = decide(
            c["principal"], c["action"], c["resource"], c["context"], identity, resource_policy, c["resource_account"]
        )
        if outcome[decision.reason] != c["reference"]:
            disagreements.append(f"{c['id']}: reference {c['reference']}, evaluator {decision.reason}")
    assert not disagreements, f"{len(disagreements)} of {len(cases)} disagree, e.g.\n" + "\n".join(disagreements[:5])


def _condition_policy(operator: str) -> dict:
    return doc(allow(GET, "*", Condition={operator: {STATUS: "clean"}}))


@pytest.mark.parametrize("operator", ["StringEqualz", "ForSomeValues:StringEquals", "IfExists", "NullIfExists"])
def test_unknown_condition_operator_is_unsupported(operator):
    with pytest.raises(Unsupported, match="condition operator"):
        decide(SCAN, GET, OBJECT, {STATUS: "clean"}, [_condition_policy(operator)])


@pytest.mark.parametrize(
    ("principal", "identity", "resource_policy", "context"),
    [
        pytest.param(
            SCAN,
            [],
            doc(allow(GET, "*", Principal={"Federated": "cognito-identity.amazonaws.com"})),
            {},
            id="federated-principal",
        ),
        pytest.param(
            SCAN,
            [],
            doc({"Effect": "Allow", "NotPrincipal": {"AWS": EXT}, "Action": "s3:*", "Resource": "*"}),
            {},
            id="not-principal-allow",
        ),
        pytest.param(SCAN, [_condition_policy("StringEquals")], None, {STATUS: ["clean"]}, id="multivalued-key"),
        pytest.param(f"arn:aws:sts::{ACCT}:assumed-role/ScanRole/s", [ID_GET], None, {}, id="session-principal"),
        pytest.param(SCAN, [doc(allow(GET, "arn:aws:s3:*"))], None, {}, id="short-arn-pattern"),
    ],
)
def test_unmodelled_input_is_unsupported(principal, identity, resource_policy, context):
    with pytest.raises(Unsupported):
        decide(principal, GET, OBJECT, context, identity, resource_policy, ACCT)
