"""The DynamoDB tables, one module each: it owns the table's keys, its item codec and every call on it.

Jobs receive these objects (`Tables` bundles the three), never a client and a table name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hashcheck.tables.case_table import CaseTable
from hashcheck.tables.dynamo import RetriesExhausted, Retry
from hashcheck.tables.fingerprint_table import FingerprintTable
from hashcheck.tables.reference_table import ReferenceTable, Version, VersionConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "CaseTable",
    "FingerprintTable",
    "ReferenceTable",
    "RetriesExhausted",
    "Retry",
    "Tables",
    "Version",
    "VersionConflict",
]


@dataclass(frozen=True)
class Tables:
    references: ReferenceTable
    fingerprints: FingerprintTable
    cases: CaseTable

    @classmethod
    def named(cls, client: DynamoDBClient, references: str, fingerprints: str, cases: str) -> Tables:
        return cls(ReferenceTable(client, references), FingerprintTable(client, fingerprints), CaseTable(client, cases))
