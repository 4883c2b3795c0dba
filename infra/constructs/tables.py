"""The one way to declare a DynamoDB table: tenant-first string keys, on demand, PITR, customer-managed key."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.stage import StageConfig


def tenant_table(scope: Construct, construct_id: str, key: kms.IKey, stage: StageConfig) -> dynamodb.Table:
    # dynamodb.Table (AWS::DynamoDB::Table), not TableV2: the local emulator cannot deploy GlobalTable.
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=stage.deletion_protection,
        removal_policy=stage.removal_policy,
    )
