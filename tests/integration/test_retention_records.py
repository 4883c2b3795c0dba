"""Applications, candidates, talent-pool registrations and fingerprints end to end in process: REST events into
functions/retention/handlers/records.py, the retention and keys tables, KMS, the tenant secrets and the bus behind,
on moto."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.retention.dal.items import key, person_key, to_item, vacancy_key, vacancy_pk
from functions.retention.dal.vault import PersonVault
from functions.retention.models.entities import Vacancy, VacancyKind, VacancyStatus
from tests.integration.conftest import (
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
ATS_GLOBEX = access_claims(client_id="ats-globex", tenant="globex", scope="ats/retention.write ats/retention.read")
RECRUITER = claims(tenant="acme", groups="recruiter")
ANA = {"name": "Ana Lima", "email": "ana.lima@example.com", "phone": "+44 20 7946 0958"}

_ROUTES = {
    "applications": "/v1/vacancies/{vacancy_id}/applications/{application_id}",
    "candidates": "/v1/vacancies/{vacancy_id}/candidates/{person_id}",
    "registrations": "/v1/vacancies/{vacancy_id}/registrations/{person_id}",
}


def _call(
    rest_event: RestEventFactory,
    context: LambdaContext,
    method: str,
    kind: str,
    vacancy_id: str,
    record_id: str,
    who: dict[str, str],
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    from functions.retention.handlers import records

    template = _ROUTES[kind]
    id_name = "application_id" if kind == "applications" else "person_id"
    event = rest_event(f"/v1/vacancies/{vacancy_id}/{kind}/{record_id}", method=method, claims=who)
    event["resource"] = event["requestContext"]["resourcePath"] = template
    event["pathParameters"] = {"vacancy_id": vacancy_id, id_name: record_id}
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    response = records.lambda_handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def _vacancy(
    ddb: DynamoDBClient,
    vacancy_id: str,
    *,
    tenant: str = "acme",
    kind: VacancyKind = VacancyKind.STANDARD,
    status: VacancyStatus = VacancyStatus.OPEN,
) -> None:
    """A vacancy as the vacancy routes store it (written directly: this module tests the records routes)."""
    opened = datetime(2026, 1, 5, 9, tzinfo=UTC)
    vacancy = Vacancy(
        tenant=tenant,
        vacancy_id=vacancy_id,
        kind=kind,
        status=status,
        opened_at=opened,
        closed_at=opened if status is not VacancyStatus.OPEN else None,
        archived_at=opened if status in (VacancyStatus.ARCHIVED, VacancyStatus.REMOVED) else None,
        removed_at=opened if status is VacancyStatus.REMOVED else None,
        reported_at=opened,
        version=1,
    )
    ddb.put_item(TableName=RETENTION_TABLE, Item=to_item(vacancy, vacancy_key(tenant, vacancy_id)))


def _application(person_id: str = "P-1", person: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "person": person or ANA,
        "submitted_at": "2026-02-01T10:00:00Z",
        "source": "job_board",
        "stages": ["applied"],
        **extra,
    }


def _apply(
    rest_event: RestEventFactory,
    context: LambdaContext,
    vacancy_id: str,
    application_id: str,
    body: dict[str, Any],
    who: dict[str, str] = ATS_ACME,
) -> tuple[int, dict[str, Any]]:
    return _call(rest_event, context, "PUT", "applications", vacancy_id, application_id, who, body)


def _partition(ddb: DynamoDBClient, pk: str) -> list[dict[str, Any]]:
    return ddb.query(
        TableName=RETENTION_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True,
    )["Items"]


def _fingerprint_items(ddb: DynamoDBClient, vacancy_id: str, tenant: str = "acme") -> list[dict[str, Any]]:
    return [i for i in _partition(ddb, vacancy_pk(tenant, vacancy_id)) if i["sk"]["S"].startswith("FP#")]


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail-type"] for e in events]


# --- applications -----------------------------------------------------------------------------------------------


def test_an_application_is_recorded_once_and_a_repeat_changes_nothing_but_publishes_again(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    _vacancy(ddb, "V-1")

    first = _apply(rest_event, lambda_context, "V-1", "A-1", _application())
    first_events = published(retention_world)
    again = _apply(rest_event, lambda_context, "V-1", "A-1", _application())
    again_events = published(retention_world)

    assert first[0] == 201 and again[0] == 200
    assert first[1] == again[1]
    assert (first[1]["duplicate"], first[1]["version"], first[1]["stages"]) == (False, 1, ["applied"])
    assert "Ana" not in json.dumps(first[1]) and "example.com" not in json.dumps(first[1])
    assert _types(first_events) == _types(again_events) == ["ApplicationReceived"]
    assert first_events[0]["detail"]["metadata"]["event_id"] == again_events[0]["detail"]["metadata"]["event_id"]
    person = ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1"))["Item"]
    assert person["refs"] == {"N": "1"} and set(person["data"]["M"]) == {"name", "email", "phone"}
    assert len(_fingerprint_items(ddb, "V-1")) == 1


def test_a_later_submission_updates_stages_and_outcome_only(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    _vacancy(ddb, "V-1")
    _apply(rest_event, lambda_context, "V-1", "A-1", _application())

    later = _apply(
        rest_event,
        lambda_context,
        "V-1",
        "A-1",
        _application(stages=["applied", "interview"], outcome="rejected", person={**ANA, "name": "Someone Else"}),
    )
    read = _call(rest_event, lambda_context, "GET", "applications", "V-1", "A-1", RECRUITER)

    assert later[0] == 200 and (later[1]["stages"], later[1]["outcome"], later[1]["version"]) == (
        ["applied", "interview"],
        "rejected",
        2,
    )
    assert read == (200, later[1])
    person = ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1"))["Item"]
    assert person["refs"] == {"N": "1"}
    opened = PersonVault(RETENTION_KEYS_TABLE, retention_world.data_key).open(
        "acme", "P-1", {k: v["S"] for k, v in person["data"]["M"].items()}
    )
    assert opened["name"] == "Ana Lima"  # a later submission changes stages and outcome only


def test_the_vacancy_must_exist_take_applications_and_not_be_removed(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    _vacancy(ddb, "V-GONE", status=VacancyStatus.REMOVED)
    _vacancy(ddb, "POOL", kind=VacancyKind.TALENT_POOL)

    missing = _apply(rest_event, lambda_context, "V-NONE", "A-1", _application())
    removed = _apply(rest_event, lambda_context, "V-GONE", "A-1", _application())
    pool = _apply(rest_event, lambda_context, "POOL", "A-1", _application())

    assert missing[0] == 404 and missing[1]["error"]["message"] == "no vacancy"
    assert removed[0] == 409 and pool[0] == 409 and "registrations" not in pool[1]["error"]["message"]
    assert "talent-pool" in pool[1]["error"]["message"]
    assert ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1")).get("Item") is None
    assert published(retention_world) == []


def test_an_unparsable_phone_is_a_400_naming_the_field_and_stores_nothing(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    _vacancy(ddb, "V-1")

    status, body = _apply(rest_event, lambda_context, "V-1", "A-1", _application(person={**ANA, "phone": "ring me"}))

    assert status == 400 and body["error"]["details"][0]["loc"] == ["body", "person", "phone"]
    assert "ring me" not in json.dumps(body)
    assert [i["sk"]["S"] for i in _partition(ddb, vacancy_pk("acme", "V-1"))] == ["VACANCY"]


def test_a_national_phone_is_read_in_the_phone_region_given(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    _vacancy(ddb, "V-1")
    us = {**ANA, "phone": "(201) 555-0123", "phone_region": "US"}

    assert _apply(rest_event, lambda_context, "V-1", "A-1", _application(person=us))[0] == 201
    person = ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1"))["Item"]
    opened = PersonVault(RETENTION_KEYS_TABLE, retention_world.data_key).open(
        "acme", "P-1", {k: v["S"] for k, v in person["data"]["M"].items()}
    )
    assert opened["phone"] == "+12015550123"


# --- fingerprints -----------------------------------------------------------------------------------------------


def test_a_reapplication_with_the_emails_case_and_spaces_changed_is_a_duplicate_and_another_email_is_not(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed 002: "If the fingerprint matches an existing one, then the application is identified as a
    duplicate." """
    _vacancy(ddb, "V-1")
    _apply(rest_event, lambda_context, "V-1", "A-1", _application())
    published(retention_world)

    again = _apply(
        rest_event, lambda_context, "V-1", "A-2", _application("P-9", {**ANA, "email": "  ANA.Lima@EXAMPLE.com "})
    )
    again_events = published(retention_world)
    other = _apply(
        rest_event, lambda_context, "V-1", "A-3", _application("P-10", {**ANA, "email": "ana.lima2@example.com"})
    )

    assert again[0] == 201 and again[1]["duplicate"] is True
    assert _types(again_events) == ["ApplicationReceived", "DuplicateApplicationDetected"]
    duplicate = again_events[1]["detail"]["data"]
    assert duplicate == {"vacancy_id": "V-1", "application_id": "A-2", "key_version": "1"}
    assert other[0] == 201 and other[1]["duplicate"] is False
    assert len(_fingerprint_items(ddb, "V-1")) == 2  # the duplicate's fingerprint was already there


def test_a_duplicate_is_still_flagged_after_the_original_applicants_data_was_erased(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed 002: "These fingerprints are stored anonymously against vacancies and are used to identify attempted
    duplicate applications." The fingerprint survives the erasure of the person it came from."""
    _vacancy(ddb, "V-1")
    _apply(rest_event, lambda_context, "V-1", "A-1", _application())
    # The applicant erases themselves: their person item, their key and their application go
    ddb.delete_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1"))
    ddb.delete_item(TableName=RETENTION_TABLE, Key=key(vacancy_pk("acme", "V-1"), "APPLICATION#A-1"))
    PersonVault(RETENTION_KEYS_TABLE, retention_world.data_key).shred("acme", "P-1")

    again = _apply(
        rest_event, lambda_context, "V-1", "A-2", _application("P-1", {**ANA, "email": "Ana.Lima@Example.com"})
    )

    assert again[0] == 201 and again[1]["duplicate"] is True


def test_a_fingerprint_item_holds_no_person_or_application_id_and_nothing_reversible(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed 002: "There is no way to identify and derive any personal data of an applicant from a
    fingerprint." """
    _vacancy(ddb, "V-1")
    _apply(rest_event, lambda_context, "V-1", "A-1", _application())

    (item,) = _fingerprint_items(ddb, "V-1")

    assert set(item) == {"pk", "sk", "tenant"}
    assert "P-1" not in json.dumps(item) and "A-1" not in json.dumps(item)
    prefix, version, digest = item["sk"]["S"].split("#")
    assert (prefix, version, len(digest)) == ("FP", "h1", 64)


def _count_reads(ddb_client: Any) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, json.loads(params["body"])))

    ddb_client.meta.events.register("before-call.dynamodb", hook)
    return calls


def _reads_of_fingerprints(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The DynamoDB requests (by operation) that read any fingerprint item."""
    return [op for op, body in calls if '"FP#' in json.dumps(body)]


@pytest.mark.parametrize("stored", [10, 1000])
def test_a_duplicate_check_is_one_read_request_whatever_the_number_of_fingerprints(
    stored: int,
    retention_world: RetentionWorld,
    ddb: DynamoDBClient,
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
) -> None:
    """Seed 002: "it is compared against all the fingerprints stored against the vacancy": a keyed look-up does
    that in one request, not a scan of `stored` items."""
    from shared.aws import client

    _vacancy(ddb, "V-1")
    _apply(rest_event, lambda_context, "V-1", "A-0", _application())
    others: list[Any] = [
        {
            "PutRequest": {
                "Item": {**key(vacancy_pk("acme", "V-1"), f"FP#h1#{os.urandom(32).hex()}"), "tenant": {"S": "acme"}}
            }
        }
        for _ in range(stored - 1)
    ]
    for start in range(0, len(others), 25):
        ddb.batch_write_item(RequestItems={RETENTION_TABLE: others[start : start + 25]})
    assert len(_fingerprint_items(ddb, "V-1")) == stored

    calls = _count_reads(client("dynamodb"))
    duplicate = _apply(
        rest_event, lambda_context, "V-1", "A-1", _application("P-2", {**ANA, "email": "ANA.LIMA@example.com"})
    )
    calls_for_duplicate = list(calls)
    calls.clear()
    fresh = _apply(rest_event, lambda_context, "V-1", "A-2", _application("P-3", {**ANA, "email": "new@example.com"}))

    assert duplicate[1]["duplicate"] is True and fresh[1]["duplicate"] is False
    assert _reads_of_fingerprints(calls_for_duplicate) == ["BatchGetItem"]  # found: nothing to store
    # the new applicant: one read, then the conditional put of its fingerprint in the transaction
    assert _reads_of_fingerprints(calls) == ["BatchGetItem", "TransactWriteItems"]
    reads = {"GetItem", "BatchGetItem", "Query", "Scan"}
    retention_reads = [
        op
        for op, body in calls_for_duplicate
        if op in reads and RETENTION_TABLE in (body.get("TableName"), *body.get("RequestItems", {}))
    ]
    assert retention_reads == ["BatchGetItem", "BatchGetItem"]  # the route's state, then the duplicate check


def test_a_fingerprint_stored_under_an_old_key_version_still_matches_after_rotation(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Key rotation keeps old versions usable for look-ups until their vacancies are gone."""
    from aws_lambda_powertools.utilities import parameters

    from shared.secrets import rotate_keyring

    _vacancy(ddb, "V-1")
    _apply(rest_event, lambda_context, "V-1", "A-1", _application())
    secrets = boto3.client("secretsmanager", region_name=REGION)
    name = f"{TENANT_SECRET_PREFIX}acme/hmac"
    secrets.put_secret_value(
        SecretId=name, SecretString=rotate_keyring(secrets.get_secret_value(SecretId=name)["SecretString"])
    )
    parameters.clear_caches()  # the functions' secret cache expiring
    published(retention_world)

    again = _apply(
        rest_event, lambda_context, "V-1", "A-2", _application("P-2", {**ANA, "email": "ANA.LIMA@example.com"})
    )
    events = published(retention_world)

    assert again[1]["duplicate"] is True
    assert events[1]["detail"]["data"]["key_version"] == "1"
    # the match under version 1 is kept, and the current version's fingerprint is stored beside it
    assert sorted(i["sk"]["S"].split("#")[1] for i in _fingerprint_items(ddb, "V-1")) == ["h1", "h2"]
    third = _apply(
        rest_event, lambda_context, "V-1", "A-3", _application("P-3", {**ANA, "email": "ana.lima@EXAMPLE.com"})
    )
    assert third[1]["duplicate"] is True and len(_fingerprint_items(ddb, "V-1")) == 2


def test_the_policy_decides_which_fields_count(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    from functions.retention.dal.items import policy_key
    from functions.retention.models.entities import FingerprintField, RetentionPolicy

    policy = RetentionPolicy(
        tenant="acme", fingerprint_fields=(FingerprintField.EMAIL, FingerprintField.PHONE), version=1
    )
    ddb.put_item(TableName=RETENTION_TABLE, Item=to_item(policy, policy_key("acme")))
    _vacancy(ddb, "V-1")
    _apply(rest_event, lambda_context, "V-1", "A-1", _application())

    other_phone = _apply(
        rest_event, lambda_context, "V-1", "A-2", _application("P-2", {**ANA, "phone": "+44 20 7946 0959"})
    )
    same_phone = _apply(
        rest_event, lambda_context, "V-1", "A-3", _application("P-3", {**ANA, "phone": "020 7946 0958"})
    )

    assert other_phone[1]["duplicate"] is False and same_phone[1]["duplicate"] is True


# --- candidates and registrations -------------------------------------------------------------------------------


def _register(
    rest_event: RestEventFactory,
    context: LambdaContext,
    vacancy_id: str,
    person_id: str,
    who: dict[str, str] = ATS_ACME,
) -> tuple[int, dict[str, Any]]:
    body = {"registered_at": "2026-01-10T08:00:00Z", "person": ANA}
    return _call(rest_event, context, "PUT", "registrations", vacancy_id, person_id, who, body)


def _candidate(
    rest_event: RestEventFactory, context: LambdaContext, vacancy_id: str, person_id: str, status: str
) -> tuple[int, dict[str, Any]]:
    body = {"status": status, "matched_at": "2026-02-01T00:00:00Z"}
    return _call(rest_event, context, "PUT", "candidates", vacancy_id, person_id, ATS_ACME, body)


def test_registration_is_only_against_a_talent_pool_vacancy_and_is_idempotent(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed 002: "Talent pool vacancies are special types of vacancy that people can register against"; they are
    kept "for between six months and three years from the point of their registration"."""
    _vacancy(ddb, "POOL", kind=VacancyKind.TALENT_POOL)
    _vacancy(ddb, "V-1")

    first = _register(rest_event, lambda_context, "POOL", "P-1")
    again = _register(rest_event, lambda_context, "POOL", "P-1")
    standard = _register(rest_event, lambda_context, "V-1", "P-1")

    assert first[0] == 201 and again == (200, first[1])
    assert first[1]["registration_due"].startswith("2029-01-10")  # the default: 3 years
    assert standard[0] == 409
    person = ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1"))["Item"]
    assert person["refs"] == {"N": "1"}


def test_a_candidate_goes_from_suggested_to_invited_to_applied_through_an_application(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed 002: "If someone applies who was a "Candidate" then they are linked to the vacancy as an Applicant.
    Their candidate record is updated with the notion of the application for reporting purposes." """
    _vacancy(ddb, "POOL", kind=VacancyKind.TALENT_POOL)
    _vacancy(ddb, "V-1")
    _register(rest_event, lambda_context, "POOL", "P-1")

    suggested = _candidate(rest_event, lambda_context, "V-1", "P-1", "suggested")
    invited = _candidate(rest_event, lambda_context, "V-1", "P-1", "invited")
    backwards = _candidate(rest_event, lambda_context, "V-1", "P-1", "suggested")
    reported_applied = _candidate(rest_event, lambda_context, "V-1", "P-1", "applied")
    applied = _apply(rest_event, lambda_context, "V-1", "A-1", _application("P-1", candidate=True))
    read = _call(rest_event, lambda_context, "GET", "candidates", "V-1", "P-1", RECRUITER)

    assert suggested[0] == 201 and suggested[1]["candidate_due"].startswith("2026-08-01")  # 6 months by default
    assert invited[0] == 200 and invited[1]["status"] == "invited" and invited[1]["candidate_due"] is None
    assert backwards[0] == 409 and reported_applied[0] == 400
    assert applied[0] == 201 and applied[1]["from_candidate"] is True
    assert read[0] == 200
    assert (read[1]["status"], read[1]["application_id"], read[1]["candidate_due"]) == ("applied", "A-1", None)
    item = ddb.get_item(TableName=RETENTION_TABLE, Key=key(vacancy_pk("acme", "V-1"), "CANDIDATE#P-1"))["Item"]
    assert "candidate_due" not in item
    person = ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1"))["Item"]
    assert person["refs"] == {"N": "2"}  # the registration and the application; candidates do not count


def test_a_removed_candidate_keeps_its_talent_pool_registration(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Seed 002: "If Candidates are removed, they are not removed from the Talent pool, instead, only the link as
    a "Candidate" the the new vacancy is removed." """
    _vacancy(ddb, "POOL", kind=VacancyKind.TALENT_POOL)
    _vacancy(ddb, "V-1")
    _register(rest_event, lambda_context, "POOL", "P-1")
    _candidate(rest_event, lambda_context, "V-1", "P-1", "suggested")
    published(retention_world)

    removed = _candidate(rest_event, lambda_context, "V-1", "P-1", "removed")
    events = published(retention_world)

    assert removed[0] == 200 and removed[1]["status"] == "removed"
    assert _call(rest_event, lambda_context, "GET", "candidates", "V-1", "P-1", RECRUITER)[0] == 404
    assert _call(rest_event, lambda_context, "GET", "registrations", "POOL", "P-1", RECRUITER)[0] == 200
    assert ddb.get_item(TableName=RETENTION_TABLE, Key=person_key("acme", "P-1")).get("Item") is not None
    assert _types(events) == ["RecordPurged"]
    assert events[0]["detail"]["data"] == {
        "record_kind": "candidate",
        "record_id": "P-1",
        "vacancy_id": "V-1",
        "person_id": "P-1",
        "reason": "candidate_removed",
        "request_id": None,
    }


def test_a_candidate_must_be_a_known_person(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    _vacancy(ddb, "V-1")

    status, body = _candidate(rest_event, lambda_context, "V-1", "P-404", "suggested")

    assert status == 404 and body["error"]["message"].startswith("no person")


# --- tenants and personal data ----------------------------------------------------------------------------------


def test_acme_reaches_no_globex_record_by_id(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Acceptance: a recruiter of `acme` reaches no `globex` record by id."""
    _vacancy(ddb, "POOL", tenant="globex", kind=VacancyKind.TALENT_POOL)
    _vacancy(ddb, "V-1", tenant="globex")
    _register(rest_event, lambda_context, "POOL", "P-1", who=ATS_GLOBEX)
    _call(
        rest_event,
        lambda_context,
        "PUT",
        "candidates",
        "V-1",
        "P-1",
        ATS_GLOBEX,
        {"status": "suggested", "matched_at": "2026-02-01T00:00:00Z"},
    )
    assert _apply(rest_event, lambda_context, "V-1", "A-1", _application(), who=ATS_GLOBEX)[0] == 201

    reads = [
        _call(rest_event, lambda_context, "GET", kind, vacancy_id, record_id, RECRUITER)
        for kind, vacancy_id, record_id in (
            ("applications", "V-1", "A-1"),
            ("candidates", "V-1", "P-1"),
            ("registrations", "POOL", "P-1"),
        )
    ]
    write = _apply(rest_event, lambda_context, "V-1", "A-1", _application())

    assert [status for status, _ in reads] == [404, 404, 404]
    assert [body["error"]["message"] for _, body in reads] == ["no application", "no candidate", "no registration"]
    assert write[0] == 404  # acme has no vacancy V-1: nothing of globex's is touched


def test_only_integrations_report_records(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    _vacancy(ddb, "V-1")

    assert _apply(rest_event, lambda_context, "V-1", "A-1", _application(), who=RECRUITER)[0] == 403


def test_no_stored_item_holds_a_name_email_or_phone_in_the_clear(
    retention_world: RetentionWorld, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    """Issue 11: personal data lives only on the person item, sealed under the person's own key."""
    _vacancy(ddb, "POOL", kind=VacancyKind.TALENT_POOL)
    _vacancy(ddb, "V-1")
    _register(rest_event, lambda_context, "POOL", "P-1")
    _candidate(rest_event, lambda_context, "V-1", "P-1", "suggested")
    _apply(rest_event, lambda_context, "V-1", "A-1", _application())
    _apply(rest_event, lambda_context, "V-1", "A-2", _application("P-2", {**ANA, "email": " ANA.lima@example.com"}))

    stored = json.dumps(
        [ddb.scan(TableName=table)["Items"] for table in (RETENTION_TABLE, RETENTION_KEYS_TABLE)],
        default=lambda _: "<wrapped data key>",  # KMS ciphertext of the person's key
    ).casefold()

    for needle in ("ana lima", "ana.lima@example.com", "example.com", "7946", "+442079460958", "lima"):
        assert needle not in stored
