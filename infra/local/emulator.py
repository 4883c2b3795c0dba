"""The embedded AWS emulator: moto in server mode on 127.0.0.1, and the deploy of the synthesised template
into it, step by step as `cdk deploy` does (publish assets, create the stack), plus the one named step that
creates what moto's CloudFormation skips but the runtime needs."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
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

            self.clients[service] = boto3.session.Session().client(
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


def create_skipped_resources(
    emulator: Emulator, assembly: Assembly, physical: dict[str, str], function_arns: dict[str, str], tenants: list[str]
) -> list[str]:
    """The named step for what moto's CloudFormation skips and the runtime needs: subscription filters
    (API access log -> refusal auditor) and the per-tenant HMAC key secrets that onboarding creates in AWS."""
    from shared.crypto import new_hmac_secret

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
    prefix = _output(assembly, "TenantSecretPrefix")
    if prefix:
        secrets = emulator.client("secretsmanager")
        for tenant in tenants:
            secrets.create_secret(Name=f"{prefix}{tenant}", SecretString=new_hmac_secret())
            done.append(f"secret {prefix}{tenant}")
    return done


def _output(assembly: Assembly, name: str) -> str | None:
    value = assembly.template.get("Outputs", {}).get(name, {}).get("Value")
    if isinstance(value, dict) and "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(assembly.stack_name if p == {"Ref": "AWS::StackName"} else str(p) for p in parts)
    return value if isinstance(value, str) else None


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


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
