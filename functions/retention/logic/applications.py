"""Use cases: the ATS submits applications (idempotent on its own ids); people and integrations read them back.

The first submission of an application id records the application, creates or updates its person (their data
sealed under their own key, one more ref), checks and stores the applicant's fingerprint, and turns a candidate
of the vacancy into an applicant, in one transaction. Later submissions of the same id change the stages and the
outcome only; an identical repeat changes nothing and publishes its events again (consumers are idempotent).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from functions.retention.dal.people import PersonWrite, StoredPerson
from functions.retention.dal.records import RecordStore, Snapshot, StaleWrite, StoredApplication, VacancyFacts
from functions.retention.logic.fingerprints import (
    Digester,
    ReportedPerson,
    fingerprints,
    key_version,
    normalise_person,
)
from functions.retention.logic.ids import check_id
from functions.retention.models.entities import (
    ApplicationOutcome,
    CandidateStatus,
    VacancyKind,
    VacancyStatus,
)
from functions.retention.models.people import Application, PersonData
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, Conflict, NotFound
from shared.permissions import Permission, authorize, ensure_tenant

if TYPE_CHECKING:
    from shared.events import DomainEvent, EventPublisher

_ATTEMPTS = 3
_CODE = re.compile(r"^[a-z0-9_-]{1,32}$")
# Event ids of an application's events are derived from its ids: a repeat publishes the same event ids, so a
# consumer that deduplicates on event ids sees one event however often the ATS retries.
_EVENT_NAMESPACE = uuid.UUID("6b0f3c1e-2f4a-5d7b-9c8e-0a1b2c3d4e5f")


class Vault(Protocol):
    """functions/retention/dal/vault.py: PersonVault."""

    def seal(self, tenant: str, person_id: str, fields: Mapping[str, str | None]) -> dict[str, str]: ...

    def open(self, tenant: str, person_id: str, sealed: Mapping[str, str]) -> dict[str, str]: ...


@dataclass(frozen=True)
class ApplicationResult:
    application: Application
    created: bool
    matched_key_version: str | None = None


def check_codes(values: Sequence[str], name: str) -> tuple[str, ...]:
    """Closed-set codes (source, stages): never free text, so nothing personal can ride along."""
    for value in values:
        if not _CODE.match(value):
            raise BadRequest(
                f"{name} must be codes of 1 to 32 lower-case letters, digits, `_` or `-`",
                details=[{"loc": ["body", name], "msg": "invalid code", "type": "value_error"}],
            )
    return tuple(values)


def require_vacancy(snapshot: Snapshot, vacancy_id: str, *, talent_pool: bool) -> VacancyFacts:
    """The vacancy a record is reported against: it exists (404), is not removed (409) and is of the kind the
    record needs (409: a talent-pool vacancy takes registrations; the others take applications and candidates)."""
    vacancy = snapshot.vacancy
    if vacancy is None:
        raise NotFound("no vacancy")
    if vacancy.status is VacancyStatus.REMOVED:
        raise Conflict(f"vacancy {vacancy_id} was removed: it takes no more records")
    if talent_pool and vacancy.kind is not VacancyKind.TALENT_POOL:
        raise Conflict(f"vacancy {vacancy_id} is not a talent-pool vacancy: people apply to it, they do not register")
    if not talent_pool and vacancy.kind is VacancyKind.TALENT_POOL:
        raise Conflict(f"vacancy {vacancy_id} is a talent-pool vacancy: people register against it, they do not apply")
    return vacancy


def seal_person(
    vault: Vault, tenant: str, person_id: str, data: PersonData, stored: StoredPerson | None
) -> dict[str, str]:
    """The person's sealed data after this report: the reported fields sealed anew, a field not reported (no
    phone) kept as stored."""
    sealed = vault.seal(tenant, person_id, {"name": data.name, "email": data.email, "phone": data.phone})
    return {**(dict(stored.sealed) if stored else {}), **sealed}


def _matched_version(current: str | None, matched: set[str]) -> str | None:
    """The key version that matched: the current one if it did, else the oldest version that did."""
    if not matched:
        return None
    return key_version(current if current in matched else sorted(matched)[0])


def _events(tenant: str, result: ApplicationResult, correlation_id: str) -> list[DomainEvent]:
    app = result.application

    def event_id(kind: str) -> str:
        return str(uuid.uuid5(_EVENT_NAMESPACE, f"{tenant}/{app.vacancy_id}/{app.application_id}/{kind}"))

    from functions.retention.models.events import (  # an event model is built on a publish only (cold start)
        ApplicationReceived,
        DuplicateApplicationDetected,
    )

    events: list[DomainEvent] = [
        ApplicationReceived(
            tenant=tenant,
            event_id=event_id(ApplicationReceived.detail_type),
            correlation_id=correlation_id,
            vacancy_id=app.vacancy_id,
            application_id=app.application_id,
            duplicate=app.duplicate,
            from_candidate=app.from_candidate,
        )
    ]
    if app.duplicate:
        events.append(
            DuplicateApplicationDetected(
                tenant=tenant,
                event_id=event_id(DuplicateApplicationDetected.detail_type),
                correlation_id=correlation_id,
                vacancy_id=app.vacancy_id,
                application_id=app.application_id,
                key_version=result.matched_key_version or "unknown",
            )
        )
    return events


def submit_application(
    actor: Actor,
    vacancy_id: str,
    application_id: str,
    *,
    person_id: str,
    person: ReportedPerson,
    submitted_at: datetime,
    source: str,
    stages: Sequence[str],
    outcome: ApplicationOutcome,
    store: RecordStore,
    vault: Vault,
    keys: Digester,
    publisher: EventPublisher,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> ApplicationResult:
    """Record what the ATS reports about application `application_id` to `vacancy_id`.

    Raises BadRequest (ids, codes, an email or phone that cannot be one), NotFound (no such vacancy), Conflict
    (a removed or talent-pool vacancy; the application id already belongs to another person).
    """
    check_id(vacancy_id, "vacancy_id", in_path=True)
    check_id(application_id, "application_id", in_path=True)
    check_id(person_id, "person_id", in_path=True)
    check_codes([source], "source")
    stage_codes = check_codes(stages, "stages")
    data = normalise_person(person)
    authorize(
        actor,
        Permission.REPORT_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}/application/{application_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    tenant = actor.tenant
    sealed: dict[str, str] | None = None
    for _ in range(_ATTEMPTS):
        snapshot = store.snapshot(
            tenant, vacancy_id, application_id=application_id, person_id=person_id, candidate=True
        )
        if snapshot.application is not None:
            try:
                result = _resubmitted(snapshot.application, person_id, stage_codes, outcome, store)
            except StaleWrite:
                continue
            publisher.publish(_events(tenant, result, request_id))
            return result
        vacancy = require_vacancy(snapshot, vacancy_id, talent_pool=False)
        found = fingerprints(keys, tenant, vacancy_id, data, snapshot.policy.fingerprint_fields)
        matched = store.matching_fingerprints(tenant, vacancy_id, found.lookups) if found else set()
        matched_version = _matched_version(found.current if found else None, matched)
        candidate = snapshot.candidate
        converting = candidate is not None and candidate.status in (CandidateStatus.SUGGESTED, CandidateStatus.INVITED)
        application = Application(
            tenant=tenant,
            vacancy_id=vacancy_id,
            application_id=application_id,
            person_id=person_id,
            submitted_at=submitted_at,
            source=source,
            stages=stage_codes,
            outcome=outcome,
            duplicate=bool(matched),
            from_candidate=candidate is not None,
            holds=vacancy.holds | (snapshot.person.holds if snapshot.person else frozenset()),
        )
        if sealed is None:
            sealed = seal_person(vault, tenant, person_id, data, snapshot.person)
        result = ApplicationResult(application=application, created=True, matched_key_version=matched_version)
        try:
            store.create_application(
                StoredApplication(application, matched_version),
                person=PersonWrite(tenant=tenant, person_id=person_id, sealed=sealed, new_ref=True),
                # Only the current key version's fingerprint is ever written, and only if it is not there yet.
                fingerprint=found.current if found and found.current not in matched else None,
                candidate=(
                    candidate.model_copy(
                        update={
                            "status": CandidateStatus.APPLIED,
                            "application_id": application_id,
                            "applied_at": submitted_at,
                            "candidate_due": None,
                        }
                    )
                    if candidate is not None and converting
                    else None
                ),
                candidate_was=candidate.status if candidate is not None and converting else None,
            )
        except StaleWrite:
            # A concurrent submission of this id, the same applicant, or a change to the candidate or vacancy:
            # read again, and the next attempt sees it (a duplicate, a later submission, a 404/409).
            continue
        publisher.publish(_events(tenant, result, request_id))
        return result
    raise Conflict(f"application {application_id} kept changing while this submission was applied: retry")


def _resubmitted(
    stored: StoredApplication,
    person_id: str,
    stages: tuple[str, ...],
    outcome: ApplicationOutcome,
    store: RecordStore,
) -> ApplicationResult:
    current = stored.application
    if current.person_id != person_id:
        raise Conflict(f"application {current.application_id} belongs to another person")
    if current.stages == stages and current.outcome is outcome:
        return ApplicationResult(current, created=False, matched_key_version=stored.matched_key_version)
    updated = current.model_copy(update={"stages": stages, "outcome": outcome, "version": current.version + 1})
    store.update_application(updated, previous_version=current.version)
    return ApplicationResult(updated, created=False, matched_key_version=stored.matched_key_version)


def get_application(
    actor: Actor,
    vacancy_id: str,
    application_id: str,
    *,
    store: RecordStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> ApplicationResult:
    """The caller's tenant's application; NotFound for a missing one and another tenant's alike."""
    check_id(vacancy_id, "vacancy_id", in_path=True)
    check_id(application_id, "application_id", in_path=True)
    authorize(
        actor,
        Permission.READ_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}/application/{application_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    stored = store.get_application(actor.tenant, vacancy_id, application_id)
    ensure_tenant(actor, stored.application.tenant if stored else None, "application")
    assert stored is not None  # ensure_tenant raised otherwise
    return ApplicationResult(stored.application, created=False, matched_key_version=stored.matched_key_version)
