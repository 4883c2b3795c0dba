"""Use cases of the platform domain, against in-memory stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from functions.platform.logic.health import check_health, record_heartbeat
from functions.platform.logic.identity import who_am_i
from functions.platform.logic.tokens import tenant_for_client
from functions.platform.models.entities import HealthStatus, Heartbeat, Identity
from shared import clock
from shared.audit import AuditEntry, Outcome
from shared.auth import Actor, ActorKind, Role, Scope
from shared.errors import Forbidden, Unauthenticated
from tests.fakes import FakeAuditLog, FakeClientRegistry, FakeHeartbeatStore

AT = datetime(2025, 11, 20, 9, 15, 30, tzinfo=UTC)
STALE_AFTER = timedelta(minutes=15)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.freeze(AT)
    yield
    clock.freeze(None)


def person(*roles: Role, username: str | None = "jane") -> Actor:
    return Actor.user(tenant="acme", sub="user-1", roles=frozenset(roles), username=username)


def machine(*scopes: Scope) -> Actor:
    return Actor.integration(tenant="acme", client_id="client-1", scopes=frozenset(scopes))


def test_record_heartbeat_saves_the_current_time_and_execution() -> None:
    store = FakeHeartbeatStore()

    heartbeat = record_heartbeat(store, execution="arn:aws:states:eu-west-1:123456789012:execution:Health:run-1")

    assert heartbeat == Heartbeat(
        checked_at=AT, execution="arn:aws:states:eu-west-1:123456789012:execution:Health:run-1"
    )
    assert store.saved == [heartbeat]


def test_record_heartbeat_without_an_execution() -> None:
    store = FakeHeartbeatStore()

    assert record_heartbeat(store, execution=None).execution is None
    assert len(store.saved) == 1


def test_health_is_degraded_before_any_heartbeat() -> None:
    health = check_health(FakeHeartbeatStore(), STALE_AFTER)

    assert (health.status, health.last_heartbeat) == (HealthStatus.DEGRADED, None)


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (timedelta(0), HealthStatus.OK),
        (timedelta(minutes=14, seconds=59), HealthStatus.OK),
        (timedelta(minutes=15), HealthStatus.OK),
        (timedelta(minutes=15, seconds=1), HealthStatus.DEGRADED),
        (timedelta(days=2), HealthStatus.DEGRADED),
    ],
)
def test_health_is_degraded_once_the_heartbeat_is_older_than_the_threshold(
    age: timedelta, status: HealthStatus
) -> None:
    store = FakeHeartbeatStore(Heartbeat(checked_at=AT - age, execution="run-1"))

    health = check_health(store, STALE_AFTER)

    assert (health.status, health.last_heartbeat) == (status, AT - age)


def test_health_reports_the_newest_heartbeat() -> None:
    store = FakeHeartbeatStore()
    clock.freeze(AT - timedelta(hours=1))
    record_heartbeat(store, execution="run-1")
    clock.freeze(AT - timedelta(minutes=5))
    record_heartbeat(store, execution="run-2")
    clock.freeze(AT)

    health = check_health(store, STALE_AFTER)

    assert (health.status, health.last_heartbeat) == (HealthStatus.OK, AT - timedelta(minutes=5))


def test_who_am_i_returns_a_persons_identity_with_sorted_roles() -> None:
    identity = who_am_i(person(Role.RECRUITER, Role.AUDITOR), request_id="req-1", audit=FakeAuditLog())

    assert identity == Identity(
        tenant="acme",
        kind=ActorKind.USER,
        subject="user-1",
        username="jane",
        roles=["auditor", "recruiter"],
        scopes=[],
    )


def test_who_am_i_returns_an_integrations_identity_with_sorted_scopes() -> None:
    identity = who_am_i(machine(Scope.MESSAGES_WRITE, Scope.IDENTITY_READ), request_id="req-1", audit=FakeAuditLog())

    assert identity == Identity(
        tenant="acme",
        kind=ActorKind.INTEGRATION,
        subject="client-1",
        username=None,
        roles=[],
        scopes=["identity.read", "messages.write"],
    )


def test_who_am_i_audits_the_read_once() -> None:
    audit = FakeAuditLog()

    who_am_i(person(Role.HR_ADMIN), request_id="req-1", source_ip="198.51.100.7", audit=audit)

    assert audit.entries == [
        AuditEntry(
            tenant="acme",
            actor="user:user-1",
            action="identity:read",
            resource="identity/user-1",
            outcome=Outcome.ALLOWED,
            request_id="req-1",
            source_ip="198.51.100.7",
            at=AT,
        )
    ]


@pytest.mark.parametrize("role", list(Role))
def test_every_role_may_ask_who_it_is(role: Role) -> None:
    audit = FakeAuditLog()

    assert who_am_i(person(role), request_id="req-1", audit=audit).roles == [role.value]
    assert [e.outcome for e in audit.entries] == [Outcome.ALLOWED]


def test_a_person_without_roles_is_refused_and_the_refusal_audited() -> None:
    audit = FakeAuditLog()

    with pytest.raises(Forbidden):
        who_am_i(person(username=None), request_id="req-1", audit=audit)

    assert [(e.outcome, e.action, e.reason) for e in audit.entries] == [
        (Outcome.DENIED, "identity:read", "missing role")
    ]


def test_an_integration_without_the_identity_scope_is_refused_and_audited() -> None:
    audit = FakeAuditLog()

    with pytest.raises(Forbidden):
        who_am_i(machine(Scope.MESSAGES_WRITE), request_id="req-1", audit=audit)

    assert [(e.outcome, e.actor, e.reason) for e in audit.entries] == [
        (Outcome.DENIED, "integration:client-1", "missing scope")
    ]


# ---- the client-to-tenant binding of machine tokens ------------------------------------------------------


def test_a_registered_client_gets_its_tenant() -> None:
    registry = FakeClientRegistry({"client-1": "acme", "client-2": "globex"})

    assert tenant_for_client(registry, "client-2") == "globex"
    assert registry.lookups == ["client-2"]


@pytest.mark.parametrize(
    ("tenants", "client_id", "reason"),
    [
        ({}, "client-1", "not registered"),
        ({"client-1": "acme"}, "client-9", "not registered"),
        ({"client-1": "acme"}, "", "names no client"),
        ({"client-1": "_platform"}, "client-1", "system tenant"),
        ({"client-1": "_gateway"}, "client-1", "system tenant"),
        ({"client-1": "ACME#globex"}, "client-1", "not a valid tenant id"),
    ],
)
def test_a_client_without_a_trustworthy_tenant_gets_no_token(
    tenants: dict[str, str], client_id: str, reason: str
) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        tenant_for_client(FakeClientRegistry(tenants), client_id)
