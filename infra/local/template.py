"""Reads the synthesised cloud assembly: what the local runtime must serve, run and schedule.

Everything here comes from the template and asset manifest that `cdk deploy` would use; nothing is declared
twice. A new route, function, schedule or state machine in CDK appears here without edits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class TemplateError(RuntimeError):
    pass


@dataclass(frozen=True)
class FunctionDef:
    logical_id: str
    handler: str
    asset_dir: Path
    environment_keys: frozenset[str]
    timeout: int
    memory: int
    runtime: str
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class RouteDef:
    method: str
    path: str
    function: str
    authenticated: bool


@dataclass(frozen=True)
class TargetDef:
    arn_of: str  # logical id of the target (function or state machine)
    kind: str  # "lambda" | "states"
    input: str | None


@dataclass(frozen=True)
class ScheduleDef:
    logical_id: str
    expression: str
    targets: tuple[TargetDef, ...]


@dataclass(frozen=True)
class SubscriptionDef:
    logical_id: str
    log_group: str
    function: str
    filter_pattern: str


@dataclass
class Assembly:
    stack_name: str
    template: dict[str, Any]
    template_path: Path
    assets: dict[str, Any]
    out_dir: Path
    functions: dict[str, FunctionDef] = field(default_factory=dict)
    routes: list[RouteDef] = field(default_factory=list)
    schedules: list[ScheduleDef] = field(default_factory=list)
    subscriptions: list[SubscriptionDef] = field(default_factory=list)
    state_machines: list[str] = field(default_factory=list)
    access_log_group: str | None = None

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == type_}


def _ref_target(value: Any) -> str | None:
    """The logical id named by a Ref or GetAtt anywhere inside `value` (first one found)."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        for inner in value.values():
            found = _ref_target(inner)
            if found:
                return found
    if isinstance(value, list):
        for inner in value:
            found = _ref_target(inner)
            if found:
                return found
    return None


def _refs_of_type(value: Any, resources: dict[str, Any], type_: str) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        target = None
        if "Ref" in value and isinstance(value["Ref"], str):
            target = value["Ref"]
        elif "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"][0]
        if target and resources.get(target, {}).get("Type") == type_:
            out.append(target)
        for inner in value.values():
            out.extend(_refs_of_type(inner, resources, type_))
    elif isinstance(value, list):
        for inner in value:
            out.extend(_refs_of_type(inner, resources, type_))
    return out


def load(out_dir: Path, stack_name: str | None = None) -> Assembly:
    """Parse the cloud assembly in `out_dir` (cdk.out)."""
    manifest = json.loads((out_dir / "manifest.json").read_text())
    stacks = [
        (name, art)
        for name, art in manifest["artifacts"].items()
        if art.get("type") == "aws:cloudformation:stack" and (stack_name is None or name == stack_name)
    ]
    if len(stacks) != 1:
        raise TemplateError(f"expected one stack in {out_dir}, found {[s[0] for s in stacks]}: run `make synth`")
    name, artifact = stacks[0]
    template_path = out_dir / artifact["properties"]["templateFile"]
    assets_file = next(
        (
            out_dir / a["properties"]["file"]
            for a in manifest["artifacts"].values()
            if a.get("type") == "cdk:asset-manifest" and a["properties"]["file"].startswith(name)
        ),
        None,
    )
    assembly = Assembly(
        stack_name=name,
        template=json.loads(template_path.read_text()),
        template_path=template_path,
        assets=json.loads(assets_file.read_text()) if assets_file else {"files": {}},
        out_dir=out_dir,
    )
    _read_functions(assembly)
    _read_routes(assembly)
    _read_schedules(assembly)
    _read_subscriptions(assembly)
    assembly.state_machines = list(assembly.resources("AWS::StepFunctions::StateMachine"))
    return assembly


def _asset_dir(assembly: Assembly, code: dict[str, Any]) -> Path:
    key = code.get("S3Key")
    if not isinstance(key, str):
        raise TemplateError(f"function code is not a file asset: {code}")
    for asset in assembly.assets["files"].values():
        if any(d["objectKey"] == key for d in asset["destinations"].values()):
            return assembly.out_dir / asset["source"]["path"]
    raise TemplateError(f"no asset in the manifest for {key}")


def _read_functions(assembly: Assembly) -> None:
    for logical_id, resource in assembly.resources("AWS::Lambda::Function").items():
        props = resource["Properties"]
        if "Handler" not in props or not str(props.get("Runtime", "")).startswith("python"):
            continue  # CDK's own provider functions (Node.js), if any: not ours to run
        assembly.functions[logical_id] = FunctionDef(
            logical_id=logical_id,
            handler=props["Handler"],
            asset_dir=_asset_dir(assembly, props["Code"]),
            environment_keys=frozenset((props.get("Environment") or {}).get("Variables", {})),
            timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
            runtime=props["Runtime"],
            reserved_concurrency=(
                int(props["ReservedConcurrentExecutions"]) if "ReservedConcurrentExecutions" in props else None
            ),
        )


def _resource_path(resources: dict[str, Any], resource_id: Any) -> str:
    parts: list[str] = []
    current = _ref_target(resource_id)
    while current and resources.get(current, {}).get("Type") == "AWS::ApiGateway::Resource":
        props = resources[current]["Properties"]
        parts.append(props["PathPart"])
        parent = props["ParentId"]
        current = parent.get("Ref") if isinstance(parent, dict) else None
    return "/" + "/".join(reversed(parts))


def _read_routes(assembly: Assembly) -> None:
    resources = assembly.template["Resources"]
    for logical_id, method in assembly.resources("AWS::ApiGateway::Method").items():
        props = method["Properties"]
        integration = props.get("Integration") or {}
        functions = list(_refs_of_type(integration.get("Uri"), resources, "AWS::Lambda::Function"))
        if integration.get("Type") != "AWS_PROXY" or not functions:
            raise TemplateError(f"{logical_id}: only Lambda proxy integrations are served locally")
        assembly.routes.append(
            RouteDef(
                method=props["HttpMethod"],
                path=_resource_path(resources, props["ResourceId"]),
                function=functions[0],
                authenticated=props.get("AuthorizationType", "NONE") != "NONE",
            )
        )
    for rest_api in assembly.resources("AWS::ApiGateway::Stage").values():
        settings = rest_api["Properties"].get("AccessLogSetting") or {}
        assembly.access_log_group = _ref_target(settings.get("DestinationArn"))


def _read_schedules(assembly: Assembly) -> None:
    resources = assembly.template["Resources"]
    for logical_id, rule in assembly.resources("AWS::Events::Rule").items():
        props = rule["Properties"]
        if "ScheduleExpression" not in props or props.get("State", "ENABLED") != "ENABLED":
            continue
        targets = []
        for target in props.get("Targets", []):
            ref = _ref_target(target["Arn"])
            kind = {"AWS::Lambda::Function": "lambda", "AWS::StepFunctions::StateMachine": "states"}.get(
                resources.get(ref or "", {}).get("Type", "")
            )
            if ref and kind:
                targets.append(TargetDef(arn_of=ref, kind=kind, input=target.get("Input")))
        assembly.schedules.append(ScheduleDef(logical_id, props["ScheduleExpression"], tuple(targets)))


def _read_subscriptions(assembly: Assembly) -> None:
    resources = assembly.template["Resources"]
    for logical_id, sub in assembly.resources("AWS::Logs::SubscriptionFilter").items():
        props = sub["Properties"]
        functions = _refs_of_type(props["DestinationArn"], resources, "AWS::Lambda::Function")
        if functions:
            assembly.subscriptions.append(
                SubscriptionDef(
                    logical_id=logical_id,
                    log_group=_ref_target(props["LogGroupName"]) or "",
                    function=functions[0],
                    filter_pattern=props.get("FilterPattern", ""),
                )
            )
