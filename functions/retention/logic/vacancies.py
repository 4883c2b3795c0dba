"""Use cases: the ATS reports its vacancies as they happen; people and integrations read them back.

A report is idempotent on the ATS's vacancy id: repeating it changes nothing. A vacancy's phases only move
forward (open, closed, archived; `removed` is the sweep's alone), since the retention timeline is cumulative.
Every accepted report stores the due date of the vacancy's current phase under the tenant's policy
(logic/timeline.py), so the sweep reads only what is due. No other domain reacts to vacancies yet, so no event is
published (see docs/decisions.md: events from API writes will go through a transactional outbox on the table's
stream, so that a write handler needs no EventBridge client).
"""

from __future__ import annotations

import re
from datetime import datetime

from functions.retention.dal.policy import PolicyStore
from functions.retention.dal.vacancies import StaleWrite, VacancyStore
from functions.retention.logic.policy import policy_of, stored_now
from functions.retention.logic.timeline import vacancy_due
from functions.retention.models.entities import (
    VACANCY_ID_PATTERN,
    DueKind,
    RetentionPolicy,
    Vacancy,
    VacancyKind,
    VacancyStatus,
)
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, Conflict
from shared.permissions import Permission, authorize, ensure_tenant

_ATTEMPTS = 3
_VACANCY_ID = re.compile(VACANCY_ID_PATTERN)


def check_vacancy_id(vacancy_id: str) -> str:
    """The ATS's vacancy id if it has the accepted form; BadRequest naming the rule otherwise."""
    if not _VACANCY_ID.match(vacancy_id):
        raise BadRequest(
            "vacancy_id must be 1 to 128 letters, digits or `_ . : -`, starting with a letter or digit",
            details=[{"loc": ["path", "vacancy_id"], "msg": "invalid vacancy id", "type": "value_error"}],
        )
    return vacancy_id


def report_vacancy(
    actor: Actor,
    vacancy_id: str,
    *,
    kind: VacancyKind,
    status: VacancyStatus,
    dates: dict[str, object],
    store: VacancyStore,
    policies: PolicyStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[Vacancy, bool]:
    """Record what the ATS reports about `vacancy_id`, with the due date of its phase under the tenant's
    policy; return the vacancy and whether it was new. A first record inherits the active holds on the vacancy.

    Raises BadRequest for `removed` (the sweep's alone) and Conflict when the report moves the vacancy back to an
    earlier phase (a vacancy the sweep removed cannot be archived again) or changes its kind.
    """
    check_vacancy_id(vacancy_id)
    if status is VacancyStatus.REMOVED:
        raise BadRequest(
            "status removed is set by the retention sweep, never reported",
            details=[{"loc": ["body", "status"], "msg": "removed is not reported", "type": "value_error"}],
        )
    authorize(
        actor,
        Permission.REPORT_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    policy = policy_of(policies, actor.tenant)
    for _ in range(_ATTEMPTS):
        current = store.get(actor.tenant, vacancy_id)
        reported = Vacancy(
            tenant=actor.tenant,
            vacancy_id=vacancy_id,
            kind=kind,
            status=status,
            reported_at=stored_now(),
            version=current.version + 1 if current else 1,
            holds=current.holds if current else frozenset(),
            **dates,
        )
        if current is not None and current.same_facts(reported):
            return current, False
        if current is not None:
            _check_transition(current, reported)
        holds = current.holds if current else store.active_holds(actor.tenant, vacancy_id)
        proposed = reported.model_copy(update={**due_dates(policy, reported, current), "holds": holds})
        try:
            store.save(proposed, previous=current)
        except StaleWrite:
            continue  # another report of the same vacancy landed first: judge this one against it
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
    check_vacancy_id(vacancy_id)
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


def due_dates(policy: RetentionPolicy, vacancy: Vacancy, current: Vacancy | None) -> dict[str, datetime | None]:
    """The due attributes of `vacancy` (its current phase's set, the others None).

    Every limit is an upper limit: archiving reported after the archive was due (the report raced the sweep)
    starts the archived phase when it was due, never later.
    """
    archived_from = vacancy.archived_at
    if archived_from is not None and current is not None and current.archive_due is not None:
        archived_from = min(archived_from, current.archive_due)
    due = vacancy_due(
        policy,
        status=vacancy.status,
        closed_at=vacancy.closed_at,
        archived_at=archived_from,
        removed_at=vacancy.removed_at,
    )
    return {kind.attribute: due.get(kind) for kind in (DueKind.ARCHIVE, DueKind.REMOVAL, DueKind.APPLICANTS)}


def _check_transition(current: Vacancy, proposed: Vacancy) -> None:
    if proposed.kind != current.kind:
        raise Conflict(f"vacancy {current.vacancy_id} is a {current.kind.value} vacancy; its kind cannot change")
    if proposed.status.rank < current.status.rank:
        raise Conflict(
            f"vacancy {current.vacancy_id} is {current.status.value}; it cannot go back to {proposed.status.value}"
        )
