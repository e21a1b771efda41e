"""Circuit breakers: a wrong list acts on a few objects at most, the rest are held for a person.

The stack in moto (hashcheck.tools.sandbox) with a benign picture pretending to be listed by mistake,
as a CMS's default image would be: many customers store it."""

import json

import pytest

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.lists.build import references_for
from hashcheck.response.breaker import HELD_EVENT, UPDATE_HELD_EVENT
from hashcheck.response.report import SKIPPED, ReportConfig, Reporter
from hashcheck.tables.case_table import CaseTable
from hashcheck.tables.dynamo import from_item
from hashcheck.tables.reference_table import ReferenceTable
from hashcheck.tools import samples, sandbox
from hashcheck.tools.cli import main as cli
from tests.helpers import alerts_inbox, drain, listed_stack
from tests.stack.test_rematch import list_update, run_rematch, stream_fingerprints

DEFAULT_IMAGE = samples.jpeg(samples.picture(31))  # stands for a CMS default image, listed by mistake
LIMIT = 3


@pytest.fixture()
def stack():
    with listed_stack(DEFAULT_IMAGE, ref_id="wp-default", parameters={"ReferenceBreakerObjects": str(LIMIT)}) as stack:
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        stack.rematch = sandbox.load_handler(stack, "RematchFunction", "rematch")
        stack.inbox = alerts_inbox(stack)
        yield stack


def upload(stack, keys: list[str], body: bytes = DEFAULT_IMAGE) -> None:
    for key in keys:
        stack.client("s3").put_object(Bucket=stack.outputs["UploadBucketName"], Key=key, Body=body)
    sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], stack.scan.handler, "ScanFunction")


def statuses(stack) -> dict[str, str]:
    items = stack.client("dynamodb").scan(TableName=stack.outputs["FingerprintTableName"])["Items"]
    return {i["key"]["S"]: i["status"]["S"] for i in items if "parent" not in i}


def stored_keys(stack) -> set[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.outputs["UploadBucketName"])
    return {o["Key"] for o in listing.get("Contents", [])}


def alerts(stack) -> list[dict]:
    """The alerts sent, each with the event it announces (`_event`)."""
    out = []
    for message in drain(stack, stack.inbox):
        envelope = json.loads(message["Body"])
        out.append({**json.loads(envelope["Message"]), "_event": envelope["MessageAttributes"]["event"]["Value"]})
    return out


def breaker_alerts(stack, sent: list[dict]) -> list[dict]:
    return [a for a in sent if a["_event"] in (HELD_EVENT, UPDATE_HELD_EVENT)]


def test_one_reference_acts_on_at_most_its_limit_and_the_rest_are_held_with_one_alert(stack):
    keys = [f"customers/{n}/wp-content/default.jpg" for n in range(8)]
    upload(stack, keys)

    status = statuses(stack)
    quarantined = sorted(k for k in keys if status[k] == "quarantined")
    held = sorted(k for k in keys if status[k] == "review")
    assert len(quarantined) == LIMIT and len(held) == len(keys) - LIMIT
    assert stored_keys(stack) == set(held)  # held objects stay where they are: nothing moved or deleted
    for key in held:
        tags = stack.client("s3").get_object_tagging(Bucket=stack.outputs["UploadBucketName"], Key=key)["TagSet"]
        assert {"Key": "hashcheck-status", "Value": "review"} in tags  # blocked from reads
    sent = alerts(stack)
    (tripped,) = breaker_alerts(stack, sent)
    assert tripped["_event"] == HELD_EVENT and tripped["list"] == "test-list" and tripped["ref_id"] == "wp-default"
    assert len(sent) == 1 + LIMIT  # and one per quarantine
    fp = fingerprint(DEFAULT_IMAGE)
    assert not any(value in json.dumps(tripped) for value in (fp.md5, fp.sha1, fp.sha256, fp.pdq, fp.phash))
    cases = [from_item(i) for i in stack.client("dynamodb").scan(TableName=stack.outputs["CaseTableName"])["Items"]]
    held_cases = [c for c in cases if c["key"] in held]
    assert len(held_cases) == len(held) and {c["verdict"] for c in held_cases} == {"review"}
    # nothing held is reported, even when every unreviewed match would be (HotlineReportMode=all)
    config = ReportConfig(
        endpoint="https://hotline.invalid/reports", case_table=stack.outputs["CaseTableName"], mode="all"
    )
    reporter = Reporter(config, CaseTable(stack.client("dynamodb"), stack.outputs["CaseTableName"]), None)
    assert {reporter.report(c["case_id"]).result for c in held_cases} == {SKIPPED}

    upload(stack, ["customers/9/later.jpg"])  # once held, every later hit is held without counting
    assert statuses(stack)["customers/9/later.jpg"] == "review"
    assert breaker_alerts(stack, alerts(stack)) == []


def test_a_released_reference_acts_again_and_a_held_one_does_not(stack, capsys):
    upload(stack, [f"a/{n}.jpg" for n in range(LIMIT + 1)])
    assert statuses(stack)[f"a/{LIMIT}.jpg"] == "review"

    assert (
        cli(
            [
                "list",
                "release",
                "wp-default",
                "--list",
                "test-list",
                "--why",
                "checked",
                "--who",
                "officer",
                "--stack",
                sandbox.STACK,
            ]
        )
        == 0
    )
    released = json.loads(capsys.readouterr().out)
    assert released["state"] == "released" and [h["state"] for h in released["history"]] == ["held", "released"]
    upload(stack, [f"b/{n}.jpg" for n in range(LIMIT + 2)])  # released: no longer counted
    assert {statuses(stack)[f"b/{n}.jpg"] for n in range(LIMIT + 2)} == {"quarantined"}

    assert (
        cli(
            [
                "list",
                "hold",
                "wp-default",
                "--list",
                "test-list",
                "--why",
                "owner asked",
                "--who",
                "officer",
                "--stack",
                sandbox.STACK,
            ]
        )
        == 0
    )
    capsys.readouterr()
    upload(stack, ["c/0.jpg"])
    assert statuses(stack)["c/0.jpg"] == "review"
    assert cli(["list", "holds", "--stack", sandbox.STACK]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["list_id"], row["ref_id"], row["state"]) == ("test-list", "wp-default", "held")


def test_a_retried_scan_does_not_use_up_the_limit(stack):
    """Counting is by object: the same object counted twice is one (a retry after a crash)."""
    table = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])

    def count(n: int, tenant: str = "acme") -> bool:
        return table.count_acted("test-list", "wp-default", "w", f"object-{n}", tenant, (LIMIT, 2))

    assert [count(1) for _ in range(3)] == [True, True, True]
    assert [count(n) for n in range(2, 6)] == [True, True, False, False]  # LIMIT objects, then no more
    assert count(1, "bolt") is True  # an object already counted: a retry, whoever it belongs to


def test_one_reference_acting_on_the_files_of_too_many_customers_is_held():
    parameters = {"TenantRule": "prefix:customers/{tenant}/", "ReferenceBreakerTenants": "2"}
    with listed_stack(DEFAULT_IMAGE, ref_id="wp-default", parameters=parameters) as stack:
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        stack.inbox = alerts_inbox(stack)
        upload(stack, ["customers/a/1.jpg", "customers/a/2.jpg", "customers/b/1.jpg"])  # two customers
        upload(stack, ["customers/c/1.jpg"])  # the third
        status = statuses(stack)
        assert [status[k] for k in ("customers/a/1.jpg", "customers/a/2.jpg", "customers/b/1.jpg")] == [
            "quarantined"
        ] * 3
        assert status["customers/c/1.jpg"] == "review"
        (tripped,) = breaker_alerts(stack, alerts(stack))
        assert tripped["max_tenants"] == 2 and "2 tenants" in tripped["reason"]


def test_a_list_update_that_would_act_on_too_many_stored_objects_is_held_whole():
    parameters = {"ReferenceBreakerObjects": "1000", "ListUpdateBreakerObjects": "4"}
    with listed_stack(samples.jpeg(samples.picture(99)), parameters=parameters) as stack:
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        stack.rematch = sandbox.load_handler(stack, "RematchFunction", "rematch")
        stack.inbox = alerts_inbox(stack)
        keys = [f"site/{n}/logo.jpg" for n in range(6)]
        upload(stack, keys)
        upload(stack, ["site/other.jpg"], samples.jpeg(samples.picture(70)))
        assert set(statuses(stack).values()) == {"clean"}
        stream_fingerprints(stack)

        report = run_rematch(stack, list_update(stack, references_for(fingerprint(DEFAULT_IMAGE), "feed", "bad-1")))

        assert report["update_held"] and report["held"] == len(keys) and report["matched"] == 0
        assert {statuses(stack)[k] for k in keys} == {"review"} and statuses(stack)["site/other.jpg"] == "clean"
        assert stored_keys(stack) == {*keys, "site/other.jpg"}
        (held,) = breaker_alerts(stack, alerts(stack))
        assert held["_event"] == UPDATE_HELD_EVENT and held["objects"] == len(keys)
        assert "would act on 6" in held["reason"]
        assert held["references"] == [{"list": "feed", "ref_id": "bad-1", "objects": len(keys)}]
        upload(stack, ["site/new/logo.jpg"])  # the update's references are held on the scan path too
        assert statuses(stack)["site/new/logo.jpg"] == "review" and stored_keys(stack) >= {"site/new/logo.jpg"}


def test_a_file_on_the_hosters_known_benign_list_is_never_acted_on_and_the_skip_is_recorded(caplog):
    parameters = {"KnownBenignLists": "cms-defaults,stock"}
    with listed_stack(DEFAULT_IMAGE, ref_id="wrong-1", parameters=parameters) as stack:
        table = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
        vouched = [
            r for r in references_for(fingerprint(DEFAULT_IMAGE), "cms-defaults", "wp-1") if r.algorithm == "sha256"
        ]
        table.apply_rows(vouched)
        table.bump_version(table.get_version().version)
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        with caplog.at_level("WARNING"):
            upload(stack, ["site/wp-content/default.jpg"])
        items = stack.client("dynamodb").scan(TableName=stack.outputs["FingerprintTableName"])["Items"]
        (record,) = [from_item(i) for i in items]
        assert record["status"] == "clean" and stored_keys(stack) == {"site/wp-content/default.jpg"}
        assert (
            record["reason"] == "matched wrong-1 of list test-list, set aside: known-benign (wp-1 of list cms-defaults)"
        )
        fp = fingerprint(DEFAULT_IMAGE)
        logs = "\n".join(str(r.__dict__) for r in caplog.records if "known-benign" in r.getMessage())
        assert "wrong-1" in logs and not any(v in logs for v in (fp.md5, fp.sha1, fp.sha256, fp.pdq, fp.phash))


def test_a_list_in_shadow_rollout_counts_what_its_new_references_would_do_and_acts_when_the_period_ends(capsys):
    from datetime import UTC, datetime, timedelta

    from hashcheck.aws import Clients
    from hashcheck.jobs import sync
    from hashcheck.lists import listformat
    from hashcheck.lists.sources import make_source, parse_specs

    spec_json = [{"name": "feed", "type": "s3", "key": "lists/feed.jsonl", "list_id": "feed", "shadow_days": 7}]
    picture = samples.jpeg(samples.picture(55))
    with listed_stack(samples.jpeg(samples.picture(99)), parameters={"ListSources": json.dumps(spec_json)}) as stack:
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        stack.rematch = sandbox.load_handler(stack, "RematchFunction", "rematch")
        s3, artifacts = stack.client("s3"), stack.outputs["ArtifactsBucketName"]
        upload(stack, ["old/a.jpg"], picture)  # stored before the list carried it
        stream_fingerprints(stack)
        rows = references_for(fingerprint(picture), "feed", "new-1")
        s3.put_object(
            Bucket=artifacts, Key="lists/feed.jsonl", Body="".join(listformat.to_json(r) + "\n" for r in rows)
        )
        synced = sandbox.load_handler(stack, "SyncFunction", "sync").handler({}, sandbox.LambdaContext("sync"))

        first = run_rematch(stack, synced["version"])  # the new reference against what is stored
        upload(stack, ["new/b.jpg"], picture)  # and a new upload, while in shadow
        assert first["matched"] == first["held"] == 0 and statuses(stack) == {
            "old/a.jpg": "clean",
            "new/b.jpg": "clean",
        }
        capsys.readouterr()  # the handlers' logs so far
        assert cli(["list", "holds", "--stack", sandbox.STACK]) == 0
        (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert (row["ref_id"], row["state"]) == ("new-1", "shadow")
        table = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
        assert table.breaker_states([("feed", "new-1")])[("feed", "new-1")]["would_act"] == 2

        later = datetime.now(UTC) + timedelta(days=8)  # the period is over
        stream_fingerprints(stack)
        spec = parse_specs(json.dumps(spec_json))[0]
        clients = Clients(s3=s3, dynamodb=stack.client("dynamodb"))
        job = (make_source(spec, clients, default_bucket=artifacts), spec)
        promoted = sync.sync_sources([job], table, artifacts, s3, now=lambda: later)
        assert promoted.delta_key and table.shadow_batches() == {}
        stack.rematch.scanner.breaker.clock = lambda: later
        acted = run_rematch(stack, promoted.version)
        assert acted["matched"] == 2 and statuses(stack) == {"old/a.jpg": "quarantined", "new/b.jpg": "quarantined"}


def test_a_reference_whose_shadow_period_is_over_trips_like_any_other(stack):
    """Out of shadow it is counted, and past its cap it is held and alerted (its hold item existing
    already, from the shadow, must not stop the trip)."""
    from hashcheck.matching.matcher import Match, Result
    from hashcheck.objects import ObjectRef
    from hashcheck.response.breaker import Breaker, BreakerLimits

    table = ReferenceTable(stack.client("dynamodb"), stack.outputs["ReferenceTableName"])
    table.put_in_shadow([("feed", "late-1")], "2000-01-01T00:00:00+00:00", "an old shadow period")
    sent: list[tuple[str, dict]] = []
    breaker = Breaker(table, BreakerLimits(max_objects=2, max_tenants=10), lambda e, d: sent.append((e, d)))
    result = Result("match", [Match("sha256", 0, "feed", "late-1", True)])
    held = [breaker.held(ObjectRef("b", f"k{n}"), result) for n in range(4)]
    assert held == [[], [], [("feed", "late-1")], [("feed", "late-1")]]
    assert [e for e, _ in sent] == [HELD_EVENT]
    assert table.breaker_states([("feed", "late-1")])[("feed", "late-1")]["state"] == "held"
