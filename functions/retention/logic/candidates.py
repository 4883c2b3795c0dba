"""Use cases: the ATS reports candidates (talent-pool members matched to a new vacancy) as suggested, invited or
removed; people and integrations read them back.

Seed 002: "Candidates are not Applicants and are not linked to a vacancy in the same way as an Applicant.
Instead, they can be removed, or invited to apply. If Candidates are removed, they are not removed from the
Talent pool, instead, only the link as a "Candidate" the the new vacancy is removed."

- A candidate only moves forward: suggested -> invited; `applied` is set by an application, never reported.
- A suggested candidate carries `candidate_due` (the policy's candidate limit from the match); an invited one
  has none: "Candidate records that are marked as "Invited" or as "Applied" are retained regardless of the limit
  for reporting purposes."
- Removing deletes the candidate item only (not the registration, not the person) and publishes
  `RecordPurged(record_kind=candidate, reason=candidate_removed)`; a repeat removal publishes it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from functions.retention.dal.records import RecordStore, StaleWrite
from functions.retention.logic.applications import require_vacancy
from functions.retention.logic.ids import check_id
from functions.retention.logic.timeline import candidate_due
from functions.retention.models.entities import CandidateStatus, PurgedKind, PurgeReason
from functions.retention.models.people import Candidate
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, Conflict, NotFound
from shared.permissions import Permission, authorize, ensure_tenant

if TYPE_CHECKING:
    from shared.events import EventPublisher

_ATTEMPTS = 3
_FORWARD = {(CandidateStatus.SUGGESTED, CandidateStatus.INVITED)}


@dataclass(frozen=True)
class CandidateResult:
    """The candidate after the report; `candidate` is None once its link was removed."""

    vacancy_id: str
    person_id: str
    status: CandidateStatus
    candidate: Candidate | None
    created: bool


def report_candidate(
    actor: Actor,
    vacancy_id: str,
    person_id: str,
    *,
    status: CandidateStatus,
    matched_at: datetime,
    store: RecordStore,
    publisher: EventPublisher,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> CandidateResult:
    """Record a candidate's status for `vacancy_id`.

    Raises BadRequest (`applied` reported, bad ids), NotFound (no vacancy; an unknown person), Conflict (a
    removed or talent-pool vacancy, a move backwards, removing a candidate under a legal hold).
    """
    check_id(vacancy_id, "vacancy_id", in_path=True)
    check_id(person_id, "person_id", in_path=True)
    if status is CandidateStatus.APPLIED:
        raise BadRequest(
            "a candidate becomes `applied` when the ATS submits their application, never through this route",
            details=[{"loc": ["body", "status"], "msg": "applied is set by an application", "type": "value_error"}],
        )
    authorize(
        actor,
        Permission.REPORT_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}/candidate/{person_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    tenant = actor.tenant
    for _ in range(_ATTEMPTS):
        snapshot = store.snapshot(tenant, vacancy_id, person_id=person_id, candidate=True)
        require_vacancy(snapshot, vacancy_id, talent_pool=False)
        existing = snapshot.candidate
        try:
            if status is CandidateStatus.REMOVED:
                return _remove(actor, vacancy_id, person_id, existing, store, publisher, request_id)
            if snapshot.person is None:
                raise NotFound("no person: a candidate comes from the talent pool, register the person first")
            if existing is None:
                candidate = Candidate(
                    tenant=tenant,
                    vacancy_id=vacancy_id,
                    person_id=person_id,
                    status=status,
                    matched_at=matched_at,
                    invited_at=clock.now() if status is CandidateStatus.INVITED else None,
                    candidate_due=candidate_due(snapshot.policy, status=status, matched_at=matched_at),
                    holds=(snapshot.vacancy.holds if snapshot.vacancy else frozenset()) | snapshot.person.holds,
                )
                store.create_candidate(candidate)
                return CandidateResult(vacancy_id, person_id, status, candidate, created=True)
            if existing.status is status:
                return CandidateResult(vacancy_id, person_id, status, existing, created=False)
            if (existing.status, status) not in _FORWARD:
                raise Conflict(
                    f"candidate {person_id} is {existing.status.value}; it cannot become {status.value}"
                    " (a candidate only moves forward: suggested, invited, applied)"
                )
            invited = existing.model_copy(update={"status": status, "invited_at": clock.now(), "candidate_due": None})
            store.advance_candidate(invited, previous=existing.status)
            return CandidateResult(vacancy_id, person_id, status, invited, created=False)
        except StaleWrite:
            continue
    raise Conflict(f"candidate {person_id} kept changing while this report was applied: retry")


def _remove(
    actor: Actor,
    vacancy_id: str,
    person_id: str,
    existing: Candidate | None,
    store: RecordStore,
    publisher: EventPublisher,
    request_id: str,
) -> CandidateResult:
    if existing is not None:
        if existing.holds:
            raise Conflict(f"candidate {person_id} is under a legal hold: it cannot be removed until released")
        store.delete_candidate(actor.tenant, vacancy_id, person_id, previous=existing.status)
    from functions.retention.models.events import RecordPurged  # an event model is built on a publish only (cold start)

    # Published for a repeat too (the first publish may have failed after the delete): consumers are idempotent.
    publisher.publish(
        [
            RecordPurged(
                tenant=actor.tenant,
                correlation_id=request_id,
                record_kind=PurgedKind.CANDIDATE,
                record_id=person_id,
                vacancy_id=vacancy_id,
                person_id=person_id,
                reason=PurgeReason.CANDIDATE_REMOVED,
            )
        ]
    )
    return CandidateResult(vacancy_id, person_id, CandidateStatus.REMOVED, None, created=False)


def get_candidate(
    actor: Actor,
    vacancy_id: str,
    person_id: str,
    *,
    store: RecordStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> Candidate:
    """The caller's tenant's candidate; NotFound for a missing (or removed) one and another tenant's alike."""
    check_id(vacancy_id, "vacancy_id", in_path=True)
    check_id(person_id, "person_id", in_path=True)
    authorize(
        actor,
        Permission.READ_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}/candidate/{person_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    candidate = store.get_candidate(actor.tenant, vacancy_id, person_id)
    ensure_tenant(actor, candidate.tenant if candidate else None, "candidate")
    assert candidate is not None  # ensure_tenant raised otherwise
    return candidate
