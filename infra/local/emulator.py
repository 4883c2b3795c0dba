"""The embedded AWS emulator: moto in server mode on 127.0.0.1, and the deploy of the synthesised template
into it, step by step as `cdk deploy` does (publish assets, create the stack), plus the named steps that create
what moto's CloudFormation skips but the runtime needs (secrets, user pools, subscription filters) and seed what
onboarding creates in AWS (per-tenant secrets)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import uuid
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local import adapters
from infra.local.template import Assembly

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION = "30"


class DeployError(RuntimeError):
    pass


@dataclass
class Emulator:
    server: Any
    endpoint: str
    port: int
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            import boto3

            session: Any = boto3.session.Session()
            self.clients[service] = session.client(
                service,
                region_name=REGION,
                endpoint_url=self.endpoint,
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
        return self.clients[service]

    def stop(self) -> None:
        self.server.stop()


def start_emulator(port: int = 0) -> Emulator:
    """Start moto on 127.0.0.1 (port 0: any free port) with the Step Functions interpreter switched on."""
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator request drowns the console
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    adapters.apply_static()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    # The Step Functions interpreter calls Lambda and other services at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(bound)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    return Emulator(server=server, endpoint=f"http://{host}:{bound}", port=bound)


def _resolve(text: str) -> str:
    return (
        text.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION).replace("${AWS::Partition}", "aws")
    )


def publish_assets(emulator: Emulator, assembly: Assembly) -> int:
    """Zip each file asset into the bootstrap bucket it names and set the bootstrap version parameter."""
    s3 = emulator.client("s3")
    made: set[str] = set()
    count = 0
    for asset in assembly.assets["files"].values():
        source = assembly.out_dir / asset["source"]["path"]
        body = _zip_dir(source) if asset["source"].get("packaging") == "zip" else source.read_bytes()
        for destination in asset["destinations"].values():
            bucket = _resolve(destination["bucketName"])
            if bucket not in made:
                with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
                made.add(bucket)
            s3.put_object(Bucket=bucket, Key=_resolve(destination["objectKey"]), Body=body)
            count += 1
    emulator.client("ssm").put_parameter(
        Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version", Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )
    return count


def _zip_dir(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path))
    return buffer.getvalue()


def create_stack(emulator: Emulator, assembly: Assembly) -> dict[str, str]:
    """Deploy the template; return logical id -> physical id of every resource moto created."""
    cfn = emulator.client("cloudformation")
    cfn.create_stack(
        StackName=assembly.stack_name,
        TemplateBody=assembly.template_path.read_text(),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.monotonic() + 120
    while True:
        stack = cfn.describe_stacks(StackName=assembly.stack_name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise DeployError("the stack did not finish creating in 120 s")
        time.sleep(0.2)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise DeployError(f"stack {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    physical: dict[str, str] = {}
    paginator = cfn.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=assembly.stack_name):
        for resource in page["StackResourceSummaries"]:
            if resource.get("PhysicalResourceId"):
                physical[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    return physical


def register_state_machines(emulator: Emulator, assembly: Assembly, physical: dict[str, str]) -> dict[str, str]:
    """State machines that CloudFormation creates land in moto's non-executing backend; with the interpreter
    on, the API reads the parser backend. Create each there too, from the same definition and role."""
    from moto.stepfunctions.models import stepfunctions_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    plain = stepfunctions_backends[ACCOUNT][REGION]
    executing = stepfunctions_parser_backends[ACCOUNT][REGION]
    arns: dict[str, str] = {}
    for logical_id in assembly.state_machines:
        arn = physical.get(logical_id)
        machine = next((m for m in plain.state_machines if m.arn == arn), None)
        if machine is None:
            raise DeployError(f"state machine {logical_id} was not created by the deploy")
        if not any(m.arn == arn for m in executing.state_machines):
            executing.create_state_machine(name=machine.name, definition=machine.definition, roleArn=machine.roleArn)
        arns[logical_id] = arn  # type: ignore[assignment]
    return arns


def create_subscriptions(
    emulator: Emulator, assembly: Assembly, physical: dict[str, str], function_arns: dict[str, str]
) -> list[str]:
    """Subscription filters (API access log -> refusal auditor), which moto's CloudFormation skips."""
    done: list[str] = []
    logs = emulator.client("logs")
    for sub in assembly.subscriptions:
        group = physical.get(sub.log_group)
        if not group:
            raise DeployError(f"log group {sub.log_group} of subscription {sub.logical_id} was not created")
        logs.put_subscription_filter(
            logGroupName=group,
            filterName=sub.logical_id,
            filterPattern=sub.filter_pattern,
            destinationArn=function_arns[sub.function],
        )
        done.append(f"subscription {sub.logical_id}")
    return done


# -- secrets -------------------------------------------------------------------------------------------------
_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_GENERATE_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


class Unresolved(ValueError):
    pass


def resolve(value: Any, stack_name: str, refs: dict[str, str]) -> Any:
    """The value of a template expression whose `Ref`s and `Fn::GetAtt [X, Arn|Id]` name entries of `refs`
    (logical id -> value) or pseudo parameters; Unresolved for anything else."""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list):
        return [resolve(v, stack_name, refs) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            if arg == "AWS::StackName":
                return stack_name
            if arg in _PSEUDO:
                return _PSEUDO[arg]
            if arg in refs:
                return refs[arg]
        elif fn == "Fn::GetAtt" and arg[0] in refs and arg[1] in ("Arn", "Id"):
            return refs[arg[0]]
        elif fn == "Fn::Join":
            separator, parts = arg
            return separator.join(str(resolve(p, stack_name, refs)) for p in parts)
        elif fn == "Fn::Sub" and isinstance(arg, str):
            text = arg
            for name, replacement in {**_PSEUDO, "AWS::StackName": stack_name, **refs}.items():
                text = text.replace("${" + name + "}", replacement)
            if "${" not in text:
                return text
    raise Unresolved(f"cannot resolve {value!r} locally")


def create_template_secrets(emulator: Emulator, assembly: Assembly) -> dict[str, str]:
    """Every AWS::SecretsManager::Secret of the template (moto's CloudFormation skips them), with its SecretString
    or a value generated per its GenerateSecretString; returns logical id -> ARN. A secret whose name cannot be
    resolved gets a CloudFormation-style generated name; nothing here refuses to start."""
    secrets = emulator.client("secretsmanager")
    arns: dict[str, str] = {}
    for logical_id, resource in assembly.resources("AWS::SecretsManager::Secret").items():
        props = resource.get("Properties") or {}
        try:
            name = str(resolve(props["Name"], assembly.stack_name, {})) if "Name" in props else None
        except Unresolved:
            name = None
        name = name or f"{logical_id}-{uuid.uuid4().hex[:12]}"
        try:
            value = str(resolve(props["SecretString"], assembly.stack_name, {})) if "SecretString" in props else None
        except Unresolved:
            value = None
        if value is None:
            value = _generated(secrets, props.get("GenerateSecretString") or {})
        arn = secrets.create_secret(
            Name=name, SecretString=value, Description=str(props.get("Description", ""))[:2048]
        )["ARN"]
        arns[logical_id] = arn
    return arns


def create_user_pools(emulator: Emulator, assembly: Assembly) -> dict[str, str]:
    """The template's Cognito user pools, which moto's CloudFormation skips, so that a function given a pool's id
    (`Ref`, e.g. the deprovisioning route's `USER_POOL_ID`) gets a real one; returns logical id -> pool id. The
    local gateway still issues and verifies the tokens itself (infra/local/tokens.py)."""
    cognito = emulator.client("cognito-idp")
    return {
        logical_id: str(cognito.create_user_pool(PoolName=f"{assembly.stack_name}-{logical_id}")["UserPool"]["Id"])
        for logical_id in assembly.resources("AWS::Cognito::UserPool")
    }


def _generated(secrets: Any, spec: dict[str, Any]) -> str:
    options = {k: spec[k] for k in _GENERATE_OPTIONS if k in spec}
    password = secrets.get_random_password(**options)["RandomPassword"]
    if "SecretStringTemplate" in spec and "GenerateStringKey" in spec:
        document = json.loads(spec["SecretStringTemplate"])
        document[spec["GenerateStringKey"]] = password
        return json.dumps(document)
    return str(password)


def fill_environment(
    emulator: Emulator, assembly: Assembly, physical: dict[str, str], refs: dict[str, str]
) -> list[str]:
    """Put back the environment variables moto dropped because they referred to resources it skipped and this
    step created (`refs`: logical id -> the value a Ref gives). What still cannot be resolved is left missing, for
    `check_environment` to refuse loudly."""
    lam = emulator.client("lambda")
    filled: list[str] = []
    for logical_id in assembly.functions:
        props = assembly.template["Resources"][logical_id]["Properties"]
        declared = (props.get("Environment") or {}).get("Variables") or {}
        name = physical.get(logical_id)
        if not name or not declared:
            continue
        current = (lam.get_function_configuration(FunctionName=name).get("Environment") or {}).get("Variables", {})
        missing = {}
        for key in set(declared) - set(current):
            try:
                missing[key] = str(resolve(declared[key], assembly.stack_name, {**physical, **refs}))
            except Unresolved:
                continue
        if missing:
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": {**current, **missing}})
            filled += [f"{logical_id}.{key}" for key in sorted(missing)]
    return filled


def tenant_secret_prefix(assembly: Assembly) -> str:
    """`<stack name>/tenants/`: the stack's TenantSecretPrefix output, or the contract's form of it."""
    value = assembly.template.get("Outputs", {}).get("TenantSecretPrefix", {}).get("Value")
    try:
        return str(resolve(value, assembly.stack_name, {})) if value is not None else f"{assembly.stack_name}/tenants/"
    except Unresolved:
        return f"{assembly.stack_name}/tenants/"


def seed_tenant_secrets(emulator: Emulator, assembly: Assembly, tenants: list[str]) -> dict[str, dict[str, str]]:
    """For each tenant and each kind declared in `Metadata.AtsTenantSecrets`, the secret onboarding creates in AWS:
    `<prefix><tenant>/<kind>` holding a keyring `{"current": "1", "keys": {"1": <base64 of 32 random bytes>}}`.
    Returns tenant -> kind -> key for the kinds declared `session: true`. Nothing declared: nothing seeded."""
    from shared.secrets import new_keyring

    client = emulator.client("secretsmanager")
    prefix = tenant_secret_prefix(assembly)
    for_session: dict[str, dict[str, str]] = {}
    for tenant in tenants:
        for declared in assembly.tenant_secrets:
            keyring = new_keyring()  # the document onboarding writes: {"current": "1", "keys": {"1": <key>}}
            key = json.loads(keyring)["keys"]["1"]
            client.create_secret(
                Name=f"{prefix}{tenant}/{declared.kind}", SecretString=keyring, Description=declared.description
            )
            if declared.session:
                for_session.setdefault(tenant, {})[declared.kind] = key
    return for_session


def function_configurations(emulator: Emulator) -> dict[str, dict[str, Any]]:
    """Every function moto holds, by name, with the environment it resolved from the template."""
    lam = emulator.client("lambda")
    out: dict[str, dict[str, Any]] = {}
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page["Functions"]:
            out[fn["FunctionName"]] = fn
    return out


def check_environment(name: str, expected: frozenset[str], actual: dict[str, str]) -> None:
    """An environment variable that refers to a skipped resource silently disappears in moto: fail loudly."""
    missing = sorted(expected - set(actual))
    if missing:
        raise DeployError(f"function {name} would run without {', '.join(missing)}: the emulator dropped them")
