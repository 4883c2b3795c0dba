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
    # Asynchronous invocations (events): AWS::Lambda::EventInvokeConfig and the function's DeadLetterConfig
    async_retry_attempts: int = 2
    async_max_age: int = 6 * 3600
    dead_letter_of: str | None = None  # logical id of the SQS queue of DeadLetterConfig.TargetArn
    on_failure_of: str | None = None  # logical id of the SQS queue of the OnFailure destination


@dataclass(frozen=True)
class RouteDef:
    method: str
    path: str
    function: str
    authenticated: bool
    scopes: tuple[str, ...] = ()  # the method's AuthorizationScopes: a scope-only route when not empty


@dataclass(frozen=True)
class RetryPolicy:
    """A target's retry policy (EventBridge's and EventBridge Scheduler's defaults: 185 attempts, 24 hours)."""

    maximum_retry_attempts: int = 185
    maximum_event_age_seconds: int = 86400


TARGET_KINDS = {
    "AWS::Lambda::Function": "lambda",
    "AWS::StepFunctions::StateMachine": "states",
    "AWS::SQS::Queue": "sqs",
    "AWS::Events::EventBus": "events",
}


@dataclass(frozen=True)
class TargetDef:
    arn_of: str  # logical id of the target resource
    kind: str  # "lambda" | "states" | "sqs" | "events" (TARGET_KINDS)
    input: str | None
    retry: RetryPolicy = RetryPolicy()
    dead_letter_of: str | None = None  # logical id of the target's dead-letter queue
    detail: str | None = None  # a bus target of EventBridge Scheduler: the event's detail-type
    source: str | None = None  # ... and its source


@dataclass(frozen=True)
class ScheduleDef:
    logical_id: str
    expression: str
    targets: tuple[TargetDef, ...]
    source: str = "rule"  # "rule" (AWS::Events::Rule) | "scheduler" (AWS::Scheduler::Schedule)
    timezone: str = "UTC"  # EventBridge Scheduler's ScheduleExpressionTimezone; rules always run in UTC


@dataclass(frozen=True)
class SubscriptionDef:
    logical_id: str
    log_group: str
    function: str
    filter_pattern: str


@dataclass(frozen=True)
class TenantSecretDef:
    """One kind of per-tenant secret, declared beside its construct (template `Metadata.AtsTenantSecrets`)."""

    kind: str
    description: str = ""
    session: bool = False  # also written to session.json so local clients can sign with it


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
    id_token_lifetime: int = 3600
    access_token_lifetime: int = 3600
    scopes: tuple[str, ...] = ()  # full names of the resource servers' scopes, e.g. "ats/identity.read"
    tenant_secrets: list[TenantSecretDef] = field(default_factory=list)

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
    if len(stacks) > 1 and stack_name is None:  # several stages synthesised: the local runtime runs dev
        stacks = [s for s in stacks if s[0].endswith("-dev")] or stacks
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
    _read_user_pool(assembly)
    _read_tenant_secrets(assembly)
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


def _queue_of(resources: dict[str, Any], value: Any, what: str) -> str | None:
    ref = _ref_target(value)
    if ref is not None and resources.get(ref, {}).get("Type") != "AWS::SQS::Queue":
        raise TemplateError(f"{what} is {ref}, not an SQS queue: the local runtime sends dead letters to queues only")
    return ref


def _read_functions(assembly: Assembly) -> None:
    resources = assembly.template["Resources"]
    invoke_configs = {
        _ref_target(c["Properties"].get("FunctionName")): c["Properties"]
        for c in assembly.resources("AWS::Lambda::EventInvokeConfig").values()
    }
    for logical_id, resource in assembly.resources("AWS::Lambda::Function").items():
        props = resource["Properties"]
        if "Handler" not in props or not str(props.get("Runtime", "")).startswith("python"):
            continue  # CDK's own provider functions (Node.js), if any: not ours to run
        invoke = invoke_configs.get(logical_id) or {}
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
            async_retry_attempts=int(invoke.get("MaximumRetryAttempts", 2)),
            async_max_age=int(invoke.get("MaximumEventAgeInSeconds", 6 * 3600)),
            dead_letter_of=_queue_of(
                resources, (props.get("DeadLetterConfig") or {}).get("TargetArn"), f"{logical_id}'s dead-letter target"
            ),
            on_failure_of=_queue_of(
                resources,
                ((invoke.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"),
                f"{logical_id}'s on-failure destination",
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
                scopes=tuple(str(scope) for scope in props.get("AuthorizationScopes") or ()),
            )
        )
    for rest_api in assembly.resources("AWS::ApiGateway::Stage").values():
        settings = rest_api["Properties"].get("AccessLogSetting") or {}
        assembly.access_log_group = _ref_target(settings.get("DestinationArn"))


def _retry(policy: dict[str, Any] | None) -> RetryPolicy:
    policy = policy or {}
    default = RetryPolicy()
    return RetryPolicy(
        maximum_retry_attempts=int(policy.get("MaximumRetryAttempts", default.maximum_retry_attempts)),
        maximum_event_age_seconds=int(policy.get("MaximumEventAgeInSeconds", default.maximum_event_age_seconds)),
    )


def _target(owner: str, target: dict[str, Any], resources: dict[str, Any]) -> TargetDef:
    """A schedule's target, resolved to the logical id of a resource of the stack; TemplateError for a target
    the local runtime cannot deliver to (never skipped silently)."""
    ref = _ref_target(target.get("Arn"))
    kind = TARGET_KINDS.get(resources.get(ref or "", {}).get("Type", ""))
    if ref is None or kind is None:
        raise TemplateError(
            f"{owner}: target {target.get('Arn')} is not one the local runtime delivers to "
            f"(a {', '.join(sorted(TARGET_KINDS))} of the stack)"
        )
    dead_letter = _ref_target((target.get("DeadLetterConfig") or {}).get("Arn"))
    if dead_letter is not None and resources.get(dead_letter, {}).get("Type") != "AWS::SQS::Queue":
        raise TemplateError(f"{owner}: the dead-letter target {dead_letter} is not an SQS queue of the stack")
    return TargetDef(
        arn_of=ref,
        kind=kind,
        input=target.get("Input"),
        retry=_retry(target.get("RetryPolicy")),
        dead_letter_of=dead_letter,
        detail=(target.get("EventBridgeParameters") or {}).get("DetailType"),
        source=(target.get("EventBridgeParameters") or {}).get("Source"),
    )


def _read_schedules(assembly: Assembly) -> None:
    resources = assembly.template["Resources"]
    for logical_id, rule in assembly.resources("AWS::Events::Rule").items():
        props = rule["Properties"]
        if "ScheduleExpression" not in props or props.get("State", "ENABLED") != "ENABLED":
            continue
        targets = tuple(_target(logical_id, t, resources) for t in props.get("Targets", []))
        assembly.schedules.append(ScheduleDef(logical_id, props["ScheduleExpression"], targets))
    for logical_id, schedule in assembly.resources("AWS::Scheduler::Schedule").items():
        props = schedule["Properties"]
        if props.get("State", "ENABLED") != "ENABLED":
            continue
        assembly.schedules.append(
            ScheduleDef(
                logical_id,
                props["ScheduleExpression"],
                (_target(logical_id, props["Target"], resources),),
                source="scheduler",
                timezone=props.get("ScheduleExpressionTimezone") or "UTC",
            )
        )


_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _validity(client: dict[str, Any], kind: str, default_unit: str) -> int | None:
    value = client.get(f"{kind}Validity")
    if value is None:
        return None
    unit = (client.get("TokenValidityUnits") or {}).get(kind, default_unit)
    return int(value) * _UNIT_SECONDS[unit]


def _read_user_pool(assembly: Assembly) -> None:
    """Token lifetimes of the app clients (the shortest, if clients differ; Cognito's default 1 hour when none
    says) and the full names of the resource servers' scopes."""
    clients = [c.get("Properties", {}) for c in assembly.resources("AWS::Cognito::UserPoolClient").values()]
    ids = [v for c in clients if (v := _validity(c, "IdToken", "hours")) is not None]
    access = [v for c in clients if (v := _validity(c, "AccessToken", "hours")) is not None]
    assembly.id_token_lifetime = min(ids, default=3600)
    assembly.access_token_lifetime = min(access, default=3600)
    scopes: list[str] = []
    for server in assembly.resources("AWS::Cognito::UserPoolResourceServer").values():
        props = server["Properties"]
        scopes += [f"{props['Identifier']}/{s['ScopeName']}" for s in props.get("Scopes") or []]
    assembly.scopes = tuple(scopes)


def _read_tenant_secrets(assembly: Assembly) -> None:
    declared = (assembly.template.get("Metadata") or {}).get("AtsTenantSecrets") or []
    if not isinstance(declared, list):
        raise TemplateError("Metadata.AtsTenantSecrets must be a list of {kind, description, session}")
    for entry in declared:
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str) or not entry["kind"]:
            raise TemplateError(f"Metadata.AtsTenantSecrets: an entry without a kind: {entry!r}")
        assembly.tenant_secrets.append(
            TenantSecretDef(
                kind=entry["kind"],
                description=str(entry.get("description", "")),
                session=bool(entry.get("session", False)),
            )
        )


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
