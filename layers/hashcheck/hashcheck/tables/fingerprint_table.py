"""The FingerprintTable: what every scanned object hashed to, so that a list update can be checked
against stored objects without downloading them again (re-match), and so an operator can see when
and against which list version an object was judged."""

from __future__ import annotations

from datetime import UTC, datetime

from hashcheck.fingerprinting.fingerprint import Fingerprint
from hashcheck.objects import ObjectRef

EXACT_INDEXES = {name: f"{name}-index" for name in ("md5", "sha1", "sha256")}


def table_definition(name: str) -> dict:
    """As template.yaml declares it: one index per exact hash, so a new reference finds the stored
    objects that carry it with one Query (re-match), and a stream for the stored perceptual index."""
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": "object_id", "AttributeType": "S"},
            *({"AttributeName": algorithm, "AttributeType": "S"} for algorithm in EXACT_INDEXES),
        ],
        "KeySchema": [{"AttributeName": "object_id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": algorithm, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
            for algorithm, index in EXACT_INDEXES.items()
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        "BillingMode": "PAY_PER_REQUEST",
    }


def record(
    ddb,
    table: str,
    obj: ObjectRef,
    status: str,
    verdict: str | None,
    fp: Fingerprint | None = None,
    list_version: int | None = None,
    reason: str | None = None,
) -> None:
    item = {
        "object_id": {"S": obj.identity()},
        "bucket": {"S": obj.bucket},
        "key": {"S": obj.key},
        "status": {"S": status},
        "scanned_at": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
    }
    optional = {
        "version_id": obj.version_id,
        "etag": obj.etag,
        "verdict": verdict,
        "reason": reason,
        "list_version": None if list_version is None else str(list_version),
    }
    if fp is not None:
        from hashcheck.jobs.rematch import encode_near  # imported here: rematch itself reads these records

        # every rotation, mirror and frame variant: the re-match searches them without the object
        optional.update(
            fp.exact(), pdq=fp.pdq, phash=fp.phash, image_status=fp.status, near=encode_near(fp.near) or None
        )
        item["size"] = {"N": str(fp.size)}
        if fp.pdq_quality is not None:
            item["pdq_quality"] = {"N": str(fp.pdq_quality)}
    item.update({name: {"S": value} for name, value in optional.items() if value is not None})
    ddb.put_item(TableName=table, Item=item)


def get(ddb, table: str, obj: ObjectRef) -> dict | None:
    item = ddb.get_item(TableName=table, Key={"object_id": {"S": obj.identity()}}, ConsistentRead=True).get("Item")
    return {name: next(iter(value.values())) for name, value in item.items()} if item else None
