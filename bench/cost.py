"""Cost per million images: every AWS request, DynamoDB unit, log byte and Lambda millisecond, priced.

    python bench/cost.py [--objects N] [--region eu-west-1|us-east-1] [--seed S]

Deploys template.yaml into the in-process moto (hashcheck.tools.sandbox) twice, in the default
(deny-list) read mode and in the fail-closed one, with three pictures on a list, and runs N uploads
(default 1,000) through the real handlers: 97% clean photos of real sizes (half 12 MP phone photos of
about 3 MB, 30% 2 MP, 20% 0.5 MP web pictures, each with sensor-like grain so that it compresses like
a photo), 1% text files, 1% truncated JPEGs (unscannable), 1% edited copies of the listed pictures
(matches); then one list sync that adds a picture and its re-match over what is stored.

Counted from botocore's event hooks, per function (the sandbox runs each handler as its function):
every request by service and operation; DynamoDB write and read request units as DynamoDB bills them
(item sizes by its rules; a write also costs a unit in each global secondary index whose key the item
carries); S3 bytes read. Log bytes: what the functions' loggers write, Powertools' metric blobs (EMF),
and Lambda's START/END/REPORT lines. Lambda time: our own compute per invocation, measured (the time
in AWS calls, moto's, taken out), run at the vCPU share of the function's memory, plus a modelled
latency per AWS call (LATENCY_MS; a synchronous Invoke waits for the invoked function; invokes a
function issues at once overlap); billed as GB-seconds at the memory template.yaml gives it.
Modelled, not observed here: SQS (EventBridge's SendMessage per object, the event source mapping's
ReceiveMessage and DeleteMessageBatch per batch of 10), X-Ray (5% of invocations traced).

Prices: docs/prices.json (dated, with the pages they come from). GuardDuty Malware Protection for S3
on the same mix is the baseline. Prints the requests per clean upload, a table per component and per
status, and last:
`usd_per_million=… usd_per_million_fail_closed=… requests_per_object=… lambda_ms_per_object=… ratio_vs_guardduty=…`
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import boto3  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from hashcheck.tools import demo, samples, sandbox  # noqa: E402

PRICES = json.loads((ROOT / "docs" / "prices.json").read_text())
# Modelled latency of one call from a function in the same region (ms), and S3's read throughput.
LATENCY_MS = {"s3": 20.0, "dynamodb": 5.0, "lambda": 10.0, "sns": 15.0, "events": 15.0, "sqs": 10.0, "kms": 5.0}
S3_READ_MB_PER_S = 80.0
FULL_VCPU_MB = 1769  # Lambda gives a function one vCPU at 1,769 MB, in proportion below
PLATFORM_LOG_BYTES = 340  # Lambda's START, END and REPORT lines per invocation
XRAY_SAMPLED = 0.05  # the default sampling rule: the first request each second, then 5%
SQS_BATCH = 10
KINDS = ("clean", "not_image", "unscannable", "match")


@dataclass(frozen=True)
class Call:
    """One AWS call a function made: when (wall clock), its modelled latency, and the CPU its thread
    spent inside it (moto's, taken out of the function's own compute)."""

    begin: float
    end: float
    operation: str
    latency_ms: float
    thread: int
    cpu_s: float


# --- what a run spends ---------------------------------------------------------------------------------


@dataclass
class Spend:
    requests: Counter = field(default_factory=Counter)  # (function, service, operation) -> calls
    wru: Counter = field(default_factory=Counter)  # (function, table) -> write request units
    rru: Counter = field(default_factory=Counter)  # (function, table) -> read request units
    s3_bytes_read: int = 0
    log_bytes: Counter = field(default_factory=Counter)  # function -> bytes
    metric_points: int = 0
    invocations: Counter = field(default_factory=Counter)  # function -> invocations
    lambda_ms: Counter = field(default_factory=Counter)  # function -> modelled billed ms (at its memory)
    compute_ms: Counter = field(default_factory=Counter)  # function -> our own compute, measured

    def add(self, other: Spend) -> None:
        for name in ("requests", "wru", "rru", "log_bytes", "invocations", "lambda_ms", "compute_ms"):
            getattr(self, name).update(getattr(other, name))
        self.s3_bytes_read += other.s3_bytes_read
        self.metric_points += other.metric_points


def attribute_size(value: dict) -> int:
    """An attribute value's size as DynamoDB counts it (strings and binaries by length, numbers by
    digits, a map or list 3 bytes plus its elements, a map's names too)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        return len(data.strip("-").replace(".", "").lstrip("0")) // 2 + 2
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: v}) for v in data)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in data)
    return 3 + sum(len(k.encode()) + 1 + attribute_size(v) for k, v in data.items())  # M


def item_size(item: dict | None) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in (item or {}).items())


class Meter:
    """botocore hooks on the default session: every call a function makes is counted and priced in
    units; reads of old and new items go through a separate, uncounted client."""

    def __init__(self):
        self.spend = Spend()
        self.quiet = boto3.session.Session().client("dynamodb", region_name=sandbox.REGION)
        self.invoked_ms = lambda: 0.0  # what a synchronous Invoke waits for: the invoked function's duration
        self._tables: dict[str, dict] = {}  # DescribeTable's answer, once per table
        self._calls: dict[str, list[Call]] = defaultdict(list)
        events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build", self._before, unique_id="cost-before")
        events.register("after-call", self._after, unique_id="cost-after")

    def close(self) -> None:
        boto3.DEFAULT_SESSION.events.unregister("before-parameter-build", unique_id="cost-before")
        boto3.DEFAULT_SESSION.events.unregister("after-call", unique_id="cost-after")

    def take(self) -> Spend:
        spend, self.spend = self.spend, Spend()
        return spend

    def calls_of(self, function: str) -> list[Call]:
        calls, self._calls[function] = self._calls[function], []
        return calls

    def _before(self, params, model, context, **_):
        function = sandbox.current_principal()
        if function is None:
            return  # the sandbox's own calls (uploads, setup): no function of the stack makes them
        service, operation = model.service_model.service_name, model.name
        self.spend.requests[(function, service, operation)] += 1
        context["cost"] = (function, time.perf_counter(), time.thread_time(), params)
        if service == "dynamodb":
            context["cost_old"] = self._old_items(operation, params)

    def _after(self, http_response, parsed, model, context, **_):
        if "cost" not in context:
            return
        function, started, cpu_started, params = context["cost"]
        service, operation = model.service_model.service_name, model.name
        latency = LATENCY_MS.get(service, 10.0)
        if service == "lambda" and operation == "Invoke":
            latency += self.invoked_ms()
        if service == "s3" and operation == "GetObject":
            size = int(parsed.get("ContentLength") or 0)
            self.spend.s3_bytes_read += size
            latency += size / (S3_READ_MB_PER_S * 1e3)
        if service == "dynamodb":
            self._units(function, operation, params, parsed, context.get("cost_old"))
        call = Call(
            started, time.perf_counter(), operation, latency, threading.get_ident(), time.thread_time() - cpu_started
        )
        self._calls[function].append(call)

    # DynamoDB units ------------------------------------------------------------------------------------

    def _old_items(self, operation: str, params: dict) -> list[tuple[str, dict, bool, dict | None]]:
        """(table, key or item, whether it is deleted, the item stored now) for each write of the call."""
        writes = []
        if operation == "PutItem":
            writes.append((params["TableName"], params["Item"], False))
        elif operation in ("UpdateItem", "DeleteItem"):
            writes.append((params["TableName"], params["Key"], operation == "DeleteItem"))
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        writes.append((table, request["PutRequest"]["Item"], False))
                    else:
                        writes.append((table, request["DeleteRequest"]["Key"], True))
        return [(table, item, deleted, self._stored(table, item)) for table, item, deleted in writes]

    def _stored(self, table: str, item: dict) -> dict | None:
        key = {name: item[name] for name in self._key(table) if name in item}
        return self.quiet.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _described(self, table: str) -> dict:
        if table not in self._tables:
            self._tables[table] = self.quiet.describe_table(TableName=table)["Table"]
        return self._tables[table]

    def _key(self, table: str) -> list[str]:
        return [k["AttributeName"] for k in self._described(table)["KeySchema"]]

    def _gsis(self, table: str) -> list[list[str]]:
        """The key attributes of each of the table's global secondary indexes."""
        indexes = self._described(table).get("GlobalSecondaryIndexes", [])
        return [[k["AttributeName"] for k in gsi["KeySchema"]] for gsi in indexes]

    def _units(self, function: str, operation: str, params: dict, parsed: dict, old: list | None) -> None:
        if operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"):
            for table, item, deleted, before in old or []:
                after = None if deleted else self._stored(table, item)
                units = math.ceil(max(item_size(before), item_size(after), 1) / 1024)
                for keys in self._gsis(table):  # an index holding the item before or after is written
                    if any(all(k in i for k in keys) for i in (before or {}, after or {})):
                        units += 1
                self.spend.wru[(function, table)] += units
        elif operation in ("GetItem", "BatchGetItem", "Query", "Scan"):
            for table, items, consistent in _items_read(operation, params, parsed):
                sizes = [item_size(i) for i in items]
                if operation in ("Query", "Scan"):
                    blocks = math.ceil(max(sum(sizes), 1) / 4096)
                else:
                    blocks = sum(math.ceil(max(s, 1) / 4096) for s in sizes) or 1
                self.spend.rru[(function, table)] += blocks * (1.0 if consistent else 0.5)


def _items_read(operation: str, params: dict, parsed: dict):
    if operation == "GetItem":
        yield params["TableName"], [parsed["Item"]] if "Item" in parsed else [], params.get("ConsistentRead", False)
    elif operation == "BatchGetItem":
        for table, request in params["RequestItems"].items():
            found = parsed.get("Responses", {}).get(table, [])
            yield table, found + [{}] * max(0, len(request["Keys"]) - len(found)), request.get("ConsistentRead", False)
    else:
        yield params["TableName"], parsed.get("Items", []), params.get("ConsistentRead", False)


# --- running the functions ------------------------------------------------------------------------------


class LogCounter(logging.Handler):
    """Counts the bytes the functions' loggers write, formatted as Powertools formats them."""

    def __init__(self, meter: Meter):
        super().__init__(logging.INFO)
        self.meter = meter
        self.formatter_from = logging.getLogger("hashcheck")

    def emit(self, record: logging.LogRecord) -> None:
        function = sandbox.current_principal() or "-"
        formatter = next((h.formatter for h in self.formatter_from.handlers if h is not self and h.formatter), None)
        text = formatter.format(record) if formatter else record.getMessage()
        self.meter.spend.log_bytes[function] += len(text.encode()) + 1


class Timed:
    """A handler run as Lambda bills it: its compute measured, its calls' latencies modelled."""

    def __init__(self, meter: Meter, function: str, handler, memory_mb: int, prints: bool = True):
        self.meter, self.function, self.handler, self.memory_mb = meter, function, handler, memory_mb
        self.prints = prints  # it prints metric blobs: capture stdout (never in threads: it is process-wide)
        self.last_ms = 0.0  # the modelled duration of the last invocation (what a caller waits)

    def __call__(self, event, context):
        self.meter.calls_of(self.function)  # calls before this invocation are not its own
        printed = io.StringIO()
        started = time.thread_time()  # CPU, not wall: other functions' threads share this process
        with contextlib.redirect_stdout(printed) if self.prints else contextlib.nullcontext():
            answer = self.handler(event, context)  # Powertools prints its metric blobs (EMF)
        cpu_s = time.thread_time() - started
        calls = self.meter.calls_of(self.function)
        here = threading.get_ident()
        compute_ms = max(0.0, cpu_s - sum(c.cpu_s for c in calls if c.thread == here)) * 1000
        self.last_ms = compute_ms / min(1.0, self.memory_mb / FULL_VCPU_MB) + _waiting_ms(calls)
        spend = self.meter.spend
        spend.invocations[self.function] += 1
        spend.compute_ms[self.function] += compute_ms
        spend.lambda_ms[self.function] += self.last_ms
        spend.log_bytes[self.function] += len(printed.getvalue().encode()) + PLATFORM_LOG_BYTES
        for line in printed.getvalue().splitlines():
            with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                spend.metric_points += len(json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"])
        return answer


def _waiting_ms(calls: list[Call]) -> float:
    """The modelled time spent in calls, an upper bound: every call but an Invoke adds up; Invokes that
    overlapped (a batch's fingerprints asked for at once) cost the longest of them."""
    waiting = sum(c.latency_ms for c in calls if c.operation != "Invoke")
    group_end, group_max = -1.0, 0.0
    for call in sorted((c for c in calls if c.operation == "Invoke"), key=lambda c: c.begin):
        if call.begin < group_end:  # overlaps the running group
            group_max, group_end = max(group_max, call.latency_ms), max(group_end, call.end)
            continue
        waiting += group_max
        group_max, group_end = call.latency_ms, call.end
    return waiting + group_max


def memory_of(stack, function: str) -> int:
    return int(stack.client("lambda").get_function_configuration(FunctionName=stack.functions[function])["MemorySize"])


# --- the uploads ------------------------------------------------------------------------------------------


SIZES = ((0.5, (4032, 3024)), (0.3, (1920, 1080)), (0.2, (800, 600)))  # share of clean photos, pixels


def photo(seed: int, size: tuple[int, int]) -> bytes:
    """A generated picture at `size`, with grain like a camera's, as a JPEG of quality 90."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(samples.picture(seed).resize(size), dtype=np.int16)
    grain = rng.normal(0, 5, size=(size[1], size[0], 1)).astype(np.int16)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels + grain, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def unique(jpeg: bytes, n: int) -> bytes:
    """The same picture as other bytes: a JPEG comment with the upload's number after the SOI marker."""
    comment = f"upload {n}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


def uploads(count: int, seed: int) -> dict[str, list[tuple[str, bytes]]]:
    """The mix, by kind: 97% clean photos of real sizes, 1% each of not images, unscannable, matches."""
    rng = random.Random(seed)
    few = max(1, round(count / 100))
    bases = {size: [photo(1000 + 10 * i + s, size) for i in range(4)] for s, (_, size) in enumerate(SIZES)}
    clean = []
    for n in range(count - 3 * few):
        share = rng.random()
        size = SIZES[0][1] if share < SIZES[0][0] else SIZES[1][1] if share < SIZES[0][0] + SIZES[1][0] else SIZES[2][1]
        clean.append((f"customers/{n % 50}/photo-{n}.jpg", unique(rng.choice(bases[size]), n)))
    edits = list(samples.EDITS.values())
    whole = photo(77, (1920, 1080))
    return {
        "clean": clean,
        "not_image": [
            (f"customers/{n}/notes-{n}.txt", f"shopping list {n}: bread, milk\n".encode()) for n in range(few)
        ],
        "unscannable": [(f"customers/{n}/cut-{n}.jpg", unique(whole, n)[: len(whole) // 3]) for n in range(few)],
        "match": [
            (f"customers/{n}/listed-{n}.jpg", edits[n % len(edits)](samples.picture(demo.LISTED[n % 3])))
            for n in range(few)
        ],
    }


# --- one deployment ----------------------------------------------------------------------------------------


@dataclass
class Run:
    per_kind: dict[str, Spend]
    objects: dict[str, int]
    bytes_in: dict[str, int]
    stream: Spend  # every record through the FingerprintTable's stream into the stored index
    list_update: Spend
    memory: dict[str, int]


def run_mode(fail_closed: bool, mix: dict[str, list[tuple[str, bytes]]], tags: str | None = None) -> Run:
    """One deployment in that read mode, the mix uploaded kind by kind (with `tags` of the customer's,
    e.g. "team=a", on every upload), then a list update."""
    sandbox.fake_credentials()
    saved = {name: os.environ.get(name) for name in ("POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_DISABLED")}
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"  # the template's default level
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "0"
    try:
        return _deploy_and_measure(fail_closed, mix, tags)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _deploy_and_measure(fail_closed: bool, mix: dict[str, list[tuple[str, bytes]]], tags: str | None) -> Run:
    from moto import mock_aws

    parameters = {"ListSources": demo.LIST_SOURCES, "FailClosedReadPolicy": "true" if fail_closed else "false"}
    with mock_aws():
        stack = sandbox.deploy(parameters)
        with contextlib.redirect_stdout(io.StringIO()):  # the setup's own sync is not what is measured
            demo._sync_reference_list(stack, demo.reference_rows())
        meter = Meter()
        counter = LogCounter(meter)
        logging.getLogger("hashcheck").addHandler(counter)
        try:
            return _measure(stack, meter, mix, tags)
        finally:
            logging.getLogger("hashcheck").removeHandler(counter)
            meter.close()


def _measure(stack, meter: Meter, mix, tags: str | None = None) -> Run:
    memory = {
        name: memory_of(stack, name)
        for name in ("ScanFunction", "FingerprintFunction", "SyncFunction", "RematchFunction")
    }
    fingerprint = sandbox.invoked(stack, "FingerprintFunction")
    timed_fp = Timed(meter, "FingerprintFunction", fingerprint.handler, memory["FingerprintFunction"], prints=False)
    fingerprint.handler = timed_fp
    meter.invoked_ms = lambda: timed_fp.last_ms
    scan = sandbox.load_handler(stack, "ScanFunction", "scan")
    timed_scan = Timed(meter, "ScanFunction", scan.handler, memory["ScanFunction"])
    bucket, s3 = stack.outputs["UploadBucketName"], stack.client("s3")
    # one object first: cold starts (the index load) are not what a million uploads cost
    s3.put_object(Bucket=bucket, Key="warm-up.jpg", Body=mix["clean"][0][1])
    sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], timed_scan, "ScanFunction")
    meter.take()
    per_kind, objects, bytes_in = {}, {}, {}
    for kind in (k for k in KINDS if k in mix):
        for key, body in mix[kind]:
            s3.put_object(Bucket=bucket, Key=key, Body=body, **({"Tagging": tags} if tags else {}))
        sandbox.deliver(stack, stack.outputs["ScanQueueUrl"], timed_scan, "ScanFunction")
        per_kind[kind] = meter.take()
        objects[kind], bytes_in[kind] = len(mix[kind]), sum(len(b) for _, b in mix[kind])
    stream, update = _list_update(stack, meter, memory)
    return Run(per_kind, objects, bytes_in, stream, update, memory)


def _list_update(stack, meter: Meter, memory: dict[str, int]) -> tuple[Spend, Spend]:
    """The stored index fed from the FingerprintTable's stream (batches of 100 records, as its event
    source mapping hands them over), then one sync that adds a picture and its re-match."""
    rows = demo.reference_rows((*demo.LISTED, demo.LISTED_LATER))
    text = "".join(demo.listformat.to_json(row) + "\n" for row in rows)
    stack.client("s3").put_object(Bucket=stack.outputs["ArtifactsBucketName"], Key=demo.LIST_KEY, Body=text.encode())
    sync = sandbox.load_handler(stack, "SyncFunction", "sync")
    rematch = Timed(
        meter,
        "RematchFunction",
        sandbox.load_handler(stack, "RematchFunction", "rematch").handler,
        memory["RematchFunction"],
    )
    records = sandbox.stream_records(stack)  # the sandbox's own reads: not counted
    for start in range(0, len(records), 100):
        rematch({"Records": records[start : start + 100]}, sandbox.LambdaContext("rematch"))
    stream = meter.take()
    report = Timed(meter, "SyncFunction", sync.handler, memory["SyncFunction"])({}, sandbox.LambdaContext("sync"))
    rematch({"version": report["version"]}, sandbox.LambdaContext("rematch"))
    return stream, meter.take()


# --- pricing ------------------------------------------------------------------------------------------------


def priced(spend: Spend, memory: dict[str, int], prices: dict, objects: int) -> dict[str, float]:
    """USD by component for what `spend` counted over `objects` objects (the SQS and X-Ray models added)."""
    s3_put = sum(n for (_, service, op), n in spend.requests.items() if service == "s3" and _put_class(op))
    s3_get = sum(n for (_, service, op), n in spend.requests.items() if service == "s3" and not _put_class(op))
    gb_s = sum(ms / 1000 * memory.get(f, 1024) / 1024 for f, ms in spend.lambda_ms.items())
    invocations = sum(spend.invocations.values())
    count = lambda service: sum(n for (_, s, _op), n in spend.requests.items() if s == service)  # noqa: E731
    sqs = objects * (1 + 2 / SQS_BATCH)
    return {
        "lambda duration": gb_s * prices["lambda_gb_second_arm"],
        "lambda requests": invocations * prices["lambda_request"],
        "s3 requests": s3_put * prices["s3_put_class_request"] + s3_get * prices["s3_get_class_request"],
        "dynamodb": sum(spend.wru.values()) * prices["dynamodb_write_request_unit"]
        + sum(spend.rru.values()) * prices["dynamodb_read_request_unit"],
        "sqs (modelled)": sqs * prices["sqs_request"],
        "sns, eventbridge, kms": count("sns") * prices["sns_publish"]
        + count("events") * prices["eventbridge_custom_event"]
        + count("kms") * prices["kms_request"],
        "logs": sum(spend.log_bytes.values()) / 1e9 * prices["logs_ingested_gb"],
        "x-ray (modelled)": invocations * XRAY_SAMPLED * prices["xray_trace_recorded"],
    }


def _put_class(operation: str) -> bool:
    return operation.startswith(("Put", "Copy", "Post", "List", "CreateMultipart", "UploadPart", "CompleteMultipart"))


def requests_table(spend: Spend, objects: int) -> str:
    lines = [f"{'function':22} {'service':10} {'operation':24} {'per object':>10}"]
    for (function, service, operation), n in sorted(spend.requests.items()):
        lines.append(f"{function:22} {service:10} {operation:24} {n / objects:10.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--region", default="eu-west-1", choices=sorted(PRICES["regions"]))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    prices = PRICES["regions"][args.region]
    mix = uploads(args.objects, args.seed)
    runs = {mode: run_mode(mode == "fail-closed", mix) for mode in ("default", "fail-closed")}

    default = runs["default"]
    clean = default.per_kind["clean"]
    n_clean = default.objects["clean"]
    print(f"{sum(default.objects.values())} uploads: " + ", ".join(f"{default.objects[k]} {k}" for k in KINDS))
    print(f"prices: {args.region}, docs/prices.json (collected {PRICES['collected']})\n")
    print("requests per clean upload (default mode):")
    print(requests_table(clean, n_clean))
    wru = sum(clean.wru.values()) / n_clean
    rru = sum(clean.rru.values()) / n_clean
    print(
        f"DynamoDB per clean upload: {wru:.2f} write units, {rru:.2f} read units; by table: "
        + ", ".join(
            f"{t.split('-')[-2] if '-' in t else t} {u / n_clean:.2f} WRU" for (_, t), u in sorted(clean.wru.items())
        )
    )
    print(
        f"log bytes per clean upload: {sum(clean.log_bytes.values()) / n_clean:.0f}; metric data points: "
        f"{clean.metric_points / n_clean:.1f}"
    )
    print(
        "compute ms per clean upload: "
        + ", ".join(
            f"{f} {ms / n_clean:.1f} (billed {clean.lambda_ms[f] / n_clean:.1f} at {default.memory[f]} MB)"
            for f, ms in sorted(clean.compute_ms.items())
        )
    )

    totals = {}
    for mode, run in runs.items():
        print(f"\nUSD per million uploads, {mode} mode, by component and status:")
        print(f"{'component':24}" + "".join(f"{k:>13}" for k in KINDS) + f"{'the mix':>13}")
        rows = {k: priced(run.per_kind[k], run.memory, prices, run.objects[k]) for k in KINDS}
        everything = Spend()
        for k in KINDS:
            everything.add(run.per_kind[k])
        mix_cost = priced(everything, run.memory, prices, sum(run.objects.values()))
        total_objects = sum(run.objects.values())
        for component in mix_cost:
            cells = "".join(f"{rows[k][component] / run.objects[k] * 1e6:13.3f}" for k in KINDS)
            print(f"{component:24}{cells}{mix_cost[component] / total_objects * 1e6:13.3f}")
        stream = sum(priced(run.stream, run.memory, prices, 0).values()) / total_objects * 1e6  # per object
        print(f"{'stored index (stream)':24}" + f"{stream:13.3f}" * (len(KINDS) + 1))
        per_kind_total = "".join(f"{sum(rows[k].values()) / run.objects[k] * 1e6 + stream:13.3f}" for k in KINDS)
        totals[mode] = sum(mix_cost.values()) / total_objects * 1e6 + stream
        print(f"{'total':24}{per_kind_total}{totals[mode]:13.3f}")
        update = priced(run.list_update, run.memory, prices, 0)
        print(f"one list update (sync + re-match over {total_objects} stored): ${sum(update.values()):.6f}")

    objects = sum(default.objects.values())
    everything = Spend()
    for spend in (*default.per_kind.values(), default.stream):
        everything.add(spend)
    gigabytes = sum(default.bytes_in.values()) / 1e9
    guardduty = (objects * prices["guardduty_s3_object"] + gigabytes * prices["guardduty_s3_gb"]) / objects * 1e6
    requests = (sum(everything.requests.values()) + objects * (1 + 2 / SQS_BATCH)) / objects
    lambda_ms = sum(everything.lambda_ms.values()) / objects
    print(
        f"\nGuardDuty Malware Protection for S3 on the same mix: ${guardduty:.2f} per million "
        f"(mean object {gigabytes / objects * 1e3:.2f} MB)"
    )
    print(
        f"usd_per_million={totals['default']:.2f} usd_per_million_fail_closed={totals['fail-closed']:.2f} "
        f"requests_per_object={requests:.2f} lambda_ms_per_object={lambda_ms:.1f} "
        f"ratio_vs_guardduty={guardduty / totals['default']:.1f}"
    )


if __name__ == "__main__":
    main()
