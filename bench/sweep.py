"""The sweep's cost on the sandbox (template.yaml in an in-process moto): AWS requests per run over a
bucket of N objects of which a share was written inside the sweep's window and a few never got a
scan, against the naive sweep that asks each object for its status tag.

    python bench/sweep.py [N] [--recent SHARE] [--lost K]      (default 5,000 objects, 5% recent, 10 lost)

Requests are counted at the client (what AWS would bill): S3 LIST, DynamoDB BatchGetItem (and the
read units of the records they return), SQS SendMessageBatch. The baseline counts one
GetObjectTagging per object, the cheapest way to learn a status without a record table.

Last line: objects=… recent=… lost=… queued=… list_requests=… batch_gets=… sends=…
requests=… naive_requests=… ratio_vs_naive=… cost_usd_per_run=… naive_cost_usd_per_run=… sweep_s=… ok=…
"""

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
from moto import mock_aws  # noqa: E402

from hashcheck.jobs import sweep  # noqa: E402
from hashcheck.objects import ObjectRef  # noqa: E402
from hashcheck.status import ObjectStatus  # noqa: E402
from hashcheck.tables.fingerprint_table import FingerprintTable  # noqa: E402
from hashcheck.tools import sandbox  # noqa: E402

# us-east-1 list prices, from the dated table bench/cost.py prices with too: S3 LIST is PUT-class
_US = json.loads((ROOT / "docs" / "prices.json").read_text())["regions"]["us-east-1"]
PRICE = {
    "s3_list": _US["s3_put_class_request"],
    "s3_get": _US["s3_get_class_request"],
    "ddb_rru": _US["dynamodb_read_request_unit"],
    "sqs": _US["sqs_request"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("objects", nargs="?", type=int, default=5_000)
    parser.add_argument("--recent", type=float, default=0.05, help="share written inside the window")
    parser.add_argument("--lost", type=int, default=10, help="recent objects that never got a scan")
    args = parser.parse_args()
    sandbox.fake_credentials()
    with mock_aws():
        stack = sandbox.deploy()
        s3, sqs, ddb = stack.client("s3"), stack.client("sqs"), stack.client("dynamodb")
        bucket, url = stack.outputs["UploadBucketName"], stack.outputs["ScanQueueUrl"]
        table = FingerprintTable(ddb, stack.outputs["FingerprintTableName"])
        recent = int(args.objects * args.recent)
        written = put_objects(s3, bucket, args.objects)
        sqs.purge_queue(QueueUrl=url)  # the sandbox's events: this bench is about what the sweep finds
        for obj in written[len(written) - recent + args.lost :]:  # recent ones scanned, but `lost` of them
            table.record(obj, ObjectStatus.CLEAN, "clean")
        window = dated_window(bucket, written, recent)
        calls = count_calls(s3, ddb, sqs)
        started = time.perf_counter()
        summary = sweep.sweep(s3, table, sqs, url, [bucket], window)
        sweep_s = time.perf_counter() - started
        naive = args.objects  # one GetObjectTagging per object
        lists, gets, sends = calls["ListObjectVersions"], calls["BatchGetItem"], calls["SendMessageBatch"]
        # a consistent read of a record under 4 KB is one read unit; only the recent objects are read
        cost = lists * PRICE["s3_list"] + recent * PRICE["ddb_rru"] + sends * PRICE["sqs"]
        naive_cost = naive * PRICE["s3_get"] + lists * PRICE["s3_list"]
        ok = summary.queued == args.lost and summary.due == recent and summary.listed == args.objects
        print(summary.as_dict(), dict(calls))
        print(
            f"objects={args.objects} recent={recent} lost={args.lost} queued={summary.queued} "
            f"list_requests={lists} batch_gets={gets} sends={sends} requests={lists + gets + sends} "
            f"naive_requests={naive + lists} ratio_vs_naive={(naive + lists) / (lists + gets + sends):.1f} "
            f"cost_usd_per_run={cost:.5f} naive_cost_usd_per_run={naive_cost:.5f} sweep_s={sweep_s:.1f} ok={ok}"
        )


def put_objects(s3, bucket: str, n: int) -> list[ObjectRef]:
    out = []
    for i in range(n):
        response = s3.put_object(Bucket=bucket, Key=f"b/{i:07d}.txt", Body=b"x")
        out.append(ObjectRef(bucket, f"b/{i:07d}.txt", response["VersionId"], response["ETag"]))
    return out


def dated_window(bucket: str, written: list[ObjectRef], recent: int) -> sweep.Window:
    """Date the last `recent` objects an hour back and the others five days back (moto writes them
    all within seconds), and the sweep's window as deployed: 30 minutes to 2 days back."""
    now, backend = datetime.now(UTC), _backend()
    for n, obj in enumerate(written):
        age = timedelta(hours=1) if n >= len(written) - recent else timedelta(days=5)
        key = backend.get_object(bucket, obj.key, version_id=obj.version_id)
        key.last_modified = (now - age).replace(tzinfo=None)  # moto keeps naive UTC
    return sweep.Window(now)


def _backend():
    from moto.s3.models import s3_backends

    return s3_backends["123456789012"]["aws"]


def count_calls(*clients) -> Counter:
    calls: Counter = Counter()
    for client in clients:
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    return calls


if __name__ == "__main__":
    main()
