"""In-memory fakes of the ports, one per port, shared by the test tiers."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

from functions.platform.models.entities import Heartbeat
from shared import clock
from shared.access_grants import AuditorGrant, AuditorResourceKind
from shared.audit import AuditEntry, note_append
from shared.errors import DependencyFailure
from shared.webhooks import Claim, WebhookDelivery


class FakeAuditLog:
    """Records appended entries in memory (the AuditLog port)."""

    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def append(self, entry: AuditEntry) -> None:
        note_append()  # as every AuditLog does: the request audited something
        self.entries.append(entry)


class FakeHeartbeatStore:
    """The HeartbeatStore port in memory: `latest` is the newest saved heartbeat, or the one it was given."""

    def __init__(self, latest: Heartbeat | None = None) -> None:
        self.saved: list[Heartbeat] = []
        self.tables: list[str] = []
        self._latest = latest

    def save(self, heartbeat: Heartbeat) -> None:
        self.saved.append(heartbeat)

    def latest(self) -> Heartbeat | None:
        candidates = [*self.saved, *([self._latest] if self._latest else [])]
        return max(candidates, key=lambda h: h.checked_at, default=None)


class FakeClientRegistry:
    """The ClientRegistry port in memory: client id -> tenant."""

    def __init__(self, tenants: dict[str, str] | None = None) -> None:
        self.tenants = dict(tenants or {})
        self.lookups: list[str] = []

    def tenant_of(self, client_id: str) -> str | None:
        self.lookups.append(client_id)
        return self.tenants.get(client_id)


class FakeSecretStore:
    """Secrets Manager by name; a missing name raises KeyError, as TenantSecrets' `fetch` contract says."""

    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.asked: list[str] = []

    def __call__(self, name: str) -> Any:
        self.asked.append(name)
        return self.documents[name]


class FakeReplayGuard:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], tuple[Claim, datetime]] = {}

    def claim(self, tenant: str, provider: str, event_id: str, *, expires_at: datetime) -> Claim:
        key = (tenant, provider, event_id)
        if key not in self.items:
            self.items[key] = (Claim.PENDING, expires_at)
            return Claim.NEW
        return self.items[key][0]

    def confirm(self, tenant: str, provider: str, event_id: str) -> None:
        key = (tenant, provider, event_id)
        self.items[key] = (Claim.DONE, self.items[key][1])


class FakeSink:
    def __init__(self, fail: int = 0) -> None:
        self.stored: list[WebhookDelivery] = []
        self.fail = fail

    def put(self, delivery: WebhookDelivery) -> None:
        if self.fail:
            self.fail -= 1
            raise DependencyFailure("queue unavailable")
        self.stored.append(delivery)


def keyring(current: str, keys: dict[str, bytes]) -> str:
    """A tenant secret document (shared.secrets): versions of base64 keys and the current one."""
    return json.dumps({"current": current, "keys": {v: base64.b64encode(k).decode() for v, k in keys.items()}})


class FakeVacancyStore:
    """The VacancyStore port in memory, with the same optimistic-locking contract as the DynamoDB adapter."""

    def __init__(self) -> None:
        from functions.retention.models.entities import Vacancy

        self.items: dict[tuple[str, str], Vacancy] = {}
        self.writes = 0
        self.race: Vacancy | None = None  # written just before the next save, as a concurrent report would be

    def get(self, tenant: str, vacancy_id: str) -> Any:
        return self.items.get((tenant, vacancy_id))

    def save(self, vacancy: Any, *, previous_version: int | None) -> None:
        from functions.retention.dal.vacancies import StaleWrite

        if self.race is not None:
            self.items[(self.race.tenant, self.race.vacancy_id)], self.race = self.race, None
        current = self.items.get((vacancy.tenant, vacancy.vacancy_id))
        if (current.version if current else None) != previous_version:
            raise StaleWrite(vacancy.vacancy_id)
        self.items[(vacancy.tenant, vacancy.vacancy_id)] = vacancy
        self.writes += 1


class FakeGrantReader:
    """The GrantReader port (shared/access_grants.py): the given grants, or with `everyone` an active grant of every
    kind for every user (tests of what auditors may do once granted)."""

    def __init__(self, *grants: AuditorGrant, everyone: bool = False) -> None:
        self.grants, self.everyone = list(grants), everyone

    def grants_of(self, tenant: str, grantee: str) -> list[AuditorGrant]:
        if not self.everyone:
            return [g for g in self.grants if (g.tenant, g.grantee) == (tenant, grantee)]
        now = clock.now()
        return [
            AuditorGrant(
                tenant=tenant,
                grant_id="ag-20260101000000-00000000",
                grantee=grantee,
                kinds=frozenset(AuditorResourceKind),
                reason="test",
                granted_by="user:officer",
                granted_at=now,
                expires_at=now + timedelta(days=1),
            )
        ]
