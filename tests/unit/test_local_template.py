"""The template reader: what the local runtime learns from the synthesised template alone (route scopes, token
lifetimes, resource-server scopes, tenant-secret declarations, schedules of both kinds, async-invocation
settings), and the forms it refuses at start rather than ignore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.local.template import Assembly, RetryPolicy, TemplateError, load

STACK = "AtsCompliance-dev"


def function(dead_letter: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"Handler": "h.handler", "Runtime": "python3.13", "Code": {"S3Key": "code.zip"}}
    if dead_letter:
        props["DeadLetterConfig"] = {"TargetArn": {"Fn::GetAtt": [dead_letter, "Arn"]}}
    return {"Type": "AWS::Lambda::Function", "Properties": props}


def method(path_part: str, **extra: Any) -> dict[str, Any]:
    uri = {"Fn::Join": ["", ["arn:aws:apigateway:lambda:path/functions/", {"Fn::GetAtt": ["Fn", "Arn"]}]]}
    return {
        "Type": "AWS::ApiGateway::Method",
        "Properties": {
            "HttpMethod": "GET",
            "ResourceId": {"Ref": path_part},
            "Integration": {"Type": "AWS_PROXY", "Uri": uri},
            **extra,
        },
    }


BASE: dict[str, Any] = {
    "Fn": function(dead_letter="FnDlq"),
    "FnDlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
    "FnInvoke": {
        "Type": "AWS::Lambda::EventInvokeConfig",
        "Properties": {"FunctionName": {"Ref": "Fn"}, "MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 600},
    },
    "Flow": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {}},
    "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
    "Root": {"Type": "AWS::ApiGateway::Resource", "Properties": {"PathPart": "v1", "ParentId": "root"}},
    "Me": {"Type": "AWS::ApiGateway::Resource", "Properties": {"PathPart": "me", "ParentId": {"Ref": "Root"}}},
    "Ret": {"Type": "AWS::ApiGateway::Resource", "Properties": {"PathPart": "retention", "ParentId": {"Ref": "Root"}}},
    "MeGet": method("Me", AuthorizationType="COGNITO_USER_POOLS"),
    "RetGet": method(
        "Ret", AuthorizationType="COGNITO_USER_POOLS", AuthorizationScopes=["ats/retention.read", "ats/audit.read"]
    ),
    "People": {
        "Type": "AWS::Cognito::UserPoolClient",
        "Properties": {"IdTokenValidity": 60, "TokenValidityUnits": {"IdToken": "minutes"}},
    },
    "Machines": {
        "Type": "AWS::Cognito::UserPoolClient",
        "Properties": {"AccessTokenValidity": 2},  # no unit: hours, as in CloudFormation
    },
    "Server": {
        "Type": "AWS::Cognito::UserPoolResourceServer",
        "Properties": {"Identifier": "ats", "Scopes": [{"ScopeName": "retention.read", "ScopeDescription": "r"}]},
    },
    "Nightly": {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "ScheduleExpression": "cron(0 2 * * ? *)",
            "ScheduleExpressionTimezone": "Europe/Berlin",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": {"Ref": "Flow"},
                "RoleArn": "arn:aws:iam::123456789012:role/r",
                "Input": '{"job": "sweep"}',
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}},
            },
        },
    },
    "Paused": {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {"ScheduleExpression": "rate(1 day)", "State": "DISABLED", "Target": {"Arn": {"Ref": "Fn"}}},
    },
    "Every5": {
        "Type": "AWS::Events::Rule",
        "Properties": {"ScheduleExpression": "rate(5 minutes)", "Targets": [{"Arn": {"Ref": "Flow"}, "Id": "t"}]},
    },
}
METADATA = {
    "AtsTenantSecrets": [
        {"kind": "hmac", "description": "HMAC key"},
        {"kind": "webhook/standard", "description": "signing secret", "session": True},
    ]
}


def write_assembly(
    tmp_path: Path, resources: dict[str, Any], metadata: Any = None, stacks: tuple[str, ...] = (STACK,)
) -> Path:
    artifacts: dict[str, Any] = {}
    for name in stacks:
        template = {"Resources": resources, **({"Metadata": metadata} if metadata is not None else {})}
        (tmp_path / f"{name}.template.json").write_text(json.dumps(template))
        (tmp_path / f"{name}.assets.json").write_text(
            json.dumps(
                {"files": {"a": {"source": {"path": "asset.x"}, "destinations": {"d": {"objectKey": "code.zip"}}}}}
            )
        )
        artifacts[name] = {"type": "aws:cloudformation:stack", "properties": {"templateFile": f"{name}.template.json"}}
        artifacts[f"{name}.assets"] = {"type": "cdk:asset-manifest", "properties": {"file": f"{name}.assets.json"}}
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    return tmp_path


@pytest.fixture
def assembly(tmp_path: Path) -> Assembly:
    return load(write_assembly(tmp_path, BASE, METADATA))


def test_route_scopes_make_a_scope_only_route(assembly: Assembly) -> None:
    scopes = {route.path: route.scopes for route in assembly.routes}
    assert scopes == {"/v1/me": (), "/v1/retention": ("ats/retention.read", "ats/audit.read")}


def test_token_lifetimes_and_scopes_come_from_the_user_pool(assembly: Assembly) -> None:
    assert assembly.id_token_lifetime == 3600
    assert assembly.access_token_lifetime == 2 * 3600
    assert assembly.scopes == ("ats/retention.read",)


def test_without_app_client_settings_tokens_live_one_hour(tmp_path: Path) -> None:
    resources = {k: v for k, v in BASE.items() if k not in ("People", "Machines")}
    assembly = load(write_assembly(tmp_path, resources))
    assert (assembly.id_token_lifetime, assembly.access_token_lifetime) == (3600, 3600)


def test_tenant_secret_declarations_are_read_from_the_metadata(assembly: Assembly) -> None:
    assert [(d.kind, d.session) for d in assembly.tenant_secrets] == [("hmac", False), ("webhook/standard", True)]


def test_no_declaration_means_no_tenant_secrets(tmp_path: Path) -> None:
    assert load(write_assembly(tmp_path, BASE)).tenant_secrets == []


def test_a_declaration_without_a_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="kind"):
        load(write_assembly(tmp_path, BASE, {"AtsTenantSecrets": [{"description": "what?"}]}))


def test_scheduler_schedules_are_read_with_their_target_retry_and_dead_letter(assembly: Assembly) -> None:
    by_id = {s.logical_id: s for s in assembly.schedules}
    assert set(by_id) == {"Nightly", "Every5"}  # the disabled one is not run
    nightly = by_id["Nightly"]
    assert (nightly.source, nightly.expression, nightly.timezone) == ("scheduler", "cron(0 2 * * ? *)", "Europe/Berlin")
    [target] = nightly.targets
    assert (target.arn_of, target.kind, target.input, target.dead_letter_of) == (
        "Flow",
        "states",
        '{"job": "sweep"}',
        "Dlq",
    )
    assert target.retry == RetryPolicy(maximum_retry_attempts=3, maximum_event_age_seconds=3600)
    assert by_id["Every5"].source == "rule" and by_id["Every5"].targets[0].retry == RetryPolicy()


def test_a_schedule_target_the_runtime_cannot_deliver_to_is_refused(tmp_path: Path) -> None:
    universal = {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "ScheduleExpression": "rate(1 day)",
            "Target": {"Arn": "arn:aws:scheduler:::aws-sdk:dynamodb:putItem", "RoleArn": "r"},
        },
    }
    with pytest.raises(TemplateError, match="Universal"):
        load(write_assembly(tmp_path, {**BASE, "Universal": universal}))


def test_a_functions_async_settings_are_read(assembly: Assembly) -> None:
    fn = assembly.functions["Fn"]
    assert (fn.async_retry_attempts, fn.async_max_age, fn.dead_letter_of) == (1, 600, "FnDlq")


def test_with_several_stages_synthesised_the_dev_stack_is_run(tmp_path: Path) -> None:
    assembly = load(write_assembly(tmp_path, BASE, stacks=("AtsCompliance-prod", STACK)))
    assert assembly.stack_name == STACK
