"""Where references live. The matcher talks to any of them through `ReferenceStore`:
`memory` (a list file, for the CLI and tests); in Lambda `dynamodb` (the ReferenceTable plus the
in-memory index from the S3 snapshot), `remote` (a hotline's lookup service that never hands out
its list), and `composite` to consult several at once."""

from hashcheck.matching.stores.base import NearHit, ReferenceStore
from hashcheck.matching.stores.composite import CompositeStore
from hashcheck.matching.stores.memory import MemoryStore

__all__ = ["CompositeStore", "MemoryStore", "NearHit", "ReferenceStore"]
