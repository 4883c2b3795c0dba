"""Stages (`-c stage=dev|prod`): separate stacks; dev removable, prod retained with COMPLIANCE-locked exports;
the deployed Python is the newest one the tests run on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from infra import constants
from tests.infra.conftest import ROOT, Synth

BASE_NAME = json.loads((ROOT / "cdk.json").read_text())["context"]["ats:stackName"]
# What a stack deletion must not take with it in prod: every stateful resource type of the stack.
STATEFUL_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::KMS::Key",
    "AWS::Logs::LogGroup",
    "AWS::Cognito::UserPool",
}


def _audit_lock(synth: Synth) -> dict[str, Any]:
    buckets = [
        v["Properties"]
        for k, v in synth.of_type("AWS::S3::Bucket").items()
        if synth.paths[k].endswith("Storage/AuditExports/Resource")
    ]
    assert len(buckets) == 1
    retention: dict[str, Any] = buckets[0]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    return retention


def test_each_stage_is_its_own_stack(synth: Synth, synth_prod: Synth) -> None:
    assert (synth.stack_name, synth_prod.stack_name) == (f"{BASE_NAME}-dev", f"{BASE_NAME}-prod")
    assert synth.template["Outputs"]["Stage"]["Value"] == "dev"
    assert synth_prod.template["Outputs"]["Stage"]["Value"] == "prod"


def test_every_function_knows_its_stage(staged_synth: Synth) -> None:
    functions = staged_synth.our_functions()
    assert functions
    for logical_id, fn in functions.items():
        assert fn["Properties"]["Environment"]["Variables"]["STAGE"] == staged_synth.stage, logical_id


def test_dev_removes_everything_with_the_stack(synth: Synth) -> None:
    kept = sorted(
        (resource["Type"], logical_id)
        for logical_id, resource in synth.resources.items()
        if "Retain" in (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
        or resource.get("DeletionPolicy") == "Snapshot"
    )
    assert kept == []
    for type_ in STATEFUL_TYPES:
        assert {r.get("DeletionPolicy") for r in synth.of_type(type_).values()} == {"Delete"}, type_
    for logical_id, table in synth.of_type("AWS::DynamoDB::Table").items():
        assert table["Properties"].get("DeletionProtectionEnabled") is not True, logical_id
    for logical_id, pool in synth.of_type("AWS::Cognito::UserPool").items():
        assert pool["Properties"].get("DeletionProtection") != "ACTIVE", logical_id
    for logical_id, key in synth.of_type("AWS::KMS::Key").items():
        assert key["Properties"]["PendingWindowInDays"] == constants.DEV_KEY_PENDING_WINDOW_DAYS, logical_id
    # No auto-delete custom resource: removal stays with CloudFormation.
    assert synth.of_type("Custom::S3AutoDeleteObjects") == {}


def test_dev_locks_exports_in_governance_mode_for_a_day(synth: Synth) -> None:
    assert _audit_lock(synth) == {"Mode": "GOVERNANCE", "Days": 1}


def test_prod_retains_every_stateful_resource(synth_prod: Synth) -> None:
    for type_ in STATEFUL_TYPES:
        resources = synth_prod.of_type(type_)
        assert resources, type_
        for logical_id, resource in resources.items():
            assert resource.get("DeletionPolicy") == "Retain", (type_, logical_id)
            assert resource.get("UpdateReplacePolicy") == "Retain", (type_, logical_id)
    for logical_id, table in synth_prod.of_type("AWS::DynamoDB::Table").items():
        assert table["Properties"]["DeletionProtectionEnabled"] is True, logical_id
    for pool in synth_prod.of_type("AWS::Cognito::UserPool").values():
        assert pool["Properties"]["DeletionProtection"] == "ACTIVE"


def test_prod_locks_exports_in_compliance_mode_for_the_configured_years(synth_prod: Synth) -> None:
    lock = _audit_lock(synth_prod)
    assert lock["Mode"] == "COMPLIANCE"
    assert lock.get("Days", 0) >= 365 * constants.AUDIT_OBJECT_LOCK_YEARS or lock.get("Years", 0) >= 7, lock


def test_functions_run_the_python_the_tests_run_on(staged_synth: Synth) -> None:
    """Python 3.13: requires-python admits 3.11 to 3.13, and the layer's wheels are built for 3.13."""
    assert constants.LAMBDA_PYTHON_VERSION == "3.13"
    for logical_id, fn in staged_synth.our_functions().items():
        assert fn["Properties"]["Runtime"] == "python3.13", logical_id
    layer = next(iter(staged_synth.of_type("AWS::Lambda::LayerVersion").values()))["Properties"]
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    compiled = [p.name for p in (staged_synth.asset_dir(layer["Content"]["S3Key"]) / "python").rglob("*.so")]
    abi_tagged = [name for name in compiled if ".cpython-" in name]
    assert abi_tagged and all(".cpython-313-" in name for name in abi_tagged), abi_tagged[:5]


def test_the_cdk_cli_context_selects_the_stage(tmp_path: Any) -> None:
    """`npx aws-cdk@2 synth -c stage=prod` hands the context to the app in CDK_CONTEXT_JSON, which the jsii kernel
    reads from its environment at start: so a fresh process, as the CLI runs it (constructs only, no synth)."""
    script = (
        "from aws_cdk import Stack\n"
        "from infra.app import build_app\n"
        f"app = build_app(outdir={str(tmp_path)!r})\n"
        "print([c.node.id for c in app.node.children if Stack.is_stack(c)])\n"
    )
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    for stage, expected in (("prod", f"['{BASE_NAME}-prod']"), ("staging", "unknown stage 'staging'")):
        env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context | {"stage": stage})}
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert expected in result.stdout + result.stderr, (stage, result.stdout, result.stderr[-2000:])
