"""cdk-nag acknowledgments: each with the specific reason it does not apply or is accepted."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def _ack(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def acknowledge_findings(stack: Stack) -> None:
    """Walk the stack once and acknowledge the findings that are by design, each for a stated reason."""
    for node in stack.node.find_all():
        path = node.node.path
        if path.endswith("/DefaultPolicy") or path.endswith("/DefaultPolicy/Resource"):
            _ack(
                node,
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray PutTraceSegments/PutTelemetryRecords and the state machine's log-delivery actions "
                "do not support resource-level permissions",
            )
        if path.endswith("HealthWorkflow/Role/DefaultPolicy/Resource"):
            _ack(
                node,
                "AwsSolutions-IAM5[Resource::<PlatformHealthProbe75E06634.Arn>:*]",
                "LambdaInvoke grants the probe function and its versions/aliases (ARN:*), nothing else",
            )
        if path.endswith("HealthScheduleDeadLetters/Resource") or path.endswith("DeadLetters/Resource"):
            _ack(node, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue (of a rule target or function)")
        if path.endswith("CloudWatchRole/Resource"):
            _ack(
                node,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level logging role needs exactly this AWS-maintained policy",
            )
        if path.endswith("/v1/health/GET/Resource"):
            _ack(node, "AwsSolutions-APIG4", "GET /v1/health is deliberately public: load balancers and uptime checks")
            _ack(node, "AwsSolutions-COG4", "GET /v1/health is deliberately public: no user pool authorizer")
