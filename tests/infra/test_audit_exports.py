"""Auditor exports in the template (issue 13, section 8): the two routes on the audit API, the worker (started by
the API and by a daily schedule whose target's dead letters go to the domain's one queue), the read-only auditor
role, the Glue table over the exports, cdk-nag clean, within the resource budget.

Until the lead wires `add_audit_exports` into the stack, the fixture adds it to the real app itself (the audit and
platform constructs as the stack built them), so these tests hold before and after the wiring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests.infra.conftest import Synth, _construct_paths, ref_target

BUDGET = 16


def _synth(outdir: Path, context: dict[str, Any] | None = None) -> tuple[Synth, int]:
    from aws_cdk import Stack

    from infra import app as cdk_app
    from infra.constructs.audit_exports import add_audit_exports
    from infra.nag import acknowledge_findings

    original = cdk_app._context_from_cdk_json
    cdk_app._context_from_cdk_json = lambda: {**original(), **(context or {})}
    try:
        app = cdk_app.build_app(outdir=str(outdir), stage="dev")
    finally:
        cdk_app._context_from_cdk_json = original
    (stack,) = [cast(Stack, c) for c in app.node.children if Stack.is_stack(c)]
    audit, platform = stack.node.find_child("Audit"), stack.node.find_child("Platform")
    if audit.node.try_find_child("AuditExportWorker") is None:
        add_audit_exports(
            audit,  # type: ignore[arg-type]
            bucket=stack.node.find_child("Storage").audit_exports,  # type: ignore[attr-defined]
            platform_table=platform.table,  # type: ignore[attr-defined]
        )
        acknowledge_findings(stack)  # what the stack does last, for what was added after it
    error = None
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        error = str(exc)
    manifest = json.loads((outdir / "manifest.json").read_text())
    template = json.loads((outdir / manifest["artifacts"][stack.artifact_id]["properties"]["templateFile"]).read_text())
    synth = Synth(outdir, "dev", stack.stack_name, template, {"files": {}}, _construct_paths(stack), error)
    return synth, len(template["Resources"])


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield _synth(tmp_path_factory.mktemp("cdk.out.exports"))[0]


def _ours(synth: Synth) -> dict[str, dict[str, Any]]:
    markers = ("AuditExport", "AuditorExportReader", "AuditApi", "audit-exports")
    return {k: v for k, v in synth.resources.items() if any(m in synth.paths.get(k, k) for m in markers)}


def _one(synth: Synth, type_: str, marker: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in synth.of_type(type_).items() if marker in synth.paths[k]]
    return found


def _statements(synth: Synth, marker: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, policy in synth.of_type("AWS::IAM::Policy").items():
        if marker in synth.paths[key]:
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else list(statement["Action"])


def test_the_routes_reach_the_audit_api_function(synth: Synth) -> None:
    methods = {
        (v["Properties"]["HttpMethod"], synth.paths[k]): v for k, v in synth.of_type("AWS::ApiGateway::Method").items()
    }
    posts = [p for (m, p) in methods if m == "POST" and "/audit-exports/POST" in p]
    gets = [p for (m, p) in methods if m == "GET" and "/audit-exports/{export_id}/GET" in p]
    assert posts and gets
    fn_key, fn = _one(synth, "AWS::Lambda::Function", "Audit/AuditApi/Resource")
    assert fn["Properties"]["Handler"] == "functions.audit.handlers.api.lambda_handler"
    env = fn["Properties"]["Environment"]["Variables"]
    assert {"AUDIT_TABLE_NAME", "EXPORT_BUCKET_NAME", "AUDIT_EXPORT_WORKER_NAME", "PLATFORM_TABLE_NAME"} <= set(env)
    invoke = [s for s in _statements(synth, "Audit/AuditApiRole") if "lambda:InvokeFunction" in _actions(s)]
    assert len(invoke) == 1 and "AuditExportWorker" in json.dumps(invoke[0]["Resource"])


def test_the_functions_write_only_export_jobs_and_inbox_items_never_update_or_delete(synth: Synth) -> None:
    for marker in ("Audit/AuditApiRole", "Audit/AuditExportWorkerRole"):
        statements = _statements(synth, marker)
        for statement in statements:
            dynamodb = [a for a in _actions(statement) if a.startswith("dynamodb:")]
            assert not {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & set(dynamodb)
            if "dynamodb:PutItem" in dynamodb:
                keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                # the API function also serves the alert policy (functions/audit/handlers/api.py)
                assert keys in (["T#*#AUDITEXPORT"], ["T#*#AUDITIN#*"], ["T#*#AUDIT#ALERTPOLICY"]), (marker, keys)


def test_the_worker_writes_only_the_export_prefix_and_its_failures_go_to_the_domains_dead_letter_queue(
    synth: Synth,
) -> None:
    key, fn = _one(synth, "AWS::Lambda::Function", "Audit/AuditExportWorker/Resource")
    assert fn["Properties"]["Timeout"] == 900
    dlq = fn["Properties"]["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    assert "Audit/RuleTargetDeadLetters" in synth.paths[dlq]
    puts = [s for s in _statements(synth, "Audit/AuditExportWorkerRole") if "s3:PutObject" in _actions(s)]
    assert len(puts) == 1 and json.dumps(puts[0]["Resource"]).endswith('"/audit/exports/*"]]}')
    rule_key, rule = _one(synth, "AWS::Events::Rule", "Audit/AuditExportSchedule")
    assert rule["Properties"]["ScheduleExpression"] == "cron(30 0 * * ? *)"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0] == key
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] == dlq


def test_the_auditor_role_reads_the_audit_prefix_only_with_mfa_by_default(synth: Synth) -> None:
    _, role = _one(synth, "AWS::IAM::Role", "Audit/AuditorExportReader")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    assert ":root" in json.dumps(trust["Principal"])
    (policy,) = role["Properties"]["Policies"]
    actions = sorted(a for s in policy["PolicyDocument"]["Statement"] for a in _actions(s))
    assert actions == ["kms:Decrypt", "s3:GetObject", "s3:ListBucket"]
    kms = next(s for s in policy["PolicyDocument"]["Statement"] if s["Action"] == "kms:Decrypt")
    assert "s3." in json.dumps(kms["Condition"]["StringEquals"]["kms:ViaService"])
    # No other policy is attached to it
    assert not [k for k in synth.of_type("AWS::IAM::Policy") if "AuditorExportReader" in synth.paths[k]]


def test_the_glue_table_reads_the_export_entries_partitioned_by_tenant_and_export(synth: Synth) -> None:
    database_id, database = _one(synth, "AWS::Glue::Database", "Audit/AuditExportsDatabase")
    assert "Name" not in database["Properties"]["DatabaseInput"]  # named by CloudFormation: no hard-coded name
    assert ref_target(synth.template["Outputs"]["AuditCatalogDatabase"]["Value"]) == database_id
    _, table = _one(synth, "AWS::Glue::Table", "Audit/AuditExportsTable")
    table_input = table["Properties"]["TableInput"]
    assert ref_target(table["Properties"]["DatabaseName"]) == database_id
    assert [c["Name"] for c in table_input["StorageDescriptor"]["Columns"]] == ["chain_hash", "entry"]
    assert [c["Name"] for c in table_input["PartitionKeys"]] == ["tenant", "export"]
    assert table_input["Parameters"]["projection.tenant.type"] == "injected"
    assert "/audit/exports/${tenant}/${export}/entries/" in json.dumps(
        table_input["Parameters"]["storage.location.template"]
    )


def test_cdk_nag_has_nothing_against_the_exports(synth: Synth) -> None:
    report = synth.validation_error or ""
    for marker in ("AuditExport", "AuditorExportReader", "AuditApi"):
        assert marker not in report, report[:3000]


def test_named_auditor_principals_are_this_accounts(tmp_path: Path) -> None:
    synth, _ = _synth(tmp_path / "out", {"auditorPrincipals": ["role/ExternalAuditor"]})
    _, role = _one(synth, "AWS::IAM::Role", "Audit/AuditorExportReader")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    text = json.dumps(trust["Principal"])
    assert "AWS::AccountId" in text and ":role/ExternalAuditor" in text and "Condition" not in trust


def test_the_exports_stay_within_their_resource_budget(synth: Synth) -> None:
    ours = _ours(synth)
    shared_api = [k for k in ours if "Audit/AuditApi" in synth.paths.get(k, "")]
    added = len(ours) - len(shared_api)
    assert added <= BUDGET, sorted(synth.paths.get(k, k) for k in ours)
