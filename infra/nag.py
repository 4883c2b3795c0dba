"""cdk-nag acknowledgments. `acknowledge` is the one way to accept a finding, always with its specific reason.

The construct helpers (infra/constructs/) acknowledge the findings of what they build, on the resource they
build, so no entry here names a CDK-hashed logical id. What stays here is stack-wide: policies that CDK itself
writes for any construct that traces or delivers logs, and API Gateway's account-level logging role.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept the AwsSolutions finding `rule` (e.g. "AwsSolutions-SQS3") on `construct`, for `reason`."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def acknowledge_findings(stack: Stack) -> None:
    """Walk the stack once and acknowledge the stack-wide findings that are by design, each for a stated reason."""
    for node in stack.node.find_all():
        path = node.node.path
        if path.endswith("/DefaultPolicy") or path.endswith("/DefaultPolicy/Resource"):
            acknowledge(
                node,
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray PutTraceSegments/PutTelemetryRecords and the state machine's log-delivery actions "
                "do not support resource-level permissions",
            )
        if path.endswith("CloudWatchRole/Resource"):
            acknowledge(
                node,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level logging role needs exactly this AWS-managed policy",
            )
