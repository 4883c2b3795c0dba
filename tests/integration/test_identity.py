"""POST /v1/users/{username}/deprovision end to end in process: REST events in, a moto user pool and audit table
behind. A deprovisioned user can neither refresh nor sign in again; the caller's tenant bounds who can be
deprovisioned; every decision is audited."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.audit import entries_of_item
from tests.integration.conftest import AUDIT_TABLE, REGION, RestEventFactory, claims

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PASSWORD = "Correct-Horse-Battery-9"
PROVIDERS = {"AcmeEntra": {"tenant": "acme", "group_roles": {"ATS Admins": ["account_admin"]}}}


class Pool:
    """A moto user pool with the stack's custom attributes and a client that signs in by password (moto has no
    SRP), and helpers to sign a user in and to refresh their tokens."""

    def __init__(self) -> None:
        self.cognito: Any = boto3.client("cognito-idp", region_name=REGION)
        self.id = self.cognito.create_user_pool(
            PoolName="it-users",
            Schema=[
                {"Name": "tenant", "AttributeDataType": "String", "Mutable": False},
                {"Name": "idp_groups", "AttributeDataType": "String", "Mutable": True},
            ],
        )["UserPool"]["Id"]
        self.client_id = self.cognito.create_user_pool_client(
            UserPoolId=self.id,
            ClientName="it-people",
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            EnableTokenRevocation=True,
        )["UserPoolClient"]["ClientId"]

    def add_user(self, username: str, **attributes: str) -> str:
        """Create a confirmed user; return their sub."""
        self.cognito.admin_create_user(
            UserPoolId=self.id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
        )
        self.cognito.admin_set_user_password(UserPoolId=self.id, Username=username, Password=PASSWORD, Permanent=True)
        return self.attributes(username)["sub"]

    def attributes(self, username: str) -> dict[str, str]:
        user = self.cognito.admin_get_user(UserPoolId=self.id, Username=username)
        return {a["Name"]: a["Value"] for a in user["UserAttributes"]}

    def enabled(self, username: str) -> bool:
        return bool(self.cognito.admin_get_user(UserPoolId=self.id, Username=username)["Enabled"])

    def sign_in(self, username: str) -> dict[str, Any]:
        result: dict[str, Any] = self.cognito.admin_initiate_auth(
            UserPoolId=self.id,
            ClientId=self.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
        return result

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        result: dict[str, Any] = self.cognito.admin_initiate_auth(
            UserPoolId=self.id,
            ClientId=self.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh_token},
        )["AuthenticationResult"]
        return result


@pytest.fixture
def pool(tables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Pool:
    created = Pool()
    monkeypatch.setenv("USER_POOL_ID", created.id)
    monkeypatch.setenv("IDENTITY_PROVIDERS", json.dumps(PROVIDERS))
    return created


def _deprovision(
    rest_event: RestEventFactory,
    lambda_context: LambdaContext,
    username: str,
    caller: dict[str, str],
    request_id: str = "req-dep-1",
) -> tuple[int, dict[str, Any]]:
    from functions.platform.handlers import auditor_grants  # the access-administration function serves the route

    event = rest_event(f"/v1/users/{username}/deprovision", method="POST", claims=caller, request_id=request_id)
    response: dict[str, Any] = auditor_grants.lambda_handler(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


def _audited(ddb: DynamoDBClient) -> list[dict[str, Any]]:
    """Every entry the requests wrote to the audit table (the inbox items; the linker is not running here)."""
    entries: list[dict[str, Any]] = []
    for item in ddb.scan(TableName=AUDIT_TABLE)["Items"]:
        if "entries" in item:
            entries += entries_of_item(item)
    return sorted(entries, key=lambda e: (e["request_id"], e["action"]))


ADMIN = claims(sub="admin-sub", groups="account_admin")


def test_a_deprovisioned_user_can_neither_refresh_nor_sign_in_and_it_is_audited(
    pool: Pool, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    # Given a user of acme who holds a refresh token
    sub = pool.add_user("jane", **{"custom:tenant": "acme", "email": "jane@acme.example"})
    tokens = pool.sign_in("jane")
    assert pool.refresh(tokens["RefreshToken"])["AccessToken"]

    # When acme's account admin deprovisions them
    status, body = _deprovision(rest_event, lambda_context, "jane", ADMIN)

    # Then the user is disabled, their refresh token is revoked, and the API says so by sub
    assert status == 200
    assert body == {"user": sub, "disabled": True, "refresh_tokens_revoked": True, "was_enabled": True}
    assert pool.enabled("jane") is False
    with pytest.raises(pool.cognito.exceptions.NotAuthorizedException):
        pool.refresh(tokens["RefreshToken"])
    with pytest.raises(pool.cognito.exceptions.NotAuthorizedException):
        pool.sign_in("jane")
    # And both the decision and the action are in the trail, by identifiers only
    entries = _audited(ddb)
    assert [(e["tenant"], e["actor"], e["action"], e["resource"], e["outcome"]) for e in entries] == [
        ("acme", "user:admin-sub", "user:deprovision", f"user/{sub}", "allowed"),
        ("acme", "user:admin-sub", "users:deprovision", "users", "allowed"),
    ]
    assert not any("jane" in json.dumps(e) for e in entries)


def test_deprovisioning_again_is_harmless(
    pool: Pool, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    pool.add_user("jane", **{"custom:tenant": "acme"})
    _deprovision(rest_event, lambda_context, "jane", ADMIN)

    status, body = _deprovision(rest_event, lambda_context, "jane", ADMIN, request_id="req-dep-2")

    assert (status, body["was_enabled"]) == (200, False)


def test_a_federated_user_of_the_tenants_idp_is_deprovisioned(
    pool: Pool, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    # A federated user has no pool tenant: the IdP they came through is bound to acme.
    identities = json.dumps([{"userId": "jdoe", "providerName": "AcmeEntra", "providerType": "SAML"}])
    pool.add_user("AcmeEntra_jdoe", identities=identities, **{"custom:idp_groups": "[ATS Admins]"})

    status, _ = _deprovision(rest_event, lambda_context, "AcmeEntra_jdoe", ADMIN)

    assert status == 200
    assert pool.enabled("AcmeEntra_jdoe") is False


@pytest.mark.parametrize("username", ["bob", "nobody"], ids=["other-tenant", "missing"])
def test_another_tenants_user_is_a_404_like_a_missing_one_and_stays_enabled(
    username: str, pool: Pool, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    pool.add_user("bob", **{"custom:tenant": "globex"})
    tokens = pool.sign_in("bob")

    status, body = _deprovision(rest_event, lambda_context, username, ADMIN)

    assert (status, body["error"]["code"], body["error"]["message"]) == (404, "not_found", "no user")
    assert pool.enabled("bob") is True
    assert pool.refresh(tokens["RefreshToken"])["AccessToken"]
    assert [e["action"] for e in _audited(ddb)] == ["users:deprovision"]


@pytest.mark.parametrize("groups", ["recruiter", "hr_admin,compliance_officer", "auditor", "hiring_manager"])
def test_other_roles_get_a_403_that_is_audited_and_nobody_is_touched(
    groups: str, pool: Pool, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    pool.add_user("jane", **{"custom:tenant": "acme"})

    status, body = _deprovision(rest_event, lambda_context, "jane", claims(sub="someone", groups=groups))

    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert pool.enabled("jane") is True
    assert [(e["action"], e["outcome"], e.get("reason")) for e in _audited(ddb)] == [
        ("users:deprovision", "denied", "missing role")
    ]


@pytest.mark.parametrize("groups", ["company_admin", "system_admin"])
def test_a_company_admin_or_a_system_admin_deprovisions_within_their_own_tenant(
    groups: str, pool: Pool, ddb: DynamoDBClient, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    pool.add_user("jane", **{"custom:tenant": "acme"})
    pool.add_user("bob", **{"custom:tenant": "globex"})
    caller = claims(sub="other-admin-sub", groups=groups)

    assert _deprovision(rest_event, lambda_context, "jane", caller)[0] == 200
    assert _deprovision(rest_event, lambda_context, "bob", caller, request_id="req-dep-2")[0] == 404
    assert (pool.enabled("jane"), pool.enabled("bob")) == (False, True)
    assert [(e["request_id"], e["action"], e["outcome"]) for e in _audited(ddb)] == [
        ("req-dep-1", "user:deprovision", "allowed"),
        ("req-dep-1", "users:deprovision", "allowed"),
        ("req-dep-2", "users:deprovision", "allowed"),
    ]


def test_without_a_token_the_route_is_a_401(
    pool: Pool, rest_event: RestEventFactory, lambda_context: LambdaContext
) -> None:
    from functions.platform.handlers import auditor_grants

    response = auditor_grants.lambda_handler(rest_event("/v1/users/jane/deprovision", method="POST"), lambda_context)

    assert response["statusCode"] == 401
