"""Use cases: the ATS reports a person's registration against a talent-pool vacancy; people and integrations
read it back.

Seed 002: "Talent pool vacancies are special types of vacancy that people can register against to be notified of
jobs they may be suitable for in the future. People who register against a talent pool vacancy can be retained
for between six months and three years from the point of their registration."

A registration creates or updates its person (data sealed under their own key) and counts as one ref of the
person's data; it carries `registration_due` from the tenant's policy. A repeat changes nothing but the person's
data, and that only if it differs from what is held.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from functions.retention.dal.people import PersonWrite
from functions.retention.dal.records import RecordStore, StaleWrite
from functions.retention.dal.vault import Shredded
from functions.retention.logic.applications import Vault, require_vacancy, seal_person
from functions.retention.logic.fingerprints import ReportedPerson, normalise_person
from functions.retention.logic.ids import check_id
from functions.retention.logic.timeline import registration_due
from functions.retention.models.people import PersonData, Registration
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import Conflict
from shared.permissions import Permission, authorize, ensure_tenant

_ATTEMPTS = 3


def register(
    actor: Actor,
    vacancy_id: str,
    person_id: str,
    *,
    registered_at: datetime,
    person: ReportedPerson,
    store: RecordStore,
    vault: Vault,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[Registration, bool]:
    """Record `person_id`'s registration against the talent-pool vacancy `vacancy_id`; return it and whether
    it was new. Raises BadRequest, NotFound (no vacancy), Conflict (not a talent-pool vacancy, or removed)."""
    check_id(vacancy_id, "vacancy_id", in_path=True)
    check_id(person_id, "person_id", in_path=True)
    data = normalise_person(person)
    authorize(
        actor,
        Permission.REPORT_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}/registration/{person_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    tenant = actor.tenant
    for _ in range(_ATTEMPTS):
        snapshot = store.snapshot(tenant, vacancy_id, person_id=person_id, registration=True)
        vacancy = require_vacancy(snapshot, vacancy_id, talent_pool=True)
        if snapshot.registration is not None:
            if snapshot.person is None or _changed(vault, tenant, person_id, snapshot.person.sealed, data):
                sealed = seal_person(vault, tenant, person_id, data, snapshot.person)
                store.update_person(PersonWrite(tenant=tenant, person_id=person_id, sealed=sealed, new_ref=False))
            return snapshot.registration, False
        registration = Registration(
            tenant=tenant,
            vacancy_id=vacancy_id,
            person_id=person_id,
            registered_at=registered_at,
            registration_due=registration_due(snapshot.policy, registered_at=registered_at),
            holds=vacancy.holds | (snapshot.person.holds if snapshot.person else frozenset()),
        )
        sealed = seal_person(vault, tenant, person_id, data, snapshot.person)
        try:
            store.create_registration(
                registration, person=PersonWrite(tenant=tenant, person_id=person_id, sealed=sealed, new_ref=True)
            )
        except StaleWrite:
            continue
        return registration, True
    raise Conflict(f"registration {person_id} kept changing while this report was applied: retry")


def _changed(vault: Vault, tenant: str, person_id: str, sealed: Mapping[str, str], data: PersonData) -> bool:
    """Whether the reported data differs from what is held (sealed values are randomised: open and compare)."""
    try:
        held = vault.open(tenant, person_id, sealed)
    except Shredded:
        return True
    reported = {name: value for name, value in data.model_dump().items() if value}
    return any(held.get(name) != value for name, value in reported.items())


def get_registration(
    actor: Actor,
    vacancy_id: str,
    person_id: str,
    *,
    store: RecordStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> Registration:
    """The caller's tenant's registration; NotFound for a missing one and another tenant's alike."""
    check_id(vacancy_id, "vacancy_id", in_path=True)
    check_id(person_id, "person_id", in_path=True)
    authorize(
        actor,
        Permission.READ_RETENTION_RECORDS,
        resource=f"vacancy/{vacancy_id}/registration/{person_id}",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    registration = store.get_registration(actor.tenant, vacancy_id, person_id)
    ensure_tenant(actor, registration.tenant if registration else None, "registration")
    assert registration is not None  # ensure_tenant raised otherwise
    return registration
