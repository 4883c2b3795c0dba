"""The auditor-grant routes (infra/constructs/auditor_grants.py), synthesised on their own: a platform-like domain
calls `add_auditor_grant_routes` exactly as `PlatformConstruct` does, and a second domain reads the grants with
`auditor_grant_reads`. Asserted on the template: the four methods behind the Cognito authorizer without scopes, one
function with exactly its grants and settings, the reader's Query-only grant, and nothing unacknowledged by cdk-nag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from functions.platform.models.auditor_grants import AuditorGrantsApiSettings
from infra.constructs.api import ApiConstruct
from infra.constructs.auditor_grants import HANDLER, ROUTES, add_auditor_grant_routes, auditor_grant_reads
from infra.constructs.domain import DomainConstruct
from infra.constructs.foundation import FoundationConstruct
from infra.constructs.stage import StageConfig
from infra.nag import acknowledge_findings
from tests.infra.conftest import as_list, ref_target, refs_in
from tests.infra.test_nag import nag_report

READER = "functions.retention.handlers.policy.lambda_handler"


class PlatformLike(DomainConstruct):
    TABLE_ID = "PlatformTable"


class AuditLike(DomainConstruct):
    TABLE_ID = "AuditTable"
    TABLE_KEY = "audit"


class ReaderDomain(DomainConstruct):
    TABLE_ID = "ReaderTable"


class GrantsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        foundation = FoundationConstruct(
            self, "Foundation", stage=StageConfig("dev"), architecture="arm64", service_version="0.0.0"
        )
        api = ApiConstruct(self, "Api", foundation=foundation)
        audit = AuditLike(self, "Audit", foundation=foundation, api=api)
        platform = PlatformLike(self, "Platform", foundation=foundation, api=api)
        add_auditor_grant_routes(platform, audit_table=audit.table)
        reader = ReaderDomain(self, "Reader", foundation=foundation, api=api)
        reader.route("GET", "/v1/read-by-auditors", handler=READER, reads=[auditor_grant_reads(platform.table)])
        acknowledge_findings(self)


@dataclass(frozen=True)
class Synthesised:
    template: dict[str, Any]
    report: dict[str, Any]
    error: str | None

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}

    def function(self, handler: str) -> tuple[str, dict[str, Any]]:
        [found] = [
            (k, v["Properties"])
            for k, v in self.resources("AWS::Lambda::Function").items()
            if v["Properties"].get("Handler") == handler
        ]
        return found

    def table(self, prefix: str) -> str:
        [found] = [k for k in self.resources("AWS::DynamoDB::Table") if k.startswith(prefix)]
        return found

    def statements_on(self, function_id: str, resource_id: str) -> list[dict[str, Any]]:
        """The function's DynamoDB statements (not KMS) on the resource."""
        role = ref_target(self.template["Resources"][function_id]["Properties"]["Role"])
        return [
            statement
            for policy in self.resources("AWS::IAM::Policy").values()
            if role in refs_in(policy["Properties"]["Roles"])
            for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
            if resource_id in refs_in(statement["Resource"]) and "kms:" not in str(statement["Action"])
        ]

    def actions_on(self, function_id: str, resource_id: str) -> set[str]:
        return {str(a) for s in self.statements_on(function_id, resource_id) for a in as_list(s["Action"])}

    def leading_keys_on(self, function_id: str, resource_id: str) -> set[str]:
        return {
            str(key)
            for s in self.statements_on(function_id, resource_id)
            for key in s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        }


@pytest.fixture(scope="module")
def synthesised(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    outdir = tmp_path_factory.mktemp("cdk.out.auditor-grants")
    app = App(outdir=str(outdir))
    stack = GrantsStack(app, "AuditorGrantsProof")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    error = None
    try:
        app.synth()
    except RuntimeError as exc:
        error = str(exc)
    template = json.loads((outdir / f"{stack.artifact_id}.template.json").read_text())
    report = nag_report(json.loads((Path(outdir) / "validation-report.json").read_text()))
    return Synthesised(template, report, error)


def test_cdk_nag_reports_nothing_unacknowledged(synthesised: Synthesised) -> None:
    assert synthesised.error is None, synthesised.error
    assert synthesised.report["violations"] == []


def test_the_four_routes_are_one_function_behind_the_user_pool_authorizer(synthesised: Synthesised) -> None:
    fn, _ = synthesised.function(HANDLER)
    methods = [
        m["Properties"]
        for m in synthesised.resources("AWS::ApiGateway::Method").values()
        if fn in refs_in(m["Properties"]["Integration"]["Uri"])
    ]

    assert sorted(m["HttpMethod"] for m in methods) == sorted(method for method, _ in ROUTES)
    assert all(m["AuthorizationType"] == "COGNITO_USER_POOLS" for m in methods)
    assert all("AuthorizationScopes" not in m for m in methods)


def test_the_function_has_exactly_its_grants_and_the_settings_its_handler_requires(synthesised: Synthesised) -> None:
    fn, props = synthesised.function(HANDLER)

    assert synthesised.actions_on(fn, synthesised.table("PlatformPlatformTable")) == {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    assert synthesised.leading_keys_on(fn, synthesised.table("PlatformPlatformTable")) == {"T#*#GRANT#*", "T#*#GRANTS"}
    assert synthesised.actions_on(fn, synthesised.table("AuditAuditTable")) == {"dynamodb:PutItem"}
    required = {name for name, info in AuditorGrantsApiSettings.model_fields.items() if info.is_required()}
    assert required <= set(props["Environment"]["Variables"])


def test_a_route_auditors_use_reads_the_grants_with_a_query_only(synthesised: Synthesised) -> None:
    fn, props = synthesised.function(READER)

    assert synthesised.actions_on(fn, synthesised.table("PlatformPlatformTable")) == {"dynamodb:Query"}
    assert synthesised.leading_keys_on(fn, synthesised.table("PlatformPlatformTable")) == {"T#*#GRANT#*"}
    assert "PLATFORM_TABLE_NAME" in props["Environment"]["Variables"]


# Handler modules whose use cases check a permission the auditor role holds: each must be able to read the grants.
AUDITOR_HANDLERS = {
    "functions.messages.handlers.api",
    "functions.messages.handlers.reports_api",
    "functions.messages.handlers.export_api",
    "functions.retention.handlers.policy",
    "functions.retention.handlers.vacancies",
    "functions.retention.handlers.records",
    "functions.retention.handlers.subjects",
}


def test_the_stacks_routes_auditors_use_can_read_the_grants(synth: Any) -> None:
    found = set()
    for logical_id, fn in synth.our_functions().items():
        module = fn["Properties"]["Handler"].rpartition(".")[0]
        if module in AUDITOR_HANDLERS:
            assert "PLATFORM_TABLE_NAME" in fn["Properties"]["Environment"]["Variables"], logical_id
            found.add(module)
    assert found == AUDITOR_HANDLERS
