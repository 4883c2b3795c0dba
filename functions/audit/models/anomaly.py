"""Anomalous access (issue 13 §7, docs/audit-alerts.md): the counters' entities (what is counted, in which window)
and the audit domain's event (source `ats.audit`) `AlertRaised`. Identifiers only: the evidence points at chain
entries, which hold the rest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from shared.events import DomainEvent, Identifier

SOURCE = "ats.audit"
MAX_EVIDENCE = 50
MAX_REQUEST_IDS = 20


class AlertKind(StrEnum):
    UNUSUAL_READS = "unusual_reads"
    UNUSUAL_EXPORTS = "unusual_exports"
    REPEATED_AUTH_FAILURES = "repeated_auth_failures"


@dataclass(frozen=True)
class Subject:
    """What one counter counts: a kind of access by one actor, or (refusals at the gateway) from one address."""

    kind: AlertKind
    actor: str
    source_ip: str | None = None

    @property
    def key(self) -> str:
        return f"ip:{self.source_ip}" if self.source_ip is not None else self.actor


@dataclass(frozen=True)
class Window:
    """One counter: a subject's count in one window of one tenant."""

    tenant: str
    subject: Subject
    minutes: int
    start: datetime

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    @property
    def alert_id(self) -> str:
        """The same for every attempt to raise this window's alert: consumers may deduplicate on it."""
        kind = self.subject.kind.value
        facts = "|".join((self.tenant, kind, self.subject.key, str(self.minutes), self.start.isoformat()))
        return "alert-" + hashlib.sha256(facts.encode()).hexdigest()[:40]


def window_start(at: datetime, minutes: int) -> datetime:
    """The start of the fixed window of `minutes` holding `at` (windows start at midnight UTC)."""
    at = at.astimezone(UTC)
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((at - midnight).total_seconds() // 60)
    return midnight + timedelta(minutes=elapsed - elapsed % minutes)


@dataclass(frozen=True)
class WindowTotal:
    count: int
    alerted: bool  # the window's alert is claimed already


class AlertRaised(DomainEvent):
    """One actor (or, for refusals at the gateway, one source address) reached a tenant's threshold in a window.
    Raised at most once per (tenant, kind, actor or address, window)."""

    detail_type: ClassVar[str] = "AlertRaised"
    system_tenants: ClassVar[bool] = True  # `_gateway`: refusals before any tenant was known
    kind: AlertKind
    actor: Identifier  # the actor label counted (`user:<sub>`, `integration:<client id>`, `anonymous`)
    source_ip: Identifier | None = None  # set when refusals were counted by source address (the gateway)
    count: int  # what the window counted so far: distinct records per batch for reads and exports, else entries
    threshold: int
    window_minutes: int
    window_start: datetime
    window_end: datetime
    # `<shard>:<seq>:<chain hash hex>` of the entries of the batch that crossed the threshold (at most 50): the
    # chain entries (functions/audit/dal/chain.py) name the actions, resources and requests, and verify.
    evidence: list[Identifier]
    request_ids: list[Identifier]  # of those entries, distinct, at most 20
    distinct_resources: int  # among those entries
