"""The daily sweep's cost over a realistic backlog of due records, every AWS request counted (issue 11 bench).

The mix of 10,000 due records: 40% talent-pool registrations past their limit (each of a person with nothing
else, so the person is forgotten too), 30% suggested candidates past their limit, 30% applications of removed
vacancies whose applicants are due (about 100 per vacancy, each of a person with nothing else: forgotten too).
One person in a hundred has a subject-access export in the archive bucket (`has_exports`), so the purge is paid
for as well. "Removed" counts every record the run reports (vacancies and people included).

The sweep runs through its Lambda handler with no collaborators passed, so every request goes through the
shared clients of shared.aws, which `counted` (benchmarks/retention.py) watches; items read are counted here
from the answers of Query, GetItem and BatchGetItem on the shared DynamoDB client.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

Calls = list[tuple[str, str, dict[str, Any]]]
Counted = Callable[..., AbstractContextManager[Calls]]

TENANT = "acme"
NOW = datetime(2027, 6, 1, 2, 0, tzinfo=UTC)
PAST = NOW - timedelta(days=30)
PER_VACANCY = 100
EXPORT_EVERY = 100  # one person in a hundred asked for a subject-access export


def _items(records: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The seeded items (vacancies, records, people) and the people with an export."""
    from functions.retention.dal.items import (
        application_key,
        candidate_key,
        person_key,
        person_pk,
        registration_key,
        tenant_registry_item,
        to_item,
        vacancy_key,
    )
    from functions.retention.models.entities import CandidateStatus, Vacancy, VacancyKind, VacancyStatus
    from functions.retention.models.people import Application, Candidate, Registration
    from shared import clock

    registrations = records * 4 // 10
    candidates = records * 3 // 10
    applications = records - registrations - candidates
    items: list[dict[str, Any]] = [tenant_registry_item(TENANT)]
    with_exports: list[str] = []
    people = 0

    def person(person_id: str) -> None:
        nonlocal people
        item = {
            **person_key(TENANT, person_id),
            "tenant": {"S": TENANT},
            "person_id": {"S": person_id},
            "person_key": {"S": person_pk(TENANT, person_id)},
            "data": {"M": {"email": {"S": "pdk:v1:bench:sealed"}}},
            "refs": {"N": "1"},
            "created_at": {"S": clock.isoformat(PAST)},
            "updated_at": {"S": clock.isoformat(PAST)},
        }
        if people % EXPORT_EVERY == 0:
            item["has_exports"] = {"BOOL": True}
            with_exports.append(person_id)
        people += 1
        items.append(item)

    def vacancy(vacancy_id: str, *, kind: VacancyKind, removed: bool) -> None:
        fields: dict[str, Any] = {"status": VacancyStatus.OPEN}
        if removed:
            fields = {
                "status": VacancyStatus.REMOVED,
                "closed_at": PAST - timedelta(days=900),
                "archived_at": PAST - timedelta(days=800),
                "removed_at": PAST - timedelta(days=400),
                "applicants_due": PAST,
            }
        entity = Vacancy(
            tenant=TENANT,
            vacancy_id=vacancy_id,
            kind=kind,
            opened_at=PAST - timedelta(days=1000),
            reported_at=PAST - timedelta(days=1000),
            version=1,
            **fields,
        )
        items.append(to_item(entity, vacancy_key(TENANT, vacancy_id)))

    for n in range(registrations):
        pool = f"POOL-{n // PER_VACANCY}"
        if n % PER_VACANCY == 0:
            vacancy(pool, kind=VacancyKind.TALENT_POOL, removed=False)
        pid = f"R-{n}"
        registration = Registration(
            tenant=TENANT,
            vacancy_id=pool,
            person_id=pid,
            registered_at=PAST - timedelta(days=800),
            registration_due=PAST,
        )
        items.append(to_item(registration, registration_key(TENANT, pool, pid), person_key=person_pk(TENANT, pid)))
        person(pid)
    for n in range(candidates):
        open_vacancy = f"OPEN-{n // PER_VACANCY}"
        if n % PER_VACANCY == 0:
            vacancy(open_vacancy, kind=VacancyKind.STANDARD, removed=False)
        pid = f"C-{n}"
        candidate = Candidate(
            tenant=TENANT,
            vacancy_id=open_vacancy,
            person_id=pid,
            status=CandidateStatus.SUGGESTED,
            matched_at=PAST - timedelta(days=200),
            candidate_due=PAST,
        )
        items.append(to_item(candidate, candidate_key(TENANT, open_vacancy, pid), person_key=person_pk(TENANT, pid)))
    for n in range(applications):
        removed = f"GONE-{n // PER_VACANCY}"
        if n % PER_VACANCY == 0:
            vacancy(removed, kind=VacancyKind.STANDARD, removed=True)
        pid = f"A-{n}"
        application = Application(
            tenant=TENANT,
            vacancy_id=removed,
            application_id=f"APP-{n}",
            person_id=pid,
            submitted_at=PAST - timedelta(days=950),
            source="job_board",
        )
        items.append(
            to_item(application, application_key(TENANT, removed, f"APP-{n}"), person_key=person_pk(TENANT, pid))
        )
        person(pid)
    return items, with_exports


@contextmanager
def _items_read() -> Iterator[list[int]]:
    """Items carried by the answers of the shared DynamoDB client's reads, while inside."""
    from shared.aws import client

    total = [0]

    def after(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            total[0] += int(parsed.get("Count", 0))
        elif model.name == "GetItem":
            total[0] += int("Item" in parsed)
        elif model.name == "BatchGetItem":
            total[0] += sum(len(found) for found in parsed.get("Responses", {}).values())

    events = client("dynamodb").meta.events
    events.register("after-call.dynamodb", after)
    try:
        yield total
    finally:
        events.unregister("after-call.dynamodb", after)


@contextmanager
def _no_transaction_snapshots() -> Iterator[list[int]]:
    """moto deep-copies the whole table once per action of every TransactWriteItems (its rollback snapshot),
    which makes a 10,000-record sweep take hours on moto and tells nothing about AWS: the local runtime's adapter
    (infra/local/adapters.py `transactions_snapshot_items`) snapshots only the targeted items instead. Cancelled
    transactions are counted: the bench refuses a run that had any (its counts would include the retries)."""
    from infra.local.adapters import transactions_snapshot_items
    from shared.aws import client

    transactions_snapshot_items()
    cancelled = [0]

    def after(http_response: Any, model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems" and http_response.status_code != 200:
            cancelled[0] += 1

    events = client("dynamodb").meta.events
    events.register("after-call.dynamodb", after)
    try:
        yield cancelled
    finally:
        events.unregister("after-call.dynamodb", after)


def _context() -> Any:
    return SimpleNamespace(
        function_name="bench-sweep",
        memory_limit_in_mb=512,
        invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:bench-sweep",
        aws_request_id="bench",
        get_remaining_time_in_millis=lambda: 120_000,
    )


def run_counted_sweep(
    records: int, *, counted: Counted, put_directly: Callable[[str, list[dict[str, Any]]], None], table: str
) -> tuple[float, float, Counter[str]]:
    """Seed `records` due records (the mix above), run one real sweep, and return (items read per removed
    record, AWS requests per removed record, requests by `service.Operation`)."""
    from functions.retention.dal.exports import S3ExportStore
    from functions.retention.handlers import sweep as handler
    from shared import clock

    items, with_exports = _items(records)
    put_directly(table, items)
    exports = S3ExportStore(os.environ["ARCHIVE_BUCKET_NAME"])
    for pid in with_exports:
        exports.put_subject_access(TENANT, pid, f"dsr-{pid}", b"{}")

    clock.freeze(NOW)
    try:
        with (
            _no_transaction_snapshots() as cancelled,
            counted("dynamodb", "events", "s3", "kms", "secretsmanager") as calls,
            _items_read() as read,
        ):
            [state] = handler.lambda_handler(
                {"step": "start", "input": {"dry_run": False}, "execution": "bench"}, _context()
            )["tenants"]
            while not state["done"]:
                state = handler.lambda_handler({"step": "page", "state": state}, _context())
            report = handler.lambda_handler({"step": "report", "state": state}, _context())
    finally:
        clock.freeze(None)
    if cancelled[0]:
        raise RuntimeError(f"{cancelled[0]} transaction(s) were cancelled: moto did not roll them back, rerun")
    removed = sum(sum(phase.values()) for phase in report["counts"].values())
    people = report["persons_forgotten"]
    expected_people = records * 4 // 10 + (records - records * 4 // 10 - records * 3 // 10)
    if removed < records or people != expected_people:
        raise RuntimeError(f"the sweep removed {removed} records and {people} people: {report['counts']}")
    by_operation = Counter(f"{service}.{operation}" for service, operation, _ in calls)
    return read[0] / removed, len(calls) / removed, by_operation
