"""Rebuild the API Gateway samples of the messages webhooks and the ingest consumer's SQS sample from the
providers' documented bodies in this folder (run `python events/build_message_webhook_events.py` from the
repository root; the output is deterministic).

Each `apigw_post_webhook_<provider>.json` is `apigw_post_webhook_standard.json` (a REST proxy event of the
webhook route) with the provider's documented body and header names. Twilio's signature is computed with the
auth token of Twilio's own documented example (`12345`) over the URL the event names, so the sample verifies
for a tenant holding that token; the SendGrid, SNS and Graph samples carry the documented header names with
placeholder values (they come from the provider's key, which no document publishes).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import parse_qsl

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "apigw_post_webhook_standard.json"
TWILIO_EXAMPLE_TOKEN = "12345"  # Twilio's documented example auth token (Webhooks security)
TENANT = "acme"
# The shape of a SendGrid signature (base64 DER ECDSA); it verifies under no published key.
PLACEHOLDER_SIGNATURE = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
)


def _event(provider: str, body: str, content_type: str, headers: dict[str, str], *, base64_body: bool = False) -> dict:
    event = copy.deepcopy(json.loads(TEMPLATE.read_text()))
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        event["headers"].pop(name, None)
        event["multiValueHeaders"].pop(name, None)
    path = f"/v1/webhooks/{provider}/{TENANT}"
    event["resource"] = f"/v1/webhooks/{provider}/{{tenant}}"
    event["path"] = path
    event["pathParameters"] = {"tenant": TENANT}
    event["requestContext"]["resourcePath"] = event["resource"]
    event["requestContext"]["path"] = f"/prod{path}"
    merged = {**event["headers"], "Content-Type": content_type, "Content-Length": str(len(body.encode())), **headers}
    event["headers"] = merged
    event["multiValueHeaders"] = {k: [v] for k, v in merged.items()}
    event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    event["isBase64Encoded"] = base64_body
    return event


def _twilio() -> dict:
    body = (HERE / "twilio_status_callback.txt").read_text().strip()
    template = json.loads(TEMPLATE.read_text())
    url = f"https://{template['headers']['Host']}/prod/v1/webhooks/twilio/{TENANT}"
    params = sorted(parse_qsl(body, keep_blank_values=True))
    payload = url + "".join(k + v for k, v in params)
    signature = base64.b64encode(hmac.new(TWILIO_EXAMPLE_TOKEN.encode(), payload.encode(), hashlib.sha1).digest())
    return _event(
        "twilio",
        body,
        "application/x-www-form-urlencoded",
        {"X-Twilio-Signature": signature.decode(), "User-Agent": "TwilioProxy/1.1"},
    )


def _sendgrid() -> dict:
    body = json.dumps(json.loads((HERE / "sendgrid_events.json").read_text()), separators=(",", ":"))
    return _event(
        "sendgrid",
        body,
        "application/json",
        {
            "X-Twilio-Email-Event-Webhook-Signature": PLACEHOLDER_SIGNATURE,
            "X-Twilio-Email-Event-Webhook-Timestamp": "1588788367",
            "User-Agent": "SendGrid Event API",
        },
    )


def _sendgrid_inbound() -> dict:
    raw = (HERE / "sendgrid_inbound_parse.txt").read_text()
    boundary = next(line[2:].strip() for line in raw.splitlines() if line.startswith("--") and len(line) > 4)
    return _event(
        "sendgrid-inbound",
        raw,
        f"multipart/form-data; boundary={boundary}",
        {
            "X-Twilio-Email-Event-Webhook-Signature": PLACEHOLDER_SIGNATURE,
            "X-Twilio-Email-Event-Webhook-Timestamp": "1588788367",
            "User-Agent": "Sendlib/1.0 inbound",
        },
        base64_body=True,
    )


def _ses_sns() -> dict:
    document = json.loads((HERE / "sns_ses_delivery.json").read_text())
    return _event(
        "ses-sns",
        json.dumps(document, separators=(",", ":")),
        "text/plain; charset=UTF-8",
        {
            "x-amz-sns-message-type": document["Type"],
            "x-amz-sns-message-id": document["MessageId"],
            "x-amz-sns-topic-arn": document["TopicArn"],
            "User-Agent": "Amazon Simple Notification Service Agent",
        },
    )


def _graph() -> dict:
    document = json.loads((HERE / "graph_chat_message_notification.json").read_text())
    return _event("graph", json.dumps(document, separators=(",", ":")), "application/json", {})


def _sqs_deliveries() -> dict:
    """The ingest consumer's batch: one queued SendGrid delivery, as shared.webhooks.SqsDeliverySink writes it."""
    body = json.dumps(json.loads((HERE / "sendgrid_events.json").read_text()), separators=(",", ":")).encode()
    delivery = {
        "provider": "sendgrid",
        "tenant": TENANT,
        "event_id": hashlib.sha256(body).hexdigest(),
        "signed_at": "2020-05-06T18:06:07Z",
        "received_at": "2020-05-06T18:06:08Z",
        "request_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "content_type": "application/json",
        "body_base64": base64.b64encode(body).decode(),
    }
    text = json.dumps(delivery, separators=(",", ":"))
    return {
        "Records": [
            {
                "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": text,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1588788368000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1588788368010",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:AtsCompliance-dev-MessagesSendgridWebhookQueue",
                "awsRegion": "eu-west-1",
            }
        ]
    }


def main() -> None:
    outputs = {
        "apigw_post_webhook_twilio.json": _twilio(),
        "apigw_post_webhook_sendgrid.json": _sendgrid(),
        "apigw_post_webhook_sendgrid_inbound.json": _sendgrid_inbound(),
        "apigw_post_webhook_ses_sns.json": _ses_sns(),
        "apigw_post_webhook_graph.json": _graph(),
        "sqs_message_deliveries.json": _sqs_deliveries(),
    }
    for name, event in outputs.items():
        (HERE / name).write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
