"""A tenant's anomalous-access thresholds (issue 13 §7, docs/audit-alerts.md): read and replaced by compliance
officers (`audit:alert-policy`), every decision audited by the permission check. A change is a new version, an
insert: the audit table's items are never overwritten, and the versions keep the policy's history."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from functions.audit.models.alert_policy import (
    DEFAULT_POLICY,
    MINUTES_PER_DAY,
    AlertPolicy,
    StoredAlertPolicy,
    VersionTaken,
)
from shared import clock
from shared.audit import AuditLog
from shared.auth import Actor
from shared.errors import BadRequest, Conflict
from shared.permissions import Permission, authorize

RESOURCE = "audit-alert-policy"


class AlertPolicyStore(Protocol):
    def current(self, tenant: str) -> StoredAlertPolicy | None: ...

    def insert(self, stored: StoredAlertPolicy) -> None: ...


def get_alert_policy(
    actor: Actor, *, store: AlertPolicyStore, audit: AuditLog, request_id: str, source_ip: str | None
) -> StoredAlertPolicy:
    """The caller's tenant's thresholds: the version last set, or the defaults (version 0)."""
    authorize(
        actor,
        Permission.MANAGE_AUDIT_ALERTS,
        resource=RESOURCE,
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    return store.current(actor.tenant) or StoredAlertPolicy(actor.tenant, DEFAULT_POLICY, 0)


def put_alert_policy(
    actor: Actor,
    policy: AlertPolicy,
    *,
    store: AlertPolicyStore,
    audit: AuditLog,
    request_id: str,
    source_ip: str | None,
    now: datetime | None = None,
) -> StoredAlertPolicy:
    """Replace the caller's tenant's thresholds with `policy` as the next version. BadRequest when a window does
    not divide a day; Conflict when another change landed meanwhile (read it, then retry)."""
    authorize(
        actor,
        Permission.MANAGE_AUDIT_ALERTS,
        resource=RESOURCE,
        request_id=request_id,
        audit=audit,
        source_ip=source_ip,
    )
    check_policy(policy)
    current = store.current(actor.tenant)
    stored = StoredAlertPolicy(
        tenant=actor.tenant,
        policy=policy,
        version=(current.version if current else 0) + 1,
        updated_at=now or clock.now(),
        updated_by=actor.label,
    )
    try:
        store.insert(stored)
    except VersionTaken:
        raise Conflict("the alert policy was changed meanwhile: read it and try again") from None
    return stored


def check_policy(policy: AlertPolicy) -> None:
    """Refuse (400) what the schema cannot say: windows that do not divide a day, so windows start on the hour."""
    thresholds = {"reads": policy.reads, "exports": policy.exports, "auth_failures": policy.auth_failures}
    problems = [
        f"{name}.window_minutes ({threshold.window_minutes}) must divide a day ({MINUTES_PER_DAY} minutes): "
        "e.g. 5, 15, 60 or 1440"
        for name, threshold in thresholds.items()
        if MINUTES_PER_DAY % threshold.window_minutes
    ]
    if problems:
        raise BadRequest("; ".join(problems))
