"""Who is calling: the principal read from the claims that the API's JWT authorizer verified.

In AWS the Cognito user-pool authorizer verifies the token and hands the claims to the function in
`requestContext.authorizer.claims`; the local runtime's gateway does the same with a local signing key.
The tenant comes from the verified `custom:tenant` claim, never from the request.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from shared.errors import Unauthenticated
from shared.keys import check_tenant
from shared.models import Model

TENANT_CLAIM = "custom:tenant"
ROLES_CLAIM = "cognito:groups"


class Role(StrEnum):
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
    INTEGRATION = "integration"


class Principal(Model):
    model_config = ConfigDict(frozen=True)

    tenant: str
    subject: str = Field(min_length=1)
    roles: frozenset[Role]
    username: str | None = None


def _parse_groups(raw: Any) -> list[str]:
    # API Gateway flattens list claims: a REST API hands `cognito:groups` over as "a,b" or "[a b]";
    # tokens passed through unchanged carry a JSON list.
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


def principal_from_event(event: dict[str, Any]) -> Principal:
    """The principal of an API Gateway proxy event; Unauthenticated if the authorizer verified no claims."""
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("claims")
    if not isinstance(claims, dict) or not claims.get("sub"):
        raise Unauthenticated("no verified identity on the request")
    tenant = claims.get(TENANT_CLAIM)
    if not tenant:
        raise Unauthenticated(f"the token carries no {TENANT_CLAIM} claim")
    roles = frozenset(Role(g) for g in _parse_groups(claims.get(ROLES_CLAIM)) if g in Role._value2member_map_)
    return Principal(
        tenant=check_tenant(str(tenant)),
        subject=str(claims["sub"]),
        roles=roles,
        username=claims.get("cognito:username") or claims.get("username"),
    )
