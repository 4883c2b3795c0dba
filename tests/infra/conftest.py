"""Infra tier: synthesise the real CDK app once per stage per session and inspect the cloud assemblies it writes.

`synth` is the dev stage (what the local runtime uses), `synth_prod` the prod stage; `staged_synth` runs a test
against both.

The app is built by `infra.app.build_app`, with cdk-nag's AwsSolutions pack attached through CDK Validations.
When a validation plugin reports an unacknowledged finding, `App.synth()` raises `RuntimeError("ValidationFailed:
...")` after writing the assembly and `validation-report.json`; the fixture keeps that error so the cdk-nag test
fails on it while every other test still inspects the template.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

# jsii prints these on every kernel start; set before the first `aws_cdk` import (test modules import it later).
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]

# Path fragments of the Lambda functions that CDK itself adds (custom-resource providers), not ours.
CDK_PROVIDER_PATH_MARKERS = (
    "Custom::",
    "CustomResourceProvider",
    "LogRetention",
    "BucketNotificationsHandler",
    "AWS679f53fac002430cb0da5b7982bd2287",
    "/Provider/",
    "SingletonLambda",
)


def ref_target(value: Any) -> str | None:
    """The logical id that a `Ref` or `Fn::GetAtt` names, if `value` is exactly one of those."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        get_att = value.get("Fn::GetAtt")
        if isinstance(get_att, list) and get_att:
            return str(get_att[0])
    return None


def refs_in(value: Any) -> set[str]:
    """Every logical id named by a `Ref` or `Fn::GetAtt` anywhere inside `value`."""
    found: set[str] = set()
    if isinstance(value, dict):
        target = ref_target(value)
        if target:
            found.add(target)
        for inner in value.values():
            found |= refs_in(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= refs_in(inner)
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Synth:
    """What one synth of the real app produced."""

    outdir: Path
    stage: str
    stack_name: str
    template: dict[str, Any]
    assets: dict[str, Any]
    # logical id -> construct path, for every CloudFormation resource of the stack
    paths: dict[str, str]
    validation_error: str | None

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_}

    def props(self, logical_id: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return props

    def is_cdk_provider(self, logical_id: str) -> bool:
        path = self.paths.get(logical_id, logical_id)
        return any(marker in path or marker in logical_id for marker in CDK_PROVIDER_PATH_MARKERS)

    def our_functions(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.of_type("AWS::Lambda::Function").items() if not self.is_cdk_provider(k)}

    def asset_dir(self, s3_key: str) -> Path:
        """The staged directory of the file asset uploaded as `s3_key`."""
        for asset in self.assets.get("files", {}).values():
            if any(d["objectKey"] == s3_key for d in asset["destinations"].values()):
                return self.outdir / asset["source"]["path"]
        raise LookupError(f"no file asset with object key {s3_key}")

    def validation_report(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads((self.outdir / "validation-report.json").read_text())
        return report


def _construct_paths(stack: Any) -> dict[str, str]:
    from aws_cdk import CfnResource

    paths: dict[str, str] = {}
    for node in stack.node.find_all():
        if CfnResource.is_cfn_resource(node):
            paths[str(stack.resolve(node.logical_id))] = node.node.path
    return paths


def synthesise(stage: str, outdir: Path) -> Synth:
    """Synthesise the real app for `stage` into `outdir`; a cdk-nag failure is kept, not raised."""
    from aws_cdk import Stack

    from infra.app import build_app

    app = build_app(outdir=str(outdir), stage=stage)
    error: str | None = None
    try:
        app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        error = str(exc)
    stacks = [cast(Stack, child) for child in app.node.children if Stack.is_stack(child)]
    assert len(stacks) == 1, f"expected one stack, found {[s.node.id for s in stacks]}"
    stack = stacks[0]
    manifest = json.loads((outdir / "manifest.json").read_text())
    artifact = manifest["artifacts"][stack.artifact_id]
    template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
    assets_file = outdir / f"{stack.artifact_id}.assets.json"
    assets = json.loads(assets_file.read_text()) if assets_file.exists() else {"files": {}}
    return Synth(
        outdir=outdir,
        stage=stage,
        stack_name=stack.stack_name,
        template=template,
        assets=assets,
        paths=_construct_paths(stack),
        validation_error=error,
    )


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    """The dev stage: the default, and what the local runtime synthesises."""
    yield synthesise("dev", tmp_path_factory.mktemp("cdk.out.dev"))


@pytest.fixture(scope="session")
def synth_prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synth]:
    yield synthesise("prod", tmp_path_factory.mktemp("cdk.out.prod"))


@pytest.fixture(scope="session", params=["dev", "prod"])
def staged_synth(request: pytest.FixtureRequest) -> Synth:
    """Each stage in turn (each synthesised once per session)."""
    synthesised: Synth = request.getfixturevalue("synth" if request.param == "dev" else "synth_prod")
    return synthesised
