"""Telling the tenant's ATS of every removal, so that it deletes its own copy: a signed outbound webhook.

For each `RecordPurged` the tenant's policy names a `notification_url` (none: nothing to do, the bus event is
all). The body holds the event's ids only; it is signed with the Standard Webhooks scheme (`webhook-id` = the
event id, so the ATS deduplicates retries; `webhook-timestamp`; `webhook-signature` = `v1,<base64 HMAC-SHA256>`)
under the current version of the tenant secret `webhook/outbound`. A 2xx is delivered; anything else raises, so
the queue retries and its DLQ keeps what keeps failing (the DLQ message is the event: ids only).
"""

from __future__ import annotations

import json
from typing import Protocol

from functions.retention.models.entities import RetentionPolicy
from functions.retention.models.events import RecordPurged
from shared import clock
from shared.errors import DependencyFailure
from shared.webhooks import sign_standard_webhook

OUTBOUND_SECRET_KIND = "webhook/outbound"
MIN_SECRET_BYTES = 24  # the Standard Webhooks minimum


class PolicyReader(Protocol):
    def policy(self, tenant: str) -> RetentionPolicy | None: ...


class SigningKeys(Protocol):
    """shared.secrets.TenantSecrets"""

    def current(self, tenant: str, kind: str, *, min_bytes: int = 0) -> tuple[str, bytes]: ...


class HttpSender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the status code (raising for a connection failure)."""
        ...


class DeliveryFailed(DependencyFailure):
    """The tenant's endpoint did not accept the notification: the message returns to the queue."""


def notification_body(event: RecordPurged) -> bytes:
    """The webhook body: the event's ids and codes only."""
    return json.dumps(
        {
            "type": "retention.record_purged",
            "event_id": event.event_id,
            "tenant": event.tenant,
            "occurred_at": clock.isoformat(event.occurred_at),
            "record_kind": event.record_kind.value,
            "record_id": event.record_id,
            "vacancy_id": event.vacancy_id,
            "person_id": event.person_id,
            "reason": event.reason.value,
            "request_id": event.request_id,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


def notify_removal(event: RecordPurged, *, policies: PolicyReader, keys: SigningKeys, sender: HttpSender) -> bool:
    """Deliver the notification of one removal; False when the tenant has no endpoint. DeliveryFailed if the
    endpoint answers anything but 2xx."""
    policy = policies.policy(event.tenant)
    if policy is None or not policy.notification_url:
        return False
    _, secret = keys.current(event.tenant, OUTBOUND_SECRET_KIND, min_bytes=MIN_SECRET_BYTES)
    body = notification_body(event)
    timestamp = int(clock.now().timestamp())
    headers = {
        "content-type": "application/json",
        "webhook-id": event.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhook(secret, event.event_id, timestamp, body),
    }
    status = sender.post(policy.notification_url, body, headers)
    if not 200 <= status < 300:
        raise DeliveryFailed(f"the tenant's endpoint answered {status}")
    return True
