"""Every AWS call the stack makes, held to the policies AWS would apply, offline.

moto enforces no IAM, bucket, key, topic or queue policy, so the sandbox tests would pass with a stack that
AWS refuses. Here the whole life of a stack runs in the sandbox (a list sync, uploads of every kind through
the scan handler, a re-match, a backfill batch, a reviewer's release and confirmation, a hotline report,
the CLI), every call is recorded with the principal it runs as on AWS, and each call is evaluated by
`tests.iam.evaluator` against the policies rendered from template.yaml: the function roles' identity
policies (inline, the stack's managed policies, SAM's AWS managed ones), and the bucket, key, topic and
queue policies with their conditions. What AWS services do for the stack (alarms publishing, rules
delivering, Lambda polling) is read from the template and checked the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from moto import mock_aws
from moto.s3.models import s3_backends

from hashcheck.aws import Clients
from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.lists import listformat
from hashcheck.lists.build import references_for
from hashcheck.objects import ObjectRef, get_status
from hashcheck.response import review
from hashcheck.response.report import ReportConfig, Reporter
from hashcheck.tables.case_table import CaseTable
from hashcheck.tables.fingerprint_table import FingerprintTable
from hashcheck.tools import samples, sandbox
from hashcheck.tools.cli import main as cli
from hashcheck.tools.wrappers import zipped
from tests.fake_provider import FakeHotline
from tests.helpers import drain
from tests.iam.calls import Recorder, Request, requests_for, service_requests
from tests.iam.evaluator import decide
from tests.iam.stack import ACCOUNT, StackPolicies

LIST_ID = "perm-list"
LIST_KEY = f"lists/{LIST_ID}.jsonl"
SOURCES = json.dumps([{"name": LIST_ID, "type": "s3", "key": LIST_KEY, "list_id": LIST_ID}])
CUSTOMER_BUCKET = "customer-photos"  # an existing bucket the stack protects
PARAMETERS = {
    "ListSources": SOURCES,
    "HotlineReportUrl": "https://hotline.example/reports",
    "AlertEmail": "a@b.c",
    "ProtectedBucketNames": CUSTOMER_BUCKET,
}

LISTED = samples.jpeg(samples.picture(301))
LATER = samples.jpeg(samples.picture(302))  # uploaded clean, listed afterwards: the re-match finds it
WEAK = samples.jpeg(samples.picture(303))  # listed by its pHash alone: held for review
RELEASED = samples.png(samples.picture(304))  # matched, then released as a false positive
CLEAN = samples.jpeg(samples.picture(305))


@dataclass
class Run:
    stack: sandbox.Stack
    recorder: Recorder
    policies: StackPolicies
    customer_bucket_policy: dict


def rows(picture: bytes, ref_id: str, only: str | None = None) -> list:
    refs = references_for(fingerprint(picture), LIST_ID, ref_id)
    return [r for r in refs if only is None or r.algorithm == only]


def sync(stack: sandbox.Stack, listed: list) -> dict:
    text = "".join(listformat.to_json(r) + "\n" for r in listed)
    stack.client("s3").put_object(Bucket=stack.outputs["ArtifactsBucketName"], Key=LIST_KEY, Body=text.encode())
    handler = sandbox.load_handler(stack, "SyncFunction", "sync")
    return handler.handler({}, sandbox.LambdaContext(stack.functions["SyncFunction"]))


def scan_all(stack: sandbox.Stack) -> None:
    scan = sandbox.load_handler(stack, "ScanFunction", "scan")
    sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], scan.handler, "ScanFunction")


def cases(stack: sandbox.Stack) -> dict[str, dict]:
    table = CaseTable(stack.client("dynamodb"), stack.outputs["CaseTableName"])
    return {c["key"]: c for c in table.scan_all()}


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    """One stack's life, recorded."""
    sandbox.fake_credentials()
    with mock_aws():
        stack = sandbox.deploy(PARAMETERS)
        recorder = Recorder().install()
        s3, upload = stack.client("s3"), stack.outputs["UploadBucketName"]
        customer_bucket_policy = _protect_the_customer_bucket(stack)
        sync(stack, rows(LISTED, "listed") + rows(RELEASED, "released") + rows(WEAK, "weak", only="phash"))
        for key, body in (
            ("u/listed.jpg", LISTED),
            ("u/later.jpg", LATER),
            ("u/weak.jpg", WEAK),
            ("u/released.png", RELEASED),
            ("u/clean.jpg", CLEAN),
            ("u/broken.jpg", CLEAN[: len(CLEAN) // 3]),
            ("u/notes.txt", b"not a picture"),
            ("u/backup.zip", zipped({"notes.txt": b"not a picture", "photos/clean.jpg": CLEAN})),
        ):
            s3.put_object(Bucket=upload, Key=key, Body=body)
        s3.put_object(Bucket=CUSTOMER_BUCKET, Key="site/listed.jpg", Body=LISTED)
        scan_all(stack)
        _judge_the_unjudged(stack)
        _rematch(stack)
        _backfill(stack)
        _review(stack)
        _report(stack)
        _cli(stack, recorder)
        yield Run(stack, recorder, _policies(stack, customer_bucket_policy), customer_bucket_policy)


def _policies(stack: sandbox.Stack, customer_bucket_policy: dict) -> StackPolicies:
    return StackPolicies.of(stack, bucket_policies={CUSTOMER_BUCKET: customer_bucket_policy})


def _protect_the_customer_bucket(stack: sandbox.Stack) -> dict:
    """Protect an existing bucket as its admin would; return the policy it got, held outside moto.

    moto applies a bucket policy on its own, ignoring every condition, so our deny-unless statements
    would refuse everyone there; the evaluator judges the policy instead."""
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=CUSTOMER_BUCKET, CreateBucketConfiguration={"LocationConstraint": sandbox.REGION})
    s3.put_bucket_versioning(Bucket=CUSTOMER_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=CUSTOMER_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    with sandbox.acting_as("admin"):
        cli(["protect", CUSTOMER_BUCKET, "--stack", sandbox.STACK])  # exits 1: moto never reports EventBridge on
        policy = json.loads(s3.get_bucket_policy(Bucket=CUSTOMER_BUCKET)["Policy"])
    s3_backends[ACCOUNT]["aws"].get_bucket(CUSTOMER_BUCKET).policy = None
    return policy


def _judge_the_unjudged(stack: sandbox.Stack) -> None:
    """Uploads whose event never reached the scan (the sweep queues them) and whose scan died every
    time (the dead-letter function tags them), in the upload bucket and in the protected one."""
    s3, sqs, dlq = stack.client("s3"), stack.client("sqs"), stack.outputs["ScanDeadLetterQueueUrl"]
    buckets = (stack.outputs["UploadBucketName"], CUSTOMER_BUCKET)
    for bucket in buckets:
        s3.put_object(Bucket=bucket, Key="u/lost.jpg", Body=CLEAN)
        s3.put_object(Bucket=bucket, Key="u/dead.jpg", Body=CLEAN)
    for message in drain(stack, stack.outputs["ScanQueueUrl"]):  # no scan ever sees these events
        if json.loads(message["Body"])["detail"]["object"]["key"] == "u/dead.jpg":
            sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"])  # as the redrive would
    deadletter = sandbox.load_handler(stack, "DeadLetterFunction", "deadletter")
    sandbox.deliver(stack, dlq, deadletter.handler, "DeadLetterFunction")
    sweeper = sandbox.load_handler(stack, "SweepFunction", "sweep")
    sweeper.GRACE = timedelta(0)  # due at once
    assert sweeper.handler({}, sandbox.LambdaContext(stack.functions["SweepFunction"]))["queued"] == 2
    scan_all(stack)
    fingerprints = FingerprintTable(stack.client("dynamodb"), stack.outputs["FingerprintTableName"])
    clean = {(r["bucket"], r["key"]) for r in fingerprints.scan_all() if r["status"] == "clean"}
    for bucket in buckets:
        assert get_status(s3, ObjectRef(bucket, "u/lost.jpg")) is None and (bucket, "u/lost.jpg") in clean
        assert get_status(s3, ObjectRef(bucket, "u/dead.jpg")) == "error"


def _rematch(stack: sandbox.Stack) -> None:
    synced = sync(stack, rows(LISTED, "listed") + rows(RELEASED, "released") + rows(LATER, "later"))
    rematch = sandbox.load_handler(stack, "RematchFunction", "rematch")
    context = sandbox.LambdaContext(stack.functions["RematchFunction"])
    rematch.handler({"Records": sandbox.stream_records(stack)}, context)  # as the table's stream would
    artifacts, delta = stack.outputs["ArtifactsBucketName"], f"deltas/v{synced['version']:08d}.jsonl"
    listed = stack.client("s3").list_objects_v2(Bucket=artifacts, Prefix="fpindex/")["Contents"]
    batch = {"Items": [{"Key": o["Key"]} for o in listed], "BatchInput": {"delta_key": delta}}
    rematch.handler(batch, context)  # as RematchStateMachine's Distributed Map hands a batch of segments
    report = rematch.handler({"decide": delta}, context)  # and then its last step
    assert report["matched"] == 1
    with sandbox.acting_as("RematchFunction"):  # merging retires segments: its calls are checked too
        assert rematch.rematcher.stored.compact(max_segments=0)


def _backfill(stack: sandbox.Stack) -> None:
    s3, upload = stack.client("s3"), stack.outputs["UploadBucketName"]
    s3.put_object(Bucket=upload, Key="old/before-the-stack.jpg", Body=CLEAN)
    backfill = sandbox.load_handler(stack, "BackfillFunction", "backfill")
    items = [{"Key": "old/before-the-stack.jpg"}, {"Key": "u/clean.jpg"}]
    event = {"Items": items, "BatchInput": {"bucket": upload}}
    assert backfill.handler(event, sandbox.LambdaContext(stack.functions["BackfillFunction"]))["errors"] == 0


def _review(stack: sandbox.Stack) -> None:
    with sandbox.acting_as("reviewer"):
        target = review.Target.from_outputs(stack.outputs)
        found = cases(stack)
        review.release_case(target, found["u/released.png"]["case_id"], "alice", "a stock photo")
        review.confirm_case(target, found["u/weak.jpg"]["case_id"], "bob", "the listed picture, cropped")
        review.confirm_case(target, found["u/listed.jpg"]["case_id"], "bob", "the listed picture")
        list(review.export_audit(target))
    scan_all(stack)  # the scan path quarantines the confirmed review hold
    assert cases(stack)["u/weak.jpg"]["status"] == "quarantined"
    assert cases(stack)["site/listed.jpg"]["status"] == "quarantined"  # in the protected customer bucket


def _report(stack: sandbox.Stack) -> None:
    confirmed = cases(stack)["u/listed.jpg"]["case_id"]
    stack.client("secretsmanager").create_secret(Name="hashcheck/hotline-report", SecretString="token")
    hotline = FakeHotline()
    with hotline.provider, sandbox.acting_as("ReportFunction"):
        config = ReportConfig(
            endpoint=hotline.url,
            case_table=stack.outputs["CaseTableName"],
            secret_id="hashcheck/hotline-report",
            allow_insecure_loopback=True,
        )
        clients = Clients()
        Reporter(config, CaseTable(clients.dynamodb, config.case_table), clients.secretsmanager).report(confirmed)


def _cli(stack: sandbox.Stack, recorder: Recorder) -> None:
    with sandbox.acting_as("reviewer"):
        assert cli(["cases", "list", "--stack", sandbox.STACK]) == 0
    with sandbox.acting_as("admin"):  # an operator starts the stack's backfill; its roles do the scanning
        assert cli(["backfill", stack.outputs["UploadBucketName"], "--prefix", "u/", "--stack", sandbox.STACK]) == 0


# --- the checks ------------------------------------------------------------------------------------------------


def evaluate(policies: StackPolicies, principal_name: str, request: Request):
    principal = policies.principals.get(principal_name)
    arn = principal.arn if principal else principal_name  # a service principal
    identity = principal.policies if principal else []
    return decide(
        arn,
        request.action,
        request.resource,
        request.context,
        identity,
        policies.resource_policy(request.resource),
        ACCOUNT,
    )


def refusals(run: Run) -> list[str]:
    out = []
    for call in run.recorder.calls:
        for request in requests_for(call, run.policies):
            decision = evaluate(run.policies, call.principal, request)
            if not decision.allowed:
                out.append(
                    f"{call}: {request.action} on {request.resource} refused ({decision.reason} {decision.deny})"
                )
    for service in service_requests(run.policies):
        decision = evaluate(run.policies, service.principal, service.request)
        if not decision.allowed:
            request = service.request
            out.append(f"{service.principal} for {request.call}: {request.action} on {request.resource} refused")
    return out


def test_the_scenarios_made_the_calls_they_should(run):
    principals = {c.principal for c in run.recorder.calls}
    assert {
        "SyncFunction",
        "ScanFunction",
        "RematchFunction",
        "BackfillFunction",
        "reviewer",
        "ReportFunction",
    } <= principals
    operations = {(c.service, c.operation) for c in run.recorder.calls}
    by_scan = {(c.service, c.operation) for c in run.recorder.calls if c.principal == "ScanFunction"}
    assert ("dynamodb", "BatchWriteItem") in by_scan  # a container's member records
    for expected in [
        ("s3", "CopyObject"),
        ("s3", "PutObjectLegalHold"),
        ("s3", "DeleteObject"),
        ("sns", "Publish"),
        ("events", "PutEvents"),
        ("dynamodb", "BatchWriteItem"),
        ("s3", "PutObjectTagging"),
    ]:
        assert expected in operations


def test_every_call_is_allowed_by_the_policies_aws_would_apply(run):
    assert refusals(run) == []


def test_a_removed_grant_is_found(run):
    """The check can fail: without the sync's grant to clear its progress item, AWS would refuse it."""
    policies = _policies(run.stack, run.customer_bucket_policy)
    for document in policies.principals["SyncFunction"].policies:
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "ClearProgressOfAFinishedDelta"]
    refused = refusals(Run(run.stack, run.recorder, policies, run.customer_bucket_policy))
    assert refused and all("SyncFunction: dynamodb.DeleteItem" in r for r in refused)


def test_uploads_are_parsed_only_by_the_fingerprint_function(run):
    """The decoder is fenced off: the functions that tag, copy, hold and delete never read an upload's
    bytes, and the one that reads them (to parse) could not do any of that."""
    watched = {run.stack.outputs["UploadBucketName"], CUSTOMER_BUCKET}
    readers = {c.principal for c in run.recorder.calls if c.operation == "GetObject" and c.params["Bucket"] in watched}
    functions = {p for p in readers if p.endswith("Function")}
    assert functions == {"FingerprintFunction"}, readers
    parser = run.policies.principals["FingerprintFunction"]
    upload_object = f"{run.policies.arns['UploadBucket']}/u/x.jpg"
    evidence_object = f"{run.policies.arns['QuarantineBucket']}/evidence/c/x.jpg"
    for action, resource in (
        ("s3:PutObjectTagging", upload_object),
        ("s3:DeleteObjectVersion", upload_object),
        ("s3:PutObject", evidence_object),
        ("s3:PutObjectLegalHold", evidence_object),
        ("dynamodb:PutItem", run.policies.arns["FingerprintTable"]),
        ("dynamodb:UpdateItem", run.policies.arns["CaseTable"]),
    ):
        context = {"aws:PrincipalArn": parser.arn, "aws:SecureTransport": "true"}
        request = Request(action, resource, context)
        assert not evaluate(run.policies, "FingerprintFunction", request).allowed, action


def test_failed_runs_can_reach_their_dead_letter_queues(run):
    """Every asynchronous start and run has somewhere to go when it fails, and may send there."""
    queues = {arn: name for name, arn in run.policies.arns.items() if name.endswith("DLQ")}
    senders = {
        (s.principal, queues[s.request.resource])
        for s in service_requests(run.policies)
        if s.request.action == "sqs:SendMessage" and s.request.resource in queues
    }
    for function in ("SyncFunction", "SweepFunction"):
        assert (function, "ScheduledRunsDLQ") in senders  # Lambda sends a failed run as the function
        assert (f"{function}ScheduleRole", "ScheduledRunsDLQ") in senders  # the scheduler, one it could not start
    assert ("events.amazonaws.com", "RematchStartDLQ") in senders
    assert ("RematchFunction", "RematchStreamDLQ") in senders  # a stream batch that failed every retry
    assert refusals(run) == []  # and each of them may
