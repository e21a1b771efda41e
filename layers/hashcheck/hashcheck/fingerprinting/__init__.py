"""Bytes in, fingerprint out: exact hashes of every object, perceptual hashes (PDQ, pHash) of images.

`fingerprint` reads an object once; `imaging` decodes untrusted bytes within limits; `pdq` and `phash`
are the two perceptual hashes, in numpy, agreeing with their reference implementations.
"""

from hashcheck.fingerprinting.fingerprint import Fingerprint, NearHash, fingerprint
from hashcheck.fingerprinting.imaging import DEFAULT_LIMITS, ImageRejected, Limits

__all__ = ["DEFAULT_LIMITS", "Fingerprint", "ImageRejected", "Limits", "NearHash", "fingerprint"]
