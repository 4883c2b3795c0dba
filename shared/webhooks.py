"""Signed webhooks: verify the provider's signature over the raw body, refuse replays, store, then answer 2xx.

A webhook route has no authorizer and lives under `/v1/webhooks/<provider>/{tenant}`. `receive` is the whole
pattern, in this order:

1. read the raw body (base64-decoded when API Gateway says `isBase64Encoded`) and the tenant in the path;
2. load the tenant's signing secret (tenant secret kind `webhook/<provider>`, every version still held) and
   verify the signature and the timestamp window BEFORE anything else. A forgery, an unknown tenant (no
   secret) and a malformed request all get the same 401: tenants cannot be probed. Each is counted in the
   metric `WebhookSignatureRejected` and audited (DENIED) under the `_gateway` pseudo-tenant, since no
   tenant's secret verified it; nothing else is stored;
3. deduplicate on the provider's event id (a conditional put with a TTL): a delivery already stored is
   answered 2xx again and not stored twice;
4. write the verified delivery to a durable sink (a queue) and only then answer 202.

The dedup marker is written before the sink and confirmed after it: a crash between the two leaves a
`pending` marker, and the provider's retry stores the delivery again (at least once, never lost).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared import clock
from shared.aws import LazyClient
from shared.errors import ConfigurationError, Unauthenticated
from shared.keys import GATEWAY_TENANT, SYSTEM_TENANTS, TENANT_PATTERN, tenant_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

    from shared.audit import AuditLog
    from shared.secrets import TenantSecrets

REJECTED_METRIC = "WebhookSignatureRejected"
_TENANT = re.compile(TENANT_PATTERN)
_PROVIDER = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9_:-]{1,200}$")  # no '.', no '#': it is signed as `id.timestamp.body`
_REFUSAL = "webhook signature not verified"


class WebhookRejected(Exception):
    """The request does not verify. `reason` is for the audit trail and logs, never for the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedWebhook:
    """What a verifier vouches for: the provider's event id and the time the provider signed it."""

    event_id: str
    signed_at: datetime


class WebhookVerifier(Protocol):
    """Checks one provider's signature over the raw body and headers (header names in lower case)."""

    provider: str

    def verify(
        self, *, body: bytes, headers: Mapping[str, str], secrets: Sequence[bytes], now: datetime
    ) -> VerifiedWebhook: ...


class StandardWebhooksVerifier:
    """The Standard Webhooks scheme (standardwebhooks.com, v1 symmetric): `webhook-signature` holds one or more
    space-separated `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`; the timestamp must
    be within `tolerance` of now, both ways. Secrets are the raw key bytes (the spec's `whsec_` value,
    base64-decoded); at least 24 bytes, as the spec requires."""

    MIN_SECRET_BYTES = 24

    def __init__(self, provider: str = "standard", *, tolerance: timedelta = timedelta(minutes=5)) -> None:
        self.provider = provider
        self._tolerance = tolerance

    def verify(
        self, *, body: bytes, headers: Mapping[str, str], secrets: Sequence[bytes], now: datetime
    ) -> VerifiedWebhook:
        event_id = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        if not event_id or not timestamp or not signatures:
            raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature")
        if not _EVENT_ID.match(event_id):
            raise WebhookRejected("malformed webhook-id")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise WebhookRejected("malformed webhook-timestamp")
        signed_at = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
        if signed_at < now - self._tolerance:
            raise WebhookRejected("webhook-timestamp too old")
        if signed_at > now + self._tolerance:
            raise WebhookRejected("webhook-timestamp in the future")
        offered: list[bytes] = []
        for item in signatures.split(" "):
            scheme, _, value = item.partition(",")
            if scheme != "v1" or not value:
                continue  # other schemes (v1a: asymmetric) are not ours to check
            try:
                offered.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
        signed = f"{event_id}.{timestamp}.".encode() + body
        matched = False
        for secret in secrets:
            if len(secret) < self.MIN_SECRET_BYTES:
                continue
            expected = hmac.new(secret, signed, hashlib.sha256).digest()
            for candidate in offered:
                # Every comparison runs (no early exit), each in constant time.
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise WebhookRejected("no signature matches a held secret")
        return VerifiedWebhook(event_id=event_id, signed_at=signed_at)


def sign_standard_webhook(secret: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    """A `webhook-signature` value for `body` (tests, local clients, outbound webhooks)."""
    digest = hmac.new(secret, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Claim(StrEnum):
    NEW = "new"  # first sight of this event id
    PENDING = "pending"  # seen, but its storing was never confirmed: store it again
    DONE = "done"  # already stored: answer 2xx and store nothing


class ReplayGuard(Protocol):
    """Remembers the provider event ids of a tenant for a while."""

    def claim(self, tenant: str, provider: str, event_id: str, *, expires_at: datetime) -> Claim: ...

    def confirm(self, tenant: str, provider: str, event_id: str) -> None: ...


class DynamoReplayGuard:
    """ReplayGuard on a DynamoDB table with string keys `pk`/`sk`: item `T#<tenant>#WEBHOOK#<provider>` /
    `<event id>`, with `expires_at` (epoch seconds) for the table's TTL."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = table_name
        self._client = client

    client: LazyClient[DynamoDBClient] = LazyClient("dynamodb")

    @staticmethod
    def _key(tenant: str, provider: str, event_id: str) -> dict[str, Any]:
        return {"pk": {"S": tenant_key(tenant, "WEBHOOK", provider)}, "sk": {"S": event_id}}

    def claim(self, tenant: str, provider: str, event_id: str, *, expires_at: datetime) -> Claim:
        key = self._key(tenant, provider, event_id)
        try:
            self.client.put_item(
                TableName=self._table,
                Item={
                    **key,
                    "state": {"S": Claim.PENDING.value},
                    "received_at": {"S": clock.isoformat(clock.now())},
                    "expires_at": {"N": str(int(expires_at.timestamp()))},
                },
                # An expired marker that DynamoDB's TTL has not swept yet counts as gone.
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(clock.now().timestamp()))}},
            )
            return Claim.NEW
        except self.client.exceptions.ConditionalCheckFailedException:
            pass
        item = self.client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get("Item") or {}
        return Claim.DONE if item.get("state", {}).get("S") == Claim.DONE.value else Claim.PENDING

    def confirm(self, tenant: str, provider: str, event_id: str) -> None:
        self.client.update_item(
            TableName=self._table,
            Key=self._key(tenant, provider, event_id),
            UpdateExpression="SET #state = :done",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":done": {"S": Claim.DONE.value}},
        )


@dataclass(frozen=True)
class WebhookDelivery:
    """A verified delivery, as the sink stores it. The body is the provider's raw bytes."""

    provider: str
    tenant: str
    event_id: str
    signed_at: datetime
    received_at: datetime
    request_id: str
    content_type: str | None
    body: bytes = field(repr=False)

    def to_json(self) -> str:
        return json.dumps(
            {
                "provider": self.provider,
                "tenant": self.tenant,
                "event_id": self.event_id,
                "signed_at": clock.isoformat(self.signed_at),
                "received_at": clock.isoformat(self.received_at),
                "request_id": self.request_id,
                "content_type": self.content_type,
                "body_base64": base64.b64encode(self.body).decode(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> WebhookDelivery:
        doc = json.loads(text)
        return cls(
            provider=doc["provider"],
            tenant=doc["tenant"],
            event_id=doc["event_id"],
            signed_at=datetime.fromisoformat(doc["signed_at"]),
            received_at=datetime.fromisoformat(doc["received_at"]),
            request_id=doc["request_id"],
            content_type=doc.get("content_type"),
            body=base64.b64decode(doc["body_base64"]),
        )


class DeliverySink(Protocol):
    """Durable storage for verified deliveries; `put` returns only once the delivery is stored."""

    def put(self, delivery: WebhookDelivery) -> None: ...


class SqsDeliverySink:
    """DeliverySink on an SQS queue (KMS-encrypted, with a DLQ): one message per delivery.

    SQS holds 256 KiB per message; a larger provider batch fails loudly (DependencyFailure via botocore) and
    the provider retries, rather than being truncated.
    """

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self._queue_url = queue_url
        self._client = client

    client: LazyClient[SQSClient] = LazyClient("sqs")

    def put(self, delivery: WebhookDelivery) -> None:
        self.client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=delivery.to_json(),
            MessageAttributes={
                "provider": {"DataType": "String", "StringValue": delivery.provider},
                "tenant": {"DataType": "String", "StringValue": delivery.tenant},
                "event_id": {"DataType": "String", "StringValue": delivery.event_id},
            },
        )


@dataclass(frozen=True)
class WebhookReceipt:
    """What the route answers: 202 for a new delivery, 200 for one already stored (both acknowledge it)."""

    status: int
    event_id: str
    duplicate: bool

    def body(self) -> dict[str, Any]:
        return {"status": "duplicate" if self.duplicate else "accepted", "event_id": self.event_id}


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The request body exactly as the provider sent it (API Gateway base64-encodes binary bodies)."""
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected("body is not valid base64") from None
    return body.encode() if isinstance(body, str) else bytes(body)


def receive(
    event: Mapping[str, Any],
    *,
    verifier: WebhookVerifier,
    secrets: TenantSecrets,
    replay: ReplayGuard,
    sink: DeliverySink,
    audit: AuditLog,
    dedup_for: timedelta = timedelta(days=7),
) -> WebhookReceipt:
    """Verify, deduplicate and store one webhook request (an API Gateway REST proxy event).

    Raises Unauthenticated (401, nothing stored) when it does not verify for the tenant in the path. The
    caller answers the receipt's status only after this returns: the delivery is then durably stored.
    """
    from shared.observability import logger, metrics

    provider = verifier.provider
    if not _PROVIDER.match(provider):
        raise ConfigurationError(f"invalid webhook provider name {provider!r}")
    context = event.get("requestContext") or {}
    request_id = str(context.get("requestId") or "-")[:128]
    source_ip = (context.get("identity") or {}).get("sourceIp")
    claimed = str((event.get("pathParameters") or {}).get("tenant") or "")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    now = clock.now()

    try:
        body = raw_body(event)
        if not _TENANT.match(claimed) or claimed in SYSTEM_TENANTS:
            raise WebhookRejected("no such tenant")
        keys = _secrets_of(secrets, claimed, provider)
        # An unknown tenant is checked against a throwaway key, so it costs what a wrong signature costs.
        try:
            verified: VerifiedWebhook | None = verifier.verify(
                body=body, headers=headers, secrets=keys or [os.urandom(32)], now=now
            )
        except WebhookRejected:
            if keys:
                raise
            verified = None
        if verified is None or not keys:
            raise WebhookRejected("no such tenant")
    except WebhookRejected as refused:
        _refuse(audit, provider, claimed, refused.reason, request_id, source_ip if isinstance(source_ip, str) else None)
        metrics.add_metric(name=REJECTED_METRIC, unit="Count", value=1)
        logger.info("webhook refused", extra={"provider": provider, "reason": refused.reason})
        raise Unauthenticated(_REFUSAL) from None

    tenant = claimed  # trusted from here on: the tenant's own secret verified the request
    claim = replay.claim(tenant, provider, verified.event_id, expires_at=now + dedup_for)
    if claim is Claim.DONE:
        logger.info("webhook already stored", extra={"provider": provider, "event_id": verified.event_id})
        return WebhookReceipt(status=200, event_id=verified.event_id, duplicate=True)
    sink.put(
        WebhookDelivery(
            provider=provider,
            tenant=tenant,
            event_id=verified.event_id,
            signed_at=verified.signed_at,
            received_at=now,
            request_id=request_id,
            content_type=headers.get("content-type"),
            body=body,
        )
    )
    replay.confirm(tenant, provider, verified.event_id)
    logger.info("webhook stored", extra={"provider": provider, "tenant": tenant, "event_id": verified.event_id})
    return WebhookReceipt(status=202, event_id=verified.event_id, duplicate=False)


def _secrets_of(secrets: TenantSecrets, tenant: str, provider: str) -> list[bytes]:
    """The tenant's signing secrets of every held version; none when the tenant has no such secret."""
    from shared.secrets import SecretNotFound

    try:
        return list(secrets.all_versions(tenant, f"webhook/{provider}").values())
    except SecretNotFound:
        return []


def _refuse(audit: AuditLog, provider: str, claimed: str, reason: str, request_id: str, source_ip: str | None) -> None:
    from shared.audit import AuditEntry, Outcome

    # The claimed tenant is unverified input: recorded (for the gateway's log only) when it is well formed.
    shown = claimed if _TENANT.match(claimed) else "(invalid)"
    audit.append(
        AuditEntry(
            tenant=GATEWAY_TENANT,
            actor=f"webhook:{provider}",
            action="webhook.receive",
            resource=f"/v1/webhooks/{provider}/{shown}",
            outcome=Outcome.DENIED,
            request_id=request_id,
            reason=reason[:512],
            source_ip=source_ip[:64] if source_ip else None,
        )
    )
