"""API Gateway: authorizers, request validation, access logs, WAF; and docs/openapi.json matches the routes."""

from __future__ import annotations

import json
from typing import Any

from infra.local.template import load
from infra.openapi import build_openapi
from shared.auth import Scope
from tests.infra.conftest import ROOT, Synth, ref_target, refs_in

# (method, path) routes that are deliberately public: acknowledged APIG4/COG4 by DomainConstruct.route.
# The health check, and the applicant's self-service routes, whose one-time signed link in the body is the
# credential (functions/retention/logic/links.py); nothing else is public.
PUBLIC_ROUTES = {
    ("GET", "/v1/health"),
    ("POST", "/v1/self-service/access"),
    ("POST", "/v1/self-service/leave-talent-pool"),
    ("POST", "/v1/self-service/erasure"),
}


def _path_of(synth: Synth, resource_id: Any) -> str:
    parts: list[str] = []
    current = ref_target(resource_id)
    while current and synth.resources.get(current, {}).get("Type") == "AWS::ApiGateway::Resource":
        props = synth.props(current)
        parts.append(props["PathPart"])
        current = ref_target(props["ParentId"])
    return "/" + "/".join(reversed(parts))


def _methods(synth: Synth) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        logical_id: (m["Properties"]["HttpMethod"], _path_of(synth, m["Properties"]["ResourceId"]), m["Properties"])
        for logical_id, m in synth.of_type("AWS::ApiGateway::Method").items()
    }


def test_methods_use_the_cognito_authorizer(synth: Synth) -> None:
    authorizers = synth.of_type("AWS::ApiGateway::Authorizer")
    cognito = {k for k, v in authorizers.items() if v["Properties"]["Type"] == "COGNITO_USER_POOLS"}
    methods = _methods(synth)
    assert methods
    seen_public: set[tuple[str, str]] = set()
    for logical_id, (verb, path, props) in methods.items():
        if verb == "OPTIONS":
            continue
        if path.startswith("/v1/webhooks/"):  # signed by the provider, verified by the function
            assert (verb, props["AuthorizationType"]) == ("POST", "NONE"), logical_id
            continue
        if (verb, path) in PUBLIC_ROUTES:
            seen_public.add((verb, path))
            assert props["AuthorizationType"] == "NONE", logical_id
            continue
        assert props.get("AuthorizationType") == "COGNITO_USER_POOLS", (logical_id, verb, path)
        assert ref_target(props.get("AuthorizerId")) in cognito, (logical_id, verb, path)
    assert seen_public == PUBLIC_ROUTES


def test_methods_use_the_request_validator(synth: Synth) -> None:
    validators = synth.of_type("AWS::ApiGateway::RequestValidator")
    assert len(validators) == 1
    props = next(iter(validators.values()))["Properties"]
    assert props["ValidateRequestBody"] is True and props["ValidateRequestParameters"] is True
    for logical_id, (verb, path, method) in _methods(synth).items():
        if verb != "OPTIONS":
            assert ref_target(method.get("RequestValidatorId")) in validators, (logical_id, verb, path)


def test_stage_has_access_logs_and_tracing(synth: Synth) -> None:
    stages = synth.of_type("AWS::ApiGateway::Stage")
    assert len(stages) == 1
    props = next(iter(stages.values()))["Properties"]
    settings = props.get("AccessLogSetting")
    assert settings, "the stage writes no access logs"
    assert ref_target(settings["DestinationArn"]) in synth.of_type("AWS::Logs::LogGroup")
    assert {"requestId", "status", "integrationStatus"} <= set(json.loads(settings["Format"]))
    assert props.get("TracingEnabled") is True
    for method_settings in props.get("MethodSettings", []):
        assert method_settings.get("DataTraceEnabled") is not True, "full request/response logging leaks personal data"


def test_waf_web_acl_is_associated_with_the_stage(synth: Synth) -> None:
    stage = next(iter(synth.of_type("AWS::ApiGateway::Stage")))
    acls = synth.of_type("AWS::WAFv2::WebACL")
    associations = synth.of_type("AWS::WAFv2::WebACLAssociation")
    assert len(acls) == 1 and acls[next(iter(acls))]["Properties"]["Scope"] == "REGIONAL"
    assert any(
        stage in refs_in(a["Properties"]["ResourceArn"]) and refs_in(a["Properties"]["WebACLArn"]) <= set(acls)
        for a in associations.values()
    ), associations


def test_openapi_document_is_up_to_date(synth: Synth) -> None:
    document = build_openapi(load(synth.outdir))
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert document == committed, "docs/openapi.json is stale: run `make openapi`"


# --- scope-only routes and machine clients ---------------------------------------------------------------------


def test_scoped_routes_name_only_known_full_scopes(synth: Synth) -> None:
    """AuthorizationScopes, where a route has them, are full names of the resource server's scopes."""
    servers = synth.of_type("AWS::Cognito::UserPoolResourceServer")
    assert len(servers) == 1
    server = next(iter(servers.values()))["Properties"]
    known = {f"{server['Identifier']}/{s['ScopeName']}" for s in server["Scopes"]}
    for logical_id, (verb, path, props) in _methods(synth).items():
        for scope in props.get("AuthorizationScopes", []):
            assert scope in known, (logical_id, verb, path, scope)
            assert props["AuthorizationType"] == "COGNITO_USER_POOLS", logical_id


def test_resource_server_has_the_contract_scopes(synth: Synth) -> None:
    """Identifier `ats` and the scopes of contracts section 1, the values of `shared.auth.Scope`."""
    server = next(iter(synth.of_type("AWS::Cognito::UserPoolResourceServer").values()))["Properties"]
    assert server["Identifier"] == "ats"
    names = {s["ScopeName"] for s in server["Scopes"]}
    assert names == {
        "identity.read",
        "messages.read",
        "messages.write",
        "retention.read",
        "retention.write",
        "failures.write",
        "assets.write",
        "audit.read",
    }
    assert names == {s.value for s in Scope}


def test_pre_token_trigger_customises_access_tokens(synth: Synth) -> None:
    pool = next(iter(synth.of_type("AWS::Cognito::UserPool").values()))["Properties"]
    config = pool["LambdaConfig"]["PreTokenGenerationConfig"]
    assert config["LambdaVersion"] == "V3_0"
    fn = ref_target(config["LambdaArn"])
    props = synth.props(str(fn))
    assert props["Handler"] == "functions.platform.handlers.pre_token.lambda_handler"
    assert "PLATFORM_TABLE_NAME" in props["Environment"]["Variables"]
    # Cognito may invoke it: a resource-based permission for cognito-idp.
    permissions = [
        p["Properties"]
        for p in synth.of_type("AWS::Lambda::Permission").values()
        if ref_target(p["Properties"]["FunctionName"]) == fn
    ]
    assert any(p["Principal"] == "cognito-idp.amazonaws.com" for p in permissions), permissions


def test_app_clients_issue_short_lived_revocable_tokens_without_hosted_ui_flows(synth: Synth) -> None:
    """15-minute ID and access tokens (a deprovisioned user's last minutes), 12-hour revocable refresh tokens."""
    clients = synth.of_type("AWS::Cognito::UserPoolClient")
    assert clients
    for logical_id, client in clients.items():
        props = client["Properties"]
        units = props.get("TokenValidityUnits", {})
        assert (props["AccessTokenValidity"], units.get("AccessToken")) == (15, "minutes"), logical_id
        assert (props["IdTokenValidity"], units.get("IdToken")) == (15, "minutes"), logical_id
        assert (props["RefreshTokenValidity"], units.get("RefreshToken")) == (720, "minutes"), logical_id
        assert props["EnableTokenRevocation"] is True, logical_id
        assert "implicit" not in props.get("AllowedOAuthFlows", []), logical_id
    assert len(synth.of_type("AWS::Cognito::UserPoolDomain")) == 1, "client credentials need the token endpoint"


# --- WAF: webhook bodies and bursts ----------------------------------------------------------------------------
# A small evaluator of the statements this ACL uses, so the tests assert what a request meets, not the JSON shape.


def _statement_matches(statement: dict[str, Any], path: str, labels: set[str]) -> bool:
    if "ByteMatchStatement" in statement:
        byte = statement["ByteMatchStatement"]
        assert "UriPath" in byte["FieldToMatch"], byte
        search, where = byte["SearchString"], byte["PositionalConstraint"]
        return {"CONTAINS": search in path, "STARTS_WITH": path.startswith(search), "EXACTLY": path == search}[where]
    if "NotStatement" in statement:
        return not _statement_matches(statement["NotStatement"]["Statement"], path, labels)
    if "AndStatement" in statement:
        return all(_statement_matches(s, path, labels) for s in statement["AndStatement"]["Statements"])
    if "OrStatement" in statement:
        return any(_statement_matches(s, path, labels) for s in statement["OrStatement"]["Statements"])
    if "LabelMatchStatement" in statement:
        return statement["LabelMatchStatement"]["Key"] in labels
    raise AssertionError(f"statement not modelled: {statement}")


def _waf_verdict(synth: Synth, path: str, common_rules_matched: set[str]) -> tuple[str, str | None]:
    """(action, deciding rule) for a request to `path` whose body trips the named CommonRuleSet rules."""
    acl = next(iter(synth.of_type("AWS::WAFv2::WebACL").values()))["Properties"]
    labels: set[str] = set()
    for rule in sorted(acl["Rules"], key=lambda r: r["Priority"]):
        statement = rule["Statement"]
        if "ManagedRuleGroupStatement" in statement:
            group = statement["ManagedRuleGroupStatement"]
            if group["Name"] != "AWSManagedRulesCommonRuleSet":
                continue
            scope = group.get("ScopeDownStatement")
            if scope and not _statement_matches(scope, path, labels):
                continue
            overrides = {o["Name"]: o["ActionToUse"] for o in group.get("RuleActionOverrides", [])}
            for matched in sorted(common_rules_matched):
                labels.add(f"awswaf:managed:aws:core-rule-set:{matched.replace('_BODY', '_Body')}")
                if "Count" not in overrides.get(matched, {}):
                    return "BLOCK", rule["Name"]
        elif "RateBasedStatement" in statement:
            continue
        elif _statement_matches(statement, path, labels) and "Block" in rule.get("Action", {}):
            return "BLOCK", rule["Name"]
    return "ALLOW", None


WEBHOOK_PATH = "/prod/v1/webhooks/standard/acme"
BIG_HTML_BODY = {"SizeRestrictions_BODY", "CrossSiteScripting_BODY"}


def test_waf_lets_large_html_webhook_bodies_through(synth: Synth) -> None:
    assert _waf_verdict(synth, WEBHOOK_PATH, BIG_HTML_BODY) == ("ALLOW", None)
    assert _waf_verdict(synth, "/v1/webhooks/sendgrid/acme", {"SizeRestrictions_BODY"}) == ("ALLOW", None)


def test_waf_still_blocks_large_or_html_bodies_elsewhere(synth: Synth) -> None:
    for path in ("/prod/v1/me", "/prod/v1/messages", "/prod/v1/webhook"):
        for matched in ({"SizeRestrictions_BODY"}, {"CrossSiteScripting_BODY"}):
            action, _ = _waf_verdict(synth, path, matched)
            assert action == "BLOCK", (path, matched)


def test_waf_keeps_the_other_common_rules_on_webhook_paths(synth: Synth) -> None:
    assert _waf_verdict(synth, WEBHOOK_PATH, {"CrossSiteScripting_QUERYARGUMENTS"})[0] == "BLOCK"
    assert _waf_verdict(synth, WEBHOOK_PATH, {"GenericLFI_BODY"})[0] == "BLOCK"


def test_waf_rate_limits_webhooks_separately_and_higher(synth: Synth) -> None:
    acl = next(iter(synth.of_type("AWS::WAFv2::WebACL").values()))["Properties"]
    limits: dict[str, list[int]] = {"webhook": [], "api": []}
    for rule in acl["Rules"]:
        rate = rule["Statement"].get("RateBasedStatement")
        if rate is None:
            continue
        assert "Block" in rule["Action"], rule["Name"]
        scope = rate["ScopeDownStatement"]
        on_webhook = _statement_matches(scope, WEBHOOK_PATH, set())
        on_api = _statement_matches(scope, "/prod/v1/me", set())
        assert on_webhook != on_api, f"{rule['Name']} counts webhook and API requests together"
        limits["webhook" if on_webhook else "api"].append(rate["Limit"])
    assert len(limits["webhook"]) == 1 and len(limits["api"]) == 1, limits
    assert limits["webhook"][0] > limits["api"][0], limits


def test_the_api_may_invoke_each_of_its_functions_through_one_permission(synth: Synth) -> None:
    methods = [m["Properties"] for m in synth.of_type("AWS::ApiGateway::Method").values()]
    functions = set(synth.of_type("AWS::Lambda::Function"))
    proxies = [m["Integration"] for m in methods if m.get("Integration", {}).get("Type") == "AWS_PROXY"]
    routed = {f for i in proxies for f in refs_in(i["Uri"]) & functions}
    assert all(i["IntegrationHttpMethod"] == "POST" for i in proxies)
    by_function: dict[str, list[dict[str, Any]]] = {}
    for p in synth.of_type("AWS::Lambda::Permission").values():
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com":
            by_function.setdefault(str(ref_target(p["Properties"]["FunctionName"])), []).append(p["Properties"])
    assert set(by_function) == routed, set(by_function) ^ routed
    assert len(routed) > 15
    for fn, permissions in by_function.items():
        (permission,) = permissions  # one each, however many routes the function serves
        assert "execute-api" in json.dumps(permission["SourceArn"]), fn
