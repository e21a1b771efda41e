"""Where reference lists come from. Every source answers one question: what changed since the
checkpoint I gave you last time? The sync applies the rows, and only after they are committed does
it store the new checkpoint, so a crash anywhere repeats a delta instead of losing one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from hashcheck.lists.listformat import Reference, Rejected

Checkpoint = Mapping[str, str]  # opaque to the sync: a cursor, an ETag, a timestamp...


@dataclass
class Delta:
    """The rows since a checkpoint, streamed, and the checkpoint to store once they are applied."""

    rows: Iterator[Reference | Rejected]
    checkpoint: Checkpoint
    unchanged: bool = False  # the source says nothing changed (304, same ETag): rows is empty
    details: dict = field(default_factory=dict)  # counts and facts worth logging (never row contents)


class ListSource(Protocol):
    name: str  # a stable id of this configured source; its checkpoint is stored under it

    def fetch(self, checkpoint: Checkpoint | None) -> Delta:
        """The delta since `checkpoint` (None: everything). Raises on a transport or format failure."""
