"""The stack end to end: template.yaml deployed into moto (hashcheck.tools.sandbox), real S3 -> EventBridge
-> scan queue delivery, the real scan handler in process. Faults are injected with botocore's own
event hooks on the handler's clients (a refused call, as AWS would refuse it), never by replacing
our code."""

import io
import json
import zipfile
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.lists.build import references_for
from hashcheck.tables.fingerprint_table import FingerprintTable
from hashcheck.tables.reference_table import ReferenceTable
from hashcheck.tools import samples, sandbox
from tests.helpers import alerts_inbox, drain_bodies, listed_stack

LISTED = samples.jpeg(samples.picture(1))


@pytest.fixture()
def stack():
    with listed_stack(LISTED) as stack:
        stack.inbox = alerts_inbox(stack)
        stack.events_inbox = _queue_for_match_events(stack)
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        yield stack


def _queue_for_match_events(stack) -> str:
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName="match-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="matches", EventPattern=json.dumps({"source": ["hashcheck"], "detail-type": ["HashCheck Match"]})
    )
    events.put_targets(Rule="matches", Targets=[{"Id": "q", "Arn": arn}])
    return url


def upload(stack, key: str, body: bytes, **extra) -> str:
    return stack.client("s3").put_object(Bucket=stack.outputs["UploadBucketName"], Key=key, Body=body, **extra)[
        "VersionId"
    ]


def deliver(stack) -> list[dict]:
    return sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], stack.scan.handler, "ScanFunction")


def versions(stack, bucket: str, key: str) -> tuple[list, list]:
    listing = stack.client("s3").list_object_versions(Bucket=bucket, Prefix=key)
    return listing.get("Versions", []), listing.get("DeleteMarkers", [])


def tags(stack, key: str, version: str) -> dict:
    response = stack.client("s3").get_object_tagging(
        Bucket=stack.outputs["UploadBucketName"], Key=key, VersionId=version
    )
    return {t["Key"]: t["Value"] for t in response["TagSet"]}


def cases(stack) -> list[dict]:
    return stack.client("dynamodb").scan(TableName=stack.outputs["CaseTableName"])["Items"]


def evidence(stack) -> list[dict]:
    return stack.client("s3").list_object_versions(Bucket=stack.outputs["QuarantineBucketName"]).get("Versions", [])


def fail_once(client, operation: str, code: str = "InternalError"):
    """Make the next `operation` call of this client fail the way AWS fails it, once."""
    calls = {"n": 0}

    def refuse(**_):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    client.meta.events.register(f"before-call.{client.meta.service_model.endpoint_prefix}.{operation}", refuse)
    return calls


def test_listed_image_is_moved_to_evidence_under_legal_hold_with_a_case_and_alerts(stack):
    key = "customers/1/holiday photo é.jpg"
    version = upload(stack, key, samples.EDITS["jpeg-q50"](samples.picture(1)))
    deliver(stack)
    live, markers = versions(stack, stack.outputs["UploadBucketName"], key)
    assert live == [] and markers == []  # that exact version deleted, no delete marker hiding data
    (copy,) = evidence(stack)
    s3 = stack.client("s3")
    hold = s3.get_object_legal_hold(
        Bucket=stack.outputs["QuarantineBucketName"], Key=copy["Key"], VersionId=copy["VersionId"]
    )
    assert hold["LegalHold"]["Status"] == "ON" and copy["Key"].endswith("/" + key)
    (case,) = cases(stack)
    assert case["key"]["S"] == key and case["version_id"]["S"] == version and case["verdict"]["S"] == "match"
    assert {m["M"]["ref_id"]["S"] for m in case["matches"]["L"]} == {"ref-1"}
    (alert,) = drain_bodies(stack, stack.inbox)
    (event,) = drain_bodies(stack, stack.events_inbox)
    assert event["detail"]["case_id"] == case["case_id"]["S"]
    sha256 = fingerprint(samples.EDITS["jpeg-q50"](samples.picture(1))).sha256
    assert sha256 not in json.dumps(alert) and sha256 not in json.dumps(event)


def recorded(stack, key: str) -> str:
    """The status of `key`'s FingerprintTable record."""
    (record,) = [
        r
        for r in FingerprintTable(stack.client("dynamodb"), stack.outputs["FingerprintTableName"]).scan_all()
        if r["key"] == key
    ]
    return record["status"]


def test_unrelated_image_stays_untagged_and_is_recorded_clean(stack):
    """The default (deny-list) mode leaves a clean upload untagged, readable as it was, and saves a
    PutObjectTagging; its verdict is in the FingerprintTable."""
    version = upload(stack, "customers/1/cat.jpg", samples.jpeg(samples.picture(50)))
    deliver(stack)
    assert "hashcheck-status" not in tags(stack, "customers/1/cat.jpg", version)
    assert recorded(stack, "customers/1/cat.jpg") == "clean"
    assert cases(stack) == [] and evidence(stack) == []


def test_non_image_and_corrupt_image(stack):
    text = upload(stack, "docs/readme.txt", b"hello")
    whole = samples.jpeg(samples.picture(51))
    broken = upload(stack, "img/broken.jpg", whole[: len(whole) // 2])
    deliver(stack)
    assert "hashcheck-status" not in tags(stack, "docs/readme.txt", text)
    assert recorded(stack, "docs/readme.txt") == "clean"
    assert tags(stack, "img/broken.jpg", broken)["hashcheck-status"] == "unscannable"


def test_exact_copy_of_a_listed_non_decodable_file_is_still_quarantined(stack):
    """A file too corrupt to hash perceptually (a fifth of a JPEG) still has exact hashes that act."""
    blob = LISTED[: len(LISTED) // 5]
    references = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
    references.apply_rows(references_for(fingerprint(blob), "test-list", "ref-blob"))
    upload(stack, "img/half.jpg", blob)
    deliver(stack)
    (case,) = cases(stack)
    assert {m["M"]["algorithm"]["S"] for m in case["matches"]["L"]} == {"md5", "sha1", "sha256"}


def test_duplicate_delivery_files_one_case_and_one_copy(stack):
    upload(stack, "dup.jpg", LISTED)
    sqs, url = stack.client("sqs"), stack.outputs["ScanQueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    sqs.send_message(QueueUrl=url, MessageBody=message["Body"])  # the same notice, delivered twice
    deliver(stack)
    assert len(cases(stack)) == 1 and len(evidence(stack)) == 1
    assert len(drain_bodies(stack, stack.inbox)) == 1


def test_crash_between_copy_and_delete_then_retry_finishes_once(stack):
    upload(stack, "crash.jpg", LISTED)
    calls = fail_once(stack.scan.s3, "DeleteObject")
    responses = deliver(stack)
    assert calls["n"] >= 2  # the first attempt failed at the delete, a retry deleted
    assert responses[0]["batchItemFailures"]  # the failed attempt went back to the queue
    assert versions(stack, stack.outputs["UploadBucketName"], "crash.jpg") == ([], [])
    assert len(cases(stack)) == 1 and len(evidence(stack)) == 1
    assert len(drain_bodies(stack, stack.inbox)) == 1


def test_object_deleted_before_the_scan_is_recorded(stack):
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    version = upload(stack, "gone.jpg", LISTED)
    s3.delete_object(Bucket=bucket, Key="gone.jpg", VersionId=version)
    deliver(stack)
    items = stack.client("dynamodb").scan(TableName=stack.outputs["FingerprintTableName"])["Items"]
    assert [(i["key"]["S"], i["status"]["S"]) for i in items] == [("gone.jpg", "deleted")]
    assert cases(stack) == []


def test_s3_notification_with_url_encoded_key_is_decoded(stack):
    key = "a folder/naïve + plus.jpg"
    version = upload(stack, key, samples.jpeg(samples.picture(52)))
    stack.client("sqs").purge_queue(QueueUrl=stack.outputs["ScanQueueUrl"])  # replace the EventBridge notice
    notice = json.loads((sandbox.ROOT / "events" / "s3-put.json").read_text())
    record = notice["Records"][0]
    record["s3"]["bucket"]["name"] = stack.outputs["UploadBucketName"]
    record["s3"]["object"].update(key=quote_plus(key), versionId=version)
    stack.client("sqs").send_message(QueueUrl=stack.outputs["ScanQueueUrl"], MessageBody=json.dumps(notice))
    deliver(stack)
    assert recorded(stack, key) == "clean" and "hashcheck-status" not in tags(stack, key, version)


def test_ten_existing_tags_still_get_the_status(stack):
    customer = "&".join(f"t{i}=v{i}" for i in range(10))
    whole = samples.jpeg(samples.picture(53))
    version = upload(stack, "tagged.jpg", whole[: len(whole) // 5], Tagging=customer)  # unscannable: blocked
    deliver(stack)
    got = tags(stack, "tagged.jpg", version)
    assert got["hashcheck-status"] == "unscannable" and len(got) == 10
    assert sum(1 for k in got if k.startswith("t")) == 9


def test_failing_reference_lookups_never_turn_into_clean(stack):
    """DynamoDB refusing every lookup: the object is retried, then blocked as `error`, never clean."""
    version = upload(stack, "blocked.jpg", samples.jpeg(samples.picture(54)))

    def refuse(**_):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}, "BatchGetItem")

    stack.scan.ddb.meta.events.register("before-call.dynamodb.BatchGetItem", refuse)
    deliver(stack)
    assert tags(stack, "blocked.jpg", version)["hashcheck-status"] == "error"
    dlq = stack.client("sqs").receive_message(QueueUrl=stack.outputs["ScanDeadLetterQueueUrl"])
    assert len(dlq.get("Messages", [])) == 1


def test_the_scanner_ignores_its_own_buckets(stack):
    from hashcheck.jobs.s3events import Upload
    from hashcheck.objects import ObjectRef

    outcome = stack.scan.scanner.scan(Upload(ObjectRef(stack.outputs["QuarantineBucketName"], "evidence/x.jpg")))
    assert outcome.status == "ignored"


def test_demo_summary_line_reports_every_object_as_expected():
    from hashcheck.tools import demo

    out = io.StringIO()
    assert demo.run(json_summary=True, out=out) == 0
    text = out.getvalue()
    assert "re-match of stored objects: 1 quarantined" in text and "released" in text
    summary = json.loads(text.strip().splitlines()[-1])
    assert summary["cases"] == 7 and summary["alerts"] == 7  # six on upload, one by the re-match
    statuses = {}
    for obj in summary["objects"]:
        assert obj["verdict"] == obj["expected"]
        in_quarantine = "quarantinebucket" in (obj["location"] or "")
        assert in_quarantine == (obj["status"] == "quarantined"), obj
        statuses[obj["status"]] = statuses.get(obj["status"], 0) + 1
    assert statuses == {"quarantined": 6, "released": 1, "clean": 4, "unscannable": 1}


def test_logs_of_a_match_carry_no_hash_values(stack, caplog):
    data = samples.EDITS["mirrored"](samples.picture(1))
    upload(stack, "logged.jpg", data)
    with caplog.at_level("DEBUG"):
        deliver(stack)
    # Our loggers (the library's and the handler's), with their extra fields. botocore's own DEBUG
    # logging prints request bodies, hashes included: it must stay off in production (README).
    logs = "\n".join(str(r.__dict__) for r in caplog.records if r.name.split(".")[0] == "hashcheck")
    fp, listed = fingerprint(data), fingerprint(LISTED)
    assert "logged.jpg" in logs and "quarantined" in logs  # the scan did log its outcome
    for value in (fp.md5, fp.sha1, fp.sha256, fp.pdq, fp.phash, listed.pdq, listed.phash, listed.sha256):
        assert value not in logs


def test_a_truncated_listed_jpeg_is_found_as_a_viewer_shows_it(stack):
    """Two bytes cut off a listed JPEG: other exact hashes, and Pillow's decoder refuses it, yet every
    browser still shows it. Decoded as far as its data goes, it matches and is quarantined."""
    upload(stack, "img/cut.jpg", LISTED[:-2])
    deliver(stack)
    (case,) = cases(stack)
    assert (case["key"]["S"], case["verdict"]["S"], case["status"]["S"]) == ("img/cut.jpg", "match", "quarantined")
    assert {m["M"]["algorithm"]["S"] for m in case["matches"]["L"]} >= {"pdq"}  # no exact hash is listed


def test_a_truncated_picture_that_matches_nothing_is_blocked_not_readable(stack):
    """Too much cut off to match (or unlisted), a truncated picture is still not clean: what is missing
    could be a listed picture's. It ends `unscannable`, unreadable to everyone but the scan path."""
    from tests.iam.evaluator import decide
    from tests.iam.stack import ACCOUNT, StackPolicies

    cut = samples.jpeg(samples.picture(321))
    version = upload(stack, "img/half.jpg", cut[: len(cut) * 9 // 10])
    deliver(stack)
    status = tags(stack, "img/half.jpg", version)["hashcheck-status"]
    assert status == "unscannable"
    policies = StackPolicies.of(stack)
    resource = f"{policies.arns['UploadBucket']}/img/cut.jpg"
    app = "arn:aws:iam::123456789012:role/WebApp"
    grant = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    context = {"aws:PrincipalArn": app, "aws:SecureTransport": "true", "s3:ExistingObjectTag/hashcheck-status": status}
    decision = decide(app, "s3:GetObject", resource, context, [grant], policies.resource_policy(resource), ACCOUNT)
    assert not decision.allowed and decision.deny == [("resource", "HashcheckBlockedIsUnreadable")]


def test_a_listed_picture_zipped_is_quarantined_and_the_case_names_it_inside(stack):
    """One step, zip it: the archive is opened, the picture inside matches, and the case and the alert
    say where it was."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", b"holiday pictures\n")
        z.writestr("2024/beach.jpg", samples.EDITS["jpeg-q50"](samples.picture(1)))
    upload(stack, "customers/3/photos.zip", archive.getvalue())
    deliver(stack)
    assert_quarantined_naming(stack, "2024/beach.jpg")


def assert_quarantined_naming(stack, member: str) -> None:
    """The one case is a quarantined match whose matches name `member`, and so does its one alert."""
    (case,) = cases(stack)
    assert (case["verdict"]["S"], case["status"]["S"]) == ("match", "quarantined")
    assert {m["M"]["member"]["S"] for m in case["matches"]["L"]} == {member}
    (alert,) = [json.loads(m["Message"]) for m in drain_bodies(stack, stack.inbox)]
    assert alert["lists"][0]["members"] == [member]


def test_a_fingerprint_too_large_to_hand_back_leaves_the_object_unscannable(stack, monkeypatch):
    """The fingerprint function answers within Lambda's 6 MB; an archive whose members would not fit
    is not clean for it (the limit is lowered here to a few hundred bytes)."""
    from hashcheck.jobs import reader

    monkeypatch.setattr(reader, "MAX_ANSWER", 400)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(5):
            z.writestr(f"pictures/{i}.jpg", samples.jpeg(samples.picture(60 + i)))
    version = upload(stack, "customers/4/many.zip", archive.getvalue())
    deliver(stack)
    assert tags(stack, "customers/4/many.zip", version)["hashcheck-status"] == "unscannable"


def test_a_listed_picture_shown_in_a_video_is_quarantined_and_the_case_names_its_time(stack):
    """One step, film it: a listed picture on screen for three seconds of a clip is found among the
    video's scenes; the case and the alert name the time range."""
    clip = samples.video(12, size=(320, 240), show=(samples.picture(1), 4.0, 7.0))
    upload(stack, "customers/3/clip.mp4", clip)
    deliver(stack)
    assert_quarantined_naming(stack, "t=4.0-7.0s")


def test_a_re_encoded_copy_of_a_listed_video_is_quarantined_by_its_vpdq(stack, tmp_path):
    """A hotline lists a video by vPDQ (as HMA exports it): the import stores the signal, the snapshot
    indexes its frames, and an upload of the video re-encoded smaller is a match naming the video."""
    from hashcheck.jobs.sync import import_file
    from hashcheck.lists.listformat import to_json

    listed = samples.video(8, seed=20, size=(320, 240))
    rows = [r for r in references_for(fingerprint(listed), "test-list", "video-1") if r.algorithm == "vpdq"]
    path = tmp_path / "videos.jsonl"
    path.write_text("".join(to_json(r) + "\n" for r in rows))
    table = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
    report = import_file(str(path), table, stack.outputs["ArtifactsBucketName"], stack.client("s3"))
    assert report.sources[0].added == 1
    manifest = json.loads(
        stack.client("s3")
        .get_object(Bucket=stack.outputs["ArtifactsBucketName"], Key=table.get_version().snapshot_key)["Body"]
        .read()
    )
    assert manifest["algorithms"]["vpdq"]["count"] == 8  # the listed video's frames

    upload(stack, "customers/5/copy.mp4", samples.video(8, seed=20, size=(240, 180), crf=35))
    upload(stack, "customers/5/other.mp4", samples.video(8, seed=70, size=(320, 240)))
    deliver(stack)
    (case,) = cases(stack)
    assert case["key"]["S"] == "customers/5/copy.mp4" and case["status"]["S"] == "quarantined"
    found = {(m["M"]["algorithm"]["S"], m["M"]["ref_id"]["S"], m["M"]["member"]["S"]) for m in case["matches"]["L"]}
    assert found == {("vpdq", "video-1", "t=0.0-8.0s")}
