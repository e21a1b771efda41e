"""hashcheck: fingerprint stored objects and match them against hash lists of known abuse images.

The package, from the bottom up (a subpackage imports only from those listed before it):

- `algorithms`, `status`, `objects`, `aws`: the hash-type registry, the one status vocabulary, the S3
  object reference with its status tag, and what every AWS caller shares;
- `fingerprinting`: bytes -> exact and perceptual hashes;
- `lists`: the list format, where lists come from, the deltas a sync hands on;
- `tables`: the three DynamoDB tables, one module each;
- `matching`: fingerprint + references -> verdict;
- `response`: quarantine, cases, alerts, review, hotline reports;
- `jobs`: what the Lambda functions run (scan, sync, re-match, backfill);
- `tools`: the command line, the demo and the moto sandbox; nothing else imports them.
"""

__version__ = "0.1.0"

__all__ = [
    "algorithms",
    "aws",
    "fingerprinting",
    "jobs",
    "lists",
    "matching",
    "objects",
    "response",
    "status",
    "tables",
    "tools",
]
