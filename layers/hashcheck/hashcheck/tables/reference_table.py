"""The ReferenceTable in DynamoDB: its schema, the writer the sync uses, and the batch helpers.

Schema (one table, partition key ``pk`` (S), no sort key):

- Hash item, one per (algorithm, hash): ``pk = "<algorithm>#<hash>"``, ``algorithm``, ``hash``,
  ``live`` (N, how many refs are live: a quick filter) and ``refs``, a map keyed ``"<list>#<id>"``
  whose values are ``{list, id, category?, added, deleted, deleted_at?}``. A withdrawn (tombstoned)
  ref stays in the map with ``deleted = true`` for audit; readers never act on it. ``added`` is when
  the ref was first listed and ``deleted_at`` when it was first withdrawn; both are kept if the ref is
  listed again (``deleted`` false), so replaying a feed leaves the same table.
- Image item, one per listed image (list, reference id): ``pk = "image#<list>#<id>"``, ``list``,
  ``id``, ``live`` and ``hashes``, a map keyed ``"<algorithm>#<hash>"`` of ``{algorithm, hash,
  deleted}``. It answers "which other hashes does this list carry for the same image" (a pHash hit is
  confirmed by the image's PDQ) in one GetItem; the hash items stay the source of truth, so readers
  confirm the siblings it names against them.
- Version item: ``pk = "meta#version"``, ``version`` (N), ``snapshot_key``, ``updated``. The sync bumps
  it after rebuilding the near-match snapshot; scanners reload their index when it changes.

Keys never collide: a hash is hex, so a hash item's pk has exactly one ``#``; an image pk has two or
more, and ``meta#version`` is not hex. Inside keys, ``%`` and ``#`` in list and reference ids are
percent-escaped (``"%25"``, ``"%23"``) so ``"<list>#<id>"`` is unambiguous; the attributes keep the
ids as given.

The writer assumes a single writer: the sync function runs with reserved concurrency 1, and its
read-merge-write of each batch is not protected by conditions. Nothing here logs hash values or list
contents; errors carry counts only.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from hashcheck.lists.listformat import Reference

log = logging.getLogger(__name__)

PK = "pk"
VERSION_PK = "meta#version"
IMAGE_PREFIX = "image#"
ROWS_PER_BATCH = 25  # BatchWriteItem's limit
KEYS_PER_GET = 100  # BatchGetItem's limit

_SER = TypeSerializer()
_DESER = TypeDeserializer()


def table_definition(table_name: str) -> dict:
    """Arguments for ``create_table`` (tests, demo); template.yaml declares the same key schema."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": PK, "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


# --- keys -------------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("#", "%23")


def hash_pk(algorithm: str, hash_value: str) -> str:
    return f"{algorithm}#{hash_value}"


def ref_key(list_id: str, ref_id: str) -> str:
    """The key of one listed image inside a hash item's ``refs`` map."""
    return f"{_escape(list_id)}#{_escape(ref_id)}"


def image_pk(list_id: str, ref_id: str) -> str:
    return IMAGE_PREFIX + ref_key(list_id, ref_id)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- (de)serialisation --------------------------------------------------------------------------------


def to_item(item: dict) -> dict:
    """A plain dict (ints, strs, bools, dicts) as a DynamoDB low-level item."""
    return {name: _SER.serialize(value) for name, value in item.items()}


def from_item(item: dict) -> dict:
    return {name: _plain(_DESER.deserialize(value)) for name, value in item.items()}


def _plain(value):
    """Decimals back to ints (every number we store is an integer), recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value)
    return value


def live_refs(item: dict) -> list[Reference]:
    """The live references of a (plain) hash item, in a stable order."""
    return [
        entry_reference(item["algorithm"], item["hash"], entry)
        for _, entry in sorted(item.get("refs", {}).items())
        if not entry.get("deleted")
    ]


def entry_reference(algorithm: str, hash_value: str, entry: dict) -> Reference:
    return Reference(algorithm, hash_value, entry["list"], entry["id"], entry.get("category"))


# --- batch calls with retries ----------------------------------------------------------------------


class RetriesExhausted(RuntimeError):
    """DynamoDB kept returning part of a batch as unprocessed. Callers fail closed on it."""


@dataclass(frozen=True)
class Retry:
    """Bounded exponential backoff with full jitter for UnprocessedKeys / UnprocessedItems."""

    attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def pause(self, attempt: int) -> None:
        self.sleep(random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt))))


DEFAULT_RETRY = Retry()


def batch_get(
    client, table_name: str, pks: Iterable[str], consistent: bool = False, retry: Retry = DEFAULT_RETRY
) -> dict[str, dict]:
    """Plain items by pk for the pks that exist; one BatchGetItem per 100 keys, retrying unprocessed keys."""
    unique = list(dict.fromkeys(pks))
    found: dict[str, dict] = {}
    for start in range(0, len(unique), KEYS_PER_GET):
        chunk = unique[start : start + KEYS_PER_GET]
        request = {table_name: {"Keys": [{PK: {"S": pk}} for pk in chunk], "ConsistentRead": consistent}}
        for attempt in range(retry.attempts):
            response = client.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(table_name, []):
                item = from_item(raw)
                found[item[PK]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            if attempt + 1 < retry.attempts:
                retry.pause(attempt)
        else:
            left = sum(len(r.get("Keys", [])) for r in request.values())
            raise RetriesExhausted(f"BatchGetItem left {left} keys unprocessed after {retry.attempts} attempts")
    return found


def batch_put(client, table_name: str, items: Sequence[dict], retry: Retry = DEFAULT_RETRY) -> None:
    """Put plain items, 25 per BatchWriteItem, retrying unprocessed items."""
    for start in range(0, len(items), ROWS_PER_BATCH):
        chunk = items[start : start + ROWS_PER_BATCH]
        request = {table_name: [{"PutRequest": {"Item": to_item(item)}} for item in chunk]}
        for attempt in range(retry.attempts):
            response = client.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                break
            if attempt + 1 < retry.attempts:
                retry.pause(attempt)
        else:
            left = sum(len(r) for r in request.values())
            raise RetriesExhausted(f"BatchWriteItem left {left} items unprocessed after {retry.attempts} attempts")


def client_or_default(client):
    if client is not None:
        return client
    import boto3

    return boto3.client("dynamodb")


# --- the writer ----------------------------------------------------------------------------------------


@dataclass
class ApplyStats:
    added: int = 0  # refs that became live (new, or re-listed after a withdrawal)
    removed: int = 0  # live refs withdrawn by a tombstone
    unchanged: int = 0  # rows that changed nothing (already so, or a tombstone for an unknown ref)
    updated: int = 0  # live refs whose category changed


def apply_rows(
    table_name: str,
    rows: Iterable[Reference],
    client=None,
    retry: Retry = DEFAULT_RETRY,
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
    client = client_or_default(client)
    stats = ApplyStats()
    batch: list[Reference] = []
    for row in rows:
        batch.append(row)
        if len(batch) == ROWS_PER_BATCH:
            _apply_batch(client, table_name, batch, stats, retry, now(), on_added, added_since)
            batch = []
    if batch:
        _apply_batch(client, table_name, batch, stats, retry, now(), on_added, added_since)
    log.info("references applied", extra={"added": stats.added, "removed": stats.removed})
    return stats


def _apply_batch(
    client,
    table_name: str,
    rows: list[Reference],
    stats: ApplyStats,
    retry: Retry,
    now: str,
    on_added: Callable[[Reference], None] | None = None,
    added_since: str | None = None,
) -> None:
    pks = [hash_pk(r.algorithm, r.hash) for r in rows] + [image_pk(r.list, r.id) for r in rows]
    existing = batch_get(client, table_name, pks, consistent=True, retry=retry)
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
    batch_put(client, table_name, [items[pk] for pk in items if pk in changed], retry)
    for row in announced if on_added else ():
        on_added(row)


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
        item["hashes"][key] = {"algorithm": row.algorithm, "hash": row.hash, "deleted": False}
    else:
        return False
    item["live"] = sum(1 for e in item["hashes"].values() if not e["deleted"])
    return True


# --- readers ---------------------------------------------------------------------------------------------


def iter_live(
    table_name: str, algorithm: str, client=None, page_size: int | None = None
) -> Iterator[tuple[str, list[Reference]]]:
    """(hash, live references) for every hash of `algorithm` with a live ref: a paginated scan.

    For the snapshot builder (and, until snapshots exist, a scanner's first near lookup)."""
    client = client_or_default(client)
    kwargs = {
        "TableName": table_name,
        "FilterExpression": "#alg = :alg AND #live > :zero",
        "ExpressionAttributeNames": {"#alg": "algorithm", "#live": "live"},
        "ExpressionAttributeValues": {":alg": {"S": algorithm}, ":zero": {"N": "0"}},
    }
    if page_size:
        kwargs["Limit"] = page_size
    for page in client.get_paginator("scan").paginate(**kwargs):
        for raw in page.get("Items", []):
            item = from_item(raw)
            refs = live_refs(item)
            if refs:
                yield item["hash"], refs


def image_hashes(client, table_name: str, list_id: str, ref_id: str) -> list[tuple[str, str]]:
    """The (algorithm, hash) pairs the image item lists as live for one listed image (not confirmed)."""
    response = client.get_item(TableName=table_name, Key={PK: {"S": image_pk(list_id, ref_id)}}, ConsistentRead=True)
    item = from_item(response.get("Item") or {})
    return [(e["algorithm"], e["hash"]) for _, e in sorted(item.get("hashes", {}).items()) if not e["deleted"]]


# --- version item ---------------------------------------------------------------------------------------


class VersionConflict(RuntimeError):
    """Someone else bumped the version since it was read."""


@dataclass(frozen=True)
class Version:
    version: int
    snapshot_key: str | None = None
    updated: str | None = None


def get_version(table_name: str, client=None) -> Version:
    """The current version item; version 0 when the table has never been versioned."""
    client = client_or_default(client)
    response = client.get_item(TableName=table_name, Key={PK: {"S": VERSION_PK}}, ConsistentRead=True)
    item = from_item(response.get("Item") or {})
    if not item:
        return Version(0)
    return Version(item["version"], item.get("snapshot_key"), item.get("updated"))


def bump_version(table_name: str, expected: int, snapshot_key: str | None = None, client=None) -> Version:
    """Set the version to ``expected + 1`` if it is still ``expected`` (0: no version item yet).

    Raises VersionConflict if another writer bumped it first."""
    client = client_or_default(client)
    new = Version(expected + 1, snapshot_key, _now())
    item = {PK: VERSION_PK, "version": new.version, "updated": new.updated}
    if snapshot_key is not None:
        item["snapshot_key"] = snapshot_key
    if expected == 0:
        condition = {"ConditionExpression": "attribute_not_exists(pk)"}
    else:
        condition = {
            "ConditionExpression": "#version = :expected",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":expected": {"N": str(expected)}},
        }
    try:
        client.put_item(TableName=table_name, Item=to_item(item), **condition)
    except client.exceptions.ConditionalCheckFailedException as exc:
        raise VersionConflict(f"version is no longer {expected}") from exc
    return new
