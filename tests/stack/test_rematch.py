"""Re-match (issue #6 part 1): a list update checked against fingerprints already stored, through the
stack in moto (hashcheck.tools.sandbox). The FingerprintTable's exact-hash GSIs and its stream are created
here through the API when template.yaml does not declare them yet; the stream's delivery to
RematchFunction is played by handing the table's records to the handler in stream shape (moto does
not serve DynamoDB stream reads)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.lists import deltas
from hashcheck.lists.build import references_for
from hashcheck.matching.matcher import match
from hashcheck.matching.stored import StoredIndex, Wanted
from hashcheck.matching.stores.memory import MemoryStore
from hashcheck.objects import ObjectRef, get_status
from hashcheck.status import Verdict
from hashcheck.tables.dynamo import from_item
from hashcheck.tables.fingerprint_table import encode_near, fingerprint_of, near_of
from hashcheck.tables.reference_table import ReferenceTable
from hashcheck.tools import samples, sandbox
from hashcheck.tools.wrappers import zipped
from tests.helpers import alerts_inbox, drain, listed_stack

STORED = samples.EDITS["jpeg-q50"](samples.picture(7))  # an upload "from last week"
OTHER = samples.jpeg(samples.picture(70))


@pytest.fixture()
def stack():
    with listed_stack(samples.jpeg(samples.picture(99)), ref_id="ref-0") as stack:  # an unrelated picture
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        function = "RematchFunction" if "RematchFunction" in stack.functions else "ScanFunction"
        stack.rematch = sandbox.load_handler(stack, function, "rematch")
        stack.inbox = alerts_inbox(stack)
        yield stack


def upload_and_scan(stack, key: str, body: bytes) -> str:
    version = stack.client("s3").put_object(Bucket=stack.outputs["UploadBucketName"], Key=key, Body=body)["VersionId"]
    sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], stack.scan.handler, "ScanFunction")
    return version


def stream_fingerprints(stack) -> dict:
    """What the FingerprintTable's stream would hand RematchFunction: every record as an INSERT."""
    return stack.rematch.handler({"Records": sandbox.stream_records(stack)}, sandbox.LambdaContext("rematch"))


def list_update(stack, rows) -> int:
    """The sync's part: apply the rows, publish the delta of what became live, bump the version."""
    ddb, s3 = stack.client("dynamodb"), stack.client("s3")
    table, bucket = stack.outputs["ReferenceTableName"], stack.outputs["ArtifactsBucketName"]
    references = ReferenceTable(ddb, table)
    references.apply_rows(rows)
    current = references.get_version().version
    deltas.write_delta(s3, bucket, current + 1, rows)
    references.bump_version(current)
    return current + 1


def run_rematch(stack, version: int) -> dict:
    event = {  # S3 -> EventBridge "Object Created" of the delta file
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {
            "bucket": {"name": stack.outputs["ArtifactsBucketName"]},
            "object": {"key": deltas.delta_key(version)},
        },
    }
    return stack.rematch.handler(event, sandbox.LambdaContext("rematch"))


def count_reads(client, bucket: str) -> list[str]:
    reads: list[str] = []

    def note(params, **_):
        if params.get("Bucket") == bucket:
            reads.append(params["Key"])

    client.meta.events.register("before-parameter-build.s3.GetObject", note)  # params = the API call's own
    return reads


def record(stack, key: str) -> dict:
    """The object's own record (not its members')."""
    items = stack.client("dynamodb").scan(TableName=stack.outputs["FingerprintTableName"])["Items"]
    (item,) = [from_item(i) for i in items if i["key"]["S"] == key and "parent" not in i]
    return item


def cases(stack) -> list[dict]:
    return [from_item(i) for i in stack.client("dynamodb").scan(TableName=stack.outputs["CaseTableName"])["Items"]]


def alerts(stack) -> int:
    return len(drain(stack, stack.inbox))


@pytest.mark.parametrize("listed", ["near", "exact"])
def test_list_update_quarantines_a_stored_clean_object_without_reading_it_again(stack, listed):
    bucket = stack.outputs["UploadBucketName"]
    version_id = upload_and_scan(stack, "customers/3/last week.jpg", STORED)
    upload_and_scan(stack, "customers/3/other.jpg", OTHER)
    assert record(stack, "customers/3/last week.jpg")["status"] == "clean"
    assert stream_fingerprints(stack)["segment"]
    # near: the list carries the original picture's hashes (PDQ/pHash match the re-encoded upload);
    # exact: the list carries the exact bytes' hashes
    source = samples.jpeg(samples.picture(7)) if listed == "near" else STORED
    rows = references_for(fingerprint(source), "hotline", "ref-7")
    rows = [r for r in rows if (r.algorithm in ("pdq", "phash")) == (listed == "near")]
    version = list_update(stack, rows)
    reads = count_reads(stack.rematch.s3, bucket)

    report = run_rematch(stack, version)

    assert reads == []  # not one GetObject of the stored objects
    assert report["matched"] == 1 and report["errors"] == 0
    assert report[f"{listed}_candidates"] == 1
    versions = stack.client("s3").list_object_versions(Bucket=bucket, Prefix="customers/3/last week.jpg")
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []
    (copy,) = stack.client("s3").list_object_versions(Bucket=stack.outputs["QuarantineBucketName"])["Versions"]
    hold = stack.client("s3").get_object_legal_hold(
        Bucket=stack.outputs["QuarantineBucketName"], Key=copy["Key"], VersionId=copy["VersionId"]
    )
    assert hold["LegalHold"]["Status"] == "ON"
    (case,) = cases(stack)
    assert case["version_id"] == version_id and case["verdict"] == Verdict.MATCH and case["status"] == "quarantined"
    assert {m["ref_id"] for m in case["matches"]} == {"ref-7"}
    assert record(stack, "customers/3/last week.jpg")["status"] == "quarantined"
    assert record(stack, "customers/3/other.jpg")["status"] == "clean"
    assert alerts(stack) == 1


@pytest.mark.parametrize("listed", ["near", "exact"])
def test_a_list_update_naming_a_picture_inside_a_stored_archive_quarantines_the_archive(stack, listed):
    """An archive's entries are recorded as members of it: a list that names one of them later finds
    it without reading the archive again, and the archive is what is acted on, its case naming the entry."""
    archive = zipped({"notes.txt": b"hello\n", "photos/a.jpg": OTHER, "photos/b.jpg": STORED})
    upload_and_scan(stack, "customers/3/backup.zip", archive)
    assert record(stack, "customers/3/backup.zip")["status"] == "clean"
    stream_fingerprints(stack)
    source = samples.jpeg(samples.picture(7)) if listed == "near" else STORED
    rows = [
        r
        for r in references_for(fingerprint(source), "hotline", "ref-7")
        if (r.algorithm in ("pdq", "phash")) == (listed == "near")
    ]
    assert_rematch_quarantines(stack, rows, "customers/3/backup.zip", "photos/b.jpg")
    assert alerts(stack) == 1


def assert_rematch_quarantines(stack, rows, key: str, member: str) -> None:
    """A list update of `rows` quarantines the stored object at `key`, without reading any object, its
    one case naming `member` inside it."""
    reads = count_reads(stack.rematch.s3, stack.outputs["UploadBucketName"])

    report = run_rematch(stack, list_update(stack, rows))

    assert reads == [] and report["matched"] == 1 and report["errors"] == 0
    assert record(stack, key)["status"] == "quarantined"
    (case,) = cases(stack)
    assert case["key"] == key and {m["member"] for m in case["matches"]} == {member}


def test_rematch_twice_acts_once(stack):
    upload_and_scan(stack, "twice.jpg", STORED)
    stream_fingerprints(stack)
    version = list_update(stack, references_for(fingerprint(STORED), "hotline", "ref-7"))
    first, second = run_rematch(stack, version), run_rematch(stack, version)
    assert first["matched"] == 1 and second["matched"] == 0 and second["skipped"] == 1
    assert len(cases(stack)) == 1 and alerts(stack) == 1


def test_a_match_whose_object_is_gone_is_recorded(stack):
    bucket = stack.outputs["UploadBucketName"]
    version_id = upload_and_scan(stack, "gone.jpg", STORED)
    stream_fingerprints(stack)
    stack.client("s3").delete_object(Bucket=bucket, Key="gone.jpg", VersionId=version_id)
    version = list_update(stack, references_for(fingerprint(STORED), "hotline", "ref-7"))
    report = run_rematch(stack, version)
    assert report["gone"] == 1 and report["matched"] == 0
    (case,) = cases(stack)
    assert case["status"] == "source_missing"
    gone = record(stack, "gone.jpg")
    assert gone["status"] == "deleted" and "deleted" in gone["reason"]


def test_unrelated_update_touches_nothing_and_direct_invocation_works(stack):
    upload_and_scan(stack, "cat.jpg", OTHER)
    stream_fingerprints(stack)
    version = list_update(stack, references_for(fingerprint(samples.jpeg(samples.picture(71))), "hotline", "x"))
    report = stack.rematch.handler({"version": version}, sandbox.LambdaContext("rematch"))
    assert report["matched"] == report["review"] == report["exact_candidates"] == report["near_candidates"] == 0
    assert cases(stack) == [] and record(stack, "cat.jpg")["status"] == "clean"


def test_logs_carry_no_hash_values(stack, caplog):
    upload_and_scan(stack, "logged.jpg", STORED)
    stream_fingerprints(stack)
    listed = fingerprint(samples.jpeg(samples.picture(7)))
    version = list_update(stack, references_for(listed, "hotline", "ref-7"))
    with caplog.at_level("DEBUG"):
        run_rematch(stack, version)
    logs = "\n".join(str(r.__dict__) for r in caplog.records if r.name.split(".")[0] == "hashcheck")
    assert "logged.jpg" in logs
    stored = fingerprint(STORED)
    for value in (stored.md5, stored.sha1, stored.sha256, stored.pdq, stored.phash, listed.pdq, listed.phash):
        assert value not in logs


def test_stored_index_finds_a_mirrored_upload_through_its_stored_variants(stack):
    """With every variant in the record (``near``), a list entry of the unmirrored picture finds a
    mirrored upload, and the matcher on the rebuilt Fingerprint decides `match`."""
    mirrored = fingerprint(samples.EDITS["mirrored"](samples.picture(8)))
    listed = fingerprint(samples.jpeg(samples.picture(8)))
    rec = {
        "object_id": "a" * 64,
        "status": "clean",
        **mirrored.exact(),
        "size": mirrored.size,
        "image_status": mirrored.status,
        "pdq": mirrored.pdq,
        "pdq_quality": mirrored.pdq_quality,
        "phash": mirrored.phash,
        "near": encode_near(mirrored.near),
    }
    stored = StoredIndex(stack.client("s3"), stack.outputs["ArtifactsBucketName"])
    assert stored.add([rec, {**rec, "object_id": "b" * 64, "status": "quarantined"}])
    assert stored.candidates("pdq", [listed.pdq], 31) == {"a" * 64}
    without_variants = {k: v for k, v in rec.items() if k != "near"}
    assert len(near_of(without_variants)) == 2
    fp = fingerprint_of(rec)
    assert fp.near == mirrored.near
    result = match(fp, MemoryStore(references_for(listed, "hotline", "ref-8")))
    assert result.verdict == Verdict.MATCH


def test_stored_index_compacts_and_still_finds_everything(stack):
    stored = StoredIndex(stack.client("s3"), stack.outputs["ArtifactsBucketName"])
    fps = [fingerprint(samples.jpeg(samples.picture(200 + i), quality=80)) for i in range(4)]
    for i, fp in enumerate(fps):
        for j in range(3):  # 12 small segments
            rec = {"object_id": f"{i:x}{j:x}" * 32, "status": "clean", "near": encode_near(fp.near)}
            stored.add([rec])
    assert len(stored.segment_keys()) == 12
    assert len(stored.compact(max_segments=4)) == 1
    assert len(stored.segment_keys()) == 1
    assert stored.candidates("pdq", [fps[2].pdq], 0) == {f"2{j:x}" * 32 for j in range(3)}


def test_a_rematch_that_listed_segments_before_a_merge_still_searches_them(stack):
    """A re-match's batches name the segments listed when it started; a merge meanwhile (another run's
    compaction) retires them instead of deleting them, so nothing they held is missed; a day on they go."""
    s3, artifacts = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    stored = StoredIndex(s3, artifacts)
    fps = [fingerprint(samples.jpeg(samples.picture(230 + i), quality=80)) for i in range(3)]
    for i in range(9):
        stored.add([{"object_id": f"{i:02x}" * 32, "status": "clean", "near": encode_near(fps[i % 3].near)}])
    listed = stored.segment_keys()
    assert stored.compact(max_segments=4)
    assert set(listed).isdisjoint(stored.segment_keys())
    expected = {f"{i:02x}" * 32 for i in (1, 4, 7)}
    assert stored.search(Wanted.of({"pdq": [fps[1].pdq]}), listed)[1] == expected  # from the retired copies
    assert stored.candidates("pdq", [fps[1].pdq], 0) == expected  # and from the merged one
    stored.compact(max_segments=4, now=datetime.now(UTC) + timedelta(days=2))
    assert "Contents" not in s3.list_objects_v2(Bucket=artifacts, Prefix="fpindex-retired/")


def test_stored_index_segments_stay_bounded_and_are_searched_one_at_a_time(stack):
    """Merged segments never grow past the bound (a worker's memory does not grow with the objects
    stored); a full one is left alone; the search finds objects in every segment."""
    s3, bucket = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    fps = [fingerprint(samples.jpeg(samples.picture(220 + i), quality=80)) for i in range(3)]

    def record(i: int) -> dict:
        return {"object_id": f"{i:04x}" * 16, "status": "clean", "near": encode_near(fps[i % 3].near)}

    full = StoredIndex(s3, bucket).add([record(i) for i in range(100, 130)])
    bound = s3.head_object(Bucket=bucket, Key=full)["ContentLength"] + 1
    stored = StoredIndex(s3, bucket, segment_bytes=bound)
    for i in range(12):
        stored.add([record(i), record(i + 50)])
    assert stored.compact(max_segments=2)
    sizes = {k: s3.head_object(Bucket=bucket, Key=k)["ContentLength"] for k in stored.segment_keys()}
    assert full in sizes and 1 < len(sizes) < 13 and max(sizes.values()) <= bound
    ids = [*range(12), *range(50, 62), *range(100, 130)]
    assert stored.candidates("pdq", [fps[1].pdq], 0) == {record(i)["object_id"] for i in ids if i % 3 == 1}
    exact, near = stored.search(Wanted.of({"pdq": [fps[2].pdq], "sha256": [fps[0].sha256]}))
    assert near == {record(i)["object_id"] for i in ids if i % 3 == 2}
    assert exact == set()  # these records carry no exact hashes


def test_stored_index_keeps_object_ids_that_end_in_zero_bytes(stack):
    """1 object id in 256 ends in a zero byte; each must come back whole, or its object is never found."""
    stored = StoredIndex(stack.client("s3"), stack.outputs["ArtifactsBucketName"])
    fp = fingerprint(samples.jpeg(samples.picture(210)))
    ids = ["ab" * 31 + "00", "00" * 32, "cd" * 30 + "0000"]
    stored.add([{"object_id": i, "status": "clean", "near": encode_near(fp.near)} for i in ids])
    assert StoredIndex(stack.client("s3"), stack.outputs["ArtifactsBucketName"]).candidates("pdq", [fp.pdq], 0) == set(
        ids
    )


def test_delta_round_trip_and_names(stack):
    s3, bucket = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    rows = references_for(fingerprint(STORED), "hotline", "ref-7")
    key = deltas.write_delta(s3, bucket, 42, rows)
    assert key == "deltas/v00000042.jsonl" and deltas.version_of(key) == 42
    assert deltas.read_delta(s3, bucket, key) == rows
    assert deltas.write_delta(s3, bucket, 43, []) is None
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()[0])["list"] == "hotline"


def test_a_list_update_naming_a_picture_shown_in_a_stored_video_quarantines_the_video(stack):
    """A video's scenes are recorded as its members: a picture listed later is found in a stored video
    without reading it again, and the case names the time it was on screen."""
    clip = samples.video(10, size=(320, 240), show=(samples.picture(7), 2.0, 5.0))
    upload_and_scan(stack, "customers/3/clip.mp4", clip)
    assert record(stack, "customers/3/clip.mp4")["status"] == "clean"
    stream_fingerprints(stack)
    rows = [
        r
        for r in references_for(fingerprint(samples.jpeg(samples.picture(7))), "hotline", "ref-7")
        if r.algorithm in ("pdq", "phash")
    ]
    assert_rematch_quarantines(stack, rows, "customers/3/clip.mp4", "t=2.0-5.0s")


def run_distributed(stack, version: int, batch: int) -> dict:
    """As RematchStateMachine runs it: the stored index's segments listed (its ItemReader), handed out in
    batches of `batch` (its ItemBatcher), each searched by RematchFunction; then the decide step."""
    s3, artifacts = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    listed = [{"Key": o["Key"]} for o in s3.list_objects_v2(Bucket=artifacts, Prefix="fpindex/")["Contents"]]
    delta = deltas.delta_key(version)
    for start in range(0, len(listed), batch):
        event = {"Items": listed[start : start + batch], "BatchInput": {"delta_key": delta}}
        stack.rematch.handler(event, sandbox.LambdaContext("rematch"))
    return stack.rematch.handler({"decide": delta}, sandbox.LambdaContext("rematch"))


def test_a_list_update_searched_in_batches_of_segments_quarantines_once(stack):
    """Each worker searches its own segments and leaves what it found; the last step decides all of it
    once, and the candidates' files go. A retried batch writes the same file; a rerun acts on nothing."""
    for n, body in enumerate([OTHER, STORED, samples.jpeg(samples.picture(71)), samples.jpeg(samples.picture(72))]):
        upload_and_scan(stack, f"customers/{n}/photo.jpg", body)
        stream_fingerprints(stack)  # one segment per batch of the stream
    s3, artifacts = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
    assert len(StoredIndex(s3, artifacts).segment_keys()) >= 4
    rows = [r for r in references_for(fingerprint(samples.jpeg(samples.picture(7))), "hotline", "ref-7")]
    version = list_update(stack, [r for r in rows if r.algorithm in ("pdq", "phash")])
    reads = count_reads(stack.rematch.s3, stack.outputs["UploadBucketName"])

    report = run_distributed(stack, version, batch=2)

    assert reads == [] and report["matched"] == 1 and report["near_candidates"] >= 1
    assert record(stack, "customers/1/photo.jpg")["status"] == "quarantined"
    assert {record(stack, f"customers/{n}/photo.jpg")["status"] for n in (0, 2, 3)} == {"clean"}
    assert "Contents" not in s3.list_objects_v2(Bucket=artifacts, Prefix="rematch/")  # the candidates' files went
    again = run_distributed(stack, version, batch=3)
    assert again["matched"] == 0 and len(cases(stack)) == 1 and alerts(stack) == 1


def test_a_batch_without_its_delta_fails_instead_of_finding_nothing(stack):
    with pytest.raises(ValueError):
        stack.rematch.handler(
            {"Items": [{"Key": "fpindex/seg.npz"}], "BatchInput": {}}, sandbox.LambdaContext("rematch")
        )


def test_rematch_state_machine_definition():
    asl = json.loads((sandbox.ROOT / "statemachine" / "rematch.asl.json").read_text())
    states = asl["States"]
    (search,) = [s for s in states.values() if s["Type"] == "Map"]
    assert search["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert search["ItemReader"]["Parameters"] == {"Bucket": "${ArtifactsBucketName}", "Prefix": "fpindex/"}
    assert search["ItemBatcher"]["BatchInput"] == {"delta_key.$": "$.delta_key"}
    assert search["ToleratedFailurePercentage"] == 0  # a shard that failed every retry fails the run
    decide = states[search["Next"]]
    assert decide["Parameters"]["Payload"] == {"decide.$": "$.delta_key"} and decide["End"]
    (task,) = search["ItemProcessor"]["States"].values()
    assert task["Parameters"]["FunctionName"] == decide["Parameters"]["FunctionName"] == "${RematchFunctionArn}"
    assert states[states[asl["StartAt"]]["Choices"][0]["Next"]]["Parameters"] == {"delta_key.$": "$.detail.object.key"}


def test_an_object_that_could_not_be_acted_on_fails_the_run_and_the_retry_finishes_it(stack):
    """The others are acted on; the run fails (the state machine retries it; RematchErrors counts it)
    and keeps the candidates, so the retry quarantines what the first attempt could not."""
    upload_and_scan(stack, "customers/1/photo.jpg", STORED)
    stream_fingerprints(stack)
    rows = references_for(fingerprint(samples.jpeg(samples.picture(7))), "hotline", "ref-7")
    version = list_update(stack, [r for r in rows if r.algorithm in ("pdq", "phash")])
    failures = {"left": 1}

    def refuse(**_):
        if failures["left"]:
            failures["left"] -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "CopyObject")

    stack.rematch.s3.meta.events.register("before-call.s3.CopyObject", refuse)
    with pytest.raises(Exception, match="could not be acted on"):
        run_distributed(stack, version, batch=10)
    tagged = get_status(stack.client("s3"), ObjectRef(stack.outputs["UploadBucketName"], "customers/1/photo.jpg"))
    assert tagged == "quarantined"  # blocked at once, before the evidence copy failed
    retry = stack.rematch.handler({"decide": deltas.delta_key(version)}, sandbox.LambdaContext("rematch"))
    assert retry["matched"] == 1 and retry["errors"] == 0
    assert record(stack, "customers/1/photo.jpg")["status"] == "quarantined"
