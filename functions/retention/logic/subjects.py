"""Use cases: the applicant acts for themselves through a one-time link (seed 002: "Applicants always have the
power to remove their data at any time"), and receipts are read back.

- access (GDPR Art. 15): what is held about the person, also written to the archive bucket for the record;
- leave the talent pool: their registrations and `suggested` candidate links go (invited and applied candidates
  stay, for reporting); `refs` falls by the registrations removed and at 0 the person is forgotten;
- erasure (Art. 17): every application becomes an anonymised copy in its vacancy's partition and is deleted, their
  candidates and registrations are deleted, and the person is forgotten (logic/erasure.py). Fingerprints stay:
  they must still catch a re-application. Whatever a legal hold covers stays (Art. 17(3)(e)), the receipt names
  the holds, and the request's status is `held`.

Each request writes a subject-request record (its receipt): received_at, deadline_at (one calendar month later,
Art. 12(3)), completed_at, seconds_taken, status and what was removed per kind. Every removed record is published
as `RecordPurged` (ids only) after the writes. The self-service actor has no token, so its entries are appended to
the audit trail directly, named after the link (`system:self-service:<link id>`).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.retention.dal.items import anonymised_key, from_attribute, to_item
from functions.retention.dal.subjects import Item, SubjectStore
from functions.retention.dal.vault import Shredded
from functions.retention.logic.erasure import ExportPurger, forget_person
from functions.retention.logic.ids import check_id
from functions.retention.logic.links import VerifiedLink
from functions.retention.logic.timeline import add_months
from functions.retention.models.entities import ApplicationOutcome, CandidateStatus, PurgedKind, PurgeReason
from functions.retention.models.people import AnonymisedApplication
from functions.retention.models.subjects_io import RemovedCounts, SubjectRequest
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor
from shared.permissions import Permission, authorize, ensure_tenant

if TYPE_CHECKING:
    from functions.retention.models.events import RecordPurged
    from shared.events import EventPublisher

ACCESS, LEAVE, ERASURE = "access", "leave_talent_pool", "erasure"
_ACTIONS = {
    ACCESS: "retention:subject-access",
    LEAVE: "retention:leave-talent-pool",
    ERASURE: Permission.ERASE_PERSONAL_DATA.value,
}
_HIDDEN = {"pk", "sk", "tenant", "person_key", "holds", "data"}


class PersonVaultPort(Protocol):
    def open(self, tenant: str, person_id: str, sealed: dict[str, str]) -> dict[str, str]: ...

    def shred(self, tenant: str, person_id: str) -> None: ...


class ExportStore(ExportPurger, Protocol):
    def put_subject_access(self, tenant: str, person_id: str, request_id: str, body: bytes) -> str: ...


@dataclass(frozen=True)
class SubjectPorts:
    store: SubjectStore
    vault: PersonVaultPort
    exports: ExportStore
    audit: AuditLog
    publisher: EventPublisher


def new_request_id() -> str:
    return f"dsr-{uuid.uuid4().hex}"


@dataclass
class _Work:
    """What one request did: the counts, the holds that stopped it, the events to publish."""

    removed: dict[str, int] = field(default_factory=dict)
    holds: set[str] = field(default_factory=set)
    events: list[RecordPurged] = field(default_factory=list)

    def count(self, kind: PurgedKind, n: int = 1) -> None:
        self.removed[kind.value] = self.removed.get(kind.value, 0) + n


def _kind_of(item: Item) -> str:
    return item["sk"]["S"].split("#", 1)[0]


def _value(item: Item, name: str) -> Any:
    attr = item.get(name)
    return from_attribute(attr) if attr is not None else None


def _holds(item: Item | None) -> set[str]:
    return set(_value(item, "holds") or ()) if item else set()


def _plain(item: Item) -> dict[str, Any]:
    values = {k: from_attribute(v) for k, v in item.items() if k not in _HIDDEN}
    return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in sorted(values.items())}


def _start(link: VerifiedLink, kind: str, request_id: str, ports: SubjectPorts, api_request_id: str) -> SubjectRequest:
    received = clock.now()
    ports.audit.append(
        AuditEntry(
            tenant=link.tenant,
            actor=link.actor.label,
            action=_ACTIONS[kind],
            resource=f"person/{link.person_id}",
            outcome=Outcome.ALLOWED,
            request_id=api_request_id,
            reason=f"subject request {request_id}",
        )
    )
    request = SubjectRequest(
        tenant=link.tenant,
        request_id=request_id,
        kind=kind,
        person_id=link.person_id,
        link_id=link.link_id,
        status="received",
        received_at=received,
        deadline_at=add_months(received, 1),
    )
    ports.store.save_request(request)  # the deadline clock runs from here, whatever happens next
    return request


def _finish(
    request: SubjectRequest, work: _Work, started: float, ports: SubjectPorts, export_key: str | None = None
) -> SubjectRequest:
    done = request.model_copy(
        update={
            "status": "held" if work.holds else "completed",
            "completed_at": clock.now(),
            "seconds_taken": round(time.perf_counter() - started, 6),
            "removed": RemovedCounts(**work.removed),
            "blocking_holds": frozenset(work.holds),
            "export_key": export_key,
        }
    )
    ports.store.save_request(done)
    if work.events:
        ports.publisher.publish(work.events)
    return done


def _purged(
    link: VerifiedLink,
    kind: PurgedKind,
    record_id: str,
    reason: PurgeReason,
    request_id: str,
    vacancy_id: str | None = None,
) -> RecordPurged:
    from functions.retention.models.events import RecordPurged  # an event model is built on a publish only (cold start)

    return RecordPurged(
        tenant=link.tenant,
        record_kind=kind,
        record_id=record_id,
        vacancy_id=vacancy_id,
        person_id=link.person_id,
        reason=reason,
        request_id=request_id,
        correlation_id=request_id,
    )


def subject_access(
    link: VerifiedLink, *, ports: SubjectPorts, request_id: str, api_request_id: str
) -> tuple[SubjectRequest, dict[str, Any]]:
    """The person's subject-access export (Art. 15), stored under their prefix in the archive bucket."""
    started = time.perf_counter()
    request = _start(link, ACCESS, request_id, ports, api_request_id)
    person = ports.store.person(link.tenant, link.person_id)
    data: dict[str, str] | None = None
    if person is not None:
        try:
            data = ports.vault.open(link.tenant, link.person_id, _value(person, "data") or {})
        except Shredded:
            data = None
    sections: dict[str, list[dict[str, Any]]] = {"applications": [], "candidacies": [], "registrations": []}
    vacancies: dict[str, Item | None] = {}
    for item in ports.store.records(link.tenant, link.person_id):
        kind = _kind_of(item)
        record = _plain(item)
        if kind == "APPLICATION":
            vacancy_id = str(record.get("vacancy_id"))
            if vacancy_id not in vacancies:
                vacancies[vacancy_id] = ports.store.vacancy(link.tenant, vacancy_id)
            vacancy = vacancies[vacancy_id]
            record["vacancy"] = (
                {k: v for k, v in _plain(vacancy).items() if k in _VACANCY_FIELDS} if vacancy is not None else None
            )
            sections["applications"].append(record)
        elif kind == "CANDIDATE":
            sections["candidacies"].append(record)
        elif kind == "REGISTRATION":
            sections["registrations"].append(record)
    export = {
        "request_id": request_id,
        "tenant": link.tenant,
        "person_id": link.person_id,
        "generated_at": clock.isoformat(clock.now()),
        "person": {
            "data": data,
            "created_at": _value(person, "created_at") if person else None,
            "updated_at": _value(person, "updated_at") if person else None,
        },
        **sections,
        "retention": (
            "Each application is kept until its vacancy's timeline ends (`vacancy.applicants_due` once the vacancy"
            " is removed); a suggested candidacy until `candidate_due`; a registration until `registration_due`."
            " Your personal data goes when the last of your applications and registrations does."
        ),
    }
    body = json.dumps(export, separators=(",", ":"), sort_keys=True, default=str).encode()
    ports.store.mark_exports(link.tenant, link.person_id)  # first: the sweep purges exports only when marked
    key = ports.exports.put_subject_access(link.tenant, link.person_id, request_id, body)
    done = _finish(request, _Work(), started, ports, export_key=key)
    return done, export


_VACANCY_FIELDS = {
    "vacancy_id",
    "kind",
    "status",
    "closed_at",
    "archived_at",
    "removed_at",
    "archive_due",
    "removal_due",
    "applicants_due",
}


def _reduce_refs(
    link: VerifiedLink, n: int, ports: SubjectPorts, work: _Work, reason: PurgeReason, request_id: str
) -> None:
    """Registrations and applications removed: their refs go; at 0, with no hold on the person, so does the person."""
    refs = ports.store.add_refs(link.tenant, link.person_id, -n) if n else None
    person = ports.store.person(link.tenant, link.person_id)
    if person is None:
        return
    if refs is None:
        refs = int(_value(person, "refs") or 0)
    person_holds = _holds(person)
    if refs <= 0 and not person_holds:
        _forget(link, ports, work, reason, request_id)


def _forget(link: VerifiedLink, ports: SubjectPorts, work: _Work, reason: PurgeReason, request_id: str) -> None:
    forgotten = forget_person(link.tenant, link.person_id, people=ports.store, vault=ports.vault, exports=ports.exports)
    work.count(PurgedKind.PERSON)
    if forgotten.export_versions_deleted:
        work.removed["export_version"] = forgotten.export_versions_deleted
    work.events.append(_purged(link, PurgedKind.PERSON, link.person_id, reason, request_id))


def leave_talent_pool(
    link: VerifiedLink, *, ports: SubjectPorts, request_id: str, api_request_id: str
) -> SubjectRequest:
    """Remove the person's registrations and suggested candidacies; forget them when nothing else needs them."""
    started = time.perf_counter()
    request = _start(link, LEAVE, request_id, ports, api_request_id)
    work = _Work()
    reason = PurgeReason.LEFT_TALENT_POOL
    registrations = 0
    for item in ports.store.records(link.tenant, link.person_id):
        kind = _kind_of(item)
        suggested = kind == "CANDIDATE" and _value(item, "status") == CandidateStatus.SUGGESTED.value
        if kind != "REGISTRATION" and not suggested:
            continue  # applications, and invited or applied candidates, stay (seed 002: kept for reporting)
        if held := _holds(item):
            work.holds |= held
            continue
        if not ports.store.delete_record({"pk": item["pk"], "sk": item["sk"]}):
            continue
        vacancy_id = str(_value(item, "vacancy_id"))
        purged = PurgedKind.REGISTRATION if kind == "REGISTRATION" else PurgedKind.CANDIDATE
        work.count(purged)
        registrations += purged is PurgedKind.REGISTRATION
        work.events.append(_purged(link, purged, link.person_id, reason, request_id, vacancy_id))
    _reduce_refs(link, registrations, ports, work, reason, request_id)
    return _finish(request, work, started, ports)


def erase(link: VerifiedLink, *, ports: SubjectPorts, request_id: str, api_request_id: str) -> SubjectRequest:
    """Erase the person entirely, except what a legal hold covers (named in the receipt)."""
    started = time.perf_counter()
    request = _start(link, ERASURE, request_id, ports, api_request_id)
    work = _Work()
    reason = PurgeReason.SELF_ERASURE
    person = ports.store.person(link.tenant, link.person_id)
    work.holds |= _holds(person)
    removed_refs = 0
    for item in ports.store.records(link.tenant, link.person_id):
        if held := _holds(item):
            work.holds |= held
            continue
        kind = _kind_of(item)
        item_key = {"pk": item["pk"], "sk": item["sk"]}
        vacancy_id = str(_value(item, "vacancy_id"))
        if kind == "APPLICATION":
            application_id = str(_value(item, "application_id"))
            if not ports.store.anonymise(item_key, _anonymised_item(link.tenant, item)):
                continue
            work.count(PurgedKind.APPLICATION)
            removed_refs += 1
            work.events.append(_purged(link, PurgedKind.APPLICATION, application_id, reason, request_id, vacancy_id))
        elif kind in ("CANDIDATE", "REGISTRATION"):
            if not ports.store.delete_record(item_key):
                continue
            purged = PurgedKind.CANDIDATE if kind == "CANDIDATE" else PurgedKind.REGISTRATION
            work.count(purged)
            removed_refs += purged is PurgedKind.REGISTRATION
            work.events.append(_purged(link, purged, link.person_id, reason, request_id, vacancy_id))
    if person is not None:
        if work.holds:
            # Held records still need the person's data: only the refs of what went are released.
            if removed_refs:
                ports.store.add_refs(link.tenant, link.person_id, -removed_refs)
        else:
            _forget(link, ports, work, reason, request_id)
    if work.holds:
        ports.audit.append(
            AuditEntry(
                tenant=link.tenant,
                actor=link.actor.label,
                action=_ACTIONS[ERASURE],
                resource=f"person/{link.person_id}",
                outcome=Outcome.DENIED,
                request_id=api_request_id,
                reason=f"kept under legal hold: {', '.join(sorted(work.holds))}"[:512],
            )
        )
    return _finish(request, work, started, ports)


def _month(moment: datetime | str | None) -> str:
    if moment is None:
        return clock.now().strftime("%Y-%m")
    value = datetime.fromisoformat(moment.replace("Z", "+00:00")) if isinstance(moment, str) else moment
    return value.strftime("%Y-%m")


def _anonymised_item(tenant: str, application: Item) -> Item:
    """The reporting copy: vacancy, stages, outcome, source, months; no person or application id."""
    vacancy_id = str(_value(application, "vacancy_id"))
    outcome = _value(application, "outcome") or ApplicationOutcome.PENDING.value
    copy = AnonymisedApplication(
        tenant=tenant,
        vacancy_id=vacancy_id,
        copy_id=uuid.uuid4().hex,
        stages=tuple(_value(application, "stages") or ()),
        outcome=ApplicationOutcome(outcome),
        source=str(_value(application, "source") or "unknown"),
        submitted_month=_month(_value(application, "submitted_at")),
        removed_month=_month(None),
    )
    # No due date of its own: the copy lives in its vacancy's partition and goes when the vacancy's timeline ends.
    return to_item(copy, anonymised_key(tenant, vacancy_id, copy.copy_id))


def get_receipt(
    actor: Actor,
    request_id: str,
    *,
    store: SubjectStore,
    audit: AuditLog,
    api_request_id: str,
    source_ip: str | None = None,
) -> SubjectRequest:
    """A subject request's receipt; NotFound for a missing one and another tenant's alike."""
    check_id(request_id, "request_id")
    authorize(
        actor,
        Permission.READ_RETENTION_RECORDS,
        resource=f"subject-request/{request_id}",
        request_id=api_request_id,
        audit=audit,
        source_ip=source_ip,
    )
    found = store.get_request(actor.tenant, request_id)
    ensure_tenant(actor, found.tenant if found else None, "subject request")
    assert found is not None
    return found
