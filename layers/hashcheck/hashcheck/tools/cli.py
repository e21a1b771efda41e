"""The `hashcheck` command: fingerprint files, build a list, scan against a list, run the demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from hashcheck import __version__
from hashcheck.aws import Clients
from hashcheck.fingerprinting.fingerprint import Fingerprint, fingerprint, listing_fingerprint
from hashcheck.fingerprinting.imaging import DEFAULT_LIMITS
from hashcheck.lists import listformat
from hashcheck.lists.build import references_for
from hashcheck.lists.listformat import ListFormatError
from hashcheck.matching.matcher import match
from hashcheck.matching.stores.memory import MemoryStore
from hashcheck.tools.progress import Progress

EXIT_OK, EXIT_USAGE = 0, 2


class UsageError(Exception):
    """Bad arguments or a bad list file: exit 2 with the message."""


class Refused(Exception):
    """The request was understood but refused (unknown case, a decision already made): exit 1."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"hashcheck: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Refused as exc:
        print(f"hashcheck: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `hashcheck ... | head`
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hashcheck", description=__doc__)
    parser.add_argument("--version", action="version", version=f"hashcheck {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fp = commands.add_parser("fingerprint", help="print the fingerprint of files (folders are walked)")
    fp.add_argument("paths", nargs="+", metavar="PATH")
    fp.add_argument("--json", action="store_true", help="one JSON object per line")
    fp.set_defaults(run=_fingerprint)

    scan = commands.add_parser("scan", help="scan files against a reference list file, without AWS")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--refs", required=True, metavar="LIST", help="hashcheck list v1 file (JSONL or CSV)")
    scan.add_argument("--json", action="store_true", help="one JSON object per line")
    scan.set_defaults(run=_scan)

    lists = commands.add_parser("list", help="work with reference lists")
    list_commands = lists.add_subparsers(dest="list_command", required=True, metavar="COMMAND")
    build = list_commands.add_parser("build", help="build a hashcheck list v1 (JSONL) from image files")
    build.add_argument("paths", nargs="+", metavar="PATH")
    build.add_argument("--list-id", required=True, metavar="ID")
    build.add_argument("--category", default=None)
    build.add_argument("-o", "--output", default="-", metavar="FILE", help="default: standard output")
    build.set_defaults(run=_list_build)

    for name, text in (
        ("import", "apply a list file to the stack's ReferenceTable, then publish the index"),
        ("sync", "run the stack's list sync now (the sources configured for it)"),
    ):
        command = list_commands.add_parser(name, help=text)
        if name == "import":
            command.add_argument("file", metavar="FILE", help="hashcheck list v1 (JSONL or CSV)")
            command.add_argument("--list-id", default=None, help="reject rows of any other list")
        else:
            command.add_argument(
                "--sources",
                default=None,
                metavar="JSON",
                help="list sources as JSON (default: LIST_SOURCES / LIST_SOURCES_PARAMETER)",
            )
        target = command.add_mutually_exclusive_group(required=True)
        target.add_argument("--stack", metavar="NAME", help="read the table and bucket from the stack's outputs")
        target.add_argument("--table", metavar="TABLE", help="the ReferenceTable (with --bucket)")
        command.add_argument("--bucket", metavar="BUCKET", help="the ArtifactsBucket (with --table)")
        command.set_defaults(run=_list_import if name == "import" else _list_sync)

    for name, text in (
        ("hold", "hold a reference: its hits are held for review, nothing acts, until it is released"),
        ("release", "release a reference's circuit breaker (or end its shadow): it acts, no longer counted"),
    ):
        breaker = list_commands.add_parser(name, help=text)
        breaker.add_argument("ref_id", metavar="REF")
        breaker.add_argument("--list", required=True, dest="list_id", metavar="LIST")
        breaker.add_argument("--why", required=True, help="recorded in the reference's breaker history")
        breaker.add_argument("--who", default=None, help="default: the caller's AWS identity")
        breaker.add_argument("--stack", required=True, metavar="NAME")
        breaker.set_defaults(run=_list_breaker, state="held" if name == "hold" else "released")
    holds = list_commands.add_parser("holds", help="every reference with a state: held, released, in shadow")
    holds.add_argument("--stack", required=True, metavar="NAME")
    holds.set_defaults(run=_list_holds)

    backfill = commands.add_parser("backfill", help="scan objects stored before the stack (the stack's state machine)")
    backfill.add_argument("bucket", metavar="BUCKET")
    backfill.add_argument("--prefix", default="")
    backfill.add_argument("--stack", required=True, metavar="NAME", help="the stack whose tables and lists to use")
    backfill.add_argument(
        "--local",
        action="store_true",
        help="scan from this machine instead, with your credentials: they need the scan path's permissions",
    )
    backfill.set_defaults(run=_backfill)

    protect = commands.add_parser(
        "protect", help="put the stack's read and tagging rules on an existing bucket (ProtectedBucketNames)"
    )
    protect.add_argument("bucket", metavar="BUCKET")
    protect.add_argument("--stack", required=True, metavar="NAME")
    protect.add_argument("--remove", action="store_true", help="take the rules off again, keeping the bucket's own")
    protect.set_defaults(run=_protect)

    cases = commands.add_parser("cases", help="review cases: list, show, confirm, release, audit")
    case_commands = cases.add_subparsers(dest="cases_command", required=True, metavar="COMMAND")
    listing = case_commands.add_parser("list", help="cases, oldest first")
    listing.add_argument("--status", default=None)
    listing.add_argument("--decision", default=None, help="confirmed, released, or none")
    listing.set_defaults(run=_cases_list)
    show = case_commands.add_parser("show", help="one case, with its history")
    show.add_argument("case_id", metavar="CASE_ID")
    show.add_argument("--with-hashes", action="store_true", help="include the object's hashes (evidence)")
    show.set_defaults(run=_cases_show)
    for name, text in (
        ("confirm", "confirm a match: it goes to the hotline report"),
        ("release", "a false positive: restore the object and allowlist its bytes"),
        ("appeal", "record a customer's appeal on the case, for a reviewer"),
    ):
        decide = case_commands.add_parser(name, help=text)
        decide.add_argument("case_id", metavar="CASE_ID")
        decide.add_argument("--why", required=True, help="recorded in the case's audit trail")
        decide.add_argument("--who", default=None, help="default: the caller's AWS identity")
        decide.set_defaults(run=_cases_decide, decision=name)
    audit = case_commands.add_parser("audit", help="the audit trail as JSON Lines")
    audit.add_argument("case_ids", nargs="*", metavar="CASE_ID")
    audit.set_defaults(run=_cases_audit)
    for command in (listing, show, audit, *(case_commands.choices[n] for n in ("confirm", "release", "appeal"))):
        command.add_argument("--stack", required=True, metavar="NAME")

    stats = commands.add_parser("stats", help="transparency figures: per month, per list, per tenant")
    stats.add_argument("--stack", required=True, metavar="NAME")
    stats.add_argument("--since", default=None, metavar="DATE", help="ISO date, e.g. 2026-01-01")
    stats.add_argument("--json", action="store_true", help="the figures as one JSON object")
    stats.add_argument("--plot", default=None, metavar="FILE", help="also draw the monthly figures as a PNG")
    stats.set_defaults(run=_stats)

    demo = commands.add_parser("demo", help="the whole pipeline on generated sample images")
    demo.add_argument("--json", action="store_true", help="end with a JSON summary line")
    demo.add_argument("--plot", default=None, metavar="FILE", help="draw the transparency figures as a PNG")
    demo.set_defaults(run=_demo)
    return parser


def walk(paths: list[str]) -> Iterator[Path]:
    """Files named, and files under folders named, in a stable order; a missing path is a usage error."""
    for name in paths:
        path = Path(name)
        if path.is_file():
            yield path
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for file in sorted(files):
                    yield Path(root) / file
        else:
            raise UsageError(f"no such file or folder: {name}")


def _files(paths: list[str]) -> list[Path]:
    return list(walk(paths))


def _fingerprint_file(path: Path) -> Fingerprint:
    with path.open("rb") as stream:
        return fingerprint(stream)


def _listing_fingerprint_file(path: Path) -> Fingerprint:
    """A file to be listed: a picture with the centre crops only lists carry; a larger file (a video),
    read as a stream like any other."""
    if path.stat().st_size > DEFAULT_LIMITS.max_decode_bytes:
        return _fingerprint_file(path)
    return listing_fingerprint(path.read_bytes())


def _fingerprint(args) -> int:
    files = _files(args.paths)
    progress = Progress(len(files), "fingerprint")
    for path in files:
        fp = _fingerprint_file(path)
        progress.advance()
        # the object, then what it holds, each under its member path ("a.zip!inner/b.jpg")
        rows = [{"path": str(path), **fp.as_dict()}]
        rows += [{"path": f"{path}!{m.path}", **m.fingerprint.as_dict()} for m in fp.members]
        for row in rows:
            _print_fingerprint(row, args.json)
    progress.close()
    return EXIT_OK


def _print_fingerprint(row: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(row))
        return
    extra = f"pdq={row['pdq']} q={row['pdq_quality']} phash={row['phash']}" if row["pdq"] else ""
    error = row.get("error", "")
    print(f"{row['status']:<12} {row['path']}  sha256={row['sha256']} {extra} {error}".rstrip())


def load_store(path: str) -> MemoryStore:
    """The list as a store; any malformed row makes the list unusable (exit 2), listing each line."""
    if not Path(path).is_file():
        raise UsageError(f"no such list file: {path}")
    try:
        store, rejected = MemoryStore.from_file(path)
    except (ListFormatError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from exc
    if rejected:
        lines = "; ".join(f"line {r.line}: {r.reason}" for r in rejected[:20])
        more = f" (and {len(rejected) - 20} more)" if len(rejected) > 20 else ""
        raise UsageError(f"{path}: {len(rejected)} malformed rows: {lines}{more}")
    return store


def _scan(args) -> int:
    store = load_store(args.refs)
    files = _files(args.paths)
    progress = Progress(len(files), "scan")
    counts: dict[str, int] = {}
    for path in files:
        fp = _fingerprint_file(path)
        result = match(fp, store)
        counts[result.verdict] = counts.get(result.verdict, 0) + 1
        progress.advance()
        row = {
            "path": str(path),
            "status": fp.status,
            "verdict": result.verdict,
            "matches": [m.as_dict() for m in result.matches],
        }
        if fp.error:
            row["error"] = fp.error
        print(json.dumps(row) if args.json else _scan_line(row))
    progress.close()
    if not args.json:
        summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
        print(f"scanned {len(files)}: {summary}")
    return EXIT_OK


def _scan_line(row: dict) -> str:
    hits = ", ".join(
        f"{m['list']}/{m['ref_id']} {m['algorithm']} d={m['distance']}"
        + (f" ({m['variant']})" if m["variant"] != "original" else "")
        for m in row["matches"]
    )
    return f"{row['verdict']:<12} {row['path']}" + (f"  <- {hits}" if hits else "")


def _list_build(args) -> int:
    files = _files(args.paths)
    progress = Progress(len(files), "list build")
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        rows = 0
        for path in files:
            refs = references_for(_listing_fingerprint_file(path), args.list_id, path.stem, args.category)
            rows += listformat.write(refs, out)
            progress.advance()
    finally:
        if out is not sys.stdout:
            out.close()
    progress.close()
    print(f"wrote {rows} rows for {len(files)} files", file=sys.stderr)
    return EXIT_OK


def stack_outputs(name: str) -> dict[str, str]:
    """The stack's outputs (AWS_ENDPOINT_URL points this at a moto server instead of AWS)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stack = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    except (BotoCoreError, ClientError) as exc:
        raise UsageError(f"cannot read stack {name}: {exc}") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _stack_target(args) -> tuple[str, str]:
    """(ReferenceTable, ArtifactsBucket) from --stack outputs, or from --table/--bucket. AWS_ENDPOINT_URL
    points the commands at a moto server instead of AWS."""
    if args.table:
        if not args.bucket:
            raise UsageError("--table needs --bucket")
        return args.table, args.bucket
    outputs = stack_outputs(args.stack)
    return outputs["ReferenceTableName"], outputs["ArtifactsBucketName"]


def _report(report, progress: Progress) -> int:
    progress.close()
    for source in report.sources:
        line = f"{source.name}: {source.status}, {source.rows} rows, +{source.added} -{source.removed}"
        print(
            line
            + (f", {source.rejected} rejected" if source.rejected else "")
            + (f" ({source.reason})" if source.reason else ""),
            file=sys.stderr,
        )
    print(json.dumps(report.to_dict()))
    return EXIT_OK if report.ok else 1


def _list_import(args) -> int:
    from hashcheck.jobs import sync
    from hashcheck.tables.reference_table import ReferenceTable

    if not Path(args.file).is_file():
        raise UsageError(f"no such list file: {args.file}")
    table, bucket = _stack_target(args)
    clients = Clients()
    progress = Progress(None, "rows applied")
    references = ReferenceTable(clients.dynamodb, table)
    report = sync.import_file(args.file, references, bucket, clients.s3, args.list_id, on_rows=progress.advance)
    return _report(report, progress)


def _list_sync(args) -> int:
    from hashcheck.jobs import sync

    table, bucket = _stack_target(args)
    clients = Clients()
    env = {**os.environ, "REFERENCE_TABLE": table, "ARTIFACTS_BUCKET": bucket}
    if args.sources:
        env["LIST_SOURCES"] = args.sources
    try:
        config = sync.SyncConfig.from_env(env, clients=clients)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"list sources: {exc}") from exc
    progress = Progress(None, "rows applied")
    return _report(sync.run_sync(config, clients, on_rows=progress.advance), progress)


def _reference_table(stack: str):
    from hashcheck.tables.reference_table import ReferenceTable

    return ReferenceTable(Clients().dynamodb, stack_outputs(stack)["ReferenceTableName"])


def _list_breaker(args) -> int:
    table = _reference_table(args.stack)
    table.set_breaker(args.list_id, args.ref_id, args.state, args.why, args.who or _caller_identity())
    (state,) = table.breaker_states([(args.list_id, args.ref_id)]).values()
    print(json.dumps(_breaker_row(state)))
    return EXIT_OK


def _list_holds(args) -> int:
    for item in sorted(_reference_table(args.stack).breakers(), key=lambda i: (i["list_id"], i["ref_id"])):
        print(json.dumps(_breaker_row(item)))
    return EXIT_OK


def _breaker_row(item: dict) -> dict:
    fields = ("list_id", "ref_id", "state", "until", "would_act", "updated_at", "history")
    return {name: item.get(name) for name in fields if name in item}


def _backfill(args) -> int:
    from hashcheck.jobs import backfill

    outputs = stack_outputs(args.stack)
    if not args.local:  # the stack's own roles scan: an operator only starts it (states:StartExecution)
        import boto3

        run = {"bucket": args.bucket, **({"prefix": args.prefix} if args.prefix else {})}
        started = boto3.client("stepfunctions").start_execution(
            stateMachineArn=outputs["BackfillStateMachineArn"], input=json.dumps(run)
        )
        print(json.dumps({"execution_arn": started["executionArn"], "input": run}))
        return EXIT_OK
    progress = Progress(None, "objects listed")
    summary = backfill.run(
        outputs,
        args.bucket,
        args.prefix,
        on_progress=lambda s: progress.advance(s.listed - progress.done),
    )
    progress.close()
    print(json.dumps(summary.to_dict()))
    return EXIT_OK if not summary.errors else 1


def _protect(args) -> int:
    """Merge the rules into the bucket's policy; exit 1 when uploads would still not reach the scanner."""
    import boto3

    from hashcheck.tools import protect

    s3 = boto3.client("s3")
    if args.remove:
        protect.unprotect(s3, args.bucket)
        print(json.dumps({"bucket": args.bucket, "protected": False}))
        return EXIT_OK
    outputs = stack_outputs(args.stack)
    scanners = [arn for arn in outputs["ScannerRoleArns"].split(",") if arn]
    account = scanners[0].split(":")[4]
    reviewer = f"arn:aws:iam::{account}:role/hashcheck-reviewer"
    fail_closed = outputs.get("FailClosedReadPolicy") == "true"
    readers = [arn for arn in outputs.get("FingerprintRoleArn", "").split(",") if arn]
    block_opaque = outputs.get("BlockOpaqueObjects") == "true"
    statements = protect.bucket_statements(args.bucket, scanners, reviewer, fail_closed, readers, block_opaque)
    state = protect.protect(s3, args.bucket, statements)
    print(json.dumps({**state, "protected": True}))
    if not state["eventbridge_notifications"]:
        print(
            f"hashcheck: turn on Amazon EventBridge notifications for {args.bucket}: its uploads are not scanned",
            file=sys.stderr,
        )
        return 1
    return EXIT_OK


def _review_target(args):
    from hashcheck.response import review

    return review.Target.from_outputs(stack_outputs(args.stack))


def _review_call(function, *args, **kwargs):
    """Run a review function; a refused decision (unknown case, already decided...) exits 1."""
    from hashcheck.response import review

    try:
        return function(*args, **kwargs)
    except (review.CaseNotFound, review.DecisionConflict, review.NotReady, ValueError) as exc:
        raise Refused(str(exc)) from exc


def _cases_list(args) -> int:
    from hashcheck.response import review

    for case in _review_call(review.list_cases, _review_target(args), status=args.status, decision=args.decision):
        print(json.dumps(case, default=str))
    return EXIT_OK


def _cases_show(args) -> int:
    from hashcheck.response import review

    case = _review_call(review.show_case, _review_target(args), args.case_id, include_hashes=args.with_hashes)
    print(json.dumps(case, default=str, indent=2))
    return EXIT_OK


def _cases_decide(args) -> int:
    from hashcheck.response import review

    who = args.who or _caller_identity()
    decide = {"confirm": review.confirm_case, "release": review.release_case, "appeal": review.appeal_case}[
        args.decision
    ]
    print(json.dumps(_review_call(decide, _review_target(args), args.case_id, who, args.why), default=str))
    return EXIT_OK


def _cases_audit(args) -> int:
    from hashcheck.response import review

    for line in _review_call(review.export_audit, _review_target(args), args.case_ids or None):
        print(line)
    return EXIT_OK


def _caller_identity() -> str:
    import boto3

    return boto3.client("sts").get_caller_identity()["Arn"]


def _stats(args) -> int:
    from hashcheck.tables.case_table import CaseTable
    from hashcheck.tables.fingerprint_table import FingerprintTable
    from hashcheck.tools import stats

    outputs, dynamodb = stack_outputs(args.stack), Clients().dynamodb
    records = FingerprintTable(dynamodb, outputs["FingerprintTableName"]).scan_all()
    cases = CaseTable(dynamodb, outputs["CaseTableName"]).scan_all()
    found = stats.figures(records, cases, args.since)
    print(json.dumps(found.to_dict()) if args.json else stats.as_text(found))
    if args.plot:
        stats.plot(found, args.plot)
    return EXIT_OK


def _demo(args) -> int:
    from hashcheck.tools.demo import run

    return run(json_summary=args.json, plot=args.plot)


if __name__ == "__main__":
    sys.exit(main())
