"""Just-in-time auditor access (issue 13): the auditor role holds nothing of a resource kind without an active grant
of a compliance officer covering it; a grant expires by itself and a revocation takes effect at the next check;
a system_admin never holds or grants auditor access; nobody grants access to themselves; a grant needs a reason.
Every refusal is audited with its reason, and every use of a grant names it in the audit entry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.platform.dal.auditor_grants import GrantExists
from functions.platform.logic.auditor_grants import (
    NO_REASON,
    NO_REVOKE_REASON,
    SELF_GRANT,
    GrantRequest,
    get_auditor_grant,
    grant_auditor_access,
    list_auditor_grants,
    revoke_auditor_grant,
)
from shared import access_grants, clock
from shared.access_grants import (
    AuditorGrant,
    AuditorGrantStatus,
    AuditorResourceKind,
    check_grants,
    grant_from_item,
    grant_to_item,
    kind_of,
    use_grant_reader,
)
from shared.audit import AuditEntry, Outcome
from shared.auth import Actor, Role
from shared.errors import BadRequest, ConfigurationError, Conflict, Forbidden, NotFound
from shared.permissions import Permission, authorize
from tests.fakes import FakeAuditLog

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
AUDIT, MESSAGES, RETENTION = AuditorResourceKind.AUDIT, AuditorResourceKind.MESSAGES, AuditorResourceKind.RETENTION
OFFICER = Actor.user("acme", "officer-1", frozenset({Role.COMPLIANCE_OFFICER}))
AUDITOR = Actor.user("acme", "auditor-1", frozenset({Role.AUDITOR}))
SOD_HOLD = "separation of duties: a system_admin cannot hold auditor access"
SOD_GRANT = "separation of duties: a system_admin cannot grant auditor access"


class FakeGrants:
    """The management store and the permission check's reader in one, in memory; counts the check's reads."""

    def __init__(self) -> None:
        self.grants: dict[tuple[str, str], AuditorGrant] = {}
        self.reads = 0

    # GrantReader
    def grants_of(self, tenant: str, grantee: str) -> list[AuditorGrant]:
        self.reads += 1
        return [g for g in self.grants.values() if g.tenant == tenant and g.grantee == grantee]

    # AuditorGrantStore
    def create(self, grant: AuditorGrant) -> None:
        if (grant.tenant, grant.grant_id) in self.grants:
            raise GrantExists(grant.grant_id)
        self.grants[(grant.tenant, grant.grant_id)] = grant

    def get(self, tenant: str, grant_id: str) -> AuditorGrant | None:
        return self.grants.get((tenant, grant_id))

    def page(self, tenant: str, *, limit: int, cursor: str | None) -> tuple[list[AuditorGrant], str | None]:
        mine = sorted((g for g in self.grants.values() if g.tenant == tenant), key=lambda g: g.grant_id, reverse=True)
        start = next((i + 1 for i, g in enumerate(mine) if g.grant_id == cursor), 0) if cursor else 0
        chunk = mine[start : start + limit]
        return chunk, (chunk[-1].grant_id if start + limit < len(mine) else None)

    def revoke(self, grant: AuditorGrant, *, at: datetime, by: str, reason: str) -> bool:
        stored = self.grants[(grant.tenant, grant.grant_id)]
        if stored.revoked_at is not None:
            return False
        self.grants[(grant.tenant, grant.grant_id)] = replace(
            stored, revoked_at=at, revoked_by=by, revoke_reason=reason
        )
        return True


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    clock.freeze(NOW)
    yield
    clock.freeze(None)
    use_grant_reader(None)


def a_grant(
    grantee: str = "auditor-1",
    *kinds: AuditorResourceKind,
    grant_id: str = "ag-20261127090000-00000001",
    tenant: str = "acme",
    hours: float = 8,
) -> AuditorGrant:
    return AuditorGrant(
        tenant=tenant,
        grant_id=grant_id,
        grantee=grantee,
        kinds=frozenset(kinds or (AUDIT,)),
        reason="SOC 2 audit, ticket AUD-7",
        granted_by="user:officer-1",
        granted_at=clock.now(),
        expires_at=clock.now() + timedelta(hours=hours),
    )


def check(actor: Actor, permission: Permission, grants: FakeGrants) -> tuple[bool, AuditEntry]:
    """Run authorize with `grants`; whether it let the actor through, and the one entry it audited."""
    audit = FakeAuditLog()
    try:
        authorize(actor, permission, resource="thing/1", request_id="req-1", audit=audit, grants=grants)
        passed = True
    except Forbidden:
        passed = False
    [entry] = audit.entries
    return passed, entry


def ask(
    grantee: str = "auditor-1",
    reason: str = "SOC 2 audit, ticket AUD-7",
    *,
    duration: timedelta | None = timedelta(hours=8),
    expires_at: datetime | None = None,
) -> GrantRequest:
    kinds = frozenset({AUDIT, MESSAGES})
    return GrantRequest(grantee=grantee, kinds=kinds, reason=reason, duration=duration, expires_at=expires_at)


def give(actor: Actor, store: FakeGrants, req: GrantRequest, audit: FakeAuditLog | None = None) -> AuditorGrant:
    return grant_auditor_access(actor, req, store=store, audit=audit or FakeAuditLog(), request_id="req-g")


# ---- the permission check -----------------------------------------------------------------------------------


def test_an_auditor_without_a_grant_holds_nothing_and_the_refusal_is_audited() -> None:
    passed, entry = check(AUDITOR, Permission.READ_AUDIT_TRAIL, FakeGrants())

    assert not passed
    assert (entry.outcome, entry.action, entry.reason) == (Outcome.DENIED, "audit:read", "no active grant for audit")


def test_an_auditor_with_an_active_grant_is_allowed_and_the_entry_names_the_grant() -> None:
    grants = FakeGrants()
    grants.create(a_grant("auditor-1", AUDIT))

    passed, entry = check(AUDITOR, Permission.EXPORT_AUDIT_TRAIL, grants)

    assert passed
    assert (entry.outcome, entry.reason) == (Outcome.ALLOWED, "auditor grant ag-20261127090000-00000001")


def test_a_kind_the_grant_does_not_cover_is_refused() -> None:
    grants = FakeGrants()
    grants.create(a_grant("auditor-1", MESSAGES))

    passed, entry = check(AUDITOR, Permission.READ_AUDIT_TRAIL, grants)

    assert not passed and entry.reason == "no active grant for audit"
    assert check(AUDITOR, Permission.EXPORT_MESSAGES, grants)[0]


def test_an_expired_grant_gets_a_403_and_the_refusal_is_audited() -> None:
    """Issue 13 acceptance: "An expired grant gets a 403 ... audited". Expiry is moved by the clock, no sleeping."""
    grants = FakeGrants()
    grants.create(a_grant("auditor-1", AUDIT, hours=1))
    assert check(AUDITOR, Permission.READ_AUDIT_TRAIL, grants)[0]

    clock.freeze(NOW + timedelta(hours=1))
    passed, entry = check(AUDITOR, Permission.READ_AUDIT_TRAIL, grants)

    assert not passed
    assert entry.outcome is Outcome.DENIED
    assert entry.reason == "grant expired: ag-20261127090000-00000001 at 2026-11-27T10:00:00.000Z"


def test_a_revoked_grant_stops_at_the_next_check() -> None:
    grants = FakeGrants()
    grant = a_grant("auditor-1", AUDIT)
    grants.create(grant)
    assert check(AUDITOR, Permission.READ_AUDIT_TRAIL, grants)[0]

    grants.revoke(grant, at=clock.now(), by="user:officer-1", reason="engagement over")
    passed, entry = check(AUDITOR, Permission.READ_AUDIT_TRAIL, grants)

    assert not passed and entry.reason == "grant revoked: ag-20261127090000-00000001"
    assert grants.reads == 2  # read at every check: nothing cached


def test_a_system_admin_never_holds_auditor_access_even_with_a_grant() -> None:
    """Issue 13 acceptance: "... and so does a system_admin asking for auditor access. Both refusals are audited"."""
    grants = FakeGrants()
    grants.create(a_grant("admin-1", AUDIT, MESSAGES))
    admin = Actor.user("acme", "admin-1", frozenset({Role.SYSTEM_ADMIN, Role.AUDITOR}))

    for permission in (Permission.EXPORT_AUDIT_TRAIL, Permission.EXPORT_MESSAGES):
        passed, entry = check(admin, permission, grants)
        assert not passed
        assert (entry.outcome, entry.actor, entry.reason) == (Outcome.DENIED, "user:admin-1", SOD_HOLD)
    assert grants.reads == 0


def test_a_system_admin_keeps_what_its_own_role_holds() -> None:
    """Reading the audit trail is a system_admin's own permission (the policy table), not auditor access."""
    admin = Actor.user("acme", "admin-1", frozenset({Role.SYSTEM_ADMIN, Role.AUDITOR}))

    assert check(admin, Permission.READ_AUDIT_TRAIL, FakeGrants())[0]


@pytest.mark.parametrize(
    ("roles", "permission"),
    [
        ({Role.RECRUITER, Role.AUDITOR}, Permission.READ_MESSAGES),  # the recruiter role holds it
        ({Role.COMPLIANCE_OFFICER}, Permission.EXPORT_AUDIT_TRAIL),
        ({Role.AUDITOR}, Permission.READ_OWN_IDENTITY),  # identity is no grantable kind
    ],
)
def test_no_grant_is_needed_where_another_role_or_no_resource_kind_applies(
    roles: set[Role], permission: Permission
) -> None:
    grants = FakeGrants()

    passed, entry = check(Actor.user("acme", "u-1", frozenset(roles)), permission, grants)

    assert passed and entry.reason is None and grants.reads == 0


def test_an_auditor_with_another_role_that_lacks_the_permission_still_needs_a_grant() -> None:
    passed, entry = check(
        Actor.user("acme", "auditor-1", frozenset({Role.RECRUITER, Role.AUDITOR})),
        Permission.EXPORT_AUDIT_TRAIL,
        FakeGrants(),
    )

    assert not passed and entry.reason == "no active grant for audit"


def test_a_grant_in_another_tenant_does_not_count() -> None:
    grants = FakeGrants()
    grants.create(a_grant("auditor-1", AUDIT, tenant="globex"))

    assert not check(AUDITOR, Permission.READ_AUDIT_TRAIL, grants)[0]


def test_the_check_uses_the_installed_reader_when_the_caller_passes_none() -> None:
    grants = FakeGrants()
    grants.create(a_grant("auditor-1", AUDIT))
    use_grant_reader(grants)
    audit = FakeAuditLog()

    authorize(AUDITOR, Permission.READ_AUDIT_TRAIL, resource="audit", request_id="r", audit=audit)

    assert audit.entries[0].reason == "auditor grant ag-20261127090000-00000001"


def test_without_a_platform_table_the_auditor_is_refused_loudly_and_audited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLATFORM_TABLE_NAME", raising=False)
    audit = FakeAuditLog()

    with pytest.raises(ConfigurationError):
        authorize(AUDITOR, Permission.READ_AUDIT_TRAIL, resource="audit", request_id="r", audit=audit)

    [entry] = audit.entries
    assert entry.outcome is Outcome.DENIED and entry.reason == "auditor grants unavailable: configuration_error"


def test_grants_are_only_for_the_resource_kinds_auditors_hold() -> None:
    assert kind_of("audit:read") is AUDIT and kind_of("retention:records:read") is RETENTION
    assert kind_of("identity:read") is None and kind_of("tenant:manage") is None


def test_the_longest_running_active_grant_is_named() -> None:
    short, long = a_grant(grant_id="ag-20261127090000-0000000a", hours=1), a_grant(grant_id="ag-x", hours=9)

    assert check_grants([short, long], AUDIT, NOW).reason == "auditor grant ag-x"


def test_a_grant_survives_its_item_shape() -> None:
    grant = replace(a_grant("auditor-1", AUDIT, MESSAGES), revoked_at=NOW, revoked_by="user:o", revoke_reason="done")

    assert grant_from_item(grant_to_item(grant, "T#acme#GRANTS")) == grant
    assert grant_from_item(grant_to_item(a_grant(), "pk")).revoked_at is None


# ---- giving grants --------------------------------------------------------------------------------------------


def test_a_compliance_officer_gives_a_grant_and_the_entry_names_it_and_the_grantee() -> None:
    store, audit = FakeGrants(), FakeAuditLog()

    grant = give(OFFICER, store, ask(), audit)

    assert store.get("acme", grant.grant_id) == grant
    assert access_grants.is_grant_id(grant.grant_id)
    assert (grant.tenant, grant.grantee, grant.granted_by) == ("acme", "auditor-1", "user:officer-1")
    assert grant.kinds == {AUDIT, MESSAGES} and grant.expires_at == NOW + timedelta(hours=8)
    [entry] = audit.entries
    assert (entry.action, entry.outcome) == ("audit:grant", Outcome.ALLOWED)
    assert entry.resource == f"auditor-grants/{grant.grant_id}/grantee/auditor-1"


@pytest.mark.parametrize(
    ("actor", "req", "reason"),
    [
        pytest.param(OFFICER, ask(grantee="officer-1"), SELF_GRANT, id="self-grant"),
        pytest.param(OFFICER, ask(reason="   "), NO_REASON, id="no-reason"),
        pytest.param(
            Actor.user("acme", "officer-2", frozenset({Role.COMPLIANCE_OFFICER, Role.SYSTEM_ADMIN})),
            ask(),
            SOD_GRANT,
            id="system-admin-grantor",
        ),
        pytest.param(
            Actor.user("acme", "admin-1", frozenset({Role.SYSTEM_ADMIN})), ask(), "missing role", id="system-admin"
        ),
        pytest.param(AUDITOR, ask(grantee="auditor-2"), "missing role", id="auditor-grantor"),
    ],
)
def test_a_refused_grant_is_a_403_audited_with_its_reason_and_stores_nothing(
    actor: Actor, req: GrantRequest, reason: str
) -> None:
    store, audit = FakeGrants(), FakeAuditLog()

    with pytest.raises(Forbidden):
        give(actor, store, req, audit)

    assert store.grants == {}
    [entry] = audit.entries
    assert (entry.action, entry.outcome, entry.reason) == ("audit:grant", Outcome.DENIED, reason)


def test_a_grant_to_a_system_admin_is_inert_and_each_attempt_is_audited() -> None:
    store = FakeGrants()
    give(OFFICER, store, ask(grantee="admin-1"))
    admin = Actor.user("acme", "admin-1", frozenset({Role.SYSTEM_ADMIN, Role.AUDITOR}))

    passed, entry = check(admin, Permission.EXPORT_MESSAGES, store)

    assert not passed and entry.reason == SOD_HOLD


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"duration": timedelta(days=30, seconds=1)}, "at most 30 days"),
        ({"duration": timedelta(minutes=14)}, "at least 15 minutes"),
        ({"duration": None, "expires_at": NOW - timedelta(hours=1)}, "at least 15 minutes"),
        ({"duration": None}, "exactly one"),
        ({"expires_at": NOW + timedelta(days=1)}, "exactly one"),
    ],
)
def test_a_grant_runs_within_its_bounds(extra: dict[str, Any], problem: str) -> None:
    store = FakeGrants()

    with pytest.raises(BadRequest, match=problem):
        give(OFFICER, store, ask(**extra))

    assert store.grants == {}


def test_a_grant_can_run_thirty_days_to_the_millisecond_of_an_expiry_given() -> None:
    at = NOW + timedelta(days=30)

    grant = give(OFFICER, FakeGrants(), ask(duration=None, expires_at=at))

    assert grant.expires_at == at
    assert grant.status(at - timedelta(milliseconds=1)) is AuditorGrantStatus.ACTIVE
    assert grant.status(at) is AuditorGrantStatus.EXPIRED


def test_a_malformed_grantee_is_a_400_before_anything_is_audited() -> None:
    audit = FakeAuditLog()

    with pytest.raises(BadRequest):
        give(OFFICER, FakeGrants(), ask(grantee="a#b"), audit)

    assert audit.entries == []


# ---- reading, listing and revoking -------------------------------------------------------------------------


def test_another_tenants_grant_is_not_found() -> None:
    store = FakeGrants()
    grant = give(OFFICER, store, ask())
    globex = Actor.user("globex", "officer-9", frozenset({Role.COMPLIANCE_OFFICER}))

    with pytest.raises(NotFound):
        get_auditor_grant(globex, grant.grant_id, store=store, audit=FakeAuditLog(), request_id="r")
    assert get_auditor_grant(OFFICER, grant.grant_id, store=store, audit=FakeAuditLog(), request_id="r") == grant


def test_listing_is_for_compliance_officers_and_bounded() -> None:
    store = FakeGrants()
    give(OFFICER, store, ask())

    grants, cursor = list_auditor_grants(
        OFFICER, limit=10, cursor=None, store=store, audit=FakeAuditLog(), request_id="r"
    )
    assert len(grants) == 1 and cursor is None
    with pytest.raises(BadRequest):
        list_auditor_grants(OFFICER, limit=101, cursor=None, store=store, audit=FakeAuditLog(), request_id="r")
    with pytest.raises(Forbidden):
        list_auditor_grants(AUDITOR, limit=10, cursor=None, store=store, audit=FakeAuditLog(), request_id="r")


def test_revocation_is_immediate_audited_and_the_first_one_stands() -> None:
    store, audit = FakeGrants(), FakeAuditLog()
    grant = give(OFFICER, store, ask())
    assert check(AUDITOR, Permission.READ_AUDIT_TRAIL, store)[0]

    revoked = revoke_auditor_grant(OFFICER, grant.grant_id, "engagement over", store=store, audit=audit, request_id="r")
    clock.freeze(NOW + timedelta(minutes=5))
    again = revoke_auditor_grant(OFFICER, grant.grant_id, "again", store=store, audit=audit, request_id="r2")

    assert revoked.status(clock.now()) is AuditorGrantStatus.REVOKED
    assert (revoked.revoked_at, revoked.revoked_by, revoked.revoke_reason) == (NOW, "user:officer-1", "engagement over")
    assert again == revoked
    assert [(e.action, e.resource, e.outcome) for e in audit.entries] == [
        ("audit:grant", f"auditor-grants/{grant.grant_id}/revoke", Outcome.ALLOWED)
    ] * 2
    passed, entry = check(AUDITOR, Permission.READ_AUDIT_TRAIL, store)
    assert not passed and entry.reason == f"grant revoked: {grant.grant_id}"


def test_a_revocation_needs_a_reason_and_the_refusal_is_audited() -> None:
    store, audit = FakeGrants(), FakeAuditLog()
    grant = give(OFFICER, store, ask())

    with pytest.raises(Forbidden):
        revoke_auditor_grant(OFFICER, grant.grant_id, " ", store=store, audit=audit, request_id="r")

    assert [(e.outcome, e.reason) for e in audit.entries] == [(Outcome.DENIED, NO_REVOKE_REASON)]
    assert store.get("acme", grant.grant_id) == grant


def test_an_expired_grant_has_nothing_to_revoke() -> None:
    store = FakeGrants()
    grant = give(OFFICER, store, ask())
    clock.freeze(NOW + timedelta(hours=9))

    with pytest.raises(Conflict):
        revoke_auditor_grant(OFFICER, grant.grant_id, "late", store=store, audit=FakeAuditLog(), request_id="r")


def test_a_malformed_grant_id_is_a_400() -> None:
    with pytest.raises(BadRequest):
        get_auditor_grant(OFFICER, "ag-1", store=FakeGrants(), audit=FakeAuditLog(), request_id="r")
