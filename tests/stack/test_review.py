"""Review of cases (`hashcheck.response.review`) on the stack deployed into moto (hashcheck.tools.sandbox): a listed
picture is uploaded and quarantined by the real scan handler, then a reviewer releases or confirms
it. The pictures are generated and benign; the tests pretend one is listed."""

from __future__ import annotations

import json

import pytest

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.matching.allowlist import Allowlist
from hashcheck.matching.matcher import Match
from hashcheck.response import review
from hashcheck.tables.fingerprint_table import FingerprintTable
from hashcheck.tables.reference_table import allow_pk
from hashcheck.tools import samples, sandbox
from tests.helpers import listed_stack

LISTED = samples.jpeg(samples.picture(1))
KEY = "customers/3/holiday é.jpg"


@pytest.fixture()
def stack():
    with listed_stack(LISTED) as stack:
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        stack.target = review.Target.from_outputs(stack.outputs)
        yield stack


def upload(stack, key: str, body: bytes, **extra) -> str:
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)["VersionId"]


def deliver(stack) -> None:
    sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], stack.scan.handler, "ScanFunction")


def status(stack, key: str, version: str | None = None) -> str | None:
    args = {"Bucket": stack.outputs["UploadBucketName"], "Key": key, **({"VersionId": version} if version else {})}
    tags = stack.client("s3").get_object_tagging(**args)["TagSet"]
    return {t["Key"]: t["Value"] for t in tags}.get("hashcheck-status")


def quarantined_case(stack) -> dict:
    upload(
        stack,
        KEY,
        LISTED,
        ContentType="image/jpeg",
        CacheControl="max-age=60",
        Metadata={"camera": "generated", "album": "summer"},
        Tagging="customer=7&project=alpha",
    )
    deliver(stack)
    (case,) = review.list_cases(stack.target)
    assert case["status"] == "quarantined" and case["key"] == KEY
    return case


def evidence_versions(stack) -> list[dict]:
    listing = stack.client("s3").list_object_versions(Bucket=stack.outputs["QuarantineBucketName"])
    return listing.get("Versions", [])


def hash_values(data: bytes) -> list[str]:
    fp = fingerprint(data)
    return [fp.md5, fp.sha1, fp.sha256, fp.pdq, fp.phash]


# -- release --------------------------------------------------------------------------------------


def test_release_restores_the_object_bit_for_bit_keeps_the_evidence_and_the_audit_trail(stack, caplog):
    case = quarantined_case(stack)
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    assert s3.list_object_versions(Bucket=bucket, Prefix=KEY).get("Versions", []) == []  # moved away

    with caplog.at_level("DEBUG"):
        released = review.release_case(stack.target, case["case_id"], "alice@hoster.example", "a stock photo")

    restored = s3.get_object(Bucket=bucket, Key=KEY)
    assert restored["Body"].read() == LISTED  # bit for bit
    assert restored["ContentType"] == "image/jpeg" and restored["CacheControl"] == "max-age=60"
    assert restored["Metadata"] == {"camera": "generated", "album": "summer"}  # no provenance entries
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=KEY)["TagSet"]}
    assert tags["customer"] == "7" and tags["project"] == "alpha" and tags["hashcheck-status"] == "released"
    assert released["restored"]["version_id"] == restored["VersionId"]

    (evidence,) = evidence_versions(stack)  # the evidence stays, under its legal hold
    hold = s3.get_object_legal_hold(
        Bucket=stack.outputs["QuarantineBucketName"], Key=evidence["Key"], VersionId=evidence["VersionId"]
    )
    assert hold["LegalHold"]["Status"] == "ON"

    assert (released["status"], released["decision"], released["decided_by"]) == (
        "released",
        "released",
        "alice@hoster.example",
    )
    whats = [e["what"] for e in released["history"]]
    assert whats[:3] == ["opened", "quarantine move: quarantined", "notified"]
    assert whats[3:] == ["release started", "allowlisted", "restored", "released", "release announced"]
    started = released["history"][3]
    assert started["who"] == "alice@hoster.example" and started["why"] == "a stock photo"
    assert all(e["who"] == "alice@hoster.example" for e in released["history"][3:])

    entry = Allowlist(stack.target.references).entry(fingerprint(LISTED).sha256)
    assert entry["case_ids"] == (case["case_id"],) and len(entry["refs"]) == 1

    logs = "\n".join(str(r.__dict__) for r in caplog.records if r.name.split(".")[0] == "hashcheck")
    assert case["case_id"] in logs
    for value in hash_values(LISTED):
        assert value not in logs


def test_release_twice_changes_nothing_more(stack):
    case = quarantined_case(stack)
    first = review.release_case(stack.target, case["case_id"], "alice", "stock photo")
    again = review.release_case(stack.target, case["case_id"], "alice", "stock photo")  # a retry
    assert again["history"] == first["history"]
    versions = stack.client("s3").list_object_versions(Bucket=stack.outputs["UploadBucketName"], Prefix=KEY)
    assert len(versions["Versions"]) == 1


def test_a_crash_after_the_copy_back_reuses_the_restored_version(stack):
    case = quarantined_case(stack)
    ddb, calls = stack.target.cases.client, {"n": 0}

    def refuse_restored_note(**kwargs):
        if "restored_at" in kwargs["params"].get("ExpressionAttributeNames", {}).values():
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("crash right after the copy back")

    ddb.meta.events.register("before-parameter-build.dynamodb.UpdateItem", refuse_restored_note)
    with pytest.raises(RuntimeError):
        review.release_case(stack.target, case["case_id"], "alice", "stock photo")
    released = review.release_case(stack.target, case["case_id"], "alice", "stock photo")
    versions = stack.client("s3").list_object_versions(Bucket=stack.outputs["UploadBucketName"], Prefix=KEY)
    assert len(versions["Versions"]) == 1  # one restored version, found again, not a second copy
    assert released["status"] == "released" and "found after a retry" in released["restored"]["how"]


def test_restored_object_and_a_reupload_of_the_same_bytes_stay_clean_through_the_real_scan(stack):
    case = quarantined_case(stack)
    review.release_case(stack.target, case["case_id"], "alice", "stock photo")
    again = upload(stack, "customers/9/same bytes.jpg", LISTED)
    deliver(stack)  # the restore's own ObjectCreated event and the re-upload's
    assert status(stack, KEY) == "released"
    assert status(stack, "customers/9/same bytes.jpg", again) is None  # clean, so left untagged
    fingerprints = FingerprintTable(stack.client("dynamodb"), stack.outputs["FingerprintTableName"])
    (record,) = [r for r in fingerprints.scan_all() if r["key"] == "customers/9/same bytes.jpg"]
    assert record["status"] == "clean" and "released false positive" in record["reason"]
    assert len(review.list_cases(stack.target)) == 1  # no new case


def test_a_near_duplicate_of_a_released_picture_is_still_quarantined(stack):
    case = quarantined_case(stack)
    review.release_case(stack.target, case["case_id"], "alice", "stock photo")
    upload(stack, "customers/9/edited.jpg", samples.EDITS["jpeg-q50"](samples.picture(1)))
    deliver(stack)
    edited = [c for c in review.list_cases(stack.target) if c["key"] == "customers/9/edited.jpg"]
    assert [c["status"] for c in edited] == ["quarantined"]


# -- confirm --------------------------------------------------------------------------------------


def test_confirm_records_the_decision_and_announces_it_for_the_report(stack):
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="report-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["hashcheck"], "detail-type": ["HashCheck Case Confirmed"]}
    events.put_rule(Name="confirmed", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="confirmed", Targets=[{"Id": "q", "Arn": arn}])
    case = quarantined_case(stack)

    confirmed = review.confirm_case(stack.target, case["case_id"], "bob", "clearly the listed picture")
    review.confirm_case(stack.target, case["case_id"], "bob", "clearly the listed picture")  # a retry
    assert confirmed["decision"] == "confirmed" and confirmed["status"] == "quarantined"
    assert [e["what"] for e in confirmed["history"]][-2:] == ["confirmed", "queued for the hotline report"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    detail = json.loads(message["Body"])["detail"]
    assert detail["case_id"] == case["case_id"] and detail["decision"] == "confirmed"
    for value in hash_values(LISTED):
        assert value not in message["Body"]

    with pytest.raises(review.DecisionConflict):
        review.release_case(stack.target, case["case_id"], "carol", "changed my mind")
    assert review.show_case(stack.target, case["case_id"])["decision"] == "confirmed"


def test_a_decision_needs_who_and_why(stack):
    case = quarantined_case(stack)
    with pytest.raises(ValueError):
        review.release_case(stack.target, case["case_id"], "alice", " ")
    with pytest.raises(review.CaseNotFound):
        review.confirm_case(stack.target, "no-such-case", "bob", "why")


# -- reading and audit ----------------------------------------------------------------------------


def test_show_hides_hashes_unless_asked_and_list_filters(stack):
    case = quarantined_case(stack)
    shown = review.show_case(stack.target, case["case_id"])
    assert fingerprint(LISTED).sha256 not in json.dumps(shown)
    assert review.show_case(stack.target, case["case_id"], include_hashes=True)["hashes"]["sha256"] == (
        fingerprint(LISTED).sha256
    )
    assert review.list_cases(stack.target, decision="none")[0]["case_id"] == case["case_id"]
    assert review.list_cases(stack.target, status="released") == []


def test_audit_export_is_json_lines_of_every_change_without_hashes(stack):
    case = quarantined_case(stack)
    review.release_case(stack.target, case["case_id"], "alice", "stock photo")
    lines = list(review.export_audit(stack.target))
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert {r["case_id"] for r in records} == {case["case_id"]}
    assert [r["what"] for r in records] == [
        "opened",
        "quarantine move: quarantined",
        "notified",
        "release started",
        "allowlisted",
        "restored",
        "released",
        "release announced",
    ]
    assert all(r["at"] and r["who"] for r in records)
    text = "\n".join(lines)
    for value in hash_values(LISTED):
        assert value not in text


# -- the allowlist itself -------------------------------------------------------------------------


def test_allowlist_is_exact_bytes_and_the_references_seen(stack):
    allow = Allowlist(stack.target.references)
    sha = "ab" * 32
    allow.add(sha, 10, [("list-a", "r1")], "case-1", "alice", "2024-05-01T00:00:00+00:00")
    allow.add(sha, 10, [("list-a", "r1")], "case-1", "alice", "2024-05-02T00:00:00+00:00")  # a retry
    seen = [Match("sha256", 0, "list-a", "r1", True)]
    assert allow.check(sha, seen, size=10).case_ids == ("case-1",)
    assert "case-1" in allow.check(sha, seen).reason and sha not in allow.check(sha, seen).reason
    assert allow.check("cd" * 32, seen) is None  # other bytes
    assert allow.check(sha, seen, size=11) is None
    assert allow.check(sha, [*seen, Match("pdq", 3, "list-b", "r9", True)]) is None  # a reference not reviewed
    # the sync's readers never see an allow item
    references = stack.target.references
    item = references.client.get_item(TableName=references.name, Key={"pk": {"S": allow_pk(sha)}})
    assert "algorithm" not in item["Item"] and "live" not in item["Item"]
    assert list(references.live_hashes(["sha256"])) != []
    assert all(h != sha for _, h in references.live_hashes(["sha256"]))
