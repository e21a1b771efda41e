"""hashcheck: fingerprint stored objects and match them against hash lists of known abuse images."""

__version__ = "0.1.0"
