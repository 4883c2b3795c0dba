"""authorize(): each kind of actor is judged by what grants it (roles, scopes, job or provider name), and every
decision, allowed or refused, is written to the audit trail by the check itself. ensure_tenant(): a record of
another tenant is not found, never forbidden."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.audit import Outcome
from shared.auth import Actor, Role, Scope
from shared.errors import Forbidden, NotFound
from shared.permissions import POLICY, Grant, Permission, authorize, ensure_tenant, is_allowed
from tests.fakes import FakeAuditLog


@pytest.fixture(autouse=True)
def auditors_hold_grants() -> Iterator[None]:
    """Auditors here act under an active grant of every kind (the grants themselves: test_auditor_grants.py)."""
    from shared.access_grants import use_grant_reader
    from tests.fakes import FakeGrantReader

    use_grant_reader(FakeGrantReader(everyone=True))
    yield
    use_grant_reader(None)


def user(*roles: Role, tenant: str = "acme") -> Actor:
    return Actor.user(tenant=tenant, sub="user-1", roles=frozenset(roles), username="jane")


def integration(*scopes: Scope, tenant: str = "acme") -> Actor:
    return Actor.integration(tenant=tenant, client_id="client-1", scopes=frozenset(scopes))


def check(actor: Actor, permission: Permission) -> tuple[bool, FakeAuditLog]:
    """Run authorize; whether it let the actor through, and what it audited."""
    audit = FakeAuditLog()
    try:
        authorize(actor, permission, resource="thing/1", request_id="req-1", audit=audit, source_ip="198.51.100.7")
    except Forbidden:
        return False, audit
    return True, audit


# ---- people ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        (Role.RECRUITER, Permission.MANAGE_RETENTION_POLICY, False),
        (Role.RECRUITER, Permission.READ_AUDIT_TRAIL, False),
        (Role.RECRUITER, Permission.RECORD_MESSAGES, True),
        (Role.HIRING_MANAGER, Permission.RECORD_MESSAGES, False),
        (Role.COMPANY_ADMIN, Permission.MANAGE_RETENTION_POLICY, True),
        (Role.AUDITOR, Permission.READ_AUDIT_TRAIL, True),
        (Role.AUDITOR, Permission.ERASE_PERSONAL_DATA, False),
        (Role.COMPLIANCE_OFFICER, Permission.MANAGE_LEGAL_HOLDS, True),
        (Role.HR_ADMIN, Permission.MANAGE_LEGAL_HOLDS, False),
        (Role.FINANCE_APPROVER, Permission.APPROVE_ASSET_SPEND, True),
        (Role.IT_ASSET_MANAGER, Permission.APPROVE_ASSET_SPEND, False),
        (Role.SYSTEM_ADMIN, Permission.EXPORT_AUDIT_TRAIL, False),
    ],
)
def test_a_person_is_judged_by_roles(role: Role, permission: Permission, allowed: bool) -> None:
    passed, _ = check(user(role), permission)

    assert passed is allowed


@pytest.mark.parametrize("role", list(Role))
def test_every_person_with_a_role_may_read_their_identity(role: Role) -> None:
    assert check(user(role), Permission.READ_OWN_IDENTITY)[0]


@pytest.mark.parametrize("permission", list(Permission))
def test_a_person_without_roles_holds_nothing(permission: Permission) -> None:
    assert not check(user(), permission)[0]


def test_one_matching_role_among_several_is_enough() -> None:
    assert check(user(Role.RECRUITER, Role.AUDITOR), Permission.EXPORT_AUDIT_TRAIL)[0]


# ---- machines --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "permission", "allowed"),
    [
        (Scope.RETENTION_WRITE, Permission.MANAGE_RETENTION_POLICY, False),  # seed 002: admins only
        (Scope.RETENTION_WRITE, Permission.REPORT_RETENTION_RECORDS, True),
        (Scope.RETENTION_READ, Permission.REPORT_RETENTION_RECORDS, False),
        (Scope.RETENTION_READ, Permission.READ_RETENTION_RECORDS, True),
        (Scope.RETENTION_READ, Permission.READ_RETENTION_POLICY, True),
        (Scope.MESSAGES_WRITE, Permission.RECORD_MESSAGES, True),
        (Scope.MESSAGES_WRITE, Permission.READ_MESSAGES, False),
        (Scope.MESSAGES_READ, Permission.READ_MESSAGES, True),
        (Scope.FAILURES_WRITE, Permission.RECORD_FAILURES, True),
        (Scope.ASSETS_WRITE, Permission.MANAGE_ASSETS, True),
        (Scope.AUDIT_READ, Permission.READ_AUDIT_TRAIL, True),
        (Scope.AUDIT_READ, Permission.EXPORT_AUDIT_TRAIL, False),
        (Scope.IDENTITY_READ, Permission.READ_OWN_IDENTITY, True),
        (Scope.MESSAGES_WRITE, Permission.READ_OWN_IDENTITY, False),
    ],
)
def test_an_integration_is_judged_by_scopes(scope: Scope, permission: Permission, allowed: bool) -> None:
    passed, _ = check(integration(scope), permission)

    assert passed is allowed


@pytest.mark.parametrize(
    "permission",
    [
        Permission.ERASE_PERSONAL_DATA,
        Permission.MANAGE_LEGAL_HOLDS,
        Permission.EXPORT_AUDIT_TRAIL,
        Permission.EXPORT_MESSAGES,
        Permission.APPROVE_ASSET_SPEND,
        Permission.MANAGE_TENANT,
        Permission.DEPROVISION_USERS,
    ],
)
def test_no_scope_reaches_what_only_a_person_may_decide(permission: Permission) -> None:
    assert not check(integration(*Scope), permission)[0]


# ---- jobs and providers ----------------------------------------------------------------------------------


def test_system_and_webhook_actors_hold_nothing_unless_granted_by_name() -> None:
    for permission in Permission:
        assert not is_allowed(Actor.system("retention-sweep", "acme"), permission)
        assert not is_allowed(Actor.webhook("standard", "acme"), permission)


def test_a_grant_names_the_jobs_and_providers_it_admits() -> None:
    grant = Grant(jobs=frozenset({"retention-sweep"}), providers=frozenset({"standard"}))

    assert grant.allows(Actor.system("retention-sweep", "acme"))
    assert not grant.allows(Actor.system("other-job", "acme"))
    assert grant.allows(Actor.webhook("standard", "acme"))
    assert not grant.allows(Actor.webhook("twilio", "acme"))
    # A name in the job list is no role or scope, and a person named like a job gains nothing.
    assert not grant.allows(Actor.user("acme", "retention-sweep", frozenset(Role)))
    assert not grant.allows(Actor.integration("acme", "standard", frozenset(Scope)))


def test_every_permission_is_granted_to_someone() -> None:
    for permission, grant in POLICY.items():
        anyone = [user(*grant.roles), integration(*grant.scopes)]
        anyone += [Actor.system(job, "acme") for job in grant.jobs]
        anyone += [Actor.webhook(provider, "acme") for provider in grant.providers]
        assert any(is_allowed(actor, permission) for actor in anyone), permission


# ---- the audit trail -------------------------------------------------------------------------------------


def test_an_allowed_access_is_audited_by_the_check() -> None:
    passed, audit = check(user(Role.AUDITOR, tenant="globex"), Permission.READ_AUDIT_TRAIL)

    assert passed
    [entry] = audit.entries
    assert (entry.tenant, entry.actor, entry.action, entry.resource, entry.outcome) == (
        "globex",
        "user:user-1",
        "audit:read",
        "thing/1",
        Outcome.ALLOWED,
    )
    # an auditor acts under a grant: the entry names it (shared/access_grants.py)
    assert (entry.request_id, entry.source_ip) == ("req-1", "198.51.100.7")
    assert entry.reason == "auditor grant ag-20260101000000-00000000"


def test_a_refusal_is_audited_with_its_reason_and_raises_forbidden() -> None:
    audit = FakeAuditLog()

    with pytest.raises(Forbidden) as raised:
        authorize(user(Role.RECRUITER), Permission.MANAGE_RETENTION_POLICY, resource="r/1", request_id="r", audit=audit)

    assert raised.value.status == 403
    assert raised.value.message == ("retention:manage requires roles: account_admin, company_admin")
    [entry] = audit.entries
    assert (entry.outcome, entry.actor, entry.reason) == (Outcome.DENIED, "user:user-1", "missing role")


@pytest.mark.parametrize(
    ("actor", "label", "reason"),
    [
        (integration(Scope.MESSAGES_READ), "integration:client-1", "missing scope"),
        (Actor.system("retention-sweep", "acme"), "system:retention-sweep", "job not granted"),
        (Actor.webhook("standard", "acme"), "webhook:standard", "provider not granted"),
    ],
    ids=["integration", "system", "webhook"],
)
def test_the_audit_entry_names_the_kind_of_actor(actor: Actor, label: str, reason: str) -> None:
    passed, audit = check(actor, Permission.MANAGE_RETENTION_POLICY)

    assert not passed
    assert [(e.outcome, e.actor, e.reason) for e in audit.entries] == [(Outcome.DENIED, label, reason)]


def test_an_integration_allowed_is_audited_under_its_client_id() -> None:
    passed, audit = check(integration(Scope.RETENTION_WRITE), Permission.REPORT_RETENTION_RECORDS)

    assert passed
    assert [(e.outcome, e.actor, e.action) for e in audit.entries] == [
        (Outcome.ALLOWED, "integration:client-1", "retention:report")
    ]


# ---- records of other tenants ----------------------------------------------------------------------------


def test_a_record_of_the_actors_tenant_passes() -> None:
    ensure_tenant(integration(tenant="acme"), "acme", "retention policy")


@pytest.mark.parametrize("actor", [user(Role.SYSTEM_ADMIN), integration(*Scope), Actor.system("job", "acme")])
def test_a_record_of_another_tenant_is_not_found_never_forbidden(actor: Actor) -> None:
    with pytest.raises(NotFound) as raised:
        ensure_tenant(actor, "globex", "message")

    assert raised.value.status == 404
    assert raised.value.message == "no message"
    assert "globex" not in raised.value.message


def test_another_tenants_record_and_a_missing_one_answer_alike() -> None:
    answers = []
    for record_tenant in ("globex", None):
        with pytest.raises(NotFound) as raised:
            ensure_tenant(user(Role.RECRUITER), record_tenant, "message")
        answers.append((type(raised.value), raised.value.status, raised.value.code, raised.value.message))

    assert answers[0] == answers[1]
