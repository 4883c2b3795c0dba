"""Anomalous access (issue 13 §7) on moto: entries inserted through shared.audit, the table's stream records handed
to the linker as Lambda's poller does, `AlertRaised` on the bus exactly once per window; thresholds per tenant set
through `PUT /v1/audit-alert-policy`; a burst of gateway 401s raises `repeated_auth_failures`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.audit.dal.anomaly import is_counter_key
from functions.audit.handlers import linker
from functions.audit.handlers.alert_policy_routes import router
from functions.audit.logic.anomaly import PolicyCache
from functions.audit.models.anomaly import SOURCE, AlertRaised
from shared import clock
from shared.audit import AuditEntry, DynamoAuditLog, Outcome, batched
from shared.http import build_resolver
from shared.keys import GATEWAY_TENANT
from tests.conftest import cloudwatch_logs_event, make_lambda_context
from tests.integration.conftest import AUDIT_TABLE, EVENT_BUS, REGION, RestEventFactory, claims, new_stream_records
from tests.integration.test_audit_refusals import access_log

NOW = datetime(2026, 11, 27, 9, 2, tzinfo=UTC)
OFFICER = claims(tenant="acme", sub="officer-1", groups="compliance_officer")
RECRUITER = claims(tenant="acme", sub="recruiter-1", groups="recruiter")
TIGHT = {
    "reads": {"limit": 5, "window_minutes": 15},
    "exports": {"limit": 2, "window_minutes": 60},
    "auth_failures": {"limit": 3, "window_minutes": 5},
}


@dataclass
class World:
    ddb: Any
    streams: Any
    sqs: Any
    stream_arn: str
    queue_url: str
    iterators: dict[str, str] = field(default_factory=dict)

    def read(self, tenant: str, actor: str, resource: str, request_id: str, action: str = "messages:read") -> None:
        DynamoAuditLog(AUDIT_TABLE, client=self.ddb).append(
            AuditEntry(
                tenant=tenant,
                actor=actor,
                action=action,
                resource=resource,
                outcome=Outcome.ALLOWED,
                request_id=request_id,
                at=clock.now(),
            )
        )

    def records(self) -> list[dict[str, Any]]:
        return new_stream_records(self.streams, self.stream_arn, self.iterators)

    def link(self, records: list[dict[str, Any]] | None = None) -> dict[str, int]:
        """The linker over the stream's new records (the default detector, as deployed)."""
        result: dict[str, int] = linker.lambda_handler(
            {"Records": self.records() if records is None else records}, make_lambda_context("Linker")
        )
        return result

    def alerts(self) -> list[AlertRaised]:
        out: list[AlertRaised] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return out
            for message in batch:
                body = json.loads(message["Body"])
                assert (body["source"], body["detail-type"]) == (SOURCE, "AlertRaised")
                out.append(AlertRaised.model_validate(body["detail"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def world(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName=AUDIT_TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=EVENT_BUS)
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="it-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="it-alerts",
        EventBusName=EVENT_BUS,
        EventPattern=json.dumps({"source": [SOURCE], "detail-type": ["AlertRaised"]}),
    )
    events.put_targets(Rule="it-alerts", EventBusName=EVENT_BUS, Targets=[{"Id": "queue", "Arn": arn}])
    monkeypatch.setattr(linker, "_POLICIES", PolicyCache())  # a warm function's cache is per test here
    clock.freeze(NOW)
    yield World(
        ddb=ddb,
        # botocore calls `<account>.streams-ddb.<region>`, a host moto's mock does not route: name moto's own.
        streams=boto3.client(
            "dynamodbstreams", region_name=REGION, endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com"
        ),
        sqs=sqs,
        stream_arn=ddb.describe_table(TableName=AUDIT_TABLE)["Table"]["LatestStreamArn"],
        queue_url=url,
    )


def call(
    rest_event: RestEventFactory, method: str, who: dict[str, str], body: Any = None
) -> tuple[int, dict[str, Any]]:
    app = build_resolver()
    app.include_router(router)
    event = rest_event("/v1/audit-alert-policy", method=method, claims=who)
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    context: LambdaContext = make_lambda_context("AuditApi")
    response = app.resolve(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_a_burst_of_reads_raises_one_alert_with_its_evidence_and_later_reads_raise_no_other(
    world: World, rest_event: RestEventFactory
) -> None:
    # Given acme's thresholds: 5 records read in 15 minutes
    assert call(rest_event, "PUT", OFFICER, TIGHT)[0] == 200
    # When a recruiter reads 7 records (one read twice), each request its own insert
    for i, n in enumerate((1, 2, 3, 4, 5, 6, 6, 7)):
        world.read("acme", "user:recruiter-1", f"message/m-{n}", f"req-{i}")
    result = world.link()

    # Then one AlertRaised, naming the actor, the window and the chain entries
    assert result["alerts_raised"] == 1 and result["changes_not_inserts"] == 0
    (alert,) = world.alerts()
    assert (alert.tenant, alert.kind.value, alert.actor) == ("acme", "unusual_reads", "user:recruiter-1")
    assert (alert.count, alert.threshold, alert.window_minutes) == (7, 5, 15)
    assert (alert.window_start, alert.window_end) == (NOW.replace(minute=0), NOW.replace(minute=15))
    assert len(alert.evidence) == 8 and alert.distinct_resources == 7
    assert sorted(alert.request_ids) == [f"req-{i}" for i in range(8)]
    shard, seq, chain_hash = alert.evidence[0].split(":")
    entry = world.ddb.get_item(
        TableName=AUDIT_TABLE, Key={"pk": {"S": f"T#acme#AUDIT#{shard}"}, "sk": {"S": f"SEQ#{int(seq):012d}"}}
    )["Item"]
    assert entry["hash"]["S"] == chain_hash and entry["action"]["S"] == "messages:read"

    # When the same recruiter reads more in the same window, and the stream is redelivered
    for n in range(8, 12):
        world.read("acme", "user:recruiter-1", f"message/m-{n}", f"req-{n}")  # 4 more records
    records = world.records()
    world.link(records)
    again = world.link(records)

    # Then no second alert, the redelivery counted nothing, and the counters' own updates are not tampering
    assert again["already_linked"] == 4 and again["alerts_raised"] == 0
    assert world.alerts() == []
    # (Only the counters' records: moto, unlike DynamoDB, may leave stream records of a cancelled transaction, the
    # redelivery's; docs/decisions.md.)
    counter_records = [r for r in world.records() if is_counter_key(r["dynamodb"]["Keys"]["pk"]["S"])]
    assert counter_records and {r["eventName"] for r in counter_records} <= {"INSERT", "MODIFY"}
    assert world.link(counter_records)["changes_not_inserts"] == 0
    counters = [i for i in world.ddb.scan(TableName=AUDIT_TABLE)["Items"] if is_counter_key(i["pk"]["S"])]
    assert [int(c["count"]["N"]) for c in counters] == [11]


def test_thresholds_are_per_tenant(world: World, rest_event: RestEventFactory) -> None:
    assert call(rest_event, "PUT", OFFICER, TIGHT)[0] == 200  # acme: 5; globex keeps the default 500
    with batched():  # one request reading 6 records: one insert per tenant
        for n in range(6):
            world.read("acme", "user:u-1", f"candidate/c-{n}", "req-acme")
            world.read("globex", "user:u-1", f"candidate/c-{n}", "req-globex")
    world.link()

    (alert,) = world.alerts()
    assert (alert.tenant, alert.count) == ("acme", 6)


def test_exports_count_apart_from_reads(world: World, rest_event: RestEventFactory) -> None:
    assert call(rest_event, "PUT", OFFICER, TIGHT)[0] == 200
    for n in range(2):
        world.read("acme", "user:officer-1", f"audit-exports/e-{n}", f"req-e{n}", action="audit:export")
    world.link()

    (alert,) = world.alerts()
    assert (alert.kind.value, alert.count, alert.threshold, alert.window_minutes) == ("unusual_exports", 2, 2, 60)


def test_a_burst_of_gateway_401s_raises_repeated_auth_failures(world: World) -> None:
    from functions.platform.handlers import audit_refusals

    # Given 25 refusals at the gateway from one address and 1 from another (default: 20 in 5 minutes)
    lines = [access_log("401", f"rid-{n}") for n in range(25)]
    lines.append(access_log("401", "rid-other", ip="192.0.2.9"))
    audit_refusals.lambda_handler(cloudwatch_logs_event(lines), make_lambda_context("GatewayRefusalAuditor"))

    # When linked
    world.link()

    # Then one alert, for that address only
    (alert,) = world.alerts()
    assert (alert.tenant, alert.kind.value, alert.actor) == (GATEWAY_TENANT, "repeated_auth_failures", "anonymous")
    assert (alert.source_ip, alert.count, alert.threshold) == ("198.51.100.23", 25, 20)
    assert len(alert.evidence) == 25


def test_refusals_in_a_tenant_count_against_their_actor(world: World, rest_event: RestEventFactory) -> None:
    assert call(rest_event, "PUT", OFFICER, TIGHT)[0] == 200
    for _ in range(3):
        assert call(rest_event, "PUT", RECRUITER, TIGHT)[0] == 403  # each refusal audited by authorize
    world.link()

    (alert,) = world.alerts()
    assert (alert.kind.value, alert.actor, alert.count) == ("repeated_auth_failures", "user:recruiter-1", 3)


def test_a_failed_publication_never_blocks_linking_and_the_next_batch_raises_the_alert(
    world: World, rest_event: RestEventFactory
) -> None:
    assert call(rest_event, "PUT", OFFICER, TIGHT)[0] == 200
    events = boto3.client("events", region_name=REGION)
    events.remove_targets(Rule="it-alerts", EventBusName=EVENT_BUS, Ids=["queue"])
    events.delete_rule(Name="it-alerts", EventBusName=EVENT_BUS)
    events.delete_event_bus(Name=EVENT_BUS)
    for n in range(6):
        world.read("acme", "user:u-1", f"message/m-{n}", f"req-{n}")

    first = world.link()

    assert (first["linked_entries"], first["alerts_raised"]) == (7, 0)  # linked all the same (and the PUT's entry)
    events.create_event_bus(Name=EVENT_BUS)
    queue_arn = world.sqs.get_queue_attributes(QueueUrl=world.queue_url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name="it-alerts", EventBusName=EVENT_BUS, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(
        Rule="it-alerts", EventBusName=EVENT_BUS, Targets=[{"Id": "queue", "Arn": queue_arn["QueueArn"]}]
    )
    world.read("acme", "user:u-1", "message/m-6", "req-6")
    world.link()

    (alert,) = world.alerts()
    assert alert.count == 7


def test_entries_of_another_window_count_apart(world: World, rest_event: RestEventFactory) -> None:
    assert call(rest_event, "PUT", OFFICER, TIGHT)[0] == 200
    for n in range(4):
        world.read("acme", "user:u-1", f"message/m-{n}", f"req-{n}")
    clock.freeze(NOW + timedelta(minutes=15))
    for n in range(4, 8):
        world.read("acme", "user:u-1", f"message/m-{n}", f"req-{n}")
    world.link()

    assert world.alerts() == []


# ---- the policy routes ----------------------------------------------------------------------------------------


def test_the_defaults_apply_until_an_officer_sets_a_policy_and_every_call_is_audited(
    world: World, rest_event: RestEventFactory
) -> None:
    status, body = call(rest_event, "GET", OFFICER)
    assert status == 200 and body["is_default"] and body["version"] == 0
    assert body["reads"] == {"limit": 500, "window_minutes": 15}

    status, body = call(rest_event, "PUT", OFFICER, {**TIGHT, "enabled": False})
    assert status == 200 and (body["version"], body["enabled"], body["updated_by"]) == (1, False, "user:officer-1")
    status, body = call(rest_event, "PUT", OFFICER, TIGHT)
    assert (status, body["version"]) == (200, 2)
    assert call(rest_event, "GET", OFFICER)[1]["reads"] == TIGHT["reads"]

    entries = DynamoAuditLog(AUDIT_TABLE, client=world.ddb).entries("acme")
    assert [(e.action, e.resource, e.outcome.value) for e in entries] == [
        ("audit:alert-policy", "audit-alert-policy", "allowed")
    ] * 4


def test_only_compliance_officers_read_or_set_the_policy(world: World, rest_event: RestEventFactory) -> None:
    assert call(rest_event, "GET", RECRUITER)[0] == 403
    assert call(rest_event, "PUT", claims(tenant="acme", sub="adm", groups="system_admin,auditor"), TIGHT)[0] == 403

    entries = DynamoAuditLog(AUDIT_TABLE, client=world.ddb).entries("acme")
    assert [(e.outcome.value, e.reason) for e in entries] == [("denied", "missing role")] * 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**TIGHT, "reads": {"limit": 5, "window_minutes": 7}}, 400),  # does not divide a day
        ({**TIGHT, "reads": {"limit": 0, "window_minutes": 15}}, 422),
        ({**TIGHT, "exports": {"limit": 5, "window_minutes": 1441}}, 422),
        ({"reads": TIGHT["reads"], "exports": TIGHT["exports"]}, 422),  # all three thresholds
        ({**TIGHT, "mute": True}, 422),  # unknown fields are refused
    ],
)
def test_an_invalid_policy_is_refused_and_nothing_changes(
    world: World, rest_event: RestEventFactory, body: dict[str, Any], status: int
) -> None:
    answer_status, answer = call(rest_event, "PUT", OFFICER, body)

    assert answer_status == status, answer
    assert call(rest_event, "GET", OFFICER)[1]["is_default"]
