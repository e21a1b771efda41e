"""Notices to the tenant: what was done to a customer's file, and how to appeal.

One EventBridge event (`HashCheck Tenant Notice`, docs/events.md) per action on an object that has a
tenant (`hashcheck.tenancy`): quarantined, held for review, or blocked because it could not be checked.
The hoster routes it to the customer (e-mail, dashboard, ticket). It says what happened in plain words
and how to appeal; it never names the list, the reference or a hash, and never the uploader: the
notice goes to the customer, who may not be the uploader. An appeal comes back through the hoster and
is recorded on the case (`hashcheck cases appeal`), where a reviewer releases or confirms as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hashcheck.objects import ObjectRef
from hashcheck.response.events import EventPublisher
from hashcheck.status import ObjectStatus

TENANT_NOTICE_EVENT = "HashCheck Tenant Notice"
SCHEMA_VERSION = "1"
DEFAULT_APPEAL = (
    "If you believe this is a mistake, reply to this notice quoting its notice_id: a person reviews "
    "every appeal, and a file found to be a false positive is restored."
)

WHAT_HAPPENED = {
    ObjectStatus.QUARANTINED: (
        "The file was removed from your storage: it matched a list of known illegal material kept by "
        "hotlines and the police. A copy is preserved as the law requires."
    ),
    ObjectStatus.REVIEW: (
        "The file is blocked while a person checks it: an automatic check found a possible match with a "
        "list of known illegal material."
    ),
    ObjectStatus.UNSCANNABLE: "The file is blocked: it could not be opened or decoded to be checked.",
}


class Notices:
    def __init__(self, events: EventPublisher | None, appeal: str = DEFAULT_APPEAL):
        self.events, self.appeal = events, appeal

    def tell(self, obj: ObjectRef, tenant: str | None, status: ObjectStatus, case_id: str | None = None) -> None:
        """Announce the action to the tenant's channel (nothing without a tenant, or for other statuses)."""
        if tenant is None or self.events is None or status not in WHAT_HAPPENED:
            return
        detail = {
            "schema_version": SCHEMA_VERSION,
            "notice_id": f"{obj.identity()}:{status}",  # the same action noticed twice is one notice
            "tenant": tenant,
            "bucket": obj.bucket,
            "key": obj.key,
            "version_id": obj.version_id,
            "action": str(status),
            "what_happened": WHAT_HAPPENED[status],
            "appeal": self.appeal,
            "case_id": case_id,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.events.put(TENANT_NOTICE_EVENT, detail)
