"""`hashcheck list import` / `list sync` against a stack: template.yaml deployed on a moto server
(ThreadedMotoServer on 127.0.0.1), the CLI pointed at it by AWS_ENDPOINT_URL as an operator would."""

import json
import socket
import urllib.request

import boto3
import pytest
from moto.server import ThreadedMotoServer

from hashcheck.fingerprinting.fingerprint import fingerprint
from hashcheck.matching.stores.dynamodb import DynamoStore
from hashcheck.tables.reference_table import ReferenceTable
from hashcheck.tools import sandbox
from hashcheck.tools.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def stack(monkeypatch):
    sandbox.fake_credentials()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    try:
        yield sandbox.deploy()
    finally:
        # moto's state lives in this process, shared by every server and mock: leave none behind
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
        server.stop()
        boto3.setup_default_session()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_import_fills_the_table_and_publishes_the_index(stack, photos, tmp_path, capsys):
    listed = tmp_path / "list.jsonl"
    assert run(capsys, "list", "build", *map(str, photos[:3]), "--list-id", "police", "-o", str(listed))[0] == 0
    code, out, _ = run(capsys, "list", "import", str(listed), "--stack", sandbox.STACK, "--list-id", "police")
    report = json.loads(out.splitlines()[-1])
    rows = len(listed.read_text().splitlines())  # 5 per photo, 2 more for one with a uniform border
    assert rows >= 15
    assert code == 0 and report["ok"] and report["sources"][0]["added"] == rows
    table = stack.outputs["ReferenceTableName"]
    ddb = stack.client("dynamodb")
    assert ReferenceTable(ddb, table).get_version().snapshot_key  # the index snapshot is live
    fp = fingerprint(photos[0].read_bytes())
    hits = DynamoStore(ReferenceTable(ddb, table)).exact([("sha256", fp.sha256)])
    assert [r.id for r in hits[("sha256", fp.sha256)]] == [photos[0].stem]


def test_list_import_of_rows_for_another_list_is_refused(stack, photos, tmp_path, capsys):
    listed = tmp_path / "list.jsonl"
    run(capsys, "list", "build", str(photos[0]), "--list-id", "other", "-o", str(listed))
    code, out, _ = run(capsys, "list", "import", str(listed), "--stack", sandbox.STACK, "--list-id", "police")
    assert code == 1 and json.loads(out.splitlines()[-1])["ok"] is False


def test_list_sync_applies_a_list_file_dropped_in_the_artifacts_bucket(stack, photos, tmp_path, capsys):
    listed = tmp_path / "extra.jsonl"
    run(capsys, "list", "build", str(photos[1]), "--list-id", "extra", "-o", str(listed))
    bucket = stack.outputs["ArtifactsBucketName"]
    stack.client("s3").put_object(Bucket=bucket, Key="lists/extra.jsonl", Body=listed.read_bytes())
    sources = json.dumps(
        [{"name": "compliance", "type": "s3", "bucket": bucket, "key": "lists/extra.jsonl", "list_id": "extra"}]
    )
    code, out, _ = run(capsys, "list", "sync", "--stack", sandbox.STACK, "--sources", sources)
    rows = len(listed.read_text().splitlines())  # 5, or 7 for a photo with a uniform border
    assert code == 0 and json.loads(out.splitlines()[-1])["sources"][0]["added"] == rows
    code, out, _ = run(capsys, "list", "sync", "--stack", sandbox.STACK, "--sources", sources)
    assert code == 0 and json.loads(out.splitlines()[-1])["sources"][0]["status"] == "unchanged"


def test_unknown_stack_is_a_usage_error(stack, capsys):
    code, _, err = run(capsys, "list", "sync", "--stack", "no-such-stack")
    assert code == 2 and "no-such-stack" in err


def test_backfill_then_review_a_case_and_release_it(stack, photos, tmp_path, capsys):
    """Objects stored before the stack: `hashcheck backfill` scans them; `cases` reviews what it found."""
    listed = tmp_path / "list.jsonl"
    run(capsys, "list", "build", str(photos[0]), "--list-id", "police", "-o", str(listed))
    assert run(capsys, "list", "import", str(listed), "--stack", sandbox.STACK)[0] == 0
    s3, bucket = stack.client("s3"), stack.outputs["UploadBucketName"]
    original = photos[0].read_bytes()
    s3.put_object(Bucket=bucket, Key="old/listed.jpg", Body=original)
    s3.put_object(Bucket=bucket, Key="old/other.jpg", Body=photos[1].read_bytes())

    code, out, _ = run(capsys, "backfill", bucket, "--prefix", "old/", "--stack", sandbox.STACK, "--local")
    summary = json.loads(out.splitlines()[-1])
    assert code == 0 and summary["scanned"] == 2 and summary["matched"] == 1
    code, out, _ = run(capsys, "backfill", bucket, "--prefix", "old/", "--stack", sandbox.STACK, "--local")
    rerun = json.loads(out.splitlines()[-1])
    assert rerun["scanned"] == 0 and rerun["skipped"] == 1  # the clean one; the match was moved out

    code, out, _ = run(capsys, "cases", "list", "--stack", sandbox.STACK)
    (case,) = [json.loads(line) for line in out.splitlines()]
    assert case["key"] == "old/listed.jpg"
    code, _, _ = run(
        capsys, "cases", "release", case["case_id"], "--why", "stock photo, not abuse", "--stack", sandbox.STACK
    )
    assert code == 0
    restored = s3.get_object(Bucket=bucket, Key="old/listed.jpg")["Body"].read()
    assert restored == original  # bit for bit
    code, out, _ = run(capsys, "cases", "release", case["case_id"], "--why", "again", "--stack", sandbox.STACK)
    code, out, _ = run(
        capsys, "cases", "confirm", case["case_id"], "--why", "changed my mind", "--stack", sandbox.STACK
    )
    assert code == 1  # a decision is final
    code, out, _ = run(capsys, "cases", "audit", "--stack", sandbox.STACK)
    history = [json.loads(line)["what"] for line in out.splitlines()]
    assert "opened" in history and "released" in history
