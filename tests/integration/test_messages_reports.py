"""Message reports and the synthetic message, in process on moto: messages recorded through the API or delivered by
a provider's webhook, applied by the ingest consumer, then reported through the reports API; the synthetic probe
records through the API's queue, waits while the consumer drains it, checks, deletes and publishes its metric."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest

from functions.messages.logic.reports import SYNTHETIC_JOB
from shared.audit import DynamoAuditLog
from shared.permissions import POLICY, Permission
from tests.conftest import make_lambda_context
from tests.integration import test_messages_ingest
from tests.integration.conftest import AUDIT_TABLE, METRICS_NAMESPACE, REGION, RestEventFactory, claims
from tests.integration.test_messages_ingest import NOW, MessagesWorld, drain, record, sendgrid_batch, sg_event

world = test_messages_ingest.world  # the fixture of the ingest tier's moto world

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

BASE = NOW - timedelta(hours=1)
SYNTHETIC_TENANT = "synthetic-probe"


def report(
    rest_event: RestEventFactory, path: str, query: dict[str, str], *, tenant: str = "acme", groups: str = "recruiter"
) -> tuple[int, Any]:
    from functions.messages.handlers import reports_api

    event = rest_event(path, claims=claims(tenant=tenant, groups=groups))
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    response = reports_api.lambda_handler(event, make_lambda_context())
    return response["statusCode"], json.loads(response["body"])


def recorded(message_id: str, status: str, seconds: int, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "channel": "email",
        "direction": "outbound",
        "status": status,
        "occurred_at": (BASE + timedelta(seconds=seconds)).isoformat(),
        "candidate_id": "cand-r",
        "requisition_id": "req-r",
        **extra,
    }


def audited(action: str, tenant: str = "acme") -> list[dict[str, Any]]:
    entries = DynamoAuditLog(AUDIT_TABLE).entries(tenant)
    return [e.model_dump(mode="json") for e in entries if e.action == action]


@pytest.fixture
def candidate_messages(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    """An email delivered after 20 s, opened a minute later, answered after 3 minutes by a reply from a mail client
    (no candidate id: found through its thread); an SMS delivered after 4 s; an email that bounced."""
    thread = {"rfc_message_id": "<out-1@ats.example>", "recipients": [{"address": "cand@example.com"}]}
    for status, seconds in (("sent", 0), ("delivered", 20), ("opened", 80)):
        assert record(rest_event, recorded("out-1", status, seconds, **thread))[0]["statusCode"] == 202
    reply = {
        "message_id": "in-1",
        "channel": "email",
        "direction": "inbound",
        "status": "delivered",
        "occurred_at": (BASE + timedelta(seconds=200)).isoformat(),
        "in_reply_to": "<out-1@ats.example>",
        "references": ["<out-1@ats.example>"],
        "rfc_message_id": "<in-1@mail.example>",
    }
    record(rest_event, reply)
    sms = {"channel": "sms", "recipients": [{"address": "+15558675310"}]}
    for status, seconds in (("sent", 0), ("delivered", 4)):
        record(rest_event, recorded("out-2", status, seconds, **sms))
    for status, seconds in (("sent", 0), ("bounced", 30)):
        record(rest_event, recorded("out-3", status, seconds))
    record(rest_event, recorded("other-tenant", "delivered", 5), tenant="globex")
    assert drain(world.api_queue_url) == {"batchItemFailures": []}


@pytest.mark.usefixtures("candidate_messages")
def test_the_delivery_report_of_a_candidate(rest_event: RestEventFactory) -> None:
    status, body = report(rest_event, "/v1/message-reports/delivery", {"candidate_id": "cand-r"})
    assert status == 200, body
    total = body["total"]
    assert (total["outbound"], total["inbound"], total["delivered"], total["failed"], total["answered"]) == (
        3,
        0,
        2,
        1,
        1,
    )
    assert total["response_rate"] == 0.5
    assert total["sent_to_delivered"] == {"samples": 2, "median_seconds": 12.0, "p90_seconds": 18.4}
    assert total["delivered_to_opened"] == {"samples": 1, "median_seconds": 60.0, "p90_seconds": 60.0}
    assert total["delivered_to_replied"] == {"samples": 1, "median_seconds": 180.0, "p90_seconds": 180.0}
    assert body["inbound_replies"] == 1 and body["replies_complete"] and body["complete"]
    assert [(c["channel"], c["outbound"], c["delivered"]) for c in body["channels"]] == [("email", 2, 1), ("sms", 1, 1)]
    assert [e["resource"] for e in audited("messages:read")] == ["/v1/message-reports/delivery?candidate_id=cand-r"]


@pytest.mark.usefixtures("candidate_messages")
def test_the_delivery_report_of_a_requisition_over_a_range(rest_event: RestEventFactory) -> None:
    query = {"requisition_id": "req-r", "since": BASE.isoformat(), "until": (BASE + timedelta(seconds=1)).isoformat()}
    status, body = report(rest_event, "/v1/message-reports/delivery", query)
    assert status == 200 and body["scope"] == "requisition"
    assert body["total"]["outbound"] == 3  # the first event of each is at BASE
    query.update(since=(BASE + timedelta(hours=1)).isoformat(), until=(BASE + timedelta(hours=2)).isoformat())
    _, later = report(rest_event, "/v1/message-reports/delivery", query)
    assert later["total"]["outbound"] == 0 and later["channels"] == []


@pytest.mark.usefixtures("candidate_messages")
def test_another_tenant_sees_none_of_it(rest_event: RestEventFactory) -> None:
    _, body = report(rest_event, "/v1/message-reports/delivery", {"candidate_id": "cand-r"}, tenant="globex")
    assert body["total"]["outbound"] == 1 and body["total"]["delivered"] == 1  # only globex's own message


def test_refusals(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    both = {"candidate_id": "c", "requisition_id": "r"}
    assert report(rest_event, "/v1/message-reports/delivery", both)[0] == 400
    assert report(rest_event, "/v1/message-reports/delivery", {"candidate_id": "c", "since": "yesterday"})[0] == 400
    assert report(rest_event, "/v1/message-reports/failures", {"channel": "fax"})[0] == 400
    status, _ = report(rest_event, "/v1/message-reports/failures", {}, groups="finance_approver")
    assert status == 403
    assert [e["outcome"] for e in audited("messages:read")] == ["denied"]


def test_the_failures_report_with_the_capture_rate(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    from functions.messages.handlers.ingest import handle
    from shared.webhooks import WebhookDelivery

    events = [
        sg_event("processed", "f1", BASE, 1),
        sg_event("delivered", "f1", BASE + timedelta(seconds=5), 1),
        sg_event("processed", "f2", BASE, 2),
        sg_event("bounce", "f2", BASE + timedelta(seconds=9), 2, type="bounce", status="5.1.1"),
        sg_event("processed", "f3", BASE, 3),
        sg_event("deferred", "f3", BASE + timedelta(seconds=60), 3, attempt="1"),
        sg_event("delivered", "f3", BASE + timedelta(seconds=600), 3),
        sg_event("processed", "f4", BASE, 4),
        sg_event("dropped", "f4", BASE + timedelta(seconds=1), 4, reason="Bounced Address"),
    ]
    delivery = WebhookDelivery("sendgrid", "acme", "b1", NOW, NOW, "r", "application/json", sendgrid_batch(events))
    assert handle({"Records": [{"messageId": "q1", "body": delivery.to_json(), "attributes": {}}]}) == {
        "batchItemFailures": []
    }
    # What CloudWatch extracts from the receivers' and the consumer's EMF logs (Powertools: dimension `service`).
    service = [{"Name": "service", "Value": "ats-compliance-it"}]
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace=METRICS_NAMESPACE,
        MetricData=[
            {"MetricName": "MessageEventsReceived", "Dimensions": service, "Timestamp": BASE, "Value": 400.0},
            {"MetricName": "MessageEventsStored", "Dimensions": service, "Timestamp": BASE, "Value": 398.0},
            {
                "MetricName": "MessageEventsStored",
                "Dimensions": service,
                "Timestamp": NOW - timedelta(days=40),
                "Value": 7,
            },
        ],
    )
    status, body = report(rest_event, "/v1/message-reports/failures", {"channel": "email"})
    assert status == 200, body
    (row,) = body["rows"]
    assert (row["channel"], row["provider"], row["outbound"], row["delivered"]) == ("email", "sendgrid", 4, 2)
    assert (row["failed"], row["bounced"], row["permanent_failures"], row["delayed"]) == (2, 1, 2, 1)
    assert (row["failure_rate"], row["bounce_rate"]) == (0.5, 0.25)
    assert body["coverage"] == [{"channel": "email", "messages_read": 4, "complete": True, "covered_until": None}]
    capture = body["capture"]
    assert (capture["received"], capture["stored"], capture["success_rate"]) == (400.0, 398.0, 0.995)
    assert capture["scope"] == "platform" and capture["period_seconds"] == 300  # 30 days back: 5-minute data


# --- the synthetic message ---------------------------------------------------------------------------------


@pytest.fixture
def synthetic(world: MessagesWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesWorld]:
    """The synthetic tenant configured, and the permission row the lead adds (the probe's job records)."""
    monkeypatch.setenv("SYNTHETIC_TENANT", SYNTHETIC_TENANT)
    grant = POLICY[Permission.RECORD_MESSAGES]
    monkeypatch.setitem(
        POLICY, Permission.RECORD_MESSAGES, replace(grant, jobs=grant.jobs | frozenset({SYNTHETIC_JOB}))
    )
    yield world


def run_probe(event: dict[str, Any], **kw: Any) -> dict[str, Any]:
    from functions.messages.handlers import synthetic

    context = make_lambda_context("messages-synthetic")
    context.get_remaining_time_in_millis = lambda: 90_000  # type: ignore[method-assign]
    result: dict[str, Any] = synthetic.lambda_handler(event, context, **kw)
    return result


def emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """The metrics the invocation published (EMF lines on stdout)."""
    out: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' in line:
            doc = json.loads(line)
            for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = doc[metric["Name"]]
                out[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return out


def stored_messages(tenant: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName="it-messages")["Items"]
    return [i for i in items if i["pk"]["S"].startswith(f"T#{tenant}#MSG#")]


def test_the_synthetic_message_goes_through_the_api_queue_and_the_consumer(
    synthetic: MessagesWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_probe({}, sleep=lambda seconds: drain(synthetic.api_queue_url))
    assert result["succeeded"], result
    assert result["seconds_to_store"] is not None and result["problem"] is None
    metrics = emitted(capsys)
    assert metrics["SyntheticMessageSucceeded"] == 1 and "SyntheticMessageSeconds" in metrics
    assert stored_messages(SYNTHETIC_TENANT) == []  # checked, then deleted
    assert [e["outcome"] for e in audited("messages:record", SYNTHETIC_TENANT)] == ["allowed"]
    assert [e["resource"] for e in audited("messages:synthetic-delete", SYNTHETIC_TENANT)] == [
        f"/v1/messages/{result['message_id']}"
    ]


def test_a_consumer_that_does_not_store_fails_the_probe(
    synthetic: MessagesWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_probe({"wait_seconds": 1}, sleep=lambda seconds: None)  # nothing drains the queue
    assert not result["succeeded"] and result["problem"] == "not stored within 1 s"
    assert emitted(capsys)["SyntheticMessageSucceeded"] == 0

    drain(synthetic.api_queue_url)  # the consumer catches up after the probe gave up
    assert len(stored_messages(SYNTHETIC_TENANT)) == 1
    again = run_probe({}, sleep=lambda seconds: drain(synthetic.api_queue_url))
    assert again["succeeded"] and again["leftovers_removed"] == 1
    assert stored_messages(SYNTHETIC_TENANT) == []


def test_a_probe_that_breaks_still_reports_zero(world: MessagesWorld, capsys: pytest.CaptureFixture[str]) -> None:
    # No SYNTHETIC_TENANT in the environment: the settings fail, the metric says so.
    result = run_probe({})
    assert not result["succeeded"] and result["problem"] == "probe raised ConfigurationError"
    assert emitted(capsys)["SyntheticMessageSucceeded"] == 0
