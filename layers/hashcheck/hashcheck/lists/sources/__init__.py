"""List sources: where reference lists come from, configured per list as JSON.

Configuration (env ``LIST_SOURCES`` holding the JSON, or ``LIST_SOURCES_PARAMETER`` naming an SSM
parameter that holds it)::

    [{"name": "nl-police", "type": "https", "url": "https://feed.example/hashes", "format": "jsonl",
      "auth_secret": "hashcheck/nl-police", "auth_header": "Authorization", "list_id": "nl",
      "max_bad_share": 0.01},
     {"name": "compliance", "type": "s3", "key": "lists/extra.jsonl", "list_id": "compliance"}]

Common keys: ``name`` (required; letters, digits, ``.``, ``_``, ``-``; the checkpoint is stored under
it), ``type`` (``https`` or ``s3``), ``list_id`` (required: every row must carry this list id or it is
rejected, so one provider can never add to or withdraw from another provider's list),
``max_bad_share`` (default 0.01: a delta with a larger share of malformed rows is rejected whole), and
caps on what one source may change, a delta over any of them being rejected whole (nothing applied,
the checkpoint kept, the reason in the sync report): ``max_added`` / ``max_removed`` rows per run
(default 2,000,000 / 1,000) and ``max_added_per_day`` / ``max_removed_per_day`` (default 5,000,000 /
5,000, UTC days). A provider's first full load fits the defaults; a feed that suddenly withdraws
most of a list, which would stop matches as surely as a wrong list starts them, does not.
``shadow_days`` (default 0, off; at most 90): the references a delta of this source makes live are
in shadow for that many days: they act on nothing and count the objects they would have acted on
(``hashcheck list holds``); when the period ends, the next sync hands them to the re-match like new
references, and they act.
Type-specific keys are documented in ``sources/https.py`` and ``sources/s3.py``. Unknown keys are an
error: a misspelt ``max_bad_share`` must not silently fall back to the default.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hashcheck.lists.sources.base import Checkpoint, Delta, ListSource

__all__ = [
    "Checkpoint",
    "ChecksumMismatch",
    "ConfigError",
    "Delta",
    "ListSource",
    "SourceError",
    "SourceSpec",
    "load_specs",
    "make_source",
    "parse_specs",
]

CAPS = {"max_added": 2_000_000, "max_removed": 1_000, "max_added_per_day": 5_000_000, "max_removed_per_day": 5_000}
COMMON_KEYS = frozenset({"name", "type", "list_id", "max_bad_share", "shadow_days", *CAPS})
DEFAULT_MAX_BAD_SHARE = 0.01
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ConfigError(ValueError):
    """The list source configuration is malformed (says what, never a secret value)."""


class SourceError(RuntimeError):
    """A source could not deliver its delta (transport, HTTP status, format). Nothing is applied."""


class ChecksumMismatch(SourceError):
    """The delta's bytes do not match the checksum the provider sent: the whole delta is rejected."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    type: str
    list_id: str | None = None  # required in a configuration; None only for a local file import
    max_bad_share: float = DEFAULT_MAX_BAD_SHARE
    options: Mapping[str, object] = field(default_factory=dict)  # the type-specific keys
    caps: Mapping[str, int] = field(default_factory=lambda: dict(CAPS))  # see the module docstring
    shadow_days: int = 0  # new references only count what they would do for this long (0: off)


def parse_specs(text: str) -> list[SourceSpec]:
    """Source specs from the configuration JSON; ConfigError on anything malformed or duplicated."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"list sources are not valid JSON (line {exc.lineno})") from None
    if not isinstance(raw, list):
        raise ConfigError("list sources must be a JSON array of objects")
    specs = [_spec(entry, number) for number, entry in enumerate(raw, start=1)]
    _check_unique(specs)
    return specs


def load_specs(env: Mapping[str, str], ssm=None) -> list[SourceSpec]:
    """Specs from ``LIST_SOURCES``, or from the SSM parameter named by ``LIST_SOURCES_PARAMETER``."""
    if env.get("LIST_SOURCES"):
        return parse_specs(env["LIST_SOURCES"])
    parameter = env.get("LIST_SOURCES_PARAMETER")
    if not parameter:
        return []
    if ssm is None:
        raise ConfigError("LIST_SOURCES_PARAMETER is set but no SSM client was given")
    value = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    return parse_specs(value)


def make_source(spec: SourceSpec, clients, default_bucket: str | None = None) -> ListSource:
    """The source a spec describes. `clients` offers ``s3`` and ``secretsmanager`` (see `hashcheck.aws.Clients`)."""
    # Imported here so that each source module may use the helpers of this package at import time.
    if spec.type == "https":
        from hashcheck.lists.sources.https import HttpsSource

        return HttpsSource.from_spec(spec, clients)
    if spec.type == "s3":
        from hashcheck.lists.sources.s3 import S3Source

        return S3Source.from_spec(spec, clients, default_bucket)
    raise ConfigError(f"source {spec.name}: unknown type")


def _spec(entry: object, number: int) -> SourceSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"list source {number} is not an object")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"list source {number}: name must be 1-64 letters, digits, '.', '_' or '-'")
    kind = entry.get("type")
    allowed = {"https": HTTPS_KEYS, "s3": S3_KEYS}.get(kind) if isinstance(kind, str) else None
    if kind is None or allowed is None:
        raise ConfigError(f"source {name}: type must be 'https' or 's3'")
    unknown = sorted(set(entry) - COMMON_KEYS - allowed)
    if unknown:
        raise ConfigError(f"source {name}: unknown keys {', '.join(unknown)}")
    list_id = entry.get("list_id")
    if not isinstance(list_id, str) or not list_id.strip():
        raise ConfigError(f"source {name}: list_id is required, a non-empty string (the list it may change)")
    share = entry.get("max_bad_share", DEFAULT_MAX_BAD_SHARE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise ConfigError(f"source {name}: max_bad_share must be a number from 0 to 1")
    caps = {cap: entry.get(cap, default) for cap, default in CAPS.items()}
    for cap, value in caps.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"source {name}: {cap} must be a whole number, 0 or more")
    shadow = entry.get("shadow_days", 0)
    if isinstance(shadow, bool) or not isinstance(shadow, int) or not 0 <= shadow <= 90:
        raise ConfigError(f"source {name}: shadow_days must be a whole number from 0 to 90")
    options = {k: v for k, v in entry.items() if k not in COMMON_KEYS}
    return SourceSpec(name, kind, list_id.strip(), float(share), options, caps, shadow)


def _check_unique(specs: list[SourceSpec]) -> None:
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError("source names must be unique (each names a checkpoint)")
    # An s3 file is a full list: what it no longer carries is withdrawn, so its source must own the list.
    for spec in specs:
        if spec.type != "s3":
            continue
        if sum(s.list_id == spec.list_id for s in specs) > 1:
            raise ConfigError(f"source {spec.name}: its list_id must belong to it alone")


HTTPS_KEYS = frozenset({"url", "format", "auth_secret", "auth_header", "timeout", "retries", "deadline"})
S3_KEYS = frozenset({"bucket", "key", "max_removed_share"})


# --- helpers the sources share ----------------------------------------------------------------------


class _DigestingReader(io.RawIOBase):
    """A raw byte stream over a ``read(n)`` callable that feeds every byte it passes to a digest."""

    def __init__(self, read: Callable[[int], bytes], digest):
        self._read = read
        self.digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._read(len(buffer))
        if not data:
            return 0
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


# Characters in one line of a list: a row is ~200, a vPDQ signal of an hour ~270,000. A longer line is
# no row: the source is refused rather than read into memory without end.
MAX_LINE = 512 * 1024


class _BoundedLines:
    """A text stream's lines, none longer than `limit` characters (what ``listformat.read`` takes)."""

    def __init__(self, text: io.TextIOBase, limit: int):
        self._text, self._limit = text, limit

    def readline(self) -> str:
        line = self._text.readline(self._limit + 1)
        if len(line) > self._limit:
            raise SourceError(f"a line longer than {self._limit} characters")
        return line

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def read(self) -> str:
        return self._text.read()


class DigestedText:
    """Text lines of a byte stream (UTF-8, a BOM tolerated), hashing the bytes with SHA-256 on the way.

    ``text`` is what ``listformat.read`` takes (lines of at most `max_line` characters); once it is
    exhausted, ``hexdigest()`` covers the body."""

    def __init__(self, read: Callable[[int], bytes], max_line: int = MAX_LINE):
        self._raw = _DigestingReader(read, hashlib.sha256())
        wrapper = io.TextIOWrapper(io.BufferedReader(self._raw, 1 << 16), encoding="utf-8-sig", newline="")
        self.text = _BoundedLines(wrapper, max_line)

    def hexdigest(self) -> str:
        self.text.read()  # whatever the parser left unread still counts towards the checksum
        return self._raw.digest.hexdigest()
