"""The ReferenceTable: every item, key and DynamoDB call on it lives here.

Schema (one table, partition key ``pk`` (S), no sort key):

- Hash item, one per (algorithm, hash): ``pk = "<algorithm>#<hash>"``, ``algorithm``, ``hash``,
  ``live`` (N, how many refs are live: a quick filter) and ``refs``, a map keyed ``"<list>#<id>"``
  whose values are ``{list, id, category?, added, deleted, deleted_at?}``. A withdrawn (tombstoned)
  ref stays in the map with ``deleted = true`` for audit; readers never act on it. ``added`` is when
  the ref was first listed and ``deleted_at`` when it was first withdrawn; both are kept if the ref is
  listed again (``deleted`` false), so replaying a feed leaves the same table.
- A listed video's vPDQ signal (a JSON array, up to hundreds of KB) is keyed by its SHA-256
  (``pk = "vpdq#<sha256 of the signal>"``, `table_hash`); its hash item keeps the signal in ``hash``.
- Image item, one per listed image or video (list, reference id): ``pk = "image#<list>#<id>"``,
  ``list``, ``id``, ``live`` and ``hashes``, a map keyed ``"<algorithm>#<hash as keyed>"`` of
  ``{algorithm, hash (as keyed), deleted}``. It answers "which other hashes does this list carry for
  the same image" (a pHash hit is confirmed by the image's PDQ) in one GetItem; the hash items stay
  the source of truth, so readers confirm the siblings it names against them.
- Version item: ``pk = "meta#version"``, ``version`` (N), ``snapshot_key``, ``updated``. The sync bumps
  it after rebuilding the near-match snapshot; scanners reload their index when it changes.
- Sync bookkeeping, one per list source: ``pk = "meta#checkpoint#<source>"`` (where the source's last
  applied delta ended), ``pk = "meta#progress#<source>"`` (how far a delta too large for one run got) and
  ``pk = "meta#changes#<source>#<day>"`` (how many references its deltas added and removed that day);
  ``pk = "meta#shadow"``: the sync runs whose new references are in shadow rollout, until when.
- Breaker items (`hashcheck.response.breaker`): ``pk = "acted#<window>#<list>#<id>"`` with ``objects``
  and ``tenants``, the string sets of object ids and tenants the reference acted on in that window
  (they stop growing at the limits), and ``pk = "hold#<list>#<id>"`` with the reference's breaker
  ``state`` (held, or released by a person, or in shadow ``until`` a time, counting ``would_act``) and
  its ``history``. The scan path may write these two prefixes only (IAM LeadingKeys).
- Allow item, one per released SHA-256: ``pk = "allow#sha256#<hex>"`` with the references that fired
  (``allowed_refs``, a string set of ref keys) and the cases that released them (``case_ids``). Reviewers
  may write ``allow#*`` keys only (IAM ``dynamodb:LeadingKeys``), never the lists.

Keys never collide: a hash is hex, so a hash item's pk has exactly one ``#``; an image pk has two or
more and starts ``image#``; the ``meta#``, ``allow#``, ``acted#`` and ``hold#`` prefixes are not hex.
Inside keys, ``%`` and ``#`` in list and reference ids are percent-escaped (``"%25"``, ``"%23"``) so
``"<list>#<id>"`` is unambiguous; the attributes keep the ids as given. Readers of hash items select them by their
``algorithm`` and ``live`` attributes, which no other item has.

The writer assumes a single writer: the sync function runs with reserved concurrency 1, and its
read-merge-write of each batch is not protected by conditions. Nothing here logs hash values or list
contents; errors carry counts only.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from hashcheck.aws import condition_failed
from hashcheck.handover import Handover
from hashcheck.lists.listformat import Reference
from hashcheck.status import BreakerState
from hashcheck.tables.dynamo import (
    DEFAULT_RETRY,
    ITEMS_PER_WRITE,
    RetriesExhausted,
    Retry,
    batch_get,
    batch_put,
    from_item,
    put_if_absent,
    to_item,
)

# Parallel segments of the snapshot build's scan (a sequential scan reads one partition at a time, at
# most ~24 MB/s eventually consistent).
SCAN_SEGMENTS = 4

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "DEFAULT_RETRY",
    "ApplyStats",
    "ReferenceTable",
    "RetriesExhausted",
    "Retry",
    "Version",
    "VersionConflict",
    "hash_pk",
    "image_pk",
    "ref_key",
]

log = logging.getLogger(__name__)

PK = "pk"
VERSION_PK = "meta#version"
CHECKPOINT_PREFIX = "meta#checkpoint#"
PROGRESS_PREFIX = "meta#progress#"
CHANGES_PREFIX = "meta#changes#"
SHADOW_PK = "meta#shadow"
IMAGE_PREFIX = "image#"
ALLOW_PREFIX = "allow#sha256#"
ACTED_PREFIX = "acted#"
HOLD_PREFIX = "hold#"
ROWS_PER_BATCH = ITEMS_PER_WRITE  # one BatchWriteItem's worth of rows at most


# --- keys -------------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("#", "%23")


def table_hash(algorithm: str, hash_value: str) -> str:
    """A hash as the table keys it: itself, or a vPDQ signal (a JSON array, up to hundreds of KB, far
    longer than a key may be) by its SHA-256."""
    if algorithm == "vpdq" and hash_value.startswith("["):
        return hashlib.sha256(hash_value.encode()).hexdigest()
    return hash_value


def hash_pk(algorithm: str, hash_value: str) -> str:
    return f"{algorithm}#{table_hash(algorithm, hash_value)}"


def ref_key(list_id: str, ref_id: str) -> str:
    """The key of one listed image inside a hash item's ``refs`` map (and an allow item's refs)."""
    return f"{_escape(list_id)}#{_escape(ref_id)}"


def image_pk(list_id: str, ref_id: str) -> str:
    return IMAGE_PREFIX + ref_key(list_id, ref_id)


def allow_pk(sha256: str) -> str:
    return ALLOW_PREFIX + sha256.strip().lower()


def acted_pk(list_id: str, ref_id: str, window: str) -> str:
    return f"{ACTED_PREFIX}{window}#{ref_key(list_id, ref_id)}"


def hold_pk(list_id: str, ref_id: str) -> str:
    return HOLD_PREFIX + ref_key(list_id, ref_id)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def live_refs(item: Mapping[str, Any]) -> list[Reference]:
    """The live references of a (plain) hash item, in a stable order."""
    return [
        _entry_reference(item["algorithm"], item["hash"], entry)
        for _, entry in sorted(item.get("refs", {}).items())
        if not entry.get("deleted")
    ]


def _entry_reference(algorithm: str, hash_value: str, entry: Mapping[str, Any]) -> Reference:
    return Reference(algorithm, hash_value, entry["list"], entry["id"], entry.get("category"))


# --- the table ------------------------------------------------------------------------------------------


@dataclass
class ApplyStats:
    added: int = 0  # refs that became live (new, or re-listed after a withdrawal)
    removed: int = 0  # live refs withdrawn by a tombstone
    unchanged: int = 0  # rows that changed nothing (already so, or a tombstone for an unknown ref)
    updated: int = 0  # live refs whose category changed


class VersionConflict(RuntimeError):
    """Someone else bumped the version since it was read."""


@dataclass(frozen=True)
class Version:
    version: int
    snapshot_key: str | None = None
    updated: str | None = None


class ReferenceTable:
    def __init__(self, client: DynamoDBClient, name: str, retry: Retry = DEFAULT_RETRY):
        self.client = client
        self.name = name
        self.retry = retry

    def __repr__(self) -> str:
        return f"ReferenceTable({self.name!r})"

    @staticmethod
    def definition(name: str) -> dict:
        """Arguments for ``create_table`` (tests, demo); template.yaml declares the same key schema."""
        return {
            "TableName": name,
            "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": PK, "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }

    def with_retry(self, retry: Retry) -> ReferenceTable:
        return ReferenceTable(self.client, self.name, retry)

    # --- hash items: what the matcher reads -------------------------------------------------------------

    def items(self, pks: Iterable[str], consistent: bool = False) -> dict[str, dict]:
        """Plain items by pk for the pks that exist (one BatchGetItem per 100, unprocessed keys retried)."""
        keys = [{PK: pk} for pk in dict.fromkeys(pks)]
        return {item[PK]: item for item in batch_get(self.client, self.name, keys, consistent, self.retry)}

    def live(self, keys: Iterable[tuple[str, str]], consistent: bool = False) -> dict[tuple[str, str], list[Reference]]:
        """The live references of each (algorithm, hash) asked for; keys without any are absent."""
        wanted = list(dict.fromkeys(keys))
        items = self.items((hash_pk(*key) for key in wanted), consistent)
        found = {}
        for key in wanted:
            item = items.get(hash_pk(*key))
            refs = live_refs(item) if item else []
            if refs:
                found[key] = refs
        return found

    def siblings(self, reference: Reference) -> list[Reference]:
        """The other hashes listed live for the same image: named by its image item, each confirmed on
        its hash item (the source of truth)."""
        response = self.client.get_item(
            TableName=self.name, Key=to_item({PK: image_pk(reference.list, reference.id)}), ConsistentRead=True
        )
        image = from_item(response.get("Item") or {})
        pairs = [
            (e["algorithm"], e["hash"])
            for _, e in sorted(image.get("hashes", {}).items())
            if not e["deleted"] and (e["algorithm"], e["hash"]) != reference.key
        ]
        if not pairs:
            return []
        items = self.items((hash_pk(*pair) for pair in pairs), consistent=True)
        key = ref_key(reference.list, reference.id)
        out = []
        for algorithm, hash_value in pairs:
            item = items.get(hash_pk(algorithm, hash_value), {})
            entry = item.get("refs", {}).get(key)
            if entry and not entry.get("deleted"):
                out.append(_entry_reference(algorithm, item["hash"], entry))  # the hash itself, not its key
        return out

    def live_hashes(
        self, algorithms: Iterable[str], segments: int = SCAN_SEGMENTS, page_size: int | None = None
    ) -> Iterator[tuple[str, str]]:
        """(algorithm, hash) of every hash of these algorithms with a live ref, in no order: one scan for
        all of them, in `segments` parallel segments (a sequential scan reads one partition at a time),
        each item projected to those two attributes (the refs maps are neither sent nor parsed). For the
        snapshot build; pages are handed over through a small queue, so memory stays a few pages."""
        algorithms = sorted(set(algorithms))
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "FilterExpression": f"#alg IN ({', '.join(f':a{i}' for i in range(len(algorithms)))}) AND #live > :zero",
            "ProjectionExpression": "#alg, #hash",
            "ExpressionAttributeNames": {"#alg": "algorithm", "#live": "live", "#hash": "hash"},
            "ExpressionAttributeValues": {
                ":zero": {"N": "0"},
                **{f":a{i}": {"S": algorithm} for i, algorithm in enumerate(algorithms)},
            },
        }
        if page_size:
            kwargs["Limit"] = page_size
        pages = Handover(maxsize=2 * segments)  # a reader that stops early ends the scanning threads too

        def scan(segment: int) -> None:
            try:
                paginator = self.client.get_paginator("scan")
                for page in paginator.paginate(**kwargs, Segment=segment, TotalSegments=segments):
                    if not pages.put(page.get("Items", [])):
                        return
            except Exception as exc:  # handed to the reader, which raises it: never a short index
                pages.put(exc)
            finally:
                pages.put(None)

        with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="scan") as pool:
            try:
                for segment in range(segments):
                    pool.submit(scan, segment)
                running = segments
                while running:
                    items = pages.get()
                    if items is None:
                        running -= 1
                    elif isinstance(items, Exception):
                        raise items
                    else:
                        for raw in items:
                            yield raw["algorithm"]["S"], raw["hash"]["S"]
            finally:
                pages.stop()

    def live_references_of_list(self, list_id: str) -> Iterator[Reference]:
        """Every live (algorithm, hash, id) of one list, from its image items (a filtered scan)."""
        prefix = image_pk(list_id, "")  # "image#<list>#": the escaping keeps it exact
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.name,
            FilterExpression="begins_with(#pk, :prefix) AND #live > :zero",
            ExpressionAttributeNames={"#pk": PK, "#live": "live"},
            ExpressionAttributeValues={":prefix": {"S": prefix}, ":zero": {"N": "0"}},
        )
        for page in pages:
            for raw in page.get("Items", []):
                item = from_item(raw)
                for entry in item["hashes"].values():
                    if not entry["deleted"]:
                        yield Reference(entry["algorithm"], entry["hash"], item["list"], item["id"])

    # --- the writer -------------------------------------------------------------------------------------

    def apply_rows(
        self,
        rows: Iterable[Reference],
        now: Callable[[], str] = _now,
        on_added: Callable[[Reference], None] | None = None,
        added_since: str | None = None,
    ) -> ApplyStats:
        """Apply list rows (additions and tombstones) to the table, in order, 25 rows per batch.

        `on_added(row)` hears of every reference that became live, once its batch is written (the sync
        hands them to the re-match). A row found already live but added after `added_since` (the time of
        the last published version; "" when none was ever published) counts too: a sync that crashed after
        writing it never announced it. None: only rows this call adds count.

        Each batch reads the hash and image items it touches (BatchGetItem), merges the rows into them in
        order (so a later row for the same pk wins), and puts back only the items that changed
        (BatchWriteItem). Idempotent: the same rows applied twice leave the same table, keeping the
        ``added`` and ``deleted_at`` times already there; a replay writes nothing unless the rows both
        list and withdraw a ref.

        Single writer: the read-merge-write is not conditional, so only one apply may run at a time (the
        sync function has reserved concurrency 1). If a batch fails half written, applying the same rows
        again repairs it. Rows are not looked ahead across batches: when a replayed feed carries a row
        and, further on, its tombstone, the ref is live again between those two batches.
        """
        stats = ApplyStats()
        batch: list[Reference] = []
        for row in rows:
            batch.append(row)
            if len(batch) == ROWS_PER_BATCH:
                self._apply_batch(batch, stats, now(), on_added, added_since)
                batch = []
        if batch:
            self._apply_batch(batch, stats, now(), on_added, added_since)
        log.info("references applied", extra={"added": stats.added, "removed": stats.removed})
        return stats

    def _apply_batch(
        self,
        rows: list[Reference],
        stats: ApplyStats,
        now: str,
        on_added: Callable[[Reference], None] | None,
        added_since: str | None,
    ) -> None:
        pks = [hash_pk(r.algorithm, r.hash) for r in rows] + [image_pk(r.list, r.id) for r in rows]
        existing = self.items(pks, consistent=True)
        items: dict[str, dict] = {}
        changed: set[str] = set()
        announced: list[Reference] = []
        for row in rows:
            hpk, ipk = hash_pk(row.algorithm, row.hash), image_pk(row.list, row.id)
            hash_item = items.setdefault(hpk, existing.get(hpk) or _new_hash_item(row))
            image_item = items.setdefault(ipk, existing.get(ipk) or _new_image_item(row))
            outcome = _merge_ref(hash_item, row, now)
            if outcome:
                changed.add(hpk)
                setattr(stats, outcome, getattr(stats, outcome) + 1)
            else:
                stats.unchanged += 1
            if _merge_image(image_item, row):
                changed.add(ipk)
            entry = hash_item["refs"].get(ref_key(row.list, row.id), {})
            unannounced = added_since is not None and entry.get("added", "") > added_since
            if not row.deleted and (outcome == "added" or unannounced):
                announced.append(row)
        batch_put(self.client, self.name, [items[pk] for pk in items if pk in changed], self.retry)
        if on_added is not None:
            for row in announced:
                on_added(row)

    # --- the version item -------------------------------------------------------------------------------

    def get_version(self) -> Version:
        """The current version item; version 0 when the table has never been versioned."""
        item = self._get(VERSION_PK)
        if not item:
            return Version(0)
        return Version(item["version"], item.get("snapshot_key"), item.get("updated"))

    def bump_version(self, expected: int, snapshot_key: str | None = None) -> Version:
        """Set the version to ``expected + 1`` if it is still ``expected`` (0: no version item yet).

        Raises VersionConflict if another writer bumped it first."""
        new = Version(expected + 1, snapshot_key, _now())
        item: dict[str, Any] = {PK: VERSION_PK, "version": new.version, "updated": new.updated}
        if snapshot_key is not None:
            item["snapshot_key"] = snapshot_key
        if expected == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected)}},
            }
        try:
            self.client.put_item(TableName=self.name, Item=to_item(item), **condition)
        except ClientError as exc:
            if not condition_failed(exc):
                raise
            raise VersionConflict(f"version is no longer {expected}") from exc
        return new

    # --- sync bookkeeping -------------------------------------------------------------------------------

    def checkpoint(self, source: str) -> dict | None:
        """Where the source's last applied delta ended (opaque to us), or None before its first."""
        item = self._get(CHECKPOINT_PREFIX + source)
        return dict(item.get("checkpoint", {})) if item else None

    def store_checkpoint(self, source: str, checkpoint: Mapping[str, Any], updated: str) -> None:
        values = {"checkpoint": {str(k): str(v) for k, v in checkpoint.items()}, "updated": updated}
        self.client.put_item(TableName=self.name, Item=to_item({PK: CHECKPOINT_PREFIX + source, **values}))

    def progress(self, source: str) -> dict | None:
        """What a run that stopped early recorded of its delta (see the sync), or None."""
        item = self._get(PROGRESS_PREFIX + source)
        return item or None

    def store_progress(self, source: str, progress: Mapping[str, Any]) -> None:
        self.client.put_item(TableName=self.name, Item=to_item({PK: PROGRESS_PREFIX + source, **progress}))

    def changes_on(self, source: str, day: str) -> dict[str, int]:
        """What the source's deltas added and removed on that UTC day (``meta#changes#<source>#<day>``)."""
        item = self._get(f"{CHANGES_PREFIX}{source}#{day}")
        return {"added": int(item.get("added", 0)), "removed": int(item.get("removed", 0))}

    def note_changes(self, source: str, day: str, added: int, removed: int) -> None:
        """Add to the day's counts (a read and a put: the sync is the single writer)."""
        today = self.changes_on(source, day)
        counts = {"added": today["added"] + added, "removed": today["removed"] + removed}
        self.client.put_item(TableName=self.name, Item=to_item({PK: f"{CHANGES_PREFIX}{source}#{day}", **counts}))

    def clear_progress(self, source: str) -> None:
        self.client.delete_item(TableName=self.name, Key=to_item({PK: PROGRESS_PREFIX + source}))

    # --- allow items ------------------------------------------------------------------------------------

    def allowance(self, sha256: str) -> dict | None:
        """The allow item of these bytes as ``{refs, case_ids, size}``, or None."""
        item = self._get(allow_pk(sha256))
        if not item:
            return None
        return {
            "refs": set(item.get("allowed_refs", set())),
            "case_ids": tuple(sorted(item.get("case_ids", set()))),
            "size": item.get("size_bytes"),
        }

    def add_allowance(
        self, sha256: str, size: int | None, refs: Iterable[tuple[str, str]], case_id: str, who: str, at: str
    ) -> None:
        """Allow these bytes for these references (list, id); both sets grow with ADD, so a retry
        changes nothing."""
        names = {"#refs": "allowed_refs", "#cases": "case_ids"}
        values: dict[str, Any] = {
            ":refs": {"SS": sorted({ref_key(list_id, ref_id) for list_id, ref_id in refs} or {"*none*"})},
            ":cases": {"SS": [case_id]},
            ":at": {"S": at},
            ":who": {"S": who},
            ":kind": {"S": "allow"},
        }
        expression = (
            "ADD #refs :refs, #cases :cases SET kind = :kind, added_at = if_not_exists(added_at, :at), "
            "added_by = if_not_exists(added_by, :who), updated_at = :at"
        )
        if size is not None:
            expression += ", size_bytes = :size"
            values[":size"] = {"N": str(int(size))}
        self.client.update_item(
            TableName=self.name,
            Key=to_item({PK: allow_pk(sha256)}),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    # --- circuit breaker items ------------------------------------------------------------------------

    def count_acted(
        self, list_id: str, ref_id: str, window: str, object_id: str, tenant: str, limits: tuple[int, int]
    ) -> bool:
        """Count `object_id` (of `tenant`) among what the reference acted on in `window`; False when
        that would pass `limits` (most objects, most tenants): the sets then stay as they are, so the
        item stays small. Counting the same object again changes nothing (retries)."""
        max_objects, max_tenants = limits
        try:
            self.client.update_item(
                TableName=self.name,
                Key=to_item({PK: acted_pk(list_id, ref_id, window)}),
                UpdateExpression="ADD objects :object, tenants :tenant SET list_id = :list, ref_id = :ref",
                ConditionExpression=(
                    "attribute_not_exists(objects) OR ((size(objects) < :objects OR contains(objects, :id)) "
                    "AND (size(tenants) < :tenants OR contains(tenants, :who)))"
                ),
                ExpressionAttributeValues={
                    ":object": {"SS": [object_id]},
                    ":id": {"S": object_id},
                    ":tenant": {"SS": [tenant]},
                    ":who": {"S": tenant},
                    ":list": {"S": list_id},
                    ":ref": {"S": ref_id},
                    ":objects": {"N": str(max_objects)},
                    ":tenants": {"N": str(max_tenants)},
                },
            )
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def breaker_states(self, refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """The hold items of those references (list, id) that have one."""
        wanted = {hold_pk(list_id, ref_id): (list_id, ref_id) for list_id, ref_id in refs}
        return {wanted[pk]: item for pk, item in self.items(wanted, consistent=True).items()}

    def set_breaker(
        self, list_id: str, ref_id: str, state: str, why: str, who: str, if_undecided: bool = False
    ) -> bool:
        """Set a reference's breaker state, its history growing by one entry; with `if_undecided`, only
        if it is neither held nor released yet (none, or a shadow state: the trip, where exactly one
        caller wins and alerts). True if written."""
        at = _now()
        entry = {"M": {"state": {"S": state}, "why": {"S": why}, "who": {"S": who}, "at": {"S": at}}}
        args: dict[str, Any] = {}
        if if_undecided:
            args["ConditionExpression"] = "attribute_not_exists(pk) OR #state = :shadow"
            args["ExpressionAttributeValues"] = {":shadow": {"S": BreakerState.SHADOW}}
        try:
            self.client.update_item(
                TableName=self.name,
                Key=to_item({PK: hold_pk(list_id, ref_id)}),
                UpdateExpression=(
                    "SET #state = :state, list_id = :list, ref_id = :ref, updated_at = :at, "
                    "history = list_append(if_not_exists(history, :empty), :entry)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":state": {"S": state},
                    ":list": {"S": list_id},
                    ":ref": {"S": ref_id},
                    ":at": {"S": at},
                    ":empty": {"L": []},
                    ":entry": {"L": [entry]},
                    **args.pop("ExpressionAttributeValues", {}),
                },
                **args,
            )
        except ClientError as exc:
            if if_undecided and condition_failed(exc):
                return False
            raise
        return True

    def put_in_shadow(self, refs: Iterable[tuple[str, str]], until: str, why: str) -> None:
        """New references of a list in shadow rollout: each gets the state `shadow` until `until`,
        unless it has a state already (a person's hold or release stands)."""
        at = _now()
        entry = {"state": BreakerState.SHADOW, "why": why, "who": "hashcheck-sync", "at": at}
        for list_id, ref_id in dict.fromkeys(refs):
            item = {
                PK: hold_pk(list_id, ref_id),
                "state": BreakerState.SHADOW,
                "until": until,
                "list_id": list_id,
                "ref_id": ref_id,
                "updated_at": at,
                "would_act": 0,
                "history": [entry],
            }
            put_if_absent(self.client, self.name, item, PK)

    def count_shadow_hit(self, list_id: str, ref_id: str) -> None:
        """One more object a reference in shadow would have acted on (a retry may count twice)."""
        self.client.update_item(
            TableName=self.name,
            Key=to_item({PK: hold_pk(list_id, ref_id)}),
            UpdateExpression="ADD would_act :one",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    def shadow_batches(self) -> dict[str, dict]:
        """The sync runs whose new references are in shadow: ``{"<source>#<version>": {list_id, until}}``."""
        return dict(self._get(SHADOW_PK).get("batches", {}))

    def store_shadow_batches(self, batches: Mapping[str, Mapping[str, str]]) -> None:
        self.client.put_item(TableName=self.name, Item=to_item({PK: SHADOW_PK, "batches": dict(batches)}))

    def breakers(self) -> Iterator[dict]:
        """Every reference's hold item (a Scan: for the operator's command line)."""
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.name,
            FilterExpression="begins_with(pk, :hold)",
            ExpressionAttributeValues={":hold": {"S": HOLD_PREFIX}},
            ConsistentRead=True,
        )
        for page in pages:
            yield from (from_item(item) for item in page.get("Items", []))

    def _get(self, pk: str) -> dict:
        response = self.client.get_item(TableName=self.name, Key=to_item({PK: pk}), ConsistentRead=True)
        return from_item(response.get("Item") or {})


# --- merging rows into items -----------------------------------------------------------------------------


def _new_hash_item(row: Reference) -> dict:
    return {PK: hash_pk(row.algorithm, row.hash), "algorithm": row.algorithm, "hash": row.hash, "refs": {}, "live": 0}


def _new_image_item(row: Reference) -> dict:
    return {PK: image_pk(row.list, row.id), "list": row.list, "id": row.id, "hashes": {}, "live": 0}


def _merge_ref(item: dict, row: Reference, now: str) -> str | None:
    """Merge one row into a hash item; the ApplyStats field it counts for, or None if nothing changed."""
    refs = item["refs"]
    key = ref_key(row.list, row.id)
    entry = refs.get(key)
    outcome = None
    if row.deleted:
        if entry is None or entry.get("deleted"):
            return None  # nothing live to withdraw; an unknown ref gets no item
        entry["deleted"] = True
        entry.setdefault("deleted_at", now)  # the first withdrawal: a replayed feed leaves the same table
        outcome = "removed"
    elif entry is None or entry.get("deleted"):
        entry = refs.setdefault(key, {"list": row.list, "id": row.id, "added": now})
        entry["deleted"] = False
        _set_category(entry, row.category)
        outcome = "added"
    elif entry.get("category") != row.category:
        _set_category(entry, row.category)
        outcome = "updated"
    item["live"] = sum(1 for e in refs.values() if not e.get("deleted"))
    return outcome


def _set_category(entry: dict, category: str | None) -> None:
    if category is None:
        entry.pop("category", None)
    else:
        entry["category"] = category


def _merge_image(item: dict, row: Reference) -> bool:
    key = hash_pk(row.algorithm, row.hash)
    entry = item["hashes"].get(key)
    if row.deleted:
        if entry is None or entry["deleted"]:
            return False
        entry["deleted"] = True
    elif entry is None or entry["deleted"]:
        # by its key: a vPDQ signal is kept once, on its hash item
        item["hashes"][key] = {
            "algorithm": row.algorithm,
            "hash": table_hash(row.algorithm, row.hash),
            "deleted": False,
        }
    else:
        return False
    item["live"] = sum(1 for e in item["hashes"].values() if not e["deleted"])
    return True
