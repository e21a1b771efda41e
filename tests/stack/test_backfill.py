"""Backfill (issue #6 part 2): objects stored before the stack are scanned through the upload path,
each exactly once; a rerun scans none. The stack runs in moto (hashcheck.tools.sandbox); the upload events
the sandbox's EventBridge queues are dropped, so only the backfill sees these objects."""

import collections
import json

import pytest

from hashcheck.aws import Clients
from hashcheck.jobs import backfill
from hashcheck.jobs.scanner import ScanConfig, build_scanner
from hashcheck.tables.reference_table import ReferenceTable
from hashcheck.tools import samples, sandbox
from tests.helpers import listed_stack

N_TINY = 400  # moto costs ~50 ms per scanned object; 10,000 were run as a script (see the report)
LISTED = samples.jpeg(samples.picture(1))


@pytest.fixture()
def stack():
    with listed_stack(LISTED) as stack:
        yield stack


def store_old_objects(stack, n_tiny: int) -> dict[str, bytes]:
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    bodies = {f"old/{i:05d}.txt": f"object {i}".encode() for i in range(n_tiny)}
    bodies["old/photos/listed.jpg"] = samples.EDITS["jpeg-q50"](samples.picture(1))
    bodies["old/photos/cat.jpg"] = samples.jpeg(samples.picture(60))
    bodies["old/photos/dog.png"] = samples.png(samples.picture(61))
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    stack.client("sqs").purge_queue(QueueUrl=stack.outputs["ScanQueueUrl"])  # stored "before the stack"
    return bodies


def reads_per_key(client, bucket: str) -> collections.Counter:
    reads = collections.Counter()

    def note(params, **_):
        if params.get("Bucket") == bucket:
            reads[params["Key"]] += 1

    client.meta.events.register("before-parameter-build.s3.GetObject", note)  # params = the API call's own
    return reads


def test_backfill_scans_each_object_once_and_a_rerun_scans_none(stack):
    bucket = stack.outputs["UploadBucketName"]
    bodies = store_old_objects(stack, N_TINY)
    clients = Clients(**{n: stack.client(n) for n in ("s3", "dynamodb", "sns", "events")})
    scanner = build_scanner(ScanConfig.from_outputs(stack.outputs), clients)
    reads = reads_per_key(scanner.s3, bucket)
    progress = []

    first = backfill.run(scanner, bucket, on_progress=lambda s: progress.append(s.listed))

    assert set(reads) == set(bodies) and set(reads.values()) == {1}  # every object read exactly once
    assert first.listed == first.scanned == len(bodies)
    assert (first.matched, first.skipped, first.errors) == (1, 0, 0)
    assert progress[-1] == len(bodies) and len(progress) > 1
    listed_versions = stack.client("s3").list_object_versions(Bucket=bucket, Prefix="old/photos/listed.jpg")
    assert listed_versions.get("Versions", []) == []  # quarantined like an upload
    (case,) = stack.client("dynamodb").scan(TableName=stack.outputs["CaseTableName"])["Items"]
    assert case["key"]["S"] == "old/photos/listed.jpg"

    reads.clear()
    second = backfill.run(scanner, bucket)

    assert sum(reads.values()) == 0
    assert (second.scanned, second.skipped, second.matched) == (0, len(bodies) - 1, 0)
    assert json.dumps(second.to_dict())


def test_prefix_and_a_new_list_version_rescan_only_what_is_stale(stack):
    bucket = stack.outputs["UploadBucketName"]
    store_old_objects(stack, 20)
    clients = Clients(**{n: stack.client(n) for n in ("s3", "dynamodb", "sns", "events")})
    photos = backfill.run(stack.outputs, bucket, prefix="old/photos/", clients=clients)
    assert photos.listed == photos.scanned == 3
    rest = backfill.run(stack.outputs, bucket, prefix="old/", clients=clients)
    assert (rest.scanned, rest.skipped) == (20, 2)
    references = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
    references.bump_version(references.get_version().version)
    again = backfill.run(stack.outputs, bucket, prefix="old/", clients=clients)
    assert (again.scanned, again.skipped) == (22, 0)  # judged against an older list version


def test_the_map_batch_handler_scans_a_plain_listing_and_is_idempotent(stack):
    """The Distributed Map's ItemReader (listObjectsV2) gives keys without version ids: the function
    heads each object to scan that exact version."""
    bucket = stack.outputs["UploadBucketName"]
    store_old_objects(stack, 5)
    function = "BackfillFunction" if "BackfillFunction" in stack.functions else "ScanFunction"
    app = sandbox.load_handler(stack, function, "backfill")
    listing = stack.client("s3").list_objects_v2(Bucket=bucket)["Contents"]
    items = [{"Key": o["Key"], "ETag": o["ETag"], "Size": o["Size"]} for o in listing]
    items.append({"Key": "old/vanished.txt", "ETag": '"x"', "Size": 1})
    event = {"Items": items, "BatchInput": {"bucket": bucket}}
    first = app.handler(event, sandbox.LambdaContext("backfill"))
    assert (first["scanned"], first["matched"], first["gone"]) == (8, 1, 1)
    second = app.handler(event, sandbox.LambdaContext("backfill"))
    assert (second["scanned"], second["skipped"]) == (0, 7)


def test_a_failing_object_fails_the_batch_after_the_others(stack):
    from botocore.exceptions import ClientError

    bucket = stack.outputs["UploadBucketName"]
    store_old_objects(stack, 3)
    function = "BackfillFunction" if "BackfillFunction" in stack.functions else "ScanFunction"
    app = sandbox.load_handler(stack, function, "backfill")
    calls = {"n": 0}

    def refuse(params, **_):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "GetObject")

    sandbox.invoked(stack, "FingerprintFunction").s3.meta.events.register("before-call.s3.GetObject", refuse)
    items = [{"Key": o["Key"]} for o in stack.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    with pytest.raises(app.BatchIncomplete):
        app.handler({"Items": items, "BatchInput": {"bucket": bucket}}, sandbox.LambdaContext("backfill"))
    retry = app.handler({"Items": items, "BatchInput": {"bucket": bucket}}, sandbox.LambdaContext("backfill"))
    assert (retry["scanned"], retry["skipped"], retry["gone"], retry["errors"]) == (1, 4, 1, 0)  # listed.jpg: moved


def test_state_machine_definition():
    asl = json.loads((sandbox.ROOT / "statemachine" / "backfill.asl.json").read_text())
    states = asl["States"]
    assert asl["StartAt"] in states
    (name,) = [n for n, s in states.items() if s["Type"] == "Map"]
    m = states[name]
    assert m["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert m["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert m["ItemBatcher"]["MaxItemsPerBatch"] >= 1 and "bucket.$" in m["ItemBatcher"]["BatchInput"]
    assert m["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    assert isinstance(m["MaxConcurrency"], int) and 0 <= m["ToleratedFailurePercentage"] <= 100
    for state in [*states.values(), *m["ItemProcessor"]["States"].values()]:
        for target in [state.get("Next"), state.get("Default"), *(c["Next"] for c in state.get("Choices", []))]:
            assert target is None or target in states or target in m["ItemProcessor"]["States"]
    task = m["ItemProcessor"]["States"]["ScanBatch"]
    assert task["Parameters"]["FunctionName"] == "${BackfillFunctionArn}"
