"""Hotline reports: one report per case to a configured HTTPS endpoint, exactly once as the hotline sees it.

The ReportFunction reads case ids from its own queue (ReportQueue + DLQ) and calls `Reporter.report`.
The payload (docs/hotline-report.md) is modelled after NCMEC's CyberTipline fields; `build_payload`
is the whole mapping, so another hotline's format is one function.

Exactly once, with an endpoint that can be called again after a crash:
- the idempotency key is derived from the case id only (`idempotency_key`): the same case always
  sends the same `Idempotency-Key` header, whichever worker, attempt or delivery sends it, and the
  endpoint answers a repeated key with the report it already filed;
- the key is stored in the case before the first call (`report.idempotency_key`), with an attempt
  counter;
- a lease in the case (`report_lease_until`, conditional update) keeps two workers from posting the
  same case at once (a duplicate queue message arriving in parallel waits for the first);
- acceptance is recorded with a conditional update (`reported_at`, `report_id`, history
  `reported`): a case with `reported_at` is never sent again, so a duplicate message after success
  makes no request at all. A crash between the endpoint's answer and that record makes the retry
  post again with the same key: the endpoint's deduplication covers exactly that window.

Retries: 5xx, 429, timeouts and connection errors, with backoff and full jitter (`RemoteRetry`),
within one invocation; when they run out the message goes back to the queue (and after the
queue's maxReceiveCount to the DLQ, which alarms). Other 4xx fail at once. A 401/403 re-reads the
secret once (rotation).

Transport: https only (`http://` to a loopback address only with `allow_insecure_loopback`, for
tests), link-local/metadata addresses refused, redirects not followed. The auth header's value comes
from Secrets Manager. Logs and errors name the case, the host, status codes and counts: never the
payload (it carries hashes for the hotline), the auth value, or the endpoint's answer body.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import parse_url

from hashcheck.algorithms import EXACT, PERCEPTUAL
from hashcheck.matching.stores.remote import AUTH_STATUS, RETRYABLE_STATUS, RemoteRetry, check_url, default_pool
from hashcheck.status import CaseStatus, Decision, Verdict
from hashcheck.tables.case_table import CaseTable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = logging.getLogger(__name__)

PAYLOAD_SCHEMA = "hashcheck-hotline-report/1"
MODES = ("confirmed", "all")
REPORTED, ALREADY_REPORTED, SKIPPED = "reported", "already_reported", "skipped"
DEFAULT_RETRY = RemoteRetry(attempts=4, base_delay=0.5, max_delay=5.0)
INCIDENT_TYPE = "Child Pornography (possession, manufacture, and distribution)"  # CyberTipline incidentType


class ReportFailed(RuntimeError):
    """The endpoint gave no acceptance; the queue retries the message."""


def idempotency_key(case_id: str) -> str:
    """The same for every attempt at reporting one case (and different for every case)."""
    return "hashcheck-" + hashlib.sha256(f"hashcheck hotline report v1\n{case_id}".encode()).hexdigest()[:48]


@dataclass(frozen=True)
class ReportConfig:
    endpoint: str
    case_table: str
    mode: str = "confirmed"  # report confirmed cases only, or every match
    secret_id: str | None = None  # Secrets Manager id of the auth header's value
    secret_field: str | None = None  # ...or of a JSON field in it
    auth_header: str = "Authorization"
    reporter: dict = field(default_factory=dict)  # the ESP's reporting person / company, as configured
    report_id_field: str = "report_id"  # where the endpoint's answer names its report
    allow_insecure_loopback: bool = False
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    lease_seconds: int = 120

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown report mode {self.mode!r}; expected one of {MODES}")
        check_url(self.endpoint, self.allow_insecure_loopback)

    @classmethod
    def from_env(cls, env=os.environ) -> ReportConfig:
        return cls(
            endpoint=env["HOTLINE_REPORT_URL"],
            case_table=env["CASE_TABLE"],
            mode=env.get("HOTLINE_REPORT_MODE", "confirmed"),
            secret_id=env.get("HOTLINE_REPORT_SECRET") or None,
            secret_field=env.get("HOTLINE_REPORT_SECRET_FIELD") or None,
            auth_header=env.get("HOTLINE_AUTH_HEADER") or "Authorization",
            reporter=json.loads(env.get("HOTLINE_REPORTER") or "{}"),
            allow_insecure_loopback=env.get("HOTLINE_ALLOW_INSECURE_LOOPBACK") == "true",
        )

    @property
    def host(self) -> str:
        return parse_url(self.endpoint).host or ""


@dataclass
class ReportOutcome:
    case_id: str
    result: str  # reported | already_reported | skipped
    report_id: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Reporter:
    def __init__(
        self,
        config: ReportConfig,
        cases: CaseTable,
        secrets: SecretsManagerClient | None = None,
        retry: RemoteRetry = DEFAULT_RETRY,
        pool: urllib3.PoolManager | None = None,
        now: Callable[[], float] = time.time,
    ):
        self.config = config
        self.cases = cases
        self.secrets = secrets
        self.retry = retry
        self.pool = pool or default_pool()
        self.now = now
        self._auth: str | None = None
        self.timeout = urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout)

    def report(self, case_id: str) -> ReportOutcome:
        case = self.cases.get(case_id)
        if case is None:
            return ReportOutcome(case_id, SKIPPED, reason="no such case")
        if case.get("reported_at"):
            return ReportOutcome(case_id, ALREADY_REPORTED, case.get("report_id"))
        reason = self._not_reportable(case)
        if reason:
            logger.info("case %s not reported: %s", case_id, reason)
            return ReportOutcome(case_id, SKIPPED, reason=reason)
        key = idempotency_key(case_id)
        case = self.cases.claim_report(case_id, key, self.config.lease_seconds, int(self.now()))
        if case.get("reported_at"):
            return ReportOutcome(case_id, ALREADY_REPORTED, case.get("report_id"))
        key = case["report"]["idempotency_key"]  # the one stored first, should the derivation ever change
        body = json.dumps(build_payload(case, self.config.reporter, key), ensure_ascii=False).encode()
        try:
            answer = self._post(body, key)
        except ReportFailed as exc:
            self.cases.record_report_failure(case_id, str(exc))
            raise
        report_id = _report_id(answer, self.config.report_id_field)
        case, recorded = self.cases.record_report(case_id, report_id, self.config.host)
        logger.info("case %s reported to %s (attempt %s)", case_id, self.config.host, case["report"]["attempts"])
        return ReportOutcome(case_id, REPORTED if recorded else ALREADY_REPORTED, case.get("report_id"))

    def _not_reportable(self, case: dict) -> str | None:
        if case.get("decision") == Decision.RELEASED or case.get("status") == CaseStatus.RELEASED:
            return "released as a false positive"
        if self.config.mode == "confirmed" and case.get("decision") != Decision.CONFIRMED:
            return "not confirmed by a reviewer"
        if case.get("decision") != Decision.CONFIRMED and case.get("verdict") != Verdict.MATCH:
            return "a review hold, not a match"
        return None

    # -- transport ---------------------------------------------------------------------------------

    def _post(self, body: bytes, key: str) -> bytes:
        reread = self.config.secret_id is not None
        attempt = 0
        while True:
            outcome = self._attempt(body, key)
            if isinstance(outcome, bytes):
                return outcome
            failure, status = outcome
            if status in AUTH_STATUS and reread:
                reread, self._auth = False, None
                logger.warning("hotline %s: %s, reading the secret again", self.config.host, failure)
                continue
            if status is not None and status not in RETRYABLE_STATUS:
                raise ReportFailed(f"hotline {self.config.host} refused the report: {failure}")
            attempt += 1
            if attempt >= self.retry.attempts:
                raise ReportFailed(f"hotline {self.config.host} failed after {attempt} attempts: {failure}")
            wait = self.retry.backoff(attempt)
            logger.warning("hotline %s: %s, retry %d in %.2f s", self.config.host, failure, attempt, wait)
            self.retry.sleep(wait)

    def _attempt(self, body: bytes, key: str) -> bytes | tuple[str, int | None]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Idempotency-Key": key}
        auth = self._auth_value()
        if auth is not None:
            headers[self.config.auth_header] = auth
        try:
            response = self.pool.request(
                "POST",
                self.config.endpoint,
                body=body,
                headers=headers,
                timeout=self.timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
        except (Urllib3Error, OSError) as exc:
            return type(exc).__name__, None
        try:
            if response.status not in (200, 201, 202):
                return f"HTTP {response.status}", response.status
            try:
                return response.read(1 << 20) or b"{}"
            except (Urllib3Error, OSError) as exc:
                return f"answer cut short ({type(exc).__name__})", None
        finally:
            response.drain_conn()  # so the connection can be reused; the body is never logged
            response.release_conn()

    def _auth_value(self) -> str | None:
        if self._auth is None and self.config.secret_id:
            client = self.secrets
            if client is None:
                import boto3

                client = self.secrets = boto3.client("secretsmanager")
            try:
                value = client.get_secret_value(SecretId=self.config.secret_id)["SecretString"]
                if self.config.secret_field:
                    value = json.loads(value)[self.config.secret_field]
            except Exception as exc:  # never quote the secret or the message that might
                raise ReportFailed(f"cannot read the hotline secret ({type(exc).__name__})") from None
            self._auth = value
        return self._auth


def _report_id(answer: bytes, field_name: str) -> str | None:
    try:
        value = json.loads(answer).get(field_name)
    except (ValueError, AttributeError):
        return None
    return str(value) if value is not None else None


def build_payload(case: dict, reporter: dict, key: str) -> dict:
    """The report for one case (hashcheck hotline report v1; field mapping in docs/hotline-report.md)."""
    uploader = case.get("uploader") or {}
    quarantine = case.get("quarantine") or {}
    hashes = case.get("hashes") or {}
    upload_event = {
        "ip_address": uploader.get("source_ip"),
        "event_name": "Upload",
        "date_time": case.get("uploaded_at") or case.get("detected_at"),
    }
    return {
        "schema": PAYLOAD_SCHEMA,
        "idempotency_key": key,
        "case_id": case["case_id"],
        "incident_summary": {"incident_type": INCIDENT_TYPE, "incident_date_time": case.get("detected_at")},
        "reporter": reporter,
        "person_or_user_reported": {"esp_identifier": uploader.get("principal"), "ip_capture_event": [upload_event]},
        "files": [
            {
                "original_file_name": posixpath.basename(case["key"]),
                "location_of_file": f"s3://{case['bucket']}/{case['key']}",
                "object": {"bucket": case["bucket"], "key": case["key"], "version_id": case.get("version_id")},
                "size": case.get("size"),
                "original_file_hash": [
                    {"hash_type": name.upper(), "value": hashes[name]}
                    for name in (*EXACT, *PERCEPTUAL)
                    if hashes.get(name)
                ],
                "ip_capture_event": [upload_event],
                "file_viewed_by_esp": case.get("decision") == Decision.CONFIRMED,
                "publicly_available": False,
                "matched_references": [
                    {k: m.get(k) for k in ("list", "ref_id", "algorithm", "distance", "category")}
                    for m in case.get("matches", [])
                ],
                "evidence_preserved": {
                    "bucket": quarantine.get("evidence_bucket"),
                    "key": quarantine.get("evidence_key"),
                    "version_id": quarantine.get("evidence_version_id"),
                    # cases filed before the field existed: verified evidence was always held
                    "legal_hold": quarantine.get("legal_hold", bool(quarantine.get("checksum_verified"))),
                    "checksum_verified": quarantine.get("checksum_verified"),
                },
            }
        ],
        "review": {"decision": case.get("decision"), "decided_at": case.get("decided_at")},
    }
