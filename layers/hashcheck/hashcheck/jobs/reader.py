"""Reading an object version into its fingerprint: in a function that can do nothing else, or here.

An upload's bytes are chosen by strangers and Pillow's native decoders parse them. On AWS the scan
path (ScanFunction, BackfillFunction) asks FingerprintFunction, whose role may read objects and do
nothing more: no tagging, no evidence, no deletes, no tables. The functions that hold those powers
never parse an object. Tools, tests and `--local` runs read in their own process (`read_here`).

A reader returns the fingerprint, or `Absence.DELETED` / `Absence.SUPERSEDED` when that version is
gone or the key holds other content than the event named. A failed read raises: never "clean".
"""

from __future__ import annotations

import base64
import contextvars
import gzip
import json
import logging
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from hashcheck.aws import is_gone, precondition_failed
from hashcheck.fingerprinting.fingerprint import Fingerprint, fingerprint, from_message, to_message
from hashcheck.objects import ObjectRef
from hashcheck.status import Absence, FingerprintStatus

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


class Reader(Protocol):
    def __call__(self, obj: ObjectRef) -> Fingerprint | Absence: ...


class ReadFailed(Exception):
    """The fingerprint function failed (a crash, a timeout, out of memory); the scan is retried."""


def read_here(s3: S3Client, obj: ObjectRef) -> Fingerprint | Absence:
    """Stream that exact version through `fingerprint` in this process."""
    request: dict[str, Any] = {"Bucket": obj.bucket, "Key": obj.key}
    if obj.version_id:
        request["VersionId"] = obj.version_id
    elif obj.etag:
        request["IfMatch"] = obj.etag  # unversioned bucket: make sure we read the object the event named
    try:
        response = s3.get_object(**request)
    except ClientError as error:
        if is_gone(error):
            return Absence.DELETED
        if precondition_failed(error):
            return Absence.SUPERSEDED
        raise
    with response["Body"] as body:
        result = fingerprint(body)
    result.tags = response.get("TagCount", 0)  # S3 leaves it out when the version has none
    return result


class Here:
    """A reader in this process."""

    def __init__(self, s3: S3Client):
        self.s3 = s3

    def __call__(self, obj: ObjectRef) -> Fingerprint | Absence:
        return read_here(self.s3, obj)


class FingerprintFunction:
    """A reader that invokes FingerprintFunction and waits for its answer."""

    def __init__(self, client: LambdaClient, function_name: str):
        self.client = client
        self.function_name = function_name

    def __call__(self, obj: ObjectRef) -> Fingerprint | Absence:
        response = self.client.invoke(FunctionName=self.function_name, Payload=json.dumps(asdict(obj)).encode())
        answer = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError") or not isinstance(answer, dict):
            kind = answer.get("errorType") if isinstance(answer, dict) else None
            raise ReadFailed(f"FingerprintFunction failed ({kind or response.get('FunctionError')})")
        if "absent" in answer:
            return Absence(answer["absent"])
        return from_message(json.loads(gzip.decompress(base64.b64decode(answer["fingerprint_gz"]))))


class Prefetched:
    """A reader that starts reading a batch's objects at once and hands each fingerprint out when the
    scan asks for it: the scan function then waits for its slowest object, not for their sum (a
    synchronous Invoke bills the waiting caller too). A read that failed fails where it is asked for,
    as it would have unprefetched; an object not prefetched is read on the spot."""

    def __init__(self, read: Reader, workers: int = 10):
        self.read = read
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fingerprint")
        self.pending: dict[ObjectRef, Future[Fingerprint | Absence]] = {}

    def start(self, objs: Iterable[ObjectRef]) -> None:
        for obj in objs:
            if obj not in self.pending:  # in the caller's context (its trace, whose call it is)
                self.pending[obj] = self.pool.submit(contextvars.copy_context().run, self.read, obj)

    def __call__(self, obj: ObjectRef) -> Fingerprint | Absence:
        future = self.pending.pop(obj, None)
        return future.result() if future is not None else self.read(obj)

    def forget(self) -> None:
        """Drop what the batch did not ask for (a record that failed before its scan)."""
        self.pending.clear()


MAX_ANSWER = 5_500_000  # Lambda returns at most 6 MB to a synchronous caller


def answer(s3: S3Client, event: dict) -> dict:
    """What FingerprintFunction returns for `event` (an ObjectRef's fields): the fingerprint, gzipped
    (an archive's members make it large: hex hashes and repeated keys compress ~3.5x)."""
    result = read_here(s3, ObjectRef(**event))
    if isinstance(result, Absence):
        return {"absent": str(result)}
    packed = _pack(result)
    if len(packed) > MAX_ANSWER:  # too much to hand back: the object is not clean for it
        result.members, result.status = [], FingerprintStatus.UNSCANNABLE
        result.error = "its fingerprint is too large to hand back (too many entries inside)"
        packed = _pack(result)
    return {"fingerprint_gz": packed}


def _pack(fp: Fingerprint) -> str:
    return base64.b64encode(gzip.compress(json.dumps(to_message(fp)).encode(), compresslevel=6)).decode()
