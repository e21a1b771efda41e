"""List sources: configuration, the https feed against a real local HTTP server, the s3 list file."""

from __future__ import annotations

import hashlib
import json
import socket
import time

import boto3
import pytest

from hashcheck.jobs.sync import Clients
from hashcheck.lists.listformat import Reference, Rejected
from hashcheck.lists.sources import (
    MAX_LINE,
    ChecksumMismatch,
    ConfigError,
    SourceError,
    load_specs,
    make_source,
    parse_specs,
)
from hashcheck.lists.sources.https import HttpsSource
from hashcheck.lists.sources.s3 import S3Source
from tests.fake_provider import FakeProvider
from tests.helpers import mocked_aws


def md5_line(seed: str, list_id: str = "L1", deleted: bool = False) -> str:
    row = {"algorithm": "md5", "hash": hashlib.md5(seed.encode()).hexdigest(), "list": list_id, "id": seed}
    return json.dumps({**row, "deleted": deleted})


def source(provider: FakeProvider, **kwargs) -> HttpsSource:
    options = {"timeout": 2.0, "retries": 3, "backoff": 0.01, "allow_insecure_loopback": True, **kwargs}
    return HttpsSource("fake", provider.url, **options)


def ids(rows) -> list[str]:
    return [r.id for r in rows if isinstance(r, Reference)]


@pytest.fixture
def provider():
    with FakeProvider(page_size=2) as fake:
        fake.append(*(md5_line(f"r{i}") for i in range(5)))
        yield fake


# --- configuration ----------------------------------------------------------------------------------------


def test_the_configuration_parses_both_types():
    hotline = {"name": "nl-police", "type": "https", "url": "https://feed.example/h", "format": "csv"}
    hotline |= {"auth_secret": "hashcheck/nl", "list_id": "nl", "max_bad_share": 0.05}
    compliance = {"name": "compliance", "type": "s3", "key": "lists/extra.jsonl", "list_id": "extra"}
    specs = parse_specs(json.dumps([hotline, compliance]))
    assert [(s.name, s.type, s.list_id, s.max_bad_share) for s in specs] == [
        ("nl-police", "https", "nl", 0.05),
        ("compliance", "s3", "extra", 0.01),
    ]
    assert specs[0].options["url"] == "https://feed.example/h"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "a b", "type": "https", "url": "https://x"}, "name"),
        ({"name": "a", "type": "ftp"}, "type"),
        ({"name": "a", "type": "https", "url": "https://x", "max_bad_shar": 0.5}, "unknown keys max_bad_shar"),
        ({"name": "a", "type": "https", "url": "https://x", "list_id": "L", "max_bad_share": 2}, "max_bad_share"),
        ({"name": "a", "type": "s3", "key": "k"}, "list_id"),
        # a source that may name any list could add to or withdraw from every provider's lists
        ({"name": "a", "type": "https", "url": "https://x"}, "list_id is required"),
        ({"name": "a", "type": "https", "url": "https://x", "list_id": "L", "max_removed": -1}, "max_removed"),
        ({"name": "a", "type": "https", "url": "https://x", "list_id": "L", "max_added_per_day": "9"}, "max_added"),
    ],
)
def test_a_malformed_configuration_is_refused(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_specs(json.dumps([entry]))


def test_duplicate_names_and_shared_full_lists_are_refused():
    https = {"type": "https", "url": "https://x", "list_id": "L"}
    with pytest.raises(ConfigError, match="unique"):
        parse_specs(json.dumps([{"name": "a", **https}, {"name": "a", **https}]))
    with pytest.raises(ConfigError, match="alone"):
        parse_specs(json.dumps([{"name": "a", **https}, {"name": "b", "type": "s3", "key": "k", "list_id": "L"}]))
    with pytest.raises(ConfigError, match="JSON"):
        parse_specs("[{")


def test_only_https_urls_are_accepted_from_the_configuration():
    for url in ("http://127.0.0.1:1/feed", "file:///etc/passwd", "https://user:pw@host/x"):
        spec = parse_specs(json.dumps([{"name": "a", "type": "https", "url": url, "list_id": "L"}]))[0]
        with pytest.raises(ConfigError):
            make_source(spec, clients=None)


def test_link_local_and_metadata_addresses_are_refused_even_over_https():
    def resolver(address):
        return lambda host, port, **kw: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    for address in ("169.254.169.254", "fd00:ec2::254", "127.0.0.1", "::ffff:169.254.169.254"):
        feed = HttpsSource("a", "https://innocent.example/feed", resolve=resolver(address))
        with pytest.raises(SourceError, match="link-local"):
            feed.fetch(None)


# --- https ------------------------------------------------------------------------------------------------


def test_pages_are_followed_and_the_cursor_is_kept(provider):
    feed = source(provider)
    delta = feed.fetch(None)
    assert ids(delta.rows) == ["r0", "r1", "r2", "r3", "r4"]
    assert delta.checkpoint["cursor"] == "5" and delta.checkpoint["etag"] == '"5"'
    assert delta.details["pages"] == 3
    assert [q.get("cursor") for _, q, _ in provider.requests] == [None, "2", "4"]
    # next sync: only what was appended since, asked for by cursor
    provider.append(md5_line("r1", deleted=True))
    delta = feed.fetch(delta.checkpoint)
    rows = list(delta.rows)
    assert [(r.id, r.deleted) for r in rows] == [("r1", True)]
    assert provider.requests[-1][1] == {"cursor": "5"} and delta.checkpoint["cursor"] == "6"


def test_an_unchanged_feed_answers_304_and_keeps_the_checkpoint(provider):
    provider.page_size = None
    provider.send_cursor = False
    feed = source(provider)
    first = feed.fetch(None)
    assert len(ids(first.rows)) == 5
    assert set(first.checkpoint) == {"etag", "since"}  # no cursor offered: the provider's Date
    again = feed.fetch(first.checkpoint)
    assert again.unchanged and list(again.rows) == [] and again.checkpoint == first.checkpoint
    _, query, headers = provider.requests[-1]
    assert headers["if-none-match"] == '"5"' and query == {"since": first.checkpoint["since"]}


def test_5xx_is_retried_then_succeeds_and_gives_up_after_the_retries(provider):
    provider.fail_next = 2
    assert len(ids(source(provider).fetch(None).rows)) == 5
    provider.fail_next = 10
    with pytest.raises(SourceError, match="after 3 retries"):
        source(provider).fetch(None)


def test_a_read_timeout_is_retried(provider):
    provider.slow_next, provider.slow_seconds = 1, 0.6
    delta = source(provider, timeout=0.2).fetch(None)
    assert len(ids(delta.rows)) == 5
    assert len(provider.requests) == 4  # the slow one, then the three pages


def test_a_feed_that_trickles_ends_at_its_deadline_and_the_next_run_starts_again(provider):
    """A byte every 0.2 s never trips the per-read timeout; the fetch's deadline stops it, the source
    fails (the sync keeps its checkpoint), and a fetch from the same checkpoint reads the feed whole."""
    provider.trickle_seconds = 0.2
    started = time.monotonic()
    with pytest.raises(SourceError, match="did not finish within 1 s"):
        list(source(provider, timeout=0.5, deadline=1.0).fetch(None).rows)
    assert time.monotonic() - started < 3
    provider.trickle_seconds = 0.0
    assert len(ids(source(provider).fetch(None).rows)) == 5


def test_a_line_without_end_is_refused_not_read_into_memory(provider):
    provider.log[:] = [md5_line("r0"), "x" * (MAX_LINE + 10)]
    with pytest.raises(SourceError, match=f"a line longer than {MAX_LINE} characters"):
        list(source(provider).fetch(None).rows)


def test_a_page_of_more_rows_than_allowed_fails_the_source(provider, monkeypatch):
    from hashcheck.lists.sources import https

    monkeypatch.setattr(https, "MAX_PAGE_ROWS", 1)  # the fake feed's pages hold two rows
    with pytest.raises(SourceError, match="holds more than 1 rows"):
        list(source(provider).fetch(None).rows)
    monkeypatch.setattr(https, "MAX_PAGE_ROWS", 2)
    assert len(ids(source(provider).fetch(None).rows)) == 5


def test_a_page_checksum_is_verified(provider):
    provider.checksums = True
    assert len(ids(source(provider).fetch(None).rows)) == 5
    provider.corrupt_checksum = True
    with pytest.raises(ChecksumMismatch):
        list(source(provider).fetch(None).rows)


def test_the_auth_header_comes_from_the_callable_and_errors_do_not_echo_it(provider):
    provider.require = ("X-Api-Key", "s3cret-token")
    assert len(ids(source(provider, auth=lambda: "s3cret-token", auth_header="X-Api-Key").fetch(None).rows)) == 5
    with pytest.raises(SourceError, match="HTTP 401") as failure:
        source(provider, auth=lambda: "wrong", auth_header="X-Api-Key").fetch(None)
    assert "wrong" not in str(failure.value)


def test_csv_pages_and_rejected_rows_carry_page_and_line(provider):
    provider.log.clear()
    provider.csv_header = "algorithm,hash,list,id,category,deleted"
    good = hashlib.md5(b"c").hexdigest()
    provider.append(f"md5,{good},L1,c0,,false", "md5,nothex,L1,c1,,false", f"md5,{good},L1,c2,,true")
    rows = list(source(provider).fetch(None).rows)
    assert [type(r).__name__ for r in rows] == ["Reference", "Rejected", "Reference"]
    assert rows[1] == Rejected(3, "md5 is not hex")
    assert rows[2].deleted  # page 2, first row: a tombstone


# --- s3 -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    with mocked_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="artifacts")
        yield client


def test_an_s3_list_file_is_read_once_per_etag(s3):
    listed = S3Source("compliance", s3, "artifacts", "lists/a.jsonl", "L1")
    assert listed.fetch(None).unchanged  # no file yet: nothing changes
    s3.put_object(Bucket="artifacts", Key="lists/a.jsonl", Body="\n".join(md5_line(f"s{i}") for i in range(3)))
    delta = listed.fetch(None)
    assert ids(delta.rows) == ["s0", "s1", "s2"] and delta.checkpoint["etag"]
    again = listed.fetch(delta.checkpoint)
    assert again.unchanged and list(again.rows) == []
    s3.put_object(Bucket="artifacts", Key="lists/a.jsonl", Body=md5_line("s9"))
    assert ids(listed.fetch(delta.checkpoint).rows) == ["s9"]


def test_sources_are_made_from_specs_and_secrets_are_read_at_fetch_time(s3, provider):
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="hashcheck/fake", SecretString="Bearer t0ken")
    provider.require = ("Authorization", "Bearer t0ken")

    clients = Clients(s3=s3, secretsmanager=secrets)
    config = [
        {"name": "f", "type": "https", "url": "https://x.example/", "auth_secret": "hashcheck/fake", "list_id": "L"}
    ]
    feed = make_source(parse_specs(json.dumps(config))[0], clients)
    # the configuration never allows loopback; point the same reader at the fake for this test
    local = HttpsSource("f", provider.url, auth=feed._auth, allow_insecure_loopback=True, backoff=0.01)
    assert len(ids(local.fetch(None).rows)) == 5
    spec = load_specs({"LIST_SOURCES": json.dumps([{"name": "c", "type": "s3", "key": "k", "list_id": "L"}])})[0]
    assert isinstance(make_source(spec, clients, default_bucket="artifacts"), S3Source)
