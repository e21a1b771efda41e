"""What the three table modules share: the item codec and batch calls that retry what DynamoDB leaves unprocessed.

Items travel in the low-level client's form (``{"pk": {"S": "..."}}``); every table module turns them into
plain values with `from_item` and back with `to_item`, so numbers come back as ints (floats when not
whole) and never as `Decimal`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from hashcheck.aws import condition_failed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEYS_PER_GET = 100  # BatchGetItem's limit
ITEMS_PER_WRITE = 25  # BatchWriteItem's limit

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict:
    """Plain values (str, int, float, bool, dict, list, None) as a low-level DynamoDB item."""
    return {name: _serializer.serialize(_decimal(value)) for name, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict:
    """A low-level DynamoDB item (or a stream image) as plain values."""
    return {name: plain(_deserializer.deserialize(value)) for name, value in item.items()}


def plain(value: Any) -> Any:
    """Decimals back to ints (or floats when not whole), recursively; sets stay sets."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _decimal(value: Any) -> Any:
    """Floats as Decimals (the serializer refuses floats), recursively."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimal(v) for v in value]
    return value


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
    client: DynamoDBClient,
    table_name: str,
    keys: Sequence[Mapping[str, Any]],
    consistent: bool = False,
    retry: Retry = DEFAULT_RETRY,
) -> Iterator[dict]:
    """The plain items of those `keys` (plain key dicts) that exist, 100 keys per BatchGetItem, retrying
    unprocessed keys; RetriesExhausted when they outlast the retries."""
    for start in range(0, len(keys), KEYS_PER_GET):
        chunk = [to_item(key) for key in keys[start : start + KEYS_PER_GET]]
        request: dict = {table_name: {"Keys": chunk, "ConsistentRead": consistent}}
        for attempt in range(retry.attempts):
            response = client.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(table_name, []):
                yield from_item(raw)
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                break
            if attempt + 1 < retry.attempts:
                retry.pause(attempt)
        else:
            left = sum(len(r.get("Keys", [])) for r in request.values())
            raise RetriesExhausted(f"BatchGetItem left {left} keys unprocessed after {retry.attempts} attempts")


def batch_put(
    client: DynamoDBClient, table_name: str, items: Sequence[Mapping[str, Any]], retry: Retry = DEFAULT_RETRY
) -> None:
    """Put plain items, 25 per BatchWriteItem, retrying unprocessed items."""
    for start in range(0, len(items), ITEMS_PER_WRITE):
        request: dict = {
            table_name: [{"PutRequest": {"Item": to_item(item)}} for item in items[start : start + ITEMS_PER_WRITE]]
        }
        for attempt in range(retry.attempts):
            response = client.batch_write_item(RequestItems=request)
            request = dict(response.get("UnprocessedItems") or {})
            if not request:
                break
            if attempt + 1 < retry.attempts:
                retry.pause(attempt)
        else:
            left = sum(len(r) for r in request.values())
            raise RetriesExhausted(f"BatchWriteItem left {left} items unprocessed after {retry.attempts} attempts")


def put_if_absent(client: DynamoDBClient, table_name: str, item: Mapping[str, Any], key: str) -> bool:
    """Put the plain `item` unless an item with its `key` exists already; True if it was put."""
    try:
        client.put_item(TableName=table_name, Item=to_item(item), ConditionExpression=f"attribute_not_exists({key})")
    except ClientError as exc:
        if not condition_failed(exc):
            raise
        return False
    return True
