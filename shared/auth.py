"""Who is calling: the actor read from the claims that the API's Cognito authorizer verified, or built for the
callers that carry no token (webhook providers, system jobs).

In AWS the Cognito user-pool authorizer verifies the token and hands the claims to the function in
`requestContext.authorizer.claims`; the local runtime's gateway does the same with a local signing key. The
tenant comes from the verified `custom:tenant` claim, never from the request:
- an ID token (`token_use` "id") is a person: roles from `cognito:groups`;
- an access token (`token_use` "access") from the OAuth 2.0 client-credentials grant is an integration: scopes
  from `scope`, the tenant put there by the pre-token-generation trigger from the client-to-tenant registry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.errors import Unauthenticated
from shared.keys import check_tenant, tenant_problem

TENANT_CLAIM = "custom:tenant"
ROLES_CLAIM = "cognito:groups"
SCOPE_CLAIM = "scope"
RESOURCE_SERVER = "ats"  # the Cognito resource server's identifier: full scope names are "ats/<scope>"


class Role(StrEnum):
    """The roles of people; each is a Cognito group of the same name."""

    RECRUITER = "recruiter"
    HIRING_MANAGER = "hiring_manager"
    HR_ADMIN = "hr_admin"
    COMPANY_ADMIN = "company_admin"
    ACCOUNT_ADMIN = "account_admin"
    AUDITOR = "auditor"
    COMPLIANCE_OFFICER = "compliance_officer"
    IT_ASSET_MANAGER = "it_asset_manager"
    FINANCE_APPROVER = "finance_approver"
    SYSTEM_ADMIN = "system_admin"


class Scope(StrEnum):
    """The OAuth scopes of the `ats` resource server that machine clients are granted (values without prefix)."""

    IDENTITY_READ = "identity.read"
    MESSAGES_READ = "messages.read"
    MESSAGES_WRITE = "messages.write"
    RETENTION_READ = "retention.read"
    RETENTION_WRITE = "retention.write"
    FAILURES_WRITE = "failures.write"
    ASSETS_WRITE = "assets.write"
    AUDIT_READ = "audit.read"


def full_scope(scope: Scope) -> str:
    """The scope as it appears in a token and in a method's `AuthorizationScopes`: `ats/<scope>`."""
    return f"{RESOURCE_SERVER}/{scope.value}"


class ActorKind(StrEnum):
    USER = "user"  # a person with an ID token
    INTEGRATION = "integration"  # a machine client with a client-credentials access token
    WEBHOOK = "webhook"  # a provider whose signature verified with the tenant's secret
    SYSTEM = "system"  # a schedule, workflow step or queue consumer of our own


@dataclass(frozen=True)
class Actor:
    """Who acts, for which tenant. `id` is the user's `sub`, the client id, the provider name or the job name.

    Roles belong to users and scopes to integrations only; any other mix is refused at construction.
    """

    kind: ActorKind
    tenant: str
    id: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    username: str | None = None

    def __post_init__(self) -> None:
        check_tenant(self.tenant)
        if not self.id:
            raise ValueError("an actor needs an id")
        if self.roles and self.kind is not ActorKind.USER:
            raise ValueError(f"a {self.kind} actor carries no roles")
        if self.scopes and self.kind is not ActorKind.INTEGRATION:
            raise ValueError(f"a {self.kind} actor carries no scopes")

    @property
    def label(self) -> str:
        """How the audit trail names the actor: `<kind>:<id>`, e.g. `user:7c1e…`, `integration:4k2j…`."""
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def user(cls, tenant: str, sub: str, roles: frozenset[Role], username: str | None = None) -> Actor:
        return cls(ActorKind.USER, tenant, sub, roles=roles, username=username)

    @classmethod
    def integration(cls, tenant: str, client_id: str, scopes: frozenset[Scope]) -> Actor:
        return cls(ActorKind.INTEGRATION, tenant, client_id, scopes=scopes)

    @classmethod
    def system(cls, job: str, tenant: str) -> Actor:
        """A job of our own (schedule, workflow step, queue consumer) acting for `tenant`."""
        return cls(ActorKind.SYSTEM, tenant, job)

    @classmethod
    def webhook(cls, provider: str, tenant: str) -> Actor:
        """A provider whose request verified with `tenant`'s secret (never before the signature check)."""
        return cls(ActorKind.WEBHOOK, tenant, provider)


def _split(raw: Any) -> list[str]:
    # API Gateway flattens list claims: a REST API hands a list over as "a,b" or "[a b]"; tokens passed through
    # unchanged carry a JSON list.
    if raw is None or raw == "":
        return []
    if isinstance(raw, list):
        return [str(g) for g in raw]
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            return [str(g) for g in json.loads(text)]
        except ValueError:
            text = text[1:-1]
    return [g for g in text.replace(",", " ").split() if g]


def _roles(raw: Any) -> frozenset[Role]:
    """The roles of a groups claim, failing closed: one name that is not exactly a role voids them all.

    The REST authorizer joins groups with "," so a group named "x,auditor" would read as two names; since no
    honest group name is anything but a role, an unknown name means the claim cannot be trusted.
    """
    names = _split(raw)
    if any(name not in Role._value2member_map_ for name in names):
        return frozenset()
    return frozenset(Role(name) for name in names)


def _scopes(raw: Any) -> frozenset[Scope]:
    """The scopes of our resource server in a `scope` claim ("ats/a ats/b"); others (e.g. openid) are not ours."""
    prefix = f"{RESOURCE_SERVER}/"
    names = str(raw or "").split()
    return frozenset(
        Scope(name.removeprefix(prefix))
        for name in names
        if name.startswith(prefix) and name.removeprefix(prefix) in Scope._value2member_map_
    )


def _tenant(claims: dict[str, Any]) -> str:
    tenant = claims.get(TENANT_CLAIM)
    if not tenant:
        raise Unauthenticated(f"the token carries no {TENANT_CLAIM} claim")
    tenant = str(tenant)
    if problem := tenant_problem(tenant):
        raise Unauthenticated(f"the token's {TENANT_CLAIM} claim {problem}")
    return tenant


def actor_from_event(event: dict[str, Any]) -> Actor:
    """The actor of an API Gateway proxy event; Unauthenticated if the authorizer verified no usable claims."""
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims")
    if not isinstance(claims, dict) or not claims.get("sub"):
        raise Unauthenticated("no verified identity on the request")
    token_use = claims.get("token_use")
    if token_use == "id":
        return Actor.user(
            tenant=_tenant(claims),
            sub=str(claims["sub"]),
            roles=_roles(claims.get(ROLES_CLAIM)),
            username=claims.get("cognito:username") or None,
        )
    if token_use == "access":
        client_id = str(claims.get("client_id") or "")
        # A machine's token has the client as its subject; a person's access token (sub = the user) is not an
        # integration, and people call with their ID token.
        if not client_id or client_id != str(claims["sub"]):
            raise Unauthenticated("an access token is accepted from machine clients only")
        return Actor.integration(tenant=_tenant(claims), client_id=client_id, scopes=_scopes(claims.get(SCOPE_CLAIM)))
    raise Unauthenticated("the token is neither an ID token nor an access token")
