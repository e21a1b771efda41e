"""Fault injection across the scan and sync paths, on template.yaml deployed into moto (hashcheck.tools.sandbox).

Faults are AWS refusing a call (botocore `before-call` hooks on the handler's own clients raise the
ClientError AWS would), AWS answering partly (`after-call` hooks edit the parsed answer: unprocessed
keys, failed event entries), the Lambda dying between two steps (a hook raises a BaseException at
the k-th AWS call, which nothing in the function catches; the message then comes back after the
visibility timeout), duplicate,
out-of-order and racing deliveries, and a new version uploaded while the scan runs.

After every scenario the queue is drained and `check_invariants` holds:
  - each matched version is quarantined exactly once: gone from the upload bucket, one evidence
    version whose bytes hash to the original's SHA-256, legal hold ON, one case (quarantined,
    notified) and at least one alert for it (alerts are at-least-once, deduplicated by case id);
  - no clean object is deleted or changed (its bytes are the uploaded bytes; only its tag is ours);
  - every version left in the upload bucket carries a status in {clean, quarantined, unscannable,
    review, error};
  - nothing is tagged clean that was not scanned: a clean tag has a fingerprint record, status
    clean, whose SHA-256 is the version's actual content, and no clean version is a listed image.

One stack serves the whole module (deploying takes seconds); every scenario writes under its own key
prefix and checks only that prefix.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.lists import listformat
from hashcheck.lists.build import references_for
from hashcheck.tables.reference_table import Retry
from hashcheck.tools import samples, sandbox
from tests.helpers import Died, LambdaDied, alerts_inbox, drain, drain_bodies

LIST_ID = "fault-list"
LIST_KEY = f"lists/{LIST_ID}.jsonl"
LIST_SOURCES = json.dumps([{"name": LIST_ID, "type": "s3", "key": LIST_KEY, "list_id": LIST_ID}])
LISTED = samples.jpeg(samples.picture(1))
MATCH = samples.EDITS["jpeg-q50"](samples.picture(1))  # a near copy: found by PDQ, not by its exact hashes
CLEAN = samples.jpeg(samples.picture(50))
CLEAN_2 = samples.jpeg(samples.picture(51))
TEXT = b"shopping list: bread, milk\n"
FINAL = {"clean", "quarantined", "unscannable", "review", "error"}
NO_SLEEP = Retry(sleep=lambda _seconds: None)
_ids = itertools.count()


# --- the stack -------------------------------------------------------------------------------------


def _list_text(*seeds: int) -> bytes:
    rows = [row for seed in seeds for row in references_for(fingerprint(_listed(seed)), LIST_ID, f"ref-{seed}")]
    return "".join(listformat.to_json(r) + "\n" for r in rows).encode()


def _listed(seed: int) -> bytes:
    return samples.jpeg(samples.picture(seed))


def _sync_event() -> dict:
    return json.loads((sandbox.ROOT / "events" / "schedule.json").read_text())


@pytest.fixture(scope="module")
def stack():
    sandbox.fake_credentials()
    with mock_aws():
        # one listed picture quarantined over and over: the per-reference breaker (tested on its own) off
        # clean objects tagged too: every call the scan path can make is in the fault matrix
        parameters = {"ListSources": LIST_SOURCES, "ReferenceBreakerObjects": "5000", "TagCleanObjects": "true"}
        stack = sandbox.deploy(parameters)
        s3 = stack.client("s3")
        s3.put_object(Bucket=stack.outputs["ArtifactsBucketName"], Key=LIST_KEY, Body=_list_text(1))
        stack.sync = sandbox.load_handler(stack, "SyncFunction", "sync")
        report = stack.sync.handler(_sync_event(), sandbox.LambdaContext(stack.functions["SyncFunction"]))
        assert report["ok"] and report["sources"][0]["added"] > 0
        _load_scan_handler(stack)
        stack.inbox = alerts_inbox(stack, "fault-alerts")
        stack.alerts, stack.dead = [], []  # everything drained so far, across scenarios
        yield stack


def _load_scan_handler(stack) -> None:
    """The scan handler, warmed up by one scan (index loaded), with its version check parked so that
    every scan makes the same AWS calls in the same order (the death matrix counts on it)."""
    stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
    stack.scan.store.store.table.retry = NO_SLEEP  # unprocessed keys are retried without the backoff's sleeps
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    s3.put_object(Bucket=bucket, Key="warm-up/clean.jpg", Body=CLEAN)
    sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], stack.scan.handler, "ScanFunction")
    stack.scan.store.check_seconds = 10**9
    stack.scan.store.check()  # the next check is due now + 10**9 s: none lands inside a counted scan


def handler_clients(stack) -> dict[str, list]:
    """The clients a scan calls AWS with, by service: the scan function's, and the fingerprint
    function's S3 client (uploads are read there)."""
    scanner = stack.scan.scanner
    return {
        "s3": [stack.scan.s3, sandbox.invoked(stack, "FingerprintFunction").s3],
        "dynamodb": [stack.scan.ddb],
        "sns": [scanner.cases.sns],
        "events": [scanner.cases.events.client],
    }


def every_client(stack) -> list:
    return [client for clients in handler_clients(stack).values() for client in clients]


@dataclass
class Scenario:
    stack: object
    prefix: str
    expected: dict = field(default_factory=dict)  # (key, version) -> (expectation, body)
    hooks: list = field(default_factory=list)
    deaths: int = 0

    @property
    def bucket(self) -> str:
        return self.stack.outputs["UploadBucketName"]

    def put(self, name: str, body: bytes, expect: str) -> tuple[str, str]:
        key = f"{self.prefix}/{name}"
        version = self.stack.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)["VersionId"]
        self.expected[(key, version)] = (expect, body)
        return key, version

    def hook(self, client, event: str, function) -> None:
        client.meta.events.register(event, function, unique_id=f"fault-{id(function)}")
        self.hooks.append((client, event, function))

    def unhook(self) -> None:
        for client, event, function in self.hooks:
            client.meta.events.unregister(event, function, unique_id=f"fault-{id(function)}")
        self.hooks.clear()

    # -- faults ---------------------------------------------------------------------------------

    def refuse(self, service: str, operation: str, code: str, status: int, times: int | None = 1) -> dict:
        """The next `times` calls (None: all) of `operation` are refused by AWS with `code`."""
        calls = {"n": 0}

        def refuse(**_):
            calls["n"] += 1
            if times is None or calls["n"] <= times:
                error = {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}
                raise ClientError(error, operation)

        for client in handler_clients(self.stack)[service]:
            self.hook(client, f"before-call.{client.meta.service_model.endpoint_prefix}.{operation}", refuse)
        return calls

    def die_at_call(self, k: int, when: str = "before") -> dict:
        """The function dies at its k-th AWS call: before the call is sent, or after its answer came back."""
        calls = {"n": 0, "log": []}

        def count(model, **_):
            calls["n"] += 1
            calls["log"].append(model.name)
            if calls["n"] == k:
                raise LambdaDied(f"died {when} call {k} ({model.name})")

        for client in every_client(self.stack):
            self.hook(client, f"{when}-call", count)
        return calls

    # -- delivery -------------------------------------------------------------------------------

    def deliver(self, batches: int = 100) -> None:
        """Hand the queue's messages to the handler, a batch at a time, until it is empty.

        A message that failed, or whose invocation died, comes back after the queue's visibility
        timeout (720 s); the sandbox's queue redelivers at once."""
        stack, url = self.stack, self.stack.outputs["ScanQueueUrl"]

        def handler(event, context):
            try:
                return stack.scan.handler(event, context)
            except LambdaDied as death:
                raise Died(str(death)) from None

        for _ in range(batches):
            responses = sandbox.deliver(stack, url, handler, "ScanFunction", max_batches=1)
            if not responses:
                return
            self.deaths += sum(1 for r in responses if r.get("functionError") == "Died")
        raise AssertionError("the queue never drained")


@pytest.fixture()
def scenario(stack, request):
    s = Scenario(stack, f"s{next(_ids)}-{request.node.name[:40]}".replace("[", "-").replace("]", ""))
    yield s
    s.unhook()


# --- invariants ------------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tags(s3, bucket: str, key: str, version: str) -> dict:
    tag_set = s3.get_object_tagging(Bucket=bucket, Key=key, VersionId=version)["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def _plain(item: dict) -> dict:
    return {k: next(iter(v.values())) for k, v in item.items()}


def check_invariants(stack, expected: dict, prefix: str) -> None:
    """The invariants of the module docstring, for the objects under `prefix`.

    `expected`: (key, version id) -> (expectation, uploaded bytes); expectation is `match` (quarantined
    and moved), `blocked` (a match whose quarantine could not finish: still in place, blocked, one case
    at most, alerted, in the DLQ), `clean`, `unscannable` or `error` (every attempt failed: blocked, in the DLQ).
    """
    s3, ddb, sqs = stack.client("s3"), stack.client("dynamodb"), stack.client("sqs")
    upload, evidence_bucket = stack.outputs["UploadBucketName"], stack.outputs["QuarantineBucketName"]
    attrs = sqs.get_queue_attributes(QueueUrl=stack.outputs["ScanQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"

    stack.dead += drain_bodies(stack, stack.outputs["ScanDeadLetterQueueUrl"])
    dead_keys = {m["detail"]["object"]["key"] for m in stack.dead if "detail" in m}
    for message in drain_bodies(stack, stack.inbox):
        stack.alerts.append(json.loads(message["Message"]))
    alerted = {a["case_id"] for a in stack.alerts}

    listing = s3.list_object_versions(Bucket=upload, Prefix=prefix + "/")
    assert not listing.get("DeleteMarkers"), "a bare delete left data behind a delete marker"
    live = {(v["Key"], v["VersionId"]) for v in listing.get("Versions", [])}
    fingerprints = {
        (i["key"], i.get("version_id")): i
        for i in map(_plain, ddb.scan(TableName=stack.outputs["FingerprintTableName"])["Items"])
        if i["key"].startswith(prefix + "/")
    }
    cases = [
        i for i in ddb.scan(TableName=stack.outputs["CaseTableName"])["Items"] if i["key"]["S"].startswith(prefix + "/")
    ]
    evidence = [
        v
        for v in s3.list_object_versions(Bucket=evidence_bucket, Prefix="evidence/").get("Versions", [])
        if v["Key"].split("/", 2)[2].startswith(prefix + "/")
    ]

    # every version left is in a final, known state; a clean tag means it was scanned as clean
    for key, version in live:
        status = _tags(s3, upload, key, version).get("hashcheck-status")
        assert status in FINAL, f"{key} {version} left readable with status {status!r}"
        body = s3.get_object(Bucket=upload, Key=key, VersionId=version)["Body"].read()
        if status == "clean":
            record = fingerprints.get((key, version))
            assert record and record["status"] == "clean" and record["sha256"] == _sha(body), f"{key}: clean unscanned"
            assert expected.get((key, version), ("?",))[0] not in ("match", "blocked"), f"{key}: listed yet clean"

    matched = 0
    for (key, version), (expect, body) in expected.items():
        mine = [c for c in cases if c["key"]["S"] == key and c["version_id"]["S"] == version]
        copies = [e for e in evidence if e["Key"].endswith("/" + key)]
        copies = [
            e
            for e in copies
            if s3.head_object(Bucket=evidence_bucket, Key=e["Key"], VersionId=e["VersionId"])["Metadata"].get(
                "hashcheck-source-version-id"
            )
            == version
        ]
        if expect == "match":
            matched += 1
            assert (key, version) not in live, f"{key}: matched version still in the upload bucket"
            assert len(copies) == 1, f"{key}: {len(copies)} evidence versions"
            (copy,) = copies
            data = s3.get_object(Bucket=evidence_bucket, Key=copy["Key"], VersionId=copy["VersionId"])["Body"].read()
            assert _sha(data) == _sha(body), f"{key}: evidence differs from the original"
            hold = s3.get_object_legal_hold(Bucket=evidence_bucket, Key=copy["Key"], VersionId=copy["VersionId"])
            assert hold["LegalHold"]["Status"] == "ON"
            assert len(mine) == 1, f"{key}: {len(mine)} cases"
            case = _plain(mine[0])
            assert case["status"] == "quarantined" and case["notified"] is True, case["status"]
            assert case["case_id"] in alerted, f"{key}: no alert"
            assert case["quarantine"]["evidence_version_id"]["S"] == copy["VersionId"]
        elif expect == "blocked":
            assert (key, version) in live, f"{key}: lost"
            assert _tags(s3, upload, key, version)["hashcheck-status"] in ("quarantined", "error")
            assert len(mine) <= 1 and len(copies) <= 1 and key in dead_keys
            for case in map(_plain, mine):  # a match is announced even when its evidence cannot be secured
                assert case["case_id"] in alerted, f"{key}: a match with no alert"
        else:
            assert (key, version) in live, f"{key}: a {expect} object was deleted"
            data = s3.get_object(Bucket=upload, Key=key, VersionId=version)["Body"].read()
            assert data == body, f"{key}: content changed"
            assert _tags(s3, upload, key, version)["hashcheck-status"] == expect
            assert mine == [] and copies == []
            if expect == "error":
                assert key in dead_keys, f"{key}: error without a dead letter"
    acting = {k for k, (e, _) in expected.items() if e in ("match", "blocked")}
    assert {(c["key"]["S"], c["version_id"]["S"]) for c in cases} <= acting, "a case for an object that did not match"
    assert len(cases) >= matched


def _scan_and_check(scenario: Scenario) -> None:
    scenario.deliver()
    scenario.unhook()
    check_invariants(scenario.stack, scenario.expected, scenario.prefix)


# --- S3, DynamoDB, SNS, EventBridge refusing calls ------------------------------------------------

S3_THROTTLE, S3_5XX = ("SlowDown", 503), ("InternalError", 500)
DDB_THROTTLE = ("ProvisionedThroughputExceededException", 400)
TRANSIENT = [
    ("s3", "GetObject", *S3_THROTTLE),
    ("s3", "GetObject", *S3_5XX),
    ("s3", "GetObjectTagging", *S3_5XX),
    ("s3", "PutObjectTagging", *S3_THROTTLE),
    ("s3", "HeadObject", *S3_5XX),
    ("s3", "CopyObject", *S3_THROTTLE),
    ("s3", "CopyObject", *S3_5XX),
    ("s3", "PutObjectLegalHold", *S3_5XX),
    ("s3", "DeleteObject", *S3_THROTTLE),
    ("s3", "DeleteObject", *S3_5XX),
    ("dynamodb", "BatchGetItem", *DDB_THROTTLE),
    ("dynamodb", "GetItem", *DDB_THROTTLE),
    ("dynamodb", "PutItem", *DDB_THROTTLE),
    ("dynamodb", "UpdateItem", *DDB_THROTTLE),
    ("dynamodb", "UpdateItem", "InternalServerError", 500),
    ("sns", "Publish", "Throttled", 400),
    ("sns", "Publish", "InternalError", 500),
    ("events", "PutEvents", "ThrottlingException", 400),
    ("events", "PutEvents", "InternalException", 500),
]


@pytest.mark.parametrize("times", [1], ids=["once"])
@pytest.mark.parametrize(("service", "operation", "code", "status"), TRANSIENT, ids=lambda v: str(v))
def test_transient_refusals_are_retried_to_the_same_end(scenario, service, operation, code, status, times):
    scenario.put("listed.jpg", MATCH, "match")
    scenario.put("clean.jpg", CLEAN, "clean")
    scenario.put("notes.txt", TEXT, "clean")
    calls = scenario.refuse(service, operation, code, status, times)
    _scan_and_check(scenario)
    assert calls["n"] > times, f"{operation} was never retried"


@pytest.mark.parametrize(
    ("service", "operation", "code", "status"),
    [("s3", "GetObject", *S3_5XX), ("dynamodb", "BatchGetItem", *DDB_THROTTLE)],
    ids=["s3-GetObject", "dynamodb-BatchGetItem"],
)
def test_a_lookup_that_always_fails_blocks_the_object_as_error_never_clean(scenario, service, operation, code, status):
    scenario.put("clean.jpg", CLEAN, "error")
    scenario.put("listed.jpg", MATCH, "error")
    scenario.refuse(service, operation, code, status, times=None)
    _scan_and_check(scenario)


@pytest.mark.parametrize("operation", ["CopyObject", "PutObjectLegalHold", "DeleteObject"])
def test_a_quarantine_step_that_always_fails_leaves_the_match_blocked_in_place(scenario, operation):
    scenario.put("listed.jpg", MATCH, "blocked")
    scenario.put("clean.jpg", CLEAN, "clean")
    scenario.refuse("s3", operation, *S3_5XX, times=None)
    _scan_and_check(scenario)


# --- partial answers ---------------------------------------------------------------------------------


def _unprocessed_batch_get(scenario: Scenario, times: int | None) -> dict:
    """BatchGetItem answers every key as unprocessed, `times` times (None: always)."""
    (client,), calls, asked = handler_clients(scenario.stack)["dynamodb"], {"n": 0}, {}

    def remember(params, **_):
        asked["request"] = params["RequestItems"]

    def unprocessed(parsed, **_):
        calls["n"] += 1
        if times is None or calls["n"] <= times:
            parsed["Responses"] = {name: [] for name in asked["request"]}
            parsed["UnprocessedKeys"] = asked["request"]

    scenario.hook(client, "before-parameter-build.dynamodb.BatchGetItem", remember)
    scenario.hook(client, "after-call.dynamodb.BatchGetItem", unprocessed)
    return calls


def test_unprocessed_keys_are_asked_again(scenario):
    scenario.put("listed.jpg", MATCH, "match")
    scenario.put("exact.jpg", LISTED, "match")
    scenario.put("clean.jpg", CLEAN, "clean")
    calls = _unprocessed_batch_get(scenario, times=3)
    _scan_and_check(scenario)
    assert calls["n"] > 3


def test_keys_that_stay_unprocessed_never_read_as_clean(scenario):
    scenario.put("clean.jpg", CLEAN, "error")
    scenario.put("exact.jpg", LISTED, "error")
    _unprocessed_batch_get(scenario, times=None)
    _scan_and_check(scenario)


def test_eventbridge_accepting_the_call_but_failing_the_entry_is_retried(scenario):
    (client,), calls = handler_clients(scenario.stack)["events"], {"n": 0}

    def failed_entry(parsed, **_):
        calls["n"] += 1
        if calls["n"] == 1:
            parsed["FailedEntryCount"] = 1
            parsed["Entries"] = [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected"}]

    scenario.hook(client, "after-call.events.PutEvents", failed_entry)
    scenario.put("listed.jpg", MATCH, "match")
    _scan_and_check(scenario)
    assert calls["n"] == 2


# --- the Lambda dying between any two steps --------------------------------------------------------

MATCH_CALLS = 29  # AWS calls of a warm scan of a match (asserted below)
CLEAN_CALLS = 5


DEATHS = [(k, "before") for k in range(1, MATCH_CALLS + 1)] + [(k, "after") for k in range(13, 22, 2)]


@pytest.mark.parametrize(("k", "when"), DEATHS)
def test_death_at_any_step_of_a_match_then_redelivery_finishes_once(scenario, k, when):
    scenario.put("listed.jpg", MATCH, "match")
    calls = scenario.die_at_call(k, when)
    _scan_and_check(scenario)
    assert scenario.deaths == (1 if calls["n"] >= k else 0)


@pytest.mark.parametrize("k", range(1, CLEAN_CALLS + 1))
def test_death_at_any_step_of_a_clean_scan(scenario, k):
    scenario.put("clean.jpg", CLEAN, "clean")
    scenario.die_at_call(k)
    _scan_and_check(scenario)
    assert scenario.deaths == 1


def test_the_death_matrix_covers_every_call_of_a_scan(scenario):
    """If the scan gains AWS calls, MATCH_CALLS / CLEAN_CALLS must grow so that every gap is covered."""
    counted, logs = [], []
    for body, name in ((MATCH, "listed.jpg"), (CLEAN, "clean.jpg")):
        scenario.put(name, body, "match" if body is MATCH else "clean")
        calls = scenario.die_at_call(10_000)
        scenario.deliver()
        scenario.unhook()
        counted.append(calls["n"])
        logs.append(calls["log"])
    check_invariants(scenario.stack, scenario.expected, scenario.prefix)
    assert counted == [MATCH_CALLS, CLEAN_CALLS], (counted, logs)  # exactly: a death after the last call is no gap


# --- deliveries: duplicate, out of order, racing, a new version mid-scan ----------------------------


def _queued(stack) -> list[dict]:
    return drain(stack, stack.outputs["ScanQueueUrl"], visibility_timeout=0)


def test_duplicate_and_out_of_order_deliveries(scenario):
    stack = scenario.stack
    scenario.put("same-key.jpg", CLEAN, "clean")  # version 1
    scenario.put("same-key.jpg", MATCH, "match")  # version 2 of the same key
    scenario.put("other.jpg", MATCH, "match")
    bodies = [m["Body"] for m in _queued(stack)]
    assert len(bodies) == 3
    sqs, url = stack.client("sqs"), stack.outputs["ScanQueueUrl"]
    for body in [*reversed(bodies), *bodies, bodies[1]]:  # newest first, then everything again
        sqs.send_message(QueueUrl=url, MessageBody=body)
    _scan_and_check(scenario)


def test_duplicates_delivered_again_after_the_first_ones_finished(scenario):
    """Each is scanned again (no idempotency table) and ends as the first did: the match already moved
    (its case finished, not filed again), the clean object still clean."""
    stack = scenario.stack
    scenario.put("listed.jpg", MATCH, "match")
    scenario.put("clean.jpg", CLEAN, "clean")
    bodies = [m["Body"] for m in _queued(stack)]
    for body in bodies:
        stack.client("sqs").send_message(QueueUrl=stack.outputs["ScanQueueUrl"], MessageBody=body)
    scenario.deliver()
    for body in bodies:
        stack.client("sqs").send_message(QueueUrl=stack.outputs["ScanQueueUrl"], MessageBody=body)
    _scan_and_check(scenario)


RACE_POINTS = [
    "GetObject",
    "PutObjectTagging",
    "HeadObject",
    "CopyObject",
    "PutObjectLegalHold",
    "DeleteObject",
    "Publish",
    "PutEvents",
]


@pytest.mark.parametrize("when", ["before"])
@pytest.mark.parametrize("operation", RACE_POINTS)
def test_two_scans_of_the_same_version_racing(scenario, operation, when):
    """A second invocation (a duplicate delivery) runs whole while the first is paused at `operation`;
    then the first goes on."""
    from hashcheck.jobs.s3events import uploads_from_body

    stack = scenario.stack
    scenario.put("listed.jpg", MATCH, "match")
    (message,) = _queued(stack)
    (upload,) = uploads_from_body(message["Body"])
    fired = {"n": 0}

    def second_scan(model, **_):
        if model.name == operation and fired["n"] == 0:
            fired["n"] = 1
            stack.scan.scanner.scan(upload)  # the racing duplicate

    for client in every_client(stack):
        scenario.hook(client, f"{when}-call", second_scan)
    stack.client("sqs").send_message(QueueUrl=stack.outputs["ScanQueueUrl"], MessageBody=message["Body"])
    _scan_and_check(scenario)
    assert fired["n"] == 1


NEW_VERSION = [
    ("GetObject", "clean"),
    ("PutObjectTagging", "clean"),
    ("CopyObject", "clean"),
    ("DeleteObject", "clean"),
    ("GetObject", "match"),
    ("PutObjectTagging", "match"),
]  # a clean first version has no copy or delete


@pytest.mark.parametrize(("operation", "new"), NEW_VERSION)
def test_a_new_version_uploaded_during_the_scan(scenario, operation, new):
    """The key gets a new version while the first is being scanned; each version ends in its own state."""
    first, second = (CLEAN, MATCH) if new == "match" else (MATCH, CLEAN)
    scenario.put("photo.jpg", first, "clean" if first is CLEAN else "match")
    fired = {"n": 0}

    def upload_new_version(**_):
        if fired["n"] == 0:
            fired["n"] = 1
            scenario.put("photo.jpg", second, new)

    for s3 in handler_clients(scenario.stack)["s3"]:
        scenario.hook(s3, f"before-call.s3.{operation}", upload_new_version)
    _scan_and_check(scenario)
    assert fired["n"] == 1 or (operation in ("CopyObject", "DeleteObject") and first is CLEAN)


# --- the sync path --------------------------------------------------------------------------------


def _sync(stack) -> dict:
    return stack.sync.handler(_sync_event(), sandbox.LambdaContext(stack.functions["SyncFunction"]))


def _sync_state(stack) -> tuple[set, int, str | None, str | None]:
    from hashcheck.tables.reference_table import ReferenceTable

    references = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
    live = {(r.algorithm, r.hash, r.id) for r in references.live_references_of_list(LIST_ID)}
    version = references.get_version()
    checkpoint = references.checkpoint(LIST_ID)
    return live, version.version, (checkpoint or {}).get("etag"), version.snapshot_key


def _expected_rows(*seeds: int) -> set:
    return {
        (r.algorithm, r.hash, r.id)
        for seed in seeds
        for r in references_for(fingerprint(_listed(seed)), LIST_ID, f"ref-{seed}")
    }


SYNC_FAULTS = [
    ("dynamodb", "BatchWriteItem", *DDB_THROTTLE),
    ("dynamodb", "PutItem", *DDB_THROTTLE),
    ("dynamodb", "BatchGetItem", *DDB_THROTTLE),
    ("s3", "GetObject", *S3_5XX),
    ("s3", "PutObject", *S3_THROTTLE),
    ("unprocessed", "BatchWriteItem", "", 0),
    ("die", "BatchWriteItem", "", 0),
    ("die", "PutObject", "", 0),
    ("die", "PutItem", "", 0),
]


@pytest.mark.parametrize(("service", "operation", "code", "status"), SYNC_FAULTS, ids=lambda v: str(v))
def test_sync_fault_then_rerun_reaches_the_table_one_clean_run_would(stack, service, operation, code, status):
    """A list update (one more listed picture) meets a fault; the next scheduled run completes it:
    the table holds exactly the file's rows, a new version with its snapshot, and the checkpoint moved
    only once the rows were committed. Scans then find the new picture."""
    seed = 100 + next(_ids)
    before_rows, before_version, before_etag, _ = _sync_state(stack)
    body = _list_text(1, seed)
    etag = stack.client("s3").put_object(Bucket=stack.outputs["ArtifactsBucketName"], Key=LIST_KEY, Body=body)["ETag"]
    clients = {"dynamodb": stack.sync.clients.dynamodb, "s3": stack.sync.clients.s3}
    client = clients["s3" if operation in ("GetObject", "PutObject") else "dynamodb"]
    fired = {"n": 0}

    def fault(params=None, parsed=None, **_):
        if fired["n"]:
            return
        fired["n"] = 1
        if service == "die":
            raise LambdaDied(operation)
        if service == "unprocessed":
            parsed["UnprocessedItems"] = {k: v for k, v in params.items()} if params else parsed.get("UnprocessedItems")
            return
        error = {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        raise ClientError(error, operation)

    prefix = client.meta.service_model.endpoint_prefix
    if service == "unprocessed":
        asked = {}
        client.meta.events.register(
            f"before-parameter-build.{prefix}.{operation}",
            lambda params, **_: asked.update(params["RequestItems"]),
            "fault-remember",
        )
        hook = lambda parsed, **kw: fault(params=asked, parsed=parsed)  # noqa: E731
        client.meta.events.register(f"after-call.{prefix}.{operation}", hook, "fault-hook")
    else:
        client.meta.events.register(f"before-call.{prefix}.{operation}", fault, "fault-hook")
    try:
        try:
            first = _sync(stack)
        except (LambdaDied, ClientError, RuntimeError):
            first = None
    finally:
        client.meta.events.unregister(f"before-call.{prefix}.{operation}", unique_id="fault-hook")
        client.meta.events.unregister(f"after-call.{prefix}.{operation}", unique_id="fault-hook")
        client.meta.events.unregister(f"before-parameter-build.{prefix}.{operation}", unique_id="fault-remember")
    assert fired["n"] == 1, f"{operation} was not called by the sync"
    rows, version, checkpoint_etag, _ = _sync_state(stack)
    if first is None or not first["ok"]:
        assert checkpoint_etag == before_etag, "the checkpoint moved past a delta that was not committed"
    second = _sync(stack)
    assert second["ok"], second
    rows, version, checkpoint_etag, snapshot_key = _sync_state(stack)
    assert rows == _expected_rows(1, seed)
    assert version > before_version and snapshot_key and checkpoint_etag == etag
    assert rows != before_rows
    # the scanner (a fresh container) finds the newly listed picture through the new snapshot
    fresh = sandbox.load_handler(stack, "ScanFunction", "scan")
    from hashcheck.jobs.s3events import Upload
    from hashcheck.objects import ObjectRef

    key = f"sync-{seed}/listed.jpg"
    put = stack.client("s3").put_object(Bucket=stack.outputs["UploadBucketName"], Key=key, Body=_listed(seed))
    _queued(stack)  # this check scans directly, not through the queue
    outcome = fresh.scanner.scan(Upload(ObjectRef(stack.outputs["UploadBucketName"], key, put["VersionId"])))
    assert outcome.verdict == "match", outcome
    _load_scan_handler(stack)  # the module's handler sees the new list version too
