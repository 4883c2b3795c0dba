"""principal_from_event: the caller comes from the authorizer's verified claims, never from the request."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.auth import ROLES_CLAIM, TENANT_CLAIM, Principal, Role, principal_from_event
from shared.errors import BadRequest, Unauthenticated

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def me_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "apigw_get_me.json").read_text())
    return event


def claims_of(event: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = event["requestContext"]["authorizer"]["claims"]
    return claims


def test_principal_from_the_sample_event(me_event: dict[str, Any]) -> None:
    principal = principal_from_event(me_event)

    assert principal == Principal(
        tenant="acme",
        subject="7c1e9a42-3d6b-4f0a-8e2c-9b5d1f607a38",
        roles=frozenset({Role.RECRUITER, Role.AUDITOR}),
        username="jane.doe",
    )


def test_principal_is_frozen(me_event: dict[str, Any]) -> None:
    principal = principal_from_event(me_event)

    with pytest.raises(ValidationError):
        principal.tenant = "globex"  # type: ignore[misc]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda e: e["requestContext"].pop("authorizer"), id="no-authorizer"),
        pytest.param(lambda e: e["requestContext"]["authorizer"].pop("claims"), id="no-claims"),
        pytest.param(lambda e: e["requestContext"]["authorizer"].update(claims="sub=x"), id="claims-not-a-dict"),
        pytest.param(lambda e: e["requestContext"]["authorizer"]["claims"].pop("sub"), id="no-sub"),
        pytest.param(lambda e: e["requestContext"]["authorizer"]["claims"].update(sub=""), id="empty-sub"),
        pytest.param(lambda e: e["requestContext"].update(authorizer=None), id="authorizer-null"),
        pytest.param(lambda e: e.update(requestContext=None), id="request-context-null"),
        pytest.param(lambda e: e.pop("requestContext"), id="no-request-context"),
    ],
)
def test_no_verified_identity_is_unauthenticated(me_event: dict[str, Any], mutate: Any) -> None:
    mutate(me_event)

    with pytest.raises(Unauthenticated, match="no verified identity"):
        principal_from_event(me_event)


def test_the_health_sample_has_no_identity() -> None:
    event = json.loads((EVENTS / "apigw_get_health.json").read_text())

    with pytest.raises(Unauthenticated):
        principal_from_event(event)


@pytest.mark.parametrize("tenant", [None, ""])
def test_missing_tenant_claim_is_unauthenticated(me_event: dict[str, Any], tenant: str | None) -> None:
    claims = claims_of(me_event)
    if tenant is None:
        del claims[TENANT_CLAIM]
    else:
        claims[TENANT_CLAIM] = tenant

    with pytest.raises(Unauthenticated, match="custom:tenant"):
        principal_from_event(me_event)


@pytest.mark.parametrize("tenant", ["ACME", "acme#globex", "a", "_admin", "acme corp"])
def test_malformed_tenant_claim_is_refused(me_event: dict[str, Any], tenant: str) -> None:
    claims_of(me_event)[TENANT_CLAIM] = tenant

    with pytest.raises(BadRequest, match="invalid tenant id"):
        principal_from_event(me_event)


@pytest.mark.parametrize(
    ("groups", "roles"),
    [
        ("recruiter,auditor", {Role.RECRUITER, Role.AUDITOR}),
        ("recruiter, auditor", {Role.RECRUITER, Role.AUDITOR}),
        ("[recruiter auditor]", {Role.RECRUITER, Role.AUDITOR}),
        ('["recruiter", "auditor"]', {Role.RECRUITER, Role.AUDITOR}),
        (["hr_admin", "system_admin"], {Role.HR_ADMIN, Role.SYSTEM_ADMIN}),
        ("compliance_officer", {Role.COMPLIANCE_OFFICER}),
        ("", set()),
        (None, set()),
        ("[]", set()),
    ],
)
def test_group_claim_formats(me_event: dict[str, Any], groups: Any, roles: set[Role]) -> None:
    claims = claims_of(me_event)
    if groups is None:
        del claims[ROLES_CLAIM]
    else:
        claims[ROLES_CLAIM] = groups

    assert principal_from_event(me_event).roles == frozenset(roles)


def test_unknown_groups_are_ignored(me_event: dict[str, Any]) -> None:
    claims_of(me_event)[ROLES_CLAIM] = "recruiter,superuser,Admins,AUDITOR"

    assert principal_from_event(me_event).roles == frozenset({Role.RECRUITER})


def test_duplicate_groups_collapse(me_event: dict[str, Any]) -> None:
    claims_of(me_event)[ROLES_CLAIM] = "auditor,auditor"

    assert principal_from_event(me_event).roles == frozenset({Role.AUDITOR})


def test_tenant_comes_from_the_claims_not_the_request(me_event: dict[str, Any]) -> None:
    forged = copy.deepcopy(me_event)
    forged["httpMethod"] = "POST"
    forged["body"] = json.dumps({"tenant": "globex", "custom:tenant": "globex"})
    forged["headers"]["X-Tenant"] = "globex"
    forged["queryStringParameters"] = {"tenant": "globex"}
    forged["pathParameters"] = {"tenant": "globex"}

    assert principal_from_event(forged).tenant == "acme"


def test_username_falls_back_to_the_username_claim(me_event: dict[str, Any]) -> None:
    claims = claims_of(me_event)
    del claims["cognito:username"]
    claims["username"] = "integration-bot"

    assert principal_from_event(me_event).username == "integration-bot"


def test_username_is_optional(me_event: dict[str, Any]) -> None:
    del claims_of(me_event)["cognito:username"]

    assert principal_from_event(me_event).username is None


def test_roles_are_the_cognito_group_names() -> None:
    assert {role.value for role in Role} == {
        "recruiter",
        "hiring_manager",
        "hr_admin",
        "company_admin",
        "account_admin",
        "auditor",
        "compliance_officer",
        "it_asset_manager",
        "finance_approver",
        "system_admin",
        "integration",
    }
