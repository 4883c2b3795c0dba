"""Use case: deprovision a person of the caller's tenant, so that their access stops within minutes.

Disabling the user stops every new sign-in (password or federated) and every refresh; the global sign-out
revokes the refresh tokens they hold. What nobody can revoke is an ID or access token already issued: the API
verifies those by signature and expiry only, so they work until they expire, at most the token lifetime (15
minutes, infra/constants.py). docs/identity.md is the runbook.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from functions.platform.dal.deprovision import DirectoryUser, UserDirectory
from functions.platform.logic.federation import FederatedProvider, linked_providers
from shared.audit import AuditEntry, AuditLog, Outcome
from shared.auth import TENANT_CLAIM, Actor
from shared.errors import BadRequest, DependencyFailure, Unauthenticated
from shared.permissions import Permission, authorize, ensure_tenant

# Company admins, account admins and system admins (shared/permissions.py `users:deprovision`). The resource of the
# permission check is the tenant's user directory: the user is named in the entry of the action itself, by `sub`,
# once they are known to be ours.
PERMISSION = Permission.DEPROVISION_USERS
ACTION = "user:deprovision"
# Cognito's usernames: printable, no whitespace, at most 128 characters.
_USERNAME = re.compile(r"^[^\s\x00-\x1f\x7f]{1,128}$")


@dataclass(frozen=True)
class Deprovisioned:
    """The outcome: the user (by `sub`, never by name or e-mail) and whether they were still enabled."""

    user: str
    was_enabled: bool


def tenant_of_user(attributes: Mapping[str, str], providers: Mapping[str, FederatedProvider]) -> str | None:
    """The tenant a user belongs to: their pool `custom:tenant`, or for a federated user the tenant their one
    configured identity provider is bound to; None when neither says (no tenant can manage such a user)."""
    if tenant := attributes.get(TENANT_CLAIM):
        return tenant
    try:
        linked = linked_providers(attributes)
    except Unauthenticated:
        return None
    tenants = {providers[name].tenant for name in linked if name in providers}
    return tenants.pop() if len(tenants) == 1 else None


def deprovision_user(
    actor: Actor,
    username: str,
    *,
    directory: UserDirectory,
    providers: Mapping[str, FederatedProvider],
    audit: AuditLog,
    request_id: str,
    source_ip: str | None = None,
) -> Deprovisioned:
    """Disable `username` and revoke their refresh tokens; idempotent (a disabled user is signed out again).

    The permission check comes first and is audited either way, so a caller without it learns nothing about which
    users exist; a user of another tenant, or none, is a 404 alike. The action is audited with the user's `sub`.
    """
    authorize(actor, PERMISSION, resource="users", request_id=request_id, audit=audit, source_ip=source_ip)
    if not _USERNAME.match(username):
        raise BadRequest("a username is 1 to 128 printable characters without spaces")
    user = directory.get(username)
    ensure_tenant(actor, tenant_of_user(user.attributes, providers) if user else None, "user")
    assert user is not None  # ensure_tenant raised otherwise
    subject = _subject(user)
    try:
        # Disabled first: between the two calls the user could otherwise sign in again and hold a fresh
        # refresh token that the sign-out had not seen.
        directory.disable(user.username)
        directory.sign_out_everywhere(user.username)
    except DependencyFailure:
        audit.append(_entry(actor, subject, Outcome.FAILED, request_id, source_ip, reason="user directory failed"))
        raise
    audit.append(_entry(actor, subject, Outcome.ALLOWED, request_id, source_ip))
    return Deprovisioned(user=subject, was_enabled=user.enabled)


def _subject(user: DirectoryUser) -> str:
    sub = user.attributes.get("sub")
    if not sub:
        raise DependencyFailure("the user directory returned a user without a sub")
    return sub


def _entry(
    actor: Actor, subject: str, outcome: Outcome, request_id: str, source_ip: str | None, reason: str | None = None
) -> AuditEntry:
    return AuditEntry(
        tenant=actor.tenant,
        actor=actor.label,
        action=ACTION,
        resource=f"user/{subject}",
        outcome=outcome,
        request_id=request_id,
        reason=reason,
        source_ip=source_ip,
    )
