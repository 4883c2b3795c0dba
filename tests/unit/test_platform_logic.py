"""Use cases of the platform domain, against in-memory stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from functions.platform.logic.health import latest_heartbeat, record_heartbeat
from functions.platform.logic.identity import who_am_i
from functions.platform.models.entities import Heartbeat, Identity
from shared import clock
from shared.audit import AuditEntry, Outcome
from shared.auth import Principal, Role
from shared.http import RequestContext
from tests.unit.fakes import FakeAuditLog

AT = datetime(2025, 11, 20, 9, 15, 30, tzinfo=UTC)


class FakeHeartbeatStore:
    def __init__(self) -> None:
        self.saved: list[Heartbeat] = []

    def save(self, heartbeat: Heartbeat) -> None:
        self.saved.append(heartbeat)

    def latest(self) -> Heartbeat | None:
        return max(self.saved, key=lambda h: h.checked_at, default=None)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.freeze(AT)
    yield
    clock.freeze(None)


def request(*roles: Role, username: str | None = "jane") -> RequestContext:
    return RequestContext(
        principal=Principal(tenant="acme", subject="user-1", roles=frozenset(roles), username=username),
        request_id="req-1",
        source_ip="198.51.100.7",
    )


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


def test_latest_heartbeat_is_none_before_any_run() -> None:
    assert latest_heartbeat(FakeHeartbeatStore()) is None


def test_latest_heartbeat_is_the_one_recorded() -> None:
    store = FakeHeartbeatStore()
    record_heartbeat(store, execution="run-1")
    clock.freeze(datetime(2025, 11, 20, 9, 20, 30, tzinfo=UTC))
    record_heartbeat(store, execution="run-2")

    latest = latest_heartbeat(store)

    assert latest is not None
    assert (latest.execution, latest.checked_at) == ("run-2", datetime(2025, 11, 20, 9, 20, 30, tzinfo=UTC))


def test_who_am_i_returns_the_identity_with_sorted_roles() -> None:
    identity = who_am_i(request(Role.RECRUITER, Role.AUDITOR), FakeAuditLog())

    assert identity == Identity(tenant="acme", subject="user-1", username="jane", roles=["auditor", "recruiter"])


def test_who_am_i_audits_the_read() -> None:
    audit = FakeAuditLog()

    who_am_i(request(Role.HR_ADMIN), audit)

    assert audit.entries == [
        AuditEntry(
            tenant="acme",
            actor="user-1",
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

    assert who_am_i(request(role), audit).roles == [role.value]
    assert [e.outcome for e in audit.entries] == [Outcome.ALLOWED]


def test_a_principal_without_roles_is_refused_and_the_refusal_audited() -> None:
    from shared.errors import Forbidden

    audit = FakeAuditLog()

    with pytest.raises(Forbidden):
        who_am_i(request(username=None), audit)

    assert [(e.outcome, e.action, e.reason) for e in audit.entries] == [
        (Outcome.DENIED, "identity:read", "missing role")
    ]
