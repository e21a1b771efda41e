"""The hash algorithms hashcheck knows: one registry, and every list of algorithm names elsewhere is
derived from it (`EXACT`, `PERCEPTUAL`: the digests taken, the FingerprintTable's indexes, what a case and a
hotline report keep, what the stored index holds). A new exact hash that hashlib knows is an entry here
and its field in `Fingerprint`; a new perceptual hash also needs its computation in `fingerprinting/`.

Every hash travels as lowercase hex. Exact algorithms match by equality; perceptual ones by Hamming
distance up to a threshold. An algorithm that is not in the registry (e.g. ``photodna``) may still
appear in a reference list: it is stored, but not matched locally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEX = re.compile(r"^[0-9a-f]+$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")


@dataclass(frozen=True)
class Algorithm:
    name: str
    hex_length: int
    perceptual: bool = False
    threshold: int = 0  # largest Hamming distance that still counts as a near match
    min_quality: int = 0  # query hashes of lower quality are not used for near matching

    @property
    def bits(self) -> int:
        return self.hex_length * 4

    def validate(self, value: str) -> str:
        """The normalised (lowercase) hash, or ValueError saying what is wrong with it."""
        return validate_hex(value, self.hex_length, self.name)


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in (
        Algorithm("md5", 32),
        Algorithm("sha1", 40),
        Algorithm("sha256", 64),
        # PDQ thresholds from Meta's PDQ documentation: distance <= 31 of 256 bits, quality >= 50.
        Algorithm("pdq", 64, perceptual=True, threshold=31, min_quality=50),
        Algorithm("phash", 16, perceptual=True, threshold=8),
    )
}
EXACT = tuple(a.name for a in ALGORITHMS.values() if not a.perceptual)
PERCEPTUAL = tuple(a.name for a in ALGORITHMS.values() if a.perceptual)


def validate_hex(value: str, hex_length: int | None, name: str = "hash") -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a hex string")
    value = value.strip().lower()
    if not value or not _HEX.match(value):
        raise ValueError(f"{name} is not hex")
    if hex_length and len(value) != hex_length:
        raise ValueError(f"{name} must have {hex_length} hex digits, not {len(value)}")
    if len(value) % 2:
        raise ValueError(f"{name} has an odd number of hex digits")
    return value


# A hash of an algorithm we do not match locally (PhotoDNA: 144 bytes, 288 hex digits) is stored as it is,
# up to this length: a longer one is no hash any list carries, and as a table key (at most 2,048 bytes)
# it would make every run of its source fail.
MAX_OTHER_HEX = 1024


def validate(algorithm: str, value: str) -> str:
    """Normalise a (algorithm, hash) pair from a list; unknown algorithms need a sane name and hex of at
    most MAX_OTHER_HEX digits."""
    if not isinstance(algorithm, str) or not _NAME.match(algorithm):
        raise ValueError("algorithm name is missing or malformed")
    known = ALGORITHMS.get(algorithm)
    if known:
        return known.validate(value)
    value = validate_hex(value, None, algorithm)
    if len(value) > MAX_OTHER_HEX:
        raise ValueError(f"{algorithm} hash has {len(value)} hex digits, more than {MAX_OTHER_HEX}")
    return value


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes of equal length."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
