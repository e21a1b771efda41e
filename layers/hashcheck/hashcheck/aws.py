"""What every part that talks to AWS shares: reading an error, reading a large object, and clients made on
first use."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectTypeDef
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient

# S3 answers 404 for a key or version that does not exist, 405 for a version that is a delete marker.
_GONE_STATUS = (404, 405)
_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})


def error_code(error: BaseException) -> str | None:
    """The AWS error code of a ClientError (e.g. ``NoSuchKey``), None for anything else."""
    if not isinstance(error, ClientError):
        return None
    return error.response.get("Error", {}).get("Code")


def is_gone(error: BaseException) -> bool:
    """S3 said the object version is not there (no such key or version, or a delete marker).

    A missing bucket is not "gone": it is a configuration fault, and it is retried, never recorded."""
    if not isinstance(error, ClientError) or error_code(error) == "NoSuchBucket":
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status in _GONE_STATUS or error_code(error) in _GONE_CODES


def condition_failed(error: BaseException) -> bool:
    """DynamoDB refused a conditional write because its condition did not hold."""
    return error_code(error) == "ConditionalCheckFailedException"


def precondition_failed(error: BaseException) -> bool:
    """S3 refused a request whose If-Match no longer holds (the object was overwritten)."""
    return error_code(error) in ("PreconditionFailed", "412")


def listed(s3: S3Client, bucket: str, prefix: str) -> Iterator[ObjectTypeDef]:
    """Every object under `prefix`, as ListObjectsV2 describes it (Key, Size, LastModified), page by page."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def delete_keys(s3: S3Client, bucket: str, keys: Sequence[str]) -> None:
    """Delete these objects, 1,000 a request (DeleteObjects' most)."""
    for start in range(0, len(keys), 1000):
        doomed: list[Any] = [{"Key": key} for key in keys[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})


# A large object is read in ranges of 16 MB, 8 at once (S3's guidance: 8-16 MB ranges on concurrent
# connections; one stream into a function reads ~60 MB/s, which would make a 1.1 GB index take 19 s).
RANGE_BYTES = 16 * 2**20
RANGE_READERS = 8


def read_object(s3: S3Client, bucket: str, key: str, size: int) -> bytes | bytearray:
    """An object of `size` bytes: a small one in one GET, a large one in `RANGE_BYTES` ranges by
    `RANGE_READERS` threads into one buffer. ClientError as S3 raises it; a range that comes back short
    gives a shorter result (the caller checks the length)."""
    if size <= 2 * RANGE_BYTES:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    buffer = bytearray(size)

    def fetch(start: int) -> int:
        end = min(start + RANGE_BYTES, size) - 1
        piece = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")["Body"].read()
        buffer[start : start + len(piece)] = piece
        return len(piece)

    with ThreadPoolExecutor(max_workers=RANGE_READERS, thread_name_prefix="ranged-read") as pool:
        read = sum(pool.map(fetch, range(0, size, RANGE_BYTES)))
    return buffer if read == size else buffer[:read]


class Clients:
    """The boto3 clients hashcheck uses, each created on first use; tests and tools pass ready ones."""

    def __init__(self, session: Any = None, **ready: Any):
        self._session = session
        self._clients: dict[str, Any] = {name: client for name, client in ready.items() if client is not None}

    def get(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = (self._session or boto3).client(service)
        return self._clients[service]

    @property
    def s3(self) -> S3Client:
        return self.get("s3")

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self.get("dynamodb")

    @property
    def sns(self) -> SNSClient:
        return self.get("sns")

    @property
    def events(self) -> EventBridgeClient:
        return self.get("events")

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return self.get("secretsmanager")

    @property
    def ssm(self) -> SSMClient:
        return self.get("ssm")

    @property
    def lambda_(self) -> LambdaClient:
        """Waits as long as FingerprintFunction may run (botocore's default read timeout is 60 s)."""
        if "lambda" not in self._clients:
            import boto3
            from botocore.config import Config

            config = Config(read_timeout=150, connect_timeout=10)
            self._clients["lambda"] = (self._session or boto3).client("lambda", config=config)
        return self._clients["lambda"]
