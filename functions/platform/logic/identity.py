"""Use case: tell callers who the verified token says they are."""

from __future__ import annotations

from functions.platform.models.entities import Identity
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.http import RequestContext
from shared.permissions import Permission, authorize


def who_am_i(request: RequestContext, audit: AuditLog) -> Identity:
    """The caller's tenant, subject and roles; the read is audited like any access to personal data."""
    principal = request.principal
    resource = f"identity/{principal.subject}"
    authorize(principal, Permission.READ_OWN_IDENTITY, resource=resource, request_id=request.request_id, audit=audit)
    audit.append(
        AuditEntry(
            tenant=principal.tenant,
            actor=principal.subject,
            action=Permission.READ_OWN_IDENTITY.value,
            resource=resource,
            outcome=Outcome.ALLOWED,
            request_id=request.request_id,
            source_ip=request.source_ip,
        )
    )
    return Identity(
        tenant=principal.tenant,
        subject=principal.subject,
        username=principal.username,
        roles=sorted(role.value for role in principal.roles),
    )
