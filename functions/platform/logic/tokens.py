"""Use case: bind a machine client's access token to the tenant the client is registered for."""

from __future__ import annotations

from functions.platform.dal.clients import ClientRegistry
from shared.errors import Unauthenticated
from shared.keys import tenant_problem


def tenant_for_client(registry: ClientRegistry, client_id: str) -> str:
    """The tenant `client_id` acts for; Unauthenticated (so no token is issued) when it has none we can trust.

    The tenant comes from the registry only, never from what the client sends (scopes, client metadata).
    """
    if not client_id:
        raise Unauthenticated("the token request names no client")
    tenant = registry.tenant_of(client_id)
    if tenant is None:
        raise Unauthenticated(f"client {client_id} is not registered to a tenant")
    if problem := tenant_problem(tenant):
        raise Unauthenticated(f"client {client_id} is registered to a tenant that {problem}")
    return tenant
