"""Reference lists: the hashcheck list v1 format (`listformat`), building a list from images (`build`),
where lists come from (`sources`), and the deltas a sync hands to the re-match (`deltas`)."""

from hashcheck.lists.build import references_for
from hashcheck.lists.deltas import DeltaWriter, delta_key, read_delta, version_of, write_delta
from hashcheck.lists.listformat import ListFormatError, Reference, Rejected

__all__ = [
    "DeltaWriter",
    "ListFormatError",
    "Reference",
    "Rejected",
    "delta_key",
    "read_delta",
    "references_for",
    "version_of",
    "write_delta",
]
