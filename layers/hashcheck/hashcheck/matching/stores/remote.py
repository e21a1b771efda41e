"""A reference store backed by a remote lookup service that never hands out its list.

Some hotlines (e.g. the Dutch HashCheckService) answer "is this hash listed?" instead of publishing
their list. `RemoteLookupStore` asks them, for the EXACT hashes of an upload only (MD5, SHA-1,
SHA-256 by default): never the image, never perceptual hashes unless configured.

hashcheck remote lookup protocol v1
-----------------------------------
One HTTPS POST to the configured URL per `exact()` call, ``Content-Type: application/json``, the
auth header (default ``Authorization``) set to the configured value::

    {"hashes": [{"algorithm": "md5", "hash": "<lowercase hex>"}, ...]}

Answer ``200`` with::

    {"matches": [{"algorithm": "md5", "hash": "<hex>", "list": "<list id>", "id": "<reference id>",
                  "category": "<optional>"}, ...]}

Only listed hashes appear in ``matches``; an empty list means none is listed. Rows are validated
like list v1 rows (``hashcheck.lists.listformat.parse_row``); a row for a hash that was not asked is ignored;
a malformed answer raises. A real provider's API is adapted by passing other ``encode`` / ``decode``
functions (see `encode_v1`, `decode_v1`): those two functions are the whole mapping.

Transport and failure rules
---------------------------
- ``https://`` only; link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10,
  fd00:ec2::254, and host names resolving there) are refused, as are loopback and unspecified
  addresses unless ``allow_insecure_loopback=True`` (tests), which also allows ``http://`` to
  loopback. Redirects are not followed (a redirect could point past the guard).
- Timeouts: connect 2 s, read 5 s by default. Answers are capped at ``max_response_bytes``.
- Retried with exponential backoff and full jitter: 5xx, 429 (``Retry-After`` is honoured when it is
  within ``RemoteRetry.retry_after_cap``; a longer one ends the attempts at once), timeouts and
  connection errors. Other 4xx (and 3xx) raise at once; a 401/403 with a secret from Secrets
  Manager first re-reads the secret once (it may have been rotated).
- FAIL CLOSED: when the attempts are exhausted, or the answer is malformed, `RemoteLookupError` is
  raised. An error is never an empty (clean) answer; the scan retries the message and finally marks
  the object ``error``, which stays blocked.
- Logs and exception messages carry the host, status codes and counts: never hash values, the auth
  value, the URL's path/query or the response body.

`near()` and `siblings()` return []: an exact-only service has no perceptual index.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import parse_url

from hashcheck import algorithms
from hashcheck.lists.listformat import Reference, parse_row
from hashcheck.matching.stores.base import NearHit

log = logging.getLogger(__name__)

Key = tuple[str, str]
Encoder = Callable[[Sequence[Key]], bytes]
Decoder = Callable[[bytes], list[Reference]]

_METADATA = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, EC2/ECS/Lambda metadata and credentials
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # EC2 IMDS over IPv6
)
RETRYABLE_STATUS = frozenset({429}) | frozenset(range(500, 600))
AUTH_STATUS = frozenset({401, 403})


class RemoteLookupError(RuntimeError):
    """The remote lookup gave no trustworthy answer. Never to be read as "no match"."""


# --- protocol v1: the whole request/response mapping ------------------------------------------------------------


def encode_v1(keys: Sequence[Key]) -> bytes:
    """The request body for `keys` (algorithm, lowercase hex hash)."""
    return json.dumps({"hashes": [{"algorithm": a, "hash": h} for a, h in keys]}).encode()


def decode_v1(body: bytes) -> list[Reference]:
    """The listed references in an answer; ValueError if the answer is malformed (never quoting it)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("answer is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("matches"), list):
        raise ValueError('answer has no "matches" list')
    refs = []
    for number, row in enumerate(payload["matches"]):
        try:
            refs.append(parse_row(row))
        except ValueError as exc:
            raise ValueError(f"match {number}: {exc}") from None
    return refs


# --- transport ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteRetry:
    """Attempts in all (not retries), exponential backoff with full jitter, and the longest Retry-After
    we wait for (a longer one ends the attempts: the queue retries the message later)."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0
    retry_after_cap: float = 10.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


DEFAULT_RETRY = RemoteRetry()

_default_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def default_pool() -> urllib3.PoolManager:
    """One PoolManager per process, so a warm Lambda reuses its TLS connections across invocations."""
    global _default_pool
    with _pool_lock:
        if _default_pool is None:
            _default_pool = urllib3.PoolManager(num_pools=4, maxsize=8, cert_reqs="CERT_REQUIRED")
        return _default_pool


def check_url(url: str, allow_insecure_loopback: bool = False) -> str:
    """The URL's host if the URL may be used; ValueError otherwise (checks IP literals, not DNS)."""
    try:
        parsed = parse_url(url)
    except Exception:
        raise ValueError("remote lookup URL cannot be parsed") from None
    host = (parsed.host or "").strip("[]").lower()
    if not host:
        raise ValueError("remote lookup URL has no host")
    if parsed.auth:
        raise ValueError("remote lookup URL must not carry credentials; use the auth header")
    loopback = _is_loopback(host)
    if parsed.scheme != "https" and not (parsed.scheme == "http" and allow_insecure_loopback and loopback):
        raise ValueError("remote lookup URL must be https://")
    _check_address(host, allow_insecure_loopback)
    return host


def _is_loopback(host: str) -> bool:
    try:
        return _ip(host).is_loopback
    except ValueError:
        return False


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _check_address(host: str, allow_loopback: bool) -> None:
    try:
        address = _ip(host)
    except ValueError:
        return  # a name: checked when it is resolved
    if any(address in net for net in _METADATA):
        raise ValueError("remote lookup URL points at a link-local / metadata address")
    if address.is_unspecified or (address.is_loopback and not allow_loopback):
        raise ValueError("remote lookup URL points at a loopback or unspecified address")


def _resolve_and_check(host: str, port: int, allow_loopback: bool) -> None:
    try:
        _ip(host)
        return  # a literal, already checked
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise RemoteLookupError(f"remote lookup host {host} does not resolve ({type(exc).__name__})") from None
    for info in infos:
        try:
            _check_address(str(info[4][0]), allow_loopback)
        except ValueError as exc:
            raise RemoteLookupError(f"remote lookup host {host} refused: {exc}") from None


class RemoteLookupStore:
    """A `ReferenceStore` asking a remote service about exact hashes (protocol v1 unless adapted)."""

    def __init__(
        self,
        url: str,
        *,
        auth_value: str | None = None,
        secret_id: str | None = None,
        secret_field: str | None = None,
        secrets_client=None,
        auth_header: str = "Authorization",
        algorithms_sent: Iterable[str] = algorithms.EXACT,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        retry: RemoteRetry = DEFAULT_RETRY,
        max_response_bytes: int = 1 << 20,
        encode: Encoder = encode_v1,
        decode: Decoder = decode_v1,
        content_type: str = "application/json",
        pool: urllib3.PoolManager | None = None,
        allow_insecure_loopback: bool = False,
        name: str | None = None,
    ):
        """The auth value is given directly (`auth_value`) or read once from Secrets Manager
        (`secret_id`; the SecretString itself, or its JSON field `secret_field`), then cached.
        `algorithms_sent`: which exact-lookup keys are sent; others are never sent."""
        if auth_value is not None and secret_id is not None:
            raise ValueError("give auth_value or secret_id, not both")
        self.host = check_url(url, allow_insecure_loopback)
        self.name = name or self.host
        self._url = url
        self._port = parse_url(url).port or (443 if url.lower().startswith("https") else 80)
        self._allow_loopback = allow_insecure_loopback
        self._resolved = False
        self._auth_value = auth_value
        self._secret_id = secret_id
        self._secret_field = secret_field
        self._secrets_client = secrets_client
        self._auth_header = auth_header
        self.algorithms_sent = frozenset(a.lower() for a in algorithms_sent)
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self._encode = encode
        self._decode = decode
        self._content_type = content_type
        self._pool = pool or default_pool()

    def __repr__(self) -> str:  # never the auth value, the URL's path or query
        return f"RemoteLookupStore(name={self.name!r}, host={self.host!r})"

    # --- ReferenceStore ------------------------------------------------------------------------------------------

    def exact(self, keys: Iterable[Key]) -> dict[Key, list[Reference]]:
        asked: dict[Key, list[Key]] = {}  # normalised key -> the caller's spellings of it
        for algorithm, hash_value in keys:
            normal = (algorithm.strip().lower(), hash_value.strip().lower())
            if normal[0] in self.algorithms_sent:
                asked.setdefault(normal, []).append((algorithm, hash_value))
        if not asked:
            return {}
        body = self._post(self._encode(list(asked)))
        try:
            refs = self._decode(body)
        except ValueError as exc:  # decode_v1's reasons never quote the answer
            raise RemoteLookupError(f"remote lookup {self.name}: malformed answer ({exc})") from None
        except Exception as exc:  # an adapted decoder's KeyError, TypeError...: still fail closed, unquoted
            raise RemoteLookupError(f"remote lookup {self.name}: malformed answer ({type(exc).__name__})") from None
        found: dict[Key, list[Reference]] = {}
        unasked = 0
        for ref in refs:
            if ref.deleted:
                continue
            if ref.key not in asked:
                unasked += 1
                continue
            for key in asked[ref.key]:
                bucket = found.setdefault(key, [])
                if ref not in bucket:
                    bucket.append(ref)
        if unasked:
            log.warning("remote lookup %s answered %d hashes that were not asked; ignored", self.name, unasked)
        log.info("remote lookup %s: %d hashes asked, %d listed", self.name, len(asked), len(found))
        return found

    def near(self, algorithm: str, hashes: Sequence[str], max_distance: int) -> list[NearHit]:
        return []

    def siblings(self, reference: Reference) -> list[Reference]:
        return []

    # --- transport -----------------------------------------------------------------------------------------------

    def _post(self, body: bytes) -> bytes:
        """The body of a 200 answer to one POST, after the retries; RemoteLookupError otherwise."""
        if not self._resolved:
            _resolve_and_check(self.host, self._port, self._allow_loopback)
            self._resolved = True
        reread_secret = self._secret_id is not None
        attempt = 0
        while True:
            outcome = self._attempt(body)
            if isinstance(outcome, bytes):
                return outcome
            failure, status, retry_after = outcome
            if status in AUTH_STATUS and reread_secret:
                reread_secret = False  # once: the secret may have been rotated since we cached it
                self._auth_value = None
                log.warning("remote lookup %s: %s, reading the secret again", self.name, failure)
                continue  # does not count as an attempt
            if status is not None and status not in RETRYABLE_STATUS:
                raise RemoteLookupError(f"remote lookup {self.name} refused the request: {failure}")
            wait = self.retry.backoff(attempt)
            if retry_after is not None:
                asked = _retry_after_seconds(retry_after)
                if asked is None or asked > self.retry.retry_after_cap:
                    raise RemoteLookupError(f"remote lookup {self.name}: {failure}, Retry-After beyond our cap")
                wait = max(wait, asked)
            attempt += 1
            if attempt >= self.retry.attempts:
                raise RemoteLookupError(f"remote lookup {self.name} failed after {attempt} attempts: {failure}")
            log.warning(
                "remote lookup %s: %s, retry %d of %d in %.2f s",
                self.name,
                failure,
                attempt,
                self.retry.attempts - 1,
                wait,
            )
            self.retry.sleep(wait)

    def _attempt(self, body: bytes) -> bytes | tuple[str, int | None, str | None]:
        """One POST: the answer's body, or (what went wrong, HTTP status or None, Retry-After or None)."""
        headers = {"Content-Type": self._content_type, "Accept": "application/json"}
        auth = self._auth()
        if auth is not None:
            headers[self._auth_header] = auth
        try:
            response = self._pool.request(
                "POST",
                self._url,
                body=body,
                headers=headers,
                timeout=self.timeout,
                retries=False,  # retries are ours, redirects are refused (they could lead past the URL guard)
                redirect=False,
                preload_content=False,
            )
        except (Urllib3Error, OSError) as exc:
            return type(exc).__name__, None, None
        status = response.status
        if status != 200:
            retry_after = response.headers.get("Retry-After") if status in RETRYABLE_STATUS else None
            response.close()  # an error answer's body is never read (it may echo what we sent)
            return f"HTTP {status}", status, retry_after
        chunks, size = [], 0
        try:
            for chunk in response.stream(64 * 1024):
                size += len(chunk)
                if size > self.max_response_bytes:
                    response.close()
                    raise RemoteLookupError(
                        f"remote lookup {self.name}: answer larger than {self.max_response_bytes} bytes"
                    )
                chunks.append(chunk)
        except (Urllib3Error, OSError) as exc:
            response.close()
            return f"answer cut short ({type(exc).__name__})", None, None
        response.release_conn()  # read to its end: the connection can be reused
        return b"".join(chunks)

    def _auth(self) -> str | None:
        if self._auth_value is None and self._secret_id is not None:
            self._auth_value = self._read_secret()
        return self._auth_value

    def _read_secret(self) -> str:
        client = self._secrets_client
        if client is None:
            import boto3

            client = self._secrets_client = boto3.client("secretsmanager")
        try:
            secret = client.get_secret_value(SecretId=self._secret_id)["SecretString"]
        except Exception as exc:  # the message could in theory quote the value: name the type only
            raise RemoteLookupError(
                f"remote lookup {self.name}: cannot read its secret ({type(exc).__name__})"
            ) from None
        if self._secret_field:
            try:
                secret = json.loads(secret)[self._secret_field]
            except (ValueError, KeyError, TypeError):
                raise RemoteLookupError(
                    f"remote lookup {self.name}: the secret has no JSON field {self._secret_field!r}"
                ) from None
        if not isinstance(secret, str) or not secret:
            raise RemoteLookupError(f"remote lookup {self.name}: the secret is empty")
        return secret


def _retry_after_seconds(value: str) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if unreadable."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())
