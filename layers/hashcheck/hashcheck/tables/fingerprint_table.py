"""The FingerprintTable: what every scanned object hashed to and how it was judged, so that a list update
can be checked against stored objects without downloading them again (re-match), the backfill can skip
what is done, and an operator can see when and against which list version an object was judged.

One record per object version, keyed ``object_id`` = `ObjectRef.identity()`: ``bucket``, ``key``,
``version_id``, ``etag``, ``status``, ``verdict``, ``reason``, ``list_version`` (S), ``scanned_at``,
``tenant`` (whose it is, when the tenant rule places it), and
when it was fingerprinted its exact hashes (one attribute per exact algorithm), ``image_status``,
``size`` and ``near``: every rotation/mirror/tilt/frame variant, binary (the codec below; its
"original" frame-0 PDQ and pHash are the fingerprint's own). The table's stream (NEW_IMAGE) feeds
the re-match's stored index, where a new reference finds the objects by their exact or near hashes
(no index of this table: each would cost a write unit per object).

An object that holds members (archive entries, a document's pictures) also gets one **member record**
per member while it stays stored and matchable (`REMATCHABLE`): keyed `member_id(parent, number, path)`, with
``parent`` (the object's id) and ``member`` (the path), the object's ``bucket``/``key``/``version_id``/
``etag``/``status``, and the member's own hashes as above. So the exact-hash indexes and the stored
index find a member that a later list update names, and the re-match acts on its object.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hashcheck.algorithms import ALGORITHMS, EXACT
from hashcheck.fingerprinting import pdq
from hashcheck.fingerprinting.fingerprint import TRANSPOSED, Fingerprint, Member, NearHash, originals
from hashcheck.objects import ObjectRef
from hashcheck.status import REMATCHABLE, Absence, FingerprintStatus, ObjectStatus
from hashcheck.tables.dynamo import DEFAULT_RETRY, Retry, batch_get, batch_put, from_item, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["FingerprintTable", "fingerprint_of", "member_id", "near_of", "records_from_stream"]

KEY = "object_id"


class FingerprintTable:
    def __init__(self, client: DynamoDBClient, name: str, retry: Retry = DEFAULT_RETRY):
        self.client = client
        self.name = name
        self.retry = retry

    def __repr__(self) -> str:
        return f"FingerprintTable({self.name!r})"

    @staticmethod
    def definition(name: str) -> dict:
        """As template.yaml declares it: keyed by object id, with the stream that feeds the stored index."""
        return {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": KEY, "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": KEY, "KeyType": "HASH"}],
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
            "BillingMode": "PAY_PER_REQUEST",
        }

    def record(
        self,
        obj: ObjectRef,
        status: ObjectStatus | Absence,
        verdict: str | None,
        fp: Fingerprint | None = None,
        list_version: int | None = None,
        reason: str | None = None,
        tenant: str | None = None,
    ) -> None:
        """Write (or overwrite) the record of this object version, and its members' records while it
        stays matchable."""
        record = _record(obj, status, verdict, fp, list_version, reason)
        if tenant:
            record["tenant"] = tenant
        self.client.put_item(TableName=self.name, Item=to_item(record))
        if fp is not None and fp.members and status in REMATCHABLE:
            records = [_member_record(obj, status, n, member) for n, member in enumerate(fp.members)]
            batch_put(self.client, self.name, records, retry=self.retry)

    def get(self, obj: ObjectRef) -> dict | None:
        item = self.client.get_item(TableName=self.name, Key=to_item({KEY: obj.identity()}), ConsistentRead=True)
        return from_item(item["Item"]) if "Item" in item else None

    def records(self, object_ids: Sequence[str]) -> Iterator[dict]:
        """The records of those objects that have one (consistent reads, 100 per BatchGetItem)."""
        keys = [{KEY: object_id} for object_id in dict.fromkeys(object_ids)]
        return batch_get(self.client, self.name, keys, consistent=True, retry=self.retry)

    def scan_all(self, members: bool = False) -> Iterator[dict]:
        """Every object's record, and with `members` its members' too (a paginated Scan): for tools
        and audits, never on the scan path."""
        for page in self.client.get_paginator("scan").paginate(TableName=self.name, ConsistentRead=True):
            for item in page.get("Items", []):
                if members or "parent" not in item:
                    yield from_item(item)

    def approximate_count(self) -> int:
        """How many records the table holds, as DynamoDB last counted them (every ~6 hours)."""
        return int(self.client.describe_table(TableName=self.name)["Table"].get("ItemCount", 0))


def _record(
    obj: ObjectRef,
    status: str,
    verdict: str | None,
    fp: Fingerprint | None,
    list_version: int | None,
    reason: str | None,
) -> dict:
    record: dict[str, Any] = {
        KEY: obj.identity(),
        "bucket": obj.bucket,
        "key": obj.key,
        "status": status,
        "scanned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version_id": obj.version_id,
        "etag": obj.etag,
        "verdict": verdict,
        "reason": reason,
        "list_version": None if list_version is None else str(list_version),
    }
    if fp is not None:
        # every rotation, mirror and frame variant: the re-match searches them without the object
        # its PDQ and pHash are the near variants "original" of frame 0: not stored twice
        stored = [h for h in fp.near if h.variant not in NOT_STORED]
        record.update(fp.exact(), image_status=fp.status, near=encode_near(stored) or None, size=fp.size)
    return {name: value for name, value in record.items() if value is not None}


def member_id(parent_id: str, number: int, path: str) -> str:
    """A member record's key, by its place among the object's members (an archive may repeat a name):
    hex like an object id, as the stored index keeps ids as 32 bytes."""
    return hashlib.sha256(f"{parent_id}!{number}!{path}".encode()).hexdigest()


def _member_record(obj: ObjectRef, status: str, number: int, member: Member) -> dict:
    """The object's record made of the member's own hashes, under the member's key."""
    record = _record(obj, status, None, member.fingerprint, None, None)
    return record | {
        KEY: member_id(obj.identity(), number, member.path),
        "parent": obj.identity(),
        "member": member.path,
    }


# --- the record codec --------------------------------------------------------------------------------
#
# ``near`` is binary, one entry per variant: a header of 4 bytes (algorithm, with WITH_TRANSPOSE set when
# the entry stands for its transpose too; variant; frame; quality, 255 for none) and the hash's bytes. A
# PDQ orientation's transpose is a permutation of its bits (`pdq.transposed_hash`), so it is not stored
# but derived: a photo's 24 variants take ~430 bytes instead of ~1,400 as text, and its record stays
# under 1 KB, one write unit (bench/cost.py). Records written before are text (``alg:hash:q:variant:frame``
# joined by ``;``) and are read as such.

_ALGORITHMS = ("pdq", "phash")
_ORIENTATIONS = ("original", "rotate90", "rotate180", "rotate270", "flip_x", "flip_y", "transpose", "transverse")


def _trimmed(orientation: str) -> str:
    return "trimmed" if orientation == "original" else f"trimmed:{orientation}"


# the codes are positions here: a record written with them must read back, so this order never changes
_VARIANTS = (
    *_ORIENTATIONS,
    *(_trimmed(o) for o in _ORIENTATIONS),
    *(f"tilt{angle:+g}" for angle in (-4.0, -2.0, 2.0, 4.0)),
    *(f"region{number}" for number in range(1, 4)),
    "centre84",
    "centre72",
)
_PAIRED = {**TRANSPOSED, **{_trimmed(base): _trimmed(partner) for base, partner in TRANSPOSED.items()}}
WITH_TRANSPOSE = 0x80
# Variants a list update never needs from a stored object: a listed picture's own "centre84" row is what
# finds a stored copy cropped by ~8% a side (through that copy's "original"). Left out, a photo's
# record stays under 1 KB: one write unit (bench/cost.py).
NOT_STORED = frozenset({"centre84"})
NO_QUALITY = 255


def encode_near(near: Iterable[NearHash]) -> bytes | str:
    """A fingerprint's near variants as one compact value (``near``): binary, or text for a variant the
    binary form has no code for (a frame past 255)."""
    near = list(near)
    if not all(h.variant in _VARIANTS and h.algorithm in _ALGORITHMS and 0 <= h.frame < 256 for h in near):
        return _encode_text(near)
    present = {(h.algorithm, h.variant, h.frame): h for h in near}
    derived: set[tuple[str, str, int]] = set()
    for h in near:
        partner = present.get((h.algorithm, _PAIRED.get(h.variant, ""), h.frame))
        if h.algorithm != "pdq" or partner is None or (h.algorithm, h.variant, h.frame) in derived:
            continue
        if partner.quality == h.quality and partner.hash == pdq.transposed_hash(h.hash):
            derived.add((partner.algorithm, partner.variant, partner.frame))
    out = bytearray()
    for h in near:
        key = (h.algorithm, h.variant, h.frame)
        if key in derived:
            continue
        partner_key = (h.algorithm, _PAIRED.get(h.variant, ""), h.frame)
        flag = WITH_TRANSPOSE if partner_key in derived else 0
        quality = NO_QUALITY if h.quality is None else h.quality
        out += bytes([_ALGORITHMS.index(h.algorithm) | flag, _VARIANTS.index(h.variant), h.frame, quality])
        out += bytes.fromhex(h.hash)
    return bytes(out)


def decode_near(value: Any) -> list[NearHash]:
    """The variants ``near`` holds: binary, or text in records written before."""
    if not value:
        return []
    if isinstance(value, str):
        return _decode_text(value)
    data = bytes(getattr(value, "value", value))  # boto3's `Binary`, or bytes
    out, at = [], 0
    while at < len(data):
        first, variant, frame, quality = data[at : at + 4]
        algorithm = _ALGORITHMS[first & ~WITH_TRANSPOSE]
        size = ALGORITHMS[algorithm].hex_length // 2
        hash_value = data[at + 4 : at + 4 + size].hex()
        at += 4 + size
        q = None if quality == NO_QUALITY else quality
        out.append(NearHash(algorithm, hash_value, q, _VARIANTS[variant], frame))
        if first & WITH_TRANSPOSE:
            out.append(NearHash(algorithm, pdq.transposed_hash(hash_value), q, _PAIRED[_VARIANTS[variant]], frame))
    return out


def _encode_text(near: Iterable[NearHash]) -> str:
    return ";".join(
        f"{h.algorithm}:{h.hash}:{'' if h.quality is None else h.quality}:{h.variant}:{h.frame}" for h in near
    )


def _decode_text(text: str) -> list[NearHash]:
    out = []
    for part in filter(None, text.split(";")):
        algorithm, hash_value, quality, rest = part.split(":", 3)
        variant, frame = rest.rsplit(":", 1)  # a variant may hold a colon itself ("trimmed:rotate90")
        out.append(NearHash(algorithm, hash_value, int(quality) if quality else None, variant, int(frame)))
    return out


def near_of(record: Mapping[str, Any]) -> list[NearHash]:
    """Every near variant the record carries; records written before ``near`` existed give their
    original-orientation PDQ and pHash."""
    near = decode_near(record.get("near"))
    if near:
        return near
    out = []
    if record.get("pdq"):
        out.append(NearHash("pdq", record["pdq"], _int(record.get("pdq_quality"))))
    if record.get("phash"):
        out.append(NearHash("phash", record["phash"]))
    return out


def fingerprint_of(record: Mapping[str, Any]) -> Fingerprint | None:
    """The Fingerprint a record was written from (no pixels needed to match it); None without hashes."""
    near = near_of(record)
    if not all(record.get(alg) for alg in EXACT) and not near:  # a video's scene has near hashes only
        return None
    first = originals(near)
    return Fingerprint(
        size=_int(record.get("size")) or 0,
        **{algorithm: record.get(algorithm, "") for algorithm in EXACT},
        status=record.get("image_status") or FingerprintStatus.NOT_IMAGE,
        pdq=first["pdq"].hash if "pdq" in first else None,
        pdq_quality=first["pdq"].quality if "pdq" in first else None,
        phash=first["phash"].hash if "phash" in first else None,
        near=near,
    )


def records_from_stream(event: Mapping[str, Any]) -> Iterator[dict]:
    """The new images of a DynamoDB stream batch (INSERT / MODIFY) as plain records."""
    for record in event.get("Records", []):
        image = record.get("dynamodb", {}).get("NewImage")
        if record.get("eventName") in ("INSERT", "MODIFY") and image:
            yield from_item(_api_form(image))


def _api_form(image: Mapping[str, Any]) -> dict:
    """A stream event's image as the API gives it: the event's JSON carries binary values base64-encoded."""
    return {k: {"B": base64.b64decode(v["B"])} if isinstance(v.get("B"), str) else v for k, v in image.items()}


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)
