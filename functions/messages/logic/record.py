"""The ATS records messages it sent or received (an integration client with `ats/messages.write`, or a recruiter):
validated, authorised, queued durably, then answered 202 with the internal id of each message. The ingest
consumer applies them like any provider's events (functions/messages/handlers/ingest.py), so a message recorded
twice, or recorded and then reported by its provider, is one message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from functions.messages.logic.lifecycle import message_id_of
from functions.messages.models.message import MalformedPayload, ProviderEvent
from functions.messages.models.record_io import RecordBatch, RecordedMessage
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest
from shared.permissions import Permission, authorize
from shared.webhooks import WebhookDelivery

SOURCE_NAME = "ats"


class DeliveryQueue(Protocol):
    def put(self, delivery: WebhookDelivery) -> None: ...


def _events(tenant: str, messages: Sequence[RecordedMessage], received_at: datetime) -> list[ProviderEvent]:
    from functions.messages.logic.providers.ats import parse_recorded

    try:
        return [parse_recorded(tenant, m, received_at=received_at) for m in messages]
    except MalformedPayload as refused:
        raise BadRequest(str(refused)) from None


def record_messages(
    actor: Actor,
    messages: Sequence[RecordedMessage],
    *,
    queue: DeliveryQueue,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> list[str]:
    """Queue the messages for the actor's tenant; their internal ids, in order."""
    authorize(
        actor,
        Permission.RECORD_MESSAGES,
        resource="/v1/messages",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    now = clock.now()
    events = _events(actor.tenant, messages, now)  # a message from the future is refused before anything is queued
    body = RecordBatch(messages=list(messages)).model_dump_json(exclude_none=True).encode()
    queue.put(
        WebhookDelivery(
            provider=SOURCE_NAME,
            tenant=actor.tenant,
            event_id=hashlib.sha256(body).hexdigest(),
            signed_at=now,
            received_at=now,
            request_id=request_id,
            content_type="application/json",
            body=body,
        )
    )
    return [message_id_of(actor.tenant, e) for e in events]


def events_of_record(tenant: str, body: bytes, *, received_at: datetime) -> list[ProviderEvent]:
    """The events of a queued record (the consumer side): the batch as it was validated before it was queued."""
    try:
        batch = RecordBatch.model_validate(json.loads(body))
    except ValueError as exc:
        raise MalformedPayload(f"a queued record does not validate ({type(exc).__name__})") from None
    return _events_or_malformed(tenant, batch.messages, received_at)


def _events_or_malformed(
    tenant: str, messages: Sequence[RecordedMessage], received_at: datetime
) -> list[ProviderEvent]:
    from functions.messages.logic.providers.ats import parse_recorded

    # The clock-skew check ran when the record was accepted; a message applied later is never "from the future".
    return [parse_recorded(tenant, m, received_at=max(received_at, m.occurred_at)) for m in messages]
