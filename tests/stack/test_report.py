"""Hotline reports (`hashcheck.response.report` and functions/report/app.py) against a fake hotline on 127.0.0.1
(tests/fake_provider.py's server, taught POST here), with the case table and secret on moto.

The fake hotline honours `Idempotency-Key` the way the report contract asks: a key it has seen gets
the report it already filed. "Exactly one report" is counted on the hotline's side. Hashes are of
generated benign bytes that the tests pretend are listed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid

import boto3
import pytest
from moto import mock_aws

from hashcheck.matching.matcher import Match, Result
from hashcheck.matching.stores.remote import RemoteRetry
from hashcheck.objects import ObjectRef
from hashcheck.response.cases import Cases
from hashcheck.response.quarantine import QuarantineResult
from hashcheck.response.report import (
    ALREADY_REPORTED,
    REPORTED,
    SKIPPED,
    ReportConfig,
    Reporter,
    ReportFailed,
    build_payload,
)
from hashcheck.tables.case_table import CaseTable
from hashcheck.tools import sandbox
from tests.fake_provider import FakeHotline
from tests.helpers import benign_fingerprint

REGION = "us-east-1"
AUTH = "Bearer hotline-t0ken"
FP = benign_fingerprint("listed")  # pretend-listed: random bytes, not a picture
HASHES = [FP.md5, FP.sha1, FP.sha256, FP.pdq, FP.phash]
RESULT = Result("match", [Match("sha256", 0, "hotline-a", "ref-17", True)])
MOVED = QuarantineResult("move", "evidence", "evidence/x/users/7/photo 1.jpg", "ev1", True, True)
NO_WAIT = RemoteRetry(attempts=4, sleep=lambda _s: None)


@pytest.fixture()
def hotline():
    hotline = FakeHotline(AUTH)
    with hotline.provider:
        yield hotline


@pytest.fixture()
def aws():
    with pytest.MonkeyPatch.context() as env:
        for name, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            ("AWS_DEFAULT_REGION", REGION),
        ):
            env.setenv(name, value)
        env.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
        with mock_aws():
            ddb, secrets = (
                boto3.client("dynamodb", region_name=REGION),
                boto3.client("secretsmanager", region_name=REGION),
            )
            table = f"cases-{uuid.uuid4().hex[:8]}"
            ddb.create_table(**CaseTable.definition(table))
            secrets.create_secret(Name="hashcheck/hotline", SecretString=AUTH)
            yield {"ddb": ddb, "secrets": secrets, "table": table, "cases": Cases(CaseTable(ddb, table))}


def filed_case(aws, decision: str | None = "confirmed", key: str = "users/7/photo 1.jpg") -> str:
    cases = aws["cases"]
    obj = ObjectRef("uploads", key, "v1", "etag1", FP.size)
    uploader = {"principalId": "AWS:AIDAEXAMPLE", "sourceIPAddress": "198.51.100.7"}
    case = cases.open_case(
        obj, FP, RESULT, 42, uploader, "2024-05-01T12:00:10+00:00", uploaded_at="2024-05-01T12:00:00Z"
    )
    cases.record_quarantine(case["case_id"], MOVED)
    if decision:
        cases.table.decide(case["case_id"], decision, "bob", "reviewed")
    return case["case_id"]


def reporter(aws, hotline, mode: str = "confirmed", clock=None) -> Reporter:
    config = ReportConfig(
        endpoint=hotline.url,
        case_table=aws["table"],
        mode=mode,
        secret_id="hashcheck/hotline",
        reporter={"company": "Example Hosting", "email": "abuse@hoster.example"},
        allow_insecure_loopback=True,
    )
    extra = {"now": clock} if clock else {}
    return Reporter(config, aws["cases"].table, aws["secrets"], retry=NO_WAIT, **extra)


def test_endpoint_failing_twice_then_succeeding_gives_exactly_one_report(aws, hotline, caplog):
    case_id = filed_case(aws)
    hotline.provider.fail_next = 2
    with caplog.at_level("DEBUG"):
        outcome = reporter(aws, hotline).report(case_id)
    assert (outcome.result, outcome.report_id) == (REPORTED, "R-1")
    assert len(hotline.reports) == 1
    posts = hotline.posts()
    assert len(posts) == 3  # 503, 503, 201
    assert len({headers["idempotency-key"] for _, _, headers in posts}) == 1
    assert all(headers["authorization"] == AUTH for _, _, headers in posts)

    case = aws["cases"].get(case_id)
    assert case["report_id"] == "R-1" and case["reported_at"] and case["report"]["attempts"] == 1
    assert case["history"][-1]["what"] == "reported" and case["history"][-1]["detail"]["report_id"] == "R-1"
    assert "report_lease_until" not in case

    payload = json.loads(hotline.bodies[-1])  # the hotline gets the hashes...
    (file,) = payload["files"]
    assert {h["hash_type"]: h["value"] for h in file["original_file_hash"]}["SHA256"] == FP.sha256
    assert file["original_file_name"] == "photo 1.jpg"
    assert file["ip_capture_event"] == [
        {"ip_address": "198.51.100.7", "event_name": "Upload", "date_time": "2024-05-01T12:00:00Z"}
    ]
    assert payload["incident_summary"]["incident_date_time"] == "2024-05-01T12:00:10+00:00"
    logs = "\n".join(str(r.__dict__) for r in caplog.records if r.name.split(".")[0] == "hashcheck")
    assert "retry" in logs
    for value in [*HASHES, AUTH]:  # ...the logs never, nor the secret
        assert value not in logs


def test_a_duplicate_message_makes_no_second_request(aws, hotline):
    case_id = filed_case(aws)
    report = reporter(aws, hotline)
    assert report.report(case_id).result == REPORTED
    assert report.report(case_id).result == ALREADY_REPORTED
    assert len(hotline.posts()) == 1 and len(hotline.reports) == 1


def test_a_crash_after_the_hotline_accepted_reports_once(aws, hotline):
    """The endpoint filed the report, then recording it failed: the retry posts again with the same key."""
    case_id = filed_case(aws)
    clock = {"t": 1_000_000.0}
    report = reporter(aws, hotline, clock=lambda: clock["t"])
    calls = {"n": 0}

    def crash_on_record(params, **_):
        if "reported_at = :at" in params.get("UpdateExpression", ""):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("the function timed out")

    aws["ddb"].meta.events.register("before-parameter-build.dynamodb.UpdateItem", crash_on_record)
    with pytest.raises(RuntimeError):
        report.report(case_id)
    assert aws["cases"].get(case_id).get("reported_at") is None

    clock["t"] += 10  # the message comes back while the crashed attempt's lease still runs
    with pytest.raises(Exception, match=case_id):
        report.report(case_id)
    clock["t"] += 600  # the lease has expired
    outcome = report.report(case_id)
    assert (outcome.result, outcome.report_id) == (REPORTED, "R-1")
    assert len(hotline.posts()) == 2 and len(hotline.reports) == 1  # called twice, reported once
    assert aws["cases"].get(case_id)["report"]["attempts"] == 2


def test_an_endpoint_down_for_good_fails_the_message_and_notes_it(aws, hotline):
    case_id = filed_case(aws)
    hotline.provider.fail_next = 10
    with pytest.raises(ReportFailed, match="after 4 attempts"):
        reporter(aws, hotline).report(case_id)
    case = aws["cases"].get(case_id)
    assert case["history"][-1]["what"] == "report failed" and "report_lease_until" not in case
    hotline.provider.fail_next = 0
    assert reporter(aws, hotline).report(case_id).result == REPORTED  # the queue's next delivery
    assert len(hotline.reports) == 1


def test_a_refusal_is_not_retried(aws, hotline):
    case_id = filed_case(aws)
    hotline.provider.require = ("Authorization", "something else")
    with pytest.raises(ReportFailed, match="HTTP 401"):
        reporter(aws, hotline).report(case_id)
    assert len(hotline.posts()) == 2  # the first try, and one after reading the secret again


def test_which_cases_are_reported(aws, hotline):
    unreviewed = filed_case(aws, decision=None, key="a.jpg")
    released = filed_case(aws, decision="released", key="b.jpg")
    assert reporter(aws, hotline).report(unreviewed).result == SKIPPED
    assert reporter(aws, hotline, mode="all").report(released).result == SKIPPED
    assert reporter(aws, hotline).report("no-such-case").result == SKIPPED
    assert hotline.posts() == []
    assert reporter(aws, hotline, mode="all").report(unreviewed).result == REPORTED


def test_https_only_unless_the_test_opts_in():
    for url in ("http://hotline.example/reports", "http://127.0.0.1:9/reports", "https://169.254.169.254/x"):
        with pytest.raises(ValueError):
            ReportConfig(endpoint=url, case_table="t")
    assert ReportConfig(endpoint="https://hotline.example/reports", case_table="t").host == "hotline.example"
    assert ReportConfig(endpoint="http://127.0.0.1:9/r", case_table="t", allow_insecure_loopback=True)


def test_the_report_function_handles_a_duplicate_message_in_one_batch(aws, hotline):
    case_id = filed_case(aws)
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "CASE_TABLE": aws["table"],
            "HOTLINE_REPORT_URL": hotline.url,
            "HOTLINE_REPORT_SECRET": "hashcheck/hotline",
            "HOTLINE_ALLOW_INSECURE_LOOPBACK": "true",
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "HashCheck",
        }.items():
            env.setenv(name, value)
        app = _load_report_function()
    event = {"detail-type": "HashCheck Case Confirmed", "source": "hashcheck", "detail": {"case_id": case_id}}
    records = [_sqs_record(json.dumps(event)) for _ in range(2)]
    response = app.handler({"Records": records}, sandbox.LambdaContext("ReportFunction"))
    assert response["batchItemFailures"] == []
    assert len(hotline.reports) == 1 and len(hotline.posts()) == 1


def _load_report_function():
    spec = importlib.util.spec_from_file_location("hashcheck_function_report", sandbox.ROOT / "functions/report/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _sqs_record(body: str) -> dict:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "r",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:report",
        "awsRegion": REGION,
    }


@pytest.mark.parametrize(
    ("quarantine", "held"),
    [
        ({**MOVED.as_dict(), "legal_hold": True}, True),
        # a copy left when the source vanished, unverified: held all the same, and the report says so
        (QuarantineResult("move", "evidence", "evidence/x/a.jpg", "ev1", False, False, True, True).as_dict(), True),
        (QuarantineResult("tag-only", None, None, None, False, False).as_dict(), False),
        ({k: v for k, v in MOVED.as_dict().items() if k != "legal_hold"}, True),  # filed before the field
    ],
)
def test_the_report_says_whether_the_evidence_is_held(quarantine, held):
    case = {"case_id": "c", "bucket": "uploads", "key": "a.jpg", "quarantine": quarantine, "hashes": {}}
    (file,) = build_payload(case, {"company": "Example Hosting"}, "k")["files"]
    assert file["evidence_preserved"]["legal_hold"] is held
