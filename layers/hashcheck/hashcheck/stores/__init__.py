"""Where references live. The matcher talks to any of them through `ReferenceStore`:
`memory` (a list file, for the CLI and tests) and, in Lambda, DynamoDB plus the snapshot index."""

from hashcheck.stores.base import NearHit, ReferenceStore
from hashcheck.stores.memory import MemoryStore

__all__ = ["MemoryStore", "NearHit", "ReferenceStore"]
