"""Tenant-first DynamoDB keys: every partition key starts with `T#<tenant>#`, so no query crosses tenants."""

from __future__ import annotations

import re

from shared.errors import BadRequest

TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
_TENANT = re.compile(TENANT_PATTERN)
_PART = re.compile(r"^[^#\s]{1,200}$")

# Pseudo-tenants for records that belong to no customer: refusals made before any tenant is known (no token,
# bad signature) and the platform's own state. Real tenant ids cannot start with "_", so they never collide.
GATEWAY_TENANT = "_gateway"
PLATFORM_TENANT = "_platform"
SYSTEM_TENANTS = frozenset({GATEWAY_TENANT, PLATFORM_TENANT})


def check_tenant(tenant: str) -> str:
    """Return `tenant` if it is a valid tenant id; raise BadRequest otherwise."""
    if tenant not in SYSTEM_TENANTS and not _TENANT.match(tenant):
        raise BadRequest(f"invalid tenant id {tenant!r}")
    return tenant


def tenant_problem(tenant: str) -> str | None:
    """Why `tenant` cannot be a customer's tenant ("is a system tenant", "is not a valid tenant id"), or None.

    For tenants that come from outside a request's own data (a token's claim, a registry), where the answer is
    a refusal of the caller rather than a bad request."""
    if tenant in SYSTEM_TENANTS:
        return "is a system tenant"
    if not _TENANT.match(tenant):
        return "is not a valid tenant id"
    return None


def tenant_key(tenant: str, *parts: str) -> str:
    """`T#<tenant>#<part>#...`; parts may not contain '#' or whitespace, so keys cannot be forged by input."""
    check_tenant(tenant)
    for part in parts:
        if not _PART.match(part):
            raise BadRequest(f"invalid key part {part!r}")
    return "#".join(("T", tenant, *parts))


def sequence_key(prefix: str, number: int) -> str:
    """A sort key that orders numerically as a string (zero-padded to 12 digits)."""
    return f"{prefix}#{number:012d}"
