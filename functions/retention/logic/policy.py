"""Use cases: read and change a tenant's retention policy (seed 002).

Only company and account admins change it (Permission.MANAGE_RETENTION_POLICY); every change is audited and
published as `RetentionPolicyChanged`, naming the periods it shortened so that the recompute workflow
(logic/recompute.py) brings the stored due dates forward. Each period must lie within the seed's bound; a value
outside it is a 400 whose message is the bound's label. Changes are optimistic: the caller names the version
it read, and a change made meanwhile is a 409.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from functions.retention.dal.policy import PolicyStore, StalePolicy
from functions.retention.models.entities import POLICY_BOUNDS, FingerprintField, RetentionPolicy
from shared import clock
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor
from shared.errors import BadRequest, Conflict
from shared.permissions import Permission, authorize

if TYPE_CHECKING:
    from shared.events import EventPublisher

PERIODS: tuple[str, ...] = tuple(POLICY_BOUNDS)
CHANGED_ACTION = "retention:policy:changed"  # the change itself, after authorize's entry for the attempt
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_MAX_URL = 2048


@dataclass(frozen=True)
class PolicyChange:
    """What the tenant asks the policy to become, and the version it read (0: never set, the defaults)."""

    periods: dict[str, int]
    fingerprint_fields: Sequence[FingerprintField]
    notification_url: str | None
    expected_version: int


def stored_now() -> datetime:
    """The clock at the precision records keep (milliseconds, `clock.isoformat`), so what a use case returns is
    what a later read returns."""
    moment = clock.now()
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def policy_of(store: PolicyStore, tenant: str) -> RetentionPolicy:
    """The tenant's policy, or the defaults (the seed's maxima, version 0) when it never set one. One read."""
    stored = store.load(tenant)
    return stored.policy if stored else RetentionPolicy(tenant=tenant)


def check_period(name: str, months: int) -> None:
    """BadRequest naming the bound (its label, exactly) and the field when `months` lies outside it."""
    bound = POLICY_BOUNDS[name]
    if not bound.minimum <= months <= bound.maximum:
        raise BadRequest(
            f"{name}: {bound.label} (got {months} months)",
            details=[
                {
                    "loc": ["body", name],
                    "msg": bound.label,
                    "type": "out_of_bounds",
                    "minimum": bound.minimum,
                    "maximum": bound.maximum,
                }
            ],
        )


def check_notification_url(url: str) -> None:
    """https to any host, or http to this machine only (local runs); no credentials in the URL."""
    problem = _url_problem(url)
    if problem:
        raise BadRequest(
            f"notification_url {problem}",
            details=[{"loc": ["body", "notification_url"], "msg": problem, "type": "value_error"}],
        )


def _url_problem(url: str) -> str | None:
    if len(url) > _MAX_URL:
        return f"must be at most {_MAX_URL} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    if not host:
        return "needs a host"
    if parts.username is not None or parts.password is not None:
        return "may not carry credentials"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and (host in _LOCAL_HOSTS or _is_loopback(host)):
        return None
    return "must use https (http only to 127.0.0.1 or localhost, for local runs)"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_change(change: PolicyChange) -> None:
    """Every rule a change must meet, each a BadRequest naming the field."""
    for name in PERIODS:
        check_period(name, change.periods[name])
    if not change.fingerprint_fields:
        raise BadRequest(
            "fingerprint_fields must name at least one of email, phone",
            details=[{"loc": ["body", "fingerprint_fields"], "msg": "empty", "type": "value_error"}],
        )
    if len(set(change.fingerprint_fields)) != len(change.fingerprint_fields):
        raise BadRequest(
            "fingerprint_fields names a field twice",
            details=[{"loc": ["body", "fingerprint_fields"], "msg": "duplicate", "type": "value_error"}],
        )
    if change.notification_url is not None:
        check_notification_url(change.notification_url)
    if change.expected_version < 0:
        raise BadRequest("expected_version is the version read, 0 or more")


def shortened_periods(old: RetentionPolicy, new: RetentionPolicy) -> tuple[str, ...]:
    """The periods `new` makes shorter than `old`, in the order of POLICY_BOUNDS."""
    return tuple(name for name in PERIODS if getattr(new, name) < getattr(old, name))


def get_policy(
    actor: Actor,
    *,
    store: PolicyStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> RetentionPolicy:
    """The caller's tenant's policy, or the defaults with version 0."""
    authorize(
        actor,
        Permission.READ_RETENTION_POLICY,
        resource="retention-policy",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    return policy_of(store, actor.tenant)


def change_policy(
    actor: Actor,
    change: PolicyChange,
    *,
    store: PolicyStore,
    audit: AuditLog,
    publisher: EventPublisher,
    request_id: str,
    source_ip: str | None = None,
) -> tuple[RetentionPolicy, tuple[str, ...]]:
    """Replace the caller's tenant's policy; return it and the periods it shortened.

    Authorizes (audited) before anything else, then validates. Raises Conflict when the stored policy is not at
    `expected_version`, except for a repeat of the change that made it the next version (same values, same
    actor: a retry after a failed publish), which publishes its event again. Publishes after the write.
    """
    authorize(
        actor,
        Permission.MANAGE_RETENTION_POLICY,
        resource="retention-policy",
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    check_change(change)
    stored = store.load(actor.tenant)
    current = stored.policy if stored else RetentionPolicy(tenant=actor.tenant)
    proposed = RetentionPolicy(
        tenant=actor.tenant,
        **change.periods,
        fingerprint_fields=tuple(change.fingerprint_fields),
        notification_url=change.notification_url,
        version=change.expected_version + 1,
        updated_at=stored_now(),
        updated_by=actor.label,
    )
    if stored is not None and _is_repeat(stored.policy, proposed):
        _publish(publisher, stored.policy, stored.shortened, request_id)
        return stored.policy, stored.shortened
    if current.version != change.expected_version:
        raise _stale(change.expected_version, current.version)
    shortened = shortened_periods(current, proposed)
    try:
        store.save(proposed, shortened=shortened)
    except StalePolicy:
        latest = policy_of(store, actor.tenant)
        raise _stale(change.expected_version, latest.version) from None
    audit.append(
        AuditEntry(
            tenant=actor.tenant,
            actor=actor.label,
            action=CHANGED_ACTION,
            resource=f"retention-policy/{proposed.version}",
            outcome=Outcome.ALLOWED,
            request_id=request_id,
            reason=f"shortened: {', '.join(shortened) or 'none'}",
            source_ip=source_ip,
        )
    )
    _publish(publisher, proposed, shortened, request_id)
    return proposed, shortened


def _is_repeat(stored: RetentionPolicy, proposed: RetentionPolicy) -> bool:
    fields = (*PERIODS, "fingerprint_fields", "notification_url", "version", "updated_by")
    return all(getattr(stored, f) == getattr(proposed, f) for f in fields)


def _stale(expected: int, current: int) -> Conflict:
    return Conflict(
        f"the retention policy is at version {current}, not {expected}: read it again and repeat the change",
        details=[{"loc": ["body", "expected_version"], "msg": f"current version is {current}", "type": "stale"}],
    )


def _publish(publisher: EventPublisher, policy: RetentionPolicy, shortened: tuple[str, ...], request_id: str) -> None:
    # The event model is imported here, on a change: reading the policy never needs it (cold start).
    from functions.retention.models.events import RetentionPolicyChanged

    publisher.publish(
        [
            RetentionPolicyChanged(
                tenant=policy.tenant,
                policy_version=policy.version,
                shortened=list(shortened),
                correlation_id=request_id,
            )
        ]
    )
