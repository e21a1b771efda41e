"""The one way hashcheck puts an event on EventBridge (`HashCheck Match`, `HashCheck Case Confirmed`,
`HashCheck Case Released`; schemas in docs/events.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

SOURCE = "hashcheck"


class EventRefused(RuntimeError):
    """EventBridge did not take the event; the caller's retry publishes it again."""


class EventPublisher:
    def __init__(self, client: EventBridgeClient, bus_name: str = "default", source: str = SOURCE):
        self.client = client
        self.bus_name = bus_name
        self.source = source

    def put(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        entry = {
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, ensure_ascii=False),
            "EventBusName": self.bus_name,
        }
        response = self.client.put_events(Entries=[entry])  # type: ignore[list-item]
        if response.get("FailedEntryCount"):
            failure = response["Entries"][0]
            reason = f"{failure.get('ErrorCode')} {failure.get('ErrorMessage')}"
            raise EventRefused(f"EventBridge refused the {detail_type} event: {reason}")
