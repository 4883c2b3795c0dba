"""Identity (issue 13, section 6): roles of federated people from their IdP's groups, and the deprovisioning use
case, against in-memory fakes. The route on moto is in tests/integration/test_identity.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from functions.platform.dal.deprovision import DirectoryUser
from functions.platform.handlers import pre_token
from functions.platform.logic.deprovision import deprovision_user, tenant_of_user
from functions.platform.logic.federation import (
    federated_identity,
    idp_groups,
    parse_providers,
    roles_for_groups,
)
from shared.audit import AuditEntry, Outcome
from shared.auth import Actor, Role
from shared.errors import ConfigurationError, DependencyFailure, Forbidden, NotFound, Unauthenticated
from shared.observability import metrics
from tests.conftest import make_lambda_context, sample_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PROVIDERS_JSON = json.dumps(
    {
        "AcmeEntra": {
            "tenant": "acme",
            "group_roles": {
                "4f0c7a52-0a51-4f6e-9d5b-1c7f0c1d2e3f": ["recruiter"],
                "ATS Admins": ["account_admin", "hr_admin"],
            },
        },
        "GlobexOkta": {"tenant": "globex", "group_roles": {"ats-auditors": ["auditor"]}},
    }
)
PROVIDERS = parse_providers(PROVIDERS_JSON)


def _identities(provider: str) -> str:
    return json.dumps(
        [{"userId": "jane@acme.example", "providerName": provider, "providerType": "SAML", "primary": "true"}]
    )


def _federated_event(
    provider: str = "AcmeEntra", groups: str | None = None, trigger: str = "TokenGeneration_HostedAuth"
) -> dict[str, Any]:
    event = sample_event("cognito_pre_token_client_credentials.json")
    event["triggerSource"] = trigger
    event["callerContext"]["clientId"] = "federated-client"
    attributes: dict[str, Any] = {
        "sub": "0d6f2c1e-7f0b-4b9e-9a55-2f1c3b4d5e6f",
        "identities": _identities(provider),
        "cognito:user_status": "EXTERNAL_PROVIDER",
        "email": "jane@acme.example",
    }
    if groups is not None:
        attributes["custom:idp_groups"] = groups
    event["request"]["userAttributes"] = attributes
    # Cognito adds every user of an IdP to a group named after the pool and the provider.
    event["request"]["groupConfiguration"]["groupsToOverride"] = [f"eu-west-1_AbCdEfGhI_{provider}"]
    return event


@pytest.fixture(autouse=True)
def _function_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "POWERTOOLS_SERVICE_NAME": "ats-compliance",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "STAGE": "test",
        "PLATFORM_TABLE_NAME": "platform-table",
        "IDENTITY_PROVIDERS": PROVIDERS_JSON,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(metrics, "namespace", "AtsCompliance")
    yield


# ---- the IdP's groups claim ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "groups"),
    [
        (None, []),
        ("", []),
        ('["ATS Admins","ats-auditors"]', ["ATS Admins", "ats-auditors"]),  # OIDC: a JSON list
        ("[ATS Admins, 4f0c7a52-0a51-4f6e-9d5b-1c7f0c1d2e3f]", ["ATS Admins", "4f0c7a52-0a51-4f6e-9d5b-1c7f0c1d2e3f"]),
        ("ATS Admins", ["ATS Admins"]),  # a single-valued SAML attribute
        ("a, ,b,", ["a", "b"]),
        (["x", " y "], ["x", "y"]),
    ],
)
def test_idp_groups_read_every_form_cognito_writes(raw: Any, groups: list[str]) -> None:
    assert idp_groups(raw) == groups


def test_mapped_groups_grant_their_roles_and_unmapped_ones_nothing() -> None:
    mapping = PROVIDERS["AcmeEntra"].group_roles

    roles = roles_for_groups(["ATS Admins", "Everyone", "ats-auditors", "ats admins"], mapping)

    # "ats-auditors" is another provider's group and "ats admins" differs in case: neither grants anything here.
    assert roles == {Role.ACCOUNT_ADMIN, Role.HR_ADMIN}
    assert roles_for_groups(["Everyone"], mapping) == frozenset()


def test_a_federated_user_gets_the_providers_tenant_and_the_mapped_roles() -> None:
    attributes = _federated_event(groups="[ATS Admins, 4f0c7a52-0a51-4f6e-9d5b-1c7f0c1d2e3f, Everyone]")["request"][
        "userAttributes"
    ]

    identity = federated_identity(PROVIDERS, attributes)

    assert identity is not None
    assert (identity.provider, identity.tenant) == ("AcmeEntra", "acme")
    assert identity.roles == (Role.ACCOUNT_ADMIN, Role.HR_ADMIN, Role.RECRUITER)
    assert identity.unmapped_groups == 1


def test_a_pool_user_is_not_federated() -> None:
    assert federated_identity(PROVIDERS, {"sub": "u-1", "custom:tenant": "acme"}) is None


@pytest.mark.parametrize(
    "attributes",
    [
        {"identities": _identities("RemovedIdp")},  # the provider is no longer configured
        {"identities": "not json"},
        {"identities": _identities("AcmeEntra"), "custom:tenant": "globex"},  # linked to a user of another tenant
        {
            "identities": json.dumps(
                [{"providerName": "AcmeEntra"}, {"providerName": "GlobexOkta"}]
            )  # two configurations at once
        },
    ],
    ids=["unconfigured", "unreadable", "other-tenant", "two-providers"],
)
def test_no_identity_when_the_provider_cannot_vouch_for_the_user(attributes: dict[str, str]) -> None:
    with pytest.raises(Unauthenticated):
        federated_identity(PROVIDERS, {"sub": "u-1", **attributes})


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "[]",
        '{"X": {"tenant": "_platform", "group_roles": {}}}',
        '{"X": {"tenant": "acme", "group_roles": {"g": ["root"]}}}',
    ],
)
def test_a_broken_provider_mapping_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_providers(raw)


# ---- the pre-token-generation trigger -----------------------------------------------------------------------


def test_pre_token_replaces_a_federated_users_groups_by_the_mapped_roles() -> None:
    event = _federated_event(groups='["ATS Admins","Everyone"]')

    result = pre_token.lambda_handler(event, make_lambda_context("PreTokenGeneration"))

    assert result["response"] == {
        "claimsAndScopeOverrideDetails": {
            "idTokenGeneration": {
                "claimsToAddOrOverride": {"custom:tenant": "acme"},
                "claimsToSuppress": ["custom:idp_groups"],
            },
            "accessTokenGeneration": {"claimsToAddOrOverride": {"custom:tenant": "acme"}},
            "groupOverrideDetails": {"groupsToOverride": ["account_admin", "hr_admin"]},
        }
    }


@pytest.mark.parametrize("trigger", ["TokenGeneration_HostedAuth", "TokenGeneration_RefreshTokens"])
def test_pre_token_maps_again_on_every_token_and_unmapped_groups_grant_nothing(trigger: str) -> None:
    event = _federated_event(provider="GlobexOkta", groups="[Everyone, ATS Admins]", trigger=trigger)

    result = pre_token.lambda_handler(event, make_lambda_context("PreTokenGeneration"))

    details = result["response"]["claimsAndScopeOverrideDetails"]
    # "ATS Admins" is mapped for AcmeEntra only: GlobexOkta's people get no role from it, and lose the IdP group.
    assert details["groupOverrideDetails"] == {"groupsToOverride": []}
    assert details["idTokenGeneration"]["claimsToAddOrOverride"] == {"custom:tenant": "globex"}


def test_pre_token_issues_no_token_for_an_unconfigured_provider() -> None:
    with pytest.raises(Unauthenticated):
        pre_token.lambda_handler(_federated_event(provider="RemovedIdp"), make_lambda_context("PreTokenGeneration"))


def test_pre_token_without_the_provider_setting_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import _load

    monkeypatch.delenv("IDENTITY_PROVIDERS")
    _load.cache_clear()
    try:
        with pytest.raises(ConfigurationError):
            pre_token.lambda_handler(_federated_event(groups="x"), make_lambda_context("PreTokenGeneration"))
    finally:
        _load.cache_clear()


def test_pre_token_leaves_pool_users_alone_without_reading_the_provider_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IDENTITY_PROVIDERS")
    event = _federated_event()
    event["request"]["userAttributes"] = {"sub": "u-1", "custom:tenant": "acme", "custom:idp_groups": "ATS Admins"}
    expected = json.loads(json.dumps(event))

    assert pre_token.lambda_handler(event, make_lambda_context("PreTokenGeneration")) == expected


# ---- deprovisioning -----------------------------------------------------------------------------------------


class _Audit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def append(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


class _Directory:
    """The UserDirectory port in memory: users by username; `calls` in order."""

    def __init__(self, users: dict[str, DirectoryUser], fail_on: str | None = None) -> None:
        self.users = users
        self.calls: list[tuple[str, str]] = []
        self._fail_on = fail_on

    def get(self, username: str) -> DirectoryUser | None:
        return self.users.get(username)

    def disable(self, username: str) -> None:
        self._record("disable", username)
        self.users[username] = DirectoryUser(username, False, self.users[username].attributes)

    def sign_out_everywhere(self, username: str) -> None:
        self._record("sign_out", username)

    def _record(self, call: str, username: str) -> None:
        self.calls.append((call, username))
        if call == self._fail_on:
            raise DependencyFailure("down")


ADMIN = Actor.user("acme", "admin-sub", frozenset({Role.ACCOUNT_ADMIN}))


def _users() -> dict[str, DirectoryUser]:
    return {
        "jane": DirectoryUser("jane", True, {"sub": "sub-jane", "custom:tenant": "acme"}),
        "AcmeEntra_jdoe": DirectoryUser(
            "AcmeEntra_jdoe", True, {"sub": "sub-fed", "identities": _identities("AcmeEntra")}
        ),
        "bob": DirectoryUser("bob", True, {"sub": "sub-bob", "custom:tenant": "globex"}),
        "GlobexOkta_x": DirectoryUser("GlobexOkta_x", True, {"sub": "sub-gx", "identities": _identities("GlobexOkta")}),
        "orphan": DirectoryUser("orphan", True, {"sub": "sub-orphan"}),
    }


def _deprovision(actor: Actor, username: str, directory: _Directory, audit: _Audit):
    return deprovision_user(
        actor,
        username,
        directory=directory,
        providers=PROVIDERS,
        audit=audit,
        request_id="req-1",
        source_ip="192.0.2.1",
    )


@pytest.mark.parametrize(("username", "sub"), [("jane", "sub-jane"), ("AcmeEntra_jdoe", "sub-fed")])
def test_deprovisioning_disables_first_then_revokes_and_audits_by_sub(username: str, sub: str) -> None:
    directory, audit = _Directory(_users()), _Audit()

    done = _deprovision(ADMIN, username, directory, audit)

    assert (done.user, done.was_enabled) == (sub, True)
    assert directory.calls == [("disable", username), ("sign_out", username)]
    assert [(e.action, e.resource, e.outcome, e.actor) for e in audit.entries] == [
        ("users:deprovision", "users", Outcome.ALLOWED, "user:admin-sub"),
        ("user:deprovision", f"user/{sub}", Outcome.ALLOWED, "user:admin-sub"),
    ]


def test_deprovisioning_twice_reports_the_user_was_already_disabled() -> None:
    directory, audit = _Directory(_users()), _Audit()
    _deprovision(ADMIN, "jane", directory, audit)

    again = _deprovision(ADMIN, "jane", directory, audit)

    assert again.was_enabled is False
    assert directory.calls[-2:] == [("disable", "jane"), ("sign_out", "jane")]


@pytest.mark.parametrize("username", ["bob", "GlobexOkta_x", "orphan", "nobody"])
def test_a_user_of_another_tenant_or_none_is_not_found_and_untouched(username: str) -> None:
    directory, audit = _Directory(_users()), _Audit()

    with pytest.raises(NotFound):
        _deprovision(ADMIN, username, directory, audit)

    assert directory.calls == []
    assert [e.action for e in audit.entries] == ["users:deprovision"]


@pytest.mark.parametrize("role", [Role.COMPANY_ADMIN, Role.ACCOUNT_ADMIN, Role.SYSTEM_ADMIN])
def test_the_tenants_admins_and_the_operators_may_deprovision(role: Role) -> None:
    directory, audit = _Directory(_users()), _Audit()

    done = _deprovision(Actor.user("acme", "an-admin", frozenset({role})), "jane", directory, audit)

    assert done.user == "sub-jane"
    assert [(e.action, e.outcome) for e in audit.entries] == [
        ("users:deprovision", Outcome.ALLOWED),
        ("user:deprovision", Outcome.ALLOWED),
    ]


@pytest.mark.parametrize(
    "role", [Role.RECRUITER, Role.HIRING_MANAGER, Role.HR_ADMIN, Role.COMPLIANCE_OFFICER, Role.AUDITOR]
)
def test_other_roles_are_refused_and_the_refusal_is_audited(role: Role) -> None:
    directory, audit = _Directory(_users()), _Audit()

    with pytest.raises(Forbidden):
        _deprovision(Actor.user("acme", "someone", frozenset({role})), "jane", directory, audit)

    assert directory.calls == []
    assert [(e.action, e.outcome, e.reason) for e in audit.entries] == [
        ("users:deprovision", Outcome.DENIED, "missing role")
    ]


def test_a_directory_failure_is_audited_as_failed() -> None:
    directory, audit = _Directory(_users(), fail_on="sign_out"), _Audit()

    with pytest.raises(DependencyFailure):
        _deprovision(ADMIN, "jane", directory, audit)

    assert [(e.action, e.outcome) for e in audit.entries] == [
        ("users:deprovision", Outcome.ALLOWED),
        ("user:deprovision", Outcome.FAILED),
    ]


@pytest.mark.parametrize("username", ["", "has space", "x" * 129, "tab\there"])
def test_a_malformed_username_is_a_bad_request(username: str) -> None:
    from shared.errors import BadRequest

    with pytest.raises(BadRequest):
        _deprovision(ADMIN, username, _Directory(_users()), _Audit())


def test_the_tenant_of_a_user() -> None:
    assert tenant_of_user({"custom:tenant": "acme"}, PROVIDERS) == "acme"
    assert tenant_of_user({"identities": _identities("GlobexOkta")}, PROVIDERS) == "globex"
    assert tenant_of_user({"identities": _identities("RemovedIdp")}, PROVIDERS) is None
    assert tenant_of_user({"identities": "not json"}, PROVIDERS) is None
    assert tenant_of_user({}, PROVIDERS) is None


# ---- the Cognito adapter's error mapping ----------------------------------------------------------------------


def _stubbed_directory() -> tuple[Any, Any]:
    import botocore.session
    from botocore.stub import Stubber

    from functions.platform.dal.deprovision import CognitoUserDirectory

    client = botocore.session.get_session().create_client(
        "cognito-idp", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return CognitoUserDirectory("eu-west-1_AbCdEfGhI", client=client), Stubber(client)


def test_the_adapter_maps_cognitos_answers() -> None:
    directory, stub = _stubbed_directory()
    stub.add_response(
        "admin_get_user",
        {"Username": "jane", "Enabled": False, "UserAttributes": [{"Name": "sub", "Value": "s-1"}]},
        {"UserPoolId": "eu-west-1_AbCdEfGhI", "Username": "jane"},
    )
    stub.add_client_error("admin_get_user", service_error_code="UserNotFoundException")
    stub.add_client_error("admin_get_user", service_error_code="TooManyRequestsException")
    # A disabled user's sign-out refused as not authorized: disabling already revoked their tokens.
    stub.add_client_error("admin_user_global_sign_out", service_error_code="NotAuthorizedException")
    stub.add_client_error("admin_disable_user", service_error_code="AccessDeniedException")

    with stub:
        assert directory.get("jane") == DirectoryUser("jane", False, {"sub": "s-1"})
        assert directory.get("nobody") is None
        with pytest.raises(DependencyFailure):
            directory.get("jane")
        directory.sign_out_everywhere("jane")
        with pytest.raises(DependencyFailure):
            directory.disable("jane")
    stub.assert_no_pending_responses()
