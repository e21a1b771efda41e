"""`hashcheck demo`: list some generated pictures, then scan edited copies, unrelated pictures and
broken files against that list, and say what happened to each.

Nothing here is abusive: the pictures are generated (hashcheck.samples) and the demo only
*pretends* that some are on a hotline's list.
"""

from __future__ import annotations

import io
import json
import sys

from hashcheck import samples
from hashcheck.cli import references_for
from hashcheck.fingerprint import fingerprint
from hashcheck.matcher import match
from hashcheck.stores.memory import MemoryStore

LISTED = (1, 2, 3)
UNRELATED = (11, 12, 13, 14)


def uploads() -> list[tuple[str, str, bytes]]:
    """(key, what the demo means it to be, bytes) for every object the demo uploads."""
    objects = []
    for seed, edit in zip(LISTED * 2, samples.EDITS, strict=False):
        suffix = "png" if edit == "png" else "jpg"
        objects.append((f"uploads/listed-{seed}-{edit}.{suffix}", "match", samples.EDITS[edit](samples.picture(seed))))
    for seed in UNRELATED:
        objects.append((f"uploads/holiday-{seed}.jpg", "clean", samples.jpeg(samples.picture(seed))))
    whole = samples.jpeg(samples.picture(99))
    objects.append(("uploads/broken.jpg", "unscannable", whole[: len(whole) // 3]))
    objects.append(("uploads/notes.txt", "clean", b"shopping list: bread, milk\n"))
    return objects


def reference_store() -> MemoryStore:
    rows = []
    for seed in LISTED:
        rows += references_for(fingerprint(samples.jpeg(samples.picture(seed))), "demo-list", f"ref-{seed}")
    return MemoryStore(rows)


def run(json_summary: bool = False, out=None) -> int:
    out = out or sys.stdout
    store = reference_store()
    print(f"reference list: {len(LISTED)} pictures, {len(store)} hashes (demo-list)", file=out)
    summary = []
    for key, expected, data in uploads():
        fp = fingerprint(io.BytesIO(data))
        result = match(fp, store)
        location = "quarantine" if result.verdict == "match" else "uploads"
        summary.append(
            {"key": key, "expected": expected, "verdict": result.verdict, "status": fp.status, "location": location}
        )
        why = ", ".join(f"{m.ref_id} by {m.algorithm} d={m.distance} ({m.variant})" for m in result.matches)
        print(f"  {result.verdict:<12} {key:<40} {why or fp.error or ''}", file=out)
    wrong = [s["key"] for s in summary if s["verdict"] != s["expected"]]
    print(f"{len(summary)} objects, {len(wrong)} not as expected{': ' + ', '.join(wrong) if wrong else ''}", file=out)
    if json_summary:
        print(json.dumps({"objects": summary, "cases": 0, "alerts": 0}), file=out)
    return 0 if not wrong else 1
