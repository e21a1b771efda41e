"""Tenants: whose each object is, recorded on its record and case; a notice per action to that
customer that says what happened and how to appeal, never which list; an appeal recorded on the case.

The stack in moto (hashcheck.tools.sandbox) with TenantRule `prefix:customers/{tenant}/`."""

import json

import pytest

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.objects import ObjectRef
from hashcheck.response import review
from hashcheck.response.notices import TENANT_NOTICE_EVENT
from hashcheck.tables.dynamo import from_item
from hashcheck.tenancy import TenantRule, Tenants
from hashcheck.tools import samples, sandbox
from hashcheck.tools.cli import main as cli
from tests.helpers import drain, listed_stack

LISTED = samples.jpeg(samples.picture(41))
CLEAN = samples.jpeg(samples.picture(42))


@pytest.fixture()
def stack():
    with listed_stack(LISTED, ref_id="ref-41", parameters={"TenantRule": "prefix:customers/{tenant}/"}) as stack:
        stack.scan = sandbox.load_handler(stack, "ScanFunction", "scan")
        sqs, events = stack.client("sqs"), stack.client("events")
        stack.notices = sqs.create_queue(QueueName="tenant-notices")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=stack.notices, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["hashcheck"], "detail-type": [TENANT_NOTICE_EVENT]}
        events.put_rule(Name="tenant-notices", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="tenant-notices", Targets=[{"Id": "q", "Arn": arn}])
        yield stack


def upload(stack, key: str, body: bytes) -> None:
    stack.client("s3").put_object(Bucket=stack.outputs["UploadBucketName"], Key=key, Body=body)
    sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], stack.scan.handler, "ScanFunction")


def notices(stack) -> list[dict]:
    return [json.loads(m["Body"])["detail"] for m in drain(stack, stack.notices)]


def records(stack) -> dict[str, dict]:
    items = stack.client("dynamodb").scan(TableName=stack.outputs["FingerprintTableName"])["Items"]
    return {r["key"]: r for r in map(from_item, items)}


def cases(stack) -> list[dict]:
    return [from_item(i) for i in stack.client("dynamodb").scan(TableName=stack.outputs["CaseTableName"])["Items"]]


def test_each_action_is_told_to_its_tenant_without_naming_the_list(stack):
    upload(stack, "customers/acme/site/photo.jpg", LISTED)
    upload(stack, "customers/acme/site/ok.jpg", CLEAN)
    upload(stack, "customers/bolt/broken.jpg", CLEAN[: len(CLEAN) // 4])
    upload(stack, "shared/photo.jpg", CLEAN[: len(CLEAN) // 4])  # outside the pattern: no tenant

    told = {n["key"]: n for n in notices(stack)}
    assert set(told) == {"customers/acme/site/photo.jpg", "customers/bolt/broken.jpg"}
    quarantined, broken = told["customers/acme/site/photo.jpg"], told["customers/bolt/broken.jpg"]
    assert (quarantined["tenant"], quarantined["action"]) == ("acme", "quarantined") and quarantined["case_id"]
    assert (broken["tenant"], broken["action"]) == ("bolt", "unscannable") and broken["case_id"] is None
    assert "appeal" in quarantined["appeal"] and "removed" in quarantined["what_happened"]
    fp = fingerprint(LISTED)
    text = json.dumps(quarantined)
    for secret in ("test-list", "ref-41", fp.md5, fp.sha1, fp.sha256, fp.pdq, fp.phash):
        assert secret not in text

    recorded = records(stack)
    assert recorded["customers/acme/site/ok.jpg"]["tenant"] == "acme"
    assert "tenant" not in recorded["shared/photo.jpg"]
    (case,) = cases(stack)
    assert case["tenant"] == "acme"


def test_an_appeal_is_recorded_on_the_case_and_a_reviewer_resolves_it(stack, capsys):
    upload(stack, "customers/acme/family.jpg", LISTED)
    (case,) = cases(stack)
    argv = ["cases", "appeal", case["case_id"], "--why", "it is our own photo", "--who", "acme via support"]
    assert cli([*argv, "--stack", sandbox.STACK]) == 0
    appealed = json.loads(capsys.readouterr().out)
    assert appealed["appeal"]["why"] == "it is our own photo" and appealed["history"][-1]["what"] == "appealed"
    target = review.Target.from_outputs(stack.outputs)
    (listed,) = review.list_cases(target)
    assert listed["tenant"] == "acme" and listed["appeal"]["who"] == "acme via support"

    released = review.release_case(target, case["case_id"], "reviewer", "appeal upheld")
    assert released["status"] == "released"
    with pytest.raises(review.DecisionConflict):
        review.appeal_case(target, case["case_id"], "acme", "again")


def test_tenant_rules():
    obj = ObjectRef("bucket-a", "customers/acme/x/y.jpg")
    assert Tenants(TenantRule.parse("bucket")).of(obj) == "bucket-a"
    assert Tenants(TenantRule.parse("prefix:customers/{tenant}/")).of(obj) == "acme"
    assert Tenants(TenantRule.parse("prefix:users/{tenant}/")).of(obj) is None
    assert Tenants(TenantRule.parse("none")).of(obj) is None
    for bad in ("prefix:customers/", "tag:", "owner", "prefix:{tenant}/{tenant}"):
        with pytest.raises(ValueError):
            TenantRule.parse(bad)


def test_a_bucket_tag_names_the_tenant(stack):
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    tenants = Tenants(TenantRule.parse("tag:customer"), s3)
    assert tenants.of(ObjectRef(bucket, "a.jpg")) is None  # no tags at all
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "customer", "Value": "acme"}]})
    assert Tenants(TenantRule.parse("tag:customer"), s3).of(ObjectRef(bucket, "a.jpg")) == "acme"


def test_stats_give_the_figures_per_month_list_and_tenant_and_draw_them(stack, capsys, tmp_path):
    upload(stack, "customers/acme/a.jpg", LISTED)
    upload(stack, "customers/acme/b.jpg", CLEAN)
    upload(stack, "customers/bolt/c.jpg", LISTED)
    upload(stack, "customers/bolt/d.jpg", CLEAN[:100])
    target = review.Target.from_outputs(stack.outputs)
    bolt = next(c for c in cases(stack) if c["tenant"] == "bolt")
    review.release_case(target, bolt["case_id"], "reviewer", "a false positive")
    plot = tmp_path / "stats.png"

    assert cli(["stats", "--stack", sandbox.STACK, "--json", "--plot", str(plot)]) == 0
    found = json.loads(capsys.readouterr().out)

    ((month, objects),) = found["months"].items()
    # the released one was quarantined when scanned; its release is a case figure (its restored copy
    # is a new version, scanned on its own)
    assert objects["scanned"] == 4 and objects["quarantined"] == 2 and objects["unscannable"] == 1
    assert objects["clean"] == 1
    assert found["lists"]["test-list"][month] == {
        "matched": 2,
        "quarantined": 1,
        "held": 0,
        "released": 1,
        "confirmed": 0,
        "reported": 0,
    }
    assert found["tenants"]["acme"]["case_quarantined"] == 1 and found["tenants"]["bolt"]["case_released"] == 1
    assert found["tenants"]["bolt"]["unscannable"] == 1
    from PIL import Image

    with Image.open(plot) as drawn:
        assert drawn.size == (960, 560) and len(drawn.getcolors(1 << 16) or []) > 3  # bars, not a blank page
    assert cli(["stats", "--stack", sandbox.STACK, "--since", "2999-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["months"] == {}
