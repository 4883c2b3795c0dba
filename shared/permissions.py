"""One policy table and one permission check. Every refusal is audited."""

from __future__ import annotations

from enum import StrEnum

from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Principal, Role
from shared.errors import Forbidden


class Permission(StrEnum):
    READ_OWN_IDENTITY = "identity:read"
    READ_AUDIT_TRAIL = "audit:read"
    EXPORT_AUDIT_TRAIL = "audit:export"
    READ_MESSAGES = "messages:read"
    RECORD_MESSAGES = "messages:record"
    EXPORT_MESSAGES = "messages:export"
    MANAGE_LEGAL_HOLDS = "messages:legal-hold"
    READ_FAILURES = "failures:read"
    RECORD_FAILURES = "failures:record"
    MANAGE_ALERT_RULES = "failures:alert-rules"
    READ_RETENTION_POLICY = "retention:read"
    MANAGE_RETENTION_POLICY = "retention:manage"
    ERASE_PERSONAL_DATA = "retention:erase"
    READ_ASSETS = "assets:read"
    MANAGE_ASSETS = "assets:manage"
    APPROVE_ASSET_SPEND = "assets:approve"
    WRITE_OFF_ASSETS = "assets:write-off"
    MANAGE_TENANT = "tenant:manage"


_ALL = frozenset(Role)

# The policy table: which roles hold each permission. Domains extend it here, in one place.
POLICY: dict[Permission, frozenset[Role]] = {
    Permission.READ_OWN_IDENTITY: _ALL,
    Permission.READ_AUDIT_TRAIL: frozenset({Role.AUDITOR, Role.COMPLIANCE_OFFICER, Role.SYSTEM_ADMIN}),
    Permission.EXPORT_AUDIT_TRAIL: frozenset({Role.AUDITOR, Role.COMPLIANCE_OFFICER}),
    Permission.READ_MESSAGES: frozenset(
        {Role.RECRUITER, Role.HIRING_MANAGER, Role.HR_ADMIN, Role.COMPLIANCE_OFFICER, Role.AUDITOR}
    ),
    Permission.RECORD_MESSAGES: frozenset({Role.INTEGRATION, Role.RECRUITER, Role.HR_ADMIN}),
    Permission.EXPORT_MESSAGES: frozenset({Role.COMPLIANCE_OFFICER, Role.AUDITOR}),
    Permission.MANAGE_LEGAL_HOLDS: frozenset({Role.COMPLIANCE_OFFICER}),
    Permission.READ_FAILURES: frozenset({Role.RECRUITER, Role.HR_ADMIN, Role.SYSTEM_ADMIN, Role.COMPANY_ADMIN}),
    Permission.RECORD_FAILURES: frozenset({Role.INTEGRATION, Role.SYSTEM_ADMIN}),
    Permission.MANAGE_ALERT_RULES: frozenset({Role.HR_ADMIN, Role.SYSTEM_ADMIN}),
    Permission.READ_RETENTION_POLICY: frozenset(
        {Role.HR_ADMIN, Role.COMPANY_ADMIN, Role.ACCOUNT_ADMIN, Role.COMPLIANCE_OFFICER, Role.AUDITOR}
    ),
    Permission.MANAGE_RETENTION_POLICY: frozenset({Role.COMPANY_ADMIN, Role.ACCOUNT_ADMIN}),
    Permission.ERASE_PERSONAL_DATA: frozenset({Role.COMPANY_ADMIN, Role.COMPLIANCE_OFFICER}),
    Permission.READ_ASSETS: frozenset({Role.IT_ASSET_MANAGER, Role.HR_ADMIN, Role.FINANCE_APPROVER, Role.AUDITOR}),
    Permission.MANAGE_ASSETS: frozenset({Role.IT_ASSET_MANAGER, Role.INTEGRATION}),
    Permission.APPROVE_ASSET_SPEND: frozenset({Role.FINANCE_APPROVER}),
    Permission.WRITE_OFF_ASSETS: frozenset({Role.FINANCE_APPROVER, Role.IT_ASSET_MANAGER}),
    Permission.MANAGE_TENANT: frozenset({Role.ACCOUNT_ADMIN, Role.SYSTEM_ADMIN}),
}
if set(POLICY) != set(Permission):  # checked at import, so a permission without a row never deploys
    raise RuntimeError(f"no row in the policy table for {sorted(set(Permission) - set(POLICY))}")


def is_allowed(principal: Principal, permission: Permission) -> bool:
    return bool(principal.roles & POLICY[permission])


def authorize(principal: Principal, permission: Permission, *, resource: str, request_id: str, audit: AuditLog) -> None:
    """Return if `principal` holds `permission`; otherwise audit the refusal and raise Forbidden."""
    if is_allowed(principal, permission):
        return
    audit.append(
        AuditEntry(
            tenant=principal.tenant,
            actor=principal.subject,
            action=permission.value,
            resource=resource,
            outcome=Outcome.DENIED,
            request_id=request_id,
            reason="missing role",
        )
    )
    raise Forbidden(f"{permission.value} requires one of the roles: {', '.join(sorted(POLICY[permission]))}")
