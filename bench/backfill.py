"""Backfill at scale on the sandbox (template.yaml in an in-process moto): N objects stored before the
stack are each read exactly once, and a rerun reads none.

    python bench/backfill.py [N]      (default 10,000; about 60-100 ms per object in moto)

Last line: objects=… first_scanned=… each_read_once=… rerun_scanned=… rerun_reads=… ms_per_object=…
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the object set and the read counter the backfill tests use
sys.path.insert(0, str(ROOT / "layers" / "hashcheck"))
from moto import mock_aws  # noqa: E402

from hashcheck.aws import Clients  # noqa: E402
from hashcheck.jobs import backfill  # noqa: E402
from hashcheck.jobs.scanner import ScanConfig, build_scanner  # noqa: E402
from hashcheck.tools import sandbox  # noqa: E402
from tests.stack import test_backfill as tb  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
sandbox.fake_credentials()
with mock_aws():
    stack = sandbox.deploy()
    from hashcheck.fingerprinting.fingerprint import fingerprint
    from hashcheck.lists.build import references_for
    from hashcheck.tables.reference_table import ReferenceTable

    ddb, table = stack.client("dynamodb"), stack.outputs["ReferenceTableName"]
    references = ReferenceTable(ddb, table)
    references.apply_rows(references_for(fingerprint(tb.LISTED), "test-list", "ref-1"))
    references.bump_version(0)
    t = time.time()
    bodies = tb.store_old_objects(stack, n)
    upload_s = time.time() - t
    bucket = stack.outputs["UploadBucketName"]
    clients = Clients(**{c: stack.client(c) for c in ("s3", "dynamodb", "sns", "events")})
    scanner = build_scanner(ScanConfig.from_outputs(stack.outputs), clients)
    reads = tb.reads_per_key(scanner.s3, bucket)
    first = backfill.run(scanner, bucket)
    once = set(reads) == set(bodies) and set(reads.values()) == {1}
    reads.clear()
    second = backfill.run(scanner, bucket)
    print(first.to_dict())
    print(second.to_dict())
    ms_per_object = 1000 * first.seconds / len(bodies)
    print(
        f"objects={len(bodies)} upload_s={upload_s:.1f} first_s={first.seconds:.1f} first_scanned={first.scanned} "
        f"matched={first.matched} each_read_once={once} rerun_s={second.seconds:.1f} rerun_scanned={second.scanned} "
        f"rerun_skipped={second.skipped} rerun_reads={sum(reads.values())} ms_per_object={ms_per_object:.1f}"
    )
