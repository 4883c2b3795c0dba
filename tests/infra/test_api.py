"""API Gateway: authorizers, request validation, access logs, WAF; and docs/openapi.json matches the routes."""

from __future__ import annotations

import json
from typing import Any

from infra.local.template import load
from infra.openapi import build_openapi
from tests.infra.conftest import ROOT, Synth, ref_target, refs_in

# (method, path) routes that are deliberately public: acknowledged APIG4/COG4 in infra/nag.py.
PUBLIC_ROUTES = {("GET", "/v1/health")}


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
