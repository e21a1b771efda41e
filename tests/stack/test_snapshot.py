"""The near-match snapshot: build from the table, publish to S3, load with checksums, watch the version."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest

from hashcheck import aws as aws_module
from hashcheck.lists.listformat import Reference
from hashcheck.matching import snapshot
from hashcheck.matching.snapshot import S3IndexLoader, SnapshotError
from hashcheck.tables.reference_table import ReferenceTable, Retry
from tests.helpers import mocked_aws

TABLE, BUCKET = "ReferenceTable", "artifacts"
FAST = Retry(attempts=4, base_delay=0.001, sleep=lambda _s: None)


def table(ddb) -> ReferenceTable:
    return ReferenceTable(ddb, TABLE, FAST)


def ref(algorithm: str, seed: str, deleted: bool = False) -> Reference:
    digits = {"md5": 32, "pdq": 64, "phash": 16}[algorithm]
    return Reference(algorithm, hashlib.sha256(seed.encode()).hexdigest()[:digits], "L1", seed, None, deleted)


def flip(hex_value: str, bits: int) -> str:
    return format(int(hex_value, 16) ^ ((1 << bits) - 1), f"0{len(hex_value)}x")


@pytest.fixture(scope="module")
def aws():
    with mocked_aws():
        yield boto3.client("dynamodb", region_name="us-east-1"), boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def clients(aws):
    ddb, s3 = aws
    ddb.create_table(**ReferenceTable.definition(TABLE))
    s3.create_bucket(Bucket=BUCKET)
    yield ddb, s3
    ddb.delete_table(TableName=TABLE)
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def publish_version(ddb, s3) -> str:
    current = table(ddb).get_version()
    key = snapshot.publish(s3, BUCKET, current.version + 1, snapshot.build(table(ddb)))
    table(ddb).bump_version(current.version, snapshot_key=key)
    return key


def test_build_gives_sorted_rows_per_perceptual_algorithm(clients):
    ddb, _ = clients
    rows = [ref("pdq", f"p{i}") for i in range(40)] + [ref("phash", "h"), ref("md5", "m")]
    table(ddb).apply_rows(rows + [ref("pdq", "p7", deleted=True)])
    built = snapshot.build(table(ddb))
    assert set(built) == {"pdq", "phash"}
    index, hexes = built["pdq"]
    assert list(hexes) == sorted(r.hash for r in rows[:40] if r.id != "p7")
    assert len(index) == 39 and index.search_hex([hexes[5]], 0) == [(0, 5, 0)]


def test_publish_writes_objects_and_a_manifest_with_checksums(clients):
    ddb, s3 = clients
    table(ddb).apply_rows([ref("pdq", "a"), ref("pdq", "b")])
    key = publish_version(ddb, s3)
    assert key == "snapshots/v00000001/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert manifest["version"] == 1 and manifest["format"] == 2 and manifest["created"]
    entry = manifest["algorithms"]["pdq"]
    assert entry["count"] == 2 and entry["nbytes"] == 32
    assert "rows" not in entry  # the index holds the hashes its rows name: not written twice
    data = s3.get_object(Bucket=BUCKET, Key=entry["index"]["key"])["Body"].read()
    assert entry["index"]["size"] == len(data) and entry["index"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert "phash" not in manifest["algorithms"]


def test_the_loader_finds_near_hits_through_the_store(clients):
    ddb, s3 = clients
    listed = ref("pdq", "listed")
    table(ddb).apply_rows([listed, ref("pdq", "other"), ref("phash", "x")])
    publish_version(ddb, s3)
    store = S3IndexLoader(s3, BUCKET, table(ddb)).store()
    hits = store.near("pdq", [flip(listed.hash, 6)], 31)
    assert [(h.reference, h.distance) for h in hits] == [(listed, 6)]
    assert store.exact([listed.key]) == {listed.key: [listed]}


def test_without_a_snapshot_the_loader_scans_the_table(clients):
    ddb, s3 = clients
    listed = ref("phash", "a")
    table(ddb).apply_rows([listed])
    loaded = S3IndexLoader(s3, BUCKET, table(ddb))("phash")
    assert list(loaded[1]) == [listed.hash]
    assert S3IndexLoader(s3, BUCKET, table(ddb))("pdq") is None


def format_1(s3, manifest_key: str) -> None:
    """Rewrite a snapshot as the first format wrote it: a rows object for every algorithm."""
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    for entry in manifest["algorithms"].values():
        index = s3.get_object(Bucket=BUCKET, Key=entry["index"]["key"])["Body"].read()
        rows = snapshot.HammingIndex.from_bytes(index).rows().tobytes()
        key = entry["index"]["key"].replace(".index", ".rows")
        s3.put_object(Bucket=BUCKET, Key=key, Body=rows)
        entry["rows"] = {"key": key, "size": len(rows), "sha256": hashlib.sha256(rows).hexdigest()}
    manifest["format"] = 1
    s3.put_object(Bucket=BUCKET, Key=manifest_key, Body=json.dumps(manifest).encode())


def test_a_format_1_snapshot_still_loads(clients):
    ddb, s3 = clients
    listed = ref("pdq", "listed")
    table(ddb).apply_rows([listed, ref("pdq", "other")])
    format_1(s3, publish_version(ddb, s3))
    hits = S3IndexLoader(s3, BUCKET, table(ddb)).store().near("pdq", [flip(listed.hash, 6)], 31)
    assert [(h.reference, h.distance) for h in hits] == [(listed, 6)]


def test_a_large_snapshot_object_is_read_in_ranges_into_the_same_bytes(clients, monkeypatch):
    ddb, s3 = clients
    listed = [ref("pdq", f"p{i}") for i in range(300)]
    table(ddb).apply_rows(listed)
    publish_version(ddb, s3)
    monkeypatch.setattr(aws_module, "RANGE_BYTES", 64 * 1024)  # the index (~4.2 MB) in ~65 ranges
    ranges = []

    def seen(params, **_):
        ranges.append(params.get("Range"))

    s3.meta.events.register("before-parameter-build.s3.GetObject", seen)
    try:
        store = S3IndexLoader(s3, BUCKET, table(ddb)).store()
        hits = store.near("pdq", [flip(listed[123].hash, 9)], 31)
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.GetObject", seen)
    assert [(h.reference, h.distance) for h in hits] == [(listed[123], 9)]
    assert sum(1 for r in ranges if r) > 60


@pytest.mark.parametrize("part", ["index", "rows"])
def test_a_corrupt_snapshot_raises_instead_of_giving_an_empty_index(clients, part):
    ddb, s3 = clients
    table(ddb).apply_rows([ref("pdq", "a")])
    manifest_key = publish_version(ddb, s3)
    format_1(s3, manifest_key)  # it has both parts
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    key = manifest["algorithms"]["pdq"][part]["key"]
    data = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[-1] ^= 1
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))
    with pytest.raises(SnapshotError, match="checksum"):
        S3IndexLoader(s3, BUCKET, table(ddb))("pdq")
    s3.delete_object(Bucket=BUCKET, Key=key)
    with pytest.raises(SnapshotError, match="missing"):
        S3IndexLoader(s3, BUCKET, table(ddb))("pdq")


def test_a_warm_scanner_reloads_within_the_check_interval(clients):
    ddb, s3 = clients
    first, second = ref("pdq", "first"), ref("pdq", "second")
    table(ddb).apply_rows([first])
    publish_version(ddb, s3)
    clock = [1000.0]
    loader = S3IndexLoader(s3, BUCKET, table(ddb), check_seconds=30, clock=lambda: clock[0])
    store = loader.store()
    assert [h.reference for h in store.near("pdq", [second.hash], 0)] == []
    table(ddb).apply_rows([second])
    publish_version(ddb, s3)  # version 2 names a snapshot holding `second`
    clock[0] += 29
    assert store.near("pdq", [second.hash], 0) == []  # not checked yet: the old index answers
    clock[0] += 1
    assert [h.reference for h in store.near("pdq", [second.hash], 0)] == [second]
    assert not store.check()  # checked just now


def test_prune_keeps_the_current_and_previous_versions(clients):
    ddb, s3 = clients
    table(ddb).apply_rows([ref("pdq", "a")])
    for _ in range(3):
        publish_version(ddb, s3)
    assert snapshot.prune(s3, BUCKET, keep_from_version=2) == 2  # v1's index and manifest
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert {k.split("/")[1] for k in keys} == {"v00000002", "v00000003"}
