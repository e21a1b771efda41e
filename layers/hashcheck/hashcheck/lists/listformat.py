"""hashcheck list v1: reference hashes as JSON Lines, or CSV with the same columns.

    {"algorithm": "md5|sha1|sha256|pdq|phash|vpdq|<other>", "hash": "<lowercase hex>", "list": "<list id>",
     "id": "<reference id>", "category": "<optional>", "deleted": false}

A `vpdq` row's hash is a video's vPDQ signal as python-threatexchange writes it (a JSON array of
"pdq_hex,quality,timestamp"), so HMA and ThreatExchange exports load as they are.

A row with "deleted": true is a tombstone. Rows are read as a stream (a feed may hold millions) and
every malformed row comes back as a `Rejected` with its line number and a reason. Reasons never
quote the row: list contents are sensitive and rejections end up in logs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Protocol, TextIO

from hashcheck import algorithms
from hashcheck.fingerprinting import vpdq

COLUMNS = ("algorithm", "hash", "list", "id", "category", "deleted")
MAX_TEXT = 256  # list ids, reference ids, categories


@dataclass(frozen=True)
class Reference:
    algorithm: str
    hash: str
    list: str
    id: str
    category: str | None = None
    deleted: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.algorithm, self.hash


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


class ListFormatError(ValueError):
    """The list as a whole cannot be read (not JSON Lines or CSV with the v1 columns)."""


class Lines(Protocol):
    """What `read` takes: a text file, or any stream of lines."""

    def readline(self) -> str: ...

    def __iter__(self) -> Iterator[str]: ...


def read(stream: Lines) -> Iterator[Reference | Rejected]:
    """Rows of a list in order, JSON Lines or CSV, told apart by the first non-blank character."""
    first, skipped = stream.readline(), 0
    while first and not first.strip():
        first, skipped = stream.readline(), skipped + 1
    if not first:
        return
    if first.lstrip().startswith("{"):
        yield from _read_jsonl(first, stream, skipped)
    else:
        yield from _read_csv(first, stream, skipped)


def read_path(path: str) -> Iterator[Reference | Rejected]:
    with open(path, encoding="utf-8", newline="") as stream:
        yield from read(stream)


def parse_row(row: object) -> Reference:
    """A validated Reference from a decoded row, or ValueError saying what is wrong (never the values)."""
    if not isinstance(row, dict):
        raise ValueError("row is not an object")
    missing = [name for name in ("algorithm", "hash", "list", "id") if row.get(name) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    algorithm = row["algorithm"].strip().lower() if isinstance(row["algorithm"], str) else row["algorithm"]
    if algorithm == "vpdq":  # a video's signal: a JSON array of frames, not hex
        hash_value = vpdq.normalized(row["hash"]) if isinstance(row["hash"], str) else ""
        if not hash_value:
            raise ValueError("vpdq hash must be a signal string")
    else:
        hash_value = algorithms.validate(algorithm, row["hash"])
    return Reference(
        algorithm=algorithm,
        hash=hash_value,
        list=_text(row, "list"),
        id=_text(row, "id"),
        category=_text(row, "category") if row.get("category") not in (None, "") else None,
        deleted=_flag(row.get("deleted", False)),
    )


def _text(row: dict, name: str) -> str:
    value = row[name]
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise ValueError(f"{name} must be a non-empty string of at most {MAX_TEXT} characters")
    return value.strip()


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in ("", "false", "0", "no"):
        return False
    if text in ("true", "1", "yes"):
        return True
    raise ValueError("deleted must be true or false")


def _read_jsonl(first: str, rest: Iterable[str], skipped: int) -> Iterator[Reference | Rejected]:
    for number, line in enumerate(_chain(first, rest), start=skipped + 1):
        if not line.strip():
            continue
        try:
            yield parse_row(json.loads(line))
        except json.JSONDecodeError:
            yield Rejected(number, "not valid JSON")
        except ValueError as exc:
            yield Rejected(number, str(exc))


def _read_csv(first: str, rest: Iterable[str], skipped: int) -> Iterator[Reference | Rejected]:
    header = [name.strip().lower() for name in next(csv.reader([first]))]
    unknown = [name for name in header if name not in COLUMNS]
    if "algorithm" not in header or "hash" not in header or unknown:
        raise ListFormatError(f"not a hashcheck list: JSON Lines, or CSV with the header {','.join(COLUMNS)}")
    reader = csv.reader(rest)
    for values in reader:
        number = skipped + 1 + reader.line_num  # the header is line skipped + 1
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            yield Rejected(number, f"expected {len(header)} columns, found {len(values)}")
            continue
        try:
            yield parse_row(dict(zip(header, values, strict=True)))
        except ValueError as exc:
            yield Rejected(number, str(exc))


def _chain(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


def to_json(reference: Reference) -> str:
    row = asdict(reference)
    if row["category"] is None:
        del row["category"]
    return json.dumps(row, separators=(", ", ": "))


def write(references: Iterable[Reference], stream: TextIO) -> int:
    count = 0
    for reference in references:
        stream.write(to_json(reference) + "\n")
        count += 1
    return count


def read_text(text: str) -> Iterator[Reference | Rejected]:
    return read(io.StringIO(text))
