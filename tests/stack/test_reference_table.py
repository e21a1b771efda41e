"""The ReferenceTable writer (`hashcheck.tables.reference_table`) and `DynamoStore`, on moto's DynamoDB."""

from __future__ import annotations

import hashlib
import io
import threading

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from PIL import Image

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.lists.build import references_for
from hashcheck.lists.listformat import Reference
from hashcheck.matching.index import HammingIndex
from hashcheck.matching.matcher import match
from hashcheck.matching.stores.dynamodb import DynamoStore
from hashcheck.matching.stores.memory import MemoryStore
from hashcheck.tables.dynamo import from_item, to_item
from hashcheck.tables.reference_table import ApplyStats, ReferenceTable, RetriesExhausted, Retry, VersionConflict

TABLE = "ReferenceTable"
T0, T1 = "2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"


def no_sleep(_seconds: float) -> None:
    pass


FAST = Retry(attempts=4, base_delay=0.001, sleep=no_sleep)


def hexhash(seed: str, digits: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:digits]


def row(algorithm, seed, list_id="L1", ref_id="img1", category=None, deleted=False) -> Reference:
    digits = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64, "phash": 16}[algorithm]
    return Reference(algorithm, hexhash(seed, digits), list_id, ref_id, category, deleted)


def flip(hex_value: str, bits: int) -> str:
    """The hash with its lowest `bits` bits inverted."""
    return format(int(hex_value, 16) ^ ((1 << bits) - 1), f"0{len(hex_value)}x")


@pytest.fixture(scope="module")
def aws():
    """One moto for the module (starting it is the slow part), with fake credentials: never real AWS."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def ddb(aws):
    """A fresh, empty ReferenceTable for each test."""
    aws.create_table(**ReferenceTable.definition(TABLE))
    yield aws
    aws.delete_table(TableName=TABLE)


def table(client, retry=FAST) -> ReferenceTable:
    return ReferenceTable(client, TABLE, retry)


def apply(client, rows, now=T0, retry=FAST) -> ApplyStats:
    return table(client, retry).apply_rows(rows, now=lambda: now)


def store(client, **kwargs) -> DynamoStore:
    return DynamoStore(table(client), **kwargs)


def table_contents(client) -> dict:
    pages = client.get_paginator("scan").paginate(TableName=TABLE)
    return {item["pk"]["S"]: item for page in pages for item in page["Items"]}


class Partial:
    """The real (moto) client, except that batch calls hold back part of each request as unprocessed,
    as DynamoDB does when throttled or over its size limits. `failures`: how many calls do so (None:
    every call). Half of the request (rounded down) is really executed, the rest comes back."""

    def __init__(self, client, get_failures=0, write_failures=0):
        self._client = client
        self.get_failures, self.write_failures = get_failures, write_failures
        self.get_calls: list[int] = []
        self.write_calls: list[int] = []

    def __getattr__(self, name):
        return getattr(self._client, name)

    def batch_get_item(self, RequestItems, **kwargs):  # noqa: N803 (boto3's parameter name)
        self.get_calls.append(sum(len(r["Keys"]) for r in RequestItems.values()))
        if not self._fail("get_failures"):
            return self._client.batch_get_item(RequestItems=RequestItems, **kwargs)
        done, held = {}, {}
        for table, request in RequestItems.items():
            keys = request["Keys"]
            half = len(keys) // 2
            if half:
                done[table] = {**request, "Keys": keys[:half]}
            held[table] = {**request, "Keys": keys[half:]}
        response = (
            self._client.batch_get_item(RequestItems=done, **kwargs) if done else {"Responses": {t: [] for t in held}}
        )
        response["UnprocessedKeys"] = held
        return response

    def batch_write_item(self, RequestItems, **kwargs):  # noqa: N803
        self.write_calls.append(sum(len(r) for r in RequestItems.values()))
        if not self._fail("write_failures"):
            return self._client.batch_write_item(RequestItems=RequestItems, **kwargs)
        done, held = {}, {}
        for table, requests in RequestItems.items():
            half = len(requests) // 2
            if half:
                done[table] = requests[:half]
            held[table] = requests[half:]
        response = self._client.batch_write_item(RequestItems=done, **kwargs) if done else {}
        response["UnprocessedItems"] = held
        return response

    def _fail(self, name) -> bool:
        left = getattr(self, name)
        if left is None:
            return True
        if left > 0:
            setattr(self, name, left - 1)
            return True
        return False


# --- schema and writer ---------------------------------------------------------------------------------


def test_items_follow_the_schema(ddb):
    md5, pdq = row("md5", "a", category="A1"), row("pdq", "a")
    assert apply(ddb, [md5, pdq]) == ApplyStats(added=2)
    items = table_contents(ddb)
    assert set(items) == {f"md5#{md5.hash}", f"pdq#{pdq.hash}", "image#L1#img1"}
    plain = from_item(items[f"md5#{md5.hash}"])
    assert plain == {
        "pk": f"md5#{md5.hash}",
        "algorithm": "md5",
        "hash": md5.hash,
        "live": 1,
        "refs": {"L1#img1": {"list": "L1", "id": "img1", "category": "A1", "added": T0, "deleted": False}},
    }
    image = from_item(items["image#L1#img1"])
    assert image["live"] == 2 and image["list"] == "L1" and image["id"] == "img1"
    assert image["hashes"][f"pdq#{pdq.hash}"] == {"algorithm": "pdq", "hash": pdq.hash, "deleted": False}


def test_exact_returns_live_refs_of_the_keys_asked(ddb):
    md5, sha1 = row("md5", "a", category="A1"), row("sha1", "a")
    apply(ddb, [md5, sha1, row("md5", "b", ref_id="img2")])
    absent = ("sha256", hexhash("nothing", 64))
    found = store(ddb).exact([md5.key, sha1.key, absent])
    assert found == {md5.key: [md5], sha1.key: [sha1]}
    assert store(ddb).exact([]) == {}


def test_applying_the_same_rows_twice_gives_the_same_table(ddb):
    adds = [row(alg, f"img{i}", ref_id=f"img{i}") for i in range(20) for alg in ("md5", "pdq")]
    assert apply(ddb, adds, now=T0) == ApplyStats(added=40)
    before = table_contents(ddb)
    counting = Partial(ddb)
    assert apply(counting, adds, now=T1) == ApplyStats(unchanged=40)
    assert table_contents(ddb) == before  # `added` times kept
    assert counting.write_calls == []  # nothing changed, nothing written


def test_replaying_a_feed_that_lists_and_withdraws_a_ref_gives_the_same_table(ddb):
    rows = [row(alg, f"img{i}", ref_id=f"img{i}") for i in range(20) for alg in ("md5", "pdq")]
    rows += [row("md5", "img3", ref_id="img3", deleted=True)]  # in the second batch of 25
    assert apply(ddb, rows, now=T0) == ApplyStats(added=40, removed=1)
    before = table_contents(ddb)
    counting = Partial(ddb)
    # img3's md5 is listed again by the first batch and withdrawn again by the second
    assert apply(counting, rows, now=T1) == ApplyStats(added=1, removed=1, unchanged=39)
    assert table_contents(ddb) == before  # `added` and `deleted_at` kept
    assert counting.write_calls == [2, 2]  # img3's md5 item and image item, twice


def test_rows_sharing_a_key_in_one_batch_apply_in_order(ddb):
    md5 = row("md5", "a")
    stats = apply(ddb, [md5, Reference(**{**md5.__dict__, "deleted": True}), md5, md5])
    assert stats == ApplyStats(added=2, removed=1, unchanged=1)
    assert store(ddb).exact([md5.key]) == {md5.key: [md5]}


def test_a_tombstone_is_kept_for_audit_and_a_relisting_keeps_the_first_added(ddb):
    md5 = row("md5", "a")
    apply(ddb, [md5], now=T0)
    assert apply(ddb, [row("md5", "a", deleted=True)], now=T1) == ApplyStats(removed=1)
    item = from_item(table_contents(ddb)[f"md5#{md5.hash}"])
    assert item["live"] == 0
    assert item["refs"]["L1#img1"] == {"list": "L1", "id": "img1", "added": T0, "deleted": True, "deleted_at": T1}
    assert store(ddb).exact([md5.key]) == {}
    apply(ddb, [md5], now="2024-03-01T00:00:00+00:00")
    item = from_item(table_contents(ddb)[f"md5#{md5.hash}"])
    assert item["live"] == 1
    assert item["refs"]["L1#img1"] == {"list": "L1", "id": "img1", "added": T0, "deleted": False, "deleted_at": T1}
    assert store(ddb).exact([md5.key]) == {md5.key: [md5]}


def test_a_tombstone_for_an_unknown_reference_creates_nothing(ddb):
    assert apply(ddb, [row("md5", "a", deleted=True)]) == ApplyStats(unchanged=1)
    assert table_contents(ddb) == {}


def test_a_category_change_is_an_update(ddb):
    apply(ddb, [row("md5", "a", category="A1")])
    assert apply(ddb, [row("md5", "a", category="B2")]) == ApplyStats(updated=1)
    assert store(ddb).exact([row("md5", "a").key])[row("md5", "a").key][0].category == "B2"


def test_two_lists_carrying_the_same_hash_merge_into_one_item(ddb):
    in_a, in_b = row("md5", "a", "ListA", "a-17", "A1"), row("md5", "a", "ListB", "b-9")
    apply(ddb, [in_a])
    apply(ddb, [in_b])
    assert store(ddb).exact([in_a.key]) == {in_a.key: [in_a, in_b]}
    apply(ddb, [Reference(**{**in_a.__dict__, "deleted": True})])
    assert store(ddb).exact([in_a.key]) == {in_a.key: [in_b]}
    item = from_item(table_contents(ddb)[f"md5#{in_a.hash}"])
    assert item["live"] == 1 and item["refs"]["ListA#a-17"]["deleted"] is True


def test_ids_containing_the_separator_do_not_collide(ddb):
    one, two = row("md5", "a", "a#b", "c"), row("md5", "a", "a", "b#c")
    apply(ddb, [one, two])
    assert sorted(store(ddb).exact([one.key])[one.key], key=lambda r: r.list) == [two, one]
    assert "image#a%23b#c" in table_contents(ddb)


def test_live_hashes_yields_live_hashes_of_the_algorithms_asked_for(ddb):
    rows = [row("pdq", f"p{i}", ref_id=f"i{i}") for i in range(30)] + [row("md5", "m", ref_id="i0")]
    apply(ddb, rows + [row("pdq", "p3", ref_id="i3", deleted=True)])
    live = list(table(ddb).live_hashes(["pdq"], segments=2, page_size=7))  # several pages
    assert sorted(live) == sorted(
        {("pdq", r.hash) for r in rows if r.algorithm == "pdq"} - {("pdq", row("pdq", "p3").hash)}
    )
    assert list(table(ddb).live_hashes(["phash"])) == []


def test_live_hashes_scans_every_segment_once_for_all_algorithms(ddb):
    rows = [row("pdq", f"p{i}", ref_id=f"i{i}") for i in range(300)] + [row("phash", f"h{i}") for i in range(40)]
    apply(ddb, rows + [row("md5", "m"), row("pdq", "p3", ref_id="i3", deleted=True)])
    found = list(table(ddb).live_hashes(["pdq", "phash"], segments=3))
    expected = {(r.algorithm, r.hash) for r in rows} - {("pdq", row("pdq", "p3").hash)}
    assert len(found) == len(expected) and set(found) == expected  # no hash twice, none missed


def test_live_hashes_raises_when_a_segment_fails_and_stops_when_the_reader_does(ddb):
    """A failed segment fails the build (a short index would miss listed pictures); a reader that
    stops early leaves no thread behind."""
    apply(ddb, [row("pdq", f"p{i}", ref_id=f"i{i}") for i in range(50)])
    references = table(ddb)

    def fail_segment_two(params, **_):
        if params.get("Segment") == 2:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "Scan")

    references.client.meta.events.register("before-parameter-build.dynamodb.Scan", fail_segment_two)
    try:
        with pytest.raises(ClientError):
            list(references.live_hashes(["pdq"], segments=4))
    finally:
        references.client.meta.events.unregister("before-parameter-build.dynamodb.Scan", fail_segment_two)
    before = threading.active_count()
    first = references.live_hashes(["pdq"], segments=4)
    next(first)
    first.close()
    assert threading.active_count() <= before


def test_version_bumps_are_conditional(ddb):
    assert table(ddb).get_version().version == 0
    assert table(ddb).bump_version(0).version == 1
    with pytest.raises(VersionConflict):
        table(ddb).bump_version(0)
    bumped = table(ddb).bump_version(1, snapshot_key="snapshots/2.npz")
    assert table(ddb).get_version() == bumped
    assert bumped.version == 2 and bumped.snapshot_key == "snapshots/2.npz" and bumped.updated
    with pytest.raises(VersionConflict):
        table(ddb).bump_version(1)


# --- near and siblings ----------------------------------------------------------------------------------


def test_near_finds_live_refs_within_the_distance(ddb):
    pdq = row("pdq", "a", category="A1")
    apply(ddb, [pdq, row("pdq", "b", ref_id="img2")])
    hits = store(ddb).near("pdq", [flip(pdq.hash, 40), flip(pdq.hash, 5)], 31)
    assert [(h.query, h.reference, h.distance) for h in hits] == [(1, pdq, 5)]
    assert store(ddb).near("pdq", [], 31) == []
    assert store(ddb).near("phash", [hexhash("x", 16)], 8) == []  # no phash at all


def test_a_withdrawn_reference_is_not_returned_even_by_a_stale_index(ddb):
    pdq, md5 = row("pdq", "a"), row("md5", "a")
    apply(ddb, [pdq, md5])
    scanner = store(ddb)
    assert [h.reference for h in scanner.near("pdq", [pdq.hash], 31)] == [pdq]  # index now loaded
    apply(ddb, [row("pdq", "a", deleted=True), row("md5", "a", deleted=True)])
    index, rows = scanner._indexes["pdq"]
    assert pdq.hash in rows  # the in-memory index still has it ...
    assert index.search_hex([pdq.hash], 0)
    assert scanner.near("pdq", [pdq.hash], 31) == []  # ... but the table says it is withdrawn
    assert scanner.exact([md5.key, pdq.key]) == {}


def test_a_plugged_in_index_loader_is_used_and_confirmed(ddb):
    listed, stale = row("phash", "a"), row("phash", "gone")
    apply(ddb, [listed])
    hashes = [listed.hash, stale.hash]  # a snapshot holding a hash the table never had live
    loads = []

    def loader(algorithm):
        loads.append(algorithm)
        return HammingIndex.from_hex(hashes), hashes

    scanner = store(ddb, index_loader=loader)
    assert [h.reference for h in scanner.near("phash", [listed.hash, stale.hash], 8)] == [listed]
    scanner.near("phash", [listed.hash], 8)
    assert loads == ["phash"]  # loaded once
    scanner.reload()
    scanner.near("phash", [listed.hash], 8)
    assert loads == ["phash", "phash"]
    assert scanner.refresh()  # first look at the version item
    scanner.near("phash", [listed.hash], 8)
    assert not scanner.refresh()
    scanner.near("phash", [listed.hash], 8)
    assert loads == ["phash"] * 3
    table(ddb).bump_version(0)
    assert scanner.refresh()
    scanner.near("phash", [listed.hash], 8)
    assert loads == ["phash"] * 4


def test_siblings_are_the_other_live_hashes_of_the_same_listed_image(ddb):
    md5, pdq, phash = row("md5", "a", category="A1"), row("pdq", "a", category="A1"), row("phash", "a", category="A1")
    other_image = row("pdq", "b", ref_id="img2")
    other_list = row("md5", "c", list_id="L2", ref_id="img1")
    apply(ddb, [md5, pdq, phash, other_image, other_list])
    memory = MemoryStore([md5, pdq, phash, other_image, other_list])
    dynamo = store(ddb)
    assert (
        sorted(dynamo.siblings(phash), key=str)
        == sorted(memory.siblings(phash), key=str)
        == sorted([md5, pdq], key=str)
    )
    apply(ddb, [row("pdq", "a", deleted=True)])
    assert dynamo.siblings(phash) == [md5]
    # the image item only names candidates: a hash it lists that the table does not carry is not a sibling
    image = from_item(table_contents(ddb)["image#L1#img1"])
    image["hashes"]["sha1#" + "0" * 40] = {"algorithm": "sha1", "hash": "0" * 40, "deleted": False}
    ddb.put_item(TableName=TABLE, Item=to_item(image))
    assert dynamo.siblings(phash) == [md5]
    assert dynamo.siblings(row("md5", "zz", ref_id="unknown")) == []


# --- retries and failing closed -------------------------------------------------------------------------


def test_unprocessed_keys_are_retried(ddb):
    rows = [row("md5", f"m{i}", ref_id=f"i{i}") for i in range(6)]
    apply(ddb, rows)
    sleeps = []
    partial = Partial(ddb, get_failures=2)
    scanner = DynamoStore(table(partial, Retry(attempts=4, base_delay=0.01, sleep=sleeps.append)))
    found = scanner.exact([r.key for r in rows])
    assert found == {r.key: [r] for r in rows}
    assert partial.get_calls == [6, 3, 2]  # half held back twice, then the rest at once
    assert len(sleeps) == 2 and all(0 <= s <= 0.01 * 2**i for i, s in enumerate(sleeps))


def test_unprocessed_items_are_retried(ddb):
    rows = [row("md5", f"m{i}", ref_id="same") for i in range(10)]
    partial = Partial(ddb, write_failures=3)
    assert apply(partial, rows) == ApplyStats(added=10)
    assert partial.write_calls == [11, 6, 3, 2]  # 10 hash items + 1 image item
    assert store(ddb).exact([r.key for r in rows]) == {r.key: [r] for r in rows}
    assert len(store(ddb).siblings(rows[0])) == 9


def test_exhausted_retries_raise_instead_of_answering_no_match(ddb):
    md5, pdq = row("md5", "a"), row("pdq", "a")
    apply(ddb, [md5, pdq])
    scanner = store(ddb)
    scanner.near("pdq", [pdq.hash], 31)  # load the index while the table answers
    scanner.table.client = Partial(ddb, get_failures=None)
    with pytest.raises(RetriesExhausted):
        scanner.exact([md5.key])
    with pytest.raises(RetriesExhausted):
        scanner.near("pdq", [pdq.hash], 31)
    assert scanner.table.client.get_calls == [1] * FAST.attempts * 2
    with pytest.raises(RetriesExhausted):
        apply(Partial(ddb, write_failures=None), [row("sha1", "new")])


def test_exact_lookups_of_more_than_100_keys_are_chunked(ddb):
    rows = [row("sha256", f"s{i}", ref_id=f"i{i}") for i in range(60)]
    apply(ddb, rows)
    keys = [r.key for r in rows] + [("sha256", hexhash(f"absent{i}", 64)) for i in range(90)]
    partial = Partial(ddb)
    found = store(partial).exact(keys)
    assert found == {r.key: [r] for r in rows}
    assert partial.get_calls == [100, 50]


# --- the matcher on real photos --------------------------------------------------------------------------


def _recompressed(data: bytes, quality: int = 40, scale: float = 0.5) -> bytes:
    image = Image.open(io.BytesIO(data))
    image = image.resize((int(image.width * scale), int(image.height * scale)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_the_matcher_gives_the_same_verdicts_as_with_the_memory_store(ddb, photos):
    data = [p.read_bytes() for p in photos[:7]]
    fps = [fingerprint(d) for d in data]
    rows = []
    for i, fp in enumerate(fps[:4]):
        rows += references_for(fp, "L1", f"img{i}", category="A1")
    rows += references_for(fps[1], "L2", "other-list")  # a second list carrying the same image
    rows += [r for r in references_for(fps[4], "L1", "img4") if r.algorithm == "phash"]  # pHash only
    withdrawn = [r for r in references_for(fps[2], "L1", "img2") if r.algorithm == "pdq"]  # its PDQ withdrawn
    rows += [Reference(**{**r.__dict__, "deleted": True}) for r in withdrawn]
    rows += [Reference(**{**r.__dict__, "deleted": True}) for r in references_for(fps[3], "L1", "img3")]
    apply(ddb, rows)
    memory, dynamo = MemoryStore(rows), store(ddb)

    queries = fps + [fingerprint(_recompressed(d)) for d in data[:5]]
    verdicts = []
    for fp in queries:
        expected, got = match(fp, memory), match(fp, dynamo)
        assert got.verdict == expected.verdict
        assert sorted(got.matches, key=repr) == sorted(expected.matches, key=repr)
        verdicts.append(got.verdict)
    # listed: match; withdrawn image: clean; pHash-only listing, or its PDQ withdrawn: review (unless
    # an exact hash matches); unlisted: clean
    assert verdicts[:7] == ["match", "match", "match", "clean", "review", "clean", "clean"]
    assert verdicts[7:] == ["match", "match", "review", "clean", "review"]


def test_a_listed_video_is_keyed_by_its_signals_sha256_and_withdrawn_by_its_tombstone(ddb):
    """A vPDQ signal is far longer than a key may be: its item is keyed by the signal's SHA-256 and keeps
    the signal; the image item names it by that key; siblings and near lookups give the signal back."""
    from dataclasses import replace

    from hashcheck.fingerprinting.vpdq import Feature, to_signal

    frames = [Feature(hexhash(f"frame{i}", 64), 100, float(i)) for i in range(5)]
    signal = to_signal(frames)
    video, md5 = Reference("vpdq", signal, "L1", "vid"), row("md5", "v", ref_id="vid")
    assert apply(ddb, [video, md5]) == ApplyStats(added=2)
    key = hashlib.sha256(signal.encode()).hexdigest()
    items = table_contents(ddb)
    assert from_item(items[f"vpdq#{key}"])["hash"] == signal
    assert from_item(items["image#L1#vid"])["hashes"][f"vpdq#{key}"]["hash"] == key
    assert store(ddb).exact([video.key]) == {video.key: [video]}
    assert store(ddb).siblings(md5) == [video]
    hits = store(ddb).near("vpdq", [flip(frames[2].pdq, 5)], 31)
    assert [(h.reference, h.distance) for h in hits] == [(video, 5)]
    assert apply(ddb, [replace(video, deleted=True)]) == ApplyStats(removed=1)
    assert store(ddb).exact([video.key]) == {} and store(ddb).near("vpdq", [frames[2].pdq], 31) == []
