"""Status tags (`hashcheck.objects`) and quarantine (`hashcheck.response.quarantine`) on moto's S3.

The objects are generated benign bytes that the tests pretend are listed.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import uuid
from collections.abc import Iterator
from urllib.parse import unquote

import boto3
import pytest
from moto import mock_aws

from hashcheck.objects import (
    MAX_TAGS,
    REASON_TAG,
    STATUS_TAG,
    ContentChanged,
    ObjectRef,
    get_status,
    get_tags,
    set_status,
)
from hashcheck.response.copy import part_ranges
from hashcheck.response.quarantine import META_SHA256, META_SOURCE_KEY, CopyNotVerified, Quarantine


@pytest.fixture(scope="module")
def s3():
    """One moto for the module (starting it is the slow part), with fake credentials: never real AWS."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_SESSION_TOKEN", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws():
            yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def buckets(s3):
    """A fresh versioned source bucket and Object Lock evidence bucket for each test."""
    suffix = uuid.uuid4().hex[:12]
    source, evidence = f"uploads-{suffix}", f"evidence-{suffix}"
    s3.create_bucket(Bucket=source)
    s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(Bucket=evidence, ObjectLockEnabledForBucket=True)
    return source, evidence


def benign(seed: str, size: int = 2048) -> bytes:
    return random.Random(seed).randbytes(size)


def upload(s3, bucket: str, key: str, body: bytes, **extra) -> ObjectRef:
    response = s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    return ObjectRef(bucket, key, response.get("VersionId"), response["ETag"], len(body))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_versions(s3, bucket: str) -> list[dict]:
    return s3.list_object_versions(Bucket=bucket).get("Versions", [])


def read(s3, bucket: str, key: str, version_id: str | None = None) -> bytes:
    args = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    return s3.get_object(**args)["Body"].read()


class Wrapped:
    """The real client, with some methods replaced: `overrides[name](real_method, **kwargs)`."""

    def __init__(self, client, **overrides):
        self._client = client
        self._overrides = overrides

    def __getattr__(self, name):
        real = getattr(self._client, name)
        override = self._overrides.get(name)
        if override is None:
            return real
        return lambda **kwargs: override(real, **kwargs)


def fail_once(error: Exception):
    """An override that raises `error` on the first call and calls through afterwards."""
    calls = []

    def override(real, **kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise error
        return real(**kwargs)

    return override


# -- ObjectRef and status tags ------------------------------------------------------------------


def test_identity_is_stable_and_ignores_etag_quotes():
    bare = ObjectRef("b", "k", "v1", "abc")
    quoted = ObjectRef("b", "k", "v1", '"abc"', size=10)
    assert bare.identity() == quoted.identity()
    assert len(bare.identity()) == 64
    assert bare.identity() != ObjectRef("b", "k", "v2", "abc").identity()
    assert bare.identity() != ObjectRef("b", "k2", "v1", "abc").identity()


def test_set_status_keeps_customer_tags_and_replaces_ours(s3, buckets):
    source, _ = buckets
    obj = upload(s3, source, "a.jpg", benign("a"), Tagging="team=web&keep=yes")
    set_status(s3, obj, "error", reason="retry exhausted")
    set_status(s3, obj, "clean")
    assert get_tags(s3, obj) == {"team": "web", "keep": "yes", STATUS_TAG: "clean"}  # stale reason removed
    assert get_status(s3, obj) == "clean"


def test_clean_is_written_only_over_a_status_of_ours_when_clean_objects_go_untagged(s3, buckets):
    """TagCleanObjects=false: an untagged clean object is left as it is (one GetObjectTagging, no PUT);
    one that carries a status of ours (blocked) gets `clean` over it, or it would stay blocked."""
    source, _ = buckets
    fresh = upload(s3, source, "fresh.jpg", benign("f"), Tagging="team=web")
    set_status(s3, fresh, "clean", tag_clean=False)
    assert get_tags(s3, fresh) == {"team": "web"}
    blocked = upload(s3, source, "blocked.jpg", benign("b"))
    set_status(s3, blocked, "unscannable", reason="could not decode")
    set_status(s3, blocked, "clean", tag_clean=False)
    assert get_tags(s3, blocked) == {STATUS_TAG: "clean"}


def test_set_status_makes_reason_a_valid_tag_value(s3, buckets):
    source, _ = buckets
    obj = upload(s3, source, "a.jpg", benign("a"))
    set_status(s3, obj, "unscannable", reason='decoder said: <bad> header; "x"\n' + "z" * 400)
    reason = get_tags(s3, obj)[REASON_TAG]
    assert len(reason) == 256
    assert reason.startswith("decoder said: _bad_ header_ _x__")


def test_set_status_tags_that_exact_version_only(s3, buckets):
    source, _ = buckets
    old = upload(s3, source, "a.jpg", benign("old"))
    new = upload(s3, source, "a.jpg", benign("new"))
    set_status(s3, old, "quarantined")
    assert get_status(s3, old) == "quarantined"
    assert get_status(s3, new) is None


def test_set_status_drops_our_reason_before_any_customer_tag(s3, buckets):
    source, _ = buckets
    customer = {f"t{i}": str(i) for i in range(MAX_TAGS - 1)}
    obj = upload(s3, source, "a.jpg", benign("a"), Tagging="&".join(f"{k}={v}" for k, v in customer.items()))
    displaced = set_status(s3, obj, "quarantined", reason="case 123")
    assert displaced == {}
    assert get_tags(s3, obj) == {**customer, STATUS_TAG: "quarantined"}


def test_set_status_displaces_a_customer_tag_when_ten_are_used(s3, buckets):
    source, _ = buckets
    customer = {f"t{i}": str(i) for i in range(MAX_TAGS)}
    obj = upload(s3, source, "a.jpg", benign("a"), Tagging="&".join(f"{k}={v}" for k, v in customer.items()))
    displaced = set_status(s3, obj, "quarantined", reason="case 123")
    tags = get_tags(s3, obj)
    assert tags[STATUS_TAG] == "quarantined"
    assert len(tags) == MAX_TAGS
    assert displaced == {"t9": "9"}  # the last in key order, handed back to be kept in the case
    assert {k: v for k, v in tags.items() if k != STATUS_TAG} == {k: v for k, v in customer.items() if k != "t9"}


def test_set_status_rejects_unknown_status(s3, buckets):
    source, _ = buckets
    obj = upload(s3, source, "a.jpg", benign("a"))
    with pytest.raises(ValueError):
        set_status(s3, obj, "deleted")
    set_status(s3, obj, "review")  # the scanner's hold for a weak near hit
    assert get_status(s3, obj) == "review"


# -- quarantine: move ---------------------------------------------------------------------------


def test_move_secures_evidence_and_deletes_only_that_version(s3, buckets):
    source, evidence = buckets
    data = benign("listed")
    obj = upload(s3, source, "u/pic.jpg", data, ContentType="image/jpeg", Metadata={"origin": "app"}, Tagging="a=1")
    later = upload(s3, source, "u/pic.jpg", benign("later upload"))  # a newer version, not matched
    set_status(s3, obj, "quarantined")

    result = Quarantine(s3, evidence).quarantine(obj, "case1", expected_sha256=sha256(data))

    assert (result.mode, result.checksum_verified, result.source_deleted, result.source_missing) == (
        "move",
        True,
        True,
        False,
    )
    assert (result.evidence_bucket, result.evidence_key) == (evidence, "evidence/case1/u/pic.jpg")
    head = s3.head_object(Bucket=evidence, Key=result.evidence_key, VersionId=result.evidence_version_id)
    assert read(s3, evidence, result.evidence_key, result.evidence_version_id) == data
    assert head["ContentType"] == "image/jpeg"
    assert head["Metadata"]["origin"] == "app"
    assert head["Metadata"]["hashcheck-source-bucket"] == source
    assert head["Metadata"]["hashcheck-source-version-id"] == obj.version_id
    assert head["Metadata"]["hashcheck-source-etag"] == obj.etag
    assert head["Metadata"][META_SHA256] == sha256(data)
    assert get_tags(s3, ObjectRef(evidence, result.evidence_key, result.evidence_version_id)) == {
        "a": "1",
        STATUS_TAG: "quarantined",
    }
    hold = s3.get_object_legal_hold(Bucket=evidence, Key=result.evidence_key, VersionId=result.evidence_version_id)
    assert hold["LegalHold"]["Status"] == "ON"

    listing = s3.list_object_versions(Bucket=source)
    assert [v["VersionId"] for v in listing.get("Versions", [])] == [later.version_id]
    assert listing.get("DeleteMarkers", []) == []  # deleted by version: no data left behind a marker


def test_without_expected_sha256_the_source_is_hashed(s3, buckets):
    source, evidence = buckets
    data = benign("listed")
    obj = upload(s3, source, "pic.jpg", data)
    result = Quarantine(s3, evidence).quarantine(obj, "case1")
    assert result.checksum_verified
    head = s3.head_object(Bucket=evidence, Key=result.evidence_key)
    assert head["Metadata"][META_SHA256] == sha256(data)


def test_retry_after_crash_between_copy_and_delete_finishes_with_one_copy(s3, buckets):
    source, evidence = buckets
    data = benign("listed")
    obj = upload(s3, source, "pic.jpg", data)
    crashing = Wrapped(s3, delete_object=fail_once(RuntimeError("Lambda timed out")))
    quarantine = Quarantine(crashing, evidence)

    with pytest.raises(RuntimeError):
        quarantine.quarantine(obj, "case1", expected_sha256=sha256(data))
    assert read(s3, source, obj.key, obj.version_id) == data  # still there, still blocked by its tag

    first = quarantine.quarantine(obj, "case1", expected_sha256=sha256(data))
    again = quarantine.quarantine(obj, "case1", expected_sha256=sha256(data))  # after the delete too

    assert len(evidence_versions(s3, evidence)) == 1
    assert first == again
    assert again.checksum_verified and again.source_deleted and not again.source_missing
    assert s3.list_object_versions(Bucket=source).get("Versions", []) == []


def test_retry_after_the_source_is_gone_verifies_from_recorded_checksum(s3, buckets):
    source, evidence = buckets
    data = benign("listed")
    obj = upload(s3, source, "pic.jpg", data)
    quarantine = Quarantine(s3, evidence)
    quarantine.quarantine(obj, "case1", expected_sha256=sha256(data))
    # The retry does not pass the hash: the evidence metadata recorded it.
    result = quarantine.quarantine(obj, "case1")
    assert result.checksum_verified and result.source_deleted
    assert len(evidence_versions(s3, evidence)) == 1


def test_source_gone_before_quarantine_reports_source_missing(s3, buckets):
    source, evidence = buckets
    obj = upload(s3, source, "pic.jpg", benign("listed"))
    s3.delete_object(Bucket=source, Key=obj.key, VersionId=obj.version_id)  # the uploader was quicker
    result = Quarantine(s3, evidence).quarantine(obj, "case1", expected_sha256=sha256(benign("listed")))
    assert result.source_missing
    assert not result.checksum_verified and not result.source_deleted
    assert result.evidence_key is None
    assert evidence_versions(s3, evidence) == []


def test_overwritten_unversioned_object_is_missing_and_the_new_content_untouched(s3):
    bucket, evidence = f"plain-{uuid.uuid4().hex[:12]}", f"evidence-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=evidence, ObjectLockEnabledForBucket=True)
    obj = upload(s3, bucket, "pic.jpg", benign("listed"))
    upload(s3, bucket, "pic.jpg", benign("replacement"))
    result = Quarantine(s3, evidence).quarantine(obj, "case1")
    assert result.source_missing
    assert read(s3, bucket, "pic.jpg") == benign("replacement")
    assert evidence_versions(s3, evidence) == []


def plain_buckets(s3) -> tuple[str, str]:
    """An unversioned source bucket (S3's default) and an evidence bucket."""
    bucket, evidence = f"plain-{uuid.uuid4().hex[:12]}", f"evidence-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=evidence, ObjectLockEnabledForBucket=True)
    return bucket, evidence


@contextlib.contextmanager
def overwrite_before(s3, operation: str, bucket: str, key: str, body: bytes) -> Iterator[None]:
    """The key is overwritten with `body` right before the next `operation` call (once)."""
    done, event, hook_id = [], f"before-call.s3.{operation}", f"overwrite-{uuid.uuid4().hex}"

    def overwrite(**_):
        if not done:
            done.append(True)
            s3.put_object(Bucket=bucket, Key=key, Body=body)

    s3.meta.events.register_first(event, overwrite, unique_id=hook_id)
    try:
        yield
    finally:
        s3.meta.events.unregister(event, unique_id=hook_id)


def test_a_status_is_not_written_on_an_unversioned_key_overwritten_since_it_was_judged(s3):
    bucket, _ = plain_buckets(s3)
    judged = upload(s3, bucket, "pic.jpg", benign("judged"))
    upload(s3, bucket, "pic.jpg", benign("newer"))
    with pytest.raises(ContentChanged):
        set_status(s3, judged, "clean")
    assert get_tags(s3, ObjectRef(bucket, "pic.jpg")) == {}  # the newer content waits for its own scan


@pytest.mark.parametrize(("status", "left"), [("clean", "pending"), ("quarantined", "quarantined")])
def test_a_key_overwritten_while_being_tagged_is_left_blocked(s3, status, left):
    """S3 cannot tag conditionally: a readable status that landed on newer content becomes `pending`."""
    bucket, _ = plain_buckets(s3)
    judged = upload(s3, bucket, "pic.jpg", benign("judged"))
    with overwrite_before(s3, "PutObjectTagging", bucket, "pic.jpg", benign("newer")), pytest.raises(ContentChanged):
        set_status(s3, judged, status)
    assert get_status(s3, ObjectRef(bucket, "pic.jpg")) == left


def test_a_move_never_deletes_content_written_after_the_evidence_copy(s3):
    bucket, evidence = plain_buckets(s3)
    data = benign("listed")
    obj = upload(s3, bucket, "pic.jpg", data)
    with overwrite_before(s3, "DeleteObject", bucket, "pic.jpg", benign("newer")):
        result = Quarantine(s3, evidence).quarantine(obj, "case1", expected_sha256=sha256(data))
    assert result.checksum_verified and result.legal_hold
    assert read(s3, evidence, result.evidence_key) == data
    assert read(s3, bucket, "pic.jpg") == benign("newer")  # the delete was conditional on the matched ETag


@pytest.mark.parametrize("with_checksum", [True, False], ids=["stored-sha256", "streamed"])
def test_corrupted_copy_is_detected_and_the_source_kept(s3, buckets, with_checksum):
    source, evidence = buckets
    data = benign("listed")
    obj = upload(s3, source, "pic.jpg", data)

    def corrupting_copy(real, **kwargs):
        """S3 'stores' different bytes than it was asked to copy."""
        real(**kwargs)
        bad = bytearray(data)
        bad[100] ^= 0xFF
        extra = {"ChecksumAlgorithm": "SHA256"} if with_checksum else {}
        put = s3.put_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"], Body=bytes(bad), **extra)
        return {"VersionId": put["VersionId"]}

    with pytest.raises(CopyNotVerified):
        Quarantine(Wrapped(s3, copy_object=corrupting_copy), evidence).quarantine(obj, "c", sha256(data))
    assert read(s3, source, obj.key, obj.version_id) == data

    result = Quarantine(s3, evidence).quarantine(obj, "c", sha256(data))  # the caller's retry
    assert result.checksum_verified and result.source_deleted
    assert read(s3, evidence, result.evidence_key, result.evidence_version_id) == data


def test_source_gone_after_a_corrupted_copy_is_missing_not_verified(s3, buckets):
    source, evidence = buckets
    data = benign("listed")
    obj = upload(s3, source, "pic.jpg", data)

    def corrupting_copy(real, **kwargs):
        put = s3.put_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"], Body=b"not the evidence")
        return {"VersionId": put["VersionId"]}

    with pytest.raises(CopyNotVerified):
        Quarantine(Wrapped(s3, copy_object=corrupting_copy), evidence).quarantine(obj, "c", sha256(data))
    s3.delete_object(Bucket=source, Key=obj.key, VersionId=obj.version_id)  # gone before the retry

    result = Quarantine(s3, evidence).quarantine(obj, "c", sha256(data))
    assert result.source_missing and not result.checksum_verified
    assert result.evidence_key == "evidence/c/pic.jpg"  # a person can look at what is there
    # all that is left of the object: held like verified evidence, and the result says so
    assert result.legal_hold
    hold = s3.get_object_legal_hold(Bucket=evidence, Key=result.evidence_key, VersionId=result.evidence_version_id)
    assert hold["LegalHold"]["Status"] == "ON"


def test_a_key_too_long_for_the_evidence_prefix_keeps_its_end(s3, buckets):
    source, evidence = buckets
    key = "u/" + "é" * 480 + "/photo.jpg"  # 974 bytes: S3 takes it, `evidence/<case id>/` + it would not fit
    data = benign("long")
    obj = upload(s3, source, key, data)
    case_id = "f" * 64
    result = Quarantine(s3, evidence).quarantine(obj, case_id, expected_sha256=sha256(data))
    assert result.checksum_verified and result.source_deleted and result.legal_hold
    assert result.evidence_key is not None
    assert len(result.evidence_key.encode()) <= 1024
    assert result.evidence_key.startswith(f"evidence/{case_id}/") and result.evidence_key.endswith("é/photo.jpg")
    assert read(s3, evidence, result.evidence_key) == data
    again = Quarantine(s3, evidence).quarantine(obj, case_id, expected_sha256=sha256(data))  # a retry finds it
    assert again.evidence_key == result.evidence_key and len(evidence_versions(s3, evidence)) == 1


def test_key_with_spaces_and_unicode(s3, buckets):
    source, evidence = buckets
    key = "Fotos/été 2024/ünï cødé+plus&co 写真.jpg"
    data = benign("unicode")
    obj = upload(s3, source, key, data)
    result = Quarantine(s3, evidence).quarantine(obj, "case1", expected_sha256=sha256(data))
    assert result.evidence_key == f"evidence/case1/{key}"
    assert read(s3, evidence, result.evidence_key) == data
    metadata = s3.head_object(Bucket=evidence, Key=result.evidence_key)["Metadata"]
    assert unquote(metadata[META_SOURCE_KEY]) == key
    assert s3.list_object_versions(Bucket=source).get("Versions", []) == []


def test_kms_key_encrypts_the_evidence(s3, buckets):
    source, evidence = buckets
    key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    data = benign("listed")
    obj = upload(s3, source, "pic.jpg", data)
    result = Quarantine(s3, evidence, kms_key_id=key_id).quarantine(obj, "case1", expected_sha256=sha256(data))
    head = s3.head_object(Bucket=evidence, Key=result.evidence_key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)


def test_large_objects_use_multipart_copy(s3, buckets):
    source, evidence = buckets
    data = benign("big", 6 * 1024 * 1024)
    obj = upload(s3, source, "video.mp4", data, Metadata={"origin": "app"}, Tagging="a=1")
    calls = []

    def counting_part_copy(real, **kwargs):
        calls.append(kwargs["CopySourceRange"])
        return real(**kwargs)

    client = Wrapped(s3, upload_part_copy=counting_part_copy)
    small_limits = {"multipart_threshold": 5 * 1024 * 1024, "part_size": 5 * 1024 * 1024}
    result = Quarantine(client, evidence, **small_limits).quarantine(obj, "case1", expected_sha256=sha256(data))

    assert calls == ["bytes=0-5242879", f"bytes=5242880-{len(data) - 1}"]
    assert result.checksum_verified and result.source_deleted
    assert read(s3, evidence, result.evidence_key) == data
    head = s3.head_object(Bucket=evidence, Key=result.evidence_key)
    assert head["Metadata"]["origin"] == "app"
    assert get_tags(s3, ObjectRef(evidence, result.evidence_key)) == {"a": "1"}
    hold = s3.get_object_legal_hold(Bucket=evidence, Key=result.evidence_key, VersionId=result.evidence_version_id)
    assert hold["LegalHold"]["Status"] == "ON"


def test_part_ranges_cover_the_object_within_the_part_limit():
    assert part_ranges(10, 4) == [(0, 3), (4, 7), (8, 9)]
    ranges = part_ranges(5 * 1024**4, 512 * 1024**2)  # 5 TB: parts grow to stay within 10,000
    assert len(ranges) <= 10_000
    assert ranges[0][0] == 0 and ranges[-1][1] == 5 * 1024**4 - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))


# -- quarantine: other modes --------------------------------------------------------------------


def test_tag_only_blocks_in_place(s3, buckets):
    source, evidence = buckets
    data = benign("listed")
    obj = upload(s3, source, "pic.jpg", data, Tagging="a=1")
    result = Quarantine(s3, evidence, mode="tag-only").quarantine(obj, "case1", expected_sha256=sha256(data))
    assert (result.mode, result.evidence_key, result.source_deleted) == ("tag-only", None, False)
    assert get_tags(s3, obj) == {"a": "1", STATUS_TAG: "quarantined"}
    assert read(s3, source, obj.key, obj.version_id) == data
    assert evidence_versions(s3, evidence) == []


def test_copy_only_keeps_the_source(s3, buckets):
    source, evidence = buckets
    data = benign("listed")
    obj = upload(s3, source, "pic.jpg", data)
    result = Quarantine(s3, evidence, mode="copy-only").quarantine(obj, "case1", expected_sha256=sha256(data))
    assert result.checksum_verified and not result.source_deleted
    assert read(s3, source, obj.key, obj.version_id) == data
    assert read(s3, evidence, result.evidence_key) == data
    hold = s3.get_object_legal_hold(Bucket=evidence, Key=result.evidence_key, VersionId=result.evidence_version_id)
    assert hold["LegalHold"]["Status"] == "ON"


def test_unknown_mode_is_refused(s3):
    with pytest.raises(ValueError):
        Quarantine(s3, "evidence", mode="delete")


def test_evidence_bucket_with_default_retention_as_deployed(s3):
    """The stack's evidence bucket has a default retention: the copy gets it, plus the legal hold."""
    source, evidence = f"uploads-{uuid.uuid4().hex[:12]}", f"evidence-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", region_name="us-east-1")
    # moto (unlike S3) wants a body checksum header on a CopyObject into a bucket with default retention.
    client.meta.events.register("before-sign.s3.CopyObject", _sdk_checksum_header)
    client.create_bucket(Bucket=source)
    client.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    client.create_bucket(Bucket=evidence, ObjectLockEnabledForBucket=True)
    retention = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 365}}
    client.put_object_lock_configuration(
        Bucket=evidence, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": retention}
    )
    data = benign("listed")
    obj = upload(client, source, "pic.jpg", data)
    result = Quarantine(client, evidence).quarantine(obj, "case1", expected_sha256=sha256(data))
    head = client.head_object(Bucket=evidence, Key=result.evidence_key, VersionId=result.evidence_version_id)
    assert (head["ObjectLockMode"], head["ObjectLockLegalHoldStatus"]) == ("GOVERNANCE", "ON")
    assert result.source_deleted


def _sdk_checksum_header(request, **_kwargs):
    request.headers["x-amz-sdk-checksum-algorithm"] = "SHA256"
