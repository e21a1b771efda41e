"""What happens to a match: quarantine (`quarantine`, with the one verified copy in `copy`), the case
and its alerts (`cases`, `events`), a person's review (`review`) and the hotline report (`report`)."""

from hashcheck.response.cases import Cases, alert_detail
from hashcheck.response.events import EventPublisher, EventRefused
from hashcheck.response.quarantine import CopyNotVerified, Quarantine, QuarantineResult
from hashcheck.response.report import ReportConfig, Reporter
from hashcheck.response.review import Target, confirm_case, export_audit, list_cases, release_case, show_case

__all__ = [
    "Cases",
    "CopyNotVerified",
    "EventPublisher",
    "EventRefused",
    "Quarantine",
    "QuarantineResult",
    "ReportConfig",
    "Reporter",
    "Target",
    "alert_detail",
    "confirm_case",
    "export_audit",
    "list_cases",
    "release_case",
    "show_case",
]
