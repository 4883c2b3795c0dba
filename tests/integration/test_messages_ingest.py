"""The messages domain end to end in process, on moto: a provider's signed webhook is verified and queued, the
ingest consumer applies the queue in batches, and the API finds the message by candidate and by text.

Covers the issue's acceptance on this tier: forged Twilio and SendGrid signatures are 401 and store nothing; the
same SendGrid batch twice stores each event once; `delivered` before `sent` ends `delivered`; another tenant sees
nothing; a role without content permission sees metadata only; throttled writes lose nothing.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from functions.messages.logic.verifiers import sign_sendgrid, twilio_signature
from shared import clock
from shared.secrets import new_keyring
from tests.conftest import make_lambda_context
from tests.integration.conftest import (
    ACCOUNT,
    EVENT_BUS,
    REGION,
    TENANT_SECRET_PREFIX,
    RestEventFactory,
    claims,
)

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TWILIO_TOKEN = "d1f6b5c0e9a84b7f93c2a1e0b4d6c8f2"
HOST = "it0api.execute-api.eu-west-1.amazonaws.com"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class MessagesWorld:
    sendgrid_key: ec.EllipticCurvePrivateKey
    queue_url: str
    api_queue_url: str
    bus_tap_url: str


@pytest.fixture
def world(tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesWorld]:
    clock.freeze(NOW)
    kms = boto3.client("kms", region_name=REGION)
    monkeypatch.setenv("DATA_KEY_ARN", kms.create_key(Description="it data key")["KeyMetadata"]["Arn"])
    sqs = boto3.client("sqs", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="it-webhooks")["QueueUrl"]
    api_queue_url = sqs.create_queue(QueueName="it-message-records")["QueueUrl"]
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", queue_url)
    monkeypatch.setenv("API_QUEUE_URL", api_queue_url)
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=EVENT_BUS)
    tap = sqs.create_queue(QueueName="it-bus-tap")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName=EVENT_BUS, EventPattern=json.dumps({"account": [ACCOUNT]}))
    events.put_targets(Rule="tap", EventBusName=EVENT_BUS, Targets=[{"Id": "q", "Arn": tap_arn}])
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for tenant in ("acme", "globex"):
        secrets.create_secret(Name=f"{TENANT_SECRET_PREFIX}{tenant}/hmac", SecretString=new_keyring())
        secrets.create_secret(
            Name=f"{TENANT_SECRET_PREFIX}{tenant}/webhook/sendgrid",
            SecretString=json.dumps({"current": "1", "keys": {"1": base64.b64encode(der).decode()}}),
        )
        secrets.create_secret(
            Name=f"{TENANT_SECRET_PREFIX}{tenant}/webhook/twilio",
            SecretString=json.dumps({"current": "1", "keys": {"1": base64.b64encode(TWILIO_TOKEN.encode()).decode()}}),
        )
    yield MessagesWorld(key, queue_url, api_queue_url, tap)
    clock.freeze(None)


def webhook_event(provider: str, tenant: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    path = f"/v1/webhooks/{provider}/{tenant}"
    return {
        "resource": f"/v1/webhooks/{provider}/{{tenant}}",
        "path": path,
        "httpMethod": "POST",
        "headers": {"Host": HOST, **headers},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"tenant": tenant},
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "httpMethod": "POST",
            "path": f"/it{path}",
            "requestId": f"req-{random.randrange(10**9)}",
            "resourcePath": f"/v1/webhooks/{provider}/{{tenant}}",
            "stage": "it",
            "identity": {"sourceIp": "198.51.100.9"},
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def sendgrid_batch(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events, separators=(",", ":")).encode()


def sg_event(kind: str, message: str, at: datetime, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": f"candidate{n}@example.com",
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": f"sgev-{message}-{kind}-{n}",
        "sg_message_id": f"{message}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
        "candidate_id": "cand-7",
        "requisition_id": "req-42",
        **extra,
    }


def post_sendgrid(world: MessagesWorld, tenant: str, body: bytes, *, key: Any = None) -> dict[str, Any]:
    from functions.messages.handlers import sendgrid_webhook

    timestamp = str(int(NOW.timestamp()))
    signature = sign_sendgrid(key or world.sendgrid_key, timestamp, body)
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    return sendgrid_webhook.lambda_handler(webhook_event("sendgrid", tenant, body, headers), make_lambda_context())


def drain(queue_url: str, **handle_options: Any) -> dict[str, Any]:
    """Hand every queued delivery to the ingest consumer as SQS does, one batch of up to 10."""
    from functions.messages.handlers.ingest import handle

    sqs = boto3.client("sqs", region_name=REGION)
    records = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not got:
            break
        for m in got:
            records.append(
                {
                    "messageId": m["MessageId"],
                    "body": m["Body"],
                    "attributes": {"SentTimestamp": str(int(time.time() * 1000))},
                }
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return handle({"Records": records}, **handle_options) if records else {"batchItemFailures": []}


def api(rest_event: RestEventFactory, path: str, *, tenant: str = "acme", groups: str = "recruiter", **kw: Any) -> Any:
    from functions.messages.handlers import api as messages_api

    event = rest_event(path.split("?")[0], claims=claims(tenant=tenant, groups=groups))
    if "?" in path:
        from urllib.parse import parse_qsl

        query = dict(parse_qsl(path.split("?", 1)[1]))
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    event["headers"].update(kw.get("headers", {}))
    response = messages_api.lambda_handler(event, make_lambda_context())
    body = json.loads(response["body"]) if response.get("body") else None
    return response, body


def test_a_signed_sendgrid_batch_is_stored_once_and_found_by_candidate(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    batch = sendgrid_batch(
        [
            sg_event("processed", "m1", NOW, 1),
            sg_event("delivered", "m1", NOW + timedelta(seconds=30), 1),
            sg_event("open", "m1", NOW + timedelta(minutes=5), 1),
        ]
    )
    first = post_sendgrid(world, "acme", batch)
    assert first["statusCode"] == 202
    again = post_sendgrid(world, "acme", batch)
    assert again["statusCode"] == 200  # the provider's retry: stored already, not queued again
    assert drain(world.queue_url) == {"batchItemFailures": []}

    response, page = api(rest_event, "/v1/messages?candidate_id=cand-7")
    assert response["statusCode"] == 200
    (message,) = page["messages"]
    assert message["status"] == "opened" and message["channel"] == "email" and message["provider"] == "sendgrid"
    assert [h["status"] for h in message["history"]] == ["sent", "delivered", "opened"]
    assert message["requisition_id"] == "req-42"


def test_a_replayed_batch_applies_nothing_twice(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    from functions.messages.handlers.ingest import handle
    from shared.webhooks import WebhookDelivery

    batch = sendgrid_batch([sg_event("processed", "m2", NOW, 1), sg_event("delivered", "m2", NOW, 2)])
    delivery = WebhookDelivery("sendgrid", "acme", "x", NOW, NOW, "r", "application/json", batch).to_json()
    records = [{"messageId": f"sqs-{i}", "body": delivery, "attributes": {}} for i in range(2)]
    assert handle({"Records": records}) == {"batchItemFailures": []}
    assert handle({"Records": records}) == {"batchItemFailures": []}
    _, page = api(rest_event, "/v1/messages?candidate_id=cand-7")
    (message,) = page["messages"]
    assert len(message["history"]) == 2


def test_forged_signatures_are_refused_and_store_nothing(world: MessagesWorld) -> None:
    from functions.messages.handlers import twilio_webhook

    batch = sendgrid_batch([sg_event("delivered", "m3", NOW, 1)])
    forged = post_sendgrid(world, "acme", batch, key=ec.generate_private_key(ec.SECP256R1()))
    assert forged["statusCode"] == 401

    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "AccountSid": "AC1", "To": "+15558675310"}
    body = urlencode(form).encode()
    url = f"https://{HOST}/it/v1/webhooks/twilio/acme"
    signed = twilio_signature("not-the-token", url, form)
    event = webhook_event(
        "twilio", "acme", body, {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signed}
    )
    assert twilio_webhook.lambda_handler(event, make_lambda_context())["statusCode"] == 401

    sqs = boto3.client("sqs", region_name=REGION)
    assert not sqs.receive_message(QueueUrl=world.queue_url).get("Messages")


def test_a_signed_twilio_callback_is_stored(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    from functions.messages.handlers import twilio_webhook

    form = {
        "MessageSid": "SM5a6fd2c7b3e94f0a8c1d2e3f4a5b6c7d",
        "MessageStatus": "delivered",
        "AccountSid": "ACf2a8",
        "From": "+15017122661",
        "To": "+15558675310",
        "ApiVersion": "2010-04-01",
    }
    body = urlencode(form).encode()
    url = f"https://{HOST}/it/v1/webhooks/twilio/acme"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, form),
    }
    response = twilio_webhook.lambda_handler(webhook_event("twilio", "acme", body, headers), make_lambda_context())
    assert response["statusCode"] == 202
    assert drain(world.queue_url) == {"batchItemFailures": []}
    _, page = api(rest_event, "/v1/messages?channel=sms")
    assert [m["status"] for m in page["messages"]] == ["delivered"]


def test_a_malformed_payload_that_verifies_is_a_400(world: MessagesWorld) -> None:
    response = post_sendgrid(world, "acme", b'{"not": "an array"}')
    assert response["statusCode"] == 400
    assert "sendgrid payload is malformed" in json.loads(response["body"])["error"]["message"]


def test_delivered_before_sent_ends_delivered(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    post_sendgrid(world, "acme", sendgrid_batch([sg_event("delivered", "m4", NOW + timedelta(seconds=5), 1)]))
    drain(world.queue_url)
    post_sendgrid(world, "acme", sendgrid_batch([sg_event("processed", "m4", NOW, 1)]))
    drain(world.queue_url)
    _, page = api(rest_event, "/v1/messages?candidate_id=cand-7")
    assert [m["status"] for m in page["messages"]] == ["delivered"]


def record(rest_event: RestEventFactory, body: dict[str, Any], *, tenant: str = "acme") -> Any:
    from functions.messages.handlers import record_api

    event = rest_event("/v1/messages", method="POST", claims=claims(tenant=tenant, groups="recruiter"))
    event["body"] = json.dumps(body)
    event["headers"]["Content-Type"] = "application/json"
    response = record_api.lambda_handler(event, make_lambda_context())
    return response, json.loads(response["body"])


def set_policy(rest_event: RestEventFactory, content: str, *, tenant: str = "acme") -> None:
    from functions.messages.handlers import api as messages_api

    event = rest_event("/v1/message-policy", method="PUT", claims=claims(tenant=tenant, groups="compliance_officer"))
    event["body"] = json.dumps({"content": content, "version": 0})
    event["headers"]["Content-Type"] = "application/json"
    response = messages_api.lambda_handler(event, make_lambda_context())
    assert response["statusCode"] == 200, response


def recorded(message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "channel": "email",
        "direction": "inbound",
        "status": "delivered",
        "occurred_at": NOW.isoformat(),
        "candidate_id": "cand-9",
        "sender": {"address": "zoe@example.com", "name": "Zoë Ærøskøbing"},
        "subject": "Entretien à Zürich",
        "body": "Je confirme l'entretien de lundi. 東京のオフィスでも可能です。",
        "rfc_message_id": f"<{message_id}@mail.example.com>",
        **extra,
    }


def test_content_is_sealed_searchable_and_shown_only_with_the_content_permission(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    set_policy(rest_event, "full")
    response, receipt = record(rest_event, recorded("ats-100"))
    assert response["statusCode"] == 202 and receipt["accepted"] == 1
    assert drain(world.api_queue_url) == {"batchItemFailures": []}

    raw = boto3.client("dynamodb", region_name=REGION).scan(TableName="it-messages")["Items"]
    assert "Zürich" not in json.dumps(raw) and "entretien" not in json.dumps(raw).lower()

    for query in ("zurich", "ZÜRICH entretien", "東京"):
        _, page = api(rest_event, f"/v1/messages?q={query}")
        assert [m["message_id"] for m in page["messages"]] == receipt["message_ids"], query
        assert page["messages"][0]["content"]["subject"] == "Entretien à Zürich"
    _, page = api(rest_event, "/v1/messages?q=tokyo")
    assert page["messages"] == []

    _, meta = api(rest_event, f"/v1/messages/{receipt['message_ids'][0]}", groups="hiring_manager")
    assert meta["content"] is None and meta["content_kept"] is True and meta["sender"]["address"] == "zoe@example.com"


def test_another_tenant_sees_nothing(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    _, receipt = record(rest_event, recorded("ats-200"))
    drain(world.api_queue_url)
    (message_id,) = receipt["message_ids"]
    response, _ = api(rest_event, f"/v1/messages/{message_id}", tenant="globex")
    assert response["statusCode"] == 404
    _, page = api(rest_event, "/v1/messages?candidate_id=cand-9", tenant="globex")
    assert page["messages"] == []
    _, own = api(rest_event, "/v1/messages?candidate_id=cand-9")
    assert [m["message_id"] for m in own["messages"]] == [message_id]


def test_a_thread_has_an_etag_and_answers_304(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    record(rest_event, recorded("ats-300"))
    record(
        rest_event,
        recorded(
            "ats-301",
            occurred_at=(NOW + timedelta(minutes=1)).isoformat(),
            in_reply_to="<ats-300@mail.example.com>",
            references=["<ats-300@mail.example.com>"],
        ),
    )
    drain(world.api_queue_url)
    response, thread = api(rest_event, "/v1/threads/ats-300@mail.example.com")
    assert response["statusCode"] == 200
    assert [m["rfc_message_id"] for m in thread["messages"]] == ["ats-300@mail.example.com", "ats-301@mail.example.com"]
    etag = response["multiValueHeaders"]["ETag"][0] if "multiValueHeaders" in response else response["headers"]["ETag"]
    cached, _ = api(rest_event, "/v1/threads/ats-300@mail.example.com", headers={"If-None-Match": etag})
    assert cached["statusCode"] == 304


class ThrottledStore:
    """The real store, with one write in five refused as DynamoDB refuses a throttled request."""

    def __init__(self, seed: int) -> None:
        from functions.messages.dal.messages import DynamoMessageStore

        self._store = DynamoMessageStore("it-messages")
        self._random = random.Random(seed)
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def save(self, state: Any) -> Any:
        from shared.errors import DependencyFailure

        if self._random.random() < 0.2:
            self.refused += 1
            raise DependencyFailure("ProvisionedThroughputExceededException")
        return self._store.save(state)


def test_with_a_fifth_of_the_writes_throttled_no_event_is_lost(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    from functions.messages.handlers.ingest import handle
    from shared.webhooks import WebhookDelivery

    deliveries = []
    for batch_no in range(5):
        events = [sg_event("delivered", f"burst{batch_no}-{i}", NOW, i) for i in range(20)]
        body = sendgrid_batch(events)
        deliveries.append(WebhookDelivery("sendgrid", "acme", f"b{batch_no}", NOW, NOW, "r", "application/json", body))
    pending = {f"sqs-{i}": d.to_json() for i, d in enumerate(deliveries)}
    store = ThrottledStore(seed=7)
    rounds = 0
    while pending and rounds < 20:
        rounds += 1
        result = handle(
            {"Records": [{"messageId": k, "body": v, "attributes": {}} for k, v in pending.items()]}, store=store
        )
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        pending = {k: v for k, v in pending.items() if k in failed}
    assert store.refused > 0 and not pending
    stored, cursor = 0, None
    while True:
        _, page = api(
            rest_event, "/v1/messages?candidate_id=cand-7&limit=100" + (f"&cursor={cursor}" if cursor else "")
        )
        stored += len(page["messages"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert stored == 100


def test_a_message_captured_to_s3_is_parsed_from_its_object_created_event(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    """SES receiving (or a relay) writes raw MIME under inbound/<tenant>/; the bucket publishes Object Created to
    the default bus, a rule queues it, and the ingest consumer reads, parses and stores the message."""
    import email
    from email import policy

    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    bucket = "it-inbound-mail"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    queue = sqs.create_queue(QueueName="it-captured")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": [bucket]}}}
    events.put_rule(Name="captured", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="captured", Targets=[{"Id": "q", "Arn": arn}])
    raw = (ROOT / "events" / "mime_reply.eml").read_bytes()
    s3.put_object(Bucket=bucket, Key="inbound/acme/0abcdefghijklmnop0123456789", Body=raw)

    assert drain(queue) == {"batchItemFailures": []}

    response, page = api(rest_event, "/v1/messages?channel=email")
    assert response["statusCode"] == 200
    wanted = email.message_from_bytes(raw, policy=policy.default)["Message-ID"].strip("<>")
    (stored,) = [m for m in page["messages"] if m["rfc_message_id"] == wanted]
    assert stored["provider"] == "smtp" and stored["direction"] == "inbound"
    _, other = api(rest_event, "/v1/messages?channel=email", tenant="globex")
    assert [m for m in other["messages"] if m["rfc_message_id"] == wanted] == []
