"""Security review as tests (see SECURITY.md for the threat model these back).

test_template.py already holds: no `*` actions, public access blocked and TLS-only on the three
buckets, the evidence bucket locked/versioned/KMS/retained, tag tampering denied, the fail-closed
read policy. This file adds what an attacker would try next: resource wildcards, the KMS key policy,
who can read or destroy evidence, secrets outside Secrets Manager, URL guards against SSRF to the
metadata service, and hashes or secrets in log lines across a sync + scan + quarantine.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path

import pytest

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.lists import listformat
from hashcheck.lists.build import references_for
from hashcheck.lists.sources import ConfigError, SourceError, parse_specs
from hashcheck.lists.sources.https import HttpsSource
from hashcheck.matching.stores.remote import RemoteLookupError, RemoteLookupStore
from hashcheck.tools import samples, sandbox
from tests.helpers import RESOURCES, TEMPLATE, actions, statements

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted((ROOT / "layers" / "hashcheck" / "hashcheck").rglob("*.py")) + sorted((ROOT / "functions").rglob("*.py"))


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# --- IAM: resource wildcards only where needed -------------------------------------------------------


def test_allow_statements_name_their_resources():
    """`Resource: "*"` only in the KMS key policy (where it means "this key"); every other wildcard is
    the tail of a named bucket, prefix, index or secret, never a whole service or account."""
    for name, statement in statements():
        if statement["Effect"] != "Allow":
            continue
        resources = _strings(statement.get("Resource", []))
        if RESOURCES[name]["Type"] == "AWS::KMS::Key":
            continue
        for resource in resources:
            assert resource != "*", (name, statement.get("Sid"))
            for part in re.split(r"[,]", resource):
                if "*" in part:
                    assert part.endswith("/*") or part.endswith("-*") or part.endswith("/index/*"), (name, part)
                    assert not re.search(r":::\*|:\*$|\$\{AWS::AccountId\}:\*", part), (name, part)


def test_kms_key_policy_grants_no_wildcard_principal_or_action():
    policy = RESOURCES["EvidenceKey"]["Properties"]["KeyPolicy"]["Statement"]
    for statement in policy:
        if statement["Effect"] != "Allow":
            continue
        assert statement["Principal"] != "*" and statement["Principal"] != {"AWS": "*"}, statement["Sid"]
        assert not any(a in ("*", "kms:*") for a in actions(statement)), statement["Sid"]
    by_sid = {s["Sid"]: s for s in policy}
    use = by_sid["ServicesInThisAccountUseIt"]
    assert use["Condition"]["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    services = by_sid["AlertsAndEventsDecrypt"]
    assert set(actions(services)) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert set(services["Principal"]["Service"]) == {"sns.amazonaws.com", "events.amazonaws.com"}
    admin = by_sid["AccountAdministers"]
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom"} & set(actions(admin)), "admins need not read"


def test_service_principals_on_the_evidence_key_are_bound_to_this_account():
    services = next(
        s
        for s in RESOURCES["EvidenceKey"]["Properties"]["KeyPolicy"]["Statement"]
        if s["Sid"] == "AlertsAndEventsDecrypt"
    )
    condition = json.dumps(services.get("Condition", {}))
    assert "aws:SourceAccount" in condition or "aws:SourceArn" in condition


# --- the evidence bucket -----------------------------------------------------------------------------


def _policy(bucket: str) -> list[dict]:
    policy = next(
        r
        for r in RESOURCES.values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket}
    )
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_evidence_is_readable_only_by_named_roles():
    (deny,) = [s for s in _policy("QuarantineBucket") if s.get("Sid") == "EvidenceReadOnlyByTheScanner"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert {"s3:GetObject", "s3:GetObjectVersion"} <= set(actions(deny))
    allowed = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert {"Fn::GetAtt": ["ScanFunctionRole", "Arn"]} in allowed
    assert all("*" not in json.dumps(a) for a in allowed), "a wildcard role name would let anyone name themselves"
    props = RESOURCES["QuarantineBucket"]["Properties"]
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]  # no ACL grants
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": ["EvidenceKey", "Arn"]}


def test_nothing_but_the_scanner_may_write_tags_or_the_status_in_the_upload_bucket():
    by_sid = {s.get("Sid"): s for s in _policy("UploadBucket") if isinstance(s, dict) and "Sid" in s}
    tags = by_sid["HashcheckOnlyTheScannerChangesTags"]
    assert set(actions(tags)) == {
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
        "s3:DeleteObjectTagging",
        "s3:DeleteObjectVersionTagging",
    }
    unreadable = by_sid["HashcheckBlockedIsUnreadable"]
    assert {"s3:GetObject", "s3:GetObjectVersion"} <= set(actions(unreadable))
    assert by_sid["HashcheckTlsOnly"]["Action"] == "s3:*" and by_sid["HashcheckTlsOnly"]["Effect"] == "Deny"


def test_evidence_cannot_be_released_or_deleted_by_an_insider():
    lock = RESOURCES["QuarantineBucket"]["Properties"]["ObjectLockConfiguration"]
    if lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE":
        return
    denied = set()
    for statement in _policy("QuarantineBucket"):
        if statement.get("Effect") == "Deny" and statement.get("Sid") != "TlsOnly":
            denied |= set(actions(statement))
    assert {"s3:BypassGovernanceRetention", "s3:PutObjectLegalHold", "s3:DeleteObjectVersion"} <= denied


# --- secrets only from Secrets Manager ----------------------------------------------------------------

SECRET_NAME = re.compile(r"(secret|token|password|passwd|api[_-]?key|auth|credential)", re.IGNORECASE)


def test_no_secret_values_in_template_defaults_or_function_environments():
    for name, parameter in TEMPLATE["Parameters"].items():
        default = str(parameter.get("Default", ""))
        if SECRET_NAME.search(name):
            # a secret's *name* is fine (it is a Secrets Manager id); a value would look like one
            assert not re.search(r"Bearer |[A-Za-z0-9+/]{32,}", default), name
        assert not re.search(r"AKIA[0-9A-Z]{16}|Bearer \S+", default), name
    for name, resource in RESOURCES.items():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        variables = {**TEMPLATE["Globals"]["Function"]["Environment"]["Variables"], **variables}
        for var, value in variables.items():
            if SECRET_NAME.search(var):
                # only ever the secret's id, from a parameter: no literal value
                assert isinstance(value, dict), (name, var, value)


def test_no_credentials_or_auth_values_in_the_code():
    pattern = re.compile(r"AKIA[0-9A-Z]{16}|Bearer [A-Za-z0-9._~+/-]{8,}|aws_secret_access_key\s*=\s*['\"]\w")
    for path in CODE:
        text = path.read_text()
        assert not pattern.search(text), path
        # environment variables read by the code never carry a secret value, only a secret's id
        for var in re.findall(r"environ(?:\.get)?\(?\[?[\"']([A-Z_]+)[\"']", text):
            if SECRET_NAME.search(var):
                assert var.endswith("_SECRET") or var.endswith("_SECRET_NAME"), (path, var)


@pytest.mark.parametrize("key", ["auth", "token", "password", "authorization", "headers"])
def test_a_list_source_cannot_carry_an_inline_secret(key):
    entry = {"name": "feed", "type": "https", "url": "https://lists.example.org/v1", "list_id": "nl", key: "Bearer x"}
    with pytest.raises(ConfigError):
        parse_specs(json.dumps([entry]))


# --- URLs: https only, no SSRF to the metadata service -------------------------------------------------

BAD_URLS = [
    "http://lists.example.org/feed",  # plain http
    "ftp://lists.example.org/feed",
    "file:///etc/passwd",
    "https://169.254.169.254/latest/meta-data/",  # instance metadata
    "https://169.254.170.2/v2/credentials",  # ECS / Lambda container credentials
    "https://[fe80::1]/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://[::ffff:169.254.169.254]/",
    "https://user:pass@lists.example.org/feed",  # credentials in the URL
    "https://0.0.0.0/",
    "https://127.0.0.1/",
    "https://[::1]/",
]


def _resolver(address: str):
    def resolve(host, port, **_):
        return [(2, 1, 6, "", (address, port))]

    return resolve


@pytest.mark.parametrize("url", BAD_URLS)
def test_list_feed_urls_are_https_and_never_reach_metadata_or_loopback(url):
    with pytest.raises((ValueError, SourceError, ConfigError)):
        HttpsSource("feed", url).fetch(None)


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "fe80::1", "fd00:ec2::254", "127.0.0.1", "::ffff:169.254.169.254"]
)
def test_a_feed_host_name_resolving_to_metadata_is_refused_before_connecting(address):
    source = HttpsSource("feed", "https://lists.example.org/feed", resolve=_resolver(address))
    with pytest.raises(SourceError, match="link-local|loopback"):
        source.fetch(None)


def test_a_decimal_encoded_metadata_address_is_resolved_and_refused():
    """`https://2852039166/` is 169.254.169.254 to the resolver (no DNS involved)."""
    with pytest.raises(SourceError):
        HttpsSource("feed", "https://2852039166/latest/").fetch(None)


@pytest.mark.parametrize("url", BAD_URLS)
def test_remote_lookup_urls_are_https_and_never_metadata_or_loopback(url):
    with pytest.raises((ValueError, RemoteLookupError)):
        RemoteLookupStore(url, auth_value="x").exact([("md5", "0" * 32)])


def test_a_remote_lookup_name_resolving_to_metadata_is_refused_before_sending(monkeypatch):
    import hashcheck.matching.stores.remote as remote

    sent = []
    monkeypatch.setattr(remote.socket, "getaddrinfo", _resolver("169.254.169.254"))
    store = RemoteLookupStore("https://lookup.example.org/v1", auth_value="Bearer nope")
    monkeypatch.setattr(store, "_attempt", lambda body: sent.append(body) or b'{"matches": []}')
    with pytest.raises(RemoteLookupError):
        store.exact([("md5", "0" * 32)])
    assert sent == [], "hashes were sent to a metadata address"
    assert "nope" not in repr(store)


# --- logs: no hash of a match, a list row or a secret ------------------------------------------------

LIST_ID = "sec-list"
LIST_KEY = f"lists/{LIST_ID}.jsonl"


def test_logs_of_a_sync_scan_and_quarantine_carry_no_hash_or_secret(caplog, capsys):
    from moto import mock_aws

    secret_value = f"Bearer s3cr3t-{uuid.uuid4().hex}"
    listed = [samples.jpeg(samples.picture(seed)) for seed in (1, 2)]
    rows = [r for i, data in enumerate(listed) for r in references_for(fingerprint(data), LIST_ID, f"ref-{i}")]
    sources = [
        {"name": LIST_ID, "type": "s3", "key": LIST_KEY, "list_id": LIST_ID},
        # a feed that needs its secret: read at fetch time, then the (unroutable) host fails fast
        {
            "name": "feed",
            "type": "https",
            "url": "https://192.0.2.1/feed",
            "list_id": "feed",
            "auth_secret": "hashcheck/feed",
            "timeout": 0.2,
            "retries": 0,
        },
    ]
    uploads = {
        "listed-near.jpg": samples.EDITS["jpeg-q50"](samples.picture(1)),
        "listed-exact.jpg": listed[1],
        "clean.jpg": samples.jpeg(samples.picture(60)),
    }
    sandbox.fake_credentials()
    with caplog.at_level(logging.DEBUG), mock_aws():
        for noisy in ("botocore", "boto3", "urllib3", "moto", "s3transfer"):
            logging.getLogger(noisy).setLevel(logging.INFO)  # their DEBUG prints request bodies (SECURITY.md)
        stack = sandbox.deploy({"ListSources": json.dumps(sources)})
        stack.client("secretsmanager").create_secret(Name="hashcheck/feed", SecretString=secret_value)
        body = "".join(listformat.to_json(r) + "\n" for r in rows).encode()
        stack.client("s3").put_object(Bucket=stack.outputs["ArtifactsBucketName"], Key=LIST_KEY, Body=body)
        sync = sandbox.load_handler(stack, "SyncFunction", "sync")
        event = json.loads((sandbox.ROOT / "events" / "schedule.json").read_text())
        report = sync.handler(event, sandbox.LambdaContext(stack.functions["SyncFunction"]))
        assert [s["status"] for s in report["sources"]] == ["applied", "failed"], report
        scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        for key, data in uploads.items():
            stack.client("s3").put_object(Bucket=stack.outputs["UploadBucketName"], Key=key, Body=data)
        sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], scan.handler, "ScanFunction")
        cases = stack.client("dynamodb").scan(TableName=stack.outputs["CaseTableName"])["Items"]
        assert len(cases) == 2
    captured = capsys.readouterr()
    logs = "\n".join(
        [captured.out, captured.err]
        + [
            f"{r.getMessage()} {r.__dict__}"
            for r in caplog.records
            if r.name.split(".")[0] not in ("botocore", "boto3", "urllib3", "moto")
        ]
    )
    assert "listed-near.jpg" in logs and "quarantined" in logs  # the logs did say what happened
    forbidden = {r.hash for r in rows}
    for data in uploads.values():
        fp = fingerprint(data)
        forbidden |= {fp.md5, fp.sha1, fp.sha256, fp.pdq, fp.phash} | {h.hash for h in fp.near}
    forbidden.discard(None)
    leaked = sorted(v for v in forbidden if v in logs or v.upper() in logs)
    assert leaked == [], f"{len(leaked)} hash values in the logs"
    assert secret_value not in logs and secret_value.split()[1] not in logs


def test_handlers_leave_botocore_logging_at_its_default_level():
    """botocore at DEBUG logs request bodies: lookups (hash lists) and secrets. The handlers must not turn it on."""
    for path in sorted((ROOT / "functions").rglob("*.py")):
        text = path.read_text()
        assert not re.search(r"set_stream_logger|getLogger\([\"']botocore|boto3\.set_stream_logger", text), path
