"""The list sync end to end on moto: sources -> ReferenceTable -> snapshot -> version -> checkpoints."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from hashcheck.aws import Clients
from hashcheck.jobs import sync as sync_module
from hashcheck.jobs.sync import (
    FINISH_RESERVE_S,
    SyncConfig,
    import_file,
    run_sync,
    sync_sources,
)
from hashcheck.lists.deltas import read_delta
from hashcheck.lists.listformat import Reference
from hashcheck.lists.sources import CAPS, SourceSpec
from hashcheck.lists.sources.https import HttpsSource
from hashcheck.lists.sources.s3 import S3Source
from hashcheck.matching import snapshot
from hashcheck.matching.snapshot import S3IndexLoader
from hashcheck.tables.reference_table import ReferenceTable, Retry
from tests.fake_provider import FakeProvider
from tests.helpers import mocked_aws

TABLE, BUCKET = "ReferenceTable", "artifacts"
FAST = Retry(attempts=4, base_delay=0.001, sleep=lambda _s: None)
NOW = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def ref(algorithm: str, seed: str, list_id: str = "L1", deleted: bool = False) -> Reference:
    digits = {"md5": 32, "sha1": 40, "pdq": 64, "phash": 16}[algorithm]
    return Reference(algorithm, hashlib.sha256(seed.encode()).hexdigest()[:digits], list_id, seed, None, deleted)


def line(reference: Reference) -> str:
    return json.dumps({**reference.__dict__, "category": reference.category or ""})


def flip(hex_value: str, bits: int) -> str:
    return format(int(hex_value, 16) ^ ((1 << bits) - 1), f"0{len(hex_value)}x")


class Crash(Exception):
    """What a Lambda timeout looks like to the code that was running: it simply stops."""


class CrashingDynamo:
    """The real (moto) client, except that BatchWriteItem raises after `after` successful calls."""

    def __init__(self, client, after: int):
        self._client, self.left = client, after

    def __getattr__(self, name):
        return getattr(self._client, name)

    def batch_write_item(self, **kwargs):
        if self.left <= 0:
            raise Crash("the function timed out")
        self.left -= 1
        return self._client.batch_write_item(**kwargs)


@pytest.fixture(scope="module")
def aws():
    with mocked_aws():
        yield boto3.client("dynamodb", region_name="us-east-1"), boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def clients(aws):
    ddb, s3 = aws
    ddb.create_table(**ReferenceTable.definition(TABLE))
    s3.create_bucket(Bucket=BUCKET)
    yield Clients(dynamodb=ddb, s3=s3)
    ddb.delete_table(TableName=TABLE)
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def provider():
    with FakeProvider(page_size=10) as fake:
        yield fake


def feed(provider: FakeProvider, list_id: str | None = "L1", max_bad_share: float = 0.01, **caps: int):
    source = HttpsSource("hotline", provider.url, allow_insecure_loopback=True, backoff=0.01)
    return source, SourceSpec("hotline", "https", list_id, max_bad_share, caps={**CAPS, **caps})


def references(clients) -> ReferenceTable:
    return ReferenceTable(clients.dynamodb, TABLE, FAST)


def load_checkpoint(clients, source: str) -> dict | None:
    return references(clients).checkpoint(source)


def sync(clients, *jobs, ddb=None):
    if ddb is not None:
        clients = Clients(dynamodb=ddb, s3=clients.s3)
    return sync_sources(list(jobs), references(clients), BUCKET, clients.s3, now=lambda: NOW)


def table(clients) -> dict:
    pages = clients.dynamodb.get_paginator("scan").paginate(TableName=TABLE)
    return {item["pk"]["S"]: item for page in pages for item in page["Items"]}


def references_only(items: dict) -> dict:
    return {pk: item for pk, item in items.items() if not pk.startswith("meta#")}


def snapshot_objects(clients) -> dict:
    listing = clients.s3.list_objects_v2(Bucket=BUCKET, Prefix="snapshots/").get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listing}


def scanner(clients, check_seconds: float = 30):
    return S3IndexLoader(clients.s3, BUCKET, references(clients), check_seconds).store()


LISTED = [ref("md5", "a"), ref("pdq", "a"), ref("phash", "a"), ref("md5", "b"), ref("pdq", "b")]


# --- the happy path ---------------------------------------------------------------------------------------


def test_a_sync_makes_exact_and_near_lookups_work(clients, provider):
    provider.append(*map(line, LISTED))
    report = sync(clients, feed(provider))
    assert [(s.name, s.status, s.rows, s.added) for s in report.sources] == [("hotline", "applied", 5, 5)]
    assert report.version == 1 and report.index_size == {"pdq": 2, "phash": 1}
    assert report.snapshot_key == references(clients).get_version().snapshot_key
    assert load_checkpoint(clients, "hotline")["cursor"] == "5"
    store = scanner(clients)
    assert store.exact([LISTED[0].key]) == {LISTED[0].key: [LISTED[0]]}
    hits = store.near("pdq", [flip(LISTED[1].hash, 9)], 31)
    assert [(h.reference, h.distance) for h in hits] == [(LISTED[1], 9)]


def test_tombstones_take_effect_and_an_unchanged_run_publishes_nothing(clients, provider):
    provider.append(*map(line, LISTED))
    sync(clients, feed(provider))
    store = scanner(clients, check_seconds=0)  # checks the version on every near lookup
    assert store.near("pdq", [LISTED[1].hash], 0)
    quiet = sync(clients, feed(provider))
    assert quiet.version == 1 and quiet.sources[0].rows == 0  # same cursor: empty delta, no rebuild
    provider.append(line(ref("pdq", "a", deleted=True)), line(ref("md5", "a", deleted=True)))
    report = sync(clients, feed(provider))
    assert report.sources[0].removed == 2 and report.version == 2 and report.index_size["pdq"] == 1
    assert store.exact([LISTED[0].key]) == {}
    assert store.near("pdq", [LISTED[1].hash], 0) == []
    assert len(store.store._index("pdq")[0]) == 1  # reloaded: the new snapshot no longer carries it


# --- rejecting implausible deltas -------------------------------------------------------------------------


def state(clients) -> tuple:
    version = references(clients).get_version()
    return table(clients), snapshot_objects(clients), version, load_checkpoint(clients, "hotline")


def test_a_checksum_mismatch_rejects_the_whole_delta(clients, provider):
    provider.append(*map(line, LISTED))
    sync(clients, feed(provider))
    before = state(clients)
    provider.append(*(line(ref("md5", f"new{i}")) for i in range(25)))  # several pages, the last one corrupt
    provider.checksums = True
    provider.page_size = 10
    original = provider._page

    def corrupt_last_page(query, headers):
        status, out, body = original(query, headers)
        if "X-Cursor" in out:
            out["X-Content-SHA256"] = "0" * 64
        return status, out, body

    provider._page = corrupt_last_page
    report = sync(clients, feed(provider))
    assert report.sources[0].status == "rejected" and "checksum" in report.sources[0].reason
    assert state(clients) == before


def test_too_many_bad_rows_reject_the_whole_delta(clients, provider):
    provider.append(*map(line, LISTED))
    sync(clients, feed(provider))
    before = state(clients)
    provider.append(*(line(ref("md5", f"n{i}")) for i in range(50)), '{"algorithm": "md5", "hash": "zz"}')
    report = sync(clients, feed(provider))  # 1 of 51 bad: over 1%
    assert report.sources[0].status == "rejected" and report.sources[0].rejected == 1
    assert state(clients) == before
    assert sync(clients, feed(provider, max_bad_share=0.05)).sources[0].status == "applied"


def test_rows_of_another_list_are_rejected(clients, provider):
    provider.append(line(ref("md5", "mine")), line(ref("md5", "theirs", list_id="L2", deleted=True)))
    report = sync(clients, feed(provider, max_bad_share=0.5))
    assert (report.sources[0].rows, report.sources[0].rejected) == (1, 1)
    assert report.sources[0].rejections == {"the row's list id is not this source's list_id": 1}
    assert report.sources[0].rejected_lines == [2]


# --- hostile sources: each rule against a feed that breaks it ---------------------------------------------


def test_a_feed_withdrawing_more_than_its_cap_per_run_is_rejected_whole(clients, provider):
    provider.append(*(line(ref("md5", f"r{i}")) for i in range(12)))
    assert sync(clients, feed(provider)).sources[0].status == "applied"
    before = state(clients)
    provider.append(*(line(ref("md5", f"r{i}", deleted=True)) for i in range(12)))  # a compromised feed
    report = sync(clients, feed(provider, max_removed=10)).sources[0]
    assert report.status == "rejected" and "withdraw 12 references, more than max_removed 10" in report.reason
    assert state(clients) == before  # nothing withdrawn, the checkpoint kept: the next run tries again
    assert sync(clients, feed(provider, max_removed=12)).sources[0].removed == 12


def test_a_feed_adding_more_than_its_cap_per_run_is_rejected_whole(clients, provider):
    provider.append(*(line(ref("md5", f"a{i}")) for i in range(30)))
    report = sync(clients, feed(provider, max_added=20)).sources[0]
    assert report.status == "rejected" and "add 30 references, more than max_added 20" in report.reason
    assert references_only(table(clients)) == {}


def test_the_daily_cap_counts_every_run_of_the_day(clients, provider):
    provider.append(*(line(ref("md5", f"d{i}")) for i in range(8)))
    caps = {"max_removed": 10, "max_removed_per_day": 10}
    assert sync(clients, feed(provider)).sources[0].added == 8
    provider.append(*(line(ref("md5", f"d{i}", deleted=True)) for i in range(6)))
    assert sync(clients, feed(provider, **caps)).sources[0].removed == 6  # 6 of the day's 10
    before = state(clients)
    provider.append(*(line(ref("md5", f"d{i}", deleted=True)) for i in range(6, 8)), line(ref("md5", "d0")))
    provider.append(*(line(ref("md5", f"x{i}", deleted=True)) for i in range(3)))  # 5 more withdrawals
    report = sync(clients, feed(provider, **caps)).sources[0]
    assert report.status == "rejected" and "after 6 today, more than max_removed_per_day 10" in report.reason
    assert state(clients) == before


def test_an_overlong_hash_of_an_unknown_algorithm_is_rejected_by_line_and_the_rest_applied(clients, provider):
    """A key over DynamoDB's limit would fail every run of the source; the row is rejected instead."""
    huge = json.dumps({"algorithm": "photodna", "hash": "ab" * 1500, "list": "L1", "id": "big"})
    fine = json.dumps({"algorithm": "photodna", "hash": "ab" * 144, "list": "L1", "id": "pdna"})
    provider.append(line(ref("md5", "ok")), huge, fine)
    report = sync(clients, feed(provider, max_bad_share=0.5)).sources[0]
    assert report.status == "applied" and (report.rows, report.rejected) == (2, 1)
    assert report.rejections == {"photodna hash has N hex digits, more than N": 1} and report.rejected_lines == [2]
    hashes = {k.split("#")[0] for k in references_only(table(clients)) if not k.startswith("image#")}
    assert hashes == {"md5", "photodna"}


# --- crash-safety -----------------------------------------------------------------------------------------


def test_a_crash_mid_apply_then_a_rerun_reaches_the_table_of_one_clean_run(aws, clients, provider):
    rows = [ref(alg, f"img{i}") for i in range(40) for alg in ("md5", "pdq")]
    rows += [ref("pdq", "img3", deleted=True), ref("md5", "img4", deleted=True)]
    provider.append(*map(line, rows))
    clean_report = sync(clients, feed(provider))
    clean = references_only(table(clients))
    clients.dynamodb.delete_table(TableName=TABLE)
    clients.dynamodb.create_table(**ReferenceTable.definition(TABLE))

    crashed = sync(clients, feed(provider), ddb=CrashingDynamo(clients.dynamodb, after=3))
    assert crashed.sources[0].status == "failed" and "Crash" in crashed.sources[0].reason
    assert crashed.source_metrics() == [("hotline", "SourceSynced", 0.0)]  # ListSourceAlarm names it
    assert load_checkpoint(clients, "hotline") is None  # the checkpoint did not move
    assert 0 < len(references_only(table(clients))) < len(clean)
    rerun = sync(clients, feed(provider))
    assert rerun.source_metrics() == [("hotline", "SourceSynced", 1.0)]
    assert references_only(table(clients)) == clean
    assert rerun.index_size == clean_report.index_size
    assert load_checkpoint(clients, "hotline")["cursor"] == str(len(rows))


def test_a_crash_before_the_checkpoint_is_stored_repeats_the_delta_harmlessly(clients, provider):
    provider.append(*map(line, LISTED))

    class FailingCheckpoint:
        def __init__(self, client):
            self._client = client

        def __getattr__(self, name):
            return getattr(self._client, name)

        def put_item(self, **kwargs):
            if kwargs["Item"]["pk"]["S"].startswith("meta#checkpoint#"):
                raise Crash("timed out after the version bump")
            return self._client.put_item(**kwargs)

    with pytest.raises(Crash):
        sync(clients, feed(provider), ddb=FailingCheckpoint(clients.dynamodb))
    after_crash = references_only(table(clients))
    assert references(clients).get_version().version == 1
    report = sync(clients, feed(provider))
    assert report.sources[0].rows == 5 and report.sources[0].added == 0  # the same delta, already applied
    assert references_only(table(clients)) == after_crash and report.version == 2


# --- deltas larger than one invocation ------------------------------------------------------------------


class Invocation:
    """Seconds left in a Lambda invocation that has time for `rows` more rows (one check per row)."""

    def __init__(self, rows: int | None):
        self.rows = rows

    def __call__(self) -> float:
        if self.rows is None:
            return 900.0
        self.rows -= 1
        return FINISH_RESERVE_S + 1 if self.rows >= 0 else FINISH_RESERVE_S - 1


def sync_within(clients, provider, rows: int | None):
    return sync_sources(
        [feed(provider)], references(clients), BUCKET, clients.s3, now=lambda: NOW, remaining=Invocation(rows)
    )


BIG = [ref(alg, f"big{i}") for i in range(30) for alg in ("md5", "pdq")] + [ref("md5", "big2", deleted=True)]


def test_a_delta_too_big_for_one_run_is_applied_in_parts_and_resumed(clients, provider):
    provider.append(*map(line, BIG))
    first = sync_within(clients, provider, rows=25)
    assert [(s.status, s.rows, s.added) for s in first.sources] == [("partial", 61, 25)]
    assert first.ok and first.version == 1 and first.index_size == {"pdq": 12}  # the applied part is live
    assert load_checkpoint(clients, "hotline") is None  # the delta is not done
    assert scanner(clients).exact([BIG[0].key]) == {BIG[0].key: [BIG[0]]}

    second = sync_within(clients, provider, rows=25)
    assert [(s.status, s.resumed_after, s.added) for s in second.sources] == [("partial", 25, 25)]
    last = sync_within(clients, provider, rows=None)
    assert [(s.status, s.resumed_after, s.added, s.removed) for s in last.sources] == [("applied", 50, 10, 1)]
    assert load_checkpoint(clients, "hotline")["cursor"] == str(len(BIG))
    assert "meta#progress#hotline" not in table(clients)
    in_parts = references_only(table(clients))

    clients.dynamodb.delete_table(TableName=TABLE)
    clients.dynamodb.create_table(**ReferenceTable.definition(TABLE))
    sync(clients, feed(provider))
    assert references_only(table(clients)) == in_parts  # the same table as one run without a time limit


def test_the_time_kept_for_the_snapshot_grows_with_the_hashes_it_will_index(clients, provider):
    """A run stops applying while there is still time to rebuild the snapshot of what is then live:
    the more the last snapshot indexed, the earlier (here: a reserve the invocation does not have)."""
    provider.append(*map(line, BIG))
    assert sync_within(clients, provider, rows=None).index_size == {"pdq": 30}
    version = references(clients).get_version()
    assert sync_module._indexed(clients.s3, BUCKET, version) == 30  # from the snapshot's manifest
    rows = [ref("md5", f"new{i}") for i in range(5)]
    assert list(sync_module._Deadline(lambda: 61.0, indexed=30).until_late(iter(rows))) == rows
    large = sync_module._Deadline(lambda: 61.0, indexed=2_000_000)  # 60 s + 30 us a hash = 120 s
    assert list(large.until_late(iter(rows))) == [] and large.stopped


def test_rows_of_a_stopped_run_that_died_publishing_are_applied_and_announced_again(clients, provider):
    provider.append(*map(line, BIG))

    class DyingPublish:  # the real S3 client; the invocation ends while the snapshot is written
        def __init__(self, client):
            self._client = client

        def __getattr__(self, name):
            return getattr(self._client, name)

        def put_object(self, **kwargs):
            if kwargs["Key"].startswith("snapshots/"):
                raise Crash("timed out while publishing")
            return self._client.put_object(**kwargs)

    dying = Clients(dynamodb=clients.dynamodb, s3=DyingPublish(clients.s3))
    with pytest.raises(Crash):
        sync_sources([feed(provider)], references(clients), BUCKET, dying.s3, now=lambda: NOW, remaining=Invocation(25))
    assert "meta#progress#hotline" in table(clients)  # progress was stored, but its version never came out

    report = sync_within(clients, provider, rows=None)
    assert [(s.status, s.resumed_after) for s in report.sources] == [("applied", 0)]
    announced = read_delta(clients.s3, BUCKET, report.delta_key)
    assert {r.key for r in BIG[:25] if not r.deleted} <= {r.key for r in announced}


def test_a_resumed_delta_that_changed_is_applied_again_from_its_start(clients, provider):
    provider.append(*map(line, BIG))
    sync_within(clients, provider, rows=25)
    changed = [ref("md5", "new-first"), *BIG[1:]]  # the same source and checkpoint, other rows
    with FakeProvider(page_size=10) as other:
        other.append(*map(line, changed))
        report = sync_within(clients, other, rows=None)
    assert [(s.status, s.resumed_after) for s in report.sources] == [("applied", 0)]
    live = scanner(clients)
    assert live.exact([changed[0].key]) == {changed[0].key: [changed[0]]}
    assert live.exact([BIG[40].key]) == {BIG[40].key: [BIG[40]]}


# --- full lists in S3 -------------------------------------------------------------------------------------


def test_an_s3_full_list_withdraws_what_it_no_longer_carries(clients):
    s3 = clients.s3
    listed = [ref("md5", f"c{i}", list_id="extra") for i in range(4)]
    s3.put_object(Bucket=BUCKET, Key="lists/extra.jsonl", Body="\n".join(map(line, listed)))
    job = (S3Source("compliance", s3, BUCKET, "lists/extra.jsonl", "extra"), SourceSpec("compliance", "s3", "extra"))
    assert sync(clients, job).sources[0].added == 4
    assert sync(clients, job).sources[0].status == "unchanged"
    s3.put_object(Bucket=BUCKET, Key="lists/extra.jsonl", Body="\n".join(map(line, listed[1:])))
    report = sync(clients, job)
    assert (report.sources[0].status, report.sources[0].removed) == ("applied", 1)
    assert scanner(clients).exact([r.key for r in listed]) == {r.key: [r] for r in listed[1:]}
    before = state(clients)
    s3.put_object(Bucket=BUCKET, Key="lists/extra.jsonl", Body="")  # an empty upload: withdraw everything?
    report = sync(clients, job)
    assert report.sources[0].status == "rejected" and "max_removed_share" in report.sources[0].reason
    assert state(clients)[:3] == before[:3]


# --- logs, import, rate, handler -----------------------------------------------------------------------------


def test_logs_never_carry_hashes_or_secrets(clients, provider, caplog):
    caplog.set_level(logging.DEBUG, logger="hashcheck")
    provider.require = ("Authorization", "Bearer sup3r-secret")
    provider.append(*map(line, LISTED), '{"algorithm": "md5", "hash": "' + "f" * 31 + '"}')
    source = HttpsSource("hotline", provider.url, auth=lambda: "Bearer sup3r-secret", allow_insecure_loopback=True)
    report = sync(clients, (source, SourceSpec("hotline", "https", "L1", 0.5)))
    provider.checksums = provider.corrupt_checksum = True
    provider.append(line(ref("md5", "z")))
    sync(clients, (source, SourceSpec("hotline", "https", "L1", 0.5)))
    assert report.sources[0].rejected == 1
    text = caplog.text + " ".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "row rejected" in text and "delta rejected" in text
    for secret in [r.hash for r in LISTED] + ["f" * 31, ref("md5", "z").hash, "sup3r-secret"]:
        assert secret not in text


def test_import_file_applies_a_local_list_and_publishes(clients, tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text("\n".join(map(line, LISTED + [ref("md5", "x", list_id="L2")])))
    progress = []
    report = import_file(str(path), references(clients), BUCKET, clients.s3, list_id="L1", on_rows=progress.append)
    assert report.sources[0].status == "rejected"  # 1 of 6 rows belongs to another list
    report = import_file(str(path), references(clients), BUCKET, clients.s3, on_rows=progress.append)
    assert (report.sources[0].added, report.version) == (6, 1) and sum(progress) == 6
    assert load_checkpoint(clients, "import") is None


def test_sync_rate_on_moto(clients, provider, capsys):
    """Not a timed assertion: prints the rate (moto in process is far slower than DynamoDB, and slows
    down as its table grows; a 20k-row run is in the sync notes)."""
    count = 1000
    provider.page_size = 250
    provider.append(*(line(ref("md5" if i % 2 else "pdq", f"r{i}")) for i in range(count)))
    started = time.monotonic()
    report = sync(clients, feed(provider))
    elapsed = time.monotonic() - started
    assert report.sources[0].added == count and report.index_size["pdq"] == count // 2
    with capsys.disabled():
        print(f"\nsync of {count} rows on moto: {elapsed:.2f} s, {count / elapsed:.0f} rows/s")


def test_the_handler_runs_a_sync_from_its_environment(clients, provider, monkeypatch):
    provider.append(*map(line, LISTED))
    config = [{"name": "compliance", "type": "s3", "key": "lists/l.jsonl", "list_id": "L1"}]
    clients.s3.put_object(Bucket=BUCKET, Key="lists/l.jsonl", Body="\n".join(map(line, LISTED)))
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/hashcheck/sources", Value=json.dumps(config), Type="String", Overwrite=True)
    for name, value in {
        "REFERENCE_TABLE": TABLE,
        "ARTIFACTS_BUCKET": BUCKET,
        "LIST_SOURCES_PARAMETER": "/hashcheck/sources",
        "POWERTOOLS_METRICS_NAMESPACE": "hashcheck",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LIST_SOURCES", raising=False)  # an earlier test's stack environment must not win
    assert SyncConfig.from_env(clients=Clients(ssm=ssm)).sources[0].name == "compliance"
    spec = importlib.util.spec_from_file_location("sync_app", ROOT / "functions" / "sync" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "SyncFunction", 3008, "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:SyncFunction"

        def get_remaining_time_in_millis(self) -> int:
            return 900_000

    event = json.loads((ROOT / "events" / "schedule.json").read_text())
    result = app.handler(event, Context())
    assert result["ok"] and result["version"] == 1 and result["sources"][0]["added"] == 5
    assert run_sync(SyncConfig.from_env(clients=Clients(ssm=ssm)), clients, retry=FAST).version == 1  # unchanged
    assert snapshot.read_manifest(clients.s3, BUCKET, result["snapshot_key"])["version"] == 1
