"""Legal holds, redaction and erasure of messages end to end in process, on moto: the holds API, the ingest
consumer (a message stored after a hold is held), the redaction route, and the consumer of the retention domain's
`RecordPurged` with the release of a hold finishing what it kept back.

Messages are recorded through the ATS's API and applied by the ingest consumer, as in test_messages_ingest.py,
whose world and helpers this reuses.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import boto3
import pytest

from functions.messages.models.holds_events import PurgedKind, PurgeReason, RecordPurged
from shared.audit import AuditEntry, DynamoAuditLog
from tests.conftest import make_lambda_context
from tests.integration import test_messages_ingest
from tests.integration.conftest import ACCOUNT, AUDIT_TABLE, MESSAGES_TABLE, REGION, RestEventFactory, claims
from tests.integration.test_messages_ingest import NOW, MessagesWorld, api, drain, record, recorded, set_policy

world = test_messages_ingest.world  # the ingest tier's fixture: KMS key, queues, bus tap, tenant secrets
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

# Microseconds and an offset: the hold keeps UTC milliseconds, and the same PUT again must still be the same hold.
REVIEW = (NOW + timedelta(days=180, microseconds=123456)).astimezone(timezone(timedelta(hours=2))).isoformat()
OFFICER = "compliance_officer"


def holds_call(
    rest_event: RestEventFactory,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    tenant: str = "acme",
    groups: str = OFFICER,
) -> tuple[int, Any]:
    from functions.messages.handlers import holds_api

    bare, _, query = path.partition("?")
    event = rest_event(bare, method=method, claims=claims(tenant=tenant, groups=groups))
    if query:
        from urllib.parse import parse_qsl

        params = dict(parse_qsl(query))
        event["queryStringParameters"] = params
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in params.items()}
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    response = holds_api.lambda_handler(event, make_lambda_context("MessageHoldsApi"))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def hold_body(kind: str, subject_id: str) -> dict[str, Any]:
    return {
        "subject_kind": kind,
        "subject_id": subject_id,
        "reason": "claim 2026-17",
        "owner": "legal",
        "review_at": REVIEW,
    }


def recorded_ids(rest_event: RestEventFactory, *bodies: dict[str, Any]) -> list[str]:
    ids = []
    for body in bodies:
        response, receipt = record(rest_event, body)
        assert response["statusCode"] == 202, receipt
        ids.extend(receipt["message_ids"])
    return ids


def message(rest_event: RestEventFactory, message_id: str, groups: str = "recruiter") -> dict[str, Any]:
    response, body = api(rest_event, f"/v1/messages/{message_id}", groups=groups)
    assert response["statusCode"] == 200, body
    return dict(body)


def bus_events(world: MessagesWorld, detail_type: str | None = None) -> list[dict[str, Any]]:
    """The events published since the last call (EventBridge envelopes), of one detail type if named."""
    sqs = boto3.client("sqs", region_name=REGION)
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=world.bus_tap_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=world.bus_tap_url, ReceiptHandle=m["ReceiptHandle"])
    return [e for e in out if detail_type is None or e["detail-type"] == detail_type]


def sqs_batch(*envelopes: dict[str, Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"r-{i}",
                "body": json.dumps(envelope),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185",
                },
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:erase-on-purge",
                "awsRegion": REGION,
            }
            for i, envelope in enumerate(envelopes)
        ]
    }


def purge_envelope(event: RecordPurged) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "7c1e",
        "detail-type": "RecordPurged",
        "source": "ats.retention",
        "account": ACCOUNT,
        "time": "2026-11-27T09:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": json.loads(event.detail()),
    }


def consume(*envelopes: dict[str, Any]) -> dict[str, Any]:
    from functions.messages.handlers import on_record_purged

    on_record_purged.ports = None  # the adapters of this test's moto world
    return on_record_purged.lambda_handler(sqs_batch(*envelopes), make_lambda_context("EraseOnPurge"))


def audit_trail(tenant: str = "acme") -> list[AuditEntry]:
    return DynamoAuditLog(AUDIT_TABLE).entries(tenant, limit=1000)


def term_items() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=MESSAGES_TABLE)["Items"]
    return [i for i in items if "#TERM#" in i["pk"]["S"]]


# --- holds ------------------------------------------------------------------------------------------------------------


def test_a_hold_marks_its_candidates_messages_and_those_stored_later(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    first = recorded_ids(rest_event, recorded("ats-1"), recorded("ats-2", candidate_id="cand-10"))
    drain(world.api_queue_url)

    status, hold = holds_call(rest_event, "PUT", "/v1/message-holds/H-1", hold_body("candidate", "cand-9"))
    assert status == 201, hold
    assert hold["active"] and hold["messages_held"] == 1 and hold["fanout_complete"]
    assert message(rest_event, first[0])["on_hold"] and not message(rest_event, first[1])["on_hold"]

    (later,) = recorded_ids(rest_event, recorded("ats-3"))
    assert drain(world.api_queue_url) == {"batchItemFailures": []}
    assert message(rest_event, later)["on_hold"]  # the ingest consumer gave it the candidate's hold

    assert holds_call(rest_event, "PUT", "/v1/message-holds/H-1", hold_body("candidate", "cand-9"))[0] == 200
    assert holds_call(rest_event, "PUT", "/v1/message-holds/H-1", hold_body("candidate", "cand-1"))[0] == 409
    status, listed = holds_call(rest_event, "GET", "/v1/message-holds")
    assert status == 200 and [h["hold_id"] for h in listed["holds"]] == ["H-1"]

    status, released = holds_call(rest_event, "POST", "/v1/message-holds/H-1/release", {"reason": "settled"})
    assert status == 200 and not released["active"] and released["released_by"] == "user:user-123"
    assert not message(rest_event, first[0])["on_hold"] and not message(rest_event, later)["on_hold"]
    assert holds_call(rest_event, "GET", "/v1/message-holds")[1]["holds"] == []
    assert [h["hold_id"] for h in holds_call(rest_event, "GET", "/v1/message-holds?status=all")[1]["holds"]] == ["H-1"]

    changes = [e["detail"]["data"] for e in bus_events(world, "MessageHoldChanged")]
    assert changes == [
        {"hold_id": "H-1", "held_kind": "candidate", "active": True},
        {"hold_id": "H-1", "held_kind": "candidate", "active": True},
        {"hold_id": "H-1", "held_kind": "candidate", "active": False},
    ]
    holds_audit = [(e.resource, e.outcome.value) for e in audit_trail() if e.action == "messages:legal-hold"]
    assert holds_audit == [
        ("message-hold/H-1:place", "allowed"),
        ("message-hold/H-1:place", "allowed"),
        ("message-hold/H-1:place", "allowed"),
        ("message-holds:list", "allowed"),
        ("message-hold/H-1:release", "allowed"),
        ("message-holds:list", "allowed"),
        ("message-holds:list", "allowed"),
    ]


def test_another_tenants_hold_or_message_is_a_404_and_a_recruiter_is_refused(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    (theirs,) = recorded_ids(rest_event, recorded("ats-9"))
    drain(world.api_queue_url)
    assert holds_call(rest_event, "PUT", "/v1/message-holds/H-1", hold_body("requisition", "req-1"))[0] == 201

    assert holds_call(rest_event, "GET", "/v1/message-holds/H-1", tenant="globex")[0] == 404
    assert holds_call(rest_event, "POST", "/v1/message-holds/H-1/release", {"reason": "x"}, tenant="globex")[0] == 404
    assert (
        holds_call(rest_event, "PUT", "/v1/message-holds/H-2", hold_body("message", theirs), tenant="globex")[0] == 404
    )
    assert (
        holds_call(rest_event, "POST", f"/v1/messages/{theirs}/redaction", {"reason": "x"}, tenant="globex")[0] == 404
    )
    assert holds_call(rest_event, "GET", "/v1/message-holds/H-1", groups="recruiter")[0] == 403
    assert holds_call(rest_event, "GET", "/v1/message-holds/H-1")[1]["active"]


def test_a_large_fan_out_goes_on_where_it_stopped(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    from functions.messages.dal.holds import DynamoHoldStore
    from functions.messages.dal.messages import DynamoMessageStore
    from functions.messages.logic.holds import HoldRequest, place_hold
    from functions.messages.models.holds_io import MessageHoldSubject
    from shared.auth import Actor, Role
    from tests.fakes import FakeAuditLog

    ids = recorded_ids(
        rest_event,
        *(
            recorded(f"ats-{i}", requisition_id="req-5", occurred_at=(NOW - timedelta(minutes=i)).isoformat())
            for i in range(5)
        ),
    )
    drain(world.api_queue_url)
    officer = Actor.user("acme", "officer", frozenset({Role.COMPLIANCE_OFFICER}))
    request = HoldRequest(MessageHoldSubject.REQUISITION, "req-5", "claim", "legal", NOW + timedelta(days=9))
    progress = []
    for call in range(3):
        hold, _ = place_hold(
            officer,
            "H-5",
            request,
            holds=DynamoHoldStore(MESSAGES_TABLE),
            messages=DynamoMessageStore(MESSAGES_TABLE),
            audit=FakeAuditLog(),
            publisher=type("P", (), {"publish": lambda self, events: None})(),
            request_id=f"r-{call}",
            budget_seconds=0,
            page_size=2,
        )
        progress.append((hold.messages_held, hold.fanout_cursor is None))

    assert progress == [(2, False), (4, False), (5, True)]
    assert all(message(rest_event, i)["on_hold"] for i in ids)


# --- redaction ------------------------------------------------------------------------------------------------------


def test_a_redaction_removes_content_and_terms_and_keeps_the_metadata_and_hash(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    set_policy(rest_event, "full")
    (kept, redacted) = recorded_ids(
        rest_event, recorded("ats-10"), recorded("ats-11", subject="Offre Zürich", body="Salaire")
    )
    drain(world.api_queue_url)
    before = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=MESSAGES_TABLE, Key={"pk": {"S": f"T#acme#MSG#{redacted}"}, "sk": {"S": "MSG"}}
    )["Item"]
    terms_before = len(term_items())
    assert {m["message_id"] for m in api(rest_event, "/v1/messages?q=zurich")[1]["messages"]} == {redacted, kept}

    assert (
        holds_call(rest_event, "POST", f"/v1/messages/{redacted}/redaction", {"reason": "x"}, groups="recruiter")[0]
        == 403
    )
    status, done = holds_call(rest_event, "POST", f"/v1/messages/{redacted}/redaction", {"reason": "DSAR 2026-114"})

    assert status == 200 and done["content_removed"] and done["content_hash"] == before["content_hash"]["S"]
    assert done["terms_removed"] == 3 and len(term_items()) == terms_before - 3  # offre, zurich, salaire
    shown = message(rest_event, redacted)
    assert shown["content"] is None and not shown["content_kept"] and shown["redacted_at"]
    assert shown["sender"]["address"] == "zoe@example.com" and [h["status"] for h in shown["history"]] == ["delivered"]
    assert [m["message_id"] for m in api(rest_event, "/v1/messages?q=zurich")[1]["messages"]] == [kept]
    assert message(rest_event, kept)["content"]["subject"] == "Entretien à Zürich"

    again = holds_call(rest_event, "POST", f"/v1/messages/{redacted}/redaction", {"reason": "DSAR 2026-114"})
    assert again[0] == 200 and not again[1]["content_removed"] and again[1]["redacted_at"] == done["redacted_at"]
    trail = [(e.resource, e.outcome.value, e.reason) for e in audit_trail() if e.action == "messages:redact"]
    assert trail == [
        (f"message/{redacted}:redact", "denied", "missing role"),
        (f"message/{redacted}:redact", "allowed", None),
        (f"message/{redacted}:redacted", "allowed", "DSAR 2026-114"),
        (f"message/{redacted}:redact", "allowed", None),
    ]


def test_a_held_message_is_not_redacted(world: MessagesWorld, rest_event: RestEventFactory) -> None:
    set_policy(rest_event, "full")
    (held,) = recorded_ids(rest_event, recorded("ats-20"))
    drain(world.api_queue_url)
    assert holds_call(rest_event, "PUT", "/v1/message-holds/H-20", hold_body("message", held))[0] == 201

    status, refused = holds_call(rest_event, "POST", f"/v1/messages/{held}/redaction", {"reason": "DSAR 7"})

    assert status == 409 and "H-20" in refused["error"]["message"]
    assert message(rest_event, held)["content"]["subject"] == "Entretien à Zürich"
    assert holds_call(rest_event, "POST", "/v1/message-holds/H-20/release", {"reason": "closed"})[0] == 200
    assert holds_call(rest_event, "POST", f"/v1/messages/{held}/redaction", {"reason": "DSAR 7"})[0] == 200


# --- erasure --------------------------------------------------------------------------------------------------------


def test_a_purge_erases_the_persons_messages_except_held_ones_until_the_release(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    set_policy(rest_event, "full")
    free, held, other = recorded_ids(
        rest_event,
        recorded("ats-30", requisition_id="req-1"),
        recorded("ats-31", requisition_id="req-2", subject="Relance", body="Toujours intéressée"),
        recorded("ats-32", candidate_id="cand-10"),
    )
    drain(world.api_queue_url)
    assert holds_call(rest_event, "PUT", "/v1/message-holds/H-30", hold_body("requisition", "req-2"))[0] == 201
    bus_events(world)
    purge = RecordPurged(
        tenant="acme",
        record_kind=PurgedKind.PERSON,
        record_id="cand-9",
        person_id="cand-9",
        reason=PurgeReason.SELF_ERASURE,
        request_id="dsr-1",
    )

    assert consume(purge_envelope(purge)) == {"batchItemFailures": []}

    officer = "compliance_officer"
    assert message(rest_event, free, officer)["content"] is None and message(rest_event, free)["redacted_at"]
    assert message(rest_event, free)["sender"]["address"] == "zoe@example.com"  # the metadata policy's parties stay
    assert message(rest_event, held, officer)["content"]["subject"] == "Relance"
    assert message(rest_event, other, officer)["content"]["subject"] == "Entretien à Zürich"
    assert bus_events(world, "MessageContentErased") == []
    erasures = [(e.outcome.value, e.reason) for e in audit_trail() if e.action == "messages:erase"]
    assert erasures == [
        ("allowed", "content of 1 message(s) erased"),
        ("denied", "1 message(s) kept under legal hold(s) H-30"),
    ]
    assert [m["message_id"] for m in api(rest_event, "/v1/messages?q=interessee")[1]["messages"]] == [held]

    assert holds_call(rest_event, "POST", "/v1/message-holds/H-30/release", {"reason": "settled"})[0] == 200
    (released,) = bus_events(world, "MessageHoldChanged")
    assert consume(released) == {"batchItemFailures": []}

    assert message(rest_event, held, officer)["content"] is None
    assert api(rest_event, "/v1/messages?q=interessee")[1]["messages"] == []
    (erased,) = bus_events(world, "MessageContentErased")
    assert erased["source"] == "ats.messages"
    assert erased["detail"]["data"] | {"purge_event_id": None} == {
        "record_kind": "person",
        "record_id": "cand-9",
        "person_id": "cand-9",
        "vacancy_id": None,
        "purge_event_id": None,
        "messages": 2,
    }
    entries = len(audit_trail())

    assert consume(purge_envelope(purge)) == {"batchItemFailures": []}  # SQS delivers the purge again

    assert len(audit_trail()) == entries  # the same facts, recorded once
    (again,) = bus_events(world, "MessageContentErased")
    assert again["detail"]["metadata"]["event_id"] == erased["detail"]["metadata"]["event_id"]  # consumers dedupe


def test_an_application_purge_erases_that_requisitions_messages(
    world: MessagesWorld, rest_event: RestEventFactory
) -> None:
    set_policy(rest_event, "full")
    gone, stays = recorded_ids(
        rest_event, recorded("ats-40", requisition_id="req-1"), recorded("ats-41", requisition_id="req-2")
    )
    drain(world.api_queue_url)
    purge = RecordPurged(
        tenant="acme",
        record_kind=PurgedKind.APPLICATION,
        record_id="A-1",
        vacancy_id="req-1",
        person_id="cand-9",
        reason=PurgeReason.SCHEDULE,
    )

    assert consume(purge_envelope(purge)) == {"batchItemFailures": []}

    assert message(rest_event, gone, "compliance_officer")["content"] is None
    assert message(rest_event, stays, "compliance_officer")["content"] is not None
    (erased,) = bus_events(world, "MessageContentErased")
    assert erased["detail"]["data"]["vacancy_id"] == "req-1" and erased["detail"]["data"]["messages"] == 1
