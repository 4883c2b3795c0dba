"""Identity (issue 13, section 6): the user pool federates with the enterprise IdPs that the context configures,
and with none by default; a bad configuration fails the synth with a message naming the provider and the field;
people's tokens are short-lived and revocable.

The federated app is synthesised once per module, with a SAML (Entra ID) and an OIDC (Okta) provider passed as
the command line passes them (`-c identity_provider='<JSON>'`), cdk-nag attached as in `infra.app.build_app`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import constants
from infra.constructs.stage import IDENTITY_PROVIDERS_ENV, parse_identity_providers
from tests.infra.conftest import ROOT, Synth, as_list, ref_target, refs_in

ENTRA = {
    "type": "saml",
    "name": "AcmeEntra",
    "tenant": "acme",
    "metadata_url": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/federationmetadata/"
    "2007-06/federationmetadata.xml?appid=00000000-0000-0000-0000-000000000002",
    "groups_claim": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    "group_roles": {
        "4f0c7a52-0a51-4f6e-9d5b-1c7f0c1d2e3f": "recruiter",
        "9b1d2e3f-0a51-4f6e-9d5b-1c7f0c1d2e3f": ["account_admin", "hr_admin"],
    },
    "callback_urls": ["https://ats.acme.example/auth/callback"],
    "logout_urls": ["https://ats.acme.example/"],
}
OKTA = {
    "type": "oidc",
    "name": "GlobexOkta",
    "tenant": "globex",
    "issuer": "https://globex.okta.com",
    "client_id": "0oa1b2c3d4e5f6g7h8i9",
    "client_secret_name": "ats/idp/globex-okta",
    "groups_claim": "groups",
    "group_roles": {"ATS Auditors": ["auditor"], "ATS Operators": ["system_admin"]},
    "callback_urls": ["https://ats.globex.example/callback", "http://localhost:3000/callback"],
}
GROUPS_ATTRIBUTE = f"custom:{constants.IDP_GROUPS_ATTRIBUTE}"


def _synth_with(context: dict[str, Any], outdir: Path) -> tuple[Synth, list[str]]:
    """The real stack for dev with extra context, checked by cdk-nag; also the warnings it was annotated with."""
    from aws_cdk import App, Stack, Validations
    from cdk_nag import AwsSolutionsChecks

    from infra.app import stack_name
    from infra.constructs.stage import StageConfig
    from infra.stack import AtsComplianceStack
    from tests.infra.conftest import _construct_paths

    base = json.loads((ROOT / "cdk.json").read_text())["context"]
    app = App(outdir=str(outdir), context={**base, "stage": "dev", **context})
    stage = StageConfig("dev")
    stack = AtsComplianceStack(
        app, stack_name("AtsCompliance", stage), stage=stage, architecture="arm64", service_version="0.0.0-test"
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    error: str | None = None
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        error = str(exc)
    template = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    warnings = [
        str(entry.data)
        for node in stack.node.find_all()
        for entry in node.node.metadata
        if entry.type == "aws:cdk:warning"
    ]
    assert Stack.is_stack(stack)
    synth = Synth(
        outdir=outdir,
        stage="dev",
        stack_name=stack.stack_name,
        template=template,
        assets={"files": {}},
        paths=_construct_paths(stack),
        validation_error=error,
    )
    return synth, warnings


@pytest.fixture(scope="module")
def federated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Synth, list[str]]]:
    context = {constants.IDENTITY_PROVIDER_OVERRIDE_CONTEXT: json.dumps([ENTRA, OKTA])}
    yield _synth_with(context, tmp_path_factory.mktemp("cdk.out.idp"))


def _providers(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        synth.props(logical_id)["ProviderName"]: {"id": logical_id, **synth.props(logical_id)}
        for logical_id in synth.of_type("AWS::Cognito::UserPoolIdentityProvider")
    }


def _clients(synth: Synth) -> dict[str, dict[str, Any]]:
    return synth.of_type("AWS::Cognito::UserPoolClient")


def _pool(synth: Synth) -> dict[str, Any]:
    return next(iter(synth.of_type("AWS::Cognito::UserPool").values()))["Properties"]


# ---- default: nothing extra ---------------------------------------------------------------------------------


def test_without_an_identity_provider_nothing_is_federated(synth: Synth) -> None:
    assert synth.of_type("AWS::Cognito::UserPoolIdentityProvider") == {}
    clients = _clients(synth)
    assert len(clients) == 1, "only the SRP client of people"
    for client in clients.values():
        props = client["Properties"]
        assert not props.get("AllowedOAuthFlows"), "no hosted-UI flow without an IdP"
        assert set(props.get("SupportedIdentityProviders", ["COGNITO"])) <= {"COGNITO"}


def test_the_groups_attribute_is_declared_mutable_whether_or_not_an_idp_is_configured(synth: Synth) -> None:
    schema = {a["Name"]: a for a in _pool(synth)["Schema"]}
    groups = schema[constants.IDP_GROUPS_ATTRIBUTE]
    assert (groups["AttributeDataType"], groups["Mutable"]) == ("String", True)
    assert schema["tenant"]["Mutable"] is False


def test_no_client_of_people_may_write_the_groups_attribute_by_default(synth: Synth) -> None:
    for logical_id, client in _clients(synth).items():
        # Without WriteAttributes a client writes standard attributes only (never a custom one).
        assert GROUPS_ATTRIBUTE not in client["Properties"].get("WriteAttributes", []), logical_id


# ---- deprovisioning -----------------------------------------------------------------------------------------

DEPROVISION = ("POST", "/v1/users/{username}/deprovision")
COGNITO_ACTIONS = {"cognito-idp:AdminGetUser", "cognito-idp:AdminDisableUser", "cognito-idp:AdminUserGlobalSignOut"}


def _path_of(synth: Synth, resource_id: Any) -> str:
    parts: list[str] = []
    current = ref_target(resource_id)
    while current and synth.resources.get(current, {}).get("Type") == "AWS::ApiGateway::Resource":
        parts.append(synth.props(current)["PathPart"])
        current = ref_target(synth.props(current)["ParentId"])
    return "/" + "/".join(reversed(parts))


def _function_behind(synth: Synth, method: str, path: str) -> str:
    """The logical id of the function a route's method integrates."""
    [found] = [
        fn
        for m in synth.of_type("AWS::ApiGateway::Method").values()
        if (m["Properties"]["HttpMethod"], _path_of(synth, m["Properties"]["ResourceId"])) == (method, path)
        for fn in refs_in(m["Properties"]["Integration"]["Uri"])
        if synth.resources.get(fn, {}).get("Type") == "AWS::Lambda::Function"
    ]
    return found


def _statements_of(synth: Synth, function_id: str) -> list[dict[str, Any]]:
    role = ref_target(synth.props(function_id)["Role"])
    return [
        statement
        for policy in synth.of_type("AWS::IAM::Policy").values()
        if role in refs_in(policy["Properties"]["Roles"])
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    ]


def test_the_deprovision_route_is_served_by_the_access_administration_function(synth: Synth) -> None:
    fn = _function_behind(synth, *DEPROVISION)
    assert fn == _function_behind(synth, "POST", "/v1/auditor-grants"), "the grants' function, none of its own"
    assert synth.props(fn)["Handler"] == "functions.platform.handlers.auditor_grants.lambda_handler"
    assert _function_behind(synth, "GET", "/v1/me") != fn, "GET /v1/me runs without the directory's rights"
    method = next(
        m["Properties"]
        for m in synth.of_type("AWS::ApiGateway::Method").values()
        if (m["Properties"]["HttpMethod"], _path_of(synth, m["Properties"]["ResourceId"])) == DEPROVISION
    )
    assert method["AuthorizationType"] == "COGNITO_USER_POOLS"
    assert not method.get("AuthorizationScopes"), "people's ID tokens reach `authorize`, which admits admins only"


def test_the_deprovisioning_function_may_disable_and_sign_out_users_of_its_pool_only(synth: Synth) -> None:
    fn = _function_behind(synth, *DEPROVISION)
    [pool] = synth.of_type("AWS::Cognito::UserPool")
    cognito = [s for s in _statements_of(synth, fn) if any("cognito" in str(a) for a in as_list(s["Action"]))]
    assert len(cognito) == 1, cognito
    [statement] = cognito
    assert statement["Effect"] == "Allow"
    assert set(as_list(statement["Action"])) == COGNITO_ACTIONS
    assert [ref_target(r) for r in as_list(statement["Resource"])] == [pool], "the pool's ARN, no wildcard"
    assert "Condition" not in statement
    # No other function may touch the directory
    others = [
        logical_id
        for logical_id in synth.our_functions()
        if logical_id != fn and any("cognito-idp:" in str(s["Action"]) for s in _statements_of(synth, logical_id))
    ]
    assert others == []


def test_the_identity_function_knows_the_pool_and_the_providers(synth: Synth) -> None:
    variables = synth.props(_function_behind(synth, *DEPROVISION))["Environment"]["Variables"]
    [pool] = synth.of_type("AWS::Cognito::UserPool")
    assert ref_target(variables["USER_POOL_ID"]) == pool
    assert variables[IDENTITY_PROVIDERS_ENV] == "{}", "stated, not defaulted, when no provider is configured"
    assert "AUDIT_TABLE_NAME" in variables


def test_the_pre_token_trigger_is_told_there_are_no_providers_by_default(synth: Synth) -> None:
    trigger = ref_target(_pool(synth)["LambdaConfig"]["PreTokenGenerationConfig"]["LambdaArn"])
    assert synth.props(str(trigger))["Environment"]["Variables"][IDENTITY_PROVIDERS_ENV] == "{}"


# ---- federated --------------------------------------------------------------------------------------------


def test_a_saml_provider_maps_the_groups_claim_and_email(federated: tuple[Synth, list[str]]) -> None:
    synth, _ = federated
    entra = _providers(synth)["AcmeEntra"]
    assert entra["ProviderType"] == "SAML"
    assert entra["ProviderDetails"]["MetadataURL"] == ENTRA["metadata_url"]
    assert entra["AttributeMapping"] == {
        GROUPS_ATTRIBUTE: ENTRA["groups_claim"],
        "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    }


def test_an_oidc_provider_reads_its_secret_from_secrets_manager(federated: tuple[Synth, list[str]]) -> None:
    synth, _ = federated
    okta = _providers(synth)["GlobexOkta"]
    details = okta["ProviderDetails"]
    assert okta["ProviderType"] == "OIDC"
    assert (details["client_id"], details["oidc_issuer"]) == (OKTA["client_id"], OKTA["issuer"])
    assert details["authorize_scopes"] == "openid email profile"
    secret = json.dumps(details["client_secret"])
    assert "{{resolve:secretsmanager:ats/idp/globex-okta" in secret, "a dynamic reference, never the secret"
    assert okta["AttributeMapping"] == {GROUPS_ATTRIBUTE: "groups", "email": "email"}


@pytest.mark.parametrize("provider", [ENTRA, OKTA], ids=["saml", "oidc"])
def test_each_provider_has_a_code_flow_client_that_cannot_write_its_own_groups(
    federated: tuple[Synth, list[str]], provider: dict[str, Any]
) -> None:
    synth, _ = federated
    idp = _providers(synth)[provider["name"]]
    (logical_id, client), *others = [
        (k, c)
        for k, c in _clients(synth).items()
        if c["Properties"].get("SupportedIdentityProviders")
        and provider["name"] in c["Properties"]["SupportedIdentityProviders"]
    ]
    assert not others
    props = client["Properties"]
    assert props["SupportedIdentityProviders"] == [provider["name"]], "the IdP only, no pool password sign-in"
    assert props["AllowedOAuthFlows"] == ["code"]
    assert props["AllowedOAuthFlowsUserPoolClient"] is True
    assert props["CallbackURLs"] == provider["callback_urls"]
    assert props.get("LogoutURLs", []) == provider.get("logout_urls", [])
    # Without aws.cognito.signin.user.admin the user's access token cannot call UpdateUserAttributes.
    assert sorted(props["AllowedOAuthScopes"]) == ["email", "openid", "profile"]
    # Cognito writes mapped attributes through the client, so it may write exactly those.
    assert sorted(props["WriteAttributes"]) == sorted([GROUPS_ATTRIBUTE, "email"])
    assert props["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]
    assert "GenerateSecret" not in props or props["GenerateSecret"] is False
    assert idp["id"] in as_list(synth.resources[logical_id].get("DependsOn", [])), "the provider exists first"


def test_every_client_of_people_issues_short_lived_revocable_tokens(federated: tuple[Synth, list[str]]) -> None:
    synth, _ = federated
    clients = _clients(synth)
    assert len(clients) == 3
    for logical_id, client in clients.items():
        props = client["Properties"]
        units = props["TokenValidityUnits"]
        assert (props["IdTokenValidity"], units["IdToken"]) == (15, "minutes"), logical_id
        assert (props["AccessTokenValidity"], units["AccessToken"]) == (15, "minutes"), logical_id
        assert (props["RefreshTokenValidity"], units["RefreshToken"]) == (12 * 60, "minutes"), logical_id
        assert props["EnableTokenRevocation"] is True, logical_id


def test_the_pre_token_trigger_gets_the_group_mapping(federated: tuple[Synth, list[str]]) -> None:
    synth, _ = federated
    trigger = ref_target(_pool(synth)["LambdaConfig"]["PreTokenGenerationConfig"]["LambdaArn"])
    variables = synth.props(str(trigger))["Environment"]["Variables"]
    assert IDENTITY_PROVIDERS_ENV in variables, "wire api.identity_environment into the trigger (PlatformConstruct)"
    assert json.loads(variables[IDENTITY_PROVIDERS_ENV]) == {
        "AcmeEntra": {
            "tenant": "acme",
            "group_roles": {
                "4f0c7a52-0a51-4f6e-9d5b-1c7f0c1d2e3f": ["recruiter"],
                "9b1d2e3f-0a51-4f6e-9d5b-1c7f0c1d2e3f": ["account_admin", "hr_admin"],
            },
        },
        "GlobexOkta": {
            "tenant": "globex",
            "group_roles": {"ATS Auditors": ["auditor"], "ATS Operators": ["system_admin"]},
        },
    }


def test_the_deprovision_route_gets_the_same_providers_as_the_trigger(federated: tuple[Synth, list[str]]) -> None:
    synth, _ = federated
    trigger = ref_target(_pool(synth)["LambdaConfig"]["PreTokenGenerationConfig"]["LambdaArn"])
    identity = synth.props(_function_behind(synth, *DEPROVISION))["Environment"]["Variables"]
    trigger_variables = synth.props(str(trigger))["Environment"]["Variables"]
    assert identity[IDENTITY_PROVIDERS_ENV] == trigger_variables[IDENTITY_PROVIDERS_ENV]
    assert set(json.loads(identity[IDENTITY_PROVIDERS_ENV])) == {"AcmeEntra", "GlobexOkta"}


def test_a_system_admin_mapping_is_allowed_with_a_warning_and_cdk_nag_passes(
    federated: tuple[Synth, list[str]],
) -> None:
    synth, warnings = federated
    assert synth.validation_error is None, synth.validation_error
    assert any("GlobexOkta maps a group to system_admin" in w for w in warnings), warnings
    assert not any("AcmeEntra maps a group" in w for w in warnings), warnings


# ---- bad configuration -------------------------------------------------------------------------------------


def _without(entry: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in keys}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**ENTRA, "type": "ldap"}, "type: Input should be 'saml' or 'oidc'"),
        (_without(ENTRA, "metadata_url"), "a saml provider needs metadata_url"),
        ({**ENTRA, "issuer": "https://x.example"}, "issuer do not apply to a saml provider"),
        (_without(OKTA, "client_secret_name"), "an oidc provider needs client_secret_name"),
        ({**OKTA, "client_secret": "hunter2"}, "client_secret: Extra inputs are not permitted"),
        ({**ENTRA, "group_roles": {"g": ["root"]}}, "group_roles.g.0: Input should be 'recruiter'"),
        ({**ENTRA, "group_roles": {}}, "group_roles: Dictionary should have at least 1 item"),
        ({**ENTRA, "group_roles": {"a,b": "recruiter"}}, "a group name may not contain a comma"),
        ({**ENTRA, "group_roles": {"g": []}}, "group 'g' maps to no role"),
        ({**ENTRA, "tenant": "_platform"}, "tenant '_platform' is a system tenant"),
        ({**ENTRA, "tenant": "Acme Corp"}, "is not a valid tenant id"),
        ({**ENTRA, "name": "Acme_Entra"}, "name: String should match pattern"),
        ({**ENTRA, "name": "Google"}, "name 'Google' is reserved by Cognito"),
        ({**ENTRA, "callback_urls": ["http://ats.acme.example/cb"]}, "must be an https URL"),
        ({**ENTRA, "callback_urls": []}, "callback_urls: Tuple should have at least 1 item"),
        ({**OKTA, "scopes": ["email"]}, "scopes must include openid"),
        (_without(ENTRA, "groups_claim"), "groups_claim: Field required"),
    ],
)
def test_a_bad_provider_is_refused_naming_the_provider_and_the_field(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_identity_providers("dev", override=json.dumps(entry))
    text = str(refused.value)
    assert message in text, text
    assert text.startswith("identity provider identity_provider[0]"), text
    if entry.get("name"):
        assert f"({entry['name']})" in text, text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"override": "{not json"}, "context identity_provider: not valid JSON"),
        ({"override": json.dumps(["x"])}, "identity_provider[0]: expected a JSON object"),
        ({"override": json.dumps([ENTRA, {**OKTA, "name": "acmeentra"}])}, "names must be unique"),
        ({"per_stage": {"staging": [ENTRA]}}, "unknown stages ['staging']"),
        ({"per_stage": [ENTRA]}, "expected an object of stage name -> provider(s)"),
        (
            {
                "override": json.dumps(
                    {**ENTRA, "group_roles": {f"group-{i:04d}-" + "x" * 40: "recruiter" for i in range(60)}}
                )
            },
            "too large for the functions' environment",
        ),
    ],
)
def test_a_bad_context_is_refused_clearly(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=None) as refused:
        parse_identity_providers("dev", **kwargs)
    assert message in str(refused.value), str(refused.value)


def test_the_stage_entry_of_cdk_json_is_read_and_the_command_line_wins() -> None:
    per_stage = {"prod": ENTRA, "dev": [OKTA]}

    assert [p.name for p in parse_identity_providers("prod", per_stage=per_stage)] == ["AcmeEntra"]
    assert [p.name for p in parse_identity_providers("dev", per_stage=json.dumps(per_stage))] == ["GlobexOkta"]
    assert parse_identity_providers("dev", per_stage={"prod": ENTRA}) == ()
    assert parse_identity_providers("dev") == ()
    override = json.dumps(ENTRA)
    assert [p.name for p in parse_identity_providers("dev", per_stage=per_stage, override=override)] == ["AcmeEntra"]


def test_a_bad_provider_fails_the_synth_of_the_app(tmp_path: Path) -> None:
    bad = {**ENTRA, "group_roles": {"g": ["superuser"]}}
    with pytest.raises(ValueError, match=r"identity provider identity_provider\[0\] \(AcmeEntra\) is invalid"):
        _synth_with({constants.IDENTITY_PROVIDER_OVERRIDE_CONTEXT: json.dumps(bad)}, tmp_path)
