"""Use cases: the ATS reports its vacancies as they happen; people and integrations read them back.

A report is idempotent on the ATS's vacancy id: repeating it changes nothing and emits nothing. A vacancy's
phases only move forward (open, closed, archived), since the retention timeline is cumulative. Each accepted
change emits `VacancyChanged`; the event id is stored with the change and the item keeps an outbox flag until the
event is on the bus, so a report retried after a publish failure publishes the same event again rather than
losing it.
"""

from __future__ import annotations

import uuid

from functions.retention.dal.vacancies import StaleWrite, VacancyStore
from functions.retention.models.entities import Vacancy, VacancyKind, VacancyStatus
from functions.retention.models.events import VacancyChanged
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import Conflict
from shared.events import EventPublisher
from shared.permissions import Permission, authorize, ensure_tenant

_ATTEMPTS = 3


def report_vacancy(
    actor: Actor,
    vacancy_id: str,
    *,
    kind: VacancyKind,
    status: VacancyStatus,
    dates: dict[str, object],
    store: VacancyStore,
    publisher: EventPublisher,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[Vacancy, bool]:
    """Record what the ATS reports about `vacancy_id`; return the vacancy and whether it was new.

    Raises Conflict when the report moves the vacancy back to an earlier phase or changes its kind.
    """
    authorize(
        actor,
        Permission.REPORT_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    for _ in range(_ATTEMPTS):
        current = store.get(actor.tenant, vacancy_id)
        proposed = Vacancy(
            tenant=actor.tenant,
            vacancy_id=vacancy_id,
            kind=kind,
            status=status,
            reported_at=clock.now(),
            version=current.version + 1 if current else 1,
            previous_status=current.status if current else None,
            event_id=str(uuid.uuid4()),
            event_pending=True,
            **dates,
        )
        if current is not None and current.same_facts(proposed):
            if current.event_pending:
                _publish(current, store=store, publisher=publisher, correlation_id=request_id)
            return current, False
        if current is not None:
            _check_transition(current, proposed)
        try:
            store.save(proposed, previous_version=current.version if current else None)
        except StaleWrite:
            continue  # another report of the same vacancy landed first: judge this one against it
        _publish(proposed, store=store, publisher=publisher, correlation_id=request_id)
        return proposed, current is None
    raise Conflict(f"vacancy {vacancy_id} kept changing while this report was applied: retry")


def get_vacancy(
    actor: Actor,
    vacancy_id: str,
    *,
    store: VacancyStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> Vacancy:
    """The caller's tenant's vacancy `vacancy_id`; NotFound for a missing one and for another tenant's alike."""
    authorize(
        actor,
        Permission.READ_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    vacancy = store.get(actor.tenant, vacancy_id)
    ensure_tenant(actor, vacancy.tenant if vacancy else None, "vacancy")
    assert vacancy is not None  # ensure_tenant raised otherwise
    return vacancy


def _check_transition(current: Vacancy, proposed: Vacancy) -> None:
    if proposed.kind != current.kind:
        raise Conflict(f"vacancy {current.vacancy_id} is a {current.kind.value} vacancy; its kind cannot change")
    if proposed.status.rank < current.status.rank:
        raise Conflict(
            f"vacancy {current.vacancy_id} is {current.status.value}; it cannot go back to {proposed.status.value}"
        )


def _publish(
    vacancy: Vacancy,
    *,
    store: VacancyStore,
    publisher: EventPublisher,
    correlation_id: str,
) -> None:
    publisher.publish(
        [
            VacancyChanged(
                tenant=vacancy.tenant,
                event_id=vacancy.event_id,
                occurred_at=vacancy.reported_at,
                correlation_id=correlation_id,
                vacancy_id=vacancy.vacancy_id,
                kind=vacancy.kind,
                status=vacancy.status,
                previous_status=vacancy.previous_status,
                revision=vacancy.version,
            )
        ]
    )
    store.mark_published(vacancy)
