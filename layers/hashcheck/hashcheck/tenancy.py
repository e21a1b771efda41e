"""Whose an object is: the hoster's customer (the tenant), by a rule the hoster configures.

A hoster scans its customers' data, so every action is also something done to a customer: the tenant
is recorded on the object's fingerprint record and on its case, counted in the figures, and told what
happened and how to appeal (`hashcheck.response.notices`). Rules (``TenantRule`` parameter):

- ``bucket``: the bucket is the tenant (one bucket per customer);
- ``prefix:<pattern>``: a key prefix with ``{tenant}`` in it, e.g. ``prefix:customers/{tenant}/``;
- ``tag:<key>``: the value of that tag on the bucket (read once per bucket and warm function);
- ``none``: no tenancy.

An object the rule does not place (a key outside the pattern, a bucket without the tag) has no tenant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from hashcheck.aws import error_code
from hashcheck.objects import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class TenantRule:
    kind: str = "bucket"  # bucket | prefix | tag | none
    pattern: re.Pattern[str] | None = None  # prefix: the key's start, the tenant captured
    tag: str | None = None  # tag: the bucket tag's key

    @classmethod
    def parse(cls, text: str) -> TenantRule:
        text = (text or "none").strip()
        kind, _, arg = text.partition(":")
        if kind in ("bucket", "none") and not arg:
            return cls(kind)
        if kind == "prefix" and arg.count("{tenant}") == 1:
            before, after = (re.escape(part) for part in arg.split("{tenant}"))
            return cls("prefix", pattern=re.compile(f"{before}([^/]+){after}"))
        if kind == "tag" and arg:
            return cls("tag", tag=arg)
        raise ValueError("tenant rule must be bucket, none, prefix:<pattern with one {tenant}> or tag:<key>")


class Tenants:
    """The tenant of an object by the rule; bucket tags are read once per bucket."""

    def __init__(self, rule: TenantRule, s3: S3Client | None = None):
        self.rule, self.s3 = rule, s3
        self._bucket_tags: dict[str, dict[str, str]] = {}

    def of(self, obj: ObjectRef) -> str | None:
        if self.rule.kind == "bucket":
            return obj.bucket
        if self.rule.kind == "prefix" and self.rule.pattern is not None:
            found = self.rule.pattern.match(obj.key)
            return found.group(1) if found else None
        if self.rule.kind == "tag" and self.rule.tag:
            return self._tags(obj.bucket).get(self.rule.tag)
        return None

    def _tags(self, bucket: str) -> dict[str, str]:
        if bucket not in self._bucket_tags and self.s3 is not None:
            try:
                tag_set = self.s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
            except ClientError as exc:
                if error_code(exc) != "NoSuchTagSet":
                    raise  # a failed read must not quietly become "no tenant"
                tag_set = []
            self._bucket_tags[bucket] = {t["Key"]: t["Value"] for t in tag_set}
        return self._bucket_tags.get(bucket, {})
