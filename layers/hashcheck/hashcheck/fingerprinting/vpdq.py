"""vPDQ: a video as the PDQ hashes of frames sampled by time, in the form lists exchange them.

A feature is one sampled frame: its PDQ hash (hex), PDQ quality and timestamp in seconds. The signal
string is python-threatexchange's (`VpdqCompactFeature`, what HMA and ThreatExchange export): a JSON
array of ``"pdq_hex,quality,timestamp"``, the timestamp written with 3 significant digits (Python's
``f"{t:.3}"``: 1.9353 -> "1.94", 123.4 -> "1.23e+02"), so a signal we write reads back there unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hashcheck.algorithms import ALGORITHMS

# A listed video's signal is kept whole in one ReferenceTable item (at most 400 KB): ~4,000 frames, over an
# hour at one frame a second. A longer one is refused by name; its exact hashes still list it.
MAX_SIGNAL = 300_000


@dataclass(frozen=True)
class Feature:
    pdq: str  # 64 hex digits
    quality: int  # PDQ's own quality, 0-100
    timestamp: float  # seconds from the start of the video
    # more hashes of an upload's frame, searched like its own (mirrored, inside letterbox bars); never
    # part of the signal: a listed video's frames are what the list says
    variants: tuple[str, ...] = ()


def to_signal(features: list[Feature]) -> str:
    return json.dumps([f"{f.pdq},{f.quality},{f.timestamp:.3}" for f in features])


def normalized(text: str) -> str:
    """A list row's signal as we write it (so a tombstone finds the row it withdraws); ValueError if it is
    malformed or has no frames."""
    features = from_signal(text)
    if not features:
        raise ValueError("vpdq signal has no frames")
    signal = to_signal(features)
    if len(signal) > MAX_SIGNAL:
        raise ValueError(f"vpdq signal longer than {MAX_SIGNAL} characters")
    return signal


def time_range(start: float, end: float) -> str:
    """A span of a video as a member path names it: ``t=12.0-15.0s``."""
    return f"t={start:.1f}-{end:.1f}s"


def from_signal(text: str) -> list[Feature]:
    """The features of a signal string; ValueError saying what is malformed (never the values)."""
    try:
        items = json.loads(text or "[]")
    except json.JSONDecodeError:
        raise ValueError("vpdq signal is not a JSON array") from None
    if not isinstance(items, list):
        raise ValueError("vpdq signal is not a JSON array")
    return [_feature(item, number) for number, item in enumerate(items, 1)]


def _feature(item: object, number: int) -> Feature:
    parts = item.split(",") if isinstance(item, str) else []
    if len(parts) != 3:
        raise ValueError(f"vpdq frame {number} is not 'pdq_hex,quality,timestamp'")
    pdq, quality, timestamp = parts
    try:
        return Feature(ALGORITHMS["pdq"].validate(pdq), int(quality), float(timestamp))
    except ValueError:
        raise ValueError(f"vpdq frame {number}: malformed hash, quality or timestamp") from None
