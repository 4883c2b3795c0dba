"""One policy table and one permission check. Every decision, allowed or refused, is audited by the check itself.

Each permission is granted to roles (people), to scopes (machine clients), to system jobs and/or to webhook
providers. A user is judged by its roles, an integration by its scopes, a system job or a webhook provider by
its name; nothing else grants anything.

The `auditor` role is just-in-time (issue 13, docs/auditor-access.md): a user whose only role holding a permission
is `auditor` needs, besides the role, an active grant of a compliance officer covering the permission's resource
kind (shared/access_grants.py), read at each check, never cached; the entry of an allowed check names the grant.
Separation of duties: a user holding `system_admin` never uses auditor access (grant or not) and never grants it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import Actor, ActorKind, Role, Scope
from shared.errors import AppError, Forbidden, NotFound

if TYPE_CHECKING:
    from shared.access_grants import GrantReader


class Permission(StrEnum):
    READ_OWN_IDENTITY = "identity:read"
    READ_AUDIT_TRAIL = "audit:read"
    EXPORT_AUDIT_TRAIL = "audit:export"
    MANAGE_AUDITOR_ACCESS = "audit:grant"
    MANAGE_AUDIT_ALERTS = "audit:alert-policy"
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
    DEPROVISION_USERS = "users:deprovision"


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
    # Issue 13: only compliance officers give, read and revoke auditors' grants (never a system_admin: see
    # _SYSTEM_ADMIN_REFUSED), and the auditor's access itself needs one (authorize).
    Permission.MANAGE_AUDITOR_ACCESS: _grant(Role.COMPLIANCE_OFFICER),
    # Issue 13 §7: the thresholds of anomalous-access alerts, read and set by compliance officers only: whoever
    # knows or moves them can stay under them (a system_admin, or an auditor, reads the trail in bulk).
    Permission.MANAGE_AUDIT_ALERTS: _grant(Role.COMPLIANCE_OFFICER),
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
    # Issue 13 section 6: stopping a person of one's own tenant (disable, revoke refresh tokens): the tenant's
    # admins and the platform's operators; no scope, a person decides (docs/identity.md).
    Permission.DEPROVISION_USERS: _grant(Role.COMPANY_ADMIN, Role.ACCOUNT_ADMIN, Role.SYSTEM_ADMIN),
}
if set(POLICY) != set(Permission):  # checked at import, so a permission without a row never deploys
    raise RuntimeError(f"no row in the policy table for {sorted(set(Permission) - set(POLICY))}")


def is_allowed(actor: Actor, permission: Permission) -> bool:
    """The policy table's answer alone, without auditor grants or separation of duties: a probe for what else a
    caller may see (e.g. message content), never the gate; `authorize` is the gate."""
    return POLICY[permission].allows(actor)


# Separation of duties (issue 13): permissions a user holding `system_admin` is refused whatever else they hold.
_SYSTEM_ADMIN_REFUSED = {
    Permission.MANAGE_AUDITOR_ACCESS: "separation of duties: a system_admin cannot grant auditor access",
}
_SYSTEM_ADMIN_AS_AUDITOR = "separation of duties: a system_admin cannot hold auditor access"


def _refusal_reason(actor: Actor) -> str:
    return {
        ActorKind.USER: "missing role",
        ActorKind.INTEGRATION: "missing scope",
        ActorKind.SYSTEM: "job not granted",
        ActorKind.WEBHOOK: "provider not granted",
    }[actor.kind]


@dataclass(frozen=True)
class _Decision:
    allowed: bool
    reason: str | None  # the audit entry's reason: why refused, or the auditor grant that allowed it
    message: str | None = None  # the refusal's message to the caller
    error: AppError | None = None  # raised instead of Forbidden when the grants could not be read


def _auditor_only(actor: Actor, permission: Permission) -> bool:
    """True when `auditor` is the only role of `actor` that holds `permission`."""
    return actor.kind is ActorKind.USER and actor.roles & POLICY[permission].roles == {Role.AUDITOR}


def _decide(actor: Actor, permission: Permission, grants: GrantReader | None, violation: str | None) -> _Decision:
    if not is_allowed(actor, permission):
        reason = _refusal_reason(actor)
        return _Decision(False, reason, f"{permission.value} requires {POLICY[permission].describe()}")
    if actor.kind is ActorKind.USER and Role.SYSTEM_ADMIN in actor.roles and permission in _SYSTEM_ADMIN_REFUSED:
        return _Decision(False, _SYSTEM_ADMIN_REFUSED[permission], _SYSTEM_ADMIN_REFUSED[permission])
    if _auditor_only(actor, permission):
        from shared import access_grants, clock  # only when an auditor is checked (cold start of other functions)

        kind = access_grants.kind_of(permission.value)
        if kind is not None:
            if Role.SYSTEM_ADMIN in actor.roles:
                return _Decision(False, _SYSTEM_ADMIN_AS_AUDITOR, _SYSTEM_ADMIN_AS_AUDITOR)
            try:
                reader = grants if grants is not None else access_grants.grant_reader()
                found = access_grants.check_grants(reader.grants_of(actor.tenant, actor.id), kind, clock.now())
            except AppError as exc:  # no table configured (500) or DynamoDB failed (503): refused, and audited
                return _Decision(False, f"auditor grants unavailable: {exc.code}", exc.message, exc)
            if found.grant is None:
                message = f"{permission.value} needs an active auditor grant covering {kind.value}: {found.reason}"
                return _Decision(False, found.reason, message)
            if violation is None:
                return _Decision(True, found.reason)
    if violation is not None:
        return _Decision(False, violation, violation)
    return _Decision(True, None)


def authorize(
    actor: Actor,
    permission: Permission,
    *,
    resource: str,
    request_id: str,
    audit: AuditLog,
    source_ip: str | None = None,
    grants: GrantReader | None = None,
    violation: str | None = None,
) -> None:
    """Audit the decision and return if `actor` holds `permission`; audit the refusal and raise Forbidden if not.

    The ALLOWED entry is written here, before the caller acts, so no use case can forget it. A user holding the
    permission through the `auditor` role alone also needs an active grant covering its resource kind, read from
    `grants` (default: the platform table, `PLATFORM_TABLE_NAME`, resolved only then); the allowed entry's reason
    names the grant. `violation` is a rule of the use case that refuses even a holder of the permission (e.g.
    "nobody grants access to themselves"): refused with it as the reason, in the same single audit entry.
    """
    decision = _decide(actor, permission, grants, violation)
    audit.append(
        AuditEntry(
            tenant=actor.tenant,
            actor=actor.label,
            action=permission.value,
            resource=resource,
            outcome=Outcome.ALLOWED if decision.allowed else Outcome.DENIED,
            request_id=request_id,
            reason=decision.reason,
            source_ip=source_ip,
        )
    )
    if decision.error is not None:
        raise decision.error
    if not decision.allowed:
        raise Forbidden(decision.message or f"{permission.value} refused")


def ensure_tenant(actor: Actor, record_tenant: str | None, what: str) -> None:
    """Refuse a record of another tenant exactly as a missing one (404 `no <what>`, never 403), so ids cannot be
    probed. `record_tenant` is None when nothing was found.

    Call it on every record loaded by an id the caller supplied, before anything else is done with the record:
    `ensure_tenant(actor, record.tenant if record else None, "message")`.
    """
    if record_tenant is None or record_tenant != actor.tenant:
        raise NotFound(f"no {what}")
