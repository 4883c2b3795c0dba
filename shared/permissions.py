"""One policy table and one permission check. Every decision, allowed or refused, is audited by the check itself.

Each permission is granted to roles (people), to scopes (machine clients), to system jobs and/or to webhook
providers. A user is judged by its roles, an integration by its scopes, a system job or a webhook provider by
its name; nothing else grants anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor, ActorKind, Role, Scope
from shared.errors import Forbidden, NotFound


class Permission(StrEnum):
    READ_OWN_IDENTITY = "identity:read"
    READ_AUDIT_TRAIL = "audit:read"
    EXPORT_AUDIT_TRAIL = "audit:export"
    READ_MESSAGES = "messages:read"
    READ_MESSAGE_CONTENT = "messages:content:read"
    MANAGE_MESSAGE_POLICY = "messages:policy"
    RECORD_MESSAGES = "messages:record"
    EXPORT_MESSAGES = "messages:export"
    MANAGE_LEGAL_HOLDS = "messages:legal-hold"
    REDACT_MESSAGES = "messages:redact"
    READ_FAILURES = "failures:read"
    RECORD_FAILURES = "failures:record"
    MANAGE_ALERT_RULES = "failures:alert-rules"
    READ_RETENTION_POLICY = "retention:read"
    MANAGE_RETENTION_POLICY = "retention:manage"
    REPORT_RETENTION_RECORDS = "retention:report"
    READ_RETENTION_RECORDS = "retention:records:read"
    ERASE_PERSONAL_DATA = "retention:erase"
    READ_ASSETS = "assets:read"
    MANAGE_ASSETS = "assets:manage"
    APPROVE_ASSET_SPEND = "assets:approve"
    WRITE_OFF_ASSETS = "assets:write-off"
    MANAGE_TENANT = "tenant:manage"


@dataclass(frozen=True)
class Grant:
    """Who holds a permission: roles of people, scopes of machine clients, names of system jobs and providers."""

    roles: frozenset[Role] = field(default_factory=frozenset)
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    jobs: frozenset[str] = field(default_factory=frozenset)
    providers: frozenset[str] = field(default_factory=frozenset)

    def allows(self, actor: Actor) -> bool:
        if actor.kind is ActorKind.USER:
            return bool(actor.roles & self.roles)
        if actor.kind is ActorKind.INTEGRATION:
            return bool(actor.scopes & self.scopes)
        if actor.kind is ActorKind.SYSTEM:
            return actor.id in self.jobs
        return actor.id in self.providers  # a webhook provider, only where granted by name

    def describe(self) -> str:
        parts = [
            ("roles", sorted(r.value for r in self.roles)),
            ("scopes", sorted(s.value for s in self.scopes)),
            ("jobs", sorted(self.jobs)),
            ("providers", sorted(self.providers)),
        ]
        return "; ".join(f"{name}: {', '.join(values)}" for name, values in parts if values) or "nobody"


def _grant(*roles: Role, scopes: tuple[Scope, ...] = (), jobs: tuple[str, ...] = ()) -> Grant:
    return Grant(roles=frozenset(roles), scopes=frozenset(scopes), jobs=frozenset(jobs))


_EVERY_ROLE = tuple(Role)

# The policy table. Domains extend it here, in one place; the domain issues add their jobs and providers.
POLICY: dict[Permission, Grant] = {
    Permission.READ_OWN_IDENTITY: _grant(*_EVERY_ROLE, scopes=(Scope.IDENTITY_READ,)),
    Permission.READ_AUDIT_TRAIL: _grant(
        Role.AUDITOR, Role.COMPLIANCE_OFFICER, Role.SYSTEM_ADMIN, scopes=(Scope.AUDIT_READ,)
    ),
    Permission.EXPORT_AUDIT_TRAIL: _grant(Role.AUDITOR, Role.COMPLIANCE_OFFICER),
    Permission.READ_MESSAGES: _grant(
        Role.RECRUITER,
        Role.HIRING_MANAGER,
        Role.HR_ADMIN,
        Role.COMPLIANCE_OFFICER,
        Role.AUDITOR,
        scopes=(Scope.MESSAGES_READ,),
    ),
    # Issue 12: content (subject, body) needs more than metadata; hiring managers, auditors and integrations
    # read metadata only. Every read of content is audited on its own, beside the metadata read.
    Permission.READ_MESSAGE_CONTENT: _grant(Role.RECRUITER, Role.HR_ADMIN, Role.COMPLIANCE_OFFICER),
    Permission.MANAGE_MESSAGE_POLICY: _grant(Role.COMPANY_ADMIN, Role.ACCOUNT_ADMIN, Role.COMPLIANCE_OFFICER),
    # The scheduled synthetic message records through the API's own use case (functions/messages/handlers/synthetic.py).
    Permission.RECORD_MESSAGES: _grant(
        Role.RECRUITER, Role.HR_ADMIN, scopes=(Scope.MESSAGES_WRITE,), jobs=("messages-synthetic",)
    ),
    Permission.EXPORT_MESSAGES: _grant(Role.COMPLIANCE_OFFICER, Role.AUDITOR),
    # Holds on messages (issue 12) and on retention records (seed 002): compliance, and the company's admin.
    Permission.MANAGE_LEGAL_HOLDS: _grant(Role.COMPLIANCE_OFFICER, Role.COMPANY_ADMIN),
    # Issue 12: removing a message's content on a disclosure request destroys the only stored copy: compliance only.
    Permission.REDACT_MESSAGES: _grant(Role.COMPLIANCE_OFFICER),
    Permission.READ_FAILURES: _grant(Role.RECRUITER, Role.HR_ADMIN, Role.SYSTEM_ADMIN, Role.COMPANY_ADMIN),
    Permission.RECORD_FAILURES: _grant(Role.SYSTEM_ADMIN, scopes=(Scope.FAILURES_WRITE,)),
    Permission.MANAGE_ALERT_RULES: _grant(Role.HR_ADMIN, Role.SYSTEM_ADMIN),
    Permission.READ_RETENTION_POLICY: _grant(
        Role.HR_ADMIN,
        Role.COMPANY_ADMIN,
        Role.ACCOUNT_ADMIN,
        Role.COMPLIANCE_OFFICER,
        Role.AUDITOR,
        scopes=(Scope.RETENTION_READ,),
    ),
    # Seed 002: only company and account admins change the policy; integrations report records, never policy.
    Permission.MANAGE_RETENTION_POLICY: _grant(Role.COMPANY_ADMIN, Role.ACCOUNT_ADMIN),
    Permission.REPORT_RETENTION_RECORDS: _grant(scopes=(Scope.RETENTION_WRITE,)),
    Permission.READ_RETENTION_RECORDS: _grant(
        Role.RECRUITER,
        Role.HIRING_MANAGER,
        Role.HR_ADMIN,
        Role.COMPANY_ADMIN,
        Role.ACCOUNT_ADMIN,
        Role.COMPLIANCE_OFFICER,
        Role.AUDITOR,
        scopes=(Scope.RETENTION_READ, Scope.RETENTION_WRITE),
    ),
    Permission.ERASE_PERSONAL_DATA: _grant(Role.COMPANY_ADMIN, Role.COMPLIANCE_OFFICER),
    Permission.READ_ASSETS: _grant(Role.IT_ASSET_MANAGER, Role.HR_ADMIN, Role.FINANCE_APPROVER, Role.AUDITOR),
    Permission.MANAGE_ASSETS: _grant(Role.IT_ASSET_MANAGER, scopes=(Scope.ASSETS_WRITE,)),
    Permission.APPROVE_ASSET_SPEND: _grant(Role.FINANCE_APPROVER),
    Permission.WRITE_OFF_ASSETS: _grant(Role.FINANCE_APPROVER, Role.IT_ASSET_MANAGER),
    Permission.MANAGE_TENANT: _grant(Role.ACCOUNT_ADMIN, Role.SYSTEM_ADMIN),
}
if set(POLICY) != set(Permission):  # checked at import, so a permission without a row never deploys
    raise RuntimeError(f"no row in the policy table for {sorted(set(Permission) - set(POLICY))}")


def is_allowed(actor: Actor, permission: Permission) -> bool:
    return POLICY[permission].allows(actor)


def _refusal_reason(actor: Actor) -> str:
    return {
        ActorKind.USER: "missing role",
        ActorKind.INTEGRATION: "missing scope",
        ActorKind.SYSTEM: "job not granted",
        ActorKind.WEBHOOK: "provider not granted",
    }[actor.kind]


def authorize(
    actor: Actor,
    permission: Permission,
    *,
    resource: str,
    request_id: str,
    audit: AuditLog,
    source_ip: str | None = None,
) -> None:
    """Audit the decision and return if `actor` holds `permission`; audit the refusal and raise Forbidden if not.

    The ALLOWED entry is written here, before the caller acts, so no use case can forget it.
    """
    allowed = is_allowed(actor, permission)
    audit.append(
        AuditEntry(
            tenant=actor.tenant,
            actor=actor.label,
            action=permission.value,
            resource=resource,
            outcome=Outcome.ALLOWED if allowed else Outcome.DENIED,
            request_id=request_id,
            reason=None if allowed else _refusal_reason(actor),
            source_ip=source_ip,
        )
    )
    if not allowed:
        raise Forbidden(f"{permission.value} requires {POLICY[permission].describe()}")


def ensure_tenant(actor: Actor, record_tenant: str | None, what: str) -> None:
    """Refuse a record of another tenant exactly as a missing one (404 `no <what>`, never 403), so ids cannot be
    probed. `record_tenant` is None when nothing was found.

    Call it on every record loaded by an id the caller supplied, before anything else is done with the record:
    `ensure_tenant(actor, record.tenant if record else None, "message")`.
    """
    if record_tenant is None or record_tenant != actor.tenant:
        raise NotFound(f"no {what}")
