"""The policy table and authorize(): allowed roles pass silently, every refusal raises and is audited."""

from __future__ import annotations

import pytest

from shared.audit import Outcome
from shared.auth import Principal, Role
from shared.errors import Forbidden
from shared.permissions import POLICY, Permission, authorize, is_allowed
from tests.unit.fakes import FakeAuditLog


def principal(*roles: Role, tenant: str = "acme") -> Principal:
    return Principal(tenant=tenant, subject="user-1", roles=frozenset(roles), username="jane")


ALLOWED = [(perm, role) for perm, roles in POLICY.items() for role in sorted(roles)]
DENIED = [(perm, role) for perm, roles in POLICY.items() for role in sorted(set(Role) - roles)]


def test_every_permission_has_a_row() -> None:
    assert set(POLICY) == set(Permission)


def test_every_row_names_at_least_one_role() -> None:
    assert all(POLICY.values())


def test_every_role_holds_some_permission_besides_its_identity() -> None:
    for role in Role:
        assert any(role in roles for perm, roles in POLICY.items() if perm is not Permission.READ_OWN_IDENTITY), role


def test_everyone_may_read_their_own_identity() -> None:
    assert POLICY[Permission.READ_OWN_IDENTITY] == frozenset(Role)


@pytest.mark.parametrize(
    ("permission", "roles"),
    [
        (Permission.READ_AUDIT_TRAIL, {Role.AUDITOR, Role.COMPLIANCE_OFFICER, Role.SYSTEM_ADMIN}),
        (Permission.EXPORT_AUDIT_TRAIL, {Role.AUDITOR, Role.COMPLIANCE_OFFICER}),
        (Permission.MANAGE_LEGAL_HOLDS, {Role.COMPLIANCE_OFFICER}),
        (Permission.APPROVE_ASSET_SPEND, {Role.FINANCE_APPROVER}),
        (Permission.MANAGE_TENANT, {Role.ACCOUNT_ADMIN, Role.SYSTEM_ADMIN}),
        (Permission.ERASE_PERSONAL_DATA, {Role.COMPANY_ADMIN, Role.COMPLIANCE_OFFICER}),
    ],
)
def test_sensitive_permissions_are_narrow(permission: Permission, roles: set[Role]) -> None:
    assert POLICY[permission] == frozenset(roles)


@pytest.mark.parametrize(("permission", "role"), ALLOWED, ids=[f"{p.value}-{r.value}" for p, r in ALLOWED])
def test_a_role_in_the_table_is_allowed(permission: Permission, role: Role) -> None:
    audit = FakeAuditLog()

    assert is_allowed(principal(role), permission)
    authorize(principal(role), permission, resource="thing/1", request_id="req-1", audit=audit)

    assert audit.entries == []


@pytest.mark.parametrize(("permission", "role"), DENIED, ids=[f"{p.value}-{r.value}" for p, r in DENIED])
def test_a_role_outside_the_table_is_refused_and_audited(permission: Permission, role: Role) -> None:
    audit = FakeAuditLog()

    assert not is_allowed(principal(role), permission)
    with pytest.raises(Forbidden) as raised:
        authorize(principal(role, tenant="globex"), permission, resource="thing/1", request_id="req-9", audit=audit)

    assert raised.value.status == 403
    assert permission.value in raised.value.message
    for allowed_role in POLICY[permission]:
        assert allowed_role.value in raised.value.message
    [entry] = audit.entries
    assert entry.outcome is Outcome.DENIED
    assert (entry.tenant, entry.actor, entry.action, entry.resource, entry.request_id) == (
        "globex",
        "user-1",
        permission.value,
        "thing/1",
        "req-9",
    )
    assert entry.reason == "missing role"


def test_one_matching_role_among_several_is_enough() -> None:
    audit = FakeAuditLog()

    authorize(
        principal(Role.RECRUITER, Role.AUDITOR),
        Permission.EXPORT_AUDIT_TRAIL,
        resource="audit/acme",
        request_id="r",
        audit=audit,
    )

    assert audit.entries == []


@pytest.mark.parametrize("permission", list(Permission))
def test_no_roles_means_no_permission(permission: Permission) -> None:
    audit = FakeAuditLog()

    with pytest.raises(Forbidden):
        authorize(principal(), permission, resource="x", request_id="r", audit=audit)

    assert [e.outcome for e in audit.entries] == [Outcome.DENIED]
