"""The ingest consumer: every queue of the messages domain (one per provider webhook, the ATS's API, SES events
from EventBridge, captured SMTP from S3) delivers here in batches, and the batch is applied as a whole
(functions/messages/logic/ingest.py): one read of every message it names, one write per changed message.

A record whose events could not all be written (DynamoDB throttled past botocore's retries) is reported as a
batch item failure: SQS delivers it again after its visibility timeout and, after three receives, moves it to
the queue's alarmed DLQ. Nothing is acknowledged before it is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from functions.messages.dal.messages import DynamoMessageStore
from functions.messages.dal.policy import DynamoPolicyStore
from functions.messages.logic.ingest import Incoming, IngestReport, ingest
from functions.messages.logic.lifecycle import message_id_of
from functions.messages.models.message import MalformedPayload
from functions.messages.models.policy import MessagePolicy
from shared import clock
from shared.observability import logger, metrics, tracer
from shared.settings import BaseSettings, load_settings

SAMPLE_EVENT = "sqs_message_deliveries.json"
STORED_METRIC = "MessageEventsStored"
FAILED_METRIC = "MessageEventsFailed"
LAG_METRIC = "MessageIngestLag"
_REGISTERED: set[str] = set()  # tenants put in the tiering registry by this execution environment


class IngestSettings(BaseSettings):
    MESSAGES_TABLE_NAME: str = Field(min_length=3)
    EVENT_BUS_NAME: str = Field(min_length=1)
    DATA_KEY_ARN: str = Field(min_length=1)
    TENANT_SECRET_PREFIX: str = Field(min_length=1)


class _Sealer:
    def __init__(self, key_arn: str) -> None:
        from shared.crypto import FieldCipher

        self._cipher = FieldCipher(key_arn)

    def seal(self, tenant: str, message_id: str, field_name: str, text: str) -> str:
        return self._cipher.encrypt(tenant, "message", text, record=message_id, field=field_name)


class _Indexer:
    def __init__(self, secret_prefix: str) -> None:
        from functions.messages.logic.blind_index import BlindIndex
        from shared.crypto import TenantKeys
        from shared.secrets import TenantSecrets

        self._index = BlindIndex(TenantKeys(TenantSecrets(secret_prefix)))

    def terms(self, tenant: str, text: str) -> list[str]:
        return self._index.terms(tenant, text)


class _Lazy:
    """Built on first use: a batch of status events never seals content or digests a term."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build, self._built = build, None

    def __getattr__(self, name: str) -> Any:
        if self._built is None:
            self._built = self._build()
        return getattr(self._built, name)


def _incoming(body: str) -> list[Incoming]:
    """The provider events in one SQS record body, each with the tenant its receiver verified."""
    from functions.messages.logic.sources import events_of

    doc = json.loads(body)
    if "body_base64" in doc:  # a verified webhook delivery or an API record (shared.webhooks.WebhookDelivery)
        from shared.webhooks import WebhookDelivery

        delivery = WebhookDelivery.from_json(body)
        if delivery.provider == "ats":
            from functions.messages.logic.record import events_of_record

            events = events_of_record(delivery.tenant, delivery.body, received_at=delivery.received_at)
        else:
            events = events_of(delivery.provider, delivery.body, delivery.content_type, delivery.received_at)
        return [Incoming(delivery.tenant, e) for e in events]
    if doc.get("source") == "aws.ses":  # SES event publishing to EventBridge, routed to our queue
        from functions.messages.logic.sources import tenant_of_ses_event

        tenant = tenant_of_ses_event(doc)
        events = events_of("ses", body.encode(), "application/json", clock.now())
        return [Incoming(tenant, e) for e in events]
    if doc.get("source") == "aws.s3":  # the captured-SMTP bucket's Object Created events, through EventBridge
        from functions.messages.logic.providers.mime import parse_s3_object_created

        return _captured(parse_s3_object_created(doc))
    if isinstance(doc.get("Records"), list):  # S3 event notifications of captured SMTP, for a relay using them
        from functions.messages.logic.providers.mime import parse_s3_notification

        return _captured(parse_s3_notification(doc))
    raise MalformedPayload("not a delivery, an SES event or an S3 event")


def _captured(objects: list[tuple[str, str]]) -> list[Incoming]:
    from functions.messages.dal.capture import CapturedMail
    from functions.messages.logic.providers.mime import parse_mime

    mail = CapturedMail()
    out = []
    for bucket, key in objects:
        tenant = CapturedMail.tenant_of(key)
        if tenant is None:
            logger.warning("captured object outside inbound/<tenant>/ skipped", extra={"key": key[:200]})
            continue
        out.append(Incoming(tenant, parse_mime(mail.read(bucket, key), received_at=clock.now())))
    return out


def _lag_seconds(record: dict[str, Any]) -> float | None:
    sent = (record.get("attributes") or {}).get("SentTimestamp")
    if not sent:
        return None
    return max(0.0, clock.now().timestamp() - int(sent) / 1000)


def handle(
    event: dict[str, Any], *, store: Any = None, policies: Any = None, publisher: Any = None, holds: Any = None
) -> dict[str, Any]:
    """Apply one SQS batch; the batch item failures for SQS (`ReportBatchItemFailures`)."""
    settings = load_settings(IngestSettings)
    records: list[dict[str, Any]] = event.get("Records") or []
    by_record: dict[str, list[Incoming]] = {}
    failures: list[str] = []
    received_here = 0  # sources with no receiver of ours (SES on EventBridge, captured SMTP), on a first receive
    for record in records:
        try:
            by_record[record["messageId"]] = _incoming(record["body"])
        except (MalformedPayload, ValueError, KeyError) as refused:
            # Verified before it was queued, so this is a bug or a format change: retried, then the DLQ.
            logger.error("queued delivery not understood", extra={"reason": str(refused)[:300]})
            failures.append(record["messageId"])
            continue
        first = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1") == "1"
        if first and '"body_base64"' not in record["body"]:
            received_here += len(by_record[record["messageId"]])
    if store is None:
        store = DynamoMessageStore(settings.MESSAGES_TABLE_NAME)
    if policies is None:
        policies = DynamoPolicyStore(settings.MESSAGES_TABLE_NAME)
    if publisher is None:
        from functions.messages.models.events import SOURCE
        from shared.events import bus_publisher

        publisher = bus_publisher(settings.EVENT_BUS_NAME, SOURCE)
    if holds is None:
        from functions.messages.dal.holds import DynamoHoldStore
        from functions.messages.logic.holds import ActiveHolds

        holds = ActiveHolds(DynamoHoldStore(settings.MESSAGES_TABLE_NAME))  # one per batch: read once per tenant
    cache: dict[str, MessagePolicy] = {}

    def policy_of(tenant: str) -> MessagePolicy:
        if tenant not in cache:
            cache[tenant] = policies.get(tenant)
            if tenant not in _REGISTERED and hasattr(policies, "register"):
                # The daily tiering goes through the registered tenants: one that never set a policy is tiered and
                # deleted by the defaults. One idempotent PutItem per tenant per execution environment.
                policies.register(tenant)
                _REGISTERED.add(tenant)
        return cache[tenant]

    incoming = [item for items in by_record.values() for item in items]
    report = IngestReport()
    if incoming:
        report = ingest(
            incoming,
            store=store,
            policy_of=policy_of,
            sealer=_Lazy(lambda: _Sealer(settings.DATA_KEY_ARN)),
            indexer=_Lazy(lambda: _Indexer(settings.TENANT_SECRET_PREFIX)),
            publisher=publisher,
            holds_for=holds.holds_for,
        )
    failed_events = 0
    for message_id, items in by_record.items():
        hit = sum(1 for i in items if (i.tenant, message_id_of(i.tenant, i.event)) in report.failed)
        if hit:
            failures.append(message_id)
            failed_events += len(items)
    if received_here:
        metrics.add_metric(name="MessageEventsReceived", unit="Count", value=received_here)
    metrics.add_metric(name=STORED_METRIC, unit="Count", value=len(incoming) - failed_events)
    if failed_events:
        metrics.add_metric(name=FAILED_METRIC, unit="Count", value=failed_events)
    lags = [lag for r in records if (lag := _lag_seconds(r)) is not None]
    if lags:
        metrics.add_metric(name=LAG_METRIC, unit="Seconds", value=max(lags))
    logger.info(
        "message events applied",
        extra={
            "records": len(records),
            "events": len(incoming),
            "applied": report.applied,
            "duplicates": report.duplicates,
            "written": report.messages_written,
            "failed_records": len(failures),
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event)
