"""shared.webhooks against moto: the tenant's secret from Secrets Manager, the replay guard on DynamoDB, the SQS
sink and the audit chain; the sample request is the Standard Webhooks specification's own test vector."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from shared import clock
from shared.audit import DynamoAuditLog, Outcome
from shared.errors import Unauthenticated
from shared.secrets import TenantSecrets
from shared.webhooks import (
    DynamoReplayGuard,
    SqsDeliverySink,
    StandardWebhooksVerifier,
    WebhookDelivery,
    receive,
    sign_standard_webhook,
)
from tests.conftest import sample_event
from tests.integration.conftest import REGION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

PREFIX = "AtsCompliance-it/tenants/"
SPEC_SECRET = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
SIGNED_AT = datetime.fromtimestamp(1614265330, tz=UTC)


@pytest.fixture(autouse=True)
def _at_the_vectors_time() -> Iterator[None]:
    clock.freeze(SIGNED_AT + timedelta(seconds=5))
    yield
    clock.freeze(None)


@pytest.fixture
def secrets(aws: None) -> SecretsManagerClient:
    client: SecretsManagerClient = boto3.client("secretsmanager", region_name=REGION)
    doc = {"current": "1", "keys": {"1": base64.b64encode(SPEC_SECRET).decode()}}
    client.create_secret(Name=f"{PREFIX}acme/webhook/standard", SecretString=json.dumps(doc))
    return client


@pytest.fixture
def queue(aws: None) -> tuple[SQSClient, str]:
    sqs: SQSClient = boto3.client("sqs", region_name=REGION)
    return sqs, sqs.create_queue(QueueName="it-webhooks")["QueueUrl"]


class Receiver:
    def __init__(self, tables: dict[str, str], queue_url: str) -> None:
        self.replay = DynamoReplayGuard(tables["platform"])
        self.audit = DynamoAuditLog(tables["audit"])
        self.sink = SqsDeliverySink(queue_url)

    def __call__(self, event: dict[str, Any]) -> Any:
        return receive(
            event,
            verifier=StandardWebhooksVerifier(),
            secrets=TenantSecrets(PREFIX, max_age=0),
            replay=self.replay,
            sink=self.sink,
            audit=self.audit,
        )


@pytest.fixture
def receiver(tables: dict[str, str], queue: tuple[SQSClient, str], secrets: SecretsManagerClient) -> Receiver:
    return Receiver(tables, queue[1])


def _messages(queue: tuple[SQSClient, str]) -> list[dict[str, Any]]:
    sqs, url = queue
    response: dict[str, Any] = dict(
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    )
    return list(response.get("Messages", []))


def test_a_verified_delivery_is_queued_deduplicated_and_marked_with_a_ttl(
    receiver: Receiver, queue: tuple[SQSClient, str], ddb: DynamoDBClient, tables: dict[str, str]
) -> None:
    event = sample_event("apigw_post_webhook_standard.json")

    first = receiver(event)
    again = receiver(event)

    assert (first.status, again.status, again.duplicate) == (202, 200, True)
    [message] = _messages(queue)
    delivery = WebhookDelivery.from_json(message["Body"])
    assert (delivery.tenant, delivery.provider, delivery.event_id) == (
        "acme",
        "standard",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
    )
    assert delivery.body == b'{"test": 2432232314}'
    assert message["MessageAttributes"]["tenant"]["StringValue"] == "acme"

    item = ddb.get_item(
        TableName=tables["platform"],
        Key={"pk": {"S": "T#acme#WEBHOOK#standard"}, "sk": {"S": "msg_p5jXN8AQM9LWM0D4loKWxJek"}},
    )["Item"]
    assert item["state"]["S"] == "done"
    assert int(item["expires_at"]["N"]) == int((clock.now() + timedelta(days=7)).timestamp())


def test_an_expired_marker_does_not_block_a_new_delivery(
    receiver: Receiver, queue: tuple[SQSClient, str], ddb: DynamoDBClient, tables: dict[str, str]
) -> None:
    event = sample_event("apigw_post_webhook_standard.json")
    receiver(event)
    # Eight days later the marker has expired (DynamoDB's TTL may not have swept it yet) and the provider, oddly,
    # re-sends the id with a fresh signature.
    clock.freeze(SIGNED_AT + timedelta(days=8))
    ts = int(clock.now().timestamp())
    body = event["body"].encode()
    event["headers"]["webhook-timestamp"] = str(ts)
    event["headers"]["webhook-signature"] = sign_standard_webhook(SPEC_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)

    assert receiver(event).status == 202
    assert len(_messages(queue)) == 2


def test_a_forgery_is_401_audited_under_the_gateway_and_stores_nothing(
    receiver: Receiver, queue: tuple[SQSClient, str], ddb: DynamoDBClient, tables: dict[str, str]
) -> None:
    event = sample_event("apigw_post_webhook_standard.json")
    event["body"] = '{"test": 1}'

    with pytest.raises(Unauthenticated):
        receiver(event)

    assert _messages(queue) == []
    assert ddb.scan(TableName=tables["platform"])["Items"] == []
    [entry] = receiver.audit.entries("_gateway")
    assert (entry.outcome, entry.actor, entry.resource) == (
        Outcome.DENIED,
        "webhook:standard",
        "/v1/webhooks/standard/acme",
    )
    assert entry.source_ip == "203.0.113.24"
    assert receiver.audit.entries("acme") == []


def test_an_unknown_tenant_is_refused_like_a_forgery(receiver: Receiver, queue: tuple[SQSClient, str]) -> None:
    event = sample_event("apigw_post_webhook_standard.json")
    event["pathParameters"] = {"tenant": "initech"}

    with pytest.raises(Unauthenticated) as raised:
        receiver(event)

    assert raised.value.message == "webhook signature not verified"
    assert _messages(queue) == []
    assert [e.reason for e in receiver.audit.entries("_gateway")] == ["no such tenant"]


def test_a_rotated_secret_keeps_verifying_the_old_signature(
    receiver: Receiver, secrets: SecretsManagerClient, queue: tuple[SQSClient, str]
) -> None:
    rotated = {
        "current": "2",
        "keys": {"1": base64.b64encode(SPEC_SECRET).decode(), "2": base64.b64encode(b"n" * 32).decode()},
    }
    secrets.put_secret_value(SecretId=f"{PREFIX}acme/webhook/standard", SecretString=json.dumps(rotated))

    assert receiver(sample_event("apigw_post_webhook_standard.json")).status == 202
