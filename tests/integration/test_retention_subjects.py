"""Legal holds, the applicant's self-service (links, access, leaving the pool, erasure), receipts and telling
the ATS of removals, end to end in process on moto (helper C of issue 11)."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from pytest_socket import enable_socket, socket_allow_hosts

from functions.retention.dal.items import (
    application_key,
    candidate_key,
    fingerprint_key,
    person_key,
    person_pk,
    policy_key,
    registration_key,
    to_item,
    vacancy_key,
)
from functions.retention.dal.vault import PersonVault, Shredded
from functions.retention.models.entities import RetentionPolicy
from functions.retention.models.events import PurgedKind, PurgeReason, RecordPurged
from shared import clock
from shared.audit import DynamoAuditLog, Outcome
from shared.keys import GATEWAY_TENANT
from shared.webhooks import StandardWebhooksVerifier
from tests.integration.conftest import (
    ACCOUNT,
    ARCHIVE_BUCKET,
    AUDIT_TABLE,
    REGION,
    RETENTION_KEYS_TABLE,
    RETENTION_TABLE,
    TENANT_SECRET_PREFIX,
    RestEventFactory,
    RetentionWorld,
    access_claims,
    claims,
    published,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

ATS_ACME = access_claims(client_id="ats-acme", tenant="acme", scope="ats/retention.write")
ATS_GLOBEX = access_claims(client_id="ats-globex", tenant="globex", scope="ats/retention.write")
COMPLIANCE = claims(tenant="acme", groups="compliance_officer")
NAME, EMAIL, PHONE = "Ana Zymurgy", "ana.zymurgy@example.com", "+447700900123"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


# --- seeding: items in the layout of functions/retention/dal/items.py ------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def seed_vacancy(ddb: DynamoDBClient, vacancy_id: str, kind: str = "standard") -> None:
    item = {**vacancy_key("acme", vacancy_id), "tenant": _s("acme"), "vacancy_id": _s(vacancy_id)}
    item |= {"kind": _s(kind), "status": _s("closed"), "archive_due": _s("2027-02-01T00:00:00.000Z")}
    ddb.put_item(TableName=RETENTION_TABLE, Item=item)


def seed_person(ddb: DynamoDBClient, world: RetentionWorld, person_id: str, refs: int, tenant: str = "acme") -> None:
    vault = PersonVault(world.tables["retention_keys"], world.data_key)
    sealed = vault.seal(tenant, person_id, {"name": NAME, "email": EMAIL, "phone": PHONE})
    item = {**person_key(tenant, person_id), "tenant": _s(tenant), "person_id": _s(person_id)}
    item |= {"person_key": _s(person_pk(tenant, person_id)), "data": {"M": {k: _s(v) for k, v in sealed.items()}}}
    item |= {"refs": {"N": str(refs)}, "created_at": _s("2026-01-01T00:00:00.000Z")}
    item |= {"updated_at": _s("2026-01-01T00:00:00.000Z")}
    ddb.put_item(TableName=RETENTION_TABLE, Item=item)


def _owned(person_id: str, vacancy_id: str) -> dict[str, Any]:
    return {
        "tenant": _s("acme"),
        "vacancy_id": _s(vacancy_id),
        "person_id": _s(person_id),
        "person_key": _s(person_pk("acme", person_id)),
    }


def seed_application(ddb: DynamoDBClient, person_id: str, vacancy_id: str, application_id: str) -> None:
    item = {**application_key("acme", vacancy_id, application_id), **_owned(person_id, vacancy_id)}
    item |= {"application_id": _s(application_id), "submitted_at": _s("2026-03-14T12:00:00.000Z")}
    item |= {"source": _s("job_board"), "stages": {"L": [_s("screen"), _s("interview")]}, "outcome": _s("rejected")}
    ddb.put_item(TableName=RETENTION_TABLE, Item=item)


def seed_candidate(ddb: DynamoDBClient, person_id: str, vacancy_id: str, status: str) -> None:
    item = {**candidate_key("acme", vacancy_id, person_id), **_owned(person_id, vacancy_id), "status": _s(status)}
    item |= {"matched_at": _s("2026-05-01T00:00:00.000Z")}
    ddb.put_item(TableName=RETENTION_TABLE, Item=item)


def seed_registration(ddb: DynamoDBClient, person_id: str, vacancy_id: str) -> None:
    item = {**registration_key("acme", vacancy_id, person_id), **_owned(person_id, vacancy_id)}
    item |= {"registered_at": _s("2026-01-01T00:00:00.000Z"), "registration_due": _s("2029-01-01T00:00:00.000Z")}
    ddb.put_item(TableName=RETENTION_TABLE, Item=item)


def seed_fingerprint(ddb: DynamoDBClient, vacancy_id: str) -> dict[str, Any]:
    item_key = fingerprint_key("acme", vacancy_id, "h1:" + "ab" * 32)
    ddb.put_item(TableName=RETENTION_TABLE, Item={**item_key, "tenant": _s("acme")})
    return item_key


def seed_world(ddb: DynamoDBClient, world: RetentionWorld) -> None:
    """P-1: applications A-1 (V-1) and A-2 (V-2), a suggested candidacy on V-3, an invited one on V-2, a
    registration on the talent pool TP; refs 3. V-1 has a fingerprint."""
    for vacancy in ("V-1", "V-2", "V-3"):
        seed_vacancy(ddb, vacancy)
    seed_vacancy(ddb, "TP", "talent_pool")
    seed_person(ddb, world, "P-1", refs=3)
    seed_application(ddb, "P-1", "V-1", "A-1")
    seed_application(ddb, "P-1", "V-2", "A-2")
    seed_candidate(ddb, "P-1", "V-3", "suggested")
    seed_candidate(ddb, "P-1", "V-2", "invited")
    seed_registration(ddb, "P-1", "TP")
    seed_fingerprint(ddb, "V-1")


# --- calls --------------------------------------------------------------------------------------------------------


def call(
    rest_event: RestEventFactory,
    context: LambdaContext,
    module: str,
    method: str,
    resource: str,
    path_params: dict[str, str] | None = None,
    *,
    claims: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    from functions.retention.handlers import holds, subjects

    path = resource
    for name, value in (path_params or {}).items():
        path = path.replace("{" + name + "}", value)
    event = rest_event(path, method=method, claims=claims)
    event["resource"] = event["requestContext"]["resourcePath"] = resource
    event["pathParameters"] = path_params
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    handler = {"holds": holds, "subjects": subjects}[module].lambda_handler
    response = handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def issue(rest_event: RestEventFactory, ctx: LambdaContext, person_id: str = "P-1", **body: Any) -> dict[str, Any]:
    status, answer = call(
        rest_event,
        ctx,
        "subjects",
        "POST",
        "/v1/people/{person_id}/self-service-links",
        {"person_id": person_id},
        claims=ATS_ACME,
        body=body,
    )
    assert status == 201, answer
    return answer


def self_service(
    rest_event: RestEventFactory, ctx: LambdaContext, action: str, token: str
) -> tuple[int, dict[str, Any]]:
    return call(rest_event, ctx, "subjects", "POST", f"/v1/self-service/{action}", body={"token": token})


def scan(ddb: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def plaintext_in(items: list[dict[str, Any]]) -> list[str]:
    text = json.dumps(items, default=str).lower()
    return [value for value in (NAME.lower(), EMAIL, PHONE, "zymurgy") if value in text]


def person_data(world: RetentionWorld, person_id: str, ddb: DynamoDBClient) -> dict[str, str]:
    item = ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", person_id))["Item"]
    sealed = {k: v["S"] for k, v in item["data"]["M"].items()}
    return PersonVault(world.tables["retention_keys"], world.data_key).open("acme", person_id, sealed)


def partition(ddb: DynamoDBClient, pk: str) -> list[dict[str, Any]]:
    return ddb.query(
        TableName=RETENTION_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )["Items"]


# --- erasure ------------------------------------------------------------------------------------------------------


def test_self_erasure_leaves_no_personal_data_anywhere_and_survives_a_restore(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed 002: "Applicants always have the power to remove their data at any time." and "In all circumstances
    where necessary, an anonymised version of an application will be retained for reporting purposes"."""
    seed_world(ddb, retention_world)
    clock.freeze(NOW)
    # Given an access export in the archive bucket (two versions of it: the bucket is versioned) and a backup
    access = self_service(rest_event, lambda_context, "access", issue(rest_event, lambda_context)["token"])
    assert access[0] == 200 and access[1]["export"]["person"]["data"]["email"] == EMAIL
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=ARCHIVE_BUCKET, Key=access[1]["export_key"], Body=b"{}")
    backup = ddb.create_backup(TableName=RETENTION_TABLE, BackupName="before-erasure")["BackupDetails"]["BackupArn"]
    published(retention_world)
    # When the applicant erases themselves through their link
    status, receipt = self_service(rest_event, lambda_context, "erasure", issue(rest_event, lambda_context)["token"])
    # Then the receipt says what went, with the one-month deadline and the seconds taken
    assert status == 200, receipt
    assert receipt["status"] == "completed" and receipt["blocking_holds"] == []
    assert receipt["removed"] == {
        "person": 1,
        "application": 2,
        "candidate": 2,
        "registration": 1,
        "export_version": 2,
    }
    assert receipt["deadline_at"].startswith("2026-12-26T10:00:00") and receipt["seconds_taken"] >= 0
    # And no item of the retention, keys or audit tables, and no object version, holds the name, email or phone
    for table in (RETENTION_TABLE, RETENTION_KEYS_TABLE, AUDIT_TABLE):
        assert plaintext_in(scan(ddb, table)) == [], table
    listing = s3.list_object_versions(Bucket=ARCHIVE_BUCKET)
    assert listing.get("Versions", []) == [] and listing.get("DeleteMarkers", []) == []
    assert (
        ddb.get_item(TableName=RETENTION_KEYS_TABLE, Key={"pk": _s(person_pk("acme", "P-1")), "sk": _s("KEY")}).get(
            "Item"
        )
        is None
    )
    # And each application left an anonymised copy with no person or application id; the fingerprint stays
    for vacancy in ("V-1", "V-2"):
        items = partition(ddb, f"T#acme#VACANCY#{vacancy}")
        copies = [i for i in items if i["sk"]["S"].startswith("ANON#")]
        assert len(copies) == 1
        text = json.dumps(copies[0])
        assert "P-1" not in text and "A-1" not in text and "A-2" not in text and "person" not in text
        assert copies[0]["outcome"] == _s("rejected") and copies[0]["submitted_month"] == _s("2026-03")
        assert not [i for i in items if i["sk"]["S"].startswith(("APPLICATION#", "CANDIDATE#"))]
    assert [i["sk"]["S"][:3] for i in partition(ddb, "T#acme#VACANCY#V-1")].count("FP#") == 1
    # And every removal was published, ids only
    purged = [e["detail"]["data"] for e in published(retention_world) if e["detail-type"] == "RecordPurged"]
    assert sorted(p["record_kind"] for p in purged) == sorted(
        ["application", "application", "candidate", "candidate", "registration", "person"]
    )
    assert {p["reason"] for p in purged} == {"self_erasure"} and {p["request_id"] for p in purged} == {
        receipt["request_id"]
    }
    # And the receipt can be read back
    got = call(
        rest_event,
        lambda_context,
        "subjects",
        "GET",
        "/v1/subject-requests/{request_id}",
        {"request_id": receipt["request_id"]},
        claims=claims(tenant="acme", groups="compliance_officer"),
    )
    assert got == (200, receipt)
    # When the pre-erasure backup is restored into a new table
    ddb.restore_table_from_backup(TargetTableName="it-retention-restored", BackupArn=backup)
    restored = scan(ddb, "it-retention-restored")
    person = next(i for i in restored if i["pk"]["S"] == person_pk("acme", "P-1") and i["sk"]["S"] == "PERSON")
    # Then the person's sealed data is back but no longer opens, and no plaintext is anywhere
    with pytest.raises(Shredded):
        PersonVault(retention_world.tables["retention_keys"], retention_world.data_key).open(
            "acme", "P-1", {k: v["S"] for k, v in person["data"]["M"].items()}
        )
    assert plaintext_in(restored) == []


def test_a_held_persons_erasure_is_refused_naming_the_hold_and_release_frees_the_records(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11: "skips anything under legal hold"; GDPR Art. 17(3)(e) keeps data needed for legal claims."""
    seed_world(ddb, retention_world)
    hold = {
        "subject_kind": "person",
        "subject_id": "P-1",
        "reason": "employment tribunal claim",
        "owner": "legal",
        "review_at": "2099-01-01T00:00:00Z",
    }
    placed = call(
        rest_event,
        lambda_context,
        "holds",
        "PUT",
        "/v1/legal-holds/{hold_id}",
        {"hold_id": "H-1"},
        claims=COMPLIANCE,
        body=hold,
    )
    assert placed[0] == 201 and placed[1]["records_held"] == 6  # the person item and five records

    status, receipt = self_service(rest_event, lambda_context, "erasure", issue(rest_event, lambda_context)["token"])

    assert status == 200 and receipt["status"] == "held" and receipt["blocking_holds"] == ["H-1"]
    assert receipt["removed"] == {}
    assert person_data(retention_world, "P-1", ddb)["email"] == EMAIL
    assert "Item" in ddb.get_item(TableName=RETENTION_TABLE, Key=application_key("acme", "V-1", "A-1"))
    denied = [e for e in DynamoAuditLog(AUDIT_TABLE).entries("acme") if e.outcome is Outcome.DENIED]
    assert [(e.action, e.reason) for e in denied] == [("retention:erase", "kept under legal hold: H-1")]
    # When the hold is released, the records carry it no more
    released = call(
        rest_event,
        lambda_context,
        "holds",
        "POST",
        "/v1/legal-holds/{hold_id}/release",
        {"hold_id": "H-1"},
        claims=COMPLIANCE,
        body={"reason": "claim settled"},
    )
    assert released[0] == 200 and released[1]["active"] is False
    assert all("holds" not in i for i in scan(ddb, RETENTION_TABLE) if "person_key" in i)
    events = [(e["detail-type"], e["detail"]["data"]["active"]) for e in published(retention_world)]
    assert events == [("LegalHoldChanged", True), ("LegalHoldChanged", False)]


# --- leaving the talent pool ----------------------------------------------------------------------------------------


def test_leaving_the_pool_keeps_the_shared_data_while_applications_need_it(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed 002: "applicants can remove themselves from the talent pool"; issue 11: "Where one person has several
    applications, each application follows its own vacancy's timeline. The person's shared data lives until the
    last one ends." and "Candidate records that are marked as "Invited" or as "Applied" are retained"."""
    seed_world(ddb, retention_world)
    seed_person(ddb, retention_world, "P-2", refs=1)
    seed_registration(ddb, "P-2", "TP")

    first = self_service(rest_event, lambda_context, "leave-talent-pool", issue(rest_event, lambda_context)["token"])
    only_pool = self_service(
        rest_event, lambda_context, "leave-talent-pool", issue(rest_event, lambda_context, "P-2")["token"]
    )

    assert first[0] == 200 and first[1]["removed"] == {"registration": 1, "candidate": 1}
    left = {i["sk"]["S"] for i in scan(ddb, RETENTION_TABLE) if i.get("person_key") == _s(person_pk("acme", "P-1"))}
    assert left == {"PERSON", "APPLICATION#A-1", "APPLICATION#A-2", "CANDIDATE#P-1"}
    assert ddb.get_item(TableName=RETENTION_TABLE, Key=candidate_key("acme", "V-2", "P-1"))["Item"]["status"] == _s(
        "invited"
    )
    person = ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1"))["Item"]
    assert person["refs"] == {"N": "2"} and person_data(retention_world, "P-1", ddb)["name"] == NAME
    # A person whose only reason to be here was the pool is forgotten
    assert only_pool[0] == 200 and only_pool[1]["removed"] == {"registration": 1, "person": 1}
    assert "Item" not in ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-2"))


# --- links ----------------------------------------------------------------------------------------------------------


def test_a_link_works_once_and_not_after_it_expires(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11: "The ATS asks for a one-time, signed, short-lived link for an applicant"."""
    seed_world(ddb, retention_world)
    clock.freeze(NOW)
    link = issue(rest_event, lambda_context, ttl_minutes=5)
    assert link["expires_at"].startswith("2026-11-26T10:05:00")
    assert self_service(rest_event, lambda_context, "access", link["token"])[0] == 200
    again = self_service(rest_event, lambda_context, "erasure", link["token"])
    assert again[0] == 401 and again[1]["error"]["message"] == "the link is not valid: ask for a new one"

    late = issue(rest_event, lambda_context, ttl_minutes=5)["token"]
    clock.freeze(NOW + timedelta(minutes=5))
    assert self_service(rest_event, lambda_context, "erasure", late)[0] == 401
    assert "Item" in ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1"))
    reasons = [e.reason for e in DynamoAuditLog(AUDIT_TABLE).entries("acme") if e.outcome is Outcome.DENIED]
    assert reasons == ["link already used or unknown", "link expired"]
    bad_ttl = call(
        rest_event,
        lambda_context,
        "subjects",
        "POST",
        "/v1/people/{person_id}/self-service-links",
        {"person_id": "P-1"},
        claims=ATS_ACME,
        body={"ttl_minutes": 1441},
    )
    unknown = call(
        rest_event,
        lambda_context,
        "subjects",
        "POST",
        "/v1/people/{person_id}/self-service-links",
        {"person_id": "P-9"},
        claims=ATS_ACME,
        body={},
    )
    recruiter = call(
        rest_event,
        lambda_context,
        "subjects",
        "POST",
        "/v1/people/{person_id}/self-service-links",
        {"person_id": "P-1"},
        claims=claims(tenant="acme", groups="recruiter"),
        body={},
    )
    assert (bad_ttl[0], unknown[0], recruiter[0]) == (422, 404, 403)


def test_a_forged_or_another_tenants_token_touches_nothing(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11: "A recruiter of `acme` reaches no `globex` record by id, list or search." (nor a globex token)."""
    seed_world(ddb, retention_world)
    seed_person(ddb, retention_world, "G-1", refs=0, tenant="globex")
    token = issue(rest_event, lambda_context)["token"]
    payload, signature = token.split(".")
    claims_ = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # A globex link, its payload re-pointed at acme's person: the signature is globex's, not acme's
    status, globex_link = call(
        rest_event,
        lambda_context,
        "subjects",
        "POST",
        "/v1/people/{person_id}/self-service-links",
        {"person_id": "G-1"},
        claims=ATS_GLOBEX,
        body={},
    )
    assert status == 201
    g_payload, g_signature = globex_link["token"].split(".")
    g_claims = json.loads(base64.urlsafe_b64decode(g_payload + "=" * (-len(g_payload) % 4)))
    retargeted = (
        base64.urlsafe_b64encode(
            json.dumps({**g_claims, "t": "acme", "p": "P-1"}, separators=(",", ":"), sort_keys=True).encode()
        )
        .decode()
        .rstrip("=")
    )
    forged = base64.urlsafe_b64encode(json.dumps({**claims_, "p": "P-2"}).encode()).decode().rstrip("=")

    attempts = [
        f"{retargeted}.{g_signature}",
        f"{forged}.{signature}",
        f"{payload}.h1:{'0' * 64}",
        "not-a-token-at-all",
        f"{base64.urlsafe_b64encode(json.dumps({**claims_, 't': 'initech'}).encode()).decode()}.{signature}",
    ]
    answers = [self_service(rest_event, lambda_context, "erasure", t) for t in attempts]

    assert [a[0] for a in answers] == [401] * 5
    assert len({a[1]["error"]["message"] for a in answers}) == 1
    assert person_data(retention_world, "P-1", ddb)["email"] == EMAIL
    gateway = DynamoAuditLog(AUDIT_TABLE).entries(GATEWAY_TENANT)
    assert [e.reason for e in gateway] == [
        "signature not verified",
        "signature not verified",
        "signature not verified",
        "malformed token",
        "unknown tenant",
    ]
    # The genuine token still works afterwards
    assert self_service(rest_event, lambda_context, "erasure", token)[0] == 200


# --- holds ----------------------------------------------------------------------------------------------------------


def test_holds_are_idempotent_checked_listed_and_a_vacancy_hold_spares_fingerprints(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11: "legal holds on a person, application or vacancy: place and release them, with a reason, an owner
    and a review date"."""
    seed_world(ddb, retention_world)
    base = {"reason": "audit", "owner": "legal", "review_at": "2099-01-01T00:00:00Z"}
    vacancy = {**base, "subject_kind": "vacancy", "subject_id": "V-1"}

    def put(hold_id: str, body: dict[str, Any], who: dict[str, str] = COMPLIANCE) -> tuple[int, dict[str, Any]]:
        return call(
            rest_event,
            lambda_context,
            "holds",
            "PUT",
            "/v1/legal-holds/{hold_id}",
            {"hold_id": hold_id},
            claims=who,
            body=body,
        )

    first, repeat = put("H-V", vacancy), put("H-V", vacancy)
    assert (first[0], repeat[0]) == (201, 200) and first[1]["records_held"] == 2  # vacancy + application, not FP
    fp = ddb.get_item(TableName=RETENTION_TABLE, Key=fingerprint_key("acme", "V-1", "h1:" + "ab" * 32))["Item"]
    assert "holds" not in fp
    application = {**base, "subject_kind": "application", "subject_id": "A-2", "vacancy_id": "V-2"}
    assert put("H-A", application)[0] == 201
    assert ddb.get_item(TableName=RETENTION_TABLE, Key=application_key("acme", "V-2", "A-2"))["Item"]["holds"] == {
        "SS": ["H-A"]
    }
    assert put("H-V", {**vacancy, "subject_id": "V-2"})[0] == 409
    assert put("H-X", {**vacancy, "subject_id": "V-404"})[0] == 404
    assert put("H-Y", {**vacancy, "review_at": "2001-01-01T00:00:00Z"})[0] == 400
    assert put("H-Z", {**base, "subject_kind": "application", "subject_id": "A-2"})[0] == 400
    assert put("H-R", vacancy, claims(tenant="acme", groups="recruiter"))[0] == 403
    admin = claims(tenant="acme", groups="company_admin")
    assert put("H-P", {**base, "subject_kind": "person", "subject_id": "P-1"}, admin)[0] == 201
    call(
        rest_event,
        lambda_context,
        "holds",
        "POST",
        "/v1/legal-holds/{hold_id}/release",
        {"hold_id": "H-A"},
        claims=COMPLIANCE,
        body={"reason": "done"},
    )

    def page(**query: str) -> dict[str, Any]:
        status, body = call(
            rest_event, lambda_context, "holds", "GET", "/v1/legal-holds", claims=COMPLIANCE, query=query
        )
        assert status == 200, body
        return body

    assert [h["hold_id"] for h in page()["holds"]] == ["H-P", "H-V"]
    one = page(status="all", limit="2")
    two = page(status="all", limit="2", cursor=one["next_cursor"])
    assert [h["hold_id"] for h in one["holds"] + two["holds"]] == ["H-A", "H-P", "H-V"] and two["next_cursor"] is None
    got = call(
        rest_event, lambda_context, "holds", "GET", "/v1/legal-holds/{hold_id}", {"hold_id": "H-A"}, claims=COMPLIANCE
    )
    assert got[0] == 200 and got[1]["release_reason"] == "done"
    theirs = call(
        rest_event,
        lambda_context,
        "holds",
        "GET",
        "/v1/legal-holds/{hold_id}",
        {"hold_id": "H-A"},
        claims=claims(tenant="globex", groups="compliance_officer"),
    )
    assert theirs[0] == 404


# --- telling the ATS --------------------------------------------------------------------------------------------------


def _sqs_event(event: RecordPurged) -> dict[str, Any]:
    body = {
        "version": "0",
        "id": "9f1c",
        "detail-type": "RecordPurged",
        "source": "ats.retention",
        "account": ACCOUNT,
        "time": "2026-11-26T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": json.loads(event.detail()),
    }
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185",
                },
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:notify",
                "awsRegion": REGION,
            }
        ]
    }


def test_the_ats_is_told_of_a_removal_by_a_signed_webhook_and_a_refusal_is_retried(
    retention_world: RetentionWorld, ddb: DynamoDBClient, lambda_context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: "The ATS is told of every removal, so that it deletes its own copy: a signed outbound webhook"."""
    received: list[tuple[dict[str, str], bytes]] = []
    answers = [204, 500]

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append(
                ({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(int(self.headers["Content-Length"])))
            )
            self.send_response(answers.pop(0))
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    enable_socket()
    socket_allow_hosts(["127.0.0.1"])
    server = HTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from functions.retention.handlers import notify

        monkeypatch.setattr(notify, "sender", notify.UrllibSender(allow_http_hosts=frozenset({"127.0.0.1"})))
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks/retention"
        ddb.put_item(
            TableName=RETENTION_TABLE,
            Item=to_item(RetentionPolicy(tenant="acme", notification_url=url), policy_key("acme")),
        )
        event = RecordPurged(
            tenant="acme",
            record_kind=PurgedKind.APPLICATION,
            record_id="A-1",
            vacancy_id="V-1",
            person_id="P-1",
            reason=PurgeReason.SELF_ERASURE,
            request_id="dsr-1",
        )

        delivered = notify.lambda_handler(_sqs_event(event), lambda_context)
        refused = notify.lambda_handler(_sqs_event(event), lambda_context)
    finally:
        server.shutdown()

    assert delivered == {"batchItemFailures": []}
    assert refused == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    headers, body = received[0]
    secret = json.loads(
        boto3.client("secretsmanager", region_name=REGION).get_secret_value(
            SecretId=f"{TENANT_SECRET_PREFIX}acme/webhook/outbound"
        )["SecretString"]
    )
    key = base64.b64decode(secret["keys"][secret["current"]])
    verified = StandardWebhooksVerifier().verify(body=body, headers=headers, secrets=[key], now=clock.now())
    assert verified.event_id == event.event_id
    assert json.loads(body) | {"occurred_at": None} == {
        "type": "retention.record_purged",
        "event_id": event.event_id,
        "tenant": "acme",
        "occurred_at": None,
        "record_kind": "application",
        "record_id": "A-1",
        "vacancy_id": "V-1",
        "person_id": "P-1",
        "reason": "self_erasure",
        "request_id": "dsr-1",
    }


def test_no_notification_url_means_nothing_to_send(
    retention_world: RetentionWorld, lambda_context: LambdaContext
) -> None:
    from functions.retention.handlers import notify

    event = RecordPurged(tenant="acme", record_kind=PurgedKind.PERSON, record_id="P-1", reason=PurgeReason.SCHEDULE)
    assert notify.lambda_handler(_sqs_event(event), lambda_context) == {"batchItemFailures": []}
