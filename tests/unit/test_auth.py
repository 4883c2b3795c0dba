"""actor_from_event: the caller comes from the authorizer's verified claims, never from the request.

A person's ID token gives a user actor (roles from groups), a machine client's access token an integration
actor (scopes); anything else, or a token without a usable tenant, is unauthenticated.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from shared.auth import (
    ROLES_CLAIM,
    TENANT_CLAIM,
    Actor,
    ActorKind,
    Role,
    Scope,
    actor_from_event,
    full_scope,
)
from shared.errors import Unauthenticated
from tests.conftest import sample_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
CLIENT_ID = "5m3n7b9v1c2x4z6l8k0j2h4g6f"


@pytest.fixture
def me_event() -> dict[str, Any]:
    return sample_event("apigw_get_me.json")


@pytest.fixture
def machine_event() -> dict[str, Any]:
    return sample_event("apigw_get_me_integration.json")


def claims_of(event: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = event["requestContext"]["authorizer"]["claims"]
    return claims


# ---- people: ID tokens ---------------------------------------------------------------------------------


def test_an_id_token_is_a_user_actor(me_event: dict[str, Any]) -> None:
    actor = actor_from_event(me_event)

    assert actor == Actor(
        kind=ActorKind.USER,
        tenant="acme",
        id="7c1e9a42-3d6b-4f0a-8e2c-9b5d1f607a38",
        roles=frozenset({Role.RECRUITER, Role.AUDITOR}),
        username="jane.doe",
    )
    assert actor.scopes == frozenset()
    assert actor.label == "user:7c1e9a42-3d6b-4f0a-8e2c-9b5d1f607a38"


def test_an_actor_is_frozen(me_event: dict[str, Any]) -> None:
    actor = actor_from_event(me_event)

    with pytest.raises(dataclasses.FrozenInstanceError):
        actor.tenant = "globex"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("groups", "roles"),
    [
        ("recruiter,auditor", {Role.RECRUITER, Role.AUDITOR}),
        ("recruiter, auditor", {Role.RECRUITER, Role.AUDITOR}),
        ("[recruiter auditor]", {Role.RECRUITER, Role.AUDITOR}),
        ('["recruiter", "auditor"]', {Role.RECRUITER, Role.AUDITOR}),
        (["hr_admin", "system_admin"], {Role.HR_ADMIN, Role.SYSTEM_ADMIN}),
        ("compliance_officer", {Role.COMPLIANCE_OFFICER}),
        ("auditor,auditor", {Role.AUDITOR}),
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

    assert actor_from_event(me_event).roles == frozenset(roles)


@pytest.mark.parametrize(
    "groups",
    [
        # A group named "x,auditor" reaches us as "x,auditor" inside the flattened claim: it must grant nothing.
        "x,auditor",
        '["x,auditor"]',
        ["x,auditor"],
        "recruiter,superuser",
        "recruiter,Admins,AUDITOR",
        "[recruiter integration]",
    ],
)
def test_one_group_that_is_not_a_role_voids_every_role(me_event: dict[str, Any], groups: Any) -> None:
    claims_of(me_event)[ROLES_CLAIM] = groups

    actor = actor_from_event(me_event)

    assert actor.kind is ActorKind.USER
    assert actor.roles == frozenset()


def test_an_id_token_grants_no_scopes_even_if_it_carries_a_scope_claim(me_event: dict[str, Any]) -> None:
    claims_of(me_event)["scope"] = "ats/retention.write"

    assert actor_from_event(me_event).scopes == frozenset()


def test_username_is_optional(me_event: dict[str, Any]) -> None:
    del claims_of(me_event)["cognito:username"]

    assert actor_from_event(me_event).username is None


def test_tenant_comes_from_the_claims_not_the_request(me_event: dict[str, Any]) -> None:
    forged = copy.deepcopy(me_event)
    forged["httpMethod"] = "POST"
    forged["body"] = json.dumps({"tenant": "globex", "custom:tenant": "globex"})
    forged["headers"]["X-Tenant"] = "globex"
    forged["queryStringParameters"] = {"tenant": "globex"}
    forged["pathParameters"] = {"tenant": "globex"}

    assert actor_from_event(forged).tenant == "acme"


# ---- machines: client-credentials access tokens --------------------------------------------------------


def test_an_access_token_is_an_integration_actor(machine_event: dict[str, Any]) -> None:
    actor = actor_from_event(machine_event)

    assert actor == Actor(
        kind=ActorKind.INTEGRATION,
        tenant="acme",
        id=CLIENT_ID,
        scopes=frozenset({Scope.IDENTITY_READ, Scope.MESSAGES_WRITE}),
    )
    assert actor.roles == frozenset()
    assert actor.username is None
    assert actor.label == f"integration:{CLIENT_ID}"


@pytest.mark.parametrize(
    ("scope", "scopes"),
    [
        ("ats/retention.write", {Scope.RETENTION_WRITE}),
        ("ats/audit.read  ats/audit.read", {Scope.AUDIT_READ}),
        ("openid ats/messages.read other/messages.write", {Scope.MESSAGES_READ}),
        ("ats/not.a.scope retention.write", set()),
        ("", set()),
    ],
)
def test_only_our_resource_servers_known_scopes_count(
    machine_event: dict[str, Any], scope: str, scopes: set[Scope]
) -> None:
    claims_of(machine_event)["scope"] = scope

    assert actor_from_event(machine_event).scopes == frozenset(scopes)


def test_an_access_token_grants_no_roles_even_if_it_carries_groups(machine_event: dict[str, Any]) -> None:
    claims_of(machine_event)[ROLES_CLAIM] = "system_admin"

    actor = actor_from_event(machine_event)

    assert actor.kind is ActorKind.INTEGRATION
    assert actor.roles == frozenset()


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda c: c.pop("client_id"), id="no-client-id"),
        pytest.param(lambda c: c.update(sub="7c1e9a42-3d6b-4f0a-8e2c-9b5d1f607a38"), id="a-persons-access-token"),
    ],
)
def test_an_access_token_that_is_not_a_machines_is_refused(machine_event: dict[str, Any], mutate: Any) -> None:
    mutate(claims_of(machine_event))

    with pytest.raises(Unauthenticated, match="machine clients only"):
        actor_from_event(machine_event)


def test_full_scope_names_the_resource_server() -> None:
    assert [full_scope(s) for s in (Scope.MESSAGES_WRITE, Scope.RETENTION_WRITE)] == [
        "ats/messages.write",
        "ats/retention.write",
    ]


# ---- what is never an actor ----------------------------------------------------------------------------


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
        actor_from_event(me_event)


def test_the_health_sample_has_no_identity() -> None:
    with pytest.raises(Unauthenticated):
        actor_from_event(sample_event("apigw_get_health.json"))


@pytest.mark.parametrize("token_use", [None, "", "refresh", "ID", "Access", "id "])
def test_a_token_that_is_neither_an_id_nor_an_access_token_is_refused(
    me_event: dict[str, Any], token_use: str | None
) -> None:
    claims = claims_of(me_event)
    if token_use is None:
        del claims["token_use"]
    else:
        claims["token_use"] = token_use

    with pytest.raises(Unauthenticated, match="neither an ID token nor an access token"):
        actor_from_event(me_event)


@pytest.mark.parametrize("sample", ["apigw_get_me.json", "apigw_get_me_integration.json"])
@pytest.mark.parametrize("tenant", [None, ""])
def test_missing_tenant_claim_is_unauthenticated(sample: str, tenant: str | None) -> None:
    event = sample_event(sample)
    claims = claims_of(event)
    if tenant is None:
        del claims[TENANT_CLAIM]
    else:
        claims[TENANT_CLAIM] = tenant

    with pytest.raises(Unauthenticated, match="custom:tenant"):
        actor_from_event(event)


@pytest.mark.parametrize("sample", ["apigw_get_me.json", "apigw_get_me_integration.json"])
@pytest.mark.parametrize("tenant", ["_gateway", "_platform"])
def test_a_system_tenant_in_a_token_is_refused(sample: str, tenant: str) -> None:
    event = sample_event(sample)
    claims_of(event)[TENANT_CLAIM] = tenant

    with pytest.raises(Unauthenticated, match="system tenant"):
        actor_from_event(event)


@pytest.mark.parametrize("tenant", ["ACME", "acme#globex", "a", "_admin", "acme corp"])
def test_a_malformed_tenant_claim_is_unauthenticated(me_event: dict[str, Any], tenant: str) -> None:
    claims_of(me_event)[TENANT_CLAIM] = tenant

    with pytest.raises(Unauthenticated, match="not a valid tenant id"):
        actor_from_event(me_event)


# ---- actors without tokens -----------------------------------------------------------------------------


def test_system_and_webhook_actors_are_named_by_job_and_provider() -> None:
    job = Actor.system("retention-sweep", "acme")
    hook = Actor.webhook("standard", "globex")

    assert (job.kind, job.tenant, job.id, job.label) == (
        ActorKind.SYSTEM,
        "acme",
        "retention-sweep",
        "system:retention-sweep",
    )
    assert (hook.kind, hook.tenant, hook.label) == (ActorKind.WEBHOOK, "globex", "webhook:standard")
    assert job.roles == hook.roles == frozenset()
    assert job.scopes == hook.scopes == frozenset()


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Actor(ActorKind.SYSTEM, "acme", "job", roles=frozenset({Role.AUDITOR})), id="job-role"),
        pytest.param(lambda: Actor(ActorKind.USER, "acme", "u", scopes=frozenset({Scope.AUDIT_READ})), id="user-scope"),
        pytest.param(
            lambda: Actor(ActorKind.WEBHOOK, "acme", "p", scopes=frozenset({Scope.MESSAGES_WRITE})), id="hook-scope"
        ),
        pytest.param(
            lambda: Actor(ActorKind.INTEGRATION, "acme", "c", roles=frozenset({Role.HR_ADMIN})), id="m2m-role"
        ),
        pytest.param(lambda: Actor.system("", "acme"), id="no-id"),
    ],
)
def test_an_actor_with_grants_of_another_kind_cannot_be_built(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_an_actor_with_an_invalid_tenant_cannot_be_built() -> None:
    with pytest.raises(Exception, match="invalid tenant id"):
        Actor.system("job", "ACME")


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
    }
