"""Use case: who a person signed in through an enterprise identity provider is: their tenant and their roles.

The CDK app federates the user pool with the IdPs configured for the stage (infra/constructs/stage.py) and hands
their mapping to the functions as `IDENTITY_PROVIDERS`: provider name -> {tenant, group_roles}. Each provider is
bound to one tenant by configuration; the IdP's groups claim arrives in the user's `custom:idp_groups` attribute
(rewritten at each federated sign-in), and only groups named in `group_roles` grant roles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from shared.auth import TENANT_CLAIM, Role
from shared.errors import ConfigurationError, Unauthenticated
from shared.keys import tenant_problem

IDP_GROUPS_ATTRIBUTE = "custom:idp_groups"  # infra.constants.IDP_GROUPS_ATTRIBUTE, with Cognito's prefix
IDENTITIES_ATTRIBUTE = "identities"  # set by Cognito on federated users: a JSON list of their provider links


@dataclass(frozen=True)
class FederatedProvider:
    """One configured IdP: the tenant it signs people into, and the roles each of its groups grants."""

    name: str
    tenant: str
    group_roles: Mapping[str, frozenset[Role]]


@dataclass(frozen=True)
class FederatedIdentity:
    """What the tokens of a federated person carry: the provider's tenant and the roles of their mapped groups."""

    provider: str
    tenant: str
    roles: tuple[Role, ...]  # sorted by value
    unmapped_groups: int  # groups of the IdP that grant nothing here


@lru_cache(maxsize=4)
def parse_providers(raw: str) -> Mapping[str, FederatedProvider]:
    """The providers of an `IDENTITY_PROVIDERS` value; ConfigurationError if it is not what the CDK app writes."""
    try:
        loaded = json.loads(raw)
        if not isinstance(loaded, dict):
            raise TypeError("not an object")
        providers = {
            str(name): FederatedProvider(
                name=str(name),
                tenant=_configured_tenant(str(name), entry["tenant"]),
                group_roles=MappingProxyType(
                    {
                        str(group): frozenset(Role(role) for role in roles)
                        for group, roles in entry["group_roles"].items()
                    }
                ),
            )
            for name, entry in loaded.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigurationError(f"IDENTITY_PROVIDERS is not a valid provider mapping: {exc}") from None
    return MappingProxyType(providers)


def _configured_tenant(provider: str, tenant: Any) -> str:
    if not isinstance(tenant, str):
        raise TypeError(f"provider {provider}: the tenant is not a string")
    if problem := tenant_problem(tenant):
        raise ValueError(f"provider {provider}: tenant {tenant!r} {problem}")
    return tenant


def linked_providers(user_attributes: Mapping[str, Any]) -> list[str]:
    """The names of the IdPs a user signs in through (Cognito's `identities` attribute); [] for a pool user."""
    raw = user_attributes.get(IDENTITIES_ATTRIBUTE)
    if not raw:
        return []
    try:
        links = json.loads(raw) if isinstance(raw, str) else raw
        return [str(link["providerName"]) for link in links if link.get("providerName")]
    except (ValueError, TypeError, AttributeError):
        # Cognito writes this attribute, nobody else can: unreadable means something is wrong, so refuse.
        raise Unauthenticated("the user's identity provider links cannot be read") from None


def idp_groups(raw: Any) -> list[str]:
    """The groups of a `custom:idp_groups` value, as Cognito writes a mapped claim: a JSON list (OIDC), or a
    multi-valued SAML attribute as "[a, b]", or a single value. Group names are trimmed; empty ones dropped."""
    if raw is None:
        return []
    if isinstance(raw, list):
        return [str(g).strip() for g in raw if str(g).strip()]
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            loaded = json.loads(text)
        except ValueError:
            text = text[1:-1]
        else:
            if isinstance(loaded, list):
                return [str(g).strip() for g in loaded if str(g).strip()]
    return [g.strip() for g in text.split(",") if g.strip()]


def roles_for_groups(groups: list[str], group_roles: Mapping[str, frozenset[Role]]) -> frozenset[Role]:
    """The roles the mapped groups grant; a group that is not mapped grants nothing. Names match exactly."""
    return frozenset(role for group in groups for role in group_roles.get(group, frozenset()))


def federated_identity(
    providers: Mapping[str, FederatedProvider], user_attributes: Mapping[str, Any]
) -> FederatedIdentity | None:
    """The tenant and roles of a federated user; None for a user of the pool itself (their token is unchanged).

    Raises Unauthenticated, so that no token is issued, when the user's IdP is not (or no longer) configured, when
    they are linked to providers of more than one configuration, or when their pool tenant differs from the
    provider's.
    """
    linked = linked_providers(user_attributes)
    if not linked:
        return None
    configured = sorted({name for name in linked if name in providers})
    if not configured:
        raise Unauthenticated(f"identity provider {', '.join(sorted(set(linked)))} is not configured")
    if len(configured) > 1:
        raise Unauthenticated(f"the user is linked to several identity providers: {', '.join(configured)}")
    provider = providers[configured[0]]
    pool_tenant = user_attributes.get(TENANT_CLAIM)
    if pool_tenant and pool_tenant != provider.tenant:
        raise Unauthenticated(f"identity provider {provider.name} is bound to another tenant than the user")
    groups = idp_groups(user_attributes.get(IDP_GROUPS_ATTRIBUTE))
    roles = roles_for_groups(groups, provider.group_roles)
    return FederatedIdentity(
        provider=provider.name,
        tenant=provider.tenant,
        roles=tuple(sorted(roles, key=lambda role: role.value)),
        unmapped_groups=sum(1 for group in groups if group not in provider.group_roles),
    )


def token_overrides(identity: FederatedIdentity) -> dict[str, Any]:
    """The pre-token-generation (V2/V3) response for a federated user.

    - `cognito:groups` is replaced by the mapped roles (both tokens): the group Cognito adds for every IdP user
      (`<pool>_<provider>`) and any group set in the pool are dropped, so the IdP is the one source of roles;
    - `custom:tenant` is added (a federated user has no pool tenant: that attribute is immutable, so no IdP
      attribute can be mapped into it);
    - the raw IdP groups stay out of the ID token.
    """
    tenant = {TENANT_CLAIM: identity.tenant}
    return {
        "claimsAndScopeOverrideDetails": {
            "idTokenGeneration": {"claimsToAddOrOverride": dict(tenant), "claimsToSuppress": [IDP_GROUPS_ATTRIBUTE]},
            "accessTokenGeneration": {"claimsToAddOrOverride": dict(tenant)},
            "groupOverrideDetails": {"groupsToOverride": [role.value for role in identity.roles]},
        }
    }
