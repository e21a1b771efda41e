"""A hotline's feed over HTTPS: hashcheck list v1 (JSON Lines, or CSV with its header), as deltas.

Configuration keys (beside the common ones in ``hashcheck.lists.sources``): ``url`` (``https://`` only),
``format`` (``jsonl`` or ``csv``: sent as ``Accept``; the parser tells them apart itself),
``auth_secret`` (a Secrets Manager secret id whose SecretString is the header value, e.g.
``Bearer ...``; read at fetch time and never logged), ``auth_header`` (default ``Authorization``),
``timeout`` (seconds per connect and per read, default 20), ``retries`` (default 4), ``deadline``
(seconds for the whole fetch, every page, default 300: a feed that trickles, a byte at a time, never
trips the per-read timeout; past the deadline the source fails and the next run starts again from the
same checkpoint). A line longer than ``MAX_LINE`` characters, or a page of more than ``MAX_PAGE_ROWS``
rows, fails the source too.

The feed protocol (hashcheck feed v1)
-------------------------------------
Request: ``GET <url>`` plus, from the stored checkpoint, ``cursor=<C>`` (preferred) or else
``since=<ISO-8601 UTC>`` as a query parameter, and ``If-None-Match: <ETag>`` when an ETag is stored.

- ``304 Not Modified``: nothing changed; the checkpoint stays.
- ``200``: one page. Each page is a complete document (a CSV page repeats its header). Tombstones are
  rows with ``deleted: true``. Response headers:
  - ``X-Next-Cursor: N``: more pages follow; the next page is ``GET <url>?cursor=N`` (no
    ``If-None-Match``). The last page has no ``X-Next-Cursor``.
  - ``X-Cursor: C`` (last page): where the next sync resumes; stored as the checkpoint's ``cursor``.
  - ``ETag`` (first page): stored, and sent back as ``If-None-Match`` next time.
  - ``X-Content-SHA256: <hex>`` (optional, any page): SHA-256 of the page body as decoded; a mismatch
    raises ``ChecksumMismatch`` and the sync rejects the whole delta.
  When the feed gives no ``X-Cursor``, the checkpoint keeps ``since`` = the first response's ``Date``
  (the provider's clock, not ours); re-reading an overlap is harmless because applying is idempotent.
- Anything else is an error. 429 and 5xx, connect and read timeouts are retried with exponential
  backoff (``Retry-After`` honoured), then ``SourceError`` is raised. Redirects are not followed.

SSRF guard: only ``https://`` URLs; the host is resolved once per fetch, every address must be
neither link-local (169.254.0.0/16, fe80::/10: the instance metadata service) nor fd00:ec2::254,
loopback or unspecified, and the connection goes to that checked address (TLS still verifies the
host name), so DNS cannot swap in another address afterwards. Tests opt in to ``http://127.0.0.1``
with ``allow_insecure_loopback=True``; the configuration never sets it.

The body is streamed line by line; a page is never held whole in memory.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from hashcheck.lists import listformat
from hashcheck.lists.listformat import Reference, Rejected
from hashcheck.lists.sources import ChecksumMismatch, ConfigError, DigestedText, SourceError, SourceSpec
from hashcheck.lists.sources.base import Checkpoint, Delta

log = logging.getLogger(__name__)

ACCEPT = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_PAGES = 100_000  # a feed that never ends its paging is a broken feed
# Rows on one page: a whole 3.2M-row list fits; a page past this is a broken feed, refused before it
# fills the function's /tmp (the delta is spooled there, ~150 bytes a row, in 2 GB).
MAX_PAGE_ROWS = 5_000_000
_METADATA_V6 = ipaddress.ip_address("fd00:ec2::254")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class HttpsSource:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        fmt: str | None = None,
        auth: Callable[[], str] | None = None,
        auth_header: str = "Authorization",
        timeout: float = 20.0,
        retries: int = 4,
        deadline: float = 300.0,
        backoff: float = 0.5,
        allow_insecure_loopback: bool = False,
        resolve: Callable = socket.getaddrinfo,
    ):
        """`auth` returns the auth header's value (called once per fetch, so a rotated secret is picked
        up). `backoff`: the first retry waits about this long, then twice as long each time."""
        self.name = name
        self.url = url
        self.fmt = fmt
        self._auth = auth
        self._auth_header = auth_header
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._retries = retries
        self._deadline, self._ends = deadline, float("inf")
        self._backoff = backoff
        self._allow_loopback = allow_insecure_loopback
        self._resolve = resolve
        _split_url(url, allow_insecure_loopback)  # fail at configuration time, not at 3 a.m.

    @classmethod
    def from_spec(cls, spec: SourceSpec, clients) -> HttpsSource:
        options: dict[str, Any] = dict(spec.options)
        if not isinstance(options.get("url"), str):
            raise ConfigError(f"source {spec.name}: url is required")
        fmt = options.get("format")
        if fmt is not None and fmt not in ACCEPT:
            raise ConfigError(f"source {spec.name}: format must be jsonl or csv")
        secret_id = options.get("auth_secret")
        auth = _secret_reader(clients, secret_id) if secret_id else None
        try:
            return cls(
                spec.name,
                options["url"],
                fmt=fmt,
                auth=auth,
                auth_header=str(options.get("auth_header", "Authorization")),
                timeout=float(options.get("timeout", 20.0)),
                retries=int(options.get("retries", 4)),
                deadline=float(options.get("deadline", 300.0)),
            )
        except ValueError as exc:
            raise ConfigError(f"source {spec.name}: {exc}") from None

    def fetch(self, checkpoint: Checkpoint | None) -> Delta:
        checkpoint = dict(checkpoint or {})
        self._ends = time.monotonic() + self._deadline
        pool, base = self._connect()
        headers = self._headers()
        first_headers = {**headers, "If-None-Match": checkpoint["etag"]} if checkpoint.get("etag") else headers
        query = {"cursor": checkpoint["cursor"]} if checkpoint.get("cursor") else {}
        if not query and checkpoint.get("since"):
            query = {"since": checkpoint["since"]}
        response = self._get(pool, base, query, first_headers)
        if response.status == 304:
            response.release_conn()
            return Delta(iter(()), checkpoint, unchanged=True)
        new_checkpoint = _first_page_checkpoint(response)
        details = {"pages": 0}
        rows = self._pages(pool, base, headers, response, new_checkpoint, details)
        # The checkpoint is filled in as the pages arrive: read it only after `rows` is exhausted.
        return Delta(rows, new_checkpoint, details=details)

    # --- paging ---------------------------------------------------------------------------------

    def _pages(self, pool, base, headers, response, checkpoint: dict, details: dict) -> Iterator[Reference | Rejected]:
        seen: set[str] = set()
        while True:
            details["pages"] += 1
            yield from _page_rows(response, details["pages"], self._reader(response))
            next_cursor = response.headers.get("X-Next-Cursor")
            if not next_cursor:
                if response.headers.get("X-Cursor"):
                    checkpoint["cursor"] = response.headers["X-Cursor"]
                    checkpoint.pop("since", None)
                return
            if next_cursor in seen or details["pages"] >= MAX_PAGES:
                raise SourceError(f"source {self.name}: the feed's paging does not end")
            seen.add(next_cursor)
            response = self._get(pool, base, {"cursor": next_cursor}, headers)
            if response.status != 200:
                response.release_conn()
                raise SourceError(f"source {self.name}: page {details['pages'] + 1} answered HTTP {response.status}")

    # --- transport ------------------------------------------------------------------------------

    def _reader(self, response) -> Callable[[int], bytes]:
        """Reads of the body that stop at the fetch's deadline. `read1` returns what has arrived, so a
        feed that trickles cannot hold one read for long."""

        def read(n: int) -> bytes:
            if time.monotonic() > self._ends:
                raise SourceError(f"source {self.name}: the feed did not finish within {self._deadline:g} s")
            return response.read1(n)

        return read

    def _connect(self):
        """A connection pool pinned to the checked address of the URL's host, and the URL's parts."""
        parts = _split_url(self.url, self._allow_loopback)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = _checked_address(parts.hostname, port, self._resolve, self._allow_loopback)
        common: dict[str, Any] = {"timeout": self._timeout, "maxsize": 1, "retries": False}
        if parts.scheme == "http":
            return urllib3.HTTPConnectionPool(address, port, **common), parts
        pool = urllib3.HTTPSConnectionPool(
            address, port, server_hostname=parts.hostname, assert_hostname=parts.hostname, **common
        )
        return pool, parts

    def _get(self, pool, parts, query: Mapping[str, str], headers: Mapping[str, str]):
        host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        target = urlunsplit(("", "", parts.path or "/", _with_query(parts.query, query), ""))
        retry = urllib3.Retry(
            total=self._retries,
            backoff_factor=self._backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            redirect=0,
            raise_on_redirect=False,
            raise_on_status=True,
            respect_retry_after_header=True,
        )
        try:
            response = pool.urlopen(
                "GET", target, headers={**headers, "Host": host}, retries=retry, redirect=False, preload_content=False
            )
        except Urllib3Error as exc:
            reason = _reason(exc)
            raise SourceError(f"source {self.name}: GET failed after {self._retries} retries ({reason})") from None
        if response.status not in (200, 304):
            response.release_conn()
            raise SourceError(f"source {self.name}: HTTP {response.status}")
        return response

    def _headers(self) -> dict[str, str]:
        accept = ACCEPT.get(self.fmt or "", "application/x-ndjson, text/csv")
        headers = {"User-Agent": "hashcheck-sync/1", "Accept": accept}
        if self._auth is not None:
            headers[self._auth_header] = self._auth()
        return headers


# --- helpers ----------------------------------------------------------------------------------------


def _page_rows(response, page: int, read: Callable[[int], bytes]) -> Iterator[Reference | Rejected]:
    """Rows of one page, streamed; checks the page's X-Content-SHA256 once its body is read."""
    body = DigestedText(read)
    try:
        for count, row in enumerate(listformat.read(body.text), 1):
            if count > MAX_PAGE_ROWS:
                raise SourceError(f"page {page} holds more than {MAX_PAGE_ROWS} rows")
            # Line numbers restart on each page; the reason says which page (never the row).
            yield row if isinstance(row, Reference) or page == 1 else Rejected(row.line, f"page {page}: {row.reason}")
        expected = response.headers.get("X-Content-SHA256")
        if expected and body.hexdigest() != expected.strip().lower():
            raise ChecksumMismatch(f"page {page} does not match its X-Content-SHA256")
    except (UnicodeDecodeError, listformat.ListFormatError, Urllib3Error) as exc:
        raise SourceError(f"page {page} is unreadable ({_reason(exc)})") from None
    finally:
        response.release_conn()


def _first_page_checkpoint(response) -> dict:
    checkpoint = {}
    if response.headers.get("ETag"):
        checkpoint["etag"] = response.headers["ETag"]
    date = response.headers.get("Date")
    if date:
        # no usable date: the next sync asks for everything again (idempotent, just slower)
        with contextlib.suppress(TypeError, ValueError):
            checkpoint["since"] = parsedate_to_datetime(date).isoformat()
    return checkpoint


def _with_query(query: str, extra: Mapping[str, str]) -> str:
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in extra]
    return urlencode(pairs + list(extra.items()))


def _split_url(url: str, allow_loopback: bool):
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValueError("credentials do not belong in the url; use auth_secret")
    if not parts.hostname:
        raise ValueError("url has no host")
    if parts.scheme == "https":
        return parts
    if parts.scheme == "http" and allow_loopback and parts.hostname in _LOOPBACK_HOSTS:
        return parts
    raise ValueError("url must start with https://")


def _checked_address(host: str, port: int, resolve: Callable, allow_loopback: bool) -> str:
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SourceError(f"cannot resolve the feed's host ({exc.__class__.__name__})") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise SourceError("the feed's host has no address")
    for address in addresses:
        if _forbidden(address, allow_loopback):
            raise SourceError("the feed's host resolves to a link-local, metadata or loopback address")
    return str(addresses[0])


def _forbidden(address, allow_loopback: bool) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_link_local or address == _METADATA_V6 or address.is_unspecified or address.is_multicast:
        return True
    return address.is_loopback and not allow_loopback


def _secret_reader(clients, secret_id: str) -> Callable[[], str]:
    def read() -> str:
        return clients.secretsmanager.get_secret_value(SecretId=secret_id)["SecretString"].strip()

    return read


def _reason(exc: BaseException) -> str:
    """The class of the innermost cause: enough to act on, and free of URLs and header values."""
    reason = getattr(exc, "reason", None)
    return (reason or exc).__class__.__name__
