"""Anomalous access (issue 13 §7): count what each actor does to a tenant's data, per window, and raise one
`AlertRaised` when a tenant's threshold is reached (docs/audit-alerts.md).

The linker (functions/audit/handlers/linker.py) hands over the entries it has just linked, so every entry is
counted once, however often Lambda redelivers its stream records: a redelivered item is already linked and is
not handed over again. Each entry is classified:

- an allowed read (`<domain>[:...]:read`, not `identity:read`) or export (`<domain>:export`) by a user or a
  machine client counts against its actor, as distinct records within the batch;
- a refusal (`denied`) counts against its actor, or at the gateway (`_gateway`, no verified tenant) against its
  source address.

Windows are fixed, `window_minutes` long from midnight UTC, by the entry's time. Counters are kept per (tenant,
kind, actor or address, window) and added to once per batch; the first batch that brings a window to its
threshold claims the window's alert (a conditional flag) and publishes it, so a window raises one alert at most.
A failed publication gives the claim back, and the next batch of that window tries again.

Detection never holds linking up: the caller catches whatever this raises, and each window's failure is counted
here without stopping the others.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from functions.audit.models.alert_policy import DEFAULT_POLICY, AlertPolicy, StoredAlertPolicy, Threshold
from functions.audit.models.anomaly import (
    MAX_EVIDENCE,
    MAX_REQUEST_IDS,
    AlertKind,
    AlertRaised,
    Subject,
    Window,
    WindowTotal,
    window_start,
)
from shared.audit import Outcome
from shared.audit_proof import LinkedEntry
from shared.events import EventPublisher
from shared.keys import GATEWAY_TENANT, SYSTEM_TENANTS
from shared.observability import logger

# A very busy batch (a refusal flood from many addresses) must not hold the linker up: the windows with the most
# entries are counted, the rest skipped and reported.
MAX_WINDOWS_PER_BATCH = 200
POLICY_CACHE_SECONDS = 60.0
_COUNTED_ACTORS = ("user:", "integration:")  # people and machine clients; our own jobs read by design
_NOT_COUNTED_READS = frozenset({"identity:read"})  # one's own identity
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


@dataclass(frozen=True)
class Observation:
    """One entry the linker has just linked, where it sits in the chain, and its chain hash."""

    tenant: str
    actor: str
    action: str
    resource: str
    outcome: str
    at: datetime
    request_id: str
    shard: int
    seq: int
    hash_hex: str
    source_ip: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.shard}:{self.seq}:{self.hash_hex}"


def observations(tenant: str, shard: int, linked: Sequence[LinkedEntry]) -> list[Observation]:
    """The linked entries of one chain link as observations."""
    out = []
    for item in linked:
        entry = item.entry
        out.append(
            Observation(
                tenant=tenant,
                actor=str(entry["actor"]),
                action=str(entry["action"]),
                resource=str(entry["resource"]),
                outcome=str(entry["outcome"]),
                at=datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00")),
                request_id=str(entry["request_id"]),
                shard=shard,
                seq=int(entry["seq"]),
                hash_hex=item.hash.hex(),
                source_ip=entry.get("source_ip"),
            )
        )
    return out


def classify(observation: Observation) -> Subject | None:
    """The counter an entry counts against, or None when it counts against none."""
    if observation.outcome == Outcome.DENIED.value:
        if observation.tenant == GATEWAY_TENANT and observation.source_ip:
            return Subject(AlertKind.REPEATED_AUTH_FAILURES, observation.actor, observation.source_ip)
        return Subject(AlertKind.REPEATED_AUTH_FAILURES, observation.actor)
    if observation.outcome != Outcome.ALLOWED.value or not observation.actor.startswith(_COUNTED_ACTORS):
        return None
    if observation.action.endswith(":export"):
        return Subject(AlertKind.UNUSUAL_EXPORTS, observation.actor)
    if observation.action.endswith(":read") and observation.action not in _NOT_COUNTED_READS:
        return Subject(AlertKind.UNUSUAL_READS, observation.actor)
    return None


def threshold_of(policy: AlertPolicy, kind: AlertKind) -> Threshold:
    return {
        AlertKind.UNUSUAL_READS: policy.reads,
        AlertKind.UNUSUAL_EXPORTS: policy.exports,
        AlertKind.REPEATED_AUTH_FAILURES: policy.auth_failures,
    }[kind]


class AnomalyCounters(Protocol):
    def add(self, window: Window, count: int, now: datetime) -> WindowTotal: ...

    def claim(self, window: Window, alert_id: str, now: datetime) -> bool: ...

    def release(self, window: Window, alert_id: str) -> None: ...


class AlertPolicySource(Protocol):
    def current(self, tenant: str) -> StoredAlertPolicy | None: ...


class PolicyCache:
    """Tenants' policies as the warm linker last read them, for `ttl_seconds`: one read per tenant per batch at
    most, and a changed policy applies within a minute. The pseudo-tenants (the gateway) have the defaults."""

    def __init__(self, ttl_seconds: float = POLICY_CACHE_SECONDS, monotonic: Callable[[], float] | None = None) -> None:
        import time

        self._ttl = ttl_seconds
        self._monotonic = monotonic or time.monotonic
        self._policies: dict[str, tuple[float, AlertPolicy]] = {}

    def policy(self, tenant: str, source: AlertPolicySource) -> AlertPolicy:
        if tenant in SYSTEM_TENANTS:
            return DEFAULT_POLICY
        now = self._monotonic()
        cached = self._policies.get(tenant)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        stored = source.current(tenant)
        policy = stored.policy if stored is not None else DEFAULT_POLICY
        self._policies[tenant] = (now, policy)
        return policy


@dataclass
class _Tally:
    threshold: Threshold
    entries: list[Observation] = field(default_factory=list)

    def count(self, kind: AlertKind) -> int:
        if kind is AlertKind.REPEATED_AUTH_FAILURES:
            return len(self.entries)
        return len({(o.action, o.resource) for o in self.entries})  # a record read twice in a batch counts once


@dataclass
class DetectionReport:
    windows: int = 0
    alerts: list[AlertRaised] = field(default_factory=list)
    errors: int = 0
    skipped_windows: int = 0


@dataclass
class AnomalyDetector:
    """Counts the entries the linker linked and raises the alerts (see the module's docstring)."""

    counters: AnomalyCounters
    policies: AlertPolicySource
    publisher: EventPublisher
    cache: PolicyCache = field(default_factory=PolicyCache)
    max_windows: int = MAX_WINDOWS_PER_BATCH

    def observe(self, seen: Iterable[Observation], now: datetime) -> DetectionReport:
        """Count `seen` (one linker batch) and raise the alerts it brings about."""
        report = DetectionReport()
        tallies = self._tallies(seen, report)
        ordered = sorted(tallies.items(), key=lambda item: len(item[1].entries), reverse=True)
        if len(ordered) > self.max_windows:
            report.skipped_windows = len(ordered) - self.max_windows
            logger.warning("anomaly windows skipped in a busy batch", extra={"skipped": report.skipped_windows})
        for window, tally in ordered[: self.max_windows]:
            try:
                self._count(window, tally, now, report)
            except Exception:
                report.errors += 1
                logger.exception(
                    "an anomaly window could not be counted",
                    extra={"tenant": window.tenant, "kind": window.subject.kind.value},
                )
        return report

    def _tallies(self, seen: Iterable[Observation], report: DetectionReport) -> dict[Window, _Tally]:
        tallies: dict[Window, _Tally] = {}
        policies: dict[str, AlertPolicy | None] = {}
        for observation in seen:
            subject = classify(observation)
            if subject is None:
                continue
            if observation.tenant not in policies:
                try:
                    policies[observation.tenant] = self.cache.policy(observation.tenant, self.policies)
                except Exception:
                    report.errors += 1
                    policies[observation.tenant] = None
                    logger.exception("a tenant's alert policy could not be read", extra={"tenant": observation.tenant})
            policy = policies[observation.tenant]
            if policy is None or not policy.enabled:
                continue
            threshold = threshold_of(policy, subject.kind)
            window = Window(
                observation.tenant,
                subject,
                threshold.window_minutes,
                window_start(observation.at, threshold.window_minutes),
            )
            tallies.setdefault(window, _Tally(threshold)).entries.append(observation)
        return tallies

    def _count(self, window: Window, tally: _Tally, now: datetime, report: DetectionReport) -> None:
        total = self.counters.add(window, tally.count(window.subject.kind), now)
        report.windows += 1
        if total.alerted or total.count < tally.threshold.limit:
            return
        alert = _alert(window, tally, total.count, now)
        if not self.counters.claim(window, alert.event_id, now):
            return  # another batch raised it
        try:
            self.publisher.publish([alert])
        except Exception:
            self.counters.release(window, alert.event_id)  # the next batch of the window tries again
            raise
        report.alerts.append(alert)
        logger.warning(
            "anomalous access alert raised",
            extra={"tenant": window.tenant, "kind": window.subject.kind.value, "alert_id": alert.event_id},
        )


def identifier(value: str) -> str:
    """`value` when it is an event Identifier, else a stable stand-in (`x-` and 40 hex of its SHA-256)."""
    if _IDENTIFIER.match(value):
        return value
    return "x-" + hashlib.sha256(value.encode()).hexdigest()[:40]


def _alert(window: Window, tally: _Tally, count: int, now: datetime) -> AlertRaised:
    entries = tally.entries[-MAX_EVIDENCE:]
    request_ids: list[str] = []
    for observation in entries:
        if _IDENTIFIER.match(observation.request_id) and observation.request_id not in request_ids:
            request_ids.append(observation.request_id)
    fields: dict[str, Any] = {
        "tenant": window.tenant,
        "event_id": window.alert_id,
        "occurred_at": now,
        "kind": window.subject.kind,
        "actor": identifier(window.subject.actor),
        "source_ip": identifier(window.subject.source_ip) if window.subject.source_ip is not None else None,
        "count": count,
        "threshold": tally.threshold.limit,
        "window_minutes": window.minutes,
        "window_start": window.start,
        "window_end": window.end,
        "evidence": [o.ref for o in entries],
        "request_ids": request_ids[:MAX_REQUEST_IDS],
        "distinct_resources": len({o.resource for o in entries}),
    }
    return AlertRaised(**fields)
