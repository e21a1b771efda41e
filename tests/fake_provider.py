"""A fake hash-list provider: a real HTTP server on 127.0.0.1 (http.server in a thread) that speaks the
hashcheck feed protocol (see ``hashcheck/lists/sources/https.py``). Test data only: generated hashes.

    with FakeProvider(page_size=2) as provider:
        provider.append('{"algorithm": "md5", ...}', ...)   # the feed's log of row lines
        source = HttpsSource("p", provider.url, allow_insecure_loopback=True, ...)

The feed is an append-only log of row lines (JSON Lines, or CSV rows with ``csv_header`` set). A
request without ``cursor`` starts at the beginning; ``cursor=N`` starts at row N. Pages hold
``page_size`` rows (None: all); a page that is not the last says ``X-Next-Cursor``; the last says
``X-Cursor`` = the log's length. ``ETag`` is the log's length; ``If-None-Match`` equal to it gets 304.

Knobs (plain attributes, change them between requests):
  ``fail_next``      answer the next N requests with ``fail_status`` (503) before serving;
  ``slow_next``      sleep ``slow_seconds`` before answering the next N requests (a read timeout);
  ``trickle_seconds`` send each body a byte at a time, this long apart (never a read timeout);
  ``checksums``      send ``X-Content-SHA256`` on every page; ``corrupt_checksum`` sends a wrong one;
  ``require``        ``(header, value)`` a request must carry, else 401;
  ``send_cursor``    False: omit ``X-Cursor`` (the client then falls back to ``since=``);
  ``routes``         ``{path: handler}``, ``handler(query: dict, headers: dict) -> (status, headers, body)``,
                     for other tests' endpoints (served before the feed, with the same knobs).
``requests`` records ``(path, query, headers)`` of every request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

Route = Callable[[dict, dict], tuple[int, dict, bytes]]


class FakeProvider:
    def __init__(self, page_size: int | None = None, path: str = "/feed", csv_header: str | None = None):
        self.page_size, self.path, self.csv_header = page_size, path, csv_header
        self.log: list[str] = []
        self.fail_next, self.fail_status = 0, 503
        self.slow_next, self.slow_seconds = 0, 0.5
        self.trickle_seconds = 0.0
        self.checksums, self.corrupt_checksum = False, False
        self.require: tuple[str, str] | None = None
        self.send_cursor = True
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict, dict]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def append(self, *lines: str) -> None:
        self.log.extend(line.rstrip("\n") for line in lines)

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- serving (called on the server's threads) -----------------------------------------------------

    def answer(self, path: str, query: dict, headers: dict) -> tuple[int, dict, bytes]:
        with self._lock:
            self.requests.append((path, query, headers))
            slow = self.slow_next > 0
            self.slow_next -= slow
            fail = not slow and self.fail_next > 0
            self.fail_next -= fail
        if slow:
            time.sleep(self.slow_seconds)
        if fail:
            return self.fail_status, {}, b"try later"
        if self.require and headers.get(self.require[0].lower()) != self.require[1]:
            return 401, {}, b"unauthorized"
        if path in self.routes:
            return self.routes[path](query, headers)
        if path != self.path:
            return 404, {}, b"not found"
        return self._page(query, headers)

    def _page(self, query: dict, headers: dict) -> tuple[int, dict, bytes]:
        etag = f'"{len(self.log)}"'
        if headers.get("if-none-match") == etag:
            return 304, {"ETag": etag}, b""
        start = int(query.get("cursor", 0))
        end = len(self.log) if self.page_size is None else min(start + self.page_size, len(self.log))
        lines = ([self.csv_header] if self.csv_header else []) + self.log[start:end]
        body = "".join(line + "\n" for line in lines).encode()
        out = {"ETag": etag, "Content-Type": "application/x-ndjson"}
        if end < len(self.log):
            out["X-Next-Cursor"] = str(end)
        elif self.send_cursor:
            out["X-Cursor"] = str(len(self.log))
        if self.checksums or self.corrupt_checksum:
            digest = hashlib.sha256(body + (b"x" if self.corrupt_checksum else b"")).hexdigest()
            out["X-Content-SHA256"] = digest
        return 200, out, body


def _handler_for(provider: FakeProvider):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out, body = provider.answer(parts.path, query, headers)
            try:
                self.send_response(status)
                for name, value in out.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not provider.trickle_seconds:
                    self.wfile.write(body)
                for byte in body if provider.trickle_seconds else b"":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(provider.trickle_seconds)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


class FakeHotline:
    """POST /reports -> {"report_id"}; one report per Idempotency-Key."""

    def __init__(self, auth: str | None = None):
        self.provider = FakeProvider(path="/feed")
        if auth:
            self.provider.require = ("Authorization", auth)
        self.provider.routes["/reports"] = self._file
        self.reports: dict[str, str] = {}  # idempotency key -> report id
        self.bodies: list[bytes] = []
        hotline, base = self, self.provider._server.RequestHandlerClass

        class WithPost(base):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                hotline.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.do_GET()

        self.provider._server.RequestHandlerClass = WithPost
        self.url = self.provider.base_url() + "/reports"

    def _file(self, query: dict, headers: dict):
        key = headers.get("idempotency-key")
        if not key:
            return 400, {}, b"no idempotency key"
        report_id = self.reports.setdefault(key, f"R-{len(self.reports) + 1}")
        return 201, {"Content-Type": "application/json"}, json.dumps({"report_id": report_id}).encode()

    def posts(self) -> list:
        return [r for r in self.provider.requests if r[0] == "/reports"]
