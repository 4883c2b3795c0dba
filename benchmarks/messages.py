"""Messages figures (issue 12), counted rather than timed, into `.local/bench/results.json`:

- `messages.ingest.writes_per_event`: DynamoDB write requests per provider event, a signed 100-event SendGrid
  batch posted to its webhook and applied by the ingest consumer, every write of both counted (the receiver's
  dedup marker included); the events name 100 different messages, the worst case (events of one message share
  its one write);
- `messages.search.items_read_per_returned`: items DynamoDB read (ScannedCount) per message returned by metadata
  searches (candidate, requisition, status, channel, date range, and two filters at once) through the API, with
  100,000 messages in the tenant.

Both run in process on moto with the integration tier's tables (the template's key schema and indexes).
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.results import Figure, record
from benchmarks.retention import ENV, _put_directly, counted

MESSAGES = 100_000
BATCH = 100
TABLE = "bench-messages"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
MESSAGES_ENV = {**ENV, "MESSAGES_TABLE_NAME": TABLE}


@contextmanager
def moto_world() -> Iterator[dict[str, Any]]:
    """The messages domain's resources on moto, in process, with the functions' environment."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from moto import mock_aws

    from shared import clock
    from shared.aws import client, reset_clients
    from shared.secrets import new_keyring
    from shared.settings import _load
    from tests.integration.conftest import _create_tenant_table, messages_indexes

    saved = {name: os.environ.get(name) for name in [*MESSAGES_ENV, "DATA_KEY_ARN", "WEBHOOK_QUEUE_URL"]}
    os.environ.update(MESSAGES_ENV)
    reset_clients()
    _load.cache_clear()
    clock.freeze(NOW)
    try:
        with mock_aws():
            ddb = client("dynamodb")
            _create_tenant_table(ddb, ENV["AUDIT_TABLE_NAME"], {})
            _create_tenant_table(ddb, TABLE, messages_indexes())
            os.environ["DATA_KEY_ARN"] = client("kms").create_key(Description="bench")["KeyMetadata"]["Arn"]
            client("events").create_event_bus(Name=ENV["EVENT_BUS_NAME"])
            os.environ["WEBHOOK_QUEUE_URL"] = client("sqs").create_queue(QueueName="bench-sendgrid")["QueueUrl"]
            key = ec.generate_private_key(ec.SECP256R1())
            der = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            secrets = client("secretsmanager")
            prefix = ENV["TENANT_SECRET_PREFIX"]
            secrets.create_secret(Name=f"{prefix}acme/hmac", SecretString=new_keyring())
            secrets.create_secret(
                Name=f"{prefix}acme/webhook/sendgrid",
                SecretString=json.dumps({"current": "1", "keys": {"1": base64.b64encode(der).decode()}}),
            )
            yield {"sendgrid_key": key}
    finally:
        clock.freeze(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_clients()
        _load.cache_clear()


def _context() -> Any:
    from tests.conftest import make_lambda_context

    return make_lambda_context("bench")


def ingest_writes_per_event() -> tuple[float, dict[str, int]]:
    """Write requests per event for one signed SendGrid batch of 100 events (100 messages), posted and applied."""
    from functions.messages.handlers import sendgrid_webhook
    from functions.messages.handlers.ingest import handle
    from functions.messages.logic.verifiers import sign_sendgrid
    from shared.aws import client

    with moto_world() as world:
        events = [
            {
                "email": f"candidate{i}@example.com",
                "timestamp": int(NOW.timestamp()),
                "event": "delivered",
                "sg_event_id": f"bench-event-{i}",
                "sg_message_id": f"bench-message-{i}.filterdrecv-p3mdw1-0",
                "candidate_id": f"cand-{i}",
            }
            for i in range(BATCH)
        ]
        body = json.dumps(events).encode()
        timestamp = str(int(NOW.timestamp()))
        event = {
            "resource": "/v1/webhooks/sendgrid/{tenant}",
            "path": "/v1/webhooks/sendgrid/acme",
            "httpMethod": "POST",
            "headers": {
                "Host": "bench.execute-api.eu-west-1.amazonaws.com",
                "Content-Type": "application/json",
                "X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid(world["sendgrid_key"], timestamp, body),
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            },
            "pathParameters": {"tenant": "acme"},
            "requestContext": {"requestId": "bench-1", "identity": {"sourceIp": "198.51.100.1"}, "path": "/b"},
            "body": body.decode(),
            "isBase64Encoded": False,
        }
        with counted("dynamodb") as calls:
            response = sendgrid_webhook.lambda_handler(event, _context())
            if response["statusCode"] != 202:
                raise RuntimeError(f"the signed batch was refused: {response}")
            queued = client("sqs").receive_message(QueueUrl=os.environ["WEBHOOK_QUEUE_URL"], MaxNumberOfMessages=10)
            records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in queued["Messages"]]
            result = handle({"Records": records})
        if result["batchItemFailures"]:
            raise RuntimeError(f"the batch was not applied: {result}")
        by_operation: dict[str, int] = {}
        for _, operation, _ in calls:
            by_operation[operation] = by_operation.get(operation, 0) + 1
        writes = sum(n for op, n in by_operation.items() if op in _WRITES)
        return writes / BATCH, by_operation


def _seed(count: int) -> None:
    """`count` messages of tenant `acme` straight into moto's backend: 1,000 candidates, 50 requisitions, every
    channel and several statuses, over 90 days."""
    from functions.messages.dal.items import to_item
    from functions.messages.logic.lifecycle import message_id_for
    from functions.messages.models.message import Channel, Direction, HistoryEntry, MessageState, Status

    rng = random.Random(12)
    statuses = [Status.DELIVERED, Status.OPENED, Status.SENT, Status.BOUNCED, Status.CLICKED]
    channels = list(Channel)
    items = []
    for i in range(count):
        at = NOW - timedelta(minutes=rng.randrange(90 * 24 * 60))
        status = statuses[i % len(statuses)]
        state = MessageState(
            tenant="acme",
            message_id=message_id_for("acme", "sendgrid", f"seed-{i}"),
            channel=channels[i % len(channels)],
            direction=Direction.OUTBOUND,
            provider="sendgrid",
            message_key=f"seed-{i}",
            status=status,
            first_at=at,
            last_at=at,
            history=[HistoryEntry(f"seed-{i}-e", status, at, "sendgrid", status.value)],
            candidate_id=f"cand-{i % 1000}",
            requisition_id=f"req-{i % 50}",
            version=1,
        )
        items.append(to_item(state))
    _put_directly(TABLE, items)


def search_items_read_per_returned() -> tuple[float, dict[str, float]]:
    """Items read per message returned over metadata searches of the API, 100,000 messages in the tenant."""
    from functions.messages.handlers import api
    from shared.aws import client

    searches = {
        "candidate": {"candidate_id": "cand-7"},
        "requisition": {"requisition_id": "req-3", "limit": "100"},
        "status": {"status": "bounced", "limit": "100"},
        "channel": {"channel": "sms", "limit": "100"},
        "date_range": {"since": (NOW - timedelta(days=2)).isoformat(), "until": NOW.isoformat(), "limit": "100"},
        "candidate_and_date": {"candidate_id": "cand-9", "since": (NOW - timedelta(days=45)).isoformat()},
    }
    with moto_world():
        _seed(MESSAGES)
        read_total, returned_total = 0, 0
        per_search: dict[str, float] = {}
        ddb = client("dynamodb")
        scanned: list[int] = []

        def after(parsed: dict[str, Any], **_: Any) -> None:
            scanned.append(int(parsed.get("ScannedCount", 0)))

        ddb.meta.events.register("after-call.dynamodb.Query", after)
        try:
            for name, query in searches.items():
                scanned.clear()
                event = {
                    "resource": "/v1/messages",
                    "path": "/v1/messages",
                    "httpMethod": "GET",
                    "headers": {"Host": "bench"},
                    "queryStringParameters": query,
                    "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
                    "requestContext": {
                        "requestId": f"bench-{name}",
                        "identity": {"sourceIp": "198.51.100.1"},
                        "authorizer": {
                            "claims": {
                                "sub": "bench-user",
                                "token_use": "id",
                                "custom:tenant": "acme",
                                "cognito:groups": "hiring_manager",
                            }
                        },
                    },
                    "body": None,
                    "isBase64Encoded": False,
                }
                response = api.lambda_handler(event, _context())
                if response["statusCode"] != 200:
                    raise RuntimeError(f"search {name} failed: {response}")
                returned = len(json.loads(response["body"])["messages"])
                read = sum(scanned)
                per_search[name] = round(read / max(returned, 1), 4)
                read_total += read
                returned_total += returned
        finally:
            ddb.meta.events.unregister("after-call.dynamodb.Query", after)
        return read_total / max(returned_total, 1), per_search


def main() -> None:
    writes, by_operation = ingest_writes_per_event()
    print(f"ingest: {writes:.3f} DynamoDB writes per event over a {BATCH}-event SendGrid batch; {by_operation}")
    read_ratio, per_search = search_items_read_per_returned()
    print(f"search over {MESSAGES} messages: {read_ratio:.3f} items read per message returned; {per_search}")
    path = record(
        [
            Figure("messages.ingest.writes_per_event", round(writes, 4), "requests", 1.2),
            Figure("messages.search.items_read_per_returned", round(read_ratio, 4), "items", 1.5),
            *(
                Figure(f"messages.search.items_read_per_returned.{name}", value, "items")
                for name, value in per_search.items()
            ),
        ]
    )
    print(f"figures written to {path}")


if __name__ == "__main__":
    main()
